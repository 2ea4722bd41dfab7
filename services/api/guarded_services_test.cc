// Every handler of a service the AuthzInterceptor guards (AccessService,
// AuditService, WitnessService, KeyAdminService) returns the refusal before
// doing any work: the real services behind the interceptor, over mutual TLS
// with certificates made at test time, on an encrypted ledger.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <gtest/gtest.h>

#include <algorithm>

#include <atomic>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "google/protobuf/descriptor.h"
#include "ledger/clock.h"
#include "ledger/cosignature.h"
#include "ledger/crypto.h"
#include "ledger/key_store.h"
#include "ledger/rocks_store.h"
#include "ledger/signer.h"
#include "proto/audit.grpc.pb.h"
#include "proto/keys.grpc.pb.h"
#include "services/api/access_guard.h"
#include "services/api/access_service.h"
#include "services/api/audit_service.h"
#include "services/api/authz_interceptor.h"
#include "services/api/event_codec.h"
#include "services/api/key_admin_service.h"
#include "tests/dev_certs.h"
#include "tests/subprocess.h"
#include "tests/test_util.h"

namespace caseledger {
namespace {

// Counts the calls to Now(): AuditService's GetMetrics asks for the time
// once it has read the latest checkpoint.
class CountingClock : public Clock {
 public:
  absl::Time Now() const override {
    calls_.fetch_add(1);
    return absl::Now();
  }
  int calls() const { return calls_.load(); }

 private:
  mutable std::atomic<int> calls_{0};
};

constexpr char kSubject[] = "client-case-1";  // testing::TestEvent's subject

class GuardedServicesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string dir = testing::NewTempDir("guarded");
    certs_ = dir + "/certs";
    testing::CommandResult made = testing::RunCommand(
        {"/usr/bin/env", "bash", "tools/make_dev_certs.sh", certs_, "producer/intake",
         "auditor/aud-all", "admin/ops-1"});
    ASSERT_EQ(made.exit_code, 0) << made.err;

    // An encrypted ledger holding one sealed record of kSubject, and a
    // signed checkpoint.
    auto master = AeadKey::FromBytes(std::string(32, '\x07'));
    ASSERT_TRUE(master.ok());
    auto db = testing::OpenEncryptedTestLedger(dir + "/ledger", *master);
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = *std::move(db);
    keys_ = db_.keys.get();
    ledger_ = db_.ledger.get();
    ASSERT_TRUE(ledger_->Append({testing::TestEvent("e-1", "case-1"), std::nullopt}).ok());
    auto checkpoint = ledger_->Checkpoint();
    ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
    checkpoint_ = *checkpoint;

    gate_ = std::make_unique<CaseGate>(ledger_);
    directory_ = std::make_unique<GateCaseDirectory>(gate_.get());
    auto config = ParseAuthzConfig("audit_grant aud-all *\n");
    ASSERT_TRUE(config.ok());
    authz_ = std::make_unique<Authorizer>(*config, directory_.get());
    guard_ = std::make_unique<AccessGuard>(authz_.get(), directory_.get(), gate_.get(),
                                           ledger_, AccessGuardOptions());

    auto witness_key = Ed25519Signer::Generate();
    ASSERT_TRUE(witness_key.ok());
    auto cosigner = Cosigner::New("witness.test/w1", *std::move(witness_key));
    ASSERT_TRUE(cosigner.ok()) << cosigner.status();
    cosigner_ = std::make_unique<Cosigner>(*std::move(cosigner));
    auto trusted = CosignatureVerifier::FromVerifierKey(cosigner_->VerifierKey());
    ASSERT_TRUE(trusted.ok());
    std::vector<CosignatureVerifier> witnesses;
    witnesses.push_back(*std::move(trusted));
    witness_ = std::make_unique<WitnessServiceImpl>(ledger_, std::move(witnesses));
    AuditServiceOptions audit_options;
    audit_options.note_verifier = &note_verifier_;
    audit_options.origin = testing::kTestOrigin;
    audit_options.clock = &clock_;
    audit_ = std::make_unique<AuditServiceImpl>(ledger_, witness_.get(), audit_options);
    access_ = std::make_unique<AccessServiceImpl>(ledger_, gate_.get());
    key_admin_ =
        std::make_unique<KeyAdminServiceImpl>(keys_, ledger_, nullptr, guard_.get());

    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", testing::DevServerCredentials(certs_), &port_);
    builder.RegisterService(witness_.get());
    builder.RegisterService(audit_.get());
    builder.RegisterService(access_.get());
    builder.RegisterService(key_admin_.get());
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
    auto factory = std::make_unique<AuthzInterceptorFactory>(guard_.get(), std::set<std::string>());
    factory_ = factory.get();
    creators.push_back(std::move(factory));
    builder.experimental().SetInterceptorCreators(std::move(creators));
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
  }

  void TearDown() override {
    if (server_) server_->Shutdown();
  }

  std::shared_ptr<grpc::Channel> Channel(const std::string& who) {
    return testing::DevChannel("127.0.0.1:" + std::to_string(port_), certs_, who);
  }

  static std::unique_ptr<grpc::ClientContext> Context() {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return ctx;
  }

  // `method` called by `who` with `body` as the serialized request.
  grpc::Status Call(const std::string& who, const std::string& method, const std::string& body) {
    grpc::GenericStub stub(Channel(who));
    auto ctx = Context();
    grpc::Slice slice(body.data(), body.size());
    grpc::ByteBuffer req(&slice, 1);
    grpc::ByteBuffer resp;
    grpc::Status status;
    absl::Notification done;
    stub.UnaryCall(ctx.get(), method, grpc::StubOptions(), &req, &resp, [&](grpc::Status s) {
      status = std::move(s);
      done.Notify();
    });
    done.WaitForNotification();
    return status;
  }

  // "stream event_type" of each record from `from` on.
  std::vector<std::string> RecordsFrom(uint64_t from) {
    std::vector<std::string> out;
    for (uint64_t seq = from; seq < ledger_->Size(); ++seq) {
      auto view = ledger_->Read(seq);
      EXPECT_TRUE(view.ok()) << view.status();
      if (view.ok()) out.push_back(view->record.stream_id + " " + view->record.event_type);
    }
    return out;
  }

  std::string certs_;
  NoteVerifier note_verifier_ = testing::TestNoteVerifier();
  CountingClock clock_;
  testing::TestLedger db_;
  KeyStore* keys_ = nullptr;
  Ledger* ledger_ = nullptr;
  StoredCheckpoint checkpoint_;
  std::unique_ptr<CaseGate> gate_;
  std::unique_ptr<GateCaseDirectory> directory_;
  std::unique_ptr<Authorizer> authz_;
  std::unique_ptr<AccessGuard> guard_;
  std::unique_ptr<Cosigner> cosigner_;
  std::unique_ptr<WitnessServiceImpl> witness_;
  std::unique_ptr<AuditServiceImpl> audit_;
  std::unique_ptr<AccessServiceImpl> access_;
  std::unique_ptr<KeyAdminServiceImpl> key_admin_;
  AuthzInterceptorFactory* factory_ = nullptr;  // owned by server_
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

// Every method of every guarded service, from the generated descriptors (so
// a method added later is covered too), refused to a producer: each handler
// answers with the refusal itself, and each refusal is recorded exactly once.
TEST_F(GuardedServicesTest, EveryHandlerReturnsTheRefusalFirst) {
  const uint64_t before = ledger_->Size();
  std::vector<std::string> methods;
  for (const char* name : {"caseledger.v1.AccessService", "caseledger.v1.AuditService",
                           "caseledger.v1.WitnessService", "caseledger.v1.KeyAdminService"}) {
    const auto* service = google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(name);
    ASSERT_NE(service, nullptr) << name;
    for (int i = 0; i < service->method_count(); ++i) {
      methods.push_back(absl::StrCat("/", name, "/", service->method(i)->name()));
    }
  }
  // Public by design (AUTHZ.md): a checkpoint and its cosignature lines.
  methods.erase(std::find(methods.begin(), methods.end(),
                          "/caseledger.v1.WitnessService/GetCosignedCheckpoint"));
  ASSERT_GE(methods.size(), 8u);
  for (const std::string& method : methods) {
    grpc::Status s = Call("producer-intake", method, "");
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << method;
    EXPECT_EQ(s.error_message(),
              absl::StrCat("rule producer.deny: ", method, " is not allowed for producer intake"));
  }
  EXPECT_EQ(factory_->unheeded_refusals(), 0u)
      << "a handler ran for a refused call (its stderr line names it)";
  EXPECT_EQ(clock_.calls(), 0);
  EXPECT_EQ(RecordsFrom(before),
            std::vector<std::string>(methods.size(), "@access access_refused"));
}

// A refused VerifyRange, GetMetrics or witness call does no work and changes
// nothing; the same calls by an auditor are served.
TEST_F(GuardedServicesTest, RefusedAuditAndWitnessCallsDoNoWork) {
  auto note = cosigner_->Cosign(checkpoint_.note, absl::ToUnixSeconds(absl::Now()));
  ASSERT_TRUE(note.ok()) << note.status();
  const uint64_t before = ledger_->Size();

  // An admin may not use either service.
  v1::VerifyRangeRequest verify;  // the whole ledger
  v1::AddCosignatureRequest cosign;
  cosign.set_note(*note);
  for (const auto& [method, body] : std::vector<std::pair<std::string, std::string>>{
           {"/caseledger.v1.AuditService/VerifyRange", verify.SerializeAsString()},
           {"/caseledger.v1.AuditService/GetMetrics", ""},
           {"/caseledger.v1.WitnessService/AddCosignature", cosign.SerializeAsString()}}) {
    grpc::Status s = Call("admin-ops-1", method, body);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << method;
    EXPECT_EQ(s.error_message(),
              absl::StrCat("rule admin.deny: ", method, " is not allowed for admin ops-1"));
  }
  EXPECT_EQ(factory_->unheeded_refusals(), 0u);
  EXPECT_EQ(clock_.calls(), 0) << "GetMetrics ran for a refused caller";
  auto stored = ledger_->store().Cosignatures(checkpoint_.size);
  ASSERT_TRUE(stored.ok());
  EXPECT_TRUE(stored->empty());
  EXPECT_EQ(RecordsFrom(before), std::vector<std::string>(3, "@access access_refused"));

  // The auditor is served.
  auto audit = v1::AuditService::NewStub(Channel("auditor-aud-all"));
  v1::VerifyRangeResponse verified;
  grpc::Status s = audit->VerifyRange(Context().get(), verify, &verified);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(verified.ok());
  EXPECT_EQ(verified.records_checked(), ledger_->Size());
  v1::LedgerMetrics metrics;
  s = audit->GetMetrics(Context().get(), v1::GetMetricsRequest(), &metrics);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_GT(clock_.calls(), 0);
  auto witness = v1::WitnessService::NewStub(Channel("auditor-aud-all"));
  v1::AddCosignatureResponse added;
  s = witness->AddCosignature(Context().get(), cosign, &added);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(added.stored_size(), 1);
  EXPECT_EQ(factory_->unheeded_refusals(), 0u);
}

// A refused EraseSubject destroys no key; the admin's erases it.
TEST_F(GuardedServicesTest, RefusedEraseSubjectDestroysNothing) {
  v1::EraseSubjectRequest req;
  req.set_subject_id(kSubject);
  req.set_authority("gdpr-art17-request-7");
  const uint64_t before = ledger_->Size();
  grpc::Status s = Call("auditor-aud-all", "/caseledger.v1.KeyAdminService/EraseSubject",
                        req.SerializeAsString());
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(s.error_message(),
            "rule auditor.deny: /caseledger.v1.KeyAdminService/EraseSubject is not allowed for "
            "auditor aud-all");
  EXPECT_EQ(factory_->unheeded_refusals(), 0u);
  EXPECT_EQ(RecordsFrom(before), std::vector<std::string>{"@access access_refused"});
  auto record = ledger_->Read(0);
  ASSERT_TRUE(record.ok()) << record.status();
  EXPECT_FALSE(record->erased);
  EXPECT_TRUE(record->openings.has_value());

  auto admin = v1::KeyAdminService::NewStub(Channel("admin-ops-1"));
  v1::EraseSubjectResponse erased;
  s = admin->EraseSubject(Context().get(), req, &erased);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(erased.keys_destroyed(), 1u);
  record = ledger_->Read(0);
  ASSERT_TRUE(record.ok()) << record.status();
  EXPECT_TRUE(record->erased);
  // The erasure is recorded, naming the admin from the certificate.
  auto erasure = ledger_->Read(erased.erasure_seq());
  ASSERT_TRUE(erasure.ok()) << erasure.status();
  auto wire = ToWireRecord(*erasure);
  ASSERT_TRUE(wire.ok()) << wire.status();
  EXPECT_EQ(wire->stream_id(), "@keys");
  EXPECT_EQ(wire->event().subject_erased().erased_by(), "admin/ops-1");
  EXPECT_EQ(wire->event().subject_erased().authority(), "gdpr-art17-request-7");
}

}  // namespace
}  // namespace caseledger
