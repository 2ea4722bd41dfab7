#include "ledger/memory_store.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ledger/rocks_store.h"
#include "tests/test_util.h"

namespace caseledger {
namespace {

// The same writes and reads against MemoryStore and RocksStore: the memory
// store is only useful to tests while it answers as the real one does.
class StoreContractTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    if (GetParam()) {
      store_ = NewMemoryStore();
    } else {
      RocksStoreOptions options;
      options.path = testing::NewTempDir("store");
      auto s = OpenRocksStore(options);
      ASSERT_TRUE(s.ok()) << s.status();
      store_ = *std::move(s);
    }
  }
  std::unique_ptr<LogStore> store_;
};

Hash H(uint8_t b) {
  Hash h{};
  h.fill(b);
  return h;
}

TEST_P(StoreContractTest, ReadsBackWhatACommitWrote) {
  LogStore& s = *store_;
  ASSERT_EQ(*s.Size(), 0u);
  CommitBatch b;
  b.records = {{0, "leaf0", "pay0", "a", 0, "e0"},
               {1, "leaf1", "pay1", "ab", 0, "e1"},
               {2, "leaf2", "pay2", "a", 1, "e2"}};
  b.nodes = {{0, 0, H(1)}, {0, 1, H(2)}, {1, 0, H(3)}, {0, 2, H(4)}};
  b.checkpoints = {{3, "note3"}};
  b.subject_entries = {{H(9), 0, 0, H(5)}, {H(9), 1, 2, H(6)}};
  b.subject_map_nodes = {{std::string("\0\0", 2), "node"}};
  b.key_writes = {{"k1", std::string("v1")}, {"k2", std::string("v2")}};
  b.new_size = 3;
  ASSERT_TRUE(s.Commit(b).ok());

  EXPECT_EQ(*s.Size(), 3u);
  EXPECT_EQ(*s.GetLeaf(2), "leaf2");
  EXPECT_EQ(*s.GetPayload(1), "pay1");
  EXPECT_EQ(s.GetLeaf(3).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(**s.FindEventId("e1"), 1u);
  EXPECT_FALSE(s.FindEventId("e9")->has_value());
  EXPECT_EQ(*s.StreamLength("a"), 2u);  // "ab" shares the prefix, not the stream
  EXPECT_EQ(*s.StreamLength("ab"), 1u);
  EXPECT_EQ(*s.StreamLength("b"), 0u);
  EXPECT_EQ(*s.FindStreamVersion("a", 1), 2u);
  EXPECT_EQ(s.FindStreamVersion("a", 2).status().code(), absl::StatusCode::kNotFound);
  std::vector<std::pair<uint64_t, uint64_t>> stream;
  ASSERT_TRUE(s.ScanStream("a", 0, [&](uint64_t v, uint64_t seq) {
                 stream.emplace_back(v, seq);
                 return true;
               }).ok());
  EXPECT_EQ(stream, (std::vector<std::pair<uint64_t, uint64_t>>{{0, 0}, {1, 2}}));

  EXPECT_EQ(*s.GetNode(1, 0), H(3));
  EXPECT_EQ(s.GetNode(1, 1).status().code(), absl::StatusCode::kNotFound);
  std::vector<uint64_t> level0;
  ASSERT_TRUE(s.ScanNodes(0, 1, [&](uint64_t i, absl::string_view) {
                 level0.push_back(i);
                 return true;
               }).ok());
  EXPECT_EQ(level0, (std::vector<uint64_t>{1, 2}));
  std::vector<std::string> leaves;
  ASSERT_TRUE(s.ScanRecords(1, [&](const LogStore::ScannedRecord& r) {
                 EXPECT_TRUE(r.payload.has_value());
                 EXPECT_TRUE(r.leaf_node.has_value());
                 leaves.emplace_back(r.leaf);
                 return true;
               }).ok());
  EXPECT_EQ(leaves, (std::vector<std::string>{"leaf1", "leaf2"}));

  auto latest = s.LatestCheckpoint();
  ASSERT_TRUE(latest.ok() && latest->has_value());
  EXPECT_EQ((*latest)->note, "note3");
  EXPECT_EQ(s.CheckpointAt(2).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(s.CheckpointsIn(0, 2)->size(), 0u);

  EXPECT_EQ(*s.GetSubjectHead(H(9)), (SubjectState{2, H(6)}));
  EXPECT_EQ(*s.GetSubjectHead(H(8)), SubjectState{});
  EXPECT_EQ(s.GetSubjectEntry(H(9), 1)->seq, 2u);
  EXPECT_EQ(s.GetSubjectEntry(H(9), 2).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(**s.GetSubjectMapNode(std::string("\0\0", 2)), "node");
  EXPECT_FALSE(s.GetSubjectMapNode(std::string("\0\1\0", 3))->has_value());
  EXPECT_EQ(*s.SubjectMapLayout(), 1u);  // new stores are; StoredSubjectMap::Open moves them on
  ASSERT_TRUE(s.PutSubjectMapNodes({{std::string("\0\1\x80", 3), "n2"}}, /*finish=*/true).ok());
  EXPECT_EQ(*s.SubjectMapLayout(), 2u);
  EXPECT_EQ(**s.GetSubjectMapNode(std::string("\0\1\x80", 3)), "n2");

  ASSERT_TRUE(s.PutCosignature(3, "w1+00", "line-a").ok());
  ASSERT_TRUE(s.PutCosignature(3, "w1+00", "line-b").ok());  // replaces
  EXPECT_EQ(*s.Cosignatures(3), (std::vector<std::string>{"line-b"}));
  EXPECT_EQ(**s.LatestCosignedSize(), 3u);

  KeyTable* keys = s.keys();
  ASSERT_NE(keys, nullptr);
  EXPECT_EQ(**keys->GetKey("k1"), "v1");
  ASSERT_TRUE(keys->WriteKeys({{"k1", std::nullopt}}, /*purge=*/true).ok());
  EXPECT_FALSE(keys->GetKey("k1")->has_value());
  std::vector<std::string> scanned;
  ASSERT_TRUE(keys->ScanKeys("k",
                             [&](absl::string_view k, absl::string_view) {
                               scanned.emplace_back(k);
                               return true;
                             })
                  .ok());
  EXPECT_EQ(scanned, (std::vector<std::string>{"k2"}));
}

INSTANTIATE_TEST_SUITE_P(Stores, StoreContractTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Memory" : "Rocks";
                         });

}  // namespace
}  // namespace caseledger
