// The cluster fixture of the end-to-end cluster tests (tests/cluster_test,
// tests/cluster_fault_test): a whole cluster started by tools/cluster.sh per
// test (3 etcd members, 2 PostgreSQL 15 under Patroni, 2 caseledger nodes,
// payloads encrypted), a load of writers retrying each event id on either
// node, and the after-checks of every fault (CheckEverything).
#ifndef CASELEDGER_TESTS_CLUSTER_FIXTURE_H_
#define CASELEDGER_TESTS_CLUSTER_FIXTURE_H_

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
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "ledger/checkpoint.h"
#include "ledger/hash.h"
#include "ledger/merkle_verify.h"
#include "ledger/pg_verify.h"
#include "proto/audit.grpc.pb.h"
#include "proto/ledger.grpc.pb.h"
#include "tests/postgres_process.h"
#include "tests/subprocess.h"

namespace caseledger::cluster_testing {

using Clock = std::chrono::steady_clock;

inline std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline v1::AppendRequest OpenCase(const std::string& id) {
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

inline bool PortFree(int port) {
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
inline bool Exited(pid_t pid) {
  if (kill(pid, 0) != 0) return true;
  std::string stat = ReadText(absl::StrCat("/proc/", pid, "/stat"));
  size_t close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] == 'Z';
}

class ClusterFixture : public ::testing::Test {
 protected:
  // `port_offset` places this fixture's ports in each block of 100 (below
  // 32768): cluster_test uses +0..+41 of a block, cluster_fault_test +50..+99,
  // so the two can run at the same time without ever picking the same port.
  explicit ClusterFixture(int port_offset = 0, std::vector<int> extra_ports = {})
      : port_offset_(port_offset), extra_ports_(std::move(extra_ports)) {}

  void SetUp() override {
    auto dir = testing::NewPostgresDir("cluster");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = *dir;
    std::mt19937 rng(std::random_device{}());
    for (int tries = 0; tries < 50; ++tries) {
      // Below Linux's ephemeral range (32768 and up): there a client's
      // outgoing connection (even one to the node's port while nothing
      // listens on it) can hold the port a node is about to bind.
      int base = 20000 + port_offset_ + static_cast<int>(rng() % 120) * 100;
      bool free = true;
      std::vector<int> offsets = {0, 1, 2, 10, 11, 12, 20, 21, 30, 31, 40, 41};
      offsets.insert(offsets.end(), extra_ports_.begin(), extra_ports_.end());
      for (int off : offsets) free = free && PortFree(base + off);
      if (free) {
        base_ = base;
        break;
      }
    }
    ASSERT_NE(base_, 0);
    ASSERT_NO_FATAL_FAILURE(BeforeStart());
    testing::CommandResult r = Cluster({"start"});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err << Logs();
  }
  // Called once base_ is chosen, before the cluster starts (env_, proxies).
  virtual void BeforeStart() {}
  void TearDown() override {
    stop_ = true;
    for (std::thread& t : load_) t.join();
    Cluster({"stop"});
    std::error_code ec;
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir_, ec);
  }

  // Runs tools/cluster.sh with the fixture's environment, then env_, then
  // `env` (a later NAME=value wins).
  testing::CommandResult Cluster(std::vector<std::string> args,
                                 const std::vector<std::string>& env = {}) {
    std::vector<std::string> argv = {"/usr/bin/env",
                                     "CLUSTER_DIR=" + dir_,
                                     absl::StrCat("CLUSTER_BASE_PORT=", base_),
                                     "CLUSTER_LEASE_TTL=2s",
                                     "CLUSTER_TTL=10",
                                     // more checkpoints for the no-fork check
                                     "CLUSTER_NODE_FLAGS=--checkpoint_interval=1s",
                                     "CASELEDGER_SERVE_PREBUILT=1"};
    argv.insert(argv.end(), env_.begin(), env_.end());
    argv.insert(argv.end(), env.begin(), env.end());
    argv.push_back("bash");
    argv.push_back("tools/cluster.sh");
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::RunCommand(argv);
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
    testing::CommandResult r = Cluster({"status"});
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
  // The nodes' --pg_conninfo (tools/cluster.sh): whichever member is primary.
  std::string Conninfo() {
    return absl::StrCat("host=127.0.0.1,127.0.0.1 port=", base_ + 20, ",", base_ + 21,
                        " user=postgres dbname=caseledger "
                        "target_session_attrs=read-write connect_timeout=2");
  }
  std::string PgQuery(const std::string& sql) {
    PGconn* c = PQconnectdb(Conninfo().c_str());
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


  // The etcd member (0..2) that leads the Raft group now, or -1.
  int EtcdLeader() {
    testing::CommandResult r = Cluster({"status"});
    for (int i : {0, 1, 2}) {
      std::string key = absl::StrCat("etcd", i, " ");
      size_t at = r.out.find(key);
      if (at == std::string::npos) continue;
      std::string line = r.out.substr(at, r.out.find('\n', at) - at);
      if (absl::StrContains(line, " up leader")) return i;
    }
    return -1;
  }
  // kill -9 of a Patroni member and of its postmaster (which outlives its
  // Patroni otherwise).
  void KillPgMember(int m) {
    std::string postmaster = ReadText(absl::StrCat(dir_, "/pg", m, "/data/postmaster.pid"));
    pid_t pm = static_cast<pid_t>(std::atoll(postmaster.c_str()));
    ASSERT_GT(pm, 0);
    ASSERT_EQ(kill(Pid(absl::StrCat("patroni", m)), SIGKILL), 0);
    ASSERT_EQ(kill(pm, SIGKILL), 0);
  }

  // The load: `writers` threads append fresh cases "<prefix><w>-<i>", each
  // retrying its event id on either node until it is acknowledged (90 s at
  // most, else a failure); a watcher keeps every checkpoint note either node
  // serves meanwhile.
  void StartLoad(const std::string& prefix, int writers) {
    stop_ = false;
    for (int w = 0; w < writers; ++w) {
      load_.emplace_back([this, prefix, w] {
        std::unique_ptr<v1::LedgerService::Stub> stubs[2] = {Ledger(1), Ledger(2)};
        int k = 0;
        for (int i = 0; !stop_; ++i) {
          std::string id = absl::StrCat(prefix, w, "-", i);
          std::optional<v1::AppendResponse> r;
          auto deadline = Clock::now() + std::chrono::seconds(90);
          // (first on the node that acknowledged the previous append: a
          // node that hangs costs each append a timeout otherwise)
          for (; !r.has_value() && Clock::now() < deadline; ++k) {
            r = AppendRetrying(*stubs[k % 2], id, std::chrono::seconds(1));
          }
          if (!r.has_value()) {
            ++failures_;
            return;
          }
          --k;
          absl::MutexLock lock(&mu_);
          acked_[id] = r->seq();
        }
      });
    }
    load_.emplace_back([this] {
      while (!stop_) {
        for (int node : {1, 2}) {
          grpc::ClientContext ctx;
          ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(1));
          v1::GetCheckpointRequest req;
          v1::Checkpoint cp;
          if (Ledger(node)->GetCheckpoint(&ctx, req, &cp).ok() && !cp.note().empty()) {
            absl::MutexLock lock(&mu_);
            notes_.insert(cp.note());
          }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
      }
    });
  }
  // True once a checkpoint note not seen before this call has been read
  // (the poller started by StartLoad reads them; the nodes sign one per
  // --checkpoint_interval=1s while records arrive).
  bool WaitForNewCheckpoint(std::chrono::seconds within) {
    size_t seen = 0;
    {
      absl::MutexLock lock(&mu_);
      seen = notes_.size();
    }
    return WaitFor(
        [&] {
          absl::MutexLock lock(&mu_);
          return notes_.size() > seen;
        },
        within);
  }
  // Stops the load once a checkpoint signed after the round's fault has been
  // read, so that the no-fork check has one from each side of it (a healthy
  // round can reach its acknowledgement counts within one interval).
  void StopLoad() {
    EXPECT_TRUE(WaitForNewCheckpoint(std::chrono::seconds(30)))
        << "no new checkpoint was served within 30 s";
    stop_ = true;
    for (std::thread& t : load_) t.join();
    load_.clear();
    EXPECT_EQ(failures_.load(), 0) << "an append was not acknowledged within 90 s";
  }
  size_t AckedCount() {
    absl::MutexLock lock(&mu_);
    return acked_.size();
  }
  // True once `more` further appends have been acknowledged.
  bool WaitForAcks(size_t more, std::chrono::seconds within) {
    size_t want = AckedCount() + more;
    return WaitFor([&] { return AckedCount() >= want; }, within);
  }

  // The after-checks of every round, with the load stopped; `size` is the
  // log's size. The checkpoint notes seen are each checked against the
  // owner's newest checkpoint with a consistency proof: each is then a
  // prefix of one tree, so every pair of them is consistent (no fork).
  void CheckEverything(const std::string& round, uint64_t* size) {
    SCOPED_TRACE(round);
    int owner = Owner();
    ASSERT_NE(owner, 0) << Logs();
    std::map<std::string, uint64_t> acked;
    std::set<std::string> notes;
    {
      absl::MutexLock lock(&mu_);
      acked = acked_;
      notes = notes_;
    }
    // Every acknowledged append exactly once, at its acknowledged seq.
    std::map<std::string, std::vector<uint64_t>> log = ReadAll(owner, size);
    for (const auto& [id, seq] : acked) {
      auto it = log.find(id);
      EXPECT_TRUE(it != log.end()) << "acknowledged append " << id << " is not in the log";
      if (it != log.end()) EXPECT_EQ(it->second, std::vector<uint64_t>{seq}) << id;
    }
    for (const auto& [id, seqs] : log) EXPECT_EQ(seqs.size(), 1u) << id;
    EXPECT_EQ(PgQuery("SELECT count(DISTINCT event_id) FROM cl_records"), std::to_string(*size));
    EXPECT_EQ(PgQuery("SELECT head_seq FROM cl_partitions WHERE part = 0"),
              std::to_string(*size));
    v1::VerifyRangeResponse v = Verify(owner);
    EXPECT_TRUE(v.ok());
    EXPECT_EQ(v.records_checked(), *size);
    // The chain and every stored checkpoint, from PostgreSQL alone.
    v1::PublicKey pk;
    {
      grpc::ClientContext ctx;
      ASSERT_TRUE(Ledger(owner)->GetPublicKey(&ctx, v1::GetPublicKeyRequest(), &pk).ok());
    }
    absl::StatusOr<NoteVerifier> verifier = NoteVerifier::FromVerifierKey(pk.verifier_key());
    ASSERT_TRUE(verifier.ok()) << verifier.status();
    absl::StatusOr<PgLedgerSummary> pg = VerifyPgLedger(Conninfo(), pk.origin(), *verifier, *verifier);
    EXPECT_TRUE(pg.ok()) << pg.status();
    if (pg.ok()) EXPECT_EQ(pg->partition_sizes, std::vector<uint64_t>{*size});
    // Every checkpoint served during the load against the newest one.
    v1::Checkpoint newest;
    {
      grpc::ClientContext ctx;
      ASSERT_TRUE(Ledger(owner)->GetCheckpoint(&ctx, v1::GetCheckpointRequest(), &newest).ok());
    }
    absl::StatusOr<Checkpoint> last = OpenCheckpoint(newest.note(), *verifier, pk.origin());
    ASSERT_TRUE(last.ok()) << last.status();
    EXPECT_GE(notes.size(), 2u) << "too few checkpoints seen for the no-fork check";
    for (const std::string& note : notes) {
      absl::StatusOr<Checkpoint> cp = OpenCheckpoint(note, *verifier, pk.origin());
      ASSERT_TRUE(cp.ok()) << cp.status() << "\n" << note;
      ASSERT_LE(cp->size, last->size) << note;
      grpc::ClientContext ctx;
      v1::ConsistencyProofRequest req;
      req.set_from_size(cp->size);
      req.set_to_size(last->size);
      v1::ConsistencyProof proof;
      ASSERT_TRUE(Ledger(owner)->GetConsistencyProof(&ctx, req, &proof).ok());
      std::vector<Hash> hashes;
      for (const std::string& h : proof.hashes()) {
        absl::StatusOr<Hash> hash = HashFromBytes(h);
        ASSERT_TRUE(hash.ok()) << hash.status();
        hashes.push_back(*hash);
      }
      absl::Status consistent =
          VerifyConsistency(cp->size, last->size, hashes, cp->root, last->root);
      EXPECT_TRUE(consistent.ok()) << consistent << "\n" << note << "\nnewest:\n" << newest.note();
    }
    // A retry of an acknowledged event id returns the original seq.
    ASSERT_FALSE(acked.empty());
    const auto& [id, seq] = *acked.begin();
    auto stub = Ledger(owner);
    auto again = AppendRetrying(*stub, id, std::chrono::seconds(30));
    ASSERT_TRUE(again.has_value());
    EXPECT_TRUE(again->duplicate()) << id;
    EXPECT_EQ(again->seq(), seq) << id;
  }
  uint64_t AckedSeq(const std::string& id) {
    absl::MutexLock lock(&mu_);
    return acked_.at(id);
  }

  const int port_offset_;
  const std::vector<int> extra_ports_;  // more offsets from base_ the test uses
  std::vector<std::string> env_;        // more NAME=value for every cluster.sh run
  std::string dir_;
  int base_ = 0;
  int restarts_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> failures_{0};
  std::vector<std::thread> load_;
  absl::Mutex mu_;
  std::map<std::string, uint64_t> acked_ ABSL_GUARDED_BY(mu_);  // event id -> acknowledged seq
  std::set<std::string> notes_ ABSL_GUARDED_BY(mu_);            // checkpoint notes seen
};

}  // namespace caseledger::cluster_testing

#endif  // CASELEDGER_TESTS_CLUSTER_FIXTURE_H_
