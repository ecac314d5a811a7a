"""Minimal HTTP/1.1 keep-alive webhook sink: answers every request 200, no body.

    python3 sink.py --port-file F [--port P] [--reuse-port] [--record FILE]

Listens on 127.0.0.1 (port 0 = pick one; the port is written to --port-file).
asyncio Protocol, one thread, no per-request allocation beyond parsing.
With --record, it keeps "<receive time ns> <webhook-id> <body>" per request
(receive time = CLOCK_REALTIME when the whole request has been read) and
writes them to FILE on SIGTERM/SIGINT. It exits on SIGTERM/SIGINT, or after
--max-seconds (default 900) in any case.
"""
import argparse
import asyncio
import os
import signal
import socket
import sys
import time

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


class Stats:
    count = 0
    connections = 0
    records = []


def make_protocol(record):
    class Sink(asyncio.Protocol):
        def connection_made(self, transport):
            self.t = transport
            self.buf = b""
            Stats.connections += 1
            s = transport.get_extra_info("socket")
            if s is not None:
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def data_received(self, data):
            buf = self.buf + data if self.buf else data
            pos = 0
            out = 0
            n = len(buf)
            while True:
                he = buf.find(b"\r\n\r\n", pos)
                if he < 0:
                    break
                head = buf[pos:he]
                low = head.lower()
                cl = 0
                i = low.find(b"\r\ncontent-length:")
                if i >= 0:
                    j = low.find(b"\r\n", i + 2)
                    cl = int(low[i + 17:j if j >= 0 else len(low)])
                end = he + 4 + cl
                if end > n:
                    break
                if record:
                    wid = b"-"
                    i = low.find(b"\r\nwebhook-id:")
                    if i >= 0:
                        j = low.find(b"\r\n", i + 2)
                        wid = head[i + 13:j if j >= 0 else len(head)].strip()
                    Stats.records.append((time.time_ns(), wid, buf[he + 4:end]))
                pos = end
                out += 1
            self.buf = buf[pos:] if pos < n else b""
            if out:
                Stats.count += out
                self.t.write(RESPONSE * out)

    return Sink


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--reuse-port", action="store_true")
    ap.add_argument("--record")
    ap.add_argument("--max-seconds", type=float, default=900)
    a = ap.parse_args()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(make_protocol(bool(a.record)), "127.0.0.1", a.port,
                                      reuse_port=a.reuse_port or None, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.replace(tmp, a.port_file)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await asyncio.wait_for(stop.wait(), a.max_seconds)
    except asyncio.TimeoutError:
        pass
    server.close()
    print("sink: %d requests on %d connections" % (Stats.count, Stats.connections), file=sys.stderr)
    if a.record:
        with open(a.record + ".tmp", "wb") as f:
            for ns, wid, body in Stats.records:
                f.write(b"%d %s %s\n" % (ns, wid, body.replace(b"\n", b" ")))
        os.replace(a.record + ".tmp", a.record)


if __name__ == "__main__":
    asyncio.run(main())
