#include "services/authz/authz_verdict.h"

#include <atomic>
#include <optional>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "services/common/grpc_status.h"

namespace caseledger {
namespace {

struct Entry {
  const internal::VerdictSlot* owner;
  std::optional<absl::StatusOr<Admitted>> verdict;  // nullopt: not reached yet
  RequestDecider decider;            // null: none offered
  std::atomic<bool>* deferred;       // the owner's: set when the handler takes the decider
};

// The verdicts of the calls in flight, by ServerContext.
class Verdicts {
 public:
  static Verdicts& Get() {
    static Verdicts* verdicts = new Verdicts;
    return *verdicts;
  }

  void Open(const grpc::ServerContextBase* ctx, const internal::VerdictSlot* owner,
            std::atomic<bool>* deferred) {
    absl::MutexLock lock(&mu_);
    calls_[ctx] = Entry{owner, std::nullopt, nullptr, deferred};
  }

  void Offer(const grpc::ServerContextBase* ctx, const internal::VerdictSlot* owner,
             RequestDecider decider) {
    absl::MutexLock lock(&mu_);
    auto it = calls_.find(ctx);
    if (it != calls_.end() && it->second.owner == owner) it->second.decider = std::move(decider);
  }

  absl::StatusOr<RequestDecider> Defer(const grpc::ServerContextBase* ctx) {
    absl::MutexLock lock(&mu_);
    auto it = calls_.find(ctx);
    if (it == calls_.end() || it->second.decider == nullptr) {
      return absl::InternalError(
          "no per-request authorization for this call: its caller was not admitted to a "
          "client stream by AuthzInterceptorFactory on this server");
    }
    it->second.deferred->store(true, std::memory_order_release);
    return it->second.decider;
  }

  void Decide(const grpc::ServerContextBase* ctx, const internal::VerdictSlot* owner,
              absl::StatusOr<Admitted> verdict) {
    absl::MutexLock lock(&mu_);
    auto it = calls_.find(ctx);
    if (it != calls_.end() && it->second.owner == owner) it->second.verdict = std::move(verdict);
  }

  // Only the slot that opened the entry withdraws it, so that a context
  // allocated at a freed one's address keeps its own.
  void Close(const grpc::ServerContextBase* ctx, const internal::VerdictSlot* owner) {
    absl::MutexLock lock(&mu_);
    auto it = calls_.find(ctx);
    if (it != calls_.end() && it->second.owner == owner) calls_.erase(it);
  }

  absl::StatusOr<Admitted> Find(const grpc::ServerContextBase* ctx) {
    absl::MutexLock lock(&mu_);
    auto it = calls_.find(ctx);
    if (it == calls_.end()) {
      return absl::InternalError(
          "no authorization verdict for this call: its service is not guarded by "
          "AuthzInterceptorFactory on this server");
    }
    if (!it->second.verdict.has_value()) {
      return absl::InternalError(
          "the authorization verdict for this call is not reached yet (no request has "
          "arrived)");
    }
    return *it->second.verdict;
  }

 private:
  absl::Mutex mu_;
  absl::flat_hash_map<const grpc::ServerContextBase*, Entry> calls_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

absl::StatusOr<Admitted> CallVerdict(const grpc::ServerContextBase& ctx) {
  return Verdicts::Get().Find(&ctx);
}

grpc::Status AuthzVerdict(const grpc::ServerContextBase& ctx) {
  return ToGrpcStatus(Verdicts::Get().Find(&ctx).status());
}

absl::StatusOr<RequestDecider> DeferRequestVerdicts(const grpc::ServerContextBase& ctx) {
  return Verdicts::Get().Defer(&ctx);
}

namespace internal {

VerdictSlot::VerdictSlot(const grpc::ServerContextBase* ctx) : ctx_(ctx) {
  Verdicts::Get().Open(ctx_, this, &deferred_);
}

VerdictSlot::~VerdictSlot() { Verdicts::Get().Close(ctx_, this); }

void VerdictSlot::Decide(absl::StatusOr<Admitted> verdict) {
  Verdicts::Get().Decide(ctx_, this, std::move(verdict));
}

void VerdictSlot::OfferRequestDecider(RequestDecider decider) {
  Verdicts::Get().Offer(ctx_, this, std::move(decider));
}

}  // namespace internal
}  // namespace caseledger
