// Every handler of every service (LedgerService, CaseService,
// DisclosureService, AccessService, AuditService, WitnessService,
// KeyAdminService) returns the AuthzInterceptor's refusal before doing any
// work: the real services behind the interceptor, over mutual TLS with
// certificates made at test time, on an encrypted ledger.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <sstream>
#include <tuple>

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
#include "proto/cases.pb.h"
#include "proto/keys.grpc.pb.h"
#include "proto/ledger.pb.h"
#include "services/api/access_service.h"
#include "services/api/audit_service.h"
#include "services/authz/authz_directory.h"
#include "services/authz/authz_interceptor.h"
#include "services/api/case_service.h"
#include "services/append/event_codec.h"
#include "services/api/key_admin_service.h"
#include "services/api/ledger_service.h"
#include "services/readmodel/projections.h"
#include "services/readmodel/projector.h"
#include "tests/dev_certs.h"
#include "tests/subprocess.h"
#include "tests/test_util.h"

namespace caseledger {
namespace {

// Counts the calls to Now(): AuditService's GetMetrics asks for the time
// once it has read the latest checkpoint, CaseService and DisclosureService
// once they have checked the request.
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

// A well-formed note in `case_id`.
v1::Event Note(const std::string& event_id, const std::string& case_id) {
  v1::Event e;
  e.set_event_id(event_id);
  e.set_stream_id(case_id);
  e.set_producer("cm-1");
  e.mutable_occurred_at()->set_seconds(1767225600);
  e.mutable_record_entry_written()->set_entry_id("n-1");
  return e;
}

class GuardedServicesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string dir = testing::NewTempDir("guarded");
    certs_ = dir + "/certs";
    testing::CommandResult made =
        testing::RunCommand({"/usr/bin/env", "TEST_EXTRAS=1", "bash", "tools/make_dev_certs.sh",
                             certs_, "producer/intake", "case_manager/cm-1", "client/client-1",
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
    directory_ = std::make_unique<ServerResourceDirectory>(gate_.get(), ledger_);
    auto config = ParseAuthzConfig("audit_grant aud-all *\n");
    ASSERT_TRUE(config.ok());
    authz_ = std::make_unique<Authorizer>(*config, directory_.get());

    auto cases = std::make_unique<CaseStateProjection>();
    auto accounting = std::make_unique<AccountingProjection>();
    const CaseStateProjection* cases_view = cases.get();
    const AccountingProjection* accounting_view = accounting.get();
    std::vector<std::unique_ptr<Projection>> projections;
    projections.push_back(std::move(cases));
    projections.push_back(std::move(accounting));
    auto projector = Projector::Open({dir + "/projections", 512}, ledger_, std::move(projections));
    ASSERT_TRUE(projector.ok()) << projector.status();
    projector_ = *std::move(projector);
    ledger_service_ = std::make_unique<LedgerServiceImpl>(ledger_, gate_.get(), db_.signer.get());
    case_service_ = std::make_unique<CaseServiceImpl>(projector_.get(), cases_view, &clock_);
    disclosure_ =
        std::make_unique<DisclosureServiceImpl>(projector_.get(), accounting_view, &clock_);

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
    key_admin_ = std::make_unique<KeyAdminServiceImpl>(keys_, gate_.get(), nullptr);

    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", testing::DevServerCredentials(certs_), &port_);
    builder.RegisterService(ledger_service_.get());
    builder.RegisterService(case_service_.get());
    builder.RegisterService(disclosure_.get());
    builder.RegisterService(witness_.get());
    builder.RegisterService(audit_.get());
    builder.RegisterService(access_.get());
    builder.RegisterService(key_admin_.get());
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
    auto factory =
        std::make_unique<AuthzInterceptorFactory>(authz_.get(), directory_.get(), gate_.get());
    factory_ = factory.get();
    creators.push_back(std::move(factory));
    builder.experimental().SetInterceptorCreators(std::move(creators));
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
  }

  void TearDown() override {
    if (ledger_service_) ledger_service_->StopStreams();
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
    return testing::StreamsAndTypesFrom(*ledger_, from);
  }

  std::string certs_;
  NoteVerifier note_verifier_ = testing::TestNoteVerifier();
  CountingClock clock_;
  testing::TestLedger db_;
  KeyStore* keys_ = nullptr;
  Ledger* ledger_ = nullptr;
  StoredCheckpoint checkpoint_;
  std::unique_ptr<CaseGate> gate_;
  std::unique_ptr<ServerResourceDirectory> directory_;
  std::unique_ptr<Authorizer> authz_;
  std::unique_ptr<Projector> projector_;
  std::unique_ptr<LedgerServiceImpl> ledger_service_;
  std::unique_ptr<CaseServiceImpl> case_service_;
  std::unique_ptr<DisclosureServiceImpl> disclosure_;
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
    const auto* service =
        google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(name);
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

constexpr const char* kAllServices[] = {
    "caseledger.v1.LedgerService",  "caseledger.v1.CaseService",  "caseledger.v1.DisclosureService",
    "caseledger.v1.AccessService",  "caseledger.v1.AuditService", "caseledger.v1.WitnessService",
    "caseledger.v1.KeyAdminService"};

std::vector<std::string> MethodsOf(std::initializer_list<const char*> services) {
  std::vector<std::string> methods;
  for (const char* name : services) {
    const auto* service =
        google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(name);
    EXPECT_NE(service, nullptr) << name;
    if (service == nullptr) continue;
    for (int i = 0; i < service->method_count(); ++i) {
      methods.push_back(absl::StrCat("/", name, "/", service->method(i)->name()));
    }
  }
  return methods;
}

// Every method of every service, each called by a role its row denies (the
// public methods, which no role is denied, by a caller the certificate does
// not name): each handler answers with the refusal itself, before any work
// (no clock read, nothing appended but the refusal), and each refusal is
// recorded exactly once.
TEST_F(GuardedServicesTest, EveryMethodOfEveryServiceIsRefusedBeforeItsHandlerWorks) {
  const uint64_t before = ledger_->Size();
  const std::vector<std::string> methods =
      MethodsOf({kAllServices[0], kAllServices[1], kAllServices[2], kAllServices[3],
                 kAllServices[4], kAllServices[5], kAllServices[6]});
  ASSERT_GE(methods.size(), 20u);
  const std::pair<Role, const char*> callers[] = {{Role::kProducer, "producer-intake"},
                                                  {Role::kCaseManager, "case_manager-cm-1"},
                                                  {Role::kClient, "client-client-1"},
                                                  {Role::kAuditor, "auditor-aud-all"},
                                                  {Role::kAdmin, "admin-ops-1"}};
  const char* ids[] = {"intake", "cm-1", "client-1", "aud-all", "ops-1"};
  std::vector<std::string> expected;
  for (const std::string& method : methods) {
    const MethodPolicy* row = FindPolicy(method);
    ASSERT_NE(row, nullptr) << method;
    int denied = -1;
    for (int i = 0; i < 5 && denied < 0; ++i) {
      if (row->rules[static_cast<int>(callers[i].first)] == Rule::kDeny) denied = i;
    }
    if (denied < 0) {
      grpc::Status s = Call("no-uri", method, "");
      EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << method;
      expected.push_back("@access access_refused");
      continue;
    }
    grpc::Status s = Call(callers[denied].second, method, "");
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << method;
    EXPECT_EQ(s.error_message(), absl::StrCat("rule ", RoleName(callers[denied].first),
                                              ".deny: ", method, " is not allowed for ",
                                              RoleName(callers[denied].first), " ", ids[denied]));
    expected.push_back("@access access_refused");
  }
  EXPECT_EQ(factory_->unheeded_refusals(), 0u)
      << "a handler ran for a refused call (its stderr line names it)";
  EXPECT_EQ(clock_.calls(), 0);
  EXPECT_EQ(RecordsFrom(before), expected);
}

// Refused by the rule's condition, after the request is read: a case
// manager's append to, read of and query of a case that is not theirs.
// Nothing is appended but the
// refusals, no read model is read, and each message is the rule's.
TEST_F(GuardedServicesTest, RefusedOnTheRequestDoesNoWork) {
  const uint64_t before = ledger_->Size();
  v1::AppendRequest append;
  *append.mutable_event() = Note("e-2", "case-9");
  v1::AppendBatchRequest batch;
  *batch.add_requests() = append;
  v1::ReadStreamRequest read;
  read.set_stream_id("case-9");
  v1::GetCaseRequest get;
  get.set_case_id("case-9");
  const std::string not_theirs =
      "rule case_manager.assigned_case: case \"case-9\" is assigned to \"\", not to "
      "case_manager cm-1";
  for (const auto& [method, body, message] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"/caseledger.v1.LedgerService/Append", append.SerializeAsString(), not_theirs},
           {"/caseledger.v1.LedgerService/AppendBatch", batch.SerializeAsString(),
            "requests[0]: " + not_theirs},
           {"/caseledger.v1.LedgerService/ReadStream", read.SerializeAsString(), not_theirs},
           {"/caseledger.v1.CaseService/GetCase", get.SerializeAsString(), not_theirs}}) {
    grpc::Status s = Call("case_manager-cm-1", method, body);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << method;
    EXPECT_EQ(s.error_message(), message) << method;
  }
  EXPECT_EQ(factory_->unheeded_refusals(), 0u);
  EXPECT_EQ(clock_.calls(), 0) << "GetCase ran for a refused caller";
  EXPECT_EQ(RecordsFrom(before), std::vector<std::string>(4, "@access access_refused"));
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
