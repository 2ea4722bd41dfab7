// An in-memory log of real records (FORMAT.md "Record") with the reference
// values a checkpoint of it would carry at every size: the RFC 9162 root
// (MerkleTree) and the subjects root (SubjectIndexBuilder). For tests and
// benchmarks of subjects transitions and witnesses; no storage.
//
// Thread-compatible.
#ifndef CASELEDGER_TESTS_RECORD_LOG_H_
#define CASELEDGER_TESTS_RECORD_LOG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "ledger/hash.h"
#include "ledger/merkle_tree.h"
#include "ledger/subject_index.h"
#include "ledger/subject_transition.h"

namespace caseledger {
namespace testing {

class RecordLog {
 public:
  // `tag` goes into every record's event id, so logs with other tags fork.
  explicit RecordLog(std::string tag = "log") : tag_(std::move(tag)) {}

  // Appends a record naming `subjects` (in that order).
  void Add(std::vector<std::string> subjects);

  uint64_t size() const { return records_.size(); }
  const std::vector<std::string>& records() const { return records_; }
  // What a checkpoint at `size` (<= size()) says; size 0 is the empty tree
  // and map.
  SubjectTransitionEnd End(uint64_t size) const;
  // SubjectTransitionFromRecords over the whole log.
  absl::StatusOr<SubjectTransition> TransitionFrom(uint64_t from_size) const;

 private:
  std::string tag_;
  std::vector<std::string> records_;
  Hash prev_{};
  SubjectIndexBuilder builder_;
  MerkleTree tree_;
  std::vector<SubjectTransitionEnd> ends_;  // ends_[i] is End(i + 1)
};

}  // namespace testing
}  // namespace caseledger

#endif  // CASELEDGER_TESTS_RECORD_LOG_H_
