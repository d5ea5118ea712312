# Sourced by benches/count.sh and crates/invent-rewrite/benches/count.sh: a criterion
# bench's instructions counted by callgrind inside its `measured` function. Run from the
# repository's top; RUNS must be set.

# valgrind, from Debian if missing.
ensure_valgrind() {
  command -v valgrind >/dev/null && return
  local sudo=""; ((EUID == 0)) || sudo=sudo
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq valgrind >/dev/null
}

# bench_executable NAME [CARGO ARGS…]: builds the criterion bench NAME (release) and
# prints its executable's path.
bench_executable() {
  local name=$1 exe
  shift
  exe=$(cargo bench "$@" --bench "$name" --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == sys.argv[1] and m.get("executable"):
        print(m["executable"])' "$name")
  [[ -x $exe ]] || { echo "no executable for the bench $name" >&2; return 1; }
  echo "$exe"
}

# count_instructions ENV EXE OUT TAG VARIANT SIZE: runs EXE with ENV=VARIANT,SIZE,RUNS under
# callgrind (its output as OUT/run.TAG.VARIANT.SIZE) and prints the instructions per run.
count_instructions() {
  local env=$1 exe=$2 out=$3 tag=$4 variant=$5 size=$6
  env "$env=$variant,$size,$RUNS" valgrind --tool=callgrind --toggle-collect='*measured*' \
    --callgrind-out-file="$out/callgrind.$tag$variant.$size" "$exe" \
    >"$out/run.$tag$variant.$size" 2>"$out/valgrind.$tag$variant.$size.log"
  awk '/^summary:|^totals:/{print int($2 / '"$RUNS"'); exit}' "$out/callgrind.$tag$variant.$size"
}
