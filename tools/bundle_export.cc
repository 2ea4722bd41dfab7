#include "tools/bundle_export.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ledger/checkpoint.h"
#include "ledger/internal/status_macros.h"
#include "ledger/record.h"

namespace caseledger::ledgerctl {
namespace {

absl::Status FromGrpc(const grpc::Status& s, absl::string_view rpc) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      absl::StrCat(rpc, ": ", s.error_message()));
}

void SetDeadline(grpc::ClientContext* ctx, absl::Duration timeout) {
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
}

absl::StatusOr<std::vector<Hash>> Hashes(const google::protobuf::RepeatedPtrField<std::string>& in,
                                         absl::string_view what) {
  std::vector<Hash> out;
  for (const std::string& b : in) {
    absl::StatusOr<Hash> h = HashFromBytes(b);
    if (!h.ok()) return absl::DataLossError(absl::StrCat(what, ": ", h.status().message()));
    out.push_back(*h);
  }
  return out;
}

}  // namespace

absl::StatusOr<ExportSummary> ExportBundle(v1::LedgerService::StubInterface& stub,
                                           const ExportOptions& options,
                                           const BundleWriter::Sink& sink) {
  v1::PublicKey key;
  {
    grpc::ClientContext ctx;
    SetDeadline(&ctx, options.timeout);
    CL_RETURN_IF_ERROR(
        FromGrpc(stub.GetPublicKey(&ctx, v1::GetPublicKeyRequest(), &key), "GetPublicKey"));
  }
  uint64_t end;
  if (options.to.has_value()) {
    end = *options.to;
  } else {
    grpc::ClientContext ctx;
    SetDeadline(&ctx, options.timeout);
    v1::Checkpoint latest;
    CL_RETURN_IF_ERROR(
        FromGrpc(stub.GetCheckpoint(&ctx, v1::GetCheckpointRequest(), &latest), "GetCheckpoint"));
    end = latest.size();
  }
  if (options.from > end) {
    return absl::InvalidArgumentError(
        absl::StrCat("--from: got ", options.from, ", want at most ", end,
                     options.to.has_value() ? " (--to)" : " (the latest checkpoint's size)"));
  }

  // Checkpoints in the range, oldest first.
  std::vector<v1::Checkpoint> checkpoints;
  {
    grpc::ClientContext ctx;
    v1::ListCheckpointsRequest req;
    req.set_from_size(options.from);
    req.set_to_size(end == 0 ? 1 : end);  // 0 would mean "no limit"
    auto reader = stub.ListCheckpoints(&ctx, req);
    v1::Checkpoint cp;
    while (reader->Read(&cp)) {
      if (cp.size() <= end) checkpoints.push_back(cp);
    }
    CL_RETURN_IF_ERROR(FromGrpc(reader->Finish(), "ListCheckpoints"));
  }

  BundleHeader header;
  header.origin = key.origin();
  header.verifier_key = key.verifier_key();
  header.first_seq = options.from;
  header.end_seq = end;
  CL_ASSIGN_OR_RETURN(std::unique_ptr<BundleWriter> writer, BundleWriter::New(header, sink));

  if (options.from > 0) {
    // The leaf before the range and its path: the tree the range extends.
    grpc::ClientContext ctx;
    SetDeadline(&ctx, options.timeout);
    v1::InclusionProofRequest req;
    req.set_seq(options.from - 1);
    req.set_tree_size(options.from);
    v1::InclusionProof proof;
    CL_RETURN_IF_ERROR(FromGrpc(stub.GetInclusionProof(&ctx, req, &proof), "GetInclusionProof"));
    BundleStart start;
    start.size = options.from;
    absl::StatusOr<Hash> leaf = HashFromBytes(proof.leaf_hash());
    if (!leaf.ok()) return absl::DataLossError("GetInclusionProof: leaf_hash is not 32 bytes");
    start.prev_leaf_hash = *leaf;
    CL_ASSIGN_OR_RETURN(start.inclusion_proof, Hashes(proof.hashes(), "GetInclusionProof"));
    CL_RETURN_IF_ERROR(writer->AddStart(start));
    if (!checkpoints.empty() && checkpoints.back().size() > options.from) {
      grpc::ClientContext cctx;
      SetDeadline(&cctx, options.timeout);
      v1::ConsistencyProofRequest creq;
      creq.set_from_size(options.from);
      creq.set_to_size(checkpoints.back().size());
      v1::ConsistencyProof cproof;
      CL_RETURN_IF_ERROR(
          FromGrpc(stub.GetConsistencyProof(&cctx, creq, &cproof), "GetConsistencyProof"));
      BundleConsistency c;
      c.from_size = options.from;
      c.to_size = checkpoints.back().size();
      CL_ASSIGN_OR_RETURN(c.proof, Hashes(cproof.hashes(), "GetConsistencyProof"));
      CL_RETURN_IF_ERROR(writer->AddConsistency(c));
    }
  }

  size_t next_cp = 0;
  uint64_t written_cps = 0;
  auto add_checkpoints_at = [&](uint64_t size) -> absl::Status {
    while (next_cp < checkpoints.size() && checkpoints[next_cp].size() <= size) {
      const v1::Checkpoint& cp = checkpoints[next_cp++];
      if (cp.size() == size) {
        CL_RETURN_IF_ERROR(writer->AddCheckpoint(size, cp.note()));
        ++written_cps;
      }
    }
    return absl::OkStatus();
  };
  CL_RETURN_IF_ERROR(add_checkpoints_at(options.from));

  // ReadLog's limit is 32 bits: one stream per chunk.
  constexpr uint64_t kChunk = 1 << 20;
  uint64_t total = end - options.from;
  for (uint64_t seq = options.from; seq < end;) {
    grpc::ClientContext ctx;
    v1::ReadLogRequest req;
    req.set_from_seq(seq);
    req.set_limit(static_cast<uint32_t>(std::min(kChunk, end - seq)));
    auto reader = stub.ReadLog(&ctx, req);
    v1::Record r;
    uint64_t chunk_start = seq;
    while (reader->Read(&r)) {
      if (r.seq() != seq) {
        ctx.TryCancel();
        reader->Finish();
        return absl::DataLossError(
            absl::StrCat("ReadLog: sent record ", r.seq(), " where ", seq, " was due"));
      }
      if (options.payloads == BundlePayload::kFull) {
        // The server sends commitments only where the caller may not read
        // the payload (AUTHZ.md `commitments`): a full bundle of those would
        // fail verification at its first record, so say why here.
        absl::StatusOr<PayloadView> p = DecodePayloadView(r.payload());
        if (p.ok() && p->field_count > 0 && p->key_id.empty() && p->sealed_openings.empty()) {
          ctx.TryCancel();
          reader->Finish();
          return absl::FailedPreconditionError(absl::StrCat(
              "ReadLog: record ", seq,
              " came with its field commitments only (this caller may not read every case's "
              "payloads, e.g. an auditor whose grant does not cover all cases); export with "
              "--payloads=commitments"));
        }
      }
      CL_RETURN_IF_ERROR(writer->AddRecord(seq, r.leaf(), r.payload(), options.payloads));
      ++seq;
      CL_RETURN_IF_ERROR(add_checkpoints_at(seq));
      if (options.progress && (seq - options.from) % 4096 == 0) {
        options.progress(seq - options.from, total);
      }
    }
    CL_RETURN_IF_ERROR(FromGrpc(reader->Finish(), "ReadLog"));
    if (seq == chunk_start) {
      return absl::OutOfRangeError(
          absl::StrCat("--to: got ", end, ", but the log holds only ", seq, " records"));
    }
  }
  CL_RETURN_IF_ERROR(writer->Finish());
  if (options.progress) options.progress(total, total);
  ExportSummary summary;
  summary.first_seq = options.from;
  summary.end_seq = end;
  summary.checkpoints = written_cps;
  summary.bytes = writer->bytes_written();
  return summary;
}

}  // namespace caseledger::ledgerctl
