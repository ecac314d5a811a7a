#!/bin/sh
# ctest packaging_compose: `docker-compose config` (Debian's docker-compose; no engine needed)
# accepts compose.yaml, and the resolved file keeps what the deployment relies on: Redis with
# appendonly and noeviction, healthchecks, start order on health and on the migration, named
# volumes, and a worker file that mq-worker --check accepts.
# usage: compose_test.sh SOURCE_DIR [BUILD_DIR]
set -eu
src=$1
fail() { echo "FAIL: $*" >&2; exit 1; }
if ! command -v docker-compose >/dev/null 2>&1; then
    echo "docker-compose not installed (apt-get install docker-compose): compose.yaml NOT checked"
    exit 77
fi
cd "$src"
resolved=$(env -u POSTGRES_PASSWORD -u MQ_IMAGE docker-compose -f compose.yaml config 2>&1) ||
    fail "docker-compose config rejects compose.yaml: $resolved"

# One service's block of the resolved YAML (two-space indented under services:).
service() {
    echo "$resolved" | awk -v s="  $1:" '$0 == s {on = 1; next} on && /^  [^ ]/ {exit} on && /^[^ ]/ {exit} on'
}
for s in redis postgres migrate api worker; do
    [ -n "$(service $s)" ] || fail "no service $s"
done
for s in redis postgres api worker; do
    service $s | grep -q '^    healthcheck:' || fail "service $s has no healthcheck"
done
service redis | grep -qx -- '    - --appendonly' || fail "redis without --appendonly"
service redis | grep -A1 -x -- '    - --appendonly' | grep -qx -- '    - .yes.\{0,1\}' ||
    fail "redis --appendonly is not yes"
service redis | grep -A1 -x -- '    - --maxmemory-policy' | grep -qx -- '    - noeviction' ||
    fail "redis --maxmemory-policy is not noeviction"
service api | grep -q '3010/readyz' || fail "api healthcheck does not probe /readyz"
service worker | grep -q '9464/readyz' || fail "worker healthcheck does not probe its /readyz"
service migrate | grep -q 'mqctl db migrate' || fail "migrate does not run mqctl db migrate"
for s in api worker; do
    block=$(service $s)
    for dep in redis postgres; do
        echo "$block" | grep -A1 "^      $dep:" | grep -q 'condition: service_healthy' ||
            fail "$s does not wait for $dep to be healthy"
    done
    echo "$block" | grep -A1 '^      migrate:' | grep -q 'condition: service_completed_successfully' ||
        fail "$s does not wait for the migration"
done
for v in redis-data postgres-data worker-data; do
    echo "$resolved" | grep -q "^  $v:" || fail "named volume $v missing"
done
service redis | grep -q 'source: redis-data' || service redis | grep -q 'redis-data:/data' ||
    fail "redis data is not on the named volume"

# The worker file the compose stack mounts passes the worker's own validation.
if [ -n "${2:-}" ] && [ -x "$2/apps/mq-worker/mq-worker" ]; then
    MQ_KEYRING_FILE='' "$2/apps/mq-worker/mq-worker" --check --config packaging/compose/worker.yaml >/dev/null ||
        fail "mq-worker --check rejects packaging/compose/worker.yaml"
fi
echo "compose.yaml: accepted by docker-compose config"
