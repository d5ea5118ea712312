#!/usr/bin/env python3
"""Number crunching for benches/load/run.sh.

    report.py record --wrk FILE --scenario S --target T --label L --repeat N --cpu-ticks D \
                     --clk-tck HZ --hwm-kb K --other-ticks D --wall-ns NS --cpus N --body-bytes B
        parses one wrk --latency output, prints one JSON line (appended to results.jsonl)
    report.py decode gzip|br FILE
        writes FILE's decoded bytes to stdout (br: with the brotli command)
    report.py memory --wrk FILE --target T --idle-kb K --max-kb K --after-kb K --connections N
        one JSON line of the memory run (appended to rss.jsonl)
    report.py injected ORIGINAL REWRITTEN
        prints the markup REWRITTEN has that ORIGINAL has not (what a proxy injected)
    report.py render DIR
        reads DIR/meta.txt, results.jsonl, ttfb.jsonl, rss.jsonl, injected.txt and
        prints the markdown report
"""

import argparse
import json
import os
import re
import gzip
import statistics
import subprocess
import sys

UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def to_ms(text):
    """wrk's '812.34us', '1.20ms', '2.01s' -> milliseconds."""
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    return float(m.group(1)) * UNIT_MS[m.group(2)]


def parse_wrk(text):
    out = {"requests": 0, "rps": 0.0, "p50_ms": None, "p99_ms": None, "non2xx": 0,
           "connect": 0, "read": 0, "write": 0, "timeout": 0}
    if m := re.search(r"^\s*(\d+) requests in", text, re.M):
        out["requests"] = int(m.group(1))
    if m := re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M):
        out["rps"] = float(m.group(1))
    for pct, key in (("50", "p50_ms"), ("99", "p99_ms")):
        if m := re.search(rf"^\s+{pct}%\s+(\S+)", text, re.M):
            out[key] = to_ms(m.group(1))
    if m := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text):
        out["non2xx"] = int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text):
        out.update(zip(("connect", "read", "write", "timeout"), map(int, m.groups())))
    return out


def cmd_record(a):
    with open(a.wrk) as f:
        row = parse_wrk(f.read())
    cpu_s = a.cpu_ticks / a.clk_tck
    capacity = a.wall_ns / 1e9 * a.cpus * a.clk_tck
    row.update(scenario=a.scenario, target=a.target, label=a.label, repeat=a.repeat,
               cpu_s=cpu_s, hwm_kb=a.hwm_kb, other_pct=max(0.0, 100 * a.other_ticks / capacity),
               body_bytes=a.body_bytes,
               cpu_us_per_req=cpu_s * 1e6 / row["requests"] if row["requests"] else None)
    print(json.dumps(row))


def cmd_decode(a):
    with open(a.file, "rb") as f:
        data = f.read()
    if a.coding == "gzip":
        out = gzip.decompress(data)
    else:
        out = subprocess.run(["brotli", "-d", "-c"], input=data, capture_output=True, check=True).stdout
    sys.stdout.buffer.write(out)


def cmd_injected(a):
    with open(a.original, "rb") as f:
        x = f.read()
    with open(a.rewritten, "rb") as f:
        y = f.read()
    i = 0
    while i < min(len(x), len(y)) and x[i] == y[i]:
        i += 1
    j = 0
    while j < min(len(x), len(y)) - i and x[len(x) - 1 - j] == y[len(y) - 1 - j]:
        j += 1
    removed, added = x[i:len(x) - j], y[i:len(y) - j]
    # An insertion is ambiguous by a few bytes ("…<" + "invent-…><" + "/body>"): slide it
    # left as far as it goes, so it reads as the markup the proxy wrote.
    while not removed and added and i > 0 and x[i - 1] == added[-1]:
        added = x[i - 1:i] + added[:-1]
        i -= 1
    print(added.decode(errors="replace") + (f"   [and removed {removed!r}]" if removed else ""))


def cmd_memory(a):
    with open(a.wrk) as f:
        w = parse_wrk(f.read())
    print(json.dumps({"target": a.target, "idle_kb": a.idle_kb, "max_kb": a.max_kb,
                      "after_kb": a.after_kb, "connections": a.connections,
                      "rps": w["rps"], "errors": errors([w])}))


def load_jsonl(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, digits=1):
    return "-" if x is None else f"{x:,.{digits}f}"


def ratio(x, base):
    return "-" if not x or not base else f"{x / base:.2f}x"


def errors(rows):
    total = {k: sum(r[k] for r in rows) for k in ("non2xx", "connect", "read", "write", "timeout")}
    parts = [f"{k} {v}" for k, v in total.items() if v]
    return ", ".join(parts) if parts else "0"


TARGET_ORDER = ["origin", "invent-proxy", "passthrough", "nginx"]


def by_target(results, s):
    """Medians of one scenario's rows, per target, in TARGET_ORDER."""
    out = {}
    for t in TARGET_ORDER:
        rows = [r for r in results if r["scenario"] == s and r["target"] == t]
        if rows:
            out[t] = dict(
                label=rows[0]["label"], n=len(rows),
                rps=med([r["rps"] for r in rows]),
                p50=med([r["p50_ms"] for r in rows]), p99=med([r["p99_ms"] for r in rows]),
                cpu=med([r["cpu_us_per_req"] for r in rows]),
                bytes=med([r.get("body_bytes") for r in rows]),
                rss=max(r["hwm_kb"] for r in rows) / 1024, errors=errors(rows),
                other=max(r["other_pct"] for r in rows))
    return out


def throughput_table(results):
    lines = [
        "| scenario | target | req/s | req/s vs nginx | p50 ms | p99 ms | CPU µs/req | CPU vs nginx "
        "| body bytes | peak RSS MB | errors | other load |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|---|--:|",
    ]
    for s in dict.fromkeys(r["scenario"] for r in results):
        targets = by_target(results, s)
        base = targets.get("nginx", {})
        for m in targets.values():
            lines.append(
                f"| {s} | {m['label']} | {fmt(m['rps'], 0)} | {ratio(m['rps'], base.get('rps'))} "
                f"| {fmt(m['p50'], 2)} | {fmt(m['p99'], 2)} | {fmt(m['cpu'], 0)} "
                f"| {ratio(m['cpu'], base.get('cpu'))} | {fmt(m['bytes'], 0)} | {fmt(m['rss'], 1)} "
                f"| {m['errors']} | {m['other']:.0f}% |")
    return lines


def summary_table(results):
    """invent-proxy's CPU per request against nginx's and against its own passthrough of
    the same bytes, and the bytes each sent (compressed scenarios), one line a scenario."""
    lines = [
        "| scenario | invent-proxy µs | nginx µs | ÷ nginx | passthrough µs | rewrite ÷ passthrough "
        "| bytes: invent-proxy | nginx | origin | invent-proxy ÷ origin |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for s in dict.fromkeys(r["scenario"] for r in results):
        t = by_target(results, s)
        inv, ngx, pas, org = (t.get(k, {}) for k in ("invent-proxy", "nginx", "passthrough", "origin"))
        compressed = not s.startswith(("html-", "json-"))
        b = (lambda m: fmt(m.get("bytes"), 0)) if compressed else (lambda m: "")
        lines.append(
            f"| {s} | {fmt(inv.get('cpu'), 0)} | {fmt(ngx.get('cpu'), 0)} | {ratio(inv.get('cpu'), ngx.get('cpu'))} "
            f"| {fmt(pas.get('cpu'), 0)} | {ratio(inv.get('cpu'), pas.get('cpu'))} "
            f"| {b(inv)} | {b(ngx)} | {b(org)} | {ratio(inv.get('bytes'), org.get('bytes')) if compressed else ''} |")
    return lines


def ttfb_table(rows):
    direct = next((r for r in rows if r["target"] == "direct"), None)
    lines = [
        "| path | head ms | first body byte ms | − direct ms | whole response ms | injected |",
        "|---|--:|--:|--:|--:|---|",
    ]
    for r in rows:
        diff = (r["first_byte_ms"] - direct["first_byte_ms"]
                if direct and r["first_byte_ms"] is not None and direct["first_byte_ms"] is not None else None)
        lines.append(f"| {r['target']} | {fmt(r['head_ms'])} | {fmt(r['first_byte_ms'])} | "
                     f"{'-' if r is direct else fmt(diff)} | {fmt(r['total_ms'])} | {'yes' if r['injected'] else 'no'} |")
    return lines


def rss_table(rows):
    n = rows[0]["connections"]
    lines = [
        f"| proxy | idle (before any traffic) MB | max with {n} connections × 1 MB page, MB | "
        "(max − idle) per connection, KB | 2 s after MB | req/s | errors |",
        "|---|--:|--:|--:|--:|--:|---|",
    ]
    for r in rows:
        per_conn = (r["max_kb"] - r["idle_kb"]) / r["connections"]
        lines.append(f"| {r['target']} | {fmt(r['idle_kb'] / 1024)} | {fmt(r['max_kb'] / 1024)} | "
                     f"{fmt(per_conn, 0)} | {fmt(r['after_kb'] / 1024)} | {fmt(r['rps'], 0)} | {r['errors']} |")
    return lines


def cmd_render(a):
    d = a.dir
    with open(os.path.join(d, "meta.txt")) as f:
        meta = [line.rstrip("\n") for line in f if line.strip()]
    out = ["# invent-proxy load benchmark", ""]
    out += [f"- {line}" for line in meta]
    results = load_jsonl(os.path.join(d, "results.jsonl"))
    if results:
        out += ["", "## Throughput, latency, CPU and memory", "",
                "Medians over the repeats (peak RSS: the highest); \"vs nginx\" divides by the "
                "nginx row of the same scenario in this run (req/s: higher is better; CPU: lower is better). "
                "CPU µs/req is the target process's user+system time over the measured run ÷ requests "
                "(origin rows: the origin nginx itself). nginx figures sum the master and all workers. "
                "Other load: the highest share of the machine's CPU, over the repeats, taken by anything but "
                "the target, the origin and wrk (another build, say): rows with more than a few % are skewed.", ""]
        out += throughput_table(results)
        out += ["", "## Summary: CPU per request side by side, and bytes sent", "",
                "Medians of the rows above. \"rewrite ÷ passthrough\": invent-proxy rewriting the page "
                "against invent-proxy passing the same bytes through untouched (the page under "
                "`inject.exclude_paths`). Bytes: the body one request gets, as sent (compressed "
                "scenarios only).", ""]
        out += summary_table(results)
    ttfb = load_jsonl(os.path.join(d, "ttfb.jsonl"))
    if ttfb:
        out += ["", "## Time to first byte (slow origin: head + first 2 KiB, 2 s pause, the rest of a 100 KB page; "
                "gzip: the same, compressed as it streams, with a sync flush after the first 2 KiB)", ""]
        out += ttfb_table(ttfb)
    rss = load_jsonl(os.path.join(d, "rss.jsonl"))
    if rss:
        out += ["", "## Memory (VmRSS; nginx: master + workers)", ""]
        out += rss_table(rss)
    injected = os.path.join(d, "injected.txt")
    if os.path.exists(injected):
        with open(injected) as f:
            out += ["", "## Injected markup (before `</body>`)", "", "```", f.read().rstrip(), "```"]
    notes = os.path.join(d, "notes.txt")
    if os.path.exists(notes):
        with open(notes) as f:
            out += ["", "## Notes", ""] + [f"- {line.rstrip()}" for line in f if line.strip()]
    print("\n".join(out))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record")
    r.add_argument("--wrk", required=True)
    r.add_argument("--scenario", required=True)
    r.add_argument("--target", required=True)
    r.add_argument("--label", required=True)
    r.add_argument("--repeat", type=int, required=True)
    r.add_argument("--cpu-ticks", type=int, required=True)
    r.add_argument("--clk-tck", type=int, required=True)
    r.add_argument("--hwm-kb", type=int, required=True)
    r.add_argument("--other-ticks", type=int, required=True)
    r.add_argument("--wall-ns", type=int, required=True)
    r.add_argument("--cpus", type=int, required=True)
    r.add_argument("--body-bytes", type=int, required=True)
    c = sub.add_parser("decode")
    c.add_argument("coding", choices=["gzip", "br"])
    c.add_argument("file")
    m = sub.add_parser("memory")
    m.add_argument("--wrk", required=True)
    m.add_argument("--target", required=True)
    m.add_argument("--idle-kb", type=int, required=True)
    m.add_argument("--max-kb", type=int, required=True)
    m.add_argument("--after-kb", type=int, required=True)
    m.add_argument("--connections", type=int, required=True)
    i = sub.add_parser("injected")
    i.add_argument("original")
    i.add_argument("rewritten")
    d = sub.add_parser("render")
    d.add_argument("dir")
    a = p.parse_args()
    {"record": cmd_record, "memory": cmd_memory, "injected": cmd_injected, "decode": cmd_decode,
     "render": cmd_render}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
