"""Shared by the Python peers of tests/interop_python.test.ts (Python websockets 10.x).

Messages are built from the same specs as tests/peers/common.ts, so both sides expect
the very same bytes. Every peer reports on stdout, one JSON object per line.
"""

import json
import sys

_BASE = bytes(range(251))


def emit(event, **fields):
    """Reports one event to the test on stdout."""
    print(json.dumps({"event": event, **fields}), flush=True)


def pattern(size, seed):
    """`size` bytes where byte i is (i + seed) % 251, as in common.ts."""
    seed %= 251
    rotated = _BASE[seed:] + _BASE[:seed]
    return (rotated * (size // 251 + 1))[:size]


def build(spec):
    """The whole message of a spec: str for text, bytes for binary."""
    if spec["kind"] == "text":
        return spec["text"] * spec.get("repeat", 1)
    return pattern(spec["size"], spec["seed"])


def fragments(spec):
    """The spec's message split as `split` says (text splits must fall on code points)."""
    data = build(spec)
    raw = data.encode() if isinstance(data, str) else data
    parts, pos = [], 0
    for n in spec.get("split", []):
        parts.append(raw[pos:pos + n])
        pos += n
    parts.append(raw[pos:])
    return [p.decode() for p in parts] if isinstance(data, str) else parts


async def send_spec(ws, spec):
    """Sends a spec's message, fragmented when it has a `split`."""
    if "split" in spec:
        await ws.send(fragments(spec))
    else:
        await ws.send(build(spec))


def mismatch(got, want):
    """None if equal, else a short description of the first difference."""
    if type(got) is not type(want):
        return f"type {type(got).__name__}, expected {type(want).__name__}"
    if len(got) != len(want):
        return f"length {len(got)}, expected {len(want)}"
    for i, (a, b) in enumerate(zip(got, want)):
        if a != b:
            return f"differs at {i}"
    return None


def fail(message):
    """Reports a fatal problem on stderr and exits non-zero."""
    print(message, file=sys.stderr, flush=True)
    sys.exit(2)


def deflate_kwargs(setting, side):
    """Keyword arguments of connect()/serve() for --deflate: "" keeps websockets' default
    (permessage-deflate on), "off" turns compression off, and a JSON object configures
    the permessage-deflate factory of `side` ("client" or "server") with those fields."""
    if setting == "":
        return {}
    if setting == "off":
        return {"compression": None}
    from websockets.extensions import permessage_deflate

    factory = (
        permessage_deflate.ClientPerMessageDeflateFactory
        if side == "client"
        else permessage_deflate.ServerPerMessageDeflateFactory
    )
    return {"extensions": [factory(**json.loads(setting))]}

