// Partition assignment, the global log's leaf and the two-level event proof
// (ledger/CLUSTER.md "Partitions"), on in-memory ledgers.
#include "ledger/partition.h"

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "ledger/ledger.h"
#include "ledger/memory_store.h"
#include "ledger/merkle_tree.h"
#include "ledger/merkle_verify.h"
#include "tests/test_util.h"

namespace caseledger {
namespace {

using ::caseledger::testing::kTestOrigin;
using ::caseledger::testing::TestEvent;

// Golden vectors (CLUSTER.md "Partition of a case"), computed independently:
// python3 -c "import hashlib; h=hashlib.sha256(b'caseledger partition\0'+s).digest()"
TEST(PartitionTest, PartitionOfGoldenVectors) {
  EXPECT_EQ(PartitionOf("case-1", 4), 3u);   // 305f4ba0a2fc9993...
  EXPECT_EQ(PartitionOf("case-2", 4), 0u);   // 9d02e44041a93c44...
  EXPECT_EQ(PartitionOf("", 4), 2u);         // 01067b485f29008a...
  EXPECT_EQ(PartitionOf("case-\xc3\xb1", 4), 1u);  // 43b72628e4e1d8a9...
  EXPECT_EQ(PartitionOf("case-1", 16), 3u);
  EXPECT_EQ(PartitionOf("case-2", 16), 4u);
  EXPECT_EQ(PartitionOf("", 16), 10u);
  EXPECT_EQ(PartitionOf("case-\xc3\xb1", 16), 9u);
  EXPECT_EQ(PartitionOf("case-1", 1), 0u);
}

TEST(PartitionTest, OriginsAndCounts) {
  EXPECT_EQ(PartitionOrigin("o/log", 0, 1), "o/log");  // P = 1: today's origin
  EXPECT_EQ(PartitionOrigin("o/log", 3, 4), "o/log/p3");
  EXPECT_EQ(GlobalOrigin("o/log"), "o/log/global");
  EXPECT_TRUE(ValidatePartitionCount(1, "--pg_partitions").ok());
  EXPECT_TRUE(ValidatePartitionCount(kMaxPartitions, "--pg_partitions").ok());
  absl::Status s = ValidatePartitionCount(0, "--pg_partitions");
  EXPECT_TRUE(absl::IsInvalidArgument(s));
  EXPECT_TRUE(absl::StrContains(s.message(), "--pg_partitions: got 0")) << s;
}

// The global leaf is the partition checkpoint body; its hash is RFC 9162's
// leaf hash of those bytes.
TEST(PartitionTest, GlobalLeafGoldenVectors) {
  const std::string zero = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
  const std::string b0 = "example.org/log/p0\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"
                         "subjects " + zero + "\n";
  const std::string b1 = "example.org/log/p1\n2\n" + zero + "\nsubjects " + zero + "\n";
  NoteSigner signer = testing::TestNoteSigner();
  absl::StatusOr<std::string> note = signer.Sign(b0);
  ASSERT_TRUE(note.ok()) << note.status();
  absl::StatusOr<std::string> leaf = GlobalLeafOf(*note);
  ASSERT_TRUE(leaf.ok()) << leaf.status();
  EXPECT_EQ(*leaf, b0);
  EXPECT_EQ(ToHex(LeafHash(b0)),
            "38499547970af65c9b3764c26a26e0b311f70af0ba042648fad597699b97b0e7");
  EXPECT_EQ(ToHex(LeafHash(b1)),
            "d381ea397c4b1be9a183009404a573fdb87d6c7193285ae863fa336183de88ae");
  EXPECT_EQ(ToHex(NodeHash(LeafHash(b0), LeafHash(b1))),
            "e4ff26600635cb9578f1e8868baa82f3cdc0697c5164ec8521a6aade58f08349");
  EXPECT_FALSE(GlobalLeafOf("not a note").ok());
}

// Two partitions on in-memory ledgers, a global tree over their
// checkpoints, and proofs checked from the signed global checkpoint alone.
class PartitionedProofTest : public ::testing::Test {
 protected:
  static constexpr uint32_t kP = 2;
  void SetUp() override {
    signer_ = std::make_unique<NoteSigner>(testing::TestNoteSigner());
    for (uint32_t p = 0; p < kP; ++p) {
      LedgerOptions o;
      o.origin = PartitionOrigin(kTestOrigin, p, kP);
      o.signer = signer_.get();
      auto l = Ledger::Open(std::move(o), NewMemoryStore());
      ASSERT_TRUE(l.ok()) << l.status();
      parts_.push_back(*std::move(l));
    }
    for (int i = 0; i < 20; ++i) {
      std::string stream = "case-" + std::to_string(i);
      uint32_t p = PartitionOf(stream, kP);
      auto r = parts_[p]->Append({TestEvent("ev-" + std::to_string(i), stream)});
      ASSERT_TRUE(r.ok()) << r.status();
      events_.push_back({p, r->seq});
    }
    for (uint32_t p = 0; p < kP; ++p) {
      auto cp = parts_[p]->Checkpoint();
      ASSERT_TRUE(cp.ok()) << cp.status();
      auto leaf = GlobalLeafOf(cp->note);
      ASSERT_TRUE(leaf.ok());
      bodies_.push_back(*leaf);
      global_.Append(LeafHash(*leaf), &writes_);
    }
    nodes_.PutAll(writes_);
    Checkpoint g;
    g.origin = GlobalOrigin(kTestOrigin);
    g.size = global_.size();
    g.root = global_.Root();
    auto note = SignCheckpoint(g, *signer_);
    ASSERT_TRUE(note.ok()) << note.status();
    global_note_ = *note;
  }

  PartitionedProof ProofOf(uint32_t p, uint64_t seq) {
    PartitionedProof proof;
    proof.partition = p;
    proof.seq = seq;
    auto rec = parts_[p]->Read(seq);
    EXPECT_TRUE(rec.ok()) << rec.status();
    proof.record_leaf = rec->leaf;
    proof.partition_body = bodies_[p];
    auto size = ParseCheckpointBody(bodies_[p]);
    auto pp = parts_[p]->InclusionProof(seq, size->size);
    EXPECT_TRUE(pp.ok()) << pp.status();
    proof.partition_proof = *pp;
    proof.global_index = p;
    auto gp = InclusionProof(p, global_.size(), nodes_);
    EXPECT_TRUE(gp.ok()) << gp.status();
    proof.global_proof = *gp;
    return proof;
  }

  std::unique_ptr<NoteSigner> signer_;
  std::vector<std::unique_ptr<Ledger>> parts_;
  std::vector<std::pair<uint32_t, uint64_t>> events_;
  std::vector<std::string> bodies_;
  MerkleTree global_;
  std::vector<NodeWrite> writes_;
  InMemoryNodeStore nodes_;
  std::string global_note_;
};

TEST_F(PartitionedProofTest, EveryEventVerifiesFromTheGlobalCheckpoint) {
  NoteVerifier v = testing::TestNoteVerifier();
  for (auto [p, seq] : events_) {
    absl::StatusOr<Checkpoint> g =
        VerifyPartitionedProof(global_note_, v, kTestOrigin, kP, ProofOf(p, seq));
    ASSERT_TRUE(g.ok()) << "partition " << p << " seq " << seq << ": " << g.status();
    EXPECT_EQ(g->size, kP);
  }
}

TEST_F(PartitionedProofTest, TamperedProofsFail) {
  NoteVerifier v = testing::TestNoteVerifier();
  auto [p, seq] = events_[3];
  PartitionedProof good = ProofOf(p, seq);
  {
    PartitionedProof bad = good;  // the other partition's body
    bad.partition_body = bodies_[1 - p];
    bad.global_index = 1 - p;
    bad.global_proof = ProofOf(1 - p, 0).global_proof;
    absl::Status s = VerifyPartitionedProof(global_note_, v, kTestOrigin, kP, bad).status();
    EXPECT_TRUE(absl::IsDataLoss(s)) << s;
  }
  {
    PartitionedProof bad = good;  // a record byte changed
    bad.record_leaf.back() ^= 1;
    EXPECT_FALSE(VerifyPartitionedProof(global_note_, v, kTestOrigin, kP, bad).ok());
  }
  {
    PartitionedProof bad = good;  // a body not in the global log
    bad.partition_body += "x\n";
    absl::Status s = VerifyPartitionedProof(global_note_, v, kTestOrigin, kP, bad).status();
    EXPECT_TRUE(absl::IsDataLoss(s)) << s;
  }
  {
    PartitionedProof bad = good;  // claims another partition number
    bad.partition = 1 - p;
    absl::Status s = VerifyPartitionedProof(global_note_, v, kTestOrigin, kP, bad).status();
    EXPECT_TRUE(absl::IsDataLoss(s)) << s;
  }
  // A global checkpoint of another log (a partition's) is refused.
  auto pcp = parts_[0]->Checkpoint();
  ASSERT_TRUE(pcp.ok());
  EXPECT_FALSE(VerifyPartitionedProof(pcp->note, v, kTestOrigin, kP, good).ok());
  EXPECT_TRUE(VerifyPartitionedProof(global_note_, v, kTestOrigin, kP, good).ok());
}

}  // namespace
}  // namespace caseledger
