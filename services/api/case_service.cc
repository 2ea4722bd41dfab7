#include "services/api/case_service.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "services/api/grpc_status.h"
#include "services/case_state.pb.h"

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
    return absl::InvalidArgumentError(absl::StrCat(field, ": nanos got ", ts.nanos(),
                                                   ", want 0 to 999999999"));
  }
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

// Identifies the caller and checks the policy table (OK without a guard).
absl::Status Admit(AccessGuard* guard, grpc::ServerContext* ctx, absl::string_view method,
                   const Resource& resource) {
  if (guard == nullptr) return absl::OkStatus();
  return guard->Admit(ctx, method, resource).status();
}

std::string StateJson(const CaseState& state) {
  projection::v1::CaseStateRecord record;
  record.ParseFromString(EncodeCaseState(state));
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(record, &json, options);
  return json;
}

}  // namespace

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
  s.set_pending_client_notices(state.pending_notices.size());
  s.set_active_consents(state.ActiveConsents(now).size());
  s.set_open_conflicts(state.OpenConflicts().size());
  s.set_pending_conflict_notices(state.PendingConflictNotices().size());
  s.set_version(state.version);
  return s;
}

CaseServiceImpl::CaseServiceImpl(const Projector* projector, const CaseStateProjection* cases,
                                 const Clock* clock, AccessGuard* guard)
    : projector_(projector),
      cases_(cases),
      clock_(clock ? *clock : Clock::Real()),
      guard_(guard) {}

grpc::Status CaseServiceImpl::GetCase(grpc::ServerContext* ctx, const v1::GetCaseRequest* req,
                                      v1::CaseView* resp) {
  if (req->case_id().empty()) {
    return ToGrpcStatus(absl::InvalidArgumentError("case_id: must not be empty"));
  }
  Resource resource;
  resource.case_id = req->case_id();
  absl::Status admitted = Admit(guard_, ctx, "/caseledger.v1.CaseService/GetCase", resource);
  if (!admitted.ok()) return ToGrpcStatus(admitted);
  absl::Status ready = WaitFor(*projector_, req->min_seq());
  if (!ready.ok()) return ToGrpcStatus(ready);
  uint64_t as_of = projector_->position();
  absl::StatusOr<CaseState> state = CaseStateProjection::Load(*projector_, *cases_, req->case_id());
  if (!state.ok()) return ToGrpcStatus(state.status());
  *resp->mutable_summary() = SummarizeCase(*state, clock_.Now());
  resp->set_state_json(StateJson(*state));
  resp->set_as_of_seq(as_of);
  return grpc::Status::OK;
}

grpc::Status CaseServiceImpl::ListCases(grpc::ServerContext* ctx,
                                        const v1::ListCasesRequest* req,
                                        v1::ListCasesResponse* resp) {
  Resource resource;
  resource.manager_id = req->manager_id();
  resource.whole_log = req->manager_id().empty();
  absl::Status admitted = Admit(guard_, ctx, "/caseledger.v1.CaseService/ListCases", resource);
  if (!admitted.ok()) return ToGrpcStatus(admitted);
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
  absl::Status bad;
  std::string from = req->page_token();
  absl::Status scan = projector_->Scan(
      *cases_, "",
      [&](absl::string_view key, absl::string_view value) {
        if (!req->page_token().empty() && key == req->page_token()) return true;  // exclusive
        absl::StatusOr<CaseState> state = DecodeCaseState(value);
        if (!state.ok()) {
          bad = state.status();
          return false;
        }
        v1::CaseSummary s = SummarizeCase(*state, now);
        if (!req->status().empty() && s.status() != req->status()) return true;
        if (!req->manager_id().empty() && s.manager_id() != req->manager_id()) return true;
        if (req->access_overdue() && !s.access_overdue()) return true;
        if (static_cast<size_t>(resp->cases_size()) == limit) {
          resp->set_next_page_token(resp->cases(resp->cases_size() - 1).case_id());
          return false;
        }
        *resp->add_cases() = std::move(s);
        return true;
      },
      from);
  if (!scan.ok()) return ToGrpcStatus(scan);
  return ToGrpcStatus(bad);
}

DisclosureServiceImpl::DisclosureServiceImpl(const Projector* projector,
                                             const AccountingProjection* accounting,
                                             const Clock* clock, AccessGuard* guard)
    : projector_(projector),
      accounting_(accounting),
      clock_(clock ? *clock : Clock::Real()),
      guard_(guard) {}

grpc::Status DisclosureServiceImpl::GetAccounting(grpc::ServerContext* ctx,
                                                  const v1::GetAccountingRequest* req,
                                                  v1::Accounting* resp) {
  if (req->client_id().empty()) {
    return ToGrpcStatus(absl::InvalidArgumentError("client_id: must not be empty"));
  }
  Resource resource;
  resource.client_id = req->client_id();
  absl::Status admitted =
      Admit(guard_, ctx, "/caseledger.v1.DisclosureService/GetAccounting", resource);
  if (!admitted.ok()) return ToGrpcStatus(admitted);
  absl::Time now = clock_.Now();
  absl::StatusOr<absl::Time> start = TimeOr(req->window_start(), req->has_window_start(),
                                            DefaultAccountingWindowStart(now), "window_start");
  if (!start.ok()) return ToGrpcStatus(start.status());
  absl::StatusOr<absl::Time> end = TimeOr(req->window_end(), req->has_window_end(), now,
                                          "window_end");
  if (!end.ok()) return ToGrpcStatus(end.status());
  if (*end < *start) {
    return ToGrpcStatus(absl::InvalidArgumentError(absl::StrCat(
        "window_end: got ", FormatUtc(*end), ", want at or after window_start ",
        FormatUtc(*start))));
  }
  absl::Status ready = WaitFor(*projector_, req->min_seq());
  if (!ready.ok()) return ToGrpcStatus(ready);
  uint64_t as_of = projector_->position();
  absl::StatusOr<DisclosureAccounting> accounting =
      AccountingProjection::Load(*projector_, *accounting_, req->client_id());
  if (!accounting.ok()) return ToGrpcStatus(accounting.status());
  AccountingReport report = accounting->Query(req->client_id(), *start, *end,
                                              req->include_excluded(), req->summarize());
  resp->set_client_id(req->client_id());
  resp->set_as_of_seq(as_of);
  resp->set_disclosures(report.summarized ? report.summaries.size() : report.entries.size());
  resp->set_json(AccountingReportToJson(report));
  return grpc::Status::OK;
}

}  // namespace caseledger
