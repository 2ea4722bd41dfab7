// The LogStore whose log of record is PostgreSQL (ledger/CLUSTER.md): the
// records, checkpoints and data keys live in PostgreSQL tables committed with
// synchronous replication; Merkle nodes, the subject index and cosignatures
// stay in the node's local RocksStore, which also mirrors the records for
// reads and is caught up from PostgreSQL when behind (or empty).
//
// One owner per partition: OpenPgStore takes the partition's lease (a row
// with an epoch). Every Commit moves the partition head with a
// compare-and-swap on (epoch, head seq) inside the transaction that inserts
// the records, so a stale owner's commit is refused and changes nothing.
#ifndef CASELEDGER_LEDGER_PG_STORE_H_
#define CASELEDGER_LEDGER_PG_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ledger/log_store.h"

namespace caseledger {

struct PgStoreOptions {
  // libpq connection string. For a Patroni cluster name every member and ask
  // for the primary: "host=h1,h2 port=p1,p2 dbname=... target_session_attrs=read-write".
  std::string conninfo;
  // The partition this store sequences, below `partitions`.
  int32_t partition = 0;
  // P, the ledger's partition count: written when the ledger is created in
  // PostgreSQL and checked at every open (FAILED_PRECONDITION naming
  // --pg_partitions if it differs). 1 is the unpartitioned ledger.
  int32_t partitions = 1;
  // Where clients reach this node (host:port), written in the lease row so
  // that other nodes can name the owner of a partition. Optional.
  std::string address;
  // This node's name in the lease row (for operators; the epoch fences).
  std::string node_id;
  // How long a lease lasts without renewal; renewed every third of it.
  absl::Duration lease_ttl = absl::Seconds(10);
  // When the lease is held by another live owner: wait for it (true) or
  // fail with FAILED_PRECONDITION (false).
  bool wait_for_lease = false;
  // While waiting for the lease (wait_for_lease): copy the records the owner
  // commits into `local` this often, in bounded steps, reading PostgreSQL
  // only (never writing without the lease), so that at lease time only the
  // last moments are left to catch up. Zero: no copying while waiting.
  absl::Duration tail_interval = absl::ZeroDuration();
  // While waiting with tail_interval: called on the waiting thread after each
  // step, with the local store as it now is (to read, e.g. through
  // ReadOnlyLocalStore, and only during the call). Optional.
  std::function<void(LogStore& local)> while_waiting;
  // How long a commit or read keeps reconnecting through a failover before
  // it gives up with UNAVAILABLE.
  absl::Duration reconnect_timeout = absl::Seconds(60);
  // The node's local store (a RocksStore): nodes, subject index,
  // cosignatures and the record mirror. Required.
  std::unique_ptr<LogStore> local;
  // Called once, from any thread, when this store learns that another owner
  // took the partition (its commits are refused from then on). Optional.
  std::function<void(const absl::Status&)> on_fenced;
  // Optional progress log (waiting for the lease, catching up).
  std::function<void(const std::string&)> log;
};

// Connects, creates the tables when missing, takes the lease (a new epoch),
// and catches the local store up to the partition head before returning.
// With partitions == 1 the lease holder is the only writer of cl_keys, and
// keys() answers reads from a copy loaded after the lease was taken and kept
// current by this store's own key writes (CLUSTER.md "Data keys of the owner").
// FAILED_PRECONDITION when the lease is held elsewhere and !wait_for_lease;
// DATA_LOSS when the local store holds records the log of record does not
// (or different ones); UNAVAILABLE when PostgreSQL cannot be reached.
absl::StatusOr<std::unique_ptr<LogStore>> OpenPgStore(PgStoreOptions options);

// The partition's lease row as PostgreSQL holds it (for status and tests).
struct PgPartitionHead {
  int64_t epoch = 0;
  std::string owner;
  uint64_t head_seq = 0;  // the tree size
  std::string head_hash;  // the last record's leaf hash (32 bytes; empty at 0)
  std::string owner_address;  // the owner's PgStoreOptions::address
  bool lease_live = false;    // lease_until is still ahead (by PostgreSQL's clock)
};
// The lease epoch a store returned by OpenPgStore holds (0 for any other
// LogStore). Fixed for the store's life.
int64_t PgStoreEpoch(const LogStore& store);

// Gives up the lease of a store returned by OpenPgStore: stops renewing it,
// refuses every later Commit (FAILED_PRECONDITION), and sets lease_until to
// now WHERE epoch = ours, so that another node takes the partition at once
// instead of after lease_ttl (ledger/CLUSTER.md "A node that cannot
// listen"). FAILED_PRECONDITION when another epoch already holds it;
// INVALID_ARGUMENT for any other LogStore.
absl::Status ReleasePgLease(LogStore& store);

absl::StatusOr<PgPartitionHead> ReadPgPartitionHead(const std::string& conninfo,
                                                    int32_t partition);

// A LogStore over `local` (borrowed, a node's local store) that reads it and
// refuses every write (FAILED_PRECONDITION), with `keys` (borrowed) as its key
// table: a node waiting for the lease opens a Ledger over it to keep its read
// models warm (PgStoreOptions::while_waiting).
std::unique_ptr<LogStore> ReadOnlyLocalStore(LogStore* local, KeyTable* keys);

// cl_keys as a node without the lease reads it: every row is read into
// memory at open, GetKey answers from that copy (PostgreSQL only for a key it
// lacks), and every write is refused (FAILED_PRECONDITION). A key the owner
// destroys afterwards stays in the copy: AnyDestroyed() reads the table's
// keys and says whether one the copy holds is gone (CLUSTER.md "A waiting
// node keeps warm").
class PgKeyView : public KeyTable {
 public:
  virtual absl::StatusOr<bool> AnyDestroyed() const = 0;
};
absl::StatusOr<std::unique_ptr<PgKeyView>> OpenPgKeyView(
    const std::string& conninfo, absl::Duration reconnect_timeout = absl::Seconds(60));

// The key table in PostgreSQL (cl_keys, CLUSTER.md "Data keys in a
// partitioned ledger") on connections of its own, for a KeyStore that must
// outlive every partition's store (PartitionedNode): the same rows as any
// PgStore's keys(). Creations are first-writer-wins (ABORTED for a loser,
// which reads the winner back); UpdateKeys locks the table against every
// other writer, in any process, from its plan's reads to its commit.
absl::StatusOr<std::unique_ptr<KeyTable>> OpenPgKeyTable(
    const std::string& conninfo, absl::Duration reconnect_timeout = absl::Seconds(60));

}  // namespace caseledger

#endif  // CASELEDGER_LEDGER_PG_STORE_H_
