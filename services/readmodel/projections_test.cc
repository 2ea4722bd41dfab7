// The case-state and accounting read models on a generated history of 10,000
// policy-checked events across 500 cases: the incremental path and a rebuild
// from the log give byte-identical state.
#include "services/readmodel/projections.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "ledger/crypto.h"
#include "ledger/key_store.h"
#include "services/append/case_gate.h"
#include "services/readmodel/case_story.h"
#include "services/append/event_codec.h"
#include "tests/test_util.h"

namespace caseledger {
namespace {

constexpr int kCases = 500;
constexpr int kEventsPerCase = testing::kStoryLength;
constexpr int64_t kStart = testing::kStoryStart;
using testing::Story;

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
  // Dated with the case's latest event, so that only the consent refuses it.
  *refused.mutable_occurred_at() = Story(3, kEventsPerCase - 1).occurred_at();
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
  // One header row per case (item rows carry a 0x00 after the case id).
  EXPECT_EQ(std::count_if(incremental_cases.begin(), incremental_cases.end(),
                          [](const auto& kv) { return kv.first.find('\0') == std::string::npos; }),
            kCases);

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
                                        /*include_excluded=*/false, /*summarize=*/false,
                                        /*as_of=*/absl::InfiniteFuture());
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

// The read models a catch-up from the store writes (one large chunk of new
// cases whose rows are all written at once, stored as an ingested table
// file; or several chunks through the memtable) are byte for byte those a
// projector following the commit feed in small chunks wrote, over a mix of
// stories, big cases, disposals and an erasure (PROJECTIONS.md).
TEST(ProjectionsTest, CatchUpInAnyChunkingEqualsFollowingTheFeed) {
  std::string dir = testing::NewTempDir("projections-chunking");
  auto master = AeadKey::FromBytes(std::string(32, '\x0b'));
  ASSERT_TRUE(master.ok());
  LedgerOptions options;
  options.max_batch_events = 1000;
  auto t = testing::OpenEncryptedTestLedger(dir + "/ledger", *master,
                                            {"records_disposed", "subject_erased"}, options);
  ASSERT_TRUE(t.ok()) << t.status();
  auto open = [&](const std::string& name, size_t catch_up, size_t ingest_rows) {
    std::vector<std::unique_ptr<Projection>> projections;
    projections.push_back(std::make_unique<CaseStateProjection>());
    projections.push_back(std::make_unique<AccountingProjection>());
    ProjectorOptions o{dir + "/" + name, 64, "records_disposed"};
    o.catch_up_chunk_records = catch_up;
    o.ingest_rows = ingest_rows;
    auto p = Projector::Open(o, t->ledger.get(), std::move(projections));
    EXPECT_TRUE(p.ok()) << p.status();
    return *std::move(p);
  };
  auto following = open("following", 64, size_t{1} << 30);
  following->Start();
  constexpr int kMixCases = 60;
  CaseGate gate(t->ledger.get());
  auto entry = [](int c, int i) {  // one more entry to case c, dated with its v=4 event
    v1::Event e = Story(c, 4);
    e.set_event_id(absl::StrCat("more-", c, "-", i));
    e.mutable_record_entry_written()->set_entry_id(absl::StrCat("more-entry-", c, "-", i));
    return e;
  };
  struct Chunking {
    const char* name;
    size_t catch_up, ingest_rows;
  };
  const std::vector<Chunking> chunkings = {
      {"one-ingested", 1 << 20, 1},
      {"default", ProjectorOptions().catch_up_chunk_records, ProjectorOptions().ingest_rows},
      {"chunks-ingested", 97, 1},
      {"chunks-memtable", 97, size_t{1} << 30}};
  for (int v = 0; v < kEventsPerCase; ++v) {
    std::vector<GatedEvent> batch;
    for (int c = 0; c < kMixCases; ++c) batch.push_back(Gated(Story(c, v)));
    if (v == 4) {  // two big cases
      for (int i = 0; i < 300; ++i) batch.push_back(Gated(entry(i % 2 == 0 ? 1 : 2, i)));
    }
    ASSERT_TRUE(gate.Append(std::move(batch)).ok()) << "version " << v;
    if (v == 8) {
      // Projected up to the story's first disclosure and the projectors
      // closed: the rest is applied to cases read back from their stored
      // rows (v=9 tells the client, which deletes the pending notice's row).
      for (const Chunking& c : chunkings) {
        ASSERT_EQ(open(c.name, c.catch_up, c.ingest_rows)->CatchUp(), absl::OkStatus());
      }
    }
  }
  // Two closed cases disposed (their keys destroyed, then re-derived by the
  // following projector), and one client erased.
  for (int c : {4, 5}) {
    v1::Event d = Story(c, kEventsPerCase - 1);
    d.set_event_id(absl::StrCat("dispose-", c));
    d.mutable_records_disposed()->set_method("crypto-shredding");
    d.mutable_records_disposed()->set_authority("retention-7y");
    std::vector<GatedEvent> one;
    one.push_back(Gated(d));
    ASSERT_TRUE(gate.Append(std::move(one)).ok()) << "dispose " << c;
  }
  ASSERT_EQ(following->WaitFor((*t)->Size(), absl::Seconds(60)), absl::OkStatus());
  following->Stop();
  ASSERT_EQ(following->reprojections(), 2u);  // the disposals
  CaseStateProjection case_view;
  AccountingProjection accounting_view;
  auto same = [&](const Projector& p) {
    // Not EXPECT_EQ: a difference would print thousands of rows.
    EXPECT_TRUE(Dump(p, case_view) == Dump(*following, case_view));
    EXPECT_TRUE(Dump(p, accounting_view) == Dump(*following, accounting_view));
  };
  ASSERT_GT(Dump(*following, case_view).size(), 1000u);
  ASSERT_FALSE(Dump(*following, accounting_view).empty());
  std::vector<std::unique_ptr<Projector>> caught_up;
  for (const Chunking& c : chunkings) {
    SCOPED_TRACE(c.name);
    caught_up.push_back(open(c.name, c.catch_up, c.ingest_rows));
    ASSERT_EQ(caught_up.back()->CatchUp(), absl::OkStatus());
    EXPECT_EQ(caught_up.back()->position(), (*t)->Size());
    same(*caught_up.back());
  }
  // An erasure re-derives the client's case in each, over ingested rows.
  ASSERT_TRUE(t->keys->EraseSubject("client-7").ok());
  ASSERT_EQ(following->ReprojectSubject("client-7"), absl::OkStatus());
  auto erased = CaseStateProjection::Load(*following, case_view, "case-7");
  ASSERT_TRUE(erased.ok());
  EXPECT_EQ(erased->program, "");  // its records no longer open
  for (size_t i = 0; i < chunkings.size(); ++i) {
    SCOPED_TRACE(chunkings[i].name);
    ASSERT_EQ(caught_up[i]->ReprojectSubject("client-7"), absl::OkStatus());
    same(*caught_up[i]);
    // Reopened (the ingested files are the store's own) and rebuilt: the same.
    caught_up[i].reset();
    auto p = open(chunkings[i].name, chunkings[i].catch_up, chunkings[i].ingest_rows);
    same(*p);
    ASSERT_EQ(p->Rebuild(), absl::OkStatus());
    same(*p);
    EXPECT_FALSE(std::filesystem::exists(dir + "/" + chunkings[i].name + "/chunk.sst.tmp"));
  }
}

// Counts the records it applies, to show what an erasure re-derives.
class CountingCases : public CaseStateProjection {
 public:
  absl::Status Apply(const v1::Record& record, ProjectionTxn& txn) override {
    ++applied;
    return CaseStateProjection::Apply(record, txn);
  }
  int applied = 0;
};

// Erasing a client re-derives that client's case and accounting only, and
// leaves exactly what a rebuild from seq 0 leaves.
TEST(ProjectionsTest, AnErasureRederivesOnlyTheSubjectsCasesAndEqualsARebuild) {
  std::string dir = testing::NewTempDir("projections-erasure");
  auto master = AeadKey::FromBytes(std::string(32, '\x09'));
  ASSERT_TRUE(master.ok());
  LedgerOptions options;
  options.max_batch_events = 1000;
  auto t = testing::OpenEncryptedTestLedger(dir + "/ledger", *master,
                                            {"records_disposed", "subject_erased"}, options);
  ASSERT_TRUE(t.ok()) << t.status();
  constexpr int kFewCases = 40;
  CaseGate gate(t->ledger.get());
  for (int v = 0; v < kEventsPerCase; ++v) {
    std::vector<GatedEvent> batch;
    for (int c = 0; c < kFewCases; ++c) batch.push_back(Gated(Story(c, v)));
    ASSERT_TRUE(gate.Append(std::move(batch)).ok()) << "version " << v;
  }
  auto open = [&](const std::string& name, CountingCases** counting) {
    auto cases = std::make_unique<CountingCases>();
    if (counting != nullptr) *counting = cases.get();
    std::vector<std::unique_ptr<Projection>> projections;
    projections.push_back(std::move(cases));
    projections.push_back(std::make_unique<AccountingProjection>());
    auto p = Projector::Open({dir + "/" + name, 64}, t->ledger.get(), std::move(projections));
    EXPECT_TRUE(p.ok()) << p.status();
    return *std::move(p);
  };
  CountingCases* counting = nullptr;
  auto projector = open("projections", &counting);
  ASSERT_EQ(projector->CatchUp(), absl::OkStatus());
  CaseStateProjection case_view;
  AccountingProjection accounting_view;
  auto before = CaseStateProjection::Load(*projector, case_view, "case-4");
  ASSERT_TRUE(before.ok());
  ASSERT_EQ(before->program.empty(), false);

  ASSERT_EQ(projector->MarkStale(), absl::OkStatus());
  ASSERT_TRUE(t->keys->EraseSubject("client-4").ok());
  counting->applied = 0;
  ASSERT_EQ(projector->ReprojectSubject("client-4"), absl::OkStatus());
  // Only case-4's records were applied again, not the ledger's.
  EXPECT_EQ(counting->applied, kEventsPerCase);
  EXPECT_FALSE(std::filesystem::exists(dir + "/projections.reproject"));
  auto after = CaseStateProjection::Load(*projector, case_view, "case-4");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->program, "");  // its records no longer open
  EXPECT_EQ(after->version, before->version);
  auto acct = AccountingProjection::Load(*projector, accounting_view, "client-4");
  ASSERT_TRUE(acct.ok());
  EXPECT_TRUE(acct->entries("client-4").empty());

  // Byte for byte what a rebuild from seq 0 gives.
  auto rebuilt = open("rebuilt", nullptr);
  ASSERT_EQ(rebuilt->CatchUp(), absl::OkStatus());
  EXPECT_EQ(Dump(*projector, case_view), Dump(*rebuilt, case_view));
  EXPECT_EQ(Dump(*projector, accounting_view), Dump(*rebuilt, accounting_view));
}

// Legal holds and suspensions through the read models: EraseSubject asks
// CheckErasure of every case (services/policy/RULES.md W12), and a suspension goes
// to its client's accounting (W6).
TEST(ProjectionsTest, HoldsAndSuspensionsReachTheReadModels) {
  std::string dir = testing::NewTempDir("projections-holds");
  auto t = testing::OpenTestLedger(dir + "/ledger", LedgerOptions());
  ASSERT_TRUE(t.ok()) << t.status();
  auto cases = std::make_unique<CaseStateProjection>();
  auto accounting = std::make_unique<AccountingProjection>();
  const CaseStateProjection* cases_view = cases.get();
  const AccountingProjection* accounting_view = accounting.get();
  std::vector<std::unique_ptr<Projection>> projections;
  projections.push_back(std::move(cases));
  projections.push_back(std::move(accounting));
  auto projector =
      Projector::Open({dir + "/projections", 512}, t->ledger.get(), std::move(projections));
  ASSERT_TRUE(projector.ok()) << projector.status();
  (*projector)->Start();
  CaseGate gate(t->ledger.get());
  int n = 0;
  auto append = [&](const std::string& subject, auto set_body) {
    v1::Event e;
    e.set_event_id(absl::StrCat("h-", n));
    e.set_stream_id("case-h");
    e.add_subject_ids(subject);
    e.set_producer("intake");
    e.mutable_occurred_at()->set_seconds(kStart + n++);
    set_body(&e);
    std::vector<GatedEvent> one;
    one.push_back(Gated(e));
    auto r = gate.Append(std::move(one));
    ASSERT_TRUE(r.ok()) << r.status();
  };
  append("client-h", [](v1::Event* e) {
    e->mutable_case_opened()->set_program("p");
    e->mutable_case_opened()->set_record_class(v1::RECORD_CLASS_GENERAL);
  });
  append("client-h", [](v1::Event* e) {
    auto* b = e->mutable_legal_hold_placed();
    b->set_hold_id("hold-1");
    b->set_scope(v1::LEGAL_HOLD_SCOPE_CLIENT);
    b->set_client_id("client-h");
    b->set_ground(v1::LEGAL_HOLD_GROUND_LITIGATION);
    b->set_authority("notice 17");
  });
  append("client-h", [](v1::Event* e) {
    auto* b = e->mutable_accounting_suspended();
    b->set_suspension_id("s-1");
    b->set_client_id("client-h");
    b->set_agency_name("State Police");
    b->set_form(v1::SUSPENSION_FORM_WRITTEN);
    b->set_statement("letter 7");
    b->set_agency_kind(v1::SUSPENDING_AGENCY_LAW_ENFORCEMENT);
    b->mutable_ends_at()->set_seconds(kStart + 90 * 86400);
  });
  ASSERT_EQ((*projector)->WaitFor(t->ledger->Size(), absl::Seconds(30)), absl::OkStatus());
  absl::Status held = CaseStateProjection::CheckErasure(**projector, *cases_view, "client-h");
  EXPECT_EQ(held.code(), absl::StatusCode::kFailedPrecondition) << held;
  EXPECT_TRUE(absl::StrContains(held.message(), "is under legal hold \"hold-1\"")) << held;
  EXPECT_EQ(CaseStateProjection::CheckErasure(**projector, *cases_view, "someone-else"),
            absl::OkStatus());
  auto acct = AccountingProjection::Load(**projector, *accounting_view, "client-h");
  ASSERT_TRUE(acct.ok()) << acct.status();
  EXPECT_EQ(acct->suspensions("client-h").size(), 1u);
  (*projector)->Stop();
}


// A ProjectionTxn over a map, counting what one chunk writes.
class MapTxn : public ProjectionTxn {
 public:
  explicit MapTxn(std::map<std::string, std::string>* store) : store_(store) {}
  absl::StatusOr<std::string> Get(const std::string& key) override {
    if (auto w = writes_.find(key); w != writes_.end()) {
      if (!w->second.has_value()) return absl::NotFoundError(key);
      return *w->second;
    }
    auto it = store_->find(key);
    if (it == store_->end()) return absl::NotFoundError(key);
    return it->second;
  }
  void Put(const std::string& key, std::string value) override {
    bytes_written += key.size() + value.size();
    writes_[key] = std::move(value);
  }
  void Delete(const std::string& key) override {
    bytes_written += key.size();
    writes_[key] = std::nullopt;
  }
  absl::Status ScanStored(
      const std::string& prefix,
      const std::function<bool(absl::string_view, absl::string_view)>& fn) override {
    for (auto it = store_->lower_bound(prefix);
         it != store_->end() && absl::StartsWith(it->first, prefix); ++it) {
      if (!fn(it->first, it->second)) break;
    }
    return absl::OkStatus();
  }
  // Stores the chunk's writes.
  void Commit() {
    for (auto& [k, v] : writes_) {
      if (v.has_value()) {
        (*store_)[k] = *v;
      } else {
        store_->erase(k);
      }
    }
    writes_.clear();
  }
  size_t writes() const { return writes_.size(); }
  size_t bytes_written = 0;

 private:
  std::map<std::string, std::string>* store_;
  std::map<std::string, std::optional<std::string>> writes_;
};

v1::Record AsRecord(v1::Event e, uint64_t seq) {
  v1::Record r;
  r.set_seq(seq);
  r.set_stream_id(e.stream_id());
  *r.mutable_commit_time() = e.occurred_at();
  *r.mutable_event() = std::move(e);
  return r;
}

// One event to a case with 10,000 entries writes a few small rows (the
// header and the new entry), not the whole state; a projection that starts
// from the stored rows (nothing in memory) does the same and folds the same.
TEST(ProjectionsTest, OneEventToABigCaseWritesConstantRows) {
  std::map<std::string, std::string> store;
  std::vector<v1::Record> records;
  for (int v = 0; v < 4; ++v) records.push_back(AsRecord(Story(0, v), records.size()));
  auto entry = [](int i) {
    v1::Event e = Story(0, 4);
    e.set_event_id(absl::StrCat("big-", i));
    e.mutable_record_entry_written()->set_entry_id(absl::StrCat("big-entry-", i));
    return e;
  };
  for (int i = 0; i < 10000; ++i) records.push_back(AsRecord(entry(i), records.size()));
  {
    CaseStateProjection cases;
    MapTxn txn(&store);
    for (const v1::Record& r : records) ASSERT_EQ(cases.Apply(r, txn), absl::OkStatus());
    ASSERT_EQ(cases.Flush(txn), absl::OkStatus());
    txn.Commit();
  }
  ASSERT_GT(store.size(), 10000u);
  CaseState whole;
  for (const v1::Record& r : records) {
    ASSERT_EQ(ApplyEvent(r.event(), r.seq(), absl::FromUnixSeconds(r.commit_time().seconds()),
                         &whole),
              absl::OkStatus());
  }
  v1::Record one = AsRecord(entry(10000), records.size());
  ASSERT_EQ(ApplyEvent(one.event(), one.seq(), absl::FromUnixSeconds(one.commit_time().seconds()),
                       &whole),
            absl::OkStatus());
  CaseStateProjection fresh;  // loads the case from its rows
  MapTxn txn(&store);
  ASSERT_EQ(fresh.Apply(one, txn), absl::OkStatus());
  ASSERT_EQ(fresh.Flush(txn), absl::OkStatus());
  EXPECT_LE(txn.writes(), 4u);
  EXPECT_LT(txn.bytes_written, 2000u);  // the whole state is ~600 KB
  txn.Commit();
  // The stored rows decode to the state folded in one piece.
  CaseRowsDecoder decoder;
  for (auto it = store.lower_bound("case-0"); it != store.end() && absl::StartsWith(it->first, "case-0"); ++it) {
    ASSERT_EQ(decoder.Add(absl::string_view(it->first).substr(6), it->second), absl::OkStatus());
  }
  auto decoded = decoder.Finish();
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(EncodeCaseState(*decoded), EncodeCaseState(whole));
}

// Adding one disclosure to a client with 2,000 entries writes that entry's
// row and the disclosure's index row, not the client's whole accounting; so
// does telling the client of an old disclosure (one row). A projection that
// reads the client back from its rows folds the same, and the rows decode to
// the accounting folded in one piece.
TEST(ProjectionsTest, OneDisclosureToABigClientWritesConstantRows) {
  std::map<std::string, std::string> store;
  std::vector<v1::Record> records;
  auto disclosure = [](int i) {
    v1::Event e = Story(0, 8);
    e.set_event_id(absl::StrCat("disclosure-", i));
    e.mutable_disclosure_made()->set_disclosure_id(absl::StrCat("d-big-", i));
    return e;
  };
  v1::Event suspended = Story(0, 8);
  suspended.set_event_id("suspended");
  {
    auto* s = suspended.mutable_accounting_suspended();
    s->set_suspension_id("s-1");
    s->set_client_id("client-0");
    s->set_agency_id("clinic-1");
    s->mutable_ends_at()->set_seconds(kStart + 900 * 86400);
  }
  records.push_back(AsRecord(suspended, records.size()));
  for (int i = 0; i < 2000; ++i) records.push_back(AsRecord(disclosure(i), records.size()));
  {
    AccountingProjection accounting;
    MapTxn txn(&store);
    for (const v1::Record& r : records) ASSERT_EQ(accounting.Apply(r, txn), absl::OkStatus());
    ASSERT_EQ(accounting.Flush(txn), absl::OkStatus());
    txn.Commit();
  }
  ASSERT_GT(store.size(), 4000u);  // 2,000 entry rows and 2,000 index rows
  v1::Record one = AsRecord(disclosure(2000), records.size());
  records.push_back(one);
  v1::Event told = Story(0, 9);
  told.set_event_id("told");
  told.mutable_client_informed()->set_disclosure_id("d-big-7");
  v1::Record informed = AsRecord(told, records.size());
  records.push_back(informed);
  {
    AccountingProjection fresh;  // reads the client from its rows
    MapTxn txn(&store);
    ASSERT_EQ(fresh.Apply(one, txn), absl::OkStatus());
    ASSERT_EQ(fresh.Flush(txn), absl::OkStatus());
    EXPECT_EQ(txn.writes(), 2u);            // the entry and the disclosure index
    EXPECT_LT(txn.bytes_written, 1000u);    // the whole accounting is ~400 KB
    txn.Commit();
    MapTxn second(&store);
    ASSERT_EQ(fresh.Apply(informed, second), absl::OkStatus());
    ASSERT_EQ(fresh.Flush(second), absl::OkStatus());
    EXPECT_EQ(second.writes(), 1u);  // the told entry's row
    EXPECT_LT(second.bytes_written, 1000u);
    second.Commit();
  }
  DisclosureAccounting whole;
  for (const v1::Record& r : records) ASSERT_EQ(whole.Apply(r.event(), r.seq()), absl::OkStatus());
  DisclosureAccounting decoded;
  const std::string prefix = std::string("client/client-0") + '\0';
  for (auto it = store.lower_bound(prefix); it != store.end() && absl::StartsWith(it->first, prefix);
       ++it) {
    ASSERT_EQ(decoded.AddRow("client-0", absl::string_view(it->first).substr(prefix.size()),
                             it->second),
              absl::OkStatus());
  }
  EXPECT_EQ(decoded.Encode(), whole.Encode());
  ASSERT_EQ(decoded.entries("client-0").size(), 2001u);
  EXPECT_TRUE(decoded.entries("client-0")[7].client_informed);
  EXPECT_EQ(decoded.suspensions("client-0").size(), 1u);
  // While the suspension lasts and after it.
  for (int day : {30, 1000}) {
    const absl::Time now = absl::FromUnixSeconds(kStart + day * 86400);
    for (bool summarize : {false, true}) {
      EXPECT_EQ(AccountingReportToJson(decoded.Query("client-0", absl::InfinitePast(),
                                                     absl::InfiniteFuture(), true, summarize, now)),
                AccountingReportToJson(whole.Query("client-0", absl::InfinitePast(),
                                                   absl::InfiniteFuture(), true, summarize, now)));
    }
  }
  EXPECT_EQ(decoded.Query("client-0", absl::InfinitePast(), absl::InfiniteFuture(), true, false,
                          absl::FromUnixSeconds(kStart + 1000 * 86400))
                .entries.size(),
            2001u);
}

// A projection store written in the old layout (one value per case, no
// layout key) is rebuilt when opened, into one row per item.
TEST(ProjectionsTest, AStoreInTheOldLayoutIsRebuiltAtOpen) {
  std::string dir = testing::NewTempDir("projections-layout");
  auto t = testing::OpenTestLedger(dir + "/ledger");
  ASSERT_TRUE(t.ok()) << t.status();
  CaseGate gate(t->ledger.get());
  for (int v = 0; v < 8; ++v) {
    std::vector<GatedEvent> one;
    one.push_back(Gated(Story(0, v)));
    ASSERT_TRUE(gate.Append(std::move(one)).ok());
  }
  auto open = [&](const CaseStateProjection** view) {
    auto cases = std::make_unique<CaseStateProjection>();
    *view = cases.get();
    std::vector<std::unique_ptr<Projection>> projections;
    projections.push_back(std::move(cases));
    projections.push_back(std::make_unique<AccountingProjection>());
    return Projector::Open({dir + "/projections"}, t->ledger.get(), std::move(projections));
  };
  const CaseStateProjection* view = nullptr;
  CaseState state;
  {
    auto p = open(&view);
    ASSERT_TRUE(p.ok()) << p.status();
    ASSERT_EQ((*p)->CatchUp(), absl::OkStatus());
    auto loaded = CaseStateProjection::Load(**p, *view, "case-0");
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    state = *loaded;
  }
  {
    // Rewrite it as the old layout stored it.
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(), dir + "/projections", &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    rocksdb::WriteBatch wb;
    wb.Delete("\x01layout");
    wb.DeleteRange("case/", "case0");
    wb.Put("case/case-0", EncodeCaseState(state));
    ASSERT_TRUE(db->Write(rocksdb::WriteOptions(), &wb).ok());
  }
  auto p = open(&view);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ((*p)->reprojections(), 1u);
  int rows = 0;
  ASSERT_EQ((*p)->Scan(*view, "case-0",
                       [&](absl::string_view, absl::string_view) {
                         ++rows;
                         return true;
                       }),
            absl::OkStatus());
  EXPECT_GT(rows, 5);  // the header and an item row each
  auto loaded = CaseStateProjection::Load(**p, *view, "case-0");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(EncodeCaseState(*loaded), EncodeCaseState(state));
  p->reset();
  t->ledger.reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace caseledger
