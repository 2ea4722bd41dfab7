// The policy table for services whose handlers do not call the AccessGuard
// themselves (AccessService, AuditService, WitnessService when they are
// merged, the standard health and reflection services): a gRPC server
// interceptor that checks every such call against its table row, so that a
// new service needs only a row.
//
// How it refuses: a gRPC server interceptor cannot stop the handler from
// running, so for a refused call it (1) clears the request before the
// handler sees it, (2) replaces every response message with an empty one and
// (3) replaces the final status with the PERMISSION_DENIED (or
// UNAUTHENTICATED) that names the rule. The handler thus runs on an empty
// request, and nothing it produces reaches the caller. Handlers that write
// (an append) must still call the AccessGuard themselves, as
// LedgerService's do.
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

#include <set>
#include <string>

#include "services/api/access_guard.h"

namespace caseledger {

class AuthzInterceptorFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  // `guard` is borrowed and must outlive the server. Calls to methods in
  // `checked_in_handler` (full names) pass through untouched.
  AuthzInterceptorFactory(AccessGuard* guard, std::set<std::string> checked_in_handler);
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

  // The full names of every method of the named services (generated pool).
  static std::set<std::string> MethodsOf(const std::vector<std::string>& services);

 private:
  AccessGuard* const guard_;
  const std::set<std::string> checked_in_handler_;
};

}  // namespace caseledger

#endif  // CASELEDGER_SERVICES_API_AUTHZ_INTERCEPTOR_H_
