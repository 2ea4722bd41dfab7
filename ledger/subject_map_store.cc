#include "ledger/subject_map_store.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "ledger/internal/bytes.h"
#include "ledger/internal/status_macros.h"

namespace caseledger {
namespace {

constexpr uint8_t kLeafTag = 0x01;
constexpr uint8_t kInteriorTag = 0x03;
constexpr size_t kLeafValueBytes = 1 + kHashSize + 8 + kHashSize;
constexpr size_t kInteriorValueBytes = 1 + 2 * kHashSize;
constexpr size_t kMigrationBatchNodes = 1 << 16;

bool IsEmpty(const Hash& h) { return h == EmptySubjectMapRoot(); }

// A slot whose child changed since the last Rehash: not empty, hash to come.
constexpr Hash kStaleHash = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                             0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                             0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                             0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

size_t PathDepth(absl::string_view path) {
  return (static_cast<size_t>(static_cast<uint8_t>(path[0])) << 8) | static_cast<uint8_t>(path[1]);
}

void SetBit(Hash& key, size_t depth, int bit) {
  const uint8_t mask = static_cast<uint8_t>(0x80 >> (depth % 8));
  if (bit) {
    key[depth / 8] |= mask;
  } else {
    key[depth / 8] &= static_cast<uint8_t>(~mask);
  }
}

StoredSubjectMap::Node LeafNode(const Hash& key, const SubjectState& state) {
  StoredSubjectMap::Node n;
  n.is_leaf = true;
  n.key = key;
  n.state = state;
  return n;
}

}  // namespace

std::string SubjectMapNodePath(const Hash& key, size_t depth) {
  std::string out;
  out.reserve(2 + (depth + 7) / 8);
  out.push_back(static_cast<char>(depth >> 8));
  out.push_back(static_cast<char>(depth & 0xff));
  for (size_t i = 0; i < (depth + 7) / 8; ++i) {
    uint8_t b = key[i];
    if (depth < (i + 1) * 8) b &= static_cast<uint8_t>(0xff00 >> (depth - i * 8));
    out.push_back(static_cast<char>(b));
  }
  return out;
}

Hash SubjectMapNodeHashOf(const StoredSubjectMap::Node& node) {
  return node.is_leaf ? SubjectMapLeafHash(node.key, node.state)
                      : SubjectMapNodeHash(node.child[0], node.child[1]);
}

std::string EncodeSubjectMapNode(const StoredSubjectMap::Node& node) {
  std::string out;
  if (node.is_leaf) {
    out.reserve(kLeafValueBytes);
    out.push_back(static_cast<char>(kLeafTag));
    out.append(AsBytes(node.key).data(), kHashSize);
    out.append(internal::U64Key(node.state.count));
    out.append(AsBytes(node.state.head).data(), kHashSize);
  } else {
    out.reserve(kInteriorValueBytes);
    out.push_back(static_cast<char>(kInteriorTag));
    out.append(AsBytes(node.child[0]).data(), kHashSize);
    out.append(AsBytes(node.child[1]).data(), kHashSize);
  }
  return out;
}

absl::StatusOr<StoredSubjectMap::Node> DecodeSubjectMapNode(absl::string_view v) {
  StoredSubjectMap::Node n;
  const uint8_t tag = v.empty() ? 0 : static_cast<uint8_t>(v[0]);
  if (tag == kLeafTag && v.size() == kLeafValueBytes) {
    n.is_leaf = true;
    CL_ASSIGN_OR_RETURN(n.key, HashFromBytes(v.substr(1, kHashSize)));
    n.state.count = internal::DecodeU64(v.substr(1 + kHashSize, 8));
    CL_ASSIGN_OR_RETURN(n.state.head, HashFromBytes(v.substr(1 + kHashSize + 8, kHashSize)));
    if (n.state.count == 0) return absl::DataLossError("subject map node: a leaf with count 0");
    return n;
  }
  if (tag == kInteriorTag && v.size() == kInteriorValueBytes) {
    CL_ASSIGN_OR_RETURN(n.child[0], HashFromBytes(v.substr(1, kHashSize)));
    CL_ASSIGN_OR_RETURN(n.child[1], HashFromBytes(v.substr(1 + kHashSize, kHashSize)));
    if (IsEmpty(n.child[0]) && IsEmpty(n.child[1])) {
      return absl::DataLossError("subject map node: an interior node with two empty children");
    }
    return n;
  }
  return absl::DataLossError(absl::StrCat("subject map node: got tag ", tag, " and ", v.size(),
                                          " bytes, want 0x01 and ", kLeafValueBytes,
                                          " (leaf) or 0x03 and ", kInteriorValueBytes,
                                          " (interior)"));
}

absl::StatusOr<Hash> BuildSubjectMapNodes(
    const std::vector<std::pair<Hash, SubjectState>>& leaves, size_t batch,
    const std::function<absl::Status(std::vector<std::pair<std::string, std::string>>)>& emit) {
  std::vector<std::pair<std::string, std::string>> out;
  absl::Status failed;
  auto put = [&](const Hash& key, size_t depth, const StoredSubjectMap::Node& n) {
    out.emplace_back(SubjectMapNodePath(key, depth), EncodeSubjectMapNode(n));
    if (out.size() >= batch && failed.ok()) {
      failed = emit(std::move(out));
      out.clear();
    }
  };
  for (size_t i = 1; i < leaves.size(); ++i) {
    if (!(leaves[i - 1].first < leaves[i].first)) {
      return absl::InvalidArgumentError("subject map leaves: not sorted by key, or repeated");
    }
  }
  // Builds the subtree at `depth` over leaves [lo, hi), hi > lo.
  std::function<Hash(size_t, size_t, size_t)> build = [&](size_t lo, size_t hi,
                                                          size_t depth) -> Hash {
    if (hi - lo == 1) {
      StoredSubjectMap::Node leaf = LeafNode(leaves[lo].first, leaves[lo].second);
      put(leaves[lo].first, depth, leaf);
      return SubjectMapNodeHashOf(leaf);
    }
    auto mid_it = std::partition_point(
        leaves.begin() + lo, leaves.begin() + hi,
        [&](const std::pair<Hash, SubjectState>& l) { return KeyBit(l.first, depth) == 0; });
    const size_t mid = static_cast<size_t>(mid_it - leaves.begin());
    StoredSubjectMap::Node n;
    n.child[0] = mid > lo ? build(lo, mid, depth + 1) : EmptySubjectMapRoot();
    n.child[1] = hi > mid ? build(mid, hi, depth + 1) : EmptySubjectMapRoot();
    put(leaves[lo].first, depth, n);
    return SubjectMapNodeHashOf(n);
  };
  Hash root = leaves.empty() ? EmptySubjectMapRoot() : build(0, leaves.size(), 0);
  if (failed.ok() && !out.empty()) failed = emit(std::move(out));
  CL_RETURN_IF_ERROR(failed);
  return root;
}

absl::StatusOr<StoredSubjectMap> StoredSubjectMap::Open(SubjectIndexStore* store,
                                                        SubjectMapStoreOptions options) {
  CL_ASSIGN_OR_RETURN(uint32_t layout, store->SubjectMapLayout());
  if (layout == 1) {
    std::vector<std::pair<Hash, SubjectState>> leaves;
    CL_RETURN_IF_ERROR(store->ScanSubjectMap(
        [&](const Hash& key, const SubjectState& state) { leaves.emplace_back(key, state); }));
    if (!leaves.empty()) {
      std::fprintf(stderr,
                   "caseledger: the subject map is stored as %zu leaves (layout 1); writing its "
                   "nodes (layout 2, ledger/SUBJECT_INDEX.md \"Storage\")\n",
                   leaves.size());
    }
    CL_RETURN_IF_ERROR(BuildSubjectMapNodes(
                           leaves, kMigrationBatchNodes,
                           [&](std::vector<std::pair<std::string, std::string>> nodes) {
                             return store->PutSubjectMapNodes(nodes, /*finish=*/false);
                           })
                           .status());
    CL_RETURN_IF_ERROR(store->PutSubjectMapNodes({}, /*finish=*/true));
  } else if (layout != 2) {
    return absl::FailedPreconditionError(absl::StrCat(
        "subject map: stored layout ", layout, ", want 1 or 2 (ledger/SUBJECT_INDEX.md)"));
  }
  StoredSubjectMap map(store, options);
  CL_ASSIGN_OR_RETURN(std::optional<Node> root, map.Load(SubjectMapNodePath(Hash{}, 0)));
  map.root_ = root.has_value() ? SubjectMapNodeHashOf(*root) : EmptySubjectMapRoot();
  return map;
}

absl::StatusOr<std::optional<StoredSubjectMap::Node>> StoredSubjectMap::Load(
    const std::string& path) {
  if (auto it = dirty_.find(path); it != dirty_.end()) return std::optional<Node>(it->second);
  if (auto it = index_.find(path); it != index_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second);
    return std::optional<Node>(it->second->second);
  }
  ++store_reads_;
  CL_ASSIGN_OR_RETURN(std::optional<std::string> v, store_->GetSubjectMapNode(path));
  if (!v.has_value()) return std::optional<Node>();
  absl::StatusOr<Node> n = DecodeSubjectMapNode(*v);
  if (!n.ok()) {
    return absl::DataLossError(absl::StrCat("subject map node at depth ",
                                            (static_cast<uint8_t>(path[0]) << 8) |
                                                static_cast<uint8_t>(path[1]),
                                            ": ", n.status().message()));
  }
  Cache(path, *n);
  return std::optional<Node>(*std::move(n));
}

void StoredSubjectMap::Cache(const std::string& path, const Node& node) {
  if (auto it = index_.find(path); it != index_.end()) {
    it->second->second = node;
    lru_.splice(lru_.begin(), lru_, it->second);
    return;
  }
  const size_t capacity = options_.cache_bytes / kSubjectMapCachedNodeBytes;
  if (capacity == 0) return;
  lru_.emplace_front(path, node);
  index_[path] = lru_.begin();
  while (lru_.size() > capacity) {
    index_.erase(lru_.back().first);
    lru_.pop_back();
  }
}

void StoredSubjectMap::Put(const std::string& path, const Node& node) {
  if (auto it = index_.find(path); it != index_.end()) {
    lru_.erase(it->second);
    index_.erase(it);
  }
  dirty_[path] = node;
}

Hash StoredSubjectMap::Root() {
  Rehash();
  return root_;
}

std::vector<std::pair<std::string, std::string>> StoredSubjectMap::TakeWrites() {
  Rehash();
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(dirty_.size());
  for (auto& [path, node] : dirty_) {
    out.emplace_back(path, EncodeSubjectMapNode(node));
    Cache(path, node);
  }
  dirty_.clear();
  std::sort(out.begin(), out.end());  // key order: cheaper memtable inserts
  return out;
}

absl::Status StoredSubjectMap::Set(const Hash& key, const SubjectState& state) {
  // Every node on the key's path becomes dirty, and each slot the path
  // leaves through is marked stale (non-empty, hash to come): Rehash fills
  // them in from the bottom, once per node however many keys share it.
  const Node leaf = LeafNode(key, state);
  size_t depth = 0;
  bool must_exist = false;  // the parent's slot says a node is there
  for (;;) {
    const std::string path = SubjectMapNodePath(key, depth);
    CL_ASSIGN_OR_RETURN(std::optional<Node> n, Load(path));
    if (!n.has_value()) {
      if (must_exist) {
        return absl::DataLossError(absl::StrCat("subject map: the node at depth ", depth,
                                                " on the path of ", ShortHex(key),
                                                " is missing from the store"));
      }
      Put(path, leaf);
      break;
    }
    if (!n->is_leaf) {
      const int bit = KeyBit(key, depth);
      must_exist = !IsEmpty(n->child[bit]);
      n->child[bit] = kStaleHash;
      Put(path, *n);
      ++depth;
      continue;
    }
    if (n->key == key) {
      Put(path, leaf);
      break;
    }
    // Another key's leaf: it moves down to where the two paths part, under a
    // chain of interior nodes with one child each.
    const Node other = *n;
    const size_t split = SharedPrefixBits(other.key, key);
    Put(SubjectMapNodePath(other.key, split + 1), other);
    Put(SubjectMapNodePath(key, split + 1), leaf);
    for (size_t d = depth; d <= split; ++d) {
      Node chain;
      chain.child[KeyBit(key, d)] = kStaleHash;
      if (d == split) chain.child[KeyBit(other.key, d)] = kStaleHash;
      Put(SubjectMapNodePath(key, d), chain);
    }
    break;
  }
  stale_ = true;
  return absl::OkStatus();
}

void StoredSubjectMap::Rehash() {
  if (!stale_) return;
  stale_ = false;
  // Deepest first: each node's hash goes into its parent's slot.
  std::vector<std::pair<size_t, std::pair<const std::string, Node>*>> order;
  order.reserve(dirty_.size());
  for (auto& entry : dirty_) order.emplace_back(PathDepth(entry.first), &entry);
  std::sort(order.begin(), order.end(),
            [](const auto& a, const auto& b) { return a.first > b.first; });
  root_ = EmptySubjectMapRoot();
  for (const auto& [depth, entry] : order) {
    const Hash h = SubjectMapNodeHashOf(entry->second);
    if (depth == 0) {
      root_ = h;
      continue;
    }
    // Every dirty node's parent is dirty: Set writes whole paths.
    const std::string& path = entry->first;
    const size_t d = depth - 1;
    Hash prefix{};
    std::copy(path.begin() + 2, path.end(), prefix.begin());
    auto parent = dirty_.find(SubjectMapNodePath(prefix, d));
    if (parent != dirty_.end()) parent->second.child[KeyBit(prefix, d)] = h;
  }
}

absl::StatusOr<std::optional<SubjectState>> StoredSubjectMap::Get(const Hash& key) {
  CL_ASSIGN_OR_RETURN(SubjectMapProof proof, Prove(key));
  if (proof.leaf.has_value() && proof.leaf->key == key) {
    return std::optional<SubjectState>(proof.leaf->state);
  }
  return std::optional<SubjectState>();
}

absl::StatusOr<SubjectMapProof> StoredSubjectMap::Prove(const Hash& key) {
  Rehash();
  SubjectMapProof proof;
  size_t depth = 0;
  CL_ASSIGN_OR_RETURN(std::optional<Node> n, Load(SubjectMapNodePath(key, 0)));
  while (n.has_value() && !n->is_leaf) {
    const int bit = KeyBit(key, depth);
    proof.siblings.push_back(n->child[1 - bit]);
    const bool empty = IsEmpty(n->child[bit]);
    ++depth;
    if (empty) return proof;
    CL_ASSIGN_OR_RETURN(n, Load(SubjectMapNodePath(key, depth)));
    if (!n.has_value()) {
      return absl::DataLossError(absl::StrCat("subject map: the node at depth ", depth,
                                              " on the path of ", ShortHex(key),
                                              " is missing from the store"));
    }
  }
  if (n.has_value()) proof.leaf = SubjectMapProof::Leaf{n->key, n->state};
  return proof;
}

absl::Status StoredSubjectMap::Prune(const Hash& path_key, size_t depth,
                                     const std::optional<Node>& n,
                                     absl::Span<const std::pair<Hash, SubjectState>> keys,
                                     std::vector<PrunedMapNode>* out) {
  using Kind = PrunedMapNode::Kind;
  PrunedSubtree here;
  if (n.has_value()) {
    here = {true, n->is_leaf, n->key, n->state,
            n->is_leaf ? Hash{} : SubjectMapNodeHashOf(*n)};
  }
  CL_ASSIGN_OR_RETURN(bool done, PruneEnd(here, keys, out));
  if (done) return absl::OkStatus();
  auto right_start = std::partition_point(
      keys.begin(), keys.end(),
      [&](const std::pair<Hash, SubjectState>& k) { return KeyBit(k.first, depth) == 0; });
  const size_t split = static_cast<size_t>(right_start - keys.begin());
  const size_t at = out->size();
  out->push_back(PrunedMapNode{Kind::kInternal});
  size_t starts[2];
  for (int side = 0; side < 2; ++side) {
    starts[side] = out->size();
    Hash child_key = path_key;
    SetBit(child_key, depth, side);
    std::optional<Node> child;
    if (!IsEmpty(n->child[side])) {
      CL_ASSIGN_OR_RETURN(child, Load(SubjectMapNodePath(child_key, depth + 1)));
      if (!child.has_value()) {
        return absl::DataLossError(absl::StrCat("subject map: a node at depth ", depth + 1,
                                                " is missing from the store"));
      }
    }
    auto part = side == 0 ? keys.subspan(0, split) : keys.subspan(split);
    CL_RETURN_IF_ERROR(Prune(child_key, depth + 1, child, part, out));
  }
  CollapsePrunedInternal(at, starts[0], starts[1], out);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<PrunedMapNode>> StoredSubjectMap::PrunedOld(
    const absl::flat_hash_map<Hash, SubjectState>& old_states) {
  std::vector<std::pair<Hash, SubjectState>> keys(old_states.begin(), old_states.end());
  std::sort(keys.begin(), keys.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  Rehash();
  std::vector<PrunedMapNode> out;
  out.reserve(keys.size() * 24 + 1);
  CL_ASSIGN_OR_RETURN(std::optional<Node> root, Load(SubjectMapNodePath(Hash{}, 0)));
  CL_RETURN_IF_ERROR(Prune(Hash{}, 0, root, keys, &out));
  return out;
}

}  // namespace caseledger
