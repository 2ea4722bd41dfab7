#include "services/readmodel/case_state.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "ledger/internal/status_macros.h"
#include "services/readmodel/case_state.pb.h"

namespace caseledger {
namespace {

namespace pv1 = ::caseledger::projection::v1;

constexpr uint32_t kFormatVersion = 1;

int64_t Micros(absl::Time t) { return TimeToMicros(t); }
absl::Time FromMicros(int64_t m) { return TimeFromMicros(m); }

// When a client's request (access, accounting, amendment) was received
// (RULES.md T6): from the commit time, or from occurred_at when that is
// earlier (received on paper and recorded late). A future occurred_at never
// moves a due date out.
absl::Time ReceivedAt(absl::Time occurred_at, absl::Time commit_time) {
  return std::min(occurred_at, commit_time);
}

// The one extension a client's request may have (T7, W5.3, W7.2): `by`
// more, with its reason. Lenient like the fold: an unknown or already
// extended request is left alone.
template <typename Request>
void ExtendOnce(std::map<std::string, Request>* requests, const std::string& id,
                const std::string& reason, absl::Duration by) {
  auto it = requests->find(id);
  if (it == requests->end() || it->second.extended) return;
  it->second.extended = true;
  it->second.extension_reason = reason;
  it->second.due_at += by;
}

// A pending request given at `at` (an accounting, a 42 CFR 2.24 list).
// Lenient like the fold: an unknown or already decided request is left alone.
template <typename Request>
void FulfillOnce(std::map<std::string, Request>* requests, const std::string& id, absl::Time at) {
  auto it = requests->find(id);
  if (it == requests->end() || it->second.decision != AccessDecision::kPending) return;
  it->second.decision = AccessDecision::kFulfilled;
  it->second.decided_at = at;
}

// A client's request (access, accounting, amendment) as its body opens it:
// the ids, when it was made, and due `within` of its receipt (ReceivedAt).
template <typename Request, typename Body>
Request OpenRequest(const Body& b, absl::Time at, absl::Time commit_time,
                    absl::Duration within) {
  Request r;
  r.request_id = b.request_id();
  r.client_id = b.client_id();
  r.requested_by = b.requested_by();
  r.requested_at = at;
  r.due_at = ReceivedAt(at, commit_time) + within;
  return r;
}

// A client's requests without a decision, in id order.
template <typename Request>
std::vector<const Request*> Pending(const std::map<std::string, Request>& requests) {
  std::vector<const Request*> out;
  for (const auto& [id, r] : requests) {
    if (r.decision == AccessDecision::kPending) out.push_back(&r);
  }
  return out;
}

// Folds the body. Lenient: references to unknown ids are ignored.
void ApplyBody(const v1::Event& e, uint64_t seq, absl::Time at, absl::Time commit_time,
               CaseState* s) {
  switch (e.body_case()) {
    case v1::Event::kCaseOpened: {
      const auto& b = e.case_opened();
      s->status = CaseStatus::kOpen;
      s->program = b.program();
      s->jurisdiction = b.jurisdiction();
      s->record_class = b.record_class();
      s->opened_at = at;
      break;
    }
    case v1::Event::kParticipantAdded: {
      const auto& b = e.participant_added();
      Participant p{b.participant_id(), b.role(), at};
      if (b.has_authority()) {
        const auto& a = b.authority();
        p.authority.document_sha256 = a.document_sha256();
        p.authority.scope = a.scope();
        p.authority.program = a.program();
        p.authority.starts_at = a.has_starts_at() ? std::max(at, TimeFromProto(a.starts_at())) : at;
        if (a.has_ends_at()) p.authority.ends_at = TimeFromProto(a.ends_at());
      }
      s->participants[b.participant_id()] = std::move(p);
      break;
    }
    case v1::Event::kParticipantRemoved:
      s->participants.erase(e.participant_removed().participant_id());
      break;
    case v1::Event::kCaseManagerAssigned: {
      const auto& b = e.case_manager_assigned();
      s->manager_id = b.manager_id();
      s->manager_history.push_back(ManagerAssignment{b.manager_id(), b.reason(), at, seq});
      break;
    }
    case v1::Event::kConflictDeclared: {
      const auto& b = e.conflict_declared();
      Conflict c;
      c.conflict_id = b.conflict_id();
      c.declared_by = b.declared_by();
      c.declared_at = at;
      s->conflicts[b.conflict_id()] = std::move(c);
      break;
    }
    case v1::Event::kConflictResolved: {
      const auto& b = e.conflict_resolved();
      auto it = s->conflicts.find(b.conflict_id());
      if (it == s->conflicts.end()) break;
      it->second.resolved = true;
      it->second.resolved_at = at;
      it->second.resolution = b.resolution();
      it->second.resolved_by = b.resolved_by();
      break;
    }
    case v1::Event::kClientInformedOfConflict: {
      const auto& b = e.client_informed_of_conflict();
      auto it = s->conflicts.find(b.conflict_id());
      if (it == s->conflicts.end() || it->second.client_informed) break;
      it->second.client_informed = true;
      it->second.client_informed_at = at;
      it->second.client_informed_method = b.method();
      break;
    }
    case v1::Event::kReferralMade:
      break;
    case v1::Event::kCaseTransferred: {
      const auto& b = e.case_transferred();
      if (!b.to_manager_id().empty()) {
        s->manager_id = b.to_manager_id();
        s->manager_history.push_back(
            ManagerAssignment{b.to_manager_id(), absl::StrCat("transfer: ", b.reason()), at, seq});
      }
      if (!b.to_program().empty()) s->program = b.to_program();
      break;
    }
    case v1::Event::kServicesInterrupted:
      s->status = CaseStatus::kInterrupted;
      break;
    case v1::Event::kServicesResumed:
      s->status = CaseStatus::kOpen;
      break;
    case v1::Event::kCaseClosed:
      s->status = CaseStatus::kClosed;
      s->closed_at = at;
      break;
    case v1::Event::kCaseReopened:
      s->status = CaseStatus::kOpen;
      s->closed_at = absl::InfinitePast();
      break;
    case v1::Event::kRecordsDisposed:
      s->status = CaseStatus::kDisposed;
      s->disposed_at = at;
      break;
    case v1::Event::kRecordEntryWritten: {
      const auto& b = e.record_entry_written();
      s->entries[b.entry_id()] = Entry{b.entry_id(), b.data_category(), "", seq, at};
      break;
    }
    case v1::Event::kRecordAmended: {
      const auto& b = e.record_amended();
      std::string category;
      auto it = s->entries.find(b.amends_entry_id());
      if (it != s->entries.end()) category = it->second.data_category;
      s->entries[b.entry_id()] = Entry{b.entry_id(), category, b.amends_entry_id(), seq, at};
      break;
    }
    case v1::Event::kConsentGranted: {
      const auto& b = e.consent_granted();
      Consent c;
      c.consent_id = b.consent_id();
      c.client_id = b.client_id();
      c.grantor_kind = b.grantor_kind();
      c.grantor_id = b.grantor_id();
      c.recipients.insert(b.recipients().begin(), b.recipients().end());
      c.purposes.insert(b.purposes().begin(), b.purposes().end());
      c.data_categories.insert(b.data_categories().begin(), b.data_categories().end());
      c.granted_at = at;
      if (b.has_starts_at()) c.starts_at = TimeFromProto(b.starts_at());
      if (b.has_expires_at()) c.expires_at = TimeFromProto(b.expires_at());
      c.expiry_event = b.expiry_event();
      c.revocable = b.revocable();
      c.granted_seq = seq;
      c.language = b.informed().language();
      c.comprehension_aid = b.informed().comprehension_aid();
      c.capacity = b.informed().capacity();
      c.general_designation = b.general_designation();
      c.intermediary = b.intermediary();
      s->consents[b.consent_id()] = std::move(c);
      break;
    }
    case v1::Event::kConsentRevoked: {
      const auto& b = e.consent_revoked();
      auto it = s->consents.find(b.consent_id());
      if (it == s->consents.end() || it->second.revoked) break;
      it->second.revoked = true;
      it->second.revoked_at = at;
      it->second.revoked_by = b.revoked_by();
      it->second.revoked_seq = seq;
      break;
    }
    case v1::Event::kDisclosureMade: {
      const auto& b = e.disclosure_made();
      s->disclosure_ids.insert(b.disclosure_id());
      if (!b.client_informed()) {
        PendingNotice n;
        n.disclosure_id = b.disclosure_id();
        n.client_id = b.client_id();
        n.recipient_name = b.recipient().name();
        n.disclosed_at = at;
        if (b.has_client_informed_at()) n.notify_by = TimeFromProto(b.client_informed_at());
        s->pending_notices[b.disclosure_id()] = std::move(n);
      }
      break;
    }
    case v1::Event::kClientInformed:
      s->pending_notices.erase(e.client_informed().disclosure_id());
      break;
    case v1::Event::kAccessRequested: {
      const auto& b = e.access_requested();
      s->access_requests[b.request_id()] =
          OpenRequest<AccessRequest>(b, at, commit_time, kAccessResponseTime);
      break;
    }
    case v1::Event::kAccessFulfilled:
    case v1::Event::kAccessDenied: {
      const std::string& id = e.has_access_fulfilled() ? e.access_fulfilled().request_id()
                                                       : e.access_denied().request_id();
      auto it = s->access_requests.find(id);
      if (it == s->access_requests.end() || it->second.decision != AccessDecision::kPending) break;
      it->second.decision =
          e.has_access_fulfilled() ? AccessDecision::kFulfilled : AccessDecision::kDenied;
      it->second.decided_at = at;
      if (e.has_access_denied()) {
        it->second.denial_ground = e.access_denied().ground();
        it->second.denied_by = e.access_denied().denied_by();
      }
      break;
    }
    case v1::Event::kAccessReviewRequested: {
      auto it = s->access_requests.find(e.access_review_requested().request_id());
      if (it == s->access_requests.end() || it->second.review != AccessReview::kNone) break;
      it->second.review = AccessReview::kRequested;
      it->second.review_requested_at = at;
      break;
    }
    case v1::Event::kAccessReviewed: {
      const auto& b = e.access_reviewed();
      auto it = s->access_requests.find(b.request_id());
      if (it == s->access_requests.end() || it->second.review != AccessReview::kRequested) break;
      AccessRequest& r = it->second;
      r.reviewed_at = at;
      r.reviewer_id = b.reviewer_id();
      if (b.outcome() == v1::ACCESS_REVIEW_OUTCOME_OVERTURNED) {
        // Binding (164.524(d)(4)): access is now owed, at once.
        r.review = AccessReview::kOverturned;
        r.decision = AccessDecision::kPending;
        r.decided_at = absl::InfinitePast();
        r.due_at = std::min(r.due_at, ReceivedAt(at, commit_time));
      } else {
        r.review = AccessReview::kUpheld;
      }
      break;
    }
    case v1::Event::kAccountingRequested: {
      const auto& b = e.accounting_requested();
      auto r = OpenRequest<AccountingRequest>(b, at, commit_time, kAccountingResponseTime);
      r.received_at = ReceivedAt(at, commit_time);
      r.fee_notice = b.fee_notice();
      s->accounting_requests[b.request_id()] = std::move(r);
      break;
    }
    case v1::Event::kAccountingFulfilled:
      FulfillOnce(&s->accounting_requests, e.accounting_fulfilled().request_id(), at);
      break;
    case v1::Event::kAccountingExtended:
      ExtendOnce(&s->accounting_requests, e.accounting_extended().request_id(), e.accounting_extended().reason(), kAccountingExtension);
      break;
    case v1::Event::kAccountingSuspended: {
      const auto& b = e.accounting_suspended();
      AccountingSuspension a;
      a.case_id = e.stream_id();
      a.suspension_id = b.suspension_id();
      a.client_id = b.client_id();
      a.agency_id = b.agency_id();
      a.agency_name = b.agency_name();
      a.form = b.form();
      a.suspended_at = at;
      if (b.has_ends_at()) a.ends_at = TimeFromProto(b.ends_at());
      s->accounting_suspensions[b.suspension_id()] = std::move(a);
      break;
    }
    case v1::Event::kAmendmentRequested: {
      const auto& b = e.amendment_requested();
      auto r = OpenRequest<AmendmentRequest>(b, at, commit_time, kAmendmentResponseTime);
      r.entry_id = b.entry_id();
      s->amendment_requests[b.request_id()] = std::move(r);
      break;
    }
    case v1::Event::kAmendmentAccepted:
    case v1::Event::kAmendmentDenied: {
      const std::string& id = e.has_amendment_accepted() ? e.amendment_accepted().request_id()
                                                         : e.amendment_denied().request_id();
      auto it = s->amendment_requests.find(id);
      if (it == s->amendment_requests.end() || it->second.decision != AccessDecision::kPending) {
        break;
      }
      it->second.decided_at = at;
      if (e.has_amendment_accepted()) {
        it->second.decision = AccessDecision::kFulfilled;
        it->second.amendment_entry_id = e.amendment_accepted().amendment_entry_id();
      } else {
        it->second.decision = AccessDecision::kDenied;
        it->second.denial_basis = e.amendment_denied().basis();
      }
      break;
    }
    case v1::Event::kAmendmentExtended:
      ExtendOnce(&s->amendment_requests, e.amendment_extended().request_id(), e.amendment_extended().reason(), kAmendmentExtension);
      break;
    case v1::Event::kDisagreementFiled: {
      auto it = s->amendment_requests.find(e.disagreement_filed().request_id());
      if (it == s->amendment_requests.end() || it->second.disagreement_filed) break;
      it->second.disagreement_filed = true;
      it->second.disagreement_at = at;
      break;
    }
    case v1::Event::kDisagreementRebutted: {
      auto it = s->amendment_requests.find(e.disagreement_rebutted().request_id());
      if (it == s->amendment_requests.end() || it->second.rebutted) break;
      it->second.rebutted = true;
      it->second.rebutted_at = at;
      break;
    }
    case v1::Event::kLegalHoldPlaced: {
      const auto& b = e.legal_hold_placed();
      LegalHold h;
      h.hold_id = b.hold_id();
      h.scope = b.scope();
      h.client_id = b.client_id();
      h.ground = b.ground();
      h.authority = b.authority();
      h.placed_at = at;
      s->legal_holds[b.hold_id()] = std::move(h);
      break;
    }
    case v1::Event::kLegalHoldReleased: {
      auto it = s->legal_holds.find(e.legal_hold_released().hold_id());
      if (it == s->legal_holds.end() || it->second.released) break;
      it->second.released = true;
      it->second.released_at = at;
      break;
    }
    case v1::Event::kAccessExtended:
      ExtendOnce(&s->access_requests, e.access_extended().request_id(), e.access_extended().reason(), kAccessExtension);
      break;
    case v1::Event::kPart2ListRequested: {
      const auto& b = e.part2_list_requested();
      auto r = OpenRequest<Part2ListRequest>(b, at, commit_time, kPart2ListResponseTime);
      r.received_at = ReceivedAt(at, commit_time);
      r.consent_id = b.consent_id();
      s->part2_list_requests[b.request_id()] = std::move(r);
      break;
    }
    case v1::Event::kPart2ListProvided:
      FulfillOnce(&s->part2_list_requests, e.part2_list_provided().request_id(), at);
      break;
    case v1::Event::kRecordAccessed:
    case v1::Event::kAccessRefused:
    case v1::Event::kSubjectErased:
    case v1::Event::kMasterKeyRotated:
    case v1::Event::BODY_NOT_SET:
      break;
  }
}

absl::Status CheckDecision(absl::string_view kind, const std::string& id, int32_t decision) {
  if (decision >= 0 && decision <= static_cast<int32_t>(AccessDecision::kDenied)) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat("case state: ", kind, " request \"", id,
                                                 "\" decision got ", decision, ", want 0..2"));
}

void SetStrings(const std::set<std::string>& in,
                google::protobuf::RepeatedPtrField<std::string>* out) {
  for (const auto& v : in) *out->Add() = v;
}

// The fields every kind of client request (access, accounting, amendment,
// 42 CFR 2.24 list) has under the same names, in its struct and its
// projection record; each kind encodes and decodes its own fields beside them.
template <typename Request, typename Record>
void EncodeRequestFields(const Request& a, Record* o) {
  o->set_request_id(a.request_id);
  o->set_client_id(a.client_id);
  o->set_requested_by(a.requested_by);
  o->set_requested_at_micros(Micros(a.requested_at));
  o->set_due_at_micros(Micros(a.due_at));
  o->set_decision(static_cast<int32_t>(a.decision));
  o->set_decided_at_micros(Micros(a.decided_at));
}

// The decision must have been checked (CheckDecision, or the access
// request's own check) before this.
template <typename Record, typename Request>
void DecodeRequestFields(const Record& o, Request* a) {
  a->request_id = o.request_id();
  a->client_id = o.client_id();
  a->requested_by = o.requested_by();
  a->requested_at = FromMicros(o.requested_at_micros());
  a->due_at = FromMicros(o.due_at_micros());
  a->decision = static_cast<AccessDecision>(o.decision());
  a->decided_at = FromMicros(o.decided_at_micros());
}

}  // namespace

bool IsReviewableDenial(v1::AccessDenialGround g) {
  return g == v1::ACCESS_DENIAL_GROUND_ENDANGERS_LIFE_OR_SAFETY ||
         g == v1::ACCESS_DENIAL_GROUND_HARM_TO_PERSON_REFERENCED ||
         g == v1::ACCESS_DENIAL_GROUND_HARM_VIA_REPRESENTATIVE;
}

void EncodeSuspension(const AccountingSuspension& a,
                      projection::v1::AccountingSuspensionRecord* o) {
  o->set_case_id(a.case_id);
  o->set_suspension_id(a.suspension_id);
  o->set_client_id(a.client_id);
  o->set_agency_id(a.agency_id);
  o->set_agency_name(a.agency_name);
  o->set_form(a.form);
  o->set_suspended_at_micros(TimeToMicros(a.suspended_at));
  o->set_ends_at_micros(TimeToMicros(a.ends_at));
}

AccountingSuspension DecodeSuspension(const projection::v1::AccountingSuspensionRecord& o) {
  AccountingSuspension a;
  a.case_id = o.case_id();
  a.suspension_id = o.suspension_id();
  a.client_id = o.client_id();
  a.agency_id = o.agency_id();
  a.agency_name = o.agency_name();
  a.form = static_cast<v1::SuspensionForm>(o.form());
  a.suspended_at = TimeFromMicros(o.suspended_at_micros());
  a.ends_at = TimeFromMicros(o.ends_at_micros());
  return a;
}

absl::string_view CaseStatusName(CaseStatus status) {
  switch (status) {
    case CaseStatus::kNotOpened:
      return "not opened";
    case CaseStatus::kOpen:
      return "open";
    case CaseStatus::kInterrupted:
      return "interrupted";
    case CaseStatus::kClosed:
      return "closed";
    case CaseStatus::kDisposed:
      return "disposed";
  }
  return "unknown";
}

std::vector<const Consent*> CaseState::ActiveConsents(absl::Time t) const {
  std::vector<const Consent*> out;
  for (const auto& [id, c] : consents) {
    if (c.ActiveAt(t)) out.push_back(&c);
  }
  return out;
}

std::vector<const Conflict*> CaseState::OpenConflicts() const {
  std::vector<const Conflict*> out;
  for (const auto& [id, c] : conflicts) {
    if (!c.resolved) out.push_back(&c);
  }
  return out;
}

std::vector<const Conflict*> CaseState::PendingConflictNotices() const {
  std::vector<const Conflict*> out;
  for (const auto& [id, c] : conflicts) {
    if (!c.client_informed) out.push_back(&c);
  }
  return out;
}

bool CaseState::HasOpenConflict(absl::string_view person) const {
  for (const auto& [id, c] : conflicts) {
    if (!c.resolved && c.declared_by == person) return true;
  }
  return false;
}

std::vector<const AccessRequest*> CaseState::OpenAccessRequests() const {
  return Pending(access_requests);
}

std::vector<const AccountingRequest*> CaseState::OpenAccountingRequests() const {
  return Pending(accounting_requests);
}

std::vector<const AmendmentRequest*> CaseState::OpenAmendmentRequests() const {
  return Pending(amendment_requests);
}

std::vector<const Part2ListRequest*> CaseState::OpenPart2ListRequests() const {
  return Pending(part2_list_requests);
}

std::vector<const LegalHold*> CaseState::ActiveLegalHolds() const {
  std::vector<const LegalHold*> out;
  for (const auto& [id, h] : legal_holds) {
    if (!h.released) out.push_back(&h);
  }
  return out;
}

const LegalHold* CaseState::HoldOn(absl::string_view subject_id) const {
  for (const LegalHold* h : ActiveLegalHolds()) {
    if (h->scope == v1::LEGAL_HOLD_SCOPE_CLIENT ? h->client_id == subject_id
                                                : subject_ids.count(std::string(subject_id)) > 0) {
      return h;
    }
  }
  return nullptr;
}

std::string DeterministicBytes(const google::protobuf::Message& m) {
  std::string out;
  m.ByteSizeLong();  // caches sizes for SerializeWithCachedSizes
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    m.SerializeWithCachedSizes(&coded);
  }
  return out;
}

int64_t TimeToMicros(absl::Time t) {
  if (t == absl::InfinitePast()) return std::numeric_limits<int64_t>::min();
  if (t == absl::InfiniteFuture()) return std::numeric_limits<int64_t>::max();
  return absl::ToUnixMicros(t);
}

absl::Time TimeFromMicros(int64_t m) {
  if (m == std::numeric_limits<int64_t>::min()) return absl::InfinitePast();
  if (m == std::numeric_limits<int64_t>::max()) return absl::InfiniteFuture();
  return absl::FromUnixMicros(m);
}

absl::Time TimeFromProto(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixMicros(ts.seconds() * 1000000 + ts.nanos() / 1000);
}

std::string FormatUtc(absl::Time t) {
  if (t == absl::InfinitePast()) return "the beginning";
  if (t == absl::InfiniteFuture()) return "never";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

std::string EventTypeName(const v1::Event& e) {
  if (e.body_case() == v1::Event::BODY_NOT_SET) return "(no body)";
  const auto* field = v1::Event::descriptor()->FindFieldByNumber(e.body_case());
  return field == nullptr ? absl::StrCat("(body ", e.body_case(), ")") : field->name();
}

absl::Status CheckApplicable(const v1::Event& e, uint64_t seq, const CaseState& s) {
  const CaseState* state = &s;
  if (e.body_case() == v1::Event::BODY_NOT_SET) {
    return absl::InvalidArgumentError(
        absl::StrCat("event.body: must be set (event at seq ", seq, ")"));
  }
  if (!e.has_occurred_at()) {
    return absl::InvalidArgumentError(
        absl::StrCat("event.occurred_at: must be set (event at seq ", seq, ")"));
  }
  if (!state->case_id.empty() && e.stream_id() != state->case_id) {
    return absl::InvalidArgumentError(absl::StrCat("event.stream_id: got \"", e.stream_id(),
                                                   "\", want \"", state->case_id,
                                                   "\" (the case this state folds)"));
  }
  if (state->version > 0 && seq <= state->last_seq) {
    return absl::FailedPreconditionError(absl::StrCat(
        "case \"", state->case_id, "\": event at seq ", seq, " is not after the last applied seq ",
        state->last_seq, " (applied twice or out of order)"));
  }
  return absl::OkStatus();
}

absl::Status ApplyEvent(const v1::Event& e, uint64_t seq, absl::Time commit_time,
                        CaseState* state) {
  CL_RETURN_IF_ERROR(CheckApplicable(e, seq, *state));
  const absl::Time at = TimeFromProto(e.occurred_at());
  if (state->case_id.empty()) state->case_id = e.stream_id();
  ApplyBody(e, seq, at, commit_time, state);
  state->subject_ids.insert(e.subject_ids().begin(), e.subject_ids().end());
  state->version++;
  state->last_seq = seq;
  // Reads are recorded when they happen, between the case's own events
  // (often by the server, dated by its clock): they do not set the case's
  // clock, so a producer's event sent just after a read is not "late".
  if (e.body_case() != v1::Event::kRecordAccessed) {
    state->last_occurred_at = std::max(state->last_occurred_at, at);
  }
  state->last_committed_at = commit_time;
  return absl::OkStatus();
}

namespace {

void EncodeItem(const ManagerAssignment& m, pv1::ManagerAssignmentRecord* o) {
  o->set_manager_id(m.manager_id);
  o->set_reason(m.reason);
  o->set_at_micros(Micros(m.at));
  o->set_seq(m.seq);
}

void EncodeItem(const Participant& p, pv1::ParticipantRecord* o) {
  o->set_participant_id(p.participant_id);
  o->set_role(p.role);
  o->set_added_at_micros(Micros(p.added_at));
  if (p.authority.scope != v1::REPRESENTATIVE_SCOPE_UNSPECIFIED) {
    o->set_authority_document_sha256(p.authority.document_sha256);
    o->set_authority_scope(p.authority.scope);
    o->set_authority_program(p.authority.program);
    o->set_authority_starts_at_micros(Micros(p.authority.starts_at));
    o->set_authority_ends_at_micros(Micros(p.authority.ends_at));
  }
}

void EncodeItem(const Consent& c, pv1::ConsentRecord* o) {
  o->set_consent_id(c.consent_id);
  o->set_client_id(c.client_id);
  o->set_grantor_kind(c.grantor_kind);
  o->set_grantor_id(c.grantor_id);
  SetStrings(c.recipients, o->mutable_recipients());
  SetStrings(c.purposes, o->mutable_purposes());
  SetStrings(c.data_categories, o->mutable_data_categories());
  o->set_granted_at_micros(Micros(c.granted_at));
  o->set_starts_at_micros(Micros(c.starts_at));
  o->set_expires_at_micros(Micros(c.expires_at));
  o->set_expiry_event(c.expiry_event);
  o->set_revocable(c.revocable);
  o->set_revoked(c.revoked);
  o->set_revoked_at_micros(Micros(c.revoked_at));
  o->set_revoked_by(c.revoked_by);
  o->set_granted_seq(c.granted_seq);
  o->set_revoked_seq(c.revoked_seq);
  o->set_language(c.language);
  o->set_comprehension_aid(c.comprehension_aid);
  o->set_capacity(c.capacity);
  o->set_general_designation(c.general_designation);
  o->set_intermediary(c.intermediary);
}

void EncodeItem(const Conflict& c, pv1::ConflictRecord* o) {
  o->set_conflict_id(c.conflict_id);
  o->set_declared_by(c.declared_by);
  o->set_declared_at_micros(Micros(c.declared_at));
  o->set_resolved(c.resolved);
  o->set_resolved_at_micros(Micros(c.resolved_at));
  o->set_resolution(c.resolution);
  o->set_resolved_by(c.resolved_by);
  o->set_client_informed(c.client_informed);
  o->set_client_informed_at_micros(Micros(c.client_informed_at));
  o->set_client_informed_method(c.client_informed_method);
}

void EncodeItem(const Entry& en, pv1::EntryRecord* o) {
  o->set_entry_id(en.entry_id);
  o->set_data_category(en.data_category);
  o->set_amends_entry_id(en.amends_entry_id);
  o->set_seq(en.seq);
  o->set_written_at_micros(Micros(en.written_at));
}

void EncodeItem(const AccessRequest& a, pv1::AccessRequestRecord* o) {
  EncodeRequestFields(a, o);
  o->set_extended(a.extended);
  o->set_extension_reason(a.extension_reason);
  o->set_denial_ground(a.denial_ground);
  o->set_denied_by(a.denied_by);
  o->set_review(static_cast<int32_t>(a.review));
  o->set_review_requested_at_micros(Micros(a.review_requested_at));
  o->set_reviewed_at_micros(Micros(a.reviewed_at));
  o->set_reviewer_id(a.reviewer_id);
}

void EncodeItem(const AccountingRequest& a, pv1::AccountingRequestRecord* o) {
  EncodeRequestFields(a, o);
  o->set_received_at_micros(Micros(a.received_at));
  o->set_extended(a.extended);
  o->set_extension_reason(a.extension_reason);
  o->set_fee_notice(a.fee_notice);
}

void EncodeItem(const AmendmentRequest& a, pv1::AmendmentRequestRecord* o) {
  EncodeRequestFields(a, o);
  o->set_entry_id(a.entry_id);
  o->set_extended(a.extended);
  o->set_extension_reason(a.extension_reason);
  o->set_amendment_entry_id(a.amendment_entry_id);
  o->set_denial_basis(a.denial_basis);
  o->set_disagreement_filed(a.disagreement_filed);
  o->set_disagreement_at_micros(Micros(a.disagreement_at));
  o->set_rebutted(a.rebutted);
  o->set_rebutted_at_micros(Micros(a.rebutted_at));
}

void EncodeItem(const LegalHold& h, pv1::LegalHoldRecord* o) {
  o->set_hold_id(h.hold_id);
  o->set_scope(h.scope);
  o->set_client_id(h.client_id);
  o->set_ground(h.ground);
  o->set_authority(h.authority);
  o->set_placed_at_micros(Micros(h.placed_at));
  o->set_released(h.released);
  o->set_released_at_micros(Micros(h.released_at));
}

void EncodeItem(const Part2ListRequest& a, pv1::Part2ListRequestRecord* o) {
  EncodeRequestFields(a, o);
  o->set_consent_id(a.consent_id);
  o->set_received_at_micros(Micros(a.received_at));
}

void EncodeItem(const PendingNotice& n, pv1::PendingNoticeRecord* o) {
  o->set_disclosure_id(n.disclosure_id);
  o->set_client_id(n.client_id);
  o->set_recipient_name(n.recipient_name);
  o->set_disclosed_at_micros(Micros(n.disclosed_at));
  o->set_notify_by_micros(Micros(n.notify_by));
}

}  // namespace

std::string EncodeCaseItem(const ManagerAssignment& item) {
  pv1::ManagerAssignmentRecord o;
  EncodeItem(item, &o);
  return DeterministicBytes(o);
}

std::string EncodeCaseItem(const Participant& item) {
  pv1::ParticipantRecord o;
  EncodeItem(item, &o);
  return DeterministicBytes(o);
}

std::string EncodeCaseItem(const Consent& item) {
  pv1::ConsentRecord o;
  EncodeItem(item, &o);
  return DeterministicBytes(o);
}

std::string EncodeCaseItem(const Conflict& item) {
  pv1::ConflictRecord o;
  EncodeItem(item, &o);
  return DeterministicBytes(o);
}

std::string EncodeCaseItem(const Entry& item) {
  pv1::EntryRecord o;
  EncodeItem(item, &o);
  return DeterministicBytes(o);
}

std::string EncodeCaseItem(const AccessRequest& item) {
  pv1::AccessRequestRecord o;
  EncodeItem(item, &o);
  return DeterministicBytes(o);
}

std::string EncodeCaseItem(const AccountingRequest& item) {
  pv1::AccountingRequestRecord o;
  EncodeItem(item, &o);
  return DeterministicBytes(o);
}

std::string EncodeCaseItem(const AmendmentRequest& item) {
  pv1::AmendmentRequestRecord o;
  EncodeItem(item, &o);
  return DeterministicBytes(o);
}

std::string EncodeCaseItem(const LegalHold& item) {
  pv1::LegalHoldRecord o;
  EncodeItem(item, &o);
  return DeterministicBytes(o);
}

std::string EncodeCaseItem(const Part2ListRequest& item) {
  pv1::Part2ListRequestRecord o;
  EncodeItem(item, &o);
  return DeterministicBytes(o);
}

std::string EncodeCaseItem(const PendingNotice& item) {
  pv1::PendingNoticeRecord o;
  EncodeItem(item, &o);
  return DeterministicBytes(o);
}

std::string EncodeCaseItem(const AccountingSuspension& item) {
  pv1::AccountingSuspensionRecord o;
  EncodeSuspension(item, &o);
  return DeterministicBytes(o);
}

std::string EncodeCaseState(const CaseState& s) {
  pv1::CaseStateRecord r;
  r.set_format_version(kFormatVersion);
  r.set_case_id(s.case_id);
  r.set_status(static_cast<int32_t>(s.status));
  r.set_program(s.program);
  r.set_jurisdiction(s.jurisdiction);
  r.set_record_class(s.record_class);
  r.set_opened_at_micros(Micros(s.opened_at));
  r.set_closed_at_micros(Micros(s.closed_at));
  r.set_disposed_at_micros(Micros(s.disposed_at));
  r.set_manager_id(s.manager_id);
  for (const auto& m : s.manager_history) EncodeItem(m, r.add_manager_history());
  for (const auto& [id, p] : s.participants) EncodeItem(p, r.add_participants());
  for (const auto& [id, c] : s.consents) EncodeItem(c, r.add_consents());
  for (const auto& [id, c] : s.conflicts) EncodeItem(c, r.add_conflicts());
  for (const auto& [id, en] : s.entries) EncodeItem(en, r.add_entries());
  for (const auto& [id, a] : s.access_requests) EncodeItem(a, r.add_access_requests());
  for (const auto& [id, a] : s.accounting_requests) EncodeItem(a, r.add_accounting_requests());
  for (const auto& [id, a] : s.amendment_requests) EncodeItem(a, r.add_amendment_requests());
  for (const auto& [id, h] : s.legal_holds) EncodeItem(h, r.add_legal_holds());
  for (const auto& [id, a] : s.accounting_suspensions) {
    EncodeSuspension(a, r.add_accounting_suspensions());
  }
  for (const auto& [id, a] : s.part2_list_requests) EncodeItem(a, r.add_part2_list_requests());
  SetStrings(s.subject_ids, r.mutable_subject_ids());
  SetStrings(s.disclosure_ids, r.mutable_disclosure_ids());
  for (const auto& [id, n] : s.pending_notices) EncodeItem(n, r.add_pending_notices());
  r.set_version(s.version);
  r.set_last_seq(s.last_seq);
  r.set_last_occurred_at_micros(Micros(s.last_occurred_at));
  r.set_last_committed_at_micros(Micros(s.last_committed_at));
  return DeterministicBytes(r);
}

absl::StatusOr<CaseState> DecodeCaseState(absl::string_view bytes) {
  pv1::CaseStateRecord r;
  if (!r.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::InvalidArgumentError(
        absl::StrCat("case state: ", bytes.size(), " bytes do not parse as a CaseStateRecord"));
  }
  if (r.format_version() != kFormatVersion) {
    return absl::InvalidArgumentError(absl::StrCat("case state: format_version got ",
                                                   r.format_version(), ", want ", kFormatVersion));
  }
  if (r.status() < 0 || r.status() > static_cast<int32_t>(CaseStatus::kDisposed)) {
    return absl::InvalidArgumentError(
        absl::StrCat("case state: status got ", r.status(), ", want 0..4"));
  }
  CaseState s;
  s.case_id = r.case_id();
  s.status = static_cast<CaseStatus>(r.status());
  s.program = r.program();
  s.jurisdiction = r.jurisdiction();
  s.record_class = static_cast<v1::RecordClass>(r.record_class());
  s.opened_at = FromMicros(r.opened_at_micros());
  s.closed_at = FromMicros(r.closed_at_micros());
  s.disposed_at = FromMicros(r.disposed_at_micros());
  s.manager_id = r.manager_id();
  for (const auto& m : r.manager_history()) {
    s.manager_history.push_back(
        ManagerAssignment{m.manager_id(), m.reason(), FromMicros(m.at_micros()), m.seq()});
  }
  for (const auto& p : r.participants()) {
    Participant q{p.participant_id(), static_cast<v1::ParticipantRole>(p.role()),
                  FromMicros(p.added_at_micros())};
    if (p.authority_scope() != v1::REPRESENTATIVE_SCOPE_UNSPECIFIED) {
      q.authority.document_sha256 = p.authority_document_sha256();
      q.authority.scope = static_cast<v1::RepresentativeScope>(p.authority_scope());
      q.authority.program = p.authority_program();
      q.authority.starts_at = FromMicros(p.authority_starts_at_micros());
      q.authority.ends_at = FromMicros(p.authority_ends_at_micros());
    }
    s.participants[p.participant_id()] = std::move(q);
  }
  for (const auto& o : r.consents()) {
    Consent c;
    c.consent_id = o.consent_id();
    c.client_id = o.client_id();
    c.grantor_kind = static_cast<v1::GrantorKind>(o.grantor_kind());
    c.grantor_id = o.grantor_id();
    c.recipients.insert(o.recipients().begin(), o.recipients().end());
    c.purposes.insert(o.purposes().begin(), o.purposes().end());
    c.data_categories.insert(o.data_categories().begin(), o.data_categories().end());
    c.granted_at = FromMicros(o.granted_at_micros());
    c.starts_at = FromMicros(o.starts_at_micros());
    c.expires_at = FromMicros(o.expires_at_micros());
    c.expiry_event = o.expiry_event();
    c.revocable = o.revocable();
    c.revoked = o.revoked();
    c.revoked_at = FromMicros(o.revoked_at_micros());
    c.revoked_by = o.revoked_by();
    c.granted_seq = o.granted_seq();
    c.revoked_seq = o.revoked_seq();
    c.language = o.language();
    c.comprehension_aid = static_cast<v1::ComprehensionAid>(o.comprehension_aid());
    c.capacity = static_cast<v1::ConsentCapacity>(o.capacity());
    c.general_designation = o.general_designation();
    c.intermediary = o.intermediary();
    s.consents[c.consent_id] = std::move(c);
  }
  for (const auto& o : r.conflicts()) {
    Conflict c;
    c.conflict_id = o.conflict_id();
    c.declared_by = o.declared_by();
    c.declared_at = FromMicros(o.declared_at_micros());
    c.resolved = o.resolved();
    c.resolved_at = FromMicros(o.resolved_at_micros());
    c.resolution = o.resolution();
    c.resolved_by = o.resolved_by();
    c.client_informed = o.client_informed();
    c.client_informed_at = c.client_informed ? FromMicros(o.client_informed_at_micros())
                                             : absl::InfinitePast();
    c.client_informed_method = o.client_informed_method();
    s.conflicts[c.conflict_id] = std::move(c);
  }
  for (const auto& o : r.entries()) {
    s.entries[o.entry_id()] = Entry{o.entry_id(), o.data_category(), o.amends_entry_id(), o.seq(),
                                    FromMicros(o.written_at_micros())};
  }
  for (const auto& o : r.access_requests()) {
    if (o.decision() < 0 || o.decision() > static_cast<int32_t>(AccessDecision::kDenied)) {
      return absl::InvalidArgumentError(absl::StrCat("case state: access request \"",
                                                     o.request_id(), "\" decision got ",
                                                     o.decision(), ", want 0..2"));
    }
    AccessRequest a;
    DecodeRequestFields(o, &a);
    a.extended = o.extended();
    a.extension_reason = o.extension_reason();
    a.denial_ground = static_cast<v1::AccessDenialGround>(o.denial_ground());
    a.denied_by = o.denied_by();
    if (o.review() < 0 || o.review() > static_cast<int32_t>(AccessReview::kOverturned)) {
      return absl::InvalidArgumentError(absl::StrCat("case state: access request \"",
                                                     o.request_id(), "\" review got ", o.review(),
                                                     ", want 0..3"));
    }
    a.review = static_cast<AccessReview>(o.review());
    a.review_requested_at = FromMicros(o.review_requested_at_micros());
    a.reviewed_at = FromMicros(o.reviewed_at_micros());
    a.reviewer_id = o.reviewer_id();
    s.access_requests[a.request_id] = std::move(a);
  }
  for (const auto& o : r.accounting_requests()) {
    CL_RETURN_IF_ERROR(CheckDecision("accounting", o.request_id(), o.decision()));
    AccountingRequest a;
    DecodeRequestFields(o, &a);
    a.received_at = FromMicros(o.received_at_micros());
    a.extended = o.extended();
    a.extension_reason = o.extension_reason();
    a.fee_notice = o.fee_notice();
    s.accounting_requests[a.request_id] = std::move(a);
  }
  for (const auto& o : r.amendment_requests()) {
    CL_RETURN_IF_ERROR(CheckDecision("amendment", o.request_id(), o.decision()));
    AmendmentRequest a;
    DecodeRequestFields(o, &a);
    a.entry_id = o.entry_id();
    a.extended = o.extended();
    a.extension_reason = o.extension_reason();
    a.amendment_entry_id = o.amendment_entry_id();
    a.denial_basis = static_cast<v1::AmendmentDenialBasis>(o.denial_basis());
    a.disagreement_filed = o.disagreement_filed();
    a.disagreement_at = FromMicros(o.disagreement_at_micros());
    a.rebutted = o.rebutted();
    a.rebutted_at = FromMicros(o.rebutted_at_micros());
    s.amendment_requests[a.request_id] = std::move(a);
  }
  for (const auto& o : r.legal_holds()) {
    LegalHold h;
    h.hold_id = o.hold_id();
    h.scope = static_cast<v1::LegalHoldScope>(o.scope());
    h.client_id = o.client_id();
    h.ground = static_cast<v1::LegalHoldGround>(o.ground());
    h.authority = o.authority();
    h.placed_at = FromMicros(o.placed_at_micros());
    h.released = o.released();
    h.released_at = FromMicros(o.released_at_micros());
    s.legal_holds[h.hold_id] = std::move(h);
  }
  for (const auto& o : r.accounting_suspensions()) {
    AccountingSuspension a = DecodeSuspension(o);
    s.accounting_suspensions[a.suspension_id] = std::move(a);
  }
  for (const auto& o : r.part2_list_requests()) {
    CL_RETURN_IF_ERROR(CheckDecision("42 CFR 2.24 list", o.request_id(), o.decision()));
    Part2ListRequest a;
    DecodeRequestFields(o, &a);
    a.consent_id = o.consent_id();
    a.received_at = FromMicros(o.received_at_micros());
    s.part2_list_requests[a.request_id] = std::move(a);
  }
  s.subject_ids.insert(r.subject_ids().begin(), r.subject_ids().end());
  s.disclosure_ids.insert(r.disclosure_ids().begin(), r.disclosure_ids().end());
  for (const auto& o : r.pending_notices()) {
    PendingNotice n;
    n.disclosure_id = o.disclosure_id();
    n.client_id = o.client_id();
    n.recipient_name = o.recipient_name();
    n.disclosed_at = FromMicros(o.disclosed_at_micros());
    n.notify_by = FromMicros(o.notify_by_micros());
    s.pending_notices[n.disclosure_id] = std::move(n);
  }
  s.version = r.version();
  s.last_seq = r.last_seq();
  s.last_occurred_at = FromMicros(r.last_occurred_at_micros());
  s.last_committed_at = FromMicros(r.last_committed_at_micros());
  return s;
}

}  // namespace caseledger
