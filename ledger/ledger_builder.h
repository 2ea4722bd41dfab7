// A fast writer of large ledgers for benchmarks (testonly): appends events
// to a LogStore as Ledger::Append would store them, without the Ledger's
// per-group work. It makes the same CommitBatch a group commit makes (records
// from EncodeRecord and EncodePayload, Merkle nodes from MerkleTree::Append,
// subject-index entries from SubjectChainAppend, subject-map nodes from
// StoredSubjectMap, checkpoints signed with the given signer) and hands it to
// LogStore::Commit; paired with RocksStoreOptions::bulk_load the commits are
// neither synced nor logged, and the data is on disk once the store closes.
//
//   RocksStoreOptions so;  so.path = dir;  so.bulk_load = true;
//   auto store = OpenRocksStore(so);
//   LedgerBuilderOptions o;  o.signer = &signer;  o.origin = "...";
//   CL_RETURN_IF_ERROR(BuildLedger(o, 10'000'000, make_event, store->get()));
//   store->reset();   // flushes; then Ledger::Open the directory as usual
//
// What it skips, because the events are trusted to be new and valid: the
// event-id and stream lookups (each event id must be unused and each event
// is the next of its stream), ValidateEvent, expected_version. Format 1 only
// (no blinder) and payloads in plaintext (no cipher). ledger_builder_test
// checks that the stored bytes equal those of a Ledger fed the same events,
// and that Ledger::Open and VerifyStore accept the result.
#ifndef CASELEDGER_LEDGER_LEDGER_BUILDER_H_
#define CASELEDGER_LEDGER_LEDGER_BUILDER_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "ledger/clock.h"
#include "ledger/log_store.h"
#include "ledger/record.h"
#include "ledger/checkpoint.h"

namespace caseledger {

struct LedgerBuilderOptions {
  // As LedgerOptions: the checkpoint origin line and its signer (borrowed).
  std::string origin = "caseledger/log";
  const NoteSigner* signer = nullptr;
  // Stamps each batch's commit time; null means Clock::Real().
  const Clock* clock = nullptr;
  // Salts for payload commitments; empty means RAND_bytes.
  SaltSource salt_source;
  // Records per CommitBatch (one group commit of the ledger).
  uint64_t batch_records = 8192;
  // A checkpoint after every this many records, at a batch's end (as the
  // ledger's checkpoint_every_records), and one at the end. 0: only the one
  // at the end, and when the store starts empty the subject map's nodes are
  // built at once from its sorted leaves (BuildSubjectMapNodes) instead of
  // Set by Set, much faster at millions of subjects.
  uint64_t checkpoint_every_records = 100000;
  // For the subject map (LedgerOptions::subject_map_cache_bytes).
  size_t subject_map_cache_bytes = size_t{32} << 20;
  // Called after each batch with the tree size; may be empty.
  std::function<void(uint64_t)> progress;
};

// Appends `count` events to `store`, event i being make_event(i) for the
// store's size before the call as the first i. The store must hold a ledger
// whose latest checkpoint covers every record (or nothing): a directory a
// Ledger closed after Checkpoint(), or one this function built.
// FAILED_PRECONDITION otherwise; INVALID_ARGUMENT for unusable options;
// store errors as they come. Ends with a checkpoint of the final size.
absl::Status BuildLedger(const LedgerBuilderOptions& options, uint64_t count,
                         const std::function<Event(uint64_t)>& make_event, LogStore* store);

}  // namespace caseledger

#endif  // CASELEDGER_LEDGER_LEDGER_BUILDER_H_
