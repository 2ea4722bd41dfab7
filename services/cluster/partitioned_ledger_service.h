// LedgerService of a partitioned server (--pg_partitions > 1,
// ledger/CLUSTER.md "Serving P > 1"). Appends go to the case's partition:
// appended here through that partition's gate when this node owns it, else
// refused UNAVAILABLE with the owner's address (status message and the
// kOwnerTrailer trailing metadata) so that the client sends them there.
// Checkpoints are the global log's; proofs are two-level (a record in its
// partition, that partition's checkpoint in the global log) and any node
// gives them. ReadStream is served by the owner of the case's partition and
// redirected like an append elsewhere. The reads of the whole log (ReadLog,
// Subscribe) and ListCheckpoints are not served with P > 1: UNIMPLEMENTED
// naming the flag.
#ifndef CASELEDGER_SERVICES_CLUSTER_PARTITIONED_LEDGER_SERVICE_H_
#define CASELEDGER_SERVICES_CLUSTER_PARTITIONED_LEDGER_SERVICE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ledger/checkpoint.h"
#include "ledger/pg_partitions.h"
#include "proto/ledger.grpc.pb.h"
#include "services/authz/authz.h"
#include "services/cluster/cluster_client.h"
#include "services/cluster/partition_router.h"

namespace caseledger {

struct PartitionedLedgerServiceOptions {
  std::string origin;  // --origin (the partitions' and, with "/global", the global log's)
  int32_t partitions = 2;
  size_t max_batch_events = 10000;
  // Optional: asked before each append, as LedgerServiceOptions::admit_appends.
  std::function<absl::Status()> admit_appends;
};

// Thread-safe. Everything passed in is borrowed and must outlive the
// service. `authorizer` decides whether a caller may see a record's leaf in
// a proof (the caller may ReadLog, AUTHZ.md); every call is authorized by
// the AuthzInterceptorFactory first, whose verdict each handler returns first.
class PartitionedLedgerService final : public v1::LedgerService::Service {
 public:
  PartitionedLedgerService(PartitionedNode* node, PartitionRouter* router,
                           const NoteSigner* global_signer, Authorizer* authorizer,
                           PartitionedLedgerServiceOptions options);

  grpc::Status Append(grpc::ServerContext* ctx, const v1::AppendRequest* req,
                      v1::AppendResponse* resp) override;
  grpc::Status AppendBatch(grpc::ServerContext* ctx, const v1::AppendBatchRequest* req,
                           v1::AppendBatchResponse* resp) override;
  // One request at a time: each is answered once durable, then the next read.
  grpc::Status AppendStream(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<v1::AppendResponse, v1::AppendRequest>* stream) override;
  // The global checkpoint: size 0 the newest (NOT_FOUND before the first),
  // else the one of that size with its stored witness cosignatures.
  grpc::Status GetCheckpoint(grpc::ServerContext* ctx, const v1::GetCheckpointRequest* req,
                             v1::Checkpoint* resp) override;
  // Needs `partition` and tree_size 0: the proof up to the newest global
  // checkpoint (FAILED_PRECONDITION until one covers the record).
  grpc::Status GetInclusionProof(grpc::ServerContext* ctx, const v1::InclusionProofRequest* req,
                                 v1::InclusionProof* resp) override;
  // Of the global log.
  grpc::Status GetConsistencyProof(grpc::ServerContext* ctx, const v1::ConsistencyProofRequest* req,
                                   v1::ConsistencyProof* resp) override;
  // The global log's verifier key, the ledger's origin and P.
  grpc::Status GetPublicKey(grpc::ServerContext* ctx, const v1::GetPublicKeyRequest* req,
                            v1::PublicKey* resp) override;
  // A case's records from its partition when this node owns it, as a
  // single node reads them (`seq` is the seq in that partition); otherwise,
  // after the authorization verdict, the redirect Route gives (UNAVAILABLE,
  // the owner in kOwnerTrailer), nothing written.
  grpc::Status ReadStream(grpc::ServerContext* ctx, const v1::ReadStreamRequest* req,
                          grpc::ServerWriter<v1::Record>* writer) override;
  grpc::Status ReadLog(grpc::ServerContext* ctx, const v1::ReadLogRequest* req,
                       grpc::ServerWriter<v1::Record>* writer) override;
  grpc::Status Subscribe(grpc::ServerContext* ctx, const v1::SubscribeRequest* req,
                         grpc::ServerWriter<v1::Record>* writer) override;
  grpc::Status ListCheckpoints(grpc::ServerContext* ctx, const v1::ListCheckpointsRequest* req,
                               grpc::ServerWriter<v1::Checkpoint>* writer) override;

 private:
  // Appends events of one case's partition through its gate, or the
  // routing refusal; `partition` is set to the events' partition.
  absl::StatusOr<std::vector<AppendResult>> AppendRouted(std::vector<GatedEvent> events,
                                                         int32_t* partition);
  // UNIMPLEMENTED naming the method and --pg_partitions.
  grpc::Status NotServed(grpc::ServerContext* ctx, absl::string_view method) const;

  PartitionedNode* const node_;
  PartitionRouter* const router_;
  const NoteSigner* const global_signer_;
  Authorizer* const authorizer_;
  const PartitionedLedgerServiceOptions options_;
};

// The status a partitioned server answers with, converted once: a redirect
// also sets the kOwnerTrailer trailing metadata.
grpc::Status AnswerStatus(grpc::ServerContext* ctx, const absl::Status& status);

}  // namespace caseledger

#endif  // CASELEDGER_SERVICES_CLUSTER_PARTITIONED_LEDGER_SERVICE_H_
