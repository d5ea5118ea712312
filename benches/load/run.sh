#!/usr/bin/env bash
# Load benchmark: invent-proxy against nginx doing the same job, on this machine.
#
#   benches/load/run.sh                     # full run (about 7 min on 2 cores)
#   DURATION=2 REPEATS=1 benches/load/run.sh
#   SCENARIOS="html-100k ttfb" INVENT_PROXY_BIN=/tmp/invent-proxy benches/load/run.sh
#
# Knobs (environment):
#   DURATION          seconds of each measured wrk run (default 5)
#   REPEATS           measured runs per scenario and target, interleaved (default 3)
#   CONNECTIONS       wrk connections (default 32; wrk uses 2 threads)
#   WARMUP            seconds of warm-up before each measured run (default 1)
#   SCENARIOS         subset, space- or comma-separated (default: all of)
#                     html-10k html-100k html-1m json-200k html-100k-session
#                     html-1m-session ttfb rss
#   INVENT_PROXY_BIN  use this binary instead of `cargo build --release --locked`
#   INVENT_LOG        RUST_LOG for invent-proxy (default warn: no access lines, as
#                     nginx runs with access_log off; `info` to have them)
#   RSS_CONNECTIONS   connections of the memory run (default 1000), RSS_DURATION (10)
#   PORT_BASE         first of the 9 loopback ports used (default 18080)
#   OTHER_LOAD_MAX    a measured run during which other processes took more than this %
#                     of the machine's CPU is run once more (default 10), at most
#   RETRY_BUDGET      times in all (default 12); the report shows each row's other load
#
# Targets: "origin" (nginx serving the files), "invent-proxy" in front of it, and nginx in
# front of it doing the same job (sub_filter; +njs for identity; plain proxy_pass for JSON).
# All traffic stays on 127.0.0.1; everything lives in a temp dir removed at exit, with
# every process started here. Report: target/load/report.md (also printed).
# Needs: nginx (+ libnginx-mod-http-js), wrk, python3, curl, procps; installed if missing.

set -euo pipefail

DURATION=${DURATION:-5}
REPEATS=${REPEATS:-3}
CONNECTIONS=${CONNECTIONS:-32}
WARMUP=${WARMUP:-1}
SCENARIOS=${SCENARIOS:-all}
INVENT_LOG=${INVENT_LOG:-warn}
RSS_CONNECTIONS=${RSS_CONNECTIONS:-1000}
RSS_DURATION=${RSS_DURATION:-10}
PORT_BASE=${PORT_BASE:-18080}
OTHER_LOAD_MAX=${OTHER_LOAD_MAX:-10}
RETRY_BUDGET=${RETRY_BUDGET:-12}
RETRIES_ALLOWED=$RETRY_BUDGET

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OUT_DIR=$REPO/target/load
NJS_MODULE=/usr/lib/nginx/modules/ngx_http_js_module.so
SESSION_SECRET=bench-session-secret
SECRET_KEY=bench-secret-key
STARTED_AT=$SECONDS

# Ports, all on 127.0.0.1.
P_INVENT=$PORT_BASE               # invent-proxy, anonymous
P_ORIGIN=$((PORT_BASE + 1))       # nginx serving the files
P_SLOW=$((PORT_BASE + 2))         # slow python origin (TTFB)
P_INVENT_ID=$((PORT_BASE + 3))    # invent-proxy with identity
P_NGINX=$((PORT_BASE + 4))        # nginx sub_filter proxy
P_NJS=$((PORT_BASE + 5))          # nginx sub_filter + njs identity proxy
P_INVENT_SLOW=$((PORT_BASE + 6))  # invent-proxy in front of the slow origin
P_NGINX_SLOW=$((PORT_BASE + 7))   # nginx (proxy_buffering on, the default) in front of the slow origin
P_NGINX_SLOW_NB=$((PORT_BASE + 8)) # the same with proxy_buffering off

ALL_SCENARIOS="html-10k html-100k html-1m json-200k html-100k-session html-1m-session ttfb rss"

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() {
  log "ERROR: $*"
  # The temp dir goes at exit: show the end of the servers' logs now.
  tail -n 5 "${TMP:-/nonexistent}"/*.log "${TMP:-/nonexistent}"/*/error.log 2>/dev/null >&2 || true
  exit 1
}
wants() { [[ $SCENARIOS == *" $1 "* ]]; }

# ---------------------------------------------------------------- set-up and clean-up

PIDS=()
TMP=$(mktemp -d /tmp/invent-load.XXXXXX)
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
chmod 755 "$TMP" # nginx workers run as nobody when started by root

install_deps() {
  local missing=()
  command -v nginx >/dev/null || missing+=(nginx)
  [[ -f $NJS_MODULE ]] || missing+=(libnginx-mod-http-js)
  command -v wrk >/dev/null || missing+=(wrk)
  command -v python3 >/dev/null || missing+=(python3)
  command -v curl >/dev/null || missing+=(curl)
  command -v pgrep >/dev/null || missing+=(procps)
  ((${#missing[@]} == 0)) && return
  log "installing ${missing[*]}"
  local sudo=""; ((EUID == 0)) || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

build_proxy() {
  if [[ -n ${INVENT_PROXY_BIN:-} ]]; then
    BIN=$INVENT_PROXY_BIN
  else
    log "cargo build --release --locked"
    (cd "$REPO" && cargo build --release --locked)
    BIN=$REPO/target/release/invent-proxy
  fi
  [[ -x $BIN ]] || die "no invent-proxy binary at $BIN"
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

check_ports() {
  local p
  for p in $(seq "$PORT_BASE" $((PORT_BASE + 8))); do
    port_in_use "$p" && die "port $p is in use (set PORT_BASE)"
  done
  return 0
}

# wait_port PORT PID: until something answers on PORT (10 s at most), PID still alive.
wait_port() {
  local i
  for i in $(seq 100); do
    port_in_use "$1" && return 0
    kill -0 "$2" 2>/dev/null || die "process $2 for port $1 exited"
    sleep 0.1
  done
  die "nothing listens on port $1 after 10 s"
}

# ------------------------------------------------------------------ /proc accounting

CLK_TCK=$(getconf CLK_TCK)

# nginx_pids MASTER: the master and its workers (one per CPU: worker_processes auto),
# waiting for them: the master listens before it forks them.
nginx_pids() {
  local i workers
  for i in $(seq 50); do
    workers=$(pgrep -P "$1" | tr '\n' ' ')
    (($(wc -w <<<"$workers") >= $(nproc))) && break
    sleep 0.1
  done
  (($(wc -w <<<"$workers") >= 1)) || die "nginx $1 has no workers"
  echo "$1 $workers"
}

# cpu_ticks PID...: utime+stime summed (fields 14 and 15 of /proc/PID/stat).
cpu_ticks() {
  local total=0 pid stat f
  for pid in "$@"; do
    stat=$(<"/proc/$pid/stat")
    read -ra f <<<"${stat##*) }" # fields from the 3rd on, past the command name
    total=$((total + f[11] + f[12]))
  done
  echo "$total"
}

# mem_kb FIELD PID...: VmRSS or VmHWM summed, in kB.
mem_kb() {
  local field=$1 total=0 pid v
  shift
  for pid in "$@"; do
    v=$(awk -v k="$field:" '$1 == k { print $2 }' "/proc/$pid/status")
    total=$((total + ${v:-0}))
  done
  echo "$total"
}

# reset_hwm PID...: restart the peak-RSS count (VmHWM) from the current RSS.
reset_hwm() {
  local pid
  for pid in "$@"; do echo 5 >"/proc/$pid/clear_refs" 2>/dev/null || true; done
}

# ---------------------------------------------------------------------------- servers

# nginx_conf NAME PORT MAIN_EXTRA SERVER_BODY [HTTP_EXTRA]: a minimal nginx instance.
nginx_conf() {
  local dir=$TMP/$1
  mkdir -p "$dir"
  cat >"$dir/nginx.conf" <<EOF
$3
worker_processes auto;
worker_rlimit_nofile $(ulimit -n);
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 8192; }
http {
  types { text/html html; application/json json; }
  default_type application/octet-stream;
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_timeout 65;
  keepalive_requests 100000;
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/proxy;
  ${5:-}
  server {
    listen 127.0.0.1:$2;
    $4
  }
}
EOF
}

# start_nginx NAME PORT: runs it in the foreground of a background job; sets LAST_PID.
start_nginx() {
  local dir=$TMP/$1
  nginx -t -q -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" || die "bad nginx config $1: $(cat "$dir/error.log")"
  nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" -g 'daemon off;' 2>>"$dir/error.log" &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
  wait_port "$2" "$LAST_PID"
}

# The widget markup invent-proxy injects (checked against its output below).
SCRIPT_TAG='<script type="text/javascript" src="https://www.useinvent.com/button.js" async defer></script>'
PROXY_TO_ORIGIN="
    proxy_http_version 1.1;
    proxy_set_header Connection \"\";
    proxy_set_header Accept-Encoding \"\";"

start_origin() {
  mkdir -p "$TMP/www"
  python3 "$HERE/pages.py" "$TMP/www"
  chmod -R a+rX "$TMP/www"
  nginx_conf origin "$P_ORIGIN" "" "root $TMP/www; charset utf-8;"
  start_nginx origin "$P_ORIGIN"
  ORIGIN_PIDS=$(nginx_pids "$LAST_PID")
}

start_nginx_proxies() {
  local upstream="upstream origin { server 127.0.0.1:$P_ORIGIN; keepalive 64; }"
  nginx_conf nginx "$P_NGINX" "" "
    location / {
      proxy_pass http://origin; $PROXY_TO_ORIGIN
      sub_filter '</body>' '<invent-assistant assistant-id=\"ast_bench\"></invent-assistant>$SCRIPT_TAG</body>';
      sub_filter_once on;
    }" "$upstream"
  start_nginx nginx "$P_NGINX"
  NGINX_PIDS=$(nginx_pids "$LAST_PID")

  nginx_conf njs "$P_NJS" "load_module $NJS_MODULE;" "
    set \$invent_session_secret $SESSION_SECRET;
    set \$invent_secret_key $SECRET_KEY;
    location / {
      proxy_pass http://origin; $PROXY_TO_ORIGIN
      sub_filter '</body>' '<invent-assistant assistant-id=\"ast_bench\"\$invent_identity_attrs></invent-assistant>$SCRIPT_TAG</body>';
      sub_filter_once on;
    }" "$upstream
  js_path $HERE;
  js_import identity from identity.js;
  js_set \$invent_identity_attrs identity.attrs;"
  start_nginx njs "$P_NJS"
  NJS_PIDS=$(nginx_pids "$LAST_PID")
}

# invent_config NAME PORT UPSTREAM_PORT [identity]
invent_config() {
  cat >"$TMP/$1.yaml" <<EOF
listen: 127.0.0.1:$2
upstream:
  url: http://127.0.0.1:$3
assistant:
  id: ast_bench
  script_url: https://www.useinvent.com/button.js
EOF
  [[ ${4:-} == identity ]] && cat >>"$TMP/$1.yaml" <<'EOF'
identity:
  secret_key: ${BENCH_SECRET_KEY}
  jwt:
    cookie: session
    algorithms: [HS256]
    secret: ${BENCH_SESSION_SECRET}
    claims: { user_id: sub, user_name: name }
EOF
  BENCH_SECRET_KEY=$SECRET_KEY BENCH_SESSION_SECRET=$SESSION_SECRET \
    "$BIN" check --config "$TMP/$1.yaml" >"$TMP/$1.check" 2>&1 || die "invent-proxy check $1 failed: $(cat "$TMP/$1.check")"
}

# start_invent NAME PORT: sets LAST_PID; stderr (logs) to $TMP/NAME.log.
start_invent() {
  BENCH_SECRET_KEY=$SECRET_KEY BENCH_SESSION_SECRET=$SESSION_SECRET RUST_LOG=$INVENT_LOG \
    "$BIN" run --config "$TMP/$1.yaml" 2>"$TMP/$1.log" &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
  wait_port "$2" "$LAST_PID"
}

start_slow_origin() {
  python3 "$HERE/slow_origin.py" "$P_SLOW" "$TMP/www/html-100k.html" 2 &
  PIDS+=("$!")
  wait_port "$P_SLOW" "$!"
}

# --------------------------------------------------------------------------- checks

fetch() { curl -sS --max-time 10 -o "$1" -w '%{http_code}' "${@:2}"; }

# Each proxy must inject the widget into pages, and pass JSON through unchanged.
verify_injection() {
  local name_port name port code page
  for name_port in invent-proxy:$P_INVENT nginx:$P_NGINX; do
    name=${name_port%%:*} port=${name_port##*:}
    for page in html-1m html-10k html-100k; do # html-100k last: kept for the comparison below
      code=$(fetch "$TMP/check-$name.html" "http://127.0.0.1:$port/$page.html")
      [[ $code == 200 ]] || die "$name answered $code for /$page.html"
      [[ $(grep -c '<invent-assistant' "$TMP/check-$name.html") == 1 ]] \
        || die "$name did not inject <invent-assistant> (once) into /$page.html"
    done
    fetch "$TMP/check-$name.json" "http://127.0.0.1:$port/json-200k.json" >/dev/null
    cmp -s "$TMP/check-$name.json" "$TMP/www/json-200k.json" || die "$name changed /json-200k.json"
  done
  {
    echo "invent-proxy, anonymous:"
    python3 "$HERE/report.py" injected "$TMP/www/html-100k.html" "$TMP/check-invent-proxy.html"
    echo "nginx sub_filter, anonymous:"
    python3 "$HERE/report.py" injected "$TMP/www/html-100k.html" "$TMP/check-nginx.html"
  } >>"$TMP/injected.txt"
  cmp -s "$TMP/check-invent-proxy.html" "$TMP/check-nginx.html" \
    && echo "anonymous pages from invent-proxy and nginx sub_filter are byte-identical" >>"$TMP/notes.txt" \
    || echo "WARNING: anonymous pages from invent-proxy and nginx sub_filter differ" >>"$TMP/notes.txt"
}

# Both identity proxies must inject the same, correct user-hash for the same token.
verify_identity() {
  local token=$1 want name_port name port code got
  want=$(BENCH_SECRET_KEY=$SECRET_KEY BENCH_SESSION_SECRET=$SESSION_SECRET "$BIN" hash --config "$TMP/invent-id.yaml" --user-id user-1)
  for name_port in invent-proxy:$P_INVENT_ID nginx-njs:$P_NJS; do
    name=${name_port%%:*} port=${name_port##*:}
    code=$(fetch "$TMP/check-id-$name.html" -H "Cookie: session=$token" "http://127.0.0.1:$port/html-100k.html")
    [[ $code == 200 ]] || die "$name answered $code for /html-100k.html with a session"
    got=$(grep -o 'user-hash="[0-9a-f]*"' "$TMP/check-id-$name.html" | head -1)
    [[ $got == "user-hash=\"$want\"" ]] || die "$name injected '${got:-no user-hash}', want user-hash=\"$want\" (invent-proxy hash)"
    fetch "$TMP/check-bad-$name.html" -H "Cookie: session=${token%?}x" "http://127.0.0.1:$port/html-100k.html" >/dev/null
    grep -q 'user-hash=' "$TMP/check-bad-$name.html" && die "$name accepted a token with a bad signature"
    grep -q '<invent-assistant' "$TMP/check-bad-$name.html" || die "$name did not inject for an anonymous visitor"
  done
  {
    echo "invent-proxy, signed in (token of user-1):"
    python3 "$HERE/report.py" injected "$TMP/www/html-100k.html" "$TMP/check-id-invent-proxy.html"
    echo "nginx+njs, signed in (token of user-1):"
    python3 "$HERE/report.py" injected "$TMP/www/html-100k.html" "$TMP/check-id-nginx-njs.html"
  } >>"$TMP/injected.txt"
  cmp -s "$TMP/check-id-invent-proxy.html" "$TMP/check-id-nginx-njs.html" \
    && echo "signed-in pages from invent-proxy and nginx+njs are byte-identical (same user-hash: $want)" >>"$TMP/notes.txt" \
    || echo "WARNING: signed-in pages from invent-proxy and nginx+njs differ" >>"$TMP/notes.txt"
}

# ---------------------------------------------------------------------- measurement

# run_wrk OUT_FILE SECONDS CONNS URL [session]: one bounded wrk run.
run_wrk() {
  local out=$1 secs=$2 conns=$3 url=$4 lua=()
  [[ ${5:-} == session ]] && lua=(-s "$HERE/session.lua" "$url" -- "$TMP/tokens.txt")
  ((${#lua[@]})) || lua=("$url")
  timeout $((secs + 60)) wrk -t2 -c"$conns" -d"${secs}s" --timeout 10s --latency "${lua[@]}" >"$out" 2>&1 \
    || die "wrk failed against $url: $(tail -3 "$out")"
}

# snapshot VAR "PIDS": sets VAR to "target-ticks origin-ticks machine-busy-ticks
# wrk-ticks nanoseconds". wrk's CPU is read from the shell's waited children (`times`),
# so this runs in this shell, not in a $(…) subshell.
snapshot() {
  times >"$TMP/times"
  local wrk busy
  wrk=$(awk -v hz="$CLK_TCK" 'NR == 2 { t = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += (a[1] * 60 + a[2]) * hz } printf "%d", t }' "$TMP/times")
  busy=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat) # user nice system irq softirq steal
  # shellcheck disable=SC2086
  printf -v "$1" '%s %s %s %s %s' "$(cpu_ticks $2)" "$(cpu_ticks $ORIGIN_PIDS)" "$busy" "$wrk" "$(date +%s%N)"
}

# measure_once SCENARIO TARGET LABEL REPEAT URL "PIDS" [session]: warm-up, then one
# measured run; its JSON line goes to $TMP/record.json, its other load (%) to OTHER_PCT.
measure_once() {
  local scenario=$1 target=$2 label=$3 repeat=$4 url=$5 pids=$6 mode=${7:-}
  local out="$TMP/wrk-$scenario-$target-$repeat.txt" s0 s1
  run_wrk "$TMP/warmup.txt" "$WARMUP" "$CONNECTIONS" "$url" "$mode"
  # shellcheck disable=SC2086
  reset_hwm $pids
  snapshot s0 "$pids"
  run_wrk "$out" "$DURATION" "$CONNECTIONS" "$url" "$mode"
  snapshot s1 "$pids"
  local -a a=($s0) b=($s1)
  local target_ticks=$((b[0] - a[0])) origin_ticks=$((b[1] - a[1])) wall_ns=$((b[4] - a[4]))
  [[ $target == origin ]] && origin_ticks=0
  # CPU the machine spent on anything but the target, the origin and wrk: other load.
  local other=$((b[2] - a[2] - target_ticks - origin_ticks - (b[3] - a[3])))
  OTHER_PCT=$((other * 100 * 1000000000 / (wall_ns * $(nproc) * CLK_TCK)))
  # shellcheck disable=SC2086
  python3 "$HERE/report.py" record --wrk "$out" --scenario "$scenario" --target "$target" \
    --label "$label" --repeat "$repeat" --cpu-ticks "$target_ticks" --clk-tck "$CLK_TCK" \
    --other-ticks "$other" --wall-ns "$wall_ns" --cpus "$(nproc)" \
    --hwm-kb "$(mem_kb VmHWM $pids)" >"$TMP/record.json"
  log "  $scenario #$repeat $label: $(awk '/Requests\/sec/ { print $2 " req/s" }' "$out"), other load $OTHER_PCT%"
}

# measure (same arguments): measure_once, and once more if other work on the machine
# took more than OTHER_LOAD_MAX % of its CPU meanwhile (RETRY_BUDGET such re-runs per run).
measure() {
  measure_once "$@"
  if ((OTHER_PCT > OTHER_LOAD_MAX && RETRY_BUDGET > 0)); then
    RETRY_BUDGET=$((RETRY_BUDGET - 1))
    log "  other load $OTHER_PCT% > $OTHER_LOAD_MAX%: measuring again"
    measure_once "$@"
  fi
  cat "$TMP/record.json" >>"$TMP/results.jsonl"
}

# scenario NAME PATH INVENT_PORT INVENT_PIDS NGINX_LABEL NGINX_PORT NGINX_PIDS [session]
scenario() {
  local name=$1 path=$2 repeat
  wants "$name" || return 0
  log "scenario $name"
  for repeat in $(seq "$REPEATS"); do
    measure "$name" origin "origin (nginx static)" "$repeat" "http://127.0.0.1:$P_ORIGIN$path" "$ORIGIN_PIDS" "${8:-}"
    measure "$name" invent-proxy invent-proxy "$repeat" "http://127.0.0.1:$3$path" "$4" "${8:-}"
    measure "$name" nginx "$5" "$repeat" "http://127.0.0.1:$6$path" "$7" "${8:-}"
  done
}

# Time to first byte from the slow origin: directly, through invent-proxy, through nginx.
measure_ttfb() {
  wants ttfb || return 0
  log "time to first byte (slow origin)"
  start_slow_origin
  invent_config invent-slow "$P_INVENT_SLOW" "$P_SLOW"
  start_invent invent-slow "$P_INVENT_SLOW"
  local proxy="proxy_pass http://127.0.0.1:$P_SLOW; $PROXY_TO_ORIGIN
      sub_filter '</body>' '<invent-assistant assistant-id=\"ast_bench\"></invent-assistant>$SCRIPT_TAG</body>';"
  # Two servers in one instance: the body closes the first and opens the second.
  nginx_conf nginx-slow "$P_NGINX_SLOW" "" "location / { $proxy }
  }
  server {
    listen 127.0.0.1:$P_NGINX_SLOW_NB;
    location / { $proxy proxy_buffering off; }"
  start_nginx nginx-slow "$P_NGINX_SLOW"
  wait_port "$P_NGINX_SLOW_NB" "$LAST_PID"
  local n=5
  python3 "$HERE/ttfb.py" direct "http://127.0.0.1:$P_SLOW/" $n >>"$TMP/ttfb.jsonl"
  python3 "$HERE/ttfb.py" invent-proxy "http://127.0.0.1:$P_INVENT_SLOW/" $n >>"$TMP/ttfb.jsonl"
  python3 "$HERE/ttfb.py" "nginx sub_filter (proxy_buffering on, default)" "http://127.0.0.1:$P_NGINX_SLOW/" $n >>"$TMP/ttfb.jsonl"
  python3 "$HERE/ttfb.py" "nginx sub_filter, proxy_buffering off" "http://127.0.0.1:$P_NGINX_SLOW_NB/" $n >>"$TMP/ttfb.jsonl"
}

# rss_run NAME PORT "PIDS": max VmRSS while RSS_CONNECTIONS clients fetch the 1 MB page.
rss_run() {
  local name=$1 port=$2 pids=$3 max=0 rss
  local out="$TMP/wrk-rss-${name// /-}.txt"
  # shellcheck disable=SC2086
  timeout $((RSS_DURATION + 60)) wrk -t2 -c"$RSS_CONNECTIONS" -d"${RSS_DURATION}s" --timeout 10s \
    "http://127.0.0.1:$port/html-1m.html" >"$out" 2>&1 &
  local wrk_pid=$!
  PIDS+=("$wrk_pid")
  while kill -0 "$wrk_pid" 2>/dev/null; do
    rss=$(mem_kb VmRSS $pids)
    ((rss > max)) && max=$rss
    sleep 0.2
  done
  wait "$wrk_pid" || die "wrk failed in the memory run of $name: $(tail -3 "$out")"
  RSS_MAX=$max
  RSS_WRK=$out
}

measure_rss() {
  wants rss || return 0
  log "memory: $RSS_CONNECTIONS connections on the 1 MB page, ${RSS_DURATION}s each"
  local name port pids idle
  for name in invent-proxy "nginx sub_filter"; do
    if [[ $name == invent-proxy ]]; then port=$P_INVENT pids=$INVENT_PIDS idle=$INVENT_IDLE_KB
    else port=$P_NGINX pids=$NGINX_PIDS idle=$NGINX_IDLE_KB; fi
    rss_run "$name" "$port" "$pids"
    sleep 2 # what is still held once the clients are gone
    # shellcheck disable=SC2086
    python3 "$HERE/report.py" memory --wrk "$RSS_WRK" --target "$name" --idle-kb "$idle" \
      --max-kb "$RSS_MAX" --after-kb "$(mem_kb VmRSS $pids)" --connections "$RSS_CONNECTIONS" >>"$TMP/rss.jsonl"
    log "  $name: idle $((idle / 1024)) MB, max $((RSS_MAX / 1024)) MB"
  done
}

# --------------------------------------------------------------------------- report

# Warnings and errors the servers logged during the run go into the report's notes.
log_findings() {
  local f n first
  for f in "$TMP"/invent*.log "$TMP"/*/error.log; do
    [[ -f $f ]] || continue
    n=$(grep -c -E 'WARN|ERROR|\[(warn|error|crit|alert|emerg)\]' "$f" || true)
    ((n == 0)) && continue
    first=$(grep -m1 -E 'WARN|ERROR|\[(warn|error|crit|alert|emerg)\]' "$f" | cut -c1-240)
    echo "${f#"$TMP"/}: $n warning/error lines, e.g. \`$first\`" >>"$TMP/notes.txt"
  done
}

write_meta() {
  {
    echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "machine: $(nproc) CPUs, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), $(awk '/MemTotal/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo), kernel $(uname -r)"
    echo "nginx: $(nginx -v 2>&1 | sed 's/^nginx version: //'), njs $(dpkg-query -W -f '${Version}' libnginx-mod-http-js 2>/dev/null || echo '?'); wrk: $(wrk -v 2>&1 | head -1 | awk '{ print $2 }')"
    local rev
    rev=$(git -C "$REPO" describe --always --dirty --tags 2>/dev/null || echo '?')
    if [[ -n ${INVENT_PROXY_BIN:-} ]]; then
      echo "invent-proxy: $BIN (INVENT_PROXY_BIN, built $(date -u -r "$BIN" '+%Y-%m-%d %H:%M UTC'); work tree at $rev), RUST_LOG=$INVENT_LOG"
    else
      echo "invent-proxy: built here from $rev, RUST_LOG=$INVENT_LOG"
    fi
    echo "parameters: wrk -t2 -c$CONNECTIONS -d${DURATION}s --latency, $REPEATS repeats interleaved (origin, invent-proxy, nginx), ${WARMUP}s warm-up before each run"
    echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (anything else running skews the numbers)"
    echo "load generator, proxies and origin share the same $(nproc) cores: compare rows within a run, not with other machines"
  } >"$TMP/meta.txt"
}

# SCENARIOS as " a b c ", every name checked.
check_scenarios() {
  [[ $SCENARIOS == all ]] && SCENARIOS=$ALL_SCENARIOS
  SCENARIOS=" ${SCENARIOS//,/ } "
  local s
  for s in $SCENARIOS; do
    [[ " $ALL_SCENARIOS " == *" $s "* ]] || die "unknown scenario '$s' (known: $ALL_SCENARIOS)"
  done
}

main() {
  check_scenarios
  ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
  install_deps
  nginx -V 2>&1 | grep -q http_sub_module || die "this nginx lacks the sub_filter module"
  build_proxy
  check_ports
  write_meta
  awk '$1 > 1.0 { exit 1 }' /proc/loadavg \
    || log "warning: load average $(cut -d' ' -f1 /proc/loadavg) before the start: other work will skew the numbers"

  start_origin
  log "origin nginx pids: $ORIGIN_PIDS"
  python3 "$HERE/tokens.py" "$SESSION_SECRET" 1000 "$TMP/tokens.txt"

  invent_config invent "$P_INVENT" "$P_ORIGIN"
  start_invent invent "$P_INVENT"
  INVENT_PIDS=$LAST_PID
  sleep 0.5
  INVENT_IDLE_KB=$(mem_kb VmRSS "$INVENT_PIDS") # before any traffic
  invent_config invent-id "$P_INVENT_ID" "$P_ORIGIN" identity
  start_invent invent-id "$P_INVENT_ID"
  INVENT_ID_PIDS=$LAST_PID
  start_nginx_proxies
  # shellcheck disable=SC2086
  NGINX_IDLE_KB=$(mem_kb VmRSS $NGINX_PIDS)
  log "invent-proxy pids: $INVENT_PIDS, $INVENT_ID_PIDS; nginx: $NGINX_PIDS; nginx+njs: $NJS_PIDS"

  verify_injection
  verify_identity "$(head -1 "$TMP/tokens.txt")"

  local sub="nginx sub_filter" njs="nginx+njs" id=$P_INVENT_ID
  scenario html-10k /html-10k.html "$P_INVENT" "$INVENT_PIDS" "$sub" "$P_NGINX" "$NGINX_PIDS"
  scenario html-100k /html-100k.html "$P_INVENT" "$INVENT_PIDS" "$sub" "$P_NGINX" "$NGINX_PIDS"
  scenario html-1m /html-1m.html "$P_INVENT" "$INVENT_PIDS" "$sub" "$P_NGINX" "$NGINX_PIDS"
  scenario json-200k /json-200k.json "$P_INVENT" "$INVENT_PIDS" "nginx proxy_pass" "$P_NGINX" "$NGINX_PIDS"
  scenario html-100k-session /html-100k.html "$id" "$INVENT_ID_PIDS" "$njs" "$P_NJS" "$NJS_PIDS" session
  scenario html-1m-session /html-1m.html "$id" "$INVENT_ID_PIDS" "$njs" "$P_NJS" "$NJS_PIDS" session
  measure_ttfb
  measure_rss

  log_findings
  echo "measured runs repeated because other work took over $OTHER_LOAD_MAX% of the CPU: $((RETRIES_ALLOWED - RETRY_BUDGET)) (at most $RETRIES_ALLOWED)" >>"$TMP/notes.txt"
  echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg); total run time: $((SECONDS - STARTED_AT)) s" >>"$TMP/notes.txt"

  mkdir -p "$OUT_DIR"
  python3 "$HERE/report.py" render "$TMP" >"$OUT_DIR/report.md"
  cp "$TMP"/results.jsonl "$OUT_DIR/" 2>/dev/null || true
  cat "$OUT_DIR/report.md"
  log "report: $OUT_DIR/report.md (total $((SECONDS - STARTED_AT)) s)"
}

main "$@"
