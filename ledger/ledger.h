// The ledger: sequencing, hashing and group commit over a LogStore.
//
//   auto ledger = Ledger::Open(options, std::move(store));
//   absl::StatusOr<AppendResult> r = (*ledger)->Append({event});
//
// Every append is acknowledged only after the group commit holding it is
// durable. Concurrent appenders are batched: one committer thread takes all
// waiting requests, sequences them, and writes them in one synced WriteBatch
// together with their Merkle nodes and, when due, a signed checkpoint.
#ifndef CASELEDGER_LEDGER_LEDGER_H_
#define CASELEDGER_LEDGER_LEDGER_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "ledger/blinder.h"
#include "ledger/checkpoint.h"
#include "ledger/clock.h"
#include "ledger/hash.h"
#include "ledger/log_store.h"
#include "ledger/merkle_tree.h"
#include "ledger/payload_cipher.h"
#include "ledger/record.h"
#include "ledger/subject_index.h"
#include "ledger/subject_map_store.h"
#include "ledger/subject_transition.h"

namespace caseledger {

struct AppendRequest {
  Event event;
  // When set, the version the new record must get (the stream's current
  // length). A mismatch is ABORTED. Ignored for a duplicate event id.
  std::optional<uint64_t> expected_version;
};

struct AppendResult {
  uint64_t seq = 0;
  uint64_t version = 0;
  Hash leaf_hash{};
  // True when the event id was appended before; the fields above are then the
  // original record's and nothing was appended.
  bool duplicate = false;
};

// A stored record with its leaf bytes and decoded form.
struct RecordView {
  std::string leaf;
  Record record;
  Hash leaf_hash{};
  std::string payload;  // EncodePayload bytes, as stored
  // Only for a payload with a key_id, read through a ledger with a cipher:
  // the decrypted openings, or `erased` when a key they need was destroyed.
  std::optional<std::string> openings;
  bool erased = false;
};

// One durable group commit, as the commit feed (Ledger::AddCommitListener)
// hands it to its consumers: what the committer had in hand, so that nobody
// reads, decodes, decrypts or checks again what was just written.
struct CommittedBatch {
  uint64_t first_seq = 0;
  uint64_t new_size = 0;  // first_seq + records.size(): the tree size after it
  int64_t commit_time_micros = 0;
  // In seq order: records[i].record.seq == first_seq + i. leaf, record,
  // leaf_hash and payload are exactly what was stored. For a payload the
  // cipher sealed, `openings` holds the plaintext openings it was sealed
  // from (not decrypted again); it may be stale once keys are destroyed:
  // see Ledger::OpeningsCurrent. `erased` is false.
  std::vector<RecordView> records;
  // PayloadCipher::erasures() read before the first of these payloads was
  // sealed.
  uint64_t erasures = 0;
};

// What the ledger committed about one subject at its latest checkpoint
// (SUBJECT_INDEX.md): enough to show a client that their history is complete.
struct SubjectHistory {
  StoredCheckpoint checkpoint;  // the latest signed checkpoint
  // The map key: the subject's tag under `blinding_salt` in format 2 when it
  // has a salt, SubjectKey(id) otherwise.
  Hash subject_key{};
  std::optional<Hash> blinding_salt;
  SubjectState state;       // (count, head) in that checkpoint's map
  SubjectMapProof proof;    // of `state` against the checkpoint's subjects root
  std::vector<uint64_t> seqs;  // the subject's `state.count` records, in order
};

// The latest checkpoint and the proof that its subjects root follows from an
// earlier size (SUBJECT_INDEX.md "Transitions").
struct PublishedTransition {
  StoredCheckpoint checkpoint;  // the latest signed checkpoint (size m)
  SubjectTransition transition;
};

// What one group commit cost, for monitoring (LedgerOptions::on_group_commit).
// Durations are wall time, not the injected clock's.
struct GroupCommitStats {
  size_t records = 0;          // records stored by this commit
  bool checkpoint = false;     // a checkpoint was signed into it
  absl::Duration total;        // from taking the group to the write's return
  absl::Duration write;        // the synced store write (WAL append + fsync)
};

struct LedgerOptions {
  // The checkpoint origin line, e.g. "caseledger.example/log".
  std::string origin = "caseledger/log";
  // Borrowed; must outlive the Ledger. Null means Clock::Real(). Stamps
  // commit times and times the checkpoint interval: the committer waits
  // through Clock::AwaitUntil, so a FakeClock's Advance drives it.
  const Clock* clock = nullptr;
  // Borrowed; must outlive the Ledger. Signs checkpoints.
  const NoteSigner* signer = nullptr;
  // A checkpoint is signed when this many records arrived since the last one,
  // or when `checkpoint_interval` passed with at least one new record.
  uint64_t checkpoint_every_records = 100000;
  absl::Duration checkpoint_interval = absl::Seconds(5);
  // At most this many events per group commit.
  size_t max_group_events = 8192;
  // At most this many events in one AppendBatch call.
  size_t max_batch_events = 10000;
  // Optional: salts for payload commitments (tests pin them).
  SaltSource salt_source;
  // Optional, borrowed; must outlive the Ledger. Encrypts payload openings
  // before they are queued and decrypts them in Read (ledger/ENCRYPTION.md).
  // Null: openings are stored as plaintext.
  PayloadCipher* cipher = nullptr;
  // Optional: called on the committer thread after each successful group
  // commit that wrote something; must be quick and must not call the Ledger.
  std::function<void(const GroupCommitStats&)> on_group_commit;

  // Optional, borrowed; must outlive the Ledger. When set, records are
  // written in format 2 (FORMAT.md "Record, format 2"): stream, event,
  // producer and subject ids blinded under salts it keeps, opened again by
  // Read. Null: format 1, ids in clear. A data directory holds one format:
  // Open refuses (FAILED_PRECONDITION) a non-empty one of the other format.
  Blinder* blinder = nullptr;

  // Memory for the subject map's cache of nodes read from the store
  // (SUBJECT_INDEX.md "Storage"); the map itself lives in the store.
  size_t subject_map_cache_bytes = kDefaultSubjectMapCacheBytes;
};

// Thread-safe: every method may be called from any thread.
class Ledger {
 public:
  // Takes ownership of `store`. Reads the tree state (O(log n) reads; no
  // replay) and checks it against the latest checkpoint: DATA_LOSS if they
  // disagree. INVALID_ARGUMENT when options are unusable.
  //
  // What the ledger needs of `store` (ledger/STORE.md), by interface:
  //  RecordLog: Commit of each group, Size, leaves and payloads (Read), the
  //    event-id and stream indexes (idempotency, expected_version), the
  //    checkpoints (Recover, Checkpoint, History);
  //  NodeStore: the Merkle nodes (Recover, RootAt, proofs);
  //  SubjectIndexStore: subject heads and entries, and the map at the latest
  //    checkpoint (Recover, History, SubjectTransitionTo);
  //  CosignatureStore: PutCosignature only.
  // The key table (LogStore::keys) is not read here: the cipher
  // (LedgerOptions::cipher) owns it, and key writes ride in CommitBatch.
  // Time and the committer's timed waits come from LedgerOptions::clock.
  static absl::StatusOr<std::unique_ptr<Ledger>> Open(LedgerOptions options,
                                                      std::unique_ptr<LogStore> store);
  // Finishes queued appends, then stops the committer.
  ~Ledger();
  Ledger(const Ledger&) = delete;
  Ledger& operator=(const Ledger&) = delete;

  // Appends one event and returns once it is durable. INVALID_ARGUMENT naming
  // the field for a bad event; ABORTED for an expected_version mismatch;
  // ALREADY_EXISTS for an event id reused in another stream; UNAVAILABLE after
  // Close or a failed write.
  absl::StatusOr<AppendResult> Append(AppendRequest request);
  // All or nothing: either every event is stored (or was a duplicate), or none
  // is and the first failure is returned with its index in the message.
  absl::StatusOr<std::vector<AppendResult>> AppendBatch(std::vector<AppendRequest> requests);

  // The asynchronous form of AppendBatch: validates on the calling thread,
  // queues, and returns at once. `done` runs exactly once, on the committer
  // thread (or on this thread for a request refused before queueing), after
  // the outcome is durable; it must not block for long.
  using AppendCallback = std::function<void(absl::StatusOr<std::vector<AppendResult>>)>;
  void AppendBatchAsync(std::vector<AppendRequest> requests, AppendCallback done);

  // Signs and stores a checkpoint of the current tree if none covers it yet;
  // returns the newest checkpoint. FAILED_PRECONDITION for an empty tree.
  absl::StatusOr<StoredCheckpoint> Checkpoint();

  // Committed state.
  uint64_t Size() const;
  Hash Root() const;
  absl::StatusOr<Hash> RootAt(uint64_t size) const;
  absl::StatusOr<RecordView> Read(uint64_t seq) const;
  // Read of each of `seqs` (increasing), in one batched store read.
  absl::StatusOr<std::vector<RecordView>> ReadMany(absl::Span<const uint64_t> seqs) const;
  // For a view read from the store directly (e.g. by a scan): fills
  // `openings` or `erased` as Read does. A no-op without a cipher or for a
  // plaintext payload; the cipher's error (naming the seq) otherwise.
  absl::Status OpenPayload(RecordView* view) const;
  // True when no key was destroyed outside a commit (PayloadCipher::erasures)
  // since the batch's payloads were sealed, so the plaintext openings it
  // carries are still readable. When false, a consumer re-opens each sealed
  // record with Reopen before using it (the rare path, after an erasure).
  bool OpeningsCurrent(const CommittedBatch& batch) const;
  // For a record from a batch whose openings are not current: opens its
  // sealed payload from the stored bytes, as Read does.
  absl::Status Reopen(RecordView* view) const;
  absl::StatusOr<std::vector<Hash>> InclusionProof(uint64_t seq, uint64_t tree_size) const;
  // InclusionProof for each of `seqs`, reading each shared node once.
  absl::StatusOr<std::vector<std::vector<Hash>>> InclusionProofs(absl::Span<const uint64_t> seqs,
                                                                 uint64_t tree_size) const;
  absl::StatusOr<std::vector<Hash>> ConsistencyProof(uint64_t from_size, uint64_t to_size) const;

  // The subject's index at the latest checkpoint: the records naming it below
  // the checkpoint's size and the map proof for it. FAILED_PRECONDITION when
  // no checkpoint has been signed yet; INVALID_ARGUMENT for an id that is
  // empty or over kMaxIdBytes; DATA_LOSS if the stored index disagrees with
  // the map.
  absl::StatusOr<SubjectHistory> History(absl::string_view subject_id) const;

  // The map key of a subject: SubjectKey(id) in format 1, its tag in format
  // 2 (NOT_FOUND when it has no salt: it never appeared, or was erased).
  absl::StatusOr<Hash> SubjectMapKey(absl::string_view subject_id) const;
  // The blinding salt of a subject or stream, for a bundle whose reader may
  // link its tags (format 2 only; NOT_FOUND without one).
  absl::StatusOr<Hash> BlindingSalt(BlindKind kind, absl::string_view id) const;
  // DecodeRecord of a stored leaf, then (format 2) its ids opened through
  // the blinder, as Read does: for a consumer scanning the store directly.
  absl::StatusOr<Record> DecodeStored(absl::string_view leaf) const;
  // The record format this ledger writes.
  uint8_t record_format() const {
    return options_.blinder != nullptr ? kRecordFormatBlinded : kRecordFormatVersion;
  }

  // The subjects transition from `from_size` to the latest checkpoint, with
  // that checkpoint: its compact range at from_size, records [from_size, m),
  // the map at from_size pruned to the subjects they name, and the current
  // states of those subjects as claims. from_size 0 is the empty tree and
  // map. Reads O(m - from_size) records and one subject index entry per
  // subject named; holds map_mu_ only while walking the map.
  //  FAILED_PRECONDITION: no checkpoint has been signed yet.
  //  INVALID_ARGUMENT: from_size beyond the latest checkpoint's size.
  //  DATA_LOSS: the stored records or subject index disagree with the map.
  //  UNAVAILABLE: new checkpoints kept arriving while it was built.
  absl::StatusOr<PublishedTransition> SubjectTransitionTo(uint64_t from_size) const;

  // The committed-record feed. `listener` is called on the committer thread
  // after each durable commit that stored records, in commit order, BEFORE
  // any append in it is acknowledged (so a caller that saw its append
  // succeed knows every listener saw it). It must not block (take a short
  // lock, queue the shared batch, return) and must not call Append. A
  // consumer that cannot keep up drops batches and catches up from the store
  // (store().ScanRecords from its position): a gap shows as a batch whose
  // first_seq is past the consumer's position. A listener hears every commit
  // that starts after AddCommitListener returns; commits before it are in
  // the store (Size()). Returns a handle for RemoveCommitListener.
  //
  // shared_ptr: one batch is shared by every consumer's queue, each of which
  // keeps it for as long as it needs.
  using CommitListener = std::function<void(const std::shared_ptr<const CommittedBatch>&)>;
  uint64_t AddCommitListener(CommitListener listener);
  // After this returns the listener is not running and will not be called
  // again; call it before whatever the listener refers to goes away.
  void RemoveCommitListener(uint64_t handle);

  // Stops accepting appends (UNAVAILABLE), finishes the queued ones, joins
  // the committer. Idempotent.
  void Close();

  // Stores a witness's cosignature line for the checkpoint at `size`
  // (LogStore::PutCosignature); the caller has verified it. Not part of any
  // group commit: cosignatures arrive after the checkpoint is durable.
  absl::Status PutCosignature(uint64_t size, absl::string_view witness, absl::string_view line) {
    return store_->PutCosignature(size, witness, line);
  }

  const LogStore& store() const { return *store_; }
  // The clock that stamps commit times (LedgerOptions::clock).
  const Clock& clock() const { return clock_; }
  const LedgerOptions& options() const { return options_; }

 private:
  struct Pending;
  struct Group;

  Ledger(LedgerOptions options, std::unique_ptr<LogStore> store);
  absl::Status Recover();
  // Validates and commits to the payloads; fills `pending`.
  absl::Status Prepare(std::vector<AppendRequest> requests, Pending* pending) const;
  // Queues `pending`; it is completed (done, callback) by the committer.
  absl::Status Enqueue(Pending* pending);
  // Queues `pending` and waits for it.
  absl::Status Submit(Pending* pending);
  void CommitterLoop();
  // Sequences `pending` into `group` or fails it; never both.
  absl::Status Sequence(Pending& pending, Group& group);
  absl::StatusOr<AppendResult> ResultOf(uint64_t seq) const;
  absl::StatusOr<uint64_t> StreamLength(absl::string_view stream_id, const Group& group);
  bool CheckpointDue(uint64_t size, absl::Time now) const;
  absl::StatusOr<std::string> SignCheckpoint(uint64_t size, const Hash& root,
                                             const Hash& subjects_root) const;
  // Loads the subject map, checks its root against `latest`, and collects
  // the subjects of records after it, up to `size` (Recover's helper).
  absl::Status RecoverSubjects(const std::optional<StoredCheckpoint>& latest, uint64_t size);
  // Adds the subject-index steps of the record `seq` (just sequenced into
  // `group`) for each of its subjects' keys.
  void IndexSubjects(const std::vector<Hash>& keys, uint64_t seq, const Hash& leaf_hash,
                     Group& group);
  // Sets the map leaves of every subject touched since the last checkpoint
  // and lists them in group.batch. Caller holds map_mu_.
  absl::Status UpdateSubjectMap(Group& group) ABSL_EXCLUSIVE_LOCKS_REQUIRED(map_mu_);
  // Makes sure every subject in `keys` has its state in subject_cache_.
  absl::Status LoadSubjects(const std::vector<Hash>& keys);

  const LedgerOptions options_;
  const Clock& clock_;
  std::unique_ptr<LogStore> store_;

  mutable absl::Mutex mu_;
  std::deque<Pending*> queue_ ABSL_GUARDED_BY(mu_);
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status failed_ ABSL_GUARDED_BY(mu_);  // sticky after a failed write
  // Committed state, published by the committer.
  MerkleTree tree_ ABSL_GUARDED_BY(mu_);
  // Held while listeners run, so that removal waits for a running call.
  absl::Mutex listeners_mu_ ABSL_ACQUIRED_AFTER(mu_);
  std::map<uint64_t, CommitListener> listeners_ ABSL_GUARDED_BY(listeners_mu_);
  uint64_t next_listener_ ABSL_GUARDED_BY(listeners_mu_) = 0;

  // Owned by the committer thread.
  Hash last_leaf_hash_{};
  uint64_t last_checkpoint_size_ = 0;
  absl::Time last_checkpoint_time_;
  // Stream lengths seen so far; a cache over the store, cleared when large.
  absl::flat_hash_map<std::string, uint64_t> stream_lengths_;
  // Subjects' committed states (a cache over the store, cleared when large)
  // and the subjects touched since the last checkpoint.
  absl::flat_hash_map<Hash, SubjectState> subject_cache_;
  absl::flat_hash_set<Hash> pending_subjects_;

  // The subject map as of `published_`, the latest durable checkpoint. The
  // committer holds map_mu_ from updating the map for a new checkpoint until
  // that checkpoint is durable, so readers always see a matching pair.
  mutable absl::Mutex map_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  // Its nodes are in the store, read through a bounded cache.
  mutable StoredSubjectMap map_ ABSL_GUARDED_BY(map_mu_);
  std::optional<StoredCheckpoint> published_ ABSL_GUARDED_BY(map_mu_);

  std::thread committer_;
};

}  // namespace caseledger

#endif  // CASELEDGER_LEDGER_LEDGER_H_
