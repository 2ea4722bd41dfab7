#include "services/authz/authz_verdict.h"

#include <gtest/gtest.h>

#include <memory>

#include <google/protobuf/empty.pb.h>

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

// A client stream's handler takes the per-request decisions over: refused
// (INTERNAL) without a decider offered; afterwards the slot says so (the
// interceptor then decides no request as it reads it) and the handler holds
// the interceptor's decider.
TEST(AuthzVerdictTest, DeferRequestVerdictsHandsOverTheOfferedDecider) {
  grpc::ServerContext ctx;
  internal::VerdictSlot slot(&ctx);
  slot.Decide(Admitted());
  absl::StatusOr<RequestDecider> none = DeferRequestVerdicts(ctx);
  EXPECT_EQ(none.status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(none.status().message(),
            "no per-request authorization for this call: its caller was not admitted to a "
            "client stream by AuthzInterceptorFactory on this server");
  EXPECT_FALSE(slot.RequestsDeferred());

  int asked = 0;
  slot.OfferRequestDecider(
      [&asked](const google::protobuf::Message&) -> absl::StatusOr<Admitted> {
        ++asked;
        return absl::PermissionDeniedError("rule producer.own_program: no");
      });
  EXPECT_FALSE(slot.RequestsDeferred()) << "offering alone defers nothing";
  absl::StatusOr<RequestDecider> decider = DeferRequestVerdicts(ctx);
  ASSERT_TRUE(decider.ok()) << decider.status();
  EXPECT_TRUE(slot.RequestsDeferred());
  google::protobuf::Empty request;  // any message: the fake ignores it
  EXPECT_EQ((*decider)(request).status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(asked, 1);
}

// Another call's slot is not deferred by this one's handler.
TEST(AuthzVerdictTest, DeferringIsPerCall) {
  grpc::ServerContext a, b;
  internal::VerdictSlot slot_a(&a);
  internal::VerdictSlot slot_b(&b);
  auto admit = [](const google::protobuf::Message&) -> absl::StatusOr<Admitted> {
    return Admitted();
  };
  slot_a.OfferRequestDecider(admit);
  slot_b.OfferRequestDecider(admit);
  ASSERT_TRUE(DeferRequestVerdicts(a).ok());
  EXPECT_TRUE(slot_a.RequestsDeferred());
  EXPECT_FALSE(slot_b.RequestsDeferred());
}

}  // namespace
}  // namespace caseledger
