#!/usr/bin/env bash
# Checks the monitoring kit in deploy/monitoring/ (CI runs it from .ci/run):
#
#   - alerts.yaml: `promtool check rules`, and `promtool test rules alerts.test.yaml` (each
#     alert firing, and not firing, on series written for it);
#   - then check.py, against the real thing: the proxy binary ($INVENT_PROXY_BIN, else
#     target/debug/invent-proxy — build it first) in front of a real upstream, with
#     identity, a refused upstream and a JWKS that does not load, sent traffic and reloaded
#     by SIGHUP (once rejected); Prometheus scraping its admin listener and evaluating the
#     rules. It fails, naming each, on any metric the dashboard or the rules name that is
#     not in the scrape of /metrics, on any label matcher no scraped series matches, on a
#     dashboard query Prometheus rejects or that returns nothing, and on a rule that does
#     not evaluate. check.py's docstring has the details.
#
# promtool and prometheus come from Debian's `prometheus` package, installed if missing
# (without its recommends; its service is not started). Everything runs on 127.0.0.1 on
# ports the OS picks, and is stopped at the end. About ten seconds once installed.
set -euo pipefail
cd "$(dirname "$0")/../.."

BIN=${INVENT_PROXY_BIN:-target/debug/invent-proxy}
if [ ! -x "$BIN" ]; then
  echo "deploy/monitoring/check.sh: no proxy binary at $BIN: run \`cargo build --locked\` first, or set INVENT_PROXY_BIN" >&2
  exit 1
fi

need_apt=()
{ command -v promtool >/dev/null && command -v prometheus >/dev/null; } || need_apt+=(prometheus)
PYTHON=python3
"$PYTHON" -c 'import yaml' 2>/dev/null || { need_apt+=(python3-yaml); PYTHON=/usr/bin/python3; }
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "-- apt-get install ${need_apt[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need_apt[@]}"
fi
promtool --version 2>&1 | sed -n 1p

echo "== alerts.yaml: promtool check rules, promtool test rules"
promtool check rules deploy/monitoring/alerts.yaml
promtool test rules deploy/monitoring/alerts.test.yaml

echo "== dashboard and rules against a real proxy and Prometheus (check.py)"
"$PYTHON" deploy/monitoring/check.py "$BIN"
