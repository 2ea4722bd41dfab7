// Appends per second through one node of a ledger on PostgreSQL with P = 1
// and with P partitions, in the same run against the same PostgreSQL 15
// (started here, tests/postgres_process): each partition has its own
// sequencer, group commit and PostgreSQL session, so the ratio shows what
// partitioning buys on this machine. A third run repeats P partitions with
// the README's default, payloads sealed and ids blinded under a master key
// (each seal checks its cached keys in cl_keys, CLUSTER.md "Data keys in a
// partitioned ledger"), against the plaintext run. Prints the numbers;
// asserts nothing.
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
           const NoteSigner& global_signer, bool sealed) {
  Exec(pg.conninfo(),
       "SET client_min_messages TO warning; "
       "DROP TABLE IF EXISTS cl_partitions, cl_records, cl_checkpoints, cl_keys, cl_global, "
       "cl_global_checkpoints, cl_cosignatures");
  PartitionedNodeOptions o;
  o.conninfo = pg.conninfo();
  o.node_id = "bench";
  o.partitions = partitions;
  o.dir = testing::NewTempDir(absl::StrCat("pg_parts_bench_", partitions));
  o.ledger.origin = testing::kTestOrigin;
  o.ledger.signer = &signer;
  o.global_signer = &global_signer;
  if (sealed) o.master_key = *AeadKey::FromBytes(std::string(kAeadKeySize, '\x5a'));
  auto node = PartitionedNode::Start(o);
  if (!node.ok()) {
    std::fprintf(stderr, "start: %s\n", node.status().ToString().c_str());
    std::exit(1);
  }
  std::atomic<uint64_t> done{0}, failed{0};
  // Untimed: one event per case first, so that the timed run measures
  // appends to known cases (a new case and subject first create their
  // salts and data key, each a synchronous PostgreSQL commit).
  std::vector<std::thread> warm;
  for (int t = 0; t < absl::GetFlag(FLAGS_threads); ++t) {
    warm.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        std::string stream = absl::StrCat("case-", t, "-", i);
        if (!(*node)->Append({testing::TestEvent(absl::StrCat("w-", t, "-", i), stream)}).ok()) {
          failed.fetch_add(1);
        }
      }
    });
  }
  for (std::thread& t : warm) t.join();
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
  std::printf("P = %d%s: %.0f events/s (%llu appended, %llu failed)\n", partitions,
              sealed ? " sealed and blinded" : " plaintext", rate,
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
  double one = caseledger::Run(**pg, 1, signer, *global_signer, false);
  int32_t p = absl::GetFlag(FLAGS_partitions);
  double many = caseledger::Run(**pg, p, signer, *global_signer, false);
  double sealed = caseledger::Run(**pg, p, signer, *global_signer, true);
  std::printf("P = %d / P = 1: %.2fx (%d appenders, one node, one PostgreSQL without standby)\n",
              p, many / one, absl::GetFlag(FLAGS_threads));
  std::printf("P = %d sealed and blinded / plaintext: %.2fx\n", p, sealed / many);
  return 0;
}
