#!/usr/bin/env bash
# restart_bench.sh: how long the server takes from exec to "listening on" after a
# clean stop (SIGTERM) and after kill -9, on a data directory it fills under batch
# load (ledger_bench --mode=batch --clients=8 --batch_size=500) for LOAD_SECONDS each
# time; prints the ledger store's live WAL left behind.
#   bazel build //services/api:caseledger_server //tools:ledger_bench //tools:caseledger_keys
#   bash tools/restart_bench.sh [LOAD_SECONDS (default 40)] [SERVER_BINARY]
# A benchmark: it prints numbers and checks none.
set -u
cd "$(dirname "$0")/.."
secs=${1:-40}
bin=${2:-bazel-bin/services/api/caseledger_server}
tmp=$(mktemp -d /tmp/restart_bench.XXXXXX)
pid=""
trap '[[ -n "$pid" ]] && kill -KILL "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
bazel-bin/tools/caseledger_keys generate-master-key --out="$tmp/master.key" >/dev/null
start() {
  local t0 line
  : >"$tmp/log"
  t0=$(date +%s.%N)
  "$bin" --data_dir="$tmp/data" --listen=127.0.0.1:0 --insecure_loopback \
    --master_key_file="$tmp/master.key" >>"$tmp/log" 2>&1 &
  pid=$!
  for _ in $(seq 20000); do
    line=$(grep -m1 ' listening on ' "$tmp/log" || true)
    if [[ -n "$line" ]]; then
      port=$(sed -E 's/.* listening on [^ ]*:([0-9]+),.*/\1/' <<<"$line")
      echo "$1: $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b - a}') s to listening ($(sed -E 's/.*(tree size [0-9]+).*/\1/' <<<"$line"))"
      return
    fi
    kill -0 "$pid" 2>/dev/null || { echo "server exited: $(tail -3 "$tmp/log")"; exit 1; }
    sleep 0.01
  done
}
load() {
  bazel-bin/tools/ledger_bench --server="127.0.0.1:$port" --mode=batch --clients=8 \
    --batch_size=500 --duration="${secs}s" >/dev/null 2>&1
}
wal() { du -cb "$tmp"/data/ledger/*.log 2>/dev/null | tail -1 | cut -f1; }
start "fresh start"
load
kill -TERM "$pid"; wait "$pid" 2>/dev/null
echo "ledger WAL after SIGTERM: $(wal) B"
start "restart after SIGTERM"
load
kill -KILL "$pid"; wait "$pid" 2>/dev/null
echo "ledger WAL after kill -9: $(wal) B"
start "restart after kill -9"
kill -TERM "$pid"; wait "$pid" 2>/dev/null; pid=""
