// The LogStore on an embedded RocksDB data directory.
//
// Column families (ledger/FORMAT.md "Storage"): records, payloads, streams,
// nodes, event_ids, checkpoints, meta, cosignatures, subjects, keys,
// index_log, subject_log. Every Commit is one synced WriteBatch; the event-id,
// stream and subject index entries it implies are written later, without the
// WAL, from an in-memory tail that the synced index_log and subject_log
// rebuild at open (ledger/STORE.md "Deferred indexes"), and so are its Merkle
// nodes, which an open recomputes from the records past meta/nodes_size
// (STORE.md "Deferred Merkle nodes").
#ifndef CASELEDGER_LEDGER_ROCKS_STORE_H_
#define CASELEDGER_LEDGER_ROCKS_STORE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "ledger/log_store.h"

namespace caseledger {

struct RocksStoreOptions {
  std::string path;  // the directory; created when missing
  bool read_only = false;
  // Bytes of block cache shared by all column families.
  size_t block_cache_bytes = 64 << 20;
  // Memtable size per column family before a flush.
  size_t write_buffer_bytes = 32 << 20;
  // Cap on all memtables together (0 = no cap); a flush starts when reached.
  size_t total_write_buffer_bytes = 160 << 20;
  // Cap on the live write-ahead log: reaching it flushes the memtables that
  // keep the oldest WAL file alive. What a restart after kill -9 replays.
  uint64_t max_wal_bytes = 16 << 20;
  // Events whose event-id, stream and subject index entries are held in
  // memory (and in the synced index_log and subject_log) before a background write moves them into the
  // index families; a second tail of this size may wait behind it. Bounds
  // what an open after kill -9 reads back from the two logs. Their Merkle
  // nodes wait in the same tail, and the records an open hashes again to
  // recompute them are bounded the same way.
  size_t index_tail_events = 64 << 10;
  // For benchmark builders only (ledger_builder.h): commits are neither
  // synced nor logged (no WAL), so they are on disk only once the store is
  // closed (it flushes every memtable then). A crash meanwhile leaves a
  // directory to delete, not one to open.
  bool bulk_load = false;
};

// Opens or creates a store. FAILED_PRECONDITION naming the directory when it
// cannot be opened (e.g. another process holds its lock).
absl::StatusOr<std::unique_ptr<LogStore>> OpenRocksStore(const RocksStoreOptions& options);

}  // namespace caseledger

#endif  // CASELEDGER_LEDGER_ROCKS_STORE_H_
