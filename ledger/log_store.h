// The storage behind the ledger: a small interface, so that a replicated-log
// backend can later replace the local RocksDB one without touching hashing,
// proofs or projections (see shared/DESIGN.md "Scale").
#ifndef CASELEDGER_LEDGER_LOG_STORE_H_
#define CASELEDGER_LEDGER_LOG_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "ledger/hash.h"
#include "ledger/merkle_tree.h"
#include "ledger/subject_index.h"

namespace caseledger {

// One write to the key column family (ledger/ENCRYPTION.md "Storage"): a put,
// or a delete when `value` is nullopt.
struct KeyWrite {
  std::string key;
  std::optional<std::string> value;
};

// Everything one group commit writes. Applied atomically by Commit.
struct CommitBatch {
  struct StoredRecord {
    uint64_t seq;
    std::string leaf;     // EncodeRecord bytes
    std::string payload;  // EncodePayload bytes
    std::string stream_id;
    uint64_t version;
    std::string event_id;
  };
  std::vector<StoredRecord> records;
  std::vector<NodeWrite> nodes;
  // Signed checkpoints to store, by tree size.
  std::vector<std::pair<uint64_t, std::string>> checkpoints;
  uint64_t new_size = 0;  // tree size after this batch

  // The per-subject index (SUBJECT_INDEX.md "Storage").
  struct SubjectEntry {
    Hash key;        // SubjectKey(subject id)
    uint64_t index;  // 0-based position in the subject's chain
    uint64_t seq;
    Hash head;       // the chain head after this record
  };
  std::vector<SubjectEntry> subject_entries;
  // With a checkpoint: the subject map's nodes that changed since the
  // previous one, as (path, value) (SUBJECT_INDEX.md "Storage", layout 2).
  std::vector<std::pair<std::string, std::string>> subject_map_nodes;
  // Key-table writes that must land with these records (e.g. a disposal
  // destroying its case's data keys). When any is a delete, Commit purges
  // (KeyTable::Purge) before returning.
  std::vector<KeyWrite> key_writes;
};

// The wrapped data keys of payload encryption (ledger/ENCRYPTION.md), in their
// own column family of the same database as the records. Thread-safe.
class KeyTable {
 public:
  virtual ~KeyTable() = default;
  // The value under `key`, or nullopt.
  virtual absl::StatusOr<std::optional<std::string>> GetKey(absl::string_view key) const = 0;
  // Calls fn(key, value) for every key starting with `prefix`, in key order,
  // until fn returns false. The views are valid only during the call.
  virtual absl::Status ScanKeys(
      absl::string_view prefix,
      const std::function<bool(absl::string_view, absl::string_view)>& fn) const = 0;
  // Applies `writes` atomically and durably (one synced write), then purges
  // when `purge` is set (a caller deleting keys purges, now or soon).
  virtual absl::Status WriteKeys(const std::vector<KeyWrite>& writes, bool purge = false) = 0;
  // Calls plan(), which reads the table (GetKey, ScanKeys) and returns
  // writes that depend on what it read, then applies them like WriteKeys
  // (not purged). No other write to the key table (WriteKeys, UpdateKeys,
  // or a LogStore::Commit with key_writes) lands between plan's reads and
  // its writes: they wait. plan must not write the table itself. An error
  // from plan is returned and nothing is written.
  virtual absl::Status UpdateKeys(
      const std::function<absl::StatusOr<std::vector<KeyWrite>>()>& plan) = 0;
  // Makes deleted and overwritten key values leave the data directory's
  // files: flushes every memtable (so that no live WAL file still holds
  // them) and compacts the key family to its last level (so that no SST
  // does). Blocks until done.
  virtual absl::Status Purge() = 0;
};

// Where a stored checkpoint note lives.
struct StoredCheckpoint {
  uint64_t size = 0;
  std::string note;
};

// The storage behind the ledger is a few interfaces (ledger/STORE.md): the
// log of record (RecordLog), which is the ledger's truth and could live in
// another database (shared/DESIGN.md "Scale"), and local state derived from
// it and rebuildable from it (NodeStore, SubjectIndexStore), plus
// cosignatures (CosignatureStore) and the key table (KeyTable). LogStore is
// their aggregate: one database holding all of them, committing each
// CommitBatch in one atomic write.
//
// Thread-safety of each: Commit is called by one thread at a time; every read
// may run concurrently with it and with each other. Reads see only committed
// batches.

// The log of record: the records (leaf and payload bytes), the event-id and
// stream indexes that enforce idempotency and case versions, the tree size,
// and the signed checkpoints.
class RecordLog {
 public:
  virtual ~RecordLog() = default;

  // Writes `batch` atomically and durably (synced) before returning OK. A
  // LogStore applies every part of the batch; the log-of-record part is
  // records, checkpoints and new_size (ledger/STORE.md).
  virtual absl::Status Commit(const CommitBatch& batch) = 0;

  // The tree size recorded by the last commit (0 for a new store).
  virtual absl::StatusOr<uint64_t> Size() const = 0;

  // NOT_FOUND when absent.
  virtual absl::StatusOr<std::string> GetLeaf(uint64_t seq) const = 0;
  virtual absl::StatusOr<std::string> GetPayload(uint64_t seq) const = 0;
  // GetLeaf and GetPayload of each of `seqs` (increasing), into leaves[i]
  // and payloads[i] (resized to seqs.size()); NOT_FOUND naming the first
  // absent one. Stores override this default, which reads one by one, with a
  // batched read.
  virtual absl::Status GetRecords(absl::Span<const uint64_t> seqs, std::vector<std::string>* leaves,
                                  std::vector<std::string>* payloads) const {
    leaves->resize(seqs.size());
    payloads->resize(seqs.size());
    for (size_t i = 0; i < seqs.size(); ++i) {
      absl::StatusOr<std::string> leaf = GetLeaf(seqs[i]);
      if (!leaf.ok()) return leaf.status();
      (*leaves)[i] = *std::move(leaf);
      absl::StatusOr<std::string> payload = GetPayload(seqs[i]);
      if (!payload.ok()) return payload.status();
      (*payloads)[i] = *std::move(payload);
    }
    return absl::OkStatus();
  }
  // The seq of an event id, or nullopt.
  virtual absl::StatusOr<std::optional<uint64_t>> FindEventId(absl::string_view event_id) const = 0;
  // The seq of (stream, version), NOT_FOUND when absent.
  virtual absl::StatusOr<uint64_t> FindStreamVersion(absl::string_view stream_id,
                                                     uint64_t version) const = 0;
  // The number of records in a stream (its next version).
  virtual absl::StatusOr<uint64_t> StreamLength(absl::string_view stream_id) const = 0;

  // A stream's (case's) records as (version, seq) pairs from `from_version`,
  // in order, until fn returns false.
  virtual absl::Status ScanStream(absl::string_view stream_id, uint64_t from_version,
                                  const std::function<bool(uint64_t, uint64_t)>& fn) const = 0;

  // Checkpoints: the newest, the one at exactly `size`, and all in size order.
  virtual absl::StatusOr<std::optional<StoredCheckpoint>> LatestCheckpoint() const = 0;
  virtual absl::StatusOr<StoredCheckpoint> CheckpointAt(uint64_t size) const = 0;
  virtual absl::StatusOr<std::vector<StoredCheckpoint>> Checkpoints() const = 0;
  // The checkpoints with min_size <= size <= max_size, in size order. The
  // default filters Checkpoints(); stores override it to read only those.
  virtual absl::StatusOr<std::vector<StoredCheckpoint>> CheckpointsIn(uint64_t min_size,
                                                                      uint64_t max_size) const {
    absl::StatusOr<std::vector<StoredCheckpoint>> all = Checkpoints();
    if (!all.ok()) return all.status();
    std::vector<StoredCheckpoint> out;
    for (StoredCheckpoint& c : *all) {
      if (c.size >= min_size && c.size <= max_size) out.push_back(std::move(c));
    }
    return out;
  }

  // One stored record as the scan sees it: its raw key, and the payload and
  // level-0 Merkle node stored under the same seq (nullopt when absent, and
  // always from a log of record that keeps no nodes).
  struct ScannedRecord {
    uint64_t key_seq;
    absl::string_view leaf;
    std::optional<absl::string_view> payload;
    std::optional<absl::string_view> leaf_node;
  };
  // Calls `fn` for stored records with key >= from, in key order, until fn
  // returns false. Sees raw keys, so a verifier can spot gaps. The views are
  // valid only during the call.
  virtual absl::Status ScanRecords(uint64_t from,
                                   const std::function<bool(const ScannedRecord&)>& fn) const = 0;
};

// The Merkle tree's stored nodes (ledger/MERKLE.md): local state, rebuildable
// from the log of record's leaves.
class NodeStore : public NodeReader {
 public:
  ~NodeStore() override = default;

  // Calls `fn(index, hash bytes)` for the stored Merkle nodes of `level`
  // with index >= from, in index order, until fn returns false. Sees raw
  // values, so a verifier can spot damaged ones; the view is valid only
  // during the call. This default reads node by node with GetNode and stops
  // at the first absent one; stores override it with a real scan.
  virtual absl::Status ScanNodes(uint32_t level, uint64_t from,
                                 const std::function<bool(uint64_t, absl::string_view)>& fn) const {
    for (uint64_t i = from;; ++i) {
      absl::StatusOr<Hash> h = GetNode(level, i);
      if (absl::IsNotFound(h.status())) return absl::OkStatus();
      if (!h.ok()) return h.status();
      if (!fn(i, AsBytes(*h))) return absl::OkStatus();
    }
  }
};

// The per-subject index and subject map (ledger/SUBJECT_INDEX.md): local
// state, rebuildable from the log of record's records.
class SubjectIndexStore {
 public:
  virtual ~SubjectIndexStore() = default;

  // A subject's current state, from its last entry (count 0 if it has none).
  virtual absl::StatusOr<SubjectState> GetSubjectHead(const Hash& key) const = 0;
  // The subject's entry `index` (0-based): the seq of its index-th record and
  // the chain head after it. NOT_FOUND when absent.
  struct SubjectEntryValue {
    uint64_t seq = 0;
    Hash head{};
  };
  virtual absl::StatusOr<SubjectEntryValue> GetSubjectEntry(const Hash& key,
                                                            uint64_t index) const = 0;
  // The subject's records as (index, seq) pairs from `from_index`, in order,
  // until fn returns false.
  virtual absl::Status ScanSubject(const Hash& key, uint64_t from_index,
                                   const std::function<bool(uint64_t, uint64_t)>& fn) const = 0;
  // Layout 1 only (before the map's nodes were stored): every map leaf as of
  // the last checkpoint, in key order. Read once, to migrate.
  virtual absl::Status ScanSubjectMap(
      const std::function<void(const Hash&, const SubjectState&)>& fn) const = 0;
  // How the map is stored (SUBJECT_INDEX.md "Storage"): 1 = leaves only,
  // 2 = nodes.
  virtual absl::StatusOr<uint32_t> SubjectMapLayout() const = 0;
  // The map's node at `path` (SubjectMapNodePath in subject_map_store.h), or
  // nullopt when none is stored there.
  virtual absl::StatusOr<std::optional<std::string>> GetSubjectMapNode(
      absl::string_view path) const = 0;
  // Writes map nodes durably (one synced write) outside a Commit, for the
  // migration to layout 2. With `finish`, the same write sets layout 2 and
  // deletes the layout-1 leaves.
  virtual absl::Status PutSubjectMapNodes(
      const std::vector<std::pair<std::string, std::string>>& nodes, bool finish) = 0;
};

// Witnesses' cosignatures of checkpoints (ledger/COSIGNATURE.md).
class CosignatureStore {
 public:
  virtual ~CosignatureStore() = default;

  // Witness cosignature lines for the checkpoint at `size`, one per witness
  // (`witness` is its "<name>+<key hash hex>"); a newer line replaces the
  // witness's older one. Written on its own (synced), not in a Commit, and may
  // run concurrently with Commit. The caller checks the line first. The
  // defaults say UNIMPLEMENTED for stores without cosignatures.
  virtual absl::Status PutCosignature(uint64_t /*size*/, absl::string_view /*witness*/,
                                      absl::string_view /*line*/) {
    return absl::UnimplementedError("this store keeps no cosignatures");
  }
  // The lines stored for `size`, ordered by witness; empty when none.
  virtual absl::StatusOr<std::vector<std::string>> Cosignatures(uint64_t /*size*/) const {
    return std::vector<std::string>();
  }
  // The largest checkpoint size with at least one cosignature, or nullopt.
  virtual absl::StatusOr<std::optional<uint64_t>> LatestCosignedSize() const {
    return std::optional<uint64_t>();
  }
};

// All of the above in one store, which applies every part of a CommitBatch
// (records, nodes, subject entries and map leaves, checkpoints, key writes)
// in one atomic synced write. (RocksStore syncs the derived parts, index
// entries and Merkle nodes, in a form it can rebuild them from at open:
// ledger/STORE.md "Deferred indexes", "Deferred Merkle nodes".) RocksStore (ledger/rocks_store.h) and
// MemoryStore (ledger/memory_store.h) are the implementations.
class LogStore : public RecordLog,
                 public NodeStore,
                 public SubjectIndexStore,
                 public CosignatureStore {
 public:
  ~LogStore() override = default;

  // The store's key table, owned by the store and living as long as it; null
  // when the store keeps no keys (then payload encryption is unavailable).
  virtual KeyTable* keys() { return nullptr; }
};

}  // namespace caseledger

#endif  // CASELEDGER_LEDGER_LOG_STORE_H_
