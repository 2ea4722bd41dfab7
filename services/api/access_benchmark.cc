// Benchmarks for client access (issue 5), reported and never asserted:
// building the history bundle of a subject with 10,000 records in a
// 1,000,000-record ledger (target < 100 ms), and verifying it (< 100 ms).
//
//   bazel build //services/api:access_benchmark
//   bazel-bin/services/api/access_benchmark
//
// Building the ledger takes a minute or so; it goes under $TEST_TMPDIR (or
// /tmp) and is removed at exit. With --reuse_dir=DIR it is kept in DIR
// instead: built there when DIR holds no ledger, reopened when it does. Every 100th record names
// "client-heavy" (in one of ten cases); every record names one of 5,000 other clients.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "benchmark/benchmark.h"
#include "ledger/ledger.h"
#include "ledger/rocks_store.h"
#include "services/api/access_service.h"
#include "services/history/history_bundle.h"
#include "tests/test_util.h"

namespace caseledger {
namespace {

constexpr uint64_t kLedgerSize = 1000000;
constexpr uint64_t kHeavyEvery = 100;  // 10,000 records of client-heavy
constexpr char kHeavy[] = "client-heavy";

struct BenchState {
  std::string dir;
  bool keep_dir = false;
  testing::TestLedger ledger;
  v1::HistoryBundle bundle;
  ~BenchState() {
    ledger.ledger.reset();
    if (!keep_dir) std::filesystem::remove_all(dir);
  }
};

std::unique_ptr<BenchState> g_state;
std::string g_reuse_dir;  // --reuse_dir
std::once_flag g_once;

void Die(absl::string_view what, const absl::Status& s) {
  fprintf(stderr, "%s: %s\n", std::string(what).c_str(), s.ToString().c_str());
  std::abort();
}

BenchState& State() {
  std::call_once(g_once, [] {
    auto b = std::make_unique<BenchState>();
    if (g_reuse_dir.empty()) {
      b->dir = testing::NewTempDir("access_benchmark");
    } else {
      b->dir = g_reuse_dir;
      b->keep_dir = true;
    }
    LedgerOptions options;
    options.checkpoint_every_records = kLedgerSize * 2;
    options.checkpoint_interval = absl::Hours(1);
    // The production store options, not the test ones.
    RocksStoreOptions store_options;
    store_options.path = b->dir;
    absl::StatusOr<std::unique_ptr<LogStore>> store = OpenRocksStore(store_options);
    if (!store.ok()) Die("open store", store.status());
    b->ledger.signer = std::make_unique<NoteSigner>(testing::TestNoteSigner());
    options.origin = testing::kTestOrigin;
    options.signer = b->ledger.signer.get();
    absl::StatusOr<std::unique_ptr<Ledger>> ledger = Ledger::Open(options, *std::move(store));
    if (!ledger.ok()) Die("open ledger", ledger.status());
    b->ledger.ledger = *std::move(ledger);
    absl::Time start = absl::Now();
    constexpr uint64_t kChunk = 10000;
    const uint64_t have = b->ledger->Size();
    if (have != 0 && have != kLedgerSize) {
      Die("reuse_dir", absl::FailedPreconditionError(absl::StrCat(
                           b->dir, " holds ", have, " records, want 0 or ", kLedgerSize)));
    }
    for (uint64_t base = have; base < kLedgerSize; base += kChunk) {
      std::vector<AppendRequest> requests;
      requests.reserve(kChunk);
      for (uint64_t n = base; n < base + kChunk; ++n) {
        const bool heavy = n % kHeavyEvery == 0;
        Event e;
        e.event_id = absl::StrCat("ev-", n);
        e.stream_id = heavy ? absl::StrCat("case-heavy-", n % 10) : absl::StrCat("case-", n % 1000);
        e.producer = "bench";
        e.event_type = "record_entry_written";
        e.occurred_at_micros = 1767225600000000 + static_cast<int64_t>(n);
        e.subject_ids = {absl::StrCat("client-", n % 5000)};
        if (heavy) e.subject_ids.push_back(kHeavy);
        // RecordEntryWritten.text (field 3) and third_party_mentions (4).
        e.fields = {{"text", absl::StrCat("\x1a\x10", "visit note ", 10000 + n % 10000), 0},
                    {"third_party_mentions", "\x22\x0clandlord: JS", kFieldProtected}};
        requests.push_back({std::move(e), std::nullopt});
      }
      absl::StatusOr<std::vector<AppendResult>> r = b->ledger->AppendBatch(std::move(requests));
      if (!r.ok()) Die("append", r.status());
    }
    if (have == 0) {
      absl::StatusOr<StoredCheckpoint> cp = b->ledger->Checkpoint();
      if (!cp.ok()) Die("checkpoint", cp.status());
    }
    fprintf(stderr, "%s the %llu-record ledger in %s\n", have == 0 ? "built" : "reopened",
            static_cast<unsigned long long>(kLedgerSize),
            absl::FormatDuration(absl::Now() - start).c_str());
    absl::StatusOr<v1::HistoryBundle> bundle = BuildHistoryBundle(*b->ledger.ledger, kHeavy, 0, absl::Now());
    if (!bundle.ok()) Die("bundle", bundle.status());
    fprintf(stderr, "bundle: %d records, %zu bytes\n", bundle->records_size(),
            bundle->ByteSizeLong());
    b->bundle = *std::move(bundle);
    g_state = std::move(b);
  });
  return *g_state;
}

void BM_GetRecordHistory10kOf1M(benchmark::State& state) {
  BenchState& s = State();
  for (auto _ : state) {
    absl::StatusOr<v1::HistoryBundle> b = BuildHistoryBundle(*s.ledger.ledger, kHeavy, 0, absl::Now());
    if (!b.ok()) {
      state.SkipWithError(b.status().ToString().c_str());
      break;
    }
    benchmark::DoNotOptimize(b->records_size());
  }
}
BENCHMARK(BM_GetRecordHistory10kOf1M)->MinTime(3)->Unit(benchmark::kMillisecond);

// The two parts of building a bundle, apart: reading the records, and their
// inclusion proofs.
void BM_Read10kRecordsOf1M(benchmark::State& state) {
  BenchState& s = State();
  for (auto _ : state) {
    for (const v1::HistoryRecord& r : s.bundle.records()) {
      absl::StatusOr<RecordView> v = s.ledger->Read(r.seq());
      if (!v.ok()) state.SkipWithError(v.status().ToString().c_str());
    }
  }
}
BENCHMARK(BM_Read10kRecordsOf1M)->MinTime(2)->Unit(benchmark::kMillisecond);

void BM_Prove10kOf1M(benchmark::State& state) {
  BenchState& s = State();
  for (auto _ : state) {
    for (const v1::HistoryRecord& r : s.bundle.records()) {
      absl::StatusOr<std::vector<Hash>> p = s.ledger->InclusionProof(r.seq(), kLedgerSize);
      if (!p.ok()) state.SkipWithError(p.status().ToString().c_str());
    }
  }
}
BENCHMARK(BM_Prove10kOf1M)->MinTime(2)->Unit(benchmark::kMillisecond);

// The same two parts batched, as BuildHistoryBundle reads them.
std::vector<uint64_t> BundleSeqs(const v1::HistoryBundle& b) {
  std::vector<uint64_t> seqs;
  for (const v1::HistoryRecord& r : b.records()) seqs.push_back(r.seq());
  return seqs;
}

void BM_ReadMany10kOf1M(benchmark::State& state) {
  BenchState& s = State();
  const std::vector<uint64_t> seqs = BundleSeqs(s.bundle);
  for (auto _ : state) {
    absl::StatusOr<std::vector<RecordView>> v = s.ledger->ReadMany(seqs);
    if (!v.ok()) state.SkipWithError(v.status().ToString().c_str());
  }
}
BENCHMARK(BM_ReadMany10kOf1M)->MinTime(2)->Unit(benchmark::kMillisecond);

void BM_ProveMany10kOf1M(benchmark::State& state) {
  BenchState& s = State();
  const std::vector<uint64_t> seqs = BundleSeqs(s.bundle);
  for (auto _ : state) {
    absl::StatusOr<std::vector<std::vector<Hash>>> p = s.ledger->InclusionProofs(seqs, kLedgerSize);
    if (!p.ok()) state.SkipWithError(p.status().ToString().c_str());
  }
}
BENCHMARK(BM_ProveMany10kOf1M)->MinTime(2)->Unit(benchmark::kMillisecond);

void BM_VerifyHistory10k(benchmark::State& state) {
  BenchState& s = State();
  NoteVerifier verifier = testing::TestNoteVerifier();
  HistoryVerifyOptions options;
  options.log_key = &verifier;
  options.origin = testing::kTestOrigin;
  // What the client does: parse the bytes, then verify.
  const std::string bytes = s.bundle.SerializeAsString();
  for (auto _ : state) {
    v1::HistoryBundle b;
    if (!b.ParseFromString(bytes)) {
      state.SkipWithError("parse");
      break;
    }
    absl::StatusOr<HistoryVerification> v =
        VerifyHistoryBundle(b, options);
    if (!v.ok()) {
      state.SkipWithError(v.status().ToString().c_str());
      break;
    }
    benchmark::DoNotOptimize(v->records.size());
  }
}
BENCHMARK(BM_VerifyHistory10k)->MinTime(3)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace caseledger

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  constexpr absl::string_view kReuseFlag = "--reuse_dir=";
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (absl::StartsWith(arg, kReuseFlag)) {
      caseledger::g_reuse_dir = std::string(arg.substr(kReuseFlag.size()));
    } else {
      fprintf(stderr, "unknown flag %s (want --reuse_dir=DIR or --benchmark_*)\n", argv[i]);
      return 2;
    }
  }
  benchmark::RunSpecifiedBenchmarks();
  caseledger::g_state.reset();
  return 0;
}
