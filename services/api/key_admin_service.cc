#include "services/api/key_admin_service.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "ledger/record.h"
#include "services/authz/authz_verdict.h"
#include "services/append/event_codec.h"
#include "services/common/grpc_status.h"

namespace caseledger {
namespace {

inline constexpr size_t kMaxAuthorityBytes = 512;

}  // namespace

grpc::Status KeyAdminServiceImpl::EraseSubject(grpc::ServerContext* ctx,
                                               const v1::EraseSubjectRequest* req,
                                               v1::EraseSubjectResponse* resp) {
  absl::StatusOr<Admitted> admitted = CallVerdict(*ctx);
  if (!admitted.ok()) return ToGrpcStatus(admitted.status());
  absl::Status valid = CheckText("subject_id", req->subject_id(), kMaxIdBytes);
  if (valid.ok()) valid = CheckText("authority", req->authority(), kMaxAuthorityBytes);
  if (!valid.ok()) return ToGrpcStatus(valid);
  if (keys_ == nullptr) {
    return ToGrpcStatus(absl::FailedPreconditionError(
        "payload encryption is off (the server has no --master_key_file): there are no keys "
        "to destroy, and plaintext payloads cannot be crypto-shredded"));
  }
  if (options_.erasure_allowed) {  // legal holds, services/policy/RULES.md W12
    if (absl::Status held = options_.erasure_allowed(req->subject_id()); !held.ok()) {
      return ToGrpcStatus(held);
    }
  }
  if (gate_ == nullptr) {
    return ToGrpcStatus(
        absl::FailedPreconditionError("this server records no erasures, so it destroys no keys"));
  }
  // Taken before the erasure: in record format 2 the key derives from the
  // subject's salt, which the erasure destroys.
  const std::optional<Hash> subject_key =
      projector_ != nullptr ? projector_->SubjectKeyOf(req->subject_id()) : std::nullopt;
  // Before anything is destroyed: a crash from here on leaves the marker
  // naming the subject, and the next start re-derives its cases.
  if (projector_ != nullptr) {
    absl::Status marked = projector_->MarkStaleSubject(subject_key);
    if (!marked.ok()) return ToGrpcStatus(marked);
  }
  // The erasure is in the ledger before its keys are gone, so none is ever
  // unrecorded; a call that fails after this line is finished by calling again.
  v1::Event wire = SubjectErasedEvent(admitted->caller, req->subject_id(), req->authority(),
                                      gate_->clock().Now());
  absl::StatusOr<Event> event = ToLedgerEvent(wire);
  if (!event.ok()) return ToGrpcStatus(event.status());
  absl::StatusOr<AppendResult> recorded =
      gate_->AppendToServerStream(GatedEvent{std::move(wire), {*std::move(event), std::nullopt}});
  if (!recorded.ok()) {
    return ToGrpcStatus(
        absl::Status(recorded.status().code(),
                     absl::StrCat("the erasure could not be recorded, so nothing was destroyed: ",
                                  recorded.status().message())));
  }
  absl::StatusOr<size_t> n = keys_->EraseSubject(req->subject_id());
  if (!n.ok()) return ToGrpcStatus(n.status());
  if (projector_ != nullptr) {
    absl::Status rebuilt = projector_->ReprojectSubjectKey(subject_key);
    if (!rebuilt.ok()) {
      return ToGrpcStatus(absl::Status(
          rebuilt.code(),
          absl::StrCat("the keys are destroyed, but the read models were not rebuilt (call "
                       "again, or restart the server, to finish): ",
                       rebuilt.message())));
    }
  }
  resp->set_keys_destroyed(static_cast<uint32_t>(*n));
  resp->set_erasure_seq(recorded->seq);
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
  absl::StatusOr<Admitted> admitted = CallVerdict(*ctx);
  if (!admitted.ok()) return ToGrpcStatus(admitted.status());
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
  // Recorded once done (it states what happened); the rotation stands even
  // when the record cannot be written, and the caller is told.
  if (gate_ != nullptr) {
    v1::Event wire =
        MasterKeyRotatedEvent(admitted->caller, done->old_master_key_id, done->new_master_key_id,
                              done->keys_rewrapped, gate_->clock().Now());
    absl::StatusOr<Event> event = ToLedgerEvent(wire);
    absl::Status recorded = event.status();
    if (event.ok()) {
      absl::StatusOr<AppendResult> r = gate_->AppendToServerStream(
          GatedEvent{std::move(wire), {*std::move(event), std::nullopt}});
      if (r.ok()) resp->set_rotation_seq(r->seq);
      recorded = r.status();
    }
    if (!recorded.ok()) {
      return ToGrpcStatus(absl::Status(
          recorded.code(),
          absl::StrCat("the master key was rotated to id ", done->new_master_key_id,
                       ", but the rotation could not be recorded: ", recorded.message())));
    }
  }
  return grpc::Status::OK;
}

}  // namespace caseledger
