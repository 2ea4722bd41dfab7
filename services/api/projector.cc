#include "services/api/projector.h"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "ledger/internal/bytes.h"
#include "ledger/internal/status_macros.h"
#include "services/api/event_codec.h"

namespace caseledger {
namespace {

constexpr char kPositionKey[] = "\x01position";  // sorts before every projection's keys

rocksdb::Slice ToSlice(absl::string_view s) { return rocksdb::Slice(s.data(), s.size()); }

absl::Status FromRocks(const rocksdb::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  if (s.IsNotFound()) return absl::NotFoundError(absl::StrCat(what, ": not found"));
  return absl::InternalError(absl::StrCat(what, ": ", s.ToString()));
}

std::string Prefix(const Projection& p) { return p.name() + "/"; }

// Overlay of one chunk's writes over the store.
class ChunkTxn : public ProjectionTxn {
 public:
  ChunkTxn(rocksdb::DB* db, std::string prefix, std::map<std::string, std::string>* writes)
      : db_(db), prefix_(std::move(prefix)), writes_(writes) {}

  absl::StatusOr<std::string> Get(const std::string& key) override {
    std::string full = prefix_ + key;
    if (auto it = writes_->find(full); it != writes_->end()) return it->second;
    std::string value;
    CL_RETURN_IF_ERROR(FromRocks(db_->Get(rocksdb::ReadOptions(), full, &value), full));
    return value;
  }
  void Put(const std::string& key, std::string value) override {
    (*writes_)[prefix_ + key] = std::move(value);
  }

 private:
  rocksdb::DB* db_;
  std::string prefix_;
  std::map<std::string, std::string>* writes_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Projector>> Projector::Open(
    ProjectorOptions options, Ledger* ledger, std::vector<std::unique_ptr<Projection>> projections) {
  rocksdb::Options db_options;
  db_options.create_if_missing = true;
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
  return std::unique_ptr<Projector>(new Projector(std::move(options), ledger,
                                                  std::move(projections), std::move(db), position));
}

Projector::Projector(ProjectorOptions options, Ledger* ledger,
                     std::vector<std::unique_ptr<Projection>> projections,
                     std::unique_ptr<rocksdb::DB> db, uint64_t position)
    : options_(std::move(options)),
      ledger_(ledger),
      projections_(std::move(projections)),
      db_(std::move(db)),
      position_(position),
      ledger_size_(ledger->Size()) {
  listener_ = ledger_->AddCommitListener([this](uint64_t size) {
    absl::MutexLock lock(&mu_);
    ledger_size_ = size;
  });
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
    absl::Status s = ApplyUpTo(target);
    if (!s.ok()) {
      absl::MutexLock lock(&mu_);
      health_ = s;
      return;
    }
  }
}

absl::Status Projector::CatchUp() { return ApplyUpTo(ledger_->Size()); }

absl::Status Projector::Rebuild() {
  {
    absl::MutexLock apply(&apply_mu_);
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
    CL_RETURN_IF_ERROR(FromRocks(it->status(), "scan projections"));
    rocksdb::WriteOptions wo;
    wo.sync = true;
    CL_RETURN_IF_ERROR(FromRocks(db_->Write(wo, &wb), "clear projections"));
    absl::MutexLock lock(&mu_);
    position_ = 0;
  }
  return CatchUp();
}

absl::Status Projector::ApplyUpTo(uint64_t limit) {
  absl::MutexLock apply(&apply_mu_);
  for (;;) {
    uint64_t from = position();
    if (from >= limit) return absl::OkStatus();
    uint64_t to = std::min<uint64_t>(limit, from + options_.chunk_records);
    std::map<std::string, std::string> writes;
    std::vector<ChunkTxn> txns;
    for (const auto& p : projections_) txns.emplace_back(db_.get(), Prefix(*p), &writes);
    // One sequential scan per chunk rather than a lookup per record.
    uint64_t next = from;
    absl::Status applied;
    absl::Status scan = ledger_->store().ScanRecords(from, [&](const LogStore::ScannedRecord& r) {
      if (r.key_seq != next) {
        applied = absl::DataLossError(absl::StrCat("record ", next, " is missing"));
        return false;
      }
      RecordView view;
      view.leaf = std::string(r.leaf);
      absl::StatusOr<Record> decoded = DecodeRecord(view.leaf);
      if (!decoded.ok() || !r.payload.has_value()) {
        applied = absl::DataLossError(absl::StrCat("record ", next, " cannot be read"));
        return false;
      }
      view.record = *std::move(decoded);
      view.leaf_hash = LeafHash(view.leaf);
      view.payload = std::string(*r.payload);
      // Sealed payloads (encryption at rest) are opened as Ledger::Read
      // opens them; erased ones project with their fields withheld.
      if (absl::Status opened = ledger_->OpenPayload(&view); !opened.ok()) {
        applied = opened;
        return false;
      }
      absl::StatusOr<v1::Record> record = ToWireRecord(view);
      if (!record.ok()) {
        applied = record.status();
        return false;
      }
      for (size_t i = 0; i < projections_.size() && applied.ok(); ++i) {
        absl::Status s = projections_[i]->Apply(*record, txns[i]);
        if (!s.ok()) {
          applied = absl::Status(s.code(), absl::StrCat("projection ", projections_[i]->name(),
                                                        " at seq ", next, ": ", s.message()));
        }
      }
      return applied.ok() && ++next < to;
    });
    CL_RETURN_IF_ERROR(scan);
    CL_RETURN_IF_ERROR(applied);
    if (next != to) {
      return absl::DataLossError(absl::StrCat("records end at seq ", next, ", want ", to));
    }
    for (size_t i = 0; i < projections_.size(); ++i) {
      CL_RETURN_IF_ERROR(projections_[i]->Flush(txns[i]));
    }
    rocksdb::WriteBatch wb;
    for (const auto& [key, value] : writes) wb.Put(key, value);
    wb.Put(kPositionKey, internal::U64Key(to));
    // Not synced: the log is the source of truth; a lost chunk is re-applied.
    CL_RETURN_IF_ERROR(FromRocks(db_->Write(rocksdb::WriteOptions(), &wb), "write projections"));
    absl::MutexLock lock(&mu_);
    position_ = to;
  }
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

absl::StatusOr<std::string> Projector::Get(const Projection& projection,
                                           const std::string& key) const {
  std::string full = Prefix(projection) + key;
  std::string value;
  CL_RETURN_IF_ERROR(FromRocks(db_->Get(rocksdb::ReadOptions(), full, &value), full));
  return value;
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
    if (!fn(key, absl::string_view(it->value().data(), it->value().size()))) break;
  }
  return FromRocks(it->status(), "scan projections");
}

}  // namespace caseledger
