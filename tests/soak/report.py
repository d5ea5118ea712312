#!/usr/bin/env python3
"""Helpers of the soak test (tests/soak/run.sh).

    report.py sample PID PROXY_PORT ADMIN_PORT UPSTREAM_PORT
        one JSON line: the process's VmRSS (kB) and its open fds, by kind: listening
        sockets, client connections (to PROXY_PORT or ADMIN_PORT), upstream connections
        (to UPSTREAM_PORT), other sockets, and everything else (files, epoll, pipes, ...)

    report.py summary DIR
        reads DIR/{wrk-*.txt, faults-*.json, proxy.log, metrics-*.txt, sample-*.json,
        samples.jsonl, run.json}, prints the markdown summary and exits 1 if the run failed:
        any unattributable error, the proxy gone or not healthy, or fds/RSS past the bounds.
"""

import json
import os
import re
import sys
from pathlib import Path

# Bounds of "flat". RSS: the load holds at most a few dozen responses at once (each one's
# buffers ~100-300 KB), so a warmed-up proxy has no reason to grow by 20 MB; a leak of
# 100 bytes a request would pass it within the 60-second run. Fds: the same count at the
# end as at the start, within FD_GROWTH, apart from the upstream keep-alive pool, a cache
# that hyper keeps 90 s and that the load's concurrency caps (POOL_FACTOR x its
# connections, as a connection being set up can outlive the need for it).
RSS_GROWTH_KB = 20 * 1024
FD_GROWTH = 5
POOL_FACTOR = 2

EXPECTED = {
    "reset": "RST after 30 KB: 502, or 200 cut short",
    "reset_json": "RST mid-body, JSON passed through: 502, or 200 cut short",
    "reset_chunked": "RST between chunks: 502, or 200 cut short",
    "short": "FIN before Content-Length: 502, or 200 cut short",
    "stall": "silence after 30 KB: 200 cut short after body_stall_timeout",
    "stall_head": "no head: 504 after response_timeout",
    "trickle": "256 B / 40 ms: 200, intact, widget",
    "malformed": "not HTTP (5 variants): 502",
    "bigheaders": "40 KB response head: 502",
    "close": "closed (FIN or RST) unanswered: 502",
    "client_abort": "client goes away after 16 KB of 1 MB",
    "client_early_abort": "client goes away before the upstream answers",
    "slow_reader": "1 MB read at 8 KB / 20 ms: 200, intact, widget",
    "slowloris": "head a byte / 200 ms: closed after header_read_timeout",
    "big_request_head": "150 KB request head: 431 (or reset)",
    "clean_page": "control, a fresh connection: 200, intact, widget",
}
SUCCESSES = ("trickle", "slow_reader", "clean_page")


def tcp_sockets():
    """inode -> (local port, remote port, state) for every TCP socket of the machine."""
    table = {}
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            table[f[9]] = (int(f[1].rsplit(":", 1)[1], 16), int(f[2].rsplit(":", 1)[1], 16), f[3])
    return table


def sample(pid: int, proxy_port: int, admin_port: int, upstream_port: int) -> dict:
    status = Path(f"/proc/{pid}/status").read_text()
    rss = int(re.search(r"^VmRSS:\s+(\d+)", status, re.M).group(1))
    counts = {"listen": 0, "client": 0, "upstream": 0, "other_socket": 0, "non_socket": 0}
    tcp = tcp_sockets()
    fd_dir = f"/proc/{pid}/fd"
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(f"{fd_dir}/{fd}")
        except OSError:
            continue  # closed meanwhile
        m = re.fullmatch(r"socket:\[(\d+)\]", target)
        if not m:
            counts["non_socket"] += 1
            continue
        local, remote, state = tcp.get(m.group(1), (0, 0, ""))
        if state == "0A":
            counts["listen"] += 1
        elif local in (proxy_port, admin_port):
            counts["client"] += 1
        elif remote == upstream_port:
            counts["upstream"] += 1
        else:
            counts["other_socket"] += 1
    return {"rss_kb": rss, "fds": sum(counts.values()), **counts}


def metrics(path: Path) -> dict:
    """name{labels} -> value, from a Prometheus text scrape."""
    out = {}
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        key, _, value = line.rpartition(" ")
        try:
            out[key] = float(value)
        except ValueError:
            pass
    return out


def series(m: dict, name: str) -> dict:
    """label text -> value, for the series of metric `name`."""
    out = {}
    for key, value in m.items():
        if key == name or key.startswith(name + "{"):
            out[key[len(name):].strip("{}") or "-"] = value
    return out


def delta(end: dict, start: dict, name: str) -> dict:
    s = series(start, name)
    return {k: v - s.get(k, 0) for k, v in series(end, name).items() if v - s.get(k, 0)}


def wrk_result(path: Path) -> dict:
    for line in path.read_text().splitlines() if path.exists() else []:
        if line.startswith("SOAK_WRK "):
            return json.loads(line[len("SOAK_WRK "):])
    return {"missing": True, "first_bad": f"no SOAK_WRK line in {path.name}"}


WRK_BAD = ("bad_status", "bad_page", "bad_json", "no_hash", "connect_errors", "read_errors", "write_errors", "timeouts")


def wrk_unattributable(r: dict) -> int:
    return 1 if r.get("missing") else sum(r.get(k, 0) for k in WRK_BAD)


def log_lines(path: Path):
    """(attributable: kind -> count, unattributable: [line]) from the proxy's JSON log at
    warn: a WARN/ERROR access line on a /fault/ path is the injected fault's; anything
    else (a clean path's failure, a panic, an accept error) is not."""
    attributable, unattributable = {}, []
    for line in path.read_text(errors="replace").splitlines() if path.exists() else []:
        try:
            entry = json.loads(line)
        except ValueError:
            unattributable.append(line[:300])  # not a log line: a panic message, say
            continue
        if entry.get("level") not in ("WARN", "ERROR"):
            continue
        if entry.get("target") == "access" and str(entry.get("path", "")).startswith("/fault/"):
            kind = entry.get("error_kind") or f"status_{entry.get('status')}"
            attributable[kind] = attributable.get(kind, 0) + 1
        else:
            unattributable.append(log_summary(entry))
    return attributable, unattributable


def log_summary(entry: dict) -> str:
    """The fields of a log line that say what failed, the error whole (a line cut at a
    fixed width loses it behind the fields before it)."""
    keys = ("timestamp", "level", "target", "method", "path", "status", "duration_ms", "error_kind", "error",
            "message")
    return " ".join(f"{k}={entry[k]}" for k in keys if k in entry)


def mb(kb: int) -> str:
    return f"{kb / 1024:.1f}"


def summary(d: Path) -> int:
    run = json.loads((d / "run.json").read_text())
    start = json.loads((d / "sample-start.json").read_text())
    end = json.loads((d / "sample-end.json").read_text()) if (d / "sample-end.json").exists() else None
    samples = [json.loads(x) for x in (d / "samples.jsonl").read_text().splitlines() if x.strip()] \
        if (d / "samples.jsonl").exists() else []
    m0, m1 = metrics(d / "metrics-start.txt"), metrics(d / "metrics-end.txt")
    phases = ("warmup", "main")
    wrk = {(p, mode): wrk_result(d / f"wrk-{p}-{mode}.txt") for p in phases for mode in ("anon", "session")}
    faults = {p: json.loads((d / f"faults-{p}.json").read_text()) if (d / f"faults-{p}.json").exists() else None
              for p in phases}
    log_ok, log_bad = log_lines(d / "proxy.log")

    failures = []
    unattributable = 0
    for key, r in wrk.items():
        n = wrk_unattributable(r)
        unattributable += n
        if n:
            failures.append(f"wrk {key[0]} {key[1]}: {n} bad responses or errors (first: {r.get('first_bad') or 'socket errors'})")
    for p, f in faults.items():
        if f is None:
            unattributable += 1
            failures.append(f"fault driver ({p}) left no result")
            continue
        for kind, e in sorted(f.items()):
            if e["unattributable"]:
                unattributable += e["unattributable"]
                failures.append(f"{p} {kind}: {e['unattributable']} unattributable, e.g. {e['examples'][0]}")
    unattributable += len(log_bad)
    failures += [f"proxy log: {x}" for x in log_bad[:5]]

    if not run.get("alive"):
        failures.append("the proxy was not running at the end")
    if not run.get("healthz"):
        failures.append("/healthz did not answer 200 ok at the end")
    rss_bound = start["rss_kb"] + RSS_GROWTH_KB
    fd_bound = start["fds"] - start["upstream"] + FD_GROWTH
    pool_bound = POOL_FACTOR * (run["wrk_anon"] + run["wrk_session"] + run["workers"])
    if end:
        if end["rss_kb"] > rss_bound:
            failures.append(f"RSS grew from {mb(start['rss_kb'])} MB to {mb(end['rss_kb'])} MB (bound {mb(rss_bound)})")
        if end["fds"] - end["upstream"] > fd_bound:
            failures.append(f"open fds besides the upstream pool grew from {start['fds'] - start['upstream']} "
                            f"to {end['fds'] - end['upstream']} (bound {fd_bound})")
        if end["upstream"] > pool_bound:
            failures.append(f"{end['upstream']} upstream connections at the end, more than the load can hold "
                            f"(bound {pool_bound})")
        if end["client"]:
            failures.append(f"{end['client']} client connections still open after the load stopped")
    else:
        failures.append("no end sample (the proxy was gone)")
    open_conns = series(m1, "invent_proxy_open_connections").get("-")
    if open_conns:
        failures.append(f"invent_proxy_open_connections is {open_conns:.0f} after the load stopped")

    main = {mode: wrk[("main", mode)] for mode in ("anon", "session")}
    fmain = faults["main"] or {}
    served = delta(m1, m0, "invent_proxy_requests_total")
    out = []
    w = out.append
    w(f"## Soak test: {run['seconds']} s, {run['date']}, {run['machine']}")
    w("")
    w(f"invent-proxy {run['commit']}, release build; wrk {run['wrk_anon']}+{run['wrk_session']} connections "
      f"(anonymous /page,/page,/data; signed-in /session/page), {run['workers']} fault-driver workers; "
      f"limits: body_stall_timeout {run['stall_timeout']}s, response_timeout {run['response_timeout']}s, "
      f"header_read_timeout {run['header_timeout']}s. Warm-up {run['warmup']} s (same mix) before the start sample.")
    w("")
    total_main = sum(r.get("requests", 0) for r in main.values()) + sum(e["runs"] for e in fmain.values())
    w(f"**Result: {'PASS' if not failures else 'FAIL'}.** Requests served in the measured {run['seconds']} s: "
      f"{total_main:,} ({sum(served.values()):,.0f} counted by the proxy's `invent_proxy_requests_total`: "
      + ", ".join(f"{k.split('status=')[-1].strip(chr(34))} {v:,.0f}" for k, v in sorted(served.items())) + ").")
    w("")
    w("| clean traffic (wrk) | requests | 200 intact | unattributable | p50 ms | p99 ms | max ms |")
    w("|---|--:|--:|--:|--:|--:|--:|")
    for mode, r in main.items():
        w(f"| {mode} | {r.get('requests', 0):,} | {r.get('ok', 0):,} | {wrk_unattributable(r)} | "
          f"{r.get('p50_ms', 0):.2f} | {r.get('p99_ms', 0):.2f} | {r.get('max_ms', 0):.0f} |")
    w("")
    w("| fault or abusive client | expected outcome | runs | as expected | unattributable | mean s | max s |")
    w("|---|---|--:|--:|--:|--:|--:|")
    for kind in sorted(fmain, key=lambda k: (k in SUCCESSES, list(EXPECTED).index(k) if k in EXPECTED else 99)):
        e = fmain[kind]
        w(f"| {kind} | {EXPECTED.get(kind, '')} | {e['runs']:,} | {e['attributable']:,} | {e['unattributable']} | "
          f"{e['seconds_total'] / max(e['runs'], 1):.2f} | {e['seconds_max']:.2f} |")
    w("")
    attributed = sum(e["attributable"] for k, e in fmain.items() if k not in SUCCESSES)
    w(f"**Errors attributable to injected faults: {attributed:,}** (the runs above with an expected failure, "
      "all as expected; the successes under trickle, slow reading and the control are not counted).")
    w("")
    up = delta(m1, m0, "invent_proxy_upstream_errors_total")
    w("Proxy's own count of the faults, over the measured run (`invent_proxy_upstream_errors_total`): "
      + (", ".join(f"{k.split('=')[-1].strip(chr(34))} {v:,.0f}" for k, v in sorted(up.items())) or "none")
      + "; access lines at WARN on /fault/ paths, whole run with warm-up, by `error_kind`: "
      + (", ".join(f"{k} {v:,}" for k, v in sorted(log_ok.items())) or "none") + ".")
    retries = sum(delta(m1, m0, "invent_proxy_upstream_retries_total").values())
    w(f"Requests sent again after the upstream closed a reused keep-alive connection under them "
      f"(`invent_proxy_upstream_retries_total`, measured run): {retries:,.0f}.")
    w("")
    w(f"**Unattributable errors: {unattributable}** (wrk non-200s, socket errors, timeouts and damaged bodies; "
      "fault outcomes other than the expected; WARN lines of the proxy on clean paths; warm-up included).")
    w("")
    w("| proxy process | start (after warm-up, idle) | max during the run | end (idle, 3 s after) | bound |")
    w("|---|--:|--:|--:|--:|")
    max_rss = max([s["rss_kb"] for s in samples] + [start["rss_kb"]])
    max_fds = max([s["fds"] for s in samples] + [start["fds"]])
    e = end or {"rss_kb": 0, "fds": 0, "upstream": 0, "client": 0}
    w(f"| RSS MB | {mb(start['rss_kb'])} | {mb(max_rss)} | {mb(e['rss_kb'])} | {mb(rss_bound)} |")
    w(f"| open fds | {start['fds']} | {max_fds} | {e['fds']} | |")
    w(f"| of which upstream keep-alive connections | {start['upstream']} | "
      f"{max([s['upstream'] for s in samples] + [0])} | {e['upstream']} | {pool_bound} |")
    w(f"| open fds besides those | {start['fds'] - start['upstream']} | "
      f"{max([s['fds'] - s['upstream'] for s in samples] + [0])} | {e['fds'] - e['upstream']} | {fd_bound} |")
    w(f"| of which client connections | {start['client']} | "
      f"{max([s['client'] for s in samples] + [0])} | {e['client']} | 0 |")
    w("")
    w(f"Proxy alive at the end: {'yes' if run.get('alive') else 'NO'}; /healthz: {'200 ok' if run.get('healthz') else 'FAILED'}.")
    if failures:
        w("")
        w("Failures:")
        for f in failures:
            w(f"- {f}")
    print("\n".join(out))
    return 1 if failures else 0


def main():
    if sys.argv[1] == "sample":
        print(json.dumps(sample(*map(int, sys.argv[2:6]))))
        return 0
    if sys.argv[1] == "summary":
        return summary(Path(sys.argv[2]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
