#include "services/api/access_service.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "ledger/subject_index.h"
#include "services/api/case_gate.h"
#include "services/api/case_story.h"
#include "services/api/event_codec.h"
#include "services/api/history_bundle.h"
#include "tests/test_util.h"

namespace caseledger {
namespace {

using ::caseledger::testing::kTestOrigin;
using ::caseledger::testing::TestNoteVerifier;

constexpr char kThirdParty[] = "J. Smith";

v1::Accessor ClientAccessor(const std::string& who) {
  v1::Accessor a;
  a.set_accessor_id(who);
  a.set_role("client");
  a.set_purpose("right of access");
  return a;
}

class AccessServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    LedgerOptions options;
    options.checkpoint_interval = absl::Hours(1);  // checkpoints only when asked
    auto t = testing::OpenTestLedger(testing::NewTempDir("access"), options);
    ASSERT_TRUE(t.ok()) << t.status();
    ledger_ = *std::move(t);
    gate_ = std::make_unique<CaseGate>(ledger_.ledger.get());
    service_ = std::make_unique<AccessServiceImpl>(ledger_.ledger.get(), gate_.get(), nullptr,
                                                   nullptr);
    // Three cases, interleaved, so that each client's records are spread
    // through the log.
    for (int v = 0; v < testing::kStoryLength; ++v) {
      for (int c = 0; c < 3; ++c) Append(testing::Story(c, v));
    }
  }

  void Append(const v1::Event& e) {
    absl::StatusOr<Event> le = ToLedgerEvent(e);
    ASSERT_TRUE(le.ok()) << le.status();
    std::vector<GatedEvent> one;
    one.push_back(GatedEvent{e, {*std::move(le), std::nullopt}});
    absl::StatusOr<std::vector<AppendResult>> r = gate_->Append(std::move(one));
    ASSERT_TRUE(r.ok()) << r.status() << " for " << e.event_id();
  }

  // One more record for client-<c> (an access request: allowed in closed
  // cases too).
  void AppendExtra(int c) {
    v1::Event e = testing::Story(c, 16);
    e.set_event_id(absl::StrCat("extra-", c));
    e.mutable_access_requested()->set_request_id(absl::StrCat("r-extra-", c));
    // After the story's last event: not late documentation.
    *e.mutable_occurred_at() = testing::Story(c, testing::kStoryLength - 1).occurred_at();
    Append(e);
  }

  v1::HistoryBundle History(const std::string& subject, uint64_t since_size = 0) {
    v1::GetRecordHistoryRequest req;
    req.set_subject_id(subject);
    *req.mutable_accessor() = ClientAccessor(subject);
    req.set_current(true);
    req.set_since_size(since_size);
    absl::StatusOr<v1::HistoryBundle> b = service_->GetRecordHistory(req);
    EXPECT_TRUE(b.ok()) << b.status();
    return b.ok() ? *std::move(b) : v1::HistoryBundle();
  }

  absl::StatusOr<HistoryVerification> Verify(const v1::HistoryBundle& b,
                                             const std::string* since = nullptr) {
    return VerifyHistoryBundle(b, TestNoteVerifier(), kTestOrigin, since);
  }

  testing::TestLedger ledger_;
  std::unique_ptr<CaseGate> gate_;
  std::unique_ptr<AccessServiceImpl> service_;
};

TEST_F(AccessServiceTest, BundleVerifiesAndIsComplete) {
  v1::HistoryBundle b = History("client-0");
  ASSERT_EQ(b.records_size(), testing::kStoryLength);
  absl::StatusOr<HistoryVerification> v = Verify(b);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->state.count, static_cast<uint64_t>(testing::kStoryLength));
  EXPECT_EQ(v->records[0].record.event_type, "case_opened");
  EXPECT_TRUE(absl::StrContains(absl::StrJoin(v->checks, "\n"), "completeness OK"));
}

TEST_F(AccessServiceTest, ASubjectWithNoRecordsGetsAVerifiedEmptyHistory) {
  v1::HistoryBundle b = History("client-nobody");
  EXPECT_EQ(b.records_size(), 0);
  absl::StatusOr<HistoryVerification> v = Verify(b);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->state.count, 0u);
}

TEST_F(AccessServiceTest, ThirdPartyNamesNeverReachTheClientAndRedactedRecordsVerify) {
  // The name is in the ledger (so this test can fail)...
  bool stored = false;
  for (uint64_t seq = 0; seq < ledger_->Size(); ++seq) {
    absl::StatusOr<RecordView> r = ledger_->Read(seq);
    ASSERT_TRUE(r.ok());
    stored |= absl::StrContains(r->payload, kThirdParty);
  }
  ASSERT_TRUE(stored);
  // ...but in no byte of the client's bundle.
  v1::HistoryBundle b = History("client-0");
  std::string bytes = b.SerializeAsString();
  EXPECT_FALSE(absl::StrContains(bytes, kThirdParty));
  absl::StatusOr<HistoryVerification> v = Verify(b);
  ASSERT_TRUE(v.ok()) << v.status();
  int redacted = 0;
  for (const VerifiedRecord& r : v->records) {
    if (r.record.event_type != "record_entry_written") continue;
    ASSERT_EQ(r.withheld.size(), 1u);
    EXPECT_EQ(r.withheld[0].name, "third_party_mentions");
    EXPECT_EQ(r.withheld[0].reason, WithheldReason::kProtectedDetail);
    EXPECT_TRUE(absl::StrContains(RevealedBodyJson(r), "visit note")) << RevealedBodyJson(r);
    ++redacted;
  }
  EXPECT_GT(redacted, 5);
}

// ---- A server that lies is caught ----

TEST_F(AccessServiceTest, DroppingARecordIsCaught) {
  v1::HistoryBundle b = History("client-1");
  b.mutable_records()->DeleteSubrange(7, 1);
  absl::StatusOr<HistoryVerification> v = Verify(b);
  EXPECT_EQ(v.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StrContains(v.status().message(),
                                "completeness: the bundle has 19 records, the checkpoint's "
                                "subject index says 20"))
      << v.status();
}

TEST_F(AccessServiceTest, DroppingARecordAndLoweringTheCountIsCaught) {
  v1::HistoryBundle b = History("client-1");
  b.mutable_records()->DeleteSubrange(7, 1);
  b.mutable_map_proof()->mutable_leaf()->set_count(19);
  absl::StatusOr<HistoryVerification> v = Verify(b);
  EXPECT_EQ(v.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StrContains(v.status().message(), "subject index proof")) << v.status();
}

TEST_F(AccessServiceTest, ReorderingIsCaught) {
  v1::HistoryBundle b = History("client-1");
  b.mutable_records()->SwapElements(3, 4);
  absl::StatusOr<HistoryVerification> v = Verify(b);
  EXPECT_EQ(v.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StrContains(v.status().message(), "records[4]")) << v.status();
  EXPECT_TRUE(absl::StrContains(v.status().message(), "out of order")) << v.status();
}

TEST_F(AccessServiceTest, AnotherSubjectsRecordIsCaught) {
  v1::HistoryBundle b = History("client-1");
  v1::HistoryBundle other = History("client-2");
  // Same position, and a seq that keeps the order, so only the subject check
  // can catch it.
  *b.mutable_records(5) = other.records(5);
  absl::StatusOr<HistoryVerification> v = Verify(b);
  EXPECT_EQ(v.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StrContains(v.status().message(), "does not name subject \"client-1\""))
      << v.status();
}

TEST_F(AccessServiceTest, AnOlderIndexStateIsCaught) {
  v1::HistoryBundle old_bundle = History("client-1");
  AppendExtra(1);
  v1::HistoryBundle b = History("client-1");
  // The extra record and the access event of the first read.
  ASSERT_EQ(b.records_size(), old_bundle.records_size() + 2);

  // The new checkpoint with the old map proof and records.
  v1::HistoryBundle stale = old_bundle;
  stale.set_checkpoint_note(b.checkpoint_note());
  absl::StatusOr<HistoryVerification> v = Verify(stale);
  EXPECT_EQ(v.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StrContains(v.status().message(), "subject index proof")) << v.status();

  // The new checkpoint and map proof, the old records.
  stale = b;
  *stale.mutable_records() = old_bundle.records();
  v = Verify(stale);
  EXPECT_EQ(v.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StrContains(v.status().message(), "completeness")) << v.status();

  // Replaying the old bundle to a client who holds the newer checkpoint.
  std::string newer = b.checkpoint_note();
  v = Verify(old_bundle, &newer);
  EXPECT_EQ(v.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(v.status().message(), "older than the one you hold"))
      << v.status();
}

TEST_F(AccessServiceTest, ConsistencyWithTheClientsEarlierCheckpoint) {
  v1::HistoryBundle first = History("client-2");
  absl::StatusOr<HistoryVerification> v1_ok = Verify(first);
  ASSERT_TRUE(v1_ok.ok());
  const std::string kept = first.checkpoint_note();
  AppendExtra(2);
  v1::HistoryBundle second = History("client-2", v1_ok->checkpoint.size);
  absl::StatusOr<HistoryVerification> v = Verify(second, &kept);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_TRUE(absl::StrContains(absl::StrJoin(v->checks, "\n"), "consistency OK"));

  // A proof that does not tie the two.
  v1::HistoryBundle broken = second;
  (*broken.mutable_consistency_proof(0))[0] ^= 1;
  EXPECT_EQ(Verify(broken, &kept).status().code(), absl::StatusCode::kDataLoss);
  // No proof from the client's size at all.
  v1::HistoryBundle none = History("client-2");
  EXPECT_EQ(Verify(none, &kept).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(AccessServiceTest, TamperedBytesAreCaught) {
  v1::HistoryBundle b = History("client-0");
  {
    v1::HistoryBundle t = b;
    std::string* leaf = t.mutable_records(2)->mutable_leaf();
    (*leaf)[leaf->size() - 1] ^= 1;  // the payload commitment's last byte
    absl::StatusOr<HistoryVerification> v = Verify(t);
    EXPECT_EQ(v.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_TRUE(absl::StrContains(v.status().message(), "records[2]")) << v.status();
  }
  {
    v1::HistoryBundle t = b;
    v1::HistoryRecord* r = t.mutable_records(12);
    ASSERT_GT(r->revealed_size(), 0);
    r->mutable_revealed(0)->mutable_value()->append("x");
    absl::StatusOr<HistoryVerification> v = Verify(t);
    EXPECT_EQ(v.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_TRUE(absl::StrContains(v.status().message(), "does not match its commitment"))
        << v.status();
  }
  {
    // The first record's proof is checked all the way to the root.
    v1::HistoryBundle t = b;
    std::string* hash = t.mutable_records(0)->mutable_inclusion_proof(0);
    (*hash)[0] ^= 1;
    absl::StatusOr<HistoryVerification> v = Verify(t);
    EXPECT_EQ(v.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_TRUE(absl::StrContains(v.status().message(), "records[0] (seq 0): inclusion proof"))
        << v.status();
    t = b;
    t.mutable_records(0)->mutable_inclusion_proof()->RemoveLast();
    EXPECT_EQ(Verify(t).status().code(), absl::StatusCode::kInvalidArgument);
  }
  {
    // A later record's proof: its own lower levels are checked.
    v1::HistoryBundle t = b;
    std::string* hash = t.mutable_records(9)->mutable_inclusion_proof(0);
    (*hash)[0] ^= 1;
    EXPECT_EQ(Verify(t).status().code(), absl::StatusCode::kDataLoss);
  }
  {
    v1::HistoryBundle t = b;
    std::string* note = t.mutable_checkpoint_note();
    (*note)[note->find('\n') + 1] ^= 1;  // the size line
    EXPECT_EQ(Verify(t).status().code(), absl::StatusCode::kDataLoss);
  }
}

// ---- Every read is recorded ----

TEST_F(AccessServiceTest, EveryHistoryAndRecordReadIsInTheAccessReport) {
  v1::HistoryBundle b = History("client-0");
  std::vector<uint64_t> read;
  for (const v1::HistoryRecord& r : b.records()) read.push_back(r.seq());

  v1::ReadRecordRequest rr;
  rr.set_seq(read[4]);
  rr.mutable_accessor()->set_accessor_id("cm-0");
  rr.mutable_accessor()->set_role("case_manager");
  rr.mutable_accessor()->set_purpose("treatment");
  rr.set_full_view(true);
  absl::StatusOr<v1::ReadRecordResponse> one = service_->ReadRecord(rr);
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_TRUE(absl::StrContains(one->event_json(), kThirdParty));  // staff view

  v1::GetAccessReportRequest req;
  req.set_subject_id("client-0");
  absl::StatusOr<v1::AccessReport> report = service_->GetAccessReport(req);
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_EQ(report->entries_size(), 2);
  const v1::AccessReportEntry& h = report->entries(0);
  EXPECT_EQ(h.accessor_id(), "client-0");
  EXPECT_EQ(h.accessor_role(), "client");
  EXPECT_EQ(h.purpose(), "right of access");
  EXPECT_EQ(std::vector<uint64_t>(h.seqs().begin(), h.seqs().end()), read);
  const v1::AccessReportEntry& r = report->entries(1);
  EXPECT_EQ(r.accessor_id(), "cm-0");
  EXPECT_EQ(r.purpose(), "treatment");
  EXPECT_EQ(std::vector<uint64_t>(r.seqs().begin(), r.seqs().end()),
            std::vector<uint64_t>{read[4]});
  // The access events are themselves in the client's next, verified history.
  v1::HistoryBundle next = History("client-0");
  absl::StatusOr<HistoryVerification> v = Verify(next);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->records.back().record.event_type, "record_accessed");
  // Another client's report does not show them.
  req.set_subject_id("client-1");
  report = service_->GetAccessReport(req);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->entries_size(), 0);
}

TEST_F(AccessServiceTest, AReadWithoutAPurposeIsRefusedAndShowsNothing) {
  uint64_t size = ledger_->Size();
  v1::ReadRecordRequest rr;
  rr.set_seq(3);
  rr.mutable_accessor()->set_accessor_id("cm-0");
  absl::StatusOr<v1::ReadRecordResponse> r = service_->ReadRecord(rr);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(r.status().message(), "accessor.purpose")) << r.status();
  v1::GetRecordHistoryRequest hr;
  hr.set_subject_id("client-0");
  EXPECT_EQ(service_->GetRecordHistory(hr).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ledger_->Size(), size);
}

TEST_F(AccessServiceTest, FulfillingAnAccessRequestRecordsTheBundleHash) {
  v1::GetRecordHistoryRequest req;
  req.set_subject_id("client-0");
  *req.mutable_accessor() = ClientAccessor("client-0");
  req.set_request_id("r-0");  // case 0's request is still open (extended)
  req.set_case_id("case-0");
  absl::StatusOr<v1::HistoryBundle> b = service_->GetRecordHistory(req);
  ASSERT_TRUE(b.ok()) << b.status();
  absl::StatusOr<RecordView> last = ledger_->Read(ledger_->Size() - 1);
  ASSERT_TRUE(last.ok());
  absl::StatusOr<v1::Record> wire = ToWireRecord(*last);
  ASSERT_TRUE(wire.ok());
  ASSERT_TRUE(wire->event().has_access_fulfilled());
  EXPECT_EQ(wire->event().access_fulfilled().request_id(), "r-0");
  EXPECT_EQ(wire->event().access_fulfilled().bundle_sha256(),
            ToHex(Sha256Of(b->SerializeAsString())));

  // The request is decided now: fulfilling it again is refused by the case's
  // policy, and neither the access nor anything else is recorded.
  uint64_t size = ledger_->Size();
  absl::StatusOr<v1::HistoryBundle> again = service_->GetRecordHistory(req);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(again.status().message(), "r-0")) << again.status();
  req.set_request_id("r-unknown");
  EXPECT_EQ(service_->GetRecordHistory(req).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ledger_->Size(), size);

  req.set_case_id("");
  EXPECT_EQ(service_->GetRecordHistory(req).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace caseledger

namespace caseledger {
namespace {

constexpr char kGoldenNote[] =
    "caseledger.test/log\n3\nOQfNbj/7ShikrgKbDxCIYKkaNO4zqbOZsTfKLv2mdBU=\n"
    "subjects g/FVzJrhGB4CV+2eblq9tvI2hpJ5QxqcTgRyPmu1IuE=\n\n"
    "\xE2\x80\x94 caseledger.test "
    "ebZZWvSJGvsT9dChySMtSOIMflQ2ZjwM7ievRoZUHJbp+i9mahwrcTQuAfR3LElw9Nx2gzbrdKWIt0A3E4TPPgrR/wM=\n";
constexpr char kGoldenBundleSha256[] =
    "ff470cf92f412dbf719834d7bff6c1ead664ab6523b8909504dcde95045685d5";

// The bundle format (HISTORY_BUNDLE.md "Golden bundle"): fixed key, clock
// and salts give the same bytes every time.
TEST(HistoryBundleGoldenTest, BytesArePinned) {
  FakeClock clock;
  LedgerOptions options;
  options.clock = &clock;
  options.checkpoint_interval = absl::Hours(1);
  uint8_t next_salt = 0;
  options.salt_source = [&next_salt] {
    Hash h;
    h.fill(next_salt++);
    return h;
  };
  auto t = testing::OpenTestLedger(testing::NewTempDir("golden"), options);
  ASSERT_TRUE(t.ok()) << t.status();
  for (int i = 0; i < 3; ++i) {
    Event e;
    e.event_id = absl::StrCat("golden-", i);
    e.stream_id = "case-g";
    e.producer = "golden";
    e.event_type = "record_entry_written";
    e.occurred_at_micros = 1767225600000000 + i;
    e.subject_ids = {i == 1 ? "client-b" : "client-a"};
    e.fields = {{"text", absl::StrCat("\x1a\x06note ", i), 0},
                {"third_party_mentions", "\x22\x08J. Smith", kFieldProtected}};
    ASSERT_TRUE((*t)->Append({e}).ok());
  }
  ASSERT_TRUE((*t)->Checkpoint().ok());
  absl::StatusOr<v1::HistoryBundle> b = BuildHistoryBundle(*t->ledger, "client-a", 0);
  ASSERT_TRUE(b.ok()) << b.status();
  absl::StatusOr<HistoryVerification> v =
      VerifyHistoryBundle(*b, TestNoteVerifier(), kTestOrigin, nullptr);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->records.size(), 2u);
  EXPECT_EQ(b->checkpoint_note(), kGoldenNote);
  EXPECT_EQ(ToHex(Sha256Of(b->SerializeAsString())), kGoldenBundleSha256);
  // The spec holds the same values.
  std::ifstream in("services/api/HISTORY_BUNDLE.md");
  ASSERT_TRUE(in.good());
  std::stringstream doc;
  doc << in.rdbuf();
  EXPECT_TRUE(absl::StrContains(doc.str(), kGoldenNote));
  EXPECT_TRUE(absl::StrContains(doc.str(), kGoldenBundleSha256));
}

}  // namespace
}  // namespace caseledger
