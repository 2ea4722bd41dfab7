// Read models derived from the log. A Projector follows the ledger in seq
// order and feeds each record to its Projections; every chunk of state
// changes is written to the projection store together with the log position
// it reflects, in one RocksDB write. A crash between the log and a
// projection therefore only leaves the projection behind (it catches up on
// restart), never inconsistent, and Rebuild() replays the log from zero.
//
// Where records come from. The projector consumes the ledger's commit feed
// (Ledger::AddCommitListener): the committer thread queues each committed
// batch (records decoded, sealed payloads' plaintext openings in hand) and
// returns; the projector's thread applies them, so nothing it applies is
// read, decrypted or checked again. It reads the store (ScanRecords) only
// for what the queue does not hold: records committed before it opened
// (catching up after a restart), and batches dropped because the queue was
// full (ProjectorOptions::max_queued_records: a slow projector falls behind
// and catches up from the store, it never blocks the committer).
//
// Erasure (ledger/ENCRYPTION.md). Read models hold plaintext derived from
// payloads, so when keys are destroyed the values projected from the
// records they opened must go too. Reproject() rebuilds from the ledger (in
// which those records no longer open, and so project with their fields
// withheld) and then rewrites the store's files so that no old value stays
// in a WAL or SST. Only what the erasure touches is re-derived when every
// projection can forget a set of streams (Projection::Forget): the disposed
// case (the projector does this by itself after applying a shredding event,
// ProjectorOptions::shred_event_type), or the cases of an erased subject's
// records (ReprojectSubject, which KeyAdminService calls after EraseSubject).
// A marker file, <path>.reproject, is synced before the keys are destroyed
// and removed after the purge, so a crash in between is finished by the
// next Open (which rebuilds everything: the marker does not say what).
#ifndef CASELEDGER_SERVICES_API_PROJECTOR_H_
#define CASELEDGER_SERVICES_API_PROJECTOR_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <deque>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "ledger/crypto.h"
#include "ledger/ledger.h"
#include "absl/strings/str_cat.h"
#include "proto/ledger.pb.h"
#include "services/append/event_codec.h"

namespace rocksdb {
class DB;
}

namespace caseledger {

// Keys and values a projection reads and writes while applying one chunk.
// Reads see the chunk's own earlier writes. Not thread-safe.
class ProjectionTxn {
 public:
  virtual ~ProjectionTxn() = default;
  // NOT_FOUND when absent.
  virtual absl::StatusOr<std::string> Get(const std::string& key) = 0;
  virtual void Put(const std::string& key, std::string value) = 0;
  virtual void Delete(const std::string& key) = 0;
  // Calls fn(key, value) for the keys starting with `prefix` as the store
  // holds them before this transaction (its own writes are not seen), in
  // key order, until fn returns false.
  virtual absl::Status ScanStored(
      const std::string& prefix,
      const std::function<bool(absl::string_view key, absl::string_view value)>& fn) = 0;
};

class Projection {
 public:
  virtual ~Projection() = default;
  // A short stable name; it prefixes every key this projection writes.
  virtual std::string name() const = 0;
  // Applies one record (full view). Must be deterministic: the same records
  // in the same order give the same writes. An error stops the projector.
  virtual absl::Status Apply(const v1::Record& record, ProjectionTxn& txn) = 0;
  // Called at the end of each chunk, before its writes are stored: a
  // projection that keeps decoded state between Apply calls writes it here
  // and forgets it.
  virtual absl::Status Flush(ProjectionTxn& txn) { return absl::OkStatus(); }
  // Called when the store is cleared (a rebuild): a projection that keeps
  // values in memory between chunks drops them.
  virtual void Clear() {}
  // Asked after each record applied while catching up from the store: true
  // ends the chunk there (its writes are stored, the next chunk goes on).
  // A projection that keeps each touched value in memory until Flush says
  // so when it holds as many as it should, so that a long catch-up writes
  // each value once per chunk in as few chunks as memory allows.
  virtual bool ChunkFull() const { return false; }
  // Names the layout of this projection's keys and values; a store written
  // under another layout of any projection is rebuilt at Open (as for a
  // sealing change). Change it whenever the stored form changes.
  virtual std::string layout() const { return ""; }

  // Targeted re-derivation after an erasure. A projection that returns
  // true here derives each value from the records of case streams only
  // (never from the server's own "@..." streams), and Forget(streams) drops
  // everything it derived from those streams' records; the projector then
  // re-applies exactly those records, in seq order, through Apply and Flush,
  // and the result must equal a rebuild from seq 0. With any projection that
  // returns false, an erasure rebuilds everything.
  virtual bool CanForget() const { return false; }
  virtual absl::Status Forget(const std::set<std::string>& streams, ProjectionTxn& txn) {
    return absl::UnimplementedError(absl::StrCat("projection ", name(), " cannot forget"));
  }
};

struct ProjectorOptions {
  std::string path;               // its own RocksDB directory
  // Records per write. Each case or client a chunk touches is decoded and
  // encoded once per chunk, so larger chunks cost less on busy cases.
  size_t chunk_records = 16384;
  // Records of this event type destroy keys when they commit (KeyStoreOptions
  // shred_event_type): applying one makes the projector Reproject() once it
  // has caught up. Empty: none.
  std::string shred_event_type;
  // When set, every value is stored sealed with AES-256-GCM under this key
  // (a fresh random nonce per write; the full store key is the associated
  // data), so the read models, which hold plaintext derived from payloads,
  // are encrypted at rest as the payloads are. The server derives it from the
  // master key (ProjectionsKey, ledger/key_store.h). A store written in
  // another form (plaintext, or under another key) is rebuilt and purged at
  // Open. Keys (case and client ids) stay plaintext, as in the ledger.
  std::optional<AeadKey> value_key;
  // Called after each reprojection (on the thread that did it), e.g. to
  // make other in-memory views of the cases drop what erased records said.
  std::function<void()> after_reproject;
  // Records of the commit feed held for the projector's thread at most;
  // batches beyond are dropped and read from the store later instead.
  size_t max_queued_records = 65536;
  // (New fields go last: callers initialize the ones above by position.)
  // Records per chunk at most when catching up from the store (a rebuild,
  // a restart behind the ledger): larger, so that a busy case's rows are
  // written once per chunk rather than once per chunk_records; a chunk ends
  // earlier when a projection is full (Projection::ChunkFull).
  size_t catch_up_chunk_records = 262144;
  // A chunk of at least this many row writes is stored as a table file
  // ingested into the store rather than through the memtable (same result,
  // far less CPU for a rebuild).
  size_t ingest_rows = 8192;
};

// Thread-safe.
class Projector {
 public:
  // Opens (or creates) the projection store. `ledger` is borrowed and must
  // outlive the projector; projections are owned.
  static absl::StatusOr<std::unique_ptr<Projector>> Open(
      ProjectorOptions options, Ledger* ledger, std::vector<std::unique_ptr<Projection>> projections);
  ~Projector();

  // Starts following the ledger on a background thread.
  void Start();
  // Stops the thread after the current chunk.
  void Stop();

  // Applies everything the ledger holds now, on the calling thread (for
  // tools and tests; don't mix with Start).
  absl::Status CatchUp();
  // Deletes all projected state and position, then CatchUp().
  absl::Status Rebuild();

  // Erasure, in two steps around the key destruction:
  //   MarkStale() before it: syncs the marker, so that a crash after the
  //     keys are gone still leads to a reprojection at the next Open;
  //   Reproject() after it: MarkStale, clear and replay, rewrite the store's files
  //     (flush, then compact every level), remove the marker.
  // Reads during a reprojection see the rebuilt state as of position(),
  // which restarts from 0; reads that name a min_seq wait for it.
  // MarkStale() names everything: the next Open rebuilds the read models.
  // MarkStaleSubject names one subject (its map key, SubjectKeyOf; nullopt
  // when it has no records): a crash leaves a marker from which the next Open
  // re-derives only that subject's cases, as ReprojectSubjectKey does
  // (PROJECTIONS.md "Crash marker"). Marks add up until a reprojection
  // removes the marker.
  absl::Status MarkStale();
  absl::Status MarkStaleSubject(const std::optional<Hash>& subject_key);
  absl::Status Reproject();
  // Reproject after the erasure of one subject: re-derives only the cases
  // of the subject's records (and the clients whose accounting they feed)
  // when every projection CanForget; otherwise Reproject().
  absl::Status ReprojectSubject(const std::string& subject_id);
  // The subject's map key (Ledger::SubjectMapKey). In record format 2 it
  // derives from the subject's salt, which the erasure destroys: take it
  // before, and reproject with ReprojectSubjectKey after. nullopt when the
  // subject has no salt (no records).
  std::optional<Hash> SubjectKeyOf(const std::string& subject_id) const;
  absl::Status ReprojectSubjectKey(const std::optional<Hash>& subject_key);
  // Reprojections done since Open (for tests and metrics), and how many of
  // them cleared the store and replayed the whole ledger.
  uint64_t reprojections() const;
  uint64_t full_reprojections() const;
  // Syncs the marker of the projection store at `path`, for tools that
  // destroy keys while the server is stopped (caseledger_keys erase-subject).
  static absl::Status WriteStaleMarker(const std::string& path);

  // The next seq to apply (records below it are reflected).
  uint64_t position() const;
  // Waits until position() >= seq or `timeout` passes; DEADLINE_EXCEEDED then.
  absl::Status WaitFor(uint64_t seq, absl::Duration timeout) const;
  // The first error that stopped the projector, or OK.
  absl::Status health() const;

  // A stored value read together with the committed records it does not
  // reflect yet, without reading the log: calls `read_stored` (which reads
  // the projection's values; they reflect every record below position() at
  // the call, and maybe more), then `unapplied` for each record of
  // `stream_id` at or past that position (the projector's queue of the
  // commit feed), in seq order, as Projection::Apply would see it. Every
  // record committed before the call is covered. When the queue does not
  // cover up to the ledger's size (the projector is catching up from the
  // store, or a reprojection is under way), it first waits up to `timeout`
  // for the projector to apply what it lacks (DEADLINE_EXCEEDED then), and
  // it starts over if a reprojection cleared the store meanwhile. A record
  // that `read_stored` already saw may be passed too: compare seqs.
  absl::Status ReadWithUnapplied(
      const std::string& stream_id, absl::Duration timeout,
      const std::function<absl::Status()>& read_stored,
      const std::function<absl::Status(const v1::Record&)>& unapplied) const;

  // Reads a projected value (what the last written chunk left). NOT_FOUND
  // when absent.
  absl::StatusOr<std::string> Get(const Projection& projection, const std::string& key) const;
  // Calls fn(key without prefix, value) for keys of `projection` starting
  // with `prefix` and not below `from`, in key order, until it returns false.
  absl::Status Scan(const Projection& projection, const std::string& prefix,
                    const std::function<bool(absl::string_view, absl::string_view)>& fn,
                    const std::string& from = "") const;

 private:
  Projector(ProjectorOptions options, Ledger* ledger,
            std::vector<std::unique_ptr<Projection>> projections, std::unique_ptr<rocksdb::DB> db,
            uint64_t position);
  // Applies records [position, limit) in chunks. Sets *shredded when one of
  // them was a shredding event at or past clean_through_ (having synced the
  // marker before storing its chunk).
  absl::Status ApplyUpTo(uint64_t limit, std::set<std::string>* shredded);
  // Applies [from, to) from the store (catching up).
  absl::Status ApplyFromStore(uint64_t from, uint64_t to, std::set<std::string>* shredded)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(apply_mu_);
  // A projection asks to end the chunk here (Projection::ChunkFull).
  bool ChunkFull() const;
  // Applies records [from, to) from the queued batches, which cover it.
  absl::Status ApplyFromFeed(uint64_t from, uint64_t to,
                             const std::vector<std::shared_ptr<const CommittedBatch>>& batches,
                             std::set<std::string>* shredded)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(apply_mu_);
  // One chunk: `produce` calls `apply` for each record of [from, to) in
  // order (or of [from, n) when it stops early because ChunkFull()); then
  // flushes, writes the chunk and the new position.
  using ApplyFn = std::function<absl::Status(const RecordView& view, Origin origin)>;
  absl::Status ApplyChunk(uint64_t from, uint64_t to,
                          const std::function<absl::Status(const ApplyFn&)>& produce,
                          std::set<std::string>* shredded)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(apply_mu_);
  // Stores a chunk's writes (a value, or nullopt for a deletion) and the
  // position `to` in one atomic write: a write batch, or for
  // options_.ingest_rows rows or more a table file ingested into the store.
  using Writes = std::map<std::string, std::optional<std::string>>;
  absl::Status WriteChunk(Writes writes, uint64_t to) ABSL_EXCLUSIVE_LOCKS_REQUIRED(apply_mu_);
  // Re-derives the given case streams (erased or disposed) up to position();
  // purges and removes the marker as Reproject does.
  absl::Status ReprojectStreams(const std::set<std::string>& streams);
  // The re-derivation itself (no marker, no purge).
  // Key ranges [first, last] of the store (whole cases and clients).
  using KeyRanges = std::vector<std::pair<std::string, std::string>>;
  // Adds the ranges of the keys it wrote to *rewritten.
  absl::Status RederiveStreams(const std::set<std::string>& streams, KeyRanges* rewritten);
  // What a marker asks the next Open to redo (PROJECTIONS.md "Crash marker").
  struct Marks {
    bool all = false;
    std::set<Hash> subjects;
    std::set<std::string> cases;
    void Add(const Marks& other);
    std::string Encode() const;
    // Anything it cannot read asks for everything.
    static Marks Decode(absl::string_view text);
  };
  // Adds `marks` to what the marker names and syncs it.
  absl::Status Mark(const Marks& marks);
  // The case streams of a subject's records.
  absl::Status StreamsOfSubject(const Hash& subject_key, std::set<std::string>* streams) const;
  // Finishes what a marker found at Open names.
  absl::Status FinishMarked(const Marks& marks);
  // The marker and purge around a re-derivation (`work` does it; it sets
  // *again when shredding events were applied meanwhile); `marks` is what
  // the marker names while it runs.
  absl::Status Reprojecting(
      const Marks& marks,
      const std::function<absl::Status(std::set<std::string>* again, KeyRanges* rewritten)>& work);
  bool CanForget() const;
  // Deletes all projected state, then applies the ledger from zero.
  absl::Status ClearAndReplay(std::set<std::string>* shredded);
  // Rewrites the store's files so that overwritten and deleted values are
  // gone from them: every file, or (`rewritten` set) the files holding keys
  // of those ranges.
  absl::Status Purge(const KeyRanges* rewritten);
  static std::string MarkerPathOf(const std::string& path) { return path + ".reproject"; }
  std::string MarkerPath() const { return MarkerPathOf(options_.path); }
  // Where WriteChunk writes a table file before ingesting it.
  static std::string IngestPathOf(const std::string& path) { return path + "/chunk.sst.tmp"; }
  std::string IngestPath() const { return IngestPathOf(options_.path); }
  void Loop();

  const ProjectorOptions options_;
  Ledger* const ledger_;
  std::vector<std::unique_ptr<Projection>> projections_;
  std::unique_ptr<rocksdb::DB> db_;

  uint64_t listener_ = 0;  // the ledger commit listener's handle
  absl::Mutex reproject_mu_;  // one reprojection at a time
  absl::Mutex apply_mu_;      // one applier at a time
  // Shredding events below this seq destroyed their keys before anything
  // the store now holds was projected: applying one again needs no
  // reprojection. Set at Open (to the position) and by every clear.
  uint64_t clean_through_ ABSL_GUARDED_BY(apply_mu_);
  mutable absl::Mutex mu_;
  uint64_t position_ ABSL_GUARDED_BY(mu_);
  uint64_t ledger_size_ ABSL_GUARDED_BY(mu_) = 0;
  // The commit feed's batches not yet applied, in seq order (possibly with
  // gaps where batches were dropped), and how many records they hold.
  std::deque<std::shared_ptr<const CommittedBatch>> queue_ ABSL_GUARDED_BY(mu_);
  size_t queued_records_ ABSL_GUARDED_BY(mu_) = 0;
  // The streams of the queued records, each with its latest seq, down to
  // the position: ReadWithUnapplied looks at the queue's records only for
  // a stream that has some there.
  absl::flat_hash_map<std::string, uint64_t> queued_streams_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status health_ ABSL_GUARDED_BY(mu_);
  // Bumped by every MarkStale: a reprojection removes the marker only when
  // no MarkStale happened since it began.
  uint64_t stale_generation_ ABSL_GUARDED_BY(mu_) = 0;
  // What the marker on disk names; cleared when it is removed. Written
  // under marker_mu_ so that the file never goes back to older contents.
  absl::Mutex marker_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  Marks marks_ ABSL_GUARDED_BY(mu_);
  uint64_t reprojections_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t full_reprojections_ ABSL_GUARDED_BY(mu_) = 0;
  // Bumped before every clear of the store (ReadWithUnapplied starts over).
  uint64_t clears_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

}  // namespace caseledger

#endif  // CASELEDGER_SERVICES_API_PROJECTOR_H_
