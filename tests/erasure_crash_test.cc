// An erasure cut short by kill -9 (ledger/ENCRYPTION.md "Crash safety"): the
// writer marks the read models stale naming the subject and destroys its
// keys, and is killed before it re-derives anything. Opening the data
// directory must finish the erasure by re-deriving the subject's cases only
// (PROJECTIONS.md "Crash marker"), and the read models must then equal a
// full rebuild of a copy of the same directory.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <string>

#include "absl/strings/match.h"
#include "tests/erasure_fixture.h"

namespace caseledger {
namespace {

// Runs the writer until it prints "erased", then kills it with SIGKILL.
void EraseAndKill(const std::string& dir, const std::string& subject) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    execl("tests/erasure_crash_writer", "erasure_crash_writer", dir.c_str(), subject.c_str(),
          nullptr);
    _exit(127);
  }
  close(fds[1]);
  std::string out;
  char buf[256];
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!absl::StrContains(out, "\n") && std::chrono::steady_clock::now() < deadline) {
    pollfd p{fds[0], POLLIN, 0};
    if (poll(&p, 1, 10) > 0) {
      ssize_t n = read(fds[0], buf, sizeof(buf));
      if (n <= 0) break;
      out.append(buf, n);
    }
  }
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  close(fds[0]);
  ASSERT_TRUE(absl::StartsWith(out, "erased ")) << "writer said: " << out;
  EXPECT_NE(out, "erased 0\n");
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
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
