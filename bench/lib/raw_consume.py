"""Raw reference: drain N entries of a stream with XREADGROUP COUNT <batch> + XACK.

    python3 raw_consume.py PORT KEY GROUP N [BATCH] [TIMEOUT_S]

The group must exist (created at 0 by the caller). Each XACK of batch k is
pipelined with the XREADGROUP of batch k+1 (one round trip per batch), the way
a reasonable client would do it. Prints one JSON line: acked, seconds, msg_per_s.
"""
import json
import sys
import time

sys.path.insert(0, __import__("os").path.dirname(__file__))
from resp import Redis, RespError, encode  # noqa: E402


def main():
    port, key, group, n = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
    batch = int(sys.argv[5]) if len(sys.argv) > 5 else 100
    timeout = float(sys.argv[6]) if len(sys.argv) > 6 else 300.0
    r = Redis(port=port)
    read_cmd = encode("XREADGROUP", "GROUP", group, "raw-1", "COUNT", batch, "STREAMS", key, ">")
    acked = 0
    t0 = time.perf_counter()
    r.send(read_cmd)
    while acked < n:
        if time.perf_counter() - t0 > timeout:
            sys.exit("raw_consume: timed out after %.0f s with %d of %d acked" % (timeout, acked, n))
        reply = r.read()
        if isinstance(reply, RespError):
            raise reply
        ids = [e[0] for e in reply[0][1]] if reply else []
        if not ids:
            r.send(read_cmd)  # stream drained early: should not happen, bounded by timeout
            continue
        # ack this batch and ask for the next one in the same write
        last = acked + len(ids) >= n
        r.send(encode("XACK", key, group, *ids) + (b"" if last else read_cmd))
        got = r.read()
        if isinstance(got, RespError):
            raise got
        acked += got
    secs = time.perf_counter() - t0
    print(json.dumps({"acked": acked, "seconds": round(secs, 6), "msg_per_s": round(acked / secs, 1)}))


if __name__ == "__main__":
    main()
