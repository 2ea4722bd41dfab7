#include "services/readmodel/case_state_undo.h"

#include <optional>
#include <string>
#include <utility>

#include "services/readmodel/case_state_rows.h"

namespace caseledger {
namespace {

template <typename Map>
void SaveItems(Map CaseState::*field, const std::vector<std::string>& keys, const CaseState& s,
               std::vector<std::function<void(CaseState*)>>* steps) {
  const Map& map = s.*field;
  for (const std::string& key : keys) {
    auto it = map.find(key);
    if (it == map.end()) {
      steps->push_back([field, key](CaseState* t) { (t->*field).erase(key); });
    } else {
      steps->push_back([field, key, old = it->second](CaseState* t) { (t->*field)[key] = old; });
    }
  }
}

void SaveMembers(std::set<std::string> CaseState::*field, const std::vector<std::string>& keys,
                 const CaseState& s, std::vector<std::function<void(CaseState*)>>* steps) {
  for (const std::string& key : keys) {
    if ((s.*field).count(key) == 0) {
      steps->push_back([field, key](CaseState* t) { (t->*field).erase(key); });
    }
  }
}

}  // namespace

absl::Status CaseStateUndo::Apply(const v1::Event& e, uint64_t seq, absl::Time commit_time,
                                  CaseState* state) {
  const size_t mark = steps_.size();
  const std::vector<std::string> keys = ItemKeysOf(e);
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
  SaveItems(&CaseState::participants, keys, s, &steps_);
  SaveItems(&CaseState::consents, keys, s, &steps_);
  SaveItems(&CaseState::conflicts, keys, s, &steps_);
  SaveItems(&CaseState::entries, keys, s, &steps_);
  SaveItems(&CaseState::access_requests, keys, s, &steps_);
  SaveItems(&CaseState::pending_notices, keys, s, &steps_);
  SaveItems(&CaseState::accounting_requests, keys, s, &steps_);
  SaveItems(&CaseState::amendment_requests, keys, s, &steps_);
  SaveItems(&CaseState::legal_holds, keys, s, &steps_);
  SaveItems(&CaseState::accounting_suspensions, keys, s, &steps_);
  SaveMembers(&CaseState::disclosure_ids, keys, s, &steps_);
  SaveMembers(&CaseState::subject_ids, keys, s, &steps_);
  absl::Status applied = ApplyEvent(e, seq, commit_time, state);
  if (!applied.ok()) steps_.resize(mark);  // ApplyEvent changed nothing
  return applied;
}

void CaseStateUndo::RollBack(CaseState* state) {
  for (auto it = steps_.rbegin(); it != steps_.rend(); ++it) (*it)(state);
  steps_.clear();
}

}  // namespace caseledger
