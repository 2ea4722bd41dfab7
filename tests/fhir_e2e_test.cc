// The FHIR export end to end (services/fhir/FHIR.md): the real server as
// tools/serve.sh starts it (payloads encrypted under a master key), over
// mutual TLS, after a restart; `ledgerctl export-fhir` as the client, as an
// auditor with a grant, and refused where the policy table refuses. The
// exports are validated offline against the FHIR R4 StructureDefinitions
// (tests/fhir/validate.js).
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <climits>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "proto/ledger.grpc.pb.h"
#include "tests/dev_certs.h"
#include "tests/server_process.h"
#include "tests/subprocess.h"
#include "tests/test_util.h"

namespace caseledger {
namespace {

using testing::ServerProcess;

constexpr char kServer[] = "services/api/caseledger_server";
constexpr char kLedgerctl[] = "tools/ledgerctl";
constexpr char kProtected[] = "Jane Roe, neighbour";  // person_at_risk

v1::AppendRequest Event(const std::string& id) {
  v1::AppendRequest r;
  v1::Event* e = r.mutable_event();
  e->set_event_id(id);
  e->set_stream_id("case-1");
  e->add_subject_ids("client-1");
  e->set_producer("intake");
  e->mutable_occurred_at()->set_seconds(1767225600);
  return r;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class FhirE2ETest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<testing::DevTls> tls = testing::MakeDevTls(
        {"producer/intake", "client/client-1", "client/client-2", "auditor/aud-1"});
    ASSERT_TRUE(tls.ok()) << tls.status();
    tls_ = *std::move(tls);
    dir_ = testing::NewTempDir("fhir-e2e");
    std::ofstream(dir_ + "/authz.conf") << "producer intake housing\n"
                                           "audit_grant aud-1 case-1\n";
  }

  // As tools/serve.sh starts it with TLS flags (payloads encrypted).
  void Start() {
    auto s =
        testing::StartTlsServer(tls_, dir_ + "/data", {"--authz_config=" + dir_ + "/authz.conf"});
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
  }

  void Append(const v1::AppendRequest& req) {
    auto stub = v1::LedgerService::NewStub(tls_.Channel(server_->address(), "producer-intake"));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::AppendResponse resp;
    grpc::Status s = stub->Append(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << req.event().event_id() << ": " << s.error_message();
  }

  // ledgerctl over mutual TLS as `who` (e.g. "client-client-1").
  testing::CommandResult Ledgerctl(const std::string& who, std::vector<std::string> args) {
    std::vector<std::string> flags = tls_.ClientFlags(who);
    args.insert(args.begin(), flags.begin(), flags.end());
    args.insert(args.begin(), {kLedgerctl, "--server=" + server_->address()});
    return testing::RunCommand(args);
  }

  // tests/fhir/validate.js on `files`, with the node_modules tools/setup.sh
  // installed beside the real tests/fhir/package.json.
  testing::CommandResult Validate(const std::vector<std::string>& files) {
    char real[PATH_MAX];
    EXPECT_NE(realpath("tests/fhir/package.json", real), nullptr);
    const std::string dir = std::string(real).substr(0, std::string(real).rfind('/'));
    std::vector<std::string> argv = {"/usr/bin/env", "NODE_PATH=" + dir + "/node_modules", "node",
                                     dir + "/validate.js"};
    argv.insert(argv.end(), files.begin(), files.end());
    return testing::RunCommand(argv);
  }

  testing::DevTls tls_;
  std::string dir_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(FhirE2ETest, ClientExportWithholdsProtectedDetailsAfterRestartOverMtls) {
  Start();
  v1::AppendRequest open = Event("open");
  open.mutable_event()->mutable_case_opened()->set_program("housing");
  open.mutable_event()->mutable_case_opened()->set_jurisdiction("US-CA");
  open.mutable_event()->mutable_case_opened()->set_record_class(v1::RECORD_CLASS_GENERAL);
  Append(open);
  v1::AppendRequest disclosure = Event("disclose");
  auto* d = disclosure.mutable_event()->mutable_disclosure_made();
  d->set_disclosure_id("d-1");
  d->set_client_id("client-1");
  d->mutable_recipient()->set_recipient_id("police-1");
  d->mutable_recipient()->set_name("City Police");
  d->set_purpose("prevent serious harm");
  d->add_data_categories("housing");
  d->set_description("current address");
  d->set_legal_basis(v1::LEGAL_BASIS_IMMINENT_HARM);
  d->set_justification("threat made in session");
  d->set_person_at_risk(kProtected);
  d->set_minimum_necessary("address only");
  d->set_disclosed_by("cm-1");
  Append(disclosure);
  ASSERT_EQ(server_->Stop(SIGTERM), 0) << server_->Stderr();
  Start();

  const std::string out = testing::NewTempDir("fhir-e2e-out");
  testing::CommandResult mine = Ledgerctl(
      "client-client-1", {"export-fhir", "--subject=client-1", "--out=" + out + "/client.json"});
  ASSERT_EQ(mine.exit_code, 0) << mine.out << mine.err;
  const std::string client_json = ReadFile(out + "/client.json");
  EXPECT_TRUE(absl::StrContains(client_json, "\"code\": \"110106\"")) << client_json;
  EXPECT_TRUE(absl::StrContains(client_json, "threat made in session"));
  EXPECT_FALSE(absl::StrContains(client_json, kProtected));
  EXPECT_FALSE(absl::StrContains(client_json, "person_at_risk"));

  // A client never gets the full view, nor another client's export.
  testing::CommandResult full = Ledgerctl(
      "client-client-1", {"export-fhir", "--subject=client-1", "--full_view"});
  EXPECT_EQ(full.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(full.err, "PERMISSION_DENIED")) << full.err;
  EXPECT_FALSE(absl::StrContains(full.out, kProtected));
  testing::CommandResult other =
      Ledgerctl("client-client-2", {"export-fhir", "--subject=client-1"});
  EXPECT_EQ(other.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(other.err, "rule client.own_subject")) << other.err;

  // The auditor's grant covers case-1: the full view, only with the case named.
  testing::CommandResult all =
      Ledgerctl("auditor-aud-1", {"export-fhir", "--subject=client-1", "--role=auditor"});
  EXPECT_EQ(all.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(all.err, "rule auditor.audit_grant")) << all.err;
  testing::CommandResult audit = Ledgerctl(
      "auditor-aud-1", {"export-fhir", "--subject=client-1", "--case=case-1", "--full_view",
                        "--searchset", "--purpose=oversight", "--out=" + out + "/audit.json"});
  ASSERT_EQ(audit.exit_code, 0) << audit.out << audit.err;
  const std::string audit_json = ReadFile(out + "/audit.json");
  EXPECT_TRUE(absl::StrContains(audit_json, kProtected));
  // The client's export was recorded as a read, and shows in the auditor's.
  EXPECT_TRUE(absl::StrContains(audit_json, "\"right of access\"")) << audit_json;
  EXPECT_TRUE(absl::StrContains(audit_json, "\"searchset\""));

  testing::CommandResult valid = Validate({out + "/client.json", out + "/audit.json"});
  EXPECT_EQ(valid.exit_code, 0) << valid.out << valid.err;
}

}  // namespace
}  // namespace caseledger
