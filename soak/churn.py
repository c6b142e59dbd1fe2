"""The soak's load: WebSocket clients that misbehave at every stage, written with plain
sockets so that each one does exactly what it says. Resets are real: SO_LINGER 0 and
close make the kernel send RST instead of FIN.

Commands on stdin, one per line; each answers one JSON line on stdout when done:
  reset STAGE PORT N      N clients reset at STAGE: connect (right after the TCP
                          handshake), request (half an upgrade request sent), frame
                          (after the 101, inside a small frame) or bigframe (after the
                          101, half of a 64 KiB frame sent)
  openclose PORT N        N clients: handshake, one echoed message, clean close
  pingflood PORT C P      C clients each send P pings without reading a pong, then reset
  tlsgarbage PORT N       N clients send bytes that are not a TLS handshake, then go
  procstat PID            {"fds", "tcp", "kinds", "rss"} of process PID: open
                          descriptors, TCP sockets among them, descriptors by kind, RSS
                          (Deno needs --allow-all to read /proc; Python does not)
  quit
All traffic goes to 127.0.0.1; every socket operation has a timeout.
"""

import json
import os
import socket
import struct
import sys

HOST = "127.0.0.1"
TIMEOUT = 5.0
LINGER_0 = struct.pack("ii", 1, 0)
REQUEST = (
    b"GET / HTTP/1.1\r\n"
    b"Host: 127.0.0.1\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"\r\n"
)


def say(event, **fields):
    print(json.dumps({"event": event, **fields}), flush=True)


def frame(opcode, payload, length=None):
    """A masked client frame; `length` may announce more payload than is given."""
    n = len(payload) if length is None else length
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def connect(port):
    s = socket.create_connection((HOST, port), timeout=TIMEOUT)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def reset(s):
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_0)
    finally:
        s.close()


def read_head(s):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            raise RuntimeError("the server closed during the handshake")
        data += chunk
    if not data.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(f"no 101: {data[:60]!r}")
    return data[data.index(b"\r\n\r\n") + 4:]


def recv_exactly(s, n, buf=b""):
    while len(buf) < n:
        chunk = s.recv(65536)
        if not chunk:
            raise RuntimeError("the server closed early")
        buf += chunk
    return buf


def read_frame(s, buf):
    """One unmasked server frame: (opcode, payload, rest of buf)."""
    buf = recv_exactly(s, 2, buf)
    opcode, n = buf[0] & 0x0F, buf[1] & 0x7F
    pos = 2
    if n == 126:
        buf = recv_exactly(s, 4, buf)
        n, pos = struct.unpack("!H", buf[2:4])[0], 4
    elif n == 127:
        buf = recv_exactly(s, 10, buf)
        n, pos = struct.unpack("!Q", buf[2:10])[0], 10
    buf = recv_exactly(s, pos + n, buf)
    return opcode, buf[pos:pos + n], buf[pos + n:]


SMALL_FRAME_START = frame(0x2, b"0123456789")[:9]
BIG_FRAME_HALF = frame(0x2, bytes(32768), length=65536)
PING = frame(0x9, b"p" * 125)


def reset_at(stage, port):
    s = connect(port)
    if stage == "connect":
        return reset(s)
    if stage == "request":
        s.sendall(REQUEST[: len(REQUEST) // 2])
        return reset(s)
    s.sendall(REQUEST)
    read_head(s)
    if stage == "frame":
        s.sendall(SMALL_FRAME_START)
    elif stage == "bigframe":
        s.sendall(BIG_FRAME_HALF)
    else:
        raise RuntimeError(f"unknown stage {stage}")
    reset(s)


def open_close(port):
    s = connect(port)
    try:
        s.sendall(REQUEST)
        buf = read_head(s)
        s.sendall(frame(0x1, b"hello"))
        opcode, payload, buf = read_frame(s, buf)
        if (opcode, payload) != (0x1, b"hello"):
            raise RuntimeError(f"bad echo {opcode} {payload!r}")
        s.sendall(frame(0x8, struct.pack("!H", 1000)))
        opcode, _, buf = read_frame(s, buf)
        if opcode != 0x8:
            raise RuntimeError(f"expected close, got opcode {opcode}")
        while s.recv(4096):
            pass
    finally:
        s.close()


def ping_flood(port, pings):
    s = connect(port)
    s.sendall(REQUEST)
    read_head(s)
    burst = PING * 256
    sent = 0
    s.settimeout(2.0)
    try:
        while sent < pings:
            s.sendall(burst)
            sent += 256
    except socket.timeout:
        pass  # the server stopped reading: it holds no more than its bound
    reset(s)
    return sent


def tls_garbage(port, i):
    s = connect(port)
    try:
        if i % 3 == 0:
            s.sendall(os.urandom(1024))
        elif i % 3 == 1:
            # A handshake record header with a body of noise.
            s.sendall(b"\x16\x03\x01\x02\x00" + os.urandom(512))
        else:
            # A ClientHello header that promises more than ever comes, then a reset.
            s.sendall(b"\x16\x03\x01\x40\x00\x01\x00\x3f\xfc\x03\x03" + os.urandom(200))
            return
        s.settimeout(0.5)
        try:
            s.recv(4096)  # the server's alert, or its close
        except (socket.timeout, ConnectionResetError):
            pass
    finally:
        reset(s)


def proc_stat(pid):
    """Descriptors of `pid` by kind, its TCP sockets (in any state) and its RSS."""
    kinds, socket_inodes = {}, set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except FileNotFoundError:
            continue  # closed meanwhile
        kind = link.split(":")[0] if link.startswith(("socket:", "pipe:", "anon_inode:")) else "file"
        kinds[kind] = kinds.get(kind, 0) + 1
        if link.startswith("socket:["):
            socket_inodes.add(link[8:-1])
    # /proc/net/tcp leaves out sockets in state CLOSE (reset ones, for instance), so
    # count as TCP every socket that is not a Unix socket.
    with open("/proc/net/unix") as f:
        unix = {line.split()[6] for line in list(f)[1:] if len(line.split()) > 6}
    tcp = len(socket_inodes - unix)
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))
    return {"fds": sum(kinds.values()), "tcp": tcp, "kinds": kinds, "rss": rss}


def main():
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        cmd, args = words[0], words[1:]
        if cmd == "reset":
            stage, port, n = args[0], int(args[1]), int(args[2])
            for _ in range(n):
                reset_at(stage, port)
            say("reset", stage=stage, n=n)
        elif cmd == "openclose":
            port, n = int(args[0]), int(args[1])
            for _ in range(n):
                open_close(port)
            say("openclose", n=n)
        elif cmd == "pingflood":
            port, conns, pings = int(args[0]), int(args[1]), int(args[2])
            sent = [ping_flood(port, pings) for _ in range(conns)]
            say("pingflood", sent=sent)
        elif cmd == "tlsgarbage":
            port, n = int(args[0]), int(args[1])
            for i in range(n):
                tls_garbage(port, i)
            say("tlsgarbage", n=n)
        elif cmd == "procstat":
            say("procstat", **proc_stat(int(args[0])))
        elif cmd == "quit":
            return
        else:
            raise RuntimeError(f"unknown command {line!r}")


if __name__ == "__main__":
    main()
