"""Pull consumer for bench/soak: pulls a `pull` subscription through mq-api's REST routes
and acks every message, until SIGTERM; standard library only.

    soak_pull.py --port P --sub ID --token T --stats FILE [--threads 2] [--batch 100]

Each thread holds one keep-alive connection and loops: POST .../pull
{"max_messages": BATCH, "wait_ms": 1000}, then POST .../ack {"receipts": [...]} for all
it got. When a pull returns less than half a batch the thread waits 20 ms before the
next one, so batches stay large at a steady rate instead of costing one request pair per
few messages. A connection error or a 5xx (mq-api restarting, say) is counted, and the
thread reconnects after 200 ms; the messages it held are redelivered by mq when their
lease runs out (counted as redelivered).

FILE is rewritten every 0.5 s and at the end with one JSON object:
    {"pulled", "acked", "lease_lost", "redelivered", "requests", "errors", "last_error"}
"""
import argparse
import http.client
import json
import os
import signal
import threading
import time

stop = threading.Event()
lock = threading.Lock()
stats = {"pulled": 0, "acked": 0, "lease_lost": 0, "redelivered": 0, "requests": 0, "errors": 0, "last_error": ""}


def add(**kw):
    with lock:
        for k, v in kw.items():
            if k == "last_error":
                stats[k] = v
            else:
                stats[k] += v


def write_stats(path):
    with lock:
        text = json.dumps(stats)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text + "\n")
    os.replace(tmp, path)


def consume(args):
    base = "/api/v1/mq/subscriptions/%s" % args.sub
    headers = {"Authorization": "Bearer " + args.token, "Content-Type": "application/json"}
    pull_body = json.dumps({"max_messages": args.batch, "wait_ms": 1000})
    conn = None

    def post(path, body):
        conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        add(requests=1)
        if resp.status >= 500:
            raise ConnectionError("HTTP %d %s" % (resp.status, data[:200].decode(errors="replace")))
        return resp.status, data

    while not stop.is_set():
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=35)
            status, data = post(base + "/pull", pull_body)
            if status != 200:
                add(errors=1, last_error="pull: HTTP %d %s" % (status, data[:200].decode(errors="replace")))
                time.sleep(0.2)
                continue
            messages = json.loads(data)["messages"]
            receipts = [m["receipt"] for m in messages]
            add(pulled=len(messages), redelivered=sum(1 for m in messages if m.get("delivery_count", 1) > 1))
            if receipts:
                status, data = post(base + "/ack", json.dumps({"receipts": receipts}))
                if status != 200:
                    add(errors=1, last_error="ack: HTTP %d %s" % (status, data[:200].decode(errors="replace")))
                else:
                    results = json.loads(data)["results"]
                    acked = sum(1 for r in results if r["status"] == "acked")
                    add(acked=acked, lease_lost=len(results) - acked)
            if len(messages) < args.batch // 2:
                time.sleep(0.02)
        except (OSError, http.client.HTTPException, ValueError, KeyError) as e:
            add(errors=1, last_error="%s: %s" % (type(e).__name__, e))
            if conn is not None:
                conn.close()
            conn = None
            time.sleep(0.2)
    if conn is not None:
        conn.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--sub", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--stats", required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=100)
    args = p.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threads = [threading.Thread(target=consume, args=(args,), daemon=True) for _ in range(args.threads)]
    for t in threads:
        t.start()
    while not stop.is_set():
        write_stats(args.stats)
        stop.wait(0.5)
    for t in threads:
        t.join(timeout=40)
    write_stats(args.stats)


if __name__ == "__main__":
    main()
