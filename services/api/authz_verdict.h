// The authorization verdict on each call in flight, as the AuthzInterceptor
// (authz_interceptor.h) reached it, for the handlers of the services it
// guards. A gRPC sync server interceptor cannot stop a handler from running,
// so every handler of such a service starts with
//
//   if (grpc::Status refused = AuthzVerdict(*ctx); !refused.ok()) return refused;
//
// and so does no work for a refused caller. The verdict is keyed on the
// call's ServerContext: gRPC 1.51's ServerRpcInfo offers no slot for
// per-call data, and the interceptor's lifetime is the context's (the
// context owns the ServerRpcInfo, which owns the interceptors).
#ifndef CASELEDGER_SERVICES_API_AUTHZ_VERDICT_H_
#define CASELEDGER_SERVICES_API_AUTHZ_VERDICT_H_

#include <grpcpp/server_context.h>
#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace caseledger {

// OK when the call of `ctx` was admitted; otherwise the refusal
// (PERMISSION_DENIED naming the rule, UNAUTHENTICATED, or UNAVAILABLE when a
// confidential read could not be recorded), which the interceptor has
// already recorded: the handler returns it as it is. INTERNAL when there is
// no verdict, so that a call nobody checked is refused too: the server has no
// AuthzInterceptorFactory, the method is one it passes through (checked in
// its handler), or no request has arrived yet (a client-streaming method;
// the guarded services have none). Thread-safe.
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

  // Publishes the verdict (OK: admitted). The last one given stands.
  void Decide(const absl::Status& verdict);

 private:
  const grpc::ServerContextBase* const ctx_;
};

}  // namespace internal
}  // namespace caseledger

#endif  // CASELEDGER_SERVICES_API_AUTHZ_VERDICT_H_
