#include "ledger/memory_store.h"

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace caseledger {
namespace {

absl::Status NotFound(absl::string_view what) {
  return absl::NotFoundError(absl::StrCat(what, ": not found"));
}

// Every read copies what it returns under mu_ and calls callbacks without
// it, so a callback may read the store again.
class MemoryStore : public LogStore, public KeyTable {
 public:
  explicit MemoryStore(const MemoryStoreOptions& options) : has_keys_(options.keys) {
    // A new store is in layout 1, as a new data directory is, until the
    // subject map's first open finishes the (empty) migration.
    if (options.layout1_subject_map.has_value()) subject_map_ = *options.layout1_subject_map;
  }

  // RecordLog ---------------------------------------------------------------

  absl::Status Commit(const CommitBatch& batch) override {
    std::optional<absl::MutexLock> keys_lock;
    if (!batch.key_writes.empty()) keys_lock.emplace(&key_write_mu_);
    absl::MutexLock lock(&mu_);
    for (const auto& r : batch.records) {
      records_[r.seq] = r.leaf;
      payloads_[r.seq] = r.payload;
      streams_[{r.stream_id, r.version}] = r.seq;
      event_ids_[r.event_id] = r.seq;
    }
    for (const NodeWrite& n : batch.nodes) nodes_[{n.level, n.index}] = n.hash;
    for (const auto& [size, note] : batch.checkpoints) checkpoints_[size] = note;
    for (const CommitBatch::SubjectEntry& e : batch.subject_entries) {
      subjects_[e.key][e.index] = SubjectEntryValue{e.seq, e.head};
    }
    for (const auto& [path, node] : batch.subject_map_nodes) subject_map_nodes_[path] = node;
    size_ = batch.new_size;
    ApplyKeyWrites(batch.key_writes);
    return absl::OkStatus();
  }

  absl::StatusOr<uint64_t> Size() const override {
    absl::MutexLock lock(&mu_);
    return size_;
  }

  absl::StatusOr<std::string> GetLeaf(uint64_t seq) const override {
    absl::MutexLock lock(&mu_);
    auto it = records_.find(seq);
    if (it == records_.end()) return NotFound(absl::StrCat("record ", seq));
    return it->second;
  }

  absl::StatusOr<std::string> GetPayload(uint64_t seq) const override {
    absl::MutexLock lock(&mu_);
    auto it = payloads_.find(seq);
    if (it == payloads_.end()) return NotFound(absl::StrCat("payload ", seq));
    return it->second;
  }

  absl::StatusOr<std::optional<uint64_t>> FindEventId(absl::string_view event_id) const override {
    absl::MutexLock lock(&mu_);
    auto it = event_ids_.find(std::string(event_id));
    if (it == event_ids_.end()) return std::optional<uint64_t>();
    return std::optional<uint64_t>(it->second);
  }

  absl::StatusOr<uint64_t> FindStreamVersion(absl::string_view stream_id,
                                             uint64_t version) const override {
    absl::MutexLock lock(&mu_);
    auto it = streams_.find({std::string(stream_id), version});
    if (it == streams_.end()) {
      return NotFound(absl::StrCat("stream ", stream_id, " version ", version));
    }
    return it->second;
  }

  absl::StatusOr<uint64_t> StreamLength(absl::string_view stream_id) const override {
    absl::MutexLock lock(&mu_);
    auto it = streams_.upper_bound({std::string(stream_id), UINT64_MAX});
    if (it == streams_.begin()) return 0;
    --it;
    if (it->first.first != stream_id) return 0;
    return it->first.second + 1;
  }

  absl::Status ScanStream(absl::string_view stream_id, uint64_t from_version,
                          const std::function<bool(uint64_t, uint64_t)>& fn) const override {
    std::vector<std::pair<uint64_t, uint64_t>> found;
    {
      absl::MutexLock lock(&mu_);
      for (auto it = streams_.lower_bound({std::string(stream_id), from_version});
           it != streams_.end() && it->first.first == stream_id; ++it) {
        found.emplace_back(it->first.second, it->second);
      }
    }
    for (const auto& [version, seq] : found) {
      if (!fn(version, seq)) break;
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::optional<StoredCheckpoint>> LatestCheckpoint() const override {
    absl::MutexLock lock(&mu_);
    if (checkpoints_.empty()) return std::optional<StoredCheckpoint>();
    const auto& [size, note] = *checkpoints_.rbegin();
    return std::optional<StoredCheckpoint>(StoredCheckpoint{size, note});
  }

  absl::StatusOr<StoredCheckpoint> CheckpointAt(uint64_t size) const override {
    absl::MutexLock lock(&mu_);
    auto it = checkpoints_.find(size);
    if (it == checkpoints_.end()) return NotFound(absl::StrCat("checkpoint at size ", size));
    return StoredCheckpoint{size, it->second};
  }

  absl::StatusOr<std::vector<StoredCheckpoint>> Checkpoints() const override {
    return CheckpointsIn(0, UINT64_MAX);
  }

  absl::StatusOr<std::vector<StoredCheckpoint>> CheckpointsIn(uint64_t min_size,
                                                              uint64_t max_size) const override {
    absl::MutexLock lock(&mu_);
    std::vector<StoredCheckpoint> out;
    for (auto it = checkpoints_.lower_bound(min_size);
         it != checkpoints_.end() && it->first <= max_size; ++it) {
      out.push_back({it->first, it->second});
    }
    return out;
  }

  absl::Status ScanRecords(uint64_t from,
                           const std::function<bool(const ScannedRecord&)>& fn) const override {
    struct Copy {
      uint64_t seq;
      std::string leaf;
      std::optional<std::string> payload;
      std::optional<std::string> leaf_node;
    };
    std::vector<Copy> copies;
    {
      absl::MutexLock lock(&mu_);
      for (auto it = records_.lower_bound(from); it != records_.end(); ++it) {
        Copy c{it->first, it->second, std::nullopt, std::nullopt};
        if (auto p = payloads_.find(it->first); p != payloads_.end()) c.payload = p->second;
        if (auto n = nodes_.find({0, it->first}); n != nodes_.end()) {
          c.leaf_node = std::string(AsBytes(n->second));
        }
        copies.push_back(std::move(c));
      }
    }
    for (const Copy& c : copies) {
      ScannedRecord r{c.seq, c.leaf, std::nullopt, std::nullopt};
      if (c.payload.has_value()) r.payload = absl::string_view(*c.payload);
      if (c.leaf_node.has_value()) r.leaf_node = absl::string_view(*c.leaf_node);
      if (!fn(r)) break;
    }
    return absl::OkStatus();
  }

  // NodeStore ---------------------------------------------------------------

  absl::StatusOr<Hash> GetNode(uint32_t level, uint64_t index) const override {
    absl::MutexLock lock(&mu_);
    auto it = nodes_.find({level, index});
    if (it == nodes_.end()) return NotFound(absl::StrCat("merkle node (", level, ", ", index, ")"));
    return it->second;
  }

  absl::Status ScanNodes(
      uint32_t level, uint64_t from,
      const std::function<bool(uint64_t, absl::string_view)>& fn) const override {
    std::vector<std::pair<uint64_t, Hash>> found;
    {
      absl::MutexLock lock(&mu_);
      for (auto it = nodes_.lower_bound({level, from});
           it != nodes_.end() && it->first.first == level; ++it) {
        found.emplace_back(it->first.second, it->second);
      }
    }
    for (const auto& [index, hash] : found) {
      if (!fn(index, AsBytes(hash))) break;
    }
    return absl::OkStatus();
  }

  // SubjectIndexStore -------------------------------------------------------

  absl::StatusOr<SubjectState> GetSubjectHead(const Hash& key) const override {
    absl::MutexLock lock(&mu_);
    auto it = subjects_.find(key);
    if (it == subjects_.end() || it->second.empty()) return SubjectState{};
    const auto& [index, last] = *it->second.rbegin();
    return SubjectState{index + 1, last.head};
  }

  absl::StatusOr<SubjectEntryValue> GetSubjectEntry(const Hash& key,
                                                    uint64_t index) const override {
    absl::MutexLock lock(&mu_);
    auto it = subjects_.find(key);
    if (it != subjects_.end()) {
      if (auto e = it->second.find(index); e != it->second.end()) return e->second;
    }
    return NotFound(absl::StrCat("subject index entry ", index, " of ", ShortHex(key)));
  }

  absl::Status ScanSubject(const Hash& key, uint64_t from_index,
                           const std::function<bool(uint64_t, uint64_t)>& fn) const override {
    std::vector<std::pair<uint64_t, uint64_t>> found;
    {
      absl::MutexLock lock(&mu_);
      if (auto it = subjects_.find(key); it != subjects_.end()) {
        for (auto e = it->second.lower_bound(from_index); e != it->second.end(); ++e) {
          found.emplace_back(e->first, e->second.seq);
        }
      }
    }
    for (const auto& [index, seq] : found) {
      if (!fn(index, seq)) break;
    }
    return absl::OkStatus();
  }

  absl::Status ScanSubjectMap(
      const std::function<void(const Hash&, const SubjectState&)>& fn) const override {
    std::map<Hash, SubjectState> copy;
    {
      absl::MutexLock lock(&mu_);
      copy = subject_map_;
    }
    for (const auto& [key, state] : copy) fn(key, state);
    return absl::OkStatus();
  }

  absl::StatusOr<uint32_t> SubjectMapLayout() const override {
    absl::MutexLock lock(&mu_);
    return subject_map_layout_;
  }

  absl::StatusOr<std::optional<std::string>> GetSubjectMapNode(
      absl::string_view path) const override {
    absl::MutexLock lock(&mu_);
    auto it = subject_map_nodes_.find(std::string(path));
    if (it == subject_map_nodes_.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  }

  absl::Status PutSubjectMapNodes(const std::vector<std::pair<std::string, std::string>>& nodes,
                                  bool finish) override {
    absl::MutexLock lock(&mu_);
    for (const auto& [path, node] : nodes) subject_map_nodes_[path] = node;
    if (finish) {
      subject_map_layout_ = 2;
      subject_map_.clear();
    }
    return absl::OkStatus();
  }

  // CosignatureStore --------------------------------------------------------

  absl::Status PutCosignature(uint64_t size, absl::string_view witness,
                              absl::string_view line) override {
    absl::MutexLock lock(&mu_);
    cosignatures_[size][std::string(witness)] = std::string(line);
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<std::string>> Cosignatures(uint64_t size) const override {
    absl::MutexLock lock(&mu_);
    std::vector<std::string> out;
    if (auto it = cosignatures_.find(size); it != cosignatures_.end()) {
      for (const auto& [witness, line] : it->second) out.push_back(line);
    }
    return out;
  }

  absl::StatusOr<std::optional<uint64_t>> LatestCosignedSize() const override {
    absl::MutexLock lock(&mu_);
    if (cosignatures_.empty()) return std::optional<uint64_t>();
    return std::optional<uint64_t>(cosignatures_.rbegin()->first);
  }

  // KeyTable ----------------------------------------------------------------

  KeyTable* keys() override { return has_keys_ ? this : nullptr; }

  absl::StatusOr<std::optional<std::string>> GetKey(absl::string_view key) const override {
    absl::MutexLock lock(&mu_);
    auto it = keys_.find(std::string(key));
    if (it == keys_.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  }

  absl::Status ScanKeys(
      absl::string_view prefix,
      const std::function<bool(absl::string_view, absl::string_view)>& fn) const override {
    std::vector<std::pair<std::string, std::string>> found;
    {
      absl::MutexLock lock(&mu_);
      for (auto it = keys_.lower_bound(std::string(prefix));
           it != keys_.end() && absl::string_view(it->first).substr(0, prefix.size()) == prefix;
           ++it) {
        found.emplace_back(it->first, it->second);
      }
    }
    for (const auto& [key, value] : found) {
      if (!fn(key, value)) break;
    }
    return absl::OkStatus();
  }

  absl::Status WriteKeys(const std::vector<KeyWrite>& writes, bool /*purge*/) override {
    absl::MutexLock keys_lock(&key_write_mu_);
    absl::MutexLock lock(&mu_);
    ApplyKeyWrites(writes);
    return absl::OkStatus();
  }

  absl::Status UpdateKeys(
      const std::function<absl::StatusOr<std::vector<KeyWrite>>()>& plan) override {
    absl::MutexLock keys_lock(&key_write_mu_);
    absl::StatusOr<std::vector<KeyWrite>> writes = plan();
    if (!writes.ok()) return writes.status();
    absl::MutexLock lock(&mu_);
    ApplyKeyWrites(*writes);
    return absl::OkStatus();
  }

  // Nothing outlives a delete in memory.
  absl::Status Purge() override { return absl::OkStatus(); }

 private:
  void ApplyKeyWrites(const std::vector<KeyWrite>& writes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (const KeyWrite& w : writes) {
      if (w.value.has_value()) {
        keys_[w.key] = *w.value;
      } else {
        keys_.erase(w.key);
      }
    }
  }

  const bool has_keys_;
  // Held by key writes from before an UpdateKeys plan reads until its writes
  // land (KeyTable::UpdateKeys). Taken before mu_.
  absl::Mutex key_write_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  mutable absl::Mutex mu_;
  uint64_t size_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<uint64_t, std::string> records_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, std::string> payloads_ ABSL_GUARDED_BY(mu_);
  std::map<std::pair<std::string, uint64_t>, uint64_t> streams_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, uint64_t> event_ids_ ABSL_GUARDED_BY(mu_);
  std::map<std::pair<uint32_t, uint64_t>, Hash> nodes_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, std::string> checkpoints_ ABSL_GUARDED_BY(mu_);
  std::map<Hash, std::map<uint64_t, SubjectEntryValue>> subjects_ ABSL_GUARDED_BY(mu_);
  std::map<Hash, SubjectState> subject_map_ ABSL_GUARDED_BY(mu_);  // layout 1 (tests only)
  uint32_t subject_map_layout_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<std::string, std::string> subject_map_nodes_ ABSL_GUARDED_BY(mu_);
  // size -> witness -> line.
  std::map<uint64_t, std::map<std::string, std::string>> cosignatures_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> keys_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

std::unique_ptr<LogStore> NewMemoryStore(const MemoryStoreOptions& options) {
  return std::make_unique<MemoryStore>(options);
}

}  // namespace caseledger
