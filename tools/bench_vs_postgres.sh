#!/usr/bin/env bash
# bench_vs_postgres.sh: caseledger's append path side by side with what a user
# would pick instead (issue 12, "Targets"), on this machine, loopback only.
#
#   bash tools/bench_vs_postgres.sh [--quick] [--rounds=N] [--no_build]
#
#   --quick      2 s measured per run (about 2-3 minutes in all); default 20 s
#                per run (about 12 minutes for 3 rounds)
#   --rounds=N   A/B rounds (default 3); the table shows the median of the rounds
#   --no_build   use the binaries already in bazel-bin/
#
# In a temporary directory that is removed at exit (with every process this
# script started, whatever the exit), it:
#  1. starts a throwaway PostgreSQL 15 cluster on a free loopback port
#     (synchronous_commit=on, fsync=on, default WAL settings; run as the
#     `postgres` user when this script runs as root) with two tables:
#       plain_events    id bigserial, stream text, event_id text UNIQUE,
#                       payload text (512 B): append-only, no chain;
#       chained_events  the same plus seq, prev_hash and hash =
#                       sha256(prev_hash || seq || len,stream || len,event_id ||
#                       payload), computed by a BEFORE INSERT trigger that
#                       locks the one-row chain_head (SELECT ... FOR UPDATE).
#     The trigger is the fair peer of caseledger's global chain: the database
#     computes each link itself, atomically with the insert, under a lock that
#     gives one total order (no client can link to a stale head), which is the
#     guarantee caseledger gives. Its cost is that appends to the chain
#     serialize until commit: the head row stays locked through the WAL flush.
#  2. runs pgbench with custom scripts against each table: unary (one row per
#     transaction, 64 clients) and batched (one INSERT ... SELECT of 100 rows
#     per transaction, 8 clients);
#  3. starts caseledger_server as tools/serve.sh does (payloads encrypted under
#     a master key generated here, --insecure_loopback, its own --data_dir, a
#     free port) and runs ledger_bench: unary with 64 callers, batch 8 x 100,
#     stream with 8 clients, and unary at 1,000 events/s offered (p50/p99);
#     512 B payloads;
#  4. runs db_bench fillseq --sync=1 --batch_size=100 --value_size=512
#     --threads=8 (rocksdb-tools) and the in-process durable
#     BM_AppendBatchDurable/100 with 8 threads (ledger/ledger_benchmark.cc);
#  5. restarts the server on its data directory each round (time from exec to
#     "listening on"), times 4 KiB O_DSYNC writes (dd) as the disk's fsync cost;
#  6. interleaves: each round runs caseledger and its peer back to back, and
#     alternates which goes first (A B, then B A, ...), then prints a table of
#     medians: measure, caseledger, peer, ratio, the issue's target, met or
#     not; CPU microseconds per event of the server (caseledger: its process
#     over ledger_bench's measured window; PostgreSQL: the postmaster and all
#     its children, exited backends included, over the pgbench run); and the
#     command that produced it.
# Tests never assert timings; this script is not part of the test suite.
# Needs: postgresql-15, jq, and (optional) rocksdb-tools for db_bench.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
die() { echo "bench_vs_postgres: $*" >&2; exit 1; }
say() { echo "bench_vs_postgres: $*" >&2; }

command_line="tools/bench_vs_postgres.sh${*:+ $*}"
quick=0
rounds=3
build=1
for arg in "$@"; do
  case "$arg" in
    --quick) quick=1 ;;
    --rounds=*) rounds="${arg#--rounds=}" ;;
    --no_build) build=0 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument \"$arg\" (want --quick, --rounds=N, --no_build; see --help)" ;;
  esac
done
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || die "--rounds: got \"$rounds\", want a positive integer"

if (( quick )); then
  secs=2; rate_secs=5; warmup=1s
else
  secs=20; rate_secs=20; warmup=2s
fi

# ---- Prerequisites ----
pg_bin=/usr/lib/postgresql/15/bin
for tool in initdb pg_ctl pgbench psql; do
  [[ -x "$pg_bin/$tool" ]] || die "$pg_bin/$tool not found: install PostgreSQL 15 with
  apt-get update && apt-get install -y postgresql-15"
done
command -v jq >/dev/null || die "jq not found: apt-get install -y jq"
db_bench=$(command -v db_bench || true)
[[ -n "$db_bench" ]] || say "db_bench not found (apt-get install -y rocksdb-tools): the in-process ratio is skipped"
pg_user=""
if (( EUID == 0 )); then
  command -v runuser >/dev/null || die "running as root needs runuser (util-linux) to start PostgreSQL as another user"
  if id postgres >/dev/null 2>&1; then pg_user=postgres; else pg_user=nobody; fi
fi
as_pg() { if [[ -n "$pg_user" ]]; then runuser -u "$pg_user" -- "$@"; else "$@"; fi; }

if (( build )); then
  say "building (bazel) ..."
  bazel build //tools:ledger_bench //tools:caseledger_keys //services/api:caseledger_server \
    //ledger:ledger_benchmark >&2 || die "bazel build failed"
fi
for bin in tools/ledger_bench tools/caseledger_keys services/api/caseledger_server \
           ledger/ledger_benchmark; do
  [[ -x "bazel-bin/$bin" ]] || die "bazel-bin/$bin missing: run without --no_build"
done

# ---- Temporary directory and cleanup ----
tmp=$(mktemp -d /tmp/bench_vs_postgres.XXXXXX)
chmod 755 "$tmp"
server_pid=""
pg_started=0
cleanup() {
  local rc=$?
  set +e
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid"; wait "$server_pid" 2>/dev/null
  fi
  if (( pg_started )); then
    as_pg "$pg_bin/pg_ctl" -D "$tmp/pg" -m immediate -w stop >/dev/null 2>&1
    if [[ -f "$tmp/pg/postmaster.pid" ]]; then
      kill -KILL "$(head -1 "$tmp/pg/postmaster.pid")" 2>/dev/null
    fi
  fi
  rm -rf "$tmp"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  local p
  for _ in $(seq 200); do
    p=$(( 20000 + RANDOM % 40000 ))
    if [[ -z "$(ss -Htln "sport = :$p" 2>/dev/null)" ]]; then echo "$p"; return; fi
  done
  die "no free loopback port found"
}

results="$tmp/results"
: > "$results"
record() { echo "$1 $2" >> "$results"; }  # key value

# ---- PostgreSQL ----
pg_port=$(free_port)
mkdir -p "$tmp/pg" "$tmp/pgsock"
[[ -n "$pg_user" ]] && chown "$pg_user" "$tmp/pg" "$tmp/pgsock"
say "initdb (PostgreSQL 15) ..."
as_pg "$pg_bin/initdb" -D "$tmp/pg" -U bench --auth=trust -E UTF8 >"$tmp/initdb.log" 2>&1 ||
  die "initdb failed: $(tail -5 "$tmp/initdb.log")"
cat >> "$tmp/pg/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $pg_port
unix_socket_directories = '$tmp/pgsock'
synchronous_commit = on
fsync = on
max_connections = 100
EOF
as_pg "$pg_bin/pg_ctl" -D "$tmp/pg" -l "$tmp/pg/server.log" -w start >/dev/null ||
  die "PostgreSQL did not start: $(tail -5 "$tmp/pg/server.log")"
pg_started=1
postmaster_pid=$(head -1 "$tmp/pg/postmaster.pid")
psql_q() { "$pg_bin/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pg_port" -U bench -d postgres "$@"; }
psql_q >/dev/null <<'EOF'
CREATE TABLE plain_events (
  id bigserial PRIMARY KEY,
  stream text NOT NULL,
  event_id text NOT NULL UNIQUE,
  payload text NOT NULL);
CREATE TABLE chain_head (id int PRIMARY KEY, seq bigint NOT NULL, hash bytea NOT NULL);
INSERT INTO chain_head VALUES (1, 0, decode(repeat('00', 32), 'hex'));
CREATE TABLE chained_events (
  id bigserial PRIMARY KEY,
  seq bigint NOT NULL UNIQUE,
  stream text NOT NULL,
  event_id text NOT NULL UNIQUE,
  payload text NOT NULL,
  prev_hash bytea NOT NULL,
  hash bytea NOT NULL);
-- Each row's hash covers the previous row's hash and the row's fields,
-- length-prefixed; the head row lock gives the chain one order.
CREATE FUNCTION chain_link() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  head_seq bigint;
  head_hash bytea;
BEGIN
  SELECT seq, hash INTO head_seq, head_hash FROM chain_head WHERE id = 1 FOR UPDATE;
  NEW.seq := head_seq + 1;
  NEW.prev_hash := head_hash;
  NEW.hash := sha256(head_hash || int8send(NEW.seq)
      || int4send(octet_length(NEW.stream)) || convert_to(NEW.stream, 'UTF8')
      || int4send(octet_length(NEW.event_id)) || convert_to(NEW.event_id, 'UTF8')
      || convert_to(NEW.payload, 'UTF8'));
  UPDATE chain_head SET seq = NEW.seq, hash = NEW.hash WHERE id = 1;
  RETURN NEW;
END $$;
CREATE TRIGGER chained_events_link BEFORE INSERT ON chained_events
  FOR EACH ROW EXECUTE FUNCTION chain_link();
EOF
# pgbench scripts: 512 B of hex text per row, 1,000 streams, a fresh event id.
for table in plain chained; do
  printf '%s\n' "\\set s random(0, 999)" \
    "INSERT INTO ${table}_events (stream, event_id, payload) VALUES ('case-' || :s, gen_random_uuid()::text, repeat(md5(random()::text), 16));" \
    > "$tmp/${table}_unary.sql"
  printf '%s\n' \
    "INSERT INTO ${table}_events (stream, event_id, payload) SELECT 'case-' || (random() * 999)::int, gen_random_uuid()::text, repeat(md5(random()::text), 16) FROM generate_series(1, 100);" \
    > "$tmp/${table}_batch.sql"
done
chmod 644 "$tmp"/*.sql

# CPU ticks of the PostgreSQL cluster: the postmaster's own and its reaped
# children's (cutime, cstime), plus its live children's.
pg_ticks() {
  { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v pm="$postmaster_pid" '
    { pid = $1; sub(/^.*\) /, "")
      # after "(comm) ": $1 state, $2 ppid, $12 utime, $13 stime, $14 cutime, $15 cstime
      if (pid == pm) t += $12 + $13 + $14 + $15; else if ($2 == pm) t += $12 + $13 }
    END { print t + 0 }'
}
clk_tck=$(getconf CLK_TCK)

# run_pg TABLE SHAPE CLIENTS ROWS_PER_TX -> records pg_TABLE_SHAPE_eps / _lat_ms / _cpu_us
run_pg() {
  local table=$1 shape=$2 clients=$3 rows=$4 out="$tmp/pgbench_${1}_${2}.log" t0 t1 tps lat
  t0=$(pg_ticks)
  "$pg_bin/pgbench" -n -h 127.0.0.1 -p "$pg_port" -U bench -c "$clients" -j 2 -T "$secs" \
    -f "$tmp/${table}_${shape}.sql" postgres >"$out" 2>&1 ||
    die "pgbench ($table, $shape) failed: $(tail -5 "$out")"
  sleep 0.2  # let the postmaster reap the exiting backends (their CPU moves to its cutime)
  t1=$(pg_ticks)
  tps=$(awk '/^tps = /{print $3; exit}' "$out")
  lat=$(awk '/^latency average = /{print $4; exit}' "$out")
  [[ -n "$tps" ]] || die "pgbench ($table, $shape): no tps in its output: $(tail -5 "$out")"
  local eps
  eps=$(awk -v t="$tps" -v r="$rows" 'BEGIN{printf "%.1f", t * r}')
  record "pg_${table}_${shape}_eps" "$eps"
  record "pg_${table}_${shape}_lat_ms" "$lat"
  # CPU over the whole pgbench run (connections included) per row inserted.
  record "pg_${table}_${shape}_cpu_us" \
    "$(awk -v d=$(( t1 - t0 )) -v hz="$clk_tck" -v eps="$eps" -v s="$secs" \
       'BEGIN{printf "%.1f", d / hz * 1e6 / (eps * s)}')"
  say "  pg $table $shape: $eps rows/s, latency avg $lat ms"
}

# ---- caseledger server ----
"bazel-bin/tools/caseledger_keys" generate-master-key --out="$tmp/master.key" >/dev/null
server_log="$tmp/server.log"
# start_server: starts the server in the background (stdout and stderr to
# $server_log); sets server_pid, server_port and start_seconds (exec to its
# "listening on" line). Not in a subshell: the trap must see server_pid.
start_server() {
  local t0 line
  : > "$server_log"
  t0=$(date +%s.%N)
  bazel-bin/services/api/caseledger_server --data_dir="$tmp/data" --listen=127.0.0.1:0 \
    --insecure_loopback --master_key_file="$tmp/master.key" >>"$server_log" 2>&1 &
  server_pid=$!
  for _ in $(seq 6000); do
    line=$(grep -m1 ' listening on ' "$server_log" || true)
    if [[ -n "$line" ]]; then
      server_port=$(sed -E 's/.* listening on [^ ]*:([0-9]+),.*/\1/' <<<"$line")
      start_seconds=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.3f", b - a}')
      return
    fi
    kill -0 "$server_pid" 2>/dev/null || die "caseledger_server exited: $(tail -5 "$server_log")"
    sleep 0.01
  done
  die "caseledger_server did not listen within 60 s: $(tail -5 "$server_log")"
}
stop_server() {
  kill -TERM "$server_pid"
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}

# run_cl NAME ARGS... -> records cl_NAME_eps / _p50_ms / _p99_ms / _cpu_us / _rss_mib
run_cl() {
  local name=$1 json="$tmp/ledger_bench_$1.json" log="$tmp/ledger_bench_$1.log"
  shift
  bazel-bin/tools/ledger_bench --server="127.0.0.1:$server_port" --payload_bytes=512 \
    --warmup="$warmup" --server_pid="$server_pid" --json "$@" >"$json" 2>"$log" ||
    die "ledger_bench $name failed: $(tail -8 "$log")"
  local j
  j=$(tail -1 "$json")
  record "cl_${name}_eps" "$(jq -r '.events_per_sec' <<<"$j")"
  record "cl_${name}_p50_ms" "$(jq -r '.latency_ms.p50' <<<"$j")"
  record "cl_${name}_p99_ms" "$(jq -r '.latency_ms.p99' <<<"$j")"
  record "cl_${name}_cpu_us" "$(jq -r '(.server_cores * 1e6 / .events_per_sec * 10 | round) / 10' <<<"$j")"
  record "cl_${name}_rss_mib" "$(jq -r '.server_max_rss_mib' <<<"$j")"
  record "host_other_cores" "$(jq -r '.other_cores' <<<"$j")"
  say "  caseledger $name: $(jq -r '"\(.events_per_sec) events/s, p50 \(.latency_ms.p50) ms, p99 \(.latency_ms.p99) ms, server \(.server_cores) cores"' <<<"$j")"
}

run_inproc() {
  local out="$tmp/ledger_benchmark.json"
  mkdir -p "$tmp/inproc"
  TEST_TMPDIR="$tmp/inproc" bazel-bin/ledger/ledger_benchmark \
    --benchmark_filter='^BM_AppendBatchDurable/100/.*threads:8$' --benchmark_format=json \
    >"$out" 2>"$tmp/ledger_benchmark.log" ||
    die "ledger_benchmark failed: $(tail -5 "$tmp/ledger_benchmark.log")"
  record inproc_eps "$(jq -r '.benchmarks[0]["events/s"] | floor' "$out")"
  say "  in-process AppendBatch(100) x 8: $(jq -r '.benchmarks[0]["events/s"] | floor' "$out") events/s"
}

run_db_bench() {
  [[ -n "$db_bench" ]] || return 0
  local out="$tmp/db_bench.log" ops
  # About $secs seconds at ~35k synced puts/s per thread; fillseq ignores --duration.
  "$db_bench" --benchmarks=fillseq --sync=1 --batch_size=100 --value_size=512 --threads=8 \
    --num=$(( secs * 35000 )) --db="$tmp/db_bench" >"$out" 2>&1 ||
    die "db_bench failed: $(tail -5 "$out")"
  ops=$(awk '$1 == "fillseq" {for (i = 1; i < NF; i++) if ($(i+1) ~ /^ops\/sec;?$/) print $i}' "$out")
  [[ -n "$ops" ]] || die "db_bench: no ops/sec in its output: $(tail -5 "$out")"
  record db_bench_ops "$ops"
  rm -rf "$tmp/db_bench"
  say "  db_bench fillseq sync batch 100 x 8 threads: $ops puts/s"
}

run_dsync() {
  local n=500 s
  s=$(LC_ALL=C dd if=/dev/zero of="$tmp/dsync" bs=4k count=$n oflag=dsync 2>&1 |
      awk '/copied/ {for (i = 1; i <= NF; i++) if ($i ~ /^s,?$/) print $(i-1)}')
  rm -f "$tmp/dsync"
  [[ -n "$s" ]] && record dsync_ms "$(awk -v s="$s" -v n=$n 'BEGIN{printf "%.3f", s * 1000 / n}')"
}

# ---- Rounds ----
# pair "caseledger command" "peer command": A B in odd rounds, B A in even ones.
pair() {
  if (( cl_first )); then eval "$1"; eval "$2"; else eval "$2"; eval "$1"; fi
}
start_server
record cl_fresh_start_s "$start_seconds"
say "caseledger_server pid $server_pid on 127.0.0.1:$server_port; PostgreSQL on 127.0.0.1:$pg_port"
say "$rounds round(s), ${secs} s per run, caseledger and peer alternating which goes first"
for (( r = 1; r <= rounds; r++ )); do
  say "round $r/$rounds"
  run_dsync
  cl_first=$(( r % 2 ))
  pair "run_cl unary --mode=unary --clients=64 --duration=${secs}s" \
       "run_pg plain unary 64 1; run_pg chained unary 64 1"
  pair "run_cl batch --mode=batch --clients=8 --batch_size=100 --duration=${secs}s" \
       "run_pg plain batch 8 100; run_pg chained batch 8 100"
  pair "run_cl stream --mode=stream --clients=8 --duration=${secs}s" \
       "run_cl rate1000 --mode=unary --clients=64 --rate=1000 --duration=${rate_secs}s"
  pair "run_inproc" "run_db_bench"
  stop_server
  start_server
  record cl_restart_s "$start_seconds"
  say "  restart: $start_seconds s to listening"
done
records=$(grep -o 'tree size [0-9]*' "$server_log" | tail -1 | awk '{print $3}')
stop_server

# ---- Report ----
median() {  # median of a key's values over the rounds, or "-" when none
  awk -v k="$1" '$1 == k {print $2}' "$results" | sort -g |
    awk '{a[NR] = $1} END {if (NR == 0) print "-"; else if (NR % 2) print a[(NR + 1) / 2];
                          else print (a[NR / 2] + a[NR / 2 + 1]) / 2}'
}
values() { awk -v k="$1" '$1 == k {printf "%s%s", sep, $2; sep = " "}' "$results"; }
fmt_rate() { awk -v x="$1" 'BEGIN{if (x == "-") print "-"; else if (x >= 1e4) printf "%.1fk/s", x / 1e3;
                                  else if (x >= 1e3) printf "%.2fk/s", x / 1e3; else printf "%.0f/s", x}'; }
# row MEASURE CL_TEXT PEER_TEXT CL_VALUE PEER_VALUE TARGET_TEXT OP TARGET_VALUE
#   OP: ratio_ge (ratio >= target), value_le / value_lt (caseledger value vs
#   target), or "-" (no target).
rows=()
row() {
  local measure=$1 clt=$2 peert=$3 clv=$4 peerv=$5 target=$6 op=$7 tv=$8 ratio met
  ratio=$(awk -v a="$clv" -v b="$peerv" 'BEGIN{if (a == "-" || b == "-" || b == 0) print "-";
                                              else printf "%.2f×", a / b}')
  met=$(awk -v a="$clv" -v b="$peerv" -v op="$op" -v t="$tv" 'BEGIN{
    if (op == "-" || a == "-") {print "—"; exit}
    if (op == "ratio_ge") {if (b == "-" || b == 0) {print "-"; exit} ok = a / b >= t}
    else if (op == "value_le") ok = a <= t
    else if (op == "value_lt") ok = a < t
    print ok ? "yes" : "NO"}')
  rows+=("| $measure | $clt | $peert | $ratio | $target | $met |")
}
m() { median "$1"; }
us() { awk -v x="$1" 'BEGIN{if (x == "-") print "-"; else printf "%.0f µs", x}'; }
ms() { awk -v x="$1" 'BEGIN{if (x == "-") print "-"; else printf "%.2f ms", x}'; }

row "unary Append, 64 callers vs PG plain, 1 row/tx" \
  "$(fmt_rate "$(m cl_unary_eps)"), p99 $(ms "$(m cl_unary_p99_ms)")" \
  "$(fmt_rate "$(m pg_plain_unary_eps)"), avg $(ms "$(m pg_plain_unary_lat_ms)")" \
  "$(m cl_unary_eps)" "$(m pg_plain_unary_eps)" "≥ 2×" ratio_ge 2
row "unary Append, 64 callers vs PG hash-chained (trigger)" \
  "$(fmt_rate "$(m cl_unary_eps)")" "$(fmt_rate "$(m pg_chained_unary_eps)")" \
  "$(m cl_unary_eps)" "$(m pg_chained_unary_eps)" "≈ 7×" ratio_ge 7
row "AppendBatch 8 × 100 vs PG plain, 100 rows/tx × 8" \
  "$(fmt_rate "$(m cl_batch_eps)"), p99 $(ms "$(m cl_batch_p99_ms)")" \
  "$(fmt_rate "$(m pg_plain_batch_eps)"), avg $(ms "$(m pg_plain_batch_lat_ms)")/tx" \
  "$(m cl_batch_eps)" "$(m pg_plain_batch_eps)" "≥ 1×" ratio_ge 1
row "AppendBatch 8 × 100 vs PG hash-chained, 100 rows/tx × 8" \
  "$(fmt_rate "$(m cl_batch_eps)")" "$(fmt_rate "$(m pg_chained_batch_eps)")" \
  "$(m cl_batch_eps)" "$(m pg_chained_batch_eps)" "—" - 0
row "AppendStream, 8 clients vs PG plain, 100 rows/tx × 8" \
  "$(fmt_rate "$(m cl_stream_eps)"), p99 $(ms "$(m cl_stream_p99_ms)")" \
  "$(fmt_rate "$(m pg_plain_batch_eps)")" \
  "$(m cl_stream_eps)" "$(m pg_plain_batch_eps)" "≥ 1×" ratio_ge 1
if [[ -n "$db_bench" ]]; then
  row "in-process durable AppendBatch(100), 8 threads vs db_bench fillseq sync, batch 100, 8 threads" \
    "$(fmt_rate "$(m inproc_eps)")" "$(fmt_rate "$(m db_bench_ops)") puts" \
    "$(m inproc_eps)" "$(m db_bench_ops)" "≥ 0.5×" ratio_ge 0.5
else
  row "in-process durable AppendBatch(100), 8 threads (db_bench not installed)" \
    "$(fmt_rate "$(m inproc_eps)")" "-" "$(m inproc_eps)" "-" "≥ 0.5× db_bench" ratio_ge 0.5
fi
row "server CPU per event, unary vs PG plain unary" \
  "$(us "$(m cl_unary_cpu_us)")" "$(us "$(m pg_plain_unary_cpu_us)")" \
  "$(m cl_unary_cpu_us)" "$(m pg_plain_unary_cpu_us)" "≤ 60 µs" value_le 60
row "server CPU per event, AppendBatch vs PG plain batched" \
  "$(us "$(m cl_batch_cpu_us)")" "$(us "$(m pg_plain_batch_cpu_us)")" \
  "$(m cl_batch_cpu_us)" "$(m pg_plain_batch_cpu_us)" "≤ 15 µs" value_le 15
row "server CPU per event, AppendStream" \
  "$(us "$(m cl_stream_cpu_us)")" "-" "$(m cl_stream_cpu_us)" "-" "—" - 0
row "p99 at 1,000 ev/s offered vs one 4 KiB O_DSYNC write" \
  "$(ms "$(m cl_rate1000_p99_ms)") (p50 $(ms "$(m cl_rate1000_p50_ms)"))" \
  "$(ms "$(m dsync_ms)")" "$(m cl_rate1000_p99_ms)" "$(m dsync_ms)" "< 2 ms" value_lt 2
row "restart (exec to listening), ${records:-?} records" \
  "$(awk -v x="$(m cl_restart_s)" 'BEGIN{printf "%.2f s", x}') (fresh $(awk -v x="$(m cl_fresh_start_s)" 'BEGIN{printf "%.2f s", x}'))" \
  "-" "$(m cl_restart_s)" "-" "< 1 s (at 10M)" value_lt 1

cat <<EOF

caseledger vs PostgreSQL 15 (synchronous_commit=on, fsync=on), 512 B payloads, loopback;
medians of $rounds round(s), ${secs} s per run (1,000 ev/s run: ${rate_secs} s); $(nproc) cores,
$(date -u +%Y-%m-%d); other load on the host during caseledger runs (median): $(awk -v x="$(m host_other_cores)" 'BEGIN{printf "%.2f", x}') cores
(ledger_bench: busy cores not used by it or the server).

| measure | caseledger | peer | ratio | target (issue 12) | met |
|---|---|---|---|---|---|
EOF
printf '%s\n' "${rows[@]}"
cat <<EOF

Per-round values (events/s unless named):
  caseledger unary      $(values cl_unary_eps)
  PG plain unary        $(values pg_plain_unary_eps)
  PG chained unary      $(values pg_chained_unary_eps)
  caseledger batch      $(values cl_batch_eps)
  PG plain batch        $(values pg_plain_batch_eps)
  PG chained batch      $(values pg_chained_batch_eps)
  caseledger stream     $(values cl_stream_eps)
  in-process            $(values inproc_eps)
  db_bench puts/s       $(values db_bench_ops)
  1k/s p99 ms           $(values cl_rate1000_p99_ms)
  O_DSYNC 4 KiB ms      $(values dsync_ms)
  restart s             $(values cl_restart_s)
  server max RSS MiB    $(values cl_batch_rss_mib) (batch runs)
Not measured here (see README): projection rebuild, erasure at 1M records, RSS and restart at 10M.

command: $command_line
EOF
