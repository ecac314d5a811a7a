-- wrk script: POST one message (or one batch, with BATCH=1 in the environment) per request.
-- Usage: wrk -s bench/lib/publish.lua ... URL   with env MQ_TOKEN and MQ_BODY_FILE.
local f = assert(io.open(os.getenv("MQ_BODY_FILE"), "rb"))
local body = f:read("*a")
f:close()
wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("MQ_TOKEN")

done = function(summary, latency, requests)
  io.write(string.format("MQ_RESULT requests=%d duration_us=%d errors=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
