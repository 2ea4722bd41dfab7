// The interceptor enforcing the table: a stand-in DisclosureService that
// would answer "secret" to anyone but returns the interceptor's verdict
// first, as every handler does, behind mutual TLS with certificates made at
// test time; and a stand-in CaseService whose handler forgets to. The ledger
// runs on a FakeClock, which dates what the interceptor records.
#include "services/authz/authz_interceptor.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "ledger/clock.h"
#include "proto/cases.grpc.pb.h"
#include "services/authz/authz_directory.h"
#include "services/authz/authz_verdict.h"
#include "services/append/event_codec.h"
#include "tests/dev_certs.h"
#include "tests/subprocess.h"
#include "tests/test_util.h"

namespace caseledger {
namespace {

// Answers every call the interceptor admitted, checking nothing itself;
// `seen` lists the requests its body ran for.
class OpenDisclosureService : public v1::DisclosureService::Service {
 public:
  grpc::Status GetAccounting(grpc::ServerContext* ctx, const v1::GetAccountingRequest* req,
                             v1::Accounting* resp) override {
    if (grpc::Status refused = AuthzVerdict(*ctx); !refused.ok()) return refused;
    absl::MutexLock lock(&mu_);
    seen_.push_back(req->client_id());
    resp->set_client_id(req->client_id());
    resp->set_json("secret");
    return grpc::Status::OK;
  }
  std::vector<std::string> seen() {
    absl::MutexLock lock(&mu_);
    return seen_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> seen_;
};

// A handler missing its first line: it runs for refused callers too.
class HeedlessCaseService : public v1::CaseService::Service {
 public:
  grpc::Status GetCase(grpc::ServerContext*, const v1::GetCaseRequest* req,
                       v1::CaseView* resp) override {
    ran_.fetch_add(1);
    resp->set_state_json("secret " + req->case_id());
    return grpc::Status::OK;
  }
  int ran() const { return ran_.load(); }

 private:
  std::atomic<int> ran_{0};
};

class AuthzInterceptorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string dir = testing::NewTempDir("interceptor");
    certs_ = dir + "/certs";
    testing::CommandResult made =
        testing::RunCommand({"/usr/bin/env", "TEST_EXTRAS=1", "bash", "tools/make_dev_certs.sh",
                             certs_, "client/client-1", "auditor/aud-1", "auditor/aud-all"});
    ASSERT_EQ(made.exit_code, 0) << made.err;
    LedgerOptions options;
    options.clock = &clock_;
    auto ledger = testing::OpenTestLedger(dir + "/ledger", options);
    ASSERT_TRUE(ledger.ok()) << ledger.status();
    ledger_ = std::make_unique<testing::TestLedger>(*std::move(ledger));
    gate_ = std::make_unique<CaseGate>(ledger_->ledger.get());
    directory_ = std::make_unique<ServerResourceDirectory>(gate_.get(), ledger_->ledger.get());
    auto config = ParseAuthzConfig("audit_grant aud-1 case-1\naudit_grant aud-all *\n");
    ASSERT_TRUE(config.ok());
    authz_ = std::make_unique<Authorizer>(*config, directory_.get());

    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", testing::DevServerCredentials(certs_), &port_);
    builder.RegisterService(&service_);
    builder.RegisterService(&heedless_);
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
    if (server_) server_->Shutdown();
  }

  std::shared_ptr<grpc::Channel> Channel(const std::string& who) {
    return testing::DevChannel("127.0.0.1:" + std::to_string(port_), certs_, who);
  }

  grpc::Status Accounting(const std::string& who, const std::string& client_id,
                          v1::Accounting* resp) {
    auto stub = v1::DisclosureService::NewStub(Channel(who));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::GetAccountingRequest req;
    req.set_client_id(client_id);
    return stub->GetAccounting(&ctx, req, resp);
  }

  // The body type of each record in the ledger, with its accessor.
  std::vector<std::string> Recorded() {
    std::vector<std::string> out;
    for (uint64_t seq = 0; seq < (*ledger_)->Size(); ++seq) {
      auto view = (*ledger_)->Read(seq);
      EXPECT_TRUE(view.ok());
      auto record = ToWireRecord(*view);
      EXPECT_TRUE(record.ok());
      const v1::Event& e = record->event();
      out.push_back(e.has_access_refused() ? "refused " + e.access_refused().accessor_id() + " " +
                                                 e.access_refused().reason()
                                           : "accessed " + e.record_accessed().accessor_id());
    }
    return out;
  }

  std::string certs_;
  FakeClock clock_{absl::FromUnixMicros(1767225600123456)};
  std::unique_ptr<testing::TestLedger> ledger_;
  std::unique_ptr<CaseGate> gate_;
  std::unique_ptr<ServerResourceDirectory> directory_;
  std::unique_ptr<Authorizer> authz_;
  OpenDisclosureService service_;
  HeedlessCaseService heedless_;
  AuthzInterceptorFactory* factory_ = nullptr;  // owned by server_
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

TEST_F(AuthzInterceptorTest, RefusesWithTheRuleAndWithholdsTheAnswer) {
  v1::Accounting resp;
  // The client role may not use DisclosureService at all.
  grpc::Status s = Accounting("client-client-1", "client-1", &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(s.error_message(),
            "rule client.deny: /caseledger.v1.DisclosureService/GetAccounting is not allowed for "
            "client client-1");
  EXPECT_EQ(resp.json(), "");
  // An auditor whose grant covers one case only: refused once the request
  // is read (the rule needs a grant for all cases).
  s = Accounting("auditor-aud-1", "client-2", &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(s.error_message(),
            "rule auditor.audit_grant: auditor aud-1 has no audit grant for all cases (*)");
  EXPECT_EQ(resp.json(), "");
  // The handler's body never ran for either refused call.
  EXPECT_TRUE(service_.seen().empty());

  // Allowed, and the read of a client's accounting is recorded.
  s = Accounting("auditor-aud-all", "client-2", &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.json(), "secret");
  EXPECT_EQ(service_.seen().back(), "client-2");

  // A certificate naming nobody.
  s = Accounting("no-uri", "client-2", &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);

  std::vector<std::string> recorded = Recorded();
  ASSERT_EQ(recorded.size(), 4u);
  EXPECT_TRUE(absl::StartsWith(recorded[0], "refused client-1 rule client.deny")) << recorded[0];
  EXPECT_TRUE(absl::StartsWith(recorded[1], "refused aud-1 rule auditor.audit_grant"))
      << recorded[1];
  EXPECT_EQ(recorded[2], "accessed aud-all");
  EXPECT_TRUE(absl::StartsWith(recorded[3], "refused unidentified client certificate"))
      << recorded[3];
  // Every refused call was answered by its handler with the refusal.
  EXPECT_EQ(service_.seen().size(), 1u);
  EXPECT_EQ(factory_->unheeded_refusals(), 0u);
}

// What the interceptor records is dated by the ledger's clock, never by a
// clock of its own.
TEST_F(AuthzInterceptorTest, RecordsAreDatedByTheLedgersClock) {
  v1::Accounting resp;
  ASSERT_EQ(Accounting("client-client-1", "client-1", &resp).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  clock_.Advance(absl::Hours(1));
  ASSERT_TRUE(Accounting("auditor-aud-all", "client-2", &resp).ok());
  ASSERT_EQ((*ledger_)->Size(), 2u);
  for (uint64_t seq = 0; seq < 2; ++seq) {
    auto view = (*ledger_)->Read(seq);
    ASSERT_TRUE(view.ok()) << view.status();
    auto record = ToWireRecord(*view);
    ASSERT_TRUE(record.ok()) << record.status();
    EXPECT_EQ(record->event().occurred_at().seconds(), 1767225600 + 3600 * seq);
    EXPECT_EQ(record->event().occurred_at().nanos(), 123456000);
  }
}

// A handler that does not return the verdict first still runs for a refused
// caller; the caller gets the refusal and no answer, and the interceptor
// counts the handler's lapse.
TEST_F(AuthzInterceptorTest, AHandlerThatDoesNotAskIsCaughtAndItsAnswerWithheld) {
  auto stub = v1::CaseService::NewStub(Channel("client-client-1"));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::GetCaseRequest req;
  req.set_case_id("case-1");
  v1::CaseView resp;
  grpc::Status s = stub->GetCase(&ctx, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(s.error_message(),
            "rule client.deny: /caseledger.v1.CaseService/GetCase is not allowed for client "
            "client-1");
  EXPECT_EQ(resp.state_json(), "");
  EXPECT_EQ(heedless_.ran(), 1);
  EXPECT_EQ(factory_->unheeded_refusals(), 1u);
  // Recorded once, by the interceptor.
  std::vector<std::string> recorded = Recorded();
  ASSERT_EQ(recorded.size(), 1u);
  EXPECT_TRUE(absl::StartsWith(recorded[0], "refused client-1 rule client.deny")) << recorded[0];
}

}  // namespace
}  // namespace caseledger
