#!/bin/sh
# ctest packaging_systemd: the installed units pass `systemd-analyze verify` (against the
# installed tree: ExecStart names PREFIX/bin, Documentation= man pages found through MANPATH)
# and `systemd-analyze security --offline=yes` rates each at exposure 3.0 or lower.
# examples/systemd/mq-worker.service (the single-file form) gets the same security check and
# must carry every hardening line of the template.
# usage: systemd_test.sh PREFIX SOURCE_DIR   (PREFIX: the tree of packaging_install)
set -eu
prefix=$(cd "$1" && pwd)
src=$2
fail() { echo "FAIL: $*" >&2; exit 1; }
if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "systemd-analyze not installed (apt-get install systemd): units NOT checked"
    exit 77
fi
units=$prefix/lib/systemd/system
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A template is verified as an instance; the instance file is the template's text.
cp "$units/mq-api.service" "$units/mq-maintenance.service" "$work/"
cp "$units/mq-worker@.service" "$work/mq-worker@billing.service"
export MANPATH="$prefix/share/man:"
export SYSTEMD_LOG_LEVEL=notice
cd "$work"
for unit in mq-api.service mq-worker@billing.service mq-maintenance.service; do
    out=$(systemd-analyze verify "./$unit" 2>&1) || fail "systemd-analyze verify $unit: $out"
    # verify exits 0 on some warnings; none are expected from our units.
    if echo "$out" | grep -q "$unit"; then fail "systemd-analyze verify $unit: $out"; fi
    report=$(systemd-analyze security --offline=yes --threshold=30 "./$unit" 2>&1) ||
        fail "systemd-analyze security $unit above 3.0: $(echo "$report" | tail -1)"
    level=$(echo "$report" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
    [ -n "$level" ] || fail "no exposure level for $unit: $report"
    awk -v l="$level" 'BEGIN { exit !(l <= 3.0) }' || fail "$unit exposure $level > 3.0"
    echo "$unit: verify ok, exposure $level"
done
# The service settings the issue asks for, per unit.
for unit in mq-api.service mq-worker@billing.service; do
    for want in KillMode=mixed RestartPreventExitStatus=2 'ExecStartPre=.* --check ' \
        'ExecReload=' LogsDirectory= StateDirectory= ConfigurationDirectory= \
        'EnvironmentFile=-/etc/mq/mq.env' 'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX' \
        'SystemCallFilter=@system-service' 'CapabilityBoundingSet=$' 'User=mq'; do
        grep -q "^$want" "$unit" || fail "$unit lacks $want"
    done
done
grep -q '^ExecStart=.*--config %E/mq/worker-%i.yaml$' mq-worker@billing.service ||
    fail "mq-worker@ does not read /etc/mq/worker-%i.yaml"

example=$src/examples/systemd/mq-worker.service
sed -n '/^# Hardening/,/^\[Install\]/p' mq-worker@billing.service | grep '^[A-Z]' |
    while IFS= read -r line; do
        grep -qxF -- "$line" "$example" || fail "$example lacks the template's '$line'"
    done
report=$(systemd-analyze security --offline=yes --threshold=30 "$example" 2>&1) ||
    fail "systemd-analyze security $example above 3.0: $(echo "$report" | tail -1)"
echo "examples/systemd/mq-worker.service: $(echo "$report" | tail -1)"
