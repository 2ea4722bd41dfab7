#!/usr/bin/env bash
# synced_write_stats.sh: what a group commit's synced write carries per event,
# read from the WAL that the durable append benchmark leaves behind.
#
#   bash tools/synced_write_stats.sh LEDGER_BENCHMARK [SECONDS]
#
# Runs LEDGER_BENCHMARK --benchmark_filter='^BM_AppendBatchDurable/100/.*threads:8$'
# (ledger/ledger_benchmark.cc) for SECONDS (default 9), kills it with SIGKILL so
# that its data directory and live WAL stay, dumps the WAL with `ldb dump_wal
# --header` (rocksdb-tools) and sums the write batches that hold records
# (column family 1, `records`: the group commits): groups, events, events per
# group, keys per event and bytes per event (WriteBatch byte size, which is what
# the WAL writes and syncs). Run it for two binaries to compare them; the
# numbers do not depend on the machine's load, only the number of groups does.
set -euo pipefail
die() { echo "synced_write_stats: $*" >&2; exit 1; }

[[ $# -ge 1 && $# -le 2 ]] || die "usage: bash tools/synced_write_stats.sh LEDGER_BENCHMARK [SECONDS]"
bench=$(realpath "$1")
secs=${2:-9}
[[ -x "$bench" ]] || die "$1: not an executable file"
[[ "$secs" =~ ^[1-9][0-9]*$ ]] || die "SECONDS: got \"$secs\", want a positive integer"
command -v ldb >/dev/null || die "ldb not found: apt-get install -y rocksdb-tools"

tmp=$(mktemp -d /tmp/synced_write_stats.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
TEST_TMPDIR="$tmp" "$bench" --benchmark_filter='^BM_AppendBatchDurable/100/.*threads:8$' \
  --benchmark_min_time=60 >"$tmp/bench.log" 2>&1 &
pid=$!
sleep "$secs"
kill -0 "$pid" 2>/dev/null || die "the benchmark ended before $secs s: $(tail -3 "$tmp/bench.log")"
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
current=$(find "$tmp" -name CURRENT | head -1)
[[ -n "$current" ]] || die "no data directory under $tmp"
for wal in "$(dirname "$current")"/*.log; do
  ldb dump_wal --walfile="$wal" --header 2>/dev/null || true
done >"$tmp/wal.txt"
# One line per write batch: sequence, count, byte size, offset, then its operations.
awk -F, 'NR > 1 && $1 ~ /^[0-9]+$/ {
    n = gsub(/PUT\(1\) :/, "&", $0)
    if (n > 0) { events += n; keys += $2; bytes += $3; groups++ }
  }
  END {
    if (groups == 0) { print "synced_write_stats: no group commit in the WAL" > "/dev/stderr"; exit 1 }
    printf "%s: %d groups, %d events, %.0f events/group, %.3f keys/event, %.1f bytes/event\n",
      bench, groups, events, events / groups, keys / events, bytes / events
  }' bench="$bench" "$tmp/wal.txt"
