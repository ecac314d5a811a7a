#!/bin/sh
# ctest packaging_deb: `cpack -G DEB` of the current build (no rebuild; about 10 s), then
#  - the control fields: name, version, the Depends computed by dpkg-shlibdeps;
#  - every dependency is satisfied by a package installed on this Debian 12 host (directly
#    or through Provides, as libspdlog1.10 provides libspdlog1.10-fmt9);
#  - a real `dpkg --root` install into an empty root whose dpkg database holds only those
#    dependencies (no --force-depends: an unsatisfiable Depends fails here), the postinst
#    creating user mq there, the files and their /usr paths, and a clean removal.
# usage: deb_test.sh BUILD_DIR OUT_DIR
set -eu
build=$1 out=$2
fail() { echo "FAIL: $*" >&2; exit 1; }
for tool in cpack dpkg dpkg-deb dpkg-query dpkg-shlibdeps; do
    command -v "$tool" >/dev/null 2>&1 || { echo "$tool not installed (Debian dpkg-dev): .deb NOT checked"; exit 77; }
done

rm -rf "$out"
mkdir -p "$out"
cpack -G DEB -B "$out" --config "$build/CPackConfig.cmake" >"$out/cpack.log" 2>&1 ||
    { cat "$out/cpack.log"; fail "cpack -G DEB"; }
deb=$(ls "$out"/mq_*.deb 2>/dev/null | head -1)
[ -n "$deb" ] || fail "no mq_*.deb in $out"
echo "built $(basename "$deb") ($(du -k "$deb" | cut -f1) KiB)"

[ "$(dpkg-deb -f "$deb" Package)" = mq ] || fail "Package is not mq"
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$build/CMakeCache.txt")
[ "$(dpkg-deb -f "$deb" Version)" = "$version" ] || fail "Version is not the project's $version"
depends=$(dpkg-deb -f "$deb" Depends)
for lib in libhiredis0.14 libpqxx-6.4 libyaml-cpp0.7 libcurl4 libssl3 tzdata; do
    case ", $depends," in *", $lib "* | *", $lib,"*) ;; *) fail "Depends lacks $lib: $depends" ;; esac
done

# Each dependency -> the installed package that satisfies it (itself or a provider).
providers=""
for dep in $(echo "$depends" | tr ',' '\n' | sed 's/|.*//; s/ //g'); do
    name=${dep%%(*}
    if [ "$(dpkg-query -W -f '${db:Status-Status}' "$name" 2>/dev/null)" = installed ]; then
        pkg=$name
        case $dep in
            *"("*)
                op=$(echo "$dep" | sed 's/.*(\([<>=]*\).*/\1/')
                want=$(echo "$dep" | sed 's/.*([<>=]*\(.*\))/\1/')
                have=$(dpkg-query -W -f '${Version}' "$name")
                case $op in '>=') op=ge ;; '<=') op=le ;; '>>') op=gt ;; '<<') op=lt ;; '=') op=eq ;; esac
                dpkg --compare-versions "$have" "$op" "$want" || fail "$name $have does not satisfy $dep"
                ;;
        esac
    else
        pkg=$(dpkg-query -W -f '${db:Status-Status} ${Package} ${Provides}\n' |
            awk -v n="$name" '$1 == "installed" { for (i = 3; i <= NF; i++) { p = $i; sub(/,$/, "", p);
                if (p == n) { print $2; exit } } }')
        [ -n "$pkg" ] || fail "dependency $dep: no installed package is or provides $name"
    fi
    providers="$providers $pkg"
done

# Install into an empty root. Its dpkg database knows only the dependencies (empty file lists).
root=$out/root
admin=$root/var/lib/dpkg
mkdir -p "$admin/info" "$admin/updates" "$root/etc"
# shellcheck disable=SC2086
dpkg-query -s $providers >"$admin/status"
for p in $providers; do
    arch=$(dpkg-query -W -f '${Architecture}' "$p")
    if [ "$arch" = all ]; then : >"$admin/info/$p.list"; else : >"$admin/info/$p:$arch.list"; fi
done
: >"$root/etc/passwd"
: >"$root/etc/group"
# Maintainer scripts run outside the root with DPKG_ROOT set (the postinst honours it).
dpkg --root="$root" --force-not-root --force-script-chrootless -i "$deb" >"$out/dpkg.log" 2>&1 ||
    { cat "$out/dpkg.log"; fail "dpkg --root -i"; }
dpkg --root="$root" -s mq | grep -q '^Status: install ok installed' || fail "mq not installed"
for f in usr/bin/mqctl usr/bin/mq-worker usr/bin/mq-api usr/share/man/man1/mqctl.1 \
    usr/share/bash-completion/completions/mqctl usr/share/zsh/vendor-completions/_mqctl \
    usr/lib/systemd/system/mq-api.service usr/lib/systemd/system/mq-worker@.service \
    usr/lib/sysusers.d/mq.conf usr/share/doc/mq/examples/worker.yaml usr/share/doc/mq/deploy.md; do
    [ -s "$root/$f" ] || fail "/$f not installed"
done
grep -qx 'ExecStart=/usr/bin/mq-api --config %E/mq/mq.yaml' "$root/usr/lib/systemd/system/mq-api.service" ||
    fail "mq-api.service does not start /usr/bin/mq-api"
if grep -rl "_CPack_Packages\|$build" "$root/usr/lib" "$root/usr/share" 2>/dev/null | head -1 | grep -q .; then
    fail "an installed file names the build tree"
fi
"$root/usr/bin/mqctl" --version >/dev/null || fail "the packaged mqctl does not run"
if command -v systemd-sysusers >/dev/null 2>&1; then
    grep -q '^mq:' "$root/etc/passwd" || fail "postinst did not create user mq (systemd-sysusers)"
else
    echo "systemd-sysusers absent: postinst user creation NOT checked"
fi
dpkg --root="$root" --force-not-root --force-script-chrootless -r mq >>"$out/dpkg.log" 2>&1 ||
    { cat "$out/dpkg.log"; fail "dpkg --root -r"; }
[ ! -e "$root/usr/bin/mq-api" ] || fail "dpkg -r left /usr/bin/mq-api"
rm -rf "$root" "$out/_CPack_Packages"
echo "installed and removed cleanly: Depends: $depends"
