# shellcheck shell=bash
# The servers of the load benchmark and the checks run before measuring; sourced by run.sh
# (which sets TMP, HERE, BIN, the ports and the helpers log, die, wait_port, nginx_pids).
#
#   origin        nginx serving the generated files, and the pre-compressed .gz/.br beside
#                 them to a client that accepts them (gzip_static, brotli_static); /pass/
#                 serves the same files, for invent-proxy's passthrough rows
#   nginx         sub_filter in front of the origin (+njs for identity)
#   nginx-gz      the recipe for compressed origins: Accept-Encoding "" upstream, sub_filter,
#                 then gzip on (level 1, nginx's default) and brotli on (its default, 6)
#   invent-proxy  in front of the origin; /pass/** is in inject.exclude_paths

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
SUB_FILTER="sub_filter '</body>' '<invent-assistant assistant-id=\"ast_bench\"></invent-assistant>$SCRIPT_TAG</body>';"

# Whether Debian's brotli modules for nginx (and the brotli command) are installed.
have_brotli() { [[ -f $BROTLI_FILTER_MODULE && -f $BROTLI_STATIC_MODULE ]] && command -v brotli >/dev/null; }

start_origin() {
  mkdir -p "$TMP/www"
  python3 "$HERE/pages.py" "$TMP/www"
  local modules="" brotli=""
  if have_brotli; then
    # Quality 6, as gzip's level 6: what an origin compressing its pages ahead uses.
    brotli -q 6 -f -k "$TMP/www/html-30k.html" "$TMP/www/html-100k.html"
    modules="load_module $BROTLI_STATIC_MODULE;"
    brotli="brotli_static on;"
  fi
  chmod -R a+rX "$TMP/www"
  nginx_conf origin "$P_ORIGIN" "$modules" "root $TMP/www; charset utf-8; gzip_static on; $brotli
    location /pass/ { alias $TMP/www/; }"
  start_nginx origin "$P_ORIGIN"
  ORIGIN_PIDS=$(nginx_pids "$LAST_PID")
}

start_nginx_proxies() {
  local upstream="upstream origin { server 127.0.0.1:$P_ORIGIN; keepalive 64; }"
  nginx_conf nginx "$P_NGINX" "" "
    location / { proxy_pass http://origin; $PROXY_TO_ORIGIN $SUB_FILTER sub_filter_once on; }" "$upstream"
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

  # sub_filter cannot read compressed bodies: the page is fetched as identity and
  # compressed again on the way out, for a client that accepts it.
  local modules="" brotli=""
  have_brotli && modules="load_module $BROTLI_FILTER_MODULE;" brotli="brotli on;"
  nginx_conf nginx-gz "$P_NGINX_GZ" "$modules" "
    location / { proxy_pass http://origin; $PROXY_TO_ORIGIN $SUB_FILTER sub_filter_once on;
      gzip on; gzip_comp_level 1; $brotli }" "$upstream"
  start_nginx nginx-gz "$P_NGINX_GZ"
  NGINX_GZ_PIDS=$(nginx_pids "$LAST_PID")
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
inject:
  exclude_paths: ["/pass/**"]
  # The markup sub_filter inserts: no Turbo id and attributes.
  turbo_permanent: false
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
    for page in html-1m html-10k html-30k html-100k; do # html-100k last: kept for the comparison below
      code=$(fetch "$TMP/check-$name.html" "http://127.0.0.1:$port/$page.html")
      [[ $code == 200 ]] || die "$name answered $code for /$page.html"
      [[ $(grep -c '<invent-assistant' "$TMP/check-$name.html") == 1 ]] \
        || die "$name did not inject <invent-assistant> (once) into /$page.html"
    done
    fetch "$TMP/check-$name.json" "http://127.0.0.1:$port/json-200k.json" >/dev/null
    cmp -s "$TMP/check-$name.json" "$TMP/www/json-200k.json" || die "$name changed /json-200k.json"
  done
  fetch "$TMP/check-pass.html" "http://127.0.0.1:$P_INVENT/pass/html-100k.html" >/dev/null
  cmp -s "$TMP/check-pass.html" "$TMP/www/html-100k.html" || die "invent-proxy changed /pass/html-100k.html"
  {
    echo "invent-proxy, anonymous:"
    python3 "$HERE/report.py" injected "$TMP/www/html-100k.html" "$TMP/check-invent-proxy.html"
    echo "nginx sub_filter, anonymous:"
    python3 "$HERE/report.py" injected "$TMP/www/html-100k.html" "$TMP/check-nginx.html"
  } >>"$TMP/injected.txt"
  cmp -s "$TMP/check-invent-proxy.html" "$TMP/check-nginx.html" \
    && echo "anonymous pages from invent-proxy and nginx sub_filter are byte-identical" >>"$TMP/notes.txt" \
    || echo "WARNING: anonymous pages from invent-proxy and nginx sub_filter are not byte-identical" >>"$TMP/notes.txt"
}

# Compressed pages: every target answers in the coding asked for, and the pages the two
# proxies send decode to the same bytes as the plain rewrite (nginx's sub_filter page).
verify_compressed() {
  local coding page name_port name port code
  for coding in gzip br; do
    [[ $coding == br ]] && ! have_brotli && continue
    for page in html-30k html-100k; do
      fetch "$TMP/plain.html" "http://127.0.0.1:$P_NGINX/$page.html" >/dev/null
      for name_port in origin:$P_ORIGIN invent-proxy:$P_INVENT nginx-gz:$P_NGINX_GZ passthrough:$P_INVENT/pass; do
        name=${name_port%%:*} port=${name_port#*:}
        code=$(curl -sS --max-time 10 -o "$TMP/check.$coding" -D "$TMP/check.head" -w '%{http_code}' \
          -H "Accept-Encoding: $coding" "http://127.0.0.1:$port/$page.html")
        [[ $code == 200 ]] || die "$name answered $code for /$page.html ($coding)"
        grep -qi "^content-encoding: $coding" "$TMP/check.head" || die "$name sent /$page.html without $coding"
        python3 "$HERE/report.py" decode "$coding" "$TMP/check.$coding" >"$TMP/check.decoded" \
          || die "$name sent /$page.html as $coding that does not decode"
        case $name in
          origin | passthrough) cmp -s "$TMP/check.decoded" "$TMP/www/$page.html" || die "$name changed /$page.html ($coding)" ;;
          *) cmp -s "$TMP/check.decoded" "$TMP/plain.html" || die "$name's /$page.html ($coding) decodes to another page than sub_filter's" ;;
        esac
      done
    done
    echo "$coding pages from invent-proxy and nginx decode to the same bytes as the plain rewrite" >>"$TMP/notes.txt"
  done
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
