#!/usr/bin/env bash
# Instructions per request of the running proxy, by function: invent-proxy under callgrind
# in front of nginx serving the load bench's pages, sent REQUESTS requests on keep-alive
# connections after a warm-up. Unlike CPU time on a shared machine, the counts are the
# same from run to run (within a few tenths of a percent).
#
#   benches/load/profile.sh /html-30k.html                 # a page, rewritten
#   ACCEPT=gzip benches/load/profile.sh /html-30k.html     # the gzip page, spliced
#   benches/load/profile.sh /pass/html-30k.html            # the same bytes, passed through
#   INVENT_PROXY_BIN=target/quick/release/invent-proxy REQUESTS=2000 benches/load/profile.sh /html-10k.html
#
# Prints instructions per request and the top functions (inclusive and self); the
# callgrind file is left in target/profile/ for callgrind_annotate. Needs valgrind, nginx,
# wrk, python3 (installed by run.sh). A build with line tables names inlined code:
#   CARGO_PROFILE_RELEASE_DEBUG=line-tables-only cargo build --release
set -euo pipefail

PATH_=${1:?a request path, e.g. /html-30k.html}
REQUESTS=${REQUESTS:-1000}
CONNECTIONS=${CONNECTIONS:-4}
ACCEPT=${ACCEPT:-}
PORT_BASE=${PORT_BASE:-18180}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BIN=${INVENT_PROXY_BIN:-$REPO/target/release/invent-proxy}
OUT=$REPO/target/profile
[[ -x $BIN ]] || { echo "no invent-proxy binary at $BIN (cargo build --release)" >&2; exit 1; }
mkdir -p "$OUT"
rm -f "$OUT"/callgrind.out*

TMP=$(mktemp -d /tmp/invent-profile.XXXXXX)
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT
chmod 755 "$TMP"

wait_port() {
  local i
  for i in $(seq 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on port $1" >&2
  exit 1
}

python3 "$HERE/pages.py" "$TMP/www"
chmod -R a+rX "$TMP/www"
cat >"$TMP/nginx.conf" <<EOF
worker_processes 1;
pid $TMP/nginx.pid;
error_log $TMP/error.log warn;
events { worker_connections 1024; }
http {
  types { text/html html; application/json json; }
  access_log off;
  keepalive_requests 100000;
  server {
    listen 127.0.0.1:$((PORT_BASE + 1));
    root $TMP/www; charset utf-8; gzip_static on;
    location /pass/ { alias $TMP/www/; }
  }
}
EOF
nginx -p "$TMP" -c "$TMP/nginx.conf" -g 'daemon off;' &
PIDS+=("$!")
wait_port $((PORT_BASE + 1))

cat >"$TMP/invent.yaml" <<EOF
listen: 127.0.0.1:$PORT_BASE
upstream:
  url: http://127.0.0.1:$((PORT_BASE + 1))
assistant:
  id: ast_bench
  script_url: https://www.useinvent.com/button.js
inject:
  exclude_paths: ["/pass/**"]
  # The markup sub_filter inserts: no Turbo id and attributes.
  turbo_permanent: false
limits:
  workers: 1
EOF
RUST_LOG=warn valgrind --tool=callgrind --instr-atstart=no --dump-instr=no \
  --callgrind-out-file="$OUT/callgrind.out" "$BIN" run --config "$TMP/invent.yaml" 2>"$TMP/valgrind.log" &
PIDS+=("$!")
VALGRIND=$!
wait_port "$PORT_BASE"

header=()
[[ -n $ACCEPT ]] && header=(-H "Accept-Encoding: $ACCEPT")
url="http://127.0.0.1:$PORT_BASE$PATH_"
# Warm-up: connections, pools, lazily built state.
wrk -t1 -c"$CONNECTIONS" -d2s "${header[@]}" "$url" >/dev/null
callgrind_control -i on "$VALGRIND" >/dev/null
python3 - "$url" "$REQUESTS" "$CONNECTIONS" "$ACCEPT" <<'PY'
import http.client, sys, threading
url, total, conns, accept = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
host, rest = url[len("http://"):].split("/", 1)
headers = {"Accept-Encoding": accept} if accept else {}
def run(n):
    c = http.client.HTTPConnection(host)
    for _ in range(n):
        c.request("GET", "/" + rest, headers=headers)
        r = c.getresponse(); r.read()
        assert r.status == 200, r.status
threads = [threading.Thread(target=run, args=(total // conns,)) for _ in range(conns)]
[t.start() for t in threads]
[t.join() for t in threads]
PY
callgrind_control -i off "$VALGRIND" >/dev/null
callgrind_control -d "$VALGRIND" >/dev/null
sleep 1
file=$(ls -S "$OUT"/callgrind.out* | head -1)
total=$(callgrind_annotate "$file" 2>/dev/null | awk '/PROGRAM TOTALS/ && !n++ { gsub(",", "", $1); print $1 }')
requests=$(( (REQUESTS / CONNECTIONS) * CONNECTIONS ))
echo "$PATH_ ${ACCEPT:+(Accept-Encoding: $ACCEPT) }: $((total / requests)) instructions per request ($requests requests, $file)"
callgrind_annotate --inclusive=yes "$file" 2>/dev/null | sed -n "/Ir/,\$p" | head -45 || true
