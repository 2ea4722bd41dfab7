// The global checkpoints of a partitioned ledger (P = 4, PostgreSQL started
// by the suite) go to a tlog-witness over HTTP (WitnessHttpHandler, what
// `ledger_witness --listen` serves); the cosignatures are kept in PostgreSQL
// and served by any node; after the owner of partition 0 stops, the node that
// takes it over pushes on from the size the witness holds, with the
// consistency proof, and the witness accepts it.
#include "services/tlog/global_witness.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "ledger/checkpoint.h"
#include "ledger/cosignature.h"
#include "ledger/partition.h"
#include "ledger/signer.h"
#include "ledger/witness.h"
#include "services/tlog/http_server.h"
#include "tests/postgres_suite.h"
#include "tests/test_util.h"

namespace caseledger {
namespace {

using ::caseledger::testing::kTestOrigin;
using ::caseledger::testing::NewTempDir;
using ::caseledger::testing::TestEvent;

constexpr int32_t kP = 4;

NoteSigner GlobalSigner() {
  return *NoteSigner::New(GlobalOrigin(kTestOrigin),
                          *Ed25519Signer::FromSeed(std::string(32, '\x42')));
}

class GlobalWitnessTest : public testing::PostgresSuite {
 protected:
  void SetUp() override {
    PostgresSuite::SetUp();
    dir_ = NewTempDir("global_witness");
    signer_ = std::make_unique<NoteSigner>(testing::TestNoteSigner());
    global_signer_ = std::make_unique<NoteSigner>(GlobalSigner());
    cosigner_ = std::make_unique<Cosigner>(
        *Cosigner::New("witness.test/w1", *Ed25519Signer::FromSeed(std::string(32, '\x61'))));
    std::vector<NoteVerifier> logs;
    logs.push_back(*NoteVerifier::FromVerifierKey(global_signer_->VerifierKey()));
    handler_ = std::make_unique<WitnessHttpHandler>(std::move(logs), cosigner_.get(),
                                                    dir_ + "/witness.state", WitnessState(),
                                                    [] { return uint64_t{1800000000}; });
    auto server = HttpServer::Start({"127.0.0.1:0"},
                                    [this](const HttpRequest& r) { return handler_->Handle(r); });
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }

  PartitionedNodeOptions Options(const std::string& node_id) {
    PartitionedNodeOptions o;
    o.conninfo = pg_->conninfo();
    o.node_id = node_id;
    o.partitions = kP;
    o.dir = dir_ + "/" + node_id;
    o.lease_ttl = absl::Seconds(1);
    o.acquire_interval = absl::Milliseconds(200);
    o.ledger.origin = kTestOrigin;
    o.ledger.signer = signer_.get();
    o.global_signer = global_signer_.get();
    o.witness_keys = {cosigner_->VerifierKey()};
    return o;
  }

  WitnessPusherOptions PushTo() {
    WitnessPusherOptions o;
    o.witnesses.push_back({absl::StrCat("http://127.0.0.1:", server_->port()),
                           cosigner_->VerifierKey()});
    return o;
  }

  // Appends to every partition the node owns, checkpoints them and
  // publishes the global log.
  GlobalCheckpoint Grow(PartitionedNode& node, const std::string& tag) {
    for (int i = 0; i < 8; ++i) {
      EXPECT_TRUE(node.Append({TestEvent(absl::StrCat(tag, i), absl::StrCat("case-", i))}).ok());
    }
    for (int32_t p : node.Owned()) {
      auto l = node.Partition(p);
      if ((*l)->Size() > 0) EXPECT_TRUE((*l)->Checkpoint().ok());
    }
    auto g = node.PublishGlobal();
    EXPECT_TRUE(g.ok()) << g.status();
    return g.ok() ? *g : GlobalCheckpoint{};
  }

  // The witness's line for the global checkpoint at `size`, from the note a
  // node serves.
  absl::StatusOr<Cosignature> Cosigned(const PartitionedNode& node, uint64_t size) {
    absl::StatusOr<std::string> note = node.CosignedGlobal(size);
    if (!note.ok()) return note.status();
    auto cp = OpenCheckpoint(*note, *NoteVerifier::FromVerifierKey(global_signer_->VerifierKey()),
                             GlobalOrigin(kTestOrigin));
    if (!cp.ok()) return cp.status();
    return CosignatureVerifier::FromVerifierKey(cosigner_->VerifierKey())->Verify(*note);
  }

  std::string dir_;
  std::unique_ptr<NoteSigner> signer_, global_signer_;
  std::unique_ptr<Cosigner> cosigner_;
  std::unique_ptr<WitnessHttpHandler> handler_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(GlobalWitnessTest, GlobalCheckpointsAreCosignedAndStayConsistentAcrossATakeover) {
  auto a = PartitionedNode::Start(Options("node-a"));
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_EQ((*a)->Owned().size(), static_cast<size_t>(kP));
  GlobalCheckpoint g1 = Grow(**a, "a-");
  {
    std::unique_ptr<WitnessPusher> pusher = NewGlobalWitnessPusher(a->get(), PushTo());
    ASSERT_TRUE(pusher->PushOnce().ok());
  }
  absl::StatusOr<Cosignature> c1 = Cosigned(**a, g1.size);
  ASSERT_TRUE(c1.ok()) << c1.status();
  EXPECT_EQ(c1->name, "witness.test/w1");

  // node-b (started while node-a holds every lease) owns nothing: its
  // pusher offers nothing, but it serves node-a's cosignature from
  // PostgreSQL.
  auto b = PartitionedNode::Start(Options("node-b"));
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_TRUE((*b)->Owned().empty());
  std::unique_ptr<WitnessPusher> b_pusher = NewGlobalWitnessPusher(b->get(), PushTo());
  ASSERT_TRUE(b_pusher->PushOnce().ok());
  absl::StatusOr<Cosignature> served = Cosigned(**b, g1.size);
  ASSERT_TRUE(served.ok()) << served.status();
  EXPECT_EQ(served->line, c1->line);

  // node-a stops; node-b takes every partition once the leases lapse.
  a->reset();
  absl::Time deadline = absl::Now() + absl::Seconds(15);
  while ((*b)->Owned().size() < static_cast<size_t>(kP) && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_EQ((*b)->Owned().size(), static_cast<size_t>(kP));
  GlobalCheckpoint g2 = Grow(**b, "b-");
  ASSERT_GT(g2.size, g1.size);
  // Its pusher starts knowing nothing: the witness's 409 names g1's size,
  // and the second try carries PROOF(g1, g2), which the witness checks.
  ASSERT_TRUE(b_pusher->PushOnce().ok());
  absl::StatusOr<Cosignature> c2 = Cosigned(**b, g2.size);
  ASSERT_TRUE(c2.ok()) << c2.status();
  auto state = WitnessState::Load(dir_ + "/witness.state");
  ASSERT_TRUE(state.ok()) << state.status();
  auto held = state->Note(GlobalOrigin(kTestOrigin));
  ASSERT_TRUE(held.has_value());
  EXPECT_EQ(ParseCheckpointNote(*held)->size, g2.size);

  // One line per (size, witness): the first stored stays.
  auto again = cosigner_->Cosign(g2.note, 1800000500);
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_TRUE((*b)->AddGlobalCosignatures(*again).ok());
  EXPECT_EQ(Cosigned(**b, g2.size)->line, c2->line);
  // A note that is not a global checkpoint this ledger signed is refused.
  Checkpoint forged = *ParseCheckpointNote(g2.note);
  forged.root[0] ^= 1;
  auto forged_note = cosigner_->Cosign(*SignCheckpoint(forged, *global_signer_), 1800000600);
  ASSERT_TRUE(forged_note.ok());
  auto refused = (*b)->AddGlobalCosignatures(*forged_note);
  EXPECT_TRUE(absl::IsInvalidArgument(refused)) << refused;
  // And one without a configured witness's line.
  auto unsigned_by_witness = (*b)->AddGlobalCosignatures(g2.note);
  EXPECT_TRUE(absl::IsFailedPrecondition(unsigned_by_witness)) << unsigned_by_witness;
}

}  // namespace
}  // namespace caseledger
