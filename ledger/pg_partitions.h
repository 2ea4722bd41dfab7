// A node of a partitioned ledger on PostgreSQL (ledger/CLUSTER.md
// "Partitions"): one Ledger over one PgStore per partition it owns, each
// with its own lease and epoch, so several nodes split the partitions and
// take over those whose owner stops renewing. Appends are routed by
// PartitionOf(stream_id); an append for a partition owned elsewhere is
// answered with the owner's address. The owner of partition 0 also
// sequences the global log (leaves: partition checkpoint bodies), fenced by
// partition 0's epoch.
#ifndef CASELEDGER_LEDGER_PG_PARTITIONS_H_
#define CASELEDGER_LEDGER_PG_PARTITIONS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "ledger/cosignature.h"
#include "ledger/key_store.h"
#include "ledger/ledger.h"
#include "ledger/log_store.h"
#include "ledger/partition.h"

namespace caseledger {

struct PartitionedNodeOptions {
  // As PgStoreOptions: libpq connection string, node name, its address
  // (host:port, named to clients whose write belongs to this node).
  std::string conninfo;
  std::string node_id;
  std::string address;
  // P, fixed at the ledger's creation (FAILED_PRECONDITION naming
  // --pg_partitions when it differs).
  int32_t partitions = 1;
  // Local state: partition i's RocksDB lives in "<dir>/p<i>".
  std::string dir;
  absl::Duration lease_ttl = absl::Seconds(10);
  absl::Duration reconnect_timeout = absl::Seconds(60);
  // How often a node looks for partitions to take (default lease_ttl / 4).
  absl::Duration acquire_interval = absl::ZeroDuration();
  // How many partitions this node takes while they have never had an owner
  // (0: all it finds free). A partition that had an owner whose lease lapsed
  // is always taken over. Two nodes with P / 2 each split a new ledger.
  int32_t max_new_partitions = 0;
  // While this node owns partition 0, it runs a global round (PublishGlobal)
  // this often, checkpointing its own partitions first. Zero: only when
  // PublishGlobal is called.
  absl::Duration global_interval = absl::ZeroDuration();
  // Each partition's Ledger gets these options with origin
  // PartitionOrigin(ledger.origin, i, P). Borrowed pointers in it must
  // outlive the node. ledger.cipher and ledger.blinder must be null: the
  // node sets them from master_key.
  LedgerOptions ledger;
  // Payload encryption and blinded identifiers, as on a single node with a
  // master key (ENCRYPTION.md, BLINDING.md): the node opens one KeyStore
  // over cl_keys (OpenPgKeyTable, shared with every node) wrapping data keys
  // under this key, and every partition's Ledger seals payloads with it and,
  // with blind_ids, writes record format 2 blinded with its salts. Unset:
  // plaintext, format 1, refused (FAILED_PRECONDITION) when cl_keys already
  // names a master key. A different key than the one cl_keys names is
  // refused (FAILED_PRECONDITION naming both ids).
  std::optional<AeadKey> master_key;
  bool blind_ids = true;
  // Shred and erase event types, as on a single node ("records_disposed",
  // "subject_erased" in the server). shared_table is set by the node.
  KeyStoreOptions key_options;
  // Signs the global checkpoints (origin GlobalOrigin(ledger.origin)). Its
  // key name must be that origin: witnesses take a log's origin to be its
  // key's name (COSIGNATURE.md), so this is the key they are given. The
  // same Ed25519 key as ledger.signer's may be used under this name.
  // Required; borrowed, must outlive the node.
  const NoteSigner* global_signer = nullptr;
  // Verifier keys of the witnesses that cosign the global checkpoints
  // (COSIGNATURE.md): AddGlobalCosignatures stores their lines, in
  // PostgreSQL, so that any node serves them. Pushing the checkpoints to
  // them is services/tlog's NewGlobalWitnessPusher (HTTP stays out of
  // ledger/). INVALID_ARGUMENT naming witness_keys[i] for a bad key.
  std::vector<std::string> witness_keys;
  std::function<void(const std::string&)> log;
};

// A global checkpoint and the size of the tree it states.
struct GlobalCheckpoint {
  uint64_t size = 0;
  std::string note;
};

class PartitionedNode {
 public:
  // Takes the partitions it may (see max_new_partitions) and starts looking
  // for more every acquire_interval. FAILED_PRECONDITION when P differs
  // from the ledger's; UNAVAILABLE when PostgreSQL cannot be reached.
  static absl::StatusOr<std::unique_ptr<PartitionedNode>> Start(PartitionedNodeOptions options);
  ~PartitionedNode();

  // Appends to the case's partition when this node owns it. Otherwise
  // FAILED_PRECONDITION "partition N is owned by node X at ADDRESS; send the
  // append there", or UNAVAILABLE when it has no live owner (retry with the
  // same event id: the original result comes back).
  absl::StatusOr<AppendResult> Append(AppendRequest request);
  // Appends events of one partition atomically, as Ledger::AppendBatch.
  // INVALID_ARGUMENT naming events[i].stream_id when they span partitions
  // (cross-partition atomicity is not offered); routing as Append.
  absl::StatusOr<std::vector<AppendResult>> AppendBatch(std::vector<AppendRequest> requests);

  // The partitions this node owns now (fenced ones excluded), ascending.
  std::vector<int32_t> Owned() const;
  // The ledger of an owned partition; NOT_FOUND otherwise.
  absl::StatusOr<std::shared_ptr<Ledger>> Partition(int32_t part) const;

  // One round of the global log; only the owner of partition 0 may run it
  // (FAILED_PRECONDITION otherwise, or when its epoch is no longer current:
  // nothing is written then). Appends, in partition order, the body of each
  // partition's newest checkpoint in PostgreSQL that is newer than the one
  // the global log holds, and signs and stores a global checkpoint of the
  // result. Returns the newest global checkpoint.
  absl::StatusOr<GlobalCheckpoint> PublishGlobal();

  // The proof of record `seq` of a partition, from the newest global
  // checkpoint whose tree holds a checkpoint of that partition covering seq
  // (FAILED_PRECONDITION when none does yet: publish first). Returns the
  // proof and the global checkpoint note it is checked against. Any node
  // answers: for a partition it does not own, the record and the partition
  // tree come from PostgreSQL (its leaves up to the checkpoint's size are
  // read and hashed: O(size), for the slice).
  absl::StatusOr<std::pair<PartitionedProof, GlobalCheckpoint>> Prove(int32_t part, uint64_t seq);

  // The newest global checkpoint (nullopt before the first). Any node.
  absl::StatusOr<std::optional<GlobalCheckpoint>> LatestGlobal() const;

  // Stores the cosignatures in `cosigned_note` (a global checkpoint this
  // ledger signed, with witness lines appended) of every witness in
  // witness_keys whose line verifies: one line per (size, witness), the
  // first stored wins (a later one is dropped, not an error). Any node.
  // INVALID_ARGUMENT when the note is not a global checkpoint of this
  // ledger, names a size with no global checkpoint, or its text differs
  // from the one signed; FAILED_PRECONDITION when no configured witness
  // cosigned it validly (naming why).
  absl::Status AddGlobalCosignatures(absl::string_view cosigned_note);

  // The global checkpoint at `size` with every stored cosignature line
  // appended (ordered by witness name): what a client checks against its
  // witness policy. NOT_FOUND when no global checkpoint has that size.
  absl::StatusOr<std::string> CosignedGlobal(uint64_t size) const;

  // PROOF(size1, D[size2]) of the global log.
  absl::StatusOr<std::vector<Hash>> GlobalConsistency(uint64_t size1, uint64_t size2) const;

  // One pass of lease taking (the background thread runs it too).
  absl::Status Acquire();

  // The node's key store (null without master_key): erase a subject with
  // EraseSubject after its erasure event is appended, as a single node
  // does; it destroys the subject's keys and salt in cl_keys, for every
  // partition and every node.
  KeyStore* key_store() const { return key_store_.get(); }

 private:
  struct Part;
  explicit PartitionedNode(PartitionedNodeOptions options);
  // Opens the partition's store and ledger if its lease can be had; OK
  // without taking it when another node holds the lease.
  absl::Status TryTake(int32_t part);
  // Opens cl_keys and, with a master key, the key store the ledgers use.
  absl::Status OpenKeys();
  // The owned partition of the events, or the routing error.
  absl::StatusOr<std::shared_ptr<Ledger>> Route(const std::vector<AppendRequest>& requests);
  absl::Status PublishRound();
  void AcquireLoop();

  PartitionedNodeOptions options_;
  // Declared before parts_: every partition's Ledger borrows key_store_.
  std::unique_ptr<KeyTable> key_table_;
  std::unique_ptr<KeyStore> key_store_;
  std::vector<CosignatureVerifier> witnesses_;  // from witness_keys
  mutable absl::Mutex mu_;
  std::map<int32_t, std::shared_ptr<Part>> parts_ ABSL_GUARDED_BY(mu_);
  absl::Mutex acquire_mu_;  // one Acquire at a time
  absl::Mutex stop_mu_;
  bool stopping_ ABSL_GUARDED_BY(stop_mu_) = false;
  std::thread acquirer_;
};

}  // namespace caseledger

#endif  // CASELEDGER_LEDGER_PG_PARTITIONS_H_
