#include "services/readmodel/accounting.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace caseledger {
namespace {

constexpr int64_t kT0 = 1767225600;  // 2026-01-01T00:00:00Z
constexpr int64_t kDay = 86400;

absl::Time Day(int d) { return absl::FromUnixSeconds(kT0 + d * kDay); }
// When the accounting is given, unless a test says otherwise.
const absl::Time kNow = Day(400);

struct D {
  std::string id;
  std::string client = "cl-1";
  std::string recipient_id;
  std::string recipient_name;
  std::string purpose;
  v1::LegalBasis basis;
  int day;
  std::string stream = "case-1";
};

v1::Event Disclosure(const D& d) {
  v1::Event e;
  e.set_stream_id(d.stream);
  e.add_subject_ids(d.client);
  e.mutable_occurred_at()->set_seconds(kT0 + d.day * kDay);
  auto* b = e.mutable_disclosure_made();
  b->set_disclosure_id(d.id);
  b->set_client_id(d.client);
  b->mutable_recipient()->set_recipient_id(d.recipient_id);
  b->mutable_recipient()->set_name(d.recipient_name);
  b->mutable_recipient()->set_address(absl::StrCat(d.recipient_name, ", 1 Main St"));
  b->set_purpose(d.purpose);
  b->add_data_categories("housing");
  b->set_description(absl::StrCat("housing record ", d.id));
  b->set_legal_basis(d.basis);
  b->set_disclosed_by("m-1");
  if (d.basis == v1::LEGAL_BASIS_CONSENT) b->set_consent_id("c-1");
  if (d.basis == v1::LEGAL_BASIS_REQUIRED_BY_LAW) b->set_legal_citation("Cal. WIC 15630");
  if (d.basis == v1::LEGAL_BASIS_IMMINENT_HARM) {
    b->set_justification("stated plan");
    b->set_person_at_risk("neighbor");
  }
  return e;
}

v1::Event Informed(const std::string& stream, const std::string& id, int day) {
  v1::Event e;
  e.set_stream_id(stream);
  e.mutable_occurred_at()->set_seconds(kT0 + day * kDay);
  e.mutable_client_informed()->set_disclosure_id(id);
  e.mutable_client_informed()->set_method("letter");
  return e;
}

// Client cl-1: three mandated reports to APS (days 10, 20, 30), one court
// order (day 15), one treatment disclosure (day 12), one consent (day 13), one
// to the client (day 14), an old report (day -3000, outside six years).
// Client cl-2: one report.
DisclosureAccounting Sample() {
  DisclosureAccounting a;
  uint64_t seq = 100;
  const std::vector<D> ds = {
      {"d-1", "cl-1", "aps", "County APS", "mandated report", v1::LEGAL_BASIS_REQUIRED_BY_LAW, 10},
      {"d-2", "cl-1", "dr", "Dr. Ada", "care", v1::LEGAL_BASIS_TREATMENT, 12},
      {"d-3", "cl-1", "r-1", "Landlord", "housing", v1::LEGAL_BASIS_CONSENT, 13},
      {"d-4", "cl-1", "cl-1", "Client", "access", v1::LEGAL_BASIS_TO_CLIENT, 14},
      {"d-5", "cl-1", "court", "County Court", "order", v1::LEGAL_BASIS_REQUIRED_BY_LAW, 15},
      {"d-6", "cl-1", "aps", "County APS", "mandated report", v1::LEGAL_BASIS_REQUIRED_BY_LAW, 30},
      {"d-7", "cl-1", "aps", "County APS", "mandated report", v1::LEGAL_BASIS_REQUIRED_BY_LAW, 20},
      {"d-0", "cl-1", "aps", "County APS", "mandated report", v1::LEGAL_BASIS_REQUIRED_BY_LAW,
       -3000},
      {"d-1", "cl-2", "aps", "County APS", "mandated report", v1::LEGAL_BASIS_IMMINENT_HARM, 11,
       "case-2"},
  };
  for (const D& d : ds) EXPECT_EQ(a.Apply(Disclosure(d), seq++), absl::OkStatus());
  return a;
}

std::vector<std::string> Ids(const std::vector<AccountingEntry>& entries) {
  std::vector<std::string> out;
  for (const auto& e : entries) out.push_back(e.disclosure_id);
  return out;
}

TEST(AccountingTest, EntryCarriesWhatTheAccountingNeeds) {
  DisclosureAccounting a = Sample();
  const auto& all = a.entries("cl-1");
  ASSERT_EQ(all.size(), 8u);
  const AccountingEntry& e = all[0];
  EXPECT_EQ(e.case_id, "case-1");
  EXPECT_EQ(e.disclosure_id, "d-1");
  EXPECT_EQ(e.seq, 100u);
  EXPECT_EQ(e.disclosed_at, Day(10));
  EXPECT_EQ(e.recipient_name, "County APS");
  EXPECT_EQ(e.recipient_address, "County APS, 1 Main St");
  EXPECT_EQ(e.description, "housing record d-1");
  EXPECT_EQ(e.purpose, "mandated report");
  EXPECT_EQ(e.legal_basis, v1::LEGAL_BASIS_REQUIRED_BY_LAW);
  EXPECT_EQ(e.basis_detail, "Cal. WIC 15630");
  EXPECT_FALSE(e.excluded);
  EXPECT_EQ(all[2].basis_detail, "c-1");
  EXPECT_EQ(a.entries("cl-2").size(), 1u);
  EXPECT_EQ(a.entries("cl-2")[0].basis_detail, "");  // no protected details kept
  EXPECT_TRUE(a.entries("nobody").empty());
  EXPECT_EQ(a.client_ids(), (std::vector<std::string>{"cl-1", "cl-2"}));
}

TEST(AccountingTest, ExclusionsFollow164528) {
  struct Row {
    v1::LegalBasis basis;
    bool excluded;
    std::string reason;
  };
  const std::vector<Row> rows = {
      {v1::LEGAL_BASIS_TREATMENT, true, "45 CFR 164.528(a)(1)(i): treatment"},
      {v1::LEGAL_BASIS_PAYMENT, true, "45 CFR 164.528(a)(1)(i): payment"},
      {v1::LEGAL_BASIS_OPERATIONS, true, "45 CFR 164.528(a)(1)(i): health care operations"},
      {v1::LEGAL_BASIS_TO_CLIENT, true, "45 CFR 164.528(a)(1)(ii): to the individual"},
      {v1::LEGAL_BASIS_CONSENT, true, "45 CFR 164.528(a)(1)(iv): pursuant to an authorization"},
      {v1::LEGAL_BASIS_REQUIRED_BY_LAW, false, ""},
      {v1::LEGAL_BASIS_IMMINENT_HARM, false, ""},
      {v1::LEGAL_BASIS_PART2_COURT_ORDER, false, ""},
      {v1::LEGAL_BASIS_PART2_MEDICAL_EMERGENCY, false, ""},
  };
  for (const Row& r : rows) {
    std::string reason;
    EXPECT_EQ(ExcludedFromAccounting(r.basis, &reason), r.excluded) << r.basis;
    EXPECT_EQ(reason, r.reason) << r.basis;
    AccountingEntry e =
        AccountingEntryFromEvent(Disclosure({"d", "cl-1", "x", "X", "p", r.basis, 1}), 1);
    EXPECT_EQ(e.excluded, r.excluded);
    EXPECT_EQ(e.exclusion_reason, r.reason);
  }
}

TEST(AccountingTest, WindowAndExclusionFilter) {
  DisclosureAccounting a = Sample();
  const absl::Time far = Day(100);
  // The default window is the six years before now.
  const absl::Time start = DefaultAccountingWindowStart(Day(59));
  EXPECT_EQ(start, absl::FromCivil(absl::CivilSecond(2020, 3, 1), absl::UTCTimeZone()));

  AccountingReport r = a.Query("cl-1", start, far, false, false, kNow);
  EXPECT_EQ(Ids(r.entries), (std::vector<std::string>{"d-1", "d-5", "d-7", "d-6"}));
  EXPECT_TRUE(r.summaries.empty());

  r = a.Query("cl-1", start, far, true, false, kNow);
  EXPECT_EQ(Ids(r.entries),
            (std::vector<std::string>{"d-1", "d-2", "d-3", "d-4", "d-5", "d-7", "d-6"}));
  EXPECT_TRUE(r.entries[1].excluded);
  EXPECT_EQ(r.entries[1].exclusion_reason, "45 CFR 164.528(a)(1)(i): treatment");

  // [start, end): a disclosure on the end instant is outside; on the start, inside.
  r = a.Query("cl-1", Day(15), Day(30), true, false, kNow);
  EXPECT_EQ(Ids(r.entries), (std::vector<std::string>{"d-5", "d-7"}));

  r = a.Query("cl-1", absl::InfinitePast(), far, false, false, kNow);
  EXPECT_EQ(Ids(r.entries), (std::vector<std::string>{"d-0", "d-1", "d-5", "d-7", "d-6"}));

  EXPECT_TRUE(a.Query("nobody", start, far, true, false, kNow).entries.empty());
}

TEST(AccountingTest, SummarizesRepeatedDisclosuresToOneRecipientForOnePurpose) {
  DisclosureAccounting a = Sample();
  AccountingReport r = a.Query("cl-1", Day(0), Day(100), false, true, kNow);
  EXPECT_TRUE(r.entries.empty());
  ASSERT_EQ(r.summaries.size(), 2u);
  EXPECT_EQ(r.summaries[0].first.disclosure_id, "d-1");
  EXPECT_EQ(r.summaries[0].first.recipient_name, "County APS");
  EXPECT_EQ(r.summaries[0].first.description, "housing record d-1");
  EXPECT_EQ(r.summaries[0].count, 3u);
  EXPECT_EQ(r.summaries[0].last_disclosed_at, Day(30));
  EXPECT_EQ(r.summaries[1].first.disclosure_id, "d-5");
  EXPECT_EQ(r.summaries[1].count, 1u);
  EXPECT_EQ(r.summaries[1].last_disclosed_at, Day(15));

  // The window bounds the summary too.
  r = a.Query("cl-1", Day(11), Day(25), false, true, kNow);
  ASSERT_EQ(r.summaries.size(), 2u);
  EXPECT_EQ(r.summaries[0].first.disclosure_id, "d-5");
  EXPECT_EQ(r.summaries[1].first.disclosure_id, "d-7");
  EXPECT_EQ(r.summaries[1].count, 1u);

  // Excluded ones group separately from reportable ones.
  r = a.Query("cl-1", Day(0), Day(100), true, true, kNow);
  EXPECT_EQ(r.summaries.size(), 5u);
}

TEST(AccountingTest, ClientInformedMarksTheDisclosureOfThatCase) {
  DisclosureAccounting a = Sample();
  ASSERT_EQ(a.Apply(Informed("case-2", "d-1", 12), 200), absl::OkStatus());
  EXPECT_FALSE(a.entries("cl-1")[0].client_informed);  // d-1 of case-1: not this one
  const AccountingEntry& e = a.entries("cl-2")[0];
  EXPECT_TRUE(e.client_informed);
  EXPECT_EQ(e.client_informed_at, Day(12));
  EXPECT_EQ(e.client_informed_method, "letter");
  // Unknown disclosures and other events are ignored.
  EXPECT_EQ(a.Apply(Informed("case-1", "d-404", 12), 201), absl::OkStatus());
  v1::Event other;
  other.mutable_case_closed()->set_reason("r");
  EXPECT_EQ(a.Apply(other, 202), absl::OkStatus());
  v1::Event no_time = Disclosure({"d-9", "cl-1", "x", "X", "p", v1::LEGAL_BASIS_TREATMENT, 1});
  no_time.clear_occurred_at();
  EXPECT_EQ(a.Apply(no_time, 203),
            absl::InvalidArgumentError("event.occurred_at: must be set (event at seq 203)"));
}

TEST(AccountingTest, JsonIsReadableAndEscaped) {
  DisclosureAccounting a;
  v1::Event e = Disclosure({"d-1", "cl-1", "aps", "County \"APS\"\n\\ Unit\x01", "mandated report",
                            v1::LEGAL_BASIS_REQUIRED_BY_LAW, 10});
  e.mutable_disclosure_made()->mutable_recipient()->set_address("Büro 1");
  ASSERT_EQ(a.Apply(e, 7), absl::OkStatus());
  ASSERT_EQ(a.Apply(Informed("case-1", "d-1", 11), 8), absl::OkStatus());
  EXPECT_EQ(AccountingReportToJson(a.Query("cl-1", Day(0), Day(100), false, false, kNow)),
            R"({
  "client_id": "cl-1",
  "window": {"from": "2026-01-01T00:00:00Z", "to": "2026-04-11T00:00:00Z"},
  "includes_excluded": false,
  "disclosures": [
    {
      "date": "2026-01-11T00:00:00Z",
      "disclosure_id": "d-1",
      "case_id": "case-1",
      "recipient": {"name": "County \"APS\"\n\\ Unit\u0001", "address": "Büro 1"},
      "description": "housing record d-1",
      "data_categories": ["housing"],
      "purpose": "mandated report",
      "basis": "required_by_law",
      "basis_detail": "Cal. WIC 15630",
      "excluded_from_accounting": false,
      "client_informed": true,
      "client_informed_at": "2026-01-12T00:00:00Z"
    }
  ]
}
)");
  EXPECT_EQ(
      AccountingReportToJson(a.Query("cl-1", absl::InfinitePast(), Day(100), true, true, kNow)),
      R"({
  "client_id": "cl-1",
  "window": {"from": null, "to": "2026-04-11T00:00:00Z"},
  "includes_excluded": true,
  "summaries": [
    {
      "count": 1,
      "last_date": "2026-01-11T00:00:00Z",
      "first": {
        "date": "2026-01-11T00:00:00Z",
        "disclosure_id": "d-1",
        "case_id": "case-1",
        "recipient": {"name": "County \"APS\"\n\\ Unit\u0001", "address": "Büro 1"},
        "description": "housing record d-1",
        "data_categories": ["housing"],
        "purpose": "mandated report",
        "basis": "required_by_law",
        "basis_detail": "Cal. WIC 15630",
        "excluded_from_accounting": false,
        "client_informed": true,
        "client_informed_at": "2026-01-12T00:00:00Z"
      }
    }
  ]
}
)");
  EXPECT_EQ(AccountingReportToJson(a.Query("cl-9", Day(0), Day(1), false, false, kNow)),
            R"({
  "client_id": "cl-9",
  "window": {"from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"},
  "includes_excluded": false,
  "disclosures": []
}
)");
}

TEST(AccountingTest, EncodingIsDeterministicAndSurvivesARestartMidway) {
  // 4,000 disclosures and notices for 200 clients, folded in one pass or in
  // two halves with encode/decode between.
  std::mt19937_64 rng(7);
  std::vector<v1::Event> history;
  for (int i = 0; i < 4000; ++i) {
    const int client = static_cast<int>(rng() % 200);
    const std::string stream = absl::StrCat("case-", client % 150);
    if (i > 10 && rng() % 4 == 0) {
      history.push_back(Informed(stream, absl::StrCat("d-", rng() % i), i / 10));
      continue;
    }
    history.push_back(Disclosure({absl::StrCat("d-", i), absl::StrCat("cl-", client),
                                  absl::StrCat("r-", rng() % 3), "R", "p",
                                  static_cast<v1::LegalBasis>(1 + rng() % 6), i / 10, stream}));
  }
  DisclosureAccounting one;
  for (size_t i = 0; i < history.size(); ++i) ASSERT_TRUE(one.Apply(history[i], i).ok());

  DisclosureAccounting half;
  for (size_t i = 0; i < history.size() / 2; ++i) ASSERT_TRUE(half.Apply(history[i], i).ok());
  auto restarted = DisclosureAccounting::Decode(half.Encode());
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  for (size_t i = history.size() / 2; i < history.size(); ++i) {
    ASSERT_TRUE(restarted->Apply(history[i], i).ok());
  }
  EXPECT_EQ(restarted->Encode(), one.Encode());
  size_t informed = 0;
  for (const auto& id : one.client_ids()) {
    for (const auto& e : one.entries(id)) informed += e.client_informed;
  }
  EXPECT_GT(informed, 0u);
}

v1::Event Suspension(const std::string& stream, const std::string& agency_id,
                     const std::string& agency_name, int day, int end_day) {
  v1::Event e;
  e.set_stream_id(stream);
  e.mutable_occurred_at()->set_seconds(kT0 + day * kDay);
  auto* b = e.mutable_accounting_suspended();
  b->set_suspension_id(absl::StrCat("s-", day));
  b->set_client_id("cl-1");
  b->set_agency_id(agency_id);
  b->set_agency_name(agency_name);
  b->set_form(v1::SUSPENSION_FORM_ORAL);
  b->set_statement("would impede an investigation");
  b->set_official("Det. Ruiz");
  b->set_agency_kind(v1::SUSPENDING_AGENCY_LAW_ENFORCEMENT);
  b->mutable_ends_at()->set_seconds(kT0 + end_day * kDay);
  return e;
}

// W6, 164.528(a)(2): the disclosures of the case to the agency are left out
// only while the suspension lasts; other recipients, other cases, and
// disclosures made after it ends are listed throughout.
TEST(AccountingTest, SuspendedEntriesAreLeftOutOnlyWhileTheSuspensionLasts) {
  DisclosureAccounting a;
  uint64_t seq = 1;
  for (const D& d : std::vector<D>{
           {"d-1", "cl-1", "sp-1", "State Police", "investigation", v1::LEGAL_BASIS_REQUIRED_BY_LAW,
            5},
           {"d-2", "cl-1", "", "State Police", "investigation", v1::LEGAL_BASIS_REQUIRED_BY_LAW, 8},
           {"d-3", "cl-1", "court-1", "County Court", "hearing", v1::LEGAL_BASIS_REQUIRED_BY_LAW,
            9},
           {"d-4", "cl-1", "sp-1", "State Police", "investigation", v1::LEGAL_BASIS_REQUIRED_BY_LAW,
            9, "case-2"},
           {"d-5", "cl-1", "sp-1", "State Police", "investigation", v1::LEGAL_BASIS_REQUIRED_BY_LAW,
            45},
       }) {
    ASSERT_EQ(a.Apply(Disclosure(d), seq++), absl::OkStatus());
  }
  ASSERT_EQ(a.Apply(Suspension("case-1", "sp-1", "State Police", 10, 40), seq++), absl::OkStatus());
  auto listed = [&](absl::Time as_of) {
    return Ids(
        a.Query("cl-1", absl::InfinitePast(), absl::InfiniteFuture(), false, false, as_of).entries);
  };
  const std::vector<std::string> all = {"d-1", "d-2", "d-3", "d-4", "d-5"};
  EXPECT_EQ(listed(Day(9)), all);  // before it was asked for
  // While it lasts: to the agency by id (d-1) or by name (d-2), in this case.
  EXPECT_EQ(listed(Day(10)), (std::vector<std::string>{"d-3", "d-4", "d-5"}));
  EXPECT_EQ(listed(Day(40) - absl::Seconds(1)), (std::vector<std::string>{"d-3", "d-4", "d-5"}));
  EXPECT_EQ(listed(Day(40)), all);  // ended: listed again
  // Kept across a restart.
  absl::StatusOr<DisclosureAccounting> decoded = DisclosureAccounting::Decode(a.Encode());
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->Encode(), a.Encode());
  EXPECT_EQ(
      Ids(decoded
              ->Query("cl-1", absl::InfinitePast(), absl::InfiniteFuture(), false, false, Day(20))
              .entries),
      (std::vector<std::string>{"d-3", "d-4", "d-5"}));
  // A suspension alone (no disclosure yet) survives too.
  DisclosureAccounting only;
  ASSERT_EQ(only.Apply(Suspension("case-1", "sp-1", "State Police", 10, 40), 1), absl::OkStatus());
  decoded = DisclosureAccounting::Decode(only.Encode());
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->suspensions("cl-1").size(), 1u);
  EXPECT_TRUE(decoded->client_ids().empty());
}

// 42 CFR 2.24 (RULES.md W14.5): the list holds only the consent's
// disclosures of the request's case to recipients the consent does not name,
// by its intermediary, from 3 years before receipt up to when it is given.
TEST(AccountingTest, Part2ListHoldsOnlyTheDesignationsDisclosuresInItsWindow) {
  DisclosureAccounting a;
  uint64_t seq = 1;
  auto add = [&](const std::string& id, const std::string& recipient, const std::string& by,
                 const std::string& consent, int day, const std::string& stream = "case-1") {
    v1::Event e = Disclosure(
        {id, "cl-1", recipient, recipient + " Clinic", "care", v1::LEGAL_BASIS_CONSENT, day, stream});
    e.mutable_disclosure_made()->set_disclosed_by(by);
    e.mutable_disclosure_made()->set_consent_id(consent);
    ASSERT_EQ(a.Apply(e, seq++), absl::OkStatus());
  };
  add("in", "clinic-7", "hie-1", "c-g", 1200);
  add("in-2", "clinic-8", "hie-1", "c-g", 1290);
  add("to-the-intermediary", "hie-1", "m-1", "c-g", 1201);
  add("by-someone-else", "clinic-7", "m-1", "c-g", 1202);
  add("another-consent", "clinic-7", "hie-1", "c-1", 1203);
  add("another-case", "clinic-7", "hie-1", "c-g", 1204, "case-2");
  add("too-old", "clinic-7", "hie-1", "c-g", 100);
  add("after-it-was-given", "clinic-7", "hie-1", "c-g", 1320);
  ASSERT_EQ(a.Apply(Disclosure({"not-consent", "cl-1", "clinic-7", "Clinic", "care",
                                v1::LEGAL_BASIS_PART2_MEDICAL_EMERGENCY, 1205}),
                    seq++),
            absl::OkStatus());
  Consent c;
  c.consent_id = "c-g";
  c.client_id = "cl-1";
  c.recipients = {"hie-1"};
  c.general_designation = "my treating providers";
  c.intermediary = "hie-1";
  Part2ListRequest r;
  r.request_id = "pl-1";
  r.client_id = "cl-1";
  r.consent_id = "c-g";
  r.received_at = Day(1300);  // 2029-07-24; 3 years back: 2026-07-24 = day 204
  r.due_at = Day(1330);
  Part2DisclosureList l = QueryPart2List(a.entries("cl-1"), "case-1", c, r, Day(1310));
  EXPECT_EQ(Ids(l.entries), (std::vector<std::string>{"in", "in-2"}));
  EXPECT_EQ(l.window_start, Day(204));
  EXPECT_EQ(l.window_end, Day(1310));
  // Each disclosure with its recipient, date and what was disclosed (2.24(b)(2)).
  const std::string json = Part2DisclosureListToJson(l);
  EXPECT_NE(json.find("\"rule\": \"42 CFR 2.24\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"general_designation\": \"my treating providers\""), std::string::npos);
  EXPECT_NE(json.find("\"recipient\": {\"name\": \"clinic-8 Clinic\""), std::string::npos);
  EXPECT_NE(json.find("\"description\": \"housing record in\""), std::string::npos);
  EXPECT_NE(json.find("\"window_start\": \"2026-07-24T00:00:00Z\""), std::string::npos) << json;
  // A disclosure dated exactly at the start of the window is in it.
  add("at-the-start", "clinic-9", "hie-1", "c-g", 204);
  l = QueryPart2List(a.entries("cl-1"), "case-1", c, r, Day(1310));
  EXPECT_EQ(Ids(l.entries), (std::vector<std::string>{"at-the-start", "in", "in-2"}));
  // A consent without a general designation lists nothing.
  c.general_designation.clear();
  EXPECT_TRUE(QueryPart2List(a.entries("cl-1"), "case-1", c, r, Day(1310)).entries.empty());
}

TEST(AccountingTest, DecodeRefusesBadBytes) {
  EXPECT_EQ(DisclosureAccounting::Decode("\xff").status(),
            absl::InvalidArgumentError(
                "disclosure accounting: 1 bytes do not parse as an AccountingRecord"));
  EXPECT_EQ(DisclosureAccounting::Decode("").status(),
            absl::InvalidArgumentError("disclosure accounting: format_version got 0, want 1"));
}

}  // namespace
}  // namespace caseledger

namespace caseledger {
namespace {

// The stored rows of a client's accounting (PROJECTIONS.md "Accounting
// rows"), pinned: one entry row keyed by its seq, one suspension row keyed by
// its index; read back with AddRow they give the same accounting.
TEST(AccountingTest, RowsGoldenVector) {
  DisclosureAccounting a;
  ASSERT_EQ(a.Apply(Disclosure({"d-1", "cl-1", "aps", "County APS", "mandated report",
                                v1::LEGAL_BASIS_REQUIRED_BY_LAW, 10}),
                    0x2a),
            absl::OkStatus());
  v1::Event s;
  s.set_stream_id("case-1");
  s.mutable_occurred_at()->set_seconds(kT0 + 20 * kDay);
  s.mutable_accounting_suspended()->set_suspension_id("s-1");
  s.mutable_accounting_suspended()->set_client_id("cl-1");
  s.mutable_accounting_suspended()->set_agency_id("aps");
  ASSERT_EQ(a.Apply(s, 0x2b), absl::OkStatus());
  std::vector<std::pair<std::string, std::string>> rows;
  a.ForEachRow("cl-1", [&](const std::string& k, const std::string& v) {
    rows.emplace_back(absl::BytesToHexString(k), absl::BytesToHexString(v));
  });
  ASSERT_EQ(rows.size(), 2u);
  // 0x00 "entry" 0x00 "000000000000002a"
  EXPECT_EQ(rows[0].first, "00656e7472790030303030303030303030303030303261");
  EXPECT_EQ(rows[0].second, "0a06636173652d311203642d311a04636c2d31202a288080a8849782920332036170733a0a436f756e7479"
            "204150534215436f756e7479204150532c2031204d61696e2053744a12686f7573696e67207265636f7264"
            "20642d31520f6d616e6461746564207265706f72745a07686f7573696e6760026a0e43616c2e2057494320"
            "31353633308801808080808080808080019a01036d2d31");
  // 0x00 "suspension" 0x00 "0000000000000000"
  EXPECT_EQ(rows[1].first, "0073757370656e73696f6e0030303030303030303030303030303030");
  EXPECT_EQ(rows[1].second, "0a03732d311204636c2d311a03617073308080cfd7a99b920338ffffffffffffffff7f4206636173652d31");
  DisclosureAccounting back;
  for (const auto& [k, v] : rows) {
    ASSERT_EQ(back.AddRow("cl-1", absl::HexStringToBytes(k), absl::HexStringToBytes(v)),
              absl::OkStatus());
  }
  EXPECT_EQ(back.Encode(), a.Encode());
  EXPECT_EQ(back.AddRow("cl-1", absl::HexStringToBytes(rows[1].first),
                        absl::HexStringToBytes(rows[1].second))
                .code(),
            absl::StatusCode::kInvalidArgument);  // index 0 again
  EXPECT_EQ(back.AddRow("cl-1", "entry", "").code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace caseledger
