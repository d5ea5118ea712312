#!/usr/bin/env bash
# Runs every fuzz target (or those named) for SECONDS each, from the committed seeds: the
# proxy's (fuzz/: config, cookie, splice) and the page rewriter's (crates/invent-rewrite/fuzz/:
# rewrite).
#   fuzz/run.sh 60                 # each target for a minute (what CI does)
#   fuzz/run.sh 3600 rewrite       # one target for an hour
# cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP lets the stable toolchain take them.
# Fails if a target does not build, if cargo-fuzz or libFuzzer fails, or on any crash
# (which leaves its input under fuzz/artifacts/TARGET/).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
seconds=${1:?usage: fuzz/run.sh SECONDS [TARGET...]}
shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(config cookie splice rewrite)
# Pinned: a newer cargo-fuzz may pass sanitizer flags this toolchain does not take.
CARGO_FUZZ_VERSION=0.13.2
if [[ $(cargo fuzz --version 2>/dev/null) != "cargo-fuzz $CARGO_FUZZ_VERSION" ]]; then
  cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
fi
# libFuzzer's C++ sources are built by libfuzzer-sys with the system's C++ compiler.
command -v c++ >/dev/null || { echo "fuzz/run.sh needs a C++ compiler (apt-get install g++)" >&2; exit 1; }
export RUSTC_BOOTSTRAP=1
# Each target's project: the directory that holds its fuzz/ folder.
project_of() {
  case $1 in
    rewrite) echo crates/invent-rewrite ;;
    *) echo . ;;
  esac
}
echo "== build the fuzz targets"
(cd "$root" && cargo fuzz build)
(cd "$root/crates/invent-rewrite" && cargo fuzz build)
for target in "${targets[@]}"; do
  dir=$(project_of "$target")/fuzz
  mkdir -p "$dir/corpus/$target"
  echo "== fuzz $target for ${seconds}s"
  log="$dir/corpus/$target.log"
  status=0
  (cd "$dir/.." && cargo fuzz run "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1) >"$log" 2>&1 || status=$?
  grep -E "^(Done|stat::number_of_executed_units|==|SUMMARY|thread '|.*panicked)" "$log" || true
  if ((status != 0)) || compgen -G "$dir/artifacts/$target/*" >/dev/null; then
    tail -n 40 "$log" >&2
    echo "fuzz target $target failed (exit $status); reproduce with: (cd $dir/.. && RUSTC_BOOTSTRAP=1 cargo fuzz run $target fuzz/artifacts/$target/<file>)" >&2
    exit 1
  fi
done
