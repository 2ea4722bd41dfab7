#include "ledger/store_verifier.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "ledger/internal/status_macros.h"
#include "ledger/merkle_verify.h"

namespace caseledger {
namespace {

uint64_t LastCovered(uint64_t size) { return size == 0 ? 0 : size - 1; }

// Ties the store to the auditor's checkpoint `since`. On success returns the
// store's tree at since.size and the leaf hash of record since.size - 1,
// both shown to match since.root; otherwise the failure (DATA_LOSS) saying
// what does not hold.
struct StartState {
  MerkleTree tree;
  Hash prev_leaf_hash{};
};

absl::StatusOr<StartState> TieToTrusted(const LogStore& store, uint64_t size,
                                        const TrustedCheckpoint& since) {
  if (since.size > size) {
    return absl::DataLossError(absl::StrCat("the tree size is ", size,
                                            ", below your checkpoint's size ", since.size,
                                            ": the ledger was rolled back or cut short"));
  }
  StartState start;
  absl::StatusOr<MerkleTree> tree = MerkleTree::Load(since.size, store);
  if (!tree.ok()) {
    return absl::DataLossError(absl::StrCat("reading the stored tree at your checkpoint's size ",
                                            since.size, ": ", tree.status().message()));
  }
  Hash root = tree->Root();
  if (root != since.root) {
    return absl::DataLossError(absl::StrCat(
        "the stored tree at your checkpoint's size ", since.size, " has root ", ShortHex(root),
        ", your checkpoint says ", ShortHex(since.root), ": the log was forked or rewritten"));
  }
  start.tree = *std::move(tree);
  if (since.size == 0) return start;
  // The last leaf before the start, proven against the trusted root: the
  // first new record's prev_hash must equal it.
  absl::StatusOr<std::string> leaf = store.GetLeaf(since.size - 1);
  if (!leaf.ok()) {
    return absl::DataLossError(
        absl::StrCat("record ", since.size - 1, ": ", leaf.status().message()));
  }
  start.prev_leaf_hash = LeafHash(*leaf);
  absl::StatusOr<std::vector<Hash>> proof = InclusionProof(since.size - 1, since.size, store);
  absl::Status s = proof.ok() ? VerifyInclusion(start.prev_leaf_hash, since.size - 1, since.size,
                                                *proof, since.root)
                              : proof.status();
  if (!s.ok()) {
    return absl::DataLossError(
        absl::StrCat("record ", since.size - 1,
                     " is not the last leaf of your checkpoint's tree: ", s.message()));
  }
  return start;
}

// The latest stored checkpoint extends the auditor's (RFC 9162 consistency
// proof from the stored nodes). OK when there is nothing to tie.
absl::Status CheckConsistencyToLatest(const LogStore& store, const TrustedCheckpoint& since,
                                      const StoreVerifyOptions& options, uint64_t* latest_size) {
  CL_ASSIGN_OR_RETURN(std::optional<StoredCheckpoint> latest, store.LatestCheckpoint());
  if (!latest.has_value() || latest->size < since.size) return absl::OkStatus();
  *latest_size = latest->size;
  absl::StatusOr<Checkpoint> cp =
      OpenCheckpoint(latest->note, *options.note_verifier, options.origin);
  // A bad note is reported where the records reach it; nothing to tie to.
  if (!cp.ok()) return absl::OkStatus();
  absl::StatusOr<std::vector<Hash>> proof = ConsistencyProof(since.size, cp->size, store);
  absl::Status s = proof.ok()
                       ? VerifyConsistency(since.size, cp->size, *proof, since.root, cp->root)
                       : proof.status();
  if (!s.ok()) {
    return absl::DataLossError(absl::StrCat("consistency from your checkpoint at size ", since.size,
                                            " to the latest at size ", cp->size, ": ",
                                            s.message()));
  }
  return absl::OkStatus();
}

// Each stored node of level >= 1 over the first `size` leaves must be the
// hash of its two stored children (level-0 nodes are checked against the
// records). Reads level by level in bounded chunks, from the node holding
// leaf `from` at each level.
void CheckNodes(const LogStore& store, uint64_t from, uint64_t size, ChainVerifier& verifier,
                uint64_t* checked) {
  constexpr uint64_t kChunk = 1 << 15;
  std::vector<std::pair<uint64_t, Hash>> children, parents;
  for (uint32_t level = 1; level < 64 && (size >> level) > 0; ++level) {
    uint64_t count = size >> level;  // perfect nodes at this level
    for (uint64_t begin = from >> level; begin < count; begin += kChunk) {
      uint64_t end = std::min(count, begin + kChunk);
      auto collect = [&store](uint32_t l, uint64_t lo, uint64_t hi,
                              std::vector<std::pair<uint64_t, Hash>>* out) {
        out->clear();
        return store.ScanNodes(l, lo, [&](uint64_t i, absl::string_view v) {
          if (i >= hi) return false;
          Hash h{};
          if (v.size() == kHashSize) std::copy(v.begin(), v.end(), h.begin());
          out->emplace_back(i, h);
          return true;
        });
      };
      absl::Status s = collect(level - 1, 2 * begin, 2 * end, &children);
      if (s.ok()) s = collect(level, begin, end, &parents);
      if (!s.ok()) {
        verifier.AddFailure(begin << level, absl::StrCat("reading Merkle nodes at level ", level,
                                                         ": ", s.message()));
        return;
      }
      // Index both by position; absent entries stay missing.
      size_t c = 0, p = 0;
      for (uint64_t j = begin; j < end; ++j) {
        const Hash* left = nullptr;
        const Hash* right = nullptr;
        const Hash* stored = nullptr;
        while (c < children.size() && children[c].first < 2 * j) ++c;
        if (c < children.size() && children[c].first == 2 * j) left = &children[c].second;
        if (c + 1 < children.size() && children[c + 1].first == 2 * j + 1) {
          right = &children[c + 1].second;
        }
        while (p < parents.size() && parents[p].first < j) ++p;
        if (p < parents.size() && parents[p].first == j) stored = &parents[p].second;
        uint64_t first_leaf = j << level;
        std::string where =
            absl::StrCat("Merkle node (level ", level, ", index ", j, ") over records ", first_leaf,
                         "..", first_leaf + (uint64_t{1} << level) - 1);
        ++*checked;
        if (stored == nullptr) {
          verifier.AddFailure(first_leaf, where + " is missing");
        } else if (left != nullptr && right != nullptr) {
          Hash want = NodeHash(*left, *right);
          if (want != *stored) {
            verifier.AddFailure(first_leaf, absl::StrCat(where, ": stored ", ShortHex(*stored),
                                                         ", its children give ", ShortHex(want)));
          }
        }
        // A missing child is reported at its own level.
      }
    }
  }
}

}  // namespace

StoreVerifyReport VerifyStore(const LogStore& store, const StoreVerifyOptions& options) {
  StoreVerifyReport report;
  absl::StatusOr<uint64_t> size = store.Size();
  if (!size.ok()) {
    report.status = size.status();
    return report;
  }
  report.tree_size = *size;
  ChainVerifier verifier({options.note_verifier, options.origin, options.max_failures,
                          options.check_event_ids, options.observer});

  // An incremental audit starts where the auditor's checkpoint ends, once the
  // store is shown to hold that very tree; otherwise from 0.
  uint64_t from = 0;
  if (options.since.has_value()) {
    absl::StatusOr<StartState> start = TieToTrusted(store, *size, *options.since);
    if (start.ok()) {
      from = options.since->size;
      verifier.StartAt(start->tree, start->prev_leaf_hash);
      report.since_checked = true;
      uint64_t latest = 0;
      absl::Status s = CheckConsistencyToLatest(store, *options.since, options, &latest);
      if (!s.ok()) {
        verifier.AddFailure(LastCovered(latest), std::string(s.message()));
        report.since_checked = false;
      }
    } else {
      // Rolled back or forked: say so first, then check the rest from 0.
      verifier.AddFailure(LastCovered(std::min(options.since->size, *size)),
                          std::string(start.status().message()));
    }
  }
  report.first_seq = from;
  if (*size > from) verifier.ExpectRecords(*size - from);

  absl::StatusOr<std::vector<StoredCheckpoint>> checkpoints = store.Checkpoints();
  if (!checkpoints.ok()) {
    report.status = checkpoints.status();
    return report;
  }
  for (StoredCheckpoint& cp : *checkpoints) {
    if (cp.size >= from) verifier.ExpectCheckpoint(cp.size, std::move(cp.note));
  }

  uint64_t n = 0;
  absl::Status scan = store.ScanRecords(from, [&](const LogStore::ScannedRecord& r) {
    std::optional<Hash> node;
    if (r.leaf_node.has_value()) {
      absl::StatusOr<Hash> h = HashFromBytes(*r.leaf_node);
      if (h.ok()) {
        node = *h;
      } else {
        verifier.AddFailure(
            r.key_seq,
            absl::StrCat("record ", r.key_seq, ": stored Merkle node: ", h.status().message()));
      }
    } else {
      verifier.AddFailure(r.key_seq,
                          absl::StrCat("record ", r.key_seq, ": its Merkle leaf node is missing"));
    }
    verifier.AddRecord(r.key_seq, r.leaf, r.payload, node);
    if (options.progress && ++n % options.progress_every == 0) options.progress(n, *size);
    return true;
  });
  if (options.check_nodes) CheckNodes(store, from, *size, verifier, &report.nodes_checked);
  report.status = verifier.Finish(*size);
  if (!scan.ok()) {
    report.status = absl::Status(scan.code(), absl::StrCat("reading the store: ", scan.message()));
  }
  report.records_checked = verifier.records_checked();
  report.checkpoints_checked = verifier.checkpoints_checked();
  report.root = verifier.Root();
  report.failures = verifier.failures();
  report.failures_seen = verifier.failures_seen();
  if (verifier.latest_checkpoint().has_value()) {
    report.latest_size = verifier.latest_checkpoint()->size;
    report.latest_note = verifier.latest_note();
  }
  if (options.progress) options.progress(verifier.records_checked(), *size);
  return report;
}

StoreVerifyReport VerifyStoreRange(const LogStore& store, uint64_t from, uint64_t to,
                                   const StoreVerifyOptions& options) {
  StoreVerifyReport report;
  absl::StatusOr<uint64_t> size = store.Size();
  if (!size.ok()) {
    report.status = size.status();
    return report;
  }
  report.tree_size = *size;
  if (from > to || to > *size) {
    report.status = absl::InvalidArgumentError(absl::StrCat(
        "range: got [", from, ", ", to, "), want from <= to <= the tree size ", *size));
    return report;
  }
  ChainVerifierOptions chain{options.note_verifier, options.origin, options.max_failures};
  // The prefix [0, from) is taken as given: its stored nodes are what later
  // checkpoints are checked against.
  struct {
    MerkleTree tree;
    Hash prev_leaf_hash{};
  } start;
  absl::StatusOr<MerkleTree> tree = MerkleTree::Load(from, store);
  if (!tree.ok()) {
    report.status =
        absl::Status(tree.status().code(),
                     absl::StrCat("Merkle frontier at size ", from, ": ", tree.status().message()));
    return report;
  }
  start.tree = *std::move(tree);
  if (from > 0) {
    absl::StatusOr<Hash> prev = store.GetNode(0, from - 1);
    if (!prev.ok()) {
      report.status = absl::Status(
          prev.status().code(),
          absl::StrCat("leaf hash of record ", from - 1, ": ", prev.status().message()));
      return report;
    }
    start.prev_leaf_hash = *prev;
  }
  ChainVerifier verifier(std::move(chain));
  verifier.StartAt(start.tree, start.prev_leaf_hash);
  // Only the range's checkpoints: a long-lived log has millions.
  absl::StatusOr<std::vector<StoredCheckpoint>> checkpoints = store.CheckpointsIn(from + 1, to);
  if (!checkpoints.ok()) {
    report.status = checkpoints.status();
    return report;
  }
  for (StoredCheckpoint& cp : *checkpoints) verifier.ExpectCheckpoint(cp.size, std::move(cp.note));
  absl::Status scan = store.ScanRecords(from, [&](const LogStore::ScannedRecord& r) {
    if (r.key_seq >= to) return false;
    std::optional<Hash> node;
    if (r.leaf_node.has_value()) {
      absl::StatusOr<Hash> h = HashFromBytes(*r.leaf_node);
      if (h.ok()) node = *h;
    }
    verifier.AddRecord(r.key_seq, r.leaf, r.payload, node);
    return true;
  });
  report.status = verifier.Finish(to);
  if (!scan.ok()) {
    report.status = absl::Status(scan.code(), absl::StrCat("reading the store: ", scan.message()));
  }
  report.records_checked = verifier.records_checked();
  report.checkpoints_checked = verifier.checkpoints_checked();
  report.root = verifier.Root();
  report.failures = verifier.failures();
  return report;
}

}  // namespace caseledger
