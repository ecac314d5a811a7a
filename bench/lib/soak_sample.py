"""Sampler for bench/soak: every EVERY seconds from START (a Unix time) until DURATION
has passed, reads Redis and the bench's own counters and appends one tab-separated row
to OUT (and prints it to stderr as it goes). Standard library only.

    soak_sample.py --redis-port P --streams S1,S2 --groups log,pull --start T
                   --every 30 --duration 600 --progress FILE --pull-stats FILE
                   --worker-metrics URL --out FILE

Row (the first line of OUT names the columns):
    t_s used_memory used_memory_rss xlen xlen_parts
    <group>_lag <group>_pending (per group, summed over the streams)
    published log_acked pull_acked used_memory_min used_memory_max
t_s is the scheduled sample time (0, EVERY, 2*EVERY, ... DURATION); used_memory and
used_memory_rss from INFO memory, the median of --memory-readings readings spread over
--memory-window seconds ending at t_s (default 11 over 2 s: two periods of the trimmer, which runs every
second, so a sample is not decided by where in that sawtooth it fell; the min and max of
the window are the last two columns); xlen the sum of XLEN over the partition streams, xlen_parts each of them
("+"-joined); lag and pending from XINFO GROUPS (lag: entries not yet delivered to the
group; "?" when Redis cannot tell: entries the group had not read were trimmed and it
has not caught up yet); published = publishes answered 2xx so far
(lib/soak_publish.c's progress file); log_acked from mq-worker's /metrics
(mq_worker_deliveries_total outcome="acked"); pull_acked from lib/soak_pull.py's stats.
"""
import argparse
import json
import sys
import time
import urllib.request

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from resp import Redis  # noqa: E402


def info_memory(r):
    text = r.call("INFO", "memory").decode()
    out = {}
    for line in text.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            out[k] = v.strip()
    return int(out["used_memory"]), int(out["used_memory_rss"])


def memory_window(r, readings, span):
    """(median used, median rss, min used, max used) of `readings` INFO memory calls spread
    evenly over `span` seconds."""
    vals = []
    for i in range(readings):
        vals.append(info_memory(r))
        if i + 1 < readings:
            time.sleep(span / (readings - 1))
    used = sorted(v[0] for v in vals)
    rss = sorted(v[1] for v in vals)
    return used[len(used) // 2], rss[len(rss) // 2], used[0], used[-1]


def groups(r, stream):
    """{name: (lag or None, pending)} for one stream; {} when the stream does not exist.
    Redis gives no lag once entries a group had not read were trimmed or deleted; a group
    whose last-delivered-id is the stream's last-generated-id has nothing left (lag 0)."""
    try:
        reply = r.call("XINFO", "GROUPS", stream)
        info = r.call("XINFO", "STREAM", stream)
    except Exception:
        return {}
    last = dict(zip(info[0::2], info[1::2])).get(b"last-generated-id")
    out = {}
    for g in reply:
        d = {g[i].decode(): g[i + 1] for i in range(0, len(g) - 1, 2)}
        name = d["name"].decode()
        lag = d.get("lag")
        if lag is None and d.get("last-delivered-id") == last:
            lag = 0
        out[name] = (lag, int(d.get("pending", 0)))
    return out


def read_first(path, default=""):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def worker_acked(url):
    try:
        text = urllib.request.urlopen(url, timeout=5).read().decode()
    except Exception:
        return "?"
    total = 0
    for line in text.splitlines():
        if line.startswith("mq_worker_deliveries_total") and 'outcome="acked"' in line:
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--redis-port", type=int, required=True)
    p.add_argument("--streams", required=True)
    p.add_argument("--groups", required=True)
    p.add_argument("--start", type=float, required=True)
    p.add_argument("--every", type=float, required=True)
    p.add_argument("--duration", type=float, required=True)
    p.add_argument("--progress", required=True)
    p.add_argument("--pull-stats", required=True)
    p.add_argument("--worker-metrics", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--memory-readings", type=int, default=11)
    p.add_argument("--memory-window", type=float, default=2.0)
    a = p.parse_args()
    streams = a.streams.split(",")
    names = a.groups.split(",")
    r = Redis(port=a.redis_port)
    cols = ["t_s", "used_memory", "used_memory_rss", "xlen", "xlen_parts"]
    for n in names:
        cols += [n + "_lag", n + "_pending"]
    cols += ["published", "log_acked", "pull_acked", "used_memory_min", "used_memory_max"]
    with open(a.out, "w") as f:
        f.write("\t".join(cols) + "\n")
    k = 0
    while k * a.every <= a.duration + 1e-9:
        t = k * a.every
        # The window ends at the sample time, so the last one (t = DURATION) still sees the
        # publisher running; the first starts at the start.
        delay = a.start + max(0.0, t - a.memory_window) - time.time()
        if delay > 0:
            time.sleep(delay)
        used, rss, used_min, used_max = memory_window(r, max(1, a.memory_readings),
                                                      a.memory_window)
        lens = [int(r.call("XLEN", s)) for s in streams]
        lag = {n: 0 for n in names}
        pending = {n: 0 for n in names}
        for s in streams:
            for n, (lg, pd) in groups(r, s).items():
                if n not in lag:
                    continue
                if lg is None or lag[n] == "?":
                    lag[n] = "?"
                else:
                    lag[n] += int(lg)
                pending[n] += pd
        progress = read_first(a.progress, "0 0 0 0").split()
        published = progress[1] if len(progress) > 1 else "0"
        try:
            pull_acked = json.loads(read_first(a.pull_stats, "{}")).get("acked", 0)
        except ValueError:
            pull_acked = "?"
        row = ["%g" % t, str(used), str(rss), str(sum(lens)), "+".join(map(str, lens))]
        for n in names:
            row += [str(lag[n]), str(pending[n])]
        row += [published, str(worker_acked(a.worker_metrics)), str(pull_acked)]
        row += [str(used_min), str(used_max)]
        with open(a.out, "a") as f:
            f.write("\t".join(row) + "\n")
        print("soak: t=%4ds used_memory %.1f MB (%.1f-%.1f), stream length %s, published %s, acked log %s"
              " pull %s" % (t, used / 1048576, used_min / 1048576, used_max / 1048576, sum(lens),
                            published, row[-4], row[-3]), file=sys.stderr, flush=True)
        k += 1


if __name__ == "__main__":
    main()
