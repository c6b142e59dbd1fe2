"""A Python websockets client peer for tests/interop_python.test.ts.

    /usr/bin/python3 py_client.py URL SCENARIO [--specs JSON] [--subprotocols a,b] [--deflate D]

--deflate: "" (websockets' default: permessage-deflate on), "off", or a JSON object of
ClientPerMessageDeflateFactory arguments.

Scenarios (each reports JSON lines on stdout, starting with an "open" event):
  echo        send every spec (fragmented when it has a split), then check every echo;
              reports "echoes" with the mismatches, then closes with 1000.
  ping        send one text message, then pings (empty, text, 125 bytes) and wait for
              each pong with its payload; reports "pongs" (or "no-pong"); then closes with 1000.
  close-peer  close with 4002 "ciao é" after one text message; reports "closed".
  close-ours  wait for the server to close; reports "closed" with what it received.

Exits by itself: the whole run is bounded by --timeout seconds (default 15; exit status 3).
"""

import argparse
import asyncio
import json
import sys

import websockets
from websockets.exceptions import ConnectionClosed

from py_common import build, deflate_kwargs, emit, mismatch, pattern, send_spec

PING_PAYLOADS = [b"", b"are you there?", pattern(125, 9)]  # as PING_PAYLOADS in common.ts


async def scenario_echo(ws, specs):
    for spec in specs:
        await send_spec(ws, spec)
    mismatches = []
    for i, spec in enumerate(specs):
        problem = mismatch(await ws.recv(), build(spec))
        if problem:
            mismatches.append({"index": i, "problem": problem})
    emit("echoes", count=len(specs), mismatches=mismatches)
    await ws.close(1000)


async def scenario_ping(ws, _specs):
    await ws.send("queued before the pings")
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
    await ws.close(1000)


async def scenario_close_peer(ws, _specs):
    await ws.send("last words ✓")
    await ws.close(4002, "ciao é")
    emit("closed", code=ws.close_code, reason=ws.close_reason)


async def scenario_close_ours(ws, _specs):
    try:
        message = await ws.recv()
        emit("unexpected", message=str(message))
    except ConnectionClosed:
        await ws.wait_closed()
        emit("closed", code=ws.close_code, reason=ws.close_reason)


SCENARIOS = {
    "echo": scenario_echo,
    "ping": scenario_ping,
    "close-peer": scenario_close_peer,
    "close-ours": scenario_close_ours,
}


async def main(args):
    protocols = args.subprotocols.split(",") if args.subprotocols else None
    specs = json.loads(args.specs)
    async with websockets.connect(
        args.url,
        subprotocols=protocols,
        max_size=None,
        ping_interval=None,
        close_timeout=5,
        **deflate_kwargs(args.deflate, "client"),
    ) as ws:
        emit("open", subprotocol=ws.subprotocol)
        await SCENARIOS[args.scenario](ws, specs)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--specs", default="[]")
    parser.add_argument("--subprotocols", default="")
    parser.add_argument("--deflate", default="")  # see py_common.deflate_kwargs
    parser.add_argument("--timeout", type=float, default=15)
    arguments = parser.parse_args()
    try:
        asyncio.run(asyncio.wait_for(main(arguments), arguments.timeout))
    except asyncio.TimeoutError:
        print(f"py_client: timed out after {arguments.timeout} s", file=sys.stderr)
        sys.exit(3)
