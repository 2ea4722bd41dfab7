// Verifies a whole stored ledger (see ChainVerifier for what is checked), and
// every stored Merkle node: each level-0 node equals its record's leaf hash,
// and each higher node the hash of its two stored children.
#ifndef CASELEDGER_LEDGER_STORE_VERIFIER_H_
#define CASELEDGER_LEDGER_STORE_VERIFIER_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "ledger/chain_verifier.h"
#include "ledger/log_store.h"

namespace caseledger {

struct StoreVerifyOptions {
  const NoteVerifier* note_verifier = nullptr;  // borrowed for the call
  std::string origin;
  size_t max_failures = 1;
  bool check_event_ids = true;
  // Check every stored Merkle node above level 0 (about one node hash per
  // record).
  bool check_nodes = true;
  RecordObserver* observer = nullptr;  // borrowed; may be null
  // An incremental audit: the store's tree must reproduce this root at this
  // size (else: rolled back, forked or rewritten), and only the records
  // after it are read, continuing from the tree the store holds at that
  // size once that tree is shown to have this root. The latest stored
  // checkpoint is tied to it by a consistency proof.
  std::optional<TrustedCheckpoint> since;
  // Called every `progress_every` records with (records checked, tree size).
  std::function<void(uint64_t, uint64_t)> progress;
  uint64_t progress_every = 1 << 20;
};

struct StoreVerifyReport {
  uint64_t tree_size = 0;  // as the store claims it
  uint64_t first_seq = 0;  // where reading started (since.size for an incremental audit)
  uint64_t records_checked = 0;
  uint64_t checkpoints_checked = 0;
  uint64_t nodes_checked = 0;  // above level 0
  Hash root{};                 // recomputed from the records
  bool since_checked = false;  // options.since was given and held
  // The newest checkpoint that verified and its note (empty when none did).
  uint64_t latest_size = 0;
  std::string latest_note;
  std::vector<VerifyFailure> failures;
  size_t failures_seen = 0;
  absl::Status status;  // OK, or the first failure (DATA_LOSS naming the seq)
};

StoreVerifyReport VerifyStore(const LogStore& store, const StoreVerifyOptions& options);

// Verifies records [from, to) only, anchored on the store's Merkle nodes at
// `from`: the Merkle frontier at `from` and the level-0 node of record
// from - 1 (the committed leaf hash that record `from` must link to) are
// read from the store; then every record in the range is checked as
// VerifyStore does, and so is every stored checkpoint with a size in
// (from, to]. Stream versions are checked from each stream's first record in
// the range. A damaged prefix is not reported here unless it shows in a
// checkpoint of the range. INVALID_ARGUMENT unless from <= to <= tree size;
// store errors as they come (in `status`).
StoreVerifyReport VerifyStoreRange(const LogStore& store, uint64_t from, uint64_t to,
                                   const StoreVerifyOptions& options);

}  // namespace caseledger

#endif  // CASELEDGER_LEDGER_STORE_VERIFIER_H_
