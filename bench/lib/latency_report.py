"""Summaries of a recording sink's file (lib/sink.py --record).

    python3 latency_report.py e2e RECORDS          -> per round r>0: n p50 p99 max (ms)
    python3 latency_report.py late RECORDS DUE     -> lateness vs due times (delay_snapshot.py)

e2e: latency = receive time - "s" (send time, ns) from the JSON body, grouped by
the body's "r" (round 0 = warm-up, left out). late: lateness = receive time (ms)
- due time (Unix ms, Redis clock) joined on the webhook-id (message id), only
for ids in DUE. Percentiles are nearest-rank. One JSON object per line.
"""
import json
import math
import sys


def pct(sorted_v, p):
    k = max(1, math.ceil(p / 100.0 * len(sorted_v)))
    return sorted_v[k - 1]


def summary(vals, **extra):
    v = sorted(vals)
    d = dict(extra)
    d.update(n=len(v), p50=round(pct(v, 50), 3), p99=round(pct(v, 99), 3), max=round(v[-1], 3),
             min=round(v[0], 3))
    return d


def records(path):
    with open(path, "rb") as f:
        for line in f:
            parts = line.rstrip(b"\n").split(b" ", 2)
            if len(parts) == 3:
                yield int(parts[0]), parts[1].decode(), parts[2]


def main():
    mode, path = sys.argv[1], sys.argv[2]
    if mode == "e2e":
        by_round = {}
        for ns, _wid, body in records(path):
            try:
                j = json.loads(body)
            except ValueError:
                continue
            if "s" in j and j.get("r", 0) > 0:
                by_round.setdefault(j["r"], []).append((ns - j["s"]) / 1e6)
        for rnd in sorted(by_round):
            print(json.dumps(summary(by_round[rnd], round=rnd)))
    elif mode == "late":
        due = {}
        with open(sys.argv[3]) as f:
            for line in f:
                if line.strip():
                    mid, ms = line.split()
                    due[mid] = int(ms)
        late, seen = [], set()
        for ns, wid, _body in records(path):
            if wid in due and wid not in seen:
                seen.add(wid)
                late.append(ns / 1e6 - due[wid])
        print(json.dumps(summary(late, expected=len(due)) if late else {"n": 0, "expected": len(due)}))
    else:
        sys.exit("mode must be e2e or late")


if __name__ == "__main__":
    main()
