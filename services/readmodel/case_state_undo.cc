#include "services/readmodel/case_state_undo.h"

#include <algorithm>
#include <optional>
#include <string>
#include <utility>

#include "services/readmodel/case_state_rows.h"

namespace caseledger {

absl::Status CaseStateUndo::Apply(const v1::Event& e, uint64_t seq, absl::Time commit_time,
                                  CaseState* state) {
  const size_t mark = steps_.size();
  const CaseState& s = *state;
  // The scalars (strings included: a few short ones) and the length of the
  // append-only manager history.
  steps_.push_back([case_id = s.case_id, status = s.status, program = s.program,
                    jurisdiction = s.jurisdiction, record_class = s.record_class,
                    opened_at = s.opened_at, closed_at = s.closed_at, disposed_at = s.disposed_at,
                    manager_id = s.manager_id, history = s.manager_history.size(),
                    version = s.version, last_seq = s.last_seq,
                    last_occurred_at = s.last_occurred_at,
                    last_committed_at = s.last_committed_at](CaseState* t) {
    t->case_id = case_id;
    t->status = status;
    t->program = program;
    t->jurisdiction = jurisdiction;
    t->record_class = record_class;
    t->opened_at = opened_at;
    t->closed_at = closed_at;
    t->disposed_at = disposed_at;
    t->manager_id = manager_id;
    t->manager_history.resize(history);
    t->version = version;
    t->last_seq = last_seq;
    t->last_occurred_at = last_occurred_at;
    t->last_committed_at = last_committed_at;
  });
  // Each item the event may touch: put back if it was there, else erased.
  const std::vector<std::string> keys = ItemKeysOf(e);
  const CaseItems before = ItemsPresent(keys, s);
  const std::vector<size_t> sizes = CollectionSizes(s);
  for (const auto& [c, id] : before) steps_.push_back(ItemRestorer(c, id, s));
  absl::Status applied = ApplyEvent(e, seq, commit_time, state);
  if (!applied.ok()) {
    steps_.resize(mark);  // ApplyEvent changed nothing
    return applied;
  }
  CaseItems added = ItemsAdded(keys, before, sizes, *state);
  if (!added.empty()) {
    steps_.push_back([added = std::move(added)](CaseState* t) {
      for (const auto& [c, id] : added) EraseItem(c, id, t);
    });
  }
  return applied;
}

void CaseStateUndo::RollBack(CaseState* state) {
  for (auto it = steps_.rbegin(); it != steps_.rend(); ++it) (*it)(state);
  steps_.clear();
}

}  // namespace caseledger
