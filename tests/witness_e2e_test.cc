// Witness drills against the real caseledger_server and the ledger_witness
// binary: growth is cosigned and served back; a rolled-back data directory
// and a forked history signed with the same key are refused with the sizes
// and roots named, and the witness's state is left as it was; AuditService
// finds a byte flipped in a stored record.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "ledger/checkpoint.h"
#include "ledger/cosignature.h"
#include "ledger/hash.h"
#include "ledger/signer.h"
#include "ledger/subject_index.h"
#include "ledger/witness.h"
#include "proto/audit.grpc.pb.h"
#include "proto/ledger.grpc.pb.h"
#include "tests/server_process.h"
#include "tests/subprocess.h"
#include "tests/test_events.h"
#include "tests/test_util.h"

namespace caseledger {
namespace {

using ::testing::HasSubstr;
using testing::ServerProcess;

constexpr char kServer[] = "services/api/caseledger_server";
constexpr char kWitness[] = "tools/ledger_witness";
constexpr char kLedgerctl[] = "tools/ledgerctl";
constexpr char kOrigin[] = "witness-e2e.test/log";
constexpr char kWitnessName[] = "witness-e2e.test/w1";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

v1::AppendRequest OpenReq(const std::string& stream) {
  return testing::OpenCaseRequest("open-" + stream, stream, "client-" + stream, "witness-e2e");
}

v1::AppendRequest EntryReq(const std::string& id, const std::string& stream) {
  return testing::NoteRequest(id, stream, "client-" + stream, "witness-e2e");
}

class WitnessE2ETest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::NewTempDir("witness_e2e");
    log_key_ = dir_ + "/log.key";
    witness_key_ = dir_ + "/witness.key";
    state_ = dir_ + "/witness.state";
    auto log = Ed25519Signer::LoadOrCreate(log_key_);
    ASSERT_TRUE(log.ok()) << log.status();
    auto log_signer = NoteSigner::New(kOrigin, *std::move(log));
    ASSERT_TRUE(log_signer.ok());
    log_vkey_ = log_signer->VerifierKey();
    auto w = Ed25519Signer::LoadOrCreate(witness_key_);
    ASSERT_TRUE(w.ok()) << w.status();
    auto cosigner = Cosigner::New(kWitnessName, *std::move(w));
    ASSERT_TRUE(cosigner.ok());
    witness_vkey_ = cosigner->VerifierKey();
  }

  // As tools/serve.sh starts it on loopback (payloads encrypted under a
  // master key, record format 2), plus the witness drills' flags.
  void Start(const std::string& data_dir, std::vector<std::string> extra = {}) {
    std::vector<std::string> flags = {"--master_key_file=" + testing::WriteTestMasterKey(dir_),
                                      "--signing_key=" + log_key_,
                                      std::string("--origin=") + kOrigin,
                                      "--witness_keys=" + witness_vkey_,
                                      // Every commit with new records signs a checkpoint.
                                      "--checkpoint_interval=1ms", "--verify_interval=0s"};
    flags.insert(flags.end(), extra.begin(), extra.end());
    server_.reset();
    auto s = ServerProcess::Start(kServer, data_dir, flags);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
    auto channel = grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials());
    ledger_ = v1::LedgerService::NewStub(channel);
    witness_ = v1::WitnessService::NewStub(channel);
    audit_ = v1::AuditService::NewStub(channel);
  }

  void Stop() {
    ASSERT_NE(server_, nullptr);
    server_->Stop(SIGTERM);
    server_.reset();
  }

  // One batch (one group commit, one checkpoint): opens `stream` when
  // `open`, then `n` entries with ids "<tag>-<i>".
  void AppendBatch(const std::string& stream, bool open, int n, const std::string& tag) {
    grpc::ClientContext ctx;
    v1::AppendBatchRequest req;
    if (open) *req.add_requests() = OpenReq(stream);
    for (int i = 0; i < n; ++i) *req.add_requests() = EntryReq(absl::StrCat(tag, "-", i), stream);
    v1::AppendBatchResponse resp;
    grpc::Status s = ledger_->AppendBatch(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }

  v1::Checkpoint Latest() {
    grpc::ClientContext ctx;
    v1::Checkpoint cp;
    grpc::Status s = ledger_->GetCheckpoint(&ctx, v1::GetCheckpointRequest(), &cp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return cp;
  }

  testing::CommandResult RunWitness(const std::string& server = "") {
    return testing::RunCommand(
        {kWitness, "--server=" + (server.empty() ? server_->address() : server),
         "--log_key=" + log_vkey_, "--witness_key=" + witness_key_,
         std::string("--witness_name=") + kWitnessName, "--state=" + state_, "--once"});
  }

  std::string dir_, log_key_, witness_key_, state_, log_vkey_, witness_vkey_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<v1::LedgerService::Stub> ledger_;
  std::unique_ptr<v1::WitnessService::Stub> witness_;
  std::unique_ptr<v1::AuditService::Stub> audit_;
};

std::string Describe(const testing::CommandResult& r) {
  return absl::StrCat("exit ", r.exit_code, "\n--- stdout:\n", r.out, "--- stderr:\n", r.err);
}

TEST_F(WitnessE2ETest, CosignsGrowthAndTheServerServesTheCosignatures) {
  Start(dir_ + "/a");
  AppendBatch("case-1", true, 4, "a");  // size 5
  testing::CommandResult r = RunWitness();
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr(absl::StrCat("cosigned ", kOrigin, " size 5 root ")));
  EXPECT_THAT(r.out, HasSubstr("first checkpoint seen: verified from the empty log"));
  EXPECT_THAT(r.out, HasSubstr("server stored it"));

  AppendBatch("case-1", false, 5, "b");  // size 10
  r = RunWitness();
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr("size 10 root "));
  EXPECT_THAT(r.out, HasSubstr("previously size 5"));
  EXPECT_THAT(ReadFile(state_), HasSubstr(Latest().note()));

  // The server serves the checkpoint with the witness's line; both the log's
  // and the witness's signatures verify.
  grpc::ClientContext ctx;
  v1::GetCosignedCheckpointRequest req;
  req.set_cosigned_only(true);
  v1::CosignedCheckpoint cc;
  grpc::Status s = witness_->GetCosignedCheckpoint(&ctx, req, &cc);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(cc.checkpoint().size(), 10u);
  ASSERT_EQ(cc.cosignatures_size(), 1);
  auto cv = CosignatureVerifier::FromVerifierKey(witness_vkey_);
  ASSERT_TRUE(cv.ok());
  EXPECT_EQ(cc.cosignatures(0).witness(),
            absl::StrCat(kWitnessName, "+",
                         witness_vkey_.substr(std::string(kWitnessName).size() + 1, 8)));
  absl::StatusOr<Cosignature> got = cv->Verify(cc.checkpoint().note());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->timestamp, cc.cosignatures(0).timestamp());
  auto lv = NoteVerifier::FromVerifierKey(log_vkey_);
  ASSERT_TRUE(lv.ok());
  EXPECT_TRUE(OpenCheckpoint(cc.checkpoint().note(), *lv, kOrigin).ok());
  // The size-5 checkpoint kept its own cosignature.
  grpc::ClientContext ctx5;
  v1::GetCosignedCheckpointRequest req5;
  req5.set_size(5);
  ASSERT_TRUE(witness_->GetCosignedCheckpoint(&ctx5, req5, &cc).ok());
  EXPECT_EQ(cc.cosignatures_size(), 1);

  // A client checks the log's signature and a witness quorum with ledgerctl.
  testing::CommandResult cli =
      testing::RunCommand({kLedgerctl, "--server=" + server_->address(), "cosigned",
                           "--key=" + log_vkey_, "--witness_keys=" + witness_vkey_});
  EXPECT_EQ(cli.exit_code, 0) << Describe(cli);
  EXPECT_THAT(cli.out, HasSubstr("OK: checkpoint size 10 root "));
  EXPECT_THAT(cli.out, HasSubstr("cosigned by 1 of 1 trusted witnesses"));
  auto other = Cosigner::New("other.test/w", *Ed25519Signer::Generate());
  ASSERT_TRUE(other.ok());
  cli = testing::RunCommand({kLedgerctl, "--server=" + server_->address(), "cosigned",
                             "--key=" + log_vkey_,
                             "--witness_keys=" + witness_vkey_ + "," + other->VerifierKey()});
  EXPECT_EQ(cli.exit_code, 1) << Describe(cli);
  EXPECT_THAT(cli.err, HasSubstr("got 1 of the 2 trusted witnesses, want at least 2 (missing: "
                                 "other.test/w+"));

  // Metrics see the cosignature and the checkpoint.
  grpc::ClientContext mctx;
  v1::LedgerMetrics m;
  ASSERT_TRUE(audit_->GetMetrics(&mctx, v1::GetMetricsRequest(), &m).ok());
  EXPECT_EQ(m.tree_size(), 10u);
  EXPECT_EQ(m.last_checkpoint_size(), 10u);
  EXPECT_EQ(m.unsigned_records(), 0u);
  EXPECT_EQ(m.last_cosigned_size(), 10u);
  EXPECT_EQ(m.trusted_witnesses(), 1u);
  EXPECT_EQ(m.verified_size(), 0u);  // background verifier off
  EXPECT_EQ(m.verification_lag_records(), 10u);
}

TEST_F(WitnessE2ETest, ServerRefusesBadCosignatures) {
  Start(dir_ + "/a");
  AppendBatch("case-1", true, 2, "a");
  v1::Checkpoint cp = Latest();
  auto add = [&](const std::string& note) {
    grpc::ClientContext ctx;
    v1::AddCosignatureRequest req;
    req.set_note(note);
    v1::AddCosignatureResponse resp;
    return witness_->AddCosignature(&ctx, req, &resp);
  };
  grpc::Status s = add("not a note");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  // A stranger's cosignature.
  auto stranger = Cosigner::New("stranger.test/w", *Ed25519Signer::Generate());
  ASSERT_TRUE(stranger.ok());
  s = add(*stranger->Cosign(cp.note(), 1767225600));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(), HasSubstr("no cosignature line by a witness this server trusts"));
  // The trusted witness's key, but over a checkpoint this log never signed.
  auto key = Ed25519Signer::LoadOrCreate(witness_key_);
  auto w = Cosigner::New(kWitnessName, *std::move(key));
  ASSERT_TRUE(w.ok());
  std::string note = cp.note();
  std::string forged = note;
  forged.replace(forged.find("\n3\n"), 3, "\n4\n");
  s = add(*w->Cosign(forged, 1767225600));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("this log signed no checkpoint at size 4"));
  // Another root at the signed size.
  std::string other_root = note;
  size_t root_at = other_root.find("\n3\n") + 3;
  other_root[root_at] = other_root[root_at] == 'A' ? 'B' : 'A';
  s = add(*w->Cosign(other_root, 1767225600));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("text is not the checkpoint this log signed at size 3"));
  // Dated far in the future.
  s = add(*w->Cosign(note, 4102444800));  // 2100-01-01
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  // A flipped signature byte.
  std::string good = *w->Cosign(note, 1767225600);
  std::string bad = good;
  bad[bad.size() - 10] = bad[bad.size() - 10] == 'A' ? 'B' : 'A';
  s = add(bad);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  // Nothing was stored by any of these.
  grpc::ClientContext ctx;
  v1::GetCosignedCheckpointRequest req;
  req.set_cosigned_only(true);
  v1::CosignedCheckpoint cc;
  EXPECT_EQ(witness_->GetCosignedCheckpoint(&ctx, req, &cc).error_code(),
            grpc::StatusCode::NOT_FOUND);
  // The good one is stored; an older one does not replace it.
  EXPECT_TRUE(add(good).ok());
  EXPECT_TRUE(add(*w->Cosign(note, 1767225000)).ok());
  grpc::ClientContext ctx2;
  ASSERT_TRUE(witness_->GetCosignedCheckpoint(&ctx2, req, &cc).ok());
  ASSERT_EQ(cc.cosignatures_size(), 1);
  EXPECT_EQ(cc.cosignatures(0).timestamp(), 1767225600u);
}

TEST_F(WitnessE2ETest, RefusesARolledBackDataDirectory) {
  const std::string live = dir_ + "/live", old = dir_ + "/old";
  Start(live);
  AppendBatch("case-1", true, 4, "a");  // size 5
  Stop();
  std::filesystem::copy(live, old, std::filesystem::copy_options::recursive);
  Start(live);
  AppendBatch("case-1", false, 5, "b");  // size 10
  testing::CommandResult r = RunWitness();
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  std::string root10 = ToHex(*HashFromBytes(Latest().root_hash()));
  Stop();

  const std::string before = ReadFile(state_);
  Start(old);  // the same key, an older copy of the data
  std::string root5 = ToHex(*HashFromBytes(Latest().root_hash()));
  r = RunWitness();
  EXPECT_EQ(r.exit_code, 3) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr(absl::StrCat("REFUSED: rollback: log ", kOrigin,
                                            " now shows a smaller tree (size 5 root ", root5,
                                            ") than this witness already verified (size 10 root ",
                                            root10, "); refusing to cosign")));
  EXPECT_EQ(ReadFile(state_), before);
  // Nothing was submitted to the rolled-back server.
  grpc::ClientContext ctx;
  v1::GetCosignedCheckpointRequest req;
  req.set_cosigned_only(true);
  v1::CosignedCheckpoint cc;
  grpc::Status s = witness_->GetCosignedCheckpoint(&ctx, req, &cc);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << cc.DebugString();
}

TEST_F(WitnessE2ETest, RefusesAForkSignedWithTheSameKey) {
  Start(dir_ + "/a");
  AppendBatch("case-1", true, 4, "a");  // size 5
  testing::CommandResult r = RunWitness();
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  std::string witnessed = ToHex(*HashFromBytes(Latest().root_hash()));
  Stop();
  const std::string before = ReadFile(state_);

  // Another history under the same key: the same size, another root.
  Start(dir_ + "/fork");
  AppendBatch("case-9", true, 4, "x");  // size 5
  std::string forked = ToHex(*HashFromBytes(Latest().root_hash()));
  ASSERT_NE(forked, witnessed);
  r = RunWitness();
  EXPECT_EQ(r.exit_code, 3) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr(absl::StrCat("REFUSED: fork: log ", kOrigin,
                                            " shows two roots at size 5: witnessed ", witnessed,
                                            ", now ", forked)));
  EXPECT_EQ(ReadFile(state_), before);

  // It grows: a larger tree that does not extend the witnessed one.
  AppendBatch("case-9", false, 3, "y");  // size 8
  std::string root8 = ToHex(*HashFromBytes(Latest().root_hash()));
  r = RunWitness();
  EXPECT_EQ(r.exit_code, 3) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr(absl::StrCat(
                         "REFUSED: fork: log ", kOrigin, " checkpoint size 8 root ", root8,
                         " is not consistent with the witnessed size 5 root ", witnessed)));
  EXPECT_EQ(ReadFile(state_), before);
}

// Between the witness and the real server: serves `forged` as the latest
// checkpoint, and the real server's proofs and subjects transition with the
// transition's end replaced by `forged` (what a log that signs a stale
// subjects root would serve).
class ForgingProxy final : public v1::LedgerService::Service, public v1::WitnessService::Service {
 public:
  ForgingProxy(const std::string& upstream, std::string forged)
      : channel_(grpc::CreateChannel(upstream, grpc::InsecureChannelCredentials())),
        ledger_(v1::LedgerService::NewStub(channel_)),
        witness_(v1::WitnessService::NewStub(channel_)),
        forged_(std::move(forged)) {}

  grpc::Status GetCheckpoint(grpc::ServerContext*, const v1::GetCheckpointRequest*,
                             v1::Checkpoint* resp) override {
    resp->set_note(forged_);
    return grpc::Status::OK;
  }
  grpc::Status GetConsistencyProof(grpc::ServerContext*, const v1::ConsistencyProofRequest* req,
                                   v1::ConsistencyProof* resp) override {
    grpc::ClientContext ctx;
    return ledger_->GetConsistencyProof(&ctx, *req, resp);
  }
  grpc::Status GetSubjectTransition(
      grpc::ServerContext*, const v1::SubjectTransitionRequest* req,
      grpc::ServerWriter<v1::SubjectTransitionChunk>* writer) override {
    grpc::ClientContext ctx;
    auto reader = witness_->GetSubjectTransition(&ctx, *req);
    v1::SubjectTransitionChunk chunk;
    bool first = true;
    while (reader->Read(&chunk)) {
      if (first) chunk.mutable_checkpoint()->set_note(forged_);
      first = false;
      writer->Write(chunk);
    }
    return reader->Finish();
  }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::LedgerService::Stub> ledger_;
  std::unique_ptr<v1::WitnessService::Stub> witness_;
  std::string forged_;
};

// The attack: the log's own key signs a checkpoint with the right
// size and tree root but an older subjects root, which would hide records
// 5..9 from their client's history bundle. The witness refuses it, naming
// both roots, and keeps its state; the honest checkpoint is cosigned.
TEST_F(WitnessE2ETest, RefusesAStaleSubjectsRootSignedWithTheLogKey) {
  Start(dir_ + "/a");
  AppendBatch("case-1", true, 4, "a");  // size 5
  testing::CommandResult r = RunWitness();
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  const std::string before = ReadFile(state_);
  const v1::Checkpoint at5 = Latest();
  AppendBatch("case-1", false, 5, "b");  // size 10
  const v1::Checkpoint at10 = Latest();
  ASSERT_EQ(at10.size(), 10u);

  auto body = [](const std::string& note) {
    absl::StatusOr<SignedNote> n = ParseSignedNote(note);
    EXPECT_TRUE(n.ok()) << n.status();
    absl::StatusOr<Checkpoint> c = ParseCheckpointBody(n->text);
    EXPECT_TRUE(c.ok()) << c.status();
    return *c;
  };
  Checkpoint stale = body(at10.note());
  const Checkpoint old = body(at5.note());
  const Hash stale_root = **SubjectRootFromExtensions(old.extensions);
  const Hash true_root = **SubjectRootFromExtensions(stale.extensions);
  stale.extensions = old.extensions;  // size 10's tree, size 5's subjects
  auto key = Ed25519Signer::LoadOrCreate(log_key_);
  ASSERT_TRUE(key.ok());
  auto signer = NoteSigner::New(kOrigin, *std::move(key));
  ASSERT_TRUE(signer.ok());
  absl::StatusOr<std::string> forged = SignCheckpoint(stale, *signer);
  ASSERT_TRUE(forged.ok()) << forged.status();

  ForgingProxy proxy(server_->address(), *forged);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(static_cast<v1::LedgerService::Service*>(&proxy));
  builder.RegisterService(static_cast<v1::WitnessService::Service*>(&proxy));
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  ASSERT_GT(port, 0);

  r = RunWitness(absl::StrCat("127.0.0.1:", port));
  EXPECT_EQ(r.exit_code, 3) << Describe(r);
  EXPECT_THAT(
      r.err, HasSubstr(absl::StrCat("REFUSED: subjects: log ", kOrigin, " checkpoint size 10 root ",
                                    ToHex(stale.root),
                                    " does not follow from size 5: subjects root does "
                                    "not follow from records [5, 10): computed ",
                                    ToHex(true_root), ", checkpoint says ", ToHex(stale_root))));
  EXPECT_EQ(ReadFile(state_), before);
  server->Shutdown();

  r = RunWitness();
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr("size 10 root "));
  EXPECT_THAT(r.out, HasSubstr("subjects checked over 5 records, 1 subjects"));
}

// A client who requires a witness's cosignature on their history: the
// bundle carries the witness's line once the witness has checked the
// checkpoint, and is refused while it has not.
TEST_F(WitnessE2ETest, AClientsHistoryCanRequireTheWitness) {
  Start(dir_ + "/a");
  AppendBatch("case-1", true, 4, "a");  // size 5
  testing::CommandResult r = RunWitness();
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  auto ledgerctl = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {kLedgerctl, "--server=" + server_->address()});
    return testing::RunCommand(args);
  };
  const std::string bundle = dir_ + "/h.bundle";
  const std::vector<std::string> verify = {"verify-history",
                                           bundle,
                                           "--key=" + log_vkey_,
                                           "--subject=client-case-1",
                                           "--witness_keys=" + witness_vkey_,
                                           "--quorum=1"};
  // The latest checkpoint (size 5) is cosigned: the bundle carries the line.
  r = ledgerctl({"history", "--subject=client-case-1", "--out=" + bundle});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  r = ledgerctl(verify);
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr(absl::StrCat("cosignatures OK: 1 of the 1 witnesses you trust (",
                                            kWitnessName, ")")));
  // The history read itself was recorded, so the next bundle is at a newer
  // checkpoint the witness has not seen: refused under the quorum...
  r = ledgerctl({"history", "--subject=client-case-1", "--out=" + bundle, "--current"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  r = ledgerctl(verify);
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("checkpoint cosignatures: "));
  // ...and accepted without it (the log key alone vouches for it).
  r = ledgerctl({"verify-history", bundle, "--key=" + log_vkey_, "--subject=client-case-1"});
  EXPECT_EQ(r.exit_code, 0) << Describe(r);

  // A client who asks for the quorum without waiting is told why not.
  const std::string witness_flags[] = {"--witness_keys=" + witness_vkey_, "--quorum=1"};
  const uint64_t before_refused = Latest().size();
  r = ledgerctl({"history", "--subject=client-case-1", "--out=" + bundle, witness_flags[0],
                 witness_flags[1]});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("is not cosigned as you require"));
  EXPECT_THAT(r.err, HasSubstr("--wait="));
  // Once the witness has run again (it cosigns the newest checkpoint, which
  // records the refused fetch above), the same request succeeds at once.
  // A round may lose a race with a checkpoint signed while it checks one;
  // the next round cosigns the newer one.
  // The refused fetch was recorded; wait for the checkpoint that covers it.
  for (int i = 0; i < 1000 && Latest().size() <= before_refused; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_GT(Latest().size(), before_refused);
  bool cosigned = false;
  std::string last_refusal;
  for (int i = 0; i < 20 && !cosigned; ++i) {
    testing::CommandResult w = RunWitness();
    cosigned = w.exit_code == 0;
    if (!cosigned) last_refusal = Describe(w);
  }
  ASSERT_TRUE(cosigned) << last_refusal;
  testing::CommandResult waited =
      ledgerctl({"history", "--subject=client-case-1", "--out=" + bundle, witness_flags[0],
                 witness_flags[1], "--wait=60s"});
  ASSERT_EQ(waited.exit_code, 0) << Describe(waited);
  r = ledgerctl(verify);
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
}

// A transition of several 768 KB chunks is reassembled and verified, from the
// empty log on first sight and from the remembered checkpoint after.
TEST_F(WitnessE2ETest, VerifiesATransitionStreamedInManyChunks) {
  Start(dir_ + "/a");
  // Size 10000: over 100 bytes a record, so more than one chunk.
  AppendBatch("case-1", true, 9999, "a");
  testing::CommandResult r = RunWitness();
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr("size 10000 root "));
  EXPECT_THAT(r.out, HasSubstr("subjects checked over 10000 records, 1 subjects"));
  AppendBatch("case-2", true, 9999, "b");  // size 20000
  r = RunWitness();
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr("previously size 10000; subjects checked over 10000 records, 1 "
                               "subjects"));
}

TEST_F(WitnessE2ETest, AuditServiceFindsAFlippedByte) {
  const std::string data = dir_ + "/a";
  Start(data);
  AppendBatch("case-1", true, 9, "a");    // 0..9
  AppendBatch("case-1", false, 10, "b");  // 10..19
  {
    grpc::ClientContext ctx;
    v1::VerifyRangeRequest req;
    v1::VerifyRangeResponse resp;
    ASSERT_TRUE(audit_->VerifyRange(&ctx, req, &resp).ok());
    EXPECT_TRUE(resp.ok());
    EXPECT_EQ(resp.to_seq(), 20u);
    EXPECT_EQ(resp.records_checked(), 20u);
    EXPECT_EQ(resp.checkpoints_checked(), 2u);
    EXPECT_EQ(resp.root_hash(), Latest().root_hash());
  }
  Stop();
  const std::string rocks = data + "/ledger";
  auto leaf = testing::RawGet(rocks, "records", testing::SeqKey(7));
  ASSERT_TRUE(leaf.ok()) << leaf.status();
  std::string damaged = *leaf;
  damaged[damaged.size() - 3] ^= 0x01;
  ASSERT_TRUE(testing::RawPut(rocks, "records", testing::SeqKey(7), damaged).ok());

  Start(data, {"--verify_interval=50ms"});
  {
    grpc::ClientContext ctx;
    v1::VerifyRangeRequest req;
    req.set_max_failures(5);
    v1::VerifyRangeResponse resp;
    ASSERT_TRUE(audit_->VerifyRange(&ctx, req, &resp).ok());
    EXPECT_FALSE(resp.ok());
    ASSERT_GE(resp.failures_size(), 1);
    EXPECT_EQ(resp.failures(0).seq(), 7u);
    EXPECT_TRUE(absl::StartsWith(resp.failures(0).message(), "record 7: "))
        << resp.failures(0).message();
  }
  {
    // A range after the damage still verifies: it links to the committed
    // leaf hash of record 7.
    grpc::ClientContext ctx;
    v1::VerifyRangeRequest req;
    req.set_from_seq(8);
    v1::VerifyRangeResponse resp;
    ASSERT_TRUE(audit_->VerifyRange(&ctx, req, &resp).ok());
    EXPECT_TRUE(resp.ok()) << resp.DebugString();
    EXPECT_EQ(resp.records_checked(), 12u);
  }
  {
    grpc::ClientContext ctx;
    v1::VerifyRangeRequest req;
    req.set_from_seq(5);
    req.set_to_seq(21);
    v1::VerifyRangeResponse resp;
    grpc::Status s = audit_->VerifyRange(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr("want from <= to <= the tree size 20"));
  }
  // The same through ledgerctl.
  testing::CommandResult cli =
      testing::RunCommand({kLedgerctl, "--server=" + server_->address(), "audit", "verify-range"});
  EXPECT_EQ(cli.exit_code, 1) << Describe(cli);
  EXPECT_THAT(cli.err, HasSubstr("FAILED: seq 7: record 7: "));
  cli = testing::RunCommand(
      {kLedgerctl, "--server=" + server_->address(), "audit", "verify-range", "--from_seq=8"});
  EXPECT_EQ(cli.exit_code, 0) << Describe(cli);
  EXPECT_THAT(cli.out, HasSubstr("OK: records [8, 20) verified on the server: 12 records"));

  // The background verifier reports the damage in the metrics.
  v1::LedgerMetrics m;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    grpc::ClientContext ctx;
    ASSERT_TRUE(audit_->GetMetrics(&ctx, v1::GetMetricsRequest(), &m).ok());
    if (m.verification_failed()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(m.verification_failed()) << m.DebugString();
  EXPECT_EQ(m.first_bad_seq(), 7u);
  EXPECT_THAT(m.verification_failure(), HasSubstr("record 7: "));
  EXPECT_EQ(m.verified_size(), 0u);
  EXPECT_EQ(m.verification_lag_records(), 20u);
  EXPECT_GT(m.verification_lag_seconds(), 0.0);
  cli = testing::RunCommand({kLedgerctl, "--server=" + server_->address(), "metrics"});
  EXPECT_EQ(cli.exit_code, 1) << Describe(cli);
  EXPECT_THAT(cli.out, HasSubstr("verification_failed           yes, first bad seq 7: "));
}

TEST_F(WitnessE2ETest, BackgroundVerifierCatchesUp) {
  Start(dir_ + "/a", {"--verify_interval=20ms", "--verify_chunk=7"});
  AppendBatch("case-1", true, 19, "a");  // 20 records
  v1::LedgerMetrics m;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    grpc::ClientContext ctx;
    ASSERT_TRUE(audit_->GetMetrics(&ctx, v1::GetMetricsRequest(), &m).ok());
    if (m.verified_size() == 20) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(m.verified_size(), 20u) << m.DebugString();
  EXPECT_FALSE(m.verification_failed());
  EXPECT_EQ(m.verification_lag_records(), 0u);
  EXPECT_EQ(m.verification_lag_seconds(), 0.0);
  EXPECT_EQ(m.last_checkpoint_size(), 20u);
  testing::CommandResult cli =
      testing::RunCommand({kLedgerctl, "--server=" + server_->address(), "--json", "metrics"});
  EXPECT_EQ(cli.exit_code, 0) << Describe(cli);
  EXPECT_THAT(cli.out, HasSubstr("\"verified_size\":\"20\""));
}

// kill -9 at random moments while the witness runs rounds against a growing
// log: its state file is always a whole, log-signed checkpoint, and what it
// remembers never shrinks.
TEST_F(WitnessE2ETest, StateSurvivesKill9) {
  Start(dir_ + "/a");
  AppendBatch("case-1", true, 0, "open");
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; !stop; ++i) AppendBatch("case-1", false, 3, absl::StrCat("w", i));
  });
  auto lv = NoteVerifier::FromVerifierKey(log_vkey_);
  ASSERT_TRUE(lv.ok());
  std::mt19937 rng(42);
  uint64_t last_size = 0;
  int rounds_seen = 0;
  for (int round = 0; round < 12; ++round) {
    std::vector<std::string> args = {kWitness,
                                     "--server=" + server_->address(),
                                     "--log_key=" + log_vkey_,
                                     "--witness_key=" + witness_key_,
                                     std::string("--witness_name=") + kWitnessName,
                                     "--state=" + state_,
                                     "--interval=1ms"};
    pid_t pid = fork();
    if (pid == 0) {
      int log = open((dir_ + "/witness.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      dup2(log, STDOUT_FILENO);
      dup2(log, STDERR_FILENO);
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(kWitness, argv.data());
      _exit(127);
    }
    ASSERT_GT(pid, 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(200 + rng() % 500));
    ::kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "witness exited by itself: " << status;
    absl::StatusOr<WitnessState> state = WitnessState::Load(state_);
    ASSERT_TRUE(state.ok()) << state.status();
    std::optional<std::string> note = state->Note(kOrigin);
    if (!note.has_value()) continue;  // killed before its first round
    absl::StatusOr<Checkpoint> cp = OpenCheckpoint(*note, *lv, kOrigin);
    ASSERT_TRUE(cp.ok()) << cp.status();
    EXPECT_GE(cp->size, last_size);
    if (cp->size > last_size) ++rounds_seen;
    last_size = cp->size;
  }
  stop = true;
  writer.join();
  // The drill did exercise rounds between kills.
  EXPECT_GT(rounds_seen, 1) << ReadFile(dir_ + "/witness.log");
}

}  // namespace
}  // namespace caseledger
