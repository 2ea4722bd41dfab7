// The one call at the top of every handler: identify the caller, check the
// policy table (services/api/authz.h), and record what must be recorded —
// every refusal (an access_refused event in the "@access" stream) and every
// allowed read of confidential content (a record_accessed event, in the
// case's own stream when the read is of one case) — before the handler
// answers. A read whose record cannot be written is not served.
#ifndef CASELEDGER_SERVICES_API_ACCESS_GUARD_H_
#define CASELEDGER_SERVICES_API_ACCESS_GUARD_H_

#include <grpcpp/server_context.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "ledger/ledger.h"
#include "services/api/authz.h"
#include "services/api/case_gate.h"

namespace caseledger {

// The CaseDirectory the server uses: the gate's view of each case, which
// includes appends accepted but not yet committed (so a producer may append
// to a case right after opening it on the same stream).
class GateCaseDirectory : public CaseDirectory {
 public:
  explicit GateCaseDirectory(CaseGate* gate) : gate_(gate) {}
  absl::StatusOr<CaseFacts> Facts(const std::string& case_id) override;

 private:
  CaseGate* const gate_;
};

// The RecordDirectory the server uses: the ledger's committed records.
class LedgerRecordDirectory : public RecordDirectory {
 public:
  // `ledger` is borrowed and must outlive the directory.
  explicit LedgerRecordDirectory(const Ledger* ledger) : ledger_(ledger) {}
  absl::StatusOr<RecordFacts> Facts(uint64_t seq) override;

 private:
  const Ledger* const ledger_;
};

struct AccessGuardOptions {
  // Plaintext callers are the kLocal principal (allowed everything, nothing
  // recorded). Only set when the server listens on loopback without TLS.
  bool insecure_loopback = false;
};

// Thread-safe. Everything passed in is borrowed and must outlive the guard.
class AccessGuard {
 public:
  AccessGuard(Authorizer* authz, CaseDirectory* cases, CaseGate* gate, Ledger* ledger,
              AccessGuardOptions options);

  // The caller of `ctx`'s call; UNAUTHENTICATED when it cannot be named.
  absl::StatusOr<Principal> Identify(const grpc::ServerContextBase* ctx) const;

  // Identify, then AdmitAs. The refusal (UNAUTHENTICATED or
  // PERMISSION_DENIED naming the rule) is recorded before it is returned.
  absl::StatusOr<Decision> Admit(const grpc::ServerContextBase* ctx, absl::string_view method,
                                 const Resource& resource);
  // Checks one more resource for a caller already identified (each event of
  // a stream). Records the refusal, or the confidential read.
  absl::StatusOr<Decision> AdmitAs(const Principal& who, absl::string_view method,
                                   const Resource& resource);

 private:
  void RecordRefusal(const Principal& who, absl::string_view method, const Resource& resource,
                     const absl::Status& refusal);
  absl::Status RecordAccess(const Principal& who, absl::string_view method,
                            const Resource& resource);
  std::vector<std::string> SubjectsOf(const Resource& resource);

  Authorizer* const authz_;
  CaseDirectory* const cases_;
  CaseGate* const gate_;
  Ledger* const ledger_;
  const AccessGuardOptions options_;
};

}  // namespace caseledger

#endif  // CASELEDGER_SERVICES_API_ACCESS_GUARD_H_
