// CaseService and DisclosureService: thin gRPC over the read models.
#ifndef CASELEDGER_SERVICES_API_CASE_SERVICE_H_
#define CASELEDGER_SERVICES_API_CASE_SERVICE_H_

#include "ledger/clock.h"
#include "proto/cases.grpc.pb.h"
#include "services/readmodel/projections.h"
#include "services/readmodel/projector.h"

namespace caseledger {

// Thread-safe. Everything passed in is borrowed and must outlive the service.
// Every call is authorized by the AuthzInterceptorFactory
// (authz_interceptor.h), whose verdict each handler returns first.
class CaseServiceImpl final : public v1::CaseService::Service {
 public:
  CaseServiceImpl(const Projector* projector, const CaseStateProjection* cases,
                  const Clock* clock = nullptr);
  grpc::Status GetCase(grpc::ServerContext* ctx, const v1::GetCaseRequest* req,
                       v1::CaseView* resp) override;
  grpc::Status ListCases(grpc::ServerContext* ctx, const v1::ListCasesRequest* req,
                         v1::ListCasesResponse* resp) override;

 private:
  const Projector* projector_;
  const CaseStateProjection* cases_;
  const Clock& clock_;
};

class DisclosureServiceImpl final : public v1::DisclosureService::Service {
 public:
  // `cases` serves the 42 CFR 2.24 list (GetAccountingRequest
  // part2_list_request_id); without it that list is FAILED_PRECONDITION.
  DisclosureServiceImpl(const Projector* projector, const AccountingProjection* accounting,
                        const Clock* clock = nullptr, const CaseStateProjection* cases = nullptr);
  grpc::Status GetAccounting(grpc::ServerContext* ctx, const v1::GetAccountingRequest* req,
                             v1::Accounting* resp) override;

 private:
  grpc::Status GetPart2List(const v1::GetAccountingRequest& req, absl::Time now,
                            v1::Accounting* resp);

  const Projector* projector_;
  const AccountingProjection* accounting_;
  const Clock& clock_;
  const CaseStateProjection* cases_;
};

// The summary fields of a case at time `now`.
v1::CaseSummary SummarizeCase(const CaseState& state, absl::Time now);

// True when a client request of the case is past its legal due date:
// access, accounting, amendment or 42 CFR 2.24 list (ListCases' `overdue`).
bool AnyRequestOverdue(const v1::CaseSummary& summary);

// The case state as CaseView.state_json: a v1::CaseStateJson in the proto JSON
// mapping (proto/cases.proto), proto field names, RFC 3339 times, enum names,
// unset fields left out.
std::string CaseStateToJson(const CaseState& state);

}  // namespace caseledger

#endif  // CASELEDGER_SERVICES_API_CASE_SERVICE_H_
