"""Publish at a steady rate straight into an mq partition stream (mq wire format).

    python3 paced_publish.py PORT STREAM_KEY RATE SECONDS ROUND [WARMUP]

Sends WARMUP messages (round 0, not measured) then RATE*SECONDS messages, the
i-th at start + i/RATE (absolute schedule, so a late send does not shift the
rest). Each is one XADD <key> * id <uuid4> p <payload> ct application/json t <ms>,
payload {"s":<CLOCK_REALTIME ns just before the XADD>,"r":ROUND,"i":i},
waiting for the reply. Prints one JSON line: sent, seconds, rate, sends more
than 1 ms behind schedule.
"""
import json
import os
import select
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(__file__))
from resp import Redis, encode  # noqa: E402


def main():
    port, key, rate, secs, rnd = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
    warmup = int(sys.argv[6]) if len(sys.argv) > 6 else 0
    r = Redis(port=port)
    ct = b"application/json"

    outstanding = [0]

    def drain(block):
        while outstanding[0] and (block or r.pos < len(r.buf) or select.select([r.sock], [], [], 0)[0]):
            reply = r.read()
            if isinstance(reply, Exception):
                raise reply
            outstanding[0] -= 1

    def send(rn, i):
        ns = time.time_ns()
        p = b'{"s":%d,"r":%d,"i":%d}' % (ns, rn, i)
        r.send(encode("XADD", key, "*", "id", str(uuid.uuid4()), "p", p, "ct", ct, "t", ns // 1000000))
        outstanding[0] += 1
        drain(False)

    for i in range(warmup):
        send(0, i)
        time.sleep(1.0 / rate)
    drain(True)
    time.sleep(0.5)
    n = int(rate * secs)
    period = 1.0 / rate
    behind = 0
    t0 = time.perf_counter()
    for i in range(n):
        due = t0 + i * period
        while True:
            d = due - time.perf_counter()
            if d <= 0:
                break
            if d > 0.0003:
                time.sleep(d - 0.0002)
        if time.perf_counter() - due > 0.001:
            behind += 1
        send(rnd, i)
    el = time.perf_counter() - t0
    drain(True)
    print(json.dumps({"sent": n, "seconds": round(el, 4), "rate": round(n / el, 1), "behind_1ms": behind}))


if __name__ == "__main__":
    main()
