#!/usr/bin/env bash
# bench_ab.sh: two caseledger_server binaries, A and B, under the same
# ledger_bench loads, interleaved, on this machine (loopback only).
#
#   bash tools/bench_ab.sh OLD_SERVER NEW_SERVER [--rounds=N] [--secs=S] [--quick]
#
# e.g. to measure a change: build main, copy bazel-bin/services/api/caseledger_server
# to /tmp/old/, build the branch, then
#   bash tools/bench_ab.sh /tmp/old/caseledger_server bazel-bin/services/api/caseledger_server
#
# Each server is started as tools/serve.sh starts it (payloads encrypted under
# a master key generated here, --insecure_loopback, its own fresh --data_dir,
# a free port). Each round runs, against A then B (B then A in even rounds):
# unary Append with 64 callers, AppendBatch 8 x 100, AppendStream with 8
# clients, and unary at 1,000 events/s offered; 512 B payloads. It prints the
# median of the rounds for each: events/s, p50/p99 ms, and the server's CPU
# microseconds per event (its process's CPU over ledger_bench's measured
# window). Uses bazel-bin/tools/ledger_bench and caseledger_keys (built here
# unless present). Tests never assert timings; this is not part of the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
die() { echo "bench_ab: $*" >&2; exit 1; }
say() { echo "bench_ab: $*" >&2; }

[[ $# -ge 2 ]] || die "usage: bash tools/bench_ab.sh OLD_SERVER NEW_SERVER [--rounds=N] [--secs=S] [--quick]"
command_line="tools/bench_ab.sh $*"
server_a=$(realpath "$1")
server_b=$(realpath "$2")
shift 2
rounds=3
secs=20
for arg in "$@"; do
  case "$arg" in
    --rounds=*) rounds="${arg#--rounds=}" ;;
    --secs=*) secs="${arg#--secs=}" ;;
    --quick) secs=3 ;;
    *) die "unknown argument \"$arg\"" ;;
  esac
done
[[ -x "$server_a" && -x "$server_b" ]] || die "both servers must be executable files"
command -v jq >/dev/null || die "jq not found: apt-get install -y jq"
[[ -x bazel-bin/tools/ledger_bench && -x bazel-bin/tools/caseledger_keys ]] ||
  bazel build //tools:ledger_bench //tools:caseledger_keys >&2

tmp=$(mktemp -d)
server_pid=""
cleanup() {
  [[ -n "$server_pid" ]] && kill -TERM "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
results="$tmp/results"
: > "$results"
record() { echo "$1 $2" >> "$results"; }
bazel-bin/tools/caseledger_keys generate-master-key --out="$tmp/master.key" >/dev/null

# start NAME BINARY: a fresh data directory each time.
start() {
  local log="$tmp/server_$1.log" line
  rm -rf "$tmp/data_$1"
  : > "$log"
  "$2" --data_dir="$tmp/data_$1" --listen=127.0.0.1:0 --insecure_loopback \
    --master_key_file="$tmp/master.key" >>"$log" 2>&1 &
  server_pid=$!
  for _ in $(seq 6000); do
    line=$(grep -m1 ' listening on ' "$log" || true)
    if [[ -n "$line" ]]; then
      server_port=$(sed -E 's/.* listening on [^ ]*:([0-9]+),.*/\1/' <<<"$line")
      return
    fi
    kill -0 "$server_pid" 2>/dev/null || die "$2 exited: $(tail -5 "$log")"
    sleep 0.01
  done
  die "$2 did not listen within 60 s"
}
stop() {
  kill -TERM "$server_pid"
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}

# load SIDE NAME ARGS...
load() {
  local side=$1 name=$2 json="$tmp/bench.json" j
  shift 2
  # A run with failed calls exits non-zero but still reports; they are counted.
  bazel-bin/tools/ledger_bench --server="127.0.0.1:$server_port" --payload_bytes=512 \
    --warmup=2s --server_pid="$server_pid" --json "$@" >"$json" 2>"$tmp/bench.log" || true
  j=$(tail -1 "$json")
  jq -e '.events_per_sec' <<<"$j" >/dev/null 2>&1 ||
    die "ledger_bench $name failed: $(tail -8 "$tmp/bench.log")"
  record "${side}_${name}_errors" "$(jq -r '[.errors[]] | add // 0' <<<"$j")"
  record "${side}_${name}_eps" "$(jq -r '.events_per_sec' <<<"$j")"
  record "${side}_${name}_p50" "$(jq -r '.latency_ms.p50' <<<"$j")"
  record "${side}_${name}_p99" "$(jq -r '.latency_ms.p99' <<<"$j")"
  record "${side}_${name}_cpu" "$(jq -r '(.server_cores * 1e6 / .events_per_sec * 10 | round) / 10' <<<"$j")"
  record "${side}_other" "$(jq -r '.other_cores' <<<"$j")"
  say "  $side $name: $(jq -r '"\(.events_per_sec) ev/s, p50 \(.latency_ms.p50) ms, p99 \(.latency_ms.p99) ms, server \(.server_cores) cores"' <<<"$j")"
}

side() {  # side A|B: one server, every load
  local bin=$server_a
  [[ $1 == B ]] && bin=$server_b
  start "$1" "$bin"
  load "$1" unary --mode=unary --clients=64 --duration="${secs}s"
  load "$1" batch --mode=batch --clients=8 --batch_size=100 --duration="${secs}s"
  load "$1" stream --mode=stream --clients=8 --duration="${secs}s"
  load "$1" rate1000 --mode=unary --clients=64 --rate=1000 --duration="${secs}s"
  stop
}

for (( r = 1; r <= rounds; r++ )); do
  say "round $r/$rounds"
  if (( r % 2 )); then side A; side B; else side B; side A; fi
done

median() {
  awk -v k="$1" '$1 == k {print $2}' "$results" | sort -g |
    awk '{a[NR] = $1} END {if (NR == 0) print "-"; else if (NR % 2) print a[(NR + 1) / 2];
                          else print (a[NR / 2] + a[NR / 2 + 1]) / 2}'
}
values() { awk -v k="$1" '$1 == k {printf "%s%s", sep, $2; sep = " "}' "$results"; }
cat <<EOF

A = $server_a
B = $server_b
medians of $rounds interleaved round(s), ${secs} s per load, 512 B payloads, $(nproc) cores,
$(date -u +%Y-%m-%d); other load on the host (median cores busy outside bench and server):
A $(median A_other), B $(median B_other)

| load | A events/s | B events/s | B/A | A p50 / p99 ms | B p50 / p99 ms | A CPU µs/event | B CPU µs/event |
|---|---|---|---|---|---|---|---|
EOF
for name in unary batch stream rate1000; do
  a=$(median "A_${name}_eps"); b=$(median "B_${name}_eps")
  printf '| %s | %s | %s | %s | %s / %s | %s / %s | %s | %s |\n' "$name" "$a" "$b" \
    "$(awk -v a="$a" -v b="$b" 'BEGIN{printf "%.2f×", b / a}')" \
    "$(median "A_${name}_p50")" "$(median "A_${name}_p99")" \
    "$(median "B_${name}_p50")" "$(median "B_${name}_p99")" \
    "$(median "A_${name}_cpu")" "$(median "B_${name}_cpu")"
done
cat <<EOF

Per-round values:
EOF
for name in unary batch stream rate1000; do
  echo "  A $name eps $(values "A_${name}_eps") | p99 $(values "A_${name}_p99") | cpu $(values "A_${name}_cpu")"
  echo "  B $name eps $(values "B_${name}_eps") | p99 $(values "B_${name}_p99") | cpu $(values "B_${name}_cpu")"
  echo "  failed calls: A $(values "A_${name}_errors"), B $(values "B_${name}_errors")"
done
echo
echo "command: $command_line"
