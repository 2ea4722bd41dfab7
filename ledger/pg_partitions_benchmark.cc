// Appends per second through one node of a ledger on PostgreSQL with P = 1
// and with P partitions, in the same run against the same PostgreSQL 15
// (started here, tests/postgres_process): each partition has its own
// sequencer, group commit and PostgreSQL session, so the ratio shows what
// partitioning buys on this machine. Prints the numbers; asserts nothing.
//
//   bazel run -c opt //ledger:pg_partitions_benchmark -- --partitions=4 --threads=32 --seconds=10
#include <postgresql/libpq-fe.h>

#include <atomic>
#include <cstdio>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "ledger/pg_partitions.h"
#include "tests/postgres_process.h"
#include "tests/test_util.h"

ABSL_FLAG(int32_t, partitions, 4, "P of the partitioned run (compared with P = 1)");
ABSL_FLAG(int, threads, 32, "concurrent appenders");
ABSL_FLAG(int, seconds, 10, "length of each run");

namespace caseledger {
namespace {

void Exec(const std::string& conninfo, const char* sql) {
  PGconn* c = PQconnectdb(conninfo.c_str());
  PQclear(PQexec(c, sql));
  PQfinish(c);
}

// Events per second with `partitions`, on fresh tables.
double Run(const testing::PostgresProcess& pg, int32_t partitions, const NoteSigner& signer,
           const NoteSigner& global_signer) {
  Exec(pg.conninfo(),
       "SET client_min_messages TO warning; "
       "DROP TABLE IF EXISTS cl_partitions, cl_records, cl_checkpoints, cl_keys, cl_global, "
       "cl_global_checkpoints");
  PartitionedNodeOptions o;
  o.conninfo = pg.conninfo();
  o.node_id = "bench";
  o.partitions = partitions;
  o.dir = testing::NewTempDir(absl::StrCat("pg_parts_bench_", partitions));
  o.ledger.origin = testing::kTestOrigin;
  o.ledger.signer = &signer;
  o.global_signer = &global_signer;
  auto node = PartitionedNode::Start(o);
  if (!node.ok()) {
    std::fprintf(stderr, "start: %s\n", node.status().ToString().c_str());
    std::exit(1);
  }
  std::atomic<uint64_t> done{0}, failed{0};
  const absl::Time end = absl::Now() + absl::Seconds(absl::GetFlag(FLAGS_seconds));
  std::vector<std::thread> threads;
  for (int t = 0; t < absl::GetFlag(FLAGS_threads); ++t) {
    threads.emplace_back([&, t] {
      for (uint64_t i = 0; absl::Now() < end; ++i) {
        std::string stream = absl::StrCat("case-", t, "-", i % 50);
        auto r = (*node)->Append({testing::TestEvent(absl::StrCat("e-", t, "-", i), stream)});
        (r.ok() ? done : failed).fetch_add(1);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  double rate = static_cast<double>(done.load()) / absl::GetFlag(FLAGS_seconds);
  std::printf("P = %d: %.0f events/s (%llu appended, %llu failed)\n", partitions, rate,
              static_cast<unsigned long long>(done.load()),
              static_cast<unsigned long long>(failed.load()));
  return rate;
}

}  // namespace
}  // namespace caseledger

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  auto pg = caseledger::testing::PostgresProcess::Start("pg_parts_bench");
  if (!pg.ok()) {
    std::fprintf(stderr, "postgres: %s\n", pg.status().ToString().c_str());
    return 1;
  }
  caseledger::NoteSigner signer = caseledger::testing::TestNoteSigner();
  auto key = caseledger::Ed25519Signer::FromSeed(std::string(32, '\x42'));
  auto global_signer = caseledger::NoteSigner::New(
      caseledger::GlobalOrigin(caseledger::testing::kTestOrigin), *std::move(key));
  if (!global_signer.ok()) return 1;
  double one = caseledger::Run(**pg, 1, signer, *global_signer);
  int32_t p = absl::GetFlag(FLAGS_partitions);
  double many = caseledger::Run(**pg, p, signer, *global_signer);
  std::printf("P = %d / P = 1: %.2fx (%d appenders, one node, one PostgreSQL without standby)\n",
              p, many / one, absl::GetFlag(FLAGS_threads));
  return 0;
}
