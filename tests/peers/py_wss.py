"""A Python websockets peer over TLS (wss) for tests/tls_wss.test.ts.

    /usr/bin/python3 py_wss.py server CERT KEY   # wss echo server, one connection
    /usr/bin/python3 py_wss.py client URL CA     # wss client: echo round trips, then close

Every line on stdout is one JSON event. The server reports {"event": "listening",
"port": N}, echoes every message of one connection with its type, and reports
{"event": "closed", "code": C, "reason": R}. The client sends a text and a binary
message, checks both echoes, closes with 1000 "done" and reports {"event": "echoed",
...} and {"event": "closed", ...}. Both exit with status 3 after 15 seconds.
"""

import asyncio
import json
import ssl
import sys

import websockets

TIMEOUT = 15
MAX_SIZE = 16 * 1024 * 1024  # the tests send messages of a few MiB


def emit(event, **fields):
    print(json.dumps({"event": event, **fields}), flush=True)


async def server(cert, key):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    done = asyncio.get_running_loop().create_future()

    async def echo(ws, path):
        emit("open", path=path)
        try:
            async for message in ws:
                await ws.send(message)
        finally:
            emit("closed", code=ws.close_code, reason=ws.close_reason)
            done.set_result(None)

    async with websockets.serve(echo, "127.0.0.1", 0, ssl=context, max_size=MAX_SIZE) as ws_server:
        emit("listening", port=ws_server.sockets[0].getsockname()[1])
        await done


async def client(url, ca):
    context = ssl.create_default_context(cafile=ca)
    async with websockets.connect(url, ssl=context, max_size=MAX_SIZE) as ws:
        await ws.send("hello over wss")
        text = await ws.recv()
        await ws.send(bytes(range(256)) * 1000)
        binary = await ws.recv()
        emit("echoed", text=text, binary_ok=binary == bytes(range(256)) * 1000)
        await ws.close(1000, "done")
    emit("closed", code=ws.close_code, reason=ws.close_reason)


def main():
    mode, *args = sys.argv[1:]
    run = server(*args) if mode == "server" else client(*args)
    try:
        asyncio.run(asyncio.wait_for(run, TIMEOUT))
    except asyncio.TimeoutError:
        emit("timeout")
        sys.exit(3)


if __name__ == "__main__":
    main()
