// Subjects transitions (SUBJECT_INDEX.md "Transitions"): a proof, checkable
// by anyone who holds two checkpoints of a log, that the second one's
// "subjects" root follows from the first one's and from the records between
// them, and that those records are exactly what the second tree appends to
// the first. A witness checks one before it cosigns, so that a log cannot
// sign a stale or doctored subject map without every witness refusing it.
//
// Pure computation: no storage, no network. The server side (Ledger) fills
// a SubjectTransition from its store; VerifySubjectTransition trusts none of
// it.
//
// Thread-safety: free functions, callable from any thread; the structs are
// values.
#ifndef CASELEDGER_LEDGER_SUBJECT_TRANSITION_H_
#define CASELEDGER_LEDGER_SUBJECT_TRANSITION_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "ledger/hash.h"
#include "ledger/subject_index.h"

namespace caseledger {

// The server's claim of one changed subject's state after the transition.
// Diagnostics only: the verifier names the first claim that disagrees with
// what it computed, and never uses a claim to decide.
struct SubjectClaim {
  Hash key{};
  SubjectState state;
};

// The proof that takes a verifier from checkpoint (n, R, M) to (m, R', M').
struct SubjectTransition {
  uint64_t from_size = 0;  // n
  // The compact range [0, n): the roots of the perfect subtrees of the tree
  // of size n, left to right (MerkleTree::Frontier); popcount(n) hashes.
  std::vector<Hash> old_range;
  // The exact bytes of records n .. m-1 (FORMAT.md "Record"), in seq order.
  std::vector<std::string> records;
  // The map at n pruned to the keys those records name: EncodePrunedMap.
  std::string old_map;
  // The server's (count, head) after record m-1 for each key the records
  // name. Diagnostics only.
  std::vector<SubjectClaim> claims;
};

// What a checkpoint says, as far as a transition is concerned.
struct SubjectTransitionEnd {
  uint64_t size = 0;
  Hash root{};           // RFC 9162 root at `size`
  Hash subjects_root{};  // the "subjects" line
};

// What a verification covered (for logs and benchmarks).
struct SubjectTransitionStats {
  uint64_t records = 0;
  uint64_t subject_steps = 0;  // (record, subject) pairs applied
  size_t keys = 0;             // distinct subject keys touched
  size_t pruned_nodes = 0;     // nodes of the old pruned map
};

// The wire form of a pruned map (SUBJECT_INDEX.md "Transitions"): per node in
// pre-order, a tag byte 0x00 Empty | 0x01 Leaf key(32) u64 count head(32) |
// 0x02 Opaque hash(32) | 0x03 Internal (its two subtrees follow).
std::string EncodePrunedMap(absl::Span<const PrunedMapNode> nodes);
// INVALID_ARGUMENT naming the byte offset for truncated input, an unknown
// tag, bytes after the root's subtree, or nesting deeper than 256.
absl::StatusOr<std::vector<PrunedMapNode>> DecodePrunedMap(absl::string_view bytes);

// Checks `t` against the two checkpoints (SUBJECT_INDEX.md "Verifying a
// transition"):
//  1. old_range folds to from.root and has popcount(from.size) hashes;
//  2. there are exactly to.size - from.size records, record i has seq
//     from.size + i, and appending their leaf hashes to old_range gives
//     to.root;
//  3. old_map hashes to from.subjects_root;
//  4. applying every record's subjects to old_map, in seq order, never
//     meets an Opaque node, and the result hashes to to.subjects_root.
// Codes: INVALID_ARGUMENT for malformed input (a record or old_map that does
// not decode, from.size > to.size, a wrong number of range hashes); DATA_LOSS
// for anything that does not match (message has computed and expected values;
// for a wrong final root it names the first subject whose computed state the
// server's claims contradict, with the last record naming it).
absl::StatusOr<SubjectTransitionStats> VerifySubjectTransition(const SubjectTransitionEnd& from,
                                                               const SubjectTransitionEnd& to,
                                                               const SubjectTransition& t);

// How many of `records` name each subject key (a record naming a subject
// twice counts twice, as the chain does). INVALID_ARGUMENT for a record that
// does not decode.
absl::StatusOr<absl::flat_hash_map<Hash, uint64_t>> CountSubjectSteps(
    absl::Span<const std::string> records);

// The reference builder over records held in memory: the transition from
// `from_size` to records.size(), computed from all of `records` (records
// 0 .. size-1, in order). For tests, tools and benchmarks; the ledger builds
// the same from its store. INVALID_ARGUMENT for from_size > records.size()
// or a record that does not decode.
absl::StatusOr<SubjectTransition> SubjectTransitionFromRecords(
    absl::Span<const std::string> records, uint64_t from_size);

}  // namespace caseledger

#endif  // CASELEDGER_LEDGER_SUBJECT_TRANSITION_H_
