#include "ledger/subject_transition.h"

#include <cstdint>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "ledger/internal/status_macros.h"
#include "ledger/merkle_tree.h"
#include "ledger/record.h"

namespace caseledger {
namespace {

using Kind = PrunedMapNode::Kind;

constexpr size_t kMaxDepth = 256;
constexpr size_t kLeafBytes = 1 + kHashSize + 8 + kHashSize;
constexpr size_t kOpaqueBytes = 1 + kHashSize;

void PutU64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>(v >> (56 - 8 * i)));
}

uint64_t GetU64(absl::string_view b) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(b[i]);
  return v;
}

Hash GetHash(absl::string_view b) {
  Hash h;
  for (size_t i = 0; i < kHashSize; ++i) h[i] = static_cast<uint8_t>(b[i]);
  return h;
}

void SetBit(Hash* path, size_t depth, int bit) {
  const uint8_t mask = static_cast<uint8_t>(0x80 >> (depth % 8));
  if (bit != 0) {
    (*path)[depth / 8] |= mask;
  } else {
    (*path)[depth / 8] &= static_cast<uint8_t>(~mask);
  }
}

std::string DescribeState(const SubjectState& s) {
  return absl::StrCat("(count ", s.count, ", head ", ToHex(s.head), ")");
}

// The verifier's working copy of a pruned map: nodes with child indices and
// cached hashes. Checks the compact shape while parsing.
class PrunedTree {
 public:
  // INVALID_ARGUMENT for malformed bytes or a shape the compact map cannot
  // have (a leaf off its path, an internal node with fewer than two subjects
  // visible below it as Empty/Leaf children).
  absl::Status Parse(absl::string_view bytes) {
    size_t pos = 0;
    Hash path{};
    CL_ASSIGN_OR_RETURN(root_, ParseNode(bytes, &pos, 0, &path));
    if (pos != bytes.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "pruned map: ", bytes.size() - pos, " bytes after the root's subtree at byte ", pos));
    }
    return absl::OkStatus();
  }

  size_t size() const { return nodes_.size(); }
  Hash Root() { return HashOf(root_); }

  // Appends (seq, leaf_hash) to `key`'s chain and returns the new state.
  // DATA_LOSS when the path meets an Opaque node.
  absl::StatusOr<SubjectState> Append(const Hash& key, uint64_t seq, const Hash& leaf_hash) {
    int32_t idx = root_;
    size_t depth = 0;
    for (;;) {
      Node& n = nodes_[idx];
      n.dirty = true;
      switch (n.kind) {
        case Kind::kInternal:
          idx = n.child[KeyBit(key, depth)];
          ++depth;
          continue;
        case Kind::kOpaque:
          return absl::DataLossError(absl::StrCat(
              "transition proof does not cover subject key ", ToHex(key), " (record seq ", seq,
              "): an opaque node at depth ", depth, " is on its path"));
        case Kind::kEmpty:
          n.kind = Kind::kLeaf;
          n.key = key;
          n.state = SubjectChainAppend(SubjectState{}, seq, leaf_hash);
          return n.state;
        case Kind::kLeaf:
          if (n.key == key) {
            n.state = SubjectChainAppend(n.state, seq, leaf_hash);
            return n.state;
          }
          return Split(idx, depth, key, SubjectChainAppend(SubjectState{}, seq, leaf_hash));
      }
    }
  }

 private:
  struct Node {
    Kind kind = Kind::kEmpty;
    bool dirty = true;
    int32_t child[2] = {-1, -1};
    Hash key{};
    SubjectState state;
    Hash hash{};
  };

  int32_t Add(Node n) {
    nodes_.push_back(std::move(n));
    return static_cast<int32_t>(nodes_.size() - 1);
  }

  absl::StatusOr<int32_t> ParseNode(absl::string_view bytes, size_t* pos, size_t depth,
                                    Hash* path) {
    auto bad = [&](absl::string_view what) {
      return absl::InvalidArgumentError(absl::StrCat("pruned map: byte ", *pos, ": ", what));
    };
    if (*pos >= bytes.size()) return bad("truncated: want a node tag");
    const uint8_t tag = static_cast<uint8_t>(bytes[*pos]);
    Node n;
    switch (tag) {
      case static_cast<uint8_t>(Kind::kEmpty):
        n.kind = Kind::kEmpty;
        *pos += 1;
        return Add(n);
      case static_cast<uint8_t>(Kind::kLeaf): {
        if (bytes.size() - *pos < kLeafBytes) return bad("truncated leaf");
        n.kind = Kind::kLeaf;
        n.key = GetHash(bytes.substr(*pos + 1));
        n.state.count = GetU64(bytes.substr(*pos + 1 + kHashSize));
        n.state.head = GetHash(bytes.substr(*pos + 1 + kHashSize + 8));
        if (SharedPrefixBits(n.key, *path) < depth) {
          return bad(absl::StrCat("leaf key ", ToHex(n.key), " is off its path at depth ", depth));
        }
        if (n.state.count == 0) return bad("leaf with count 0");
        *pos += kLeafBytes;
        return Add(n);
      }
      case static_cast<uint8_t>(Kind::kOpaque):
        if (bytes.size() - *pos < kOpaqueBytes) return bad("truncated opaque node");
        n.kind = Kind::kOpaque;
        n.hash = GetHash(bytes.substr(*pos + 1));
        n.dirty = false;
        *pos += kOpaqueBytes;
        return Add(n);
      case static_cast<uint8_t>(Kind::kInternal): {
        if (depth >= kMaxDepth) return bad("internal node at depth 256");
        const size_t at = *pos;
        *pos += 1;
        n.kind = Kind::kInternal;
        int32_t idx = Add(n);
        for (int bit = 0; bit < 2; ++bit) {
          SetBit(path, depth, bit);
          CL_ASSIGN_OR_RETURN(int32_t c, ParseNode(bytes, pos, depth + 1, path));
          nodes_[idx].child[bit] = c;
        }
        const Kind l = nodes_[nodes_[idx].child[0]].kind;
        const Kind r = nodes_[nodes_[idx].child[1]].kind;
        auto small = [](Kind k) { return k == Kind::kEmpty || k == Kind::kLeaf; };
        if (small(l) && small(r) && (l == Kind::kEmpty || r == Kind::kEmpty)) {
          return absl::InvalidArgumentError(
              absl::StrCat("pruned map: byte ", at,
                           ": internal node with fewer than two subjects (not compact)"));
        }
        return idx;
      }
      default:
        return bad(absl::StrCat("unknown node tag ", tag));
    }
  }

  // Replaces the leaf at `idx` (depth `depth`, another key) by the internal
  // nodes down to where its key and `key` part, with both leaves below.
  SubjectState Split(int32_t idx, size_t depth, const Hash& key, const SubjectState& state) {
    Node other = nodes_[idx];
    other.dirty = true;
    const size_t part = SharedPrefixBits(other.key, key);  // >= depth, < 256: keys differ
    int32_t cur = idx;
    nodes_[cur] = Node{};
    nodes_[cur].kind = Kind::kInternal;
    for (size_t d = depth; d < part; ++d) {
      int32_t next = Add(Node{Kind::kInternal});
      int32_t empty = Add(Node{});
      const int bit = KeyBit(key, d);
      nodes_[cur].child[bit] = next;
      nodes_[cur].child[1 - bit] = empty;
      cur = next;
    }
    Node mine;
    mine.kind = Kind::kLeaf;
    mine.key = key;
    mine.state = state;
    int32_t a = Add(mine);
    int32_t b = Add(other);
    nodes_[cur].child[KeyBit(key, part)] = a;
    nodes_[cur].child[KeyBit(other.key, part)] = b;
    return state;
  }

  Hash HashOf(int32_t idx) {
    Node& n = nodes_[idx];
    if (!n.dirty) return n.hash;
    switch (n.kind) {
      case Kind::kEmpty:
        n.hash = EmptySubjectMapRoot();
        break;
      case Kind::kLeaf:
        n.hash = SubjectMapLeafHash(n.key, n.state);
        break;
      case Kind::kOpaque:
        break;
      case Kind::kInternal: {
        const int32_t l = n.child[0];
        const int32_t r = n.child[1];
        Hash lh = HashOf(l);
        Hash rh = HashOf(r);
        nodes_[idx].hash = SubjectMapNodeHash(lh, rh);
        break;
      }
    }
    nodes_[idx].dirty = false;
    return nodes_[idx].hash;
  }

  std::vector<Node> nodes_;
  int32_t root_ = -1;
};

// Decodes record `i` of `t` (seq `seq`) into `view`.
absl::Status DecodeAt(const std::string& record, uint64_t seq, LeafView* view) {
  absl::StatusOr<LeafView> v = DecodeLeafView(record);
  if (!v.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("transition record at seq ", seq, ": ", v.status().message()));
  }
  *view = *v;
  return absl::OkStatus();
}

}  // namespace

std::string EncodePrunedMap(absl::Span<const PrunedMapNode> nodes) {
  std::string out;
  out.reserve(nodes.size() * kLeafBytes / 2);
  for (const PrunedMapNode& n : nodes) {
    out.push_back(static_cast<char>(n.kind));
    switch (n.kind) {
      case Kind::kLeaf:
        absl::StrAppend(&out, AsBytes(n.key));
        PutU64(&out, n.state.count);
        absl::StrAppend(&out, AsBytes(n.state.head));
        break;
      case Kind::kOpaque:
        absl::StrAppend(&out, AsBytes(n.hash));
        break;
      case Kind::kEmpty:
      case Kind::kInternal:
        break;
    }
  }
  return out;
}

absl::StatusOr<std::vector<PrunedMapNode>> DecodePrunedMap(absl::string_view bytes) {
  // Counts open subtrees to find the end of the root's; the shape rules are
  // the verifier's (PrunedTree).
  std::vector<PrunedMapNode> out;
  size_t pos = 0;
  size_t open = 1;           // subtrees still to read
  std::vector<int> pending;  // children still to read, per unfinished internal node
  while (open > 0) {
    auto bad = [&](absl::string_view what) {
      return absl::InvalidArgumentError(absl::StrCat("pruned map: byte ", pos, ": ", what));
    };
    if (pos >= bytes.size()) return bad("truncated: want a node tag");
    PrunedMapNode n;
    const uint8_t tag = static_cast<uint8_t>(bytes[pos]);
    if (tag > static_cast<uint8_t>(Kind::kInternal)) {
      return bad(absl::StrCat("unknown node tag ", tag));
    }
    n.kind = static_cast<Kind>(tag);
    size_t len = 1;
    if (n.kind == Kind::kLeaf) len = kLeafBytes;
    if (n.kind == Kind::kOpaque) len = kOpaqueBytes;
    if (bytes.size() - pos < len) return bad("truncated node");
    if (n.kind == Kind::kLeaf) {
      n.key = GetHash(bytes.substr(pos + 1));
      n.state.count = GetU64(bytes.substr(pos + 1 + kHashSize));
      n.state.head = GetHash(bytes.substr(pos + 1 + kHashSize + 8));
    } else if (n.kind == Kind::kOpaque) {
      n.hash = GetHash(bytes.substr(pos + 1));
    }
    pos += len;
    --open;
    if (n.kind == Kind::kInternal) {
      if (pending.size() >= kMaxDepth) return bad("internal node at depth 256");
      pending.push_back(2);
      open += 2;
    } else {
      // This subtree is complete: close every internal node it completes.
      while (!pending.empty() && --pending.back() == 0) pending.pop_back();
    }
    out.push_back(n);
  }
  if (pos != bytes.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "pruned map: ", bytes.size() - pos, " bytes after the root's subtree at byte ", pos));
  }
  return out;
}

absl::StatusOr<SubjectTransitionStats> VerifySubjectTransition(const SubjectTransitionEnd& from,
                                                               const SubjectTransitionEnd& to,
                                                               const SubjectTransition& t) {
  const uint64_t n = from.size;
  const uint64_t m = to.size;
  if (t.from_size != n) {
    return absl::InvalidArgumentError(
        absl::StrCat("transition: got one from size ", t.from_size, ", want ", n));
  }
  if (n > m) {
    return absl::InvalidArgumentError(
        absl::StrCat("transition: from size ", n, " is beyond to size ", m));
  }
  // 1. The compact range is the tree at n.
  absl::StatusOr<MerkleTree> tree = MerkleTree::FromFrontier(n, t.old_range);
  if (!tree.ok()) return tree.status();
  if (tree->Root() != from.root) {
    return absl::DataLossError(absl::StrCat("compact range of [0, ", n, ") folds to root ",
                                            ToHex(tree->Root()), ", checkpoint at ", n, " says ",
                                            ToHex(from.root)));
  }
  // 2. The records are exactly records n .. m-1 of the tree at m.
  if (t.records.size() != m - n) {
    return absl::DataLossError(absl::StrCat("transition: got ", t.records.size(), " records, want ",
                                            m - n, " (records [", n, ", ", m, "))"));
  }
  std::vector<Hash> leaf_hashes;
  leaf_hashes.reserve(t.records.size());
  std::vector<LeafView> views(t.records.size());
  for (size_t i = 0; i < t.records.size(); ++i) {
    const uint64_t seq = n + i;
    CL_RETURN_IF_ERROR(DecodeAt(t.records[i], seq, &views[i]));
    if (views[i].seq != seq) {
      return absl::DataLossError(absl::StrCat("transition record at position ", seq, " has seq ",
                                              views[i].seq, ", want ", seq));
    }
    leaf_hashes.push_back(LeafHash(t.records[i]));
    tree->Append(leaf_hashes.back(), nullptr);
  }
  if (tree->Root() != to.root) {
    return absl::DataLossError(absl::StrCat("records [", n, ", ", m, ") appended to the tree at ",
                                            n, " give root ", ToHex(tree->Root()),
                                            ", checkpoint at ", m, " says ", ToHex(to.root)));
  }
  // 3. The pruned map is the map at n.
  PrunedTree map;
  CL_RETURN_IF_ERROR(map.Parse(t.old_map));
  SubjectTransitionStats stats;
  stats.records = m - n;
  stats.pruned_nodes = map.size();
  const Hash old_root = map.Root();
  if (old_root != from.subjects_root) {
    return absl::DataLossError(absl::StrCat("transition's old subject map hashes to ",
                                            ToHex(old_root), ", checkpoint at ", n,
                                            " says subjects ", ToHex(from.subjects_root)));
  }
  // 4. Apply every record's subjects, in seq order.
  struct Touched {
    SubjectState state;
    uint64_t last_seq = 0;
  };
  absl::flat_hash_map<Hash, Touched> touched;
  std::vector<Hash> order;  // first-touch order
  absl::Status failed;
  for (size_t i = 0; i < views.size() && failed.ok(); ++i) {
    const uint64_t seq = n + i;
    absl::Status s = ForEachSubjectKey(
        views[i], [&](const Hash& key) {
          if (!failed.ok()) return;
          absl::StatusOr<SubjectState> next = map.Append(key, seq, leaf_hashes[i]);
          if (!next.ok()) {
            failed = next.status();
            return;
          }
          auto [it, inserted] = touched.try_emplace(key);
          if (inserted) order.push_back(key);
          it->second = Touched{*next, seq};
          ++stats.subject_steps;
        });
    CL_RETURN_IF_ERROR(s);
  }
  CL_RETURN_IF_ERROR(failed);
  stats.keys = order.size();
  const Hash new_root = map.Root();
  if (new_root == to.subjects_root) return stats;

  std::string diagnosis;
  absl::flat_hash_map<Hash, SubjectState> claims;
  for (const SubjectClaim& c : t.claims) claims.emplace(c.key, c.state);
  for (const Hash& key : order) {
    const Touched& mine = touched[key];
    auto it = claims.find(key);
    if (it == claims.end()) {
      diagnosis =
          absl::StrCat("; subject key ", ToHex(key), " (last named by record seq ", mine.last_seq,
                       "): computed ", DescribeState(mine.state), ", the server claims no change");
      break;
    }
    if (it->second != mine.state) {
      diagnosis = absl::StrCat("; first disagreement: subject key ", ToHex(key),
                               " (last named by record seq ", mine.last_seq, "): computed ",
                               DescribeState(mine.state), ", the server claims ",
                               DescribeState(it->second));
      break;
    }
  }
  if (diagnosis.empty()) {
    for (const SubjectClaim& c : t.claims) {
      if (!touched.contains(c.key)) {
        diagnosis = absl::StrCat("; the server claims a change to subject key ", ToHex(c.key),
                                 ", which no record in the range names");
        break;
      }
    }
  }
  if (diagnosis.empty()) {
    diagnosis =
        "; every state the server claims matches the records, so the checkpoint's "
        "subjects root is not the map they give";
  }
  return absl::DataLossError(absl::StrCat("subjects root does not follow from records [", n, ", ",
                                          m, "): computed ", ToHex(new_root), ", checkpoint says ",
                                          ToHex(to.subjects_root), diagnosis));
}

absl::StatusOr<absl::flat_hash_map<Hash, uint64_t>> CountSubjectSteps(
    absl::Span<const std::string> records) {
  absl::flat_hash_map<Hash, uint64_t> out;
  for (const std::string& r : records) {
    absl::StatusOr<LeafView> v = DecodeLeafView(r);
    if (!v.ok()) return v.status();
    CL_RETURN_IF_ERROR(ForEachSubjectKey(*v, [&](const Hash& key) { ++out[key]; }));
  }
  return out;
}

absl::StatusOr<SubjectTransition> SubjectTransitionFromRecords(
    absl::Span<const std::string> records, uint64_t from_size) {
  if (from_size > records.size()) {
    return absl::InvalidArgumentError(absl::StrCat("transition: from size ", from_size,
                                                   " is beyond ", records.size(), " records"));
  }
  SubjectTransition t;
  t.from_size = from_size;
  MerkleTree tree;
  absl::flat_hash_map<Hash, SubjectState> states;
  absl::flat_hash_map<Hash, SubjectState> old_states;  // keys named in [from, size)
  for (uint64_t seq = 0; seq < records.size(); ++seq) {
    if (seq == from_size) t.old_range = tree.Frontier();
    absl::StatusOr<LeafView> v = DecodeLeafView(records[seq]);
    if (!v.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("record ", seq, ": ", v.status().message()));
    }
    const Hash leaf_hash = LeafHash(records[seq]);
    tree.Append(leaf_hash, nullptr);
    CL_RETURN_IF_ERROR(
        ForEachSubjectKey(*v, [&](const Hash& key) {
          SubjectState& s = states[key];
          if (seq >= from_size) old_states.try_emplace(key, s);
          s = SubjectChainAppend(s, seq, leaf_hash);
        }));
  }
  if (from_size == records.size()) t.old_range = tree.Frontier();
  SubjectMap map;
  for (const auto& [key, state] : states) map.Set(key, state);
  map.Root();
  std::vector<PrunedMapNode> pruned;
  CL_ASSIGN_OR_RETURN(pruned, map.PrunedOld(old_states));
  t.old_map = EncodePrunedMap(pruned);
  t.records.assign(records.begin() + from_size, records.end());
  for (const auto& [key, unused] : old_states) t.claims.push_back({key, states[key]});
  return t;
}

}  // namespace caseledger
