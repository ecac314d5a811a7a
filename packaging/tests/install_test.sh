#!/bin/sh
# ctest packaging_install: `cmake --install` of the current build (no rebuild) into a fresh
# prefix ROOT/usr, then checks that every file the packaging promises is there and usable.
# The tree stays for packaging_systemd and packaging_completion (ctest fixture mq_installed).
# usage: install_test.sh BUILD_DIR ROOT
set -eu
build=$1 root=$2
prefix=$root/usr
fail() { echo "FAIL: $*" >&2; exit 1; }

rm -rf "$root"
mkdir -p "$root"
cmake --install "$build" --prefix "$prefix" >"$root/install.log" 2>&1 || { cat "$root/install.log"; fail "cmake --install"; }

for bin in mqctl mq-worker mq-api; do
    [ -x "$prefix/bin/$bin" ] || fail "$prefix/bin/$bin missing or not executable"
    out=$("$prefix/bin/$bin" --version) || fail "$bin --version exited $?"
    case $out in "$bin "[0-9]*) ;; *) fail "$bin --version printed '$out'" ;; esac
    page=$prefix/share/man/man1/$bin.1
    [ -s "$page" ] || fail "man page $page missing"
    grep -q "^\.TH \"\{0,1\}$(echo "$bin" | tr '[:lower:]' '[:upper:]')" "$page" || fail "$page has no .TH header"
    grep -q 'Print this help message' "$page" || fail "$page does not list the options from --help"
    grep -q '^\.SH "\{0,1\}SEE ALSO' "$page" || fail "$page lacks SEE ALSO (packaging/man)"
done
grep -q 'Subcommands' "$prefix/share/man/man1/mqctl.1" || fail "mqctl.1 lists no subcommands"

# mq-api --check validates without serving: 0 for a good file, 2 for a bad one.
cfg=$root/check.yaml
printf 'redis_url: redis://127.0.0.1:1/0\nlog_level: info\n' >"$cfg"
"$prefix/bin/mq-api" --check --config "$cfg" >/dev/null || fail "mq-api --check on a valid file"
printf 'log_level: loud\n' >"$cfg"
rc=0
"$prefix/bin/mq-api" --check --config "$cfg" >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "mq-api --check on a bad file exited $rc, want 2"

[ -s "$prefix/share/bash-completion/completions/mqctl" ] || fail "bash completion missing"
# Not /usr: zsh's site-functions (the .deb, installed under /usr, uses vendor-completions).
[ -s "$prefix/share/zsh/site-functions/_mqctl" ] || fail "zsh completion missing"

units=$prefix/lib/systemd/system
for unit in mq-api.service mq-worker@.service mq-maintenance.service; do
    [ -s "$units/$unit" ] || fail "unit $unit missing"
    if grep -q '@MQ_' "$units/$unit"; then fail "$unit has unreplaced @MQ_...@"; fi
done
# Units name the binaries of this prefix, not of the configure-time prefix.
grep -qx "ExecStart=$prefix/bin/mq-api --config %E/mq/mq.yaml" "$units/mq-api.service" ||
    fail "mq-api.service ExecStart does not point at $prefix/bin/mq-api"
grep -q "^ExecStartPre=$prefix/bin/mq-worker --check " "$units/mq-worker@.service" ||
    fail "mq-worker@.service has no ExecStartPre --check"
[ -s "$prefix/lib/sysusers.d/mq.conf" ] || fail "sysusers.d/mq.conf missing"

for f in mq.yaml worker.yaml subscriptions.yaml mq.env; do
    [ -s "$prefix/share/doc/mq/examples/$f" ] || fail "example $f missing"
done
[ -s "$prefix/share/doc/mq/README.md" ] || fail "README.md missing"
[ -s "$prefix/share/doc/mq/deploy.md" ] || fail "docs/deploy.md missing"
[ -s "$prefix/share/mq/prometheus/mq-rules.yml" ] || fail "prometheus/mq-rules.yml missing"
[ -s "$prefix/share/mq/grafana/mq-dashboard.json" ] || fail "grafana/mq-dashboard.json missing"
# The installed example worker file passes the installed worker's own check.
MQ_KEYRING_FILE='' "$prefix/bin/mq-worker" --check --config "$prefix/share/doc/mq/examples/worker.yaml" \
    >/dev/null || fail "mq-worker --check rejects the installed examples/worker.yaml"

# Nothing else: no static libraries, headers or test binaries in the tree.
extra=$(find "$prefix" -type f \( -name '*.a' -o -name '*.hpp' -o -name '*_tests' \) | head -3)
[ -z "$extra" ] || fail "unexpected files installed: $extra"
echo "installed into $prefix: $(find "$prefix" -type f | wc -l) files"
