// Verifies a stored ledger from its raw bytes: the global hash chain, every
// leaf and payload commitment, stream versions, and the Merkle root and
// signature of every checkpoint. Depends only on the verification code (no
// store, no service), so an auditor's tool can use it on any record source.
//
//   ChainVerifier v(options);
//   for (each stored checkpoint) v.ExpectCheckpoint(size, note);
//   for (each stored record in key order) v.AddRecord(...);
//   absl::Status s = v.Finish(claimed_size);  // the first failure, or OK
//
// Checkpoints may also be given as the records reach them (a bundle holds
// them in log order): ExpectCheckpoint checks one at once when the records
// already reach its size. An incremental audit starts with StartAt.
//
// Successive checkpoints are consistent by construction: every root is
// recomputed from the same records, so a checkpoint that does not extend an
// earlier one fails its own root check.
//
// Memory: O(log n) for the tree, one entry per stream for versions, 16 bytes
// per record for event-id uniqueness (see check_event_ids), and the
// checkpoints not yet reached.
//
// Not thread-safe.
#ifndef CASELEDGER_LEDGER_CHAIN_VERIFIER_H_
#define CASELEDGER_LEDGER_CHAIN_VERIFIER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "ledger/checkpoint.h"
#include "ledger/hash.h"
#include "ledger/merkle_tree.h"
#include "ledger/record.h"

namespace caseledger {

// A hook for checks of derived structures that are built elsewhere, such as
// the per-subject index: its roots can be recomputed from the records and
// compared with what a checkpoint commits to. The verifier reports what the
// observer returns as failures at the given seq.
//
// Not built here yet: the per-subject index (issue 6, another helper) plugs
// in through this interface without changing the verifier.
class RecordObserver {
 public:
  virtual ~RecordObserver() = default;
  // A record whose leaf decoded; `leaf_hash` is LeafHash(leaf). The view is
  // valid only during the call. A non-OK status becomes a failure at `seq`.
  virtual absl::Status OnRecord(uint64_t seq, const LeafView& record,
                                const Hash& leaf_hash) = 0;
  // A checkpoint whose signature and root verified, in size order.
  virtual absl::Status OnCheckpoint(const Checkpoint& checkpoint) = 0;
};

// What AddRecord may check of a payload.
enum class PayloadCheck {
  kFull,             // commitments and, for plaintext payloads, every opening
  kCommitmentsOnly,  // the openings were left out on purpose (e.g. an export)
};

// The auditor's trusted starting point for an incremental audit: a
// checkpoint they verified before (its note opened with their key).
struct TrustedCheckpoint {
  uint64_t size = 0;
  Hash root{};
};

struct VerifyFailure {
  uint64_t seq;        // the first bad sequence number this failure is about
  absl::Status status;  // DATA_LOSS with got/want
};

struct ChainVerifierOptions {
  // Borrowed; must outlive the verifier. Checks checkpoint signatures.
  const NoteVerifier* note_verifier = nullptr;
  std::string origin;
  // Stop collecting after this many failures (the first is always kept).
  size_t max_failures = 1;
  // Check that no two records share an event id. Keeps a 64-bit fingerprint
  // and the seq of each record (16 bytes, the only state that grows with the
  // log), sorted at Finish; a fingerprint match is reported as a duplicate
  // naming both records. Sorting once is several times cheaper than a hash
  // set whose every insert misses the cache.
  bool check_event_ids = true;
  // Borrowed; may be null. Sees every well-formed record and every verified
  // checkpoint, for checks that live outside this library (see RecordObserver).
  RecordObserver* observer = nullptr;
};

class ChainVerifier {
 public:
  explicit ChainVerifier(ChainVerifierOptions options);

  // Continues an audit from a tree of `tree.size()` leaves already verified
  // (e.g. the auditor's last checkpoint): `prev_leaf_hash` is the leaf hash of
  // record tree.size() - 1. Call before any record. Stream versions are then
  // checked from each stream's first record after the start, and event ids
  // for uniqueness among the records after it.
  void StartAt(const MerkleTree& tree, const Hash& prev_leaf_hash);

  // A stored checkpoint: checked when the records reach its size, or at once
  // if they already do.
  void ExpectCheckpoint(uint64_t stored_size, std::string note);

  // The next stored record in key order. `payload` is the stored payload
  // bytes or nullopt when none is stored; `stored_leaf_node` is the stored
  // level-0 Merkle node for this key, or nullopt when not available.
  void AddRecord(uint64_t key_seq, absl::string_view leaf,
                 std::optional<absl::string_view> payload,
                 std::optional<Hash> stored_leaf_node,
                 PayloadCheck payload_check = PayloadCheck::kFull);

  // A hint that about `records` records will follow, so that the event-id
  // set is sized once instead of growing (capped: the hint may come from
  // untrusted input).
  void ExpectRecords(uint64_t records);

  // Records a failure found outside the verifier (e.g. by a store or bundle
  // reader) so that it is counted and ordered with the rest.
  void AddFailure(uint64_t seq, std::string message) { Fail(seq, std::move(message)); }

  // Checks what can only be checked at the end (records missing before a
  // checkpoint or the claimed tree size) and returns the first failure.
  absl::Status Finish(uint64_t claimed_size);

  uint64_t records_checked() const { return records_; }
  uint64_t checkpoints_checked() const { return checkpoints_checked_; }
  const std::vector<VerifyFailure>& failures() const { return failures_; }
  // Root of the records checked so far.
  Hash Root() const { return tree_.Root(); }
  const MerkleTree& tree() const { return tree_; }
  // The leaf hash of the last record added (zero before any).
  const Hash& last_leaf_hash() const { return last_leaf_hash_; }
  // The largest checkpoint whose signature and root verified, and its note.
  const std::optional<Checkpoint>& latest_checkpoint() const { return latest_checkpoint_; }
  const std::string& latest_note() const { return latest_note_; }
  // Total failures seen, including those not kept (max_failures).
  size_t failures_seen() const { return failures_seen_; }

 private:
  void Fail(uint64_t seq, std::string message);
  void CheckCheckpointsAt(uint64_t size);

  ChainVerifierOptions options_;
  std::map<uint64_t, std::string> checkpoints_;  // size -> note
  MerkleTree tree_;
  uint64_t next_seq_ = 0;
  uint64_t records_ = 0;
  uint64_t checkpoints_checked_ = 0;
  bool chain_broken_ = false;  // after a gap, prev_hash cannot be checked
  bool partial_history_ = false;  // StartAt: earlier records are not seen
  Hash last_leaf_hash_{};
  absl::flat_hash_map<std::string, uint64_t> stream_next_;
  // (event-id fingerprint, seq) of every record seen; absl::Hash, seeded per
  // process, so a 1-in-2^64 false match does not repeat on a rerun.
  std::vector<std::pair<uint64_t, uint64_t>> event_ids_;
  void CheckEventIds();
  std::optional<Checkpoint> latest_checkpoint_;
  std::string latest_note_;
  std::vector<VerifyFailure> failures_;
  size_t failures_seen_ = 0;
};

}  // namespace caseledger

#endif  // CASELEDGER_LEDGER_CHAIN_VERIFIER_H_
