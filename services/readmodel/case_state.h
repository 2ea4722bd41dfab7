// The case-state projection: what is true of one case (one stream) after a
// prefix of its events. ApplyEvent folds committed events into a CaseState;
// it is deterministic (the same events in the same order give the same state
// and the same EncodeCaseState bytes) and lenient (an event the policy would
// refuse is still folded as well as it can be, because what the ledger
// committed is the record). services/policy/policy.h decides what may be appended.
//
// Times are kept at microsecond precision, as the ledger stores them
// (ledger/FORMAT.md occurred_at_micros). "Unset" is absl::InfinitePast() for a
// point in the past and absl::InfiniteFuture() for a deadline or expiry.
#ifndef CASELEDGER_SERVICES_CASE_STATE_H_
#define CASELEDGER_SERVICES_CASE_STATE_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "google/protobuf/timestamp.pb.h"
#include "proto/events.pb.h"

namespace caseledger {
namespace projection::v1 {
class AccountingSuspensionRecord;
}  // namespace projection::v1

enum class CaseStatus {
  kNotOpened = 0,  // no event yet: only case_opened is allowed
  kOpen = 1,
  kInterrupted = 2,  // services interrupted; the case is still open
  kClosed = 3,
  kDisposed = 4,  // records disposed of; terminal
};

// "not opened", "open", "interrupted", "closed", "disposed".
absl::string_view CaseStatusName(CaseStatus status);

// 45 CFR 164.524(b)(2): act on an access request within 30 days, with at most
// one 30-day extension.
inline constexpr absl::Duration kAccessResponseTime = absl::Hours(24 * 30);
inline constexpr absl::Duration kAccessExtension = absl::Hours(24 * 30);
// 45 CFR 164.528(c)(1): act on a request for an accounting within 60 days,
// with at most one 30-day extension.
inline constexpr absl::Duration kAccountingResponseTime = absl::Hours(24 * 60);
inline constexpr absl::Duration kAccountingExtension = absl::Hours(24 * 30);
// 45 CFR 164.526(b)(2): act on a request for amendment within 60 days, with
// at most one 30-day extension.
inline constexpr absl::Duration kAmendmentResponseTime = absl::Hours(24 * 60);
inline constexpr absl::Duration kAmendmentExtension = absl::Hours(24 * 30);
// 42 CFR 2.24(b)(1): the list of disclosures under a general designation is
// given within 30 days of receipt of the written request; no extension.
inline constexpr absl::Duration kPart2ListResponseTime = absl::Hours(24 * 30);
// 45 CFR 164.528(a)(2)(ii): an oral suspension lasts at most 30 days.
inline constexpr absl::Duration kOralSuspensionLimit = absl::Hours(24 * 30);

struct ManagerAssignment {
  std::string manager_id;
  std::string reason;  // "transfer: <reason>" when it came from case_transferred
  absl::Time at = absl::InfinitePast();
  uint64_t seq = 0;
};

// What an authorized representative may decide (events.proto
// RepresentativeAuthority); empty for other participants.
struct RepresentativeAuthority {
  std::string document_sha256;
  v1::RepresentativeScope scope = v1::REPRESENTATIVE_SCOPE_UNSPECIFIED;
  std::string program;
  absl::Time starts_at = absl::InfinitePast();  // the later of starts_at and added_at
  absl::Time ends_at = absl::InfiniteFuture();  // exclusive; InfiniteFuture: no end
};

struct Participant {
  std::string participant_id;
  v1::ParticipantRole role = v1::PARTICIPANT_ROLE_UNSPECIFIED;
  absl::Time added_at = absl::InfinitePast();
  RepresentativeAuthority authority;
};

struct Consent {
  std::string consent_id;
  std::string client_id;
  v1::GrantorKind grantor_kind = v1::GRANTOR_KIND_UNSPECIFIED;
  std::string grantor_id;
  std::set<std::string> recipients;  // recipient ids or names
  std::set<std::string> purposes;
  std::set<std::string> data_categories;
  absl::Time granted_at = absl::InfinitePast();
  absl::Time starts_at = absl::InfinitePast();     // InfinitePast: from the grant
  absl::Time expires_at = absl::InfiniteFuture();  // InfiniteFuture: no date
  std::string expiry_event;                        // informational
  bool revocable = false;
  bool revoked = false;
  absl::Time revoked_at = absl::InfiniteFuture();  // InfiniteFuture: not revoked
  std::string revoked_by;
  uint64_t granted_seq = 0;
  uint64_t revoked_seq = 0;
  // How it was given (ConsentGranted.informed).
  std::string language;
  v1::ComprehensionAid comprehension_aid = v1::COMPREHENSION_AID_UNSPECIFIED;
  v1::ConsentCapacity capacity = v1::CONSENT_CAPACITY_UNSPECIFIED;
  // 42 CFR 2.31(a)(4)(ii)(B): a class of recipients named by a general
  // designation, reached through `intermediary`; both empty when none.
  std::string general_designation;
  std::string intermediary;

  // True when `recipients` lists the recipient's id (when not empty) or name.
  bool NamesRecipient(absl::string_view recipient_id, absl::string_view name) const {
    return recipients.count(std::string(name)) > 0 ||
           (!recipient_id.empty() && recipients.count(std::string(recipient_id)) > 0);
  }

  // True when the consent was granted, has started, not expired and not been
  // revoked at t. A consent covers nothing before it was granted.
  bool ActiveAt(absl::Time t) const {
    return t >= granted_at && t >= starts_at && t < expires_at && t < revoked_at;
  }
};

struct Conflict {
  std::string conflict_id;
  std::string declared_by;
  absl::Time declared_at = absl::InfinitePast();
  bool resolved = false;
  absl::Time resolved_at = absl::InfinitePast();
  std::string resolution;
  std::string resolved_by;
  // NASW 2.06(a): the client is told of the conflict (client_informed_of_conflict);
  // until then it is a pending notice, resolved or not.
  bool client_informed = false;
  absl::Time client_informed_at = absl::InfinitePast();
  std::string client_informed_method;
};

// A documentation entry: written, or a new entry that amends an earlier one.
struct Entry {
  std::string entry_id;
  std::string data_category;    // an amendment inherits the original's
  std::string amends_entry_id;  // empty unless an amendment
  uint64_t seq = 0;
  absl::Time written_at = absl::InfinitePast();
};

// The decision on a client's request: access, accounting or amendment
// (kFulfilled: given, or for an amendment accepted).
enum class AccessDecision { kPending = 0, kFulfilled = 1, kDenied = 2 };

// The review of a denial of access (164.524(a)(4), (d)(4)).
enum class AccessReview { kNone = 0, kRequested = 1, kUpheld = 2, kOverturned = 3 };

struct AccessRequest {
  std::string request_id;
  std::string client_id;
  std::string requested_by;
  absl::Time requested_at = absl::InfinitePast();
  // 30 days after receipt, + 30 more once extended. Receipt is the earlier
  // of requested_at and the commit time (ApplyEvent), so a producer's clock
  // cannot move the legal deadline out.
  absl::Time due_at = absl::InfiniteFuture();
  bool extended = false;
  std::string extension_reason;
  AccessDecision decision = AccessDecision::kPending;
  absl::Time decided_at = absl::InfinitePast();
  // Set by access_denied; a review overturning it makes the request pending
  // again (decision kPending, review kOverturned) until it is fulfilled.
  v1::AccessDenialGround denial_ground = v1::ACCESS_DENIAL_GROUND_UNSPECIFIED;
  std::string denied_by;
  AccessReview review = AccessReview::kNone;
  absl::Time review_requested_at = absl::InfinitePast();
  absl::Time reviewed_at = absl::InfinitePast();
  std::string reviewer_id;
};

// A request for an accounting of disclosures (164.528(c)).
struct AccountingRequest {
  std::string request_id;
  std::string client_id;
  std::string requested_by;
  absl::Time requested_at = absl::InfinitePast();
  // Receipt: the earlier of requested_at and the commit time (as access).
  absl::Time received_at = absl::InfinitePast();
  absl::Time due_at = absl::InfiniteFuture();  // 60 days after receipt, +30 once extended
  bool extended = false;
  std::string extension_reason;
  std::string fee_notice;                              // empty: free
  AccessDecision decision = AccessDecision::kPending;  // kFulfilled once given
  absl::Time decided_at = absl::InfinitePast();
};

// A patient's request for the list of disclosures made under a consent's
// general designation (42 CFR 2.24; services/policy/RULES.md W14).
struct Part2ListRequest {
  std::string request_id;
  std::string client_id;
  std::string requested_by;
  std::string consent_id;  // the consent with the general designation
  absl::Time requested_at = absl::InfinitePast();
  // Receipt: the earlier of requested_at and the commit time (as access).
  absl::Time received_at = absl::InfinitePast();
  absl::Time due_at = absl::InfiniteFuture();          // 30 days after receipt
  AccessDecision decision = AccessDecision::kPending;  // kFulfilled once given
  absl::Time decided_at = absl::InfinitePast();
};

// A request to amend an entry (164.526), and what followed a denial.
struct AmendmentRequest {
  std::string request_id;
  std::string client_id;
  std::string requested_by;
  std::string entry_id;  // the entry to correct
  absl::Time requested_at = absl::InfinitePast();
  absl::Time due_at = absl::InfiniteFuture();  // 60 days after receipt, +30 once extended
  bool extended = false;
  std::string extension_reason;
  AccessDecision decision = AccessDecision::kPending;  // kFulfilled: accepted
  absl::Time decided_at = absl::InfinitePast();
  std::string amendment_entry_id;  // accepted: the record_amended entry
  v1::AmendmentDenialBasis denial_basis = v1::AMENDMENT_DENIAL_BASIS_UNSPECIFIED;
  bool disagreement_filed = false;  // the client's statement of disagreement
  absl::Time disagreement_at = absl::InfinitePast();
  bool rebutted = false;
  absl::Time rebutted_at = absl::InfinitePast();
};

// A legal hold: while not released, the case is not disposed of and the
// subjects it holds are not erased.
struct LegalHold {
  std::string hold_id;
  v1::LegalHoldScope scope = v1::LEGAL_HOLD_SCOPE_UNSPECIFIED;
  std::string client_id;  // LEGAL_HOLD_SCOPE_CLIENT
  v1::LegalHoldGround ground = v1::LEGAL_HOLD_GROUND_UNSPECIFIED;
  std::string authority;
  absl::Time placed_at = absl::InfinitePast();
  bool released = false;
  absl::Time released_at = absl::InfinitePast();
};

// A suspension of the client's accounting for disclosures to an agency
// (164.528(a)(2)); the accounting (services/readmodel/accounting.h) applies it.
struct AccountingSuspension {
  std::string case_id;  // the case whose disclosures it covers
  std::string suspension_id;
  std::string client_id;
  std::string agency_id;
  std::string agency_name;
  v1::SuspensionForm form = v1::SUSPENSION_FORM_UNSPECIFIED;
  absl::Time suspended_at = absl::InfinitePast();
  absl::Time ends_at = absl::InfiniteFuture();
};

// A disclosure the client has not yet been told about.
struct PendingNotice {
  std::string disclosure_id;
  std::string client_id;
  std::string recipient_name;
  absl::Time disclosed_at = absl::InfinitePast();
  // DisclosureMade.client_informed_at when given: when the client is to be told.
  absl::Time notify_by = absl::InfiniteFuture();
};

// A plain value; copy freely. Maps are ordered so that iteration and encoding
// are deterministic.
struct CaseState {
  std::string case_id;  // the stream id; empty until the first event
  CaseStatus status = CaseStatus::kNotOpened;
  std::string program;
  std::string jurisdiction;
  v1::RecordClass record_class = v1::RECORD_CLASS_UNSPECIFIED;
  absl::Time opened_at = absl::InfinitePast();
  absl::Time closed_at = absl::InfinitePast();  // the last closure; reset on reopening
  absl::Time disposed_at = absl::InfinitePast();

  std::string manager_id;                                // current; empty when none assigned
  std::vector<ManagerAssignment> manager_history;        // oldest first
  std::map<std::string, Participant> participants;       // current ones
  std::map<std::string, Consent> consents;               // granted, revoked ones included
  std::map<std::string, Conflict> conflicts;             // open and resolved
  std::map<std::string, Entry> entries;                  // every entry id of the case
  std::map<std::string, AccessRequest> access_requests;  // every request
  std::set<std::string> disclosure_ids;                  // every disclosure
  std::map<std::string, PendingNotice> pending_notices;  // by disclosure id
  std::map<std::string, AccountingRequest> accounting_requests;        // every request
  std::map<std::string, AmendmentRequest> amendment_requests;          // every request
  std::map<std::string, LegalHold> legal_holds;                        // placed and released
  std::map<std::string, AccountingSuspension> accounting_suspensions;  // every one
  std::map<std::string, Part2ListRequest> part2_list_requests;         // every request
  // Every subject named by the case's events (event.subject_ids): the people
  // a case-wide legal hold keeps from erasure.
  std::set<std::string> subject_ids;

  uint64_t version = 0;   // events applied
  uint64_t last_seq = 0;  // ledger seq of the last one (meaningful when version > 0)
  // The latest occurred_at of the case's events other than record_accessed
  // (a late-documented event dated earlier does not move it back; reads are
  // interleaved by the server at any time); services/policy/policy.h time order.
  absl::Time last_occurred_at = absl::InfinitePast();
  absl::Time last_committed_at = absl::InfinitePast();

  // Consents active at t (see Consent::ActiveAt), in id order.
  std::vector<const Consent*> ActiveConsents(absl::Time t) const;
  // Conflicts not resolved, in id order.
  std::vector<const Conflict*> OpenConflicts() const;
  // Conflicts the client has not been told of, resolved or not, in id order.
  std::vector<const Conflict*> PendingConflictNotices() const;
  // True when `person` declared a conflict in the case that is not resolved.
  bool HasOpenConflict(absl::string_view person) const;
  // Access requests without a decision, in id order.
  std::vector<const AccessRequest*> OpenAccessRequests() const;
  // Accounting and amendment requests without a decision, in id order.
  std::vector<const AccountingRequest*> OpenAccountingRequests() const;
  std::vector<const AmendmentRequest*> OpenAmendmentRequests() const;
  std::vector<const Part2ListRequest*> OpenPart2ListRequests() const;
  // Legal holds not released, in id order.
  std::vector<const LegalHold*> ActiveLegalHolds() const;
  // The active hold that keeps `subject_id` from erasure: a case-wide hold
  // when the case names the subject, or a hold on that client; null if none.
  const LegalHold* HoldOn(absl::string_view subject_id) const;
};

// Folds one committed event into *state. `seq` is the event's ledger seq and
// `commit_time` when the ledger committed it (the append gate passes its
// receipt time for an event not yet committed). Legal clocks that the law
// counts from receipt (access, accounting and amendment due dates, 45 CFR
// 164.524(b)(2), 164.528(c)(1), 164.526(b)(2)) run from the earlier of
// occurred_at and commit_time.
//   INVALID_ARGUMENT: no body, no occurred_at, or a stream_id other than the
//     state's case_id;
//   FAILED_PRECONDITION: seq not above state->last_seq (applied twice or out of
//     order).
// On error *state is unchanged.
absl::Status ApplyEvent(const v1::Event& e, uint64_t seq, absl::Time commit_time, CaseState* state);
// The errors ApplyEvent would return, without folding: OK means ApplyEvent
// of the same arguments succeeds.
absl::Status CheckApplicable(const v1::Event& e, uint64_t seq, const CaseState& state);

// Deterministic bytes (services/readmodel/case_state.proto CaseStateRecord).
std::string EncodeCaseState(const CaseState& state);
// One item as EncodeCaseState encodes it inside CaseStateRecord: the bytes
// of its element of the item's repeated field (a case's item row,
// services/readmodel/case_state_rows.h).
std::string EncodeCaseItem(const ManagerAssignment& item);
std::string EncodeCaseItem(const Participant& item);
std::string EncodeCaseItem(const Consent& item);
std::string EncodeCaseItem(const Conflict& item);
std::string EncodeCaseItem(const Entry& item);
std::string EncodeCaseItem(const AccessRequest& item);
std::string EncodeCaseItem(const AccountingRequest& item);
std::string EncodeCaseItem(const AmendmentRequest& item);
std::string EncodeCaseItem(const LegalHold& item);
std::string EncodeCaseItem(const Part2ListRequest& item);
std::string EncodeCaseItem(const PendingNotice& item);
std::string EncodeCaseItem(const AccountingSuspension& item);
// INVALID_ARGUMENT for bytes that are not an encoded CaseState.
absl::StatusOr<CaseState> DecodeCaseState(absl::string_view bytes);

// Shared helpers for the services' domain code.

// True for the 45 CFR 164.524(a)(3) grounds, which a licensed health care
// professional who did not take part in the denial may review; the
// (a)(1)-(2) grounds are not reviewable.
bool IsReviewableDenial(v1::AccessDenialGround ground);

// A suspension's persisted form (services/readmodel/case_state.proto), shared with the
// accounting (which adds the case id).
void EncodeSuspension(const AccountingSuspension& a,
                      projection::v1::AccountingSuspensionRecord* out);
AccountingSuspension DecodeSuspension(const projection::v1::AccountingSuspensionRecord& r);

// The message's deterministic serialization (map fields sorted).
std::string DeterministicBytes(const google::protobuf::Message& m);
// Unix microseconds; INT64_MIN / INT64_MAX stand for InfinitePast / InfiniteFuture.
int64_t TimeToMicros(absl::Time t);
absl::Time TimeFromMicros(int64_t micros);
// The Timestamp truncated to microseconds, as the ledger stores it.
absl::Time TimeFromProto(const google::protobuf::Timestamp& ts);
// RFC 3339 in UTC to the second, e.g. "2026-03-01T00:00:00Z"; "never" and
// "the beginning" for the infinities.
std::string FormatUtc(absl::Time t);
// The name of the event's body field, e.g. "disclosure_made"; "(no body)".
std::string EventTypeName(const v1::Event& e);

}  // namespace caseledger

#endif  // CASELEDGER_SERVICES_CASE_STATE_H_
