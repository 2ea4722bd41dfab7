// The domain policy checked before an event is appended: consent, legal
// basis, minimum necessary, 42 CFR Part 2, amendments and the case lifecycle.
// Plain functions of (state before the event, event); no I/O, no clock.
//
// Which code (the one place this is decided; README and services/policy/RULES.md
// point here):
//  - INVALID_ARGUMENT when the event by itself is malformed: a field it
//    needs is missing or bad, whatever the case holds. The message starts
//    with the field path, e.g. "disclosure_made.minimum_necessary: must not
//    be empty when legal_basis is LEGAL_BASIS_IMMINENT_HARM". This includes
//    the facts a disclosure's own legal_basis requires, and an occurred_at
//    beyond the allowed skew ahead of the server's receipt time.
//  - FAILED_PRECONDITION when a well-formed event is refused because of the
//    case's state or the law as it applies to that case (lifecycle, consent,
//    Part 2, time order). The message names the rule and the facts, e.g.
//      consent "c-17" does not cover data category "substance_use_treatment"
//      case "case-9" is closed: record_entry_written is not allowed
//
// Rules, in the order they are checked (services/policy/RULES.md lists each one
// with its legal source and the test that pins it):
//  1. Structure (INVALID_ARGUMENT): a body is set, occurred_at is set and at
//     most `max_ahead` after `received_at`, the body's required fields are
//     present, enums are known and not UNSPECIFIED, a late_documentation
//     marker has a reason, the basis-specific fields of a disclosure are
//     present (consent: consent_id; required_by_law and part2_court_order:
//     legal_citation; imminent_harm: justification and person_at_risk;
//     part2_medical_emergency, part2_research, part2_audit: justification;
//     minimum_necessary for required_by_law, imminent_harm, payment,
//     operations and every part2_* basis, 45 CFR 164.502(b) and 42 CFR
//     2.13(a)), a consent, disclosure or access request names its
//     client in event.subject_ids, and stream_id is the state's case.
//  2. Time order (FAILED_PRECONDITION): occurred_at is not more than
//     `max_behind` before the latest occurred_at of the case's events
//     (record_accessed excluded, CaseState::last_occurred_at) unless the
//     body carries late_documentation, and never before the case was opened.
//  3. Lifecycle (FAILED_PRECONDITION): a case with no events takes only
//     case_opened; case_opened only once; a closed case takes only access
//     events (access_*, record_accessed), records_disposed, case_reopened,
//     client_informed and consent_revoked (a client's notice and a client's
//     revocation are never refused); a disposed case takes only access
//     events; services_resumed needs an interrupted case; case_reopened and
//     records_disposed need a closed case; a case is not closed while an
//     access request has no decision.
//  4. The body's rules (FAILED_PRECONDITION): ids are unique within the case;
//     references (participant, conflict, consent, entry, disclosure, access
//     request) exist in the case; nothing is rewritten (an amendment is a new
//     entry of the same case that references an existing one); the
//     previous_manager_id of an assignment is the current manager; a consent
//     is granted by its client or an authorized representative of the case,
//     and for substance-use records carries a signed form and an expiry date,
//     event or condition (42 CFR 2.31(a)); a disclosure's basis is valid (see
//     CheckEvent below); one access extension, given before the request is
//     due (at the later of occurred_at and received_at, or at occurred_at
//     when marked late_documentation).
//  5. The client workflows (services/policy/RULES.md "Client workflows", W5-W13):
//     accounting requests and their suspension, amendment requests and
//     statements of disagreement, legal holds, reviewable denials of access.
//  6. Conflicts of interest (FAILED_PRECONDITION; NASW 2.06(a)): a person
//     with an unresolved conflict in the case is not disclosed_by, not
//     assigned or transferred the case, and never resolves their own
//     conflict (resolved_by is required); client_informed_of_conflict names
//     a declared conflict of the case, once.
//  7. Representatives: an authorized representative is added with the
//     authority document's hash, scope and dates (INVALID_ARGUMENT), and
//     their consents, revocations and access requests fall within them
//     (FAILED_PRECONDITION; 45 CFR 164.502(g), 42 CFR 2.15).
//  8. Informed consent (INVALID_ARGUMENT, NASW-derived 2.03): a consent
//     says the client was told of the right to revoke, the consequences of
//     refusing, the risk of re-disclosure and the limits of confidentiality,
//     in which language and with what aid (an interpreter named), and its
//     capacity matches the grantor (a representative says why).
#ifndef CASELEDGER_SERVICES_POLICY_H_
#define CASELEDGER_SERVICES_POLICY_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "proto/events.pb.h"
#include "services/readmodel/case_state.h"

namespace caseledger {

// How far a producer's occurred_at may run ahead of the server's clock by
// default (clock drift between machines); server flag --max_occurred_ahead.
inline constexpr absl::Duration kDefaultMaxOccurredAhead = absl::Minutes(5);
// How far a producer's occurred_at may fall before the case's latest event
// without late_documentation by default: two producers' clocks may differ by
// this much, so of two events sent at the same moment to one case the second
// to arrive may carry the earlier time; server flag --max_occurred_behind.
inline constexpr absl::Duration kDefaultMaxOccurredBehind = absl::Minutes(1);

// What the policy needs from the world, passed in by the caller: the policy
// reads no clock.
struct CheckContext {
  // When the server received the event (the append gate reads the ledger's
  // clock); the ledger's commit time is at or after it.
  absl::Time received_at = absl::InfiniteFuture();
  // occurred_at may be at most this far after received_at.
  absl::Duration max_ahead = kDefaultMaxOccurredAhead;
  // occurred_at may be at most this far before the case's latest event
  // without a late_documentation marker (clock skew between producers).
  absl::Duration max_behind = kDefaultMaxOccurredBehind;
};

// OK when `e` may be appended to the case whose state (before `e`) is
// `state`; a case without events has a default-constructed CaseState.
// INVALID_ARGUMENT for a malformed event, FAILED_PRECONDITION for an event
// without a valid basis (see "Which code" above). A refused event must not be
// stored.
//
// Disclosure basis (disclosure_made), checked at occurred_at:
//  - consent: the consent exists in this case, is for the same client, was
//    granted (its occurred_at) and has started at or before occurred_at, has
//    not expired (expires_at is exclusive) and was not revoked at or before
//    occurred_at, and covers the recipient (recipient_id or name listed in
//    its recipients), the purpose, and every data category disclosed;
//  - to_client: recipient.recipient_id is the client_id;
//  - substance-use records (RECORD_CLASS_SUBSTANCE_USE) take only consent,
//    to_client (42 CFR 2.23) and the part2_* exceptions, and every one but
//    to_client states its minimum_necessary (42 CFR 2.13(a)); part2_* bases
//    are refused for any other record class.
absl::Status CheckEvent(const CaseState& state, const v1::Event& e, const CheckContext& context);

// OK when no legal hold of the case keeps `subject_id` from erasure
// (KeyAdminService.EraseSubject asks every case): FAILED_PRECONDITION naming
// the hold when a hold on the whole case is active and the case names the
// subject (CaseState::subject_ids), or a hold on that client is active
// (services/policy/RULES.md W12).
absl::Status CheckErasure(const CaseState& state, absl::string_view subject_id);

}  // namespace caseledger

#endif  // CASELEDGER_SERVICES_POLICY_H_
