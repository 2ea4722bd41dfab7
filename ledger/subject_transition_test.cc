#include "ledger/subject_transition.h"

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ledger/hash.h"
#include "ledger/merkle_tree.h"
#include "ledger/record.h"
#include "ledger/subject_index.h"
#include "tests/record_log.h"

namespace caseledger {
namespace {

using ::testing::HasSubstr;
using Kind = PrunedMapNode::Kind;

// The log under test, with the reference values at every size.
class Log : public testing::RecordLog {
 public:
  SubjectTransition From(uint64_t n) const {
    absl::StatusOr<SubjectTransition> t = TransitionFrom(n);
    EXPECT_TRUE(t.ok()) << t.status();
    return *std::move(t);
  }
};

// Two subject ids whose keys share at least `bits` leading bits.
std::pair<std::string, std::string> SharingPrefix(size_t bits, const std::string& tag) {
  absl::flat_hash_map<uint32_t, std::string> seen;
  for (int i = 0;; ++i) {
    std::string id = absl::StrCat(tag, "-", i);
    Hash k = SubjectKey(id);
    uint32_t prefix =
        (uint32_t{k[0]} << 24 | uint32_t{k[1]} << 16 | uint32_t{k[2]} << 8 | k[3]) >> (32 - bits);
    auto [it, inserted] = seen.try_emplace(prefix, id);
    if (!inserted) return {it->second, id};
  }
}

// The hash of the pre-order subtree starting at nodes[*i]; advances *i past it.
Hash HashSubtree(const std::vector<PrunedMapNode>& nodes, size_t* i) {
  const PrunedMapNode& n = nodes[(*i)++];
  switch (n.kind) {
    case Kind::kEmpty:
      return EmptySubjectMapRoot();
    case Kind::kLeaf:
      return SubjectMapLeafHash(n.key, n.state);
    case Kind::kOpaque:
      return n.hash;
    case Kind::kInternal: {
      Hash l = HashSubtree(nodes, i);
      Hash r = HashSubtree(nodes, i);
      return SubjectMapNodeHash(l, r);
    }
  }
  return Hash{};
}

void ExpectVerifies(const Log& log, uint64_t n, uint64_t m_check_size) {
  SCOPED_TRACE(absl::StrCat("transition ", n, " -> ", m_check_size));
  SubjectTransition t = log.From(n);
  absl::StatusOr<SubjectTransitionStats> stats =
      VerifySubjectTransition(log.End(n), log.End(log.size()), t);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->records, log.size() - n);
  absl::StatusOr<std::vector<PrunedMapNode>> decoded = DecodePrunedMap(t.old_map);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(EncodePrunedMap(*decoded), t.old_map);
  EXPECT_EQ(decoded->size(), stats->pruned_nodes);
}

TEST(SubjectTransitionTest, RandomLogsMatchTheReferenceBuilder) {
  for (uint32_t seed = 1; seed <= 6; ++seed) {
    SCOPED_TRACE(absl::StrCat("seed ", seed));
    std::mt19937 rng(seed);
    const int pool = seed % 2 == 0 ? 5 : 200;  // repeated subjects, or mostly new ones
    Log log;
    for (int i = 0; i < 150; ++i) {
      std::vector<std::string> subjects;
      const int count = static_cast<int>(rng() % 4);  // 0 to 3 subjects
      for (int j = 0; j < count; ++j) {
        std::string id = absl::StrCat("client-", rng() % pool);
        if (std::find(subjects.begin(), subjects.end(), id) == subjects.end()) {
          subjects.push_back(id);
        }
      }
      log.Add(subjects);
    }
    // Every checkpoint pair ending at the log's size, including from nothing
    // and from the same size.
    for (uint64_t n : {uint64_t{0}, uint64_t{1}, uint64_t{2}, uint64_t{37}, uint64_t{64},
                       uint64_t{100}, uint64_t{149}, uint64_t{150}}) {
      ExpectVerifies(log, n, log.size());
    }
  }
}

TEST(SubjectTransitionTest, KeysSharingLongPrefixesSplitDeep) {
  auto [a, b] = SharingPrefix(20, "deep");
  auto [c, d] = SharingPrefix(18, "deeper");
  ASSERT_GE(SharedPrefixBits(SubjectKey(a), SubjectKey(b)), 20u);
  for (uint64_t n = 0; n <= 6; ++n) {
    Log log;
    log.Add({a});  // old leaf ...
    log.Add({"other"});
    log.Add({c});
    log.Add({b});     // ... split by a new key 20+ bits down
    log.Add({d, a});  // another deep split, and a repeat
    log.Add({});
    ExpectVerifies(log, n, log.size());
  }
}

TEST(SubjectTransitionTest, EmptyRangeNeedsTheSameSubjectsRoot) {
  Log log;
  log.Add({"client-1"});
  log.Add({"client-2", "client-1"});
  SubjectTransition t = log.From(2);
  EXPECT_TRUE(t.records.empty());
  ASSERT_TRUE(VerifySubjectTransition(log.End(2), log.End(2), t).ok());
  SubjectTransitionEnd other = log.End(2);
  other.subjects_root = log.End(1).subjects_root;
  absl::StatusOr<SubjectTransitionStats> r = VerifySubjectTransition(log.End(2), other, t);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(r.status().message(), HasSubstr("subjects root does not follow from records [2, 2)"));
}

// The pruned map of the golden map (SUBJECT_INDEX.md "Golden vectors") before
// client-3 was added: client-1's leaf, then client-2's, which stood alone on
// the right before client-3 split it.
TEST(SubjectTransitionTest, GoldenPrunedMapFromTheSpec) {
  auto hex = [](absl::string_view h) { return *HashFromHex(h); };
  const Hash k1 = SubjectKey("client-1"), k2 = SubjectKey("client-2"), k3 = SubjectKey("client-3");
  const SubjectState s1{2, hex("bfd4421f5fb5d9f97b1863cfc32ce6acde558e4b14d36319301b7f90a322a950")};
  const SubjectState s2{1, hex("0f87f5d703fe936a11f0ce9533180a91c25648657df90e63bdc4bd412a13e201")};
  const SubjectState s3{1, hex("40b8f0a26a34f6717aa245681a9e808c7bf6e4e2e3d420c47c5f4b90c70be4cc")};
  SubjectMap map;
  map.Set(k1, s1);
  map.Set(k2, s2);
  map.Set(k3, s3);
  ASSERT_EQ(ToHex(map.Root()), "6eb9b30de491137e47208cbe09332eccf9b25b70781dd9efd1c21ed1baf39490");
  absl::StatusOr<std::vector<PrunedMapNode>> pruned = map.PrunedOld({{k3, SubjectState{}}});
  ASSERT_TRUE(pruned.ok()) << pruned.status();
  const std::string want = absl::StrCat(
      "03",
      "01003331cf715370f01681f3d462a2b5bfce6d40efca898f9ecfa48692fd2cd3ea0000000000000002"
      "bfd4421f5fb5d9f97b1863cfc32ce6acde558e4b14d36319301b7f90a322a950",
      "01b5e4d6cc1383ffcee892e2c5adb7ae5024134c83bf16d9ef942ef9e0695bc6850000000000000001"
      "0f87f5d703fe936a11f0ce9533180a91c25648657df90e63bdc4bd412a13e201");
  EXPECT_EQ(absl::BytesToHexString(EncodePrunedMap(*pruned)), want);
  // Pruned to client-1 changing from count 1: client-2 and client-3's
  // subtree is opaque, client-1's leaf carries the old state.
  const SubjectState s1_old{
      1, hex("00000000000000000000000000000000000000000000000000000000000000aa")};
  pruned = map.PrunedOld({{k1, s1_old}});
  ASSERT_TRUE(pruned.ok()) << pruned.status();
  ASSERT_EQ(pruned->size(), 3u);
  EXPECT_EQ((*pruned)[0].kind, Kind::kInternal);
  EXPECT_EQ((*pruned)[1].kind, Kind::kLeaf);
  EXPECT_EQ((*pruned)[1].state, s1_old);
  EXPECT_EQ((*pruned)[2].kind, Kind::kOpaque);
  // Every key absent before: the empty map.
  pruned = map.PrunedOld({{k1, {}}, {k2, {}}, {k3, {}}});
  ASSERT_TRUE(pruned.ok()) << pruned.status();
  EXPECT_EQ(absl::BytesToHexString(EncodePrunedMap(*pruned)), "00");
  EXPECT_EQ(map.PrunedOld({{SubjectKey("client-9"), {}}}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// A fixed log and its honest transition 40 -> 80, for the mutations.
class MutationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::mt19937 rng(7);
    for (int i = 0; i < 80; ++i) {
      std::vector<std::string> subjects = {absl::StrCat("client-", rng() % 30)};
      if (i % 3 == 0) subjects.push_back(absl::StrCat("new-", i));
      log_.Add(subjects);
    }
    t_ = log_.From(40);
    ASSERT_TRUE(VerifySubjectTransition(log_.End(40), log_.End(80), t_).ok());
  }
  absl::Status Verify() const {
    return VerifySubjectTransition(log_.End(40), log_.End(80), t_).status();
  }

  Log log_;
  SubjectTransition t_;
};

TEST_F(MutationTest, DroppedRecord) {
  t_.records.erase(t_.records.begin() + 10);
  EXPECT_EQ(Verify().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(Verify().message(), HasSubstr("got 39 records, want 40 (records [40, 80))"));
}

TEST_F(MutationTest, RecordsOutOfPlace) {
  std::swap(t_.records[3], t_.records[4]);
  EXPECT_EQ(Verify().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(Verify().message(), HasSubstr("transition record at position 43 has seq 44"));
}

TEST_F(MutationTest, ChangedSubjectId) {
  absl::StatusOr<Record> r = DecodeRecord(t_.records[5]);
  ASSERT_TRUE(r.ok());
  r->subject_ids[0] = "someone-else";
  t_.records[5] = EncodeRecord(*r);
  EXPECT_EQ(Verify().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(Verify().message(),
              HasSubstr("records [40, 80) appended to the tree at 40 give root"));
}

TEST_F(MutationTest, StaleNewSubjectsRoot) {
  SubjectTransitionEnd stale = log_.End(80);
  stale.subjects_root = log_.End(40).subjects_root;
  absl::Status s = VerifySubjectTransition(log_.End(40), stale, t_).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.message(),
              HasSubstr(absl::StrCat("subjects root does not follow from records [40, 80): "
                                     "computed ",
                                     ToHex(log_.End(80).subjects_root), ", checkpoint says ",
                                     ToHex(log_.End(40).subjects_root))));
  EXPECT_THAT(s.message(), HasSubstr("every state the server claims matches the records"));
}

TEST_F(MutationTest, StaleRootWithAClaimNamesTheSubject) {
  SubjectTransitionEnd stale = log_.End(80);
  stale.subjects_root = log_.End(79).subjects_root;
  // A server answering from size 79 would claim the older state of the
  // subjects record 79 names.
  absl::StatusOr<Record> last = DecodeRecord(log_.records()[79]);
  ASSERT_TRUE(last.ok());
  const Hash key = SubjectKey(last->subject_ids[0]);
  for (SubjectClaim& c : t_.claims) {
    if (c.key == key) c.state.count -= 1;
  }
  absl::Status s = VerifySubjectTransition(log_.End(40), stale, t_).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr(absl::StrCat("first disagreement: subject key ", ToHex(key),
                                                  " (last named by record seq 79)")));
}

TEST_F(MutationTest, WrongOldNode) {
  // Client states as of 40 with one head byte changed.
  std::vector<PrunedMapNode> nodes = *DecodePrunedMap(t_.old_map);
  for (PrunedMapNode& n : nodes) {
    if (n.kind == Kind::kLeaf) {
      n.state.head[0] ^= 1;
      break;
    }
  }
  t_.old_map = EncodePrunedMap(nodes);
  EXPECT_EQ(Verify().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(Verify().message(), HasSubstr(absl::StrCat("old subject map hashes to ")));
  EXPECT_THAT(Verify().message(),
              HasSubstr(absl::StrCat("says subjects ", ToHex(log_.End(40).subjects_root))));
}

TEST_F(MutationTest, OpaqueOnATouchedPath) {
  // Cut the root's left subtree to its hash: the tree still hashes to the
  // old root, but some touched key's path now ends in an opaque node.
  std::vector<PrunedMapNode> nodes = *DecodePrunedMap(t_.old_map);
  ASSERT_EQ(nodes[0].kind, Kind::kInternal);
  size_t end = 1;
  PrunedMapNode opaque;
  opaque.kind = Kind::kOpaque;
  opaque.hash = HashSubtree(nodes, &end);
  nodes.erase(nodes.begin() + 1, nodes.begin() + end);
  nodes.insert(nodes.begin() + 1, opaque);
  t_.old_map = EncodePrunedMap(nodes);
  EXPECT_EQ(Verify().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(Verify().message(), HasSubstr("transition proof does not cover subject key "));
  EXPECT_THAT(Verify().message(), HasSubstr("(record seq "));
}

TEST_F(MutationTest, WrongCompactRange) {
  t_.old_range[0][0] ^= 1;
  EXPECT_EQ(Verify().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(Verify().message(), HasSubstr("compact range of [0, 40) folds to root"));
  t_.old_range.pop_back();
  EXPECT_EQ(Verify().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(MutationTest, MalformedPrunedMap) {
  t_.old_map.push_back('\0');
  EXPECT_EQ(Verify().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Verify().message(), HasSubstr("1 bytes after the root's subtree"));
  t_.old_map = std::string("\x03\x00\x00", 3);  // an internal node over nothing
  EXPECT_EQ(Verify().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Verify().message(), HasSubstr("not compact"));
  t_.old_map = "\x07";
  EXPECT_THAT(Verify().message(), HasSubstr("unknown node tag 7"));
  t_.old_map = std::string(257, '\x03');
  EXPECT_THAT(Verify().message(), HasSubstr("internal node at depth 256"));
}

}  // namespace
}  // namespace caseledger
