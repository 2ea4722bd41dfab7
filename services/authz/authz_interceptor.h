// THE authorization of every call of every service the server runs
// (LedgerService, CaseService, DisclosureService, AccessService,
// AuditService, WitnessService, KeyAdminService, health and reflection): a
// gRPC server interceptor that names the caller, checks the call against its
// row of the policy table (authz.cc), records what must be recorded, and
// publishes its verdict for the handler (authz_verdict.h). A new service
// needs only a row and, in each handler, the verdict as its first line.
//
// When it decides: on the caller alone as soon as the call arrives (a caller
// that cannot be named, a role the row denies, a service that is not ours);
// otherwise on each request as it is read, with the Resources the request
// names (request_resources.h) and the facts the ResourceDirectory supplies
// (a case's manager and program, a record's case). A client stream's
// handler may take the per-request decisions over (DeferRequestVerdicts in
// authz_verdict.h) to make each, with this factory's Decide, when it acts on
// the request rather than as it is read.
//
// What it records, through the append gate (case_gate.h), before the caller
// gets an answer: every refusal, once (access_refused in "@access"); every
// allowed read of confidential content (record_accessed in the case's own
// stream when the read is of one open case, otherwise in "@access"). A read
// whose record cannot be written is refused UNAVAILABLE. Refusals of the
// role local are not recorded. Events are dated by the gate's clock.
//
// A malformed request whose form its handler checks before authorization is
// answered INVALID_ARGUMENT as its handler would, and nothing is recorded.
//
// How it refuses: a gRPC sync server interceptor cannot stop the handler
// from running, so every caseledger handler returns the verdict first and
// does no work for a refused caller. Health and reflection are not ours:
// their handlers run (they report liveness and schema only), and the
// interceptor replaces every response message of a refused call with an
// empty one and the final status with the refusal. It does the same, and
// clears the request, for a caseledger handler as a backstop; a caseledger
// handler that answers a refused call with anything but the refusal did not
// return the verdict first, and is counted (unheeded_refusals) and logged as
// a bug. (A refusal of one request of a client stream is the handler's to
// end the stream with, after the answers before it.)
//
// It also answers a request body that does not parse with INVALID_ARGUMENT
// naming the method, where gRPC alone says INTERNAL with no message.
#ifndef CASELEDGER_SERVICES_API_AUTHZ_INTERCEPTOR_H_
#define CASELEDGER_SERVICES_API_AUTHZ_INTERCEPTOR_H_

#include <grpcpp/support/server_interceptor.h>

#include <atomic>
#include <functional>
#include <memory>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "services/authz/authz.h"
#include "services/append/case_gate.h"

namespace caseledger {

struct AuthzInterceptorOptions {
  // Plaintext callers are the kLocal principal (allowed everything, nothing
  // recorded). Only set when the server listens on loopback without TLS.
  bool insecure_loopback = false;
  // The ledger's LedgerOptions::max_batch_events (AppendBatch's form).
  size_t max_batch_events = 1000;
  // Optional: told of every refusal, by the caller's role (metrics). Quick.
  std::function<void(Role role)> on_refusal;
  // Optional: the gate that takes a record written to `stream_id`, in place
  // of the factory's one gate (a partitioned server: the gate of the
  // stream's partition, ledger/CLUSTER.md "Serving P > 1"); null when this
  // node cannot write that stream now (a refusal then goes unrecorded and is
  // logged; a read that must be recorded is refused UNAVAILABLE).
  std::function<std::shared_ptr<CaseGate>(const std::string& stream_id)> gate_for;
};

class AuthzInterceptorFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  // Everything passed in is borrowed and must outlive the server.
  // `directory` supplies the facts the rules need; `gate` takes the records
  // of refusals and reads, and its clock dates them (null when
  // options.gate_for is set).
  AuthzInterceptorFactory(Authorizer* authz, ResourceDirectory* directory, CaseGate* gate,
                          AuthzInterceptorOptions options = AuthzInterceptorOptions());
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

  // The caller of a call with this auth context; UNAUTHENTICATED when it
  // cannot be named.
  absl::StatusOr<Principal> Identify(const grpc::AuthContext* auth) const;
  // The verdict on `request` (null: the call carried none) of `method` by
  // `who`, recorded as AUTHZ.md says. Thread-safe.
  absl::StatusOr<Decision> Decide(const Principal& who, const std::string& method,
                                  const google::protobuf::Message* request);
  // Records the refusal of a caller that could not be named (under the id
  // "unidentified").
  void RefuseUnidentified(const std::string& method, const absl::Status& refusal);

  // How many refused calls of caseledger services this factory's
  // interceptors saw answered by their handler with something other than the
  // refusal: handlers that ran without returning the verdict first. Zero
  // unless a handler is missing that line.
  uint64_t unheeded_refusals() const { return unheeded_.load(); }
  void NoteUnheeded() { unheeded_.fetch_add(1, std::memory_order_relaxed); }

 private:
  void RecordRefusal(const Principal& who, absl::string_view method, const Resource& resource,
                     const absl::Status& refusal);
  absl::Status RecordAccess(const Principal& who, absl::string_view method,
                            const Resource& resource);
  std::vector<std::string> SubjectsOf(const Resource& resource);
  // The gate that writes to `stream_id` (options_.gate_for, else gate_);
  // null when none can now.
  std::shared_ptr<CaseGate> GateFor(const std::string& stream_id);

  Authorizer* const authz_;
  ResourceDirectory* const directory_;
  CaseGate* const gate_;
  const AuthzInterceptorOptions options_;
  std::atomic<uint64_t> unheeded_{0};
};

}  // namespace caseledger

#endif  // CASELEDGER_SERVICES_API_AUTHZ_INTERCEPTOR_H_
