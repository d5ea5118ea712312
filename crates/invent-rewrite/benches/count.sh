#!/usr/bin/env bash
# Instructions per page of the rewrite pipeline, beside the same pipeline without the fast
# path and raw lol_html, counted by callgrind: unlike wall-clock times on a shared
# machine, the counts are the same on every run of the same binary.
#
#   crates/invent-rewrite/benches/count.sh            # every variant and page size (about 3 min)
#   RUNS=5 crates/invent-rewrite/benches/count.sh     # runs per count (default 10; the first warms up caches)
#
# Builds the criterion bench (release), then for each variant and size runs it with
# REWRITE_COUNT=VARIANT,SIZE,RUNS under `valgrind --tool=callgrind`, counting only inside
# its `measured` function. Prints a markdown table; also target/count/report.md.
set -euo pipefail
cd "$(dirname "$0")/../../.."
RUNS=${RUNS:-10}
# shellcheck source=benches/callgrind.sh
source benches/callgrind.sh
ensure_valgrind
bench=$(bench_executable rewrite -p invent-rewrite)
out=target/count
mkdir -p "$out"
count() { count_instructions REWRITE_COUNT "$bench" "$out" "" "$1" "$2"; } # VARIANT SIZE
{
  echo "| page | pipeline | without fast path | raw lol_html | pipeline ÷ lol_html |"
  echo "|---|--:|--:|--:|--:|"
  for size in 10KB 100KB 1MB; do
    p=$(count pipeline "$size")
    n=$(count pipeline_without_fast_path "$size")
    l=$(count lol_html "$size")
    bytes=$(awk '{print $3}' "$out/run.lol_html.$size")
    python3 - "$size" "$bytes" "$p" "$n" "$l" <<'PY'
import sys
size, page, p, n, l = sys.argv[1], *map(int, sys.argv[2:])
f = lambda x: f"{x / 1e6:.2f} M ({x / page:.0f}/byte)"
print(f"| {size} | {f(p)} | {f(n)} | {f(l)} | {p / l:.2f}x |")
PY
  done
} | tee "$out/report.md"
