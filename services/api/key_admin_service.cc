#include "services/api/key_admin_service.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "ledger/record.h"
#include "services/api/authz_verdict.h"
#include "services/api/event_codec.h"
#include "services/api/grpc_status.h"

namespace caseledger {
namespace {

inline constexpr size_t kMaxAuthorityBytes = 512;

// `field` must be 1..max bytes without control bytes (ids follow the rule of
// records, ledger/FORMAT.md).
absl::Status CheckText(absl::string_view field, const std::string& value, size_t max) {
  if (value.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": must not be empty"));
  if (value.size() > max) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": got ", value.size(), " bytes, want at most ", max));
  }
  for (unsigned char c : value) {
    if (c < 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": contains control byte 0x", absl::Hex(c, absl::kZeroPad2)));
    }
  }
  return absl::OkStatus();
}

}  // namespace

grpc::Status KeyAdminServiceImpl::EraseSubject(grpc::ServerContext* ctx,
                                               const v1::EraseSubjectRequest* req,
                                               v1::EraseSubjectResponse* resp) {
  if (grpc::Status refused = AuthzVerdict(*ctx); !refused.ok()) return refused;
  absl::Status valid = CheckText("subject_id", req->subject_id(), kMaxIdBytes);
  if (valid.ok()) valid = CheckText("authority", req->authority(), kMaxAuthorityBytes);
  if (!valid.ok()) return ToGrpcStatus(valid);
  if (keys_ == nullptr) {
    return ToGrpcStatus(absl::FailedPreconditionError(
        "payload encryption is off (the server has no --master_key_file): there are no keys "
        "to destroy, and plaintext payloads cannot be crypto-shredded"));
  }
  Principal who{Role::kLocal, "local"};
  if (guard_ != nullptr) {
    absl::StatusOr<Principal> p = guard_->Identify(ctx);
    if (!p.ok()) return ToGrpcStatus(p.status());
    who = *std::move(p);
  }
  // Before anything is destroyed: a crash from here on leaves the marker, and
  // the next start rebuilds the read models.
  if (projector_ != nullptr) {
    absl::Status marked = projector_->MarkStale();
    if (!marked.ok()) return ToGrpcStatus(marked);
  }
  // The erasure is in the ledger before its keys are gone, so none is ever
  // unrecorded; a call that fails after this line is finished by calling again.
  absl::StatusOr<Event> event =
      ToLedgerEvent(SubjectErasedEvent(who, req->subject_id(), req->authority()));
  if (!event.ok()) return ToGrpcStatus(event.status());
  absl::StatusOr<AppendResult> recorded = ledger_->Append({*std::move(event), std::nullopt});
  if (!recorded.ok()) {
    return ToGrpcStatus(absl::Status(
        recorded.status().code(),
        absl::StrCat("the erasure could not be recorded, so nothing was destroyed: ",
                     recorded.status().message())));
  }
  absl::StatusOr<size_t> n = keys_->EraseSubject(req->subject_id());
  if (!n.ok()) return ToGrpcStatus(n.status());
  if (projector_ != nullptr) {
    absl::Status rebuilt = projector_->Reproject();
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

}  // namespace caseledger
