// What a client of a partitioned server (--pg_partitions > 1,
// ledger/CLUSTER.md "Serving P > 1") needs, linkable without the server:
// the redirect to a partition's owner, and the two-level proof of an
// InclusionProof answer.
#ifndef CASELEDGER_SERVICES_CLUSTER_CLUSTER_CLIENT_H_
#define CASELEDGER_SERVICES_CLUSTER_CLUSTER_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <string>

#include "absl/status/statusor.h"
#include "ledger/partition.h"
#include "proto/ledger.pb.h"

namespace caseledger {

// The trailing metadata of an append a node refused UNAVAILABLE because
// another node owns the case's partition: that node's address (host:port).
// Sending the same request there (same event id) is safe.
inline constexpr char kOwnerTrailer[] = "caseledger-owner-address";

// The owner's address a finished call's trailing metadata names; empty when
// it names none.
std::string RedirectAddress(const grpc::ClientContext& ctx);

// The two-level proof of a partitioned InclusionProof answer, for
// VerifyPartitionedProof; `record_leaf` is the record's leaf as the caller
// read it (the answer's partitioned.record_leaf when the caller may see it).
// INVALID_ARGUMENT naming the field when the answer is not partitioned or a
// hash is not 32 bytes.
absl::StatusOr<PartitionedProof> PartitionedProofFromWire(const v1::InclusionProof& proof,
                                                         std::string record_leaf);

}  // namespace caseledger

#endif  // CASELEDGER_SERVICES_CLUSTER_CLUSTER_CLIENT_H_
