// The case-state and accounting read models on a generated history of 10,000
// policy-checked events across 500 cases: the incremental path and a rebuild
// from the log give byte-identical state.
#include "services/api/projections.h"

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "services/api/case_gate.h"
#include "services/api/event_codec.h"
#include "tests/test_util.h"

namespace caseledger {
namespace {

constexpr int kCases = 500;
constexpr int kEventsPerCase = 20;
constexpr int64_t kStart = 1767225600;  // 2026-01-01

v1::Event Base(int c, int v) {
  v1::Event e;
  e.set_event_id(absl::StrCat("case-", c, "-v", v));
  e.set_stream_id(absl::StrCat("case-", c));
  e.add_subject_ids(absl::StrCat("client-", c));
  e.set_producer("generator");
  e.mutable_occurred_at()->set_seconds(kStart + c * 10 + v * 86400);
  return e;
}

// The v-th event of case c: intake, consent, entries, disclosures (one under
// consent, one required by law, one to treatment that the accounting
// excludes), a client notice, an access request and its fulfilment, closure.
v1::Event Story(int c, int v) {
  v1::Event e = Base(c, v);
  std::string client = absl::StrCat("client-", c);
  switch (v) {
    case 0: {
      auto* o = e.mutable_case_opened();
      o->set_program(c % 2 ? "housing" : "recovery");
      o->set_jurisdiction("US-CA");
      o->set_record_class(v1::RECORD_CLASS_GENERAL);
      break;
    }
    case 1: {
      auto* p = e.mutable_participant_added();
      p->set_participant_id(client);
      p->set_role(v1::PARTICIPANT_ROLE_CLIENT);
      break;
    }
    case 2: {
      auto* m = e.mutable_case_manager_assigned();
      m->set_manager_id(absl::StrCat("cm-", c % 7));
      m->set_reason("intake");
      break;
    }
    case 3: {
      auto* g = e.mutable_consent_granted();
      g->set_consent_id(absl::StrCat("consent-", c));
      g->set_client_id(client);
      g->set_grantor_kind(v1::GRANTOR_KIND_CLIENT);
      g->set_grantor_id(client);
      g->add_recipients("clinic-1");
      g->add_purposes("care-coordination");
      g->add_data_categories("housing");
      g->mutable_starts_at()->set_seconds(kStart);
      g->mutable_expires_at()->set_seconds(kStart + 400 * 86400);
      g->set_revocable(true);
      break;
    }
    case 8: {
      auto* d = e.mutable_disclosure_made();
      d->set_disclosure_id(absl::StrCat("d-", c, "-1"));
      d->set_client_id(client);
      d->mutable_recipient()->set_recipient_id("clinic-1");
      d->mutable_recipient()->set_name("Eastside Clinic");
      d->mutable_recipient()->set_address("1 Main St, Oakland CA");
      d->set_purpose("care-coordination");
      d->add_data_categories("housing");
      d->set_description("housing status summary");
      d->set_legal_basis(v1::LEGAL_BASIS_CONSENT);
      d->set_consent_id(absl::StrCat("consent-", c));
      d->set_disclosed_by(absl::StrCat("cm-", c % 7));
      d->set_minimum_necessary("status only, no notes");
      break;
    }
    case 9: {
      auto* i = e.mutable_client_informed();
      i->set_disclosure_id(absl::StrCat("d-", c, "-1"));
      i->set_method("letter");
      break;
    }
    case 12: {
      auto* d = e.mutable_disclosure_made();
      d->set_disclosure_id(absl::StrCat("d-", c, "-2"));
      d->set_client_id(client);
      d->mutable_recipient()->set_recipient_id("court-7");
      d->mutable_recipient()->set_name("County Court");
      d->mutable_recipient()->set_address("5 Court Sq");
      d->set_purpose("subpoena");
      d->add_data_categories("housing");
      d->set_description("attendance records");
      d->set_legal_basis(v1::LEGAL_BASIS_REQUIRED_BY_LAW);
      d->set_legal_citation("Cal. Evid. Code 1560");
      d->set_disclosed_by(absl::StrCat("cm-", c % 7));
      d->set_minimum_necessary("dates only");
      break;
    }
    case 13: {
      auto* d = e.mutable_disclosure_made();
      d->set_disclosure_id(absl::StrCat("d-", c, "-3"));
      d->set_client_id(client);
      d->mutable_recipient()->set_recipient_id("clinic-2");
      d->mutable_recipient()->set_name("Westside Clinic");
      d->mutable_recipient()->set_address("9 Side St");
      d->set_purpose("treatment");
      d->add_data_categories("housing");
      d->set_description("referral letter");
      d->set_legal_basis(v1::LEGAL_BASIS_TREATMENT);
      d->set_disclosed_by(absl::StrCat("cm-", c % 7));
      break;
    }
    case 16: {
      auto* a = e.mutable_access_requested();
      a->set_request_id(absl::StrCat("r-", c));
      a->set_client_id(client);
      a->set_requested_by(client);
      a->set_scope("all records");
      break;
    }
    case 17:
      if (c % 3 == 0) {  // a third of the requests stay open
        auto* x = e.mutable_access_extended();
        x->set_request_id(absl::StrCat("r-", c));
        x->set_reason("records in storage");
      } else {
        auto* f = e.mutable_access_fulfilled();
        f->set_request_id(absl::StrCat("r-", c));
        f->set_bundle_sha256("00");
      }
      break;
    case 19:
      if (c % 3 != 0) {
        auto* x = e.mutable_case_closed();
        x->set_reason("goals met");
        x->set_referral("community program");
        break;
      }
      [[fallthrough]];
    default: {
      auto* w = e.mutable_record_entry_written();
      w->set_entry_id(absl::StrCat("entry-", c, "-", v));
      w->set_data_category("housing");
      w->set_text(absl::StrCat("visit note ", v));
      w->add_third_party_mentions("landlord: J. Smith");
      w->set_author_id(absl::StrCat("cm-", c % 7));
      break;
    }
  }
  return e;
}

GatedEvent Gated(v1::Event e) {
  auto ledger_event = ToLedgerEvent(e);
  EXPECT_TRUE(ledger_event.ok()) << ledger_event.status();
  return GatedEvent{std::move(e), {*std::move(ledger_event), std::nullopt}};
}

std::map<std::string, std::string> Dump(const Projector& p, const Projection& projection) {
  std::map<std::string, std::string> out;
  EXPECT_EQ(p.Scan(projection, "",
                   [&](absl::string_view k, absl::string_view v) {
                     out[std::string(k)] = std::string(v);
                     return true;
                   }),
            absl::OkStatus());
  return out;
}

TEST(ProjectionsTest, RebuildEqualsIncrementalOnAGeneratedHistory) {
  std::string dir = testing::NewTempDir("projections");
  LedgerOptions options;
  options.max_batch_events = 1000;
  auto t = testing::OpenTestLedger(dir + "/ledger", options);
  ASSERT_TRUE(t.ok()) << t.status();
  auto cases = std::make_unique<CaseStateProjection>();
  auto accounting = std::make_unique<AccountingProjection>();
  const CaseStateProjection* cases_view = cases.get();
  const AccountingProjection* accounting_view = accounting.get();
  std::vector<std::unique_ptr<Projection>> projections;
  projections.push_back(std::move(cases));
  projections.push_back(std::move(accounting));
  auto projector = Projector::Open({dir + "/projections", 512}, t->ledger.get(),
                                   std::move(projections));
  ASSERT_TRUE(projector.ok()) << projector.status();
  (*projector)->Start();

  // Interleave the cases: each batch carries version v of 100 cases.
  CaseGate gate(t->ledger.get());
  for (int v = 0; v < kEventsPerCase; ++v) {
    for (int first = 0; first < kCases; first += 100) {
      std::vector<GatedEvent> batch;
      for (int c = first; c < first + 100; ++c) batch.push_back(Gated(Story(c, v)));
      auto r = gate.Append(std::move(batch));
      ASSERT_TRUE(r.ok()) << "version " << v << ": " << r.status();
    }
  }
  // A disclosure beyond the consent's scope is refused and stores nothing.
  // (Case 3 is still open.)
  v1::Event refused = Story(3, 12);
  refused.set_event_id("refused");
  refused.mutable_disclosure_made()->set_disclosure_id("d-3-x");
  refused.mutable_disclosure_made()->set_legal_basis(v1::LEGAL_BASIS_CONSENT);
  refused.mutable_disclosure_made()->set_consent_id("consent-3");
  std::vector<GatedEvent> one;
  one.push_back(Gated(refused));
  auto r = gate.Append(std::move(one));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
  EXPECT_EQ(std::string(r.status().message()),
            "consent \"consent-3\" does not cover recipient \"court-7\" (\"County Court\")");

  const uint64_t total = kCases * kEventsPerCase;
  ASSERT_EQ((*t)->Size(), total);
  ASSERT_EQ((*projector)->WaitFor(total, absl::Seconds(60)), absl::OkStatus());
  (*projector)->Stop();
  auto incremental_cases = Dump(**projector, *cases_view);
  auto incremental_accounting = Dump(**projector, *accounting_view);
  EXPECT_EQ(incremental_cases.size(), static_cast<size_t>(kCases));

  // Spot checks on one closed case and one with an extended open request.
  auto closed = CaseStateProjection::Load(**projector, *cases_view, "case-4");
  ASSERT_TRUE(closed.ok()) << closed.status();
  EXPECT_EQ(closed->status, CaseStatus::kClosed);
  EXPECT_EQ(closed->version, static_cast<uint64_t>(kEventsPerCase));
  EXPECT_EQ(closed->manager_id, "cm-4");
  EXPECT_TRUE(closed->OpenAccessRequests().empty());
  auto open = CaseStateProjection::Load(**projector, *cases_view, "case-3");
  ASSERT_TRUE(open.ok());
  EXPECT_EQ(open->status, CaseStatus::kOpen);
  ASSERT_EQ(open->OpenAccessRequests().size(), 1u);
  EXPECT_TRUE(open->OpenAccessRequests()[0]->extended);
  // Requested on day 16, due 30 days later, extended by 30 more.
  EXPECT_EQ(open->OpenAccessRequests()[0]->due_at,
            absl::FromUnixSeconds(kStart + 3 * 10 + 16 * 86400) + absl::Hours(24 * 60));

  auto acct = AccountingProjection::Load(**projector, *accounting_view, "client-4");
  ASSERT_TRUE(acct.ok()) << acct.status();
  ASSERT_EQ(acct->entries("client-4").size(), 3u);
  AccountingReport report = acct->Query("client-4", absl::InfinitePast(), absl::InfiniteFuture(),
                                        /*include_excluded=*/false, /*summarize=*/false);
  // Consent (an authorization) and treatment are excluded from the HIPAA
  // accounting; the court disclosure is listed.
  ASSERT_EQ(report.entries.size(), 1u);
  EXPECT_EQ(report.entries[0].recipient_name, "County Court");
  EXPECT_TRUE(acct->entries("client-4")[0].client_informed);

  // Rebuild from the log: identical bytes, key by key.
  ASSERT_EQ((*projector)->Rebuild(), absl::OkStatus());
  EXPECT_EQ((*projector)->position(), total);
  EXPECT_EQ(Dump(**projector, *cases_view), incremental_cases);
  EXPECT_EQ(Dump(**projector, *accounting_view), incremental_accounting);
}

}  // namespace
}  // namespace caseledger
