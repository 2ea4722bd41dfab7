#include "ledger/pg_store.h"

#include <postgresql/libpq-fe.h>

#include <algorithm>
#include <deque>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "ledger/hash.h"
#include "ledger/internal/pg.h"
#include "ledger/internal/status_macros.h"
#include "ledger/merkle_tree.h"
#include "ledger/partition.h"
#include "ledger/record.h"
#include "ledger/subject_index.h"
#include "ledger/subject_map_store.h"

namespace caseledger {
namespace {

// The schema (ledger/CLUSTER.md "Tables"). Idempotent.
// Concurrent CREATE TABLE IF NOT EXISTS can collide in the catalog: the
// whole script runs in one implicit transaction under an advisory lock.
constexpr char kSchema[] = R"sql(
SELECT pg_advisory_xact_lock(7223113460716306432);
CREATE TABLE IF NOT EXISTS cl_partitions (
  part int PRIMARY KEY,
  epoch bigint NOT NULL,
  owner text NOT NULL,
  lease_until timestamptz NOT NULL,
  head_seq bigint NOT NULL,
  head_hash bytea NOT NULL
);
CREATE TABLE IF NOT EXISTS cl_records (
  part int NOT NULL,
  seq bigint NOT NULL,
  leaf bytea NOT NULL,
  payload bytea NOT NULL,
  stream_id bytea NOT NULL,
  version bigint NOT NULL,
  event_id bytea NOT NULL,
  epoch bigint NOT NULL,
  PRIMARY KEY (part, seq),
  CONSTRAINT cl_records_event_id UNIQUE (event_id),
  CONSTRAINT cl_records_stream_version UNIQUE (stream_id, version)
);
CREATE TABLE IF NOT EXISTS cl_checkpoints (
  part int NOT NULL,
  size bigint NOT NULL,
  note bytea NOT NULL,
  PRIMARY KEY (part, size)
);
CREATE TABLE IF NOT EXISTS cl_keys (
  k bytea PRIMARY KEY,
  v bytea NOT NULL
);
ALTER TABLE cl_partitions ADD COLUMN IF NOT EXISTS partitions int NOT NULL DEFAULT 1;
ALTER TABLE cl_partitions ADD COLUMN IF NOT EXISTS owner_address text NOT NULL DEFAULT '';
)sql";

// Rows per multi-row INSERT (8 parameters each, far below libpq's 65535).
constexpr size_t kInsertChunk = 500;
// Records per catch-up read and local commit.
constexpr int64_t kCatchUpChunk = 4096;
// Most records a waiting node copies per tailing step (PgStoreOptions::tail_interval).
constexpr uint64_t kTailRecords = 4 * kCatchUpChunk;

using pg::Conn;
using pg::Connect;
using pg::ConnectionLost;
using pg::Exec;
using pg::ExecText;
using pg::GetBytes;
using pg::GetInt8;
using pg::Params;
using pg::Result;

std::string EpochError(int32_t partition, int64_t ours, const PgPartitionHead& now) {
  return absl::StrCat("partition ", partition, " was taken over: epoch ", now.epoch, " (owner \"",
                      now.owner, "\", head ", now.head_seq, "), ours is ", ours,
                      "; this node's commits are refused");
}

absl::StatusOr<PgPartitionHead> ReadHead(PGconn* c, int32_t partition) {
  Params p;
  p.Int4(partition);
  CL_ASSIGN_OR_RETURN(
      Result r, Exec(c, "SELECT epoch, convert_to(owner, 'UTF8'), head_seq, head_hash, "
                     "convert_to(owner_address, 'UTF8'), (lease_until > clock_timestamp())::int4 "
                     "FROM cl_partitions WHERE part = $1",
                     &p, "read partition head"));
  if (PQntuples(r.get()) != 1) {
    return absl::NotFoundError(absl::StrCat("partition ", partition, " has no row"));
  }
  PgPartitionHead h;
  h.epoch = GetInt8(r.get(), 0, 0);
  h.owner = GetBytes(r.get(), 0, 1);
  h.head_seq = static_cast<uint64_t>(GetInt8(r.get(), 0, 2));
  h.head_hash = GetBytes(r.get(), 0, 3);
  h.owner_address = GetBytes(r.get(), 0, 4);
  h.lease_live = PQgetvalue(r.get(), 0, 5)[3] != 0;
  return h;
}

// BEGIN, body, COMMIT on `c`; ROLLBACK when body fails. `warned` is the
// connection's notice flag (Connect): set by a COMMIT whose wait for the
// synchronous standby was cancelled, which is then not acknowledged.
absl::Status RunTransaction(PGconn* c, bool* warned, const std::function<absl::Status()>& body) {
  CL_RETURN_IF_ERROR(ExecText(c, "BEGIN", "begin"));
  absl::Status s = body();
  if (!s.ok()) {
    if (!ConnectionLost(c)) (void)ExecText(c, "ROLLBACK", "rollback");
    return s;
  }
  *warned = false;
  CL_RETURN_IF_ERROR(ExecText(c, "COMMIT", "commit"));
  if (*warned) {
    // The wait for the standby was cancelled: committed on the primary
    // only. Not acknowledged; the node stops (ledger/CLUSTER.md).
    return absl::UnavailableError(
        "postgresql: commit not confirmed by a synchronous standby (wait cancelled)");
  }
  return absl::OkStatus();
}

// The reads of a LogStore, all from the node's local store (`local_`): the
// record mirror, Merkle nodes, subject index and cosignatures. Commit and
// keys() are the subclass's.
class LocalReads : public LogStore {
 public:
  explicit LocalReads(LogStore* local) : local_(local) {}

  absl::StatusOr<uint64_t> Size() const override { return local_->Size(); }
  absl::StatusOr<std::string> GetLeaf(uint64_t seq) const override { return local_->GetLeaf(seq); }
  absl::StatusOr<std::string> GetPayload(uint64_t seq) const override {
    return local_->GetPayload(seq);
  }
  absl::Status GetRecords(absl::Span<const uint64_t> seqs, std::vector<std::string>* leaves,
                          std::vector<std::string>* payloads) const override {
    return local_->GetRecords(seqs, leaves, payloads);
  }
  absl::StatusOr<std::optional<uint64_t>> FindEventId(absl::string_view id) const override {
    return local_->FindEventId(id);
  }
  absl::StatusOr<uint64_t> FindStreamVersion(absl::string_view s, uint64_t v) const override {
    return local_->FindStreamVersion(s, v);
  }
  absl::StatusOr<uint64_t> StreamLength(absl::string_view s) const override {
    return local_->StreamLength(s);
  }
  absl::Status ScanStream(absl::string_view s, uint64_t from,
                          const std::function<bool(uint64_t, uint64_t)>& fn) const override {
    return local_->ScanStream(s, from, fn);
  }
  absl::StatusOr<std::optional<StoredCheckpoint>> LatestCheckpoint() const override {
    return local_->LatestCheckpoint();
  }
  absl::StatusOr<StoredCheckpoint> CheckpointAt(uint64_t size) const override {
    return local_->CheckpointAt(size);
  }
  absl::StatusOr<std::vector<StoredCheckpoint>> Checkpoints() const override {
    return local_->Checkpoints();
  }
  absl::StatusOr<std::vector<StoredCheckpoint>> CheckpointsIn(uint64_t a,
                                                              uint64_t b) const override {
    return local_->CheckpointsIn(a, b);
  }
  absl::Status ScanRecords(uint64_t from,
                           const std::function<bool(const ScannedRecord&)>& fn) const override {
    return local_->ScanRecords(from, fn);
  }

  // --- NodeStore, SubjectIndexStore, CosignatureStore: local.
  absl::StatusOr<Hash> GetNode(uint32_t level, uint64_t index) const override {
    return local_->GetNode(level, index);
  }
  absl::Status ScanNodes(uint32_t level, uint64_t from,
                         const std::function<bool(uint64_t, absl::string_view)>& fn) const override {
    return local_->ScanNodes(level, from, fn);
  }
  absl::StatusOr<SubjectState> GetSubjectHead(const Hash& key) const override {
    return local_->GetSubjectHead(key);
  }
  absl::StatusOr<SubjectEntryValue> GetSubjectEntry(const Hash& key,
                                                    uint64_t index) const override {
    return local_->GetSubjectEntry(key, index);
  }
  absl::Status ScanSubject(const Hash& key, uint64_t from,
                           const std::function<bool(uint64_t, uint64_t)>& fn) const override {
    return local_->ScanSubject(key, from, fn);
  }
  absl::Status ScanSubjectMap(
      const std::function<void(const Hash&, const SubjectState&)>& fn) const override {
    return local_->ScanSubjectMap(fn);
  }
  absl::StatusOr<uint32_t> SubjectMapLayout() const override {
    return local_->SubjectMapLayout();
  }
  absl::StatusOr<std::optional<std::string>> GetSubjectMapNode(
      absl::string_view path) const override {
    return local_->GetSubjectMapNode(path);
  }
  absl::Status PutSubjectMapNodes(const std::vector<std::pair<std::string, std::string>>& nodes,
                                  bool finish) override {
    return local_->PutSubjectMapNodes(nodes, finish);
  }
  absl::Status PutCosignature(uint64_t size, absl::string_view witness,
                              absl::string_view line) override {
    return local_->PutCosignature(size, witness, line);
  }
  absl::StatusOr<std::vector<std::string>> Cosignatures(uint64_t size) const override {
    return local_->Cosignatures(size);
  }
  absl::StatusOr<std::optional<uint64_t>> LatestCosignedSize() const override {
    return local_->LatestCosignedSize();
  }

 protected:
  LogStore* const local_;  // borrowed
};

// --- cl_keys (KeyTable), shared by PgStore::keys() and OpenPgKeyTable.

absl::StatusOr<std::optional<std::string>> ReadKey(PGconn* c, absl::string_view key) {
  Params p;
  p.Bytes(key);
  CL_ASSIGN_OR_RETURN(Result r, Exec(c, "SELECT v FROM cl_keys WHERE k = $1", &p, "read key"));
  if (PQntuples(r.get()) == 0) return std::optional<std::string>();
  return std::optional<std::string>(GetBytes(r.get(), 0, 0));
}

absl::StatusOr<Result> ReadKeysWithPrefix(PGconn* c, absl::string_view prefix) {
  Params p;
  p.Bytes(prefix).Int4(static_cast<int32_t>(prefix.size()));
  return Exec(c, "SELECT k, v FROM cl_keys WHERE substring(k from 1 for $2) = $1 ORDER BY k", &p,
              "scan keys");
}

absl::Status ScanKeyRows(const Result& rows,
                         const std::function<bool(absl::string_view, absl::string_view)>& fn) {
  for (int i = 0; i < PQntuples(rows.get()); ++i) {
    std::string k = GetBytes(rows.get(), i, 0), v = GetBytes(rows.get(), i, 1);
    if (!fn(k, v)) break;
  }
  return absl::OkStatus();
}

// Dead tuples leave the table's files; WAL segments and standbys keep them
// until recycled (ledger/CLUSTER.md "Erasure").
absl::Status PurgeKeys(PGconn* c) { return ExecText(c, "VACUUM FULL cl_keys", "purge keys"); }

// With first_writer_wins (WriteKeys: the creations of data keys, salts and
// the master key id, which several partition owners may race to make), a
// put never replaces another value: a key that exists with a different
// value fails the whole write with ABORTED, and the caller reads the winner
// back (KeyStore does). The same value again is a repeat after a failover.
// Otherwise (UpdateKeys: rotation re-wraps; commits) puts replace.
absl::Status ApplyKeyWrites(PGconn* c, const std::vector<KeyWrite>& writes,
                            bool first_writer_wins) {
  for (const KeyWrite& w : writes) {
    Params p;
    p.Bytes(w.key);
    if (!w.value.has_value()) {
      CL_RETURN_IF_ERROR(Exec(c, "DELETE FROM cl_keys WHERE k = $1", &p, "delete key").status());
      continue;
    }
    p.Bytes(*w.value);
    if (!first_writer_wins) {
      CL_RETURN_IF_ERROR(Exec(c,
                              "INSERT INTO cl_keys (k, v) VALUES ($1, $2) "
                              "ON CONFLICT (k) DO UPDATE SET v = excluded.v",
                              &p, "write key")
                             .status());
      continue;
    }
    CL_ASSIGN_OR_RETURN(Result r, Exec(c,
                                       "INSERT INTO cl_keys (k, v) VALUES ($1, $2) "
                                       "ON CONFLICT (k) DO NOTHING",
                                       &p, "create key"));
    if (std::string(PQcmdTuples(r.get())) == "1") continue;
    Params q;
    q.Bytes(w.key);
    CL_ASSIGN_OR_RETURN(Result now,
                        Exec(c, "SELECT v FROM cl_keys WHERE k = $1", &q, "read back key"));
    if (PQntuples(now.get()) == 1 && GetBytes(now.get(), 0, 0) == *w.value) continue;
    return absl::AbortedError(
        "key table: got a new value for a key another writer created first, want the "
        "stored one (first writer wins; read it back)");
  }
  return absl::OkStatus();
}

// Keeps `*conn` connected, reconnecting until `deadline`. A session that
// writes in transactions passes `idle_timeout`: PostgreSQL then ends a
// transaction of it left idle that long, with its locks, should this node
// lose PostgreSQL mid-transaction (a network partition, a pause). Otherwise
// the backend keeps them until TCP gives up on the connection, minutes to
// hours later, and every other node's write that needs them (a lease take, a
// key for the same subject) waits as long (CLUSTER.md "A commit cut off
// mid-transaction").
absl::Status EnsureConnectedTo(const std::string& conninfo, Conn* conn, bool* warned,
                               absl::Time deadline,
                               absl::Duration idle_timeout = absl::ZeroDuration()) {
  while (ConnectionLost(conn->get())) {
    absl::StatusOr<Conn> c = Connect(conninfo, warned);
    if (c.ok()) {
      *conn = *std::move(c);
      if (idle_timeout <= absl::ZeroDuration()) break;
      absl::Status s = ExecText(conn->get(),
                                absl::StrCat("SET idle_in_transaction_session_timeout = ",
                                             absl::ToInt64Milliseconds(idle_timeout))
                                    .c_str(),
                                "session");
      if (!s.ok()) conn->reset();  // never a session without it
      return s;
    }
    if (absl::Now() > deadline) return c.status();
    absl::SleepFor(absl::Milliseconds(200));
  }
  return absl::OkStatus();
}

// cl_keys on connections of its own: PgStore::keys(), and OpenPgKeyTable for a
// key store that outlives any one store (PartitionedNode).
class PgKeyTable : public PgKeyView {
 public:
  // `idle_timeout`: how long a key write's transaction may sit idle
  // (EnsureConnectedTo). read_only: every write is refused (a node without
  // the lease).
  PgKeyTable(std::string conninfo, absl::Duration reconnect_timeout, absl::Duration idle_timeout,
             bool read_only = false)
      : conninfo_(std::move(conninfo)),
        reconnect_timeout_(reconnect_timeout),
        idle_timeout_(idle_timeout),
        read_only_(read_only) {}

  absl::Status Open() {
    return WithReadConn([](PGconn* c) -> absl::StatusOr<bool> {
             CL_RETURN_IF_ERROR(ExecText(c, kSchema, "create tables"));
             return true;
           })
        .status();
  }

  absl::StatusOr<std::optional<std::string>> GetKey(absl::string_view key) const override {
    uint64_t deletions = 0;
    {
      absl::MutexLock lock(&mirror_mu_);
      if (mirrored_) {
        if (auto it = mirror_.find(key); it != mirror_.end()) {
          return std::optional<std::string>(it->second);
        }
      }
      deletions = deletions_;
    }
    CL_ASSIGN_OR_RETURN(std::optional<std::string> v,
                        WithReadConn([&](PGconn* c) { return ReadKey(c, key); }));
    // A row another process created (a racing first writer): kept too,
    // unless a deletion was applied meanwhile (it may have been this row's).
    absl::MutexLock lock(&mirror_mu_);
    if (mirrored_ && v.has_value() && deletions == deletions_) mirror_.emplace(key, *v);
    return v;
  }

  // Reads every row of cl_keys into memory; from then on GetKey answers from
  // that copy and reads PostgreSQL only for a key it lacks, and this table's
  // own writes (and a commit's key writes, Mirror) update it once committed. Only for
  // the single writer of cl_keys: the lease holder of an unpartitioned
  // ledger, where every other writer is fenced (CLUSTER.md "Data keys of
  // the owner"). A deletion by another process is not seen until the next
  // load.
  absl::Status LoadMirror() {
    CL_ASSIGN_OR_RETURN(Result rows, WithReadConn([](PGconn* c) {
                          return Exec(c, "SELECT k, v FROM cl_keys", nullptr, "read key table");
                        }));
    absl::flat_hash_map<std::string, std::string> all;
    all.reserve(PQntuples(rows.get()));
    for (int i = 0; i < PQntuples(rows.get()); ++i) {
      all.emplace(GetBytes(rows.get(), i, 0), GetBytes(rows.get(), i, 1));
    }
    absl::MutexLock lock(&mirror_mu_);
    mirror_ = std::move(all);
    mirrored_ = true;
    return absl::OkStatus();
  }
  // Applies writes PostgreSQL has committed to the in-memory copy.
  void Mirror(const std::vector<KeyWrite>& writes) const {
    absl::MutexLock lock(&mirror_mu_);
    if (!mirrored_) return;
    for (const KeyWrite& w : writes) {
      if (w.value.has_value()) {
        mirror_.insert_or_assign(w.key, *w.value);
      } else {
        mirror_.erase(w.key);
        ++deletions_;
      }
    }
  }
  size_t mirrored_keys() const {
    absl::MutexLock lock(&mirror_mu_);
    return mirror_.size();
  }

  absl::StatusOr<bool> AnyDestroyed() const override {
    CL_ASSIGN_OR_RETURN(Result rows, WithReadConn([](PGconn* c) {
                          return Exec(c, "SELECT k FROM cl_keys", nullptr, "read key table");
                        }));
    absl::flat_hash_set<std::string> now;
    now.reserve(PQntuples(rows.get()));
    for (int i = 0; i < PQntuples(rows.get()); ++i) now.insert(GetBytes(rows.get(), i, 0));
    absl::MutexLock lock(&mirror_mu_);
    for (const auto& [k, v] : mirror_) {
      if (!now.contains(k)) return true;
    }
    return false;
  }
  absl::Status ScanKeys(
      absl::string_view prefix,
      const std::function<bool(absl::string_view, absl::string_view)>& fn) const override {
    absl::StatusOr<Result> rows =
        WithReadConn([&](PGconn* c) { return ReadKeysWithPrefix(c, prefix); });
    if (!rows.ok()) return rows.status();
    return ScanKeyRows(*rows, fn);
  }
  absl::Status WriteKeys(const std::vector<KeyWrite>& writes, bool purge) override {
    CL_RETURN_IF_ERROR(CheckWritable());
    CL_RETURN_IF_ERROR(InWriteTransaction(
        [&](PGconn* c) { return ApplyKeyWrites(c, writes, /*first_writer_wins=*/true); }));
    Mirror(writes);
    return purge ? Purge() : absl::OkStatus();
  }
  absl::Status UpdateKeys(
      const std::function<absl::StatusOr<std::vector<KeyWrite>>()>& plan) override {
    // Other processes write cl_keys too: the table lock (readers pass) keeps
    // every other write out from plan's reads to the commit.
    CL_RETURN_IF_ERROR(CheckWritable());
    std::vector<KeyWrite> planned;
    CL_RETURN_IF_ERROR(InWriteTransaction([&](PGconn* c) -> absl::Status {
      // (plan() may take a while on a large table: no idle limit here)
      CL_RETURN_IF_ERROR(ExecText(c,
                                  "LOCK TABLE cl_keys IN EXCLUSIVE MODE; "
                                  "SET LOCAL idle_in_transaction_session_timeout = 0",
                                  "lock the key table"));
      CL_ASSIGN_OR_RETURN(planned, plan());
      return ApplyKeyWrites(c, planned, /*first_writer_wins=*/false);
    }));
    Mirror(planned);
    return absl::OkStatus();
  }
  absl::Status Purge() override {
    CL_RETURN_IF_ERROR(CheckWritable());
    return WithReadConn([&](PGconn* c) -> absl::StatusOr<bool> {
             CL_RETURN_IF_ERROR(PurgeKeys(c));
             return true;
           })
        .status();
  }

 private:
  absl::Status CheckWritable() const {
    if (!read_only_) return absl::OkStatus();
    return absl::FailedPreconditionError(
        "key table: this node does not hold the partition's lease; it writes no keys");
  }

  // Reads run on a pool of up to kReadConns connections: every seal of a
  // partitioned node reads here (KeyStoreOptions::shared_table), from every
  // appending thread.
  static constexpr size_t kReadConns = 8;
  template <typename Fn>
  auto WithReadConn(const Fn& fn) const -> decltype(fn(nullptr)) {
    Conn conn;
    {
      absl::MutexLock lock(&read_mu_);
      read_mu_.Await(absl::Condition(
          +[](const PgKeyTable* t) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t->read_mu_) {
            return !t->idle_.empty() || t->lent_ < kReadConns;
          },
          this));
      if (!idle_.empty()) {
        conn = std::move(idle_.back());
        idle_.pop_back();
      }
      ++lent_;
    }
    absl::Time deadline = absl::Now() + reconnect_timeout_;
    auto r = [&]() -> decltype(fn(nullptr)) {
      for (;;) {
        absl::Status s = EnsureConnectedTo(conninfo_, &conn, nullptr, deadline);
        if (!s.ok()) return s;
        auto out = fn(conn.get());
        if (out.ok() || !absl::IsUnavailable(out.status()) || absl::Now() > deadline) return out;
      }
    }();
    absl::MutexLock lock(&read_mu_);
    --lent_;
    if (!ConnectionLost(conn.get())) idle_.push_back(std::move(conn));
    return r;
  }
  // Puts and deletes are idempotent: repeated on a new connection after a
  // failover.
  absl::Status InWriteTransaction(const std::function<absl::Status(PGconn*)>& body) {
    absl::MutexLock lock(&write_mu_);
    absl::Time deadline = absl::Now() + reconnect_timeout_;
    for (;;) {
      absl::Status s =
          EnsureConnectedTo(conninfo_, &write_conn_, &write_warned_, deadline, idle_timeout_);
      if (s.ok()) {
        s = RunTransaction(write_conn_.get(), &write_warned_,
                           [&] { return body(write_conn_.get()); });
      }
      if (s.ok() || !absl::IsUnavailable(s) || absl::Now() > deadline) return s;
    }
  }

  const std::string conninfo_;
  const absl::Duration reconnect_timeout_;
  const absl::Duration idle_timeout_;
  const bool read_only_;
  mutable absl::Mutex read_mu_;
  mutable std::vector<Conn> idle_ ABSL_GUARDED_BY(read_mu_);
  mutable size_t lent_ ABSL_GUARDED_BY(read_mu_) = 0;  // connections in use
  mutable absl::Mutex mirror_mu_;
  bool mirrored_ ABSL_GUARDED_BY(mirror_mu_) = false;
  mutable uint64_t deletions_ ABSL_GUARDED_BY(mirror_mu_) = 0;  // applied by Mirror
  mutable absl::flat_hash_map<std::string, std::string> mirror_ ABSL_GUARDED_BY(mirror_mu_);
  absl::Mutex write_mu_;
  Conn write_conn_ ABSL_GUARDED_BY(write_mu_);
  bool write_warned_ = false;  // written by libpq's notice receiver under write_mu_
};

class PgStore : public LocalReads {
 public:
  explicit PgStore(PgStoreOptions options)
      : LocalReads(options.local.get()),
        options_(std::move(options)),
        owned_local_(std::move(options_.local)),
        keys_(options_.conninfo, options_.reconnect_timeout, options_.lease_ttl) {}

  ~PgStore() override {
    {
      absl::MutexLock lock(&renew_mu_);
      stopping_ = true;
    }
    if (renewer_.joinable()) renewer_.join();
  }

  absl::Status Open() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    // Each step is repeated on a new connection when the old one dies (a
    // failover while this node waits or catches up).
    auto retrying = [this](const std::function<absl::Status()>& step) -> absl::Status {
      for (;;) {
        absl::Time deadline = absl::Now() + options_.reconnect_timeout;
        CL_RETURN_IF_ERROR(EnsureConnected(&commit_conn_, &commit_warned_, deadline));
        absl::Status s = step();
        if (!absl::IsUnavailable(s) || !ConnectionLost(commit_conn_.get())) return s;
      }
    };
    CL_RETURN_IF_ERROR(
        retrying([&] { return ExecText(commit_conn_.get(), kSchema, "create tables"); }));
    CL_RETURN_IF_ERROR(retrying([&] { return TakeLease(); }));
    // Renewed from now on, not from the end of the catch-up below: a take
    // that waited for the synchronous standby, or a catch-up longer than the
    // lease, would otherwise let the lease lapse before this node serves,
    // and a node that starts meanwhile takes it (the renewal's first
    // UPDATE runs at once; RenewLoop).
    renewer_ = std::thread([this] { RenewLoop(); });
    // The lease holder of an unpartitioned ledger is the one writer of
    // cl_keys: its key reads are answered from memory (CLUSTER.md "Data
    // keys of the owner"). Loaded after the lease: every deletion the
    // previous owner committed is in it.
    if (options_.partitions == 1) {
      CL_RETURN_IF_ERROR(keys_.LoadMirror());
      Log(absl::StrCat("partition ", options_.partition, ": ", keys_.mirrored_keys(),
                       " key table rows in memory"));
    }
    CL_RETURN_IF_ERROR(retrying([&] {
      Log(absl::StrCat("partition ", options_.partition, ": at lease time the local store is at ",
                       local_->Size().value_or(0), ", the head at ", head_seq_));
      return CatchUp(head_seq_, head_hash_, /*max_records=*/0);
    }));
    return absl::OkStatus();
  }

  // --- RecordLog: writes go to PostgreSQL first, then to the local mirror.
  absl::Status Commit(const CommitBatch& batch) override {
    absl::MutexLock lock(&commit_mu_);
    if (!fenced_.ok()) return fenced_;
    const uint64_t old_seq = batch.records.empty() ? batch.new_size : batch.records.front().seq;
    if (old_seq != head_seq_) {
      return absl::InternalError(absl::StrCat("commit starts at seq ", old_seq, ", head is ",
                                              head_seq_));
    }
    std::string new_hash =
        batch.records.empty() ? head_hash_ : std::string(AsBytes(LeafHash(batch.records.back().leaf)));
    absl::Time deadline = absl::Now() + options_.reconnect_timeout;
    for (int attempt = 0;; ++attempt) {
      absl::Status s = EnsureConnected(&commit_conn_, &commit_warned_, deadline);
      if (s.ok()) s = TryCommit(batch, old_seq, new_hash);
      if (s.ok()) break;
      if (!absl::IsUnavailable(s) || absl::Now() > deadline) return Fence(s);
      // The connection died: the transaction may or may not have committed.
      // The head row says which (only this epoch moves it).
      absl::Status resolved = EnsureConnected(&commit_conn_, &commit_warned_, deadline);
      if (!resolved.ok()) return Fence(resolved);
      absl::StatusOr<PgPartitionHead> head = ReadHead(commit_conn_.get(), options_.partition);
      if (!head.ok()) {
        if (absl::IsUnavailable(head.status())) continue;
        return Fence(head.status());
      }
      if (head->epoch != epoch_) {
        return Fence(absl::FailedPreconditionError(EpochError(options_.partition, epoch_, *head)));
      }
      if (head->head_seq == batch.new_size && head->head_hash == new_hash) break;  // it did
      if (head->head_seq != old_seq) {
        return Fence(absl::DataLossError(absl::StrCat(
            "partition ", options_.partition, ": head moved to ", head->head_seq,
            " under our epoch; want ", old_seq, " or ", batch.new_size)));
      }
      // It did not commit: try again.
    }
    keys_.Mirror(batch.key_writes);
    CommitBatch local = batch;
    local.key_writes.clear();  // the key table lives in PostgreSQL
    CL_RETURN_IF_ERROR(local_->Commit(local));
    head_seq_ = batch.new_size;
    head_hash_ = new_hash;
    return absl::OkStatus();
  }

  int64_t epoch() const { return epoch_; }

  // Gives the lease up (ReleasePgLease): no renewal and no commit from here
  // on, then lease_until = now under our epoch only.
  absl::Status ReleaseLease() ABSL_LOCKS_EXCLUDED(commit_mu_, renew_mu_) {
    {
      absl::MutexLock lock(&renew_mu_);
      stopping_ = true;
    }
    if (renewer_.joinable()) renewer_.join();  // a renewal after ours would extend it
    absl::MutexLock lock(&commit_mu_);
    if (fenced_.ok()) {
      fenced_ = absl::FailedPreconditionError(absl::StrCat(
          "partition ", options_.partition, ": lease released (epoch ", epoch_, ")"));
    }
    // (after one lease length there is nothing left to release)
    absl::Status s = EnsureConnected(&commit_conn_, &commit_warned_,
                                     absl::Now() + options_.lease_ttl);
    if (!s.ok()) return s;
    Params p;
    p.Int4(options_.partition).Int8(epoch_);
    CL_ASSIGN_OR_RETURN(Result r, Exec(commit_conn_.get(),
                                       "UPDATE cl_partitions SET lease_until = clock_timestamp() "
                                       "WHERE part = $1 AND epoch = $2",
                                       &p, "release lease"));
    if (std::string(PQcmdTuples(r.get())) != "1") {
      return absl::FailedPreconditionError(absl::StrCat(
          "partition ", options_.partition, ": lease already taken over (epoch ", epoch_,
          " is no longer the partition's)"));
    }
    Log(absl::StrCat("partition ", options_.partition, ": lease released, epoch ", epoch_));
    return absl::OkStatus();
  }

  // --- KeyTable: cl_keys, shared by every node of the cluster. Its writes
  // run on connections of their own; a rotation's UpdateKeys locks the table
  // against the key deletions a Commit carries.
  KeyTable* keys() override { return &keys_; }

 private:
  absl::Status EnsureConnected(Conn* conn, bool* warned, absl::Time deadline) const {
    // A commit's transaction holds the partition row's lock from its head
    // CAS on: idle for one lease, PostgreSQL ends it, so that another node
    // can take the lease; our commit then resolves as after a lost connection.
    return EnsureConnectedTo(options_.conninfo, conn, warned, deadline, options_.lease_ttl);
  }

  absl::Status InTransaction(const std::function<absl::Status()>& body)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(commit_mu_) {
    return RunTransaction(commit_conn_.get(), &commit_warned_, body);
  }

  // One transaction: the head CAS first (a stale epoch changes nothing),
  // then the records, checkpoints and key writes.
  absl::Status TryCommit(const CommitBatch& batch, uint64_t old_seq, const std::string& new_hash)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(commit_mu_) {
    return InTransaction([&]() -> absl::Status {
      PGconn* c = commit_conn_.get();
      Params p;
      p.Int4(options_.partition)
          .Int8(epoch_)
          .Int8(static_cast<int64_t>(old_seq))
          .Int8(static_cast<int64_t>(batch.new_size))
          .Bytes(new_hash);
      CL_ASSIGN_OR_RETURN(Result r, Exec(c,
                                         "UPDATE cl_partitions SET head_seq = $4, head_hash = $5 "
                                         "WHERE part = $1 AND epoch = $2 AND head_seq = $3",
                                         &p, "move partition head"));
      if (std::string(PQcmdTuples(r.get())) != "1") {
        CL_ASSIGN_OR_RETURN(PgPartitionHead now, ReadHead(c, options_.partition));
        if (now.epoch != epoch_) {
          return absl::FailedPreconditionError(EpochError(options_.partition, epoch_, now));
        }
        return absl::DataLossError(absl::StrCat("partition ", options_.partition, ": head is ",
                                                now.head_seq, ", this owner expected ", old_seq));
      }
      for (size_t i = 0; i < batch.records.size(); i += kInsertChunk) {
        size_t n = std::min(kInsertChunk, batch.records.size() - i);
        std::string sql =
            "INSERT INTO cl_records (part, seq, leaf, payload, stream_id, version, event_id, epoch) "
            "VALUES ";
        Params rows;
        for (size_t j = 0; j < n; ++j) {
          const CommitBatch::StoredRecord& rec = batch.records[i + j];
          int b = static_cast<int>(j) * 8;
          absl::StrAppend(&sql, j == 0 ? "" : ",", "($", b + 1, ",$", b + 2, ",$", b + 3, ",$",
                          b + 4, ",$", b + 5, ",$", b + 6, ",$", b + 7, ",$", b + 8, ")");
          rows.Int4(options_.partition)
              .Int8(static_cast<int64_t>(rec.seq))
              .Bytes(rec.leaf)
              .Bytes(rec.payload)
              .Bytes(rec.stream_id)
              .Int8(static_cast<int64_t>(rec.version))
              .Bytes(rec.event_id)
              .Int8(epoch_);
        }
        CL_RETURN_IF_ERROR(Exec(c, sql, &rows, "insert records").status());
      }
      for (const auto& [size, note] : batch.checkpoints) {
        Params cp;
        cp.Int4(options_.partition).Int8(static_cast<int64_t>(size)).Bytes(note);
        CL_RETURN_IF_ERROR(Exec(c,
                                "INSERT INTO cl_checkpoints (part, size, note) VALUES ($1, $2, $3) "
                                "ON CONFLICT (part, size) DO UPDATE SET note = excluded.note",
                                &cp, "insert checkpoint")
                               .status());
      }
      return ApplyKeyWrites(c, batch.key_writes, /*first_writer_wins=*/false);
    });
  }

  // A refusal or an unresolvable failure: no more commits from this store.
  absl::Status Fence(absl::Status s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(commit_mu_) {
    if (absl::IsFailedPrecondition(s)) {
      fenced_ = s;
      if (options_.on_fenced) options_.on_fenced(s);
    }
    return s;
  }

  void Log(const std::string& line) const {
    if (options_.log) options_.log(line);
  }

  absl::Status TakeLease() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    PGconn* c = commit_conn_.get();
    // The first node creates every partition's row, each stating P; P never
    // changes afterwards (CLUSTER.md "Partition of a case").
    // Only into an empty table, under the schema's lock: two first nodes
    // with different P cannot both create rows.
    const std::string create = absl::StrCat(
        "SELECT pg_advisory_xact_lock(7223113460716306432); "
        "INSERT INTO cl_partitions (part, epoch, owner, lease_until, head_seq, head_hash, "
        "partitions) SELECT g, 0, '', '-infinity', 0, '', ", options_.partitions,
        " FROM generate_series(0, ", options_.partitions - 1,
        ") g WHERE NOT EXISTS (SELECT 1 FROM cl_partitions WHERE part >= 0)");
    CL_RETURN_IF_ERROR(ExecText(c, create.c_str(), "create partition rows"));
    CL_ASSIGN_OR_RETURN(
        Result pr, Exec(c,
                        "SELECT min(partitions)::int8, max(partitions)::int8, count(*)::int8 "
                        "FROM cl_partitions WHERE part >= 0",
                        nullptr, "read partition count"));
    const int64_t lo = GetInt8(pr.get(), 0, 0), hi = GetInt8(pr.get(), 0, 1),
                  rows = GetInt8(pr.get(), 0, 2);
    if (lo != options_.partitions || hi != options_.partitions || rows != options_.partitions) {
      return absl::FailedPreconditionError(absl::StrCat(
          "partitions (--pg_partitions): got ", options_.partitions,
          ", the ledger in PostgreSQL was created with ", hi == lo ? hi : rows,
          "; P is fixed when the ledger is created"));
    }
    bool logged = false;
    for (;;) {
      Params p;
      p.Int4(options_.partition)
          .Bytes(options_.node_id)
          .Int8(absl::ToInt64Milliseconds(options_.lease_ttl))
          .Bytes(options_.address);
      CL_ASSIGN_OR_RETURN(
          Result r,
          Exec(c,
               "UPDATE cl_partitions SET epoch = epoch + 1, owner = convert_from($2, 'UTF8'), "
               "owner_address = convert_from($4, 'UTF8'), "
               "lease_until = clock_timestamp() + $3 * interval '1 millisecond' "
               "WHERE part = $1 AND (lease_until < clock_timestamp() OR owner = convert_from($2, "
               "'UTF8')) RETURNING epoch, head_seq, head_hash",
               &p, "take lease"));
      if (PQntuples(r.get()) == 1) {
        epoch_ = GetInt8(r.get(), 0, 0);
        head_seq_ = static_cast<uint64_t>(GetInt8(r.get(), 0, 1));
        head_hash_ = GetBytes(r.get(), 0, 2);
        Log(absl::StrCat("partition ", options_.partition, ": lease taken, epoch ", epoch_,
                         ", head ", head_seq_));
        return absl::OkStatus();
      }
      CL_ASSIGN_OR_RETURN(PgPartitionHead h, ReadHead(c, options_.partition));
      std::string held = absl::StrCat("partition ", options_.partition, " is leased by \"",
                                      h.owner, "\" (epoch ", h.epoch, ")");
      if (!options_.wait_for_lease) return absl::FailedPreconditionError(held);
      if (!logged) Log(held + "; waiting for its lease to lapse");
      logged = true;
      const absl::Time next_try = absl::Now() + options_.lease_ttl / 4;
      if (options_.tail_interval <= absl::ZeroDuration()) {
        absl::SleepFor(options_.lease_ttl / 4);
        continue;
      }
      // Keeps warm meanwhile (CLUSTER.md "A waiting node keeps warm"):
      // reads only, so nothing is written to PostgreSQL without the lease.
      for (absl::Time now = absl::Now(); now < next_try; now = absl::Now()) {
        CL_RETURN_IF_ERROR(Tail(c));
        absl::SleepFor(std::min(options_.tail_interval, next_try - absl::Now()));
      }
    }
  }

  // One bounded step of a waiting node's catch-up: the records committed
  // since its last step, at most kTailRecords, into the local store, each
  // checked to chain on the one before as at lease time.
  absl::Status Tail(PGconn* c) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    CL_ASSIGN_OR_RETURN(PgPartitionHead h, ReadHead(c, options_.partition));
    CL_ASSIGN_OR_RETURN(uint64_t before, local_->Size());
    if (h.head_seq < before) {
      return absl::DataLossError(absl::StrCat("the local store holds ", before,
                                              " records, the log of record (partition ",
                                              options_.partition, ") ", h.head_seq));
    }
    CL_RETURN_IF_ERROR(CatchUp(h.head_seq, h.head_hash, kTailRecords));
    CL_ASSIGN_OR_RETURN(uint64_t after, local_->Size());
    tailed_ += after - before;
    // Logged when a step finds the head reached: the first time, then every
    // 10 s while records keep coming, and once more when they stop (a step
    // that copies nothing, a second or more after the last line).
    const absl::Time now = absl::Now();
    const bool first = last_tail_log_ == absl::InfinitePast();
    if (after != before) copied_since_log_ = true;
    const absl::Duration quiet = after == before ? absl::Seconds(1) : absl::Seconds(10);
    if (after == h.head_seq && (first || (copied_since_log_ && now - last_tail_log_ >= quiet))) {
      Log(absl::StrCat("partition ", options_.partition, ": waiting; local store kept warm at ",
                       after, " of ", h.head_seq, " (", tailed_, " records tailed)"));
      last_tail_log_ = now;
      copied_since_log_ = false;
    }
    if (options_.while_waiting) options_.while_waiting(*local_);
    return absl::OkStatus();
  }

  void RenewLoop() {
    auto stop = [this]() ABSL_SHARED_LOCKS_REQUIRED(renew_mu_) { return stopping_; };
    Conn conn;
    for (bool first = true;; first = false) {
      {
        absl::MutexLock lock(&renew_mu_);
        const absl::Duration wait = first ? absl::ZeroDuration() : options_.lease_ttl / 3;
        if (renew_mu_.AwaitWithTimeout(absl::Condition(&stop), wait)) return;
      }
      if (ConnectionLost(conn.get())) {
        absl::StatusOr<Conn> c = Connect(options_.conninfo, nullptr);
        if (!c.ok()) continue;
        // A renewal commits locally, without waiting for the synchronous
        // standby: while no standby answers, appends wait but the lease
        // holds, so a standby outage longer than the lease does not hand
        // the partition to another node. Safe because ownership is fenced
        // by the epoch, not by lease time: a renewal lost with the primary
        // only lets another node take over sooner, and then this node's
        // commits fail the (epoch, head) check (ledger/CLUSTER.md "What each failure costs").
        if (!Exec(c->get(), "SET synchronous_commit = local", nullptr, "lease connection").ok()) {
          continue;
        }
        conn = *std::move(c);
      }
      Params p;
      p.Int4(options_.partition).Int8(epoch_).Int8(absl::ToInt64Milliseconds(options_.lease_ttl));
      absl::StatusOr<Result> r =
          Exec(conn.get(),
               "UPDATE cl_partitions SET lease_until = clock_timestamp() + $3 * interval "
               "'1 millisecond' WHERE part = $1 AND epoch = $2",
               &p, "renew lease");
      if (!r.ok() || std::string(PQcmdTuples(r->get())) == "1") continue;
      absl::StatusOr<PgPartitionHead> h = ReadHead(conn.get(), options_.partition);
      if (!h.ok()) continue;
      absl::MutexLock lock(&commit_mu_);
      if (fenced_.ok()) {
        (void)Fence(absl::FailedPreconditionError(EpochError(options_.partition, epoch_, *h)));
      }
      return;
    }
  }

  // Brings the local store up to `head_seq` (whose last leaf hashes to
  // `head_hash`), or by at most `max_records` (0: no bound) towards it:
  // records, nodes, subject entries, checkpoints and subject map leaves,
  // computed from the records as the committer computed them
  // (ledger/CLUSTER.md "Catching up").
  absl::Status CatchUp(uint64_t head_seq, const std::string& head_hash, uint64_t max_records)
      ABSL_NO_THREAD_SAFETY_ANALYSIS {
    PGconn* c = commit_conn_.get();
    CL_ASSIGN_OR_RETURN(uint64_t local_size, local_->Size());
    if (local_size > head_seq) {
      return absl::DataLossError(absl::StrCat("the local store holds ", local_size,
                                              " records, the log of record (partition ",
                                              options_.partition, ") ", head_seq));
    }
    const bool bounded = max_records != 0 && head_seq - local_size > max_records;
    const uint64_t target = bounded ? local_size + max_records : head_seq;
    Hash last{};
    if (local_size > 0) {
      CL_ASSIGN_OR_RETURN(std::string leaf, local_->GetLeaf(local_size - 1));
      CL_ASSIGN_OR_RETURN(std::string theirs, FetchLeaf(c, local_size - 1));
      if (leaf != theirs) {
        return absl::DataLossError(absl::StrCat("record ", local_size - 1,
                                                ": the local store's leaf differs from the log "
                                                "of record's"));
      }
      last = LeafHash(leaf);
    }
    // Checkpoints the local store lacks (from its size on).
    Params cq;
    cq.Int4(options_.partition).Int8(static_cast<int64_t>(local_size));
    cq.Int8(static_cast<int64_t>(target));
    CL_ASSIGN_OR_RETURN(Result cps, Exec(c,
                                         "SELECT size, note FROM cl_checkpoints WHERE part = $1 "
                                         "AND size >= $2 AND size <= $3 ORDER BY size",
                                         &cq, "read checkpoints"));
    std::vector<std::pair<uint64_t, std::string>> checkpoints;
    for (int i = 0; i < PQntuples(cps.get()); ++i) {
      checkpoints.emplace_back(GetInt8(cps.get(), i, 0), GetBytes(cps.get(), i, 1));
    }
    CL_ASSIGN_OR_RETURN(std::optional<StoredCheckpoint> local_latest, local_->LatestCheckpoint());
    if (local_size == target &&
        (checkpoints.empty() ||
         (local_latest.has_value() && local_latest->size == checkpoints.back().first))) {
      return absl::OkStatus();
    }
    if (max_records == 0) {
      Log(absl::StrCat("partition ", options_.partition, ": catching up the local store from ",
                       local_size, " to ", head_seq));
    }
    // Subjects touched since the local store's last checkpoint are due in
    // the next map update.
    absl::flat_hash_map<Hash, SubjectState> states;
    absl::flat_hash_set<Hash> touched;
    auto subjects_of = [](absl::string_view leaf, std::vector<Hash>* keys) -> absl::Status {
      keys->clear();
      // Either record format: SubjectKey(id) in format 1, the tag in format 2.
      CL_ASSIGN_OR_RETURN(LeafView v, DecodeLeafView(leaf));
      return ForEachSubjectKey(v, [keys](const Hash& key) { keys->push_back(key); });
    };
    std::vector<Hash> keys;
    const uint64_t from = local_latest.has_value() ? local_latest->size : 0;
    uint64_t latest_cp = from;
    std::optional<Touched> cached = std::move(touched_);
    touched_.reset();
    if (cached.has_value() && cached->checkpoint == from && cached->size == local_size) {
      // The previous step's set (a waiting node's tailing): no rescan.
      touched = std::move(cached->keys);
    } else {
      absl::Status scanned;
      CL_RETURN_IF_ERROR(local_->ScanRecords(from, [&](const ScannedRecord& r) {
        if (r.key_seq >= local_size) return false;
        scanned = subjects_of(r.leaf, &keys);
        for (const Hash& k : keys) touched.insert(k);
        return scanned.ok();
      }));
      CL_RETURN_IF_ERROR(scanned);
    }
    CL_ASSIGN_OR_RETURN(MerkleTree tree, MerkleTree::Load(local_size, *local_));
    size_t next_cp = 0;
    CL_ASSIGN_OR_RETURN(StoredSubjectMap map, StoredSubjectMap::Open(local_));
    auto add_map_leaves = [&](CommitBatch* batch) -> absl::Status {
      for (const Hash& k : touched) {
        auto it = states.find(k);
        SubjectState s;
        if (it != states.end()) {
          s = it->second;
        } else {
          CL_ASSIGN_OR_RETURN(s, local_->GetSubjectHead(k));
        }
        CL_RETURN_IF_ERROR(map.Set(k, s));
      }
      // Appended: a batch with two checkpoints writes a node twice, the
      // later value last.
      for (auto& node : map.TakeWrites()) batch->subject_map_nodes.push_back(std::move(node));
      touched.clear();
      return absl::OkStatus();
    };
    uint64_t seq = local_size;
    do {
      CommitBatch batch;
      // A checkpoint at the very start (a checkpoint-only commit the local
      // store missed).
      while (next_cp < checkpoints.size() && checkpoints[next_cp].first == seq) {
        if (!local_latest.has_value() || local_latest->size != seq) {
          CL_RETURN_IF_ERROR(add_map_leaves(&batch));
          batch.checkpoints.push_back(checkpoints[next_cp]);
          latest_cp = checkpoints[next_cp].first;
        }
        ++next_cp;
      }
      Params q;
      q.Int4(options_.partition)
          .Int8(static_cast<int64_t>(seq))
          .Int8(static_cast<int64_t>(std::min<uint64_t>(target, seq + kCatchUpChunk)));
      CL_ASSIGN_OR_RETURN(Result rows, Exec(c,
                                            "SELECT seq, leaf, payload, stream_id, version, "
                                            "event_id FROM cl_records WHERE part = $1 AND seq >= "
                                            "$2 AND seq < $3 ORDER BY seq",
                                            &q, "read records"));
      for (int i = 0; i < PQntuples(rows.get()); ++i) {
        CommitBatch::StoredRecord rec;
        rec.seq = static_cast<uint64_t>(GetInt8(rows.get(), i, 0));
        if (rec.seq != seq) {
          return absl::DataLossError(absl::StrCat("log of record: partition ", options_.partition,
                                                  " has no record ", seq, " (next is ", rec.seq,
                                                  ")"));
        }
        rec.leaf = GetBytes(rows.get(), i, 1);
        rec.payload = GetBytes(rows.get(), i, 2);
        rec.stream_id = GetBytes(rows.get(), i, 3);
        rec.version = static_cast<uint64_t>(GetInt8(rows.get(), i, 4));
        rec.event_id = GetBytes(rows.get(), i, 5);
        CL_ASSIGN_OR_RETURN(LeafView v, DecodeLeafView(rec.leaf));
        if (v.seq != seq || v.prev_hash != last) {
          return absl::DataLossError(absl::StrCat("log of record: record ", seq,
                                                  " does not chain: prev_hash ",
                                                  ShortHex(v.prev_hash), ", want ", ShortHex(last)));
        }
        Hash leaf_hash = LeafHash(rec.leaf);
        tree.Append(leaf_hash, &batch.nodes);
        CL_RETURN_IF_ERROR(subjects_of(rec.leaf, &keys));
        for (const Hash& k : keys) {
          auto it = states.find(k);
          if (it == states.end()) {
            CL_ASSIGN_OR_RETURN(SubjectState s, local_->GetSubjectHead(k));
            it = states.emplace(k, s).first;
          }
          it->second = SubjectChainAppend(it->second, seq, leaf_hash);
          batch.subject_entries.push_back({k, it->second.count - 1, seq, it->second.head});
          touched.insert(k);
        }
        batch.records.push_back(std::move(rec));
        last = leaf_hash;
        ++seq;
        while (next_cp < checkpoints.size() && checkpoints[next_cp].first == seq) {
          CL_RETURN_IF_ERROR(add_map_leaves(&batch));
          batch.checkpoints.push_back(checkpoints[next_cp]);
          latest_cp = checkpoints[next_cp].first;
          ++next_cp;
        }
      }
      if (PQntuples(rows.get()) == 0 && seq < target) {
        return absl::DataLossError(absl::StrCat("log of record: partition ", options_.partition,
                                                " has no record ", seq, " below its head ",
                                                head_seq));
      }
      batch.new_size = seq;
      CL_RETURN_IF_ERROR(local_->Commit(batch));
    } while (seq < target);
    if (seq == head_seq && !head_hash.empty() && head_hash != std::string(AsBytes(last))) {
      return absl::DataLossError(absl::StrCat("partition ", options_.partition,
                                              ": head hash differs from record ", seq - 1, "'s"));
    }
    if (max_records == 0) {
      Log(absl::StrCat("partition ", options_.partition, ": local store at ", seq));
    }
    touched_ = Touched{latest_cp, seq, std::move(touched)};
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> FetchLeaf(PGconn* c, uint64_t seq) {
    Params p;
    p.Int4(options_.partition).Int8(static_cast<int64_t>(seq));
    CL_ASSIGN_OR_RETURN(Result r, Exec(c, "SELECT leaf FROM cl_records WHERE part = $1 AND seq = $2",
                                       &p, "read record"));
    if (PQntuples(r.get()) != 1) {
      return absl::DataLossError(absl::StrCat("log of record: no record ", seq));
    }
    return GetBytes(r.get(), 0, 0);
  }

  PgStoreOptions options_;  // `local` moved out to owned_local_
  std::unique_ptr<LogStore> owned_local_;  // local_
  PgKeyTable keys_;

  mutable absl::Mutex commit_mu_;
  Conn commit_conn_ ABSL_GUARDED_BY(commit_mu_);
  bool commit_warned_ = false;  // written by libpq's notice receiver under commit_mu_
  int64_t epoch_ = 0;           // set once by TakeLease, before other threads start
  uint64_t head_seq_ ABSL_GUARDED_BY(commit_mu_) = 0;
  std::string head_hash_ ABSL_GUARDED_BY(commit_mu_);
  absl::Status fenced_ ABSL_GUARDED_BY(commit_mu_);

  // A waiting node's tailing (TakeLease's thread only): the subjects touched
  // since the local store's latest checkpoint, as CatchUp left them.
  struct Touched {
    uint64_t checkpoint = 0;  // that checkpoint's size (0: none)
    uint64_t size = 0;        // the local store's size then
    absl::flat_hash_set<Hash> keys;
  };
  std::optional<Touched> touched_;
  uint64_t tailed_ = 0;
  bool copied_since_log_ = false;
  absl::Time last_tail_log_ = absl::InfinitePast();

  absl::Mutex renew_mu_;
  bool stopping_ ABSL_GUARDED_BY(renew_mu_) = false;
  std::thread renewer_;
};

// A node's local store read while another node owns the partition.
class ReadOnlyLocal : public LocalReads {
 public:
  ReadOnlyLocal(LogStore* local, KeyTable* keys) : LocalReads(local), keys_(keys) {}
  absl::Status Commit(const CommitBatch&) override {
    return absl::FailedPreconditionError(
        "this node does not hold the partition's lease: it commits nothing");
  }
  absl::Status PutSubjectMapNodes(const std::vector<std::pair<std::string, std::string>>&,
                                  bool) override {
    return absl::FailedPreconditionError("read-only view of the local store");
  }
  absl::Status PutCosignature(uint64_t, absl::string_view, absl::string_view) override {
    return absl::FailedPreconditionError("read-only view of the local store");
  }
  KeyTable* keys() override { return keys_; }

 private:
  KeyTable* const keys_;
};

}  // namespace

std::unique_ptr<LogStore> ReadOnlyLocalStore(LogStore* local, KeyTable* keys) {
  return std::make_unique<ReadOnlyLocal>(local, keys);
}

absl::StatusOr<std::unique_ptr<LogStore>> OpenPgStore(PgStoreOptions options) {
  if (options.local == nullptr) return absl::InvalidArgumentError("local: must not be null");
  if (options.conninfo.empty()) return absl::InvalidArgumentError("conninfo: must not be empty");
  if (options.node_id.empty()) return absl::InvalidArgumentError("node_id: must not be empty");
  CL_RETURN_IF_ERROR(ValidatePartitionCount(options.partitions, "partitions"));
  if (options.partition < 0 || options.partition >= options.partitions) {
    return absl::InvalidArgumentError(absl::StrCat("partition: got ", options.partition,
                                                   ", want 0 to ", options.partitions - 1));
  }
  if (options.lease_ttl < absl::Seconds(1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "lease_ttl: got ", absl::FormatDuration(options.lease_ttl), ", want at least 1s"));
  }
  auto store = std::make_unique<PgStore>(std::move(options));
  CL_RETURN_IF_ERROR(store->Open());
  return std::unique_ptr<LogStore>(std::move(store));
}

int64_t PgStoreEpoch(const LogStore& store) {
  const auto* pg = dynamic_cast<const PgStore*>(&store);
  return pg == nullptr ? 0 : pg->epoch();
}

absl::Status ReleasePgLease(LogStore& store) {
  auto* pg = dynamic_cast<PgStore*>(&store);
  if (pg == nullptr) return absl::InvalidArgumentError("store: not a PostgreSQL store");
  return pg->ReleaseLease();
}

absl::StatusOr<PgPartitionHead> ReadPgPartitionHead(const std::string& conninfo,
                                                    int32_t partition) {
  CL_ASSIGN_OR_RETURN(Conn c, Connect(conninfo, nullptr));
  return ReadHead(c.get(), partition);
}

absl::StatusOr<std::unique_ptr<PgKeyView>> OpenPgKeyView(const std::string& conninfo,
                                                         absl::Duration reconnect_timeout) {
  if (conninfo.empty()) return absl::InvalidArgumentError("conninfo: must not be empty");
  // (it writes nothing, so no transaction of its own sits idle)
  auto table = std::make_unique<PgKeyTable>(conninfo, reconnect_timeout,
                                            PgStoreOptions().lease_ttl, /*read_only=*/true);
  CL_RETURN_IF_ERROR(table->LoadMirror());
  return std::unique_ptr<PgKeyView>(std::move(table));
}

absl::StatusOr<std::unique_ptr<KeyTable>> OpenPgKeyTable(const std::string& conninfo,
                                                         absl::Duration reconnect_timeout) {
  if (conninfo.empty()) return absl::InvalidArgumentError("conninfo: must not be empty");
  // (the default lease length: this table outlives every partition's lease)
  auto table = std::make_unique<PgKeyTable>(conninfo, reconnect_timeout,
                                            PgStoreOptions().lease_ttl);
  CL_RETURN_IF_ERROR(table->Open());
  return std::unique_ptr<KeyTable>(std::move(table));
}

}  // namespace caseledger
