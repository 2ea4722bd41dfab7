// The ResourceDirectory the server's authorization reads (authz.h): each
// case as the append gate sees it, and the ledger's committed records.
#ifndef CASELEDGER_SERVICES_API_AUTHZ_DIRECTORY_H_
#define CASELEDGER_SERVICES_API_AUTHZ_DIRECTORY_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "ledger/ledger.h"
#include "services/authz/authz.h"
#include "services/append/case_gate.h"

namespace caseledger {

// The case as `gate` sees it (committed plus accepted appends).
absl::StatusOr<CaseFacts> CaseFactsFromGate(CaseGate& gate, const std::string& case_id);

// Thread-safe. `gate` and `ledger` are borrowed and must outlive the
// directory.
class ServerResourceDirectory : public ResourceDirectory {
 public:
  ServerResourceDirectory(CaseGate* gate, const Ledger* ledger) : gate_(gate), ledger_(ledger) {}

  // The gate's view of the case, which includes appends accepted but not
  // yet committed (so a producer may append to a case right after opening
  // it on the same stream). The server's own '@' streams are no cases.
  absl::StatusOr<CaseFacts> Case(const std::string& case_id) override;
  // The ledger's committed record at `seq`.
  absl::StatusOr<RecordFacts> Record(uint64_t seq) override;

 private:
  CaseGate* const gate_;
  const Ledger* const ledger_;
};

}  // namespace caseledger

#endif  // CASELEDGER_SERVICES_API_AUTHZ_DIRECTORY_H_
