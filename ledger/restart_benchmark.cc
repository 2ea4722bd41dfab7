// Restart cost and memory at size: builds (or reuses) a data directory of
// --records records, then opens it again in a fresh process and prints how
// long opening the store and the ledger took and the process's resident set.
//
//   bazel build //ledger:restart_benchmark
//   bazel-bin/ledger/restart_benchmark --records=1000000 --dir=/tmp/restart_1m
//
// Without --dir the directory goes under $TEST_TMPDIR (or /tmp) and is
// removed at exit. All but the last --tail records are written by the direct
// builder (ledger_builder.h: the bytes Ledger::Append stores, without sync,
// WAL or per-event lookups; 10M records in minutes), the --tail through the
// ledger's own AppendBatch, as a server would have written them; then the
// build ends as kill -9 would (--crash, the default): the first reopen
// replays what a crash leaves, later ones follow a clean close. With --dir
// the directory is kept, and a later run with the same --dir builds only
// what is missing (and appends another --tail). Events go to --cases cases,
// one client (subject) each, with 512-byte payloads. Each reopen then
// appends --burst events spread over all clients and prints the RSS after
// them beside the subject map's cache size (--subject_map_cache_mb): the
// map's nodes are on disk, so memory stays bounded by the caches however
// many clients the ledger has. A benchmark, not a test: it prints numbers and
// asserts nothing about them.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "ledger/ledger.h"
#include "ledger/ledger_builder.h"
#include "ledger/rocks_store.h"
#include "tests/test_util.h"

ABSL_FLAG(uint64_t, records, 10000000, "ledger size to build and reopen");
ABSL_FLAG(uint64_t, cases, 0, "cases (streams), one subject each; 0 = records / 20");
ABSL_FLAG(std::string, dir, "", "data directory to build or reuse; empty = a temporary one");
ABSL_FLAG(int, reopens, 3, "how many times to reopen, each in a fresh process");
ABSL_FLAG(bool, crash, true,
          "end the build as kill -9 would (exit without closing the store), so that the "
          "first reopen shows what a crash leaves to replay; later reopens follow a clean close");
ABSL_FLAG(int, build_threads, 4, "threads appending the --tail");
ABSL_FLAG(uint64_t, tail, 100000,
          "after the build, append this many events through the ledger (AppendBatch, synced "
          "group commits, checkpoints by count and time as configured by default) before the "
          "build ends (as kill -9 would with --crash): what a server leaves at a crash");
ABSL_FLAG(bool, open_only, false, "internal: open --dir once and print the figures");
ABSL_FLAG(uint64_t, burst, 200000,
          "after each reopen, append this many events spread over all --cases clients (one "
          "per case) and print the RSS after them: the subject map's nodes are read through "
          "its bounded cache");
ABSL_FLAG(uint64_t, subject_map_cache_mb, caseledger::kDefaultSubjectMapCacheBytes >> 20,
          "LedgerOptions::subject_map_cache_bytes, in MiB");

namespace caseledger {
namespace {

[[noreturn]] void Die(const std::string& what, const absl::Status& s) {
  std::fprintf(stderr, "restart_benchmark: %s: %s\n", what.c_str(), s.ToString().c_str());
  std::exit(1);
}

// User + system CPU seconds of this process so far.
double CpuSeconds() {
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// VmRSS and VmHWM of this process, in MiB.
std::pair<double, double> ResidentMiB() {
  std::ifstream in("/proc/self/status");
  std::string line;
  double rss = 0, hwm = 0;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) rss = std::atof(line.c_str() + 6) / 1024;
    if (line.rfind("VmHWM:", 0) == 0) hwm = std::atof(line.c_str() + 6) / 1024;
  }
  return {rss, hwm};
}

struct Opened {
  std::unique_ptr<NoteSigner> signer;
  std::unique_ptr<Ledger> ledger;
};

// With `store_secs`, how long opening the store took (RocksDB's open, WAL
// replay included, and the index tail's read-back) is put there.
Opened OpenAt(const std::string& dir, double* store_secs = nullptr) {
  const absl::Time t0 = absl::Now();
  Opened o;
  o.signer = std::make_unique<NoteSigner>(testing::TestNoteSigner());
  RocksStoreOptions store_options;
  store_options.path = dir;
  absl::StatusOr<std::unique_ptr<LogStore>> store = OpenRocksStore(store_options);
  if (!store.ok()) Die("open store", store.status());
  if (store_secs != nullptr) *store_secs = absl::ToDoubleSeconds(absl::Now() - t0);
  LedgerOptions options;
  options.origin = testing::kTestOrigin;
  options.signer = o.signer.get();
  options.subject_map_cache_bytes = absl::GetFlag(FLAGS_subject_map_cache_mb) << 20;
  absl::StatusOr<std::unique_ptr<Ledger>> ledger = Ledger::Open(options, *std::move(store));
  if (!ledger.ok()) Die("open ledger", ledger.status());
  o.ledger = *std::move(ledger);
  return o;
}

// The ledger with `dir`'s latest checkpoint covering every record: opened,
// checkpointed and closed when it does not (a crash tail of an earlier run).
void CheckpointAll(const std::string& dir) {
  Opened o = OpenAt(dir);
  if (o.ledger->Size() == 0) return;
  absl::StatusOr<StoredCheckpoint> cp = o.ledger->Checkpoint();
  if (!cp.ok()) Die("checkpoint", cp.status());
}

uint64_t DiskBytes(const std::string& dir) {
  uint64_t bytes = 0;
  for (const auto& f : std::filesystem::recursive_directory_iterator(dir)) {
    if (f.is_regular_file()) bytes += f.file_size();
  }
  return bytes;
}

Event BenchEvent(uint64_t n, uint64_t cases) {
  return testing::TestEvent(absl::StrCat("ev-", n), absl::StrCat("case-", n % cases), 512);
}

// Grows the ledger to `records` records with the direct builder
// (ledger_builder.h: the bytes Ledger::Append stores, written without sync
// or WAL and flushed when the store closes).
void Build(const std::string& dir, uint64_t records, uint64_t cases) {
  CheckpointAll(dir);
  RocksStoreOptions store_options;
  store_options.path = dir;
  store_options.bulk_load = true;
  store_options.write_buffer_bytes = 64 << 20;
  store_options.total_write_buffer_bytes = 512 << 20;
  absl::StatusOr<std::unique_ptr<LogStore>> store = OpenRocksStore(store_options);
  if (!store.ok()) Die("open store", store.status());
  absl::StatusOr<uint64_t> start = (*store)->Size();
  if (!start.ok()) Die("size", start.status());
  if (*start >= records) return;
  std::fprintf(stderr, "restart_benchmark: building %llu records in %s\n",
               static_cast<unsigned long long>(records - *start), dir.c_str());
  const absl::Time t0 = absl::Now();
  const double cpu0 = CpuSeconds();
  NoteSigner signer = testing::TestNoteSigner();
  LedgerBuilderOptions options;
  options.origin = testing::kTestOrigin;
  options.signer = &signer;
  // One checkpoint at the end, the subject map built at once: a map Set per
  // subject and checkpoint is most of the cost at millions of clients. The
  // --tail then checkpoints as a server does.
  options.checkpoint_every_records = 0;
  options.progress = [next = (*start / 1000000 + 1) * 1000000](uint64_t size) mutable {
    if (size < next) return;
    std::fprintf(stderr, "restart_benchmark: %llu records\n", static_cast<unsigned long long>(size));
    next = (size / 1000000 + 1) * 1000000;
  };
  absl::Status built = BuildLedger(
      options, records - *start, [cases](uint64_t n) { return BenchEvent(n, cases); },
      store->get());
  if (!built.ok()) Die("build", built);
  store->reset();  // flushes the memtables: only now is the build on disk
  const double secs = absl::ToDoubleSeconds(absl::Now() - t0);
  const double cpu = CpuSeconds() - cpu0;
  std::printf(
      "built %llu records in %.1f s (%.0f records/s, ledger_builder, flushed at the end), "
      "%.1f us CPU per record; builder RSS %.0f MiB (peak %.0f MiB); data directory %.2f GiB\n",
      static_cast<unsigned long long>(records - *start), secs, (records - *start) / secs,
      cpu * 1e6 / (records - *start), ResidentMiB().first, ResidentMiB().second,
      DiskBytes(dir) / 1073741824.0);
}

// Appends `count` events through the ledger (AppendBatch from
// --build_threads threads, each call a durable group commit), as a server
// would have before a crash; returns the ledger open.
Opened AppendTail(const std::string& dir, uint64_t count, uint64_t cases) {
  Opened o = OpenAt(dir);
  const uint64_t start = o.ledger->Size();
  const absl::Time t0 = absl::Now();
  constexpr uint64_t kBatch = 1000;
  const int threads = std::max(1, absl::GetFlag(FLAGS_build_threads));
  std::atomic<uint64_t> next{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      for (;;) {
        const uint64_t from = next.fetch_add(kBatch);
        if (from >= count) return;
        const uint64_t end = std::min(count, from + kBatch);
        std::vector<AppendRequest> batch;
        batch.reserve(end - from);
        for (uint64_t n = from; n < end; ++n) {
          batch.push_back(AppendRequest{BenchEvent(start + n, cases), std::nullopt});
        }
        absl::StatusOr<std::vector<AppendResult>> r = o.ledger->AppendBatch(std::move(batch));
        if (!r.ok()) Die("append", r.status());
      }
    });
  }
  for (std::thread& w : workers) w.join();
  const double secs = absl::ToDoubleSeconds(absl::Now() - t0);
  std::printf("appended %llu records through AppendBatch(%llu) from %d threads in %.1f s "
              "(%.0f records/s)\n",
              static_cast<unsigned long long>(count), static_cast<unsigned long long>(kBatch),
              threads, secs, count / secs);
  return o;
}

// One open, in this (fresh) process: the figures on one line; then a burst
// of appends over all clients and the RSS after it.
int OpenOnce(const std::string& dir, const std::string& after, uint64_t cases) {
  const absl::Time t0 = absl::Now();
  const double cpu0 = CpuSeconds();
  double store_secs = 0;
  Opened o = OpenAt(dir, &store_secs);
  const double secs = absl::ToDoubleSeconds(absl::Now() - t0);
  const double cpu = CpuSeconds() - cpu0;
  auto [rss, hwm] = ResidentMiB();
  std::printf(
      "open after %s at %llu records: %.3f s (store %.3f s, ledger %.3f s; CPU %.3f s, all "
      "threads), RSS after open %.0f MiB (peak %.0f MiB), data directory %.2f GiB\n",
      after.c_str(), static_cast<unsigned long long>(o.ledger->Size()), secs, store_secs,
      secs - store_secs, cpu, rss, hwm, DiskBytes(dir) / 1073741824.0);
  const uint64_t burst = absl::GetFlag(FLAGS_burst);
  if (burst == 0) return 0;
  const uint64_t start = o.ledger->Size();
  const absl::Time b0 = absl::Now();
  constexpr uint64_t kBatch = 1000;
  for (uint64_t i = 0; i < burst;) {
    std::vector<AppendRequest> batch;
    const uint64_t end = std::min(burst, i + kBatch);
    for (; i < end; ++i) {
      // Spread over every case (and so every client), not in key order.
      const uint64_t c = ((start + i) * 2654435761u) % cases;
      batch.push_back(AppendRequest{
          testing::TestEvent(absl::StrCat("burst-", start + i), absl::StrCat("case-", c), 512),
          std::nullopt});
    }
    absl::StatusOr<std::vector<AppendResult>> r = o.ledger->AppendBatch(std::move(batch));
    if (!r.ok()) Die("burst", r.status());
  }
  absl::StatusOr<StoredCheckpoint> cp = o.ledger->Checkpoint();
  if (!cp.ok()) Die("checkpoint", cp.status());
  const double bsecs = absl::ToDoubleSeconds(absl::Now() - b0);
  auto [rss2, hwm2] = ResidentMiB();
  std::printf(
      "  burst of %llu appends over %llu clients in %.1f s: RSS %.0f MiB (peak %.0f MiB, "
      "+%.0f MiB over the open) with the subject map cache at %llu MiB (RocksDB: block "
      "cache 64 MiB, memtables up to 160 MiB)\n",
      static_cast<unsigned long long>(burst), static_cast<unsigned long long>(cases), bsecs, rss2,
      hwm2, rss2 - rss, static_cast<unsigned long long>(absl::GetFlag(FLAGS_subject_map_cache_mb)));
  return 0;
}

int Main(const char* self) {
  const uint64_t records = absl::GetFlag(FLAGS_records);
  std::string dir = absl::GetFlag(FLAGS_dir);
  uint64_t cases = absl::GetFlag(FLAGS_cases);
  if (cases == 0) cases = std::max<uint64_t>(1, records / 20);
  if (absl::GetFlag(FLAGS_open_only)) {
    return OpenOnce(dir, absl::GetFlag(FLAGS_crash) ? "a crash" : "a clean close", cases);
  }
  const bool temporary = dir.empty();
  if (temporary) dir = testing::NewTempDir("restart_benchmark");
  // The build runs in a child process (forked before any thread exists), so
  // that it can end without closing the store.
  std::fflush(stdout);
  const pid_t child = fork();
  if (child == 0) {
    const uint64_t tail = std::min(records, absl::GetFlag(FLAGS_tail));
    Build(dir, records - tail, cases);
    if (tail > 0) {
      Opened o = AppendTail(dir, tail, cases);
      std::fflush(stdout);
      if (absl::GetFlag(FLAGS_crash)) std::_Exit(0);  // acknowledged, not closed
    }
    std::fflush(stdout);
    return 0;
  }
  int status = 0;
  waitpid(child, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return 1;
  int rc = 0;
  for (int i = 0; i < absl::GetFlag(FLAGS_reopens) && rc == 0; ++i) {
    // Each reopen closes cleanly, so only the first follows the build's crash.
    const bool after_crash = i == 0 && absl::GetFlag(FLAGS_crash);
    const std::string cmd = absl::StrCat(
        "'", self, "' --open_only --dir='", dir, "' --cases=", cases,
        " --burst=", absl::GetFlag(FLAGS_burst), " --subject_map_cache_mb=",
        absl::GetFlag(FLAGS_subject_map_cache_mb), " --crash=", after_crash ? "true" : "false");
    rc = std::system(cmd.c_str());
  }
  if (temporary) std::filesystem::remove_all(dir);
  return rc == 0 ? 0 : 1;
}

}  // namespace
}  // namespace caseledger

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return caseledger::Main(std::filesystem::read_symlink("/proc/self/exe").c_str());
}
