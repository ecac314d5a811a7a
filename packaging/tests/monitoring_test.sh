#!/bin/sh
# ctest packaging_monitoring: the Prometheus rules and the Grafana dashboard that ship in
# packaging/ are valid and agree with the metrics the daemons serve.
#   - `promtool check rules` on packaging/prometheus/mq-rules.yml (no errors, no warnings)
#   - `promtool test rules`: every alert fires on the series that should raise it
#   - the dashboard is JSON, and each of its PromQL expressions parses (checked by promtool
#     as recording rules, with the dashboard variables filled in)
#   - every mq_ metric the rules and the dashboard name is documented in docs/metrics.md
# usage: monitoring_test.sh SOURCE_DIR WORK_DIR
set -eu
src=$1 work=$2
fail() { echo "FAIL: $*" >&2; exit 1; }
command -v promtool >/dev/null 2>&1 || fail "promtool not found: make deps installs the Debian package prometheus"
command -v python3 >/dev/null 2>&1 || { echo "SKIP: python3 not installed"; exit 77; }
rm -rf "$work"
mkdir -p "$work"

rules=$src/packaging/prometheus/mq-rules.yml
out=$(promtool check rules "$rules" 2>&1) || { echo "$out"; fail "promtool check rules $rules"; }
echo "$out"
case $out in *WARNING*|*warning*) fail "promtool check rules warns: $out" ;; esac
(cd "$src/packaging/prometheus" && promtool test rules mq-rules.test.yml) || fail "promtool test rules"

dashboard=$src/packaging/grafana/mq-dashboard.json
python3 - "$dashboard" "$work/dashboard-rules.yml" <<'PY' || fail "dashboard $dashboard"
import json, sys
d = json.load(open(sys.argv[1]))
assert d.get("uid") and d.get("title"), "dashboard without uid or title"
exprs = [t["expr"] for p in d["panels"] for t in p.get("targets", [])]
assert exprs, "dashboard without queries"
ids = [p["id"] for p in d["panels"]]
assert len(ids) == len(set(ids)), "duplicate panel ids"
with open(sys.argv[2], "w") as f:
    f.write("groups:\n  - name: dashboard\n    rules:\n")
    for i, e in enumerate(exprs):
        e = e.replace("$tenant", ".*").replace("$queue", ".*")
        f.write("      - record: dashboard:expr%d\n        expr: %s\n" % (i, json.dumps(e)))
PY
out=$(promtool check rules "$work/dashboard-rules.yml" 2>&1) || { echo "$out"; fail "a dashboard expression does not parse"; }

# Every mq_ family named in the rules or the dashboard is one docs/metrics.md describes.
names=$(cat "$rules" "$dashboard" | grep -o 'mq_[a-z_]*' | sed 's/_bucket$//' | sort -u)
[ -n "$names" ] || fail "no mq_ metric found in the rules and the dashboard"
for n in $names; do
    grep -q "\`$n\`\|\`$n{" "$src/docs/metrics.md" || fail "$n is used in packaging/ but not documented in docs/metrics.md"
done
echo "monitoring files OK"
