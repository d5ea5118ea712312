#!/usr/bin/env bash
# Installs what tests/frameworks/ needs on a Debian bookworm machine (root), idempotently:
#   - Debian bookworm (apt): ruby, ruby-activesupport, ruby-actionpack, ruby-rack (Rails 6.1.7.10);
#     python3 + python3-venv and nodejs + npm when the machine has none.
#   - Debian trixie's Rails 7.2 (ruby-activesupport, ruby-actionpack, ruby-concurrent), downloaded
#     with a private apt state under $FRAMEWORKS_DIR/apt-trixie and UNPACKED (dpkg-deb -x) under
#     $FRAMEWORKS_DIR/rails72 -- never installed, the system's apt sources are not touched.
#     rails_mint.rb --rails 7.2 puts those gems first on Ruby's load path. Needed for the
#     Rails 7.0+ SHA256 key derivation, json_allow_marshal and the 7.1+ `_rails.data` envelope.
#   - PyPI: requirements.txt into $FRAMEWORKS_DIR/venv.
#   - npm: package.json + package-lock.json (npm ci) into $FRAMEWORKS_DIR/node_modules.
# FRAMEWORKS_DIR defaults to target/frameworks at the repository root.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
dest="${FRAMEWORKS_DIR:-$root/target/frameworks}"
mkdir -p "$dest"

apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then
    apt-get update -q
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
}

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

# --- Debian bookworm packages -------------------------------------------------------------
need=()
for p in ruby ruby-activesupport ruby-actionpack ruby-rack; do installed "$p" || need+=("$p"); done
command -v python3 >/dev/null || need+=(python3)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then apt_install "${need[@]}"; fi
echo "ruby $(ruby -e 'print RUBY_VERSION'), $(dpkg-query -W -f='ruby-activesupport ${Version}, ruby-actionpack ${Version}' ruby-actionpack 2>/dev/null)"

# --- Rails 7.2 from Debian trixie, unpacked only ------------------------------------------
r72="$dest/rails72"
if [ ! -f "$r72/.complete" ]; then
  apt_dir="$dest/apt-trixie"
  rm -rf "$r72" "$apt_dir"
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/debs" "$r72"
  # The same Debian mirror the machine's apt uses for bookworm main, asked for trixie.
  mirror_uri() { apt-get indextargets --format '$(REPO_URI) $(CODENAME) $(COMPONENT)' 2>/dev/null | awk '$2 == "bookworm" && $3 == "main" { print $1; exit }'; }
  mirror="${DEBIAN_MIRROR:-$(mirror_uri)}"
  if [ -z "$mirror" ] && [ "$apt_updated" = 0 ]; then
    apt-get update -q
    apt_updated=1
    mirror="$(mirror_uri)"
  fi
  [ -n "$mirror" ] || { echo "no Debian bookworm main source in apt's configuration: set DEBIAN_MIRROR" >&2; exit 1; }
  echo "deb ${mirror%/} trixie main" >"$apt_dir/sources.list"
  apt_opts=(
    -o "Dir::Etc::SourceList=$apt_dir/sources.list"
    -o "Dir::Etc::SourceParts=$apt_dir/no-parts"
    -o "Dir::State::Lists=$apt_dir/lists"
    -o "Dir::Cache=$apt_dir/cache"
    -o "APT::Sandbox::User=root"
  )
  apt-get "${apt_opts[@]}" update -q
  (cd "$apt_dir/debs" && apt-get "${apt_opts[@]}" download ruby-activesupport ruby-actionpack ruby-concurrent)
  for deb in "$apt_dir"/debs/*.deb; do
    dpkg-deb -x "$deb" "$r72"
    dpkg-deb -f "$deb" Package Version | sed 's/^[^:]*: //' | paste -sd' ' >>"$r72/.versions"
  done
  ls "$r72"/usr/share/rubygems-integration/all/gems/activesupport-7.*/lib >/dev/null
  touch "$r72/.complete"
fi
echo "rails 7.2 (unpacked): $(paste -sd',' "$r72/.versions")"

# --- Flask + Flask-Login (PyPI) -------------------------------------------------------------
venv="$dest/venv"
if [ ! -x "$venv/bin/python" ]; then
  if ! python3 -m venv "$venv" 2>/dev/null; then
    rm -rf "$venv"
    apt_install python3-venv
    python3 -m venv "$venv"
  fi
fi
req_stamp="$venv/.requirements.sha256"
req_sum="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
if [ "$(cat "$req_stamp" 2>/dev/null)" != "$req_sum" ]; then
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$here/requirements.txt"
  echo "$req_sum" >"$req_stamp"
fi
echo "python: $("$venv/bin/python" -c 'from importlib.metadata import version as v; print("Flask", v("flask"), "Flask-Login", v("flask-login"), "itsdangerous", v("itsdangerous"), "Werkzeug", v("werkzeug"))')"

# --- express + cookie-session (npm) ---------------------------------------------------------
lock_stamp="$dest/node_modules/.lock.sha256"
lock_sum="$(cat "$here/package.json" "$here/package-lock.json" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$lock_stamp" 2>/dev/null)" != "$lock_sum" ]; then
  cp "$here/package.json" "$here/package-lock.json" "$dest/"
  (cd "$dest" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  echo "$lock_sum" >"$lock_stamp"
fi
echo "node $(node --version): $(cd "$dest" && node -e 'for (const m of ["express","cookie-session","cookies","keygrip"]) process.stdout.write(m + " " + require(m + "/package.json").version + " ")')"
