#!/usr/bin/env bash
# Builds the Debian package and puts it through an operator's life cycle on this machine
# (CI runs it from .ci/run, after the soak test):
#
#   1. `cargo deb --locked` (cargo-deb, pinned below, installed from crates.io if missing):
#      the release profile, target/release/invent-proxy, packaged as
#      target/debian/invent-proxy_<version>_amd64.deb. In CI the soak test has just
#      built that binary with the same `cargo build --release --locked`, so nothing is
#      compiled again: CI's .deb holds the release build it soak-tested;
#   2. the package inspected (dpkg-deb -I/-c): its name, control fields, conffiles,
#      maintainer scripts, and exactly the files and modes it should hold;
#   3. `dpkg -i`: the system user and group exist, the unit is in place and not enabled,
#      `invent-proxy check` passes on the installed config as installed (as the system
#      user, with the unit's environment file: no secrets), and with its identity block
#      turned back on as its comment says (dummy secrets);
#   4. the installed config edited as an operator would (the upstream: a python3
#      http.server on loopback serving an HTML page; free loopback ports), `dpkg -i`
#      again (an upgrade in place: the edited conffile is kept, the user too);
#   5. the installed unit's ExecStartPre and ExecStart run as it would run them (no
#      systemd as PID 1 here): as its User=/Group= by setpriv, no new privileges, its
#      EnvironmentFile loaded; /readyz, then one page fetched through the proxy must
#      carry the injected `<invent-assistant`; ExecReload (check, SIGHUP) and one more
#      page; SIGTERM (the unit's KillSignal) and a clean exit within TimeoutStopSec;
#   6. `dpkg -r` (binary and unit gone, config and user kept), then `dpkg --purge`:
#      no file, user, group or directory of the package left.
#
# Re-runnable: whatever it starts is stopped on exit, and a package it installed is
# purged; a copy of the package installed by someone else is never touched (it stops).
# Work files go to target/deb-check/.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
CARGO_DEB_VERSION=3.8.0
PKG=invent-proxy
WORK=$REPO/target/deb-check
STAMP=$WORK/installed-by-deb-check
mkdir -p "$WORK"

step() { echo "-- $*"; }
ok() { echo "  ok   $*"; }
die() {
  echo "  FAIL $*" >&2
  for log in "$WORK"/proxy.log "$WORK"/upstream.log; do
    [ -s "$log" ] && { echo "---- $log (last lines)" >&2; tail -n 20 "$log" >&2; }
  done
  exit 1
}

if [ "$(id -u)" != 0 ]; then
  echo "deploy/deb/check.sh installs a package and makes a system user: run it as root" >&2
  exit 1
fi

# Every process started here is a job of this shell; at exit, those still running go,
# and so does a package this script installed.
cleanup() {
  local pid pids
  pids=$(jobs -pr)
  for pid in $pids; do kill "$pid" 2>/dev/null || true; done
  for pid in $pids; do wait "$pid" 2>/dev/null || true; done
  if [ -e "$STAMP" ]; then
    dpkg --purge "$PKG" >/dev/null 2>&1 || true
    rm -f "$STAMP"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

installed() { [ "$(dpkg-query -W -f='${db:Status-Status}' "$PKG" 2>/dev/null)" != "" ] &&
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$PKG" 2>/dev/null)" != not-installed ]; }
if installed; then
  if [ -e "$STAMP" ]; then
    step "$PKG is still installed from an earlier run of this script: purging it"
    dpkg --purge "$PKG" >/dev/null
    rm -f "$STAMP"
  else
    echo "$PKG is installed on this machine, not by this script: it leaves it alone and stops" >&2
    exit 1
  fi
fi
if getent passwd "$PKG" >/dev/null || getent group "$PKG" >/dev/null || [ -e /etc/invent-proxy ]; then
  echo "a user, group or /etc/invent-proxy named $PKG exists without the package: not a clean machine" >&2
  exit 1
fi

# Debian packages: curl (the fetches), python3 (the upstream), adduser (the package
# depends on it), setpriv (util-linux), strip (binutils, for cargo-deb), dpkg-shlibdeps
# (dpkg-dev: the package's library dependencies).
need_apt=()
command -v curl >/dev/null || need_apt+=(curl)
command -v python3 >/dev/null || need_apt+=(python3)
command -v adduser >/dev/null || need_apt+=(adduser)
command -v setpriv >/dev/null || need_apt+=(util-linux)
command -v strip >/dev/null || need_apt+=(binutils)
command -v dpkg-shlibdeps >/dev/null || need_apt+=(dpkg-dev)
if [ ${#need_apt[@]} -gt 0 ]; then
  step "apt-get install ${need_apt[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_apt[@]}"
fi
if [ "$(cargo deb --version 2>/dev/null)" != "cargo-deb $CARGO_DEB_VERSION" ]; then
  step "cargo install cargo-deb --version $CARGO_DEB_VERSION --locked"
  cargo install cargo-deb --version "$CARGO_DEB_VERSION" --locked
fi
cargo deb --version

echo "== the package's config: the reference, made installable"
python3 deploy/deb/package-config.py --check

echo "== build: cargo deb --locked"
version=$(cargo metadata --no-deps --format-version 1 --locked |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["packages"][0]["version"])')
deb=target/debian/${PKG}_${version}_amd64.deb
rm -f "$deb"
started=$(date +%s)
cargo deb --locked
[ -f "$deb" ] || die "cargo deb did not write $deb"
ok "$deb ($(du -h "$deb" | cut -f1), $(($(date +%s) - started)) s, from target/release/invent-proxy)"

echo "== inspect: dpkg-deb -I / -c"
field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = "$PKG" ] || die "Package: $(field Package)"
[ "$(field Version)" = "$version" ] || die "Version: $(field Version), not $version"
[ "$(field Architecture)" = amd64 ] || die "Architecture: $(field Architecture)"
depends=$(field Depends)
[[ $depends == *libc6* ]] || die "Depends lacks libc6: $depends"
[[ $depends == *adduser* ]] || die "Depends lacks adduser (postinst): $depends"
ok "Package $PKG, Version $version, Architecture amd64, Depends: $depends"
control=$WORK/control
rm -rf "$control" && dpkg-deb -e "$deb" "$control"
printf '/etc/invent-proxy/invent-proxy.yaml\n/etc/invent-proxy/secrets.env\n' >"$WORK/conffiles.want"
sort "$control/conffiles" | diff -u "$WORK/conffiles.want" - || die "conffiles are not the two files in /etc/invent-proxy/"
ok "conffiles: $(tr '\n' ' ' <"$control/conffiles")"
for script in postinst postrm prerm; do
  [ -x "$control/$script" ] || die "no $script maintainer script"
  sh -n "$control/$script" || die "$script is not valid sh"
done
grep -q 'adduser --system' "$control/postinst" || die "postinst makes no system user"
grep -q 'deluser --system' "$control/postrm" || die "postrm removes no system user on purge"
# cargo-deb's snippets: with `start = false` the postinst only try-restarts on an upgrade;
# with `enable = false` it enables only a unit an admin had enabled before (checked on
# the installed package below).
# shellcheck disable=SC2016 # a literal $ in the pattern
if grep -Eq 'deb-systemd-invoke (start|\$_dh_action)' "$control/postinst"; then
  die "postinst starts the service on install"
fi
ok "postinst (system user, unit not enabled or started), prerm, postrm (user removed on purge) are valid sh"
# Every file, with its mode and owner: nothing more, nothing less.
dpkg-deb -c "$deb" | awk '$1 !~ /^d/ { print $1, $2, $6 }' | sort >"$WORK/files"
sort >"$WORK/files.want" <<'EOF'
-rw------- 0/0 ./etc/invent-proxy/secrets.env
-rw-r--r-- 0/0 ./etc/invent-proxy/invent-proxy.yaml
-rw-r--r-- 0/0 ./usr/lib/systemd/system/invent-proxy.service
-rw-r--r-- 0/0 ./usr/share/doc/invent-proxy/README.md
-rw-r--r-- 0/0 ./usr/share/doc/invent-proxy/copyright
-rw-r--r-- 0/0 ./usr/share/doc/invent-proxy/install.md
-rwxr-xr-x 0/0 ./usr/bin/invent-proxy
EOF
diff -u "$WORK/files.want" "$WORK/files" || die "the package's files are not the expected ones (above: - expected, + found)"
ok "files: /usr/bin/invent-proxy, the unit in /usr/lib/systemd/system, the config and secrets.env (0600) in /etc/invent-proxy, the docs"
dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/lib/systemd/system/invent-proxy.service |
  cmp - deploy/deb/invent-proxy.service || die "the packaged unit is not deploy/deb/invent-proxy.service"
ok "the packaged unit is deploy/deb/invent-proxy.service"

echo "== install: dpkg -i"
touch "$STAMP"
dpkg -i "$deb" >"$WORK/dpkg-i.log" 2>&1 || { cat "$WORK/dpkg-i.log" >&2; die "dpkg -i failed"; }
installed || die "dpkg -i left $PKG not installed"
/usr/bin/invent-proxy --version >/dev/null || die "/usr/bin/invent-proxy does not run"
IFS=: read -r _ _ uid gid _ home shell < <(getent passwd "$PKG") || die "no user $PKG"
[ "$uid" -lt 1000 ] || die "user $PKG has uid $uid: not a system user"
[ "$(getent group "$gid" | cut -d: -f1)" = "$PKG" ] || die "user $PKG's group is not $PKG"
[ "$shell" = /usr/sbin/nologin ] || die "user $PKG has the shell $shell"
[ ! -e "$home" ] || die "user $PKG has a home directory $home"
ok "system user $PKG (uid $uid, group $PKG, no home, $shell)"
unit=/usr/lib/systemd/system/$PKG.service
[ -f "$unit" ] || die "no $unit"
! compgen -G "/etc/systemd/system/*.wants/$PKG.service" >/dev/null || die "the unit was enabled on install"
ok "$unit installed, not enabled"
[ "$(stat -c '%a %U' /etc/invent-proxy/secrets.env)" = "600 root" ] || die "secrets.env is not 0600 root"

# The unit's settings that running it here needs.
unit_value() { sed -n "s/^$1=//p" "$unit"; }
user=$(unit_value User) group=$(unit_value Group) env_file=$(unit_value EnvironmentFile)
start_pre=$(unit_value ExecStartPre) start=$(unit_value ExecStart)
reload_check=$(unit_value ExecReload | head -n 1)
stop_timeout=$(unit_value TimeoutStopSec) stop_timeout=${stop_timeout%s}
[ "$user" = "$PKG" ] && [ "$group" = "$PKG" ] || die "the unit runs as $user:$group, not the package's user"
[ "$(unit_value KillSignal)" = SIGTERM ] || die "the unit's KillSignal is not SIGTERM"
config=$(sed -n 's/.*--config \([^ ]*\).*/\1/p' <<<"$start")
[ "$config" = /etc/invent-proxy/invent-proxy.yaml ] || die "ExecStart reads $config"
for command in "$start_pre" "$start" "$reload_check"; do
  [[ $command == /usr/bin/invent-proxy\ * ]] || die "the unit runs $command, not /usr/bin/invent-proxy"
done

# A command as the unit would run it: its environment file read as root (systemd reads
# it before dropping privileges; set -a exports its NAME=value lines) and nothing else
# of this shell's environment, then as the unit's user and group, no supplementary
# groups, no new privileges (setpriv execs the command: its PID is the command's).
# shellcheck disable=SC2016 # expanded by that sh
as_unit=(env -i PATH=/usr/bin:/bin sh -c
  'u=$1 g=$2; shift 2; set -a; . "$0"; set +a; exec setpriv --reuid="$u" --regid="$g" --clear-groups --no-new-privs -- "$@"'
  "$env_file" "$user" "$group")
as_unit() { "${as_unit[@]}" "$@"; }
# shellcheck disable=SC2086 # the unit's command lines, split on spaces as systemd does here
as_unit $start_pre >"$WORK/check.out" 2>&1 || { cat "$WORK/check.out" >&2; die "invent-proxy check fails on the config as installed"; }
ok "ExecStartPre as $user: \`${start_pre#/usr/bin/}\` passes on the config as installed, no secrets set"
sed 's/^/         /' "$WORK/check.out" | grep 'warning:' || true
if as_unit cat /etc/invent-proxy/secrets.env >/dev/null 2>&1; then
  die "user $user can read secrets.env"
fi
ok "secrets.env is not readable by $user"
python3 deploy/deb/package-config.py --uncomment "$config" >"$WORK/identity-on.yaml"
env -i PATH=/usr/bin:/bin INVENT_SECRET_KEY=dummy-secret SESSION_JWT_SECRET=dummy-jwt-secret \
  /usr/bin/invent-proxy check --config "$WORK/identity-on.yaml" >"$WORK/check-identity.out" 2>&1 ||
  { cat "$WORK/check-identity.out" >&2; die "the installed config with its identity block turned on does not pass check"; }
grep -q '^  session JWT:' "$WORK/check-identity.out" || { cat "$WORK/check-identity.out" >&2; die "identity is not on"; }
ok "the installed config with its identity block turned on (as its comment says) passes check"

echo "== configure: the config edited for a loopback upstream, then dpkg -i again"
read -r P_PROXY P_ADMIN P_UPSTREAM < <(python3 - <<'EOF'
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
EOF
)
python3 - "$config" "$P_PROXY" "$P_ADMIN" "$P_UPSTREAM" <<'EOF'
import sys
path, proxy, admin, upstream = sys.argv[1:]
text = open(path).read()
for old, new in (("\nlisten: 0.0.0.0:8080\n", f"\nlisten: 127.0.0.1:{proxy}\n"),
                 ("\n  listen: 127.0.0.1:9090\n", f"\n  listen: 127.0.0.1:{admin}\n"),
                 ("\n  url: http://127.0.0.1:3000\n", f"\n  url: http://127.0.0.1:{upstream}\n")):
    if text.count(old) != 1:
        sys.exit(f"{path}: {old.strip()!r} is not there exactly once")
    text = text.replace(old, new)
open(path, "w").write(text)
EOF
cp "$config" "$WORK/edited.yaml"
dpkg -i "$deb" >"$WORK/dpkg-i-again.log" 2>&1 || { cat "$WORK/dpkg-i-again.log" >&2; die "dpkg -i over the installed package failed"; }
cmp -s "$config" "$WORK/edited.yaml" || die "dpkg -i again replaced the edited conffile"
[ "$(id -u "$PKG")" = "$uid" ] || die "dpkg -i again changed the user"
ok "edited: listen 127.0.0.1:$P_PROXY, admin 127.0.0.1:$P_ADMIN, upstream 127.0.0.1:$P_UPSTREAM; kept by dpkg -i again, user unchanged"

echo "== run: the installed unit's commands, as its user, in front of a loopback upstream"
site=$WORK/site
rm -rf "$site" && mkdir -p "$site"
cat >"$site/index.html" <<'EOF'
<!doctype html>
<html><head><meta charset="utf-8"><title>Packaged</title></head>
<body><h1>A page behind the installed package</h1></body></html>
EOF
python3 -m http.server "$P_UPSTREAM" --bind 127.0.0.1 --directory "$site" >"$WORK/upstream.log" 2>&1 &
# shellcheck disable=SC2086
as_unit $start_pre >"$WORK/check.out" 2>&1 || { cat "$WORK/check.out" >&2; die "ExecStartPre fails on the edited config"; }
# shellcheck disable=SC2086
"${as_unit[@]}" $start >"$WORK/proxy.log" 2>&1 &
proxy_pid=$!
ready=
for _ in $(seq 1 100); do
  if curl -fsS -o /dev/null "http://127.0.0.1:$P_ADMIN/readyz" 2>/dev/null &&
    curl -fsS -o /dev/null "http://127.0.0.1:$P_UPSTREAM/" 2>/dev/null; then
    ready=1 && break
  fi
  kill -0 "$proxy_pid" 2>/dev/null || die "the proxy exited at start"
  sleep 0.2
done
[ -n "$ready" ] || die "the proxy (or the upstream) was not ready within 20 s"
owner=$(awk '/^Uid:/ { print $2, $3 }' "/proc/$proxy_pid/status")
exe=$(readlink "/proc/$proxy_pid/exe")
[ "$owner" = "$uid $uid" ] && [ "$exe" = /usr/bin/invent-proxy ] ||
  die "process $proxy_pid is $exe with real and effective uid $owner, not /usr/bin/invent-proxy as $PKG ($uid)"
[ "$(awk '/^NoNewPrivs:/ { print $2 }' "/proc/$proxy_pid/status")" = 1 ] || die "the proxy may gain privileges"
owner=$PKG
ok "ExecStart as $owner: /readyz answers 200"
fetch() {
  curl -fsS "http://127.0.0.1:$P_PROXY/" -o "$WORK/page.html" || die "GET / through the proxy failed"
  grep -q 'A page behind the installed package' "$WORK/page.html" || die "the page did not come through"
  [ "$(grep -o '<invent-assistant' "$WORK/page.html" | wc -l)" = 1 ] ||
    { cat "$WORK/page.html" >&2; die "the page does not carry exactly one injected <invent-assistant"; }
}
fetch
ok "GET / through the proxy: the upstream's page with one <invent-assistant injected"
# ExecReload: check, then SIGHUP to the main process.
# shellcheck disable=SC2086
as_unit $reload_check >/dev/null 2>&1 || die "ExecReload's check fails"
kill -HUP "$proxy_pid"
reloaded=
for _ in $(seq 1 50); do
  grep -q 'config reloaded' "$WORK/proxy.log" && { reloaded=1 && break; }
  kill -0 "$proxy_pid" 2>/dev/null || die "the proxy exited on SIGHUP"
  sleep 0.2
done
[ -n "$reloaded" ] || die "no 'config reloaded' in the proxy's log within 10 s of SIGHUP"
fetch
ok "ExecReload (check, SIGHUP): config reloaded, the widget still injected"
kill -TERM "$proxy_pid"
stopped=
for _ in $(seq 1 $((stop_timeout * 5))); do
  kill -0 "$proxy_pid" 2>/dev/null || { stopped=1 && break; }
  sleep 0.2
done
[ -n "$stopped" ] || die "the proxy did not stop within TimeoutStopSec ${stop_timeout}s of SIGTERM"
status=0 && wait "$proxy_pid" || status=$?
[ "$status" = 0 ] || die "the proxy exited with $status on SIGTERM"
ok "SIGTERM: exited 0"

echo "== remove, then purge"
dpkg -r "$PKG" >"$WORK/dpkg-r.log" 2>&1 || { cat "$WORK/dpkg-r.log" >&2; die "dpkg -r failed"; }
if [ -e /usr/bin/invent-proxy ] || [ -e "$unit" ]; then die "dpkg -r left the binary or the unit"; fi
if [ ! -f "$config" ] || ! getent passwd "$PKG" >/dev/null; then
  die "dpkg -r removed the config or the user (a purge's job)"
fi
ok "dpkg -r: binary and unit gone, config and user kept"
dpkg --purge "$PKG" >"$WORK/dpkg-purge.log" 2>&1 || { cat "$WORK/dpkg-purge.log" >&2; die "dpkg --purge failed"; }
rm -f "$STAMP"
! installed || die "dpkg --purge left $PKG in dpkg's database"
left=()
for path in /usr/bin/invent-proxy "$unit" /etc/invent-proxy /usr/share/doc/invent-proxy; do
  [ ! -e "$path" ] || left+=("$path")
done
! getent passwd "$PKG" >/dev/null || left+=("user $PKG")
! getent group "$PKG" >/dev/null || left+=("group $PKG")
[ ${#left[@]} = 0 ] || die "dpkg --purge left: ${left[*]}"
ok "dpkg --purge: no file, directory, user or group of the package left"

echo "deploy/deb/check.sh: $deb builds, installs, serves the widget as its unit would run it, and purges cleanly"
