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
// Not thread-safe.
#ifndef CASELEDGER_LEDGER_CHAIN_VERIFIER_H_
#define CASELEDGER_LEDGER_CHAIN_VERIFIER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "ledger/checkpoint.h"
#include "ledger/hash.h"
#include "ledger/merkle_tree.h"

namespace caseledger {

struct ChainVerifierOptions {
  // Borrowed; must outlive the verifier. Checks checkpoint signatures.
  const NoteVerifier* note_verifier = nullptr;
  std::string origin;
  // Stop collecting after this many failures (the first is always kept).
  size_t max_failures = 1;
  // Verify from the middle of the log: the first record must be seq
  // `start->tree.size()` and link to `start->prev_leaf_hash`; the Merkle tree
  // continues from `start->tree`. The prefix is taken as given (its stored
  // nodes are what later checkpoints are checked against), and stream
  // versions are checked only from each stream's first record seen. Unset:
  // verify from seq 0.
  struct Start {
    MerkleTree tree;
    Hash prev_leaf_hash{};
  };
  std::optional<Start> start;
};

struct VerifyFailure {
  uint64_t seq;        // the first bad sequence number this failure is about
  absl::Status status;  // DATA_LOSS with got/want
};

class ChainVerifier {
 public:
  explicit ChainVerifier(ChainVerifierOptions options);

  // A stored checkpoint: checked when the records reach its size.
  void ExpectCheckpoint(uint64_t stored_size, std::string note);

  // The next stored record in key order. `payload` is the stored payload
  // bytes or nullopt when none is stored; `stored_leaf_node` is the stored
  // level-0 Merkle node for this key, or nullopt when not available.
  void AddRecord(uint64_t key_seq, absl::string_view leaf,
                 std::optional<absl::string_view> payload,
                 std::optional<Hash> stored_leaf_node);

  // Checks what can only be checked at the end (records missing before a
  // checkpoint or the claimed tree size) and returns the first failure.
  absl::Status Finish(uint64_t claimed_size);

  uint64_t records_checked() const { return records_; }
  uint64_t checkpoints_checked() const { return checkpoints_checked_; }
  const std::vector<VerifyFailure>& failures() const { return failures_; }
  // Root of the records checked so far.
  Hash Root() const { return tree_.Root(); }

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
  Hash last_leaf_hash_{};
  absl::flat_hash_map<std::string, uint64_t> stream_next_;
  std::vector<VerifyFailure> failures_;
  size_t failures_seen_ = 0;
};

}  // namespace caseledger

#endif  // CASELEDGER_LEDGER_CHAIN_VERIFIER_H_
