#!/usr/bin/env bash
# bench_cluster.sh: the ledger on PostgreSQL with one synchronous standby
# (tools/cluster.sh) against single-node mode and against pgbench on a plain
# table of the same PostgreSQL, on this machine, loopback only. A benchmark,
# not a test: it prints numbers and asserts none.
#
#   bash tools/bench_cluster.sh [--duration=10s] [--no_build]
#
# 1. starts the cluster (3 etcd, 2 PostgreSQL under Patroni with
#    synchronous_mode_strict, 2 nodes) in a temporary directory;
# 2. ledger_bench against the owner node: unary (64 callers) and batch
#    (8 clients x 100 events), 512 B payloads, encrypted;
# 3. the same against a single-node server (RocksDB, as tools/serve.sh runs it);
# 4. pgbench on the Patroni primary: one 512 B row per transaction into a plain
#    table with a unique event id, 64 clients, synchronous_commit=on (so each
#    commit waits for the standby too);
# 5. failover: kill -9 of the primary's Patroni and postmaster, then the time
#    until Patroni promotes the standby, and until an append is acknowledged
#    again (the old member restarted at once, as strict mode needs a standby).
# Everything it started is stopped at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=10s
build=1
for a in "$@"; do
  case "$a" in
    --duration=*) duration=${a#--duration=} ;;
    --no_build) build="" ;;
    *) echo "usage: $0 [--duration=10s] [--no_build]" >&2; exit 2 ;;
  esac
done
if [[ -n "$build" ]]; then
  bash tools/setup.sh
  bazel build //tools:ledger_bench //tools:ledgerctl //tools:caseledger_keys \
    //services/api:caseledger_server >&2
fi
tmp=$(mktemp -d /tmp/caseledger-bench-XXXXXX)
[[ $(id -u) -eq 0 ]] && chown postgres: "$tmp"
base=$(( 20000 + (RANDOM % 300) * 100 ))
export CLUSTER_DIR=$tmp/cluster CLUSTER_BASE_PORT=$base
single_pid=""
cleanup() {
  [[ -n "$single_pid" ]] && kill "$single_pid" 2>/dev/null || true
  bash tools/cluster.sh stop >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
mkdir -p "$CLUSTER_DIR"
[[ $(id -u) -eq 0 ]] && chown postgres: "$CLUSTER_DIR"
bash tools/cluster.sh start >&2 2>&1 </dev/null | sed 's/^/  /' >&2 || { echo "cluster did not start" >&2; exit 1; }
node=127.0.0.1:$((base + 40))

bench() {  # label server mode [flags]
  local label=$1 server=$2 mode=$3; shift 3
  local out
  out=$(bazel-bin/tools/ledger_bench --server="$server" --mode="$mode" --payload_bytes=512 \
        --duration="$duration" --json "$@" 2>/dev/null | tail -1)
  python3 - "$label" "$out" <<'EOF'
import json, sys
d = json.loads(sys.argv[2])
eps = d["events_per_sec"]
lat = d["latency_ms"]
print(f"| {sys.argv[1]} | {eps:,.0f} events/s | p50 {lat['p50']} ms, p99 {lat['p99']} ms |")
EOF
}

echo "| run | throughput | latency |"
echo "|---|---|---|"
bench "cluster: unary, 64 callers" "$node" unary --clients=64
bench "cluster: batch 8 x 100" "$node" batch --clients=8 --batch_size=100

# Single node, as tools/serve.sh runs it (encrypted).
bazel-bin/tools/caseledger_keys generate-master-key --out="$tmp/single.key" >/dev/null 2>&1
sport=$((base + 50))
bazel-bin/services/api/caseledger_server --data_dir="$tmp/single" --listen=127.0.0.1:$sport \
  --insecure_loopback --master_key_file="$tmp/single.key" 2>"$tmp/single.log" &
single_pid=$!
for _ in $(seq 100); do grep -q "listening on" "$tmp/single.log" && break; sleep 0.1; done
bench "single node: unary, 64 callers" "127.0.0.1:$sport" unary --clients=64
bench "single node: batch 8 x 100" "127.0.0.1:$sport" batch --clients=8 --batch_size=100
kill "$single_pid"; wait "$single_pid" 2>/dev/null || true; single_pid=""

# pgbench on the same primary (the commit waits for the synchronous standby).
primary=$(bash tools/cluster.sh status | awk '/^pg[12] .* primary/ {print $2}' | cut -d: -f2)
as_pg() { if [[ $(id -u) -eq 0 ]]; then setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; else "$@"; fi; }
as_pg psql -q -h 127.0.0.1 -p "$primary" -U postgres -d caseledger -c \
  "CREATE TABLE IF NOT EXISTS plain_events (id bigserial PRIMARY KEY, stream text, event_id text UNIQUE, payload text)"
cat >"$tmp/unary.sql" <<'EOF'
INSERT INTO plain_events (stream, event_id, payload) VALUES ('case-' || (random() * 1000)::int, gen_random_uuid()::text, repeat('x', 512));
EOF
chmod a+r "$tmp/unary.sql"
secs=${duration%s}
pgout=$(cd "$tmp" && as_pg /usr/lib/postgresql/15/bin/pgbench -n -h 127.0.0.1 -p "$primary" -U postgres \
  -c 64 -j 2 -T "$secs" -f "$tmp/unary.sql" caseledger 2>&1 || true)
tps=$(awk '/^tps/ {print $3; exit}' <<<"$pgout")
lat=$(awk '/latency average/ {print $4; exit}' <<<"$pgout")
echo "| pgbench plain table, 64 clients, sync standby | ${tps%.*} rows/s | avg ${lat} ms |"

# Failover.
m=$(bash tools/cluster.sh status | awk '/^pg[12] .* primary/ {print substr($1,3)}')
pm=$(head -1 "$CLUSTER_DIR/pg$m/data/postmaster.pid")
t0=$(date +%s.%N)
kill -9 "$(cat "$CLUSTER_DIR/pids/patroni$m.pid")" "$pm"
until bash tools/cluster.sh status | grep -q "^pg$((3 - m)) .* primary"; do sleep 0.2; done
t1=$(date +%s.%N)
bash tools/cluster.sh restart "pg$m"
ok=""
for i in $(seq 600); do
  for p in $((base + 40)) $((base + 41)); do
    if bazel-bin/tools/ledgerctl --server=127.0.0.1:$p --timeout=2s append --event="{\"event_id\":\"fo-$i\",\"stream_id\":\"fo-$i\",\"subject_ids\":[\"c\"],\"case_opened\":{\"program\":\"housing\",\"jurisdiction\":\"US-CA\",\"record_class\":\"RECORD_CLASS_GENERAL\"}}" >/dev/null 2>&1; then ok=1; break 2; fi
  done
  sleep 0.2
done
t2=$(date +%s.%N)
printf "| failover: kill -9 primary -> standby promoted | %.1f s | |\n" "$(echo "$t1 - $t0" | bc)"
[[ -n "$ok" ]] || echo "failover: no append acknowledged within the wait" >&2
printf "| failover: kill -9 primary -> next append acknowledged | %.1f s | |\n" "$(echo "$t2 - $t0" | bc)"
