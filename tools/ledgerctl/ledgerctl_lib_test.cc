#include "tools/ledgerctl/ledgerctl_lib.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "ledger/checkpoint.h"
#include "ledger/hash.h"
#include "ledger/record.h"
#include "ledger/signer.h"

namespace caseledger::ledgerctl {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1767225600) + absl::Microseconds(5);

// The workflow commands' events: body fields from flags by proto name,
// enums by short name, dates, the client as subject, defaults as append.
TEST(WorkflowEventTest, BuildsTheBodyFromItsFieldNames) {
  WorkflowEnvelope env;
  env.stream_id = "case-1";
  env.late = "entered from the paper file";
  auto r = WorkflowEvent(env, "accounting_suspended",
                         {{"suspension_id", "s-1"},
                          {"client_id", "client-1"},
                          {"form", "written"},
                          {"agency_kind", "SUSPENDING_AGENCY_LAW_ENFORCEMENT"},
                          {"ends_at", "2027-01-31"}},
                         kNow);
  ASSERT_TRUE(r.ok()) << r.status();
  const v1::Event& e = r->event();
  EXPECT_EQ(e.stream_id(), "case-1");
  EXPECT_EQ(e.event_id(), "ledgerctl-accounting_suspended-1767225600000005");
  EXPECT_EQ(std::vector<std::string>(e.subject_ids().begin(), e.subject_ids().end()),
            std::vector<std::string>{"client-1"});
  EXPECT_EQ(e.producer(), "ledgerctl");
  EXPECT_EQ(e.occurred_at().seconds(), 1767225600);
  EXPECT_EQ(e.accounting_suspended().form(), v1::SUSPENSION_FORM_WRITTEN);
  EXPECT_EQ(e.accounting_suspended().agency_kind(), v1::SUSPENDING_AGENCY_LAW_ENFORCEMENT);
  EXPECT_EQ(e.accounting_suspended().ends_at().seconds(), 1801353600);
  EXPECT_EQ(e.accounting_suspended().late_documentation().reason(), "entered from the paper file");
}

TEST(WorkflowEventTest, BadFlagsNameThemselves) {
  WorkflowEnvelope env;
  env.stream_id = "case-1";
  auto r = WorkflowEvent(env, "legal_hold_released", {{"scope", "case"}}, kNow);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "--scope: not a field of legal_hold_released");
  r = WorkflowEvent(env, "legal_hold_placed", {{"scope", "planet"}}, kNow);
  EXPECT_EQ(r.status().message(),
            "--scope: got \"planet\", want one of LEGAL_HOLD_SCOPE_CASE, LEGAL_HOLD_SCOPE_CLIENT");
  r = WorkflowEvent(env, "accounting_suspended", {{"ends_at", "soon"}}, kNow);
  EXPECT_EQ(r.status().message(),
            "--ends_at: got \"soon\", want a date (2026-01-31) or RFC 3339 time");
  env.subject_ids = {"client-9"};
  r = WorkflowEvent(env, "disagreement_filed", {{"request_id", "am-1"}}, kNow);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->event().subject_ids(0), "client-9");
}

TEST(ParseEventJsonTest, BareEventGetsDefaults) {
  auto r = ParseEventJson(
      R"({"event_id":"e1","stream_id":"c1","record_entry_written":{"text":"hi"}})", kNow);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->event().event_id(), "e1");
  EXPECT_EQ(r->event().producer(), "ledgerctl");
  EXPECT_EQ(r->event().occurred_at().seconds(), 1767225600);
  EXPECT_EQ(r->event().occurred_at().nanos(), 5000);
  EXPECT_FALSE(r->has_expected_version());
}

TEST(ParseEventJsonTest, AppendRequestKeepsGivenFields) {
  auto r = ParseEventJson(
      R"({"event":{"eventId":"e1","stream_id":"c1","producer":"p",)"
      R"("occurred_at":"2020-01-01T00:00:00Z","case_closed":{}},"expected_version":"3"})",
      kNow);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->event().producer(), "p");
  EXPECT_EQ(r->event().occurred_at().seconds(), 1577836800);
  ASSERT_TRUE(r->has_expected_version());
  EXPECT_EQ(r->expected_version(), 3u);
  EXPECT_TRUE(r->event().has_case_closed());
}

TEST(ParseEventJsonTest, UnknownFieldIsNamed) {
  auto e = ParseEventJson(R"({"event_id":"e1","bogus":1})", kNow);
  EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(e.status().message(), "Event: bogus: Cannot find field.");
  auto r = ParseEventJson(R"({"event":{"event_id":"e1","bogus":1}})", kNow);
  EXPECT_EQ(r.status().message(), "AppendRequest: (event) bogus: Cannot find field.");
  EXPECT_EQ(ParseEventJson(R"({"expected_version":1})", kNow).status().message(),
            "AppendRequest.event: must be set");
}

TEST(JsonTest, AllFieldsKeepsZeroes) {
  v1::Record r;
  r.set_event_id("e");
  EXPECT_EQ(ToJson(r), R"({"event_id":"e"})");
  std::string all = ToJson(r, /*all_fields=*/true);
  EXPECT_TRUE(absl::StartsWith(all, R"({"seq":"0","stream_id":"","version":"0","event_id":"e",)"))
      << all;
}

TEST(JsonTest, QuotesAndKeepsKeyOrder) {
  EXPECT_EQ(JsonQuote("a\"b\\c\nd\x01—"), "\"a\\\"b\\\\c\\nd\\u0001—\"");
  EXPECT_EQ(JsonObject().Add("z", uint64_t{1}).Add("a", "x").Add("ok", true).str(),
            R"({"z":1,"a":"x","ok":true})");
}

TEST(FormatTest, RecordBlock) {
  v1::Record r;
  r.set_seq(17);
  r.set_stream_id("case-1");
  r.set_version(3);
  r.set_event_id("a17");
  r.mutable_commit_time()->set_seconds(1767225600);
  r.mutable_commit_time()->set_nanos(123456000);
  r.set_leaf_hash(std::string(AsBytes(Sha256Of("x"))));
  v1::Event* e = r.mutable_event();
  e->set_producer("svc");
  e->add_subject_ids("c1");
  e->add_subject_ids("c2");
  e->mutable_occurred_at()->set_seconds(1767225599);
  e->mutable_record_entry_written()->set_text("hello \"you\"");
  r.add_withheld_fields("third_party_mentions");
  EXPECT_EQ(FormatRecordText(r),
            "seq 17  case-1@3  record_entry_written\n"
            "  event_id   a17\n"
            "  committed  2026-01-01T00:00:00.123456Z\n"
            "  occurred   2025-12-31T23:59:59.000000Z\n"
            "  producer   svc\n"
            "  subjects   c1, c2\n"
            "  leaf_hash  " +
                ShortHex(Sha256Of("x")) +
                "\n"
                "  body       {\"text\":\"hello \\\"you\\\"\"}\n"
                "  withheld   third_party_mentions\n");
}

TEST(FormatTest, AgeAndProgress) {
  EXPECT_EQ(FormatAge(absl::Seconds(4)), "4s");
  EXPECT_EQ(FormatAge(absl::Seconds(192)), "3m12s");
  EXPECT_EQ(FormatAge(absl::Hours(2) + absl::Minutes(5)), "2h5m");
  EXPECT_EQ(FormatAge(absl::Hours(76)), "3d4h");
  EXPECT_EQ(ProgressLine(500, 1000, absl::Seconds(2)),
            "[###############...............] 500/1000  50%  250 events/s");
  EXPECT_EQ(ProgressLine(30, 0, absl::Seconds(3)), "30 events  10 events/s");
}

// ---- verification ----

NoteSigner Signer(const std::string& name) {
  auto s = Ed25519Signer::FromSeed(std::string(32, '\x07'));
  EXPECT_TRUE(s.ok());
  auto n = NoteSigner::New(name, *std::move(s));
  EXPECT_TRUE(n.ok());
  return *std::move(n);
}

v1::Checkpoint SignedCheckpoint(const NoteSigner& signer, uint64_t size, const Hash& root) {
  Checkpoint c{signer.name(), size, root, {}};
  v1::Checkpoint out;
  out.set_size(size);
  out.set_root_hash(std::string(AsBytes(root)));
  out.set_note(*SignCheckpoint(c, signer));
  return out;
}

// One record, as the server would send it, and its leaf.
v1::Record MakeRecord(uint64_t seq) {
  CommittedPayload p = CommitFields({PayloadField{"text", "\x1a\x02hi", 0}});
  Record r;
  r.seq = seq;
  r.stream_id = "case-1";
  r.event_id = "e" + std::to_string(seq);
  r.producer = "p";
  r.event_type = "record_entry_written";
  r.payload_commitment = p.commitment;
  v1::Record out;
  out.set_seq(seq);
  out.set_stream_id("case-1");
  out.set_event_id(r.event_id);
  out.set_leaf(EncodeRecord(r));
  out.set_leaf_hash(std::string(AsBytes(LeafHash(out.leaf()))));
  out.set_payload(EncodePayload(p.payload));
  return out;
}

TEST(VerifyCheckpointTest, AcceptsTheSignedNoteOnly) {
  NoteSigner signer = Signer("example.org/log");
  auto verifier = LoadVerifier(signer.VerifierKey());
  ASSERT_TRUE(verifier.ok()) << verifier.status();
  v1::Checkpoint cp = SignedCheckpoint(signer, 5, Sha256Of("root"));
  auto opened = VerifyCheckpoint(cp, *verifier, "example.org/log");
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->size, 5u);

  EXPECT_EQ(VerifyCheckpoint(cp, *verifier, "other/log").status().code(),
            absl::StatusCode::kFailedPrecondition);
  v1::Checkpoint lying = cp;
  lying.set_size(6);
  EXPECT_EQ(VerifyCheckpoint(lying, *verifier, "example.org/log").status().message(),
            "checkpoint size: the response says 6, the signed note says 5");
  lying = cp;
  lying.mutable_note()->replace(lying.note().find("\n5\n"), 3, "\n7\n");
  EXPECT_EQ(VerifyCheckpoint(lying, *verifier, "example.org/log").status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(LoadVerifier("/no/such/file").status().code(), absl::StatusCode::kNotFound);
}

TEST(ProofTest, RecordInclusionAndConsistency) {
  v1::Record r0 = MakeRecord(0), r1 = MakeRecord(1);
  Hash l0 = LeafHash(r0.leaf()), l1 = LeafHash(r1.leaf());
  Checkpoint two{"o", 2, NodeHash(l0, l1), {}};
  v1::InclusionProof proof;
  proof.set_seq(1);
  proof.set_tree_size(2);
  proof.set_leaf_hash(std::string(AsBytes(l1)));
  proof.add_hashes(std::string(AsBytes(l0)));
  EXPECT_TRUE(CheckRecordMatchesProof(r1, proof).ok());
  EXPECT_TRUE(CheckInclusion(proof, two).ok());

  // The record is not the proven leaf.
  EXPECT_EQ(CheckRecordMatchesProof(r0, proof).message(), "record seq: got 0, want 1");
  v1::Record flipped = r1;
  (*flipped.mutable_leaf())[20] ^= 1;
  absl::Status s = CheckRecordMatchesProof(flipped, proof);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(s.message(), "record 1: SHA-256(0x00 || leaf) is " +
                             ShortHex(LeafHash(flipped.leaf())) + ", the proof's leaf_hash is " +
                             ShortHex(l1));
  v1::Record other_id = r1;
  other_id.set_event_id("zzz");
  EXPECT_EQ(CheckRecordMatchesProof(other_id, proof).message(),
            "record 1: event_id in the leaf is e1, the record says zzz");
  v1::Record other_payload = r1;
  other_payload.set_payload(r0.payload());  // fresh salts: another commitment
  EXPECT_EQ(CheckRecordMatchesProof(other_payload, proof).code(), absl::StatusCode::kDataLoss);

  // The proof does not lead to the signed root.
  v1::InclusionProof bad = proof;
  bad.set_hashes(0, std::string(AsBytes(l1)));
  EXPECT_EQ(CheckInclusion(bad, two).code(), absl::StatusCode::kDataLoss);
  bad.set_hashes(0, "short");
  EXPECT_EQ(CheckInclusion(bad, two).message(), "proof hashes[0]: got 5 bytes, want 32");

  Checkpoint one{"o", 1, l0, {}};
  v1::ConsistencyProof cproof;
  cproof.set_from_size(1);
  cproof.set_to_size(2);
  cproof.add_hashes(std::string(AsBytes(l1)));
  EXPECT_TRUE(CheckConsistency(cproof, one, two).ok());
  one.root = l1;
  EXPECT_EQ(CheckConsistency(cproof, one, two).code(), absl::StatusCode::kDataLoss);
}

TEST(ParseWhenTest, DateOrRfc3339ElseNamesTheFlag) {
  absl::StatusOr<absl::Time> day = ParseWhen("from", "2026-01-31");
  ASSERT_TRUE(day.ok()) << day.status();
  EXPECT_EQ(absl::ToUnixSeconds(*day), 1769817600);
  absl::StatusOr<absl::Time> t = ParseWhen("from", "2026-01-31T12:00:00.5Z");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(absl::ToUnixMillis(*t), 1769860800500);
  EXPECT_EQ(ParseWhen("until", "tomorrow").status().message(),
            "--until: got \"tomorrow\", want a date (2026-01-31) or RFC 3339 time");
}

}  // namespace
}  // namespace caseledger::ledgerctl
