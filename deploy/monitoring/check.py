#!/usr/bin/env python3
"""The live half of deploy/monitoring/check.sh: the dashboard and the alert rules against a
real proxy, a real scrape and a real Prometheus.

    check.py PROXY_BINARY

1. Checks the dashboard's structure (importable, the datasource a variable, every query
   on it, units, rate windows) and that every alert has `for`, a severity, a summary and
   a description.
2. Starts, all on 127.0.0.1 with ports the OS picks: an upstream (in this process: an
   HTML page, a page with its own widget, JSON, a 404, a "who am I" endpoint, a JWKS URL
   that 404s), the proxy binary with three sites (app.test: JWT and lookup identity;
   down.test: an upstream that refuses connections; jwks.test: an optional jwks_url that
   does not load) and its admin listener, and Prometheus (Debian's), scraping the admin
   listener every second and evaluating alerts.yaml every second.
3. Sends traffic that makes every outcome the kit reads: pages injected, completed and
   passed (method, not_navigation, status, not_html, none), identity verified by token,
   cached token, lookup and cached lookup, signed out by lookup, rejected (bad_signature,
   unknown_key), a failed lookup and one skipped after it (backoff), an upstream connect error, a 421; and three reloads by SIGHUP (changed
   file, rejected file, restored file).
4. Scrapes /metrics and fails, naming each, on any metric the dashboard or the rules name
   (`invent_proxy_*`, suffixes as queried: `_total`, `_bucket`, `_sum`, `_count`, `_info`)
   that is not a sample name in the scrape, and on any label matcher whose label or value
   no scraped series has.
5. Runs every dashboard query (variables set to match everything) in Prometheus: each must
   succeed and return data. Every rule must evaluate without error, and the rejected
   reload must have fired InventProxyConfigReloadRejected.

Everything it starts is stopped at the end, pass or fail.
"""

import base64
import calendar
import hashlib
import hmac
import http.client
import http.server
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
DASHBOARD = HERE / "grafana-dashboard.json"
RULES = HERE / "alerts.yaml"

# Metric names as the kit writes them: the sample names Prometheus stores.
METRIC_NAME = re.compile(r"\binvent_proxy_[A-Za-z0-9_]+")
SELECTOR = re.compile(r"\b(invent_proxy_[A-Za-z0-9_]+)\s*\{([^}]*)\}")
MATCHER = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
# Labels Prometheus or the PodMonitor attaches to a target, not in the proxy's exposition.
TARGET_LABELS = {"job", "instance", "namespace", "pod", "pod_ready", "container", "endpoint"}
# Grafana's variables and what they become for Prometheus here.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "${__rate_interval}": "1m", "$__range": "1m",
                     "${__range}": "1m", "$__interval": "1s", "${__interval}": "1s",
                     "$job": ".+", "${job}": ".+", "$instance": ".+", "${instance}": ".+"}
JWT_SECRET = "monitoring-check-jwt-secret"

failures = []


def fail(message):
    failures.append(message)
    print(f"  FAIL {message}")


def ok(message):
    print(f"  ok   {message}")


# ---------------------------------------------------------------- static checks

def dashboard_queries(dashboard):
    """(where, expr) of every query: panel targets (rows' nested panels too) and variables."""
    queries = []

    def walk(panels):
        for panel in panels:
            for target in panel.get("targets", []):
                queries.append((f"panel {panel.get('title')!r} target {target.get('refId')}", target.get("expr", "")))
            walk(panel.get("panels", []))

    walk(dashboard.get("panels", []))
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") == "query":
            query = var.get("query")
            query = query.get("query", "") if isinstance(query, dict) else query
            queries.append((f"variable ${var['name']}", query))
    return queries


def rule_list(rules):
    return [r for group in rules.get("groups", []) for r in group.get("rules", [])]


def check_dashboard(dashboard):
    print("== dashboard: structure")
    ds_vars = [v for v in dashboard.get("templating", {}).get("list", [])
               if v.get("type") == "datasource" and v.get("query") == "prometheus"]
    if not ds_vars:
        fail("the dashboard has no Prometheus datasource variable")
        return
    ds_ref = "${" + ds_vars[0]["name"] + "}"
    if dashboard.get("id") is not None:
        fail("the dashboard has an id: Grafana would try to overwrite that dashboard on import (use null)")
    for key in ("uid", "title", "schemaVersion", "panels"):
        if not dashboard.get(key):
            fail(f"the dashboard has no {key}")
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    ids, cells = set(), {}
    panels = list(dashboard["panels"])
    for row in dashboard["panels"]:
        panels += row.get("panels", [])
    for panel in panels:
        title = panel.get("title")
        if panel.get("id") in ids:
            fail(f"panel {title!r}: id {panel.get('id')} used twice")
        ids.add(panel.get("id"))
        grid = panel.get("gridPos", {})
        if grid.get("x", 0) + grid.get("w", 0) > 24:
            fail(f"panel {title!r}: wider than the 24 columns")
        for dy in range(grid.get("h", 0)):
            for dx in range(grid.get("w", 0)):
                cell = (grid.get("x", 0) + dx, grid.get("y", 0) + dy)
                if cell in cells and panel["type"] != "row":
                    fail(f"panel {title!r} overlaps panel {cells[cell]!r}")
                    break
                cells[cell] = title
        if panel["type"] == "row":
            continue
        if not panel.get("targets"):
            fail(f"panel {title!r} has no query")
        if (panel.get("datasource") or {}).get("uid") != ds_ref:
            fail(f"panel {title!r}: datasource is not {ds_ref}")
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit") or \
            panel.get("options", {}).get("yAxis", {}).get("unit")
        if not unit:
            fail(f"panel {title!r} has no unit")
        if not panel.get("description"):
            fail(f"panel {title!r} has no description")
        refs = [t.get("refId") for t in panel.get("targets", [])]
        if len(refs) != len(set(refs)):
            fail(f"panel {title!r}: refIds {refs} repeat")
        for target in panel.get("targets", []):
            if (target.get("datasource") or {}).get("uid") != ds_ref:
                fail(f"panel {title!r} target {target.get('refId')}: datasource is not {ds_ref}")
    for where, expr in dashboard_queries(dashboard):
        for window in re.findall(r"\b(?:rate|increase|irate)\s*\([^()\[]*\[([^\]]+)\]", expr):
            if window != "$__rate_interval":
                fail(f"{where}: rate window [{window}] is not [$__rate_interval]")
        for var in re.findall(r"\$\{?(\w+)", expr):
            if not var.startswith("__") and var not in variables:
                fail(f"{where}: ${var} is not a dashboard variable")
    ok(f"{len(panels)} panels ({sum(1 for p in panels if p['type'] == 'row')} rows), "
       f"{len(dashboard_queries(dashboard))} queries, all on {ds_ref}, each with a unit and a description")


def check_rules_static(rules):
    print("== alert rules: labels and annotations")
    alerts = [r for r in rule_list(rules) if "alert" in r]
    for rule in alerts:
        name = rule["alert"]
        if "for" not in rule:
            fail(f"{name}: no `for:`")
        if rule.get("labels", {}).get("severity") not in ("warning", "critical"):
            fail(f"{name}: severity is not warning or critical")
        for key in ("summary", "description"):
            if not rule.get("annotations", {}).get(key):
                fail(f"{name}: no {key} annotation")
    ok(f"{len(alerts)} alerts ({', '.join(sorted({r['alert'] for r in alerts}))}): for, severity, summary, description")


# ---------------------------------------------------------------- the upstream

PAGE = b"<!doctype html><html><head><title>Shop</title></head><body><h1>Shop</h1></body></html>"
OWN_WIDGET = (b"<!doctype html><html><head><title>Shop</title></head><body><h1>Shop</h1>"
              b"<invent-assistant assistant-id=\"ast_own\"></invent-assistant></body></html>")


class Upstream(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, content_type, body):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        path = self.path.split("?")[0]
        if path == "/whoami":
            if "sid=alice" in self.headers.get("Cookie", ""):
                return self.send(200, "application/json", b'{"id": "alice", "name": "Alice"}')
            if "sid=broken" in self.headers.get("Cookie", ""):
                return self.send(500, "application/json", b'{"error": "database down"}')
            return self.send(401, "application/json", b"{}")
        if path == "/jwks.json":
            return self.send(404, "text/plain", b"no key set here\n")
        if path == "/data.json":
            return self.send(200, "application/json", b'{"ok": true}')
        if path == "/missing":
            return self.send(404, "text/html; charset=utf-8", PAGE)
        if path == "/own-widget":
            return self.send(200, "text/html; charset=utf-8", OWN_WIDGET)
        return self.send(200, "text/html; charset=utf-8", PAGE)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(length)
        self.send(200, "application/json", b'{"saved": true}')


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def hs256(claims, secret):
    def b64(data):
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    sig = b64(hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest())
    return f"{head}.{body}.{sig}"


# ---------------------------------------------------------------- processes

class Proxy:
    """The proxy binary, its JSON log lines collected as they come."""

    def __init__(self, binary, config, env):
        self.lines = []
        self.cond = threading.Condition()
        self.proc = subprocess.Popen([binary, "run", "--config", str(config)], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, env=env)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait_for(self, message, after=0, timeout=20):
        """The first JSON log line from index `after` whose message starts with `message`."""
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                for line in self.lines[after:]:
                    try:
                        event = json.loads(line)
                    except ValueError:
                        continue
                    if str(event.get("message", "")).startswith(message):
                        return event
                if self.proc.poll() is not None:
                    raise RuntimeError(f"the proxy exited ({self.proc.returncode}) before logging {message!r}:\n"
                                       + "\n".join(self.lines[-20:]))
                left = end - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"the proxy did not log {message!r} within {timeout}s:\n"
                                       + "\n".join(self.lines[-20:]))
                self.cond.wait(left)

    def reload(self, message):
        after = len(self.lines)
        self.proc.send_signal(signal.SIGHUP)
        return self.wait_for(message, after)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Prometheus:
    def __init__(self, workdir, admin, rules):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = workdir / "prometheus.yml"
        config.write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(rules)],
            # The labels the PodMonitor gives a pod's series (job from jobLabel).
            "scrape_configs": [{"job_name": "invent-proxy", "static_configs": [
                {"targets": [admin], "labels": {"namespace": "monitoring-check", "pod": "invent-proxy-0"}}]}],
        }))
        self.log = workdir / "prometheus.log"
        self.log_file = open(self.log, "w")
        self.proc = subprocess.Popen(
            ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={workdir / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=self.log_file, stderr=subprocess.STDOUT)

    def tail(self):
        return "\n".join(self.log.read_text().splitlines()[-15:])

    def get(self, path, **params):
        url = self.url + path + ("?" + urllib.parse.urlencode(params) if params else "")
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read())

    def query(self, expr):
        """(result, error) of an instant query now."""
        data = urllib.parse.urlencode({"query": expr}).encode()
        try:
            with urllib.request.urlopen(self.url + "/api/v1/query", data=data, timeout=5) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as e:
            body = json.loads(e.read() or b"{}")
        if body.get("status") != "success":
            return None, body.get("error", "no answer")
        return body["data"]["result"], None

    def wait_ready(self, timeout=20):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited ({self.proc.returncode}):\n{self.tail()}")
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=1) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"prometheus not ready within {timeout}s:\n{self.tail()}")

    def wait_scraped_after(self, moment, timeout=30):
        """Waits for a scrape of the proxy that started after `moment` (Unix time)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            result, _ = self.query("timestamp(invent_proxy_build_info)")
            if result and float(result[0]["value"][1]) > moment:
                return
            time.sleep(0.2)
        raise RuntimeError(f"prometheus has not scraped the proxy since {moment} within {timeout}s "
                           f"(targets: {self.get('/api/v1/targets')['data']['activeTargets']}):\n{self.tail()}")

    def wait_rules_evaluated_after(self, moment, timeout=20):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            groups = self.get("/api/v1/rules")["data"]["groups"]
            times = [parse_rfc3339(r.get("lastEvaluation")) for g in groups for r in g["rules"]]
            if times and min(times) > moment:
                return groups
            time.sleep(0.2)
        raise RuntimeError(f"prometheus has not evaluated every rule since {moment} within {timeout}s")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_file.close()


def parse_rfc3339(text):
    """Unix time of Prometheus's `2026-01-02T03:04:05.123456789Z` (0 for its zero time)."""
    if not text or text.startswith("0001-"):
        return 0.0
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$", text)
    if not m:
        return 0.0
    base = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S"))
    frac = float("0." + m.group(2)) if m.group(2) else 0.0
    offset = 0
    if m.group(3) != "Z":
        sign = 1 if m.group(3)[0] == "+" else -1
        hours, minutes = m.group(3)[1:].split(":")
        offset = sign * (int(hours) * 3600 + int(minutes) * 60)
    return base + frac - offset


# ---------------------------------------------------------------- traffic

def request(listen, host, path="/", method="GET", headers=None, body=None):
    host_, port = listen.rsplit(":", 1)
    conn = http.client.HTTPConnection(host_, int(port), timeout=10)
    try:
        all_headers = {"Host": host, "Accept": "text/html,application/xhtml+xml"}
        all_headers.update(headers or {})
        conn.request(method, path, body=body, headers=all_headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def traffic(listen):
    """One round of requests, each with the status it must get; what each exercises."""
    token = hs256({"sub": "user-42", "name": "Ada", "exp": int(time.time()) + 3600}, JWT_SECRET)
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    html = {"Sec-Fetch-Dest": "document"}
    plan = [
        ("injected, identity none", "app.test", "/", "GET", html, None, 200),
        ("verified jwt_cookie", "app.test", "/", "GET", {**html, "Cookie": f"session={token}"}, None, 200),
        ("verified:cached jwt_cookie", "app.test", "/", "GET", {**html, "Cookie": f"session={token}"}, None, 200),
        ("rejected bad_signature", "app.test", "/", "GET", {**html, "Cookie": f"session={forged}"}, None, 200),
        ("verified lookup", "app.test", "/", "GET", {**html, "Cookie": "sid=alice"}, None, 200),
        ("verified:cached lookup", "app.test", "/", "GET", {**html, "Cookie": "sid=alice"}, None, 200),
        ("signed_out lookup", "app.test", "/", "GET", {**html, "Cookie": "sid=bob"}, None, 200),
        ("signed_out:cached lookup", "app.test", "/", "GET", {**html, "Cookie": "sid=bob"}, None, 200),
        ("failed:lookup_status", "app.test", "/", "GET", {**html, "Cookie": "sid=broken"}, None, 200),
        ("skipped:backoff (error_ttl)", "app.test", "/", "GET", {**html, "Cookie": "sid=broken"}, None, 200),
        ("completed (own widget)", "app.test", "/own-widget", "GET", html, None, 200),
        ("passed not_html", "app.test", "/data.json", "GET", html, None, 200),
        ("passed status", "app.test", "/missing", "GET", html, None, 404),
        ("passed method", "app.test", "/form", "POST", {"Content-Type": "application/json"}, b'{"q": 1}', 200),
        ("passed not_navigation", "app.test", "/", "GET", {"Sec-Fetch-Dest": "script"}, None, 200),
        ("upstream connect error", "down.test", "/", "GET", html, None, 502),
        ("rejected unknown_key (JWKS not loaded)", "jwks.test", "/", "GET", {**html, "Cookie": f"session={token}"}, None, 200),
        ("421, passed none", "nobody.test", "/", "GET", html, None, 421),
    ]
    for what, host, path, method, headers, body, want in plan:
        status, content = request(listen, host, path, method, headers, body)
        if status != want:
            raise RuntimeError(f"traffic: {what}: {method} {host}{path} answered {status}, not {want}")
        if what.startswith("injected") and b"<invent-assistant" not in content:
            raise RuntimeError(f"traffic: {what}: the page came back without the widget")
    return len(plan)


def proxy_config(upstream_port, dead_port, assistant_id):
    identity = {"secret_key": "sk_monitoring_check",
                "jwt": {"cookie": "session", "algorithms": ["HS256"], "secret": JWT_SECRET},
                "lookup": {"url": "/whoami", "cookies": ["sid"], "timeout": "2s", "cache_ttl": "60s"}}
    jwks = {"secret_key": "sk_monitoring_check",
            "jwt": {"cookie": "session", "algorithms": ["RS256"], "jwks_optional": True, "jwks_timeout": "2s",
                    "jwks_url": f"http://127.0.0.1:{upstream_port}/jwks.json"}}
    return {
        "listen": "127.0.0.1:0",
        "admin": {"listen": "127.0.0.1:0"},
        "log": {"format": "json", "level": "info"},
        "shutdown_grace_period": "1s",
        "assistant": {"id": assistant_id},
        "sites": [
            {"hosts": ["app.test"], "upstream": {"url": f"http://127.0.0.1:{upstream_port}"}, "identity": identity},
            {"hosts": ["down.test"], "upstream": {"url": f"http://127.0.0.1:{dead_port}", "connect_timeout": "2s"}},
            {"hosts": ["jwks.test"], "upstream": {"url": f"http://127.0.0.1:{upstream_port}"}, "identity": jwks},
        ],
    }


# ---------------------------------------------------------------- the scrape

def parse_exposition(text):
    """({sample name: [labels, ...]}, {family name from # TYPE lines}) of a Prometheus or
    OpenMetrics text exposition."""
    samples, families = {}, set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            families.add(line.split()[2])
        if not line or line.startswith("#"):
            continue
        m = re.match(r"([A-Za-z_:][A-Za-z0-9_:]*)(\{(.*)\})?\s", line)
        if not m:
            continue
        labels = dict((k, bytes(v, "utf-8").decode("unicode_escape"))
                      for k, v in re.findall(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        samples.setdefault(m.group(1), []).append(labels)
    return samples, families


def check_names(queries, texts, samples, families):
    """Names in `queries` must be sample names of the scrape (what Prometheus stores and a
    query selects); names in the rest of `texts` (descriptions, annotations, comments)
    may also be a family's name (`invent_proxy_request_duration_seconds`)."""
    print("== every metric the dashboard and the rules name is in the scrape")
    named = {}
    for where, text in queries:
        for name in METRIC_NAME.findall(text):
            named.setdefault(name, set()).add(where)
    prose = {}
    for where, text in texts:
        for name in METRIC_NAME.findall(text):
            if name not in named:
                prose.setdefault(name, set()).add(where)
    for name in sorted(named):
        if name in samples:
            ok(f"{name}: {len(samples[name])} series (queried in {', '.join(sorted(named[name]))})")
    for name in sorted(prose):
        if name in samples or name in families:
            ok(f"{name}: {'a sample' if name in samples else 'a family'} of the scrape (named in the text of "
               f"{', '.join(sorted(prose[name]))})")
    for name in sorted(n for n in named if n not in samples):
        family = re.sub(r"_(total|bucket|sum|count|info|created)$", "", name)
        near = sorted(s for s in samples if s.startswith(family))
        fail(f"{name}, queried in {', '.join(sorted(named[name]))}, is not in the scrape"
             + (f" (the scrape has {', '.join(near)})" if near else " (no sample of that family at all)"))
    for name in sorted(n for n in prose if n not in samples and n not in families):
        fail(f"{name}, named in {', '.join(sorted(prose[name]))}, is not in the scrape")


def check_matchers(exprs, samples):
    print("== every label matcher matches scraped series")
    checked = 0
    for where, expr in exprs:
        for metric, body in SELECTOR.findall(expr):
            series = samples.get(metric)
            if series is None:
                continue  # reported by the name check
            for label, op, value in MATCHER.findall(body):
                if label in TARGET_LABELS:
                    continue
                checked += 1
                values = {s.get(label) for s in series if label in s}
                if not values:
                    fail(f"{where}: {metric} has no label {label!r} in the scrape (matcher {label}{op}\"{value}\")")
                elif op == "=" and value not in values:
                    fail(f"{where}: no {metric} series has {label}=\"{value}\" (the scrape has {sorted(values)})")
                elif op == "=~" and not any(re.fullmatch(value, v) for v in values):
                    fail(f"{where}: no {metric} series has {label} matching \"{value}\" (the scrape has {sorted(values)})")
    ok(f"{checked} matchers on scraped labels: each label exists, each = and =~ value is scraped")


def substitute(expr):
    for var in sorted(GRAFANA_VARIABLES, key=len, reverse=True):
        expr = expr.replace(var, GRAFANA_VARIABLES[var])
    return expr


def main():
    binary = sys.argv[1]
    started = time.monotonic()
    dashboard = json.loads(DASHBOARD.read_text())
    rules = yaml.safe_load(RULES.read_text())
    check_dashboard(dashboard)
    check_rules_static(rules)
    dash_queries = dashboard_queries(dashboard)
    rule_exprs = [(f"alert {r.get('alert') or r.get('record')}", r["expr"]) for r in rule_list(rules)]

    print("== a real proxy, upstream and Prometheus on 127.0.0.1")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    upstream_port = server.server_address[1]
    # Bound but never listening: connections to it are refused.
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead_port = dead.getsockname()[1]
    proxy = prometheus = None
    with tempfile.TemporaryDirectory(prefix="invent-proxy-monitoring-") as tmp:
        workdir = Path(tmp)
        config = workdir / "invent-proxy.yaml"
        try:
            config.write_text(yaml.safe_dump(proxy_config(upstream_port, dead_port, "ast_monitoring_1")))
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
            proxy = Proxy(binary, config, env)
            serving = proxy.wait_for("invent-proxy is serving")
            admin = proxy.wait_for("admin listener")["admin"]
            listen = serving["listen"]
            ok(f"proxy {binary} serving on {listen}, admin listener {admin}; upstream 127.0.0.1:{upstream_port}, "
               f"refused 127.0.0.1:{dead_port}")
            prometheus = Prometheus(workdir, admin, RULES)
            prometheus.wait_ready()
            ok(f"prometheus on {prometheus.url}, scraping {admin} and evaluating {RULES.name} every second")

            sent = traffic(listen)
            # A changed config, a rejected one, and the changed one again.
            config.write_text(yaml.safe_dump(proxy_config(upstream_port, dead_port, "ast_monitoring_2")))
            proxy.reload("config reloaded")
            good = config.read_text()
            config.write_text(good + "not_a_key: true\n")
            proxy.reload("config reload rejected")
            config.write_text(good)
            proxy.reload("config reloaded")
            ok(f"{sent} requests sent; reloads by SIGHUP: success, rejected, success")
            # Prometheus's first scrape comes a few seconds after it starts (target
            # discovery); then a second round, so that rates see counters grow.
            prometheus.wait_scraped_after(time.time())
            sent += traffic(listen)
            after = time.time()
            prometheus.wait_scraped_after(after)
            groups = prometheus.wait_rules_evaluated_after(after)
            ok(f"{sent} requests in all; scraped and every rule evaluated since "
               f"({time.monotonic() - started:.1f}s from the start)")

            with urllib.request.urlopen(f"http://{admin}/metrics", timeout=5) as response:
                scrape = response.read().decode()
            samples, families = parse_exposition(scrape)
            try:
                urllib.request.urlopen(f"http://{admin}/readyz", timeout=5)
                fail("/readyz answered 200 although jwks.test's jwks_url has not loaded")
            except urllib.error.HTTPError as e:
                reason = e.read().decode().strip()
                if e.code == 503 and "jwks_url not loaded" in reason:
                    ok(f"/readyz: {e.code} {reason!r} (what InventProxyJWKSNotLoaded stands in for)")
                else:
                    fail(f"/readyz answered {e.code} {reason!r}, not 503 for the jwks_url")

            check_names([("grafana-dashboard.json", "\n".join(e for _, e in dash_queries)),
                         ("alerts.yaml", "\n".join(e for _, e in rule_exprs))],
                        [("grafana-dashboard.json", DASHBOARD.read_text()), ("alerts.yaml", RULES.read_text())],
                        samples, families)
            check_matchers(dash_queries + rule_exprs, samples)

            print("== every dashboard query runs in Prometheus and returns data")
            for where, expr in dash_queries:
                query = substitute(expr)
                lv = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\)\s*", query, re.S)
                if lv:
                    query = lv.group(1)
                if "$" in query:
                    fail(f"{where}: a variable is left after substitution: {query}")
                    continue
                result, error = prometheus.query(query)
                if error:
                    fail(f"{where}: Prometheus rejects the query: {error}\n      {query}")
                elif not result:
                    fail(f"{where}: no data\n      {query}")
                elif lv and not any(lv.group(2) in r["metric"] for r in result):
                    fail(f"{where}: no series with the label {lv.group(2)}")
            ok(f"{len(dash_queries)} queries ($__rate_interval and $__range as 1m, $job and $instance as .+)")

            print("== every rule evaluates in Prometheus")
            states = {}
            for group in groups:
                for rule in group["rules"]:
                    if rule.get("health") != "ok":
                        fail(f"rule {rule['name']}: {rule.get('health')}: {rule.get('lastError')}")
                    for alert in rule.get("alerts", []):
                        states.setdefault(rule["name"], set()).add(alert["state"])
            ok(f"{sum(len(g['rules']) for g in groups)} rules healthy; active: "
               + (", ".join(f"{name} ({'/'.join(sorted(s))})" for name, s in sorted(states.items())) or "none"))
            if "firing" not in states.get("InventProxyConfigReloadRejected", set()):
                fail("InventProxyConfigReloadRejected is not firing after a rejected reload")
            else:
                ok("InventProxyConfigReloadRejected fired on the rejected reload")
        except RuntimeError as e:
            fail(str(e))
        finally:
            if prometheus:
                prometheus.stop()
            if proxy:
                proxy.stop()
            server.shutdown()
            dead.close()
    elapsed = time.monotonic() - started
    if failures:
        print(f"\ndeploy/monitoring/check.py: {len(failures)} problem(s) ({elapsed:.1f}s):", file=sys.stderr)
        for f in failures:
            print(f"  {f}", file=sys.stderr)
        sys.exit(1)
    print(f"deploy/monitoring/check.py: dashboard and rules check out against a real scrape ({elapsed:.1f}s)")


if __name__ == "__main__":
    main()
