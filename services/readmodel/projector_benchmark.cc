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
#include "tests/test_util.h"

ABSL_FLAG(int, cases, 5000, "Cases in the generated ledger (20 events each).");

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

Fixture& Shared() {
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
  std::filesystem::remove_all(caseledger::Shared().dir);
  return 0;
}
