#include "ledger/subject_index.h"

#include <algorithm>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "ledger/internal/status_macros.h"

namespace caseledger {
namespace {

constexpr size_t kKeyBits = 256;

void UpdateU64(Sha256& sha, uint64_t v) {
  uint8_t b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<uint8_t>(v >> (56 - 8 * i));
  sha.Update(absl::string_view(reinterpret_cast<const char*>(b), 8));
}

// One hasher per thread, reused: creating an EVP context per hash costs
// more than hashing these short inputs.
Sha256& Hasher() {
  thread_local Sha256 hasher;
  return hasher;
}

}  // namespace

size_t SharedPrefixBits(const Hash& a, const Hash& b) {
  for (size_t i = 0; i < kHashSize; ++i) {
    uint8_t x = a[i] ^ b[i];
    if (x != 0) {
      size_t n = 0;
      while ((x & 0x80) == 0) {
        x <<= 1;
        ++n;
      }
      return i * 8 + n;
    }
  }
  return kKeyBits;
}

Hash SubjectKey(absl::string_view subject_id) {
  Sha256& sha = Hasher();
  sha.Update(kSubjectKeyPrefix);
  sha.Update(subject_id);
  return sha.Finish();
}

Hash SubjectChainNext(const Hash& head, uint64_t seq, const Hash& leaf_hash) {
  Sha256& sha = Hasher();
  sha.Update(kSubjectChainPrefix);
  sha.Update(head);
  UpdateU64(sha, seq);
  sha.Update(leaf_hash);
  return sha.Finish();
}

SubjectState SubjectChainAppend(const SubjectState& state, uint64_t seq, const Hash& leaf_hash) {
  return SubjectState{state.count + 1, SubjectChainNext(state.head, seq, leaf_hash)};
}

Hash SubjectMapLeafHash(const Hash& key, const SubjectState& state) {
  Sha256& sha = Hasher();
  sha.Update(kSubjectMapLeafPrefix);
  sha.Update(key);
  UpdateU64(sha, state.count);
  sha.Update(state.head);
  return sha.Finish();
}

Hash SubjectMapNodeHash(const Hash& left, const Hash& right) {
  Sha256& sha = Hasher();
  sha.Update(kSubjectMapNodePrefix);
  sha.Update(left);
  sha.Update(right);
  return sha.Finish();
}

absl::StatusOr<Hash> SubjectMapRootFromProof(const Hash& key, const SubjectMapProof& proof) {
  const size_t depth = proof.siblings.size();
  if (depth > kKeyBits) {
    return absl::InvalidArgumentError(
        absl::StrCat("subject map proof: got ", depth, " siblings, want at most 256"));
  }
  Hash cur = EmptySubjectMapRoot();
  if (proof.leaf.has_value()) {
    if (proof.leaf->key != key && SharedPrefixBits(proof.leaf->key, key) < depth) {
      return absl::InvalidArgumentError(absl::StrCat(
          "subject map proof: the end leaf's key ", ShortHex(proof.leaf->key),
          " leaves the path of key ", ShortHex(key), " above depth ", depth));
    }
    cur = SubjectMapLeafHash(proof.leaf->key, proof.leaf->state);
  }
  for (size_t d = depth; d-- > 0;) {
    cur = KeyBit(key, d) == 0 ? SubjectMapNodeHash(cur, proof.siblings[d])
                              : SubjectMapNodeHash(proof.siblings[d], cur);
  }
  return cur;
}

absl::StatusOr<SubjectState> VerifySubjectMapProof(const Hash& root, const Hash& key,
                                                   const SubjectMapProof& proof) {
  CL_ASSIGN_OR_RETURN(Hash got, SubjectMapRootFromProof(key, proof));
  if (got != root) {
    return absl::DataLossError(absl::StrCat("subject map proof for key ", ShortHex(key),
                                            ": computed root ", ShortHex(got), ", want ",
                                            ShortHex(root)));
  }
  if (proof.leaf.has_value() && proof.leaf->key == key) return proof.leaf->state;
  return SubjectState{};
}

// ---------------------------------------------------------------------------
// SubjectMap

// A node is either a leaf (is_leaf) or an interior node with one or two
// children. Interior nodes on a single-child chain exist only where two
// leaves share a long prefix; the subtree hash treats a missing child as the
// empty hash.
struct SubjectMap::Node {
  bool is_leaf = false;
  bool dirty = true;
  Hash hash{};
  // Leaf fields.
  Hash key{};
  SubjectState state;
  // Interior fields.
  std::unique_ptr<Node> child[2];
};

SubjectMap::SubjectMap() = default;
SubjectMap::~SubjectMap() {
  // Iterative teardown: a degenerate path can be 256 nodes deep, which
  // recursion handles, but keep destruction flat anyway.
  std::vector<std::unique_ptr<Node>> stack;
  if (root_) stack.push_back(std::move(root_));
  while (!stack.empty()) {
    std::unique_ptr<Node> n = std::move(stack.back());
    stack.pop_back();
    for (auto& c : n->child) {
      if (c) stack.push_back(std::move(c));
    }
  }
}
SubjectMap::SubjectMap(SubjectMap&&) noexcept = default;
SubjectMap& SubjectMap::operator=(SubjectMap&&) noexcept = default;

void SubjectMap::Set(const Hash& key, const SubjectState& state) {
  std::unique_ptr<Node>* slot = &root_;
  size_t depth = 0;
  for (;;) {
    Node* n = slot->get();
    if (n == nullptr) {
      auto leaf = std::make_unique<Node>();
      leaf->is_leaf = true;
      leaf->key = key;
      leaf->state = state;
      *slot = std::move(leaf);
      ++size_;
      return;
    }
    n->dirty = true;
    if (!n->is_leaf) {
      slot = &n->child[KeyBit(key, depth)];
      ++depth;
      continue;
    }
    if (n->key == key) {
      n->state = state;
      return;
    }
    // Another key's leaf: push it down until the two keys' paths part.
    std::unique_ptr<Node> other = std::move(*slot);
    size_t split = SharedPrefixBits(other->key, key);
    std::unique_ptr<Node>* cur = slot;
    for (size_t d = depth; d < split; ++d) {
      *cur = std::make_unique<Node>();
      cur = &(*cur)->child[KeyBit(key, d)];
    }
    *cur = std::make_unique<Node>();
    auto leaf = std::make_unique<Node>();
    leaf->is_leaf = true;
    leaf->key = key;
    leaf->state = state;
    (*cur)->child[KeyBit(key, split)] = std::move(leaf);
    (*cur)->child[KeyBit(other->key, split)] = std::move(other);
    ++size_;
    return;
  }
}

std::optional<SubjectState> SubjectMap::Get(const Hash& key) const {
  const Node* n = root_.get();
  size_t depth = 0;
  while (n != nullptr && !n->is_leaf) n = n->child[KeyBit(key, depth++)].get();
  if (n == nullptr || n->key != key) return std::nullopt;
  return n->state;
}

namespace {

template <typename NodeT>
Hash Rehash(NodeT* n) {
  if (n == nullptr) return EmptySubjectMapRoot();
  if (!n->dirty) return n->hash;
  if (n->is_leaf) {
    n->hash = SubjectMapLeafHash(n->key, n->state);
  } else {
    n->hash = SubjectMapNodeHash(Rehash(n->child[0].get()), Rehash(n->child[1].get()));
  }
  n->dirty = false;
  return n->hash;
}

}  // namespace

Hash SubjectMap::Root() { return Rehash(root_.get()); }

absl::StatusOr<SubjectMapProof> SubjectMap::Prove(const Hash& key) const {
  SubjectMapProof proof;
  const Node* n = root_.get();
  size_t depth = 0;
  while (n != nullptr && !n->is_leaf) {
    if (n->dirty) {
      return absl::FailedPreconditionError("subject map: Root() must be called before Prove()");
    }
    int bit = KeyBit(key, depth++);
    const Node* sibling = n->child[1 - bit].get();
    proof.siblings.push_back(sibling == nullptr ? EmptySubjectMapRoot() : sibling->hash);
    n = n->child[bit].get();
  }
  if (n != nullptr) {
    if (n->dirty) {
      return absl::FailedPreconditionError("subject map: Root() must be called before Prove()");
    }
    proof.leaf = SubjectMapProof::Leaf{n->key, n->state};
  }
  return proof;
}

namespace {

using OldState = std::pair<Hash, SubjectState>;

// Appends the pruned old form of `n` (at `depth`) to `out`; `keys` are the
// changed keys below it, sorted.
template <typename NodeT>
absl::Status PruneOld(const NodeT* n, size_t depth, absl::Span<const OldState> keys,
                      std::vector<PrunedMapNode>* out) {
  using Kind = PrunedMapNode::Kind;
  if (n != nullptr && n->dirty) {
    return absl::FailedPreconditionError("subject map: Root() must be called before PrunedOld()");
  }
  PrunedSubtree here;
  if (n != nullptr) {
    here = {true, n->is_leaf, n->key, n->state, n->hash};
  }
  CL_ASSIGN_OR_RETURN(bool done, PruneEnd(here, keys, out));
  if (done) return absl::OkStatus();
  auto right_start = std::partition_point(
      keys.begin(), keys.end(), [&](const OldState& k) { return KeyBit(k.first, depth) == 0; });
  const size_t split = static_cast<size_t>(right_start - keys.begin());
  const size_t at = out->size();
  out->push_back(PrunedMapNode{Kind::kInternal});
  const size_t left = out->size();
  CL_RETURN_IF_ERROR(PruneOld(n->child[0].get(), depth + 1, keys.subspan(0, split), out));
  const size_t right = out->size();
  CL_RETURN_IF_ERROR(PruneOld(n->child[1].get(), depth + 1, keys.subspan(split), out));
  CollapsePrunedInternal(at, left, right, out);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<bool> PruneEnd(const PrunedSubtree& n,
                              absl::Span<const std::pair<Hash, SubjectState>> keys,
                              std::vector<PrunedMapNode>* out) {
  using Kind = PrunedMapNode::Kind;
  if (keys.empty()) {
    PrunedMapNode p;
    if (!n.present) {
      p.kind = Kind::kEmpty;
    } else if (n.is_leaf) {
      p.kind = Kind::kLeaf;
      p.key = n.key;
      p.state = n.state;
    } else {
      p.kind = Kind::kOpaque;
      p.hash = n.hash;
    }
    out->push_back(p);
    return true;
  }
  if (!n.present || (n.is_leaf && (keys.size() != 1 || keys[0].first != n.key))) {
    const Hash& missing = (n.present && keys[0].first == n.key) ? keys[1].first : keys[0].first;
    return absl::InvalidArgumentError(
        absl::StrCat("subject map: PrunedOld: key ", ShortHex(missing), " is not in the map"));
  }
  if (!n.is_leaf) return false;
  PrunedMapNode p;
  if (keys[0].second.count > 0) {
    p.kind = Kind::kLeaf;
    p.key = n.key;
    p.state = keys[0].second;
  }
  out->push_back(p);
  return true;
}

void CollapsePrunedInternal(size_t at, size_t left, size_t right,
                            std::vector<PrunedMapNode>* out) {
  using Kind = PrunedMapNode::Kind;
  // A subtree of one node is Empty, a Leaf or Opaque; collapse what is left
  // with fewer than two subjects, as the compact map holds it.
  const bool left_single = right == left + 1;
  const bool right_single = out->size() == right + 1;
  const Kind lk = (*out)[left].kind;
  const Kind rk = (*out)[right].kind;
  if (left_single && right_single && lk == Kind::kEmpty && rk == Kind::kEmpty) {
    out->resize(at);
    out->push_back(PrunedMapNode{});
  } else if (left_single && lk == Kind::kEmpty && right_single && rk == Kind::kLeaf) {
    PrunedMapNode leaf = (*out)[right];
    out->resize(at);
    out->push_back(leaf);
  } else if (right_single && rk == Kind::kEmpty && left_single && lk == Kind::kLeaf) {
    PrunedMapNode leaf = (*out)[left];
    out->resize(at);
    out->push_back(leaf);
  }
}

absl::StatusOr<std::vector<PrunedMapNode>> SubjectMap::PrunedOld(
    const absl::flat_hash_map<Hash, SubjectState>& old_states) const {
  std::vector<OldState> keys(old_states.begin(), old_states.end());
  std::sort(keys.begin(), keys.end(),
            [](const OldState& a, const OldState& b) { return a.first < b.first; });
  std::vector<PrunedMapNode> out;
  out.reserve(keys.size() * 24 + 1);
  CL_RETURN_IF_ERROR(PruneOld(root_.get(), 0, keys, &out));
  return out;
}

// ---------------------------------------------------------------------------
// SubjectIndexBuilder

absl::Status SubjectIndexBuilder::CheckSeq(uint64_t seq) {
  if (seq != next_seq_) {
    return absl::InvalidArgumentError(
        absl::StrCat("subject index: got record ", seq, ", want ", next_seq_));
  }
  ++next_seq_;
  return absl::OkStatus();
}

void SubjectIndexBuilder::AddOne(absl::string_view subject_id, uint64_t seq,
                                 const Hash& leaf_hash) {
  AddKey(SubjectKey(subject_id), seq, leaf_hash);
}

void SubjectIndexBuilder::AddKey(const Hash& key, uint64_t seq, const Hash& leaf_hash) {
  auto it = states_.try_emplace(key).first;
  dirty_.insert(key);
  it->second = SubjectChainAppend(it->second, seq, leaf_hash);
}

absl::Status SubjectIndexBuilder::Add(uint64_t seq, const Hash& leaf_hash,
                                      absl::Span<const std::string> subject_ids) {
  CL_RETURN_IF_ERROR(CheckSeq(seq));
  for (const std::string& id : subject_ids) AddOne(id, seq, leaf_hash);
  return absl::OkStatus();
}

absl::Status ForEachEncodedSubject(absl::string_view encoded, uint16_t count,
                                   const std::function<void(absl::string_view)>& fn) {
  for (uint16_t i = 0; i < count; ++i) {
    size_t n = encoded.size() < 2 ? 0
                                  : (static_cast<size_t>(static_cast<uint8_t>(encoded[0])) << 8) |
                                        static_cast<uint8_t>(encoded[1]);
    if (encoded.size() < 2 || encoded.size() < 2 + n) {
      return absl::InvalidArgumentError(
          absl::StrCat("subject ids: truncated at id ", i, " of ", count));
    }
    fn(encoded.substr(2, n));
    encoded.remove_prefix(2 + n);
  }
  return absl::OkStatus();
}

absl::Status SubjectIndexBuilder::AddEncoded(uint64_t seq, const Hash& leaf_hash,
                                             absl::string_view encoded, uint16_t count) {
  CL_RETURN_IF_ERROR(CheckSeq(seq));
  absl::Status s = ForEachEncodedSubject(
      encoded, count, [&](absl::string_view id) { AddOne(id, seq, leaf_hash); });
  if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat("record ", seq, ": ", s.message()));
  return absl::OkStatus();
}

absl::Status ForEachSubjectKey(const LeafView& leaf, const std::function<void(const Hash&)>& fn) {
  if (leaf.format_version == kRecordFormatBlinded) {
    if (leaf.encoded_subject_ids.size() != size_t{leaf.subject_count} * kHashSize) {
      return absl::InvalidArgumentError(absl::StrCat("subject tags: got ",
                                                     leaf.encoded_subject_ids.size(),
                                                     " bytes, want ", leaf.subject_count, " tags"));
    }
    for (uint16_t i = 0; i < leaf.subject_count; ++i) {
      CL_ASSIGN_OR_RETURN(Hash tag,
                          HashFromBytes(leaf.encoded_subject_ids.substr(i * kHashSize, kHashSize)));
      fn(tag);
    }
    return absl::OkStatus();
  }
  return ForEachEncodedSubject(leaf.encoded_subject_ids, leaf.subject_count,
                               [&](absl::string_view id) { fn(SubjectKey(id)); });
}

absl::Status SubjectIndexBuilder::AddLeaf(uint64_t seq, const Hash& leaf_hash,
                                          const LeafView& leaf) {
  CL_RETURN_IF_ERROR(CheckSeq(seq));
  absl::Status s =
      ForEachSubjectKey(leaf, [&](const Hash& key) { AddKey(key, seq, leaf_hash); });
  if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat("record ", seq, ": ", s.message()));
  return absl::OkStatus();
}

Hash SubjectIndexBuilder::Root() {
  for (const Hash& key : dirty_) map_.Set(key, states_[key]);
  dirty_.clear();
  return map_.Root();
}

SubjectState SubjectIndexBuilder::StateOf(absl::string_view subject_id) const {
  auto it = states_.find(SubjectKey(subject_id));
  return it == states_.end() ? SubjectState{} : it->second;
}

// ---------------------------------------------------------------------------
// Checkpoint extension

std::string SubjectsExtensionLine(const Hash& root) {
  return absl::StrCat(kSubjectsExtension, " ", absl::Base64Escape(AsBytes(root)));
}

absl::StatusOr<std::optional<Hash>> SubjectRootFromExtensions(
    absl::Span<const std::string> extensions) {
  std::optional<Hash> found;
  const std::string prefix = absl::StrCat(kSubjectsExtension, " ");
  for (const std::string& line : extensions) {
    if (!absl::StartsWith(line, prefix)) continue;
    if (found.has_value()) {
      return absl::InvalidArgumentError("checkpoint: more than one \"subjects\" extension line");
    }
    absl::string_view b64 = absl::string_view(line).substr(prefix.size());
    std::string bytes;
    if (!absl::Base64Unescape(b64, &bytes) || absl::Base64Escape(bytes) != b64 ||
        bytes.size() != kHashSize) {
      return absl::InvalidArgumentError(absl::StrCat(
          "checkpoint \"subjects\" extension: got \"", b64,
          "\", want the canonical base64 of a 32-byte map root"));
    }
    CL_ASSIGN_OR_RETURN(Hash h, HashFromBytes(bytes));
    found = h;
  }
  return found;
}

}  // namespace caseledger
