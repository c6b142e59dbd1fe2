"""A Python websockets server peer for tests/interop_python.test.ts.

    /usr/bin/python3 py_echo_server.py [--subprotocols b] [--connections 1] [--timeout 15]
                                       [--deflate D]

--deflate: "" (websockets' default: permessage-deflate on), "off", or a JSON object of
ServerPerMessageDeflateFactory arguments.

Listens on 127.0.0.1 with a free port and reports {"event": "listening", "port": N}.
Per connection it reports "open" (path, subprotocol, and the Sec-WebSocket-Protocol
header offered, or null), echoes every message with its type, and obeys text commands
"cmd:" + JSON:
  {"op": "fragments", "specs": [...]}  send each spec fragmented as its split says
  {"op": "ping"}                       ping (empty, text, 125 bytes), wait for each
                                       pong with its payload, report "pongs" (or
                                       "no-pong"), then send "pings answered"
  {"op": "close", "code": C, "reason": R}  close with that status and reason
When the connection ends it reports "closed" with the status and reason it received.
Exits after --connections connections, or with status 3 after --timeout seconds.
"""

import argparse
import asyncio
import json
import sys

import websockets
from websockets.exceptions import ConnectionClosed

from py_common import deflate_kwargs, emit, pattern, send_spec

PING_PAYLOADS = [b"", b"are you there?", pattern(125, 9)]  # as PING_PAYLOADS in common.ts


async def command(ws, cmd):
    if cmd["op"] == "fragments":
        for spec in cmd["specs"]:
            await send_spec(ws, spec)
    elif cmd["op"] == "ping":
        sizes = []
        for payload in PING_PAYLOADS:
            waiter = await ws.ping(payload)
            try:
                await asyncio.wait_for(waiter, 5)  # only a pong with this payload resolves it
            except asyncio.TimeoutError:
                emit("no-pong", size=len(payload))
                return
            sizes.append(len(payload))
        emit("pongs", sizes=sizes)
        await ws.send("pings answered")
    elif cmd["op"] == "close":
        await ws.close(cmd["code"], cmd["reason"])
    else:
        raise ValueError(f"unknown command {cmd!r}")


async def handler(ws, path):
    offered = ws.request_headers.get("Sec-WebSocket-Protocol")
    emit("open", path=path, subprotocol=ws.subprotocol, offered=offered)
    try:
        while True:
            message = await ws.recv()
            if isinstance(message, str) and message.startswith("cmd:"):
                await command(ws, json.loads(message[4:]))
            else:
                await ws.send(message)
    except ConnectionClosed:
        pass
    await ws.wait_closed()
    emit("closed", code=ws.close_code, reason=ws.close_reason)


async def main(args):
    protocols = args.subprotocols.split(",") if args.subprotocols else None
    remaining = args.connections
    finished = asyncio.Event()

    async def counted(ws, path):
        nonlocal remaining
        try:
            await handler(ws, path)
        finally:
            remaining -= 1
            if remaining == 0:
                finished.set()

    async with websockets.serve(
        counted,
        "127.0.0.1",
        0,
        subprotocols=protocols,
        max_size=None,
        ping_interval=None,
        close_timeout=5,
        **deflate_kwargs(args.deflate, "server"),
    ) as server:
        emit("listening", port=server.sockets[0].getsockname()[1])
        await finished.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--subprotocols", default="")
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--deflate", default="")  # see py_common.deflate_kwargs
    parser.add_argument("--timeout", type=float, default=15)
    arguments = parser.parse_args()
    try:
        asyncio.run(asyncio.wait_for(main(arguments), arguments.timeout))
    except asyncio.TimeoutError:
        print(f"py_echo_server: timed out after {arguments.timeout} s", file=sys.stderr)
        sys.exit(3)
