// The transparency protocols against the real binaries (services/tlog/):
// caseledger_server, started as tools/serve.sh starts it (payloads
// encrypted) plus --tiles_listen and --witness_url, and ledger_witness
// --listen serving C2SP tlog-witness. Checks that tiles rebuild the signed
// root and prove inclusion of records whose bundles carry no plaintext, that
// each new checkpoint is pushed to the witness and its cosignature stored,
// and that both survive kill -9 and a restart.
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ledger/checkpoint.h"
#include "ledger/cosignature.h"
#include "ledger/hash.h"
#include "ledger/merkle_verify.h"
#include "ledger/signer.h"
#include "proto/audit.grpc.pb.h"
#include "proto/ledger.grpc.pb.h"
#include "services/tlog/http_client.h"
#include "tests/dev_certs.h"
#include "tests/server_process.h"
#include "tests/subprocess.h"
#include "tests/test_events.h"
#include "tests/witness_process.h"
#include "tests/test_util.h"

namespace caseledger {
namespace {

using ::testing::HasSubstr;
using testing::ServerProcess;
using testing::WitnessProcess;

constexpr char kServer[] = "services/api/caseledger_server";
constexpr char kWitness[] = "tools/ledger_witness";
constexpr char kOrigin[] = "tlog-e2e.test/log";
constexpr char kWitnessName[] = "tlog-e2e.test/w1";


v1::AppendRequest EntryReq(const std::string& id, bool open) {
  v1::AppendRequest r =
      testing::EventRequest(id, "case-tlog", "client-tlog", "tlog-e2e", testing::kNoteAt);
  if (open) {
    testing::SetCaseOpened(r.mutable_event());
  } else {
    testing::SetNote(r.mutable_event());
    r.mutable_event()->mutable_record_entry_written()->set_text("confidential note " + id);
  }
  return r;
}

class TlogE2ETest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::NewTempDir("tlog_e2e");
    auto log = Ed25519Signer::LoadOrCreate(dir_ + "/log.key");
    ASSERT_TRUE(log.ok()) << log.status();
    log_vkey_ = NoteSigner::New(kOrigin, *std::move(log))->VerifierKey();
    auto w = Ed25519Signer::LoadOrCreate(dir_ + "/witness.key");
    ASSERT_TRUE(w.ok()) << w.status();
    witness_vkey_ = Cosigner::New(kWitnessName, *std::move(w))->VerifierKey();
    // A master key as tools/serve.sh makes one: payloads encrypted.
    master_key_file_ = testing::WriteTestMasterKey(dir_);
  }

  void StartWitness() {
    witness_ = std::make_unique<WitnessProcess>(std::vector<std::string>{
        kWitness, "--listen=127.0.0.1:0", "--log_key=" + log_vkey_,
        "--witness_key=" + dir_ + "/witness.key", std::string("--witness_name=") + kWitnessName,
        "--state=" + dir_ + "/witness.state"});
    ASSERT_FALSE(witness_->url().empty());
  }

  // Mutual TLS on the gRPC port (the HTTP listeners stay loopback plain
  // HTTP): a producer appends, an auditor reads cosignatures.
  void UseMutualTls() {
    absl::StatusOr<testing::DevTls> tls =
        testing::MakeDevTls({"producer/tlog-e2e", "auditor/aud-1"});
    ASSERT_TRUE(tls.ok()) << tls.status();
    tls_ = *std::move(tls);
    std::ofstream(dir_ + "/authz.conf") << "producer tlog-e2e housing\n";
  }

  void StartServer() {
    server_.reset();
    std::vector<std::string> flags = {"--signing_key=" + dir_ + "/log.key",
                                      std::string("--origin=") + kOrigin,
                                      "--checkpoint_interval=1ms",
                                      "--verify_interval=0s",
                                      "--tiles_listen=127.0.0.1:0",
                                      "--witness_url=" + witness_vkey_ + "@" + witness_->url(),
                                      "--witness_push_interval=20ms"};
    // As tools/serve.sh starts it, with TLS flags or without (a master key
    // either way).
    if (tls_) {
      flags.push_back("--authz_config=" + dir_ + "/authz.conf");
    } else {
      flags.push_back("--master_key_file=" + master_key_file_);
    }
    auto s = tls_ ? testing::StartTlsServer(*tls_, dir_ + "/data", flags)
                  : ServerProcess::Start(kServer, dir_ + "/data", flags);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
    const std::string err = server_->Stderr();
    size_t at = err.find("tiles (C2SP tlog-tiles) on ");
    ASSERT_NE(at, std::string::npos) << err;
    size_t start = at + std::string("tiles (C2SP tlog-tiles) on ").size();
    tiles_ = err.substr(start, err.find('\n', start) - start);
    if (!tls_) {
      auto channel = grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials());
      ledger_ = v1::LedgerService::NewStub(channel);
      witness_service_ = v1::WitnessService::NewStub(channel);
    } else {
      ledger_ = v1::LedgerService::NewStub(tls_->Channel(server_->address(), "producer-tlog-e2e"));
      witness_service_ =
          v1::WitnessService::NewStub(tls_->Channel(server_->address(), "auditor-aud-1"));
    }
  }

  void Append(int from, int n) {
    grpc::ClientContext ctx;
    v1::AppendBatchRequest req;
    for (int i = from; i < from + n; ++i) {
      *req.add_requests() = EntryReq(absl::StrCat("ev-", i), i == 0);
    }
    v1::AppendBatchResponse resp;
    grpc::Status s = ledger_->AppendBatch(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }

  HttpAnswer Get(const std::string& path) {
    absl::StatusOr<HttpAnswer> a = HttpGet(tiles_ + path, absl::Seconds(10));
    EXPECT_TRUE(a.ok()) << a.status();
    return a.ok() ? *a : HttpAnswer();
  }

  // The tiles' checkpoint once it reaches `size` (checkpoints follow commits
  // within --checkpoint_interval; waits for that outcome, up to 30 s).
  Checkpoint CheckpointAtLeast(uint64_t size, std::string* note) {
    auto verifier = NoteVerifier::FromVerifierKey(log_vkey_);
    for (int i = 0; i < 3000; ++i) {
      HttpAnswer a = Get("/checkpoint");
      if (a.status == 200) {
        absl::StatusOr<Checkpoint> c = OpenCheckpoint(a.body, *verifier, kOrigin);
        EXPECT_TRUE(c.ok()) << c.status();
        EXPECT_EQ(a.cache_control, "no-cache");
        if (c.ok() && c->size >= size) {
          *note = a.body;
          return *c;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << "no checkpoint of size " << size << " on the tiles listener";
    return {};
  }

  // The witness's cosignature stored by the server for `size` (pushed by
  // the server, up to 30 s).
  absl::StatusOr<Cosignature> StoredCosignature(uint64_t size) {
    auto verifier = CosignatureVerifier::FromVerifierKey(witness_vkey_);
    absl::Status last;
    for (int i = 0; i < 3000; ++i) {
      grpc::ClientContext ctx;
      v1::GetCosignedCheckpointRequest req;
      req.set_size(size);
      v1::CosignedCheckpoint resp;
      grpc::Status s = witness_service_->GetCosignedCheckpoint(&ctx, req, &resp);
      if (s.ok()) {
        absl::StatusOr<Cosignature> cs = verifier->Verify(resp.checkpoint().note());
        if (cs.ok()) return cs;
        last = cs.status();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return absl::DeadlineExceededError(
        absl::StrCat("no cosignature at ", size, ": ", last.ToString()));
  }

  // From tiles alone (tree under 256 leaves: one partial level-0 tile and
  // one entry bundle): the root, and each entry's inclusion.
  void CheckTiles(const Checkpoint& cp) {
    ASSERT_LT(cp.size, 256u);
    const std::string width = absl::StrCat(".p/", cp.size);
    HttpAnswer tile = Get("/tile/0/000" + width);
    ASSERT_EQ(tile.status, 200) << tile.body;
    EXPECT_EQ(tile.content_type, "application/octet-stream");
    EXPECT_THAT(tile.cache_control, HasSubstr("immutable"));
    ASSERT_EQ(tile.body.size(), cp.size * 32);
    HttpAnswer bundle = Get("/tile/entries/000" + width);
    ASSERT_EQ(bundle.status, 200) << bundle.body;
    std::vector<Hash> leaves;
    size_t pos = 0;
    while (pos + 2 <= bundle.body.size()) {
      size_t len = (static_cast<uint8_t>(bundle.body[pos]) << 8) |
                   static_cast<uint8_t>(bundle.body[pos + 1]);
      leaves.push_back(LeafHash(bundle.body.substr(pos + 2, len)));
      pos += 2 + len;
    }
    ASSERT_EQ(leaves.size(), cp.size);
    for (uint64_t i = 0; i < cp.size; ++i) {
      EXPECT_EQ(tile.body.substr(i * 32, 32), AsBytes(leaves[i])) << "leaf " << i;
    }
    // RFC 9162 MTH over the leaf hashes, and PATH for each leaf.
    std::function<Hash(size_t, size_t)> mth = [&](size_t a, size_t b) -> Hash {
      if (b - a == 1) return leaves[a];
      size_t k = 1;
      while (k * 2 < b - a) k *= 2;
      return NodeHash(mth(a, a + k), mth(a + k, b));
    };
    std::function<std::vector<Hash>(size_t, size_t, size_t)> path =
        [&](size_t m, size_t a, size_t b) -> std::vector<Hash> {
      if (b - a == 1) return {};
      size_t k = 1;
      while (k * 2 < b - a) k *= 2;
      std::vector<Hash> p = m < a + k ? path(m, a, a + k) : path(m, a + k, b);
      p.push_back(m < a + k ? mth(a + k, b) : mth(a, a + k));
      return p;
    };
    EXPECT_EQ(mth(0, cp.size), cp.root);
    for (uint64_t m = 0; m < cp.size; ++m) {
      EXPECT_TRUE(VerifyInclusion(leaves[m], m, cp.size, path(m, 0, cp.size), cp.root).ok());
    }
    // Commitments only: the entries hold no payload text.
    EXPECT_FALSE(absl::StrContains(bundle.body, "confidential note"));
    // Record format 2 (the default with a master key, ledger/BLINDING.md):
    // the entries carry tags, never the client's or the case's id.
    EXPECT_FALSE(absl::StrContains(bundle.body, "client-tlog"));
    EXPECT_FALSE(absl::StrContains(bundle.body, "case-tlog"));
    // Nothing beyond the signed size.
    EXPECT_EQ(Get(absl::StrCat("/tile/0/000.p/", cp.size + 1)).status, 404);
    EXPECT_EQ(Get("/tile/0/000").status, 404);
  }

  std::string dir_, log_vkey_, witness_vkey_, tiles_, master_key_file_;
  std::optional<testing::DevTls> tls_;  // set by UseMutualTls
  std::unique_ptr<WitnessProcess> witness_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<v1::LedgerService::Stub> ledger_;
  std::unique_ptr<v1::WitnessService::Stub> witness_service_;
};

TEST_F(TlogE2ETest, TilesAndWitnessPushOnTheDefaultServerAndAfterKill9) {
  StartWitness();
  StartServer();
  Append(0, 5);
  std::string note;
  Checkpoint cp = CheckpointAtLeast(5, &note);
  CheckTiles(cp);
  absl::StatusOr<Cosignature> cs = StoredCosignature(cp.size);
  ASSERT_TRUE(cs.ok()) << cs.status() << "\n" << server_->Stderr();

  // The witness holds that size now: a stale old size gets 409 and the size.
  {
    std::string body = "old 0\n\n" + note;
    absl::StatusOr<HttpAnswer> a =
        HttpPost(witness_->url() + "/add-checkpoint", body, absl::Seconds(10));
    ASSERT_TRUE(a.ok()) << a.status();
    if (a->status == 409) {
      EXPECT_EQ(a->content_type, "text/x.tlog.size");
      uint64_t held = 0;
      ASSERT_TRUE(absl::SimpleAtoi(absl::StripSuffix(a->body, "\n"), &held)) << a->body;
      EXPECT_GE(held, cp.size);
    } else {
      ADD_FAILURE() << "got " << a->status << " " << a->body;
    }
  }

  // kill -9 and restart: the server's pusher starts from old size 0, learns
  // the witness's size from its 409, and gets the next checkpoint cosigned.
  ASSERT_EQ(kill(server_->pid(), SIGKILL), 0);
  StartServer();
  Append(5, 7);
  Checkpoint after = CheckpointAtLeast(12, &note);
  CheckTiles(after);
  absl::StatusOr<Cosignature> again = StoredCosignature(after.size);
  ASSERT_TRUE(again.ok()) << again.status() << "\n" << server_->Stderr();
  EXPECT_GE(again->timestamp, cs->timestamp);
}

TEST_F(TlogE2ETest, TilesAndWitnessPushWithMutualTls) {
  UseMutualTls();
  StartWitness();
  StartServer();
  Append(0, 3);
  std::string note;
  Checkpoint cp = CheckpointAtLeast(3, &note);
  CheckTiles(cp);
  absl::StatusOr<Cosignature> cs = StoredCosignature(cp.size);
  ASSERT_TRUE(cs.ok()) << cs.status() << "\n" << server_->Stderr();
}

}  // namespace
}  // namespace caseledger
