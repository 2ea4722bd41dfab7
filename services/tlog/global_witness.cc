#include "services/tlog/global_witness.h"

#include <optional>
#include <utility>

namespace caseledger {

std::unique_ptr<WitnessPusher> NewGlobalWitnessPusher(PartitionedNode* node,
                                                      WitnessPusherOptions options) {
  options.latest = [node]() -> absl::StatusOr<std::optional<StoredCheckpoint>> {
    if (!node->Partition(0).ok()) return std::optional<StoredCheckpoint>();
    absl::StatusOr<std::optional<GlobalCheckpoint>> g = node->LatestGlobal();
    if (!g.ok()) return g.status();
    if (!g->has_value()) return std::optional<StoredCheckpoint>();
    return std::optional<StoredCheckpoint>(StoredCheckpoint{(*g)->size, (*g)->note});
  };
  options.proof = [node](uint64_t from, uint64_t to) { return node->GlobalConsistency(from, to); };
  options.store = [node](absl::string_view cosigned_note) {
    return node->AddGlobalCosignatures(cosigned_note);
  };
  return std::make_unique<WitnessPusher>(std::move(options));
}

}  // namespace caseledger
