// An erasure cut short by kill -9 (ledger/ENCRYPTION.md "Crash safety"): the
// writer marks the read models stale naming the subject and destroys its
// keys, and is killed before it re-derives anything. Opening the data
// directory must finish the erasure by re-deriving the subject's cases only
// (PROJECTIONS.md "Crash marker"), and the read models must then equal a
// full rebuild of a copy of the same directory.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>

#include "absl/strings/match.h"
#include "tests/erasure_fixture.h"
#include "tests/test_util.h"

namespace caseledger {
namespace {

// Runs the writer until it prints "erased", then kills it with SIGKILL.
void EraseAndKill(const std::string& dir, const std::string& subject) {
  testing::KilledChild child = testing::RunThenKill(
      {"tests/erasure_crash_writer", dir, subject}, "erased ", absl::ZeroDuration());
  const std::string& out = child.out;
  ASSERT_TRUE(absl::StartsWith(out, "erased ")) << "writer said: " << out;
  EXPECT_NE(out, "erased 0\n");
  ASSERT_TRUE(child.killed);
}

TEST(ErasureCrashTest, TheNamedMarkerFinishesTheErasureAsAFullRebuildWould) {
  const std::string dir = testing::NewTempDir("erasure-crash");
  EraseAndKill(dir, "client-1");
  ASSERT_TRUE(std::filesystem::exists(dir + "/projections.reproject"));
  // Before the open: what the killed process left, derived in part from
  // the erased client's records (the control for what follows).
  absl::StatusOr<std::map<std::string, std::string>> before = testing::DumpProjections(dir);
  ASSERT_TRUE(before.ok()) << before.status();

  // The reference: a copy whose marker asks for everything.
  const std::string full = testing::NewTempDir("erasure-crash-full");
  std::filesystem::copy(dir, full, std::filesystem::copy_options::recursive |
                                       std::filesystem::copy_options::overwrite_existing);
  ASSERT_EQ(Projector::WriteStaleMarker(full + "/projections"), absl::OkStatus());
  {
    absl::StatusOr<std::unique_ptr<testing::ErasureFixture>> f = testing::OpenErasureFixture(full);
    ASSERT_TRUE(f.ok()) << f.status();
    EXPECT_EQ((*f)->projector->full_reprojections(), 1u);
    ASSERT_EQ((*f)->projector->CatchUp(), absl::OkStatus());
  }
  {
    absl::StatusOr<std::unique_ptr<testing::ErasureFixture>> f = testing::OpenErasureFixture(dir);
    ASSERT_TRUE(f.ok()) << f.status();
    EXPECT_EQ((*f)->projector->reprojections(), 1u);
    EXPECT_EQ((*f)->projector->full_reprojections(), 0u);  // only the subject's cases
    ASSERT_EQ((*f)->projector->CatchUp(), absl::OkStatus());
  }
  EXPECT_FALSE(std::filesystem::exists(dir + "/projections.reproject"));
  absl::StatusOr<std::map<std::string, std::string>> got = testing::DumpProjections(dir);
  absl::StatusOr<std::map<std::string, std::string>> want = testing::DumpProjections(full);
  ASSERT_TRUE(got.ok() && want.ok());
  EXPECT_NE(*got, *before);  // the erasure changed the read models
  EXPECT_EQ(*got, *want);
}

}  // namespace
}  // namespace caseledger
