// The caseledger_keys binary on a real data directory: key generation,
// rotation (wrong and right --old) and offline subject erasure.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "ledger/key_store.h"
#include "ledger/rocks_store.h"
#include "tests/subprocess.h"
#include "tests/test_util.h"

namespace caseledger {
namespace {

using testing::RunCommand;

constexpr char kTool[] = "tools/caseledger_keys";

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

TEST(CaseledgerKeysTest, GenerateRotateErase) {
  std::string data_dir = testing::NewTempDir("keys-tool");
  std::string key_dir = testing::NewTempDir("keys-tool-keys");
  std::string old_key = key_dir + "/old.key", new_key = key_dir + "/new.key";

  testing::CommandResult g = RunCommand({kTool, "generate-master-key", "--out=" + old_key});
  ASSERT_EQ(g.exit_code, 0) << g.err;
  EXPECT_TRUE(absl::StartsWith(g.out, "master key id ")) << g.out;
  g = RunCommand({kTool, "generate-master-key", "--out=" + old_key});
  EXPECT_EQ(g.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(g.err, "does it exist already?")) << g.err;
  ASSERT_EQ(RunCommand({kTool, "generate-master-key", "--out=" + new_key}).exit_code, 0);

  // Three subject-case data keys under the old master key.
  auto old_master = LoadMasterKey(old_key, nullptr);
  ASSERT_TRUE(old_master.ok()) << old_master.status();
  {
    RocksStoreOptions o;
    o.path = data_dir + "/ledger";
    auto store = OpenRocksStore(o);
    ASSERT_TRUE(store.ok());
    auto keys = KeyStore::Open((*store)->keys(), *old_master);
    ASSERT_TRUE(keys.ok());
    for (const char* stream : {"case-1", "case-2"}) {
      Event e = testing::TestEvent(absl::StrCat("e-", stream), stream);
      e.subject_ids = {"client-1"};
      if (std::string(stream) == "case-2") e.subject_ids.push_back("client-2");
      CommittedPayload p = CommitFields(e.fields);
      std::vector<KeyWrite> unused;
      ASSERT_TRUE((*keys)->Seal(e, &p, &unused).ok());
    }
  }

  testing::CommandResult r = RunCommand({kTool, "rotate-master-key", "--data_dir=" + data_dir,
                                         "--old=" + new_key, "--new=" + old_key});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "rotate: FAILED_PRECONDITION: --old: got master key id"))
      << r.err;
  r = RunCommand({kTool, "rotate-master-key", "--data_dir=" + data_dir, "--old=" + old_key,
                  "--new=" + new_key});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StartsWith(r.out, "re-wrapped 3 data keys from master key id ")) << r.out;

  // The old key no longer opens the store; erasing needs the new one.
  r = RunCommand({kTool, "erase-subject", "--data_dir=" + data_dir,
                  "--master_key_file=" + old_key, "--subject=client-1"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "key store: FAILED_PRECONDITION: master key: got key id"))
      << r.err;
  r = RunCommand({kTool, "erase-subject", "--data_dir=" + data_dir,
                  "--master_key_file=" + new_key, "--subject=client-1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StartsWith(
      r.out, "destroyed 2 data keys of subject \"client-1\" and purged them from the files; "
             "the server rebuilds its read models when it next starts."))
      << r.out;
  // The marker that makes the server rebuild its read models before serving.
  EXPECT_TRUE(std::filesystem::exists(data_dir + "/projections.reproject"));

  r = RunCommand({kTool, "rotate-master-key", "--data_dir=" + data_dir});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(absl::StartsWith(r.err, "caseledger_keys: rotate-master-key needs --old=FILE"))
      << r.err;
  EXPECT_NE(ReadAll(old_key), ReadAll(new_key));
}

}  // namespace
}  // namespace caseledger
