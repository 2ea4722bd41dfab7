// The per-subject index: each subject's records as a hash chain, and a sparse
// Merkle map from subject to chain head whose root goes into every signed
// checkpoint. The byte format is in ledger/SUBJECT_INDEX.md, which the golden
// test in subject_index_test.cc checks.
//
// Everything here is pure computation with no storage, so that clients and
// auditors can verify a subject's history with this library and :checkpoint
// alone.
//
// Thread-safety: the free functions may be called from any thread. SubjectMap
// and SubjectIndexBuilder are not thread-safe; callers serialize access.
#ifndef CASELEDGER_LEDGER_SUBJECT_INDEX_H_
#define CASELEDGER_LEDGER_SUBJECT_INDEX_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "ledger/hash.h"
#include "ledger/record.h"

namespace caseledger {

// Domain-separation prefixes of the subject index (SUBJECT_INDEX.md), distinct
// from RFC 9162's 0x00/0x01 and the record format's 0x02/0x03.
inline constexpr uint8_t kSubjectKeyPrefix = 0x10;
inline constexpr uint8_t kSubjectChainPrefix = 0x11;
inline constexpr uint8_t kSubjectMapLeafPrefix = 0x12;
inline constexpr uint8_t kSubjectMapNodePrefix = 0x13;

// The checkpoint extension line that carries the map root:
// "subjects <base64 root>".
inline constexpr char kSubjectsExtension[] = "subjects";

// A subject's chain: how many records concern it, and the head after the
// last one. Count 0 has the all-zero head.
struct SubjectState {
  uint64_t count = 0;
  Hash head{};
  friend bool operator==(const SubjectState& a, const SubjectState& b) {
    return a.count == b.count && a.head == b.head;
  }
  friend bool operator!=(const SubjectState& a, const SubjectState& b) { return !(a == b); }
};

// SHA-256(0x10 || subject_id): where the subject sits in the map.
Hash SubjectKey(absl::string_view subject_id);
// SHA-256(0x11 || head || u64 seq || leaf_hash): the head after appending the
// record `seq` with `leaf_hash` to a chain whose head was `head`.
Hash SubjectChainNext(const Hash& head, uint64_t seq, const Hash& leaf_hash);
// `state` extended by one record.
SubjectState SubjectChainAppend(const SubjectState& state, uint64_t seq, const Hash& leaf_hash);
// SHA-256(0x12 || key || u64 count || head).
Hash SubjectMapLeafHash(const Hash& key, const SubjectState& state);
// SHA-256(0x13 || left || right).
Hash SubjectMapNodeHash(const Hash& left, const Hash& right);
// The hash of an empty subtree, and the root of the empty map: 32 zero bytes.
inline Hash EmptySubjectMapRoot() { return Hash{}; }

// Bit `depth` (0 = most significant bit of byte 0) of a key.
inline int KeyBit(const Hash& key, size_t depth) {
  return (key[depth / 8] >> (7 - depth % 8)) & 1;
}

// The number of leading bits `a` and `b` share (256 when equal).
size_t SharedPrefixBits(const Hash& a, const Hash& b);

// One node of a pruned subject map (SUBJECT_INDEX.md "Transitions"): the map
// with every subtree off some keys' paths cut to its hash. A pruned map is a
// vector of these in pre-order; an internal node is followed by its left
// subtree, then its right one.
struct PrunedMapNode {
  enum class Kind : uint8_t { kEmpty = 0, kLeaf = 1, kOpaque = 2, kInternal = 3 };
  Kind kind = Kind::kEmpty;
  Hash key{};          // kLeaf
  SubjectState state;  // kLeaf
  Hash hash{};         // kOpaque: the subtree's hash
};

// A subtree of the map as PrunedOld meets it: absent (empty), a leaf, or an
// interior node with its hash.
struct PrunedSubtree {
  bool present = false;
  bool is_leaf = false;
  Hash key{};          // leaf
  SubjectState state;  // leaf
  Hash hash{};         // interior
};
// PrunedOld's rule at one subtree, `keys` (sorted) being the changed keys
// below it with their earlier states: with no keys, the subtree as Empty, its
// Leaf or Opaque; at a changed key's leaf, that Leaf with its earlier state
// (Empty if it had count 0). Appends that node to `out` and returns true; false
// for an interior node with keys below (the caller descends).
// INVALID_ARGUMENT for a key that is not in the map.
absl::StatusOr<bool> PruneEnd(const PrunedSubtree& subtree,
                              absl::Span<const std::pair<Hash, SubjectState>> keys,
                              std::vector<PrunedMapNode>* out);

// For a pruned map being written in pre-order: the Internal node at
// (*out)[at], whose left subtree starts at `left` and right one at `right`
// and runs to the end, is replaced by what it is when fewer than two subjects
// are left below it: Empty for Empty/Empty, the Leaf for Empty/Leaf or
// Leaf/Empty (the compact map's shape).
void CollapsePrunedInternal(size_t at, size_t left, size_t right,
                            std::vector<PrunedMapNode>* out);

// A map proof for one key: the siblings along the key's path from the root,
// and what the path ends in.
struct SubjectMapProof {
  // Sibling hashes, root side first: siblings[d] is the subtree at depth d + 1
  // beside the key's path. At most 256.
  std::vector<Hash> siblings;
  // The leaf the path ends in, or nullopt for an empty subtree. A leaf with
  // another key proves that the key is absent (count 0).
  struct Leaf {
    Hash key{};
    SubjectState state;
  };
  std::optional<Leaf> leaf;
};

// Checks `proof` for `key` against `root` and returns the key's state
// (count 0 and a zero head when absent).
//  INVALID_ARGUMENT: more than 256 siblings; an end leaf whose key does not
//    share the path's first siblings.size() bits with `key`.
//  DATA_LOSS: the proof does not recompute `root` (message has got/want).
absl::StatusOr<SubjectState> VerifySubjectMapProof(const Hash& root, const Hash& key,
                                                   const SubjectMapProof& proof);

// The root for a proof's path and end, without comparing it to anything.
absl::StatusOr<Hash> SubjectMapRootFromProof(const Hash& key, const SubjectMapProof& proof);

// The sparse Merkle map from subject key to SubjectState, held in memory.
// A leaf sits at the shallowest depth where no other key shares its path, so
// an update costs about log2(subjects) hashes. Entries are never removed
// (a subject's count only grows).
class SubjectMap {
 public:
  SubjectMap();
  ~SubjectMap();
  SubjectMap(SubjectMap&&) noexcept;
  SubjectMap& operator=(SubjectMap&&) noexcept;

  // Sets `key`'s state; hashes are recomputed lazily by Root().
  void Set(const Hash& key, const SubjectState& state);
  // nullopt when the key is absent.
  std::optional<SubjectState> Get(const Hash& key) const;
  // The root over every Set so far. Recomputes only the paths Set touched.
  Hash Root();
  // Proof of `key` (present or absent) against Root(). Call Root() first if
  // anything was Set since; otherwise FAILED_PRECONDITION.
  absl::StatusOr<SubjectMapProof> Prove(const Hash& key) const;
  size_t size() const { return size_; }

  // The map as it was before the keys of `old_states` changed, pruned to
  // those keys' paths: `old_states[k]` is k's earlier state, count 0 meaning
  // k was absent. In pre-order (PrunedMapNode). A subtree holding none of
  // the keys is an Opaque node with its hash (a Leaf when it holds one
  // subject, Empty when none); a subtree left with one subject once the
  // absent keys are taken out is that subject's Leaf, with none Empty.
  // Every key must be in the map. The Leaf of a changed key carries its
  // earlier state as given.
  //  FAILED_PRECONDITION: something was Set since the last Root().
  //  INVALID_ARGUMENT: a key of `old_states` that is not in the map.
  absl::StatusOr<std::vector<PrunedMapNode>> PrunedOld(
      const absl::flat_hash_map<Hash, SubjectState>& old_states) const;

 private:
  struct Node;
  std::unique_ptr<Node> root_;
  size_t size_ = 0;
};

// Computes the subject index from records in seq order: what the ledger
// commits, recomputed by a verifier that reads every record.
//
//   SubjectIndexBuilder b;
//   for (each record in seq order) b.Add(seq, leaf_hash, subject_ids);
//   Hash root = b.Root();   // compare with the checkpoint's "subjects" line
class SubjectIndexBuilder {
 public:
  // INVALID_ARGUMENT if `seq` does not follow the previous Add's seq.
  absl::Status Add(uint64_t seq, const Hash& leaf_hash,
                   absl::Span<const std::string> subject_ids);
  // The same for subject ids in the record's encoded form (LeafView).
  absl::Status AddEncoded(uint64_t seq, const Hash& leaf_hash, absl::string_view encoded_subject_ids,
                          uint16_t subject_count);
  // The same for a decoded leaf of either format (ForEachSubjectKey).
  absl::Status AddLeaf(uint64_t seq, const Hash& leaf_hash, const LeafView& leaf);
  // The map root over the records added so far; cheap to call at every
  // checkpoint (only subjects touched since the last call are rehashed).
  Hash Root();
  // The state of a subject (count 0 if it has no records).
  SubjectState StateOf(absl::string_view subject_id) const;
  uint64_t records() const { return next_seq_; }

 private:
  absl::Status CheckSeq(uint64_t seq);
  void AddOne(absl::string_view subject_id, uint64_t seq, const Hash& leaf_hash);
  void AddKey(const Hash& key, uint64_t seq, const Hash& leaf_hash);

  uint64_t next_seq_ = 0;
  absl::flat_hash_map<Hash, SubjectState> states_;
  absl::flat_hash_set<Hash> dirty_;  // touched since the last Root()
  SubjectMap map_;
};

// Calls fn(subject_id) for each of the `count` str16 ids in `encoded` (a
// record's subject ids as LeafView holds them). INVALID_ARGUMENT if they are
// truncated.
absl::Status ForEachEncodedSubject(absl::string_view encoded, uint16_t count,
                                   const std::function<void(absl::string_view)>& fn);

// Calls fn(key) with the map key of each subject of a decoded leaf, in
// order: SubjectKey(id) for a format-1 record, the subject tag itself for a
// format-2 one (BLINDING.md). INVALID_ARGUMENT if the ids are truncated.
absl::Status ForEachSubjectKey(const LeafView& leaf, const std::function<void(const Hash&)>& fn);

// Parses the "subjects <base64>" extension among a checkpoint's extension
// lines. nullopt when there is none; INVALID_ARGUMENT for a malformed one or
// more than one.
absl::StatusOr<std::optional<Hash>> SubjectRootFromExtensions(
    absl::Span<const std::string> extensions);
// "subjects <base64 root>".
std::string SubjectsExtensionLine(const Hash& root);

}  // namespace caseledger

#endif  // CASELEDGER_LEDGER_SUBJECT_INDEX_H_
