"""Poll an mq-worker's /metrics until mq_worker_deliveries_total{outcome="acked"} >= N.

    python3 wait_acked.py METRICS_PORT N START_NS TIMEOUT_S [INTERVAL_S]

START_NS is CLOCK_REALTIME in ns when the worker was started (date +%s%N).
Polls every INTERVAL_S (0.05); prints one JSON line with the seconds from
START_NS to the first poll that saw N acked, plus the other outcomes then, and
"steady_msg_per_s": the rate between the first poll that saw an ack and the
last one (start-up, connects and group creation left out).
Exits 1 on timeout (with what it saw), 2 when a delivery failed.
"""
import json
import re
import sys
import time
import urllib.request

LINE = re.compile(r'^mq_worker_deliveries_total\{[^}]*outcome="([a-z_]+)"\} (\d+)', re.M)


def scrape(port):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return None
    out = {}
    for name, v in LINE.findall(text):
        out[name] = out.get(name, 0) + int(v)
    for name, key in (("sum", "handler_s_sum"), ("count", "handler_count")):
        m = re.search(r'^mq_worker_handler_duration_seconds_%s\{[^}]*\} ([0-9.e+-]+)' % name, text, re.M)
        if m:
            out[key] = float(m.group(1))
    return out


def main():
    port, n, start_ns, timeout = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    interval = float(sys.argv[5]) if len(sys.argv) > 5 else 0.05
    deadline = time.monotonic() + timeout
    seen = None
    first = None  # (time ns, acked) at the first poll that saw an ack
    while time.monotonic() < deadline:
        m = scrape(port)
        now = time.time_ns()
        if m is not None:
            seen = m
            if m.get("failed", 0) or m.get("dead_lettered", 0):
                print(json.dumps({"error": "deliveries failed", "outcomes": m}))
                sys.exit(2)
            if first is None and m.get("acked", 0) > 0:
                first = (now, m["acked"])
            if m.get("acked", 0) >= n:
                secs = (now - start_ns) / 1e9
                mean = m.get("handler_s_sum", 0) / m["handler_count"] if m.get("handler_count") else 0
                steady = 0.0
                if first is not None and now > first[0] and m["acked"] > first[1]:
                    steady = (m["acked"] - first[1]) / ((now - first[0]) / 1e9)
                print(json.dumps({"seconds": round(secs, 6), "msg_per_s": round(n / secs, 1),
                                  "steady_msg_per_s": round(steady, 1),
                                  "handler_mean_ms": round(mean * 1000, 3), "outcomes": m}))
                return
        time.sleep(interval)
    print(json.dumps({"error": "timeout", "outcomes": seen}))
    sys.exit(1)


if __name__ == "__main__":
    main()
