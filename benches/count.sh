#!/usr/bin/env bash
# Instructions per page of compressed pages through the rewrite (benches/codec.rs), counted
# by callgrind: unlike wall-clock times on a shared machine, the counts are the same on
# every run of the same binary.
#
#   benches/count.sh                    # every variant and page size
#   VARIANTS="splice plain" SIZES=30KB benches/count.sh
#   RUNS=5 benches/count.sh             # runs per count (default 10)
#
# Builds the criterion bench (release), then for each variant and size runs it with
# CODEC_COUNT=VARIANT,SIZE,RUNS under `valgrind --tool=callgrind`, counting only inside its
# `measured` function. Prints a markdown table; also target/count/codec.md.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-10}
VARIANTS=${VARIANTS:-splice decoded plain inflate_zlib inflate_splice}
SIZES=${SIZES:-10KB 30KB 100KB}
# shellcheck source=benches/callgrind.sh
source benches/callgrind.sh
ensure_valgrind
bench=$(bench_executable codec)
out=target/count
mkdir -p "$out"
count() { count_instructions CODEC_COUNT "$bench" "$out" codec. "$1" "$2"; } # VARIANT SIZE
{
  # shellcheck disable=SC2086
  echo "| page | $(echo $VARIANTS | sed 's/ / | /g') |"
  # shellcheck disable=SC2086
  echo "|---|$(printf -- '--:|%.0s' $VARIANTS)"
  for size in $SIZES; do
    row="| $size |"
    for variant in $VARIANTS; do
      row="$row $(count "$variant" "$size" | awk '{ printf "%.3f M", $1 / 1e6 }') |"
    done
    echo "$row"
  done
} | tee "$out/codec.md"
