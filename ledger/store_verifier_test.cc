// Corruption drills: damage a closed data directory one way at a time and
// check that verification names the first bad sequence number.
#include "ledger/store_verifier.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <optional>
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

  StoreVerifyReport Verify(size_t max_failures = 1,
                           std::optional<TrustedCheckpoint> since = std::nullopt,
                           std::string dir = "") {
    RocksStoreOptions o;
    o.path = dir.empty() ? dir_ : dir;
    o.read_only = true;
    auto store = OpenRocksStore(o);
    EXPECT_TRUE(store.ok()) << store.status();
    if (!store.ok()) return {};
    StoreVerifyOptions options;
    options.note_verifier = &verifier_;
    options.origin = testing::kTestOrigin;
    options.max_failures = max_failures;
    options.since = since;
    return VerifyStore(**store, options);
  }

  // The auditor's view of the checkpoint stored at `size` in `dir`.
  TrustedCheckpoint Trusted(uint64_t size, std::string dir = "") {
    auto note = RawGet(dir.empty() ? dir_ : dir, "checkpoints", SeqKey(size));
    EXPECT_TRUE(note.ok()) << note.status();
    auto cp = OpenCheckpoint(note.ok() ? *note : "", verifier_, testing::kTestOrigin);
    EXPECT_TRUE(cp.ok()) << cp.status();
    return cp.ok() ? TrustedCheckpoint{cp->size, cp->root} : TrustedCheckpoint{};
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

TEST_F(StoreVerifierTest, FlippedByteInAMerkleNodeNamesTheNode) {
  // Node (level 2, index 3) covers records 12..15; proofs would be served
  // from it.
  std::string key(1, '\x02');
  key += SeqKey(3);
  std::string node = Get("nodes", key);
  ASSERT_EQ(node.size(), 32u);
  node[7] ^= 0x10;
  ASSERT_TRUE(RawPut(dir_, "nodes", key, node).ok());
  StoreVerifyReport r = Verify(10);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kDataLoss);
  ASSERT_FALSE(r.failures.empty());
  EXPECT_EQ(r.failures[0].seq, 12u);
  EXPECT_TRUE(absl::StartsWith(r.status.message(),
                               "Merkle node (level 2, index 3) over records 12..15: stored "))
      << r.status;
  EXPECT_GT(r.nodes_checked, 30u);
}

TEST_F(StoreVerifierTest, DeletedLeafNodeIsNamed) {
  std::string key(1, '\0');
  key += SeqKey(6);
  ASSERT_TRUE(RawDelete(dir_, "nodes", key).ok());
  StoreVerifyReport r = Verify();
  EXPECT_EQ(Msg(r.status).substr(0, 40), "record 6: its Merkle leaf node is missin");
}

TEST_F(StoreVerifierTest, IncrementalAuditReadsOnlyWhatCameAfter) {
  StoreVerifyReport r = Verify(1, Trusted(16));
  ASSERT_EQ(r.status, absl::OkStatus());
  EXPECT_TRUE(r.since_checked);
  EXPECT_EQ(r.first_seq, 16u);
  EXPECT_EQ(r.records_checked, static_cast<uint64_t>(kRecords - 16));
  EXPECT_EQ(r.checkpoints_checked, 3u);  // 16 (from the tree), 32, 40
  EXPECT_EQ(r.root, Verify().root);
  EXPECT_EQ(r.latest_size, static_cast<uint64_t>(kRecords));
  EXPECT_TRUE(absl::StartsWith(r.latest_note, absl::StrCat(testing::kTestOrigin, "\n40\n")));

  // Damage before the start is not read; damage after it is.
  std::string leaf = Get("records", SeqKey(20));
  leaf[60] ^= 0x01;
  ASSERT_TRUE(RawPut(dir_, "records", SeqKey(20), leaf).ok());
  r = Verify(1, Trusted(16));
  EXPECT_TRUE(absl::StartsWith(r.status.message(), "record 20: ")) << r.status;
}

TEST_F(StoreVerifierTest, RolledBackDirectoryIsDetectedAgainstTheAuditorsCheckpoint) {
  // Keep a copy of the directory as it is now, let the ledger grow, and let
  // the auditor see the grown one; then put the old copy back.
  std::string old_copy = dir_ + "-old";
  std::filesystem::copy(dir_, old_copy, std::filesystem::copy_options::recursive);
  {
    LedgerOptions options;
    auto t = testing::OpenTestLedger(dir_, options);
    ASSERT_TRUE(t.ok()) << t.status();
    for (int i = 0; i < 8; ++i) {
      ASSERT_TRUE((*t)->Append({testing::TestEvent(absl::StrCat("late", i), "case-9")}).ok());
    }
    ASSERT_TRUE((*t)->Checkpoint().ok());
  }
  TrustedCheckpoint seen = Trusted(kRecords + 8);
  ASSERT_EQ(Verify(1, seen).status, absl::OkStatus());
  StoreVerifyReport r = Verify(1, seen, old_copy);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(Msg(r.status),
            "the tree size is 40, below your checkpoint's size 48: the ledger was rolled back "
            "or cut short");
  EXPECT_EQ(r.failures[0].seq, 39u);
  // Without the auditor's checkpoint the old copy is a perfectly good ledger.
  EXPECT_EQ(Verify(1, std::nullopt, old_copy).status, absl::OkStatus());
}

TEST_F(StoreVerifierTest, ForkedHistoryWithTheSameKeyIsDetected) {
  // Another history, signed with the same key: valid on its own.
  std::string fork = testing::NewTempDir("verify-fork");
  {
    LedgerOptions options;
    options.checkpoint_every_records = 16;
    auto t = testing::OpenTestLedger(fork, options);
    ASSERT_TRUE(t.ok()) << t.status();
    for (int i = 0; i < kRecords; ++i) {
      ASSERT_TRUE((*t)->Append({testing::TestEvent(absl::StrCat("e", i),
                                                   absl::StrCat("case-", i % 3), 65)})
                      .ok());
    }
    ASSERT_TRUE((*t)->Checkpoint().ok());
  }
  ASSERT_EQ(Verify(1, std::nullopt, fork).status, absl::OkStatus());
  StoreVerifyReport r = Verify(1, Trusted(16), fork);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StartsWith(r.status.message(),
                               "the stored tree at your checkpoint's size 16 has root "))
      << r.status;
  EXPECT_TRUE(absl::StrContains(r.status.message(), "the log was forked or rewritten"));
  EXPECT_EQ(r.failures[0].seq, 15u);
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
