// The FHIR export of one client's records (AccessService.ExportFhir):
// which records, in which view, mapped by fhir_bundle.h. FHIR.md beside
// this file is the spec.
#ifndef CASELEDGER_SERVICES_FHIR_FHIR_EXPORT_H_
#define CASELEDGER_SERVICES_FHIR_FHIR_EXPORT_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ledger/ledger.h"
#include "proto/access.pb.h"

namespace caseledger {

struct FhirExportResult {
  v1::FhirExport response;
  // The records read to build it, as (case, seq): the caller records them
  // as record_accessed events before the response leaves.
  std::vector<std::pair<std::string, uint64_t>> reads;
};

// Checks `req` as the RPC's handler does before any work:
//  INVALID_ARGUMENT naming the field: no subject_id, from not before until.
absl::Status CheckExportFhirRequest(const v1::ExportFhirRequest& req);

// The export of `req.subject_id()`'s records at the ledger's latest
// checkpoint: those of `req.case_id()` (every case when empty) whose
// occurred_at is before `req.until()`, each rebuilt in the client view
// (protected fields withheld) unless `req.full_view()`, mapped to a FHIR R4
// Bundle; events before `req.from()` are consulted but not exported. Does
// not authorize (the interceptor did) and does not record the read. Codes
// as Ledger::History and Ledger::ReadMany, and CheckExportFhirRequest's.
absl::StatusOr<FhirExportResult> ExportFhir(const Ledger& ledger, const v1::ExportFhirRequest& req,
                                            absl::Time produced_at);

}  // namespace caseledger

#endif  // CASELEDGER_SERVICES_FHIR_FHIR_EXPORT_H_
