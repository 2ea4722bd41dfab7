// The one place where absl::Status becomes grpc::Status. The codes are the
// same numbers; the message is kept as it is.
#ifndef CASELEDGER_SERVICES_COMMON_GRPC_STATUS_H_
#define CASELEDGER_SERVICES_COMMON_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include <string>

#include "absl/status/status.h"

namespace caseledger {

inline grpc::Status ToGrpcStatus(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

}  // namespace caseledger

#endif  // CASELEDGER_SERVICES_COMMON_GRPC_STATUS_H_
