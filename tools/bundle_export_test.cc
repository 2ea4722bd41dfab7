// The network-free part of `ledgerctl export`; ExportBundle itself runs
// against the real server in tests/audit_e2e_test.cc.
#include "tools/bundle_export.h"

#include <gtest/gtest.h>

#include "ledger/checkpoint.h"
#include "ledger/signer.h"

namespace caseledger::ledgerctl {
namespace {

TEST(NoteSizeTest, ReadsTheSizeOfASignedCheckpoint) {
  auto signer = NoteSigner::New("example.test/log", *Ed25519Signer::FromSeed(std::string(32, 'k')));
  ASSERT_TRUE(signer.ok());
  Checkpoint cp;
  cp.origin = "example.test/log";
  cp.size = 1234;
  auto note = SignCheckpoint(cp, *signer);
  ASSERT_TRUE(note.ok());
  absl::StatusOr<uint64_t> size = NoteSize(*note);
  ASSERT_TRUE(size.ok()) << size.status();
  EXPECT_EQ(*size, 1234u);
}

TEST(NoteSizeTest, RefusesWhatIsNotACheckpointNote) {
  absl::StatusOr<uint64_t> size = NoteSize("example.test/log\n1234\n");
  EXPECT_EQ(size.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(size.status().message(), "not a signed note: no blank line before the signatures");
  size = NoteSize("example.test/log\n01\nAAAA\n\n— sig\n");
  EXPECT_EQ(size.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace caseledger::ledgerctl
