// The witness's side of cosigning (ledger/COSIGNATURE.md "Witness"): the
// remembered checkpoint per log, and the check that a new checkpoint extends
// it before the witness cosigns. No network here; tools/ledger_witness fetches
// checkpoints and proofs and calls WitnessCheckpoint.
//
// Thread-compatible: a WitnessState is a value; WitnessCheckpoint touches
// only its arguments.
#ifndef CASELEDGER_LEDGER_WITNESS_H_
#define CASELEDGER_LEDGER_WITNESS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ledger/checkpoint.h"
#include "ledger/cosignature.h"
#include "ledger/hash.h"
#include "ledger/subject_transition.h"

namespace caseledger {

// The last checkpoint a witness verified, per log origin: the log-signed note
// as the log served it.
class WitnessState {
 public:
  // The state in the file at `path`; an absent file is the empty state.
  // DATA_LOSS naming the path and the byte offset for a file that is not in
  // the format of ledger/COSIGNATURE.md "Witness state file"; INTERNAL for
  // I/O errors.
  static absl::StatusOr<WitnessState> Load(const std::string& path);

  // Replaces the file at `path` atomically: a temporary file beside it is
  // written and fsync'd, renamed over `path`, and the directory is fsync'd.
  // After a crash the file is the old state or the new one, never a mix.
  absl::Status Save(const std::string& path) const;

  std::string Encode() const;
  // DATA_LOSS with the byte offset for malformed text.
  static absl::StatusOr<WitnessState> Decode(absl::string_view text);

  // The remembered note for `origin`, or nullopt.
  std::optional<std::string> Note(absl::string_view origin) const;
  // Remembers `note`, whose checkpoint body names `origin`.
  void Set(const std::string& origin, std::string note);

 private:
  std::map<std::string, std::string> notes_;  // origin -> note
};

// Fetches PROOF(from_size, to_size) from the log.
using ConsistencyProofSource =
    std::function<absl::StatusOr<std::vector<Hash>>(uint64_t from_size, uint64_t to_size)>;

// Fetches the subjects transition (SUBJECT_INDEX.md "Transitions") from
// `from_size` to the checkpoint of `to_size` from the log.
using SubjectTransitionSource =
    std::function<absl::StatusOr<SubjectTransition>(uint64_t from_size, uint64_t to_size)>;

struct WitnessResult {
  std::optional<Checkpoint> previous;  // What the state held before, if anything.
  Checkpoint checkpoint;               // The newly verified checkpoint.
  std::string cosigned_note;           // `note` with the witness's line.
  SubjectTransitionStats subjects;     // What the subjects check covered.
};

// Checks the log-signed `note` against the witness's memory and cosigns it:
//  1. OpenCheckpoint with `log`; the origin must be log.name(). Its errors
//     are returned as they are (DATA_LOSS for a bad or missing log signature).
//  2. If `state` holds a checkpoint for the origin (re-verified with `log`):
//     * a smaller tree: DATA_LOSS "rollback: ..." naming both sizes and roots;
//     * the same size with another root: DATA_LOSS "fork: ...";
//     * a larger tree: `proofs(old size, new size)` must verify
//       (VerifyConsistency), else DATA_LOSS "fork: ... not consistent ...".
//  3. The subjects root: the new checkpoint must carry a "subjects" line
//     (else DATA_LOSS "... has no subjects line ..."), and
//     `transitions(from, new size)` must verify (VerifySubjectTransition)
//     from the remembered checkpoint, or from size 0 (the empty tree and map)
//     when there is none or it has no subjects line; else DATA_LOSS
//     "subjects: ..." with the verifier's message, which names the first
//     record or subject that disagrees. Errors fetching the transition are
//     returned with their own code.
//  4. Cosigns at `timestamp` and records the checkpoint in `state`.
// On any error `state` is left as it was.
absl::StatusOr<WitnessResult> WitnessCheckpoint(const NoteVerifier& log, absl::string_view note,
                                                const ConsistencyProofSource& proofs,
                                                const SubjectTransitionSource& transitions,
                                                const Cosigner& cosigner, uint64_t timestamp,
                                                WitnessState* state);

// ---------------------------------------------------------------------------
// c2sp.org/tlog-witness "add-checkpoint" (ledger/COSIGNATURE.md "The
// tlog-witness protocol"): a log submits a checkpoint with the size it
// believes the witness last cosigned and a consistency proof from there.

// The request body: "old <size>\n", one base64 hash line per proof hash
// (at most 63), an empty line, then the checkpoint note.
struct AddCheckpointRequest {
  uint64_t old_size = 0;
  std::vector<Hash> proof;
  std::string note;
};

inline constexpr size_t kMaxAddCheckpointProof = 63;

std::string FormatAddCheckpointRequest(const AddCheckpointRequest& request);
// INVALID_ARGUMENT naming the line and the rule: a first line that is not
// "old <decimal without leading zeros>", a proof line that is not canonical
// base64 of 32 bytes, more than 63 proof lines, no empty line, an empty
// note.
absl::StatusOr<AddCheckpointRequest> ParseAddCheckpointRequest(absl::string_view body);

struct AddCheckpointResult {
  Checkpoint checkpoint;
  // The witness's cosignature line(s), each "— <name> <base64>\n": the
  // response body.
  std::string signature_lines;
};

// The witness's checks of add-checkpoint, in the spec's order, against the
// checkpoint `state` holds for the origin (none: size 0, the empty tree):
//  NOT_FOUND: the note is not a checkpoint of a log in `logs` (by origin,
//    which is each verifier's name) — HTTP 404;
//  PERMISSION_DENIED: no signature by that log's key verifies — 403;
//  INVALID_ARGUMENT: a malformed note, or old_size > the checkpoint's size — 400;
//  ABORTED: old_size is not the size `state` holds, or the same size with
//    another root — 409, with that size in *known_size;
//  DATA_LOSS: the consistency proof does not verify — 422.
// On success cosigns the checkpoint at `timestamp` and records the note in
// `state`; the caller persists `state` before answering and serializes calls
// (the check and the update must be atomic). On error `state` is untouched.
// `known_size` is always set to the size `state` held for the origin.
absl::StatusOr<AddCheckpointResult> WitnessAddCheckpoint(const std::vector<NoteVerifier>& logs,
                                                         const AddCheckpointRequest& request,
                                                         const Cosigner& cosigner,
                                                         uint64_t timestamp, WitnessState* state,
                                                         uint64_t* known_size);

}  // namespace caseledger

#endif  // CASELEDGER_LEDGER_WITNESS_H_
