// The policy check for services whose handlers do not call the AccessGuard
// themselves (AccessService, AuditService, WitnessService, KeyAdminService,
// the standard health and reflection services): a gRPC server interceptor
// that checks every such call against its row of the policy table
// (authz.cc), so that a new service needs only a row and one line per
// handler.
//
// How it refuses: a gRPC sync server interceptor cannot stop the handler
// from running. So the interceptor decides before the handler is called (on
// the caller's metadata, or on the request when the rule needs it), records a
// refusal once through the AccessGuard, and publishes its verdict for the
// call (authz_verdict.h); every handler of a guarded caseledger service
// starts with
//
//   if (grpc::Status refused = AuthzVerdict(*ctx); !refused.ok()) return refused;
//
// and so does no work for a refused caller. Health and reflection are not
// ours: their handlers run (they report liveness and schema only), and the
// interceptor replaces every response message of a refused call with an
// empty one and the final status with the refusal (PERMISSION_DENIED naming
// the rule, or UNAUTHENTICATED). It does the same, and clears the request,
// for a caseledger handler as a backstop; a caseledger handler that answers
// a refused call with anything but the refusal did not return the verdict
// first, and is counted (unheeded_refusals) and logged as a bug.
//
// The request's resource is read by field name through protobuf reflection:
// "client_id" (or "subject_id") is Resource::client_id, "case_id" (or
// "stream_id") Resource::case_id. This needs the request to be a generated
// protobuf message, so it is done only for methods of "caseledger."
// services found in the generated descriptor pool; other services are
// checked by role alone.
//
// It also answers a request body that does not parse with INVALID_ARGUMENT
// naming the method, where gRPC alone says INTERNAL with no message.
#ifndef CASELEDGER_SERVICES_API_AUTHZ_INTERCEPTOR_H_
#define CASELEDGER_SERVICES_API_AUTHZ_INTERCEPTOR_H_

#include <grpcpp/support/server_interceptor.h>

#include <atomic>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "services/api/access_guard.h"

namespace caseledger {

class AuthzInterceptorFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  // `guard` is borrowed and must outlive the server. Calls to methods in
  // `checked_in_handler` (full names) pass through untouched and get no
  // verdict (AuthzVerdict is INTERNAL for them).
  AuthzInterceptorFactory(AccessGuard* guard, std::set<std::string> checked_in_handler);
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

  // The full names of every method of the named services (generated pool).
  static std::set<std::string> MethodsOf(const std::vector<std::string>& services);

  // How many refused calls of caseledger services this factory's
  // interceptors saw answered by their handler with something other than the
  // refusal: handlers that ran without returning AuthzVerdict first. Zero
  // unless a handler is missing that line.
  uint64_t unheeded_refusals() const { return unheeded_.load(); }

 private:
  AccessGuard* const guard_;
  const std::set<std::string> checked_in_handler_;
  std::atomic<uint64_t> unheeded_{0};
};

}  // namespace caseledger

#endif  // CASELEDGER_SERVICES_API_AUTHZ_INTERCEPTOR_H_
