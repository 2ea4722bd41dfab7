#include "services/cluster/partition_router.h"

#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "ledger/partition.h"
#include "ledger/pg_store.h"
#include "services/authz/authz_directory.h"

namespace caseledger {

std::string OwnerAddressOf(const absl::Status& status) {
  auto address = status.GetPayload(kOwnerPayload);
  return address.has_value() ? std::string(*address) : std::string();
}

PartitionRouter::PartitionRouter(PartitionedNode* node, Options options)
    : node_(node), options_(std::move(options)) {}

int32_t PartitionRouter::PartitionOfCase(absl::string_view stream_id) const {
  return static_cast<int32_t>(PartitionOf(stream_id, static_cast<uint32_t>(options_.partitions)));
}

absl::StatusOr<std::shared_ptr<OwnedPartition>> PartitionRouter::Route(
    absl::string_view stream_id) {
  const int32_t p = PartitionOfCase(stream_id);
  absl::StatusOr<std::shared_ptr<Ledger>> ledger = node_->Partition(p);
  std::shared_ptr<OwnedPartition> dropped;  // closed outside mu_
  {
    absl::MutexLock lock(&mu_);
    auto it = owned_.find(p);
    if (ledger.ok()) {
      if (it != owned_.end() && it->second->ledger == *ledger) return it->second;
      // Newly taken (or taken again): a fresh gate, whose cached case
      // states start from this ledger's records.
      auto entry = std::make_shared<OwnedPartition>();
      entry->partition = p;
      entry->ledger = *ledger;
      entry->gate = std::make_unique<CaseGate>(entry->ledger.get(), options_.gate);
      if (it != owned_.end()) dropped = std::move(it->second);
      owned_[p] = entry;
      return entry;
    }
    if (it != owned_.end()) {
      dropped = std::move(it->second);
      owned_.erase(it);
    }
  }
  absl::StatusOr<PgPartitionHead> head = ReadPgPartitionHead(options_.conninfo, p);
  if (head.ok() && head->lease_live && head->owner != options_.node_id &&
      !head->owner_address.empty()) {
    absl::Status redirect = absl::UnavailableError(absl::StrCat(
        "stream_id: the case is in partition ", p, ", owned by node \"", head->owner, "\" at ",
        head->owner_address,
        "; send the call there (an append retried with the same event id returns the original "
        "result)"));
    redirect.SetPayload(kOwnerPayload, absl::Cord(head->owner_address));
    return redirect;
  }
  return absl::UnavailableError(absl::StrCat(
      "stream_id: the case is in partition ", p,
      ", which has no live owner now (a takeover); retry with the same event id"));
}

std::shared_ptr<CaseGate> PartitionRouter::GateFor(absl::string_view stream_id) {
  absl::StatusOr<std::shared_ptr<OwnedPartition>> owned = Route(stream_id);
  if (!owned.ok()) return nullptr;
  return std::shared_ptr<CaseGate>(*owned, (*owned)->gate.get());
}

absl::StatusOr<CaseFacts> PartitionRouter::Case(const std::string& case_id) {
  // The server's own streams are not cases (as ServerResourceDirectory).
  if (!case_id.empty() && case_id[0] == '@') return CaseFacts();
  absl::StatusOr<std::shared_ptr<OwnedPartition>> owned = Route(case_id);
  if (!owned.ok()) return owned.status();
  return CaseFactsFromGate(*(*owned)->gate, case_id);
}

absl::StatusOr<RecordFacts> PartitionRouter::Record(uint64_t) {
  return absl::UnimplementedError(
      "record_seq: with --pg_partitions > 1 a seq names no record without its partition; reading "
      "one record by seq is not served by a partitioned server");
}

}  // namespace caseledger
