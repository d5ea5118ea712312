#!/usr/bin/env bash
# Installs the browser suite's npm packages — the real @hotwired/turbo (8 and 7) and
# turbolinks that tests/integration/browser/turbo.rs serves to Chromium — with `npm ci`
# from package-lock.json. Idempotent: nothing is done while node_modules was installed
# from this very lockfile (a stamp holds its SHA-256).
set -euo pipefail
cd "$(dirname "$0")"
stamp=node_modules/.installed-from-lockfile
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
command -v npm >/dev/null || { echo "install.sh: npm is missing (apt-get install npm)" >&2; exit 1; }
npm ci --ignore-scripts --no-audit --no-fund
echo "$want" >"$stamp"
