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
#include "absl/strings/strip.h"
#include "ledger/cosignature.h"
#include "ledger/signer.h"
#include "ledger/subject_index.h"
#include "services/append/case_gate.h"
#include "services/readmodel/case_story.h"
#include "services/append/event_codec.h"
#include "services/history/history_bundle.h"
#include "tests/history_golden.h"
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
    service_ = std::make_unique<AccessServiceImpl>(ledger_.ledger.get(), gate_.get());
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
    HistoryVerifyOptions options;
    options.log_key = &verifier_;
    options.origin = kTestOrigin;
    if (since != nullptr) options.since_note = *since;
    return VerifyHistoryBundle(b, options);
  }

  const NoteVerifier verifier_ = TestNoteVerifier();
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

// ---- Redaction, the accounting, the subject and the witnesses are checked ----

// Index in `b` of the first record of `type`.
int FirstOfType(const v1::HistoryBundle& b, absl::string_view type) {
  for (int i = 0; i < b.records_size(); ++i) {
    absl::StatusOr<Record> r = DecodeRecord(b.records(i).leaf());
    if (r.ok() && r->event_type == type) return i;
  }
  return -1;
}

TEST_F(AccessServiceTest, ARevealedProtectedFieldIsCaught) {
  v1::HistoryBundle b = History("client-1");
  const int i = FirstOfType(b, "record_entry_written");
  ASSERT_GE(i, 0);
  // The staff's full view of the same record, spliced in: every opening
  // matches its commitment, so only the schema check can catch it.
  absl::StatusOr<RecordView> stored = ledger_->Read(b.records(i).seq());
  ASSERT_TRUE(stored.ok());
  v1::HistoryRecord full;
  ASSERT_TRUE(RevealPayload(*stored, /*reveal_protected=*/true, nullptr, &full).ok());
  ASSERT_TRUE(absl::StrContains(full.SerializeAsString(), kThirdParty));  // the control
  *b.mutable_records(i)->mutable_revealed() = full.revealed();
  b.mutable_records(i)->clear_withheld();
  absl::StatusOr<HistoryVerification> v = Verify(b);
  EXPECT_EQ(v.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StrContains(v.status().message(),
                                absl::StrCat("(seq ", b.records(i).seq(), ")")))
      << v.status();
  EXPECT_TRUE(absl::StrContains(v.status().message(),
                                "field \"third_party_mentions\" is a protected detail"))
      << v.status();
}

TEST_F(AccessServiceTest, AWithheldOwnFieldIsCaught) {
  const v1::HistoryBundle honest = History("client-1");
  const int i = FirstOfType(honest, "record_entry_written");
  ASSERT_GE(i, 0);
  ASSERT_TRUE(Verify(honest).ok());
  // The client's own "text", moved from revealed to withheld under each
  // reason a server might claim.
  struct Case {
    v1::WithheldReason reason;
    uint64_t by_seq;
    const char* want;
  } cases[] = {
      {v1::WITHHELD_PROTECTED_DETAIL, 0, "the client's own field must be shown"},
      {v1::WITHHELD_ERASED, honest.records(i + 1).seq(), "never sealed"},
      {v1::WITHHELD_KEYS_DESTROYED, 0, "never sealed"},
      {v1::WITHHELD_REASON_UNSPECIFIED, 0, "reason: got 0"},
  };
  for (const Case& c : cases) {
    v1::HistoryBundle b = honest;
    v1::HistoryRecord* r = b.mutable_records(i);
    absl::StatusOr<Payload> fields = DecodePayload(r->payload_commitments());
    ASSERT_TRUE(fields.ok());
    int text = -1;
    for (int k = 0; k < r->revealed_size(); ++k) {
      if (fields->fields[r->revealed(k).index()].name == "text") text = k;
    }
    ASSERT_GE(text, 0);
    const uint32_t index = r->revealed(text).index();
    r->mutable_revealed()->DeleteSubrange(text, 1);
    v1::WithheldField w;
    w.set_index(index);
    w.set_reason(c.reason);
    w.set_by_seq(c.by_seq);
    // Keep the withheld list in increasing index.
    std::vector<v1::WithheldField> all(r->withheld().begin(), r->withheld().end());
    all.push_back(w);
    std::sort(all.begin(), all.end(),
              [](const auto& x, const auto& y) { return x.index() < y.index(); });
    r->clear_withheld();
    for (const v1::WithheldField& x : all) *r->add_withheld() = x;
    absl::StatusOr<HistoryVerification> v = Verify(b);
    EXPECT_FALSE(v.ok()) << c.want;
    EXPECT_TRUE(absl::StrContains(v.status().message(),
                                  absl::StrCat("(seq ", r->seq(), ")")))
        << v.status();
    EXPECT_TRUE(absl::StrContains(v.status().message(), c.want)) << v.status();
  }
}

TEST_F(AccessServiceTest, AFieldNeitherRevealedNorWithheldIsCaught) {
  v1::HistoryBundle b = History("client-1");
  const int i = FirstOfType(b, "record_entry_written");
  ASSERT_GE(i, 0);
  b.mutable_records(i)->clear_withheld();
  absl::StatusOr<HistoryVerification> v = Verify(b);
  EXPECT_EQ(v.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StrContains(v.status().message(),
                                "\"third_party_mentions\" is neither revealed nor withheld"))
      << v.status();
}

TEST_F(AccessServiceTest, TheAccountingIsDerivedFromTheRecordsAndARewriteIsCaught) {
  v1::HistoryBundle b = History("client-1");
  absl::StatusOr<HistoryVerification> v = Verify(b);
  ASSERT_TRUE(v.ok()) << v.status();
  // The story discloses to a recipient outside the HIPAA exclusions, so
  // the accounting is not empty (else a rewrite would be trivial).
  ASSERT_FALSE(v->accounting.entries.empty());
  const std::string& recipient = v->accounting.entries[0].recipient_name;
  ASSERT_TRUE(absl::StrContains(b.accounting_json(), recipient));
  std::string rewritten = b.accounting_json();
  rewritten.replace(rewritten.find(recipient), recipient.size(), "Nobody in particular");
  b.set_accounting_json(rewritten);
  v = Verify(b);
  EXPECT_EQ(v.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StrContains(v.status().message(), "accounting_json: differs")) << v.status();

  // So is one that leaves a disclosure out.
  b = History("client-1");
  AccountingReport fewer = Verify(b)->accounting;
  fewer.entries.pop_back();
  b.set_accounting_json(AccountingReportToJson(fewer));
  EXPECT_EQ(Verify(b).status().code(), absl::StatusCode::kDataLoss);
}

// 45 CFR 164.528(a)(2) in the client's own history (HISTORY_BUNDLE.md
// "Redaction", reason 6): while County Court's suspension lasts, the
// disclosure to it and the suspension itself are withheld, and nothing in
// the bundle names the court or its statement; afterwards both are shown.
TEST_F(AccessServiceTest, ASuspendedDisclosureIsWithheldOnlyWhileTheSuspensionLasts) {
  constexpr int64_t kDay = 86400;
  // Dated now: the story's days are long past, and a bundle cannot be
  // produced before its records were committed (the ledger's real clock).
  const int64_t at = absl::ToUnixSeconds(absl::Now());
  v1::Event e = testing::Story(0, testing::kStoryLength - 1);
  e.set_event_id("case-0-suspended");
  e.clear_body();
  e.mutable_occurred_at()->set_seconds(at);
  auto* s = e.mutable_accounting_suspended();
  s->set_suspension_id("s-1");
  s->set_client_id("client-0");
  s->set_agency_id("court-7");
  s->set_agency_name("County Court");
  s->set_form(v1::SUSPENSION_FORM_WRITTEN);
  s->set_statement("sealed order 99");
  s->set_agency_kind(v1::SUSPENDING_AGENCY_LAW_ENFORCEMENT);
  s->mutable_ends_at()->set_seconds(at + 90 * kDay);
  Append(e);
  ASSERT_TRUE(ledger_->Checkpoint().ok());
  const absl::Time during = absl::FromUnixSeconds(at + 10 * kDay);
  const absl::Time after = absl::FromUnixSeconds(at + 91 * kDay);

  absl::StatusOr<v1::HistoryBundle> b =
      BuildHistoryBundle(*ledger_.ledger, "client-0", 0, during);
  ASSERT_TRUE(b.ok()) << b.status();
  absl::StatusOr<HistoryVerification> v = Verify(*b);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->suspended, 2u);
  const std::string bytes = b->SerializeAsString();
  EXPECT_FALSE(absl::StrContains(bytes, "County Court"));
  EXPECT_FALSE(absl::StrContains(bytes, "sealed order 99"));
  EXPECT_FALSE(absl::StrContains(bytes, "Cal. Evid. Code 1560"));  // the disclosure's citation
  int disclosure = -1, suspension = -1;
  for (int i = 0; i < b->records_size(); ++i) {
    const VerifiedRecord& r = v->records[i];
    if (r.withheld.empty() || r.withheld.back().reason != WithheldReason::kSuspended) continue;
    (r.record.event_type == "disclosure_made" ? disclosure : suspension) = i;
  }
  ASSERT_GE(disclosure, 0);
  ASSERT_GE(suspension, 0);
  EXPECT_TRUE(v->records[disclosure].revealed.empty());
  std::vector<std::string> shown;
  for (const auto& [name, value] : v->records[suspension].revealed) shown.push_back(name);
  EXPECT_EQ(shown, (std::vector<std::string>{"client_id", "ends_at", "agency_kind"}));
  for (const AccountingEntry& a : v->accounting.entries) EXPECT_NE(a.disclosure_id, "d-0-2");
  std::vector<std::string> types;
  for (const VerifiedRecord& r : v->records) types.push_back(r.record.event_type);

  // After the end everything is shown again, and the accounting lists it.
  absl::StatusOr<v1::HistoryBundle> later =
      BuildHistoryBundle(*ledger_.ledger, "client-0", 0, after);
  ASSERT_TRUE(later.ok()) << later.status();
  absl::StatusOr<HistoryVerification> lv = Verify(*later);
  ASSERT_TRUE(lv.ok()) << lv.status();
  EXPECT_EQ(lv->suspended, 0u);
  EXPECT_TRUE(absl::StrContains(later->SerializeAsString(), "County Court"));
  EXPECT_TRUE(absl::StrContains(later->accounting_json(), "\"d-0-2\""));

  // A server that keeps withholding after the end is caught.
  v1::HistoryBundle stale = *b;
  *stale.mutable_produced_at() = later->produced_at();
  stale.set_accounting_json(later->accounting_json());
  v = Verify(stale);
  EXPECT_EQ(v.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StrContains(v.status().message(), "when it is not in force: the record must "
                                                      "be shown"))
      << v.status();

  // So is one that withholds a record a suspension cannot cover, or points
  // at something that is not a suspension of this case.
  const uint64_t by = b->records(suspension).seq();
  v1::HistoryBundle note = *b;
  int entry = 0;
  while (types[entry] != "record_entry_written") ++entry;
  ASSERT_TRUE(WithholdWhileSuspended(by, note.mutable_records(entry)).ok());
  v = Verify(note);
  EXPECT_EQ(v.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StrContains(v.status().message(), "withholds only disclosure_made and "
                                                      "accounting_suspended records"))
      << v.status();
  v1::HistoryBundle elsewhere = *b;
  for (v1::WithheldField& w : *elsewhere.mutable_records(disclosure)->mutable_withheld()) {
    w.set_by_seq(b->records(0).seq());
  }
  v = Verify(elsewhere);
  EXPECT_EQ(v.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StrContains(v.status().message(), "which is not a suspension of accounting"))
      << v.status();
}

TEST_F(AccessServiceTest, AnotherPersonsBundleIsRefusedWithoutNamingThem) {
  v1::HistoryBundle theirs = History("client-2");
  HistoryVerifyOptions options;
  options.log_key = &verifier_;
  options.origin = kTestOrigin;
  options.subject_id = "client-2";
  ASSERT_TRUE(VerifyHistoryBundle(theirs, options).ok());  // the control
  options.subject_id = "client-1";
  absl::StatusOr<HistoryVerification> v = VerifyHistoryBundle(theirs, options);
  EXPECT_EQ(v.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(v.status().message(), "not the history of \"client-1\""))
      << v.status();
  EXPECT_FALSE(absl::StrContains(v.status().message(), "client-2")) << v.status();
}

TEST_F(AccessServiceTest, AQuorumCountsTheWitnessesCosignaturesTheBundleCarries) {
  auto key = Ed25519Signer::FromSeed(std::string(32, '\x07'));
  ASSERT_TRUE(key.ok());
  absl::StatusOr<Cosigner> witness = Cosigner::New("witness.test", *std::move(key));
  ASSERT_TRUE(witness.ok());
  absl::StatusOr<CosignatureVerifier> trusted =
      CosignatureVerifier::FromVerifierKey(witness->VerifierKey());
  ASSERT_TRUE(trusted.ok());
  HistoryVerifyOptions options;
  options.log_key = &verifier_;
  options.origin = kTestOrigin;
  options.witnesses.push_back(*std::move(trusted));
  options.quorum = 1;

  v1::HistoryBundle b = History("client-1");
  absl::StatusOr<HistoryVerification> v = VerifyHistoryBundle(b, options);
  EXPECT_EQ(v.status().code(), absl::StatusCode::kFailedPrecondition) << v.status();
  EXPECT_TRUE(absl::StrContains(v.status().message(), "checkpoint cosignatures")) << v.status();

  // The witness cosigns the checkpoint; the next bundle at it carries the line.
  absl::StatusOr<StoredCheckpoint> cp = ledger_->Checkpoint();
  ASSERT_TRUE(cp.ok());
  absl::StatusOr<SignedNote> note = ParseSignedNote(cp->note);
  ASSERT_TRUE(note.ok());
  absl::StatusOr<std::string> line = witness->SignatureLine(note->text, 1767225600);
  ASSERT_TRUE(line.ok());
  ASSERT_TRUE(ledger_->PutCosignature(cp->size, "witness.test",
                                      absl::StripSuffix(*line, "\n")).ok());
  v1::GetRecordHistoryRequest req;
  req.set_subject_id("client-1");
  *req.mutable_accessor() = ClientAccessor("client-1");
  absl::StatusOr<v1::HistoryBundle> cosigned = service_->GetRecordHistory(req);
  ASSERT_TRUE(cosigned.ok()) << cosigned.status();
  v = VerifyHistoryBundle(*cosigned, options);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->cosigned_by, std::vector<std::string>{"witness.test"});
}

// The attack that motivated witnesses checking the subjects root: a note
// signed with the log's own key, over the real tree, whose subjects root is
// an older one that knows fewer of the client's records.
TEST_F(AccessServiceTest, AStaleSubjectsRootSignedWithTheLogKeyPassesOnlyWithoutAQuorum) {
  const v1::HistoryBundle old_bundle = History("client-1");
  AppendExtra(1);
  const v1::HistoryBundle fresh = History("client-1");
  ASSERT_GT(fresh.records_size(), old_bundle.records_size());
  absl::StatusOr<Checkpoint> old_cp =
      OpenCheckpoint(old_bundle.checkpoint_note(), verifier_, kTestOrigin);
  absl::StatusOr<Checkpoint> new_cp = OpenCheckpoint(fresh.checkpoint_note(), verifier_,
                                                     kTestOrigin);
  ASSERT_TRUE(old_cp.ok() && new_cp.ok());
  Checkpoint forged = *new_cp;
  forged.extensions = old_cp->extensions;
  const NoteSigner log_key = testing::TestNoteSigner();
  absl::StatusOr<std::string> forged_note = SignCheckpoint(forged, log_key);
  ASSERT_TRUE(forged_note.ok());
  v1::HistoryBundle b = old_bundle;
  b.set_checkpoint_note(*forged_note);
  for (v1::HistoryRecord& r : *b.mutable_records()) {
    absl::StatusOr<std::vector<Hash>> proof = ledger_->InclusionProof(r.seq(), forged.size);
    ASSERT_TRUE(proof.ok());
    r.clear_inclusion_proof();
    for (const Hash& h : *proof) r.add_inclusion_proof(std::string(AsBytes(h)));
  }
  // Without witnesses the log key is trusted for the subjects root: the
  // forgery hides the newer records (HISTORY_BUNDLE.md "Who is trusted").
  absl::StatusOr<HistoryVerification> v = Verify(b);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->records.size(), static_cast<size_t>(old_bundle.records_size()));
  // A client that requires a witness is not fooled: no witness cosigns a
  // subjects root that does not follow from the records
  // (tests/witness_e2e_test.cc), so the forged note has no cosignature.
  auto key = Ed25519Signer::FromSeed(std::string(32, '\x07'));
  ASSERT_TRUE(key.ok());
  absl::StatusOr<Cosigner> witness = Cosigner::New("witness.test", *std::move(key));
  ASSERT_TRUE(witness.ok());
  HistoryVerifyOptions options;
  options.log_key = &verifier_;
  options.origin = kTestOrigin;
  options.witnesses.push_back(*CosignatureVerifier::FromVerifierKey(witness->VerifierKey()));
  options.quorum = 1;
  EXPECT_EQ(VerifyHistoryBundle(b, options).status().code(),
            absl::StatusCode::kFailedPrecondition);
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

TEST_F(AccessServiceTest, ARecordReadNamingAnotherSubjectIsRefusedAndShowsNothing) {
  v1::HistoryBundle theirs = History("client-1");
  ASSERT_GT(theirs.records_size(), 0);
  const uint64_t size = ledger_->Size();
  v1::ReadRecordRequest rr;
  rr.set_seq(theirs.records(0).seq());
  rr.set_subject_id("client-0");
  rr.mutable_accessor()->set_accessor_id("client-0");
  rr.mutable_accessor()->set_role("client");
  rr.mutable_accessor()->set_purpose("right of access");
  absl::StatusOr<v1::ReadRecordResponse> r = service_->ReadRecord(rr);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(r.status().message(),
            absl::StrCat("subject_id: record ", rr.seq(), " is not one of \"client-0\"'s records"));
  EXPECT_EQ(ledger_->Size(), size);  // nothing read, so nothing recorded
  // Their own record reads, in the client view only.
  rr.set_subject_id("client-1");
  rr.mutable_accessor()->set_accessor_id("client-1");
  absl::StatusOr<v1::ReadRecordResponse> own = service_->ReadRecord(rr);
  ASSERT_TRUE(own.ok()) << own.status();
  EXPECT_EQ(own->record().seq(), rr.seq());
  rr.set_full_view(true);
  EXPECT_EQ(service_->ReadRecord(rr).status().code(), absl::StatusCode::kPermissionDenied);
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
    "8ae27c0bee3a1325990640a1487e9d773da6c48abc35eba3de33f6ebf5f12250";

// The bundle format (HISTORY_BUNDLE.md "Golden bundle"): fixed key, clock
// and salts give the same bytes every time.
TEST(HistoryBundleGoldenTest, BytesArePinned) {
  absl::StatusOr<v1::HistoryBundle> b =
      testing::GoldenHistoryBundle(testing::NewTempDir("golden"));
  ASSERT_TRUE(b.ok()) << b.status();
  const NoteVerifier verifier = TestNoteVerifier();
  HistoryVerifyOptions verify;
  verify.log_key = &verifier;
  verify.origin = kTestOrigin;
  absl::StatusOr<HistoryVerification> v = VerifyHistoryBundle(*b, verify);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->records.size(), 2u);
  EXPECT_EQ(b->checkpoint_note(), kGoldenNote);
  EXPECT_EQ(ToHex(Sha256Of(b->SerializeAsString())), kGoldenBundleSha256);
  // The spec holds the same values.
  std::ifstream in("services/history/HISTORY_BUNDLE.md");
  ASSERT_TRUE(in.good());
  std::stringstream doc;
  doc << in.rdbuf();
  EXPECT_TRUE(absl::StrContains(doc.str(), kGoldenNote));
  EXPECT_TRUE(absl::StrContains(doc.str(), kGoldenBundleSha256));
}

// The FHIR export (services/fhir/FHIR.md): the client's consents and
// disclosures, recorded as a read before it leaves; refusals store nothing.
TEST_F(AccessServiceTest, FhirExportIsRecordedAsAReadAndRefusesBadRequests) {
  v1::ExportFhirRequest req;
  req.set_subject_id("client-0");
  *req.mutable_accessor() = ClientAccessor("client-0");
  absl::StatusOr<v1::FhirExport> got = service_->ExportFhir(req);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->records_read(), static_cast<uint32_t>(testing::kStoryLength));
  EXPECT_TRUE(absl::StrContains(got->bundle_json(), "\"resourceType\": \"Consent\""));
  EXPECT_TRUE(absl::StrContains(got->bundle_json(), "\"code\": \"110106\""));
  EXPECT_FALSE(absl::StrContains(got->bundle_json(), kThirdParty));
  // The export was recorded: the last record is a read of client-0's records.
  const uint64_t size = ledger_->Size();
  absl::StatusOr<RecordView> last = ledger_->Read(size - 1);
  ASSERT_TRUE(last.ok()) << last.status();
  absl::StatusOr<v1::Record> wire = ToWireRecord(*last);
  ASSERT_TRUE(wire.ok()) << wire.status();
  EXPECT_EQ(wire->event().record_accessed().accessor_id(), "client-0");
  EXPECT_EQ(wire->event().record_accessed().purpose(), "right of access");

  v1::ExportFhirRequest full = req;
  full.set_full_view(true);
  EXPECT_EQ(service_->ExportFhir(full).status().code(), absl::StatusCode::kPermissionDenied);
  v1::ExportFhirRequest no_subject = req;
  no_subject.clear_subject_id();
  EXPECT_EQ(service_->ExportFhir(no_subject).status().message(), "subject_id: must not be empty");
  v1::ExportFhirRequest backwards = req;
  backwards.mutable_from()->set_seconds(2000);
  backwards.mutable_until()->set_seconds(1000);
  absl::Status s = service_->ExportFhir(backwards).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(s.message(), "from: got ")) << s;
  EXPECT_EQ(ledger_->Size(), size);
}

}  // namespace
}  // namespace caseledger
