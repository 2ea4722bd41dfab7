#include "services/readmodel/case_state.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/text_format.h"
#include "services/policy/policy.h"
#include "services/readmodel/case_state_rows.h"

namespace caseledger {
namespace {

constexpr int64_t kT0 = 1767225600;  // 2026-01-01T00:00:00Z
constexpr int64_t kDay = 86400;

absl::Time Day(int d) { return absl::FromUnixSeconds(kT0 + d * kDay); }

v1::Event Parse(const std::string& text, int day, const std::string& stream = "case-7") {
  v1::Event e;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &e)) << text;
  e.set_stream_id(stream);
  if (e.subject_ids().empty()) e.add_subject_ids("cl-1");
  e.mutable_occurred_at()->set_seconds(kT0 + day * kDay);
  return e;
}

// What the client was told, as a consent by the client records it (RULES.md I1).
constexpr char kInformedByClient[] =
    "informed { told_right_to_revoke: true told_consequences_of_refusing: true "
    "told_redisclosure_risk: true told_limits_of_confidentiality: true language: \"es\" "
    "comprehension_aid: COMPREHENSION_AID_INTERPRETER capacity: CONSENT_CAPACITY_CLIENT_CAPABLE } "
    "interpreter_name: \"Lucía\" ";
constexpr char kInformedByRepresentative[] =
    "informed { told_right_to_revoke: true told_consequences_of_refusing: true "
    "told_redisclosure_risk: true told_limits_of_confidentiality: true language: \"en\" "
    "comprehension_aid: COMPREHENSION_AID_NONE capacity: CONSENT_CAPACITY_REPRESENTATIVE_ACTS "
    "capacity_note: \"client is in a coma\" } ";

void SetInformedByClient(v1::ConsentGranted* b) {
  auto* i = b->mutable_informed();
  i->set_told_right_to_revoke(true);
  i->set_told_consequences_of_refusing(true);
  i->set_told_redisclosure_risk(true);
  i->set_told_limits_of_confidentiality(true);
  i->set_language("en");
  i->set_comprehension_aid(v1::COMPREHENSION_AID_NONE);
  i->set_capacity(v1::CONSENT_CAPACITY_CLIENT_CAPABLE);
}

// Checks, then applies; what the service does on append.
class Story {
 public:
  absl::Status Append(const std::string& text, int day) {
    v1::Event e = Parse(text, day);
    // Received and committed a second after it occurred.
    const absl::Time commit = Day(day) + absl::Seconds(1);
    absl::Status s = CheckEvent(state_, e, CheckContext{commit});
    if (!s.ok()) return s;
    return ApplyEvent(e, ++seq_ * 10, commit, &state_);
  }
  const CaseState& state() const { return state_; }

 private:
  CaseState state_;
  uint64_t seq_ = 0;
};

TEST(CaseStateTest, FullCaseStory) {
  Story story;
  auto ok = [&](const std::string& text, int day) {
    absl::Status s = story.Append(text, day);
    ASSERT_TRUE(s.ok()) << s << "\n" << text;
  };
  // Intake.
  ok("case_opened { program: \"housing-first\" jurisdiction: \"US-CA\" "
     "record_class: RECORD_CLASS_BEHAVIORAL_HEALTH reason: \"referral\" }",
     0);
  ok("participant_added { participant_id: \"cl-1\" role: PARTICIPANT_ROLE_CLIENT }", 0);
  ok(absl::StrCat("participant_added { participant_id: \"rep-1\" "
                  "role: PARTICIPANT_ROLE_AUTHORIZED_REPRESENTATIVE authority { "
                  "document_sha256: \"0123456789abcdef0123456789abcdef\" "
                  "scope: REPRESENTATIVE_SCOPE_HEALTH_DECISIONS ends_at { seconds: ",
                  kT0 + 365 * kDay, " } } }"),
     0);
  ok("participant_added { participant_id: \"tp-1\" role: PARTICIPANT_ROLE_THIRD_PARTY "
     "display_name: \"Neighbor\" }",
     0);
  ok("case_manager_assigned { manager_id: \"m-1\" reason: \"intake\" }", 0);
  ok("record_entry_written { entry_id: \"e-1\" data_category: \"housing\" text: \"t\" "
     "author_id: \"m-1\" }",
     1);
  // Consent.
  ok(absl::StrCat("consent_granted { ", kInformedByClient,
                  "consent_id: \"c-1\" client_id: \"cl-1\" "
                  "grantor_kind: GRANTOR_KIND_CLIENT grantor_id: \"cl-1\" recipients: \"r-1\" "
                  "purposes: \"care_coordination\" data_categories: \"housing\" "
                  "expires_at { seconds: ",
                  kT0 + 90 * kDay, " } revocable: true }"),
     1);
  ok(absl::StrCat("consent_granted { ", kInformedByRepresentative,
                  "consent_id: \"c-2\" client_id: \"cl-1\" "
                  "grantor_kind: GRANTOR_KIND_AUTHORIZED_REPRESENTATIVE grantor_id: \"rep-1\" "
                  "recipients: \"r-2\" purposes: \"billing\" data_categories: \"housing\" }"),
     2);
  // Disclosures.
  ok(absl::StrCat("disclosure_made { disclosure_id: \"d-1\" client_id: \"cl-1\" "
                  "recipient { recipient_id: \"r-1\" name: \"Dr. Ada\" } "
                  "purpose: \"care_coordination\" data_categories: \"housing\" "
                  "description: \"housing plan\" legal_basis: LEGAL_BASIS_CONSENT "
                  "consent_id: \"c-1\" client_informed_at { seconds: ",
                  kT0 + 10 * kDay, " } }"),
     3);
  ok("disclosure_made { disclosure_id: \"d-2\" client_id: \"cl-1\" "
     "recipient { name: \"County APS\" } purpose: \"mandated report\" "
     "data_categories: \"housing\" description: \"living conditions\" "
     "legal_basis: LEGAL_BASIS_REQUIRED_BY_LAW legal_citation: \"Cal. WIC 15630\" "
     "minimum_necessary: \"the items WIC 15630 lists\" "
     "client_informed: true }",
     4);
  {
    const CaseState& s = story.state();
    ASSERT_EQ(s.pending_notices.size(), 1u);
    const PendingNotice& n = s.pending_notices.at("d-1");
    EXPECT_EQ(n.client_id, "cl-1");
    EXPECT_EQ(n.recipient_name, "Dr. Ada");
    EXPECT_EQ(n.disclosed_at, Day(3));
    EXPECT_EQ(n.notify_by, Day(10));
  }
  ok("conflict_declared { conflict_id: \"k-1\" declared_by: \"m-1\" description: \"x\" }", 4);
  // Revocation, then a disclosure on the revoked consent is refused and not stored.
  EXPECT_EQ(story.state().PendingConflictNotices().size(), 1u);
  EXPECT_TRUE(story.state().HasOpenConflict("m-1"));
  ok("consent_revoked { consent_id: \"c-2\" revoked_by: \"rep-1\" reason: \"changed mind\" }", 5);
  ok("client_informed_of_conflict { conflict_id: \"k-1\" method: \"in person\" "
     "informed_by: \"m-1\" }",
     5);
  const std::string before = EncodeCaseState(story.state());
  absl::Status refused = story.Append(
      "disclosure_made { disclosure_id: \"d-3\" client_id: \"cl-1\" "
      "recipient { recipient_id: \"r-2\" name: \"Billing Co\" } "
      "purpose: \"billing\" data_categories: \"housing\" description: \"x\" "
      "legal_basis: LEGAL_BASIS_CONSENT consent_id: \"c-2\" }",
      6);
  EXPECT_EQ(refused, absl::FailedPreconditionError(
                         "consent \"c-2\" was revoked at 2026-01-06T00:00:00Z, before the "
                         "disclosure at 2026-01-07T00:00:00Z"));
  EXPECT_EQ(EncodeCaseState(story.state()), before);
  // Amendment, notice, access, transfer, closure.
  ok("record_amended { entry_id: \"e-2\" amends_entry_id: \"e-1\" reason: \"wrong date\" "
     "text: \"t2\" }",
     7);
  ok("client_informed { disclosure_id: \"d-1\" method: \"letter\" }", 8);
  ok("access_requested { request_id: \"ar-1\" client_id: \"cl-1\" requested_by: \"cl-1\" }", 9);
  ok("access_extended { request_id: \"ar-1\" reason: \"records off-site\" }", 20);
  {
    const AccessRequest& r = story.state().access_requests.at("ar-1");
    EXPECT_EQ(r.requested_at, Day(9));
    EXPECT_EQ(r.due_at, Day(69));
    EXPECT_TRUE(r.extended);
    EXPECT_EQ(story.state().OpenAccessRequests().size(), 1u);
  }
  EXPECT_EQ(story.Append("case_closed { reason: \"moved\" }", 20).code(),
            absl::StatusCode::kFailedPrecondition);
  ok("case_transferred { to_manager_id: \"m-2\" to_program: \"rural\" reason: \"moved\" }", 21);
  ok("conflict_resolved { conflict_id: \"k-1\" resolution: \"transferred\" "
     "resolved_by: \"sup-1\" }",
     21);
  ok("access_fulfilled { request_id: \"ar-1\" bundle_sha256: \"ab\" }", 30);
  ok("participant_removed { participant_id: \"tp-1\" reason: \"moved out\" }", 31);
  ok("case_closed { reason: \"goals met\" referral: \"rural program\" }", 40);
  EXPECT_EQ(story.Append("record_entry_written { entry_id: \"e-3\" data_category: \"x\" }", 41),
            absl::FailedPreconditionError(
                "case \"case-7\" is closed: record_entry_written is not allowed"));

  const CaseState& s = story.state();
  EXPECT_EQ(s.case_id, "case-7");
  EXPECT_EQ(s.status, CaseStatus::kClosed);
  EXPECT_EQ(s.program, "rural");
  EXPECT_EQ(s.jurisdiction, "US-CA");
  EXPECT_EQ(s.record_class, v1::RECORD_CLASS_BEHAVIORAL_HEALTH);
  EXPECT_EQ(s.opened_at, Day(0));
  EXPECT_EQ(s.closed_at, Day(40));
  EXPECT_EQ(s.manager_id, "m-2");
  ASSERT_EQ(s.manager_history.size(), 2u);
  EXPECT_EQ(s.manager_history[0].manager_id, "m-1");
  EXPECT_EQ(s.manager_history[0].reason, "intake");
  EXPECT_EQ(s.manager_history[1].manager_id, "m-2");
  EXPECT_EQ(s.manager_history[1].reason, "transfer: moved");
  EXPECT_EQ(s.manager_history[1].at, Day(21));
  ASSERT_EQ(s.participants.size(), 2u);
  EXPECT_EQ(s.participants.at("cl-1").role, v1::PARTICIPANT_ROLE_CLIENT);
  EXPECT_EQ(s.participants.at("rep-1").role, v1::PARTICIPANT_ROLE_AUTHORIZED_REPRESENTATIVE);
  EXPECT_EQ(s.participants.at("rep-1").authority.scope, v1::REPRESENTATIVE_SCOPE_HEALTH_DECISIONS);
  EXPECT_EQ(s.participants.at("rep-1").authority.starts_at, Day(0));
  EXPECT_EQ(s.participants.at("rep-1").authority.ends_at, Day(365));
  ASSERT_EQ(s.consents.size(), 2u);
  const Consent& c1 = s.consents.at("c-1");
  EXPECT_FALSE(c1.revoked);
  EXPECT_EQ(c1.expires_at, Day(90));
  EXPECT_EQ(c1.recipients, std::set<std::string>{"r-1"});
  EXPECT_EQ(c1.data_categories, std::set<std::string>{"housing"});
  EXPECT_EQ(c1.language, "es");
  EXPECT_EQ(c1.comprehension_aid, v1::COMPREHENSION_AID_INTERPRETER);
  EXPECT_EQ(c1.capacity, v1::CONSENT_CAPACITY_CLIENT_CAPABLE);
  EXPECT_EQ(s.consents.at("c-2").capacity, v1::CONSENT_CAPACITY_REPRESENTATIVE_ACTS);
  const Consent& c2 = s.consents.at("c-2");
  EXPECT_TRUE(c2.revoked);
  EXPECT_EQ(c2.revoked_at, Day(5));
  EXPECT_EQ(c2.revoked_by, "rep-1");
  ASSERT_EQ(s.ActiveConsents(Day(40)).size(), 1u);
  EXPECT_EQ(s.ActiveConsents(Day(40))[0]->consent_id, "c-1");
  EXPECT_TRUE(s.ActiveConsents(Day(90)).empty());
  EXPECT_TRUE(s.conflicts.at("k-1").resolved);
  EXPECT_TRUE(s.OpenConflicts().empty());
  EXPECT_TRUE(s.PendingConflictNotices().empty());
  EXPECT_FALSE(s.HasOpenConflict("m-1"));
  EXPECT_EQ(s.conflicts.at("k-1").resolved_by, "sup-1");
  EXPECT_EQ(s.conflicts.at("k-1").client_informed_at, Day(5));
  EXPECT_EQ(s.conflicts.at("k-1").client_informed_method, "in person");
  ASSERT_EQ(s.entries.size(), 2u);
  EXPECT_EQ(s.entries.at("e-2").amends_entry_id, "e-1");
  EXPECT_EQ(s.entries.at("e-2").data_category, "housing");
  EXPECT_EQ(s.entries.at("e-1").amends_entry_id, "");
  EXPECT_EQ(s.access_requests.at("ar-1").decision, AccessDecision::kFulfilled);
  EXPECT_TRUE(s.OpenAccessRequests().empty());
  EXPECT_EQ(s.disclosure_ids, (std::set<std::string>{"d-1", "d-2"}));
  EXPECT_TRUE(s.pending_notices.empty());
  EXPECT_EQ(s.version, 22u);
  EXPECT_EQ(s.last_seq, 220u);
  EXPECT_EQ(s.last_occurred_at, Day(40));
  EXPECT_EQ(s.last_committed_at, Day(40) + absl::Seconds(1));

  // Round trip.
  const std::string bytes = EncodeCaseState(s);
  auto decoded = DecodeCaseState(bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(EncodeCaseState(*decoded), bytes);
  EXPECT_EQ(decoded->manager_history[1].reason, "transfer: moved");
  EXPECT_EQ(decoded->consents.at("c-1").starts_at, absl::InfinitePast());
  EXPECT_EQ(decoded->consents.at("c-1").revoked_at, absl::InfiniteFuture());
  EXPECT_EQ(decoded->conflicts.at("k-1").client_informed_at, Day(5));
  EXPECT_EQ(decoded->conflicts.at("k-1").resolved_by, "sup-1");
  EXPECT_EQ(decoded->participants.at("rep-1").authority.ends_at, Day(365));
  EXPECT_EQ(decoded->participants.at("rep-1").authority.document_sha256,
            "0123456789abcdef0123456789abcdef");
}

TEST(CaseStateTest, ReopenedCaseTakesEntriesAgain) {
  Story story;
  ASSERT_EQ(story.Append("case_opened { program: \"p\" record_class: RECORD_CLASS_GENERAL }", 0),
            absl::OkStatus());
  ASSERT_EQ(story.Append("case_closed { reason: \"done\" }", 1), absl::OkStatus());
  ASSERT_EQ(story.Append("case_reopened { reason: \"back\" }", 2), absl::OkStatus());
  EXPECT_EQ(story.state().status, CaseStatus::kOpen);
  EXPECT_EQ(story.state().closed_at, absl::InfinitePast());
  EXPECT_EQ(story.Append("record_entry_written { entry_id: \"e-1\" data_category: \"x\" }", 3),
            absl::OkStatus());
}

TEST(CaseStateTest, ApplyRefusesAnotherStreamAndAReplayedSeq) {
  CaseState s;
  ASSERT_EQ(ApplyEvent(Parse("case_opened { program: \"p\" }", 0), 5, Day(0), &s),
            absl::OkStatus());
  const std::string before = EncodeCaseState(s);
  EXPECT_EQ(ApplyEvent(Parse("services_resumed {}", 1, "case-8"), 6, Day(1), &s),
            absl::InvalidArgumentError(
                "event.stream_id: got \"case-8\", want \"case-7\" (the case this state folds)"));
  EXPECT_EQ(ApplyEvent(Parse("services_resumed {}", 1), 5, Day(1), &s),
            absl::FailedPreconditionError("case \"case-7\": event at seq 5 is not after the last "
                                          "applied seq 5 (applied twice or out of order)"));
  v1::Event no_body = Parse("", 1);
  EXPECT_EQ(ApplyEvent(no_body, 6, Day(1), &s),
            absl::InvalidArgumentError("event.body: must be set (event at seq 6)"));
  EXPECT_EQ(EncodeCaseState(s), before);
}

// 45 CFR 164.524(b)(2) counts from receipt: a request dated ahead of its
// commit is due 30 days after the commit; one recorded late (dated before its
// commit), 30 days after the date it gives.
TEST(CaseStateTest, AccessDueDateRunsFromReceipt) {
  CaseState s;
  ASSERT_EQ(ApplyEvent(Parse("case_opened { program: \"p\" }", 0), 1, Day(0), &s),
            absl::OkStatus());
  ASSERT_EQ(ApplyEvent(Parse("access_requested { request_id: \"ahead\" client_id: \"cl-1\" }", 400),
                       2, Day(3), &s),
            absl::OkStatus());
  ASSERT_EQ(ApplyEvent(Parse("access_requested { request_id: \"late\" client_id: \"cl-1\" }", 1), 3,
                       Day(5), &s),
            absl::OkStatus());
  EXPECT_EQ(s.access_requests.at("ahead").requested_at, Day(400));
  EXPECT_EQ(s.access_requests.at("ahead").due_at, Day(33));
  EXPECT_EQ(s.access_requests.at("late").due_at, Day(31));
}

// Accounting (164.528(c)(1)) and amendment (164.526(b)(2)) requests are due
// 60 days after receipt, 90 once extended; a review that overturns a denial
// makes access owed at once (164.524(d)(4)); holds are kept until released.
// All of it survives the state's encoding.
TEST(CaseStateTest, ClientWorkflowsFoldAndSurviveEncoding) {
  Story story;
  for (const auto& [text, day] : std::vector<std::pair<std::string, int>>{
           {"case_opened { program: \"p\" record_class: RECORD_CLASS_BEHAVIORAL_HEALTH }", 0},
           {"record_entry_written { entry_id: \"e-1\" data_category: \"housing\" }", 0},
           {"accounting_requested { request_id: \"acr-1\" client_id: \"cl-1\" }", 1},
           {"accounting_requested { request_id: \"acr-2\" client_id: \"cl-1\" "
            "fee_notice: \"$20\" }",
            2},
           {"accounting_extended { request_id: \"acr-2\" reason: \"archive\" }", 3},
           {"amendment_requested { request_id: \"am-1\" client_id: \"cl-1\" entry_id: \"e-1\" "
            "requested_change: \"c\" }",
            4},
           {"amendment_denied { request_id: \"am-1\" "
            "basis: AMENDMENT_DENIAL_BASIS_ACCURATE_AND_COMPLETE explanation: \"x\" }",
            5},
           {"disagreement_filed { request_id: \"am-1\" statement: \"s\" }", 6},
           {"access_requested { request_id: \"ar-1\" client_id: \"cl-1\" }", 7},
           {"access_denied { request_id: \"ar-1\" reason: \"r\" "
            "ground: ACCESS_DENIAL_GROUND_HARM_TO_PERSON_REFERENCED denied_by: \"dr-1\" }",
            8},
           {"access_review_requested { request_id: \"ar-1\" }", 9},
           {"access_reviewed { request_id: \"ar-1\" reviewer_id: \"dr-2\" "
            "reviewer_license: \"L\" outcome: ACCESS_REVIEW_OUTCOME_OVERTURNED }",
            10},
           {"legal_hold_placed { hold_id: \"h-1\" scope: LEGAL_HOLD_SCOPE_CASE "
            "ground: LEGAL_HOLD_GROUND_INVESTIGATION authority: \"a\" }",
            11},
       }) {
    ASSERT_EQ(story.Append(text, day), absl::OkStatus()) << text;
  }
  const CaseState& s = story.state();
  EXPECT_EQ(s.accounting_requests.at("acr-1").due_at, Day(61));
  EXPECT_EQ(s.accounting_requests.at("acr-2").due_at, Day(92));
  EXPECT_EQ(s.accounting_requests.at("acr-2").fee_notice, "$20");
  EXPECT_EQ(s.OpenAccountingRequests().size(), 2u);
  const AmendmentRequest& am = s.amendment_requests.at("am-1");
  EXPECT_EQ(am.due_at, Day(64));
  EXPECT_EQ(am.decision, AccessDecision::kDenied);
  EXPECT_TRUE(am.disagreement_filed);
  EXPECT_TRUE(s.OpenAmendmentRequests().empty());
  const AccessRequest& ar = s.access_requests.at("ar-1");
  EXPECT_EQ(ar.review, AccessReview::kOverturned);
  EXPECT_EQ(ar.decision, AccessDecision::kPending);  // owed again
  EXPECT_EQ(ar.due_at, Day(10));                     // at once
  EXPECT_EQ(ar.denial_ground, v1::ACCESS_DENIAL_GROUND_HARM_TO_PERSON_REFERENCED);
  ASSERT_EQ(s.ActiveLegalHolds().size(), 1u);
  EXPECT_NE(s.HoldOn("cl-1"), nullptr);
  absl::StatusOr<CaseState> decoded = DecodeCaseState(EncodeCaseState(s));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(EncodeCaseState(*decoded), EncodeCaseState(s));
  EXPECT_EQ(decoded->access_requests.at("ar-1").review, AccessReview::kOverturned);
  EXPECT_EQ(decoded->amendment_requests.at("am-1").denial_basis,
            v1::AMENDMENT_DENIAL_BASIS_ACCURATE_AND_COMPLETE);
}

// 42 CFR 2.24 (RULES.md W14.4): a list request is due 30 days after receipt,
// open until the list is given, and kept through encoding and the rows.
TEST(CaseStateTest, Part2ListRequestFoldsAndSurvivesEncoding) {
  CaseState s;
  uint64_t seq = 0;
  auto apply = [&](const std::string& text, int day, absl::Time commit) {
    ASSERT_EQ(ApplyEvent(Parse(text, day), ++seq, commit, &s), absl::OkStatus()) << text;
  };
  apply("case_opened { program: \"p\" record_class: RECORD_CLASS_SUBSTANCE_USE }", 0, Day(0));
  apply("consent_granted { consent_id: \"c-g\" client_id: \"cl-1\" recipients: \"hie-1\" "
        "general_designation: \"my treating providers\" intermediary: \"hie-1\" }",
        1, Day(1));
  // Received on paper on day 4, recorded on day 6: due from day 4.
  apply("part2_list_requested { request_id: \"pl-1\" client_id: \"cl-1\" consent_id: \"c-g\" }",
        4, Day(6));
  apply("part2_list_requested { request_id: \"pl-2\" client_id: \"cl-1\" consent_id: \"c-g\" }",
        7, Day(7));
  apply("part2_list_provided { request_id: \"pl-2\" }", 9, Day(9));
  const Consent& c = s.consents.at("c-g");
  EXPECT_EQ(c.general_designation, "my treating providers");
  EXPECT_EQ(c.intermediary, "hie-1");
  const Part2ListRequest& r = s.part2_list_requests.at("pl-1");
  EXPECT_EQ(r.received_at, Day(4));
  EXPECT_EQ(r.due_at, Day(34));
  EXPECT_EQ(r.consent_id, "c-g");
  ASSERT_EQ(s.OpenPart2ListRequests().size(), 1u);
  EXPECT_EQ(s.OpenPart2ListRequests()[0]->request_id, "pl-1");
  EXPECT_EQ(s.part2_list_requests.at("pl-2").decision, AccessDecision::kFulfilled);
  EXPECT_EQ(s.part2_list_requests.at("pl-2").decided_at, Day(9));
  absl::StatusOr<CaseState> decoded = DecodeCaseState(EncodeCaseState(s));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(EncodeCaseState(*decoded), EncodeCaseState(s));
  EXPECT_EQ(decoded->part2_list_requests.at("pl-1").due_at, Day(34));
  EXPECT_EQ(decoded->consents.at("c-g").intermediary, "hie-1");
  // The read model's rows (PROJECTIONS.md kind "part2list") hold it too.
  CaseRows rows;
  AddAllRows(s, &rows);
  EXPECT_TRUE(rows.count(std::string("\0part2list\0pl-1", 15)) > 0);
  CaseRowsDecoder decoder;
  for (const auto& [key, value] : rows) {
    ASSERT_TRUE(value.has_value());
    ASSERT_EQ(decoder.Add(key, *value), absl::OkStatus()) << key;
  }
  absl::StatusOr<CaseState> from_rows = decoder.Finish();
  ASSERT_TRUE(from_rows.ok()) << from_rows.status();
  EXPECT_EQ(EncodeCaseState(*from_rows), EncodeCaseState(s));
}

TEST(CaseStateTest, ApplyIsLenientWithEventsThePolicyWouldRefuse) {
  CaseState s;
  // Committed before the policy existed: references to unknown ids are ignored.
  ASSERT_EQ(ApplyEvent(Parse("consent_revoked { consent_id: \"c-9\" }", 0), 0, Day(0), &s),
            absl::OkStatus());
  ASSERT_EQ(ApplyEvent(Parse("access_fulfilled { request_id: \"ar-9\" }", 0), 1, Day(0), &s),
            absl::OkStatus());
  EXPECT_EQ(s.version, 2u);
  EXPECT_EQ(s.status, CaseStatus::kNotOpened);
  EXPECT_TRUE(s.consents.empty());
}

TEST(CaseStateTest, DecodeRefusesBadBytes) {
  EXPECT_EQ(DecodeCaseState("\xff\xff").status(),
            absl::InvalidArgumentError("case state: 2 bytes do not parse as a CaseStateRecord"));
  EXPECT_EQ(DecodeCaseState("").status(),
            absl::InvalidArgumentError("case state: format_version got 0, want 1"));
}

TEST(CaseStateTest, FormatTime) {
  EXPECT_EQ(FormatUtc(Day(59)), "2026-03-01T00:00:00Z");
  EXPECT_EQ(FormatUtc(absl::InfiniteFuture()), "never");
}

// ---- Determinism: a generated history folded in one pass or in two halves
// with encode/decode between gives identical bytes. ----

struct Generated {
  v1::Event event;
  uint64_t seq;
  absl::Time commit_time;
};

// Drives random but policy-accepted events for many cases.
class HistoryGenerator {
 public:
  explicit HistoryGenerator(int cases) : cases_(cases), rng_(20260101) {}

  std::vector<Generated> Generate(int n) {
    std::vector<Generated> out;
    uint64_t seq = 0;
    while (static_cast<int>(out.size()) < n) {
      const int c = static_cast<int>(rng_() % cases_);
      CaseGen& g = gen_[c];
      g.day += static_cast<int>(rng_() % 3);
      v1::Event e = Candidate(c, g);
      // Received and committed shortly after it occurred.
      const absl::Time commit = TimeFromProto(e.occurred_at()) + absl::Seconds(seq);
      if (!CheckEvent(g.state, e, CheckContext{commit}).ok()) {
        ++refused_;
        continue;
      }
      EXPECT_EQ(ApplyEvent(e, seq, commit, &g.state), absl::OkStatus());
      out.push_back({std::move(e), seq, commit});
      seq += 1 + rng_() % 3;  // other streams' records sit between
    }
    return out;
  }
  int refused() const { return refused_; }

 private:
  struct CaseGen {
    CaseState state;
    int day = 0;
    int next = 0;
  };

  template <typename Map>
  std::string Pick(const Map& m) {
    if (m.empty()) return "none";
    auto it = m.begin();
    std::advance(it, rng_() % m.size());
    return it->first;
  }

  v1::Event Candidate(int c, CaseGen& g) {
    v1::Event e;
    const std::string client = absl::StrCat("cl-", c);
    e.set_stream_id(absl::StrCat("case-", c));
    e.set_event_id(absl::StrCat("case-", c, "-", g.next));
    e.add_subject_ids(client);
    e.mutable_occurred_at()->set_seconds(kT0 + g.day * kDay + (rng_() % 1000));
    const std::string id = absl::StrCat("x", g.next++);
    const CaseState& s = g.state;
    static const char* kCategories[] = {"housing", "mental_health_notes", "employment",
                                        "substance_use_treatment"};
    static const char* kRecipients[] = {"r-1", "r-2", "r-3"};
    static const char* kPurposes[] = {"care_coordination", "billing"};
    if (s.status == CaseStatus::kNotOpened) {
      auto* b = e.mutable_case_opened();
      b->set_program(absl::StrCat("program-", c % 7));
      b->set_jurisdiction("US-CA");
      b->set_record_class(c % 5 == 0 ? v1::RECORD_CLASS_SUBSTANCE_USE
                                     : v1::RECORD_CLASS_BEHAVIORAL_HEALTH);
      return e;
    }
    switch (rng_() % 20) {
      case 0:
        e.mutable_participant_added()->set_participant_id(rng_() % 2 ? client
                                                                     : absl::StrCat("p-", id));
        e.mutable_participant_added()->set_role(static_cast<v1::ParticipantRole>(1 + rng_() % 4));
        break;
      case 1:
        e.mutable_participant_removed()->set_participant_id(Pick(s.participants));
        break;
      case 2:
        e.mutable_case_manager_assigned()->set_manager_id(absl::StrCat("m-", rng_() % 9));
        e.mutable_case_manager_assigned()->set_previous_manager_id(s.manager_id);
        break;
      case 3:
        e.mutable_record_entry_written()->set_entry_id(id);
        e.mutable_record_entry_written()->set_data_category(kCategories[rng_() % 4]);
        break;
      case 4:
        e.mutable_record_amended()->set_entry_id(id);
        e.mutable_record_amended()->set_amends_entry_id(Pick(s.entries));
        e.mutable_record_amended()->set_reason("fix");
        break;
      case 5:
      case 6: {
        auto* b = e.mutable_consent_granted();
        b->set_consent_id(id);
        b->set_client_id(client);
        b->set_grantor_kind(v1::GRANTOR_KIND_CLIENT);
        b->set_grantor_id(client);
        b->add_recipients(kRecipients[rng_() % 3]);
        b->add_purposes(kPurposes[rng_() % 2]);
        b->add_data_categories(kCategories[rng_() % 4]);
        b->add_data_categories(kCategories[rng_() % 4]);
        b->set_signed_form_sha256(std::string(32, 'h'));
        b->set_patient_name(client);
        b->mutable_signed_at()->set_seconds(kT0);
        SetInformedByClient(b);
        if (rng_() % 2) b->mutable_expires_at()->set_seconds(kT0 + (g.day + 20) * kDay);
        break;
      }
      case 7:
        e.mutable_consent_revoked()->set_consent_id(Pick(s.consents));
        e.mutable_consent_revoked()->set_revoked_by(client);
        break;
      case 8:
      case 9:
      case 10: {
        auto* b = e.mutable_disclosure_made();
        b->set_disclosure_id(id);
        b->set_client_id(client);
        b->mutable_recipient()->set_recipient_id(kRecipients[rng_() % 3]);
        b->mutable_recipient()->set_name("Recipient");
        b->set_purpose(kPurposes[rng_() % 2]);
        b->add_data_categories(kCategories[rng_() % 4]);
        b->set_description("d");
        if (rng_() % 3) {
          b->set_legal_basis(v1::LEGAL_BASIS_CONSENT);
          b->set_consent_id(Pick(s.consents));
        } else {
          b->set_legal_basis(v1::LEGAL_BASIS_TREATMENT);
        }
        b->set_client_informed(rng_() % 2);
        break;
      }
      case 11:
        e.mutable_client_informed()->set_disclosure_id(Pick(s.pending_notices));
        break;
      case 12:
        e.mutable_access_requested()->set_request_id(id);
        e.mutable_access_requested()->set_client_id(client);
        break;
      case 13: {
        const std::string r = Pick(s.access_requests);
        switch (rng_() % 3) {
          case 0:
            e.mutable_access_fulfilled()->set_request_id(r);
            break;
          case 1:
            e.mutable_access_denied()->set_request_id(r);
            e.mutable_access_denied()->set_reason("r");
            e.mutable_access_denied()->set_ground(v1::ACCESS_DENIAL_GROUND_PSYCHOTHERAPY_NOTES);
            break;
          default:
            e.mutable_access_extended()->set_request_id(r);
            e.mutable_access_extended()->set_reason("r");
        }
        break;
      }
      case 14:
        switch (rng_() % 3) {
          case 0:
            e.mutable_conflict_declared()->set_conflict_id(id);
            e.mutable_conflict_declared()->set_declared_by("m-1");
            break;
          case 1:
            e.mutable_conflict_resolved()->set_conflict_id(Pick(s.conflicts));
            e.mutable_conflict_resolved()->set_resolution("r");
            e.mutable_conflict_resolved()->set_resolved_by("sup-1");
            break;
          default:
            e.mutable_client_informed_of_conflict()->set_conflict_id(Pick(s.conflicts));
            e.mutable_client_informed_of_conflict()->set_method("letter");
        }
        break;
      case 15:
        e.mutable_case_transferred()->set_to_manager_id(absl::StrCat("m-", rng_() % 9));
        if (rng_() % 2) e.mutable_case_transferred()->set_to_program("elsewhere");
        break;
      case 16:
        if (s.status == CaseStatus::kInterrupted) {
          e.mutable_services_resumed();
        } else {
          e.mutable_services_interrupted()->set_reason("r");
        }
        break;
      case 17:
        if (s.status == CaseStatus::kClosed) {
          if (rng_() % 8 == 0) {
            e.mutable_records_disposed()->set_method("crypto-shred");
            e.mutable_records_disposed()->set_authority("retention");
          } else {
            e.mutable_case_reopened()->set_reason("r");
          }
        } else {
          e.mutable_case_closed()->set_reason("r");
        }
        break;
      default:
        e.mutable_record_accessed()->set_accessor_id("m-1");
        e.mutable_record_accessed()->set_purpose("review");
        e.mutable_record_accessed()->add_seqs(rng_() % 100);
    }
    return e;
  }

  const int cases_;
  std::mt19937_64 rng_;
  std::map<int, CaseGen> gen_;
  int refused_ = 0;
};

std::map<std::string, std::string> EncodeAll(const std::map<std::string, CaseState>& states) {
  std::map<std::string, std::string> out;
  for (const auto& [id, s] : states) out[id] = EncodeCaseState(s);
  return out;
}

TEST(CaseStateTest, RebuildEqualsIncrementalAcrossEncodeDecode) {
  HistoryGenerator gen(500);
  const std::vector<Generated> history = gen.Generate(10000);
  ASSERT_EQ(history.size(), 10000u);

  std::map<std::string, CaseState> one_pass;
  for (const Generated& g : history) {
    ASSERT_EQ(ApplyEvent(g.event, g.seq, g.commit_time, &one_pass[g.event.stream_id()]),
              absl::OkStatus());
  }

  std::map<std::string, CaseState> first;
  for (size_t i = 0; i < history.size() / 2; ++i) {
    const Generated& g = history[i];
    ASSERT_EQ(ApplyEvent(g.event, g.seq, g.commit_time, &first[g.event.stream_id()]),
              absl::OkStatus());
  }
  std::map<std::string, CaseState> second;
  for (const auto& [id, bytes] : EncodeAll(first)) {
    auto decoded = DecodeCaseState(bytes);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    second[id] = *std::move(decoded);
  }
  for (size_t i = history.size() / 2; i < history.size(); ++i) {
    const Generated& g = history[i];
    ASSERT_EQ(ApplyEvent(g.event, g.seq, g.commit_time, &second[g.event.stream_id()]),
              absl::OkStatus());
  }

  const auto a = EncodeAll(one_pass);
  const auto b = EncodeAll(second);
  ASSERT_EQ(a.size(), 500u);
  EXPECT_TRUE(a == b);

  // The history exercised the interesting parts of the state.
  size_t consents = 0, revoked = 0, pending = 0, amendments = 0, closed = 0, disposed = 0,
         extended = 0;
  for (const auto& [id, s] : one_pass) {
    consents += s.consents.size();
    for (const auto& [cid, c] : s.consents) revoked += c.revoked;
    pending += s.pending_notices.size();
    for (const auto& [eid, en] : s.entries) amendments += !en.amends_entry_id.empty();
    for (const auto& [rid, r] : s.access_requests) extended += r.extended;
    closed += s.status == CaseStatus::kClosed;
    disposed += s.status == CaseStatus::kDisposed;
  }
  EXPECT_GT(consents, 0u);
  EXPECT_GT(revoked, 0u);
  EXPECT_GT(pending, 0u);
  EXPECT_GT(amendments, 0u);
  EXPECT_GT(closed, 0u);
  EXPECT_GT(extended, 0u);
  EXPECT_GT(gen.refused(), 0);
}

}  // namespace
}  // namespace caseledger
