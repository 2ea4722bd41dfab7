#include "ledger/merkle_tree.h"

#include <algorithm>
#include <array>

#include "absl/container/flat_hash_map.h"
#include "absl/numeric/bits.h"
#include "absl/strings/str_cat.h"

namespace caseledger {
namespace {

constexpr uint64_t Bit(uint32_t level) { return uint64_t{1} << level; }

// MTH of the `count` >= 1 leaves starting at `begin`, where `begin` is a
// multiple of the largest power of two <= count. Such a range splits, as
// RFC 9162 2.1.1 prescribes, into one stored perfect node per set bit of
// `count`, largest first; they are read from the right so that they can be
// folded without a buffer. Reads popcount(count) nodes.
absl::StatusOr<Hash> RangeRoot(uint64_t begin, uint64_t count, const NodeReader& nodes) {
  uint64_t end = begin + count;
  Hash root{};
  bool first = true;
  for (uint32_t level = 0; level < 64; ++level) {
    if ((count & Bit(level)) == 0) continue;
    end -= Bit(level);
    absl::StatusOr<Hash> node = nodes.GetNode(level, end >> level);
    if (!node.ok()) return node.status();
    root = first ? *node : NodeHash(*node, root);
    first = false;
  }
  return root;
}

// Appends to `out` the audit path of the perfect node (level, index), which
// lies within the first `size` leaves: the hashes of its siblings in the
// RFC 9162 tree of `size` leaves, from the lowest up to the root's children.
//
// Below level `inner` (the highest bit in which the node's first leaf and the
// tree's last leaf differ, plus one), every sibling is perfect except the one
// at level inner - 1, which holds the last leaf and may be ragged; it is
// rebuilt by RangeRoot. From level `inner` up the node lies on the right
// edge, where only left siblings exist, one per set bit of the leaf position.
absl::Status AppendPath(uint32_t level, uint64_t index, uint64_t size,
                        const NodeReader& nodes, std::vector<Hash>* out) {
  const uint64_t leaf = index << level;
  const uint32_t inner = absl::bit_width(leaf ^ (size - 1));
  for (uint32_t l = level; l < inner; ++l) {
    const uint64_t sibling = (leaf >> l) ^ 1;
    absl::StatusOr<Hash> hash;
    if (l + 1 < inner) {
      hash = nodes.GetNode(l, sibling);
    } else {
      const uint64_t begin = sibling << l;
      hash = RangeRoot(begin, std::min(Bit(l), size - begin), nodes);
    }
    if (!hash.ok()) return hash.status();
    out->push_back(*hash);
  }
  for (uint32_t l = std::max(inner, level); l < 64; ++l) {
    if ((leaf & Bit(l)) == 0) continue;
    absl::StatusOr<Hash> hash = nodes.GetNode(l, (leaf >> l) - 1);
    if (!hash.ok()) return hash.status();
    out->push_back(*hash);
  }
  return absl::OkStatus();
}

}  // namespace

void InMemoryNodeStore::Put(const NodeWrite& write) {
  nodes_[{write.level, write.index}] = write.hash;
}

void InMemoryNodeStore::PutAll(const std::vector<NodeWrite>& writes) {
  for (const NodeWrite& w : writes) Put(w);
}

absl::StatusOr<Hash> InMemoryNodeStore::GetNode(uint32_t level, uint64_t index) const {
  auto it = nodes_.find(std::make_pair(level, index));
  if (it == nodes_.end()) {
    return absl::NotFoundError(
        absl::StrCat("node (level ", level, ", index ", index, ") not found"));
  }
  return it->second;
}

MerkleTree::MerkleTree() : frontier_{} {}

absl::StatusOr<MerkleTree> MerkleTree::Load(uint64_t size, const NodeReader& nodes) {
  MerkleTree tree;
  for (uint32_t level = 0; level < 64; ++level) {
    if ((size & Bit(level)) == 0) continue;
    absl::StatusOr<Hash> node = nodes.GetNode(level, (size >> level) - 1);
    if (!node.ok()) return node.status();
    tree.frontier_[level] = *node;
  }
  tree.size_ = size;
  return tree;
}

absl::StatusOr<MerkleTree> MerkleTree::FromFrontier(uint64_t size,
                                                    const std::vector<Hash>& subtrees) {
  const size_t want = static_cast<size_t>(absl::popcount(size));
  if (subtrees.size() != want) {
    return absl::InvalidArgumentError(absl::StrCat("compact range of [0, ", size, "): got ",
                                                   subtrees.size(), " subtree roots, want ", want));
  }
  MerkleTree tree;
  size_t i = 0;
  for (uint32_t level = 64; level-- > 0;) {
    if ((size & Bit(level)) != 0) tree.frontier_[level] = subtrees[i++];
  }
  tree.size_ = size;
  return tree;
}

std::vector<Hash> MerkleTree::Frontier() const {
  std::vector<Hash> out;
  out.reserve(absl::popcount(size_));
  for (uint32_t level = 64; level-- > 0;) {
    if ((size_ & Bit(level)) != 0) out.push_back(frontier_[level]);
  }
  return out;
}

Hash MerkleTree::Root() const {
  if (size_ == 0) return EmptyRoot();
  uint32_t level = absl::countr_zero(size_);
  Hash root = frontier_[level];
  for (++level; level < 64; ++level) {
    if ((size_ & Bit(level)) != 0) root = NodeHash(frontier_[level], root);
  }
  return root;
}

void MerkleTree::Append(const Hash& leaf_hash, std::vector<NodeWrite>* out) {
  const uint64_t index = size_;
  if (out != nullptr) out->push_back(NodeWrite{0, index, leaf_hash});
  // Like incrementing a binary counter: each set low bit of the old size is a
  // frontier subtree that the new leaf completes into its parent.
  Hash hash = leaf_hash;
  uint32_t level = 0;
  while ((size_ & Bit(level)) != 0) {
    hash = NodeHash(frontier_[level], hash);
    ++level;
    if (out != nullptr) out->push_back(NodeWrite{level, index >> level, hash});
  }
  frontier_[level] = hash;
  ++size_;
}

absl::StatusOr<Hash> RootAt(uint64_t size, const NodeReader& nodes) {
  if (size == 0) return EmptyRoot();
  return RangeRoot(0, size, nodes);
}

absl::StatusOr<std::vector<Hash>> InclusionProof(uint64_t index, uint64_t size,
                                                 const NodeReader& nodes) {
  if (index >= size) {
    return absl::InvalidArgumentError(absl::StrCat("inclusion proof: got index ", index,
                                                   ", want less than tree size ", size));
  }
  std::vector<Hash> proof;
  proof.reserve(absl::bit_width(size - 1) + 1);
  absl::Status status = AppendPath(0, index, size, nodes, &proof);
  if (!status.ok()) return status;
  return proof;
}

namespace {

// Remembers every node it has read, for one batch of proofs. Not
// thread-safe; `base` must outlive it.
class MemoNodeReader : public NodeReader {
 public:
  explicit MemoNodeReader(const NodeReader& base) : base_(base) {}
  absl::StatusOr<Hash> GetNode(uint32_t level, uint64_t index) const override {
    auto [it, inserted] = memo_.try_emplace(std::make_pair(level, index));
    if (inserted) {
      absl::StatusOr<Hash> h = base_.GetNode(level, index);
      if (!h.ok()) {
        memo_.erase(it);
        return h.status();
      }
      it->second = *h;
    }
    return it->second;
  }

 private:
  const NodeReader& base_;
  mutable absl::flat_hash_map<std::pair<uint32_t, uint64_t>, Hash> memo_;
};

// Which nodes proofs read. AppendPath chooses its reads from positions
// alone, never from hashes, so a dry run answering zeros finds them all.
// Not thread-safe.
class PlanningNodeReader : public NodeReader {
 public:
  absl::StatusOr<Hash> GetNode(uint32_t level, uint64_t index) const override {
    std::vector<uint64_t>& at = wanted_[level];
    // Proofs of increasing leaves mostly ask for increasing nodes per level.
    if (at.empty() || at.back() != index) at.push_back(index);
    return Hash{};
  }
  // Every node asked for, sorted by (level, index), once.
  std::vector<NodePosition> Positions() const {
    std::vector<NodePosition> out;
    for (uint32_t level = 0; level < 64; ++level) {
      std::vector<uint64_t>& at = wanted_[level];
      std::sort(at.begin(), at.end());
      at.erase(std::unique(at.begin(), at.end()), at.end());
      for (uint64_t index : at) out.push_back({level, index});
    }
    return out;
  }

 private:
  mutable std::array<std::vector<uint64_t>, 64> wanted_;
};

// Answers from nodes read ahead, sorted by (level, index).
class ReadAheadNodeReader : public NodeReader {
 public:
  ReadAheadNodeReader(const std::vector<NodePosition>& positions, const std::vector<Hash>& hashes)
      : positions_(positions), hashes_(hashes) {}
  absl::StatusOr<Hash> GetNode(uint32_t level, uint64_t index) const override {
    auto it = std::lower_bound(positions_.begin(), positions_.end(), NodePosition{level, index},
                               [](const NodePosition& a, const NodePosition& b) {
                                 return a.level != b.level ? a.level < b.level : a.index < b.index;
                               });
    if (it == positions_.end() || it->level != level || it->index != index) {
      return absl::InternalError(
          absl::StrCat("node (", level, ", ", index, ") was not planned for this batch"));
    }
    return hashes_[it - positions_.begin()];
  }

 private:
  const std::vector<NodePosition>& positions_;
  const std::vector<Hash>& hashes_;
};

// One proof after another, each shared node read once; also the path that
// names the first index whose proof fails.
absl::StatusOr<std::vector<std::vector<Hash>>> ProveEach(absl::Span<const uint64_t> indices,
                                                         uint64_t size, const NodeReader& nodes) {
  std::vector<std::vector<Hash>> out;
  out.reserve(indices.size());
  for (uint64_t index : indices) {
    absl::StatusOr<std::vector<Hash>> proof = InclusionProof(index, size, nodes);
    if (!proof.ok()) return proof.status();
    out.push_back(*std::move(proof));
  }
  return out;
}

}  // namespace

absl::StatusOr<std::vector<std::vector<Hash>>> InclusionProofs(absl::Span<const uint64_t> indices,
                                                               uint64_t size,
                                                               const NodeReader& nodes) {
  // Plan every read, fetch them in one sorted batch, then build the proofs
  // from memory.
  PlanningNodeReader plan;
  absl::Status planned = ProveEach(indices, size, plan).status();
  if (!planned.ok()) return planned;
  const std::vector<NodePosition> positions = plan.Positions();
  std::vector<Hash> hashes(positions.size());
  if (nodes.GetNodes(positions, hashes.data()).ok()) {
    return ProveEach(indices, size, ReadAheadNodeReader(positions, hashes));
  }
  // A node failed to read: fail as the proofs one by one do, naming the
  // first index whose proof fails.
  return ProveEach(indices, size, MemoNodeReader(nodes));
}

absl::StatusOr<std::vector<Hash>> ConsistencyProof(uint64_t size1, uint64_t size2,
                                                   const NodeReader& nodes) {
  if (size1 > size2) {
    return absl::InvalidArgumentError(absl::StrCat("consistency proof: got size1 ", size1,
                                                   ", want at most size2 ", size2));
  }
  std::vector<Hash> proof;
  if (size1 == 0 || size1 == size2) return proof;
  // The old tree's last frontier subtree, node (level, index), is a node of
  // the new tree too; the proof is its hash (left out when it is the whole
  // old tree, whose root the verifier has) followed by its audit path.
  const uint32_t level = absl::countr_zero(size1);
  const uint64_t index = (size1 >> level) - 1;
  proof.reserve(absl::bit_width(size2 - 1) + 1);
  if (index != 0) {
    absl::StatusOr<Hash> node = nodes.GetNode(level, index);
    if (!node.ok()) return node.status();
    proof.push_back(*node);
  }
  absl::Status status = AppendPath(level, index, size2, nodes, &proof);
  if (!status.ok()) return status;
  return proof;
}

}  // namespace caseledger
