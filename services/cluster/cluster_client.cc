#include "services/cluster/cluster_client.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "ledger/hash.h"

namespace caseledger {

std::string RedirectAddress(const grpc::ClientContext& ctx) {
  const auto& trailers = ctx.GetServerTrailingMetadata();
  auto it = trailers.find(kOwnerTrailer);
  if (it == trailers.end()) return "";
  return std::string(it->second.data(), it->second.size());
}

absl::StatusOr<PartitionedProof> PartitionedProofFromWire(const v1::InclusionProof& proof,
                                                         std::string record_leaf) {
  if (!proof.has_partitioned()) {
    return absl::InvalidArgumentError("partitioned: missing (ask with a partition)");
  }
  const v1::PartitionedInclusion& p = proof.partitioned();
  PartitionedProof out;
  out.partition = p.partition();
  out.record_leaf = std::move(record_leaf);
  out.seq = proof.seq();
  out.partition_body = p.partition_body();
  out.global_index = p.global_index();
  for (int i = 0; i < proof.hashes_size(); ++i) {
    absl::StatusOr<Hash> h = HashFromBytes(proof.hashes(i));
    if (!h.ok()) return absl::InvalidArgumentError(absl::StrCat("hashes[", i, "]: ", h.status().message()));
    out.partition_proof.push_back(*h);
  }
  for (int i = 0; i < p.global_hashes_size(); ++i) {
    absl::StatusOr<Hash> h = HashFromBytes(p.global_hashes(i));
    if (!h.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("partitioned.global_hashes[", i, "]: ", h.status().message()));
    }
    out.global_proof.push_back(*h);
  }
  return out;
}

}  // namespace caseledger
