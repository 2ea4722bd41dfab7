// Maps ledger records to FHIR R4 resources: disclosures, reads and refusals
// as AuditEvents following IHE Basic Audit Log Patterns (BALP), consents as
// Consent resources. The mapping, event type by event type, is specified in
// FHIR.md beside this file; fhir_bundle_test.cc pins it with golden exports.
//
// JSON objects keep the order written (nlohmann::ordered_json): resourceType
// first, as FHIR examples have it. Pure functions: no I/O, no clock. The caller decides which records a
// reader may see and in which view (protected fields withheld or not); this
// code only maps what it is given, and never adds a field the record does
// not carry.
#ifndef CASELEDGER_SERVICES_FHIR_FHIR_BUNDLE_H_
#define CASELEDGER_SERVICES_FHIR_FHIR_BUNDLE_H_

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "proto/ledger.pb.h"

namespace caseledger {

// The URL of the extension every resource carries: the ledger record it
// comes from (seq, leaf hash, event type), so that a FHIR consumer can ask
// the ledger for the record's inclusion proof (`ledgerctl prove --seq=N`).
inline constexpr absl::string_view kFhirLedgerRecordExtension =
    "https://caseledger.dev/fhir/StructureDefinition/ledger-record";

struct FhirBundleOptions {
  // The ledger's checkpoint origin (e.g. "caseledger.local/log"): the audit
  // source, the source agent and the observer of every AuditEvent.
  std::string origin = "caseledger.local/log";
  // Bundle.type: "collection", or "searchset" (entries get search.mode
  // "match").
  bool searchset = false;
  // Bundle.timestamp.
  absl::Time produced_at = absl::UnixEpoch();
  // Records whose occurred_at is before this are consulted (a consent
  // granted earlier, for a disclosure's authorizer) but become no resource:
  // the export's time filter "from". A consent revoked at or after it still
  // shows its Consent (inactive) when the grant is before it.
  absl::Time emit_from = absl::InfinitePast();
};

// Whether an event type (the oneof field name in proto/events.proto, as the
// ledger stores it) has a FHIR form. Every body field of v1::Event is in
// exactly one of the two lists; fhir_bundle_test.cc checks that against the
// descriptor, so a new event type must be decided here and in FHIR.md.
bool HasFhirForm(absl::string_view event_type);
const std::vector<std::string>& EventTypesWithFhirForm();
const std::vector<std::string>& EventTypesWithoutFhirForm();

// The FHIR resources of `records` (in seq order, each rebuilt by
// ToWireRecord in the reader's view), as a Bundle. A consent_revoked
// record makes the Consent of its consent_granted (same case and consent_id,
// also in `records`) inactive; a disclosure under a consent in `records`
// names that consent's grantor as authorizer. Records whose content is
// withheld altogether (withheld_reason set: erased, disposed) and event
// types without a FHIR form produce no resource.
//  INVALID_ARGUMENT: a record without an event or without seq order.
absl::StatusOr<nlohmann::ordered_json> FhirBundle(const std::vector<v1::Record>& records,
                                          const FhirBundleOptions& options);

}  // namespace caseledger

#endif  // CASELEDGER_SERVICES_FHIR_FHIR_BUNDLE_H_
