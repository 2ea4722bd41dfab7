#include "services/api/key_admin_service.h"

#include "absl/strings/str_cat.h"
#include "ledger/record.h"
#include "services/api/authz_verdict.h"
#include "services/api/grpc_status.h"

namespace caseledger {
namespace {

// The rule ids follow in records (ledger/FORMAT.md).
absl::Status CheckSubjectId(const std::string& id) {
  if (id.empty()) return absl::InvalidArgumentError("subject_id: must not be empty");
  if (id.size() > kMaxIdBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("subject_id: got ", id.size(), " bytes, want at most ", kMaxIdBytes));
  }
  for (unsigned char c : id) {
    if (c < 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError(
          absl::StrCat("subject_id: contains control byte 0x", absl::Hex(c, absl::kZeroPad2)));
    }
  }
  return absl::OkStatus();
}

}  // namespace

grpc::Status KeyAdminServiceImpl::EraseSubject(grpc::ServerContext* ctx,
                                               const v1::EraseSubjectRequest* req,
                                               v1::EraseSubjectResponse* resp) {
  if (grpc::Status refused = AuthzVerdict(*ctx); !refused.ok()) return refused;
  absl::Status valid = CheckSubjectId(req->subject_id());
  if (!valid.ok()) return ToGrpcStatus(valid);
  if (keys_ == nullptr) {
    return ToGrpcStatus(absl::FailedPreconditionError(
        "payload encryption is off (the server has no --master_key_file): there are no keys "
        "to destroy, and plaintext payloads cannot be crypto-shredded"));
  }
  absl::StatusOr<size_t> n = keys_->EraseSubject(req->subject_id());
  if (!n.ok()) return ToGrpcStatus(n.status());
  resp->set_keys_destroyed(static_cast<uint32_t>(*n));
  return grpc::Status::OK;
}

}  // namespace caseledger
