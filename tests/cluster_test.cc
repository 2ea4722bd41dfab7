// The cluster end to end (ledger/CLUSTER.md), started by tools/cluster.sh
// from the test: 3 etcd members, 2 PostgreSQL 15 under Patroni
// (synchronous_mode_strict) and 2 caseledger nodes, payloads encrypted.
//   1. kill -9 of the PostgreSQL primary (its Patroni and postmaster) under
//      load: Patroni promotes the synchronous standby; every acknowledged
//      append is present exactly once at its acknowledged seq, the chain
//      verifies, appends resume, and a retry of an acknowledged event id
//      returns the original seq.
//   2. kill -9 of the owner node: the other node takes the lease and
//      continues from (head seq, head hash).
//   3. the first node comes back with its RocksDB deleted and waits; the
//      owner is stopped (SIGSTOP) past its lease; the first node takes over,
//      rebuilt from PostgreSQL, with the same root; the stopped owner,
//      continued (SIGCONT), commits nothing.
#include <grpcpp/grpcpp.h>
#include <postgresql/libpq-fe.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "proto/audit.grpc.pb.h"
#include "proto/ledger.grpc.pb.h"
#include "tests/postgres_process.h"
#include "tests/subprocess.h"

namespace caseledger {
namespace {

using Clock = std::chrono::steady_clock;
using testing::CommandResult;
using testing::RunCommand;

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

v1::AppendRequest OpenCase(const std::string& id) {
  v1::AppendRequest r;
  v1::Event* e = r.mutable_event();
  e->set_event_id(id);
  e->set_stream_id("case-" + id);
  e->add_subject_ids("client-" + id);
  e->set_producer("cluster-test");
  e->mutable_occurred_at()->set_seconds(1767225000);
  auto* o = e->mutable_case_opened();
  o->set_program("housing");
  o->set_jurisdiction("US-CA");
  o->set_record_class(v1::RECORD_CLASS_GENERAL);
  return r;
}

bool PortFree(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  bool ok = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  close(fd);
  return ok;
}

// True once `pid` has exited (gone, or a zombie nobody reaped yet).
bool Exited(pid_t pid) {
  if (kill(pid, 0) != 0) return true;
  std::string stat = ReadText(absl::StrCat("/proc/", pid, "/stat"));
  size_t close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] == 'Z';
}

class ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = testing::NewPostgresDir("cluster");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = *dir;
    std::mt19937 rng(std::random_device{}());
    for (int tries = 0; tries < 50; ++tries) {
      int base = 20000 + static_cast<int>(rng() % 400) * 100;
      bool free = true;
      for (int off : {0, 1, 2, 10, 11, 12, 20, 21, 30, 31, 40, 41}) free = free && PortFree(base + off);
      if (free) {
        base_ = base;
        break;
      }
    }
    ASSERT_NE(base_, 0);
    CommandResult r = Cluster({"start"});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err << Logs();
  }
  void TearDown() override {
    Cluster({"stop"});
    std::error_code ec;
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir_, ec);
  }

  CommandResult Cluster(std::vector<std::string> args) {
    std::vector<std::string> argv = {"/usr/bin/env",
                                     "CLUSTER_DIR=" + dir_,
                                     absl::StrCat("CLUSTER_BASE_PORT=", base_),
                                     "CLUSTER_LEASE_TTL=2s",
                                     "CLUSTER_TTL=10",
                                     "CASELEDGER_SERVE_PREBUILT=1",
                                     "bash",
                                     "tools/cluster.sh"};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv);
  }
  std::string Logs() {
    std::string out;
    for (const char* f : {"node1", "node2", "patroni1", "patroni2"}) {
      std::string t = ReadText(dir_ + "/logs/" + f + ".log");
      if (t.size() > 3000) t = t.substr(t.size() - 3000);
      absl::StrAppend(&out, "\n--- ", f, "\n", t);
    }
    return out;
  }
  pid_t Pid(const std::string& name) {
    return static_cast<pid_t>(std::atoll(ReadText(dir_ + "/pids/" + name + ".pid").c_str()));
  }
  // The Patroni member (1 or 2) that is primary now, or 0.
  int Primary() {
    CommandResult r = Cluster({"status"});
    for (int m : {1, 2}) {
      std::string key = absl::StrCat("pg", m, " ");
      size_t at = r.out.find(key);
      if (at == std::string::npos) continue;
      std::string line = r.out.substr(at, r.out.find('\n', at) - at);
      if (absl::StrContains(line, " primary running")) return m;
    }
    return 0;
  }
  bool Serving(int node) {
    return absl::StrContains(ReadText(absl::StrCat(dir_, "/logs/node", node, ".log")),
                             "listening on");
  }
  // True when `node` answers gRPC now (a waiting or stopped node does not).
  bool ServingNow(int node) {
    auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", base_ + 39 + node),
                                       grpc::InsecureChannelCredentials());
    return channel->WaitForConnected(std::chrono::system_clock::now() +
                                     std::chrono::milliseconds(500));
  }
  // The node (1 or 2) holding the partition lease, per PostgreSQL.
  int Owner() {
    std::string o = PgQuery("SELECT owner FROM cl_partitions WHERE part = 0");
    return o == "node1" ? 1 : o == "node2" ? 2 : 0;
  }
  // Starts `node` again with a fresh log file (a no-op when it runs).
  void Restart(int node) {
    std::string log = absl::StrCat(dir_, "/logs/node", node, ".log");
    if (Exited(Pid(absl::StrCat("node", node)))) {
      std::error_code ec;
      std::filesystem::rename(log, absl::StrCat(log, ".", restarts_++), ec);
    }
    ASSERT_EQ(Cluster({"restart", absl::StrCat("node", node)}).exit_code, 0);
  }
  bool Waiting(int node) {
    return absl::StrContains(ReadText(absl::StrCat(dir_, "/logs/node", node, ".log")),
                             "waiting for its lease");
  }
  std::unique_ptr<v1::LedgerService::Stub> Ledger(int node) {
    return v1::LedgerService::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", base_ + 39 + node), grpc::InsecureChannelCredentials()));
  }
  std::unique_ptr<v1::AuditService::Stub> Audit(int node) {
    return v1::AuditService::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", base_ + 39 + node), grpc::InsecureChannelCredentials()));
  }
  // Appends, retrying the same event id through failures until `within`.
  std::optional<v1::AppendResponse> AppendRetrying(v1::LedgerService::Stub& stub,
                                                   const std::string& id,
                                                   std::chrono::seconds within) {
    auto deadline = Clock::now() + within;
    while (Clock::now() < deadline) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
      v1::AppendResponse resp;
      grpc::Status s = stub.Append(&ctx, OpenCase(id), &resp);
      if (s.ok()) return resp;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return std::nullopt;
  }
  // Every record of the log as (event id -> seqs), read from `node`.
  std::map<std::string, std::vector<uint64_t>> ReadAll(int node, uint64_t* size) {
    auto stub = Ledger(node);
    grpc::ClientContext ctx;
    v1::ReadLogRequest req;
    auto reader = stub->ReadLog(&ctx, req);
    v1::Record rec;
    std::map<std::string, std::vector<uint64_t>> out;
    *size = 0;
    while (reader->Read(&rec)) {
      out[rec.event_id()].push_back(rec.seq());
      *size = rec.seq() + 1;
    }
    EXPECT_TRUE(reader->Finish().ok());
    return out;
  }
  v1::VerifyRangeResponse Verify(int node) {
    grpc::ClientContext ctx;
    v1::VerifyRangeRequest req;
    v1::VerifyRangeResponse resp;
    grpc::Status s = Audit(node)->VerifyRange(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp;
  }
  std::string PgQuery(const std::string& sql) {
    std::string conninfo = absl::StrCat("host=127.0.0.1,127.0.0.1 port=", base_ + 20, ",",
                                        base_ + 21,
                                        " user=postgres dbname=caseledger "
                                        "target_session_attrs=read-write connect_timeout=2");
    PGconn* c = PQconnectdb(conninfo.c_str());
    PGresult* r = PQexec(c, sql.c_str());
    std::string out = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0
                          ? PQgetvalue(r, 0, 0)
                          : absl::StrCat("error: ", PQresultErrorMessage(r), PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    return out;
  }
  template <typename Pred>
  bool WaitFor(Pred pred, std::chrono::seconds within) {
    auto deadline = Clock::now() + within;
    while (Clock::now() < deadline) {
      if (pred()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  std::string dir_;
  int base_ = 0;
  int restarts_ = 0;
};

TEST_F(ClusterTest, FailoversKeepEveryAcknowledgedAppendOnceAndFenceTheStaleOwner) {
  // --- 1. kill -9 of the PostgreSQL primary under load. The client knows
  // both nodes and retries the same event id on either.
  std::mutex mu;
  std::map<std::string, uint64_t> acked;  // event id -> acknowledged seq
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::thread loader([&] {
    std::unique_ptr<v1::LedgerService::Stub> stubs[2] = {Ledger(1), Ledger(2)};
    for (int i = 0; !stop; ++i) {
      std::string id = absl::StrCat("load-", i);
      std::optional<v1::AppendResponse> r;
      auto deadline = Clock::now() + std::chrono::seconds(90);
      for (int k = 0; !r.has_value() && Clock::now() < deadline; ++k) {
        r = AppendRetrying(*stubs[k % 2], id, std::chrono::seconds(1));
      }
      if (!r.has_value()) {
        ++failures;
        return;
      }
      std::lock_guard<std::mutex> lock(mu);
      acked[id] = r->seq();
    }
  });
  auto acked_count = [&] {
    std::lock_guard<std::mutex> lock(mu);
    return acked.size();
  };
  ASSERT_TRUE(WaitFor([&] { return acked_count() >= 20; }, std::chrono::seconds(30)));
  int old_primary = Primary();
  ASSERT_NE(old_primary, 0) << Logs();
  int survivor = 3 - old_primary;
  std::string postmaster = ReadText(absl::StrCat(dir_, "/pg", old_primary, "/data/postmaster.pid"));
  pid_t pm = static_cast<pid_t>(std::atoll(postmaster.c_str()));
  ASSERT_GT(pm, 0);
  auto killed_at = Clock::now();
  ASSERT_EQ(kill(Pid(absl::StrCat("patroni", old_primary)), SIGKILL), 0);
  ASSERT_EQ(kill(pm, SIGKILL), 0);
  ASSERT_TRUE(WaitFor([&] { return Primary() == survivor; }, std::chrono::seconds(60))) << Logs();
  std::fprintf(stderr, "promoted pg%d %.1f s after kill -9 of pg%d\n", survivor,
               std::chrono::duration<double>(Clock::now() - killed_at).count(), old_primary);
  // Strict synchronous mode: commits wait until a standby is back.
  CommandResult r = Cluster({"restart", absl::StrCat("pg", old_primary)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  size_t at_restart = acked_count();
  ASSERT_TRUE(WaitFor([&] { return acked_count() >= at_restart + 20; }, std::chrono::seconds(90)))
      << Logs();
  std::fprintf(stderr, "appends resumed %.1f s after the kill\n",
               std::chrono::duration<double>(Clock::now() - killed_at).count());
  stop = true;
  loader.join();
  ASSERT_EQ(failures.load(), 0);

  int owner = Owner();
  ASSERT_NE(owner, 0);
  int other = 3 - owner;
  // Every acknowledged append exactly once, at its acknowledged seq.
  uint64_t size = 0;
  std::map<std::string, std::vector<uint64_t>> log = ReadAll(owner, &size);
  for (const auto& [id, seq] : acked) {
    ASSERT_EQ(log[id].size(), 1u) << id;
    EXPECT_EQ(log[id][0], seq) << id;
  }
  for (const auto& [id, seqs] : log) EXPECT_EQ(seqs.size(), 1u) << id;
  EXPECT_EQ(PgQuery("SELECT count(DISTINCT event_id) FROM cl_records"), std::to_string(size));
  v1::VerifyRangeResponse v = Verify(owner);
  EXPECT_TRUE(v.ok());
  EXPECT_EQ(v.records_checked(), size);
  // A retry of an acknowledged event id returns the original seq.
  {
    auto stub = Ledger(owner);
    auto again = AppendRetrying(*stub, "load-3", std::chrono::seconds(30));
    ASSERT_TRUE(again.has_value());
    EXPECT_TRUE(again->duplicate());
    EXPECT_EQ(again->seq(), acked["load-3"]);
  }

  // --- 2. kill -9 of the owner node: the other takes the lease and continues.
  // (A node whose lease lapsed during the failover was fenced and exited.)
  Restart(other);
  ASSERT_TRUE(WaitFor([&] { return Waiting(other); }, std::chrono::seconds(30))) << Logs();
  ASSERT_FALSE(ServingNow(other));
  ASSERT_EQ(kill(Pid(absl::StrCat("node", owner)), SIGKILL), 0);
  ASSERT_TRUE(WaitFor([&] { return ServingNow(other); }, std::chrono::seconds(30))) << Logs();
  auto next = Ledger(other);
  auto after = AppendRetrying(*next, "after-owner-kill", std::chrono::seconds(30));
  ASSERT_TRUE(after.has_value());
  EXPECT_FALSE(after->duplicate());
  EXPECT_EQ(after->seq(), size);
  v1::VerifyRangeResponse v2 = Verify(other);
  EXPECT_TRUE(v2.ok());
  EXPECT_EQ(v2.records_checked(), size + 1);
  auto retry = AppendRetrying(*next, "load-5", std::chrono::seconds(30));
  ASSERT_TRUE(retry.has_value());
  EXPECT_TRUE(retry->duplicate());
  EXPECT_EQ(retry->seq(), acked["load-5"]);

  // --- 3. the killed node returns without its RocksDB; the owner stops
  // past its lease.
  int back = owner, zombie_node = other;
  std::filesystem::remove_all(absl::StrCat(dir_, "/node", back, "/ledger"));
  std::filesystem::remove_all(absl::StrCat(dir_, "/node", back, "/projections"));
  Restart(back);
  ASSERT_TRUE(WaitFor([&] { return Waiting(back); }, std::chrono::seconds(30))) << Logs();
  pid_t zombie = Pid(absl::StrCat("node", zombie_node));
  ASSERT_EQ(kill(zombie, SIGSTOP), 0);
  ASSERT_TRUE(WaitFor([&] { return ServingNow(back); }, std::chrono::seconds(30))) << Logs();
  v1::VerifyRangeResponse v3 = Verify(back);
  EXPECT_TRUE(v3.ok());
  EXPECT_EQ(v3.records_checked(), size + 1);
  EXPECT_EQ(v3.root_hash(), v2.root_hash());  // rebuilt from PostgreSQL: same root
  // The zombie gets a write while stopped, then continues.
  std::optional<grpc::Status> zombie_status;
  std::thread zombie_write([&] {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(15));
    v1::AppendResponse resp;
    zombie_status = next->Append(&ctx, OpenCase("zombie-write"), &resp);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ASSERT_EQ(kill(zombie, SIGCONT), 0);
  zombie_write.join();
  ASSERT_TRUE(zombie_status.has_value());
  EXPECT_FALSE(zombie_status->ok());
  EXPECT_TRUE(WaitFor([&] { return Exited(zombie); }, std::chrono::seconds(15)))
      << "the stale owner should stop once fenced";
  EXPECT_TRUE(absl::StrContains(ReadText(absl::StrCat(dir_, "/logs/node", zombie_node, ".log")),
                                "lost the partition lease"))
      << Logs();
  EXPECT_EQ(PgQuery("SELECT count(*) FROM cl_records WHERE event_id = 'zombie-write'"), "0");
  // The new owner continues.
  auto resumed = Ledger(back);
  auto last = AppendRetrying(*resumed, "after-zombie", std::chrono::seconds(30));
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(last->seq(), size + 1);
  EXPECT_EQ(PgQuery("SELECT head_seq FROM cl_partitions WHERE part = 0"),
            std::to_string(size + 2));
}

}  // namespace
}  // namespace caseledger
