// Appends per second and per-call latency through a ledger on PostgreSQL
// split into P partitions (ledger/CLUSTER.md "Partitions"), for each P in
// --partitions, on one node and on two (PartitionedNode instances in this
// process, each with its own sequencers and PostgreSQL sessions, splitting
// the partitions), unary and batched, all in the same run against the same
// PostgreSQL, on fresh tables each time. Prints the numbers; asserts nothing.
//
//   bazel run -c opt //ledger:pg_partitions_benchmark -- --seconds=10
//       starts its own PostgreSQL 15 (tests/postgres_process, no standby);
//   pg_partitions_benchmark --conninfo='host=... dbname=partbench' --json
//       uses that database instead (tools/bench_cluster.sh points it at the
//       cluster's Patroni primary, whose commits wait for the synchronous
//       standby), printing one JSON object per run.
//
// Payloads are 512 B, plaintext unless --sealed.
#include <postgresql/libpq-fe.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "ledger/pg_partitions.h"
#include "tests/postgres_process.h"
#include "tests/test_util.h"

ABSL_FLAG(std::string, partitions, "1,2,4", "the values of P to run, comma-separated");
ABSL_FLAG(std::string, nodes, "1,2", "how many nodes to split the partitions over (1 or 2)");
ABSL_FLAG(std::string, modes, "unary,batch",
          "unary: one event per Append; batch: --batch_size events of one case per AppendBatch");
ABSL_FLAG(int, threads, 64, "concurrent callers in unary mode");
ABSL_FLAG(int, batch_threads, 8, "concurrent callers in batch mode");
ABSL_FLAG(int, batch_size, 100, "events per AppendBatch");
ABSL_FLAG(int, payload_bytes, 512, "bytes of the event's one field");
ABSL_FLAG(int, seconds, 10, "length of each run");
ABSL_FLAG(std::string, conninfo, "",
          "PostgreSQL to use (its ledger tables are dropped before each run); empty: start one");
ABSL_FLAG(bool, json, false, "one JSON object per run instead of a table");
ABSL_FLAG(bool, sealed, false,
          "as the README's default: payloads sealed and ids blinded under a master key (each "
          "seal checks its cached keys in cl_keys, CLUSTER.md \"Data keys in a partitioned "
          "ledger\"); compare with a run without it");

namespace caseledger {
namespace {

void Exec(const std::string& conninfo, const char* sql) {
  PGconn* c = PQconnectdb(conninfo.c_str());
  PQclear(PQexec(c, sql));
  PQfinish(c);
}

std::vector<int> IntList(const std::string& flag, const std::string& text) {
  std::vector<int> out;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    int v = 0;
    if (!absl::SimpleAtoi(part, &v) || v < 1) {
      std::fprintf(stderr, "--%s: got %s, want positive integers separated by commas\n",
                   flag.c_str(), text.c_str());
      std::exit(2);
    }
    out.push_back(v);
  }
  return out;
}

struct Result {
  double events_per_sec = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  uint64_t failed = 0;
};

// One run on fresh tables: `nodes` PartitionedNodes split P partitions
// (the first takes ceil(P / 2) of them), callers route each call to the
// node owning the case's partition.
Result Run(const std::string& conninfo, int32_t partitions, int nodes, bool batch,
           const NoteSigner& signer, const NoteSigner& global_signer) {
  Exec(conninfo,
       "SET client_min_messages TO warning; "
       "DROP TABLE IF EXISTS cl_partitions, cl_records, cl_checkpoints, cl_keys, cl_global, "
       "cl_global_checkpoints, cl_cosignatures");
  std::vector<std::unique_ptr<PartitionedNode>> started;
  std::vector<std::string> dirs;
  std::map<int32_t, PartitionedNode*> owner;
  for (int n = 0; n < nodes; ++n) {
    PartitionedNodeOptions o;
    o.conninfo = conninfo;
    o.node_id = absl::StrCat("bench-", n);
    o.address = absl::StrCat("127.0.0.1:", 7000 + n);
    o.partitions = partitions;
    o.max_new_partitions = n == 0 && nodes > 1 ? (partitions + 1) / 2 : 0;
    o.dir = testing::NewTempDir(absl::StrCat("pg_parts_bench_", partitions, "_", nodes, "_", n));
    dirs.push_back(o.dir);
    o.ledger.origin = testing::kTestOrigin;
    o.ledger.signer = &signer;
    o.global_signer = &global_signer;
    if (absl::GetFlag(FLAGS_sealed)) {
      o.master_key = *AeadKey::FromBytes(std::string(kAeadKeySize, '\x5a'));
    }
    auto node = PartitionedNode::Start(o);
    if (!node.ok()) {
      std::fprintf(stderr, "start: %s\n", node.status().ToString().c_str());
      std::exit(1);
    }
    for (int32_t p : (*node)->Owned()) owner[p] = node->get();
    started.push_back(*std::move(node));
  }
  if (static_cast<int32_t>(owner.size()) != partitions) {
    std::fprintf(stderr, "only %zu of %d partitions have an owner\n", owner.size(), partitions);
    std::exit(1);
  }
  const int threads = batch ? absl::GetFlag(FLAGS_batch_threads) : absl::GetFlag(FLAGS_threads);
  const int batch_size = batch ? absl::GetFlag(FLAGS_batch_size) : 1;
  const int payload = absl::GetFlag(FLAGS_payload_bytes);
  std::atomic<uint64_t> done{0}, failed{0};
  absl::Mutex mu;
  std::vector<double> latencies_ms;  // per call
  const absl::Time end = absl::Now() + absl::Seconds(absl::GetFlag(FLAGS_seconds));
  std::vector<std::thread> callers;
  for (int t = 0; t < threads; ++t) {
    callers.emplace_back([&, t] {
      std::vector<double> mine;
      for (uint64_t i = 0; absl::Now() < end; ++i) {
        // unary: 50 cases per caller; batch: a fresh case per call
        std::string stream = batch ? absl::StrCat("case-", t, "-", i)
                                   : absl::StrCat("case-", t, "-", i % 50);
        PartitionedNode* node = owner.at(static_cast<int32_t>(PartitionOf(stream, partitions)));
        std::vector<AppendRequest> requests;
        for (int k = 0; k < batch_size; ++k) {
          requests.push_back(
              {testing::TestEvent(absl::StrCat("e-", t, "-", i, "-", k), stream, payload)});
        }
        absl::Time start = absl::Now();
        bool ok = batch ? node->AppendBatch(std::move(requests)).ok()
                        : node->Append(std::move(requests[0])).ok();
        mine.push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
        (ok ? done : failed).fetch_add(ok ? batch_size : 1);
      }
      absl::MutexLock lock(&mu);
      latencies_ms.insert(latencies_ms.end(), mine.begin(), mine.end());
    });
  }
  for (std::thread& t : callers) t.join();
  started.clear();
  for (const std::string& dir : dirs) std::filesystem::remove_all(dir);
  Result r;
  r.events_per_sec = static_cast<double>(done.load()) / absl::GetFlag(FLAGS_seconds);
  r.failed = failed.load();
  std::sort(latencies_ms.begin(), latencies_ms.end());
  if (!latencies_ms.empty()) {
    auto pct = [&](double q) {
      return latencies_ms[std::min(latencies_ms.size() - 1,
                                   static_cast<size_t>(q * latencies_ms.size()))];
    };
    r.p50_ms = pct(0.5);
    r.p99_ms = pct(0.99);
  }
  return r;
}

}  // namespace
}  // namespace caseledger

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  std::vector<int> ps = caseledger::IntList("partitions", absl::GetFlag(FLAGS_partitions));
  std::vector<int> ns = caseledger::IntList("nodes", absl::GetFlag(FLAGS_nodes));
  std::vector<std::string> modes = absl::StrSplit(absl::GetFlag(FLAGS_modes), ',');
  std::unique_ptr<caseledger::testing::PostgresProcess> own;
  std::string conninfo = absl::GetFlag(FLAGS_conninfo);
  if (conninfo.empty()) {
    auto pg = caseledger::testing::PostgresProcess::Start("pg_parts_bench");
    if (!pg.ok()) {
      std::fprintf(stderr, "postgres: %s\n", pg.status().ToString().c_str());
      return 1;
    }
    own = *std::move(pg);
    conninfo = own->conninfo();
  }
  caseledger::NoteSigner signer = caseledger::testing::TestNoteSigner();
  auto key = caseledger::Ed25519Signer::FromSeed(std::string(32, '\x42'));
  auto global_signer = caseledger::NoteSigner::New(
      caseledger::GlobalOrigin(caseledger::testing::kTestOrigin), *std::move(key));
  if (!global_signer.ok()) return 1;
  const bool json = absl::GetFlag(FLAGS_json);
  if (!json) {
    std::printf("| mode | nodes | P | events/s | p50 | p99 | / P = 1 |\n|---|---|---|---|---|---|---|\n");
  }
  for (const std::string& mode : modes) {
    if (mode != "unary" && mode != "batch") {
      std::fprintf(stderr, "--modes: got %s, want unary or batch\n", mode.c_str());
      return 2;
    }
    bool batch = mode == "batch";
    for (int nodes : ns) {
      double base = 0;
      for (int p : ps) {
        caseledger::Result r = caseledger::Run(conninfo, p, nodes, batch, signer, *global_signer);
        if (p == 1) base = r.events_per_sec;
        if (json) {
          std::printf("{\"mode\":\"%s\",\"nodes\":%d,\"partitions\":%d,\"events_per_sec\":%.1f,"
                      "\"p50_ms\":%.2f,\"p99_ms\":%.2f,\"failed\":%llu}\n",
                      mode.c_str(), nodes, p, r.events_per_sec, r.p50_ms, r.p99_ms,
                      static_cast<unsigned long long>(r.failed));
        } else {
          std::string ratio = base > 0 ? absl::StrFormat("%.2f×", r.events_per_sec / base) : "";
          std::printf("| %s | %d | %d | %.0f | %.1f ms | %.1f ms | %s |\n", mode.c_str(), nodes, p,
                      r.events_per_sec, r.p50_ms, r.p99_ms, ratio.c_str());
        }
        std::fflush(stdout);
      }
    }
  }
  return 0;
}
