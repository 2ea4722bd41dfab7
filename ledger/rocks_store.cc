#include "ledger/rocks_store.h"

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <deque>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "ledger/internal/bytes.h"
#include "ledger/internal/status_macros.h"

namespace caseledger {
namespace {

using internal::DecodeU64;
using internal::U64Key;

// Column family indexes; the order of kFamilies.
// New families go at the end.
enum Family {
  kDefault,
  kRecords,
  kPayloads,
  kStreams,
  kNodes,
  kEventIds,
  kCheckpoints,
  kMeta,
  kCosignatures,
  kSubjects,
  kKeys,      // wrapped data keys (ledger/ENCRYPTION.md)
  kIndexLog,  // index entries not yet in event_ids and streams (STORE.md)
  kSubjectLog,  // subject-index entries not yet in subjects (STORE.md)
};
constexpr const char* kFamilies[] = {
    "default", "records",      "payloads", "streams", "nodes",     "event_ids",
    "checkpoints", "meta",     "cosignatures", "subjects", "keys", "index_log",
    "subject_log",
};
constexpr int kFamilyCount = sizeof(kFamilies) / sizeof(kFamilies[0]);
constexpr const char kSizeKey[] = "tree_size";
// The tree size up to which event_ids, streams and subjects hold every
// record's entries (STORE.md "Deferred indexes"); absent means all of them
// (older layouts).
constexpr const char kIndexedKey[] = "indexed_size";
// The tree size up to which the nodes family holds every Merkle node (STORE.md
// "Deferred Merkle nodes"): the nodes of later records are in the tail, and
// an open after kill -9 recomputes them from the records. Written with
// indexed_size by the tail writer; absent only in a directory that predates
// it, whose nodes were all synced with their records (the first read-write
// open then sets it to the tree size).
constexpr const char kNodesKey[] = "nodes_size";

absl::Status FromRocks(const rocksdb::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  std::string msg = absl::StrCat(what, ": ", s.ToString());
  if (s.IsNotFound()) return absl::NotFoundError(msg);
  if (s.IsCorruption()) return absl::DataLossError(msg);
  if (s.IsIOError() && s.ToString().find("lock") != std::string::npos) {
    return absl::FailedPreconditionError(msg);
  }
  if (s.IsInvalidArgument()) return absl::FailedPreconditionError(msg);
  return absl::InternalError(msg);
}

// Debian's abseil has its own string_view type, distinct from std::string_view.
rocksdb::Slice ToSlice(absl::string_view s) { return rocksdb::Slice(s.data(), s.size()); }
absl::string_view View(const rocksdb::Slice& s) { return absl::string_view(s.data(), s.size()); }

std::string StreamKey(absl::string_view stream_id, uint64_t version) {
  std::string key(stream_id);
  key.push_back('\0');  // ids hold no control bytes, so this ends the id
  key += U64Key(version);
  return key;
}

// u64 checkpoint size || witness key id: a checkpoint's lines sit together.
std::string CosignatureKey(uint64_t size, absl::string_view witness) {
  std::string key = U64Key(size);
  key.append(witness.data(), witness.size());
  return key;
}

// Subject index keys (SUBJECT_INDEX.md "Storage"): a one-byte tag and the
// subject key, then for 'e' the u64 index.
constexpr char kSubjectEntryTag = 'e';
constexpr char kSubjectMapTag = 'm';         // layout 1: the map's leaves
constexpr char kSubjectMapNodeTag = 'n';     // layout 2: the map's nodes
constexpr char kSubjectMapLayoutKey[] = "v";  // layout 2: u8 2; absent = layout 1

std::string SubjectKeyOf(char tag, const Hash& key) {
  std::string k(1, tag);
  k.append(AsBytes(key).data(), kHashSize);
  return k;
}

std::string SubjectStateValue(const SubjectState& s) {
  std::string v = U64Key(s.count);
  v.append(AsBytes(s.head).data(), kHashSize);
  return v;
}

absl::StatusOr<SubjectState> DecodeSubjectState(absl::string_view v, absl::string_view what) {
  if (v.size() != 8 + kHashSize) {
    return absl::DataLossError(
        absl::StrCat(what, ": got ", v.size(), " bytes, want ", 8 + kHashSize));
  }
  SubjectState s;
  s.count = DecodeU64(v.substr(0, 8));
  std::copy(v.begin() + 8, v.end(), s.head.begin());
  return s;
}

std::string NodeKey(uint32_t level, uint64_t index) {
  std::string key(1, static_cast<char>(level));
  key += U64Key(index);
  return key;
}

// One group's index_log value (STORE.md "Deferred indexes"), per record:
//   u32 len || stream_id || 0x00 || u64 version || u64 seq || u32 len || event_id
// so that stream_id || 0x00 || u64 version is the record's streams key and
// u64 seq its value, both readable in place.
void AppendIndexEntry(const CommitBatch::StoredRecord& r, std::string* out) {
  internal::ByteWriter w(out);
  w.U32(static_cast<uint32_t>(r.stream_id.size()));
  w.Raw(r.stream_id);
  w.U8(0);
  w.U64(r.version);
  w.U64(r.seq);
  w.Str32(r.event_id);
}

// One record's entry in an index_log value, as views into it.
struct IndexEntry {
  absl::string_view stream_id;
  absl::string_view stream_key;  // the streams key: stream_id || 0x00 || u64 version
  uint64_t version = 0;
  absl::string_view seq;  // u64, the value of both index entries
  absl::string_view event_id;
};

// Calls fn for each entry of an index_log value; DATA_LOSS naming the value's
// key `at` and the offset when it does not parse (then fn may have seen a
// prefix).
template <typename Fn>
absl::Status ForEachIndexEntry(absl::string_view blob, uint64_t at, Fn fn) {
  auto u32 = [&blob](size_t pos) {
    uint32_t v = 0;
    for (size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(blob[pos + i]);
    return v;
  };
  size_t pos = 0;
  while (pos < blob.size()) {
    // u32 len || stream_id || 0x00 || u64 version || u64 seq || u32 len || event_id
    const size_t left = blob.size() - pos;
    if (left < 4 || left - 4 < size_t{u32(pos)} + 21 || blob[pos + 4 + u32(pos)] != '\0') break;
    IndexEntry e;
    const size_t stream_len = u32(pos);
    e.stream_id = blob.substr(pos + 4, stream_len);
    e.stream_key = blob.substr(pos + 4, stream_len + 9);
    e.version = DecodeU64(blob.substr(pos + 4 + stream_len + 1, 8));
    e.seq = blob.substr(pos + 4 + stream_len + 9, 8);
    const size_t id_at = pos + 4 + stream_len + 17;
    const size_t id_len = u32(id_at);
    if (blob.size() - id_at - 4 < id_len) break;
    e.event_id = blob.substr(id_at + 4, id_len);
    fn(e);
    pos = id_at + 4 + id_len;
  }
  if (pos == blob.size()) return absl::OkStatus();
  return absl::DataLossError(
      absl::StrCat("index_log entry ", at, ": malformed at offset ", pos, " of ", blob.size()));
}

// One subject-index entry in a subject_log value (STORE.md "Deferred
// indexes"): key(S) || u64 index || u64 seq || head, so that its first 40
// bytes follow the 'e' tag in its subjects key and the last 40 are its value.
constexpr size_t kSubjectLogEntry = kHashSize + 8 + 8 + kHashSize;
constexpr size_t kSubjectLogKeyPart = kHashSize + 8;

void AppendSubjectLogEntry(const CommitBatch::SubjectEntry& e, std::string* out) {
  internal::ByteWriter w(out);
  w.Raw(AsBytes(e.key));
  w.U64(e.index);
  w.U64(e.seq);
  w.Raw(AsBytes(e.head));
}

// The index entries of records committed but not yet written to event_ids,
// streams and subjects: views into the index_log and subject_log values it
// keeps.
struct IndexTail {
  std::deque<std::string> blobs;  // index_log values; a deque never moves them
  std::vector<uint64_t> keys;     // and their keys
  // event id -> u64 seq bytes.
  absl::flat_hash_map<absl::string_view, absl::string_view> event_ids;
  // Positions in the refs below are u32; kNoEntry is none.
  static constexpr uint32_t kNoEntry = UINT32_MAX;
  // Every stream entry of the tail, in seq order: its streams key, its u64
  // seq bytes, and the position here of the same stream's previous entry in
  // this tail. A chain per stream instead of a map over every entry: an
  // entry costs an append and an update of its stream's (few, hot) slot.
  struct StreamRef {
    absl::string_view stream_key;  // stream_id || 0x00 || u64 version
    absl::string_view seq;
    uint32_t prev;
  };
  std::vector<StreamRef> stream_refs;
  // stream id -> its next version and the position of its last entry.
  struct StreamSpan {
    uint64_t next;
    uint32_t last;
  };
  absl::flat_hash_map<absl::string_view, StreamSpan> streams;
  uint64_t events = 0;
  uint64_t end_size = 0;  // one past its last seq

  // A chain (of stream or subject refs) walked back from its last entry:
  // the numbers (versions, indexes) decrease along it.
  // The position of the entry numbered `n`, or kNoEntry.
  template <typename Ref, typename Number>
  static uint32_t ChainFind(const std::vector<Ref>& refs, uint32_t last, uint64_t n,
                            Number number) {
    for (uint32_t pos = last; pos != kNoEntry; pos = refs[pos].prev) {
      const uint64_t at = number(refs[pos]);
      if (at == n) return pos;
      if (at < n) break;
    }
    return kNoEntry;
  }
  // Appends the (number, seq) pairs of the entries numbered `from` on, in
  // increasing order.
  template <typename Ref, typename Number, typename Seq>
  static void ChainFrom(const std::vector<Ref>& refs, uint32_t last, uint64_t from, Number number,
                        Seq seq, std::vector<std::pair<uint64_t, uint64_t>>* out) {
    const size_t first = out->size();
    for (uint32_t pos = last; pos != kNoEntry; pos = refs[pos].prev) {
      const uint64_t at = number(refs[pos]);
      if (at < from) break;
      out->emplace_back(at, seq(refs[pos]));
    }
    std::reverse(out->begin() + first, out->end());
  }

  static uint64_t RefVersion(const StreamRef& r) {
    return DecodeU64(r.stream_key.substr(r.stream_key.size() - 8));
  }
  static uint64_t RefSeq(const StreamRef& r) { return DecodeU64(r.seq); }
  // The stream's entries in this tail with version >= from, as (version,
  // seq) in version order, appended to `out`.
  void StreamEntriesFrom(absl::string_view stream_id, uint64_t from,
                         std::vector<std::pair<uint64_t, uint64_t>>* out) const {
    auto it = streams.find(stream_id);
    if (it != streams.end()) ChainFrom(stream_refs, it->second.last, from, RefVersion, RefSeq, out);
  }
  // The seq of (stream, version) in this tail, or nullopt.
  std::optional<uint64_t> FindStreamVersion(absl::string_view stream_id, uint64_t version) const {
    auto it = streams.find(stream_id);
    if (it == streams.end()) return std::nullopt;
    const uint32_t pos = ChainFind(stream_refs, it->second.last, version, RefVersion);
    if (pos == kNoEntry) return std::nullopt;
    return RefSeq(stream_refs[pos]);
  }

  // subject_log values and their keys; each a run of kSubjectLogEntry-byte
  // entries.
  std::deque<std::string> subject_blobs;
  std::vector<uint64_t> subject_keys;
  // Every subject entry of the tail, in seq order; `prev` is the position
  // here of the same subject's previous entry in this tail (kNoEntry: none).
  struct SubjectRef {
    const char* entry;
    uint32_t prev;
  };
  std::vector<SubjectRef> subject_refs;
  // key(S) (a view into an entry) -> the position of its last entry in
  // subject_refs. A subject's entries in one tail have consecutive indexes.
  absl::flat_hash_map<absl::string_view, uint32_t> subjects;

  static uint64_t EntryIndex(const char* entry) {
    return DecodeU64(absl::string_view(entry + kHashSize, 8));
  }
  static uint64_t EntrySeq(const char* entry) {
    return DecodeU64(absl::string_view(entry + kHashSize + 8, 8));
  }
  static uint64_t RefIndex(const SubjectRef& r) { return EntryIndex(r.entry); }
  static uint64_t RefEntrySeq(const SubjectRef& r) { return EntrySeq(r.entry); }
  static Hash EntryHead(const char* entry) {
    Hash h;
    std::copy_n(entry + kHashSize + 16, kHashSize, h.begin());
    return h;
  }

  // The Merkle nodes of the tail's records (every node whose last leaf is
  // one of them), per level: the index of the first and the hashes of
  // consecutive ones. MerkleTree::Append completes the nodes of each level in
  // index order, so a level's nodes in a tail are one run.
  struct NodeRun {
    uint64_t first = 0;
    std::vector<Hash> hashes;
  };
  std::vector<NodeRun> node_runs;  // by level
  uint64_t node_count = 0;

  // Adds nodes that continue their levels' runs; INTERNAL naming the first
  // that does not (then the nodes before it are added).
  absl::Status AddNodes(absl::Span<const NodeWrite> nodes) {
    for (const NodeWrite& n : nodes) {
      if (n.level >= node_runs.size()) node_runs.resize(n.level + 1);
      NodeRun& run = node_runs[n.level];
      if (run.hashes.empty()) {
        run.first = n.index;
      } else if (n.index != run.first + run.hashes.size()) {
        return absl::InternalError(absl::StrCat("merkle node (", n.level, ", ", n.index,
                                                ") does not follow the tail's (", n.level, ", ",
                                                run.first + run.hashes.size() - 1, ")"));
      }
      run.hashes.push_back(n.hash);
      ++node_count;
    }
    return absl::OkStatus();
  }

  // Node (level, index) of this tail, or null.
  const Hash* FindNode(uint32_t level, uint64_t index) const {
    if (level >= node_runs.size()) return nullptr;
    const NodeRun& run = node_runs[level];
    if (index < run.first || index - run.first >= run.hashes.size()) return nullptr;
    return &run.hashes[index - run.first];
  }

  explicit IndexTail(size_t expected_events) {
    event_ids.reserve(expected_events);
    stream_refs.reserve(expected_events);
  }

  // Takes the index_log value stored under `at`. Unless `trusted` (Commit
  // built it) it is checked whole first: on DATA_LOSS the tail is unchanged.
  absl::Status Add(uint64_t at, std::string blob, bool trusted) {
    if (!trusted) CL_RETURN_IF_ERROR(ForEachIndexEntry(blob, at, [](const IndexEntry&) {}));
    // An entry takes at least 25 bytes (two u32 lengths, 0x00, two u64s).
    if (stream_refs.size() + blob.size() / 25 >= kNoEntry) {
      return absl::DataLossError(
          absl::StrCat("index_log entry ", at, ": more entries than a tail holds"));
    }
    const std::string& b = blobs.emplace_back(std::move(blob));
    keys.push_back(at);
    return ForEachIndexEntry(b, at, [this](const IndexEntry& e) {
      event_ids[e.event_id] = e.seq;
      const uint32_t pos = static_cast<uint32_t>(stream_refs.size());
      auto [it, inserted] = streams.try_emplace(e.stream_id, StreamSpan{e.version + 1, pos});
      stream_refs.push_back({e.stream_key, e.seq, inserted ? kNoEntry : it->second.last});
      if (!inserted) {
        it->second.last = pos;
        it->second.next = std::max(it->second.next, e.version + 1);
      }
      ++events;
      end_size = std::max(end_size, DecodeU64(e.seq) + 1);
    });
  }

  // Takes the subject_log value stored under `at`. Unless `trusted` (Commit
  // built it) it is checked whole first: a length that is not a whole number
  // of entries, or an entry whose index does not follow its subject's
  // previous one in the tail, is DATA_LOSS and leaves the tail unchanged.
  absl::Status AddSubjects(uint64_t at, std::string blob, bool trusted) {
    auto bad = [at](absl::string_view why) {
      return absl::DataLossError(absl::StrCat("subject_log entry ", at, ": ", why));
    };
    if (blob.size() % kSubjectLogEntry != 0) {
      return bad(absl::StrCat(blob.size(), " bytes, want a multiple of ", kSubjectLogEntry));
    }
    const size_t n = blob.size() / kSubjectLogEntry;
    if (subject_refs.size() + n >= kNoEntry) return bad("more subject entries than a tail holds");
    if (!trusted) {
      absl::flat_hash_map<absl::string_view, uint64_t> next;  // within this value
      for (size_t i = 0; i < n; ++i) {
        const char* e = blob.data() + i * kSubjectLogEntry;
        const absl::string_view key(e, kHashSize);
        auto [it, inserted] = next.try_emplace(key, 0);
        if (inserted) {
          auto span = subjects.find(key);
          it->second = span == subjects.end() ? EntryIndex(e)
                                              : EntryIndex(subject_refs[span->second].entry) + 1;
        }
        if (EntryIndex(e) != it->second) {
          Hash h;
          std::copy_n(e, kHashSize, h.begin());
          return bad(absl::StrCat("subject ", ShortHex(h), " entry ", i, " has index ",
                                  EntryIndex(e), ", want ", it->second));
        }
        ++it->second;
      }
    }
    const std::string& b = subject_blobs.emplace_back(std::move(blob));
    subject_keys.push_back(at);
    for (size_t i = 0; i < n; ++i) {
      const char* e = b.data() + i * kSubjectLogEntry;
      const uint32_t pos = static_cast<uint32_t>(subject_refs.size());
      auto [it, inserted] = subjects.try_emplace(absl::string_view(e, kHashSize), pos);
      subject_refs.push_back({e, inserted ? kNoEntry : it->second});
      it->second = pos;
    }
    return absl::OkStatus();
  }

  // The subject's entry `index` in this tail, or null.
  const char* SubjectEntry(absl::string_view key, uint64_t index) const {
    auto it = subjects.find(key);
    if (it == subjects.end()) return nullptr;
    const uint32_t pos = ChainFind(subject_refs, it->second, index, RefIndex);
    return pos == kNoEntry ? nullptr : subject_refs[pos].entry;
  }

  // Appends the subject's (index, seq) pairs in this tail with index >=
  // from, in index order.
  void SubjectEntriesFrom(absl::string_view key, uint64_t from,
                          std::vector<std::pair<uint64_t, uint64_t>>* out) const {
    auto it = subjects.find(key);
    if (it != subjects.end()) ChainFrom(subject_refs, it->second, from, RefIndex, RefEntrySeq, out);
  }
};

// Adds `writes` to a batch for the key family; true when any is a delete.
bool AddKeyWrites(const std::vector<KeyWrite>& writes, rocksdb::ColumnFamilyHandle* keys,
                  rocksdb::WriteBatch* wb) {
  bool deletes = false;
  for (const KeyWrite& w : writes) {
    if (w.value.has_value()) {
      wb->Put(keys, ToSlice(w.key), ToSlice(*w.value));
    } else {
      wb->Delete(keys, ToSlice(w.key));
      deletes = true;
    }
  }
  return deletes;
}

class RocksStore : public LogStore, public KeyTable {
 public:
  RocksStore(std::unique_ptr<rocksdb::DB> db, std::vector<rocksdb::ColumnFamilyHandle*> handles,
             bool has_keys, bool read_only, size_t tail_events, bool bulk_load)
      : db_(std::move(db)),
        handles_(std::move(handles)),
        has_keys_(has_keys),
        read_only_(read_only),
        bulk_load_(bulk_load),
        tail_events_(std::max<size_t>(tail_events, 1)),
        active_(std::make_unique<IndexTail>(tail_events_)) {}

  // Reads back the index entries that the index families lack (index_log from
  // the watermark on) into the in-memory tail, then starts the background
  // index writer (not for a read-only store, which only reads the tail).
  absl::Status LoadIndexTail() {
    if (cf(kIndexLog) == nullptr) return absl::OkStatus();  // older layout, read-only
    uint64_t from = 0;
    std::string v;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf(kMeta), kIndexedKey, &v);
    if (s.ok()) {
      if (v.size() != 8) return absl::DataLossError("meta indexed_size: not 8 bytes");
      from = DecodeU64(v);
    } else if (!s.IsNotFound()) {
      return FromRocks(s, "read indexed_size");
    }
    rocksdb::ReadOptions ro;
    ro.fill_cache = false;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf(kIndexLog)));
    {
      absl::MutexLock lock(&tail_mu_);
      for (it->Seek(U64Key(from)); it->Valid(); it->Next()) {
        if (it->key().size() != 8) {
          return absl::DataLossError(
              absl::StrCat("index_log: key of ", it->key().size(), " bytes, want 8"));
        }
        CL_RETURN_IF_ERROR(
            active_->Add(DecodeU64(View(it->key())), it->value().ToString(), /*trusted=*/false));
      }
    }
    CL_RETURN_IF_ERROR(FromRocks(it->status(), "read index_log"));
    if (cf(kSubjectLog) != nullptr) {  // absent: an older layout opened read-only
      std::unique_ptr<rocksdb::Iterator> sit(db_->NewIterator(ro, cf(kSubjectLog)));
      absl::MutexLock lock(&tail_mu_);
      for (sit->Seek(U64Key(from)); sit->Valid(); sit->Next()) {
        if (sit->key().size() != 8) {
          return absl::DataLossError(
              absl::StrCat("subject_log: key of ", sit->key().size(), " bytes, want 8"));
        }
        CL_RETURN_IF_ERROR(active_->AddSubjects(DecodeU64(View(sit->key())),
                                                sit->value().ToString(), /*trusted=*/false));
      }
      CL_RETURN_IF_ERROR(FromRocks(sit->status(), "read subject_log"));
    }
    CL_RETURN_IF_ERROR(LoadNodeTail());
    if (!read_only_) indexer_ = std::thread([this] { IndexerLoop(); });
    return absl::OkStatus();
  }

  // Recomputes into the tail the Merkle nodes that the nodes family lacks:
  // those of the records from meta/nodes_size to the tree size, from their
  // leaves and the stored frontier at the watermark (STORE.md "Deferred
  // Merkle nodes"). Absent, every node is stored (an older directory), and a
  // read-write open records that with a synced nodes_size before any commit
  // leaves nodes out of its write.
  absl::Status LoadNodeTail() {
    CL_ASSIGN_OR_RETURN(const uint64_t size, Size());
    std::string v;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf(kMeta), kNodesKey, &v);
    if (s.IsNotFound()) {
      if (read_only_) return absl::OkStatus();
      rocksdb::WriteOptions wo;
      wo.sync = true;
      return FromRocks(db_->Put(wo, cf(kMeta), kNodesKey, U64Key(size)), "write nodes_size");
    }
    CL_RETURN_IF_ERROR(FromRocks(s, "read nodes_size"));
    if (v.size() != 8) {
      return absl::DataLossError(
          absl::StrCat("meta nodes_size: got ", v.size(), " bytes, want 8"));
    }
    const uint64_t from = DecodeU64(v);
    if (from > size) {
      // Every node below the tree size is stored. A read-only open (a
      // verifier's) goes on, to report what else disagrees with the size.
      if (read_only_) return absl::OkStatus();
      return absl::DataLossError(absl::StrCat("meta nodes_size: got ", from,
                                              ", want at most the tree size ", size));
    }
    if (from == size) return absl::OkStatus();
    absl::StatusOr<MerkleTree> tree = MerkleTree::Load(from, *this);
    if (!tree.ok()) {
      return absl::DataLossError(absl::StrCat("meta nodes_size ", from,
                                              ": the stored nodes at that size: ",
                                              tree.status().message()));
    }
    rocksdb::ReadOptions ro;
    ro.fill_cache = false;
    ro.readahead_size = 2 << 20;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf(kRecords)));
    // At most two tails of records: their nodes, about two per record, go
    // into the tail in chunks.
    std::vector<NodeWrite> nodes;
    constexpr size_t kChunkNodes = 8192;
    nodes.reserve(kChunkNodes + 64);
    auto add = [this, &nodes]() {
      absl::MutexLock lock(&tail_mu_);
      absl::Status s = active_->AddNodes(nodes);
      nodes.clear();
      return s;
    };
    uint64_t next = from;
    for (it->Seek(U64Key(from)); it->Valid() && next < size; it->Next(), ++next) {
      if (it->key().size() != 8 || DecodeU64(View(it->key())) != next) break;
      tree->Append(LeafHash(View(it->value())), &nodes);
      if (nodes.size() >= kChunkNodes) CL_RETURN_IF_ERROR(add());
    }
    CL_RETURN_IF_ERROR(FromRocks(it->status(), "read records past nodes_size"));
    CL_RETURN_IF_ERROR(add());
    if (next != size) {
      return absl::DataLossError(absl::StrCat("record ", next, ": absent, but the tree size is ",
                                              size, " (recomputing the Merkle nodes from ", from,
                                              ")"));
    }
    return absl::OkStatus();
  }

  ~RocksStore() override {
    // The background writer finishes the tail it holds; the active one is
    // written here, so that a clean stop leaves index_log empty.
    if (indexer_.joinable()) {
      {
        absl::MutexLock lock(&tail_mu_);
        stopping_ = true;
      }
      indexer_.join();
      absl::MutexLock lock(&tail_mu_);
      if (index_error_.ok() && (active_->events > 0 || active_->node_count > 0)) {
        WriteTail(*active_).IgnoreError();
      }
    }
    // Closing does not flush memtables while the WAL holds their writes; a
    // flush here leaves the next open nothing to replay. A failure only
    // leaves the replay. Not for a read-only store: RocksDB 7.8's multi-family
    // Flush with atomic_flush waits forever there instead of refusing.
    if (!read_only_) {
      rocksdb::FlushOptions fo;
      fo.allow_write_stall = true;
      std::vector<rocksdb::ColumnFamilyHandle*> open;
      for (auto* h : handles_) {
        if (h != nullptr) open.push_back(h);
      }
      db_->Flush(fo, open).PermitUncheckedError();
    }
    for (auto* h : handles_) {
      if (h != nullptr) db_->DestroyColumnFamilyHandle(h);
    }
    db_->Close();
  }

  absl::Status Commit(const CommitBatch& batch) override {
    {
      absl::MutexLock lock(&tail_mu_);
      if (!index_error_.ok()) return index_error_;
    }
    // Reused from commit to commit (one caller at a time): no per-event
    // allocation for keys, and the batch keeps its capacity.
    rocksdb::WriteBatch& wb = commit_wb_;
    wb.Clear();
    std::string& index_log = index_log_value_;
    index_log.clear();
    char seq[8];
    for (const auto& r : batch.records) {
      PutU64(r.seq, seq);
      wb.Put(cf(kRecords), rocksdb::Slice(seq, 8), r.leaf);
      wb.Put(cf(kPayloads), rocksdb::Slice(seq, 8), r.payload);
      AppendIndexEntry(r, &index_log);
    }
    // The group's event-id and stream entries: one key in key order, instead
    // of two in random order per event (STORE.md "Deferred indexes").
    if (!batch.records.empty()) {
      PutU64(batch.records.front().seq, seq);
      wb.Put(cf(kIndexLog), rocksdb::Slice(seq, 8), index_log);
    }
    // The Merkle nodes are not in the synced write: they go to the tail with
    // the index entries, and an open after a crash recomputes them from the
    // records (STORE.md "Deferred Merkle nodes").
    if (!batch.nodes.empty() && batch.records.empty()) {
      return absl::InternalError("commit: Merkle nodes without records");
    }
    for (const auto& [size, note] : batch.checkpoints) {
      wb.Put(cf(kCheckpoints), U64Key(size), note);
    }
    // The group's subject-index entries: one subject_log key in key order,
    // instead of one key in random order per (record, subject) (STORE.md
    // "Deferred indexes"). A batch without records carries none.
    std::string& subject_log = subject_log_value_;
    subject_log.clear();
    if (!batch.subject_entries.empty()) {
      if (batch.records.empty()) {
        return absl::InternalError("commit: subject entries without records");
      }
      subject_log.reserve(batch.subject_entries.size() * kSubjectLogEntry);
      for (const CommitBatch::SubjectEntry& e : batch.subject_entries) {
        AppendSubjectLogEntry(e, &subject_log);
      }
      PutU64(batch.records.front().seq, seq);
      wb.Put(cf(kSubjectLog), rocksdb::Slice(seq, 8), subject_log);
    }
    for (const auto& [path, node] : batch.subject_map_nodes) {
      wb.Put(cf(kSubjects), std::string(1, kSubjectMapNodeTag) + path, node);
    }
    PutU64(batch.new_size, seq);
    wb.Put(cf(kMeta), kSizeKey, rocksdb::Slice(seq, 8));
    bool purge = AddKeyWrites(batch.key_writes, cf(kKeys), &wb);
    rocksdb::WriteOptions wo;
    wo.sync = !bulk_load_;
    wo.disableWAL = bulk_load_;
    {
      // Key writes wait while an UpdateKeys is between its reads and its
      // writes; batches without them never do.
      std::optional<absl::MutexLock> keys_lock;
      if (!batch.key_writes.empty()) keys_lock.emplace(&key_write_mu_);
      CL_RETURN_IF_ERROR(FromRocks(db_->Write(wo, &wb), "commit"));
    }
    if (!batch.records.empty()) {
      CL_RETURN_IF_ERROR(AddToTail(batch.records.front().seq, batch.nodes));
    }
    if (purge) CL_RETURN_IF_ERROR(Purge());
    absl::MutexLock lock(&cache_mu_);
    for (const NodeWrite& n : batch.nodes) {
      if (n.level >= kCachedNodeLevel) upper_nodes_[NodeKey(n.level, n.index)] = n.hash;
    }
    return absl::OkStatus();
  }

  absl::StatusOr<uint64_t> Size() const override {
    std::string v;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf(kMeta), kSizeKey, &v);
    if (s.IsNotFound()) return 0;
    CL_RETURN_IF_ERROR(FromRocks(s, "read tree size"));
    if (v.size() != 8) return absl::DataLossError("meta tree_size: not 8 bytes");
    return DecodeU64(v);
  }

  absl::StatusOr<std::string> GetLeaf(uint64_t seq) const override {
    return Get(kRecords, U64Key(seq), absl::StrCat("record ", seq));
  }

  absl::StatusOr<std::string> GetPayload(uint64_t seq) const override {
    return Get(kPayloads, U64Key(seq), absl::StrCat("payload ", seq));
  }

  // One MultiGet over both families per chunk, in key order; the key
  // buffers and pinned values are reused from chunk to chunk.
  absl::Status GetRecords(absl::Span<const uint64_t> seqs, std::vector<std::string>* leaves,
                          std::vector<std::string>* payloads) const override {
    constexpr size_t kChunk = 256;
    leaves->resize(seqs.size());
    payloads->resize(seqs.size());
    std::vector<std::array<char, 8>> key_bytes(std::min(seqs.size(), kChunk));
    std::vector<rocksdb::Slice> keys(2 * key_bytes.size());
    std::vector<rocksdb::ColumnFamilyHandle*> families(keys.size());
    std::vector<rocksdb::PinnableSlice> values(keys.size());
    std::vector<rocksdb::Status> statuses(keys.size());
    rocksdb::ReadOptions ro;
    // A subject's records are spread over the log: caching their blocks
    // evicts hotter ones and costs more than it saves.
    ro.fill_cache = false;
    for (size_t base = 0; base < seqs.size(); base += kChunk) {
      const size_t n = std::min(kChunk, seqs.size() - base);
      for (size_t i = 0; i < n; ++i) {
        const uint64_t seq = seqs[base + i];
        for (int b = 0; b < 8; ++b) key_bytes[i][b] = static_cast<char>(seq >> (56 - 8 * b));
        keys[i] = keys[n + i] = rocksdb::Slice(key_bytes[i].data(), 8);
        families[i] = cf(kRecords);
        families[n + i] = cf(kPayloads);
      }
      // Sorted by family id (records before payloads), then key.
      db_->MultiGet(ro, 2 * n, families.data(), keys.data(), values.data(), statuses.data(),
                    /*sorted_input=*/true);
      for (size_t i = 0; i < 2 * n; ++i) {
        const uint64_t seq = seqs[base + i % n];
        if (!statuses[i].ok()) {
          return FromRocks(statuses[i], absl::StrCat(i < n ? "record " : "payload ", seq));
        }
        std::string& out = i < n ? (*leaves)[base + i] : (*payloads)[base + i - n];
        out.assign(values[i].data(), values[i].size());
        values[i].Reset();
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::optional<uint64_t>> FindEventId(absl::string_view event_id) const override {
    {
      absl::MutexLock lock(&tail_mu_);
      for (const IndexTail* t : {active_.get(), flushing_.get()}) {
        if (t == nullptr) continue;
        if (auto it = t->event_ids.find(event_id); it != t->event_ids.end()) {
          return std::optional<uint64_t>(DecodeU64(it->second));
        }
      }
    }
    // Not in the tail: written to event_ids before it left the tail, if at all.
    std::string v;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf(kEventIds), ToSlice(event_id), &v);
    if (s.IsNotFound()) return std::optional<uint64_t>();
    CL_RETURN_IF_ERROR(FromRocks(s, "event id index"));
    return std::optional<uint64_t>(DecodeU64(v));
  }

  absl::StatusOr<uint64_t> FindStreamVersion(absl::string_view stream_id,
                                             uint64_t version) const override {
    {
      absl::MutexLock lock(&tail_mu_);
      for (const IndexTail* t : {active_.get(), flushing_.get()}) {
        if (t == nullptr) continue;
        if (std::optional<uint64_t> seq = t->FindStreamVersion(stream_id, version)) return *seq;
      }
    }
    CL_ASSIGN_OR_RETURN(std::string v, Get(kStreams, StreamKey(stream_id, version),
                                           absl::StrCat("stream ", stream_id, " version ",
                                                        version)));
    return DecodeU64(v);
  }

  absl::StatusOr<uint64_t> StreamLength(absl::string_view stream_id) const override {
    {
      // A stream's entries in the tail follow those in the index family, and
      // the active tail's follow the flushing one's.
      absl::MutexLock lock(&tail_mu_);
      for (const IndexTail* t : {active_.get(), flushing_.get()}) {
        if (t == nullptr) continue;
        if (auto it = t->streams.find(stream_id); it != t->streams.end()) {
          return it->second.next;
        }
      }
    }
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf(kStreams)));
    std::string prefix(stream_id);
    prefix.push_back('\0');
    it->SeekForPrev(prefix + std::string(8, '\xff'));
    CL_RETURN_IF_ERROR(FromRocks(it->status(), "stream index"));
    if (!it->Valid() || !it->key().starts_with(prefix) || it->key().size() != prefix.size() + 8) {
      return 0;
    }
    return DecodeU64(absl::string_view(it->key().data() + prefix.size(), 8)) + 1;
  }

  // Node (level, index) from the tails, if there.
  std::optional<Hash> TailNode(uint32_t level, uint64_t index) const {
    absl::MutexLock lock(&tail_mu_);
    for (const IndexTail* t : {active_.get(), flushing_.get()}) {
      if (t == nullptr) continue;
      if (const Hash* h = t->FindNode(level, index)) return *h;
    }
    return std::nullopt;
  }

  absl::StatusOr<Hash> GetNode(uint32_t level, uint64_t index) const override {
    std::string key = NodeKey(level, index);
    if (level >= kCachedNodeLevel) {
      absl::MutexLock lock(&cache_mu_);
      if (auto it = upper_nodes_.find(key); it != upper_nodes_.end()) return it->second;
    }
    // The tails first; a node not there was written to the family before it
    // left them, if at all.
    if (std::optional<Hash> h = TailNode(level, index)) return *h;
    std::string v;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf(kNodes), key, &v);
    if (!s.ok()) {
      return FromRocks(s, absl::StrCat("merkle node (", level, ", ", index, ")"));
    }
    auto h = HashFromBytes(v);
    if (!h.ok()) {
      return absl::DataLossError(absl::StrCat("merkle node (", level, ", ", index, "): ",
                                              h.status().message()));
    }
    if (level >= kCachedNodeLevel) {
      absl::MutexLock lock(&cache_mu_);
      upper_nodes_[key] = *h;
    }
    return *h;
  }

  // The upper levels from memory, the rest in sorted MultiGets; as
  // GetRecords, key buffers and pinned values are reused across chunks.
  absl::Status GetNodes(absl::Span<const NodePosition> positions, Hash* out) const override {
    std::vector<size_t> misses;  // into positions
    {
      absl::MutexLock lock(&cache_mu_);
      for (size_t i = 0; i < positions.size(); ++i) {
        const NodePosition& p = positions[i];
        if (p.level >= kCachedNodeLevel) {
          if (auto it = upper_nodes_.find(NodeKey(p.level, p.index)); it != upper_nodes_.end()) {
            out[i] = it->second;
            continue;
          }
        }
        misses.push_back(i);
      }
    }
    {
      // The tails next; what is not there was written before it left them.
      absl::MutexLock lock(&tail_mu_);
      size_t kept = 0;
      for (size_t i : misses) {
        const Hash* h = nullptr;
        for (const IndexTail* t : {active_.get(), flushing_.get()}) {
          if (t != nullptr && (h = t->FindNode(positions[i].level, positions[i].index))) break;
        }
        if (h != nullptr) {
          out[i] = *h;
        } else {
          misses[kept++] = i;
        }
      }
      misses.resize(kept);
    }
    constexpr size_t kChunk = 256;
    const size_t slots = std::min(misses.size(), kChunk);
    std::vector<std::array<char, 9>> key_bytes(slots);
    std::vector<rocksdb::Slice> keys(slots);
    std::vector<rocksdb::PinnableSlice> values(slots);
    std::vector<rocksdb::Status> statuses(slots);
    rocksdb::ReadOptions ro;
    ro.fill_cache = false;  // as in GetRecords
    for (size_t base = 0; base < misses.size(); base += kChunk) {
      const size_t n = std::min(kChunk, misses.size() - base);
      for (size_t i = 0; i < n; ++i) {
        const NodePosition& p = positions[misses[base + i]];
        key_bytes[i][0] = static_cast<char>(p.level);
        for (int b = 0; b < 8; ++b)
          key_bytes[i][1 + b] = static_cast<char>(p.index >> (56 - 8 * b));
        keys[i] = rocksdb::Slice(key_bytes[i].data(), 9);
      }
      db_->MultiGet(ro, cf(kNodes), n, keys.data(), values.data(), statuses.data(),
                    /*sorted_input=*/true);
      for (size_t i = 0; i < n; ++i) {
        const NodePosition& p = positions[misses[base + i]];
        if (!statuses[i].ok()) {
          return FromRocks(statuses[i], absl::StrCat("merkle node (", p.level, ", ", p.index, ")"));
        }
        absl::StatusOr<Hash> h = HashFromBytes(View(values[i]));
        values[i].Reset();
        if (!h.ok()) {
          return absl::DataLossError(
              absl::StrCat("merkle node (", p.level, ", ", p.index, "): ", h.status().message()));
        }
        out[misses[base + i]] = *h;
      }
    }
    if (!misses.empty()) {
      absl::MutexLock lock(&cache_mu_);
      for (size_t i : misses) {
        const NodePosition& p = positions[i];
        if (p.level >= kCachedNodeLevel) upper_nodes_[NodeKey(p.level, p.index)] = out[i];
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::optional<StoredCheckpoint>> LatestCheckpoint() const override {
    std::unique_ptr<rocksdb::Iterator> it(
        db_->NewIterator(rocksdb::ReadOptions(), cf(kCheckpoints)));
    it->SeekToLast();
    CL_RETURN_IF_ERROR(FromRocks(it->status(), "checkpoints"));
    if (!it->Valid()) return std::optional<StoredCheckpoint>();
    return std::optional<StoredCheckpoint>(
        StoredCheckpoint{DecodeU64(View(it->key())), it->value().ToString()});
  }

  absl::StatusOr<StoredCheckpoint> CheckpointAt(uint64_t size) const override {
    CL_ASSIGN_OR_RETURN(std::string note, Get(kCheckpoints, U64Key(size),
                                              absl::StrCat("checkpoint at size ", size)));
    return StoredCheckpoint{size, std::move(note)};
  }

  absl::StatusOr<std::vector<StoredCheckpoint>> Checkpoints() const override {
    std::vector<StoredCheckpoint> out;
    std::unique_ptr<rocksdb::Iterator> it(
        db_->NewIterator(rocksdb::ReadOptions(), cf(kCheckpoints)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      out.push_back({DecodeU64(View(it->key())), it->value().ToString()});
    }
    CL_RETURN_IF_ERROR(FromRocks(it->status(), "checkpoints"));
    return out;
  }

  absl::StatusOr<std::vector<StoredCheckpoint>> CheckpointsIn(uint64_t min_size,
                                                              uint64_t max_size) const override {
    std::vector<StoredCheckpoint> out;
    std::unique_ptr<rocksdb::Iterator> it(
        db_->NewIterator(rocksdb::ReadOptions(), cf(kCheckpoints)));
    for (it->Seek(U64Key(min_size)); it->Valid(); it->Next()) {
      uint64_t size = DecodeU64(View(it->key()));
      if (size > max_size) break;
      out.push_back({size, it->value().ToString()});
    }
    CL_RETURN_IF_ERROR(FromRocks(it->status(), "checkpoints"));
    return out;
  }

  absl::Status PutCosignature(uint64_t size, absl::string_view witness,
                              absl::string_view line) override {
    if (cf(kCosignatures) == nullptr) {
      return absl::FailedPreconditionError("cosignatures: store opened read-only without them");
    }
    rocksdb::WriteOptions wo;
    wo.sync = true;
    return FromRocks(db_->Put(wo, cf(kCosignatures), CosignatureKey(size, witness), ToSlice(line)),
                     "store cosignature");
  }

  absl::StatusOr<std::vector<std::string>> Cosignatures(uint64_t size) const override {
    std::vector<std::string> out;
    if (cf(kCosignatures) == nullptr) return out;
    std::string prefix = U64Key(size);
    std::unique_ptr<rocksdb::Iterator> it(
        db_->NewIterator(rocksdb::ReadOptions(), cf(kCosignatures)));
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      out.push_back(it->value().ToString());
    }
    CL_RETURN_IF_ERROR(FromRocks(it->status(), "cosignatures"));
    return out;
  }

  absl::StatusOr<std::optional<uint64_t>> LatestCosignedSize() const override {
    if (cf(kCosignatures) == nullptr) return std::optional<uint64_t>();
    std::unique_ptr<rocksdb::Iterator> it(
        db_->NewIterator(rocksdb::ReadOptions(), cf(kCosignatures)));
    it->SeekToLast();
    CL_RETURN_IF_ERROR(FromRocks(it->status(), "cosignatures"));
    if (!it->Valid()) return std::optional<uint64_t>();
    if (it->key().size() < 8) return absl::DataLossError("cosignatures: key shorter than 8 bytes");
    return std::optional<uint64_t>(DecodeU64(absl::string_view(it->key().data(), 8)));
  }

  absl::Status ScanRecords(uint64_t from,
                           const std::function<bool(const ScannedRecord&)>& fn) const override {
    rocksdb::ReadOptions ro;
    ro.readahead_size = 2 << 20;
    ro.fill_cache = false;
    // One snapshot for the three iterators, so they agree with each other.
    const rocksdb::Snapshot* snapshot = db_->GetSnapshot();
    ro.snapshot = snapshot;
    std::unique_ptr<rocksdb::Iterator> records(db_->NewIterator(ro, cf(kRecords)));
    std::unique_ptr<rocksdb::Iterator> payloads(db_->NewIterator(ro, cf(kPayloads)));
    std::unique_ptr<rocksdb::Iterator> nodes(db_->NewIterator(ro, cf(kNodes)));
    std::string start = U64Key(from);
    payloads->Seek(start);
    nodes->Seek(NodeKey(0, from));
    // The level-0 node key of the current record: 0x00 || its 8 key bytes.
    char node_key_bytes[9] = {0};
    const rocksdb::Slice node_key(node_key_bytes, sizeof(node_key_bytes));
    absl::Status status;
    for (records->Seek(start); records->Valid(); records->Next()) {
      const rocksdb::Slice key = records->key();
      if (key.size() != 8) {
        status = absl::DataLossError(absl::StrCat("records: key of ", key.size(), " bytes, want 8"));
        break;
      }
      // Advance the side iterators to this key; they may have gaps of their own.
      while (payloads->Valid() && payloads->key().compare(key) < 0) payloads->Next();
      std::copy(key.data(), key.data() + 8, node_key_bytes + 1);
      while (nodes->Valid() && nodes->key().compare(node_key) < 0) nodes->Next();
      ScannedRecord r{DecodeU64(View(key)), View(records->value()), std::nullopt, std::nullopt};
      if (payloads->Valid() && payloads->key() == key) r.payload = View(payloads->value());
      std::optional<Hash> tail_node;
      if (nodes->Valid() && nodes->key() == node_key) {
        r.leaf_node = View(nodes->value());
      } else if ((tail_node = TailOrLatestNode(0, r.key_seq))) {
        // Past the nodes watermark: in the tail, or written since the snapshot.
        r.leaf_node = AsBytes(*tail_node);
      }
      if (!fn(r)) break;
    }
    if (status.ok()) status = FromRocks(records->status(), "scan records");
    if (status.ok()) status = FromRocks(payloads->status(), "scan payloads");
    if (status.ok()) status = FromRocks(nodes->status(), "scan nodes");
    records.reset();
    payloads.reset();
    nodes.reset();
    db_->ReleaseSnapshot(snapshot);
    return status;
  }

  // One past the last node of `level` in the tails (0: none there).
  uint64_t TailNodeEnd(uint32_t level) const {
    absl::MutexLock lock(&tail_mu_);
    uint64_t end = 0;
    for (const IndexTail* t : {active_.get(), flushing_.get()}) {
      if (t == nullptr || level >= t->node_runs.size()) continue;
      const IndexTail::NodeRun& run = t->node_runs[level];
      if (!run.hashes.empty()) end = std::max<uint64_t>(end, run.first + run.hashes.size());
    }
    return end;
  }

  // Node (level, index) from the tails, else as stored now; nullopt when
  // neither has it (or it does not read).
  std::optional<Hash> TailOrLatestNode(uint32_t level, uint64_t index) const {
    if (std::optional<Hash> h = TailNode(level, index)) return h;
    std::string v;
    if (!db_->Get(rocksdb::ReadOptions(), cf(kNodes), NodeKey(level, index), &v).ok()) {
      return std::nullopt;
    }
    absl::StatusOr<Hash> h = HashFromBytes(v);
    return h.ok() ? std::optional<Hash>(*h) : std::nullopt;
  }

  // The family's nodes, then those past the last of them from the tails (the
  // nodes past the watermark, STORE.md "Deferred Merkle nodes").
  absl::Status ScanNodes(
      uint32_t level, uint64_t from,
      const std::function<bool(uint64_t, absl::string_view)>& fn) const override {
    rocksdb::ReadOptions ro;
    ro.readahead_size = 2 << 20;
    ro.fill_cache = false;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf(kNodes)));
    const char level_byte = static_cast<char>(level);
    uint64_t next = from;
    for (it->Seek(NodeKey(level, from)); it->Valid(); it->Next()) {
      const rocksdb::Slice key = it->key();
      if (key.size() != 9 || key[0] != level_byte) break;
      const uint64_t index = DecodeU64(absl::string_view(key.data() + 1, 8));
      if (!fn(index, View(it->value()))) return FromRocks(it->status(), "scan nodes");
      next = index + 1;
    }
    CL_RETURN_IF_ERROR(FromRocks(it->status(), "scan nodes"));
    // Below the tails' end a node absent from both is a gap, as in the
    // family; past it the scan ends at the first absent one (a tail written
    // meanwhile is in the family by then).
    const uint64_t tail_end = TailNodeEnd(level);
    for (;; ++next) {
      std::optional<Hash> h = TailOrLatestNode(level, next);
      if (!h.has_value()) {
        if (next < tail_end) continue;
        break;
      }
      if (!fn(next, AsBytes(*h))) break;
    }
    return absl::OkStatus();
  }

  absl::StatusOr<SubjectState> GetSubjectHead(const Hash& key) const override {
    {
      // The active tail's entries follow the flushing one's, which follow
      // the family's.
      absl::MutexLock lock(&tail_mu_);
      for (const IndexTail* t : {active_.get(), flushing_.get()}) {
        if (t == nullptr) continue;
        if (auto it = t->subjects.find(AsBytes(key)); it != t->subjects.end()) {
          const char* e = t->subject_refs[it->second].entry;
          return SubjectState{IndexTail::EntryIndex(e) + 1, IndexTail::EntryHead(e)};
        }
      }
    }
    // Not in the tail: written to subjects before it left the tail, if at all.
    const std::string prefix = SubjectKeyOf(kSubjectEntryTag, key);
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf(kSubjects)));
    it->SeekForPrev(prefix + std::string(8, '\xff'));
    CL_RETURN_IF_ERROR(FromRocks(it->status(), "subject index"));
    if (!it->Valid() || !it->key().starts_with(prefix)) return SubjectState{};
    const std::string what = absl::StrCat("subject index entry of ", ShortHex(key));
    if (it->key().size() != prefix.size() + 8) {
      return absl::DataLossError(absl::StrCat(what, ": malformed key"));
    }
    CL_ASSIGN_OR_RETURN(SubjectState last, DecodeSubjectState(View(it->value()), what));
    uint64_t index = DecodeU64(absl::string_view(it->key().data() + prefix.size(), 8));
    return SubjectState{index + 1, last.head};
  }

  absl::StatusOr<SubjectEntryValue> GetSubjectEntry(const Hash& key,
                                                    uint64_t index) const override {
    {
      absl::MutexLock lock(&tail_mu_);
      for (const IndexTail* t : {active_.get(), flushing_.get()}) {
        if (t == nullptr) continue;
        if (const char* e = t->SubjectEntry(AsBytes(key), index); e != nullptr) {
          return SubjectEntryValue{IndexTail::EntrySeq(e), IndexTail::EntryHead(e)};
        }
      }
    }
    const std::string what = absl::StrCat("subject index entry ", index, " of ", ShortHex(key));
    CL_ASSIGN_OR_RETURN(std::string v,
                        Get(kSubjects, SubjectKeyOf(kSubjectEntryTag, key) + U64Key(index), what));
    // Stored as u64 seq || head, the layout of a SubjectState value.
    CL_ASSIGN_OR_RETURN(SubjectState e, DecodeSubjectState(v, what));
    return SubjectEntryValue{e.count, e.head};
  }

  absl::Status ScanSubject(const Hash& key, uint64_t from_index,
                           const std::function<bool(uint64_t, uint64_t)>& fn) const override {
    // As ScanStream: the tail's entries first (older tail first), then the
    // family; an entry that leaves the tail meanwhile was written there before.
    std::vector<std::pair<uint64_t, uint64_t>> tail;  // (index, seq)
    {
      absl::MutexLock lock(&tail_mu_);
      for (const IndexTail* t : {flushing_.get(), active_.get()}) {
        if (t != nullptr) t->SubjectEntriesFrom(AsBytes(key), from_index, &tail);
      }
    }
    std::optional<uint64_t> last;  // the last index given to fn
    const std::string prefix = SubjectKeyOf(kSubjectEntryTag, key);
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf(kSubjects)));
    for (it->Seek(prefix + U64Key(from_index)); it->Valid(); it->Next()) {
      if (!it->key().starts_with(prefix)) break;
      if (it->key().size() != prefix.size() + 8 || it->value().size() != 8 + kHashSize) {
        return absl::DataLossError(absl::StrCat("subject index entry of ", ShortHex(key),
                                                ": malformed key or value"));
      }
      uint64_t index = DecodeU64(absl::string_view(it->key().data() + prefix.size(), 8));
      if (!fn(index, DecodeU64(View(it->value()).substr(0, 8)))) {
        return FromRocks(it->status(), "scan subject index");
      }
      last = index;
    }
    CL_RETURN_IF_ERROR(FromRocks(it->status(), "scan subject index"));
    for (const auto& [index, seq] : tail) {
      if (last.has_value() && index <= *last) continue;
      if (!fn(index, seq)) break;
    }
    return absl::OkStatus();
  }

  absl::Status ScanSubjectMap(
      const std::function<void(const Hash&, const SubjectState&)>& fn) const override {
    return ScanTagged(kSubjectMapTag, [&](const Hash& key, absl::string_view v) -> absl::Status {
      CL_ASSIGN_OR_RETURN(SubjectState s,
                          DecodeSubjectState(v, absl::StrCat("subject map leaf ", ShortHex(key))));
      fn(key, s);
      return absl::OkStatus();
    });
  }

  absl::StatusOr<uint32_t> SubjectMapLayout() const override {
    std::string v;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf(kSubjects), kSubjectMapLayoutKey, &v);
    if (s.IsNotFound()) return 1;
    CL_RETURN_IF_ERROR(FromRocks(s, "subject map layout"));
    if (v.size() != 1) return absl::DataLossError("subject map layout: not 1 byte");
    return static_cast<uint8_t>(v[0]);
  }

  absl::StatusOr<std::optional<std::string>> GetSubjectMapNode(
      absl::string_view path) const override {
    std::string v;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf(kSubjects),
                                 std::string(1, kSubjectMapNodeTag) + std::string(path), &v);
    if (s.IsNotFound()) return std::optional<std::string>();
    CL_RETURN_IF_ERROR(FromRocks(s, "subject map node"));
    return std::optional<std::string>(std::move(v));
  }

  absl::Status PutSubjectMapNodes(const std::vector<std::pair<std::string, std::string>>& nodes,
                                  bool finish) override {
    rocksdb::WriteBatch wb;
    for (const auto& [path, node] : nodes) {
      wb.Put(cf(kSubjects), std::string(1, kSubjectMapNodeTag) + path, node);
    }
    if (finish) {
      wb.Put(cf(kSubjects), kSubjectMapLayoutKey, std::string(1, '\x02'));
      wb.DeleteRange(cf(kSubjects), std::string(1, kSubjectMapTag),
                     std::string(1, kSubjectMapTag + 1));
    }
    rocksdb::WriteOptions wo;
    wo.sync = true;
    return FromRocks(db_->Write(wo, &wb), "write subject map nodes");
  }

  absl::Status ScanStream(absl::string_view stream_id, uint64_t from_version,
                          const std::function<bool(uint64_t, uint64_t)>& fn) const override {
    // The tail's entries first (older tail first), then the index family:
    // an entry that leaves the tail meanwhile was written there before.
    std::vector<std::pair<uint64_t, uint64_t>> tail;  // (version, seq)
    {
      absl::MutexLock lock(&tail_mu_);
      for (const IndexTail* t : {flushing_.get(), active_.get()}) {
        if (t != nullptr) t->StreamEntriesFrom(stream_id, from_version, &tail);
      }
    }
    std::string prefix(stream_id);
    prefix.push_back('\0');
    std::optional<uint64_t> last;  // the last version given to fn
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf(kStreams)));
    for (it->Seek(StreamKey(stream_id, from_version)); it->Valid(); it->Next()) {
      if (!it->key().starts_with(prefix) || it->key().size() != prefix.size() + 8) break;
      uint64_t version = DecodeU64(absl::string_view(it->key().data() + prefix.size(), 8));
      if (!fn(version, DecodeU64(View(it->value())))) return FromRocks(it->status(), "scan stream");
      last = version;
    }
    CL_RETURN_IF_ERROR(FromRocks(it->status(), "scan stream"));
    for (const auto& [version, seq] : tail) {
      if (last.has_value() && version <= *last) continue;
      if (!fn(version, seq)) break;
    }
    return absl::OkStatus();
  }

  KeyTable* keys() override { return has_keys_ ? this : nullptr; }

  absl::StatusOr<std::optional<std::string>> GetKey(absl::string_view key) const override {
    std::string v;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf(kKeys), ToSlice(key), &v);
    if (s.IsNotFound()) return std::optional<std::string>();
    CL_RETURN_IF_ERROR(FromRocks(s, "key table"));
    return std::optional<std::string>(std::move(v));
  }

  absl::Status ScanKeys(
      absl::string_view prefix,
      const std::function<bool(absl::string_view, absl::string_view)>& fn) const override {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf(kKeys)));
    for (it->Seek(ToSlice(prefix)); it->Valid(); it->Next()) {
      if (!it->key().starts_with(ToSlice(prefix))) break;
      if (!fn(View(it->key()), View(it->value()))) break;
    }
    return FromRocks(it->status(), "scan key table");
  }

  absl::Status WriteKeys(const std::vector<KeyWrite>& writes, bool purge) override {
    {
      absl::MutexLock lock(&key_write_mu_);
      CL_RETURN_IF_ERROR(WriteKeysLocked(writes));
    }
    return purge ? Purge() : absl::OkStatus();
  }

  absl::Status UpdateKeys(
      const std::function<absl::StatusOr<std::vector<KeyWrite>>()>& plan) override {
    absl::MutexLock lock(&key_write_mu_);
    CL_ASSIGN_OR_RETURN(std::vector<KeyWrite> writes, plan());
    return WriteKeysLocked(writes);
  }

  absl::Status Purge() override {
    // A WAL file is deleted once every family with writes in it has been
    // flushed, so flush them all, not just the key family.
    rocksdb::FlushOptions fo;
    fo.wait = true;
    fo.allow_write_stall = true;
    CL_RETURN_IF_ERROR(FromRocks(db_->Flush(fo, handles_), "purge: flush"));
    // Rewrite every key-family SST at the bottom level: the deleted values
    // and their tombstones are dropped (unless a snapshot older than the
    // delete is open: ScanRecords holds one only while it runs).
    rocksdb::CompactRangeOptions co;
    co.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
    co.exclusive_manual_compaction = true;
    CL_RETURN_IF_ERROR(
        FromRocks(db_->CompactRange(co, cf(kKeys), nullptr, nullptr), "purge: compact keys"));
    // Obsolete WAL and SST files are normally unlinked by the flush and
    // compaction jobs themselves; this makes sure no deletion is pending.
    CL_RETURN_IF_ERROR(FromRocks(db_->EnableFileDeletions(/*force=*/false), "purge: files"));
    return absl::OkStatus();
  }

 private:
  rocksdb::ColumnFamilyHandle* cf(Family f) const { return handles_[f]; }

  static void PutU64(uint64_t v, char* out) {
    for (int b = 0; b < 8; ++b) out[b] = static_cast<char>(v >> (56 - 8 * b));
  }

  // Moves the index_log value just committed under `at`, and the group's
  // Merkle nodes, into the active tail, and hands a full tail to the
  // background writer; waits for it only when the active tail has grown to
  // twice its size meanwhile.
  absl::Status AddToTail(uint64_t at, absl::Span<const NodeWrite> nodes) {
    absl::MutexLock lock(&tail_mu_);
    CL_RETURN_IF_ERROR(active_->Add(at, index_log_value_, /*trusted=*/true));
    if (absl::Status s = active_->AddNodes(nodes); !s.ok()) {
      // Committed, but the tail cannot serve the nodes: stop committing.
      index_error_ = s;
      return s;
    }
    if (!subject_log_value_.empty()) {
      CL_RETURN_IF_ERROR(active_->AddSubjects(at, subject_log_value_, /*trusted=*/true));
    }
    if (active_->events < tail_events_) return absl::OkStatus();
    if (active_->events >= 2 * tail_events_) {
      auto free = [this]() ABSL_SHARED_LOCKS_REQUIRED(tail_mu_) {
        return flushing_ == nullptr || !index_error_.ok();
      };
      tail_mu_.Await(absl::Condition(&free));
    }
    if (!index_error_.ok()) return index_error_;
    if (flushing_ == nullptr) {
      flushing_ = std::move(active_);
      active_ = std::make_unique<IndexTail>(tail_events_);
    }
    return absl::OkStatus();
  }

  // Writes the tail handed over by AddToTail, one at a time, until stopping.
  void IndexerLoop() {
    for (;;) {
      const IndexTail* t;
      {
        absl::MutexLock lock(&tail_mu_);
        auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(tail_mu_) {
          return (flushing_ != nullptr && index_error_.ok()) || stopping_;
        };
        tail_mu_.Await(absl::Condition(&ready));
        if (flushing_ == nullptr || !index_error_.ok()) return;
        t = flushing_.get();  // not changed or freed by others while set
      }
      absl::Status s = WriteTail(*t);
      absl::MutexLock lock(&tail_mu_);
      if (s.ok()) {
        flushing_.reset();
      } else {
        index_error_ = s;  // the entries stay in the tail; commits stop
      }
    }
  }

  // Writes a tail's entries to event_ids, streams and subjects without the
  // WAL, in key order and in batches of kTailBatch (a commit waits behind at
  // most one), the last with the watermark and the deletion of the index_log
  // and subject_log values it covers (STORE.md "Deferred indexes"). A crash between the batches leaves
  // the watermark behind, and the next open reads the whole tail back.
  // atomic_flush keeps the families' unlogged writes together on disk.
  absl::Status WriteTail(const IndexTail& t) const {
    using Entry = std::pair<absl::string_view, absl::string_view>;
    std::vector<Entry> ids(t.event_ids.begin(), t.event_ids.end());
    std::vector<Entry> streams;
    streams.reserve(t.stream_refs.size());
    for (const IndexTail::StreamRef& r : t.stream_refs) streams.emplace_back(r.stream_key, r.seq);
    std::sort(ids.begin(), ids.end());
    std::sort(streams.begin(), streams.end());
    constexpr size_t kTailBatch = 4096;
    rocksdb::WriteOptions wo;
    wo.disableWAL = true;
    rocksdb::WriteBatch wb;
    for (auto [family, entries] : {std::make_pair(kEventIds, &ids), std::make_pair(kStreams, &streams)}) {
      for (const auto& [k, v] : *entries) {
        wb.Put(cf(family), ToSlice(k), ToSlice(v));
        if (wb.Count() >= kTailBatch) {
          CL_RETURN_IF_ERROR(FromRocks(db_->Write(wo, &wb), "write index tail"));
          wb.Clear();
        }
      }
    }
    // Subject entries sorted by their key ('e' || key(S) || u64 index).
    std::vector<const char*> subjects;
    subjects.reserve(t.subject_refs.size());
    for (const IndexTail::SubjectRef& r : t.subject_refs) subjects.push_back(r.entry);
    std::sort(subjects.begin(), subjects.end(), [](const char* a, const char* b) {
      return std::memcmp(a, b, kSubjectLogKeyPart) < 0;
    });
    char subject_key[1 + kSubjectLogKeyPart];
    subject_key[0] = kSubjectEntryTag;
    for (const char* e : subjects) {
      std::copy_n(e, kSubjectLogKeyPart, subject_key + 1);
      // The value is the state after the entry, minus the count (the key's
      // index + 1): u64 seq || head.
      wb.Put(cf(kSubjects), rocksdb::Slice(subject_key, sizeof(subject_key)),
             rocksdb::Slice(e + kSubjectLogKeyPart, kSubjectLogEntry - kSubjectLogKeyPart));
      if (wb.Count() >= kTailBatch) {
        CL_RETURN_IF_ERROR(FromRocks(db_->Write(wo, &wb), "write index tail"));
        wb.Clear();
      }
    }
    // The Merkle nodes, in key order: by level, then index.
    char node_key[9];
    for (uint32_t level = 0; level < t.node_runs.size(); ++level) {
      const IndexTail::NodeRun& run = t.node_runs[level];
      node_key[0] = static_cast<char>(level);
      for (size_t i = 0; i < run.hashes.size(); ++i) {
        PutU64(run.first + i, node_key + 1);
        wb.Put(cf(kNodes), rocksdb::Slice(node_key, 9), ToSlice(AsBytes(run.hashes[i])));
        if (wb.Count() >= kTailBatch) {
          CL_RETURN_IF_ERROR(FromRocks(db_->Write(wo, &wb), "write index tail"));
          wb.Clear();
        }
      }
    }
    // The watermarks: every record of the tail has its index entries and
    // nodes written now. A tail never moves one back (one holding only
    // recomputed nodes, say, leaves indexed_size as it is).
    if (t.events > 0) wb.Put(cf(kMeta), kIndexedKey, U64Key(t.end_size));
    const bool leaves = !t.node_runs.empty() && !t.node_runs[0].hashes.empty();
    const uint64_t nodes_end =
        leaves ? t.node_runs[0].first + t.node_runs[0].hashes.size() : t.end_size;
    if (leaves || t.events > 0) wb.Put(cf(kMeta), kNodesKey, U64Key(nodes_end));
    // Point deletes: a range deletion in a family inserted with a hint
    // corrupts RocksDB 7.8's memtable (the hint is shared with the
    // range-deletion table).
    for (uint64_t at : t.keys) wb.Delete(cf(kIndexLog), U64Key(at));
    for (uint64_t at : t.subject_keys) wb.Delete(cf(kSubjectLog), U64Key(at));
    return FromRocks(db_->Write(wo, &wb), "write index tail");
  }

  // One synced write of `writes` to the key family.
  absl::Status WriteKeysLocked(const std::vector<KeyWrite>& writes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(key_write_mu_) {
    rocksdb::WriteBatch wb;
    AddKeyWrites(writes, cf(kKeys), &wb);
    rocksdb::WriteOptions wo;
    wo.sync = true;
    return FromRocks(db_->Write(wo, &wb), "write key table");
  }

  // Calls fn(subject key, value) for every subject-index entry with `tag`.
  absl::Status ScanTagged(
      char tag, const std::function<absl::Status(const Hash&, absl::string_view)>& fn) const {
    rocksdb::ReadOptions ro;
    ro.fill_cache = false;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf(kSubjects)));
    const std::string start(1, tag);
    for (it->Seek(start); it->Valid() && it->key().starts_with(start); it->Next()) {
      if (it->key().size() != 1 + kHashSize) {
        return absl::DataLossError(absl::StrCat("subject index: key of ", it->key().size(),
                                                " bytes under tag '", std::string(1, tag),
                                                "', want ", 1 + kHashSize));
      }
      Hash key;
      std::copy(it->key().data() + 1, it->key().data() + 1 + kHashSize, key.begin());
      CL_RETURN_IF_ERROR(fn(key, View(it->value())));
    }
    return FromRocks(it->status(), "scan subject index");
  }

  absl::StatusOr<std::string> Get(Family f, absl::string_view key, absl::string_view what) const {
    std::string v;
    CL_RETURN_IF_ERROR(FromRocks(db_->Get(rocksdb::ReadOptions(), cf(f), ToSlice(key), &v), what));
    return v;
  }

  // Merkle nodes at this level and above are few (n / 2^level) and read by
  // every proof; they are kept in memory once written or read.
  static constexpr uint32_t kCachedNodeLevel = 6;

  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // owned; freed before db_
  // False for an old directory opened read-only: handles_[kKeys] is null.
  const bool has_keys_;
  const bool read_only_;
  const bool bulk_load_;  // RocksStoreOptions::bulk_load
  const size_t tail_events_;  // RocksStoreOptions::index_tail_events
  // Commit's reused buffers (one caller at a time).
  rocksdb::WriteBatch commit_wb_;
  std::string index_log_value_;
  std::string subject_log_value_;
  // The index entries not yet in event_ids, streams and subjects: the tail
  // Commit adds to, and the one the background writer is writing (null when
  // none).
  mutable absl::Mutex tail_mu_;
  std::unique_ptr<IndexTail> active_ ABSL_GUARDED_BY(tail_mu_);
  std::unique_ptr<IndexTail> flushing_ ABSL_GUARDED_BY(tail_mu_);
  absl::Status index_error_ ABSL_GUARDED_BY(tail_mu_);
  bool stopping_ ABSL_GUARDED_BY(tail_mu_) = false;
  std::thread indexer_;
  // Held by every write to the key family, and by UpdateKeys from its plan's
  // reads to its write; nothing else is called while it is held but plan.
  absl::Mutex key_write_mu_;
  mutable absl::Mutex cache_mu_;
  mutable absl::flat_hash_map<std::string, Hash> upper_nodes_ ABSL_GUARDED_BY(cache_mu_);
};

}  // namespace

absl::StatusOr<std::unique_ptr<LogStore>> OpenRocksStore(const RocksStoreOptions& options) {
  rocksdb::DBOptions db_options;
  db_options.create_if_missing = !options.read_only;
  db_options.create_missing_column_families = !options.read_only;
  db_options.max_background_jobs = 2;
  db_options.db_write_buffer_size = options.total_write_buffer_bytes;
  // Bounds what a restart after a crash replays: once the live WAL files
  // reach this, the families holding their oldest writes are flushed.
  db_options.max_total_wal_size = options.max_wal_bytes;
  db_options.paranoid_checks = true;
  // Table files are opened when first read, not all at open: with RocksDB's
  // default (-1) the open reads every file's footer, index and filter, a cost
  // (and memory kept) growing with the ledger; with a bound the open loads
  // at most 16 of them. Files beyond the bound are closed and reopened as
  // reads need them (about 64 GiB of data at 64 MiB per file).
  db_options.max_open_files = 1024;
  // Fail loudly on a WAL that does not replay cleanly rather than dropping
  // synced writes; an unsynced torn tail is what kill -9 leaves and is fine.
  db_options.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  // The index families are written without the WAL (STORE.md "Deferred
  // indexes"): flushing every family together keeps their on-disk state one
  // consistent point of the write order, watermark included.
  db_options.atomic_flush = true;
  // One writer at a time commits; a group inserted by one thread keeps the
  // memtable hints above (concurrent inserts ignore them).
  db_options.allow_concurrent_memtable_write = false;

  std::shared_ptr<rocksdb::Cache> cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (int i = 0; i < kFamilyCount; ++i) {
    rocksdb::ColumnFamilyOptions cf;
    cf.write_buffer_size = options.write_buffer_bytes;
    rocksdb::BlockBasedTableOptions table;
    table.block_cache = cache;
    if (i == kEventIds || i == kStreams || i == kNodes || i == kSubjects) {
      // Point lookups: a bloom filter answers "absent" without a disk read.
      table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
    }
    if (i == kRecords || i == kPayloads) {
      // Point reads (a subject's records are spread over the log) decompress
      // a whole block each: 4 KiB blocks cost a third of 16 KiB ones.
      table.block_size = 4 << 10;
    }
    cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
    if (i == kRecords || i == kPayloads || i == kMeta || i == kIndexLog || i == kSubjectLog ||
        i == kEventIds || i == kStreams) {
      // Keys only ever grow, or (event_ids, streams) arrive sorted from the
      // index tail: insert after the previous one, no skiplist search.
      cf.memtable_insert_with_hint_prefix_extractor.reset(rocksdb::NewFixedPrefixTransform(0));
    } else if (i == kNodes) {
      cf.memtable_insert_with_hint_prefix_extractor.reset(rocksdb::NewFixedPrefixTransform(1));
    }
    // Hashes do not compress; the rest does, cheaply.
    cf.compression = (i == kNodes || i == kEventIds || i == kSubjects) ? rocksdb::kNoCompression
                                                     : rocksdb::kLZ4Compression;
    families.emplace_back(kFamilies[i], cf);
  }

  // Read-only opens cannot create a family that a data directory written by
  // an older version lacks; open the ones present and leave the rest null.
  std::vector<int> opened;
  if (options.read_only) {
    std::vector<std::string> present;
    rocksdb::DB::ListColumnFamilies(db_options, options.path, &present);
    std::vector<rocksdb::ColumnFamilyDescriptor> kept;
    for (int i = 0; i < kFamilyCount; ++i) {
      // Families added later: cosignatures, index_log, and the keys of payload
      // encryption (then keys() is null).
      if ((i == kCosignatures || i == kKeys || i == kIndexLog || i == kSubjectLog) &&
          std::find(present.begin(), present.end(), kFamilies[i]) == present.end()) {
        continue;
      }
      kept.push_back(families[i]);
      opened.push_back(i);
    }
    families = std::move(kept);
  } else {
    for (int i = 0; i < kFamilyCount; ++i) opened.push_back(i);
  }
  std::vector<rocksdb::ColumnFamilyHandle*> opened_handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s =
      options.read_only
          ? rocksdb::DB::OpenForReadOnly(db_options, options.path, families, &opened_handles, &raw)
          : rocksdb::DB::Open(db_options, options.path, families, &opened_handles, &raw);
  if (!s.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("open data directory ", options.path, ": ", s.ToString()));
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles(kFamilyCount, nullptr);
  for (size_t i = 0; i < opened.size(); ++i) handles[opened[i]] = opened_handles[i];
  const bool has_keys = handles[kKeys] != nullptr;
  auto store = std::make_unique<RocksStore>(std::unique_ptr<rocksdb::DB>(raw), std::move(handles),
                                            has_keys, options.read_only,
                                            options.index_tail_events, options.bulk_load);
  CL_RETURN_IF_ERROR(store->LoadIndexTail());
  return std::unique_ptr<LogStore>(std::move(store));
}

}  // namespace caseledger
