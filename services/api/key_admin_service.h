// KeyAdminService: thin gRPC over the key store (ledger/ENCRYPTION.md).
#ifndef CASELEDGER_SERVICES_API_KEY_ADMIN_SERVICE_H_
#define CASELEDGER_SERVICES_API_KEY_ADMIN_SERVICE_H_

#include "ledger/key_store.h"
#include "proto/keys.grpc.pb.h"

namespace caseledger {

// Thread-safe. `keys` is borrowed and must outlive the service; null when the
// server runs without a master key (every call is then FAILED_PRECONDITION).
class KeyAdminServiceImpl final : public v1::KeyAdminService::Service {
 public:
  explicit KeyAdminServiceImpl(KeyStore* keys) : keys_(keys) {}

  grpc::Status EraseSubject(grpc::ServerContext* ctx, const v1::EraseSubjectRequest* req,
                            v1::EraseSubjectResponse* resp) override;

 private:
  KeyStore* const keys_;
};

}  // namespace caseledger

#endif  // CASELEDGER_SERVICES_API_KEY_ADMIN_SERVICE_H_
