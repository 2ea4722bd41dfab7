// Verifies a whole stored ledger (see ChainVerifier for what is checked).
#ifndef CASELEDGER_LEDGER_STORE_VERIFIER_H_
#define CASELEDGER_LEDGER_STORE_VERIFIER_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/status.h"
#include "ledger/chain_verifier.h"
#include "ledger/log_store.h"

namespace caseledger {

struct StoreVerifyOptions {
  const NoteVerifier* note_verifier = nullptr;  // borrowed for the call
  std::string origin;
  size_t max_failures = 1;
  // Called every `progress_every` records with (records checked, tree size).
  std::function<void(uint64_t, uint64_t)> progress;
  uint64_t progress_every = 1 << 20;
};

struct StoreVerifyReport {
  uint64_t tree_size = 0;  // as the store claims it
  uint64_t records_checked = 0;
  uint64_t checkpoints_checked = 0;
  Hash root{};  // recomputed from the records
  std::vector<VerifyFailure> failures;
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
