// The fuzz-style sweep (tests/rpc_sweep.h) against the real server for a few
// seconds, in plaintext (every handler reached) and over mutual TLS with
// every role (the policy table and its refusal records under garbage): the
// server stays up, every valid append lands, and the ledger verifies after.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "proto/ledger.grpc.pb.h"
#include "tests/dev_certs.h"
#include "tests/rpc_sweep.h"
#include "tests/server_process.h"
#include "tests/subprocess.h"
#include "tests/test_util.h"

namespace caseledger {
namespace {

using testing::ServerProcess;

constexpr char kServer[] = "services/api/caseledger_server";
constexpr size_t kMaxMessage = 64 << 10;

absl::Duration SweepTime() {
  const char* s = std::getenv("SWEEP_SECONDS");
  return absl::Seconds(s != nullptr ? std::atoi(s) : 3);
}

class FuzzSweepTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::NewTempDir("sweep"); }

  // As tools/serve.sh starts it (a master key) over plaintext loopback, or
  // with TLS flags when `tls` is given.
  void Start(std::vector<std::string> flags, const testing::DevTls* tls = nullptr) {
    flags.push_back(absl::StrCat("--max_message_bytes=", kMaxMessage));
    flags.push_back("--checkpoint_every_records=200");
    if (tls == nullptr) {
      flags.push_back("--master_key_file=" + testing::WriteTestMasterKey(dir_ + "/key"));
    }
    auto s = tls != nullptr ? testing::StartTlsServer(*tls, dir_ + "/data", flags)
                            : ServerProcess::Start(kServer, dir_ + "/data", flags);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
  }

  // Server up, every acknowledged valid append in its case in order, clean
  // stop, and ledger_verify passes.
  void CheckAfter(const testing::SweepReport& report, std::shared_ptr<grpc::Channel> reader) {
    SCOPED_TRACE(testing::Summary(report));
    std::printf("%s\n", testing::Summary(report).c_str());
    EXPECT_TRUE(report.writer_errors.empty()) << report.writer_errors.front();
    EXPECT_GT(report.writer_acked, 1u);
    EXPECT_GT(report.calls, 100u);
    ASSERT_EQ(kill(server_->pid(), 0), 0) << "the server died: " << server_->Stderr();

    auto stub = v1::LedgerService::NewStub(reader);
    grpc::ClientContext ctx;
    v1::ReadStreamRequest req;
    req.set_stream_id("sweep-writer");
    auto records = stub->ReadStream(&ctx, req);
    std::vector<std::string> ids;
    v1::Record r;
    while (records->Read(&r)) {
      if (r.event().producer() == "intake") ids.push_back(r.event_id());
    }
    grpc::Status s = records->Finish();
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(ids, report.writer_event_ids);

    std::string err = server_->Stderr();
    size_t at = err.find(", key ");
    ASSERT_NE(at, std::string::npos) << err;
    std::string key = err.substr(at + 6, err.find('\n', at) - at - 6);
    int status = server_->Stop(SIGTERM);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << server_->Stderr();
    testing::CommandResult verified = testing::RunCommand(
        {"tools/ledger_verify", "--data_dir=" + dir_ + "/data", "--key=" + key});
    EXPECT_EQ(verified.exit_code, 0) << verified.out << verified.err;
    EXPECT_TRUE(absl::StrContains(verified.out, "OK: the ledger verifies")) << verified.out;
  }

  std::string dir_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(FuzzSweepTest, PlaintextEveryHandler) {
  Start({});
  auto channel = grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials());
  testing::SweepOptions options;
  options.duration = SweepTime();
  options.max_message_bytes = kMaxMessage;
  testing::SweepReport report = testing::RunSweep({channel}, channel, options);
  EXPECT_GT(report.by_code["INVALID_ARGUMENT"], 0u);
  EXPECT_GT(report.by_code["RESOURCE_EXHAUSTED"], 0u);  // oversized requests
  // Bodies that do not parse are named, not INTERNAL.
  EXPECT_EQ(report.by_code["INTERNAL"], 0u) << report.sample["INTERNAL"];
  EXPECT_EQ(report.by_code["UNKNOWN"], 0u) << report.sample["UNKNOWN"];
  CheckAfter(report, channel);
}

TEST_F(FuzzSweepTest, MutualTlsEveryRole) {
  absl::StatusOr<testing::DevTls> tls =
      testing::MakeDevTls({"producer/intake", "case_manager/cm-1", "client/client-1",
                           "auditor/aud-1", "auditor/aud-all", "admin/ops-1"});
  ASSERT_TRUE(tls.ok()) << tls.status();
  std::ofstream(dir_ + "/authz.conf") << "producer intake housing\naudit_grant aud-all *\n";
  Start({"--authz_config=" + dir_ + "/authz.conf"}, &*tls);
  auto channel = [&](const std::string& name) { return tls->Channel(server_->address(), name); };
  std::vector<std::shared_ptr<grpc::Channel>> fuzz;
  for (const char* name : {"producer-intake", "case_manager-cm-1", "client-client-1",
                           "auditor-aud-1", "admin-ops-1", "no-uri", "expired"}) {
    fuzz.push_back(channel(name));
  }
  testing::SweepOptions options;
  options.duration = SweepTime();
  options.max_message_bytes = kMaxMessage;
  testing::SweepReport report = testing::RunSweep(fuzz, channel("producer-intake"), options);
  EXPECT_GT(report.by_code["PERMISSION_DENIED"], 0u);
  EXPECT_GT(report.by_code["UNAUTHENTICATED"], 0u);  // no-uri
  EXPECT_GT(report.by_code["UNAVAILABLE"], 0u);      // expired: no handshake
  EXPECT_EQ(report.by_code["INTERNAL"], 0u) << report.sample["INTERNAL"];
  EXPECT_EQ(report.by_code["UNKNOWN"], 0u) << report.sample["UNKNOWN"];
  CheckAfter(report, channel("auditor-aud-all"));
}

}  // namespace
}  // namespace caseledger
