#include "services/cluster/unserved_services.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "proto/access.grpc.pb.h"
#include "proto/audit.grpc.pb.h"
#include "proto/cases.grpc.pb.h"
#include "proto/keys.grpc.pb.h"
#include "services/authz/authz_verdict.h"

namespace caseledger {
namespace {

grpc::Status NotServed(const grpc::ServerContext* ctx, int partitions, const char* service,
                       const char* method) {
  if (grpc::Status refused = AuthzVerdict(*ctx); !refused.ok()) return refused;
  return grpc::Status(
      grpc::StatusCode::UNIMPLEMENTED,
      absl::StrCat(service, ".", method, ": not served with --pg_partitions=", partitions,
                   " (P > 1) yet: it is built over one ledger (ledger/CLUSTER.md \"Serving P > "
                   "1\")"));
}

#define CL_UNSERVED(Service, Method, Request, Response)                                  \
  grpc::Status Method(grpc::ServerContext* ctx, const v1::Request*, v1::Response*) override { \
    return NotServed(ctx, partitions_, #Service, #Method);                                \
  }

class Cases final : public v1::CaseService::Service {
 public:
  explicit Cases(int p) : partitions_(p) {}
  CL_UNSERVED(CaseService, GetCase, GetCaseRequest, CaseView)
  CL_UNSERVED(CaseService, ListCases, ListCasesRequest, ListCasesResponse)
 private:
  const int partitions_;
};

class Disclosures final : public v1::DisclosureService::Service {
 public:
  explicit Disclosures(int p) : partitions_(p) {}
  CL_UNSERVED(DisclosureService, GetAccounting, GetAccountingRequest, Accounting)
 private:
  const int partitions_;
};

class Access final : public v1::AccessService::Service {
 public:
  explicit Access(int p) : partitions_(p) {}
  CL_UNSERVED(AccessService, GetRecordHistory, GetRecordHistoryRequest, HistoryBundle)
  CL_UNSERVED(AccessService, ReadRecord, ReadRecordRequest, ReadRecordResponse)
  CL_UNSERVED(AccessService, GetAccessReport, GetAccessReportRequest, AccessReport)
  CL_UNSERVED(AccessService, ExportFhir, ExportFhirRequest, FhirExport)
 private:
  const int partitions_;
};

class Audit final : public v1::AuditService::Service {
 public:
  explicit Audit(int p) : partitions_(p) {}
  CL_UNSERVED(AuditService, VerifyRange, VerifyRangeRequest, VerifyRangeResponse)
  CL_UNSERVED(AuditService, GetMetrics, GetMetricsRequest, LedgerMetrics)
 private:
  const int partitions_;
};

class Witness final : public v1::WitnessService::Service {
 public:
  explicit Witness(int p) : partitions_(p) {}
  CL_UNSERVED(WitnessService, AddCosignature, AddCosignatureRequest, AddCosignatureResponse)
  CL_UNSERVED(WitnessService, GetCosignedCheckpoint, GetCosignedCheckpointRequest,
              CosignedCheckpoint)
  grpc::Status GetSubjectTransition(grpc::ServerContext* ctx, const v1::SubjectTransitionRequest*,
                                    grpc::ServerWriter<v1::SubjectTransitionChunk>*) override {
    return NotServed(ctx, partitions_, "WitnessService", "GetSubjectTransition");
  }
 private:
  const int partitions_;
};

class KeyAdmin final : public v1::KeyAdminService::Service {
 public:
  explicit KeyAdmin(int p) : partitions_(p) {}
  CL_UNSERVED(KeyAdminService, EraseSubject, EraseSubjectRequest, EraseSubjectResponse)
  CL_UNSERVED(KeyAdminService, RotateMasterKey, RotateMasterKeyRequest, RotateMasterKeyResponse)
 private:
  const int partitions_;
};

#undef CL_UNSERVED

}  // namespace

std::vector<std::unique_ptr<grpc::Service>> UnservedServices(int partitions) {
  std::vector<std::unique_ptr<grpc::Service>> out;
  out.push_back(std::make_unique<Cases>(partitions));
  out.push_back(std::make_unique<Disclosures>(partitions));
  out.push_back(std::make_unique<Access>(partitions));
  out.push_back(std::make_unique<Audit>(partitions));
  out.push_back(std::make_unique<Witness>(partitions));
  out.push_back(std::make_unique<KeyAdmin>(partitions));
  return out;
}

}  // namespace caseledger
