// Monitoring end to end, through the real server binary started as
// tools/serve.sh starts it (payloads encrypted): Prometheus metrics on
// --metrics_listen move with appends, refusals and restarts and carry no
// identifier; a byte flipped in a stored record turns the integrity alarm
// on (log, grpc.health.v1, metrics, ledgerctl status) and refuses producer
// appends naming the first bad seq while reads still answer.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "proto/ledger.grpc.pb.h"
#include "tests/dev_certs.h"
#include "tests/server_process.h"
#include "tests/subprocess.h"
#include "tests/test_events.h"
#include "tests/test_util.h"
#include "tools/ledgerctl/context.h"

namespace caseledger {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::ServerProcess;

constexpr char kServer[] = "services/api/caseledger_server";
constexpr char kLedgerctl[] = "tools/ledgerctl";

v1::AppendRequest OpenReq(const std::string& stream) {
  return testing::OpenCaseRequest("open-" + stream, stream, "client-of-" + stream, "intake");
}

v1::AppendRequest EntryReq(const std::string& id, const std::string& stream) {
  return testing::NoteRequest(id, stream, "client-of-" + stream, "intake");
}

// The value of the sample `series` (name with its labels, as exposed) in a
// scrape; -1e9 when absent.
double Sample(const std::string& scrape, const std::string& series) {
  for (absl::string_view line : absl::StrSplit(scrape, '\n')) {
    if (absl::StartsWith(line, series + " ")) {
      double v = 0;
      if (absl::SimpleAtod(line.substr(series.size() + 1), &v)) return v;
    }
  }
  return -1e9;
}

// grpc.health.v1.Health/Check of `service`, as ledgerctl asks it.
std::string HealthOf(const std::shared_ptr<grpc::Channel>& channel, const std::string& service) {
  ledgerctl::Client client(ledgerctl::Options(), channel);
  absl::StatusOr<std::string> h = client.Health(service);
  return h.ok() ? *h : h.status().ToString();
}

class MonitoringE2ETest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::NewTempDir("monitoring");
    key_file_ = testing::WriteTestMasterKey(testing::NewTempDir("monitoring-key"));
  }

  // As tools/serve.sh starts it (a master key, default flags; with TLS flags
  // when `tls` is given), plus `flags` and metrics on a free loopback port.
  void Start(std::vector<std::string> flags = {}, const testing::DevTls* tls = nullptr) {
    flags.push_back("--metrics_listen=127.0.0.1:0");
    if (tls == nullptr) flags.push_back("--master_key_file=" + key_file_);
    auto s = tls != nullptr ? testing::StartTlsServer(*tls, dir_ + "/data", flags)
                            : ServerProcess::Start(kServer, dir_ + "/data", flags);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
    const std::string err = server_->Stderr();
    const std::string marker = "metrics on http://127.0.0.1:";
    size_t at = err.find(marker);
    ASSERT_NE(at, std::string::npos) << err;
    ASSERT_TRUE(absl::SimpleAtoi(
        err.substr(at + marker.size(), err.find('/', at + marker.size()) - at - marker.size()),
        &metrics_port_))
        << err;
  }

  void UseChannel(std::shared_ptr<grpc::Channel> channel) {
    channel_ = std::move(channel);
    stub_ = v1::LedgerService::NewStub(channel_);
  }

  std::string Scrape() {
    std::string got = testing::HttpGet(metrics_port_, "/metrics");
    EXPECT_THAT(got, HasSubstr("200 OK"));
    return got;
  }

  grpc::Status Append(const v1::AppendRequest& req) {
    grpc::ClientContext ctx;
    v1::AppendResponse resp;
    return stub_->Append(&ctx, req, &resp);
  }

  grpc::Status AppendBatch(const std::vector<v1::AppendRequest>& reqs) {
    grpc::ClientContext ctx;
    v1::AppendBatchRequest batch;
    for (const auto& r : reqs) *batch.add_requests() = r;
    v1::AppendBatchResponse resp;
    return stub_->AppendBatch(&ctx, batch, &resp);
  }

  // Sends `reqs` on one AppendStream; the responses' count and the status.
  std::pair<int, grpc::Status> AppendStream(const std::vector<v1::AppendRequest>& reqs) {
    grpc::ClientContext ctx;
    auto stream = stub_->AppendStream(&ctx);
    for (const auto& r : reqs) stream->Write(r);
    stream->WritesDone();
    v1::AppendResponse resp;
    int n = 0;
    while (stream->Read(&resp)) ++n;
    return {n, stream->Finish()};
  }

  std::string dir_, key_file_;
  int metrics_port_ = 0;
  std::unique_ptr<ServerProcess> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::LedgerService::Stub> stub_;
};

TEST_F(MonitoringE2ETest, MetricsMoveWithAppendsAndAfterARestart) {
  Start();
  UseChannel(grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials()));
  std::string before = Scrape();
  EXPECT_EQ(Sample(before, "caseledger_append_duration_seconds_count{method=\"Append\"}"), 0);
  EXPECT_EQ(Sample(before, "caseledger_tree_size"), 0);
  EXPECT_EQ(Sample(before, "caseledger_integrity_ok"), 1);

  ASSERT_TRUE(Append(OpenReq("case-7")).ok());
  ASSERT_TRUE(Append(EntryReq("e1", "case-7")).ok());
  ASSERT_TRUE(AppendBatch({EntryReq("e2", "case-7"), EntryReq("e3", "case-7")}).ok());
  auto [n, st] = AppendStream({EntryReq("e4", "case-7"), EntryReq("e5", "case-7")});
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(n, 2);
  // A refused append (unknown case) is timed and counted by its code.
  EXPECT_EQ(Append(EntryReq("e6", "case-none")).error_code(), grpc::StatusCode::FAILED_PRECONDITION);

  std::string after = Scrape();
  EXPECT_EQ(Sample(after, "caseledger_append_duration_seconds_count{method=\"Append\"}"), 3);
  EXPECT_EQ(Sample(after, "caseledger_append_duration_seconds_count{method=\"AppendBatch\"}"), 1);
  EXPECT_EQ(Sample(after, "caseledger_append_duration_seconds_count{method=\"AppendStream\"}"), 2);
  EXPECT_GT(Sample(after, "caseledger_append_duration_seconds_sum{method=\"Append\"}"), 0);
  EXPECT_EQ(Sample(after, "caseledger_append_errors_total{code=\"FAILED_PRECONDITION\",method=\"Append\"}"), 1);
  EXPECT_EQ(Sample(after, "caseledger_group_commit_records_sum"), 6);
  EXPECT_GE(Sample(after, "caseledger_group_commit_records_count"), 1);
  EXPECT_GE(Sample(after, "caseledger_fsync_duration_seconds_count"), 1);
  EXPECT_GT(Sample(after, "caseledger_fsync_duration_seconds_sum"), 0);
  EXPECT_EQ(Sample(after, "caseledger_tree_size"), 6);
  EXPECT_GE(Sample(after, "caseledger_checkpoint_age_seconds"), 0);
  EXPECT_GE(Sample(after, "caseledger_verification_lag_records"), 0);
  EXPECT_GE(Sample(after, "caseledger_projector_lag_records"), 0);
  // Nothing that names a case, a client or an event.
  for (const char* secret : {"case-7", "client-of", "e1", "entry-", "intake", "note "}) {
    EXPECT_THAT(after, Not(HasSubstr(secret))) << secret;
  }

  ASSERT_EQ(server_->Stop(SIGTERM), 0);
  Start();
  UseChannel(grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials()));
  std::string restarted = Scrape();
  EXPECT_EQ(Sample(restarted, "caseledger_tree_size"), 6);
  EXPECT_EQ(Sample(restarted, "caseledger_append_duration_seconds_count{method=\"Append\"}"), 0);
  ASSERT_TRUE(Append(EntryReq("e7", "case-7")).ok());
  restarted = Scrape();
  EXPECT_EQ(Sample(restarted, "caseledger_append_duration_seconds_count{method=\"Append\"}"), 1);
  EXPECT_EQ(Sample(restarted, "caseledger_tree_size"), 7);
}

TEST_F(MonitoringE2ETest, MetricsListenMustBeLoopback) {
  auto s = ServerProcess::Start(kServer, dir_ + "/data",
                                {"--master_key_file=" + key_file_, "--metrics_listen=0.0.0.0:0"});
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.status().message()),
              HasSubstr("--metrics_listen: got \"0.0.0.0:0\", want a loopback address"));
}

TEST_F(MonitoringE2ETest, RefusalsPerRoleOverMutualTls) {
  absl::StatusOr<testing::DevTls> tls = testing::MakeDevTls({"producer/intake", "client/client-1"});
  ASSERT_TRUE(tls.ok()) << tls.status();
  std::ofstream(dir_ + "/authz.conf") << "producer intake housing\n";
  Start({"--authz_config=" + dir_ + "/authz.conf"}, &*tls);
  UseChannel(tls->Channel(server_->address(), "producer-intake"));
  ASSERT_TRUE(Append(OpenReq("case-7")).ok());
  UseChannel(tls->Channel(server_->address(), "client-client-1"));
  EXPECT_EQ(Append(EntryReq("e1", "case-7")).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  std::string scrape = Scrape();
  EXPECT_EQ(Sample(scrape, "caseledger_refusals_total{role=\"client\"}"), 1);
  EXPECT_EQ(Sample(scrape, "caseledger_append_duration_seconds_count{method=\"Append\"}"), 1);
  EXPECT_THAT(scrape, Not(HasSubstr("client-1")));
  EXPECT_THAT(scrape, Not(HasSubstr("case-7")));
}

TEST_F(MonitoringE2ETest, AFlippedByteTurnsHealthMetricsAndStatusRed) {
  Start();
  UseChannel(grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials()));
  ASSERT_TRUE(Append(OpenReq("case-7")).ok());
  std::vector<v1::AppendRequest> batch;
  for (int i = 1; i < 20; ++i) batch.push_back(EntryReq(absl::StrCat("e", i), "case-7"));
  ASSERT_TRUE(AppendBatch(batch).ok());
  EXPECT_EQ(HealthOf(channel_, "caseledger.integrity"), "SERVING");
  ASSERT_EQ(server_->Stop(SIGTERM), 0);

  // One byte of record 7's leaf, in its payload commitment.
  const std::string rocks = dir_ + "/data/ledger";
  auto leaf = testing::RawGet(rocks, "records", testing::SeqKey(7));
  ASSERT_TRUE(leaf.ok()) << leaf.status();
  std::string damaged = *leaf;
  damaged[damaged.size() - 3] ^= 0x01;
  ASSERT_TRUE(testing::RawPut(rocks, "records", testing::SeqKey(7), damaged).ok());

  Start({"--verify_interval=50ms"});
  UseChannel(grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials()));
  // The verifier runs at start; wait for its verdict (no timing is asserted).
  std::string scrape;
  for (absl::Time give_up = absl::Now() + absl::Seconds(60); absl::Now() < give_up;
       absl::SleepFor(absl::Milliseconds(50))) {
    scrape = Scrape();
    if (Sample(scrape, "caseledger_integrity_ok") == 0) break;
  }
  EXPECT_EQ(Sample(scrape, "caseledger_integrity_ok"), 0) << scrape;
  EXPECT_EQ(Sample(scrape, "caseledger_integrity_first_bad_seq"), 7);
  EXPECT_EQ(Sample(scrape, "caseledger_integrity_failures_total"), 1);
  EXPECT_THAT(server_->Stderr(),
              HasSubstr("INTEGRITY ALARM: the verifier found a damaged record at seq 7: record 7: "));
  EXPECT_EQ(HealthOf(channel_, "caseledger.integrity"), "NOT_SERVING");
  EXPECT_EQ(HealthOf(channel_, "caseledger.v1.LedgerService"), "NOT_SERVING");
  EXPECT_EQ(HealthOf(channel_, ""), "SERVING");  // reads still answer

  testing::CommandResult status =
      testing::RunCommand({kLedgerctl, "--server=" + server_->address(), "status"});
  EXPECT_EQ(status.exit_code, 1) << status.out << status.err;
  EXPECT_TRUE(absl::StartsWith(status.out, "integrity     DAMAGED: first bad record at seq 7; "))
      << status.out;

  // Producer appends are refused naming the seq; nothing is stored.
  const std::string want = "the ledger is damaged at seq 7 ";
  grpc::Status s = Append(EntryReq("e20", "case-7"));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DATA_LOSS);
  EXPECT_THAT(s.error_message(), HasSubstr(want));
  s = AppendBatch({EntryReq("e21", "case-7")});
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DATA_LOSS);
  EXPECT_THAT(s.error_message(), HasSubstr(want));
  auto [n, st] = AppendStream({EntryReq("e22", "case-7")});
  EXPECT_EQ(n, 0);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::DATA_LOSS);
  EXPECT_THAT(st.error_message(), HasSubstr("request 0: " + want));

  // Reads and checkpoints still answer, for forensics: every record but the
  // damaged one, which is refused by name.
  auto read_log = [&](uint64_t from, int* records) {
    grpc::ClientContext ctx;
    v1::ReadLogRequest req;
    req.set_from_seq(from);
    auto reader = stub_->ReadLog(&ctx, req);
    v1::Record r;
    *records = 0;
    while (reader->Read(&r)) ++*records;
    return reader->Finish();
  };
  int records = 0;
  grpc::Status read = read_log(0, &records);
  EXPECT_EQ(records, 7);
  EXPECT_EQ(read.error_code(), grpc::StatusCode::DATA_LOSS) << read.error_message();
  EXPECT_THAT(read.error_message(), HasSubstr("7"));
  read = read_log(8, &records);
  EXPECT_TRUE(read.ok()) << read.error_message();
  EXPECT_EQ(records, 12);
  {
    grpc::ClientContext ctx;
    v1::GetCheckpointRequest req;
    v1::Checkpoint cp;
    EXPECT_TRUE(stub_->GetCheckpoint(&ctx, req, &cp).ok());
  }
  EXPECT_EQ(Sample(Scrape(), "caseledger_tree_size"), 20);
}

}  // namespace
}  // namespace caseledger
