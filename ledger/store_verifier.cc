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

}  // namespace caseledger
