// The auditor's check of the per-subject index (SUBJECT_INDEX.md): while a
// verifier reads the log from seq 0, recompute the subject map and compare
// its root with the `subjects` line of every checkpoint.
#ifndef CASELEDGER_LEDGER_SUBJECT_INDEX_CHECK_H_
#define CASELEDGER_LEDGER_SUBJECT_INDEX_CHECK_H_

#include <cstdint>
#include <optional>

#include "absl/status/status.h"
#include "ledger/chain_verifier.h"
#include "ledger/subject_index.h"

namespace caseledger {

// A RecordObserver for ChainVerifier (and so VerifyStore and VerifyBundle).
// The map can only be rebuilt from the first record, so a verification that
// starts mid-log (a range or an incremental audit) leaves it idle: then
// checked() stays 0 and idle() says why.
class SubjectIndexCheck : public RecordObserver {
 public:
  absl::Status OnRecord(uint64_t seq, const LeafView& record, const Hash& leaf_hash) override;
  // DATA_LOSS when the checkpoint has no `subjects` line, a malformed one, or
  // a root other than the one its records give.
  absl::Status OnCheckpoint(const Checkpoint& checkpoint) override;

  // Checkpoints whose subjects root was compared and matched or not.
  uint64_t checked() const { return checked_; }
  // True when the records did not start at seq 0 (nothing can be checked).
  bool idle() const { return idle_; }

 private:
  SubjectIndexBuilder builder_;
  bool started_ = false;
  bool idle_ = false;
  uint64_t checked_ = 0;
};

}  // namespace caseledger

#endif  // CASELEDGER_LEDGER_SUBJECT_INDEX_CHECK_H_
