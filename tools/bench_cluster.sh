#!/usr/bin/env bash
# bench_cluster.sh: the ledger on PostgreSQL with one synchronous standby
# (tools/cluster.sh) against single-node mode and against pgbench on a plain
# table of the same PostgreSQL, on this machine, loopback only. A benchmark,
# not a test: it prints numbers and asserts none.
#
#   bash tools/bench_cluster.sh [--duration=10s] [--no_build]
#   bash tools/bench_cluster.sh --server_partitions [--rounds=2] [--duration=10s] [--no_build]
#
# --server_partitions measures the server instead (and only that): for each
# round and P = 1, 2, 4 in turn, two caseledger_server nodes started as
# cluster.sh starts them (master key, --pg_partitions=P, each taking P/2
# partitions; with P = 1 the second waits for the lease) on a fresh database
# of the cluster's primary; ledger_bench against node 1, unary (64 callers)
# and batch (8 x 100, each batch within one partition), following redirects
# to node 2 for its partitions. It prints each run and its ratio to P = 1 of
# the same round and shape, then the medians over the rounds.
#
# 1. starts the cluster (3 etcd, 2 PostgreSQL under Patroni with
#    synchronous_mode_strict, 2 nodes) in a temporary directory;
# 2. ledger_bench against the owner node: unary (64 callers) and batch
#    (8 clients x 100 events), 512 B payloads, encrypted;
# 3. interleaved with those, their peer: pgbench on the same Patroni primary
#    (synchronous_commit=on, so each commit waits for the standby too) into a
#    plain append-only table with a unique event id and a 512 B payload:
#    unary = one INSERT per transaction, 64 clients; batched = 100 rows per
#    transaction, 8 clients. Its p50/p99 come from pgbench's per-transaction
#    log (--log); the last column is cluster / pgbench;
# 4. the ledger runs against a single-node server (RocksDB, as tools/serve.sh
#    runs it);
# 5. partitions: ledger/pg_partitions_benchmark (the library's
#    PartitionedNode; the server's P > 1: --server_partitions) against a database of the
#    same Patroni primary, P = 1, 2, 4 on one node and on two (two
#    PartitionedNodes in one process splitting the partitions), unary (64
#    callers) and batched (8 x 100), plaintext payloads; the ratio is to the
#    pgbench row of the same shape above;
# 6. owner handover: kill -9 of the owner node, then the time until the other
#    node acknowledges an append (lease TTL 3 s, cluster.sh's default);
# 7. failover: kill -9 of the primary's Patroni and postmaster, then the time
#    until Patroni promotes the standby, and until an append is acknowledged
#    again (the old member restarted at once, as strict mode needs a standby).
# Everything it started is stopped at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=10s
build=1
server_partitions=""
rounds=1
for a in "$@"; do
  case "$a" in
    --duration=*) duration=${a#--duration=} ;;
    --no_build) build="" ;;
    --server_partitions) server_partitions=1 ;;
    --rounds=*) rounds=${a#--rounds=}; [[ $rounds =~ ^[1-9][0-9]?$ ]] || { echo "--rounds: got $rounds, want 1 to 99" >&2; exit 2; } ;;
    *) echo "usage: $0 [--server_partitions [--rounds=N]] [--duration=10s] [--no_build]" >&2; exit 2 ;;
  esac
done
if [[ -n "$build" ]]; then
  bash tools/setup.sh
  bazel build //tools:ledger_bench //tools:ledgerctl //tools:caseledger_keys \
    //services/api:caseledger_server //ledger:pg_partitions_benchmark >&2
fi
tmp=$(mktemp -d /tmp/caseledger-bench-XXXXXX)
[[ $(id -u) -eq 0 ]] && chown postgres: "$tmp"
# below Linux's ephemeral ports (32768 and up), where a client's outgoing
# connection can hold the port a node is about to bind
base=$(( 20000 + (RANDOM % 120) * 100 ))
export CLUSTER_DIR=$tmp/cluster CLUSTER_BASE_PORT=$base
single_pid=""
part_pids=()
cleanup() {
  [[ -n "$single_pid" ]] && kill "$single_pid" 2>/dev/null || true
  for p in ${part_pids[@]+"${part_pids[@]}"}; do kill "$p" 2>/dev/null || true; done
  bash tools/cluster.sh stop >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
mkdir -p "$CLUSTER_DIR"
[[ $(id -u) -eq 0 ]] && chown postgres: "$CLUSTER_DIR"
bash tools/cluster.sh start >&2 2>&1 </dev/null | sed 's/^/  /' >&2 || { echo "cluster did not start" >&2; exit 1; }
node=127.0.0.1:$((base + 40))

# ledger_bench SERVER MODE [flags] -> its JSON line; row_cl LABEL JSON prints a row.
bench() {
  local server=$1 mode=$2; shift 2
  bazel-bin/tools/ledger_bench --server="$server" --mode="$mode" --payload_bytes=512 \
    --duration="$duration" --json "$@" 2>/dev/null | tail -1
}
row_cl() {
  python3 - "$1" "$2" <<'EOF'
import json, sys
d = json.loads(sys.argv[2])
lat = d["latency_ms"]
print(f"| {sys.argv[1]} | {d['events_per_sec']:,.0f} events/s | p50 {lat['p50']} ms, p99 {lat['p99']} ms | |")
EOF
}

as_pg() { if [[ $(id -u) -eq 0 ]]; then setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; else "$@"; fi; }
if [[ -n "$server_partitions" ]]; then
  primary=$(bash tools/cluster.sh status | awk '/^pg[12] .* primary/ {print $2}' | cut -d: -f2)
  # serve_p P ROUND: two nodes on the database srv_pP_rROUND; node_a is node 1.
  serve_p() {
    local p=$1 r=$2 db="srv_p$1_r$2" n port info k=$(( $1 == 4 ? 2 : $1 - 1 ))
    as_pg psql -q -h 127.0.0.1 -p "$primary" -U postgres -d postgres -c "CREATE DATABASE $db"
    info="host=127.0.0.1,127.0.0.1 port=$((base + 20)),$((base + 21)) user=postgres dbname=$db target_session_attrs=read-write connect_timeout=2"
    part_pids=()
    for n in 1 2; do
      port=$((base + 100 + 6 * (r - 1) + 2 * k + n))
      mkdir -p "$tmp/$db/node$n"
      bazel-bin/services/api/caseledger_server --data_dir="$tmp/$db/node$n" --listen="127.0.0.1:$port" \
        --insecure_loopback --pg_conninfo="$info" --node_id="node$n" --pg_lease_ttl=3s \
        --signing_key="$tmp/$db/signing.key" --master_key_file="$CLUSTER_DIR/keys/master.key" \
        --pg_partitions="$p" --pg_max_new_partitions=$(((p + 1) / 2)) \
        --origin=caseledger.cluster/log 2>"$tmp/$db/node$n.log" &
      part_pids+=($!)
      if [[ $n == 1 ]]; then
        node_a=127.0.0.1:$port
        # node 1 first, so that it takes partition 0 (and all of P = 1)
        for _ in $(seq 600); do grep -q "listening on" "$tmp/$db/node1.log" 2>/dev/null && break; sleep 0.1; done
      elif ((p > 1)); then
        for _ in $(seq 600); do grep -q "listening on" "$tmp/$db/node2.log" 2>/dev/null && break; sleep 0.1; done
      fi
    done
  }
  stop_p() {
    local pid
    for pid in ${part_pids[@]+"${part_pids[@]}"}; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    part_pids=()
  }
  results=$tmp/server_partitions.jsonl
  : >"$results"
  for r in $(seq "$rounds"); do
    for p in 1 2 4; do
      serve_p "$p" "$r"
      for mode in unary batch; do
        # (a run with failed calls exits 1 but still reports)
        if [[ $mode == unary ]]; then
          j=$(bench "$node_a" unary --clients=64 || true)
        else
          j=$(bench "$node_a" batch --clients=8 --batch_size=100 || true)
        fi
        [[ -n "$j" ]] || { echo "ledger_bench P = $p $mode failed (logs: $tmp/srv_p${p}_r$r)" >&2; continue; }
        python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d.update(P=int(sys.argv[2]), round=int(sys.argv[3])); print(json.dumps(d))' "$j" "$p" "$r" >>"$results"
        echo "  round $r, P = $p, $mode: $(python3 -c 'import json,sys; print(round(json.loads(sys.argv[1])["events_per_sec"]))' "$j") events/s" >&2
      done
      stop_p
    done
  done
  python3 - "$results" <<'EOF'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
base = {(d["round"], d["mode"]): d["events_per_sec"] for d in runs if d["P"] == 1}
print("| round | server, 2 nodes | throughput | latency | redirects | failed calls | / P = 1 |")
print("|---|---|---|---|---|---|---|")
ratios = {}
for d in runs:
    what = "unary, 64 callers" if d["mode"] == "unary" else "batch 8 x 100"
    b = base.get((d["round"], d["mode"]))
    ratio = d["events_per_sec"] / b if b else float("nan")
    ratios.setdefault((d["P"], d["mode"]), []).append((d["events_per_sec"], ratio))
    lat = d["latency_ms"]
    print(f"| {d['round']} | P = {d['P']}: {what} | {d['events_per_sec']:,.0f} events/s "
          f"| p50 {lat['p50']} ms, p99 {lat['p99']} ms | {d.get('redirects', 0)} "
          f"| {sum(d['errors'].values())} | {ratio:.2f}× |")
print()
print("| median over rounds | throughput | / P = 1 |")
print("|---|---|---|")
for (p, mode), v in sorted(ratios.items(), key=lambda kv: (kv[0][1] != "unary", kv[0][0])):
    what = "unary, 64 callers" if mode == "unary" else "batch 8 x 100"
    print(f"| P = {p}: {what} | {statistics.median(x for x, _ in v):,.0f} events/s "
          f"| {statistics.median(r for _, r in v):.2f}× |")
EOF
  exit 0
fi

# pgbench on the Patroni primary: a plain append-only table, 512 B of hex text
# per row, 1,000 streams, a fresh event id (as tools/bench_vs_postgres.sh).
primary=$(bash tools/cluster.sh status | awk '/^pg[12] .* primary/ {print $2}' | cut -d: -f2)
as_pg psql -q -h 127.0.0.1 -p "$primary" -U postgres -d caseledger -c \
  "CREATE TABLE IF NOT EXISTS plain_events (id bigserial PRIMARY KEY, stream text NOT NULL, event_id text NOT NULL UNIQUE, payload text NOT NULL)"
printf '%s\n' "\\set s random(0, 999)" \
  "INSERT INTO plain_events (stream, event_id, payload) VALUES ('case-' || :s, gen_random_uuid()::text, repeat(md5(random()::text), 16));" \
  >"$tmp/unary.sql"
printf '%s\n' \
  "INSERT INTO plain_events (stream, event_id, payload) SELECT 'case-' || (random() * 999)::int, gen_random_uuid()::text, repeat(md5(random()::text), 16) FROM generate_series(1, 100);" \
  >"$tmp/batch.sql"
chmod a+r "$tmp"/*.sql
secs=${duration%s}
# pgbench_run SHAPE CLIENTS ROWS_PER_TX: runs pgbench for $secs and writes
# its rows/s, p50 and p99 to $tmp/pg_SHAPE.json (p50/p99 from its
# per-transaction log).
pgbench_run() {
  local shape=$1 clients=$2 rows=$3 out
  rm -f "$tmp/pglog_$shape".* "$tmp/pg_$shape.json"
  out=$(cd "$tmp" && as_pg /usr/lib/postgresql/15/bin/pgbench -n -h 127.0.0.1 -p "$primary" -U postgres \
    -c "$clients" -j 2 -T "$secs" -f "$tmp/$shape.sql" --log --log-prefix="$tmp/pglog_$shape" \
    caseledger 2>&1) || { echo "pgbench $shape failed: $(tail -5 <<<"$out")" >&2; return 0; }
  python3 - "$rows" "$(awk '/^tps = /{print $3; exit}' <<<"$out")" "$tmp/pglog_$shape" "$tmp/pg_$shape.json" <<'EOF'
import glob, json, sys
rows, tps, prefix, dest = sys.argv[1:]
# pgbench --log: client_id transaction_no time_us script_no epoch_s epoch_us
lat = sorted(int(line.split()[2]) / 1000 for f in glob.glob(prefix + ".*") for line in open(f))
if not lat or not tps:
    sys.exit(f"pgbench {prefix}: no transactions logged")
pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
with open(dest, "w") as f:
    json.dump({"rows_per_sec": float(tps) * int(rows), "p50_ms": pct(0.5), "p99_ms": pct(0.99)}, f)
EOF
}
# row_pg LABEL SHAPE CLIENTS ROWS_PER_TX CLUSTER_JSON: runs pgbench, prints its
# row with the cluster's throughput and p99 over pgbench's.
row_pg() {
  local label=$1 shape=$2 cl=$5
  pgbench_run "$shape" "$3" "$4"
  [[ -f "$tmp/pg_$shape.json" ]] || return 0
  python3 - "$label" "$cl" "$tmp/pg_$shape.json" <<'EOF'
import json, sys
label, cl, pgfile = sys.argv[1:]
pg, c = json.load(open(pgfile)), json.loads(cl)
print(f"| {label} | {pg['rows_per_sec']:,.0f} rows/s | p50 {pg['p50_ms']:.1f} ms, p99 {pg['p99_ms']:.1f} ms "
      f"| throughput {c['events_per_sec'] / pg['rows_per_sec']:.2f}×, p99 {c['latency_ms']['p99'] / pg['p99_ms']:.2f}× |")
EOF
}

echo "| run | throughput | latency | cluster / pgbench |"
echo "|---|---|---|---|"
j=$(bench "$node" unary --clients=64)
row_cl "cluster: unary, 64 callers" "$j"
row_pg "pgbench plain table, sync standby: 1 row/tx, 64 clients" unary 64 1 "$j"
j=$(bench "$node" batch --clients=8 --batch_size=100)
row_cl "cluster: batch 8 x 100" "$j"
row_pg "pgbench plain table, sync standby: 100 rows/tx, 8 clients" batch 8 100 "$j"

# Single node, as tools/serve.sh runs it (encrypted).
bazel-bin/tools/caseledger_keys generate-master-key --out="$tmp/single.key" >/dev/null 2>&1
sport=$((base + 50))
bazel-bin/services/api/caseledger_server --data_dir="$tmp/single" --listen=127.0.0.1:$sport \
  --insecure_loopback --master_key_file="$tmp/single.key" 2>"$tmp/single.log" &
single_pid=$!
for _ in $(seq 100); do grep -q "listening on" "$tmp/single.log" && break; sleep 0.1; done
row_cl "single node: unary, 64 callers" "$(bench "127.0.0.1:$sport" unary --clients=64)"
row_cl "single node: batch 8 x 100" "$(bench "127.0.0.1:$sport" batch --clients=8 --batch_size=100)"
kill "$single_pid"; wait "$single_pid" 2>/dev/null || true; single_pid=""

# Partitions, through the library (the server: --server_partitions): a database of
# its own on the same primary, so its tables do not touch the nodes' ledger.
as_pg psql -q -h 127.0.0.1 -p "$primary" -U postgres -d postgres -c "CREATE DATABASE partbench"
partinfo="host=127.0.0.1,127.0.0.1 port=$((base + 20)),$((base + 21)) user=postgres dbname=partbench target_session_attrs=read-write connect_timeout=2"
# part_row P NODES MODE: one library run, then pgbench of the same shape
# right after it; one row with both and their ratio.
part_row() {
  local p=$1 nodes=$2 mode=$3 j
  j=$(TEST_TMPDIR=$tmp bazel-bin/ledger/pg_partitions_benchmark --conninfo="$partinfo" --json \
    --seconds="$secs" --partitions="$p" --nodes="$nodes" --modes="$mode" \
    --threads=64 --batch_threads=8 --batch_size=100 --payload_bytes=512 2>"$tmp/parts.log" | tail -1) ||
    { echo "pg_partitions_benchmark failed: $(tail -3 "$tmp/parts.log")" >&2; return 0; }
  if [[ $mode == unary ]]; then pgbench_run unary 64 1; else pgbench_run batch 8 100; fi
  python3 - "$j" "$tmp/pg_$mode.json" <<'EOF'
import json, sys
d = json.loads(sys.argv[1])
what = "unary, 64 callers" if d["mode"] == "unary" else "batch 8 x 100"
try:
    pg = json.load(open(sys.argv[2]))
    ratio = (f"throughput {d['events_per_sec'] / pg['rows_per_sec']:.2f}×, "
             f"p99 {d['p99_ms'] / pg['p99_ms']:.2f}× (pgbench {pg['rows_per_sec']:,.0f} rows/s, "
             f"p99 {pg['p99_ms']:.1f} ms)")
except (OSError, ZeroDivisionError):
    ratio = ""
failed = f" ({d['failed']} failed)" if d["failed"] else ""
print(f"| library P = {d['partitions']}, {d['nodes']} node{'s' if d['nodes'] > 1 else ''}: {what} "
      f"| {d['events_per_sec']:,.0f} events/s{failed} | p50 {d['p50_ms']:.1f} ms, p99 {d['p99_ms']:.1f} ms | {ratio} |")
EOF
}
for mode in unary batch; do
  for nodes in 1 2; do
    for p in 1 2 4; do part_row "$p" "$nodes" "$mode"; done
  done
done

# append_at PORT ID: one append through ledgerctl, 2 s deadline; true when acknowledged.
append_at() {
  bazel-bin/tools/ledgerctl --server="127.0.0.1:$1" --timeout=2s append --event="{\"event_id\":\"$2\",\"stream_id\":\"$2\",\"subject_ids\":[\"c\"],\"case_opened\":{\"program\":\"housing\",\"jurisdiction\":\"US-CA\",\"record_class\":\"RECORD_CLASS_GENERAL\"}}" >/dev/null 2>&1
}

# Owner handover: kill -9 of the serving node, then the first append the
# other one acknowledges.
owner=$(bash tools/cluster.sh status | awk '/^node[12] .* serving/ {print substr($1,5); exit}')
other=$((3 - owner))
size=$(as_pg psql -h 127.0.0.1 -p "$primary" -U postgres -d caseledger -tAc "SELECT head_seq FROM cl_partitions WHERE part = 0")
heard=$(grep -c "listening on" "$CLUSTER_DIR/logs/node$other.log" || true)
t0=$(date +%s.%N)
kill -9 "$(cat "$CLUSTER_DIR/pids/node$owner.pid")"
ok="" tl=""
for i in $(seq 3000); do
  if [[ -z "$tl" && $(grep -c "listening on" "$CLUSTER_DIR/logs/node$other.log" || true) -gt $heard ]]; then
    tl=$(date +%s.%N)
  fi
  if [[ -n "$tl" ]] && append_at $((base + 39 + other)) "ho-$i"; then ok=1; break; fi
  sleep 0.1
done
t1=$(date +%s.%N)
[[ -n "$ok" ]] || echo "handover: no append acknowledged within the wait" >&2
printf "| owner handover (log of %s records): kill -9 of the owner node -> the other listens (lease 3 s, catch-up) | %.1f s | | |\n" "$size" "$(echo "${tl:-$t1} - $t0" | bc)"
printf "| owner handover: kill -9 of the owner node -> next append acknowledged by the other | %.1f s | | |\n" "$(echo "$t1 - $t0" | bc)"
bash tools/cluster.sh restart "node$owner"

# Failover.
m=$(bash tools/cluster.sh status | awk '/^pg[12] .* primary/ {print substr($1,3)}')
pm=$(head -1 "$CLUSTER_DIR/pg$m/data/postmaster.pid")
t0=$(date +%s.%N)
kill -9 "$(cat "$CLUSTER_DIR/pids/patroni$m.pid")" "$pm"
# (grep without -q: it reads all of status's output, so no SIGPIPE fails the
# pipeline under pipefail and keeps this loop waiting forever)
until bash tools/cluster.sh status | grep "^pg$((3 - m)) .* primary" >/dev/null; do sleep 0.2; done
t1=$(date +%s.%N)
bash tools/cluster.sh restart "pg$m"
ok=""
for i in $(seq 600); do
  for p in $((base + 40)) $((base + 41)); do
    if append_at "$p" "fo-$i"; then ok=1; break 2; fi
  done
  sleep 0.2
done
t2=$(date +%s.%N)
printf "| failover: kill -9 primary -> standby promoted | %.1f s | | |\n" "$(echo "$t1 - $t0" | bc)"
[[ -n "$ok" ]] || echo "failover: no append acknowledged within the wait" >&2
printf "| failover: kill -9 primary -> next append acknowledged | %.1f s | | |\n" "$(echo "$t2 - $t0" | bc)"
