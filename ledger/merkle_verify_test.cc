#include "ledger/merkle_verify.h"

#include <gtest/gtest.h>

#include <cctype>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "ledger/hash.h"
#include "ledger/merkle_tree.h"
#include "tests/naive_merkle.h"

namespace caseledger {
namespace {

using ::caseledger::testing::NaiveLeafHashes;
using ::caseledger::testing::NaivePath;
using ::caseledger::testing::NaiveProof;
using ::caseledger::testing::NaiveRoot;

constexpr char kGoldenPath[] = "tests/testdata/merkle_golden.json";

::testing::AssertionResult HasStatus(const absl::Status& status, absl::StatusCode code,
                                     const std::string& message = "") {
  if (status.code() == code && (message.empty() || status.message() == message)) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure()
         << "got " << status << ", want " << absl::StatusCodeToString(code)
         << (message.empty() ? "" : ": ") << message;
}

// ---------------------------------------------------------------------------
// A minimal JSON reader for the golden file: objects, arrays, strings without
// escapes, and unsigned integers. Anything else is a parse error.

struct Json {
  enum class Kind { kNumber, kString, kArray, kObject };
  Kind kind = Kind::kNumber;
  uint64_t number = 0;
  std::string text;
  std::vector<Json> items;
  std::vector<std::pair<std::string, Json>> fields;

  // The member named `key`; a static empty array if there is none, which the
  // callers' size checks then report.
  const Json& operator[](absl::string_view key) const {
    for (const auto& [k, v] : fields) {
      if (k == key) return v;
    }
    static const Json* const kMissing = [] {
      Json* empty = new Json;
      empty->kind = Kind::kArray;
      return empty;
    }();
    return *kMissing;
  }
};

class JsonParser {
 public:
  explicit JsonParser(absl::string_view in) : in_(in) {}

  bool Parse(Json* out) {
    if (!Value(out)) return false;
    SkipSpace();
    return Fail(pos_ == in_.size(), "trailing characters");
  }
  const std::string& error() const { return error_; }

 private:
  bool Fail(bool ok, absl::string_view what) {
    if (!ok && error_.empty()) error_ = absl::StrCat(what, " at offset ", pos_);
    return ok;
  }
  void SkipSpace() {
    while (pos_ < in_.size() && std::isspace(static_cast<unsigned char>(in_[pos_]))) ++pos_;
  }
  bool Eat(char c) {
    SkipSpace();
    if (pos_ < in_.size() && in_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool String(std::string* out) {
    if (!Fail(Eat('"'), "want '\"'")) return false;
    const size_t end = in_.find('"', pos_);
    if (!Fail(end != absl::string_view::npos, "unterminated string")) return false;
    *out = std::string(in_.substr(pos_, end - pos_));
    if (!Fail(out->find('\\') == std::string::npos, "escapes are not supported")) return false;
    pos_ = end + 1;
    return true;
  }
  bool Value(Json* out) {
    SkipSpace();
    if (!Fail(pos_ < in_.size(), "unexpected end")) return false;
    const char c = in_[pos_];
    if (c == '"') {
      out->kind = Json::Kind::kString;
      return String(&out->text);
    }
    if (c == '[') {
      out->kind = Json::Kind::kArray;
      ++pos_;
      if (Eat(']')) return true;
      do {
        out->items.emplace_back();
        if (!Value(&out->items.back())) return false;
      } while (Eat(','));
      return Fail(Eat(']'), "want ']'");
    }
    if (c == '{') {
      out->kind = Json::Kind::kObject;
      ++pos_;
      if (Eat('}')) return true;
      do {
        out->fields.emplace_back();
        if (!String(&out->fields.back().first)) return false;
        if (!Fail(Eat(':'), "want ':'")) return false;
        if (!Value(&out->fields.back().second)) return false;
      } while (Eat(','));
      return Fail(Eat('}'), "want '}'");
    }
    if (!Fail(std::isdigit(static_cast<unsigned char>(c)) != 0, "unexpected character")) {
      return false;
    }
    out->kind = Json::Kind::kNumber;
    while (pos_ < in_.size() && std::isdigit(static_cast<unsigned char>(in_[pos_]))) {
      out->number = out->number * 10 + static_cast<uint64_t>(in_[pos_++] - '0');
    }
    return true;
  }

  absl::string_view in_;
  size_t pos_ = 0;
  std::string error_;
};

// The published vectors, decoded.
struct Golden {
  std::vector<std::string> leaves;
  struct Node {
    uint32_t level;
    uint64_t index;
    Hash hash;
  };
  std::vector<Node> nodes;
  std::vector<Hash> roots;  // roots[n] is the root of the first n leaves.
  struct Inclusion {
    uint64_t index, size;
    std::vector<Hash> path;
  };
  std::vector<Inclusion> inclusions;
  struct Consistency {
    uint64_t size1, size2;
    std::vector<Hash> proof;
  };
  std::vector<Consistency> consistencies;
};

Hash H(const std::string& hex) {
  absl::StatusOr<Hash> h = HashFromHex(hex);
  EXPECT_TRUE(h.ok()) << h.status();
  return h.ok() ? *h : Hash{};
}

std::vector<Hash> Hashes(const Json& array) {
  std::vector<Hash> out;
  for (const Json& item : array.items) out.push_back(H(item.text));
  return out;
}

// Reads kGoldenPath; fails the current test on any error.
Golden LoadGolden() {
  Golden g;
  std::ifstream file(kGoldenPath);
  EXPECT_TRUE(file.good()) << "cannot open " << kGoldenPath;
  std::stringstream buffer;
  buffer << file.rdbuf();
  const std::string text = buffer.str();
  Json root;
  JsonParser parser(text);
  EXPECT_TRUE(parser.Parse(&root)) << kGoldenPath << ": " << parser.error();
  for (const Json& leaf : root["leaves_hex"].items) {
    g.leaves.push_back(absl::HexStringToBytes(leaf.text));
  }
  for (const Json& n : root["nodes"].items) {
    g.nodes.push_back(
        {static_cast<uint32_t>(n["level"].number), n["index"].number, H(n["hash"].text)});
  }
  for (const Json& r : root["roots"].items) {
    EXPECT_EQ(r["size"].number, g.roots.size()) << "roots must be listed by size";
    g.roots.push_back(H(r["root"].text));
  }
  for (const Json& p : root["inclusion_proofs"].items) {
    g.inclusions.push_back({p["index"].number, p["size"].number, Hashes(p["path"])});
  }
  for (const Json& p : root["consistency_proofs"].items) {
    g.consistencies.push_back({p["size1"].number, p["size2"].number, Hashes(p["proof"])});
  }
  // Guard against a silently truncated file.
  EXPECT_EQ(g.leaves.size(), 8u);
  EXPECT_EQ(g.nodes.size(), 15u);
  EXPECT_EQ(g.roots.size(), 9u);
  EXPECT_EQ(g.inclusions.size(), 5u);
  EXPECT_EQ(g.consistencies.size(), 5u);
  return g;
}

// A tree over the golden leaves and the store its appends filled.
struct GoldenTree {
  std::vector<Hash> leaf_hashes;
  InMemoryNodeStore store;
  std::vector<Hash> roots;  // Root() after each size, from 0.
};

void BuildGolden(const Golden& g, GoldenTree* t) {
  t->leaf_hashes = NaiveLeafHashes(g.leaves);
  MerkleTree tree;
  t->roots.push_back(tree.Root());
  std::vector<NodeWrite> writes;
  for (const Hash& leaf : t->leaf_hashes) {
    writes.clear();
    tree.Append(leaf, &writes);
    t->store.PutAll(writes);
    t->roots.push_back(tree.Root());
  }
}

std::vector<Hash> Prefix(const std::vector<Hash>& leaves, uint64_t n) {
  return std::vector<Hash>(leaves.begin(), leaves.begin() + n);
}

// ---------------------------------------------------------------------------
// Golden vectors.

TEST(MerkleGoldenTest, NodesAndRootsMatchPublishedValues) {
  const Golden g = LoadGolden();
  GoldenTree t;
  BuildGolden(g, &t);
  ASSERT_EQ(t.store.size(), g.nodes.size());
  for (const Golden::Node& n : g.nodes) {
    SCOPED_TRACE(absl::StrCat("node (", n.level, ", ", n.index, ")"));
    absl::StatusOr<Hash> stored = t.store.GetNode(n.level, n.index);
    ASSERT_TRUE(stored.ok()) << stored.status();
    EXPECT_EQ(ToHex(*stored), ToHex(n.hash));
  }
  for (uint64_t size = 0; size < g.roots.size(); ++size) {
    SCOPED_TRACE(absl::StrCat("size ", size));
    EXPECT_EQ(ToHex(t.roots[size]), ToHex(g.roots[size]));
    EXPECT_EQ(ToHex(NaiveRoot(Prefix(t.leaf_hashes, size))), ToHex(g.roots[size]));
    absl::StatusOr<Hash> stored = RootAt(size, t.store);
    ASSERT_TRUE(stored.ok()) << stored.status();
    EXPECT_EQ(ToHex(*stored), ToHex(g.roots[size]));
  }
}

TEST(MerkleGoldenTest, InclusionProofsMatchPublishedValues) {
  const Golden g = LoadGolden();
  GoldenTree t;
  BuildGolden(g, &t);
  for (const Golden::Inclusion& p : g.inclusions) {
    SCOPED_TRACE(absl::StrCat("index ", p.index, " size ", p.size));
    absl::StatusOr<std::vector<Hash>> proof = InclusionProof(p.index, p.size, t.store);
    ASSERT_TRUE(proof.ok()) << proof.status();
    EXPECT_EQ(*proof, p.path);
    EXPECT_EQ(NaivePath(p.index, Prefix(t.leaf_hashes, p.size)), p.path);
    const Hash& leaf = t.leaf_hashes[p.index];
    absl::StatusOr<Hash> computed = RootFromInclusionProof(leaf, p.index, p.size, p.path);
    ASSERT_TRUE(computed.ok()) << computed.status();
    EXPECT_EQ(ToHex(*computed), ToHex(g.roots[p.size]));
    EXPECT_TRUE(VerifyInclusion(leaf, p.index, p.size, p.path, g.roots[p.size]).ok());
  }
}

// The step-by-step walk that early-exit verifiers share: every node it
// computes is a node of the naive tree, it is done exactly when the path ends,
// and it ends at the root.
TEST(InclusionWalkTest, EachStepIsANodeOfTheTreeAndTheLastIsTheRoot) {
  std::vector<std::string> entries;
  for (int i = 0; i < 13; ++i) entries.push_back(absl::StrCat("entry ", i));
  const std::vector<Hash> leaves = NaiveLeafHashes(entries);
  for (uint64_t size = 1; size <= leaves.size(); ++size) {
    const std::vector<Hash> tree = Prefix(leaves, size);
    for (uint64_t index = 0; index < size; ++index) {
      SCOPED_TRACE(absl::StrCat("index ", index, " size ", size));
      const std::vector<Hash> path = NaivePath(index, tree);
      ASSERT_EQ(path.size(), InclusionProofLength(index, size));
      InclusionWalk walk(tree[index], index, size);
      EXPECT_EQ(walk.hash(), tree[index]);
      for (size_t i = 0; i < path.size(); ++i) {
        EXPECT_FALSE(walk.done()) << "after " << i << " of " << path.size() << " hashes";
        walk.Step(path[i]);
      }
      EXPECT_TRUE(walk.done());
      EXPECT_EQ(ToHex(walk.hash()), ToHex(NaiveRoot(tree)));
      // A flipped sibling changes the root.
      if (!path.empty()) {
        InclusionWalk bad(tree[index], index, size);
        std::vector<Hash> flipped = path;
        flipped.back()[0] ^= 1;
        for (const Hash& h : flipped) bad.Step(h);
        EXPECT_NE(bad.hash(), NaiveRoot(tree));
      }
    }
  }
}

TEST(MerkleGoldenTest, ConsistencyProofsMatchPublishedValues) {
  const Golden g = LoadGolden();
  GoldenTree t;
  BuildGolden(g, &t);
  for (const Golden::Consistency& p : g.consistencies) {
    SCOPED_TRACE(absl::StrCat("sizes ", p.size1, " -> ", p.size2));
    absl::StatusOr<std::vector<Hash>> proof = ConsistencyProof(p.size1, p.size2, t.store);
    ASSERT_TRUE(proof.ok()) << proof.status();
    EXPECT_EQ(*proof, p.proof);
    EXPECT_EQ(NaiveProof(p.size1, Prefix(t.leaf_hashes, p.size2)), p.proof);
    absl::Status verified =
        VerifyConsistency(p.size1, p.size2, p.proof, g.roots[p.size1], g.roots[p.size2]);
    EXPECT_TRUE(verified.ok()) << verified;
  }
}

// Exact messages, on the published tree of 8 leaves.
TEST(MerkleGoldenTest, RejectionMessages) {
  const Golden g = LoadGolden();
  const std::vector<Hash> leaves = NaiveLeafHashes(g.leaves);
  const Golden::Inclusion& incl = g.inclusions[2];  // Index 5 in size 8.
  ASSERT_EQ(incl.index, 5u);
  ASSERT_EQ(incl.size, 8u);
  EXPECT_TRUE(HasStatus(VerifyInclusion(leaves[5], 5, 8, incl.path, g.roots[7]),
                        absl::StatusCode::kDataLoss,
                        "inclusion proof: computed root 5dc9da79\u2026, want ddb89be4\u2026"));
  // Leaf 4's hash at index 5: same path shape, wrong leaf.
  absl::StatusOr<Hash> wrong_leaf_root = RootFromInclusionProof(leaves[4], 5, 8, incl.path);
  ASSERT_TRUE(wrong_leaf_root.ok());
  EXPECT_TRUE(HasStatus(VerifyInclusion(leaves[4], 5, 8, incl.path, g.roots[8]),
                        absl::StatusCode::kDataLoss,
                        absl::StrCat("inclusion proof: computed root ", ShortHex(*wrong_leaf_root),
                                     ", want 5dc9da79\u2026")));
  std::vector<Hash> short_path(incl.path.begin(), incl.path.end() - 1);
  EXPECT_TRUE(HasStatus(VerifyInclusion(leaves[5], 5, 8, short_path, g.roots[8]),
                        absl::StatusCode::kInvalidArgument,
                        "inclusion proof: got 2 hashes, want 3 for index 5 in tree of size 8"));
  EXPECT_TRUE(HasStatus(VerifyInclusion(leaves[5], 8, 8, incl.path, g.roots[8]),
                        absl::StatusCode::kInvalidArgument,
                        "inclusion proof: got index 8, want less than tree size 8"));

  const Golden::Consistency& cons = g.consistencies[2];  // 6 -> 8.
  ASSERT_EQ(cons.size1, 6u);
  ASSERT_EQ(cons.size2, 8u);
  EXPECT_TRUE(HasStatus(VerifyConsistency(6, 8, cons.proof, g.roots[5], g.roots[8]),
                        absl::StatusCode::kDataLoss,
                        "consistency proof: computed root1 76e67dad\u2026, want 4e3bbb1f\u2026"));
  EXPECT_TRUE(HasStatus(VerifyConsistency(6, 8, cons.proof, g.roots[6], g.roots[7]),
                        absl::StatusCode::kDataLoss,
                        "consistency proof: computed root2 5dc9da79\u2026, want ddb89be4\u2026"));
  EXPECT_TRUE(HasStatus(VerifyConsistency(6, 8, {}, g.roots[6], g.roots[8]),
                        absl::StatusCode::kInvalidArgument,
                        "consistency proof: got 0 hashes, want 3 from size 6 to size 8"));
  EXPECT_TRUE(HasStatus(VerifyConsistency(8, 6, cons.proof, g.roots[8], g.roots[6]),
                        absl::StatusCode::kInvalidArgument,
                        "consistency proof: got size1 8, want at most size2 6"));
}

// ---------------------------------------------------------------------------
// Edge cases that RFC 9162 leaves to the verifier.

TEST(MerkleVerifyTest, SingleLeafTree) {
  const Hash leaf = LeafHash("data");
  EXPECT_TRUE(VerifyInclusion(leaf, 0, 1, {}, leaf).ok());
  EXPECT_TRUE(HasStatus(VerifyInclusion(leaf, 0, 1, {}, EmptyRoot()), absl::StatusCode::kDataLoss));
  EXPECT_TRUE(HasStatus(VerifyInclusion(leaf, 0, 1, {leaf}, leaf),
                        absl::StatusCode::kInvalidArgument,
                        "inclusion proof: got 1 hashes, want 0 for index 0 in tree of size 1"));
}

TEST(MerkleVerifyTest, EmptyTreeHasNoInclusion) {
  const Hash leaf = LeafHash("data");
  EXPECT_TRUE(HasStatus(VerifyInclusion(leaf, 0, 0, {}, EmptyRoot()),
                        absl::StatusCode::kInvalidArgument,
                        "inclusion proof: got index 0, want less than tree size 0"));
  EXPECT_TRUE(HasStatus(RootFromInclusionProof(leaf, 3, 0, {}).status(),
                        absl::StatusCode::kInvalidArgument,
                        "inclusion proof: got index 3, want less than tree size 0"));
}

TEST(MerkleVerifyTest, ConsistencyEdgeCases) {
  const Hash a = LeafHash("a");
  const Hash b = LeafHash("b");
  const Hash e = EmptyRoot();
  // Equal sizes: empty proof, equal roots.
  EXPECT_TRUE(VerifyConsistency(0, 0, {}, e, e).ok());
  EXPECT_TRUE(VerifyConsistency(5, 5, {}, a, a).ok());
  EXPECT_TRUE(HasStatus(VerifyConsistency(5, 5, {}, a, b), absl::StatusCode::kDataLoss,
                        absl::StrCat("consistency proof: got root2 ", ShortHex(b),
                                     " for unchanged size 5, ", "want root1 ", ShortHex(a))));
  EXPECT_TRUE(HasStatus(VerifyConsistency(5, 5, {a}, a, a), absl::StatusCode::kInvalidArgument,
                        "consistency proof: got 1 hashes, want 0 from size 5 to size 5"));
  // From the empty tree: empty proof, root1 must be the empty root.
  EXPECT_TRUE(VerifyConsistency(0, 7, {}, e, b).ok());
  EXPECT_TRUE(HasStatus(VerifyConsistency(0, 7, {a}, e, b), absl::StatusCode::kInvalidArgument,
                        "consistency proof: got 1 hashes, want 0 from size 0 to size 7"));
  EXPECT_TRUE(HasStatus(VerifyConsistency(0, 7, {}, a, b), absl::StatusCode::kDataLoss,
                        absl::StrCat("consistency proof: got root1 ", ShortHex(a),
                                     " for size 0, want the empty-tree root e3b0c442\u2026")));
  EXPECT_TRUE(HasStatus(VerifyConsistency(0, 0, {}, e, a), absl::StatusCode::kDataLoss));
  // Going back in time.
  EXPECT_TRUE(HasStatus(VerifyConsistency(1, 0, {}, a, e), absl::StatusCode::kInvalidArgument,
                        "consistency proof: got size1 1, want at most size2 0"));
  // A growing tree needs a proof.
  EXPECT_TRUE(HasStatus(VerifyConsistency(1, 2, {}, a, b), absl::StatusCode::kInvalidArgument,
                        "consistency proof: got 0 hashes, want 1 from size 1 to size 2"));
}

TEST(MerkleVerifyTest, ProofLengthsAtExtremeSizes) {
  const uint64_t kMax = UINT64_MAX;
  EXPECT_EQ(InclusionProofLength(0, kMax), 64u);
  EXPECT_EQ(InclusionProofLength(kMax - 1, kMax), 63u);
  EXPECT_EQ(ConsistencyProofLength(kMax - 1, kMax), 64u);
  EXPECT_EQ(ConsistencyProofLength(uint64_t{1} << 63, kMax), 1u);
}

// A proof authenticates a tree size only through its root: where the path
// has the same shape in two sizes, the same proof and root pass for both.
// Callers must take the size and the root from one signed checkpoint.
TEST(MerkleVerifyTest, SizeIsBoundOnlyByTheRoot) {
  const std::vector<Hash> leaves = NaiveLeafHashes({"a", "b", "c", "d"});
  const std::vector<Hash> three(leaves.begin(), leaves.begin() + 3);
  const Hash root3 = NaiveRoot(three);
  const std::vector<Hash> path = NaivePath(0, three);  // {b, c}: same shape in size 4.
  EXPECT_TRUE(VerifyInclusion(leaves[0], 0, 3, path, root3).ok());
  EXPECT_TRUE(VerifyInclusion(leaves[0], 0, 4, path, root3).ok());
  // Against the root of size 4 it fails.
  EXPECT_TRUE(HasStatus(VerifyInclusion(leaves[0], 0, 4, path, NaiveRoot(leaves)),
                        absl::StatusCode::kDataLoss));
  const std::vector<Hash> proof = NaiveProof(2, three);  // {c}: same shape to size 4.
  const Hash root2 = NaiveRoot({leaves[0], leaves[1]});
  EXPECT_TRUE(VerifyConsistency(2, 3, proof, root2, root3).ok());
  EXPECT_TRUE(VerifyConsistency(2, 4, proof, root2, root3).ok());
  EXPECT_TRUE(HasStatus(VerifyConsistency(2, 4, proof, root2, NaiveRoot(leaves)),
                        absl::StatusCode::kDataLoss));
}

// ---------------------------------------------------------------------------
// Mutations of every proof of small trees: each must fail with the code the
// change calls for. A changed argument that changes the required length is
// INVALID_ARGUMENT (the naive reference gives the length); one that keeps it
// must still fail the root comparison, DATA_LOSS.

constexpr uint64_t kMutationMaxSize = 64;

struct SmallTrees {
  std::vector<Hash> leaves;
  std::vector<Hash> roots;  // roots[n] for n in [0, kMutationMaxSize].
  InMemoryNodeStore store;
};

void BuildSmall(SmallTrees* s) {
  std::vector<std::string> entries;
  for (uint64_t i = 0; i < kMutationMaxSize; ++i) entries.push_back(absl::StrCat("leaf ", i));
  s->leaves = NaiveLeafHashes(entries);
  MerkleTree tree;
  std::vector<NodeWrite> writes;
  s->roots.push_back(tree.Root());
  for (const Hash& leaf : s->leaves) {
    writes.clear();
    tree.Append(leaf, &writes);
    s->store.PutAll(writes);
    s->roots.push_back(tree.Root());
  }
}

// The code VerifyInclusion must return for (index, size) with a proof of
// `length` hashes that is not the right one.
absl::StatusCode InclusionCodeFor(const SmallTrees& s, uint64_t index, uint64_t size,
                                  size_t length) {
  if (index >= size) return absl::StatusCode::kInvalidArgument;
  const std::vector<Hash> leaves(s.leaves.begin(), s.leaves.begin() + size);
  return NaivePath(index, leaves).size() == length ? absl::StatusCode::kDataLoss
                                                   : absl::StatusCode::kInvalidArgument;
}

TEST(MerkleVerifyMutationTest, InclusionProofs) {
  SmallTrees s;
  BuildSmall(&s);
  const Hash other = Sha256Of("some other hash");
  for (uint64_t n = 1; n <= kMutationMaxSize; ++n) {
    const Hash& root = s.roots[n];
    for (uint64_t i = 0; i < n; ++i) {
      SCOPED_TRACE(absl::StrCat("index ", i, " size ", n));
      absl::StatusOr<std::vector<Hash>> got = InclusionProof(i, n, s.store);
      ASSERT_TRUE(got.ok()) << got.status();
      const std::vector<Hash>& proof = *got;
      const Hash& leaf = s.leaves[i];
      ASSERT_TRUE(VerifyInclusion(leaf, i, n, proof, root).ok());

      for (size_t k = 0; k < proof.size(); ++k) {
        for (int bit : {0, 3, 255}) {
          std::vector<Hash> bad = proof;
          bad[k][bit / 8] ^= static_cast<uint8_t>(1 << (bit % 8));
          EXPECT_TRUE(
              HasStatus(VerifyInclusion(leaf, i, n, bad, root), absl::StatusCode::kDataLoss))
              << "flipped bit " << bit << " of proof[" << k << "]";
        }
      }
      if (!proof.empty()) {
        std::vector<Hash> dropped(proof.begin(), proof.end() - 1);
        EXPECT_TRUE(HasStatus(
            VerifyInclusion(leaf, i, n, dropped, root), absl::StatusCode::kInvalidArgument,
            absl::StrCat("inclusion proof: got ", dropped.size(), " hashes, want ", proof.size(),
                         " for index ", i, " in tree of size ", n)));
        std::vector<Hash> dropped_first(proof.begin() + 1, proof.end());
        EXPECT_TRUE(HasStatus(VerifyInclusion(leaf, i, n, dropped_first, root),
                              absl::StatusCode::kInvalidArgument));
      }
      std::vector<Hash> appended = proof;
      appended.push_back(root);
      EXPECT_TRUE(HasStatus(VerifyInclusion(leaf, i, n, appended, root),
                            absl::StatusCode::kInvalidArgument));
      std::vector<Hash> prepended = proof;
      prepended.insert(prepended.begin(), leaf);
      EXPECT_TRUE(HasStatus(VerifyInclusion(leaf, i, n, prepended, root),
                            absl::StatusCode::kInvalidArgument));

      for (uint64_t wrong : {i - 1, i + 1, i ^ 2, i ^ 1}) {
        if (wrong == i) continue;
        EXPECT_TRUE(HasStatus(VerifyInclusion(leaf, wrong, n, proof, root),
                              InclusionCodeFor(s, wrong, n, proof.size())))
            << "wrong index " << wrong;
      }
      // The proof claimed for another size, against that size's root. (With
      // the original root a wrong size can pass: see SizeIsBoundOnlyByTheRoot.)
      for (uint64_t wrong : {n - 1, n + 1, n * 2, n / 2}) {
        if (wrong == n || wrong > kMutationMaxSize) continue;
        EXPECT_TRUE(HasStatus(VerifyInclusion(leaf, i, wrong, proof, s.roots[wrong]),
                              InclusionCodeFor(s, i, wrong, proof.size())))
            << "wrong size " << wrong;
      }
      EXPECT_TRUE(HasStatus(VerifyInclusion(leaf, i, n, proof, other), absl::StatusCode::kDataLoss,
                            absl::StrCat("inclusion proof: computed root ", ShortHex(root),
                                         ", want ", ShortHex(other))));
      EXPECT_TRUE(
          HasStatus(VerifyInclusion(other, i, n, proof, root), absl::StatusCode::kDataLoss));
      if (n > 1) {
        EXPECT_TRUE(HasStatus(VerifyInclusion(s.leaves[(i + 1) % n], i, n, proof, root),
                              absl::StatusCode::kDataLoss));
      }
    }
  }
}

TEST(MerkleVerifyMutationTest, ConsistencyProofs) {
  SmallTrees s;
  BuildSmall(&s);
  const Hash other = Sha256Of("some other hash");
  auto code_for = [&](uint64_t m, uint64_t n, size_t length) {
    if (m > n) return absl::StatusCode::kInvalidArgument;
    const std::vector<Hash> leaves(s.leaves.begin(), s.leaves.begin() + n);
    return NaiveProof(m, leaves).size() == length ? absl::StatusCode::kDataLoss
                                                  : absl::StatusCode::kInvalidArgument;
  };
  for (uint64_t n = 2; n <= kMutationMaxSize; ++n) {
    for (uint64_t m = 1; m < n; ++m) {
      SCOPED_TRACE(absl::StrCat("sizes ", m, " -> ", n));
      absl::StatusOr<std::vector<Hash>> got = ConsistencyProof(m, n, s.store);
      ASSERT_TRUE(got.ok()) << got.status();
      const std::vector<Hash>& proof = *got;
      ASSERT_FALSE(proof.empty());
      const Hash& r1 = s.roots[m];
      const Hash& r2 = s.roots[n];
      ASSERT_TRUE(VerifyConsistency(m, n, proof, r1, r2).ok());

      for (size_t k = 0; k < proof.size(); ++k) {
        for (int bit : {0, 4, 255}) {
          std::vector<Hash> bad = proof;
          bad[k][bit / 8] ^= static_cast<uint8_t>(1 << (bit % 8));
          EXPECT_TRUE(HasStatus(VerifyConsistency(m, n, bad, r1, r2), absl::StatusCode::kDataLoss))
              << "flipped bit " << bit << " of proof[" << k << "]";
        }
      }
      std::vector<Hash> truncated(proof.begin(), proof.end() - 1);
      EXPECT_TRUE(
          HasStatus(VerifyConsistency(m, n, truncated, r1, r2), absl::StatusCode::kInvalidArgument,
                    absl::StrCat("consistency proof: got ", truncated.size(), " hashes, want ",
                                 proof.size(), " from size ", m, " to size ", n)));
      std::vector<Hash> extended = proof;
      extended.push_back(r2);
      EXPECT_TRUE(
          HasStatus(VerifyConsistency(m, n, extended, r1, r2), absl::StatusCode::kInvalidArgument));
      std::vector<Hash> prepended = proof;
      prepended.insert(prepended.begin(), proof[0]);
      EXPECT_TRUE(HasStatus(VerifyConsistency(m, n, prepended, r1, r2),
                            absl::StatusCode::kInvalidArgument));

      // The proof claimed for other sizes, against those sizes' roots.
      for (uint64_t wrong : {m - 1, m + 1, m ^ 2}) {
        if (wrong == m || wrong == 0 || wrong >= n) continue;
        EXPECT_TRUE(HasStatus(VerifyConsistency(wrong, n, proof, s.roots[wrong], r2),
                              code_for(wrong, n, proof.size())))
            << "wrong size1 " << wrong;
      }
      for (uint64_t wrong : {n - 1, n + 1, n * 2, n / 2}) {
        if (wrong == n || wrong <= m || wrong > kMutationMaxSize) continue;
        EXPECT_TRUE(HasStatus(VerifyConsistency(m, wrong, proof, r1, s.roots[wrong]),
                              code_for(m, wrong, proof.size())))
            << "wrong size2 " << wrong;
      }
      // When m is a power of two the proof starts from root1 itself, so a
      // wrong root1 shows up in root2 instead.
      EXPECT_TRUE(HasStatus(VerifyConsistency(m, n, proof, other, r2), absl::StatusCode::kDataLoss,
                            (m & (m - 1)) == 0
                                ? ""
                                : absl::StrCat("consistency proof: computed root1 ", ShortHex(r1),
                                               ", want ", ShortHex(other))));
      EXPECT_TRUE(HasStatus(VerifyConsistency(m, n, proof, r1, other), absl::StatusCode::kDataLoss,
                            absl::StrCat("consistency proof: computed root2 ", ShortHex(r2),
                                         ", want ", ShortHex(other))));
      EXPECT_TRUE(HasStatus(VerifyConsistency(m, n, proof, r2, r1), absl::StatusCode::kDataLoss));
    }
  }
}

}  // namespace
}  // namespace caseledger
