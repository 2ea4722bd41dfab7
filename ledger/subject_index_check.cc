#include "ledger/subject_index_check.h"

#include "absl/strings/str_cat.h"

namespace caseledger {

absl::Status SubjectIndexCheck::OnRecord(uint64_t seq, const LeafView& record,
                                         const Hash& leaf_hash) {
  if (!started_) {
    started_ = true;
    idle_ = seq != 0;
  }
  if (idle_) return absl::OkStatus();
  absl::Status s = builder_.AddLeaf(seq, leaf_hash, record);
  if (!s.ok()) {
    // A gap or a malformed record is the chain verifier's to report; the map
    // cannot be rebuilt past it.
    idle_ = true;
    return absl::DataLossError(absl::StrCat("subject index: ", s.message(),
                                            "; later subjects roots are not checked"));
  }
  return absl::OkStatus();
}

absl::Status SubjectIndexCheck::OnCheckpoint(const Checkpoint& checkpoint) {
  // Before the first record (size 0) or after a start mid-log there is
  // nothing rebuilt to compare with; the size must match what was added.
  if (idle_ || builder_.records() != checkpoint.size) return absl::OkStatus();
  ++checked_;
  absl::StatusOr<std::optional<Hash>> signed_root = SubjectRootFromExtensions(checkpoint.extensions);
  if (!signed_root.ok()) {
    return absl::DataLossError(absl::StrCat("subjects line: ", signed_root.status().message()));
  }
  if (!signed_root->has_value()) {
    return absl::DataLossError("subjects line: missing (every checkpoint commits to the subject "
                               "index, SUBJECT_INDEX.md)");
  }
  const Hash got = builder_.Root();
  if (**signed_root != got) {
    return absl::DataLossError(absl::StrCat("subjects root: signed ", ShortHex(**signed_root),
                                            ", records give ", ShortHex(got)));
  }
  return absl::OkStatus();
}

}  // namespace caseledger
