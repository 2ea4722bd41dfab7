#!/usr/bin/env bash
# bench_handover.sh: owner handover and PostgreSQL failover on the loopback
# cluster (tools/cluster.sh), measured as the time from the kill to the first
# append acknowledged again, interleaved A/B: this tree's server against
# another server binary (e.g. main's), each round on a fresh cluster with the
# same load. A benchmark, not a test: it prints numbers and asserts none.
#
#   bash tools/bench_handover.sh --baseline=/path/to/main/caseledger_server \
#       [--rounds=2] [--load=5s] [--logs=DIR] [--no_build]
#
# Each round and binary: start the cluster (lease 3 s), ledger_bench batch
# 8 x 100 against the owner for --load, 5 s for the waiting node to settle,
# then
#   handover: kill -9 of the owner node -> the other listens -> the other
#     acknowledges an append (ledgerctl, 2 s deadline, every 0.1 s);
#   failover: the killed node restarted and 5 s to settle, then kill -9 of the
#     primary's Patroni and postmaster (restarted at once: strict mode needs a
#     standby) -> an append acknowledged by either node.
# Rows: binary, log size, the four times. --logs=DIR keeps each cluster's logs
# there. A cluster that does not start (a loaded machine) skips that row.
# Everything it started is stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
baseline="" rounds=2 load=5s build=1 keep=""
for a in "$@"; do
  case "$a" in
    --baseline=*) baseline=${a#--baseline=} ;;
    --rounds=*) rounds=${a#--rounds=} ;;
    --load=*) load=${a#--load=} ;;
    --logs=*) keep=${a#--logs=} ;;
    --no_build) build="" ;;
    *) echo "usage: $0 [--baseline=SERVER_BINARY] [--rounds=2] [--load=5s] [--logs=DIR] [--no_build]" >&2; exit 2 ;;
  esac
done
if [[ -n "$build" ]]; then
  bash tools/setup.sh
  bazel build //services/api:caseledger_server //tools:ledgerctl //tools:caseledger_keys \
    //tools:ledger_bench >&2
fi
tmp=$(mktemp -d /tmp/caseledger-handover-XXXXXX)
[[ $(id -u) -eq 0 ]] && chown postgres: "$tmp"
# below Linux's ephemeral ports (32768 and up)
base=$(( 20000 + (RANDOM % 120) * 100 ))
cur=""
cleanup() {
  [[ -n "$cur" ]] && (cd "$cur" && CASELEDGER_SERVE_PREBUILT=1 bash tools/cluster.sh stop >/dev/null 2>&1) || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# tree NAME SERVER: a directory laid out as cluster.sh's CASELEDGER_SERVE_PREBUILT wants.
tree() {
  local d=$tmp/$1
  mkdir -p "$d/tools" "$d/services/api"
  cp tools/cluster.sh "$d/tools/"
  cp -L "$2" "$d/services/api/caseledger_server"
  cp -L bazel-bin/tools/caseledger_keys "$d/tools/"
}
names=(this)
tree this bazel-bin/services/api/caseledger_server
if [[ -n "$baseline" ]]; then names=(baseline this); tree baseline "$baseline"; fi

as_pg() { if [[ $(id -u) -eq 0 ]]; then setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; else "$@"; fi; }
append_at() {
  "$repo"/bazel-bin/tools/ledgerctl --server="127.0.0.1:$1" --timeout=2s append --event="{\"event_id\":\"$2\",\"stream_id\":\"$2\",\"subject_ids\":[\"c\"],\"case_opened\":{\"program\":\"housing\",\"jurisdiction\":\"US-CA\",\"record_class\":\"RECORD_CLASS_GENERAL\"}}" >/dev/null 2>&1
}
since() { echo "$(date +%s.%N) - $1" | bc; }

echo "| round | server | log size | handover: listens | handover: first ack | failover: promoted | failover: first ack |"
echo "|---|---|---|---|---|---|---|"
for r in $(seq "$rounds"); do
  for name in "${names[@]}"; do
    cur=$tmp/$name
    export CLUSTER_DIR=$tmp/cl-$name-$r CLUSTER_BASE_PORT=$base CASELEDGER_SERVE_PREBUILT=1
    mkdir -p "$CLUSTER_DIR"
    [[ $(id -u) -eq 0 ]] && chown postgres: "$CLUSTER_DIR"
    cl() { (cd "$cur" && bash tools/cluster.sh "$@"); }
    if ! cl start >/dev/null 2>&1 </dev/null; then
      echo "| $r | $name | cluster did not start | | | | |"
      cl stop >/dev/null 2>&1 || true
      base=$(( base + 100 > 31900 ? 20000 : base + 100 ))
      continue
    fi
    "$repo"/bazel-bin/tools/ledger_bench --server="127.0.0.1:$((base + 40))" --mode=batch --clients=8 \
      --batch_size=100 --payload_bytes=512 --warmup=1s --duration="$load" >/dev/null 2>&1 || true
    sleep 5
    primary=$(cl status | awk '/^pg[12] .* primary/ {print $2}' | cut -d: -f2)
    size=$(as_pg psql -h 127.0.0.1 -p "$primary" -U postgres -d caseledger -tAc \
      "SELECT head_seq FROM cl_partitions WHERE part = 0")
    # Handover.
    owner=$(cl status | awk '/^node[12] .* serving/ {print substr($1,5); exit}')
    other=$((3 - owner))
    heard=$(grep -c "listening on" "$CLUSTER_DIR/logs/node$other.log" || true)
    t0=$(date +%s.%N)
    kill -9 "$(cat "$CLUSTER_DIR/pids/node$owner.pid")"
    listens="" ack=""
    for i in $(seq 3000); do
      if [[ -z "$listens" && $(grep -c "listening on" "$CLUSTER_DIR/logs/node$other.log" || true) -gt $heard ]]; then
        listens=$(since "$t0")
      fi
      if [[ -n "$listens" ]] && append_at $((base + 39 + other)) "ho-$r-$i"; then ack=$(since "$t0"); break; fi
      sleep 0.1
    done
    cl restart "node$owner" >/dev/null 2>&1
    sleep 5
    # Failover.
    m=$(cl status | awk '/^pg[12] .* primary/ {print substr($1,3)}')
    pm=$(head -1 "$CLUSTER_DIR/pg$m/data/postmaster.pid")
    t0=$(date +%s.%N)
    kill -9 "$(cat "$CLUSTER_DIR/pids/patroni$m.pid")" "$pm"
    until cl status | grep "^pg$((3 - m)) .* primary" >/dev/null; do sleep 0.2; done
    promoted=$(since "$t0")
    cl restart "pg$m" >/dev/null 2>&1
    fack=""
    for i in $(seq 1500); do
      for p in $((base + 40)) $((base + 41)); do
        if append_at "$p" "fo-$r-$i"; then fack=$(since "$t0"); break 2; fi
      done
      sleep 0.2
    done
    printf "| %s | %s | %s | %.1f s | %s | %.1f s | %s |\n" "$r" "$name" "$size" "${listens:-0}" \
      "${ack:+$(printf '%.1f s' "$ack")}" "$promoted" "${fack:+$(printf '%.1f s' "$fack")}"
    cl stop >/dev/null 2>&1 || true
    [[ -n "$keep" ]] && mkdir -p "$keep/$name-$r" && cp -r "$CLUSTER_DIR/logs/." "$keep/$name-$r/"
    cur=""
    # the next cluster's ports: the old members may hold them a moment
    base=$(( base + 100 > 31900 ? 20000 : base + 100 ))
  done
done
