#include "ledger/subject_index.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace caseledger {
namespace {

// Golden values from tests/testdata/subject_index_golden.py, which derives
// them from ledger/SUBJECT_INDEX.md without sharing code with this library.
constexpr char kKey1[] = "003331cf715370f01681f3d462a2b5bfce6d40efca898f9ecfa48692fd2cd3ea";
constexpr char kHead1[] = "bfd4421f5fb5d9f97b1863cfc32ce6acde558e4b14d36319301b7f90a322a950";
constexpr char kLeaf1[] = "b9d40d83f59e112014ae680de6d0d23b5838bd05ddbd3279d50acc5ad933326c";
constexpr char kKey2[] = "b5e4d6cc1383ffcee892e2c5adb7ae5024134c83bf16d9ef942ef9e0695bc685";
constexpr char kHead2[] = "0f87f5d703fe936a11f0ce9533180a91c25648657df90e63bdc4bd412a13e201";
constexpr char kLeaf2[] = "eac606b464c020e1e64f057eb11ab99d7100fc48fb5111f9337adc28ca2d7114";
constexpr char kHead3[] = "40b8f0a26a34f6717aa245681a9e808c7bf6e4e2e3d420c47c5f4b90c70be4cc";
constexpr char kLeaf3[] = "bc35d23430149ed7f8f4ab3beeeb8be7834d5eb160c9289335fbf53694d2e0bd";
constexpr char kRoot[] = "6eb9b30de491137e47208cbe09332eccf9b25b70781dd9efd1c21ed1baf39490";
constexpr char kExtension[] = "subjects brmzDeSRE35HIIy+CTMuzPmyW3B4Hdnv0cIe0brzlJA=";
constexpr char kClient1Sibling[] =
    "4d43107309f434104105ed09e3682306f62712f168e7ddf151478711157d4bd0";

Hash FromHex(const char* hex) { return *HashFromHex(hex); }

SubjectIndexBuilder GoldenBuilder() {
  SubjectIndexBuilder b;
  EXPECT_TRUE(b.Add(0, Sha256Of("golden leaf 0"), {"client-1"}).ok());
  EXPECT_TRUE(b.Add(1, Sha256Of("golden leaf 1"), {"client-2", "client-1"}).ok());
  EXPECT_TRUE(b.Add(2, Sha256Of("golden leaf 2"), {"client-3"}).ok());
  return b;
}

TEST(SubjectIndexGoldenTest, KeysChainsLeavesAndRoot) {
  EXPECT_EQ(ToHex(SubjectKey("client-1")), kKey1);
  EXPECT_EQ(ToHex(SubjectKey("client-2")), kKey2);
  SubjectIndexBuilder b = GoldenBuilder();
  EXPECT_EQ(b.StateOf("client-1"), (SubjectState{2, FromHex(kHead1)}));
  EXPECT_EQ(b.StateOf("client-2"), (SubjectState{1, FromHex(kHead2)}));
  EXPECT_EQ(b.StateOf("client-3"), (SubjectState{1, FromHex(kHead3)}));
  EXPECT_EQ(b.StateOf("client-9"), SubjectState{});
  EXPECT_EQ(ToHex(SubjectMapLeafHash(FromHex(kKey1), b.StateOf("client-1"))), kLeaf1);
  EXPECT_EQ(ToHex(SubjectMapLeafHash(FromHex(kKey2), b.StateOf("client-2"))), kLeaf2);
  EXPECT_EQ(ToHex(SubjectMapLeafHash(SubjectKey("client-3"), b.StateOf("client-3"))), kLeaf3);
  Hash root = b.Root();
  EXPECT_EQ(ToHex(root), kRoot);
  EXPECT_EQ(SubjectsExtensionLine(root), kExtension);
}

TEST(SubjectIndexGoldenTest, ChainStepByHand) {
  // head_1 of client-2 = SHA-256(0x11 || 0^32 || u64 1 || leaf hash 1).
  std::string msg(1, '\x11');
  msg += std::string(32, '\0');
  msg += std::string("\0\0\0\0\0\0\0\x01", 8);
  msg += std::string(AsBytes(Sha256Of("golden leaf 1")));
  EXPECT_EQ(ToHex(Sha256Of(msg)), kHead2);
}

TEST(SubjectIndexGoldenTest, Proofs) {
  SubjectMap map;
  SubjectIndexBuilder b = GoldenBuilder();
  for (const char* s : {"client-1", "client-2", "client-3"}) map.Set(SubjectKey(s), b.StateOf(s));
  Hash root = map.Root();
  ASSERT_EQ(ToHex(root), kRoot);

  absl::StatusOr<SubjectMapProof> p1 = map.Prove(SubjectKey("client-1"));
  ASSERT_TRUE(p1.ok()) << p1.status();
  ASSERT_EQ(p1->siblings.size(), 1u);
  EXPECT_EQ(ToHex(p1->siblings[0]), kClient1Sibling);
  absl::StatusOr<SubjectState> s1 = VerifySubjectMapProof(root, SubjectKey("client-1"), *p1);
  ASSERT_TRUE(s1.ok()) << s1.status();
  EXPECT_EQ(*s1, b.StateOf("client-1"));

  absl::StatusOr<SubjectMapProof> p9 = map.Prove(SubjectKey("client-9"));
  ASSERT_TRUE(p9.ok());
  ASSERT_EQ(p9->siblings.size(), 4u);
  EXPECT_EQ(ToHex(p9->siblings[0]), kLeaf1);
  EXPECT_EQ(p9->siblings[1], Hash{});
  EXPECT_EQ(p9->siblings[2], Hash{});
  EXPECT_EQ(ToHex(p9->siblings[3]), kLeaf3);
  ASSERT_TRUE(p9->leaf.has_value());
  EXPECT_EQ(ToHex(p9->leaf->key), kKey2);
  absl::StatusOr<SubjectState> s9 = VerifySubjectMapProof(root, SubjectKey("client-9"), *p9);
  ASSERT_TRUE(s9.ok()) << s9.status();
  EXPECT_EQ(s9->count, 0u);
}

TEST(SubjectIndexGoldenTest, DocumentHoldsTheVectors) {
  std::ifstream in("ledger/SUBJECT_INDEX.md");
  ASSERT_TRUE(in.good());
  std::stringstream doc;
  doc << in.rdbuf();
  for (const char* v : {kKey1, kHead1, kLeaf1, kKey2, kHead2, kLeaf2, kHead3, kLeaf3, kRoot,
                        kExtension, kClient1Sibling}) {
    EXPECT_NE(doc.str().find(v), std::string::npos) << v;
  }
}

TEST(SubjectMapProofTest, TamperedProofsFail) {
  SubjectMap map;
  for (int i = 0; i < 50; ++i) {
    map.Set(SubjectKey(absl::StrCat("s", i)), SubjectState{uint64_t(i + 1), Sha256Of("x")});
  }
  Hash root = map.Root();
  Hash key = SubjectKey("s7");
  SubjectMapProof good = *map.Prove(key);
  ASSERT_TRUE(VerifySubjectMapProof(root, key, good).ok());

  SubjectMapProof older = good;
  older.leaf->state.count = 7;  // an older state: count one less
  EXPECT_EQ(VerifySubjectMapProof(root, key, older).status().code(), absl::StatusCode::kDataLoss);

  SubjectMapProof flipped = good;
  flipped.siblings.back()[0] ^= 1;
  EXPECT_EQ(VerifySubjectMapProof(root, key, flipped).status().code(),
            absl::StatusCode::kDataLoss);

  // Claiming absence with the empty end where a leaf is.
  SubjectMapProof absent = good;
  absent.leaf.reset();
  EXPECT_EQ(VerifySubjectMapProof(root, key, absent).status().code(),
            absl::StatusCode::kDataLoss);

  // Another subject's proof does not serve for this key.
  SubjectMapProof other = *map.Prove(SubjectKey("s8"));
  absl::StatusOr<SubjectState> got = VerifySubjectMapProof(root, key, other);
  EXPECT_FALSE(got.ok());

  SubjectMapProof too_long = good;
  too_long.siblings.resize(257);
  EXPECT_EQ(VerifySubjectMapProof(root, key, too_long).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(SubjectMapTest, ProveNeedsRoot) {
  SubjectMap map;
  map.Set(SubjectKey("a"), SubjectState{1, Sha256Of("a")});
  map.Set(SubjectKey("b"), SubjectState{1, Sha256Of("b")});
  EXPECT_EQ(map.Prove(SubjectKey("a")).status().code(), absl::StatusCode::kFailedPrecondition);
  map.Root();
  EXPECT_TRUE(map.Prove(SubjectKey("a")).ok());
}

TEST(SubjectMapTest, EmptyMap) {
  SubjectMap map;
  EXPECT_EQ(map.Root(), EmptySubjectMapRoot());
  SubjectMapProof p = *map.Prove(SubjectKey("a"));
  EXPECT_TRUE(p.siblings.empty());
  EXPECT_FALSE(p.leaf.has_value());
  EXPECT_EQ(VerifySubjectMapProof(Hash{}, SubjectKey("a"), p)->count, 0u);
}

// A naive reference: the root recomputed from scratch over sorted keys, as
// SUBJECT_INDEX.md defines it.
Hash NaiveRoot(const std::map<Hash, SubjectState>& m, const Hash& prefix_key, size_t depth,
               std::vector<std::pair<Hash, SubjectState>> items) {
  if (items.empty()) return Hash{};
  if (items.size() == 1) return SubjectMapLeafHash(items[0].first, items[0].second);
  std::vector<std::pair<Hash, SubjectState>> l, r;
  for (auto& it : items) (KeyBit(it.first, depth) ? r : l).push_back(it);
  return SubjectMapNodeHash(NaiveRoot(m, prefix_key, depth + 1, l),
                            NaiveRoot(m, prefix_key, depth + 1, r));
}

TEST(SubjectMapTest, IncrementalMatchesNaiveAndEveryProofVerifies) {
  std::mt19937 rng(7);
  SubjectMap map;
  std::map<Hash, SubjectState> ref;
  for (int round = 0; round < 20; ++round) {
    for (int i = 0; i < 25; ++i) {
      Hash key = SubjectKey(absl::StrCat("subject-", rng() % 300));
      SubjectState s{ref[key].count + 1, Sha256Of(absl::StrCat(round, "/", i))};
      ref[key] = s;
      map.Set(key, s);
    }
    Hash root = map.Root();
    ASSERT_EQ(root, NaiveRoot(ref, Hash{}, 0, {ref.begin(), ref.end()})) << "round " << round;
    ASSERT_EQ(map.size(), ref.size());
    for (auto& [key, s] : ref) {
      absl::StatusOr<SubjectState> got = VerifySubjectMapProof(root, key, *map.Prove(key));
      ASSERT_TRUE(got.ok()) << got.status();
      ASSERT_EQ(*got, s);
    }
    Hash absent = SubjectKey(absl::StrCat("absent-", round));
    absl::StatusOr<SubjectState> got = VerifySubjectMapProof(root, absent, *map.Prove(absent));
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->count, 0u);
  }
}

TEST(SubjectIndexBuilderTest, RefusesOutOfOrderRecords) {
  SubjectIndexBuilder b;
  ASSERT_TRUE(b.Add(0, Sha256Of("a"), {"x"}).ok());
  absl::Status s = b.Add(2, Sha256Of("b"), {"x"});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "subject index: got record 2, want 1");
}

TEST(SubjectIndexBuilderTest, EncodedSubjectsMatchPlain) {
  SubjectIndexBuilder a, b;
  ASSERT_TRUE(a.Add(0, Sha256Of("a"), {"x", "yy"}).ok());
  std::string enc = std::string("\0\x01x\0\x02yy", 7);
  ASSERT_TRUE(b.AddEncoded(0, Sha256Of("a"), enc, 2).ok());
  EXPECT_EQ(a.Root(), b.Root());
}

TEST(SubjectsExtensionTest, ParsesAndRefuses) {
  Hash root = FromHex(kRoot);
  auto got = SubjectRootFromExtensions({"other thing", kExtension});
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(**got, root);
  EXPECT_FALSE(SubjectRootFromExtensions({"other"})->has_value());
  EXPECT_EQ(SubjectRootFromExtensions({"subjects abc"}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SubjectRootFromExtensions({kExtension, kExtension}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace caseledger
