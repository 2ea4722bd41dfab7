// Provisional folds that can be taken back: the append gate applies each
// event of a batch to the case's cached state in place (ApplyEvent), and on
// a refusal later in the batch rolls the state back to exactly what it was,
// without copying the state up front.
#ifndef CASELEDGER_SERVICES_READMODEL_CASE_STATE_UNDO_H_
#define CASELEDGER_SERVICES_READMODEL_CASE_STATE_UNDO_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "proto/events.pb.h"
#include "services/readmodel/case_state.h"

namespace caseledger {

// Not thread-safe; used under the case's lock. Borrows nothing: RollBack
// takes the state again, which must be the one every Apply changed.
class CaseStateUndo {
 public:
  // Saves what `e` can change in *state (the scalars, and in each collection
  // the items keyed by one of the event's ids), then ApplyEvent. On error
  // *state is unchanged and nothing is recorded.
  absl::Status Apply(const v1::Event& e, uint64_t seq, absl::Time commit_time, CaseState* state);
  // Restores *state to what it was before the first Apply, newest first.
  void RollBack(CaseState* state);
  // Forgets what was saved (the applied events stay).
  void Commit() { steps_.clear(); }
  bool empty() const { return steps_.empty(); }

 private:
  // One saved step: restores one piece of the state.
  std::vector<std::function<void(CaseState*)>> steps_;
};

}  // namespace caseledger

#endif  // CASELEDGER_SERVICES_READMODEL_CASE_STATE_UNDO_H_
