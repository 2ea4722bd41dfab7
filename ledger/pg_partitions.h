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
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "ledger/ledger.h"
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
  // PartitionOrigin(ledger.origin, i, P). The signer also signs the global
  // checkpoints (origin GlobalOrigin(ledger.origin)). Borrowed pointers in
  // it must outlive the node.
  LedgerOptions ledger;
  // Signs the global checkpoints (origin GlobalOrigin(ledger.origin)). Its
  // key name must be that origin: witnesses take a log's origin to be its
  // key's name (COSIGNATURE.md), so this is the key they are given. The
  // same Ed25519 key as ledger.signer's may be used under this name.
  // Required; borrowed, must outlive the node.
  const NoteSigner* global_signer = nullptr;
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

  // PROOF(size1, D[size2]) of the global log.
  absl::StatusOr<std::vector<Hash>> GlobalConsistency(uint64_t size1, uint64_t size2) const;

  // The stored global checkpoint of `size`, or the newest when size is 0;
  // NOT_FOUND when there is none. Any node answers (read from PostgreSQL).
  absl::StatusOr<GlobalCheckpoint> GlobalCheckpointAt(uint64_t size) const;

  // One pass of lease taking (the background thread runs it too).
  absl::Status Acquire();

 private:
  struct Part;
  explicit PartitionedNode(PartitionedNodeOptions options);
  // Opens the partition's store and ledger if its lease can be had; OK
  // without taking it when another node holds the lease.
  absl::Status TryTake(int32_t part);
  // The owned partition of the events, or the routing error.
  absl::StatusOr<std::shared_ptr<Ledger>> Route(const std::vector<AppendRequest>& requests);
  absl::Status PublishRound();
  void AcquireLoop();

  PartitionedNodeOptions options_;
  mutable absl::Mutex mu_;
  std::map<int32_t, std::shared_ptr<Part>> parts_ ABSL_GUARDED_BY(mu_);
  absl::Mutex acquire_mu_;  // one Acquire at a time
  absl::Mutex stop_mu_;
  bool stopping_ ABSL_GUARDED_BY(stop_mu_) = false;
  std::thread acquirer_;
};

}  // namespace caseledger

#endif  // CASELEDGER_LEDGER_PG_PARTITIONS_H_
