#include "services/tlog/witness_http.h"

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ledger/checkpoint.h"
#include "ledger/cosignature.h"
#include "ledger/hash.h"
#include "ledger/merkle_tree.h"
#include "ledger/signer.h"
#include "services/tlog/http_client.h"
#include "services/tlog/http_server.h"

namespace caseledger {
namespace {

using ::testing::HasSubstr;

constexpr char kOrigin[] = "push.test/log";

// A log in memory: leaves, nodes, and its signed checkpoint at each size.
class Log {
 public:
  explicit Log(std::string tag, uint8_t seed = 0x51)
      : tag_(std::move(tag)),
        signer_(*NoteSigner::New(kOrigin, *Ed25519Signer::FromSeed(std::string(32, seed)))) {}
  void Grow(uint64_t n) {
    for (uint64_t i = 0; i < n; ++i) {
      std::vector<NodeWrite> writes;
      tree_.Append(LeafHash(absl::StrCat(tag_, tree_.size())), &writes);
      nodes_.PutAll(writes);
    }
    note_ = *SignCheckpoint({kOrigin, tree_.size(), tree_.Root(), {}}, signer_);
  }
  StoredCheckpoint Latest() const { return {tree_.size(), note_}; }
  std::string vkey() const { return signer_.VerifierKey(); }
  absl::StatusOr<std::vector<Hash>> Proof(uint64_t from, uint64_t to) const {
    return ConsistencyProof(from, to, nodes_);
  }

 private:
  std::string tag_;
  NoteSigner signer_;
  MerkleTree tree_;
  InMemoryNodeStore nodes_;
  std::string note_;
};

class WitnessHttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/witness_http_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    ASSERT_EQ(std::system(("rm -rf " + dir_ + " && mkdir -p " + dir_).c_str()), 0);
    cosigner_ = std::make_unique<Cosigner>(
        *Cosigner::New("push.test/w1", *Ed25519Signer::FromSeed(std::string(32, '\x61'))));
    StartWitness();
  }
  void StartWitness() {
    server_.reset();
    std::vector<NoteVerifier> logs;
    logs.push_back(*NoteVerifier::FromVerifierKey(log_.vkey()));
    auto state = WitnessState::Load(dir_ + "/state");
    ASSERT_TRUE(state.ok()) << state.status();
    handler_ =
        std::make_unique<WitnessHttpHandler>(std::move(logs), cosigner_.get(), dir_ + "/state",
                                             *std::move(state), [this] { return now_; });
    auto server = HttpServer::Start({"127.0.0.1:0"},
                                    [this](const HttpRequest& r) { return handler_->Handle(r); });
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    url_ = absl::StrCat("http://127.0.0.1:", server_->port());
  }
  WitnessPusherOptions PusherOptions(const Log* log) {
    WitnessPusherOptions o;
    o.witnesses.push_back({url_, cosigner_->VerifierKey()});
    o.latest = [log]() -> absl::StatusOr<std::optional<StoredCheckpoint>> { return log->Latest(); };
    o.proof = [log](uint64_t a, uint64_t b) { return log->Proof(a, b); };
    o.store = [this](absl::string_view note) -> absl::Status {
      auto v = CosignatureVerifier::FromVerifierKey(cosigner_->VerifierKey());
      absl::StatusOr<Cosignature> cs = v->Verify(note);
      if (!cs.ok()) return cs.status();
      stored_.push_back(std::string(note));
      return absl::OkStatus();
    };
    return o;
  }
  absl::StatusOr<HttpAnswer> Post(const AddCheckpointRequest& req) {
    return HttpPost(url_ + "/add-checkpoint", FormatAddCheckpointRequest(req), absl::Seconds(5));
  }

  std::string dir_;
  Log log_{"main"};
  std::unique_ptr<Cosigner> cosigner_;
  std::unique_ptr<WitnessHttpHandler> handler_;
  std::unique_ptr<HttpServer> server_;
  std::string url_;
  uint64_t now_ = 1800000000;
  std::vector<std::string> stored_;
};

TEST_F(WitnessHttpTest, PusherGetsEachNewCheckpointCosignedAndLearnsTheSizeFrom409) {
  log_.Grow(5);
  {
    WitnessPusher pusher(PusherOptions(&log_));
    ASSERT_TRUE(pusher.PushOnce().ok());
    ASSERT_EQ(stored_.size(), 1u);
    auto cp = OpenCheckpoint(stored_[0], *NoteVerifier::FromVerifierKey(log_.vkey()), kOrigin);
    EXPECT_EQ(cp->size, 5u) << "the stored note still opens with the log key";
    ASSERT_TRUE(pusher.PushOnce().ok());
    EXPECT_EQ(stored_.size(), 1u) << "nothing new to push";
    log_.Grow(9);
    ASSERT_TRUE(pusher.PushOnce().ok());
    ASSERT_EQ(stored_.size(), 2u);
    EXPECT_EQ(ParseCheckpointNote(stored_[1])->size, 14u);
  }
  // A restarted log (or one that never talked to this witness) starts from
  // old size 0, gets 409 "14", and retries with a proof from 14; the witness
  // restarted too and kept its state on disk.
  StartWitness();
  log_.Grow(3);
  now_ += 10;
  WitnessPusher fresh(PusherOptions(&log_));
  ASSERT_TRUE(fresh.PushOnce().ok());
  ASSERT_EQ(stored_.size(), 3u);
  EXPECT_EQ(ParseCheckpointNote(stored_[2])->size, 17u);
  auto v = CosignatureVerifier::FromVerifierKey(cosigner_->VerifierKey());
  EXPECT_EQ(v->Verify(stored_[2])->timestamp, now_);
}

TEST_F(WitnessHttpTest, WitnessAnswersPerSpec) {
  log_.Grow(6);
  AddCheckpointRequest req;
  req.note = log_.Latest().note;
  auto ok = Post(req);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(ok->body.rfind("\xE2\x80\x94 push.test/w1 ", 0), 0u) << ok->body;
  EXPECT_EQ(ok->body.back(), '\n');

  // 409 with the size as text/x.tlog.size.
  log_.Grow(2);
  req.note = log_.Latest().note;
  auto conflict = Post(req);
  EXPECT_EQ(conflict->status, 409);
  EXPECT_EQ(conflict->body, "6\n");
  EXPECT_EQ(conflict->content_type, "text/x.tlog.size");
  // 422: a proof that does not verify.
  req.old_size = 6;
  req.proof = *log_.Proof(6, 8);
  req.proof[0][3] ^= 0x10;
  EXPECT_EQ(Post(req)->status, 422);
  // 400: old size above the checkpoint's, and a malformed body.
  req.old_size = 9;
  req.proof.clear();
  EXPECT_EQ(Post(req)->status, 400);
  EXPECT_EQ(HttpPost(url_ + "/add-checkpoint", "old x\n\n", absl::Seconds(5))->status, 400);
  // 403: signed by another key under the same origin.
  Log impostor("main", 0x52);
  impostor.Grow(8);
  req.old_size = 6;
  req.proof = *impostor.Proof(6, 8);
  req.note = impostor.Latest().note;
  EXPECT_EQ(Post(req)->status, 403);
  // 404: a log it does not know; and paths and methods it does not serve.
  auto other = *NoteSigner::New("other.test/log", *Ed25519Signer::FromSeed(std::string(32, 9)));
  req.old_size = 0;
  req.proof.clear();
  req.note = *SignCheckpoint({"other.test/log", 1, Sha256Of("x"), {}}, other);
  EXPECT_EQ(Post(req)->status, 404);
  EXPECT_EQ(HttpGet(url_ + "/add-checkpoint", absl::Seconds(5))->status, 405);
  EXPECT_EQ(HttpGet(url_ + "/checkpoint", absl::Seconds(5))->status, 404);
  // None of the refusals moved the witness.
  auto state = WitnessState::Load(dir_ + "/state");
  EXPECT_EQ(ParseCheckpointNote(*state->Note(kOrigin))->size, 6u);
}

TEST_F(WitnessHttpTest, PusherReportsAForkedLog) {
  log_.Grow(4);
  WitnessPusher pusher(PusherOptions(&log_));
  ASSERT_TRUE(pusher.PushOnce().ok());
  Log fork("fork");  // same key, other leaves
  fork.Grow(4);
  WitnessPusher forked(PusherOptions(&fork));
  absl::Status s = forked.PushOnce();
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted) << s;
  EXPECT_THAT(s.message(), HasSubstr(url_));
  EXPECT_EQ(stored_.size(), 1u);
}

TEST_F(WitnessHttpTest, PusherReportsAWitnessThatStaysDownOnce) {
  log_.Grow(3);
  WitnessPusherOptions o = PusherOptions(&log_);
  std::vector<std::string> said;
  o.log = [&said](const std::string& m) { said.push_back(m); };
  server_.reset();  // the witness is down
  WitnessPusher pusher(std::move(o));
  EXPECT_EQ(pusher.PushOnce().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(pusher.PushOnce().code(), absl::StatusCode::kUnavailable);
  ASSERT_EQ(said.size(), 1u);
  EXPECT_THAT(said[0], HasSubstr(url_));
  StartWitness();  // back, on another port: the pusher still has the old URL
  EXPECT_EQ(pusher.PushOnce().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(said.size(), 1u) << said.back();
  EXPECT_TRUE(stored_.empty());
}

TEST(ParseWitnessUrlTest, KeyAtUrl) {
  Cosigner c = *Cosigner::New("w.test/1", *Ed25519Signer::FromSeed(std::string(32, 3)));
  auto w = ParseWitnessUrl(c.VerifierKey() + "@http://127.0.0.1:9/w/");
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->url, "http://127.0.0.1:9/w");
  EXPECT_EQ(w->vkey, c.VerifierKey());
  EXPECT_EQ(ParseWitnessUrl("http://127.0.0.1:9").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseWitnessUrl(c.VerifierKey() + "@ftp://x").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseWitnessUrl("nokey@http://x").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace caseledger
