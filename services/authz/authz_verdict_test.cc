#include "services/authz/authz_verdict.h"

#include <gtest/gtest.h>

#include <memory>

namespace caseledger {
namespace {

TEST(AuthzVerdictTest, NoSlotIsRefused) {
  grpc::ServerContext ctx;
  grpc::Status s = AuthzVerdict(ctx);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_EQ(s.error_message(),
            "no authorization verdict for this call: its service is not guarded by "
            "AuthzInterceptorFactory on this server");
}

TEST(AuthzVerdictTest, PendingIsRefusedThenTheVerdictStandsUntilTheSlotGoes) {
  grpc::ServerContext ctx;
  auto slot = std::make_unique<internal::VerdictSlot>(&ctx);
  EXPECT_EQ(AuthzVerdict(ctx).error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_EQ(AuthzVerdict(ctx).error_message(),
            "the authorization verdict for this call is not reached yet (no request has "
            "arrived)");

  slot->Decide(absl::PermissionDeniedError("rule client.deny: no"));
  grpc::Status s = AuthzVerdict(ctx);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(s.error_message(), "rule client.deny: no");

  slot->Decide(Admitted());
  EXPECT_TRUE(AuthzVerdict(ctx).ok());

  slot.reset();
  EXPECT_EQ(AuthzVerdict(ctx).error_code(), grpc::StatusCode::INTERNAL);
}

TEST(AuthzVerdictTest, VerdictsAreKeptPerCall) {
  grpc::ServerContext a, b;
  internal::VerdictSlot slot_a(&a);
  internal::VerdictSlot slot_b(&b);
  slot_a.Decide(Admitted());
  slot_b.Decide(absl::UnauthenticatedError("nameless"));
  EXPECT_TRUE(AuthzVerdict(a).ok());
  EXPECT_EQ(AuthzVerdict(b).error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

// A slot left over from a freed context at the same address must neither
// decide for nor withdraw the newer call's verdict.
TEST(AuthzVerdictTest, AStaleSlotDoesNotTouchANewerCallsVerdict) {
  grpc::ServerContext ctx;
  auto stale = std::make_unique<internal::VerdictSlot>(&ctx);
  internal::VerdictSlot current(&ctx);
  current.Decide(absl::PermissionDeniedError("rule auditor.deny: no"));
  stale->Decide(Admitted());
  EXPECT_EQ(AuthzVerdict(ctx).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  stale.reset();
  EXPECT_EQ(AuthzVerdict(ctx).error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

}  // namespace
}  // namespace caseledger
