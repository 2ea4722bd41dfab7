// KeyAdminService: key administration over gRPC (proto/keys.proto,
// ledger/ENCRYPTION.md).
#ifndef CASELEDGER_SERVICES_API_KEY_ADMIN_SERVICE_H_
#define CASELEDGER_SERVICES_API_KEY_ADMIN_SERVICE_H_

#include <functional>
#include <string>
#include <utility>

#include "ledger/key_store.h"
#include "ledger/ledger.h"
#include "proto/keys.grpc.pb.h"
#include "services/append/case_gate.h"
#include "services/readmodel/projector.h"

namespace caseledger {

struct KeyAdminServiceOptions {
  // Called with one line when the master key in use changes (the server
  // logs it); never given key bytes. May be empty.
  std::function<void(const std::string&)> log;
  // Asked first by EraseSubject: FAILED_PRECONDITION naming the legal hold
  // that keeps the subject (services/policy/RULES.md W12), or another error; the
  // erasure then records and destroys nothing. May be empty (no holds).
  std::function<absl::Status(const std::string& subject_id)> erasure_allowed;
};

// Thread-safe. Everything passed in is borrowed and must outlive the
// service. `keys` is null when the server runs without a master key (every
// call is then FAILED_PRECONDITION); `gate` takes the erasure and rotation
// events (dated by its clock), and may be null when nothing is recorded
// (tests of rotation alone); `projector` may be null (no read models to
// clean). Every call is authorized by the AuthzInterceptorFactory, whose
// verdict names the caller in the events.
class KeyAdminServiceImpl final : public v1::KeyAdminService::Service {
 public:
  KeyAdminServiceImpl(KeyStore* keys, CaseGate* gate, Projector* projector,
                      KeyAdminServiceOptions options = {})
      : keys_(keys), gate_(gate), projector_(projector), options_(std::move(options)) {}

  grpc::Status EraseSubject(grpc::ServerContext* ctx, const v1::EraseSubjectRequest* req,
                            v1::EraseSubjectResponse* resp) override;
  // Reads the new key with LoadMasterKey on the server's host and calls
  // KeyStore::RotateMasterKey; statuses as in proto/keys.proto.
  grpc::Status RotateMasterKey(grpc::ServerContext* ctx, const v1::RotateMasterKeyRequest* req,
                               v1::RotateMasterKeyResponse* resp) override;

 private:
  KeyStore* const keys_;
  CaseGate* const gate_;
  Projector* const projector_;
  const KeyAdminServiceOptions options_;
};

}  // namespace caseledger

#endif  // CASELEDGER_SERVICES_API_KEY_ADMIN_SERVICE_H_
