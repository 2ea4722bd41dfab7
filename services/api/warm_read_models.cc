#include "services/api/warm_read_models.h"

#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "ledger/internal/status_macros.h"

namespace caseledger {

void WarmReadModels::Step(LogStore& local) {
  const absl::Time now = absl::Now();
  if (now < retry_at_ || now - last_ < options_.min_interval) return;
  absl::StatusOr<uint64_t> size = local.Size();
  // (An empty store is not opened: a Ledger would write its subject map's
  // layout, which the read-only view refuses; the first tailed records
  // bring it.)
  if (size.ok() && (*size == 0 || (*size == position_ && last_ != absl::InfinitePast()))) return;
  last_ = now;
  absl::Status s = Apply(local);
  if (!s.ok()) {
    // (A PostgreSQL failover, say.) The key copy stays: Finish must still
    // see every key the read models may have been projected with.
    retry_at_ = now + kRetryAfter;
    Log(absl::StrCat("read models not kept warm for ", absl::FormatDuration(kRetryAfter),
                     " (they catch up at lease time otherwise): ", s.ToString()));
  }
}

absl::Status WarmReadModels::Apply(LogStore& local) {
  if (options_.master_key.has_value() && key_store_ == nullptr) {
    CL_ASSIGN_OR_RETURN(keys_, OpenPgKeyView(options_.conninfo));
    CL_ASSIGN_OR_RETURN(key_store_,
                        KeyStore::Open(keys_.get(), *options_.master_key, options_.key_options));
  }
  LedgerOptions lo;
  lo.origin = options_.origin;
  lo.signer = options_.signer;
  lo.cipher = key_store_.get();
  if (options_.blind_ids) lo.blinder = key_store_.get();
  // It appends nothing, so it signs nothing.
  lo.checkpoint_every_records = std::numeric_limits<uint64_t>::max();
  lo.checkpoint_interval = absl::Hours(24 * 365);
  CL_ASSIGN_OR_RETURN(std::unique_ptr<Ledger> ledger,
                      Ledger::Open(std::move(lo), ReadOnlyLocalStore(&local, keys_.get())));
  const uint64_t size = ledger->Size();
  CL_ASSIGN_OR_RETURN(std::unique_ptr<Projector> projector,
                      Projector::Open(options_.projector, ledger.get(), options_.projections()));
  const uint64_t from = projector->position();
  CL_RETURN_IF_ERROR(projector->CatchUp());
  position_ = projector->position();
  projector.reset();
  ledger->Close();
  if (position_ != from && (logged_ == absl::InfinitePast() ||
                            absl::Now() - logged_ > absl::Seconds(10) || position_ == size)) {
    Log(absl::StrCat("waiting; read models kept warm at ", position_, " of ", size));
    logged_ = absl::Now();
  }
  return absl::OkStatus();
}

absl::Status WarmReadModels::Finish() {
  if (keys_ == nullptr) return absl::OkStatus();  // no master key: no keys to destroy
  CL_ASSIGN_OR_RETURN(bool destroyed, keys_->AnyDestroyed());
  key_store_.reset();
  keys_.reset();
  if (!destroyed) return absl::OkStatus();
  Log("a key was destroyed while this node waited: its read models are rebuilt from the log");
  return Projector::WriteStaleMarker(options_.projector.path);
}

}  // namespace caseledger
