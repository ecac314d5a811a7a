# Helpers shared by the worker benchmarks (source after lib/common.sh):
# private services, mqctl wrapper, mq-worker lookup, free ports, process cleanup.
# shellcheck shell=bash

# Prints the path of mq-worker (MQ_WORKER, or MQ_BUILD_DIR/apps/mq-worker/mq-worker).
find_worker() {
    local bin build=${MQ_BUILD_DIR:-build}
    if [ -n "${MQ_WORKER:-}" ]; then
        bin=$MQ_WORKER
    else
        case $build in /*) ;; *) build=$ROOT_DIR/$build ;; esac
        bin=$build/apps/mq-worker/mq-worker
    fi
    [ -x "$bin" ] || die "mq-worker is not built: no executable at $bin
  build it with 'make build', or point MQ_BUILD_DIR at another build directory, or MQ_WORKER at the binary"
    echo "$bin"
}

export PYTHONDONTWRITEBYTECODE=1 # keep bench/lib free of __pycache__

WORK=
BG_PIDS=()
cleanup() {
    local rc=$? p
    for p in "${BG_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${BG_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    if [ -n "$WORK" ] && [ -d "$WORK" ]; then
        "$ROOT_DIR/scripts/mq-services" stop "$WORK/services" >/dev/null 2>&1 || true
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start_services() {
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/mq-bench.XXXXXX")
    mkdir -p "$WORK/services"
    note "starting redis-server and PostgreSQL in $WORK"
    if ! MQ_SERVICES_FAST=1 "$ROOT_DIR/scripts/mq-services" start "$WORK/services" \
        >"$WORK/services.log" 2>&1; then
        cat "$WORK/services.log" >&2
        die "could not start the services (scripts/mq-services start)"
    fi
    env_val() { sed -n "s/^$1=//p" "$WORK/services/env" | tail -n 1; }
    REDIS_URL=$(env_val REDIS_URL)
    DATABASE_URL=$(env_val DATABASE_URL)
    REDIS_PORT=$(env_val MQ_REDIS_PORT)
    if [ -z "$REDIS_URL" ] || [ -z "$DATABASE_URL" ] || [ -z "$REDIS_PORT" ]; then
        die "no REDIS_URL/DATABASE_URL/MQ_REDIS_PORT in $WORK/services/env"
    fi
    export REDIS_URL DATABASE_URL
}

rcli() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }

mq() {
    local out
    if ! out=$("$MQCTL_BIN" "$@" 2>"$WORK/mqctl.err"); then
        echo "$out" >&2
        cat "$WORK/mqctl.err" >&2
        die "mqctl $* failed"
    fi
    printf '%s\n' "$out"
}

json_get() { # field <json -> value (top level)
    python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("0.0.0.0", 0)); print(s.getsockname()[1])'
}

wait_file() { # file seconds -> dies unless the file appears in time
    for _ in $(seq 1 $(($2 * 20))); do
        [ -s "$1" ] && return 0
        sleep 0.05
    done
    die "timed out waiting for $1"
}

# Starts the webhook sink (lib/sink.py) in the background; sets SINK_PID, SINK_PORT.
# shellcheck disable=SC2120 # arguments are optional
start_sink() { # [extra sink.py args...]
    rm -f "$WORK/sink.port"
    python3 "$BENCH_DIR/lib/sink.py" --port-file "$WORK/sink.port" "$@" &
    SINK_PID=$!
    BG_PIDS+=("$SINK_PID")
    wait_file "$WORK/sink.port" 10
    # shellcheck disable=SC2034 # used by the callers
    SINK_PORT=$(cat "$WORK/sink.port")
}

stop_pid() { # pid [timeout s] -> TERM, wait, KILL after the timeout
    local p=$1 t=${2:-30}
    kill -TERM "$p" 2>/dev/null || return 0
    for _ in $(seq 1 $((t * 10))); do
        kill -0 "$p" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
}

# Writes a worker config for one webhook subscription; args: file queue sub port url conc batch
write_worker_config() {
    cat >"$1" <<YAML
tenant: default
metrics_port: $4
shutdown_timeout: 5s
subscriptions:
  - queue: $2
    name: $3
    start_from: earliest
    concurrency: $6
    batch_size: $7
    retry:
      max_attempts: 3
      initial_backoff: 1s
    handler:
      type: webhook
      url: $5
      timeout: 10s
YAML
}

# Writes a worker config for one `log` subscription (the trivial handler: one JSON line
# per message appended to a file, then ack); args: file queue sub port path conc batch
write_log_worker_config() {
    cat >"$1" <<YAML
tenant: default
metrics_port: $4
shutdown_timeout: 5s
subscriptions:
  - queue: $2
    name: $3
    start_from: earliest
    concurrency: $6
    batch_size: $7
    retry:
      max_attempts: 3
      initial_backoff: 1s
    handler:
      type: log
      path: $5
YAML
}

bench_header() { # name
    echo "mq bench/$1  $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "repo       HEAD $(git -C "$ROOT_DIR" rev-parse --short HEAD 2>/dev/null || echo unknown)$(
        [ -z "$(git -C "$ROOT_DIR" status --porcelain --untracked-files=no 2>/dev/null)" ] ||
            echo ' (working tree has local changes)')"
    echo "mqctl      $MQCTL_BIN (built $(date -r "$MQCTL_BIN" '+%Y-%m-%d %H:%M'))"
    if [ -x "$WORKER_BIN" ]; then
        echo "mq-worker  $WORKER_BIN (built $(date -r "$WORKER_BIN" '+%Y-%m-%d %H:%M'))$(
            [ -z "${STALE_SRC:-}" ] || echo "; WARNING: older than ${STALE_SRC#"$ROOT_DIR"/}")"
    fi
    echo "machine    $(nproc) CPU(s), $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
    echo "redis      $(redis-server --version | awk '{ print $3 }' | sed 's/v=//'), appendonly yes, appendfsync everysec"
}
