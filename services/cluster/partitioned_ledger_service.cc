#include "services/cluster/partitioned_ledger_service.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "ledger/internal/status_macros.h"
#include "ledger/partition.h"
#include "services/append/event_codec.h"
#include "services/authz/authz_verdict.h"
#include "services/authz/request_resources.h"
#include "services/common/grpc_status.h"

namespace caseledger {
namespace {

void ToWire(const AppendResult& r, int32_t partition, v1::AppendResponse* out) {
  out->set_seq(r.seq);
  out->set_version(r.version);
  out->set_leaf_hash(std::string(AsBytes(r.leaf_hash)));
  out->set_duplicate(r.duplicate);
  out->set_partition(static_cast<uint32_t>(partition));
}

}  // namespace

grpc::Status AnswerStatus(grpc::ServerContext* ctx, const absl::Status& status) {
  if (std::string owner = OwnerAddressOf(status); !owner.empty()) {
    ctx->AddTrailingMetadata(kOwnerTrailer, owner);
  }
  return ToGrpcStatus(status);
}

PartitionedLedgerService::PartitionedLedgerService(PartitionedNode* node, PartitionRouter* router,
                                                   const NoteSigner* global_signer,
                                                   Authorizer* authorizer,
                                                   PartitionedLedgerServiceOptions options)
    : node_(node),
      router_(router),
      global_signer_(global_signer),
      authorizer_(authorizer),
      options_(std::move(options)) {}

absl::StatusOr<std::vector<AppendResult>> PartitionedLedgerService::AppendRouted(
    std::vector<GatedEvent> events, int32_t* partition) {
  if (events.empty()) return absl::InvalidArgumentError("requests: must not be empty");
  const int32_t p = router_->PartitionOfCase(events.front().wire.stream_id());
  for (size_t i = 1; i < events.size(); ++i) {
    const int32_t q = router_->PartitionOfCase(events[i].wire.stream_id());
    if (q != p) {
      return absl::InvalidArgumentError(absl::StrCat(
          "requests[", i, "].event.stream_id: its case is in partition ", q,
          ", requests[0]'s in partition ", p,
          "; with --pg_partitions > 1 a batch must stay within one partition"));
    }
  }
  *partition = p;
  if (options_.admit_appends) CL_RETURN_IF_ERROR(options_.admit_appends());
  CL_ASSIGN_OR_RETURN(std::shared_ptr<OwnedPartition> owned,
                      router_->Route(events.front().wire.stream_id()));
  return owned->gate->Append(std::move(events));
}

grpc::Status PartitionedLedgerService::Append(grpc::ServerContext* ctx,
                                              const v1::AppendRequest* req,
                                              v1::AppendResponse* resp) {
  if (absl::StatusOr<Admitted> v = CallVerdict(*ctx); !v.ok()) {
    return AnswerStatus(ctx, v.status());
  }
  absl::StatusOr<GatedEvent> event = AppendFromWire(*req);
  if (!event.ok()) return AnswerStatus(ctx, event.status());
  std::vector<GatedEvent> one;
  one.push_back(*std::move(event));
  int32_t partition = 0;
  absl::StatusOr<std::vector<AppendResult>> r = AppendRouted(std::move(one), &partition);
  if (!r.ok()) return AnswerStatus(ctx, r.status());
  ToWire(r->front(), partition, resp);
  return grpc::Status::OK;
}

grpc::Status PartitionedLedgerService::AppendBatch(grpc::ServerContext* ctx,
                                                   const v1::AppendBatchRequest* req,
                                                   v1::AppendBatchResponse* resp) {
  if (absl::StatusOr<Admitted> v = CallVerdict(*ctx); !v.ok()) {
    return AnswerStatus(ctx, v.status());
  }
  absl::StatusOr<std::vector<GatedEvent>> events = BatchFromWire(*req, options_.max_batch_events);
  if (!events.ok()) return AnswerStatus(ctx, events.status());
  int32_t partition = 0;
  absl::StatusOr<std::vector<AppendResult>> r = AppendRouted(*std::move(events), &partition);
  if (!r.ok()) return AnswerStatus(ctx, r.status());
  for (const AppendResult& one : *r) ToWire(one, partition, resp->add_results());
  return grpc::Status::OK;
}

grpc::Status PartitionedLedgerService::AppendStream(
    grpc::ServerContext* ctx,
    grpc::ServerReaderWriter<v1::AppendResponse, v1::AppendRequest>* stream) {
  // The verdict on the caller alone, then on each request as it is read.
  if (grpc::Status refused = AuthzVerdict(*ctx); !refused.ok()) return refused;
  v1::AppendRequest req;
  for (uint64_t index = 0; stream->Read(&req); ++index) {
    absl::StatusOr<GatedEvent> event = AppendFromWire(req);
    if (event.ok()) {
      if (absl::StatusOr<Admitted> v = CallVerdict(*ctx); !v.ok()) event = v.status();
    }
    absl::StatusOr<std::vector<AppendResult>> r = event.status();
    int32_t partition = 0;
    if (event.ok()) {
      std::vector<GatedEvent> one;
      one.push_back(*std::move(event));
      r = AppendRouted(std::move(one), &partition);
    }
    if (!r.ok()) {
      return AnswerStatus(ctx, absl::Status(r.status().code(),
                                            absl::StrCat("request ", index, ": ", r.status().message())));
    }
    v1::AppendResponse resp;
    ToWire(r->front(), partition, &resp);
    if (!stream->Write(resp)) return grpc::Status(grpc::StatusCode::CANCELLED, "client went away");
  }
  return grpc::Status::OK;
}

grpc::Status PartitionedLedgerService::GetCheckpoint(grpc::ServerContext* ctx,
                                                     const v1::GetCheckpointRequest* req,
                                                     v1::Checkpoint* resp) {
  if (grpc::Status refused = AuthzVerdict(*ctx); !refused.ok()) return refused;
  // The newest, or the one of that size with its witnesses' cosignatures.
  GlobalCheckpoint g;
  if (req->size() == 0) {
    absl::StatusOr<std::optional<GlobalCheckpoint>> latest = node_->LatestGlobal();
    if (!latest.ok()) return AnswerStatus(ctx, latest.status());
    if (!latest->has_value()) {
      return AnswerStatus(ctx, absl::NotFoundError("global log: no global checkpoint yet"));
    }
    g = **latest;
  } else {
    absl::StatusOr<std::string> note = node_->CosignedGlobal(req->size());
    if (!note.ok()) return AnswerStatus(ctx, note.status());
    g = GlobalCheckpoint{req->size(), *std::move(note)};
  }
  absl::StatusOr<Checkpoint> parsed = ParseCheckpointNote(g.note);
  if (!parsed.ok()) {
    return AnswerStatus(ctx, absl::DataLossError(absl::StrCat("stored global checkpoint: ",
                                                              parsed.status().message())));
  }
  resp->set_size(g.size);
  resp->set_root_hash(std::string(AsBytes(parsed->root)));
  resp->set_note(g.note);
  return grpc::Status::OK;
}

grpc::Status PartitionedLedgerService::GetInclusionProof(grpc::ServerContext* ctx,
                                                         const v1::InclusionProofRequest* req,
                                                         v1::InclusionProof* resp) {
  absl::StatusOr<Admitted> admitted = CallVerdict(*ctx);
  if (!admitted.ok()) return AnswerStatus(ctx, admitted.status());
  if (!req->has_partition()) {
    return AnswerStatus(ctx, absl::InvalidArgumentError(absl::StrCat(
                                 "partition: required, the ledger has ", options_.partitions,
                                 " partitions (--pg_partitions); seq is a seq in it")));
  }
  if (req->partition() >= static_cast<uint32_t>(options_.partitions)) {
    return AnswerStatus(ctx, absl::InvalidArgumentError(absl::StrCat(
                                 "partition: got ", req->partition(), ", want 0 to ",
                                 options_.partitions - 1)));
  }
  if (req->tree_size() != 0) {
    return AnswerStatus(ctx, absl::InvalidArgumentError(absl::StrCat(
                                 "tree_size: got ", req->tree_size(),
                                 ", want 0 with a partition: the proof goes up to the newest "
                                 "global checkpoint")));
  }
  absl::StatusOr<std::pair<PartitionedProof, GlobalCheckpoint>> proved =
      node_->Prove(static_cast<int32_t>(req->partition()), req->seq());
  if (!proved.ok()) return AnswerStatus(ctx, proved.status());
  const PartitionedProof& p = proved->first;
  absl::StatusOr<Checkpoint> body = ParseCheckpointBody(p.partition_body);
  if (!body.ok()) {
    return AnswerStatus(ctx, absl::DataLossError(absl::StrCat("stored global leaf: ",
                                                              body.status().message())));
  }
  resp->set_seq(p.seq);
  resp->set_tree_size(body->size);
  resp->set_leaf_hash(std::string(AsBytes(LeafHash(p.record_leaf))));
  for (const Hash& h : p.partition_proof) resp->add_hashes(std::string(AsBytes(h)));
  v1::PartitionedInclusion* out = resp->mutable_partitioned();
  out->set_partition(p.partition);
  out->set_partition_body(p.partition_body);
  out->set_global_index(p.global_index);
  for (const Hash& h : p.global_proof) out->add_global_hashes(std::string(AsBytes(h)));
  out->set_global_size(proved->second.size);
  out->set_global_note(proved->second.note);
  // The record's leaf goes only to a caller who may read the log (AUTHZ.md
  // ReadLog); others prove a record they already hold.
  Resource whole_log;
  whole_log.whole_log = true;
  if (authorizer_->Check(admitted->caller, "/caseledger.v1.LedgerService/ReadLog", whole_log).ok()) {
    out->set_record_leaf(p.record_leaf);
  }
  return grpc::Status::OK;
}

grpc::Status PartitionedLedgerService::GetConsistencyProof(grpc::ServerContext* ctx,
                                                           const v1::ConsistencyProofRequest* req,
                                                           v1::ConsistencyProof* resp) {
  if (grpc::Status refused = AuthzVerdict(*ctx); !refused.ok()) return refused;
  if (req->from_size() == 0 || req->from_size() > req->to_size()) {
    return AnswerStatus(ctx, absl::InvalidArgumentError(
                                 absl::StrCat("from_size: got ", req->from_size(),
                                              ", want 1 to to_size ", req->to_size())));
  }
  absl::StatusOr<std::vector<Hash>> proof =
      node_->GlobalConsistency(req->from_size(), req->to_size());
  if (!proof.ok()) return AnswerStatus(ctx, proof.status());
  resp->set_from_size(req->from_size());
  resp->set_to_size(req->to_size());
  for (const Hash& h : *proof) resp->add_hashes(std::string(AsBytes(h)));
  return grpc::Status::OK;
}

grpc::Status PartitionedLedgerService::GetPublicKey(grpc::ServerContext* ctx,
                                                    const v1::GetPublicKeyRequest*,
                                                    v1::PublicKey* resp) {
  if (grpc::Status refused = AuthzVerdict(*ctx); !refused.ok()) return refused;
  resp->set_verifier_key(global_signer_->VerifierKey());
  resp->set_origin(options_.origin);
  resp->set_partitions(static_cast<uint32_t>(options_.partitions));
  return grpc::Status::OK;
}

grpc::Status PartitionedLedgerService::NotServed(grpc::ServerContext* ctx,
                                                 absl::string_view method) const {
  if (grpc::Status refused = AuthzVerdict(*ctx); !refused.ok()) return refused;
  return ToGrpcStatus(absl::UnimplementedError(absl::StrCat(
      "LedgerService.", method, ": not served with --pg_partitions=", options_.partitions,
      " (P > 1) yet; appends, ReadStream (from the case's owner), GetCheckpoint (global), "
      "GetInclusionProof (with partition), GetConsistencyProof and GetPublicKey are "
      "(ledger/CLUSTER.md \"Serving P > 1\")")));
}

grpc::Status PartitionedLedgerService::ReadStream(grpc::ServerContext* ctx,
                                                  const v1::ReadStreamRequest* req,
                                                  grpc::ServerWriter<v1::Record>* writer) {
  // Authorized first (a redirect the interceptor's directory gave while
  // deciding comes back here too); only then routed, so that a refused
  // caller learns nothing of where the case lives.
  absl::StatusOr<Admitted> admitted = CallVerdict(*ctx);
  if (!admitted.ok()) return AnswerStatus(ctx, admitted.status());
  if (absl::Status form = CheckForm(*req); !form.ok()) return AnswerStatus(ctx, form);
  absl::StatusOr<std::shared_ptr<OwnedPartition>> owned = router_->Route(req->stream_id());
  if (!owned.ok()) return AnswerStatus(ctx, owned.status());
  const Ledger& ledger = *(*owned)->ledger;
  const bool commitments_only = admitted->decision.commitments_only;
  uint64_t version = req->from_version();
  uint64_t left = req->limit() == 0 ? UINT64_MAX : req->limit();
  // In chunks, as a single node reads a stream: no iterator is held while
  // the client reads slowly.
  while (left > 0) {
    std::vector<uint64_t> seqs;
    absl::Status s = ledger.store().ScanStream(req->stream_id(), version,
                                               [&](uint64_t v, uint64_t seq) {
                                                 seqs.push_back(seq);
                                                 version = v + 1;
                                                 return seqs.size() < 256 && seqs.size() < left;
                                               });
    if (!s.ok()) return AnswerStatus(ctx, s);
    if (seqs.empty()) break;
    for (uint64_t seq : seqs) {
      if (ctx->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "client cancelled");
      absl::StatusOr<RecordView> view = ledger.Read(seq);
      if (!view.ok()) return AnswerStatus(ctx, view.status());
      absl::StatusOr<v1::Record> record = ToWireRecord(*view);
      if (!record.ok()) return AnswerStatus(ctx, record.status());
      if (commitments_only) {
        if (absl::Status c = ToCommitmentsOnly(&*record); !c.ok()) return AnswerStatus(ctx, c);
      }
      if (!writer->Write(*record)) {
        return grpc::Status(grpc::StatusCode::CANCELLED, "client went away");
      }
    }
    left -= seqs.size();
  }
  return grpc::Status::OK;
}

grpc::Status PartitionedLedgerService::ReadLog(grpc::ServerContext* ctx, const v1::ReadLogRequest*,
                                               grpc::ServerWriter<v1::Record>*) {
  return NotServed(ctx, "ReadLog");
}
grpc::Status PartitionedLedgerService::Subscribe(grpc::ServerContext* ctx,
                                                 const v1::SubscribeRequest*,
                                                 grpc::ServerWriter<v1::Record>*) {
  return NotServed(ctx, "Subscribe");
}
grpc::Status PartitionedLedgerService::ListCheckpoints(grpc::ServerContext* ctx,
                                                       const v1::ListCheckpointsRequest*,
                                                       grpc::ServerWriter<v1::Checkpoint>*) {
  return NotServed(ctx, "ListCheckpoints");
}

}  // namespace caseledger
