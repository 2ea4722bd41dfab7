// Catch-up / rebuild speed of the case-state and accounting read models.
//
//   bazel run -c opt //services/readmodel:projector_benchmark -- --cases=5000
//
// Builds a ledger of --cases generated case stories (20 policy-checked
// events each) through the CaseGate, then times Projector::Rebuild (read the
// log from seq 0, apply both projections, write them) and prints events/s.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <filesystem>
#include <optional>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/synchronization/mutex.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "ledger/key_store.h"
#include "services/append/case_gate.h"
#include "services/readmodel/case_story.h"
#include "services/append/event_codec.h"
#include "services/readmodel/projections.h"
#include "services/readmodel/projector.h"
#include "ledger/internal/status_macros.h"
#include "tests/test_util.h"

ABSL_FLAG(int, cases, 5000, "Cases in the generated ledger (20 events each).");
ABSL_FLAG(int, erasure_records, 1000000,
          "BM_EraseClient: records in its ledger (cases of 20 story events; one case in "
          "1,000 gets 80 more entries, so that its client has 100 records).");
ABSL_FLAG(std::string, erasure_dir, "",
          "BM_EraseClient: keep its ledger and read models in this directory and reuse them "
          "(built on first use, several minutes at 1M records); each run erases clients "
          "not erased before. Empty: a temporary directory, removed at exit.");

namespace caseledger {
namespace {

struct Fixture {
  std::string dir;
  testing::TestLedger ledger;
  std::unique_ptr<Projector> projector;
  // The same read models sealed at rest, as the server keeps them with a
  // master key (ledger/ENCRYPTION.md "Read models").
  std::unique_ptr<Projector> sealed;
  uint64_t events = 0;
};

bool g_shared_built = false;  // Shared() was called (its dir to remove at exit)

Fixture& Shared() {
  g_shared_built = true;
  static Fixture* f = [] {
    auto* f = new Fixture;
    f->dir = testing::NewTempDir("projector-bench");
    LedgerOptions options;
    options.max_batch_events = 1000;
    auto t = testing::OpenTestLedger(f->dir + "/ledger", options);
    if (!t.ok()) std::abort();
    f->ledger = *std::move(t);
    CaseGate gate(f->ledger.ledger.get());
    int cases = absl::GetFlag(FLAGS_cases);
    absl::Time start = absl::Now();
    for (int v = 0; v < testing::kStoryLength; ++v) {
      for (int first = 0; first < cases; first += 500) {
        std::vector<GatedEvent> batch;
        for (int c = first; c < std::min(cases, first + 500); ++c) {
          v1::Event e = testing::Story(c, v);
          auto le = ToLedgerEvent(e);
          if (!le.ok()) std::abort();
          batch.push_back({std::move(e), {*std::move(le), std::nullopt}});
        }
        auto r = gate.Append(std::move(batch));
        if (!r.ok()) {
          std::fprintf(stderr, "generate: %s\n", r.status().ToString().c_str());
          std::abort();
        }
      }
    }
    f->events = f->ledger->Size();
    std::fprintf(stderr, "generated %llu events in %.1f s\n",
                 static_cast<unsigned long long>(f->events),
                 absl::ToDoubleSeconds(absl::Now() - start));
    auto open = [&](const std::string& name, std::optional<AeadKey> key) {
      std::vector<std::unique_ptr<Projection>> projections;
      projections.push_back(std::make_unique<CaseStateProjection>());
      projections.push_back(std::make_unique<AccountingProjection>());
      ProjectorOptions options;
      options.path = f->dir + "/" + name;
      options.value_key = std::move(key);
      auto p = Projector::Open(options, f->ledger.ledger.get(), std::move(projections));
      if (!p.ok()) std::abort();
      return *std::move(p);
    };
    f->projector = open("projections", std::nullopt);
    auto key = ProjectionsKey(*AeadKey::FromBytes(std::string(32, '\x2a')));
    if (!key.ok()) std::abort();
    f->sealed = open("projections-sealed", *key);
    return f;
  }();
  return *f;
}

void BM_ProjectionRebuild(benchmark::State& state) {
  Fixture& f = Shared();
  for (auto _ : state) {
    absl::Status s = f.projector->Rebuild();
    if (!s.ok()) state.SkipWithError(s.ToString().c_str());
  }
  state.counters["events/s"] =
      benchmark::Counter(static_cast<double>(f.events) * state.iterations(),
                         benchmark::Counter::kIsRate);
  state.counters["events"] = static_cast<double>(f.events);
}
BENCHMARK(BM_ProjectionRebuild)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();

// Sealed values: the rebuild a server with a master key does.
void BM_ProjectionRebuildSealed(benchmark::State& state) {
  Fixture& f = Shared();
  for (auto _ : state) {
    absl::Status s = f.sealed->Rebuild();
    if (!s.ok()) state.SkipWithError(s.ToString().c_str());
  }
  state.counters["events/s"] =
      benchmark::Counter(static_cast<double>(f.events) * state.iterations(),
                         benchmark::Counter::kIsRate);
}
BENCHMARK(BM_ProjectionRebuildSealed)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3)
    ->UseRealTime();

// What an erasure adds to the key destruction: marker, rebuild, flush and
// full compaction of the store.
void BM_ReprojectAfterErasure(benchmark::State& state) {
  Fixture& f = Shared();
  for (auto _ : state) {
    absl::Status s = f.sealed->Reproject();
    if (!s.ok()) state.SkipWithError(s.ToString().c_str());
  }
  state.counters["events/s"] =
      benchmark::Counter(static_cast<double>(f.events) * state.iterations(),
                         benchmark::Counter::kIsRate);
}
BENCHMARK(BM_ReprojectAfterErasure)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();

// What an erasure of one client costs now: re-derive that client's case
// and accounting (a story's 20 records), flush and compact, whatever the
// ledger's size.
void BM_ReprojectOneSubject(benchmark::State& state) {
  Fixture& f = Shared();
  for (auto _ : state) {
    absl::Status s = f.sealed->ReprojectSubject("client-7");
    if (!s.ok()) state.SkipWithError(s.ToString().c_str());
  }
  state.counters["ledger_events"] = static_cast<double>(f.events);
}
BENCHMARK(BM_ReprojectOneSubject)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();

// Issue 12's erasure target: "erasure of a client with 100 records in a
// 1M-record ledger under 1 s". The ledger is the server's with a master key
// (payloads sealed, ids blinded), built through the gate, with both read
// models sealed and caught up. Each iteration erases one client that has
// 100 records (its case's 20 story events and 80 more entries), doing what
// KeyAdminService::EraseSubject does after its checks: take the subject's
// map key, mark the read models, record the erasure in "@keys", destroy the
// subject's keys, re-derive its case and accounting and purge the store
// (flush, compact every level). Wall time per erasure.
struct ErasureFixture {
  std::string dir;
  bool temporary = false;
  testing::TestLedger ledger;
  std::unique_ptr<Projector> projector;
  std::unique_ptr<CaseGate> gate;
  std::vector<int> targets;  // cases whose client has 100 records
  uint64_t records = 0;
};

constexpr int kExtraEntries = 80;
constexpr int kTargetEvery = 1000;

ErasureFixture* g_erasure = nullptr;  // for main to close

ErasureFixture& Erasure() {
  static ErasureFixture* f = [] {
    auto* f = new ErasureFixture;
    g_erasure = f;
    f->dir = absl::GetFlag(FLAGS_erasure_dir);
    if (f->dir.empty()) {
      f->dir = testing::NewTempDir("erasure-bench");
      f->temporary = true;
    }
    std::filesystem::create_directories(f->dir);
    auto master = AeadKey::FromBytes(std::string(32, '\x2b'));
    if (!master.ok()) std::abort();
    LedgerOptions options;
    options.max_batch_events = 1000;
    auto t = testing::OpenBlindedTestLedger(f->dir + "/ledger", *master, options);
    if (!t.ok()) {
      std::fprintf(stderr, "erasure ledger: %s\n", t.status().ToString().c_str());
      std::abort();
    }
    f->ledger = *std::move(t);
    f->gate = std::make_unique<CaseGate>(f->ledger.ledger.get());
    const int cases = absl::GetFlag(FLAGS_erasure_records) / testing::kStoryLength;
    for (int c = 7; c < cases; c += kTargetEvery) f->targets.push_back(c);
    if (f->ledger->Size() == 0) {
      absl::Time start = absl::Now();
      for (int v = 0; v < testing::kStoryLength; ++v) {
        for (int first = 0; first < cases; first += 500) {
          std::vector<GatedEvent> batch;
          auto add = [&](v1::Event e) {
            auto le = ToLedgerEvent(e);
            if (!le.ok()) std::abort();
            batch.push_back({std::move(e), {*std::move(le), std::nullopt}});
          };
          for (int c = first; c < std::min(cases, first + 500); ++c) {
            add(testing::Story(c, v));
            if (v != 4 || c % kTargetEvery != 7) continue;
            for (int i = 0; i < kExtraEntries; ++i) {  // dated with the story's entry
              v1::Event e = testing::Story(c, 4);
              e.set_event_id(absl::StrCat("case-", c, "-more-", i));
              e.mutable_record_entry_written()->set_entry_id(absl::StrCat("more-", i));
              add(std::move(e));
            }
          }
          auto r = f->gate->Append(std::move(batch));
          if (!r.ok()) {
            std::fprintf(stderr, "erasure ledger: %s\n", r.status().ToString().c_str());
            std::abort();
          }
        }
        std::fprintf(stderr, "erasure ledger: %llu records\n",
                     static_cast<unsigned long long>(f->ledger->Size()));
      }
      std::fprintf(stderr, "erasure ledger: built %llu records in %.1f s\n",
                   static_cast<unsigned long long>(f->ledger->Size()),
                   absl::ToDoubleSeconds(absl::Now() - start));
    }
    f->records = f->ledger->Size();
    std::vector<std::unique_ptr<Projection>> projections;
    projections.push_back(std::make_unique<CaseStateProjection>());
    projections.push_back(std::make_unique<AccountingProjection>());
    ProjectorOptions po;
    po.path = f->dir + "/projections";
    po.shred_event_type = "records_disposed";
    auto key = ProjectionsKey(*master);
    if (!key.ok()) std::abort();
    po.value_key = *key;
    auto p = Projector::Open(po, f->ledger.ledger.get(), std::move(projections));
    if (!p.ok()) {
      std::fprintf(stderr, "erasure projections: %s\n", p.status().ToString().c_str());
      std::abort();
    }
    f->projector = *std::move(p);
    absl::Time start = absl::Now();
    if (absl::Status s = f->projector->CatchUp(); !s.ok()) {
      std::fprintf(stderr, "erasure projections: %s\n", s.ToString().c_str());
      std::abort();
    }
    std::fprintf(stderr, "erasure projections: caught up to %llu in %.1f s\n",
                 static_cast<unsigned long long>(f->projector->position()),
                 absl::ToDoubleSeconds(absl::Now() - start));
    return f;
  }();
  return *f;
}

// What KeyAdminService::EraseSubject does once the request is admitted.
// Prints where the time went, step by step.
absl::Status EraseClient(ErasureFixture& f, const std::string& client) {
  absl::Time t0 = absl::Now();
  auto ms = [](absl::Time a, absl::Time b) { return absl::ToDoubleMilliseconds(b - a); };
  const std::optional<Hash> key = f.projector->SubjectKeyOf(client);
  CL_RETURN_IF_ERROR(f.projector->MarkStaleSubject(key));
  absl::Time t1 = absl::Now();
  v1::Event e;
  e.set_event_id(absl::StrCat("erase-", client));
  e.set_stream_id("@keys");
  e.add_subject_ids(client);
  e.set_producer("caseledger-server");
  const int64_t micros = absl::ToUnixMicros(f.gate->clock().Now());
  e.mutable_occurred_at()->set_seconds(micros / 1000000);
  e.mutable_occurred_at()->set_nanos(static_cast<int32_t>(micros % 1000000) * 1000);
  e.mutable_subject_erased()->set_erased_by("admin/bench");
  e.mutable_subject_erased()->set_authority("projector_benchmark");
  e.mutable_subject_erased()->set_method("crypto-shredding of the subject's data keys");
  CL_ASSIGN_OR_RETURN(Event le, ToLedgerEvent(e));
  CL_RETURN_IF_ERROR(
      f.gate->AppendToServerStream(GatedEvent{std::move(e), {std::move(le), std::nullopt}})
          .status());
  absl::Time t2 = absl::Now();
  CL_RETURN_IF_ERROR(f.ledger.keys->EraseSubject(client).status());
  absl::Time t3 = absl::Now();
  CL_RETURN_IF_ERROR(f.projector->ReprojectSubjectKey(key));
  absl::Time t4 = absl::Now();
  std::fprintf(stderr,
               "erase %s: mark %.1f ms, record the erasure %.1f ms, destroy keys %.1f ms, "
               "re-derive and purge the read models %.1f ms\n",
               client.c_str(), ms(t0, t1), ms(t1, t2), ms(t2, t3), ms(t3, t4));
  return absl::OkStatus();
}

void BM_EraseClient(benchmark::State& state) {
  ErasureFixture& f = Erasure();
  size_t next = 0;
  for (auto _ : state) {
    state.PauseTiming();
    // The next client not erased yet (an earlier run may have erased some).
    while (next < f.targets.size() &&
           !f.projector->SubjectKeyOf(absl::StrCat("client-", f.targets[next])).has_value()) {
      ++next;
    }
    if (next == f.targets.size()) {
      state.SkipWithError("every target client is erased: use a new --erasure_dir");
      break;
    }
    const std::string client = absl::StrCat("client-", f.targets[next++]);
    state.ResumeTiming();
    absl::Status s = EraseClient(f, client);
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      break;
    }
  }
  state.counters["ledger_records"] = static_cast<double>(f.records);
  state.counters["client_records"] = testing::kStoryLength + kExtraEntries;
}
BENCHMARK(BM_EraseClient)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();

// The append path as the server runs it: the gate checking each batch
// against case state while the projector follows the commit feed. Each
// batch is 100 events: 10 cases x 10 consecutive story events, so every
// case gets several events in one call (checked one after another).
void BM_GateAppendBatch(benchmark::State& state) {
  const std::string dir = testing::NewTempDir("gate-bench");
  auto t = testing::OpenTestLedger(dir + "/ledger");
  if (!t.ok()) std::abort();
  std::vector<std::unique_ptr<Projection>> projections;
  auto cases = std::make_unique<CaseStateProjection>();
  const CaseStateProjection* cases_view = cases.get();
  projections.push_back(std::move(cases));
  projections.push_back(std::make_unique<AccountingProjection>());
  ProjectorOptions options;
  options.path = dir + "/projections";
  auto projector = Projector::Open(options, t->ledger.get(), std::move(projections));
  if (!projector.ok()) std::abort();
  (*projector)->Start();
  // As the server wires it: committed states from the read model.
  ProjectedCaseStates committed(projector->get(), cases_view);
  CaseGate::Options gate_options;
  gate_options.committed = &committed;
  CaseGate gate(t->ledger.get(), gate_options);
  int next_case = 0;
  uint64_t events = 0;
  for (auto _ : state) {
    for (int half = 0; half < 2; ++half) {
      std::vector<GatedEvent> batch;
      for (int c = next_case; c < next_case + 10; ++c) {
        for (int v = half * 10; v < half * 10 + 10; ++v) {
          v1::Event e = testing::Story(c, v);
          auto le = ToLedgerEvent(e);
          if (!le.ok()) std::abort();
          batch.push_back({std::move(e), {*std::move(le), std::nullopt}});
        }
      }
      auto r = gate.Append(std::move(batch));
      if (!r.ok()) {
        state.SkipWithError(r.status().ToString().c_str());
        break;
      }
      events += 100;
    }
    next_case += 10;
  }
  (*projector)->Stop();
  state.counters["events/s"] =
      benchmark::Counter(static_cast<double>(events), benchmark::Counter::kIsRate);
  projector->reset();
  t->ledger.reset();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_GateAppendBatch)->Unit(benchmark::kMillisecond)->MinTime(5)->UseRealTime();

// One event to a case that already has 10,000 entries, projected: what the
// read models write for a small change to a big case.
void BM_ProjectOneEventBigCase(benchmark::State& state) {
  const std::string dir = testing::NewTempDir("big-case-bench");
  auto t = testing::OpenTestLedger(dir + "/ledger");
  if (!t.ok()) std::abort();
  CaseGate gate(t->ledger.get());
  auto entry = [](int i) {
    v1::Event e = testing::Story(0, 4);
    e.set_event_id(absl::StrCat("big-", i));
    e.mutable_record_entry_written()->set_entry_id(absl::StrCat("big-entry-", i));
    return e;
  };
  auto append = [&](std::vector<v1::Event> es) {
    std::vector<GatedEvent> batch;
    for (v1::Event& e : es) {
      auto le = ToLedgerEvent(e);
      if (!le.ok()) std::abort();
      batch.push_back({std::move(e), {*std::move(le), std::nullopt}});
    }
    auto r = gate.Append(std::move(batch));
    if (!r.ok()) {
      std::fprintf(stderr, "big case: %s\n", r.status().ToString().c_str());
      std::abort();
    }
  };
  std::vector<v1::Event> intro;
  for (int v = 0; v < 4; ++v) intro.push_back(testing::Story(0, v));
  append(std::move(intro));
  for (int first = 0; first < 10000; first += 1000) {
    std::vector<v1::Event> es;
    for (int i = first; i < first + 1000; ++i) es.push_back(entry(i));
    append(std::move(es));
  }
  std::vector<std::unique_ptr<Projection>> projections;
  projections.push_back(std::make_unique<CaseStateProjection>());
  projections.push_back(std::make_unique<AccountingProjection>());
  ProjectorOptions options;
  options.path = dir + "/projections";
  auto projector = Projector::Open(options, t->ledger.get(), std::move(projections));
  if (!projector.ok() || !(*projector)->CatchUp().ok()) std::abort();
  int i = 10000;
  for (auto _ : state) {
    state.PauseTiming();
    append({entry(i++)});
    state.ResumeTiming();
    absl::Status s = (*projector)->CatchUp();
    if (!s.ok()) state.SkipWithError(s.ToString().c_str());
  }
  projector->reset();
  t->ledger.reset();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_ProjectOneEventBigCase)->Unit(benchmark::kMicrosecond)->Iterations(200);

}  // namespace
}  // namespace caseledger

int main(int argc, char** argv) {
  // As in caseledger_server (server_main.cc): no deadlock detection.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  benchmark::Initialize(&argc, argv);
  absl::ParseCommandLine(argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  if (caseledger::g_shared_built) std::filesystem::remove_all(caseledger::Shared().dir);
  if (caseledger::ErasureFixture* f = caseledger::g_erasure; f != nullptr) {
    // Closed (the read models flush) before a temporary directory goes.
    f->projector.reset();
    f->gate.reset();
    f->ledger.ledger.reset();
    if (f->temporary) std::filesystem::remove_all(f->dir);
  }
  return 0;
}
