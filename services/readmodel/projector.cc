#include "services/readmodel/projector.h"

#include <rocksdb/db.h>
#include <rocksdb/sst_file_writer.h>
#include <rocksdb/write_batch.h>

#include <map>
#include <utility>

#include <cstdio>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "ledger/internal/bytes.h"
#include "ledger/internal/file.h"
#include "ledger/hash.h"
#include "ledger/internal/status_macros.h"
#include "services/append/event_codec.h"

namespace caseledger {
namespace {

constexpr char kPositionKey[] = "\x01position";  // sorts before every projection's keys
// The id of the key values are sealed under ("" or absent: plaintext).
constexpr char kSealingKey[] = "\x01sealing";
// The projections' layouts (Projection::layout) the values are stored in.
constexpr char kLayoutKey[] = "\x01layout";

std::string LayoutOf(const std::vector<std::unique_ptr<Projection>>& projections) {
  std::string out;
  for (const auto& p : projections) absl::StrAppend(&out, p->name(), ":", p->layout(), ";");
  return out;
}


absl::Status FromRocks(const rocksdb::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  if (s.IsNotFound()) return absl::NotFoundError(absl::StrCat(what, ": not found"));
  return absl::InternalError(absl::StrCat(what, ": ", s.ToString()));
}

std::string Prefix(const Projection& p) { return p.name() + "/"; }

// Names a value key without revealing it: the first 8 bytes of
// SHA-256("caseledger/v1 projections key id" || key), in hex.
std::string SealingId(const std::optional<AeadKey>& key) {
  if (!key.has_value()) return "";
  Sha256 h;
  h.Update("caseledger/v1 projections key id");
  h.Update(key->bytes());
  Hash full = h.Finish();
  return ToHex(full).substr(0, 16);
}

// A value as stored: sealed under `key` with the full store key as the
// associated data (so a value cannot be moved to another key), or as is.
absl::StatusOr<std::string> SealValue(const std::optional<AeadKey>& key,
                                      const std::string& store_key, std::string value) {
  if (!key.has_value()) return value;
  return Seal(*key, value, store_key);
}

absl::StatusOr<std::string> OpenValue(const std::optional<AeadKey>& key,
                                      absl::string_view store_key, std::string stored) {
  if (!key.has_value()) return stored;
  absl::StatusOr<std::string> value = Open(*key, stored, store_key);
  if (!value.ok()) {
    return absl::DataLossError(absl::StrCat("projection value ", absl::CEscape(store_key), ": ",
                                            value.status().message()));
  }
  return value;
}

// A chunk's writes: a value, or nullopt for a deletion.
using Writes = std::map<std::string, std::optional<std::string>>;  // as Projector::Writes

// Adds a chunk's writes to `wb`: each value sealed under `key` (when set),
// each nullopt as a deletion.
absl::Status AddWrites(const std::optional<AeadKey>& key, Writes writes, rocksdb::WriteBatch* wb) {
  for (auto& [name, value] : writes) {
    if (!value.has_value()) {
      wb->Delete(name);
      continue;
    }
    CL_ASSIGN_OR_RETURN(std::string stored, SealValue(key, name, *std::move(value)));
    wb->Put(name, stored);
  }
  return absl::OkStatus();
}

// Overlay of one chunk's writes over the store.
class ChunkTxn : public ProjectionTxn {
 public:
  ChunkTxn(rocksdb::DB* db, const std::optional<AeadKey>* key, std::string prefix, Writes* writes)
      : db_(db), key_(key), prefix_(std::move(prefix)), writes_(writes) {}

  absl::StatusOr<std::string> Get(const std::string& key) override {
    std::string full = prefix_ + key;
    if (auto it = writes_->find(full); it != writes_->end()) {
      if (!it->second.has_value()) return absl::NotFoundError(absl::StrCat(full, ": not found"));
      return *it->second;
    }
    std::string value;
    CL_RETURN_IF_ERROR(FromRocks(db_->Get(rocksdb::ReadOptions(), full, &value), full));
    return OpenValue(*key_, full, std::move(value));
  }
  void Put(const std::string& key, std::string value) override {
    (*writes_)[prefix_ + key] = std::move(value);
  }
  void Delete(const std::string& key) override { (*writes_)[prefix_ + key] = std::nullopt; }
  absl::Status ScanStored(
      const std::string& prefix,
      const std::function<bool(absl::string_view, absl::string_view)>& fn) override {
    const std::string start = prefix_ + prefix;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    for (it->Seek(start); it->Valid() && it->key().starts_with(start); it->Next()) {
      absl::string_view full(it->key().data(), it->key().size());
      CL_ASSIGN_OR_RETURN(std::string value, OpenValue(*key_, full, it->value().ToString()));
      if (!fn(full.substr(prefix_.size()), value)) break;
    }
    return FromRocks(it->status(), "scan projections");
  }

 private:
  rocksdb::DB* db_;
  const std::optional<AeadKey>* key_;
  std::string prefix_;
  Writes* writes_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Projector>> Projector::Open(
    ProjectorOptions options, Ledger* ledger, std::vector<std::unique_ptr<Projection>> projections) {
  rocksdb::Options db_options;
  db_options.create_if_missing = true;
  // Point reads of rows that are not there (the header of a case the
  // append gate sees first) answered by a filter, not a memtable search.
  db_options.memtable_prefix_bloom_size_ratio = 0.02;
  db_options.memtable_whole_key_filtering = true;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(db_options, options.path, &raw);
  if (!s.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("open projection store ", options.path, ": ", s.ToString()));
  }
  std::unique_ptr<rocksdb::DB> db(raw);
  std::string pos;
  uint64_t position = 0;
  s = db->Get(rocksdb::ReadOptions(), kPositionKey, &pos);
  if (s.ok()) {
    position = internal::DecodeU64(pos);
  } else if (!s.IsNotFound()) {
    return FromRocks(s, "projection position");
  }
  if (position > ledger->Size()) {
    return absl::DataLossError(absl::StrCat("projections are at seq ", position,
                                            " but the ledger has only ", ledger->Size(),
                                            " records: rebuild them (delete ", options.path, ")"));
  }
  // Values stored in another form (plaintext, or sealed under another key,
  // as after a master key rotation) are replaced, and purged, before use.
  std::string sealing;
  s = db->Get(rocksdb::ReadOptions(), kSealingKey, &sealing);
  if (!s.ok() && !s.IsNotFound()) return FromRocks(s, "projection sealing");
  const bool resealed = position > 0 && sealing != SealingId(options.value_key);
  std::string layout;
  s = db->Get(rocksdb::ReadOptions(), kLayoutKey, &layout);
  if (!s.ok() && !s.IsNotFound()) return FromRocks(s, "projection layout");
  const bool relaid = position > 0 && layout != LayoutOf(projections);
  // A table file a crash left before it was ingested holds projected
  // values no purge would reach.
  std::error_code removed;
  std::filesystem::remove(IngestPathOf(options.path), removed);
  std::unique_ptr<Projector> projector(new Projector(
      std::move(options), ledger, std::move(projections), std::move(db), position));
  // A marker left behind means keys were (or were about to be) destroyed
  // and the reprojection did not finish: finish it before anyone reads.
  std::error_code ec;
  if (std::filesystem::exists(projector->MarkerPath(), ec)) {
    std::ifstream in(projector->MarkerPath(), std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    const Marks marks = Marks::Decode(text.str());
    if (marks.all || !projector->CanForget()) {
      std::fprintf(stderr,
                   "caseledger: %s exists: an erasure did not finish; rebuilding the read "
                   "models from %llu records\n",
                   projector->MarkerPath().c_str(),
                   static_cast<unsigned long long>(ledger->Size()));
    } else {
      std::fprintf(stderr,
                   "caseledger: %s exists: an erasure did not finish; re-deriving what it "
                   "names (%zu subjects, %zu cases)\n",
                   projector->MarkerPath().c_str(), marks.subjects.size(), marks.cases.size());
    }
    CL_RETURN_IF_ERROR(projector->FinishMarked(marks));
  } else if (relaid) {
    std::fprintf(stderr,
                 "caseledger: the read models are stored in layout \"%s\", not \"%s\"; "
                 "rebuilding them from %llu records\n",
                 layout.c_str(), LayoutOf(projector->projections_).c_str(),
                 static_cast<unsigned long long>(ledger->Size()));
    CL_RETURN_IF_ERROR(projector->Reproject());
  } else if (resealed) {
    std::fprintf(stderr,
                 "caseledger: the read models are stored %s; rebuilding them %s from %llu "
                 "records\n",
                 sealing.empty() ? "in plaintext" : absl::StrCat("sealed under key id ", sealing).c_str(),
                 projector->options_.value_key ? "sealed" : "in plaintext",
                 static_cast<unsigned long long>(ledger->Size()));
    CL_RETURN_IF_ERROR(projector->Reproject());
  }
  return projector;
}

Projector::Projector(ProjectorOptions options, Ledger* ledger,
                     std::vector<std::unique_ptr<Projection>> projections,
                     std::unique_ptr<rocksdb::DB> db, uint64_t position)
    : options_(std::move(options)),
      ledger_(ledger),
      projections_(std::move(projections)),
      db_(std::move(db)),
      // An empty store holds nothing projected before a shredding event.
      clean_through_(position == 0 ? ledger->Size() : position),
      position_(position) {
  // On the committer thread: queue and return (never block the commit).
  listener_ = ledger_->AddCommitListener([this](const std::shared_ptr<const CommittedBatch>& b) {
    absl::MutexLock lock(&mu_);
    ledger_size_ = std::max(ledger_size_, b->new_size);
    if (queued_records_ + b->records.size() > options_.max_queued_records) return;  // dropped
    queue_.push_back(b);
    queued_records_ += b->records.size();
    for (const RecordView& view : b->records) queued_streams_[view.record.stream_id] = view.record.seq;
  });
  // After registering: a commit in between is in the queue or in Size().
  const uint64_t size = ledger_->Size();
  absl::MutexLock lock(&mu_);
  ledger_size_ = std::max(ledger_size_, size);
}

Projector::~Projector() {
  ledger_->RemoveCommitListener(listener_);
  Stop();
}

void Projector::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void Projector::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void Projector::Loop() {
  for (;;) {
    uint64_t target;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || ledger_size_ > position_;
      };
      mu_.Await(absl::Condition(&ready));
      if (stopping_) return;
      target = ledger_size_;
    }
    std::set<std::string> shredded;
    absl::Status s = ApplyUpTo(target, &shredded);
    if (s.ok() && !shredded.empty()) s = ReprojectStreams(shredded);
    if (!s.ok()) {
      absl::MutexLock lock(&mu_);
      health_ = s;
      return;
    }
  }
}

absl::Status Projector::CatchUp() {
  std::set<std::string> shredded;
  CL_RETURN_IF_ERROR(ApplyUpTo(ledger_->Size(), &shredded));
  return shredded.empty() ? absl::OkStatus() : ReprojectStreams(shredded);
}

absl::Status Projector::Rebuild() {
  std::set<std::string> shredded;
  CL_RETURN_IF_ERROR(ClearAndReplay(&shredded));
  return shredded.empty() ? absl::OkStatus() : ReprojectStreams(shredded);
}

absl::Status Projector::ClearAndReplay(std::set<std::string>* shredded) {
  {
    absl::MutexLock apply(&apply_mu_);
    {
      absl::MutexLock lock(&mu_);
      ++clears_;
    }
    // One range tombstone over every key, rather than one tombstone a key.
    rocksdb::WriteBatch wb;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    it->SeekToFirst();
    if (it->Valid()) {
      const std::string first = it->key().ToString();
      it->SeekToLast();
      const std::string last = it->key().ToString();
      wb.DeleteRange(first, last);
      wb.Delete(last);
    }
    wb.Put(kSealingKey, SealingId(options_.value_key));
    wb.Put(kLayoutKey, LayoutOf(projections_));
    CL_RETURN_IF_ERROR(FromRocks(it->status(), "scan projections"));
    for (const auto& p : projections_) p->Clear();
    rocksdb::WriteOptions wo;
    wo.sync = true;
    CL_RETURN_IF_ERROR(FromRocks(db_->Write(wo, &wb), "clear projections"));
    // Every shredding event committed so far destroyed its keys before the
    // replay reads a record, so only later ones call for another pass.
    clean_through_ = ledger_->Size();
    absl::MutexLock lock(&mu_);
    position_ = 0;
  }
  return ApplyUpTo(ledger_->Size(), shredded);
}

// The marker's first line. A marker that starts otherwise (written before
// markers named what they are for) asks for a full rebuild.
constexpr char kMarkerHeader[] = "caseledger: the read models must redo what follows";

void Projector::Marks::Add(const Marks& other) {
  all = all || other.all;
  subjects.insert(other.subjects.begin(), other.subjects.end());
  cases.insert(other.cases.begin(), other.cases.end());
}

std::string Projector::Marks::Encode() const {
  std::string out = absl::StrCat(kMarkerHeader, "\n");
  if (all) absl::StrAppend(&out, "all\n");
  for (const Hash& k : subjects) absl::StrAppend(&out, "subject ", ToHex(k), "\n");
  for (const std::string& c : cases) absl::StrAppend(&out, "case ", absl::BytesToHexString(c), "\n");
  return out;
}

Projector::Marks Projector::Marks::Decode(absl::string_view text) {
  Marks m;
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n', absl::SkipEmpty());
  if (lines.empty() || lines[0] != kMarkerHeader) {
    m.all = true;
    return m;
  }
  for (size_t i = 1; i < lines.size(); ++i) {
    absl::string_view line = lines[i];
    if (line == "all") {
      m.all = true;
    } else if (absl::ConsumePrefix(&line, "subject ")) {
      absl::StatusOr<Hash> key = HashFromHex(line);
      if (!key.ok()) m.all = true;
      if (key.ok()) m.subjects.insert(*key);
    } else if (absl::ConsumePrefix(&line, "case ") && line.size() % 2 == 0 &&
               std::all_of(line.begin(), line.end(), absl::ascii_isxdigit)) {
      m.cases.insert(absl::HexStringToBytes(line));
    } else {
      m.all = true;
    }
  }
  return m;
}

absl::Status Projector::Mark(const Marks& marks) {
  absl::MutexLock write(&marker_mu_);
  std::string text;
  {
    absl::MutexLock lock(&mu_);
    ++stale_generation_;
    marks_.Add(marks);
    text = marks_.Encode();
  }
  return internal::WriteFileDurably(MarkerPath(), text);
}

absl::Status Projector::MarkStale() {
  Marks all;
  all.all = true;
  return Mark(all);
}

absl::Status Projector::MarkStaleSubject(const std::optional<Hash>& subject_key) {
  Marks m;
  m.all = !CanForget();  // then the reprojection is a full one
  if (subject_key.has_value()) m.subjects.insert(*subject_key);
  return Mark(m);
}

absl::Status Projector::WriteStaleMarker(const std::string& path) {
  Marks all;
  all.all = true;
  return internal::WriteFileDurably(MarkerPathOf(path), all.Encode());
}

absl::Status Projector::FinishMarked(const Marks& marks) {
  {
    absl::MutexLock lock(&mu_);
    marks_.Add(marks);  // kept on disk until the reprojection is done
  }
  if (marks.all || !CanForget()) return Reproject();
  std::set<std::string> streams = marks.cases;
  for (const Hash& key : marks.subjects) CL_RETURN_IF_ERROR(StreamsOfSubject(key, &streams));
  return ReprojectStreams(streams);
}

absl::Status Projector::Reproject() {
  Marks all;
  all.all = true;
  return Reprojecting(all, [this](std::set<std::string>* again, KeyRanges*) {
    {
      absl::MutexLock lock(&mu_);
      ++full_reprojections_;
    }
    return ClearAndReplay(again);
  });
}

bool Projector::ChunkFull() const {
  for (const auto& p : projections_) {
    if (p->ChunkFull()) return true;
  }
  return false;
}

bool Projector::CanForget() const {
  for (const auto& p : projections_) {
    if (!p->CanForget()) return false;
  }
  return true;
}

std::optional<Hash> Projector::SubjectKeyOf(const std::string& subject_id) const {
  absl::StatusOr<Hash> key = ledger_->SubjectMapKey(subject_id);
  if (!key.ok()) return std::nullopt;
  return *key;
}

absl::Status Projector::ReprojectSubject(const std::string& subject_id) {
  return ReprojectSubjectKey(SubjectKeyOf(subject_id));
}

absl::Status Projector::ReprojectSubjectKey(const std::optional<Hash>& subject_key) {
  if (!CanForget()) return Reproject();
  // The streams of the subject's records: each names the subject, so its
  // openings key derives from a key the erasure destroyed.
  std::set<std::string> streams;
  if (subject_key.has_value()) CL_RETURN_IF_ERROR(StreamsOfSubject(*subject_key, &streams));
  return ReprojectStreams(streams);
}

absl::Status Projector::StreamsOfSubject(const Hash& subject_key,
                                         std::set<std::string>* streams) const {
  absl::Status read;
  CL_RETURN_IF_ERROR(ledger_->store().ScanSubject(
      subject_key, 0, [&](uint64_t, uint64_t seq) {
        absl::StatusOr<std::string> leaf = ledger_->store().GetLeaf(seq);
        absl::StatusOr<Record> r = leaf.ok() ? ledger_->DecodeStored(*leaf) : leaf.status();
        if (!r.ok()) {
          read = r.status();
          return false;
        }
        streams->insert(r->stream_id);
        return true;
      }));
  return read;
}

absl::Status Projector::ReprojectStreams(const std::set<std::string>& streams) {
  if (!CanForget()) return Reproject();
  Marks named;
  named.cases = streams;
  return Reprojecting(named, [&](std::set<std::string>*, KeyRanges* rewritten) {
    return RederiveStreams(streams, rewritten);
  });
}

absl::Status Projector::RederiveStreams(const std::set<std::string>& streams,
                                        KeyRanges* rewritten) {
  {
    absl::MutexLock apply(&apply_mu_);
    const uint64_t position = Projector::position();
    // Case streams only: the server's own streams ("@...") project nothing
    // a forgetting projection keeps (Projection::CanForget).
    std::set<std::string> cases;
    for (const std::string& s : streams) {
      if (!s.empty() && s[0] != '@') cases.insert(s);
    }
    Writes writes;
    std::vector<ChunkTxn> txns;
    for (const auto& p : projections_) {
      txns.emplace_back(db_.get(), &options_.value_key, Prefix(*p), &writes);
    }
    for (size_t i = 0; i < projections_.size(); ++i) {
      CL_RETURN_IF_ERROR(projections_[i]->Forget(cases, txns[i]));
    }
    // Their records below the position, in seq order, read (and opened:
    // erased ones are withheld now) from the store.
    std::vector<uint64_t> seqs;
    for (const std::string& c : cases) {
      CL_RETURN_IF_ERROR(ledger_->store().ScanStream(c, 0, [&](uint64_t, uint64_t seq) {
        if (seq < position) seqs.push_back(seq);
        return seq < position;
      }));
    }
    std::sort(seqs.begin(), seqs.end());
    for (uint64_t seq : seqs) {
      CL_ASSIGN_OR_RETURN(RecordView view, ledger_->Read(seq));
      CL_ASSIGN_OR_RETURN(v1::Record record, ToWireRecord(view));
      for (size_t i = 0; i < projections_.size(); ++i) {
        absl::Status s = projections_[i]->Apply(record, txns[i]);
        if (!s.ok()) {
          return absl::Status(s.code(), absl::StrCat("projection ", projections_[i]->name(),
                                                     " at seq ", seq, ": ", s.message()));
        }
      }
    }
    for (size_t i = 0; i < projections_.size(); ++i) {
      CL_RETURN_IF_ERROR(projections_[i]->Flush(txns[i]));
    }
    // The rows written, as ranges of whole cases and clients: every value
    // derived from the streams' records is among them (Projection::Forget).
    // (A key's group: up to its first 0x00, PROJECTIONS.md "Keys and values".)
    auto group = [](absl::string_view key) { return key.substr(0, key.find('\0')); };
    for (const auto& [key, value] : writes) {
      if (!rewritten->empty() && group(rewritten->back().second) == group(key)) {
        rewritten->back().second = key;
      } else {
        rewritten->emplace_back(key, key);
      }
    }
    rocksdb::WriteBatch wb;
    CL_RETURN_IF_ERROR(AddWrites(options_.value_key, std::move(writes), &wb));
    // Not synced: the marker stays until the purge (a flush) is done.
    rocksdb::WriteOptions wo;
    wo.disableWAL = true;  // as in ApplyChunk
    CL_RETURN_IF_ERROR(FromRocks(db_->Write(wo, &wb), "rederive projections"));
  }
  return absl::OkStatus();
}

absl::Status Projector::Reprojecting(
    const Marks& marks,
    const std::function<absl::Status(std::set<std::string>* again, KeyRanges* rewritten)>& work) {
  absl::MutexLock one(&reproject_mu_);
  std::set<std::string> again;
  for (bool first = true; first || !again.empty(); first = false) {
    // What this pass redoes: the caller's work, then the cases of
    // disposals applied during the previous pass.
    Marks pass = marks;
    if (!first) {
      pass = Marks{};
      pass.all = !CanForget();
      pass.cases = again;
    }
    CL_RETURN_IF_ERROR(Mark(pass));
    uint64_t generation;
    {
      absl::MutexLock lock(&mu_);
      generation = stale_generation_;
    }
    std::set<std::string> shredded;
    // What the pass rewrote, unless it rewrote everything (a replay).
    KeyRanges rewritten;
    bool whole = pass.all;
    if (first) {
      CL_RETURN_IF_ERROR(work(&shredded, &rewritten));
    } else if (CanForget()) {
      // Disposals applied during the previous pass (a replay): their cases.
      CL_RETURN_IF_ERROR(RederiveStreams(again, &rewritten));
    } else {
      whole = true;
      {
        absl::MutexLock lock(&mu_);
        ++full_reprojections_;
      }
      CL_RETURN_IF_ERROR(ClearAndReplay(&shredded));
    }
    again = std::move(shredded);
    CL_RETURN_IF_ERROR(Purge(whole ? nullptr : &rewritten));
    if (options_.after_reproject) options_.after_reproject();
    absl::MutexLock lock(&mu_);
    ++reprojections_;
    // Marked again since this pass began (a shredding event that committed
    // meanwhile, or an erasure under way): the pass that follows it removes
    // the marker.
    if (again.empty() && stale_generation_ == generation) {
      CL_RETURN_IF_ERROR(internal::RemoveFileDurably(MarkerPath()));
      marks_ = Marks{};
    }
  }
  return absl::OkStatus();
}

uint64_t Projector::reprojections() const {
  absl::MutexLock lock(&mu_);
  return reprojections_;
}

uint64_t Projector::full_reprojections() const {
  absl::MutexLock lock(&mu_);
  return full_reprojections_;
}

absl::Status Projector::Purge(const KeyRanges* rewritten) {
  // The flush moves everything into SSTs, after which the WAL files holding
  // old values are obsolete and deleted (and a key written twice since the
  // last flush keeps only its last value); the compaction rewrites at the
  // bottom level every SST that holds a key of `rewritten` (every SST when
  // it is null), dropping overwritten and deleted values. Any older value of
  // a key lies in an SST holding that key, so compacting the ranges of the
  // rewritten keys removes all of theirs; the rest of the store is not
  // rewritten.
  rocksdb::FlushOptions fo;
  fo.wait = true;
  fo.allow_write_stall = true;
  CL_RETURN_IF_ERROR(FromRocks(db_->Flush(fo), "purge projections: flush"));
  rocksdb::CompactRangeOptions co;
  co.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  co.exclusive_manual_compaction = true;
  if (rewritten == nullptr) {
    CL_RETURN_IF_ERROR(
        FromRocks(db_->CompactRange(co, nullptr, nullptr), "purge projections: compact"));
  } else {
    for (const auto& [first, last] : *rewritten) {
      rocksdb::Slice begin(first), end(last);
      CL_RETURN_IF_ERROR(
          FromRocks(db_->CompactRange(co, &begin, &end), "purge projections: compact"));
    }
  }
  return FromRocks(db_->EnableFileDeletions(/*force=*/false), "purge projections: files");
}

absl::Status Projector::ApplyUpTo(uint64_t limit, std::set<std::string>* shredded) {
  absl::MutexLock apply(&apply_mu_);
  for (;;) {
    const uint64_t from = position();
    if (from >= limit) return absl::OkStatus();
    uint64_t to = std::min<uint64_t>(limit, from + options_.chunk_records);
    // The queued batches that continue from `from` without a gap.
    std::vector<std::shared_ptr<const CommittedBatch>> batches;
    // Where the store must serve up to, if it must: in larger chunks
    // (catch_up_chunk_records), up to the queue's first batch.
    uint64_t gap_end = std::min<uint64_t>(
        limit, from + std::max(options_.chunk_records, options_.catch_up_chunk_records));
    {
      absl::MutexLock lock(&mu_);
      while (!queue_.empty() && queue_.front()->new_size <= from) {
        queued_records_ -= queue_.front()->records.size();
        queue_.pop_front();
      }
      uint64_t next = from;
      for (const auto& b : queue_) {
        if (b->first_seq > next || next >= to) break;
        batches.push_back(b);
        next = b->new_size;
      }
      if (batches.empty() && !queue_.empty()) gap_end = std::min(gap_end, queue_.front()->first_seq);
      if (!batches.empty()) to = std::min(to, next);
    }
    if (batches.empty()) {
      // Committed before the projector opened, or dropped from a full queue.
      CL_RETURN_IF_ERROR(ApplyFromStore(from, std::max(gap_end, from + 1), shredded));
    } else {
      CL_RETURN_IF_ERROR(ApplyFromFeed(from, to, batches, shredded));
    }
  }
}

absl::Status Projector::ApplyFromStore(uint64_t from, uint64_t to,
                                       std::set<std::string>* shredded) {
  return ApplyChunk(
      from, to,
      [&](const ApplyFn& apply) -> absl::Status {
        // One sequential scan per chunk rather than a lookup per record.
        uint64_t next = from;
        absl::Status applied;
        CL_RETURN_IF_ERROR(
            ledger_->store().ScanRecords(from, [&](const LogStore::ScannedRecord& r) {
              if (r.key_seq != next) {
                applied = absl::DataLossError(absl::StrCat("record ", next, " is missing"));
                return false;
              }
              RecordView view;
              view.leaf = std::string(r.leaf);
              absl::StatusOr<Record> decoded = ledger_->DecodeStored(view.leaf);
              if (!decoded.ok() || !r.payload.has_value()) {
                applied = absl::DataLossError(absl::StrCat("record ", next, " cannot be read"));
                return false;
              }
              view.record = *std::move(decoded);
              view.leaf_hash = LeafHash(view.leaf);
              view.payload = std::string(*r.payload);
              // Sealed payloads (encryption at rest) are opened as
              // Ledger::Read opens them; erased ones project withheld.
              applied = ledger_->OpenPayload(&view);
              // Not hashed against their commitments again: these are the
              // bytes the committer checked and stored (PROJECTIONS.md
              // "What the projector trusts").
              if (applied.ok()) applied = apply(view, Origin::kJustCommitted);
              return applied.ok() && ++next < to && !ChunkFull();
            }));
        CL_RETURN_IF_ERROR(applied);
        if (next != to && !(next > from && ChunkFull())) {
          return absl::DataLossError(absl::StrCat("records end at seq ", next, ", want ", to));
        }
        return absl::OkStatus();
      },
      shredded);
}

absl::Status Projector::ApplyFromFeed(
    uint64_t from, uint64_t to, const std::vector<std::shared_ptr<const CommittedBatch>>& batches,
    std::set<std::string>* shredded) {
  return ApplyChunk(
      from, to,
      [&](const ApplyFn& apply) -> absl::Status {
        for (const auto& b : batches) {
          // Keys destroyed since these payloads were sealed: their plaintext
          // is not to be trusted, so sealed ones are opened from the bytes.
          const bool current = ledger_->OpeningsCurrent(*b);
          for (uint64_t seq = std::max(from, b->first_seq); seq < std::min(to, b->new_size);
               ++seq) {
            const RecordView& view = b->records[seq - b->first_seq];
            if (current || !view.openings.has_value()) {
              CL_RETURN_IF_ERROR(apply(view, Origin::kJustCommitted));
              continue;
            }
            RecordView reopened = view;
            CL_RETURN_IF_ERROR(ledger_->Reopen(&reopened));
            CL_RETURN_IF_ERROR(apply(reopened, Origin::kJustCommitted));
          }
        }
        return absl::OkStatus();
      },
      shredded);
}

absl::Status Projector::ApplyChunk(uint64_t from, uint64_t to,
                                   const std::function<absl::Status(const ApplyFn&)>& produce,
                                   std::set<std::string>* shredded) {
  Writes writes;
  std::vector<ChunkTxn> txns;
  for (const auto& p : projections_) {
    txns.emplace_back(db_.get(), &options_.value_key, Prefix(*p), &writes);
  }
  const uint64_t clean_through = clean_through_;
  std::set<std::string> chunk_shreds;
  uint64_t next = from;
  CL_RETURN_IF_ERROR(produce([&](const RecordView& view, Origin origin) -> absl::Status {
    if (view.record.seq != next) {
      return absl::DataLossError(
          absl::StrCat("record ", view.record.seq, " where record ", next, " was due"));
    }
    if (next >= clean_through && !options_.shred_event_type.empty() &&
        view.record.event_type == options_.shred_event_type) {
      chunk_shreds.insert(view.record.stream_id);
    }
    CL_ASSIGN_OR_RETURN(v1::Record record, ToWireRecord(view, View::kFull, origin));
    for (size_t i = 0; i < projections_.size(); ++i) {
      absl::Status s = projections_[i]->Apply(record, txns[i]);
      if (!s.ok()) {
        return absl::Status(s.code(), absl::StrCat("projection ", projections_[i]->name(),
                                                   " at seq ", next, ": ", s.message()));
      }
    }
    ++next;
    return absl::OkStatus();
  }));
  if (next != to && next > from && ChunkFull()) to = next;  // cut short: full
  if (next != to) {
    return absl::DataLossError(absl::StrCat("records end at seq ", next, ", want ", to));
  }
  for (size_t i = 0; i < projections_.size(); ++i) {
    CL_RETURN_IF_ERROR(projections_[i]->Flush(txns[i]));
  }
  if (!chunk_shreds.empty()) {
    // Earlier chunks may hold values projected from records this one's
    // shredding made unreadable: the marker, naming their cases, outlives a
    // crash from here.
    Marks shreds;
    shreds.all = !CanForget();
    shreds.cases = chunk_shreds;
    CL_RETURN_IF_ERROR(Mark(shreds));
    shredded->insert(chunk_shreds.begin(), chunk_shreds.end());
  }
  CL_RETURN_IF_ERROR(WriteChunk(std::move(writes), to));
  absl::MutexLock lock(&mu_);
  position_ = to;
  for (auto it = queued_streams_.begin(); it != queued_streams_.end();) {
    if (it->second < to) {
      queued_streams_.erase(it++);
    } else {
      ++it;
    }
  }
  return absl::OkStatus();
}

absl::Status Projector::WriteChunk(Writes writes, uint64_t to) {
  if (writes.size() < options_.ingest_rows) {
    rocksdb::WriteBatch wb;
    CL_RETURN_IF_ERROR(AddWrites(options_.value_key, std::move(writes), &wb));
    wb.Put(kPositionKey, internal::U64Key(to));
    wb.Put(kSealingKey, SealingId(options_.value_key));
    wb.Put(kLayoutKey, LayoutOf(projections_));
    // Not even logged: the ledger is the source of truth. A crash keeps the
    // last flushed chunks (data and position together) and the catch-up
    // re-applies the rest; a restart has no WAL of projections to replay.
    rocksdb::WriteOptions wo;
    wo.disableWAL = true;
    return FromRocks(db_->Write(wo, &wb), "write projections");
  }
  // Many rows (a rebuild, a long catch-up): written as one table file in
  // key order and ingested (atomically, data and position together), which
  // costs far less than inserting each row into the memtable and flushing
  // it later. The \x01 keys sort before every projection's.
  const std::string file = IngestPath();
  rocksdb::SstFileWriter writer(rocksdb::EnvOptions(), db_->GetOptions());
  CL_RETURN_IF_ERROR(FromRocks(writer.Open(file), "write projections: open table file"));
  absl::Status added = [&]() -> absl::Status {
    CL_RETURN_IF_ERROR(FromRocks(writer.Put(kLayoutKey, LayoutOf(projections_)), "table file"));
    CL_RETURN_IF_ERROR(FromRocks(writer.Put(kPositionKey, internal::U64Key(to)), "table file"));
    CL_RETURN_IF_ERROR(
        FromRocks(writer.Put(kSealingKey, SealingId(options_.value_key)), "table file"));
    for (auto& [name, value] : writes) {
      if (!value.has_value()) {
        CL_RETURN_IF_ERROR(FromRocks(writer.Delete(name), "table file"));
        continue;
      }
      CL_ASSIGN_OR_RETURN(std::string stored, SealValue(options_.value_key, name, *std::move(value)));
      CL_RETURN_IF_ERROR(FromRocks(writer.Put(name, stored), "table file"));
    }
    return FromRocks(writer.Finish(), "write projections: finish table file");
  }();
  if (added.ok()) {
    rocksdb::IngestExternalFileOptions io;
    io.move_files = true;
    added = FromRocks(db_->IngestExternalFile({file}, io), "write projections: ingest");
  }
  std::error_code ec;
  std::filesystem::remove(file, ec);  // moved when ingested
  return added;
}

uint64_t Projector::position() const {
  absl::MutexLock lock(&mu_);
  return position_;
}

absl::Status Projector::health() const {
  absl::MutexLock lock(&mu_);
  return health_;
}

absl::Status Projector::WaitFor(uint64_t seq, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto reached = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return position_ >= seq || !health_.ok();
  };
  if (!mu_.AwaitWithTimeout(absl::Condition(&reached), timeout)) {
    return absl::DeadlineExceededError(absl::StrCat("projections reached seq ", position_,
                                                    ", not yet ", seq));
  }
  if (!health_.ok()) return health_;
  return absl::OkStatus();
}

absl::Status Projector::ReadWithUnapplied(
    const std::string& stream_id, absl::Duration timeout,
    const std::function<absl::Status()>& read_stored,
    const std::function<absl::Status(const v1::Record&)>& unapplied) const {
  for (;;) {
    uint64_t from, size, clears;
    uint64_t next;
    bool queued = false;  // the queue holds records of the stream at or past `from`
    std::vector<std::shared_ptr<const CommittedBatch>> batches;
    {
      absl::MutexLock lock(&mu_);
      from = position_;
      size = ledger_size_;
      clears = clears_;
      next = from;
      for (const auto& b : queue_) {
        if (b->new_size <= next) continue;
        if (b->first_seq > next) break;  // a dropped batch
        next = b->new_size;
      }
      auto q = queued_streams_.find(stream_id);
      queued = q != queued_streams_.end() && q->second >= from;
      if (queued) batches.assign(queue_.begin(), queue_.end());
    }
    if (next < size) {
      // Not in the queue: the projector reads it from the store.
      CL_RETURN_IF_ERROR(WaitFor(size, timeout));
      continue;
    }
    CL_RETURN_IF_ERROR(read_stored());
    {
      absl::MutexLock lock(&mu_);
      if (clears_ != clears) continue;  // it may have read a cleared store
    }
    for (const auto& b : batches) {
      if (b->new_size <= from) continue;
      const bool current = ledger_->OpeningsCurrent(*b);
      for (uint64_t seq = std::max(from, b->first_seq); seq < b->new_size; ++seq) {
        const RecordView& view = b->records[seq - b->first_seq];
        if (view.record.stream_id != stream_id) continue;
        absl::StatusOr<v1::Record> record;
        if (current || !view.openings.has_value()) {
          record = ToWireRecord(view, View::kFull, Origin::kJustCommitted);
        } else {
          // Keys destroyed since it was sealed (as ApplyFromFeed).
          RecordView reopened = view;
          CL_RETURN_IF_ERROR(ledger_->Reopen(&reopened));
          record = ToWireRecord(reopened, View::kFull, Origin::kJustCommitted);
        }
        if (!record.ok()) return record.status();
        CL_RETURN_IF_ERROR(unapplied(*record));
      }
    }
    return absl::OkStatus();
  }
}

absl::StatusOr<std::string> Projector::Get(const Projection& projection,
                                           const std::string& key) const {
  std::string full = Prefix(projection) + key;
  std::string value;
  CL_RETURN_IF_ERROR(FromRocks(db_->Get(rocksdb::ReadOptions(), full, &value), full));
  return OpenValue(options_.value_key, full, std::move(value));
}

absl::Status Projector::Scan(
    const Projection& projection, const std::string& prefix,
    const std::function<bool(absl::string_view, absl::string_view)>& fn,
    const std::string& from) const {
  std::string start = Prefix(projection) + prefix;
  size_t strip = Prefix(projection).size();
  std::string seek = std::max(start, Prefix(projection) + from);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(seek); it->Valid() && it->key().starts_with(start); it->Next()) {
    absl::string_view key(it->key().data() + strip, it->key().size() - strip);
    CL_ASSIGN_OR_RETURN(std::string value,
                        OpenValue(options_.value_key, absl::string_view(it->key().data(), it->key().size()),
                                  it->value().ToString()));
    if (!fn(key, value)) break;
  }
  return FromRocks(it->status(), "scan projections");
}

}  // namespace caseledger
