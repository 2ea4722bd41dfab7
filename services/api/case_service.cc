#include "services/api/case_service.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "services/authz/authz_verdict.h"
#include "services/common/grpc_status.h"
#include "services/authz/request_resources.h"

namespace caseledger {
namespace {

constexpr absl::Duration kMaxWait = absl::Seconds(5);

// Waits for the read models to reach `min_seq`; refuses a seq beyond what
// could ever be reached by waiting.
absl::Status WaitFor(const Projector& projector, uint64_t min_seq) {
  if (min_seq == 0) return projector.health();
  return projector.WaitFor(min_seq, kMaxWait);
}

void SetTime(absl::Time t, google::protobuf::Timestamp* out) {
  out->set_seconds(absl::ToUnixSeconds(t));
  out->set_nanos(static_cast<int32_t>((t - absl::FromUnixSeconds(absl::ToUnixSeconds(t))) /
                                      absl::Nanoseconds(1)));
}

absl::StatusOr<absl::Time> TimeOr(const google::protobuf::Timestamp& ts, bool set,
                                  absl::Time fallback, absl::string_view field) {
  if (!set) return fallback;
  if (ts.nanos() < 0 || ts.nanos() > 999999999) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": nanos got ", ts.nanos(), ", want 0 to 999999999"));
  }
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

bool HasTime(absl::Time t) { return t != absl::InfinitePast() && t != absl::InfiniteFuture(); }

v1::CaseStateJson::Decision DecisionOf(AccessDecision d) {
  switch (d) {
    case AccessDecision::kPending:
      return v1::CaseStateJson::DECISION_PENDING;
    case AccessDecision::kFulfilled:
      return v1::CaseStateJson::DECISION_FULFILLED;
    case AccessDecision::kDenied:
      return v1::CaseStateJson::DECISION_DENIED;
  }
  return v1::CaseStateJson::DECISION_UNSPECIFIED;
}

// The fields every client request shares (access, accounting, amendment,
// 42 CFR 2.24 list): who asked, when, when it is due, its decision.
template <typename Request, typename Out>
void SetRequestIds(const Request& r, Out* o) {
  o->set_request_id(r.request_id);
  o->set_client_id(r.client_id);
  o->set_requested_by(r.requested_by);
  if (HasTime(r.requested_at)) SetTime(r.requested_at, o->mutable_requested_at());
  if (HasTime(r.due_at)) SetTime(r.due_at, o->mutable_due_at());
  o->set_decision(DecisionOf(r.decision));
  if (HasTime(r.decided_at)) SetTime(r.decided_at, o->mutable_decided_at());
}

// ... and, for those the law lets be extended once, the extension.
template <typename Request, typename Out>
void SetRequestClock(const Request& r, Out* o) {
  SetRequestIds(r, o);
  o->set_extended(r.extended);
  o->set_extension_reason(r.extension_reason);
}

// The earliest due date of open requests; InfiniteFuture for none.
template <typename Request>
absl::Time EarliestDue(const std::vector<const Request*>& open) {
  absl::Time next = absl::InfiniteFuture();
  for (const Request* r : open) next = std::min(next, r->due_at);
  return next;
}

// The read model as the CaseStateJson message (proto/cases.proto): "no time"
// and empty values are left unset, so the JSON mapping leaves them out.
v1::CaseStateJson CaseStateMessage(const CaseState& s) {
  using J = v1::CaseStateJson;
  J j;
  j.set_case_id(s.case_id);
  j.set_status(static_cast<J::Status>(s.status));  // the same numbers (case_state.h)
  j.set_program(s.program);
  j.set_jurisdiction(s.jurisdiction);
  j.set_record_class(s.record_class);
  if (HasTime(s.opened_at)) SetTime(s.opened_at, j.mutable_opened_at());
  if (HasTime(s.closed_at)) SetTime(s.closed_at, j.mutable_closed_at());
  if (HasTime(s.disposed_at)) SetTime(s.disposed_at, j.mutable_disposed_at());
  j.set_manager_id(s.manager_id);
  for (const ManagerAssignment& m : s.manager_history) {
    J::ManagerAssignment* o = j.add_manager_history();
    o->set_manager_id(m.manager_id);
    o->set_reason(m.reason);
    if (HasTime(m.at)) SetTime(m.at, o->mutable_at());
    o->set_seq(m.seq);
  }
  for (const auto& [id, p] : s.participants) {
    J::Participant* o = j.add_participants();
    o->set_participant_id(p.participant_id);
    o->set_role(p.role);
    if (HasTime(p.added_at)) SetTime(p.added_at, o->mutable_added_at());
    const RepresentativeAuthority& a = p.authority;
    if (a.scope != v1::REPRESENTATIVE_SCOPE_UNSPECIFIED) {
      J::RepresentativeAuthority* ao = o->mutable_authority();
      ao->set_document_sha256(a.document_sha256);
      ao->set_scope(a.scope);
      ao->set_program(a.program);
      if (HasTime(a.starts_at)) SetTime(a.starts_at, ao->mutable_starts_at());
      if (HasTime(a.ends_at)) SetTime(a.ends_at, ao->mutable_ends_at());
    }
  }
  for (const auto& [id, c] : s.consents) {
    J::Consent* o = j.add_consents();
    o->set_consent_id(c.consent_id);
    o->set_client_id(c.client_id);
    o->set_grantor_kind(c.grantor_kind);
    o->set_grantor_id(c.grantor_id);
    for (const std::string& v : c.recipients) o->add_recipients(v);
    for (const std::string& v : c.purposes) o->add_purposes(v);
    for (const std::string& v : c.data_categories) o->add_data_categories(v);
    if (HasTime(c.granted_at)) SetTime(c.granted_at, o->mutable_granted_at());
    if (HasTime(c.starts_at)) SetTime(c.starts_at, o->mutable_starts_at());
    if (HasTime(c.expires_at)) SetTime(c.expires_at, o->mutable_expires_at());
    o->set_expiry_event(c.expiry_event);
    o->set_revocable(c.revocable);
    o->set_revoked(c.revoked);
    if (HasTime(c.revoked_at)) SetTime(c.revoked_at, o->mutable_revoked_at());
    o->set_revoked_by(c.revoked_by);
    o->set_language(c.language);
    o->set_comprehension_aid(c.comprehension_aid);
    o->set_capacity(c.capacity);
    o->set_general_designation(c.general_designation);
    o->set_intermediary(c.intermediary);
  }
  for (const auto& [id, c] : s.conflicts) {
    J::Conflict* o = j.add_conflicts();
    o->set_conflict_id(c.conflict_id);
    o->set_declared_by(c.declared_by);
    if (HasTime(c.declared_at)) SetTime(c.declared_at, o->mutable_declared_at());
    o->set_resolved(c.resolved);
    if (HasTime(c.resolved_at)) SetTime(c.resolved_at, o->mutable_resolved_at());
    o->set_resolution(c.resolution);
    o->set_resolved_by(c.resolved_by);
    o->set_client_informed(c.client_informed);
    if (HasTime(c.client_informed_at)) {
      SetTime(c.client_informed_at, o->mutable_client_informed_at());
    }
    o->set_client_informed_method(c.client_informed_method);
  }
  for (const auto& [id, e] : s.entries) {
    J::Entry* o = j.add_entries();
    o->set_entry_id(e.entry_id);
    o->set_data_category(e.data_category);
    o->set_amends_entry_id(e.amends_entry_id);
    o->set_seq(e.seq);
    if (HasTime(e.written_at)) SetTime(e.written_at, o->mutable_written_at());
  }
  for (const auto& [id, r] : s.access_requests) {
    J::AccessRequest* o = j.add_access_requests();
    SetRequestClock(r, o);
    o->set_denial_ground(r.denial_ground);
    o->set_denied_by(r.denied_by);
    o->set_review(static_cast<J::Review>(r.review));  // the same numbers (case_state.h)
    if (HasTime(r.review_requested_at)) {
      SetTime(r.review_requested_at, o->mutable_review_requested_at());
    }
    if (HasTime(r.reviewed_at)) SetTime(r.reviewed_at, o->mutable_reviewed_at());
    o->set_reviewer_id(r.reviewer_id);
  }
  for (const auto& [id, r] : s.accounting_requests) {
    J::AccountingRequest* o = j.add_accounting_requests();
    SetRequestClock(r, o);
    if (HasTime(r.received_at)) SetTime(r.received_at, o->mutable_received_at());
    o->set_fee_notice(r.fee_notice);
  }
  for (const auto& [id, r] : s.amendment_requests) {
    J::AmendmentRequest* o = j.add_amendment_requests();
    SetRequestClock(r, o);
    o->set_entry_id(r.entry_id);
    o->set_amendment_entry_id(r.amendment_entry_id);
    o->set_denial_basis(r.denial_basis);
    o->set_disagreement_filed(r.disagreement_filed);
    if (HasTime(r.disagreement_at)) SetTime(r.disagreement_at, o->mutable_disagreement_at());
    o->set_rebutted(r.rebutted);
    if (HasTime(r.rebutted_at)) SetTime(r.rebutted_at, o->mutable_rebutted_at());
  }
  for (const auto& [id, h] : s.legal_holds) {
    J::LegalHold* o = j.add_legal_holds();
    o->set_hold_id(h.hold_id);
    o->set_scope(h.scope);
    o->set_client_id(h.client_id);
    o->set_ground(h.ground);
    o->set_authority(h.authority);
    if (HasTime(h.placed_at)) SetTime(h.placed_at, o->mutable_placed_at());
    o->set_released(h.released);
    if (HasTime(h.released_at)) SetTime(h.released_at, o->mutable_released_at());
  }
  for (const auto& [id, a] : s.accounting_suspensions) {
    J::AccountingSuspension* o = j.add_accounting_suspensions();
    o->set_suspension_id(a.suspension_id);
    o->set_client_id(a.client_id);
    o->set_agency_id(a.agency_id);
    o->set_agency_name(a.agency_name);
    o->set_form(a.form);
    if (HasTime(a.suspended_at)) SetTime(a.suspended_at, o->mutable_suspended_at());
    if (HasTime(a.ends_at)) SetTime(a.ends_at, o->mutable_ends_at());
  }
  for (const auto& [id, r] : s.part2_list_requests) {
    J::Part2ListRequest* o = j.add_part2_list_requests();
    SetRequestIds(r, o);
    o->set_consent_id(r.consent_id);
    if (HasTime(r.received_at)) SetTime(r.received_at, o->mutable_received_at());
  }
  for (const std::string& id : s.disclosure_ids) j.add_disclosure_ids(id);
  for (const auto& [id, n] : s.pending_notices) {
    J::PendingNotice* o = j.add_pending_notices();
    o->set_disclosure_id(n.disclosure_id);
    o->set_client_id(n.client_id);
    o->set_recipient_name(n.recipient_name);
    if (HasTime(n.disclosed_at)) SetTime(n.disclosed_at, o->mutable_disclosed_at());
    if (HasTime(n.notify_by)) SetTime(n.notify_by, o->mutable_notify_by());
  }
  j.set_version(s.version);
  j.set_last_seq(s.last_seq);
  if (HasTime(s.last_occurred_at)) SetTime(s.last_occurred_at, j.mutable_last_occurred_at());
  if (HasTime(s.last_committed_at)) SetTime(s.last_committed_at, j.mutable_last_committed_at());
  return j;
}

}  // namespace

std::string CaseStateToJson(const CaseState& state) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(CaseStateMessage(state), &json, options);
  return json;
}

v1::CaseSummary SummarizeCase(const CaseState& state, absl::Time now) {
  v1::CaseSummary s;
  s.set_case_id(state.case_id);
  s.set_status(std::string(CaseStatusName(state.status)));
  s.set_program(state.program);
  s.set_manager_id(state.manager_id);
  std::vector<const AccessRequest*> open = state.OpenAccessRequests();
  s.set_open_access_requests(open.size());
  absl::Time next = absl::InfiniteFuture();
  for (const AccessRequest* r : open) {
    next = std::min(next, r->due_at);
    if (r->due_at < now) s.set_access_overdue(true);
  }
  if (next != absl::InfiniteFuture()) SetTime(next, s.mutable_next_access_due());
  const auto accounting = state.OpenAccountingRequests();
  s.set_open_accounting_requests(accounting.size());
  if (absl::Time next = EarliestDue(accounting); next != absl::InfiniteFuture()) {
    s.set_accounting_overdue(next < now);
    SetTime(next, s.mutable_next_accounting_due());
  }
  const auto amendment = state.OpenAmendmentRequests();
  s.set_open_amendment_requests(amendment.size());
  if (absl::Time next = EarliestDue(amendment); next != absl::InfiniteFuture()) {
    s.set_amendment_overdue(next < now);
    SetTime(next, s.mutable_next_amendment_due());
  }
  const auto part2_list = state.OpenPart2ListRequests();
  s.set_open_part2_list_requests(part2_list.size());
  if (absl::Time next = EarliestDue(part2_list); next != absl::InfiniteFuture()) {
    s.set_part2_list_overdue(next < now);
    SetTime(next, s.mutable_next_part2_list_due());
  }
  s.set_active_legal_holds(state.ActiveLegalHolds().size());
  s.set_pending_client_notices(state.pending_notices.size());
  s.set_active_consents(state.ActiveConsents(now).size());
  s.set_open_conflicts(state.OpenConflicts().size());
  s.set_pending_conflict_notices(state.PendingConflictNotices().size());
  s.set_version(state.version);
  return s;
}

bool AnyRequestOverdue(const v1::CaseSummary& s) {
  return s.access_overdue() || s.accounting_overdue() || s.amendment_overdue() ||
         s.part2_list_overdue();
}

CaseServiceImpl::CaseServiceImpl(const Projector* projector, const CaseStateProjection* cases,
                                 const Clock* clock)
    : projector_(projector), cases_(cases), clock_(clock ? *clock : Clock::Real()) {}

grpc::Status CaseServiceImpl::GetCase(grpc::ServerContext* ctx, const v1::GetCaseRequest* req,
                                      v1::CaseView* resp) {
  if (grpc::Status refused = AuthzVerdict(*ctx); !refused.ok()) return refused;
  if (absl::Status form = CheckForm(*req); !form.ok()) return ToGrpcStatus(form);
  absl::Status ready = WaitFor(*projector_, req->min_seq());
  if (!ready.ok()) return ToGrpcStatus(ready);
  uint64_t as_of = projector_->position();
  absl::StatusOr<CaseState> state = CaseStateProjection::Load(*projector_, *cases_, req->case_id());
  if (!state.ok()) return ToGrpcStatus(state.status());
  *resp->mutable_summary() = SummarizeCase(*state, clock_.Now());
  resp->set_state_json(CaseStateToJson(*state));
  resp->set_as_of_seq(as_of);
  return grpc::Status::OK;
}

grpc::Status CaseServiceImpl::ListCases(grpc::ServerContext* ctx, const v1::ListCasesRequest* req,
                                        v1::ListCasesResponse* resp) {
  if (grpc::Status refused = AuthzVerdict(*ctx); !refused.ok()) return refused;
  static const std::vector<std::string> kStatuses = {"open", "interrupted", "closed", "disposed"};
  if (!req->status().empty() &&
      std::find(kStatuses.begin(), kStatuses.end(), req->status()) == kStatuses.end()) {
    return ToGrpcStatus(absl::InvalidArgumentError(absl::StrCat(
        "status: got \"", req->status(), "\", want open, interrupted, closed or disposed")));
  }
  if (req->limit() > 1000) {
    return ToGrpcStatus(absl::InvalidArgumentError(
        absl::StrCat("limit: got ", req->limit(), ", want at most 1000")));
  }
  absl::Status ready = WaitFor(*projector_, req->min_seq());
  if (!ready.ok()) return ToGrpcStatus(ready);
  size_t limit = req->limit() == 0 ? 100 : req->limit();
  absl::Time now = clock_.Now();
  resp->set_as_of_seq(projector_->position());
  std::string from = req->page_token();
  absl::Status scan = CaseStateProjection::ScanCases(
      *projector_, *cases_, from,
      [&](const CaseState& state) {
        if (!req->page_token().empty() && state.case_id == req->page_token()) return true;  // exclusive
        v1::CaseSummary s = SummarizeCase(state, now);
        if (!req->status().empty() && s.status() != req->status()) return true;
        if (!req->manager_id().empty() && s.manager_id() != req->manager_id()) return true;
        if (req->access_overdue() && !s.access_overdue()) return true;
        if (req->overdue() && !AnyRequestOverdue(s)) return true;
        if (static_cast<size_t>(resp->cases_size()) == limit) {
          resp->set_next_page_token(resp->cases(resp->cases_size() - 1).case_id());
          return false;
        }
        *resp->add_cases() = std::move(s);
        return true;
      });
  if (!scan.ok()) return ToGrpcStatus(scan);
  return grpc::Status::OK;
}

DisclosureServiceImpl::DisclosureServiceImpl(const Projector* projector,
                                             const AccountingProjection* accounting,
                                             const Clock* clock, const CaseStateProjection* cases)
    : projector_(projector),
      accounting_(accounting),
      clock_(clock ? *clock : Clock::Real()),
      cases_(cases) {}

grpc::Status DisclosureServiceImpl::GetAccounting(grpc::ServerContext* ctx,
                                                  const v1::GetAccountingRequest* req,
                                                  v1::Accounting* resp) {
  if (grpc::Status refused = AuthzVerdict(*ctx); !refused.ok()) return refused;
  if (absl::Status form = CheckForm(*req); !form.ok()) return ToGrpcStatus(form);
  absl::Time now = clock_.Now();
  if (!req->part2_list_request_id().empty()) return GetPart2List(*req, now, resp);
  absl::StatusOr<absl::Time> start = TimeOr(req->window_start(), req->has_window_start(),
                                            DefaultAccountingWindowStart(now), "window_start");
  if (!start.ok()) return ToGrpcStatus(start.status());
  absl::StatusOr<absl::Time> end =
      TimeOr(req->window_end(), req->has_window_end(), now, "window_end");
  if (!end.ok()) return ToGrpcStatus(end.status());
  if (*end < *start) {
    return ToGrpcStatus(absl::InvalidArgumentError(absl::StrCat("window_end: got ", FormatUtc(*end),
                                                                ", want at or after window_start ",
                                                                FormatUtc(*start))));
  }
  absl::Status ready = WaitFor(*projector_, req->min_seq());
  if (!ready.ok()) return ToGrpcStatus(ready);
  uint64_t as_of = projector_->position();
  absl::StatusOr<DisclosureAccounting> accounting =
      AccountingProjection::Load(*projector_, *accounting_, req->client_id());
  if (!accounting.ok()) return ToGrpcStatus(accounting.status());
  AccountingReport report = accounting->Query(req->client_id(), *start, *end,
                                              req->include_excluded(), req->summarize(), now);
  resp->set_client_id(req->client_id());
  resp->set_as_of_seq(as_of);
  resp->set_disclosures(report.summarized ? report.summaries.size() : report.entries.size());
  resp->set_json(AccountingReportToJson(report));
  return grpc::Status::OK;
}

grpc::Status DisclosureServiceImpl::GetPart2List(const v1::GetAccountingRequest& req,
                                                 absl::Time now, v1::Accounting* resp) {
  if (cases_ == nullptr) {
    return ToGrpcStatus(absl::FailedPreconditionError(
        "part2_list_request_id: this server keeps no case-state read model"));
  }
  absl::Status ready = WaitFor(*projector_, req.min_seq());
  if (!ready.ok()) return ToGrpcStatus(ready);
  uint64_t as_of_seq = projector_->position();
  // One answer for an unknown case, an unknown request and another client's
  // request: the caller learns nothing of requests that are not theirs.
  const absl::Status not_found = absl::NotFoundError(absl::StrCat(
      "part2_list_request_id: no 42 CFR 2.24 list request \"", req.part2_list_request_id(),
      "\" of client \"", req.client_id(), "\" in case \"", req.case_id(), "\""));
  absl::StatusOr<CaseState> state = CaseStateProjection::Load(*projector_, *cases_, req.case_id());
  if (!state.ok()) {
    return ToGrpcStatus(absl::IsNotFound(state.status()) ? not_found : state.status());
  }
  auto request = state->part2_list_requests.find(req.part2_list_request_id());
  if (request == state->part2_list_requests.end() ||
      request->second.client_id != req.client_id()) {
    return ToGrpcStatus(not_found);
  }
  auto consent = state->consents.find(request->second.consent_id);
  if (consent == state->consents.end()) return ToGrpcStatus(not_found);
  absl::StatusOr<DisclosureAccounting> accounting =
      AccountingProjection::Load(*projector_, *accounting_, req.client_id());
  if (!accounting.ok()) return ToGrpcStatus(accounting.status());
  // The list as given: up to its answer once answered, else up to now.
  const Part2ListRequest& r = request->second;
  const absl::Time given = r.decision == AccessDecision::kFulfilled ? r.decided_at : now;
  Part2DisclosureList list = QueryPart2List(accounting->entries(req.client_id()), req.case_id(),
                                            consent->second, r, given);
  resp->set_client_id(req.client_id());
  resp->set_as_of_seq(as_of_seq);
  resp->set_disclosures(list.entries.size());
  resp->set_json(Part2DisclosureListToJson(list));
  return grpc::Status::OK;
}

}  // namespace caseledger
