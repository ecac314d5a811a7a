"""Minimal Redis (RESP2) client over a socket, standard library only.

Used by the bench scripts for the raw reference loops and the paced publisher,
so they measure Redis plus a thin client and nothing of mq.
"""
import socket


def encode(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if not isinstance(a, (bytes, bytearray)):
            a = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class RespError(Exception):
    pass


class Redis:
    def __init__(self, host="127.0.0.1", port=6379, timeout=30.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.pos = 0

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("redis closed the connection")
        if self.pos:
            self.buf = self.buf[self.pos:] + chunk
            self.pos = 0
        else:
            self.buf += chunk

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n", self.pos)
            if i >= 0:
                line = self.buf[self.pos:i]
                self.pos = i + 2
                return line
            self._fill()

    def read(self):
        """One reply: bytes, int, None, list, or RespError (returned, not raised)."""
        line = self._line()
        t = line[:1]
        if t == b"$":
            n = int(line[1:])
            if n < 0:
                return None
            while len(self.buf) - self.pos < n + 2:
                self._fill()
            v = self.buf[self.pos:self.pos + n]
            self.pos += n + 2
            return v
        if t == b"*":
            n = int(line[1:])
            if n < 0:
                return None
            return [self.read() for _ in range(n)]
        if t == b":":
            return int(line[1:])
        if t == b"+":
            return line[1:]
        if t == b"-":
            return RespError(line[1:].decode(errors="replace"))
        raise RespError("bad reply type %r" % line[:20])

    def call(self, *args):
        self.send(encode(*args))
        r = self.read()
        if isinstance(r, RespError):
            raise r
        return r
