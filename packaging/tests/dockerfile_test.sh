#!/bin/sh
# ctest packaging_dockerfile: no engine runs here, so a lint of what the Dockerfile promises:
# multi-stage on Debian 12, runtime stage without toolchain or -dev packages, a non-root USER,
# a HEALTHCHECK on mq-api's readiness probe (/readyz), the API port, an entrypoint; and a
# .dockerignore that keeps build trees out of the context. Every package the build stage installs is one
# `make deps` knows (DEB_PACKAGES), so the two lists cannot drift apart silently.
# usage: dockerfile_test.sh SOURCE_DIR
set -eu
src=$1
f=$src/Dockerfile
fail() { echo "FAIL: $*" >&2; exit 1; }
[ -s "$f" ] || fail "no Dockerfile"
# Instructions with continuation lines joined.
flat=$(sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$f" | grep -v '^[[:space:]]*#')

froms=$(echo "$flat" | grep -c '^FROM ')
[ "$froms" -ge 2 ] || fail "not multi-stage ($froms FROM)"
echo "$flat" | grep '^FROM ' | grep -qv 'debian:\${DEBIAN_RELEASE}\|debian:12' && fail "a stage is not Debian 12"
grep -q '^ARG DEBIAN_RELEASE=12$' "$f" || fail "DEBIAN_RELEASE is not 12"
runtime=$(echo "$flat" | awk '/^FROM /{n++} n == '"$froms"'')
echo "$runtime" | grep -q -- '-dev\b\|build-essential\|cmake' && fail "runtime stage installs build tools"
user=$(echo "$runtime" | sed -n 's/^USER[[:space:]]\{1,\}//p' | tail -1)
[ -n "$user" ] || fail "runtime stage has no USER"
case ${user%%:*} in root | 0) fail "runtime stage runs as root ($user)" ;; esac
echo "$runtime" | grep -q '^HEALTHCHECK .*CMD .*/readyz' ||
    fail "no HEALTHCHECK on /readyz"
echo "$runtime" | grep -q '^EXPOSE .*3010' || fail "port 3010 not exposed"
echo "$runtime" | grep -q '^ENTRYPOINT \[' || fail "no exec-form ENTRYPOINT"
echo "$runtime" | grep -q '^CMD \["mq-api"\]' || fail "default command is not mq-api"
echo "$runtime" | grep -q 'COPY --from=build' || fail "runtime stage copies nothing from the build"

ignore=$src/.dockerignore
[ -s "$ignore" ] || fail "no .dockerignore"
for p in .git build; do grep -qx "$p" "$ignore" || fail ".dockerignore does not exclude $p"; done

# Build-stage packages are known to `make deps`.
build_pkgs=$(echo "$flat" | awk '/^FROM /{n++} n == 1' | grep 'apt-get install' |
    sed 's/.*--no-install-recommends//; s/&&.*//' | tr ' ' '\n' | grep -v '^$')
known=$(sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$src/Makefile" | sed -n 's/^DEB_PACKAGES := //p' | tr -s '\t ' '  ')
for p in $build_pkgs; do
    case " $known " in *" $p "*) ;; *) fail "Dockerfile build stage installs $p, not in DEB_PACKAGES" ;; esac
done
echo "Dockerfile: $froms stages, USER $user, HEALTHCHECK on /readyz"
