"""Clients that connect and reset at once (SO_LINGER 0, then close: the kernel sends
RST instead of FIN), mixed with normal clients, driven by commands on stdin.

Commands, one per line; each answers with one JSON line on stdout:
  rst PORT N            N clients connect to 127.0.0.1:PORT and reset -> {"event": "rst", "n": N}
  mix PORT RESETS NORMAL
                        NORMAL clients connect and send an 8-byte id, each after
                        RESETS // NORMAL resetting clients -> {"event": "sent"}; then
                        on "collect": read each echo -> {"event": "served", "n": NORMAL}
  unixrst PATH N        the same as rst on a Unix socket (a close before accept)
  quit                  exit
"""

import json
import socket
import struct
import sys

LINGER_0 = struct.pack("ii", 1, 0)


def say(event, **fields):
    print(json.dumps({"event": event, **fields}), flush=True)


def reset_client(family, address):
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        s.connect(address)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_0)
    finally:
        s.close()


def recv_exactly(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise RuntimeError(f"connection closed after {len(data)} of {n} bytes")
        data += chunk
    return data


def main():
    pending = []
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        cmd = words[0]
        if cmd == "rst":
            port, n = int(words[1]), int(words[2])
            for _ in range(n):
                reset_client(socket.AF_INET, ("127.0.0.1", port))
            say("rst", n=n)
        elif cmd == "unixrst":
            path, n = words[1], int(words[2])
            for _ in range(n):
                reset_client(socket.AF_UNIX, path)
            say("rst", n=n)
        elif cmd == "mix":
            port, resets, normal = int(words[1]), int(words[2]), int(words[3])
            for i in range(normal):
                for _ in range(resets // normal):
                    reset_client(socket.AF_INET, ("127.0.0.1", port))
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                s.sendall(i.to_bytes(8, "big"))
                pending.append((i, s))
            say("sent")
        elif cmd == "collect":
            n = len(pending)
            for i, s in pending:
                got = recv_exactly(s, 8)
                if got != i.to_bytes(8, "big"):
                    raise RuntimeError(f"client {i} got {got!r}")
                s.close()
            pending = []
            say("served", n=n)
        elif cmd == "quit":
            return
        else:
            raise RuntimeError(f"unknown command {line!r}")


if __name__ == "__main__":
    main()
