# Shared helpers for the scripts in bench/. Source it; it defines functions and
# the paths BENCH_DIR, ROOT_DIR and BENCH_OUT, nothing else.
#   BENCH_OUT   where results and cached inputs go (default bench/out, gitignored)
#   MQ_BUILD_DIR  build directory holding apps/mqctl/mqctl (default build)
#   MQCTL       the mqctl binary itself (overrides MQ_BUILD_DIR)
# shellcheck shell=bash

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROOT_DIR=$(cd "$BENCH_DIR/.." && pwd)
BENCH_OUT=${BENCH_OUT:-$BENCH_DIR/out}

die() {
    echo "${PROG:-bench}: error: $*" >&2
    exit 1
}
note() { echo "${PROG:-bench}: $*" >&2; }

require_tools() { # tool... -> dies naming every missing one
    local missing=() t
    for t in "$@"; do
        command -v "$t" >/dev/null 2>&1 || missing+=("$t")
    done
    [ ${#missing[@]} -eq 0 ] || die "missing: ${missing[*]} (run 'make deps')"
}

require_uint() { # name value -> dies unless value is a positive integer
    [[ $2 =~ ^[1-9][0-9]*$ ]] || die "$1 must be a positive integer, got '$2'"
}

# Prints the path of the mqctl binary, or dies saying how to build it.
find_mqctl() {
    local bin build=${MQ_BUILD_DIR:-build}
    if [ -n "${MQCTL:-}" ]; then
        bin=$MQCTL
    else
        case $build in /*) ;; *) build=$ROOT_DIR/$build ;; esac
        bin=$build/apps/mqctl/mqctl
    fi
    [ -x "$bin" ] || die "mqctl is not built: no executable at $bin
  build it with 'make build' (or: cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build build -j2),
  or point MQ_BUILD_DIR at another build directory, or MQCTL at the binary"
    echo "$bin"
}

# A source file under common/ or apps/ newer than the binary, if any: the
# binary may not be what the working tree would build.
newer_source() {
    find "$ROOT_DIR/common" "$ROOT_DIR/apps" -type f \( -name '*.cpp' -o -name '*.hpp' \
        -o -name '*.h' -o -name CMakeLists.txt \) -newer "$1" -print 2>/dev/null | head -n 1
}

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# Median of the numbers on stdin (mean of the middle two for an even count).
median() {
    sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "nan"; exit }
        if (NR % 2) printf "%.6f\n", v[(NR + 1) / 2]
        else printf "%.6f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# Integer with thousands separators: 1234567.8 -> 1,234,568
fmt_int() {
    awk -v x="$1" 'BEGIN {
        if (x == "nan" || x == "") { print "n/a"; exit }
        s = sprintf("%.0f", x); out = ""
        while (length(s) > 3) { out = "," substr(s, length(s) - 2) out; s = substr(s, 1, length(s) - 3) }
        print s out }'
}

# A number field of a flat JSON object: json_num FIELD <<< '{"FIELD": 12.5}'
json_num() {
    grep -o "\"$1\"[[:space:]]*:[[:space:]]*[-0-9.eE+]*" | head -n 1 | sed 's/.*:[[:space:]]*//'
}
