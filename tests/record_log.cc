#include "tests/record_log.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "ledger/record.h"

namespace caseledger {
namespace testing {

void RecordLog::Add(std::vector<std::string> subjects) {
  const uint64_t seq = records_.size();
  Record r;
  r.seq = seq;
  r.prev_hash = prev_;
  r.commit_time_micros = 1700000000000000 + static_cast<int64_t>(seq);
  r.stream_id = absl::StrCat("case-", seq % 7);
  r.version = seq / 7;
  r.event_id = absl::StrCat(tag_, "-ev-", seq);
  r.producer = "intake";
  r.event_type = "note.added";
  r.occurred_at_micros = r.commit_time_micros;
  r.payload_commitment = Sha256Of(absl::StrCat("payload ", seq));
  // SubjectIndexBuilder::Add refuses only a seq out of order, which cannot
  // happen here.
  r.subject_ids = std::move(subjects);
  records_.push_back(EncodeRecord(r));
  prev_ = LeafHash(records_.back());
  (void)builder_.Add(seq, prev_, r.subject_ids);
  tree_.Append(prev_, nullptr);
  ends_.push_back({tree_.size(), tree_.Root(), builder_.Root()});
}

SubjectTransitionEnd RecordLog::End(uint64_t size) const {
  if (size == 0) return {0, EmptyRoot(), EmptySubjectMapRoot()};
  return ends_.at(size - 1);
}

absl::StatusOr<SubjectTransition> RecordLog::TransitionFrom(uint64_t from_size) const {
  return SubjectTransitionFromRecords(records_, from_size);
}

}  // namespace testing
}  // namespace caseledger
