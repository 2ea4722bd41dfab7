#include "ledger/store_verifier.h"

#include "absl/strings/str_cat.h"

namespace caseledger {

StoreVerifyReport VerifyStore(const LogStore& store, const StoreVerifyOptions& options) {
  StoreVerifyReport report;
  absl::StatusOr<uint64_t> size = store.Size();
  if (!size.ok()) {
    report.status = size.status();
    return report;
  }
  report.tree_size = *size;
  ChainVerifier verifier({options.note_verifier, options.origin, options.max_failures});
  absl::StatusOr<std::vector<StoredCheckpoint>> checkpoints = store.Checkpoints();
  if (!checkpoints.ok()) {
    report.status = checkpoints.status();
    return report;
  }
  for (StoredCheckpoint& cp : *checkpoints) verifier.ExpectCheckpoint(cp.size, std::move(cp.note));

  uint64_t n = 0;
  absl::Status scan = store.ScanRecords(0, [&](const LogStore::ScannedRecord& r) {
    std::optional<Hash> node;
    if (r.leaf_node.has_value()) {
      absl::StatusOr<Hash> h = HashFromBytes(*r.leaf_node);
      if (h.ok()) node = *h;
    }
    verifier.AddRecord(r.key_seq, r.leaf, r.payload, node);
    if (options.progress && ++n % options.progress_every == 0) options.progress(n, *size);
    return true;
  });
  report.status = verifier.Finish(*size);
  if (!scan.ok()) {
    report.status = absl::Status(scan.code(), absl::StrCat("reading the store: ", scan.message()));
  }
  report.records_checked = verifier.records_checked();
  report.checkpoints_checked = verifier.checkpoints_checked();
  report.root = verifier.Root();
  report.failures = verifier.failures();
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
  ChainVerifierOptions::Start start;
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
  chain.start = std::move(start);
  ChainVerifier verifier(std::move(chain));
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
