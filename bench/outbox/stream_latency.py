"""Insert-to-stream latency of outbox rows: reads a queue's partition stream with
XREAD BLOCK from its first entry (use a fresh queue per round) and, for each entry, subtracts the insert time
its payload carries (Unix microseconds, written by SQL clock_timestamp() inside the
inserting transaction) from the time it was read (CLOCK_REALTIME, same host).

    python3 stream_latency.py PORT STREAM_KEY EXPECTED OUT_FILE [TIMEOUT_S]

Writes one latency in microseconds per line to OUT_FILE; exits 1 unless EXPECTED entries
arrived within TIMEOUT_S (default 60) of the last one.
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from resp import Redis  # noqa: E402


def main():
    port, key, expected, out = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
    timeout = float(sys.argv[5]) if len(sys.argv) > 5 else 60.0
    r = Redis(port=port, timeout=timeout + 5)
    last = "0-0"
    got = []
    deadline = time.time() + timeout
    while len(got) < expected and time.time() < deadline:
        reply = r.call("XREAD", "COUNT", 1000, "BLOCK", 500, "STREAMS", key, last)
        now_us = time.time_ns() // 1000
        if not reply:
            continue
        deadline = time.time() + timeout
        for _stream, entries in reply:
            for entry_id, flat in entries:
                last = entry_id
                fields = dict(zip(flat[0::2], flat[1::2]))
                got.append(now_us - int(fields[b"p"]))
    with open(out, "w") as f:
        f.write("\n".join(str(x) for x in got) + "\n")
    if len(got) != expected:
        sys.exit("stream_latency: %d of %d entries arrived" % (len(got), expected))


if __name__ == "__main__":
    main()
