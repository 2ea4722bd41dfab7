// The authorization verdict on each call in flight, as the AuthzInterceptor
// (authz_interceptor.h) reached it: the caller and the Decision (e.g. that
// an auditor gets commitments only), or the refusal. A gRPC sync server
// interceptor cannot stop a handler from running, so every handler of a
// caseledger service starts with
//
//   if (grpc::Status refused = AuthzVerdict(*ctx); !refused.ok()) return refused;
//
// (or CallVerdict, when it needs the caller or the decision) and so does no
// work for a refused caller. For a method whose client streams requests
// (LedgerService.AppendStream) the verdict is first on the caller alone,
// then on each request as it is read: after each Read, CallVerdict is the
// verdict on the request just read. The verdict is keyed on the
// call's ServerContext: gRPC 1.51's ServerRpcInfo offers no slot for
// per-call data, and the interceptor's lifetime is the context's (the
// context owns the ServerRpcInfo, which owns the interceptors).
#ifndef CASELEDGER_SERVICES_API_AUTHZ_VERDICT_H_
#define CASELEDGER_SERVICES_API_AUTHZ_VERDICT_H_

#include <grpcpp/server_context.h>
#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "services/authz/authz.h"

namespace caseledger {

// An admitted call (or request): who is calling, and on what terms.
struct Admitted {
  Principal caller;
  Decision decision;
};

// The caller and decision when the call of `ctx` was admitted; otherwise the
// refusal, as AuthzVerdict below.
absl::StatusOr<Admitted> CallVerdict(const grpc::ServerContextBase& ctx);

// OK when the call of `ctx` was admitted; otherwise the refusal
// (PERMISSION_DENIED naming the rule, UNAUTHENTICATED, or UNAVAILABLE when a
// confidential read could not be recorded), which the interceptor has
// already recorded, or INVALID_ARGUMENT for a request whose form is checked
// before authorization (not recorded): the handler returns it as it is.
// INTERNAL when there is no verdict, so that a call nobody checked is
// refused too: the server has no AuthzInterceptorFactory, or no request has
// arrived yet. Thread-safe.
grpc::Status AuthzVerdict(const grpc::ServerContextBase& ctx);

namespace internal {

// The interceptor's slot for one call's verdict: registered on construction
// (no verdict yet), withdrawn on destruction. `ctx` must outlive the slot.
class VerdictSlot {
 public:
  explicit VerdictSlot(const grpc::ServerContextBase* ctx);
  ~VerdictSlot();
  VerdictSlot(const VerdictSlot&) = delete;
  VerdictSlot& operator=(const VerdictSlot&) = delete;

  // Publishes the verdict. The last one given stands.
  void Decide(absl::StatusOr<Admitted> verdict);

 private:
  const grpc::ServerContextBase* const ctx_;
};

}  // namespace internal
}  // namespace caseledger

#endif  // CASELEDGER_SERVICES_API_AUTHZ_VERDICT_H_
