#include "services/api/key_admin_service.h"

#include "absl/strings/str_cat.h"
#include "ledger/record.h"
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

namespace {

// The new master key named by RotateMasterKeyRequest.new_master_key_file.
absl::StatusOr<AeadKey> LoadNewMasterKey(const std::string& path) {
  if (path.empty()) {
    return absl::InvalidArgumentError(
        "new_master_key_file: must not be empty, want the absolute path of a key file on the "
        "server's host");
  }
  if (path[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("new_master_key_file: got relative path \"", path,
                     "\", want an absolute path on the server's host"));
  }
  // Checks the file's mode and the key's form.
  absl::StatusOr<AeadKey> key = LoadMasterKey(path, /*env=*/nullptr);
  if (!key.ok()) {
    return absl::Status(key.status().code(),
                        absl::StrCat("new_master_key_file: ", key.status().message()));
  }
  return key;
}

}  // namespace

grpc::Status KeyAdminServiceImpl::RotateMasterKey(grpc::ServerContext* ctx,
                                                  const v1::RotateMasterKeyRequest* req,
                                                  v1::RotateMasterKeyResponse* resp) {
  if (keys_ == nullptr) {
    return ToGrpcStatus(absl::FailedPreconditionError(
        "payload encryption is off (the server has no --master_key_file): there is no master "
        "key to rotate"));
  }
  absl::StatusOr<AeadKey> next = LoadNewMasterKey(req->new_master_key_file());
  if (!next.ok()) return ToGrpcStatus(next.status());
  const std::string before = keys_->master_key_id();
  absl::StatusOr<MasterKeyRotation> done = keys_->RotateMasterKey(*next);
  const std::string after = keys_->master_key_id();
  if (after != before && options_.log) {
    options_.log(absl::StrCat(
        "master key rotated from id ", before, " to id ", after,
        done.ok() ? absl::StrCat(" (", done->keys_rewrapped, " data keys re-wrapped)") : "",
        "; restart with --master_key_file=", req->new_master_key_file(),
        ": the old key no longer opens the data directory"));
  }
  if (!done.ok()) {
    if (absl::IsInvalidArgument(done.status())) {
      return ToGrpcStatus(absl::InvalidArgumentError(
          absl::StrCat("new_master_key_file: ", done.status().message())));
    }
    return ToGrpcStatus(done.status());
  }
  resp->set_old_master_key_id(done->old_master_key_id);
  resp->set_new_master_key_id(done->new_master_key_id);
  resp->set_keys_rewrapped(done->keys_rewrapped);
  return grpc::Status::OK;
}

}  // namespace caseledger
