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
#                     html-10k html-30k html-100k html-1m gzip-30k gzip-100k br-30k
#                     br-100k json-200k html-100k-session html-1m-session ttfb rss
#   INVENT_PROXY_BIN  use this binary instead of `cargo build --release --locked`
#   INVENT_LOG        RUST_LOG for invent-proxy (default warn: no access lines, as
#                     nginx runs with access_log off; `info` to have them)
#   RSS_CONNECTIONS   connections of the memory run (default 1000), RSS_DURATION (10)
#   PORT_BASE         first of the 10 loopback ports used (default 18080)
#   OTHER_LOAD_MAX    a measured run during which other processes took more than this %
#                     of the machine's CPU is run once more (default 10), at most
#   RETRY_BUDGET      times in all (default 12); the report shows each row's other load
#
# Targets: "origin" (nginx serving the files), "invent-proxy" in front of it, and nginx in
# front of it doing the same job (sub_filter; +njs for identity; plain proxy_pass for JSON;
# for compressed pages sub_filter on the identity page, then gzip level 1 or brotli); page
# scenarios also measure "passthrough": invent-proxy passing the same bytes through
# untouched (the page under an inject.exclude_paths glob). gzip-*/br-* scenarios: the
# client accepts that coding and the origin serves the page pre-compressed (gzip level 6,
# brotli quality 6); the report gives the body bytes each target sent.
# All traffic stays on 127.0.0.1; everything lives in a temp dir removed at exit, with
# every process started here. Report: target/load/report.md (also printed).
# Needs: nginx (+ libnginx-mod-http-js), wrk, python3, curl, procps; installed if missing,
# with libnginx-mod-http-brotli-filter/-static and brotli if the system has them (else the
# br-* scenarios are left out, with a note).

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
BROTLI_FILTER_MODULE=/usr/lib/nginx/modules/ngx_http_brotli_filter_module.so
BROTLI_STATIC_MODULE=/usr/lib/nginx/modules/ngx_http_brotli_static_module.so
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
P_NGINX_GZ=$((PORT_BASE + 9))     # nginx sub_filter + gzip/brotli for compressed pages

ALL_SCENARIOS="html-10k html-30k html-100k html-1m gzip-30k gzip-100k br-30k br-100k json-200k
  html-100k-session html-1m-session ttfb rss"

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
  local sudo=""; ((EUID == 0)) || sudo=sudo
  if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  # Brotli is optional: Debian's modules for its nginx, and the command for the files.
  have_brotli && return
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq libnginx-mod-http-brotli-filter \
    libnginx-mod-http-brotli-static brotli >/dev/null 2>&1 \
    || log "the brotli modules for nginx do not install here: the br-* scenarios are left out"
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
  for p in $(seq "$PORT_BASE" $((PORT_BASE + 9))); do
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

# Servers (origin, nginx peers, invent-proxy) and the checks before measuring.
# shellcheck source=benches/load/servers.sh
source "$HERE/servers.sh"

# ---------------------------------------------------------------------- measurement

# The request headers of a MODE: gzip and br accept that coding; session and plain, none.
mode_headers() {
  case ${1:-} in
    gzip | br) echo "Accept-Encoding: $1" ;;
  esac
}

# run_wrk OUT_FILE SECONDS CONNS URL [MODE]: one bounded wrk run (MODE: session, gzip, br).
run_wrk() {
  local out=$1 secs=$2 conns=$3 url=$4 args=() header
  header=$(mode_headers "${5:-}")
  [[ -n $header ]] && args+=(-H "$header")
  if [[ ${5:-} == session ]]; then args+=(-s "$HERE/session.lua" "$url" -- "$TMP/tokens.txt"); else args+=("$url"); fi
  timeout $((secs + 60)) wrk -t2 -c"$conns" -d"${secs}s" --timeout 10s --latency "${args[@]}" >"$out" 2>&1 \
    || die "wrk failed against $url: $(tail -3 "$out")"
}

# body_bytes URL [MODE]: the length of the body one request gets, as sent (compressed).
body_bytes() {
  local header
  header=$(mode_headers "${2:-}")
  curl -sS --max-time 10 -o /dev/null -w '%{size_download}' ${header:+-H "$header"} "$1"
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

# measure_once SCENARIO TARGET LABEL REPEAT URL "PIDS" [MODE]: warm-up, then one
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
    --hwm-kb "$(mem_kb VmHWM $pids)" --body-bytes "$(body_bytes "$url" "$mode")" >"$TMP/record.json"
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

# scenario NAME PATH INVENT_PORT INVENT_PIDS NGINX_LABEL NGINX_PORT NGINX_PIDS [MODE]:
# origin, invent-proxy, its passthrough of the same bytes (pages: html-*, gzip-*, br-*;
# anonymous) and nginx, interleaved.
scenario() {
  local name=$1 path=$2 mode=${8:-} repeat pass=""
  wants "$name" || return 0
  [[ $name =~ ^(html|gzip|br)- && $mode != session ]] && pass=yes
  log "scenario $name"
  for repeat in $(seq "$REPEATS"); do
    measure "$name" origin "origin (nginx static)" "$repeat" "http://127.0.0.1:$P_ORIGIN$path" "$ORIGIN_PIDS" "$mode"
    measure "$name" invent-proxy invent-proxy "$repeat" "http://127.0.0.1:$3$path" "$4" "$mode"
    [[ -n $pass ]] && measure "$name" passthrough "invent-proxy passthrough" "$repeat" \
      "http://127.0.0.1:$3/pass$path" "$4" "$mode"
    measure "$name" nginx "$5" "$repeat" "http://127.0.0.1:$6$path" "$7" "$mode"
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
  # The same page gzip-compressed as it streams (a sync flush after the first 2 KiB).
  python3 "$HERE/ttfb.py" "direct, gzip" "http://127.0.0.1:$P_SLOW/" $n gzip >>"$TMP/ttfb.jsonl"
  python3 "$HERE/ttfb.py" "invent-proxy, gzip" "http://127.0.0.1:$P_INVENT_SLOW/" $n gzip >>"$TMP/ttfb.jsonl"
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
  # shellcheck disable=SC2086 # word splitting: one space between names
  SCENARIOS=" $(echo ${SCENARIOS//,/ }) "
  local s all
  # shellcheck disable=SC2086 # word splitting: the list spans lines
  all=" $(echo $ALL_SCENARIOS) "
  for s in $SCENARIOS; do
    [[ $all == *" $s "* ]] || die "unknown scenario '$s' (known: $ALL_SCENARIOS)"
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

  verify_compressed

  local sub="nginx sub_filter" njs="nginx+njs" id=$P_INVENT_ID coding size
  local gz="nginx sub_filter + gzip 1" br="nginx sub_filter + brotli 6"
  for size in 10k 30k 100k 1m; do
    scenario "html-$size" "/html-$size.html" "$P_INVENT" "$INVENT_PIDS" "$sub" "$P_NGINX" "$NGINX_PIDS"
  done
  for coding in gzip br; do
    if [[ $coding == br ]] && ! have_brotli; then
      wants br-30k || wants br-100k && echo "br-* scenarios left out: no brotli modules for nginx here" >>"$TMP/notes.txt"
      continue
    fi
    local label=$gz
    [[ $coding == br ]] && label=$br
    for size in 30k 100k; do
      scenario "$coding-$size" "/html-$size.html" "$P_INVENT" "$INVENT_PIDS" "$label" "$P_NGINX_GZ" "$NGINX_GZ_PIDS" "$coding"
    done
  done
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
