// Where a case's appends go in a partitioned server (--pg_partitions > 1,
// ledger/CLUSTER.md "Serving P > 1"): to this node's ledger of the case's
// partition when it owns that partition, through one append gate per owned
// partition; otherwise a redirect to the owner.
#ifndef CASELEDGER_SERVICES_CLUSTER_PARTITION_ROUTER_H_
#define CASELEDGER_SERVICES_CLUSTER_PARTITION_ROUTER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "ledger/ledger.h"
#include "ledger/pg_partitions.h"
#include "services/append/case_gate.h"
#include "services/authz/authz.h"

namespace caseledger {

// The payload key of a redirect status: its value is the owner's address
// (host:port, the owner's --listen as written in its lease row).
inline constexpr char kOwnerPayload[] = "caseledger.owner_address";

// The owner's address a redirect status carries; empty for any other status.
std::string OwnerAddressOf(const absl::Status& status);

// An owned partition: its ledger and the gate every append to it goes
// through. Shared (`std::shared_ptr`) because a takeover may drop the
// partition from the router while a call still uses it; the last user
// closes it.
struct OwnedPartition {
  int32_t partition = 0;
  std::shared_ptr<Ledger> ledger;
  std::unique_ptr<CaseGate> gate;  // over `ledger`
};

// Thread-safe. `node` is borrowed and must outlive the router.
class PartitionRouter : public ResourceDirectory {
 public:
  struct Options {
    std::string conninfo;  // to read the owner of a partition not ours
    std::string node_id;
    int32_t partitions = 1;  // P, as the node's
    CaseGate::Options gate;
  };
  PartitionRouter(PartitionedNode* node, Options options);

  int32_t partitions() const { return options_.partitions; }
  // The case's partition (PartitionOf).
  int32_t PartitionOfCase(absl::string_view stream_id) const;

  // The case's partition when this node owns it. Otherwise UNAVAILABLE,
  // nothing stored: "stream_id: the case is in partition 2, owned by node
  // "b" at 10.0.0.2:7070; send the call there (an append retried with the
  // same event id returns the original result)", with the address as the
  // kOwnerPayload payload; or, when no node holds a live lease (a
  // takeover), without an address.
  absl::StatusOr<std::shared_ptr<OwnedPartition>> Route(absl::string_view stream_id);

  // The gate of the case's partition when owned here; null otherwise. The
  // pointer shares ownership of its partition (see OwnedPartition).
  std::shared_ptr<CaseGate> GateFor(absl::string_view stream_id);

  // ResourceDirectory: a case of an owned partition as its gate sees it;
  // any other case is Route's refusal (so a caller is sent to the owner,
  // which decides). Record(seq) is UNIMPLEMENTED: a seq does not name a
  // record without its partition.
  absl::StatusOr<CaseFacts> Case(const std::string& case_id) override;
  absl::StatusOr<RecordFacts> Record(uint64_t seq) override;

 private:
  PartitionedNode* const node_;
  const Options options_;
  absl::Mutex mu_;
  std::map<int32_t, std::shared_ptr<OwnedPartition>> owned_ ABSL_GUARDED_BY(mu_);
};

}  // namespace caseledger

#endif  // CASELEDGER_SERVICES_CLUSTER_PARTITION_ROUTER_H_
