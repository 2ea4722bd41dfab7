#include "ledger/ledger_builder.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "ledger/checkpoint.h"
#include "ledger/internal/status_macros.h"
#include "ledger/merkle_tree.h"
#include "ledger/subject_index.h"
#include "ledger/subject_map_store.h"

namespace caseledger {

absl::Status BuildLedger(const LedgerBuilderOptions& options, uint64_t count,
                         const std::function<Event(uint64_t)>& make_event, LogStore* store) {
  if (store == nullptr) return absl::InvalidArgumentError("store: must not be null");
  if (options.signer == nullptr) return absl::InvalidArgumentError("signer: must not be null");
  if (options.origin.empty()) return absl::InvalidArgumentError("origin: must not be empty");
  if (options.batch_records == 0) {
    return absl::InvalidArgumentError("batch_records: must be positive");
  }
  const Clock& clock = options.clock != nullptr ? *options.clock : Clock::Real();

  // Where the store stands: its tree, last leaf, and a checkpoint covering it.
  CL_ASSIGN_OR_RETURN(const uint64_t start, store->Size());
  CL_ASSIGN_OR_RETURN(std::optional<StoredCheckpoint> latest, store->LatestCheckpoint());
  const uint64_t covered = latest.has_value() ? latest->size : 0;
  if (covered != start) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the store holds ", start, " records but its latest checkpoint covers ", covered,
        ": open it with a Ledger, call Checkpoint() and close it first"));
  }
  CL_ASSIGN_OR_RETURN(MerkleTree tree, MerkleTree::Load(start, *store));
  Hash last_leaf_hash{};
  if (start > 0) {
    CL_ASSIGN_OR_RETURN(last_leaf_hash, store->GetNode(0, start - 1));
  }
  CL_ASSIGN_OR_RETURN(StoredSubjectMap map,
                      StoredSubjectMap::Open(store, SubjectMapStoreOptions{
                                                        options.subject_map_cache_bytes}));

  // Every stream's next version and every subject's state seen so far (the
  // store is asked only for ones not seen yet, and not at all when it starts
  // empty), and the subjects touched since the last checkpoint.
  absl::flat_hash_map<std::string, uint64_t> stream_next;
  absl::flat_hash_map<Hash, SubjectState> subjects;
  absl::flat_hash_set<Hash> touched;
  uint64_t last_checkpoint = start;

  std::vector<Event> events;
  const uint64_t end = start + count;
  for (uint64_t first = start; first < end;) {
    const uint64_t n = std::min<uint64_t>(options.batch_records, end - first);
    events.clear();
    for (uint64_t i = 0; i < n; ++i) events.push_back(make_event(first + i));
    CommitBatch batch;
    batch.records.reserve(n);
    const int64_t commit_time = absl::ToUnixMicros(clock.Now());
    for (Event& e : events) {
      // Salts from options.salt_source, or RAND_bytes when it is empty.
      const CommittedPayload payload = CommitFields(e.fields, options.salt_source);
      uint64_t version = 0;
      if (auto it = stream_next.find(e.stream_id); it != stream_next.end()) {
        version = it->second;
      } else if (start > 0) {
        CL_ASSIGN_OR_RETURN(version, store->StreamLength(e.stream_id));
      }
      stream_next[e.stream_id] = version + 1;

      Record r;
      r.seq = tree.size();
      r.prev_hash = last_leaf_hash;
      r.commit_time_micros = commit_time;
      r.stream_id = e.stream_id;
      r.version = version;
      r.event_id = e.event_id;
      r.occurred_at_micros = e.occurred_at_micros;
      r.producer = std::move(e.producer);
      r.event_type = std::move(e.event_type);
      r.subject_ids = std::move(e.subject_ids);
      r.payload_commitment = payload.commitment;
      CommitBatch::StoredRecord stored{r.seq,         EncodeRecord(r), EncodePayload(payload.payload),
                                       e.stream_id, version,         e.event_id};
      const Hash leaf_hash = LeafHash(stored.leaf);
      tree.Append(leaf_hash, &batch.nodes);
      last_leaf_hash = leaf_hash;
      for (const std::string& id : r.subject_ids) {
        const Hash key = SubjectKey(id);
        auto [it, inserted] = subjects.try_emplace(key);
        if (inserted && start > 0) {
          CL_ASSIGN_OR_RETURN(it->second, store->GetSubjectHead(key));
        }
        it->second = SubjectChainAppend(it->second, r.seq, leaf_hash);
        batch.subject_entries.push_back({key, it->second.count - 1, r.seq, it->second.head});
        touched.insert(key);
      }
      batch.records.push_back(std::move(stored));
    }
    first += n;

    const uint64_t size = tree.size();
    const bool due = options.checkpoint_every_records > 0 &&
                     size - last_checkpoint >= options.checkpoint_every_records;
    if (due || size == end) {
      Hash subjects_root;
      if (options.checkpoint_every_records == 0 && start == 0) {
        // The whole map at once from its sorted leaves, written beside the
        // commit: a node per Set path costs far more at millions of subjects.
        std::vector<std::pair<Hash, SubjectState>> leaves(subjects.begin(), subjects.end());
        std::sort(leaves.begin(), leaves.end(),
                  [](const auto& a, const auto& b) { return a.first < b.first; });
        CL_ASSIGN_OR_RETURN(
            subjects_root,
            BuildSubjectMapNodes(leaves, /*batch=*/1 << 16,
                                 [store](std::vector<std::pair<std::string, std::string>> nodes) {
                                   return store->PutSubjectMapNodes(nodes, /*finish=*/false);
                                 }));
      } else {
        for (const Hash& key : touched) CL_RETURN_IF_ERROR(map.Set(key, subjects.at(key)));
        batch.subject_map_nodes = map.TakeWrites();
        subjects_root = map.Root();
      }
      touched.clear();
      struct Checkpoint cp;
      cp.origin = options.origin;
      cp.size = size;
      cp.root = tree.Root();
      cp.extensions.push_back(SubjectsExtensionLine(subjects_root));
      CL_ASSIGN_OR_RETURN(std::string note, SignCheckpoint(cp, *options.signer));
      batch.checkpoints.emplace_back(size, std::move(note));
      last_checkpoint = size;
    }
    batch.new_size = size;
    CL_RETURN_IF_ERROR(store->Commit(batch));
    if (options.progress) options.progress(size);
  }
  return absl::OkStatus();
}

}  // namespace caseledger
