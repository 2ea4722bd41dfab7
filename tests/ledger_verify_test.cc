// The auditor's verifier binary on a real data directory: the tamper drills
// (flip a byte in a record, a payload, a Merkle node, a checkpoint; delete,
// swap, truncate; roll back; fork with the same key), each named by seq.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "ledger/checkpoint.h"
#include "tests/subprocess.h"
#include "tests/test_util.h"

namespace caseledger {
namespace {

using testing::RunCommand;

constexpr char kVerify[] = "tools/ledger_verify";

class LedgerVerifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_dir_ = testing::NewTempDir("verify-tool");
    LedgerOptions options;
    options.checkpoint_every_records = 25;
    auto t = testing::OpenTestLedger(data_dir_ + "/ledger", options);
    ASSERT_TRUE(t.ok()) << t.status();
    for (int i = 0; i < 60; ++i) {
      ASSERT_TRUE((*t)->Append({testing::TestEvent(absl::StrCat("e", i), "case-1")}).ok());
    }
    key_ = testing::TestNoteSigner().VerifierKey();
  }

  testing::CommandResult Verify(std::vector<std::string> extra = {}, std::string dir = "") {
    std::vector<std::string> argv = {kVerify, "--data_dir=" + (dir.empty() ? data_dir_ : dir),
                                      "--key=" + key_,
                                      "--origin=" + std::string(testing::kTestOrigin)};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return RunCommand(argv);
  }

  // Appends `n` more events (ids from `prefix`) to a ledger in `dir`.
  void Grow(const std::string& dir, const std::string& prefix, int n, size_t payload = 64) {
    LedgerOptions options;
    options.checkpoint_every_records = 25;
    auto t = testing::OpenTestLedger(dir + "/ledger", options);
    ASSERT_TRUE(t.ok()) << t.status();
    for (int i = 0; i < n; ++i) {
      ASSERT_TRUE(
          (*t)->Append({testing::TestEvent(absl::StrCat(prefix, i), "case-1", payload)}).ok());
    }
    ASSERT_TRUE((*t)->Checkpoint().ok());
  }

  std::string Ledger() const { return data_dir_ + "/ledger"; }

  void Flip(const std::string& family, const std::string& key, size_t at, char mask) {
    auto v = testing::RawGet(Ledger(), family, key);
    ASSERT_TRUE(v.ok()) << v.status();
    std::string bad = *v;
    ASSERT_LT(at, bad.size());
    bad[at] ^= mask;
    ASSERT_TRUE(testing::RawPut(Ledger(), family, key, bad).ok());
  }

  static std::string ReadFile(const std::string& path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }

  std::string data_dir_;
  std::string key_;
};

std::string NodeKey(int level, uint64_t index) {
  return std::string(1, static_cast<char>(level)) + testing::SeqKey(index);
}

TEST_F(LedgerVerifyTest, IntactDirectoryVerifies) {
  testing::CommandResult r = Verify();
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(absl::StrContains(r.out, "records:       60 checked")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "checkpoints:   2 checked")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "subject index: 2 checkpoint roots recomputed")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "OK: the ledger verifies")) << r.out;

  r = Verify({"--json"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(absl::StartsWith(r.out, "{\"ok\":true,\"tree_size\":60,\"records_checked\":60,"))
      << r.out;
}

// A log that hides records from a subject's index signs a subjects root its
// records do not give: here the checkpoint at 50 is re-signed (with the
// log's own key) carrying the subjects root of the checkpoint at 25.
TEST_F(LedgerVerifyTest, SignedSubjectsRootThatTheRecordsDoNotGiveIsNamed) {
  const NoteVerifier verifier = testing::TestNoteVerifier();
  auto note25 = testing::RawGet(Ledger(), "checkpoints", testing::SeqKey(25));
  auto note50 = testing::RawGet(Ledger(), "checkpoints", testing::SeqKey(50));
  ASSERT_TRUE(note25.ok() && note50.ok());
  auto cp25 = OpenCheckpoint(*note25, verifier, testing::kTestOrigin);
  auto cp50 = OpenCheckpoint(*note50, verifier, testing::kTestOrigin);
  ASSERT_TRUE(cp25.ok() && cp50.ok());
  ASSERT_NE(cp25->extensions, cp50->extensions);
  Checkpoint forged = *cp50;
  forged.extensions = cp25->extensions;
  auto note = SignCheckpoint(forged, testing::TestNoteSigner());
  ASSERT_TRUE(note.ok()) << note.status();
  ASSERT_TRUE(testing::RawPut(Ledger(), "checkpoints", testing::SeqKey(50), *note).ok());

  testing::CommandResult r = Verify();
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(absl::StrContains(r.out, "subjects root: signed ")) << r.out;
}

TEST_F(LedgerVerifyTest, TamperedRecordFailsNamingTheSeq) {
  auto leaf = testing::RawGet(data_dir_ + "/ledger", "records", testing::SeqKey(33));
  ASSERT_TRUE(leaf.ok());
  std::string bad = *leaf;
  bad[20] ^= 0x40;  // inside prev_hash
  ASSERT_TRUE(testing::RawPut(data_dir_ + "/ledger", "records", testing::SeqKey(33), bad).ok());
  testing::CommandResult r = Verify({"--keep_going"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(absl::StrContains(r.out, "FAIL at seq 33: record 33: prev_hash ")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "FAIL at seq 49: checkpoint at size 50: signed root "))
      << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "FAILED: DATA_LOSS: record 33: prev_hash")) << r.out;
}

TEST_F(LedgerVerifyTest, WrongKeyOrMissingKeyIsRefused) {
  testing::CommandResult r =
      RunCommand({kVerify, "--data_dir=" + data_dir_, "--origin=caseledger.test/log",
                  "--key=other+01020304+AQ" + std::string(42, 'A') + "="});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_TRUE(absl::StartsWith(r.err, "ledger_verify: --key: INVALID_ARGUMENT")) << r.err;

  r = RunCommand({kVerify, "--data_dir=" + data_dir_});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(absl::StartsWith(r.err, "ledger_verify: --key is required")) << r.err;
}

TEST_F(LedgerVerifyTest, FlippedByteInAPayloadIsNamed) {
  auto payload = testing::RawGet(Ledger(), "payloads", testing::SeqKey(7));
  ASSERT_TRUE(payload.ok());
  Flip("payloads", testing::SeqKey(7), payload->size() - 3, 0x01);  // in the value
  testing::CommandResult r = Verify();
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(absl::StrContains(r.out, "FAIL at seq 7: record 7: field \"note\": ")) << r.out;
}

TEST_F(LedgerVerifyTest, FlippedByteInAMerkleNodeIsNamed) {
  Flip("nodes", NodeKey(3, 2), 0, 0x80);  // level 3, index 2: records 16..23
  testing::CommandResult r = Verify();
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(absl::StrContains(
      r.out, "FAIL at seq 16: Merkle node (level 3, index 2) over records 16..23: stored "))
      << r.out;
  // A leaf node too.
  Flip("nodes", NodeKey(0, 41), 31, 0x01);
  r = Verify();
  EXPECT_TRUE(absl::StrContains(r.out, "FAIL at seq 41: record 41: leaf hash ")) << r.out;
}

TEST_F(LedgerVerifyTest, FlippedByteInACheckpointIsNamed) {
  auto note = testing::RawGet(Ledger(), "checkpoints", testing::SeqKey(25));
  ASSERT_TRUE(note.ok());
  Flip("checkpoints", testing::SeqKey(25), note->size() - 5, 0x01);  // the signature
  testing::CommandResult r = Verify();
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(absl::StrContains(r.out, "FAIL at seq 24: checkpoint at size 25: ")) << r.out;
}

TEST_F(LedgerVerifyTest, DeletedSwappedAndTruncatedRecordsAreNamed) {
  std::string backup = data_dir_ + "-backup";
  std::filesystem::copy(data_dir_, backup, std::filesystem::copy_options::recursive);

  ASSERT_TRUE(testing::RawDelete(Ledger(), "records", testing::SeqKey(30)).ok());
  testing::CommandResult r = Verify();
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.out, "FAIL at seq 30: record 30 is missing")) << r.out;

  std::filesystem::remove_all(data_dir_);
  std::filesystem::copy(backup, data_dir_, std::filesystem::copy_options::recursive);
  auto a = testing::RawGet(Ledger(), "records", testing::SeqKey(10));
  auto b = testing::RawGet(Ledger(), "records", testing::SeqKey(11));
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(testing::RawPut(Ledger(), "records", testing::SeqKey(10), *b).ok());
  ASSERT_TRUE(testing::RawPut(Ledger(), "records", testing::SeqKey(11), *a).ok());
  r = Verify();
  EXPECT_TRUE(absl::StrContains(r.out, "FAIL at seq 10: record 10: holds seq 11")) << r.out;

  std::filesystem::remove_all(data_dir_);
  std::filesystem::copy(backup, data_dir_, std::filesystem::copy_options::recursive);
  for (int seq = 55; seq < 60; ++seq) {
    ASSERT_TRUE(testing::RawDelete(Ledger(), "records", testing::SeqKey(seq)).ok());
  }
  r = Verify();
  EXPECT_TRUE(absl::StrContains(r.out, "FAIL at seq 55: records end at seq 55 but the tree "
                                       "size is 60"))
      << r.out;
}

TEST_F(LedgerVerifyTest, IncrementalAuditRollbackAndFork) {
  // The auditor verifies and keeps the newest note (checkpoints are at 25
  // and 50; records 50..59 are not signed yet).
  std::string note = data_dir_ + "-note";
  testing::CommandResult r = Verify({"--save_note=" + note});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  ASSERT_TRUE(absl::StartsWith(ReadFile(note), absl::StrCat(testing::kTestOrigin, "\n50\n")));

  // A copy of the directory as it is now, for the rollback below.
  std::string old_copy = data_dir_ + "-old";
  std::filesystem::copy(data_dir_, old_copy, std::filesystem::copy_options::recursive);

  // The ledger grows; the next audit reads only the 40 records after 50.
  Grow(data_dir_, "more", 30);
  r = Verify({"--since=" + note, "--save_note=" + note, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(absl::StartsWith(r.out, "{\"ok\":true,\"tree_size\":90,\"records_checked\":40,"))
      << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "\"first_seq\":50,")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "\"since_size\":50,\"since_checked\":true")) << r.out;
  ASSERT_TRUE(absl::StartsWith(ReadFile(note), absl::StrCat(testing::kTestOrigin, "\n90\n")));

  // The operator puts the old copy back: a valid ledger on its own...
  r = Verify({}, old_copy);
  EXPECT_EQ(r.exit_code, 0) << r.out;
  // ...but not for an auditor who has seen size 90.
  r = Verify({"--since=" + note}, old_copy);
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out,
                                "FAIL at seq 59: the tree size is 60, below your checkpoint's "
                                "size 90: the ledger was rolled back or cut short"))
      << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "since:         your checkpoint at size 90 does NOT hold"))
      << r.out;

  // A fork: a different history of the same size, signed with the same key.
  std::string fork = testing::NewTempDir("verify-tool-fork");
  Grow(fork, "other", 90, 70);
  r = Verify({}, fork);
  EXPECT_EQ(r.exit_code, 0) << r.out;
  r = Verify({"--since=" + note}, fork);
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "FAIL at seq 89: the stored tree at your checkpoint's "
                                       "size 90 has root "))
      << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "the log was forked or rewritten")) << r.out;
}

TEST_F(LedgerVerifyTest, BadSinceNoteIsAUsageError) {
  std::string note = data_dir_ + "-bad-note";
  std::ofstream(note) << "caseledger.test/log\n60\nnot base64\n\n";
  testing::CommandResult r = Verify({"--since=" + note});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_TRUE(absl::StartsWith(r.err, "ledger_verify: --since: INVALID_ARGUMENT")) << r.err;
  r = Verify({"--bundle=/nonexistent"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(absl::StartsWith(r.err, "ledger_verify: give --bundle or --data_dir, not both"))
      << r.err;
}

}  // namespace
}  // namespace caseledger
