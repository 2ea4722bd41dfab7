#include "ledger/witness.h"

#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ledger/checkpoint.h"
#include "ledger/cosignature.h"
#include "ledger/hash.h"
#include "ledger/merkle_tree.h"
#include "ledger/signer.h"
#include "ledger/subject_index.h"
#include "ledger/subject_transition.h"
#include "tests/record_log.h"

namespace caseledger {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr char kOrigin[] = "witness.test/log";

NoteSigner LogSigner() {
  auto key = Ed25519Signer::FromSeed(std::string(32, '\x11'));
  auto s = NoteSigner::New(kOrigin, *std::move(key));
  EXPECT_TRUE(s.ok()) << s.status();
  return *std::move(s);
}

Cosigner WitnessKey() {
  auto key = Ed25519Signer::FromSeed(std::string(32, '\x22'));
  auto c = Cosigner::New("witness.test/w", *std::move(key));
  EXPECT_TRUE(c.ok()) << c.status();
  return *std::move(c);
}

// An in-memory log of real records naming a few subjects, whose checkpoints
// carry the subjects root.
class FakeLog {
 public:
  explicit FakeLog(std::string tag) : tag_(tag), log_(std::move(tag)) {}
  void Grow(uint64_t n) {
    for (uint64_t i = 0; i < n; ++i) {
      const uint64_t seq = log_.size();
      std::vector<std::string> subjects = {absl::StrCat(tag_, "-client-", seq % 3)};
      if (seq % 4 == 0) subjects.push_back(absl::StrCat("new-", seq));
      log_.Add(subjects);
    }
  }
  // The checkpoint of the whole log; `subjects` replaces its subjects root,
  // and no subjects line at all when `with_subjects` is false.
  std::string Note(const NoteSigner& signer, std::optional<Hash> subjects = std::nullopt,
                   bool with_subjects = true) const {
    SubjectTransitionEnd end = log_.End(log_.size());
    Checkpoint c{kOrigin, end.size, end.root, {}};
    if (with_subjects)
      c.extensions.push_back(SubjectsExtensionLine(subjects.value_or(end.subjects_root)));
    auto note = SignCheckpoint(c, signer);
    EXPECT_TRUE(note.ok()) << note.status();
    return *note;
  }
  ConsistencyProofSource Proofs() const {
    return [this](uint64_t from, uint64_t to) -> absl::StatusOr<std::vector<Hash>> {
      MerkleTree tree;
      InMemoryNodeStore nodes;
      for (uint64_t i = 0; i < to; ++i) {
        std::vector<NodeWrite> writes;
        tree.Append(LeafHash(log_.records()[i]), &writes);
        nodes.PutAll(writes);
      }
      return ConsistencyProof(from, to, nodes);
    };
  }
  // The honest transition to the whole log.
  SubjectTransitionSource Transitions() const {
    return [this](uint64_t from, uint64_t to) -> absl::StatusOr<SubjectTransition> {
      if (to != log_.size()) return absl::FailedPreconditionError("not the latest size");
      return log_.TransitionFrom(from);
    };
  }
  Hash Root() const { return log_.End(log_.size()).root; }
  Hash SubjectsRoot(uint64_t size) const { return log_.End(size).subjects_root; }

 private:
  std::string tag_;
  testing::RecordLog log_;
};

class WitnessTest : public ::testing::Test {
 protected:
  WitnessTest()
      : signer_(LogSigner()),
        log_verifier_(*NoteVerifier::FromVerifierKey(signer_.VerifierKey())),
        cosigner_(WitnessKey()),
        cosig_verifier_(*CosignatureVerifier::FromVerifierKey(cosigner_.VerifierKey())) {}

  absl::StatusOr<WitnessResult> Witness(const FakeLog& log, uint64_t time = 1000) {
    return WitnessCheckpoint(log_verifier_, log.Note(signer_), log.Proofs(), log.Transitions(),
                             cosigner_, time, &state_);
  }

  NoteSigner signer_;
  NoteVerifier log_verifier_;
  Cosigner cosigner_;
  CosignatureVerifier cosig_verifier_;
  WitnessState state_;
};

TEST_F(WitnessTest, CosignsFirstSightThenGrowth) {
  FakeLog log("a");
  log.Grow(5);
  absl::StatusOr<WitnessResult> r = Witness(log, 1000);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->previous.has_value());
  EXPECT_EQ(r->checkpoint.size, 5u);
  EXPECT_EQ(cosig_verifier_.Verify(r->cosigned_note)->timestamp, 1000u);
  EXPECT_TRUE(log_verifier_.Open(r->cosigned_note).ok());

  log.Grow(12);
  r = Witness(log, 1001);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r->previous.has_value());
  EXPECT_EQ(r->previous->size, 5u);
  EXPECT_EQ(r->checkpoint.size, 17u);
  EXPECT_EQ(cosig_verifier_.Verify(r->cosigned_note)->timestamp, 1001u);
  EXPECT_EQ(*state_.Note(kOrigin), log.Note(signer_));

  // The same checkpoint again is re-cosigned with the newer time.
  r = Witness(log, 1002);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(cosig_verifier_.Verify(r->cosigned_note)->timestamp, 1002u);
}

TEST_F(WitnessTest, RefusesRollbackAndKeepsState) {
  FakeLog small("a");
  small.Grow(3);
  FakeLog big("a");
  big.Grow(9);
  ASSERT_TRUE(Witness(big).ok());
  std::string before = state_.Encode();
  absl::StatusOr<WitnessResult> r = Witness(small);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(
      r.status().message(),
      AllOf(HasSubstr("rollback: log witness.test/log now shows a smaller tree (size 3 root "),
            HasSubstr(ToHex(small.Root())), HasSubstr("already verified (size 9 root "),
            HasSubstr(ToHex(big.Root())), HasSubstr("refusing to cosign")));
  EXPECT_EQ(state_.Encode(), before);
}

TEST_F(WitnessTest, RefusesTwoRootsAtTheSameSize) {
  FakeLog a("a"), b("b");
  a.Grow(6);
  b.Grow(6);
  ASSERT_TRUE(Witness(a).ok());
  std::string before = state_.Encode();
  absl::StatusOr<WitnessResult> r = Witness(b);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(r.status().message(),
              AllOf(HasSubstr("fork: log witness.test/log shows two roots at size 6: witnessed "),
                    HasSubstr(ToHex(a.Root())), HasSubstr(ToHex(b.Root()))));
  EXPECT_EQ(state_.Encode(), before);
}

TEST_F(WitnessTest, RefusesLargerTreeThatDoesNotExtendTheWitnessedOne) {
  FakeLog a("a"), b("b");
  a.Grow(6);
  b.Grow(10);
  ASSERT_TRUE(Witness(a).ok());
  std::string before = state_.Encode();
  absl::StatusOr<WitnessResult> r = Witness(b);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(r.status().message(),
              AllOf(HasSubstr("fork: log witness.test/log checkpoint size 10 root "),
                    HasSubstr("is not consistent with the witnessed size 6 root ")));
  EXPECT_EQ(state_.Encode(), before);

  // A proof that is simply wrong (from another tree) is refused the same way,
  // even if the log serves it for a genuine extension.
  FakeLog a2("a");
  a2.Grow(10);
  r = WitnessCheckpoint(log_verifier_, a2.Note(signer_), b.Proofs(), a2.Transitions(), cosigner_, 5,
                        &state_);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(state_.Encode(), before);
  // And the right proof is accepted.
  r = WitnessCheckpoint(log_verifier_, a2.Note(signer_), a2.Proofs(), a2.Transitions(), cosigner_,
                        5, &state_);
  EXPECT_TRUE(r.ok()) << r.status();
}

TEST_F(WitnessTest, RefusesNotesTheLogDidNotSign) {
  FakeLog a("a");
  a.Grow(4);
  auto other = NoteSigner::New(kOrigin, *Ed25519Signer::FromSeed(std::string(32, '\x33')));
  ASSERT_TRUE(other.ok());
  absl::StatusOr<WitnessResult> r = WitnessCheckpoint(log_verifier_, a.Note(*other), a.Proofs(),
                                                      a.Transitions(), cosigner_, 1, &state_);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(r.status().message(), HasSubstr("checkpoint from the log: note has no signature"));
  EXPECT_FALSE(state_.Note(kOrigin).has_value());
}

TEST_F(WitnessTest, ProofErrorsArePassedOnWithContext) {
  FakeLog a("a");
  a.Grow(4);
  ASSERT_TRUE(Witness(a).ok());
  a.Grow(4);
  absl::StatusOr<WitnessResult> r = WitnessCheckpoint(
      log_verifier_, a.Note(signer_),
      [](uint64_t, uint64_t) -> absl::StatusOr<std::vector<Hash>> {
        return absl::UnavailableError("connection refused");
      },
      a.Transitions(), cosigner_, 1, &state_);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(r.status().message(), HasSubstr("consistency proof 4 -> 8: connection refused"));
  r = WitnessCheckpoint(
      log_verifier_, a.Note(signer_), a.Proofs(),
      [](uint64_t, uint64_t) -> absl::StatusOr<SubjectTransition> {
        return absl::UnavailableError("connection reset");
      },
      cosigner_, 1, &state_);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(r.status().message(), HasSubstr("subjects transition 4 -> 8: connection reset"));
}

// The attack: the log's own key signs a checkpoint with the right
// size and tree root but the subjects root of an older checkpoint, which
// hides the newest records from their subjects' histories.
TEST_F(WitnessTest, RefusesAStaleSubjectsRootSignedByTheLog) {
  FakeLog log("a");
  log.Grow(5);
  ASSERT_TRUE(Witness(log).ok());
  const std::string before = state_.Encode();
  log.Grow(7);
  const std::string forged = log.Note(signer_, log.SubjectsRoot(5));
  absl::StatusOr<WitnessResult> r = WitnessCheckpoint(log_verifier_, forged, log.Proofs(),
                                                      log.Transitions(), cosigner_, 7, &state_);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(r.status().message(),
              AllOf(HasSubstr("subjects: log witness.test/log checkpoint size 12 root "),
                    HasSubstr("does not follow from size 5: "),
                    HasSubstr(absl::StrCat("subjects root does not follow from records [5, 12): "
                                           "computed ",
                                           ToHex(log.SubjectsRoot(12)), ", checkpoint says ",
                                           ToHex(log.SubjectsRoot(5)))),
                    HasSubstr("refusing to cosign")));
  EXPECT_EQ(state_.Encode(), before);
  // The honest checkpoint of the same tree is cosigned.
  r = Witness(log, 8);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->subjects.records, 7u);
  EXPECT_TRUE(cosig_verifier_.Verify(r->cosigned_note).ok());
}

TEST_F(WitnessTest, FirstCheckpointIsVerifiedFromNothing) {
  FakeLog log("a");
  log.Grow(9);
  absl::StatusOr<WitnessResult> r =
      WitnessCheckpoint(log_verifier_, log.Note(signer_, log.SubjectsRoot(8)), log.Proofs(),
                        log.Transitions(), cosigner_, 1, &state_);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(r.status().message(),
              HasSubstr("subjects root does not follow from records [0, 9): computed "));
  EXPECT_FALSE(state_.Note(kOrigin).has_value());
  r = Witness(log);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->subjects.records, 9u);
}

TEST_F(WitnessTest, RefusesACheckpointWithoutASubjectsLine) {
  FakeLog log("a");
  log.Grow(3);
  absl::StatusOr<WitnessResult> r =
      WitnessCheckpoint(log_verifier_, log.Note(signer_, std::nullopt, false), log.Proofs(),
                        log.Transitions(), cosigner_, 1, &state_);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(r.status().message(), HasSubstr("has no subjects line; refusing to cosign"));
  EXPECT_FALSE(state_.Note(kOrigin).has_value());
}

TEST_F(WitnessTest, RefusesATransitionThatLeavesOutARecord) {
  FakeLog log("a");
  log.Grow(4);
  ASSERT_TRUE(Witness(log).ok());
  log.Grow(4);
  SubjectTransitionSource short_one = [&](uint64_t from, uint64_t to) {
    absl::StatusOr<SubjectTransition> t = log.Transitions()(from, to);
    if (t.ok()) t->records.pop_back();
    return t;
  };
  absl::StatusOr<WitnessResult> r = WitnessCheckpoint(
      log_verifier_, log.Note(signer_), log.Proofs(), short_one, cosigner_, 1, &state_);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(r.status().message(), HasSubstr("got 3 records, want 4 (records [4, 8))"));
  EXPECT_THAT(*state_.Note(kOrigin), HasSubstr("\n4\n"));  // still the size-4 checkpoint
}

TEST(WitnessStateTest, EncodeDecodeSaveLoad) {
  FakeLog a("a");
  a.Grow(3);
  NoteSigner signer = LogSigner();
  WitnessState s;
  s.Set(kOrigin, a.Note(signer));
  std::string text = s.Encode();
  EXPECT_EQ(text, absl::StrCat("caseledger-witness-state/v1\ncheckpoint ", a.Note(signer).size(),
                               "\n", a.Note(signer)));
  absl::StatusOr<WitnessState> back = WitnessState::Decode(text);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->Encode(), text);

  std::string dir = ::testing::TempDir();
  std::string path = absl::StrCat(dir, "/witness_state_test.state");
  std::remove(path.c_str());
  absl::StatusOr<WitnessState> empty = WitnessState::Load(path);
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_FALSE(empty->Note(kOrigin).has_value());
  ASSERT_TRUE(s.Save(path).ok());
  absl::StatusOr<WitnessState> loaded = WitnessState::Load(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(*loaded->Note(kOrigin), a.Note(signer));
  struct stat st;
  ASSERT_EQ(stat(absl::StrCat(path, ".tmp.", getpid()).c_str(), &st), -1);  // no leftover
}

TEST(WitnessStateTest, DecodeRefusesDamage) {
  FakeLog a("a");
  a.Grow(3);
  WitnessState s;
  s.Set(kOrigin, a.Note(LogSigner()));
  std::string good = s.Encode();
  for (const std::string& bad :
       {std::string("nope\n"), good.substr(0, good.size() - 1),
        absl::StrCat(good, "checkpoint x\n"), absl::StrCat(good, good.substr(28)),
        absl::StrCat("caseledger-witness-state/v1\ncheckpoint 5\nhello")}) {
    absl::StatusOr<WitnessState> d = WitnessState::Decode(bad);
    EXPECT_EQ(d.status().code(), absl::StatusCode::kDataLoss) << absl::CEscape(bad);
    EXPECT_THAT(d.status().message(), HasSubstr("witness state: byte ")) << absl::CEscape(bad);
  }
}

// --- c2sp.org/tlog-witness add-checkpoint ---------------------------------

std::vector<NoteVerifier> KnownLogs() {
  std::vector<NoteVerifier> logs;
  logs.push_back(*NoteVerifier::FromVerifierKey(LogSigner().VerifierKey()));
  return logs;
}

AddCheckpointRequest Request(const FakeLog& log, uint64_t old_size, const NoteSigner& signer) {
  AddCheckpointRequest req;
  req.old_size = old_size;
  req.note = log.Note(signer);
  if (old_size > 0) {
    auto cp = ParseCheckpointNote(req.note);
    req.proof = *log.Proofs()(old_size, cp->size);
  }
  return req;
}

TEST(AddCheckpointTest, RequestBodyRoundTripsAndRefusesMalformedBodies) {
  AddCheckpointRequest req;
  req.old_size = 20852014;
  req.proof = {Sha256Of("a"), Sha256Of("b")};
  req.note = "example.com/log\n5\nAAAA\n\n— x y\n";
  const std::string body = FormatAddCheckpointRequest(req);
  EXPECT_EQ(body.substr(0, 13), "old 20852014\n");
  auto back = ParseAddCheckpointRequest(body);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->old_size, req.old_size);
  EXPECT_EQ(back->proof, req.proof);
  EXPECT_EQ(back->note, req.note);
  for (const char* bad :
       {"old 01\n\nnote", "old\n\nnote", "new 1\n\nnote", "old 1\nnot base64\n\nnote",
        "old 1\nYQ==\n\nnote", "old 1\n", "old 0\n\n", "old -1\n\nnote"}) {
    EXPECT_EQ(ParseAddCheckpointRequest(bad).status().code(), absl::StatusCode::kInvalidArgument)
        << bad;
  }
  std::string long_proof = "old 1\n";
  for (int i = 0; i < 64; ++i)
    absl::StrAppend(&long_proof, absl::Base64Escape(AsBytes(Sha256Of("x"))), "\n");
  EXPECT_THAT(ParseAddCheckpointRequest(long_proof + "\nnote").status().message(),
              HasSubstr("more than 63 proof lines"));
}

TEST(AddCheckpointTest, CosignsFromZeroThenOnlyFromTheRememberedSize) {
  NoteSigner signer = LogSigner();
  Cosigner cosigner = WitnessKey();
  auto logs = KnownLogs();
  FakeLog log("a");
  log.Grow(5);
  WitnessState state;
  uint64_t known = 99;
  auto r =
      WitnessAddCheckpoint(logs, Request(log, 0, signer), cosigner, 1700000000, &state, &known);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(known, 0u);
  // The response lines are cosignatures that verify on the checkpoint.
  auto verifier = CosignatureVerifier::FromVerifierKey(cosigner.VerifierKey());
  auto cs = verifier->Verify(log.Note(signer) + r->signature_lines);
  ASSERT_TRUE(cs.ok()) << cs.status();
  EXPECT_EQ(cs->timestamp, 1700000000u);

  log.Grow(7);
  // Stale old size: 409 with the remembered size; state untouched.
  auto stale =
      WitnessAddCheckpoint(logs, Request(log, 0, signer), cosigner, 1700000001, &state, &known);
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(known, 5u);
  EXPECT_EQ(ParseCheckpointNote(*state.Note(kOrigin))->size, 5u);
  // A proof that does not verify: 422 (DATA_LOSS).
  AddCheckpointRequest forged = Request(log, 5, signer);
  forged.proof[0][0] ^= 1;
  auto bad = WitnessAddCheckpoint(logs, forged, cosigner, 1700000001, &state, &known);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kDataLoss) << bad.status();
  EXPECT_EQ(ParseCheckpointNote(*state.Note(kOrigin))->size, 5u);
  // The right proof from the remembered size.
  auto good =
      WitnessAddCheckpoint(logs, Request(log, 5, signer), cosigner, 1700000002, &state, &known);
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_EQ(ParseCheckpointNote(*state.Note(kOrigin))->size, 12u);
  // Old size above the checkpoint's: 400.
  AddCheckpointRequest ahead = Request(log, 0, signer);
  ahead.old_size = 13;
  EXPECT_EQ(WitnessAddCheckpoint(logs, ahead, cosigner, 1, &state, &known).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(AddCheckpointTest, UnknownLogBadSignatureAndForkAtTheSameSize) {
  NoteSigner signer = LogSigner();
  Cosigner cosigner = WitnessKey();
  auto logs = KnownLogs();
  FakeLog log("a");
  log.Grow(4);
  WitnessState state;
  uint64_t known = 0;
  // Another key under the same origin: 403.
  auto other_key = Ed25519Signer::FromSeed(std::string(32, '\x33'));
  NoteSigner impostor = *NoteSigner::New(kOrigin, *std::move(other_key));
  auto forbidden =
      WitnessAddCheckpoint(logs, Request(log, 0, impostor), cosigner, 1, &state, &known);
  EXPECT_EQ(forbidden.status().code(), absl::StatusCode::kPermissionDenied) << forbidden.status();
  // Another origin: 404.
  auto stranger_key = Ed25519Signer::FromSeed(std::string(32, '\x44'));
  NoteSigner stranger = *NoteSigner::New("other.test/log", *std::move(stranger_key));
  AddCheckpointRequest req;
  req.note = *SignCheckpoint({"other.test/log", 1, Sha256Of("x"), {}}, stranger);
  EXPECT_EQ(WitnessAddCheckpoint(logs, req, cosigner, 1, &state, &known).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_FALSE(state.Note(kOrigin).has_value());
  // A fork at the remembered size: 409.
  ASSERT_TRUE(
      WitnessAddCheckpoint(logs, Request(log, 0, signer), cosigner, 1, &state, &known).ok());
  FakeLog fork("b");
  fork.Grow(4);
  AddCheckpointRequest same_size = Request(fork, 4, signer);
  auto conflict = WitnessAddCheckpoint(logs, same_size, cosigner, 2, &state, &known);
  EXPECT_EQ(conflict.status().code(), absl::StatusCode::kAborted);
  EXPECT_THAT(conflict.status().message(), HasSubstr("fork"));
  EXPECT_EQ(known, 4u);
}

}  // namespace
}  // namespace caseledger
