// A ledger's bytes built in memory, deterministically, without a store or a
// clock: records with fixed salts and times, checkpoints signed with the test
// key. For golden vectors, bundle tests and benchmarks.
#ifndef CASELEDGER_TESTS_SYNTHETIC_LOG_H_
#define CASELEDGER_TESTS_SYNTHETIC_LOG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "ledger/bundle.h"

namespace caseledger::testing {

struct SyntheticLogOptions {
  uint64_t records = 10;
  uint64_t checkpoint_every = 4;  // a checkpoint after every this many records, and at the end
  size_t payload_bytes = 16;
  uint64_t streams = 3;
  // Keep every Merkle node, for range bundles (start proof, consistency
  // proof). Costs memory in proportion to the log.
  bool keep_nodes = true;
  // Give every checkpoint the `subjects <root>` line a real ledger signs
  // (SUBJECT_INDEX.md). Off by default: the golden bundle predates it and
  // its bytes are pinned.
  bool subjects_line = false;
};

// Writes a bundle of records [first_seq, options.records) of the synthetic
// log to `sink`, with a start entry and a consistency proof (to the last
// checkpoint) when first_seq > 0, which needs keep_nodes.
absl::Status WriteSyntheticBundle(const SyntheticLogOptions& options, uint64_t first_seq,
                                  BundlePayload mode, const BundleWriter::Sink& sink);

// The same into a string.
std::string SyntheticBundle(const SyntheticLogOptions& options, uint64_t first_seq = 0,
                            BundlePayload mode = BundlePayload::kFull);

// The framing of a bundle walked the way BUNDLE.md describes it, without the
// reader under test: where each entry starts, for tests that damage one.
struct BundleEntryAt {
  uint8_t type = 0;
  size_t offset = 0;  // of the type byte
  size_t size = 0;    // 5 + body length
};
std::vector<BundleEntryAt> WalkBundle(const std::string& bundle);
// The n-th (0-based) entry of `type`; size 0 when there is none.
BundleEntryAt NthBundleEntry(const std::string& bundle, uint8_t type, int n);
inline constexpr uint8_t kRecordEntry = 0x04;
inline constexpr uint8_t kCheckpointEntry = 0x05;
inline constexpr uint8_t kTrailerEntry = 0x7f;
// Big-endian unsigned integer of `n` bytes at `at`.
uint64_t BigEndianAt(const std::string& bytes, size_t at, int n);

}  // namespace caseledger::testing

#endif  // CASELEDGER_TESTS_SYNTHETIC_LOG_H_
