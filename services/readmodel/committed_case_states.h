// Where the append gate gets a case's committed state: the one fold of the
// case's records (ApplyEvent), as the case-state read model keeps it
// (ProjectedCaseStates, services/readmodel/projections.h: the stored state at
// the projector's position, plus the committed records the projector has
// queued but not applied yet, taken from the commit feed).
#ifndef CASELEDGER_SERVICES_READMODEL_COMMITTED_CASE_STATES_H_
#define CASELEDGER_SERVICES_READMODEL_COMMITTED_CASE_STATES_H_

#include <string>

#include "absl/status/statusor.h"
#include "services/readmodel/case_state.h"

namespace caseledger {

// Thread-safe.
class CommittedCaseStates {
 public:
  virtual ~CommittedCaseStates() = default;
  // The case's state folded over every record of the case committed before
  // the call (status kNotOpened and version 0 when there is none). The
  // caller makes sure no append to the case is in flight meanwhile.
  virtual absl::StatusOr<CaseState> Committed(const std::string& case_id) const = 0;
};

}  // namespace caseledger

#endif  // CASELEDGER_SERVICES_READMODEL_COMMITTED_CASE_STATES_H_
