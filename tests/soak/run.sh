#!/usr/bin/env bash
# Soak test: the release proxy under bounded load for SECONDS, in front of a
# fault-injecting upstream, with abusive clients beside the clean traffic.
#
#   tests/soak/run.sh 60            # what CI runs
#   tests/soak/run.sh 600           # the figures in benches/README.md
#
# On 127.0.0.1 only: fault_upstream.py (clean pages and JSON; resets mid-body, stalls,
# trickled bytes, malformed answers, oversized heads, closes), invent-proxy with
# soak.yaml (identity on, low limits, JSON log at warn), and for SECONDS at once:
#   - wrk, WRK_ANON connections on /page,/page,/data and WRK_SESSION connections with a
#     session cookie on /session/page; clean.lua checks every response (200, its exact
#     length, the widget, the user-hash);
#   - fault_clients.py, WORKERS loops over the faults and over clients that abort,
#     read slowly, send slowloris or oversized heads; each outcome checked.
# Before it, WARMUP seconds of the same mix, then the start sample of the proxy's RSS and
# open fds (idle, 3 s after the load); after it, 3 s and the end sample. The summary
# (markdown, also target/soak/report.md) has requests served, attributable outcomes by
# fault, unattributable errors, RSS and fds. It fails (exit 1) on any unattributable
# error, a dead or unhealthy proxy, RSS past start + 20 MB, fds past start + 5 (the
# upstream keep-alive pool aside: hyper keeps it 90 s; it must stay within twice the
# load's concurrency) or a client connection still open at the end.
#
# Knobs (environment): PORT_BASE (28080: proxy, +1 admin, +2 upstream), WRK_ANON (8),
# WRK_SESSION (4), WORKERS (8), WARMUP (10), INVENT_PROXY_BIN (skips the build).
# Needs wrk, python3 (3.8+), curl; wrk and curl are installed with apt-get if missing.
set -euo pipefail

SECONDS_RUN=${1:?usage: tests/soak/run.sh SECONDS}
PORT_BASE=${PORT_BASE:-28080}
WRK_ANON=${WRK_ANON:-8}
WRK_SESSION=${WRK_SESSION:-4}
WORKERS=${WORKERS:-8}
WARMUP=${WARMUP:-10}
# As in soak.yaml: limits.body_stall_timeout, upstream.response_timeout, limits.header_read_timeout.
STALL_TIMEOUT=2 RESPONSE_TIMEOUT=2 HEADER_TIMEOUT=2
SETTLE=3

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OUT=$REPO/target/soak
P_PROXY=$PORT_BASE P_ADMIN=$((PORT_BASE + 1)) P_UPSTREAM=$((PORT_BASE + 2))

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() {
  log "ERROR: $*"
  tail -n 5 "$OUT/proxy.log" "$OUT/upstream.log" 2>/dev/null >&2 || true
  exit 1
}

# Every process started here is a job of this shell: at exit, those still running go.
cleanup() {
  local pid pids
  pids=$(jobs -pr)
  for pid in $pids; do kill "$pid" 2>/dev/null || true; done
  for pid in $pids; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v curl >/dev/null || missing+=(curl)
command -v python3 >/dev/null || die "python3 is needed"
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  sudo=""; ((EUID == 0)) || sudo=sudo
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 || {
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  }
fi

if [[ -n ${INVENT_PROXY_BIN:-} ]]; then
  BIN=$INVENT_PROXY_BIN
else
  log "cargo build --release --locked"
  (cd "$REPO" && cargo build --release --locked)
  BIN=$REPO/target/release/invent-proxy
fi
[[ -x $BIN ]] || die "no invent-proxy binary at $BIN"

rm -rf "$OUT"
mkdir -p "$OUT"

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$P_PROXY" "$P_ADMIN" "$P_UPSTREAM"; do
  port_in_use "$p" && die "port $p is in use (set PORT_BASE)"
done
wait_port() { # PORT PID
  local i
  for i in $(seq 100); do
    port_in_use "$1" && return 0
    kill -0 "$2" 2>/dev/null || die "process $2 for port $1 exited"
    sleep 0.1
  done
  die "nothing listens on port $1 after 10 s"
}

# ------------------------------------------------------------------------ start-up

python3 "$HERE/fault_upstream.py" "$P_UPSTREAM" >"$OUT/upstream.log" 2>&1 &
UPSTREAM_PID=$!
wait_port "$P_UPSTREAM" "$UPSTREAM_PID"

export SOAK_PROXY_PORT=$P_PROXY SOAK_ADMIN_PORT=$P_ADMIN SOAK_UPSTREAM_PORT=$P_UPSTREAM
export SOAK_SECRET_KEY=soak-secret-key SOAK_JWT_SECRET=soak-session-secret
TOKEN=$(python3 - "$SOAK_JWT_SECRET" <<'EOF'
import base64, hashlib, hmac, json, sys, time
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
body = b64(json.dumps({"sub": "soak-user", "name": "Soak User", "exp": int(time.time()) + 86400}).encode())
sig = b64(hmac.new(sys.argv[1].encode(), f"{head}.{body}".encode(), hashlib.sha256).digest())
print(f"{head}.{body}.{sig}")
EOF
)
"$BIN" check --config "$HERE/soak.yaml" >"$OUT/check.txt" 2>&1 || die "invent-proxy check failed: $(cat "$OUT/check.txt")"
"$BIN" run --config "$HERE/soak.yaml" >"$OUT/proxy.log" 2>&1 &
PROXY_PID=$!
wait_port "$P_PROXY" "$PROXY_PID"
wait_port "$P_ADMIN" "$PROXY_PID"
log "upstream pid $UPSTREAM_PID on :$P_UPSTREAM, invent-proxy pid $PROXY_PID on :$P_PROXY (admin :$P_ADMIN)"

# The clean answers, checked once by hand; their lengths are what clean.lua expects.
fetch() { curl -sS --max-time 10 -H 'Accept: text/html,application/xhtml+xml' -o "$1" -w '%{http_code}' "${@:2}"; }
[[ $(fetch "$OUT/page.html" "http://127.0.0.1:$P_PROXY/page") == 200 ]] || die "/page is not a 200"
[[ $(grep -c '<invent-assistant' "$OUT/page.html") == 1 ]] || die "/page lacks the widget"
[[ $(fetch "$OUT/data.json" "http://127.0.0.1:$P_PROXY/data") == 200 ]] || die "/data is not a 200"
fetch "$OUT/data-direct.json" "http://127.0.0.1:$P_UPSTREAM/data" >/dev/null
cmp -s "$OUT/data.json" "$OUT/data-direct.json" || die "/data changed through the proxy"
[[ $(fetch "$OUT/session.html" -H "Cookie: session=$TOKEN" "http://127.0.0.1:$P_PROXY/session/page") == 200 ]] || die "/session/page is not a 200"
HASH=$("$BIN" hash --config "$HERE/soak.yaml" --user-id soak-user)
grep -q "user-hash=\"$HASH\"" "$OUT/session.html" || die "/session/page lacks user-hash=\"$HASH\""
PAGE_LEN=$(stat -c %s "$OUT/page.html")
SESSION_LEN=$(stat -c %s "$OUT/session.html")
JSON_LEN=$(stat -c %s "$OUT/data.json")

# ------------------------------------------------------------------------- the load

sample() { python3 "$HERE/report.py" sample "$PROXY_PID" "$P_PROXY" "$P_ADMIN" "$P_UPSTREAM"; }
scrape() { curl -sS --max-time 5 "http://127.0.0.1:$P_ADMIN/metrics" >"$1" || true; }

# phase NAME SECONDS: the whole mix at once, for SECONDS.
phase() {
  local name=$1 secs=$2 pids=() url=http://127.0.0.1:$P_PROXY
  timeout $((secs + 30)) wrk -t1 -c"$WRK_ANON" -d"${secs}s" --timeout 10s -s "$HERE/clean.lua" "$url" \
    -- anon "$PAGE_LEN" "$JSON_LEN" >"$OUT/wrk-$name-anon.txt" 2>&1 &
  pids+=($!)
  timeout $((secs + 30)) wrk -t1 -c"$WRK_SESSION" -d"${secs}s" --timeout 10s -s "$HERE/clean.lua" "$url" \
    -- session "$SESSION_LEN" "$JSON_LEN" "$TOKEN" >"$OUT/wrk-$name-session.txt" 2>&1 &
  pids+=($!)
  timeout $((secs + 60)) python3 "$HERE/fault_clients.py" --proxy "127.0.0.1:$P_PROXY" --seconds "$secs" \
    --workers "$WORKERS" --stall-timeout "$STALL_TIMEOUT" --response-timeout "$RESPONSE_TIMEOUT" \
    --header-timeout "$HEADER_TIMEOUT" --out "$OUT/faults-$name.json" >"$OUT/faults-$name.log" 2>&1 &
  pids+=($!)
  local pid
  for pid in "${pids[@]}"; do wait "$pid" || log "a load process of $name exited with $?"; done
}

log "warm-up: ${WARMUP}s of the same mix"
phase warmup "$WARMUP"
sleep "$SETTLE"
sample >"$OUT/sample-start.json" || die "cannot sample the proxy"
scrape "$OUT/metrics-start.txt"
log "start: $(cat "$OUT/sample-start.json")"

( while sleep 5; do sample >>"$OUT/samples.jsonl" 2>/dev/null || exit 0; done ) &
SAMPLER_PID=$!
log "soak: ${SECONDS_RUN}s"
phase main "$SECONDS_RUN"
kill "$SAMPLER_PID" 2>/dev/null || true
wait "$SAMPLER_PID" 2>/dev/null || true

sleep "$SETTLE"
alive=false healthz=false
if kill -0 "$PROXY_PID" 2>/dev/null; then
  alive=true
  sample >"$OUT/sample-end.json" || rm -f "$OUT/sample-end.json"
  log "end: $(cat "$OUT/sample-end.json" 2>/dev/null)"
  scrape "$OUT/metrics-end.txt"
  [[ $(curl -sS --max-time 5 "http://127.0.0.1:$P_ADMIN/healthz" 2>/dev/null) == ok* ]] && healthz=true
fi

cat >"$OUT/run.json" <<EOF
{"seconds": $SECONDS_RUN, "warmup": $WARMUP, "date": "$(date -u '+%Y-%m-%d %H:%M UTC')",
 "machine": "$(nproc) cores, $(uname -m)", "commit": "$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)",
 "wrk_anon": $WRK_ANON, "wrk_session": $WRK_SESSION, "workers": $WORKERS,
 "stall_timeout": $STALL_TIMEOUT, "response_timeout": $RESPONSE_TIMEOUT, "header_timeout": $HEADER_TIMEOUT,
 "alive": $alive, "healthz": $healthz}
EOF
status=0
python3 "$HERE/report.py" summary "$OUT" >"$OUT/report.md" || status=$?
cat "$OUT/report.md"
exit "$status"
