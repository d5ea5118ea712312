#!/usr/bin/env bash
# Runs every fuzz target (or those named) for SECONDS each, from the committed seeds:
#   fuzz/run.sh 60                 # each target for a minute (what CI does)
#   fuzz/run.sh 3600 rewrite       # one target for an hour
# cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP lets the stable toolchain take them.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:?usage: fuzz/run.sh SECONDS [TARGET...]}
shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(config cookie rewrite)
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
for target in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$target"
  echo "== fuzz $target for ${seconds}s"
  RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 2>&1 |
    grep -E "^(Done|stat::number_of_executed_units|==|SUMMARY|thread '|.*panicked)" || true
  # A crash leaves an artifact and a non-zero status: fail on either.
  if compgen -G "fuzz/artifacts/$target/*" >/dev/null; then
    echo "fuzz target $target failed; reproduce with: RUSTC_BOOTSTRAP=1 cargo fuzz run $target fuzz/artifacts/$target/<file>" >&2
    exit 1
  fi
done
