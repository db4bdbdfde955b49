#!/usr/bin/env bash
# The Debian package as a user installs it: builds it with cpack from the build directory (the
# crowdgate binary must be built), unpacks it with dpkg-deb -x (no root, nothing installed) and checks
#   - the binary in /usr/bin answers --version, creates a fresh SQLite database, and `serve` on it
#     answers GET /readyz 200 {"status": "ready"};
#   - the systemd unit runs `crowdgate serve` as the crowdgate user, with /etc/default/crowdgate,
#     its state directory, hardening and a restart policy; the env file is a conffile (mode 0600);
#   - the maintainer scripts are there and create the user; the dependencies name the shared
#     libraries the binary links (dpkg-shlibdeps) and adduser.
# Usage: deb_package_test.sh BUILD_DIR
set -euo pipefail

build_dir=$(cd "$1" && pwd)
work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cpack -G DEB -B "$work/out" --config "$build_dir/CPackConfig.cmake" >"$work/cpack.log" 2>&1 ||
  { cat "$work/cpack.log" >&2; fail "cpack failed"; }
debs=("$work"/out/crowdgate_*.deb)
[ -f "${debs[0]}" ] || fail "no crowdgate_*.deb in $(ls "$work/out")"
deb=${debs[0]}
echo "package: $(basename "$deb")"

# The control data.
info=$(dpkg-deb -I "$deb")
echo "$info" | grep -E '^ (Package|Version|Architecture|Depends):'
echo "$info" | grep -q '^ Package: crowdgate$' || fail "Package is not crowdgate"
depends=$(echo "$info" | sed -n 's/^ Depends: //p')
for lib in libc6 libstdc\\+\\+6 libsqlite3 libpq libpqxx libssl libyaml-cpp adduser; do
  echo "$depends" | grep -Eq "(^|, )$lib" || fail "Depends lacks $lib: $depends"
done
mkdir "$work/control"
dpkg-deb -e "$deb" "$work/control"
for f in postinst prerm postrm conffiles; do [ -f "$work/control/$f" ] || fail "control.tar lacks $f"; done
grep -qx '/etc/default/crowdgate' "$work/control/conffiles" || fail "/etc/default/crowdgate is not a conffile"
grep -q 'adduser --system' "$work/control/postinst" || fail "postinst does not create the system user"
for f in postinst prerm postrm; do
  [ -x "$work/control/$f" ] || fail "$f is not executable"
  sh -n "$work/control/$f" || fail "$f is not valid sh"
done

# The files.
root="$work/root"
dpkg-deb -x "$deb" "$root"
bin="$root/usr/bin/crowdgate"
unit="$root/lib/systemd/system/crowdgate.service"
envfile="$root/etc/default/crowdgate"
[ -x "$bin" ] || fail "no /usr/bin/crowdgate"
if readelf -S "$bin" | grep -q '\.debug_info'; then fail "/usr/bin/crowdgate is not stripped"; fi
[ -f "$root/usr/share/doc/crowdgate/README.md" ] || fail "no /usr/share/doc/crowdgate/README.md"
[ -f "$unit" ] || fail "no /lib/systemd/system/crowdgate.service"
[ -f "$envfile" ] || fail "no /etc/default/crowdgate"
mode=$(dpkg-deb -c "$deb" | awk '$NF == "./etc/default/crowdgate" {print $1}')
[ "$mode" = "-rw-------" ] || fail "/etc/default/crowdgate has mode $mode, not -rw-------"
for line in 'User=crowdgate' 'EnvironmentFile=-/etc/default/crowdgate' 'StateDirectory=crowdgate' \
            'Restart=on-failure' 'NoNewPrivileges=yes' 'ProtectSystem=strict' 'ReadWritePaths=/var/lib/crowdgate' \
            'PrivateTmp=yes' 'WantedBy=multi-user.target'; do
  grep -qx "$line" "$unit" || fail "the unit lacks '$line'"
done
grep -q '^ExecStart=/usr/bin/crowdgate serve ' "$unit" || fail "the unit does not run /usr/bin/crowdgate serve"
for name in CROWDGATE_DB CROWDGATE_REQUESTER_TOKEN CROWDGATE_HOST CROWDGATE_PORT CROWDGATE_SERVE_ARGS; do
  grep -q "$name=" "$envfile" || fail "the env file does not document $name"
done
grep -q -- '--public-url' "$envfile" || fail "the env file does not mention --public-url"

# The installed binary runs.
version=$("$bin" --version)
echo "$version"
[[ "$version" =~ ^crowdgate\ [0-9]+\.[0-9]+\.[0-9]+\ \(commit\ ([0-9a-f]+|unknown)\)$ ]] || fail "--version printed '$version'"
db="$work/x.db"
"$bin" --db "$db" qual create vetted >/dev/null || fail "qual create on a fresh database failed"
"$bin" --db "$db" serve --port 0 2>"$work/serve.err" &
server_pid=$!
port=""
for _ in $(seq 1 200); do
  port=$(sed -n 's/.*serving on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/serve.err")
  [ -n "$port" ] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/serve.err" >&2; fail "serve exited"; }
  sleep 0.05
done
[ -n "$port" ] || fail "serve did not say where it listens: $(cat "$work/serve.err")"
ready=$(/usr/bin/python3 -c '
import sys, urllib.request
with urllib.request.urlopen("http://127.0.0.1:%s/readyz" % sys.argv[1], timeout=10) as r:
    print(r.status, r.read().decode())' "$port")
echo "GET /readyz: $ready"
[ "$ready" = '200 {"status":"ready"}' ] || fail "GET /readyz answered '$ready'"
echo "deb_package_test: ok"
