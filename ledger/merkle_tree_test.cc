#include "ledger/merkle_tree.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/numeric/bits.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "ledger/hash.h"
#include "ledger/merkle_verify.h"
#include "tests/naive_merkle.h"

namespace caseledger {
namespace {

using ::caseledger::testing::NaiveLeafHashes;
using ::caseledger::testing::NaivePath;
using ::caseledger::testing::NaiveProof;
using ::caseledger::testing::NaiveRoot;

constexpr uint64_t kMaxSize = 300;          // Roots and inclusion proofs: every size.
constexpr uint64_t kMaxConsistencySize = 130;  // Consistency proofs: every pair.

::testing::AssertionResult HasStatus(const absl::Status& status, absl::StatusCode code,
                                     const std::string& message) {
  if (status.code() == code && status.message() == message) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure()
         << "got " << status << ", want " << absl::StatusCodeToString(code) << ": " << message;
}

std::vector<Hash> Leaves(uint64_t n) {
  std::vector<std::string> entries;
  for (uint64_t i = 0; i < n; ++i) entries.push_back(absl::StrCat("entry ", i));
  return NaiveLeafHashes(entries);
}

std::vector<Hash> Prefix(const std::vector<Hash>& leaves, uint64_t n) {
  return std::vector<Hash>(leaves.begin(), leaves.begin() + n);
}

// A tree of `n` leaves and the store its appends filled.
struct Built {
  std::vector<Hash> leaves;
  MerkleTree tree;
  InMemoryNodeStore store;
};

void Build(uint64_t n, Built* b) {
  b->leaves = Leaves(n);
  std::vector<NodeWrite> writes;
  for (const Hash& leaf : b->leaves) {
    writes.clear();
    b->tree.Append(leaf, &writes);
    b->store.PutAll(writes);
  }
}

// Counts reads and fails the one node named in `fail_*`, if any.
class TestReader : public NodeReader {
 public:
  explicit TestReader(const NodeReader& inner) : inner_(inner) {}
  absl::StatusOr<Hash> GetNode(uint32_t level, uint64_t index) const override {
    ++reads_;
    if (level == fail_level_ && index == fail_index_) {
      return absl::UnavailableError(absl::StrCat("disk on fire at ", level, "/", index));
    }
    return inner_.GetNode(level, index);
  }
  void FailAt(uint32_t level, uint64_t index) {
    fail_level_ = level;
    fail_index_ = index;
  }
  uint64_t reads() const { return reads_; }
  void ResetReads() { reads_ = 0; }

 private:
  const NodeReader& inner_;
  mutable uint64_t reads_ = 0;
  uint32_t fail_level_ = UINT32_MAX;
  uint64_t fail_index_ = 0;
};

TEST(MerkleTreeTest, EmptyTree) {
  MerkleTree tree;
  InMemoryNodeStore store;
  EXPECT_EQ(tree.size(), 0u);
  EXPECT_EQ(tree.Root(), EmptyRoot());
  absl::StatusOr<Hash> root = RootAt(0, store);
  ASSERT_TRUE(root.ok()) << root.status();
  EXPECT_EQ(*root, EmptyRoot());
  absl::StatusOr<MerkleTree> loaded = MerkleTree::Load(0, store);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->Root(), EmptyRoot());
  absl::StatusOr<std::vector<Hash>> proof = ConsistencyProof(0, 0, store);
  ASSERT_TRUE(proof.ok()) << proof.status();
  EXPECT_TRUE(proof->empty());
}

TEST(MerkleTreeTest, RootsMatchNaiveForEverySize) {
  Built b;
  Build(kMaxSize, &b);
  MerkleTree tree;
  for (uint64_t n = 0; n <= kMaxSize; ++n) {
    SCOPED_TRACE(absl::StrCat("size ", n));
    const Hash want = NaiveRoot(Prefix(b.leaves, n));
    EXPECT_EQ(tree.Root(), want);
    absl::StatusOr<Hash> stored = RootAt(n, b.store);
    ASSERT_TRUE(stored.ok()) << stored.status();
    EXPECT_EQ(*stored, want);
    if (n < kMaxSize) tree.Append(b.leaves[n], nullptr);
  }
}

TEST(MerkleTreeTest, AppendWritesEveryNewPerfectNodeOnce) {
  const std::vector<Hash> leaves = Leaves(kMaxSize);
  MerkleTree tree;
  InMemoryNodeStore store;
  std::vector<NodeWrite> writes;
  for (uint64_t i = 0; i < kMaxSize; ++i) {
    SCOPED_TRACE(absl::StrCat("append #", i));
    writes.clear();
    tree.Append(leaves[i], &writes);
    // The leaf plus one node per level that the new size completes.
    ASSERT_EQ(writes.size(), 1u + absl::countr_zero(i + 1));
    for (uint32_t j = 0; j < writes.size(); ++j) {
      const NodeWrite& w = writes[j];
      EXPECT_EQ(w.level, j);
      EXPECT_EQ(w.index, i >> j);
      const uint64_t begin = w.index << w.level;
      const uint64_t end = (w.index + 1) << w.level;
      EXPECT_EQ(end, i + 1);
      EXPECT_EQ(w.hash, NaiveRoot(std::vector<Hash>(leaves.begin() + begin,
                                                    leaves.begin() + end)));
      EXPECT_FALSE(store.GetNode(w.level, w.index).ok()) << "node written twice";
      store.Put(w);
    }
  }
  // A tree of n leaves has 2n - popcount(n) perfect nodes.
  EXPECT_EQ(store.size(), 2 * kMaxSize - absl::popcount(kMaxSize));
}

TEST(MerkleTreeTest, InclusionProofsMatchNaiveAndVerify) {
  Built b;
  Build(kMaxSize, &b);
  TestReader reader(b.store);
  for (uint64_t n = 1; n <= kMaxSize; ++n) {
    const std::vector<Hash> prefix = Prefix(b.leaves, n);
    const Hash root = NaiveRoot(prefix);
    const uint64_t max_reads = 2 * absl::bit_width(n - 1) + 1;
    for (uint64_t i = 0; i < n; ++i) {
      SCOPED_TRACE(absl::StrCat("index ", i, " size ", n));
      reader.ResetReads();
      absl::StatusOr<std::vector<Hash>> proof = InclusionProof(i, n, reader);
      ASSERT_TRUE(proof.ok()) << proof.status();
      EXPECT_LE(reader.reads(), max_reads);
      ASSERT_EQ(*proof, NaivePath(i, prefix));
      EXPECT_EQ(proof->size(), InclusionProofLength(i, n));
      absl::Status verified = VerifyInclusion(b.leaves[i], i, n, *proof, root);
      ASSERT_TRUE(verified.ok()) << verified;
    }
  }
}

// Checks ConsistencyProof(m, n) against the naive PROOF and the verifier.
void CheckConsistency(const Built& b, uint64_t m, uint64_t n, TestReader* reader) {
  SCOPED_TRACE(absl::StrCat("sizes ", m, " -> ", n));
  const std::vector<Hash> old_leaves = Prefix(b.leaves, m);
  const std::vector<Hash> new_leaves = Prefix(b.leaves, n);
  reader->ResetReads();
  absl::StatusOr<std::vector<Hash>> proof = ConsistencyProof(m, n, *reader);
  ASSERT_TRUE(proof.ok()) << proof.status();
  EXPECT_LE(reader->reads(), 2 * absl::bit_width(n) + 2);
  ASSERT_EQ(*proof, NaiveProof(m, new_leaves));
  EXPECT_EQ(proof->size(), ConsistencyProofLength(m, n));
  absl::Status verified =
      VerifyConsistency(m, n, *proof, NaiveRoot(old_leaves), NaiveRoot(new_leaves));
  ASSERT_TRUE(verified.ok()) << verified;
}

TEST(MerkleTreeTest, ConsistencyProofsMatchNaiveAndVerify) {
  Built b;
  Build(1100, &b);
  TestReader reader(b.store);
  for (uint64_t n = 0; n <= kMaxConsistencySize; ++n) {
    for (uint64_t m = 0; m <= n; ++m) CheckConsistency(b, m, n, &reader);
  }
  // Sampled beyond: around powers of two and at odd sizes.
  for (uint64_t n : {255, 256, 257, 300, 511, 512, 513, 1023, 1024, 1025, 1100}) {
    for (uint64_t m = 0; m <= n; m += 13) CheckConsistency(b, m, n, &reader);
    for (uint64_t m : {uint64_t{1}, uint64_t{2}, n / 2, n - 2, n - 1, n}) {
      CheckConsistency(b, m, n, &reader);
    }
  }
}

TEST(MerkleTreeTest, LoadReproducesStateAndContinuesIdentically) {
  constexpr uint64_t kMore = 70;
  Built b;
  Build(kMaxSize + kMore, &b);
  for (uint64_t n = 0; n <= kMaxSize; n += (n < 70 ? 1 : 23)) {
    SCOPED_TRACE(absl::StrCat("size ", n));
    // The original, rebuilt to size n.
    MerkleTree original;
    for (uint64_t i = 0; i < n; ++i) original.Append(b.leaves[i], nullptr);
    TestReader reader(b.store);
    absl::StatusOr<MerkleTree> loaded = MerkleTree::Load(n, reader);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    EXPECT_EQ(reader.reads(), static_cast<uint64_t>(absl::popcount(n)));
    EXPECT_EQ(loaded->size(), n);
    EXPECT_EQ(loaded->Root(), original.Root());
    std::vector<NodeWrite> want, got;
    for (uint64_t i = n; i < n + kMore; ++i) {
      want.clear();
      got.clear();
      original.Append(b.leaves[i], &want);
      loaded->Append(b.leaves[i], &got);
      ASSERT_EQ(got.size(), want.size());
      for (size_t j = 0; j < got.size(); ++j) {
        EXPECT_EQ(got[j].level, want[j].level);
        EXPECT_EQ(got[j].index, want[j].index);
        EXPECT_EQ(got[j].hash, want[j].hash);
      }
      ASSERT_EQ(loaded->Root(), original.Root());
    }
    EXPECT_EQ(loaded->Root(), NaiveRoot(Prefix(b.leaves, n + kMore)));
  }
}

TEST(MerkleTreeTest, FrontierIsTheCompactRangeAndRoundTrips) {
  constexpr uint64_t kMore = 40;
  Built b;
  Build(kMaxSize + kMore, &b);
  for (uint64_t n = 0; n <= kMaxSize; n += (n < 70 ? 1 : 23)) {
    SCOPED_TRACE(absl::StrCat("size ", n));
    MerkleTree original;
    for (uint64_t i = 0; i < n; ++i) original.Append(b.leaves[i], nullptr);
    std::vector<Hash> frontier = original.Frontier();
    ASSERT_EQ(frontier.size(), static_cast<size_t>(absl::popcount(n)));
    // Left to right: the first is the largest perfect subtree, [0, 2^k).
    if (n > 0) {
      uint64_t first = uint64_t{1} << (63 - absl::countl_zero(n));
      EXPECT_EQ(frontier[0], NaiveRoot(Prefix(b.leaves, first)));
    }
    // Folding from the right gives the RFC 9162 root.
    if (n > 0) {
      Hash folded = frontier.back();
      for (size_t i = frontier.size() - 1; i-- > 0;) folded = NodeHash(frontier[i], folded);
      EXPECT_EQ(folded, NaiveRoot(Prefix(b.leaves, n)));
    }
    absl::StatusOr<MerkleTree> rebuilt = MerkleTree::FromFrontier(n, frontier);
    ASSERT_TRUE(rebuilt.ok()) << rebuilt.status();
    for (uint64_t i = n; i < n + kMore; ++i) rebuilt->Append(b.leaves[i], nullptr);
    EXPECT_EQ(rebuilt->Root(), NaiveRoot(Prefix(b.leaves, n + kMore)));
  }
  EXPECT_TRUE(HasStatus(MerkleTree::FromFrontier(5, {Hash{}}).status(),
                        absl::StatusCode::kInvalidArgument,
                        "compact range of [0, 5): got 1 subtree roots, want 2"));
}

TEST(MerkleTreeTest, LargerTreeProofsStayLogarithmic) {
  constexpr uint64_t kSize = 100003;
  Built b;
  Build(kSize, &b);
  TestReader reader(b.store);
  absl::StatusOr<Hash> root = RootAt(kSize, reader);
  ASSERT_TRUE(root.ok()) << root.status();
  EXPECT_EQ(*root, b.tree.Root());
  for (uint64_t i : {uint64_t{0}, uint64_t{1}, uint64_t{65535}, uint64_t{65536},
                     uint64_t{99999}, kSize - 1}) {
    SCOPED_TRACE(absl::StrCat("index ", i));
    reader.ResetReads();
    absl::StatusOr<std::vector<Hash>> proof = InclusionProof(i, kSize, reader);
    ASSERT_TRUE(proof.ok()) << proof.status();
    EXPECT_LE(reader.reads(), 2u * 17 + 1);
    EXPECT_TRUE(VerifyInclusion(b.leaves[i], i, kSize, *proof, *root).ok());
  }
  for (uint64_t m : {uint64_t{1}, uint64_t{4096}, uint64_t{77777}, kSize - 1}) {
    SCOPED_TRACE(absl::StrCat("size1 ", m));
    absl::StatusOr<Hash> old_root = RootAt(m, b.store);
    ASSERT_TRUE(old_root.ok()) << old_root.status();
    reader.ResetReads();
    absl::StatusOr<std::vector<Hash>> proof = ConsistencyProof(m, kSize, reader);
    ASSERT_TRUE(proof.ok()) << proof.status();
    EXPECT_LE(reader.reads(), 2u * 17 + 2);
    EXPECT_TRUE(VerifyConsistency(m, kSize, *proof, *old_root, *root).ok());
  }
}

// Batched proofs equal the single ones and read each shared node once.
TEST(MerkleTreeTest, BatchedInclusionProofsEqualSingleOnesWithFewerReads) {
  constexpr uint64_t kSize = 100003;
  Built b;
  Build(kSize, &b);
  TestReader reader(b.store);
  std::vector<uint64_t> indices;
  for (uint64_t i = 7; i < kSize; i += 97) indices.push_back(i);  // ~1,000 leaves
  indices.push_back(kSize - 1);
  absl::StatusOr<std::vector<std::vector<Hash>>> batch = InclusionProofs(indices, kSize, reader);
  ASSERT_TRUE(batch.ok()) << batch.status();
  const uint64_t batched_reads = reader.reads();
  ASSERT_EQ(batch->size(), indices.size());
  reader.ResetReads();
  for (size_t k = 0; k < indices.size(); ++k) {
    absl::StatusOr<std::vector<Hash>> one = InclusionProof(indices[k], kSize, reader);
    ASSERT_TRUE(one.ok()) << one.status();
    ASSERT_EQ((*batch)[k], *one) << "index " << indices[k];
  }
  EXPECT_LT(batched_reads * 2, reader.reads()) << batched_reads << " vs " << reader.reads();
  // A store error names itself, whichever proof hits it.
  reader.FailAt(0, indices[500] ^ 1);
  EXPECT_EQ(InclusionProofs(indices, kSize, reader).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(InclusionProofs({kSize}, kSize, b.store).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(MerkleTreeTest, OutOfRangeArgumentsAreInvalid) {
  Built b;
  Build(10, &b);
  EXPECT_TRUE(HasStatus(InclusionProof(10, 10, b.store).status(),
                        absl::StatusCode::kInvalidArgument,
                        "inclusion proof: got index 10, want less than tree size 10"));
  EXPECT_TRUE(HasStatus(InclusionProof(0, 0, b.store).status(),
                        absl::StatusCode::kInvalidArgument,
                        "inclusion proof: got index 0, want less than tree size 0"));
  EXPECT_TRUE(HasStatus(ConsistencyProof(7, 6, b.store).status(),
                        absl::StatusCode::kInvalidArgument,
                        "consistency proof: got size1 7, want at most size2 6"));
}

TEST(MerkleTreeTest, MissingNodesAreNotFound) {
  Built b;
  Build(8, &b);
  // Size 10 needs node (1, 4) over leaves 8 and 9, which were never appended.
  EXPECT_TRUE(HasStatus(RootAt(10, b.store).status(), absl::StatusCode::kNotFound,
                        "node (level 1, index 4) not found"));
  EXPECT_TRUE(HasStatus(MerkleTree::Load(9, b.store).status(), absl::StatusCode::kNotFound,
                        "node (level 0, index 8) not found"));
  EXPECT_TRUE(HasStatus(InclusionProof(3, 9, b.store).status(), absl::StatusCode::kNotFound,
                        "node (level 0, index 8) not found"));
  EXPECT_TRUE(HasStatus(ConsistencyProof(8, 12, b.store).status(),
                        absl::StatusCode::kNotFound, "node (level 2, index 2) not found"));
}

TEST(MerkleTreeTest, StoreErrorsPropagateUnchanged) {
  Built b;
  Build(13, &b);
  const absl::StatusCode kCode = absl::StatusCode::kUnavailable;
  {
    TestReader reader(b.store);
    reader.FailAt(2, 2);  // Frontier node over leaves 8..11.
    EXPECT_TRUE(HasStatus(RootAt(13, reader).status(), kCode, "disk on fire at 2/2"));
    EXPECT_TRUE(HasStatus(MerkleTree::Load(13, reader).status(), kCode, "disk on fire at 2/2"));
    // Leaf 3's path in 13 ends with the ragged sibling [8, 13), which needs (2, 2).
    EXPECT_TRUE(HasStatus(InclusionProof(3, 13, reader).status(), kCode,
                          "disk on fire at 2/2"));
    // From 12 to 13 the proof starts with node (2, 2).
    EXPECT_TRUE(HasStatus(ConsistencyProof(12, 13, reader).status(), kCode,
                          "disk on fire at 2/2"));
  }
  {
    TestReader reader(b.store);
    reader.FailAt(0, 2);  // Leaf 3's first sibling.
    EXPECT_TRUE(HasStatus(InclusionProof(3, 13, reader).status(), kCode,
                          "disk on fire at 0/2"));
    // Consistency 3 -> 13 starts with the leaf node (0, 2).
    EXPECT_TRUE(HasStatus(ConsistencyProof(3, 13, reader).status(), kCode,
                          "disk on fire at 0/2"));
  }
}

}  // namespace
}  // namespace caseledger
