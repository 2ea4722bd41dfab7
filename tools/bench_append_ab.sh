#!/usr/bin/env bash
# bench_append_ab.sh: the in-process durable append path of two
# ledger_benchmark binaries, A and B, against RocksDB's own db_bench, all
# interleaved in the same run on this machine.
#
#   bash tools/bench_append_ab.sh OLD_BENCHMARK NEW_BENCHMARK [--rounds=N] [--num=N]
#
# e.g. to measure a change: build main with `bazel build -c opt
# //ledger:ledger_benchmark`, copy bazel-bin/ledger/ledger_benchmark to
# /tmp/old/, build the branch the same way, then
#   bash tools/bench_append_ab.sh /tmp/old/ledger_benchmark bazel-bin/ledger/ledger_benchmark
#
# Each round runs db_bench --benchmarks=fillseq --sync=1 --batch_size=100
# --value_size=512 --threads=8 --num=N (default 70000; rocksdb-tools), and
# BM_AppendBatchDurable/100 with 8 threads (ledger/ledger_benchmark.cc:
# AppendBatch of 100 events of 512 B payload, each call waiting for its group
# commit's synced write) of A and of B, in the order db_bench A B in odd
# rounds and db_bench B A in even ones. It prints the median of the rounds
# for each, the ratios A/db_bench, B/db_bench and B/A, the per-round values,
# and the load average. Tests never assert timings; this is not part of the
# suite.
set -euo pipefail
cd "$(dirname "$0")/.."
die() { echo "bench_append_ab: $*" >&2; exit 1; }
say() { echo "bench_append_ab: $*" >&2; }

[[ $# -ge 2 ]] || die "usage: bash tools/bench_append_ab.sh OLD_BENCHMARK NEW_BENCHMARK [--rounds=N] [--num=N]"
command_line="tools/bench_append_ab.sh $*"
bench_a=$(realpath "$1")
bench_b=$(realpath "$2")
shift 2
rounds=3
num=70000
for arg in "$@"; do
  case "$arg" in
    --rounds=*) rounds="${arg#--rounds=}" ;;
    --num=*) num="${arg#--num=}" ;;
    *) die "unknown argument \"$arg\" (want --rounds=N, --num=N)" ;;
  esac
done
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || die "--rounds: got \"$rounds\", want a positive integer"
[[ "$num" =~ ^[1-9][0-9]*$ ]] || die "--num: got \"$num\", want a positive integer"
[[ -x "$bench_a" && -x "$bench_b" ]] || die "both benchmarks must be executable files"
command -v jq >/dev/null || die "jq not found: apt-get install -y jq"
db_bench=$(command -v db_bench || true)
[[ -n "$db_bench" ]] || die "db_bench not found: apt-get install -y rocksdb-tools"

tmp=$(mktemp -d /tmp/bench_append_ab.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
results="$tmp/results"
: > "$results"
record() { echo "$1 $2" >> "$results"; }

run_db_bench() {
  local out="$tmp/db_bench.log" ops
  "$db_bench" --benchmarks=fillseq --sync=1 --batch_size=100 --value_size=512 --threads=8 \
    --num="$num" --db="$tmp/db_bench" >"$out" 2>&1 || die "db_bench failed: $(tail -5 "$out")"
  ops=$(awk '$1 == "fillseq" {for (i = 1; i < NF; i++) if ($(i+1) ~ /^ops\/sec;?$/) print $i}' "$out")
  [[ -n "$ops" ]] || die "db_bench: no ops/sec in its output: $(tail -5 "$out")"
  rm -rf "$tmp/db_bench"
  record db "$ops"
  say "  db_bench: $ops puts/s"
}

# run_ledger SIDE BINARY
run_ledger() {
  local out="$tmp/ledger.json" eps
  rm -rf "$tmp/inproc"
  mkdir -p "$tmp/inproc"
  TEST_TMPDIR="$tmp/inproc" "$2" --benchmark_filter='^BM_AppendBatchDurable/100/.*threads:8$' \
    --benchmark_format=json >"$out" 2>"$tmp/ledger.log" ||
    die "$2 failed: $(tail -5 "$tmp/ledger.log")"
  eps=$(jq -r '.benchmarks[0]["events/s"] | floor' "$out")
  [[ "$eps" =~ ^[0-9]+$ ]] || die "$2: no events/s in its output"
  record "$1" "$eps"
  say "  $1: $eps events/s"
}

for (( r = 1; r <= rounds; r++ )); do
  say "round $r/$rounds (load average $(cut -d' ' -f1 /proc/loadavg))"
  record load "$(cut -d' ' -f1 /proc/loadavg)"
  run_db_bench
  if (( r % 2 )); then run_ledger A "$bench_a"; run_ledger B "$bench_b"
  else run_ledger B "$bench_b"; run_ledger A "$bench_a"; fi
done

median() {
  awk -v k="$1" '$1 == k {print $2}' "$results" | sort -g |
    awk '{a[NR] = $1} END {if (NR == 0) print "-"; else if (NR % 2) print a[(NR + 1) / 2];
                          else print (a[NR / 2] + a[NR / 2 + 1]) / 2}'
}
values() { awk -v k="$1" '$1 == k {printf "%s%s", sep, $2; sep = " "}' "$results"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", a / b}'; }
db=$(median db); a=$(median A); b=$(median B)
cat <<EOF

A = $bench_a
B = $bench_b
medians of $rounds interleaved round(s), $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ),
load average at each round's start: $(values load)

| measure | median | ratio |
|---|---|---|
| db_bench fillseq sync, batch 100, 512 B, 8 threads (puts/s) | $db | 1 |
| A: BM_AppendBatchDurable/100, 8 threads (events/s) | $a | A/db_bench $(ratio "$a" "$db") |
| B: BM_AppendBatchDurable/100, 8 threads (events/s) | $b | B/db_bench $(ratio "$b" "$db") |
| B/A | | $(ratio "$b" "$a") |

Per-round values: db_bench $(values db) | A $(values A) | B $(values B)
command: $command_line
EOF
