// The append-only RFC 9162 Merkle tree, kept as stored perfect-subtree nodes.
//
// Node addressing: node (level, index) is the root of the perfect subtree over
// leaves [index << level, (index + 1) << level). Level 0 holds the leaf hashes
// (LeafHash(entry)); node (l + 1, i) = NodeHash((l, 2i), (l, 2i + 1)). A node
// exists once its last leaf has been appended and never changes afterwards.
// Only these perfect nodes are stored: the root of a tree whose size is not a
// power of two, and the ragged right-edge subtrees on the way to it, are
// recomputed from at most one stored node per level. ledger/MERKLE.md is the
// full specification.
//
// MerkleTree is the writer's in-memory state (the "frontier"); the free
// functions read a NodeReader and serve roots and proofs for any earlier size.
#ifndef CASELEDGER_LEDGER_MERKLE_TREE_H_
#define CASELEDGER_LEDGER_MERKLE_TREE_H_

#include <array>
#include <cstdint>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "ledger/hash.h"

namespace caseledger {

// The position of a perfect-subtree node.
struct NodePosition {
  uint32_t level;
  uint64_t index;
};

// Read access to stored perfect-subtree nodes.
class NodeReader {
 public:
  virtual ~NodeReader() = default;
  // The hash of node (level, index). NOT_FOUND if the node is not stored; any
  // other error is the store's own and is passed through by every caller here.
  virtual absl::StatusOr<Hash> GetNode(uint32_t level, uint64_t index) const = 0;
  // GetNode of each of `positions` into out[i] (`out` holds
  // positions.size() hashes); the first error, codes as GetNode. Callers pass
  // positions sorted by (level, index) without duplicates. This default calls
  // GetNode for each; stores override it with a batched read.
  virtual absl::Status GetNodes(absl::Span<const NodePosition> positions, Hash* out) const {
    for (size_t i = 0; i < positions.size(); ++i) {
      absl::StatusOr<Hash> h = GetNode(positions[i].level, positions[i].index);
      if (!h.ok()) return h.status();
      out[i] = *h;
    }
    return absl::OkStatus();
  }
};

// One node to store, as produced by MerkleTree::Append.
struct NodeWrite {
  uint32_t level;
  uint64_t index;
  Hash hash;
};

// A NodeReader over a hash map, for tests and tools.
// Thread-compatible: const methods may run concurrently; Put may not.
class InMemoryNodeStore : public NodeReader {
 public:
  // Stores (or overwrites) node (write.level, write.index).
  void Put(const NodeWrite& write);
  // Stores every write in order.
  void PutAll(const std::vector<NodeWrite>& writes);
  // NOT_FOUND "node (level L, index I) not found" if absent.
  absl::StatusOr<Hash> GetNode(uint32_t level, uint64_t index) const override;
  // The number of stored nodes.
  size_t size() const { return nodes_.size(); }

 private:
  absl::flat_hash_map<std::pair<uint32_t, uint64_t>, Hash> nodes_;
};

// The compact state of an append-only tree: its size and the roots of the
// perfect subtrees along its right edge, one per set bit of the size.
// A value type, thread-compatible.
class MerkleTree {
 public:
  // The empty tree.
  MerkleTree();

  // The state of the tree of `size` leaves whose nodes `nodes` holds: reads
  // the popcount(size) <= 64 frontier nodes. Errors from `nodes` (NOT_FOUND
  // for a missing node) are returned unchanged. `nodes` is only borrowed for
  // the duration of the call.
  static absl::StatusOr<MerkleTree> Load(uint64_t size, const NodeReader& nodes);

  // The tree of `size` leaves from its compact range: the roots of its
  // perfect subtrees, left to right (largest first), as Frontier() returns
  // them. INVALID_ARGUMENT unless there are exactly popcount(size) of them.
  static absl::StatusOr<MerkleTree> FromFrontier(uint64_t size, const std::vector<Hash>& subtrees);

  // The compact range [0, size()): the roots of the perfect subtrees, left
  // to right; popcount(size()) hashes. Folding them from the right with
  // NodeHash gives Root().
  std::vector<Hash> Frontier() const;

  // The number of leaves.
  uint64_t size() const { return size_; }

  // MTH of the current tree (RFC 9162 2.1.1); EmptyRoot() for size 0.
  // O(log n) hashes, no reads.
  Hash Root() const;

  // Appends the leaf whose hash is `leaf_hash` (already LeafHash()ed). If
  // `out` is not null, appends to it every node this completes, in ascending
  // level: first (0, old size) for the leaf itself, then each newly perfect
  // ancestor. Amortized O(1) hashes, O(log n) worst case; allocates nothing
  // beyond growing `out`. Requires size() < UINT64_MAX.
  void Append(const Hash& leaf_hash, std::vector<NodeWrite>* out);

 private:
  uint64_t size_ = 0;
  // frontier_[l] is the root of the perfect level-l subtree on the right
  // edge; meaningful only where bit l of size_ is set.
  std::array<Hash, 64> frontier_;
};

// MTH of the first `size` leaves (EmptyRoot() for 0), from popcount(size)
// stored nodes. Store errors are returned unchanged; in particular NOT_FOUND
// if `nodes` holds fewer than `size` leaves.
absl::StatusOr<Hash> RootAt(uint64_t size, const NodeReader& nodes);

// PATH(index, D[size]) of RFC 9162 2.1.3.1: sibling hashes from the leaf up
// to the root. Reads at most 2 * log2(size) + 1 nodes. INVALID_ARGUMENT
// unless index < size; store errors are returned unchanged.
absl::StatusOr<std::vector<Hash>> InclusionProof(uint64_t index, uint64_t size,
                                                 const NodeReader& nodes);

// PATH(index, D[size]) for each of `indices`, in the same order. Paths of
// nearby leaves share their upper nodes, so each distinct node is read once
// per call: for k leaves of a tree of n, about k * log2(n / k) + 2n / k
// reads instead of k * log2(n). Codes as InclusionProof, for the first
// index that fails.
absl::StatusOr<std::vector<std::vector<Hash>>> InclusionProofs(absl::Span<const uint64_t> indices,
                                                               uint64_t size,
                                                               const NodeReader& nodes);

// PROOF(size1, D[size2]) of RFC 9162 2.1.4.1; empty when size1 == 0 or
// size1 == size2. Reads O(log size2) nodes. INVALID_ARGUMENT unless
// size1 <= size2; store errors are returned unchanged.
absl::StatusOr<std::vector<Hash>> ConsistencyProof(uint64_t size1, uint64_t size2,
                                                   const NodeReader& nodes);

}  // namespace caseledger

#endif  // CASELEDGER_LEDGER_MERKLE_TREE_H_
