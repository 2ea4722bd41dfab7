// The domain policy checked before an event is appended: consent, legal
// basis, minimum necessary, 42 CFR Part 2, amendments and the case lifecycle.
// Plain functions of (state before the event, event); no I/O, no clock.
//
// Rules, in the order they are checked:
//  1. Structure (INVALID_ARGUMENT, the message starts with the field path,
//     e.g. "disclosure_made.recipient.name: must not be empty"): a body is
//     set, occurred_at is set, the body's required fields are present, enums
//     are known and not UNSPECIFIED, the basis-specific fields of a
//     disclosure are present (consent: consent_id; required_by_law and
//     part2_court_order: legal_citation; imminent_harm: justification and
//     person_at_risk; payment and operations: minimum_necessary;
//     part2_medical_emergency, part2_research, part2_audit: justification),
//     a consent, disclosure or access request names its client in
//     event.subject_ids, and stream_id is the state's case.
//  2. Lifecycle (FAILED_PRECONDITION): a case with no events takes only
//     case_opened; case_opened only once; a closed case takes only access
//     events (access_*, record_accessed), records_disposed, case_reopened,
//     client_informed and consent_revoked (a client's notice and a client's
//     revocation are never refused); a disposed case takes only access
//     events; services_resumed needs an interrupted case; case_reopened and
//     records_disposed need a closed case; a case is not closed while an
//     access request has no decision.
//  3. The body's rules (FAILED_PRECONDITION): ids are unique within the case;
//     references (participant, conflict, consent, entry, disclosure, access
//     request) exist in the case; nothing is rewritten (an amendment is a new
//     entry of the same case that references an existing one); the
//     previous_manager_id of an assignment is the current manager; a consent
//     is granted by its client or an authorized representative of the case,
//     and for substance-use records carries a signed form; a disclosure's
//     basis is valid (see CheckDisclosure below); one access extension,
//     given before the request is due.
//
// Every FAILED_PRECONDITION message names the rule and the facts, e.g.
//   consent "c-17" does not cover data category "substance_use_treatment"
//   case "case-9" is closed: record_entry_written is not allowed
#ifndef CASELEDGER_SERVICES_POLICY_H_
#define CASELEDGER_SERVICES_POLICY_H_

#include "absl/status/status.h"
#include "proto/events.pb.h"
#include "services/case_state.h"

namespace caseledger {

// OK when `e` may be appended to the case whose state (before `e`) is
// `state`; a case without events has a default-constructed CaseState.
// INVALID_ARGUMENT for a malformed event, FAILED_PRECONDITION for an event
// without a valid basis. A refused event must not be stored.
//
// Disclosure basis (disclosure_made), checked at occurred_at:
//  - consent: the consent exists in this case, is for the same client, has
//    started, has not expired (expires_at is exclusive) and was not revoked
//    at or before occurred_at, and covers the recipient (recipient_id or
//    name listed in its recipients), the purpose, and every data category
//    disclosed (minimum necessary);
//  - to_client: recipient.recipient_id is the client_id;
//  - substance-use records (RECORD_CLASS_SUBSTANCE_USE) take only consent,
//    to_client (42 CFR 2.23) and the part2_* exceptions; part2_* bases are
//    refused for any other record class.
absl::Status CheckEvent(const CaseState& state, const v1::Event& e);

}  // namespace caseledger

#endif  // CASELEDGER_SERVICES_POLICY_H_
