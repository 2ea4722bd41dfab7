#!/usr/bin/env bash
# A caseledger cluster on loopback (ledger/CLUSTER.md): 3 etcd members,
# 2 PostgreSQL 15 instances under Patroni (synchronous_mode_strict: an append
# is acknowledged only once the synchronous standby has it), and 2 caseledger
# nodes sharing the PostgreSQL log of record (one holds the partition's lease
# and serves; the other waits to take over).
#
#   bash tools/cluster.sh start      # prints where each piece listens
#   bash tools/cluster.sh status
#   bash tools/cluster.sh stop
#   bash tools/cluster.sh restart pg1|pg2|node1|node2|etcd0|etcd1|etcd2
#                                    # start one piece again (after a kill -9)
#   bash tools/cluster.sh start --partitions=4   # P > 1: each node takes P/2
#     partitions and serves at once (ledger/CLUSTER.md "Serving P > 1"), with the
#     cluster's one master key as P = 1. Remembered in CLUSTER_DIR.
#
# Environment: CLUSTER_DIR (default /tmp/caseledger-cluster; must be writable
# by the postgres user, which PostgreSQL runs as when this runs as root),
# CLUSTER_BASE_PORT (default 17000; keep it below the ephemeral ports, 32768 on
# Linux: etcd clients +0..2, etcd peers +10..12,
# PostgreSQL +20..21, Patroni REST +30..31, caseledger +40..41),
# CLUSTER_LEASE_TTL (partition lease, default 3s), CLUSTER_TTL (Patroni's
# leader key, default 10 s), CLUSTER_NODE_FLAGS (more flags for both caseledger
# nodes, e.g. --checkpoint_interval=1s), CLUSTER_NODE1_CONNINFO and
# CLUSTER_NODE2_CONNINFO (that node's --pg_conninfo instead of the members'
# own ports, e.g. through a proxy a test can freeze), CLUSTER_FAILSAFE=1
# (Patroni's failsafe_mode: a primary that loses etcd keeps running while it
# reaches every member; set when the cluster is first started).
# CASELEDGER_SERVE_PREBUILT=1 skips setup
# and build and uses the binaries under this tree as Bazel's runfiles lay them out.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
dir=${CLUSTER_DIR:-/tmp/caseledger-cluster}
base=${CLUSTER_BASE_PORT:-17000}
lease_ttl=${CLUSTER_LEASE_TTL:-3s}
ttl=${CLUSTER_TTL:-10}
read -r -a node_flags <<<"${CLUSTER_NODE_FLAGS:-}"
pgbin=/usr/lib/postgresql/15/bin
bin=bazel-bin
[[ -n "${CASELEDGER_SERVE_PREBUILT:-}" ]] && bin=.
partitions=""
args=()
for a in "$@"; do
  case "$a" in
    --partitions=*) partitions=${a#--partitions=} ;;
    *) args+=("$a") ;;
  esac
done
set -- ${args[@]+"${args[@]}"}
[[ -z "$partitions" && -f "$dir/partitions" ]] && partitions=$(cat "$dir/partitions")
partitions=${partitions:-1}

etcd_client() { echo $((base + $1)); }   # 0..2
etcd_peer() { echo $((base + 10 + $1)); }
pg_port() { echo $((base + 19 + $1)); }    # members 1..2
rest_port() { echo $((base + 29 + $1)); }
node_port() { echo $((base + 39 + $1)); }

as_postgres() {
  if [[ $(id -u) -eq 0 ]]; then setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; else "$@"; fi
}
# The same, replacing the calling (sub)shell, so that `( exec_as_postgres cmd ) &`
# leaves $! = the command's pid.
exec_as_postgres() {
  if [[ $(id -u) -eq 0 ]]; then exec setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; else exec "$@"; fi
}
# Running: the pid exists and is not a zombie left for its (sub)reaper.
alive() {
  local pid
  [[ -f "$dir/pids/$1.pid" ]] || return 1
  pid=$(cat "$dir/pids/$1.pid")
  kill -0 "$pid" 2>/dev/null && [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]]
}
conninfo() {
  echo "host=127.0.0.1,127.0.0.1 port=$(pg_port 1),$(pg_port 2) user=postgres dbname=caseledger target_session_attrs=read-write connect_timeout=2"
}
wait_for() {  # seconds, description, command...
  local until=$((SECONDS + $1)) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    if [[ $SECONDS -ge $until ]]; then echo "cluster.sh: timed out waiting for $what (logs in $dir/logs)" >&2; return 1; fi
    sleep 0.2
  done
}
# A Patroni member's role from its REST API ("primary", "replica", or "down"),
# and whether it is the synchronous standby.
role() {
  python3 - "$(rest_port "$1")" <<'EOF' 2>/dev/null || echo down
import json, sys, urllib.request
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/patroni", timeout=2) as r:
        d = json.load(r)
except Exception:
    print("down"); sys.exit(0)
role = {"master": "primary"}.get(d.get("role"), d.get("role", "unknown"))  # Patroni 3.0 says master
print(role + (" sync_standby" if d.get("sync_standby") else "") + " " + d.get("state", ""))
EOF
}

start_etcd() {
  local cluster="" i
  for i in 0 1 2; do cluster+="${cluster:+,}e$i=http://127.0.0.1:$(etcd_peer $i)"; done
  for i in 0 1 2; do
    alive "etcd$i" && continue
    mkdir -p "$dir/etcd$i"
    local state=new
    [[ -d "$dir/etcd$i/member" ]] && state=existing
    etcd --name "e$i" --data-dir "$dir/etcd$i" \
      --listen-client-urls "http://127.0.0.1:$(etcd_client $i)" \
      --advertise-client-urls "http://127.0.0.1:$(etcd_client $i)" \
      --listen-peer-urls "http://127.0.0.1:$(etcd_peer $i)" \
      --initial-advertise-peer-urls "http://127.0.0.1:$(etcd_peer $i)" \
      --initial-cluster "$cluster" --initial-cluster-state "$state" \
      --initial-cluster-token caseledger --logger=zap >"$dir/logs/etcd$i.log" 2>&1 &
    echo $! >"$dir/pids/etcd$i.pid"
  done
  wait_for 30 "etcd" etcdctl --endpoints="127.0.0.1:$(etcd_client 0),127.0.0.1:$(etcd_client 1),127.0.0.1:$(etcd_client 2)" endpoint health
}

patroni_config() {  # member number
  local m=$1 hosts="127.0.0.1:$(etcd_client 0),127.0.0.1:$(etcd_client 1),127.0.0.1:$(etcd_client 2)"
  cat <<EOF
scope: caseledger
name: pg$m
restapi:
  listen: 127.0.0.1:$(rest_port "$m")
  connect_address: 127.0.0.1:$(rest_port "$m")
etcd3:
  hosts: $hosts
bootstrap:
  dcs:
    ttl: $ttl
    loop_wait: 1
    retry_timeout: 3
    synchronous_mode: true
    synchronous_mode_strict: true
    failsafe_mode: $([[ "${CLUSTER_FAILSAFE:-}" == 1 ]] && echo true || echo false)
    postgresql:
      use_pg_rewind: true
      parameters:
        wal_log_hints: 'on'
        # a member rejoining after a failover (pg_rewind) replays from its
        # last checkpoint before the divergence, up to max_wal_size back: the
        # new primary keeps more than that (without it, a busy primary
        # recycles that WAL and strict mode waits forever for a standby)
        max_wal_size: 512MB
        wal_keep_size: 1GB
        synchronous_commit: 'on'
        max_connections: 100
  initdb:
  - encoding: UTF8
  - no-locale
  pg_hba:
  - local all all trust
  - host all all 127.0.0.1/32 trust
  - host replication all 127.0.0.1/32 trust
postgresql:
  listen: 127.0.0.1:$(pg_port "$m")
  connect_address: 127.0.0.1:$(pg_port "$m")
  data_dir: $dir/pg$m/data
  bin_dir: $pgbin
  pgpass: $dir/pg$m/pgpass
  authentication:
    superuser: {username: postgres, password: postgres}
    replication: {username: replicator, password: replicator}
    rewind: {username: postgres, password: postgres}
  parameters:
    unix_socket_directories: '$dir/pg$m'
EOF
}

start_patroni() {  # member number
  local m=$1
  alive "patroni$m" && return 0
  mkdir -p "$dir/pg$m"
  patroni_config "$m" >"$dir/pg$m/patroni.yml"
  [[ $(id -u) -eq 0 ]] && chown -R postgres: "$dir/pg$m" "$dir/logs"
  # (from a directory the postgres user may enter)
  ( cd "$dir" && exec_as_postgres patroni "$dir/pg$m/patroni.yml" >>"$dir/logs/patroni$m.log" 2>&1 ) &
  echo $! >"$dir/pids/patroni$m.pid"
}

start_node() {  # node number
  local n=$1
  alive "node$n" && return 0
  mkdir -p "$dir/node$n"
  local mode=(--master_key_file="$dir/keys/master.key") own_conninfo=CLUSTER_NODE${n}_CONNINFO
  if ((partitions > 1)); then
    mode+=(--pg_partitions="$partitions" --pg_max_new_partitions=$(((partitions + 1) / 2)))
  fi
  "$bin"/services/api/caseledger_server --data_dir="$dir/node$n" --listen="127.0.0.1:$(node_port "$n")" \
    --insecure_loopback --pg_conninfo="${!own_conninfo:-$(conninfo)}" --node_id="node$n" --pg_lease_ttl="$lease_ttl" \
    --signing_key="$dir/keys/signing.key" "${mode[@]}" \
    --origin=caseledger.cluster/log ${node_flags[@]+"${node_flags[@]}"} >>"$dir/logs/node$n.log" 2>&1 &
  echo $! >"$dir/pids/node$n.pid"
}

primary_port() {
  local m
  for m in 1 2; do [[ $(role "$m") == primary* ]] && { pg_port "$m"; return 0; }; done
  return 1
}
have_sync_standby() { [[ "$(role 1) $(role 2)" == *sync_standby*running* ]]; }

cmd=${1:-}
case "$cmd" in
  start)
    if [[ -z "${CASELEDGER_SERVE_PREBUILT:-}" ]]; then
      bash tools/setup.sh
      bazel build //services/api:caseledger_server //tools:ledgerctl //tools:caseledger_keys
    fi
    mkdir -p "$dir"/{pids,logs,keys}
    echo "$partitions" >"$dir/partitions"
    [[ $(id -u) -eq 0 ]] && chown postgres: "$dir"
    start_etcd
    start_patroni 1
    wait_for 60 "a Patroni primary" primary_port
    start_patroni 2
    wait_for 90 "a synchronous standby" have_sync_standby
    port=$(primary_port)
    if ! as_postgres psql -h 127.0.0.1 -p "$port" -U postgres -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = 'caseledger'" | grep -q 1; then
      as_postgres psql -h 127.0.0.1 -p "$port" -U postgres -d postgres -qc "CREATE DATABASE caseledger"
    fi
    # One signing key and one master key for the whole cluster: whichever
    # node owns the partition signs as the log and opens the payloads.
    # (node1 creates the signing key on its first start; node2 loads it.)
    [[ -f "$dir/keys/master.key" ]] || "$bin"/tools/caseledger_keys generate-master-key --out="$dir/keys/master.key"
    start_node 1
    wait_for 60 "node1 to take the partition lease" grep -q "listening on" "$dir/logs/node1.log"
    start_node 2
    echo "etcd      127.0.0.1:$(etcd_client 0) 127.0.0.1:$(etcd_client 1) 127.0.0.1:$(etcd_client 2)"
    echo "pg1       127.0.0.1:$(pg_port 1) (Patroni REST 127.0.0.1:$(rest_port 1))"
    echo "pg2       127.0.0.1:$(pg_port 2) (Patroni REST 127.0.0.1:$(rest_port 2))"
    if ((partitions > 1)); then
      wait_for 60 "node2 to start" grep -q "listening on" "$dir/logs/node2.log"
      echo "node1     127.0.0.1:$(node_port 1) ($(grep -o 'owns partitions \[[0-9,]*\]' "$dir/logs/node1.log" | tail -1) of $partitions)"
      echo "node2     127.0.0.1:$(node_port 2) ($(grep -o 'owns partitions \[[0-9,]*\]' "$dir/logs/node2.log" | tail -1) of $partitions)"
    else
      echo "node1     127.0.0.1:$(node_port 1) (owner of partition 0)"
      echo "node2     127.0.0.1:$(node_port 2) (standby: listens once it takes the lease)"
    fi
    echo "conninfo  $(conninfo)"
    echo "data      $dir (logs in $dir/logs)"
    ;;
  restart)
    what=${2:?restart what: pg1, pg2, node1, node2, etcd0, etcd1 or etcd2}
    case "$what" in
      pg1|pg2) start_patroni "${what#pg}" ;;
      node1|node2) start_node "${what#node}" ;;
      etcd0|etcd1|etcd2) start_etcd ;;  # starts the members that are down, waits for all
      *) echo "cluster.sh: restart: got $what, want pg1, pg2, node1, node2, etcd0, etcd1 or etcd2" >&2; exit 2 ;;
    esac
    ;;
  status)
    for i in 0 1 2; do
      s=down
      if alive "etcd$i"; then
        s=up
        # etcdctl's 5th field is IS LEADER
        [[ "$(etcdctl --endpoints="127.0.0.1:$(etcd_client $i)" --command-timeout=2s endpoint status 2>/dev/null |
              awk -F', ' '{print $5}')" == true ]] && s="up leader"
      fi
      echo "etcd$i     127.0.0.1:$(etcd_client $i) $s"
    done
    for m in 1 2; do echo "pg$m       127.0.0.1:$(pg_port "$m") $(role "$m")"; done
    for n in 1 2; do
      s=down
      if alive "node$n"; then
        s=waiting
        # the log is appended across restarts: its last word on the lease counts
        [[ "$(grep -E "listening on|waiting for its lease" "$dir/logs/node$n.log" 2>/dev/null |
              tail -1)" == *"listening on"* ]] && s=serving
      fi
      echo "node$n     127.0.0.1:$(node_port "$n") $s"
    done
    if port=$(primary_port); then
      echo "lease     $(as_postgres psql -h 127.0.0.1 -p "$port" -U postgres -d caseledger -tAc \
        "SELECT 'partition ' || part || ' owner ' || owner || ' epoch ' || epoch || ' head ' || head_seq FROM cl_partitions" 2>/dev/null)"
    fi
    ;;
  stop)
    for p in node2 node1 patroni2 patroni1 etcd2 etcd1 etcd0; do
      if alive "$p"; then
        pid=$(cat "$dir/pids/$p.pid")
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
      fi
      rm -f "$dir/pids/$p.pid"
    done
    # A postmaster whose Patroni was killed outlives it; stop it by its pid file.
    for m in 1 2; do
      pidfile="$dir/pg$m/data/postmaster.pid"
      if [[ -f "$pidfile" ]]; then
        pid=$(head -1 "$pidfile")
        kill -QUIT "$pid" 2>/dev/null || true
      fi
    done
    echo "stopped (data kept in $dir)"
    ;;
  *)
    echo "usage: tools/cluster.sh start|status|stop|restart pg1|pg2|node1|node2|etcd0|etcd1|etcd2" >&2
    exit 2
    ;;
esac
