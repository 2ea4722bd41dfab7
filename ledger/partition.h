// Partitions by case and the global (root-of-roots) log (ledger/CLUSTER.md
// "Partitions"). Pure functions: no store, no PostgreSQL.
//
// A ledger created with P partitions puts each case (stream id) into one
// partition for good; each partition is its own hash chain and RFC 9162 log
// with its own signed checkpoints (origin "<origin>/p<i>"). The global log's
// leaves are partition checkpoint bodies; its signed checkpoint (origin
// "<origin>/global") is what witnesses cosign. An event is proved by two
// inclusion proofs: its record in its partition's tree at a checkpointed
// size, and that checkpoint's body in the global tree.
#ifndef CASELEDGER_LEDGER_PARTITION_H_
#define CASELEDGER_LEDGER_PARTITION_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ledger/checkpoint.h"
#include "ledger/hash.h"

namespace caseledger {

// The most partitions a ledger may have.
inline constexpr uint32_t kMaxPartitions = 1024;

// OK if 1 <= partitions <= kMaxPartitions; otherwise INVALID_ARGUMENT naming
// `what` (the option or flag) with got/want.
absl::Status ValidatePartitionCount(int64_t partitions, absl::string_view what);

// The partition of a case: the first 8 bytes of
// SHA-256("caseledger partition" || 0x00 || stream_id), read big-endian,
// modulo `partitions`. Requires partitions >= 1 (0 for P = 1).
uint32_t PartitionOf(absl::string_view stream_id, uint32_t partitions);

// The checkpoint origin of partition `part`: `origin` itself when the ledger
// has one partition (today's ledger, unchanged), else "<origin>/p<part>".
std::string PartitionOrigin(absl::string_view origin, uint32_t part, uint32_t partitions);

// The global log's checkpoint origin: "<origin>/global".
std::string GlobalOrigin(absl::string_view origin);

// The global log's leaf for a signed partition checkpoint: the note's text
// (the checkpoint body, CHECKPOINT.md), exactly its bytes. INVALID_ARGUMENT
// if the note does not parse as a checkpoint note. Signatures are not
// checked here.
absl::StatusOr<std::string> GlobalLeafOf(absl::string_view partition_note);

// What proves one event from the signed global checkpoint alone.
struct PartitionedProof {
  uint32_t partition = 0;
  std::string record_leaf;            // the record's leaf bytes (FORMAT.md)
  uint64_t seq = 0;                   // its seq in the partition
  std::string partition_body;         // the partition checkpoint body = the global leaf
  std::vector<Hash> partition_proof;  // PATH(seq, partition tree at that checkpoint's size)
  uint64_t global_index = 0;          // the body's index in the global log
  std::vector<Hash> global_proof;     // PATH(global_index, global tree at the checkpoint's size)
};

// Checks `proof` against `global_note`: the note is signed by `verifier` with
// origin GlobalOrigin(origin); the partition body is in the global tree at
// the note's size; the body's origin is PartitionOrigin(origin, partition,
// partitions); the record (whose leaf states seq) is in the partition tree at
// the body's size. Returns the global checkpoint. Codes: as OpenCheckpoint
// for the note; INVALID_ARGUMENT for a malformed proof (naming the field);
// DATA_LOSS when a root does not match.
absl::StatusOr<Checkpoint> VerifyPartitionedProof(absl::string_view global_note,
                                                  const NoteVerifier& verifier,
                                                  absl::string_view origin, uint32_t partitions,
                                                  const PartitionedProof& proof);

}  // namespace caseledger

#endif  // CASELEDGER_LEDGER_PARTITION_H_
