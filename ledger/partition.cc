#include "ledger/partition.h"

#include "absl/strings/str_cat.h"
#include "ledger/internal/status_macros.h"
#include "ledger/merkle_verify.h"
#include "ledger/record.h"

namespace caseledger {

absl::Status ValidatePartitionCount(int64_t partitions, absl::string_view what) {
  if (partitions < 1 || partitions > kMaxPartitions) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": got ", partitions, ", want 1 to ",
                                                   kMaxPartitions));
  }
  return absl::OkStatus();
}

uint32_t PartitionOf(absl::string_view stream_id, uint32_t partitions) {
  if (partitions <= 1) return 0;
  static constexpr char kDomain[] = "caseledger partition";  // + its NUL
  std::string input(kDomain, sizeof(kDomain));
  input.append(stream_id.data(), stream_id.size());
  Hash h = Sha256Of(input);
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | h[i];
  return static_cast<uint32_t>(v % partitions);
}

std::string PartitionOrigin(absl::string_view origin, uint32_t part, uint32_t partitions) {
  if (partitions <= 1) return std::string(origin);
  return absl::StrCat(origin, "/p", part);
}

std::string GlobalOrigin(absl::string_view origin) { return absl::StrCat(origin, "/global"); }

absl::StatusOr<std::string> GlobalLeafOf(absl::string_view partition_note) {
  CL_ASSIGN_OR_RETURN(SignedNote note, ParseSignedNote(partition_note));
  CL_RETURN_IF_ERROR(ParseCheckpointBody(note.text).status());
  return note.text;
}

absl::StatusOr<Checkpoint> VerifyPartitionedProof(absl::string_view global_note,
                                                  const NoteVerifier& verifier,
                                                  absl::string_view origin, uint32_t partitions,
                                                  const PartitionedProof& proof) {
  CL_ASSIGN_OR_RETURN(Checkpoint global,
                      OpenCheckpoint(global_note, verifier, GlobalOrigin(origin)));
  if (proof.partition >= partitions) {
    return absl::InvalidArgumentError(absl::StrCat("partition: got ", proof.partition,
                                                   ", want below ", partitions));
  }
  if (proof.global_index >= global.size) {
    return absl::InvalidArgumentError(absl::StrCat("global_index: got ", proof.global_index,
                                                   ", want below the global size ", global.size));
  }
  CL_ASSIGN_OR_RETURN(Hash global_root,
                      RootFromInclusionProof(LeafHash(proof.partition_body), proof.global_index,
                                             global.size, proof.global_proof));
  if (global_root != global.root) {
    return absl::DataLossError(absl::StrCat("global inclusion: root ", ShortHex(global_root),
                                            ", the global checkpoint's ",
                                            ShortHex(global.root)));
  }
  // The body is now as trustworthy as the global checkpoint.
  CL_ASSIGN_OR_RETURN(Checkpoint part, ParseCheckpointBody(proof.partition_body));
  std::string want_origin = PartitionOrigin(origin, proof.partition, partitions);
  if (part.origin != want_origin) {
    return absl::DataLossError(absl::StrCat("partition checkpoint origin: got ", part.origin,
                                            ", want ", want_origin));
  }
  CL_ASSIGN_OR_RETURN(LeafView leaf, DecodeLeafView(proof.record_leaf));
  if (leaf.seq != proof.seq) {
    return absl::InvalidArgumentError(absl::StrCat("seq: got ", proof.seq,
                                                   ", the record states ", leaf.seq));
  }
  if (proof.seq >= part.size) {
    return absl::InvalidArgumentError(absl::StrCat("seq: got ", proof.seq,
                                                   ", want below the partition size ", part.size));
  }
  CL_ASSIGN_OR_RETURN(Hash part_root, RootFromInclusionProof(LeafHash(proof.record_leaf), proof.seq,
                                                             part.size, proof.partition_proof));
  if (part_root != part.root) {
    return absl::DataLossError(absl::StrCat("partition inclusion: root ", ShortHex(part_root),
                                            ", partition ", proof.partition, "'s checkpoint ",
                                            ShortHex(part.root)));
  }
  return global;
}

}  // namespace caseledger
