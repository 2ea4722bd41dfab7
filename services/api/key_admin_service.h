// KeyAdminService: thin gRPC over the key store (ledger/ENCRYPTION.md).
#ifndef CASELEDGER_SERVICES_API_KEY_ADMIN_SERVICE_H_
#define CASELEDGER_SERVICES_API_KEY_ADMIN_SERVICE_H_

#include <functional>
#include <string>
#include <utility>

#include "ledger/key_store.h"
#include "proto/keys.grpc.pb.h"

namespace caseledger {

struct KeyAdminServiceOptions {
  // Called with one line when the master key in use changes (the server
  // logs it); never given key bytes. May be empty.
  std::function<void(const std::string&)> log;
};

// Thread-safe. `keys` is borrowed and must outlive the service; null when the
// server runs without a master key (every call is then FAILED_PRECONDITION).
class KeyAdminServiceImpl final : public v1::KeyAdminService::Service {
 public:
  explicit KeyAdminServiceImpl(KeyStore* keys, KeyAdminServiceOptions options = {})
      : keys_(keys), options_(std::move(options)) {}

  grpc::Status EraseSubject(grpc::ServerContext* ctx, const v1::EraseSubjectRequest* req,
                            v1::EraseSubjectResponse* resp) override;
  // Reads the new key with LoadMasterKey on the server's host and calls
  // KeyStore::RotateMasterKey; statuses as in proto/keys.proto.
  grpc::Status RotateMasterKey(grpc::ServerContext* ctx, const v1::RotateMasterKeyRequest* req,
                               v1::RotateMasterKeyResponse* resp) override;

 private:
  KeyStore* const keys_;
  const KeyAdminServiceOptions options_;
};

}  // namespace caseledger

#endif  // CASELEDGER_SERVICES_API_KEY_ADMIN_SERVICE_H_
