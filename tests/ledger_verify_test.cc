// The auditor's verifier binary on a real data directory.
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
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

  testing::CommandResult Verify(std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {kVerify, "--data_dir=" + data_dir_, "--key=" + key_,
                                      "--origin=" + std::string(testing::kTestOrigin)};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return RunCommand(argv);
  }

  std::string data_dir_;
  std::string key_;
};

TEST_F(LedgerVerifyTest, IntactDirectoryVerifies) {
  testing::CommandResult r = Verify();
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(absl::StrContains(r.out, "records:       60 checked")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "checkpoints:   2 checked")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "OK: the ledger verifies")) << r.out;

  r = Verify({"--json"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(absl::StartsWith(r.out, "{\"ok\":true,\"tree_size\":60,\"records_checked\":60,"))
      << r.out;
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

}  // namespace
}  // namespace caseledger
