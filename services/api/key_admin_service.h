// KeyAdminService: key administration over gRPC (proto/keys.proto,
// ledger/ENCRYPTION.md).
#ifndef CASELEDGER_SERVICES_API_KEY_ADMIN_SERVICE_H_
#define CASELEDGER_SERVICES_API_KEY_ADMIN_SERVICE_H_

#include "ledger/key_store.h"
#include "ledger/ledger.h"
#include "proto/keys.grpc.pb.h"
#include "services/api/access_guard.h"
#include "services/api/projector.h"

namespace caseledger {

// Thread-safe. Everything passed in is borrowed and must outlive the
// service. `keys` is null when the server runs without a master key (every
// call is then FAILED_PRECONDITION); `projector` may be null (no read
// models to clean); `guard` names the caller in the erasure's event (null:
// "local").
class KeyAdminServiceImpl final : public v1::KeyAdminService::Service {
 public:
  KeyAdminServiceImpl(KeyStore* keys, Ledger* ledger, Projector* projector, AccessGuard* guard)
      : keys_(keys), ledger_(ledger), projector_(projector), guard_(guard) {}

  grpc::Status EraseSubject(grpc::ServerContext* ctx, const v1::EraseSubjectRequest* req,
                            v1::EraseSubjectResponse* resp) override;

 private:
  KeyStore* const keys_;
  Ledger* const ledger_;
  Projector* const projector_;
  AccessGuard* const guard_;
};

}  // namespace caseledger

#endif  // CASELEDGER_SERVICES_API_KEY_ADMIN_SERVICE_H_
