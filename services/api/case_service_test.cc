#include "services/api/case_service.h"

#include <gtest/gtest.h>

#include <google/protobuf/util/json_util.h>

#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "proto/cases.pb.h"
#include "services/authz/request_resources.h"
#include "services/readmodel/case_state.h"

namespace caseledger {
namespace {

constexpr int64_t kT0 = 1767225600;  // 2026-01-01T00:00:00Z
constexpr int64_t kDay = 86400;

absl::Time Day(int d) { return absl::FromUnixSeconds(kT0 + d * kDay); }

// An open case with a consent without expiry, a disclosure whose notice has
// no date, a pending access request and an undated conflict notice: every
// "no time" the read model holds as an infinity.
CaseState OpenCase() {
  CaseState s;
  s.case_id = "case-1";
  s.status = CaseStatus::kOpen;
  s.program = "housing-first";
  s.jurisdiction = "US-CA";
  s.record_class = v1::RECORD_CLASS_BEHAVIORAL_HEALTH;
  s.opened_at = Day(0);
  s.manager_id = "m-1";
  Consent c;
  c.consent_id = "c-1";
  c.client_id = "cl-1";
  c.grantor_kind = v1::GRANTOR_KIND_CLIENT;
  c.grantor_id = "cl-1";
  c.recipients = {"r-1"};
  c.granted_at = Day(1);
  c.language = "es";
  c.comprehension_aid = v1::COMPREHENSION_AID_INTERPRETER;
  c.capacity = v1::CONSENT_CAPACITY_CLIENT_CAPABLE;
  s.consents["c-1"] = c;
  AccessRequest r;
  r.request_id = "ar-1";
  r.client_id = "cl-1";
  r.requested_at = Day(2);
  r.due_at = Day(32);
  s.access_requests["ar-1"] = r;
  PendingNotice n;
  n.disclosure_id = "d-1";
  n.client_id = "cl-1";
  n.disclosed_at = Day(3);
  s.pending_notices["d-1"] = n;
  s.disclosure_ids = {"d-1"};
  s.version = 7;
  s.last_seq = 42;
  s.last_occurred_at = Day(3);
  s.last_committed_at = Day(3) + absl::Seconds(1);
  return s;
}

TEST(CaseStateJsonTest, UsesTheProtoJsonMapping) {
  const std::string json = CaseStateToJson(OpenCase());
  // RFC 3339 times and enum names.
  EXPECT_TRUE(absl::StrContains(json, "\"opened_at\": \"2026-01-01T00:00:00Z\"")) << json;
  EXPECT_TRUE(absl::StrContains(json, "\"status\": \"STATUS_OPEN\"")) << json;
  EXPECT_TRUE(absl::StrContains(json, "\"record_class\": \"RECORD_CLASS_BEHAVIORAL_HEALTH\""))
      << json;
  EXPECT_TRUE(absl::StrContains(json, "\"decision\": \"DECISION_PENDING\"")) << json;
  EXPECT_TRUE(absl::StrContains(json, "\"due_at\": \"2026-02-02T00:00:00Z\"")) << json;
  EXPECT_TRUE(absl::StrContains(json, "\"comprehension_aid\": \"COMPREHENSION_AID_INTERPRETER\""))
      << json;
  EXPECT_TRUE(absl::StrContains(json, "\"last_committed_at\": \"2026-01-04T00:00:01Z\"")) << json;
  // No sentinels, no enum numbers; "no time" is left out.
  for (const char* absent : {"9223372036854775807", "-9223372036854775808", "_micros",
                             "\"closed_at\"", "\"disposed_at\"", "\"expires_at\"",
                             "\"starts_at\"", "\"revoked_at\"", "\"notify_by\"",
                             "\"decided_at\"", "\"status\": 1"}) {
    EXPECT_FALSE(absl::StrContains(json, absent)) << absent << " in\n" << json;
  }
  // It parses back with any proto JSON parser.
  v1::CaseStateJson back;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json, &back).ok()) << json;
  EXPECT_EQ(back.status(), v1::CaseStateJson::STATUS_OPEN);
  EXPECT_EQ(back.consents(0).granted_at().seconds(), kT0 + kDay);
  EXPECT_FALSE(back.consents(0).has_expires_at());
  EXPECT_FALSE(back.pending_notices(0).has_notify_by());
  EXPECT_EQ(back.version(), 7u);
}

TEST(CaseStateJsonTest, AClosedCaseShowsItsClosure) {
  CaseState s = OpenCase();
  s.status = CaseStatus::kClosed;
  s.closed_at = Day(40);
  s.access_requests["ar-1"].decision = AccessDecision::kDenied;
  s.access_requests["ar-1"].decided_at = Day(20);
  const std::string json = CaseStateToJson(s);
  EXPECT_TRUE(absl::StrContains(json, "\"status\": \"STATUS_CLOSED\"")) << json;
  EXPECT_TRUE(absl::StrContains(json, "\"closed_at\": \"2026-02-10T00:00:00Z\"")) << json;
  EXPECT_TRUE(absl::StrContains(json, "\"decision\": \"DECISION_DENIED\"")) << json;
  EXPECT_TRUE(absl::StrContains(json, "\"decided_at\": \"2026-01-21T00:00:00Z\"")) << json;
}

// The workflows' state (issue 13): accounting and amendment requests with
// their due dates, holds, suspensions, and a denial's review.
TEST(CaseStateJsonTest, CarriesTheWorkflows) {
  CaseState s = OpenCase();
  AccessRequest& r = s.access_requests["ar-1"];
  r.decision = AccessDecision::kDenied;
  r.denial_ground = v1::ACCESS_DENIAL_GROUND_ENDANGERS_LIFE_OR_SAFETY;
  r.denied_by = "dr-1";
  r.review = AccessReview::kOverturned;
  r.reviewed_at = Day(25);
  r.reviewer_id = "dr-2";
  AccountingRequest a;
  a.request_id = "acc-1";
  a.client_id = "cl-1";
  a.received_at = Day(4);
  a.due_at = Day(64);
  s.accounting_requests["acc-1"] = a;
  AmendmentRequest m;
  m.request_id = "am-1";
  m.entry_id = "e-1";
  m.decision = AccessDecision::kDenied;
  m.denial_basis = v1::AMENDMENT_DENIAL_BASIS_ACCURATE_AND_COMPLETE;
  m.disagreement_filed = true;
  m.disagreement_at = Day(9);
  s.amendment_requests["am-1"] = m;
  LegalHold h;
  h.hold_id = "hold-1";
  h.scope = v1::LEGAL_HOLD_SCOPE_CASE;
  h.ground = v1::LEGAL_HOLD_GROUND_LITIGATION;
  h.placed_at = Day(5);
  s.legal_holds["hold-1"] = h;
  AccountingSuspension u;
  u.suspension_id = "s-1";
  u.agency_name = "County Court";
  u.form = v1::SUSPENSION_FORM_WRITTEN;
  u.suspended_at = Day(6);
  u.ends_at = Day(96);
  s.accounting_suspensions["s-1"] = u;
  const std::string json = CaseStateToJson(s);
  for (const char* want :
       {"\"review\": \"REVIEW_OVERTURNED\"", "\"denial_ground\": \"ACCESS_DENIAL_GROUND_ENDANGERS_LIFE_OR_SAFETY\"",
        "\"reviewer_id\": \"dr-2\"", "\"received_at\": \"2026-01-05T00:00:00Z\"",
        "\"due_at\": \"2026-03-06T00:00:00Z\"",
        "\"denial_basis\": \"AMENDMENT_DENIAL_BASIS_ACCURATE_AND_COMPLETE\"",
        "\"disagreement_at\": \"2026-01-10T00:00:00Z\"", "\"scope\": \"LEGAL_HOLD_SCOPE_CASE\"",
        "\"placed_at\": \"2026-01-06T00:00:00Z\"", "\"agency_name\": \"County Court\"",
        "\"ends_at\": \"2026-04-07T00:00:00Z\""}) {
    EXPECT_TRUE(absl::StrContains(json, want)) << want << " not in\n" << json;
  }
  for (const char* absent : {"\"released_at\"", "\"rebutted_at\"", "\"review_requested_at\""}) {
    EXPECT_FALSE(absl::StrContains(json, absent)) << absent << " in\n" << json;
  }
  v1::CaseStateJson back;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json, &back).ok()) << json;
  ASSERT_EQ(back.legal_holds_size(), 1);
  EXPECT_FALSE(back.legal_holds(0).released());
  ASSERT_EQ(back.amendment_requests_size(), 1);
  EXPECT_EQ(back.amendment_requests(0).decision(), v1::CaseStateJson::DECISION_DENIED);
  EXPECT_EQ(back.accounting_suspensions(0).ends_at().seconds(), kT0 + 96 * kDay);
}

// 42 CFR 2.24 (RULES.md W14.4): an open list request is counted, due 30
// days after receipt, and overdue after that (ListCases' --overdue reads
// part2_list_overdue); the JSON carries it and the consent's designation.
TEST(CaseStateJsonTest, CarriesThePart2ListRequestAndItsClock) {
  CaseState s = OpenCase();
  s.access_requests.clear();  // only the list is owed
  s.record_class = v1::RECORD_CLASS_SUBSTANCE_USE;
  s.consents["c-1"].general_designation = "my treating providers";
  s.consents["c-1"].intermediary = "hie-1";
  Part2ListRequest r;
  r.request_id = "pl-1";
  r.client_id = "cl-1";
  r.consent_id = "c-1";
  r.requested_at = Day(4);
  r.received_at = Day(4);
  r.due_at = Day(34);
  s.part2_list_requests["pl-1"] = r;
  v1::CaseSummary before = SummarizeCase(s, Day(34));
  EXPECT_EQ(before.open_part2_list_requests(), 1u);
  EXPECT_FALSE(before.part2_list_overdue());
  EXPECT_EQ(before.next_part2_list_due().seconds(), kT0 + 34 * kDay);
  EXPECT_FALSE(AnyRequestOverdue(before));
  const v1::CaseSummary late = SummarizeCase(s, Day(34) + absl::Seconds(1));
  EXPECT_TRUE(late.part2_list_overdue());
  EXPECT_TRUE(AnyRequestOverdue(late));  // so `ledgerctl cases --overdue` lists it
  const std::string json = CaseStateToJson(s);
  for (const char* want : {"\"general_designation\": \"my treating providers\"",
                           "\"intermediary\": \"hie-1\"", "\"part2_list_requests\"",
                           "\"due_at\": \"2026-02-04T00:00:00Z\""}) {
    EXPECT_TRUE(absl::StrContains(json, want)) << want << " not in\n" << json;
  }
  // Given: no longer open, never overdue.
  s.part2_list_requests["pl-1"].decision = AccessDecision::kFulfilled;
  s.part2_list_requests["pl-1"].decided_at = Day(40);
  v1::CaseSummary after = SummarizeCase(s, Day(50));
  EXPECT_EQ(after.open_part2_list_requests(), 0u);
  EXPECT_FALSE(after.part2_list_overdue());
}

// The 42 CFR 2.24 list's form (GetAccountingRequest): its case and request
// together, and nothing of the HIPAA accounting's query.
TEST(GetAccountingFormTest, ThePart2ListNamesItsCaseAndRequestOnly) {
  v1::GetAccountingRequest req;
  req.set_client_id("cl-1");
  EXPECT_EQ(CheckForm(req), absl::OkStatus());
  req.set_part2_list_request_id("pl-1");
  EXPECT_EQ(CheckForm(req), absl::InvalidArgumentError(
                                "case_id: must not be empty when part2_list_request_id is set"));
  req.set_case_id("case-1");
  EXPECT_EQ(CheckForm(req), absl::OkStatus());
  req.set_summarize(true);
  EXPECT_EQ(CheckForm(req),
            absl::InvalidArgumentError(
                "part2_list_request_id: window_start, window_end, include_excluded and summarize "
                "must be unset (the 42 CFR 2.24 list has its own window)"));
  req.set_summarize(false);
  req.clear_part2_list_request_id();
  EXPECT_EQ(CheckForm(req), absl::InvalidArgumentError(
                                "part2_list_request_id: must not be empty when case_id is set"));
}

}  // namespace
}  // namespace caseledger
