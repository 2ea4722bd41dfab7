// The append gate over the case-state read model (ProjectedCaseStates): one
// fold of each case's records, which the gate reads instead of the log, and
// a batch refused part-way leaving the gate's cached states as they were.
#include <gtest/gtest.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "services/append/case_gate.h"
#include "services/append/event_codec.h"
#include "services/readmodel/case_story.h"
#include "services/readmodel/projections.h"
#include "tests/test_util.h"

namespace caseledger {
namespace {

using testing::Story;

GatedEvent Gated(v1::Event e) {
  auto ledger_event = ToLedgerEvent(e);
  EXPECT_TRUE(ledger_event.ok()) << ledger_event.status();
  return GatedEvent{std::move(e), {*std::move(ledger_event), std::nullopt}};
}

absl::StatusOr<std::vector<AppendResult>> Append(CaseGate& gate, std::vector<v1::Event> events) {
  std::vector<GatedEvent> batch;
  for (v1::Event& e : events) batch.push_back(Gated(std::move(e)));
  return gate.Append(std::move(batch));
}

struct ReadModels {
  const CaseStateProjection* cases = nullptr;
  std::unique_ptr<Projector> projector;
};

ReadModels OpenReadModels(const std::string& path, Ledger* ledger) {
  ReadModels m;
  auto cases = std::make_unique<CaseStateProjection>();
  m.cases = cases.get();
  std::vector<std::unique_ptr<Projection>> projections;
  projections.push_back(std::move(cases));
  projections.push_back(std::make_unique<AccountingProjection>());
  auto p = Projector::Open({path}, ledger, std::move(projections));
  EXPECT_TRUE(p.ok()) << p.status();
  if (p.ok()) m.projector = *std::move(p);
  return m;
}

std::string StateBytes(CaseGate& gate, const std::string& case_id) {
  std::string bytes;
  EXPECT_EQ(gate.Inspect(case_id, [&](const CaseState& s) { bytes = EncodeCaseState(s); }),
            absl::OkStatus());
  return bytes;
}

// The gate checks against the read model and the commit feed's records the
// projector has queued: with the case's records gone from the store, it
// still checks (the log fold, as the gate did before, cannot).
TEST(ProjectedCaseStatesTest, GateReadsNoRecordFromTheStore) {
  const std::string dir = testing::NewTempDir("projected-states");
  {
    auto t = testing::OpenTestLedger(dir + "/ledger");
    ASSERT_TRUE(t.ok()) << t.status();
    ReadModels m = OpenReadModels(dir + "/projections", t->ledger.get());
    CaseGate gate(t->ledger.get());
    std::vector<v1::Event> first;
    for (int v = 0; v < 6; ++v) first.push_back(Story(0, v));
    ASSERT_TRUE(Append(gate, std::move(first)).ok());
    ASSERT_TRUE(Append(gate, {Story(1, 0)}).ok());  // the log's last record
    ASSERT_EQ(m.projector->CatchUp(), absl::OkStatus());
    ASSERT_EQ(m.projector->position(), 7u);
  }
  // Case 0's records (seqs 0-5) leave the store; the read model is current.
  for (uint64_t seq = 0; seq < 6; ++seq) {
    ASSERT_EQ(testing::RawDelete(dir + "/ledger", "records", testing::SeqKey(seq)),
              absl::OkStatus());
    ASSERT_EQ(testing::RawDelete(dir + "/ledger", "payloads", testing::SeqKey(seq)),
              absl::OkStatus());
  }
  auto t = testing::OpenTestLedger(dir + "/ledger");
  ASSERT_TRUE(t.ok()) << t.status();
  ReadModels m = OpenReadModels(dir + "/projections", t->ledger.get());
  ASSERT_EQ(m.projector->position(), 7u);

  // The fold from the log (a gate without a read model) fails on the first
  // missing record.
  CaseGate from_log(t->ledger.get());
  EXPECT_FALSE(Append(from_log, {Story(0, 6)}).ok());

  ProjectedCaseStates states(m.projector.get(), m.cases);
  CaseGate::Options options;
  options.committed = &states;
  {
    CaseGate gate(t->ledger.get(), options);
    auto r = Append(gate, {Story(0, 6)});
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ((*r)[0].version, 6u);
  }
  // A new gate (nothing cached) while the projector has not applied seq 7:
  // the stored state (6 events) plus the queued record.
  ASSERT_EQ(m.projector->position(), 7u);
  CaseGate gate(t->ledger.get(), options);
  EXPECT_EQ(gate.Inspect("case-0", [](const CaseState& s) {
    EXPECT_EQ(s.version, 7u);
    EXPECT_EQ(s.last_seq, 7u);
  }), absl::OkStatus());
  auto r = Append(gate, {Story(0, 7)});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)[0].version, 7u);
  m.projector.reset();
  t->ledger.reset();
  std::filesystem::remove_all(dir);
}

// A ledger, its read models following it on their thread, and a gate that
// checks against them, as the server wires them.
struct GateOverReadModels {
  std::string dir;
  testing::TestLedger t;
  ReadModels m;
  std::unique_ptr<ProjectedCaseStates> states;
  CaseGate::Options options;
  std::unique_ptr<CaseGate> gate;

  explicit GateOverReadModels(const std::string& name) : dir(testing::NewTempDir(name)) {
    auto opened = testing::OpenTestLedger(dir + "/ledger");
    EXPECT_TRUE(opened.ok()) << opened.status();
    if (!opened.ok()) return;
    t = *std::move(opened);
    m = OpenReadModels(dir + "/projections", t.ledger.get());
    m.projector->Start();
    states = std::make_unique<ProjectedCaseStates>(m.projector.get(), m.cases);
    options.committed = states.get();
    gate = std::make_unique<CaseGate>(t.ledger.get(), options);
  }
  ~GateOverReadModels() {
    if (m.projector != nullptr) m.projector->Stop();
    gate.reset();
    m.projector.reset();
    t.ledger.reset();
    std::filesystem::remove_all(dir);
  }
};

// A disclosure of case 2 under consent-2, which does not cover its
// recipient: the policy refuses it.
v1::Event RefusedDisclosure() {
  v1::Event refused = Story(2, 12);
  refused.set_event_id("refused");
  *refused.mutable_occurred_at() = Story(2, 9).occurred_at();
  refused.mutable_disclosure_made()->set_legal_basis(v1::LEGAL_BASIS_CONSENT);
  refused.mutable_disclosure_made()->set_consent_id("consent-2");
  return refused;
}

// A batch refused at its third event leaves every case it touched exactly
// as it was (put back from the copy the gate saved of a small case; a case
// with one event in the call was not folded yet), and the events before the
// refusal can be appended afterwards.
TEST(ProjectedCaseStatesTest, BatchRefusedInTheMiddleLeavesCachedStatesAsBefore) {
  GateOverReadModels f("projected-states-batch");
  ASSERT_NE(f.gate, nullptr);
  CaseGate& gate = *f.gate;
  Ledger* ledger = f.t.ledger.get();
  Projector& projector = *f.m.projector;
  std::vector<v1::Event> intro;
  for (int v = 0; v < 8; ++v) intro.push_back(Story(2, v));
  ASSERT_TRUE(Append(gate, std::move(intro)).ok());
  const std::string before = StateBytes(gate, "case-2");
  const std::string other_before = StateBytes(gate, "case-3");

  auto r = Append(gate, {Story(2, 8), Story(3, 0), Story(2, 9), RefusedDisclosure(), Story(2, 10)});
  ASSERT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
  EXPECT_EQ(std::string(r.status().message()),
            "requests[3]: consent \"consent-2\" does not cover recipient \"court-7\" "
            "(\"County Court\")");
  EXPECT_EQ(StateBytes(gate, "case-2"), before);
  EXPECT_EQ(StateBytes(gate, "case-3"), other_before);
  EXPECT_EQ(ledger->Size(), 8u);  // nothing stored

  r = Append(gate, {Story(2, 8), Story(3, 0), Story(2, 9)});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)[0].version, 8u);
  EXPECT_EQ((*r)[2].version, 9u);
  // The gate's state is the read model's once it catches up.
  ASSERT_EQ(projector.WaitFor(ledger->Size(), absl::Seconds(30)), absl::OkStatus());
  auto stored = CaseStateProjection::Load(projector, *f.m.cases, "case-2");
  ASSERT_TRUE(stored.ok()) << stored.status();
  CaseGate fresh(ledger, f.options);
  EXPECT_EQ(StateBytes(fresh, "case-2"), EncodeCaseState(*stored));
}

// The same for a case too big to be saved by a copy (more items than the
// gate copies, services/append/case_gate.cc kCopyItems): its events are
// folded in place with an undo log, and a refusal later in the batch puts
// back exactly what they changed.
TEST(ProjectedCaseStatesTest, BatchRefusedInTheMiddleLeavesABigCaseAsBefore) {
  GateOverReadModels f("projected-states-big");
  ASSERT_NE(f.gate, nullptr);
  CaseGate& gate = *f.gate;
  Ledger* ledger = f.t.ledger.get();
  Projector& projector = *f.m.projector;
  std::vector<v1::Event> intro;
  for (int v = 0; v < 4; ++v) intro.push_back(Story(2, v));
  for (int i = 0; i < 300; ++i) {
    v1::Event e = Story(2, 4);  // an entry written
    e.set_event_id(absl::StrCat("big-", i));
    e.mutable_record_entry_written()->set_entry_id(absl::StrCat("big-entry-", i));
    intro.push_back(std::move(e));
  }
  for (int v = 4; v < 8; ++v) intro.push_back(Story(2, v));
  ASSERT_TRUE(Append(gate, std::move(intro)).ok());
  size_t entries = 0;
  ASSERT_EQ(gate.Inspect("case-2", [&](const CaseState& s) { entries = s.entries.size(); }),
            absl::OkStatus());
  ASSERT_GT(entries, 300u);
  const std::string before = StateBytes(gate, "case-2");
  auto r = Append(gate, {Story(2, 8), Story(2, 9), RefusedDisclosure(), Story(2, 10)});
  ASSERT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
  EXPECT_EQ(StateBytes(gate, "case-2"), before);
  EXPECT_EQ(ledger->Size(), 308u);  // nothing stored

  r = Append(gate, {Story(2, 8), Story(2, 9)});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)[1].version, 309u);
  ASSERT_EQ(projector.WaitFor(ledger->Size(), absl::Seconds(30)), absl::OkStatus());
  auto stored = CaseStateProjection::Load(projector, *f.m.cases, "case-2");
  ASSERT_TRUE(stored.ok()) << stored.status();
  CaseGate fresh(ledger, f.options);
  EXPECT_EQ(StateBytes(fresh, "case-2"), EncodeCaseState(*stored));
}

}  // namespace
}  // namespace caseledger
