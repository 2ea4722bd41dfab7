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
// verdict on the request just read, unless the handler takes the per-request
// decisions over (DeferRequestVerdicts) to make each when it acts on the
// request. The verdict is keyed on the
// call's ServerContext: gRPC 1.51's ServerRpcInfo offers no slot for
// per-call data, and the interceptor's lifetime is the context's (the
// context owns the ServerRpcInfo, which owns the interceptors).
#ifndef CASELEDGER_SERVICES_API_AUTHZ_VERDICT_H_
#define CASELEDGER_SERVICES_API_AUTHZ_VERDICT_H_

#include <google/protobuf/message.h>
#include <grpcpp/server_context.h>
#include <grpcpp/support/status.h>

#include <atomic>
#include <functional>

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

// The interceptor's decision on one request of a client stream, as it would
// have reached it when the request was read: the caller and decision, or the
// refusal (recorded as AUTHZ.md says). Thread-safe; needs no ServerContext,
// but must be called before the call's server shuts down.
using RequestDecider =
    std::function<absl::StatusOr<Admitted>(const google::protobuf::Message& request)>;

// For a method whose client streams requests: from now on the interceptor
// no longer decides each request of the call of `ctx` as it is read; the
// handler calls the returned decider on each request, in request order, at
// the point where the request's predecessors are visible to the rules (for
// AppendStream: once they are queued with the append gate), and acts on no
// request without it. This lets a handler read ahead of what it has acted
// on without deciding a request against a state its predecessors have not
// made yet. Call it before the first read. INTERNAL when the call's caller
// was not admitted by an interceptor that decides per request.
absl::StatusOr<RequestDecider> DeferRequestVerdicts(const grpc::ServerContextBase& ctx);

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

  // Offers the per-request decider for DeferRequestVerdicts (a call whose
  // client streams requests, its caller admitted).
  void OfferRequestDecider(RequestDecider decider);
  // True once the handler took the per-request decisions over: the
  // interceptor then decides no request as it is read. Thread-safe.
  bool RequestsDeferred() const { return deferred_.load(std::memory_order_acquire); }

 private:
  const grpc::ServerContextBase* const ctx_;
  std::atomic<bool> deferred_{false};
};

}  // namespace internal
}  // namespace caseledger

#endif  // CASELEDGER_SERVICES_API_AUTHZ_VERDICT_H_
