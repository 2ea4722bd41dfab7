// Corruption drills: damage a closed data directory one way at a time and
// check that verification names the first bad sequence number.
#include "ledger/store_verifier.h"

#include <gtest/gtest.h>

#include <tuple>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "ledger/rocks_store.h"
#include "tests/test_util.h"

namespace caseledger {
namespace {

using ::caseledger::testing::RawDelete;
using ::caseledger::testing::RawGet;
using ::caseledger::testing::RawPut;
using ::caseledger::testing::SeqKey;

constexpr int kRecords = 40;

class StoreVerifierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::NewTempDir("verify");
    LedgerOptions options;
    options.checkpoint_every_records = 16;  // checkpoints at 16 and 32, then 40 below
    auto t = testing::OpenTestLedger(dir_, options);
    ASSERT_TRUE(t.ok()) << t.status();
    for (int i = 0; i < kRecords; ++i) {
      ASSERT_TRUE((*t)->Append({testing::TestEvent(absl::StrCat("e", i),
                                                   absl::StrCat("case-", i % 3))})
                      .ok());
    }
    ASSERT_TRUE((*t)->Checkpoint().ok());
  }

  StoreVerifyReport Verify(size_t max_failures = 1) {
    RocksStoreOptions o;
    o.path = dir_;
    o.read_only = true;
    auto store = OpenRocksStore(o);
    EXPECT_TRUE(store.ok()) << store.status();
    if (!store.ok()) return {};
    StoreVerifyOptions options;
    options.note_verifier = &verifier_;
    options.origin = testing::kTestOrigin;
    options.max_failures = max_failures;
    return VerifyStore(**store, options);
  }

  std::string Get(const std::string& family, const std::string& key) {
    auto v = RawGet(dir_, family, key);
    EXPECT_TRUE(v.ok()) << v.status();
    return v.ok() ? *v : "";
  }

  std::string dir_;
  NoteVerifier verifier_ = testing::TestNoteVerifier();
};

std::string Msg(const absl::Status& s) { return std::string(s.message()); }

TEST_F(StoreVerifierTest, IntactLedgerVerifies) {
  StoreVerifyReport r = Verify();
  EXPECT_EQ(r.status, absl::OkStatus());
  EXPECT_EQ(r.records_checked, static_cast<uint64_t>(kRecords));
  EXPECT_EQ(r.checkpoints_checked, 3u);
  EXPECT_EQ(r.tree_size, static_cast<uint64_t>(kRecords));
}

TEST_F(StoreVerifierTest, FlippedByteInRecordNamesThatRecord) {
  std::string leaf = Get("records", SeqKey(21));
  leaf[60] ^= 0x01;  // inside the stream id
  ASSERT_TRUE(RawPut(dir_, "records", SeqKey(21), leaf).ok());
  StoreVerifyReport r = Verify(10);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kDataLoss);
  ASSERT_FALSE(r.failures.empty());
  EXPECT_EQ(r.failures[0].seq, 21u);
  EXPECT_TRUE(absl::StartsWith(r.status.message(), "record 21: ")) << r.status;
  // The next record's link and the checkpoint at 32 break too.
  bool saw_link = false, saw_checkpoint = false;
  for (const VerifyFailure& f : r.failures) {
    saw_link |= absl::StartsWith(f.status.message(), "record 22: prev_hash ");
    saw_checkpoint |= absl::StartsWith(f.status.message(), "checkpoint at size 32: signed root ");
  }
  EXPECT_TRUE(saw_link);
  EXPECT_TRUE(saw_checkpoint);
}

TEST_F(StoreVerifierTest, FlippedByteInPayloadIsDetected) {
  std::string payload = Get("payloads", SeqKey(5));
  payload[payload.size() - 1] ^= 0x20;  // the last byte of the note's value
  ASSERT_TRUE(RawPut(dir_, "payloads", SeqKey(5), payload).ok());
  StoreVerifyReport r = Verify();
  EXPECT_EQ(r.status.code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StartsWith(r.status.message(), "record 5: field \"note\": opening commits to "))
      << r.status;
}

TEST_F(StoreVerifierTest, FlippedByteInCheckpointIsDetected) {
  std::string note = Get("checkpoints", SeqKey(16));
  note[note.find('\n') + 1] = '7';  // the size line: "16" -> "76"
  ASSERT_TRUE(RawPut(dir_, "checkpoints", SeqKey(16), note).ok());
  StoreVerifyReport r = Verify();
  EXPECT_EQ(r.status.code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StartsWith(r.status.message(), "checkpoint at size 16: ")) << r.status;
  EXPECT_EQ(r.failures[0].seq, 15u);
}

TEST_F(StoreVerifierTest, DeletedRecordIsNamed) {
  ASSERT_TRUE(RawDelete(dir_, "records", SeqKey(9)).ok());
  StoreVerifyReport r = Verify();
  EXPECT_EQ(r.status.code(), absl::StatusCode::kDataLoss);
  // The four more: record 10's stream version skips, and checkpoints 16, 32
  // and 40 lie past the gap.
  EXPECT_EQ(Msg(r.status),
            "record 9 is missing (next stored record is 10) (and 4 more failures)");
  EXPECT_EQ(r.failures[0].seq, 9u);
}

TEST_F(StoreVerifierTest, SwappedRecordsAreNamed) {
  std::string a = Get("records", SeqKey(12));
  std::string b = Get("records", SeqKey(13));
  ASSERT_TRUE(RawPut(dir_, "records", SeqKey(12), b).ok());
  ASSERT_TRUE(RawPut(dir_, "records", SeqKey(13), a).ok());
  StoreVerifyReport r = Verify();
  EXPECT_EQ(r.status.code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StartsWith(r.status.message(), "record 12: holds seq 13")) << r.status;
  EXPECT_EQ(r.failures[0].seq, 12u);
}

TEST_F(StoreVerifierTest, TruncatedTailIsDetected) {
  for (int seq = 35; seq < kRecords; ++seq) {
    ASSERT_TRUE(RawDelete(dir_, "records", SeqKey(seq)).ok());
  }
  StoreVerifyReport r = Verify(10);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StartsWith(r.status.message(),
                               "records end at seq 35 but the tree size is 40"))
      << r.status;
  EXPECT_EQ(r.failures[0].seq, 35u);
}

TEST_F(StoreVerifierTest, TruncationThatAlsoRewritesTheSizeIsCaughtByTheCheckpoint) {
  for (int seq = 35; seq < kRecords; ++seq) {
    ASSERT_TRUE(RawDelete(dir_, "records", SeqKey(seq)).ok());
  }
  ASSERT_TRUE(RawPut(dir_, "meta", "tree_size", SeqKey(35)).ok());
  StoreVerifyReport r = Verify();
  EXPECT_EQ(r.status.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(Msg(r.status), "checkpoint at size 40: only 35 records verify before it");
}

TEST_F(StoreVerifierTest, RewrittenChainWithStaleCheckpointIsDetected) {
  // Replace record 3 by a well-formed record with another stream version, and
  // rewrite its stored leaf node to match: the chain link and the signed
  // checkpoint still catch it.
  std::string leaf = Get("records", SeqKey(3));
  leaf[leaf.size() - 1] ^= 0x01;  // payload commitment's last byte
  ASSERT_TRUE(RawPut(dir_, "records", SeqKey(3), leaf).ok());
  std::string node_key(1, '\0');
  node_key += SeqKey(3);
  Hash h = LeafHash(leaf);
  ASSERT_TRUE(RawPut(dir_, "nodes", node_key, std::string(AsBytes(h))).ok());
  StoreVerifyReport r = Verify(10);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(r.failures[0].seq, 3u);
  EXPECT_TRUE(absl::StartsWith(r.status.message(), "record 3: payload commitment: got "))
      << r.status;
}

// VerifyStoreRange: a range anchored on the stored nodes at its start.
StoreVerifyReport VerifyRangeIn(const std::string& dir, const NoteVerifier& verifier, uint64_t from,
                                uint64_t to) {
  RocksStoreOptions o;
  o.path = dir;
  o.read_only = true;
  auto store = OpenRocksStore(o);
  EXPECT_TRUE(store.ok()) << store.status();
  if (!store.ok()) return {};
  StoreVerifyOptions options;
  options.note_verifier = &verifier;
  options.origin = testing::kTestOrigin;
  options.max_failures = 10;
  return VerifyStoreRange(**store, from, to, options);
}

TEST_F(StoreVerifierTest, RangesOfAnIntactLedgerVerify) {
  for (auto [from, to, checkpoints] :
       std::vector<std::tuple<uint64_t, uint64_t, uint64_t>>{{0, 40, 3},
                                                             {0, 16, 1},
                                                             {5, 17, 1},
                                                             {16, 32, 1},
                                                             {17, 40, 2},
                                                             {33, 40, 1},
                                                             {39, 40, 1},
                                                             {40, 40, 0},
                                                             {7, 7, 0}}) {
    StoreVerifyReport r = VerifyRangeIn(dir_, verifier_, from, to);
    EXPECT_EQ(r.status, absl::OkStatus()) << from << ".." << to;
    EXPECT_EQ(r.records_checked, to - from) << from << ".." << to;
    EXPECT_EQ(r.checkpoints_checked, checkpoints) << from << ".." << to;
  }
}

TEST_F(StoreVerifierTest, RangeFindsAFlippedByteInsideAndIgnoresOneBefore) {
  std::string leaf = Get("records", SeqKey(21));
  leaf[60] ^= 0x01;
  ASSERT_TRUE(RawPut(dir_, "records", SeqKey(21), leaf).ok());
  StoreVerifyReport r = VerifyRangeIn(dir_, verifier_, 18, 30);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kDataLoss);
  ASSERT_FALSE(r.failures.empty());
  EXPECT_EQ(r.failures[0].seq, 21u);
  EXPECT_TRUE(absl::StartsWith(r.status.message(), "record 21: ")) << r.status;
  // A range after the damage links to the committed leaf hash of record 21
  // (its Merkle node), so it verifies.
  EXPECT_EQ(VerifyRangeIn(dir_, verifier_, 22, 40).status, absl::OkStatus());
  // A range that ends before it, too.
  EXPECT_EQ(VerifyRangeIn(dir_, verifier_, 0, 21).status, absl::OkStatus());
}

TEST_F(StoreVerifierTest, RangeOutsideTheTreeIsInvalidArgument) {
  StoreVerifyReport r = VerifyRangeIn(dir_, verifier_, 10, 41);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Msg(r.status), "range: got [10, 41), want from <= to <= the tree size 40");
  EXPECT_EQ(VerifyRangeIn(dir_, verifier_, 12, 11).status.code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace caseledger
