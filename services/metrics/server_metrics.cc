#include "services/metrics/server_metrics.h"

#include <cstdio>
#include <sstream>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include <CivetServer.h>
#include <civetweb.h>

#include "prometheus/collectable.h"
#include "prometheus/exposer.h"
#include "prometheus/metric_family.h"
#include "prometheus/text_serializer.h"
#include "services/tlog/http_server.h"

namespace caseledger {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

// Seconds, from 0.5 ms (below one fsync on a fast disk) to 10 s.
const prometheus::Histogram::BucketBoundaries& SecondsBuckets() {
  static const auto* b = new prometheus::Histogram::BucketBoundaries{
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  return *b;
}

// Records per group commit: powers of two up to the default group limit.
const prometheus::Histogram::BucketBoundaries& RecordBuckets() {
  static const auto* b = new prometheus::Histogram::BucketBoundaries{
      1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192};
  return *b;
}

MetricFamily Gauge(std::string name, std::string help, double value,
                   MetricType type = MetricType::Gauge) {
  MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  ClientMetric m;
  if (type == MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  f.metric.push_back(std::move(m));
  return f;
}

}  // namespace

// The gauges, computed when scraped.
class ServerMetrics::Live : public prometheus::Collectable {
 public:
  void Set(std::function<absl::StatusOr<LiveFigures>()> source) {
    absl::MutexLock lock(&mu_);
    source_ = std::move(source);
  }

  std::vector<MetricFamily> Collect() const override {
    // Called under the lock, so that Set(nullptr) waits for a running scrape.
    absl::MutexLock lock(&mu_);
    std::vector<MetricFamily> out;
    if (!source_) return out;
    absl::StatusOr<LiveFigures> f = source_();
    if (!f.ok()) return out;
    out.push_back(Gauge("caseledger_tree_size", "Records in the log (the Merkle tree size).",
                        static_cast<double>(f->tree_size)));
    out.push_back(Gauge("caseledger_unsigned_records",
                        "Records not yet covered by a signed checkpoint.",
                        static_cast<double>(f->unsigned_records)));
    out.push_back(Gauge("caseledger_checkpoint_age_seconds",
                        "Age of the newest record the newest signed checkpoint covers.",
                        f->checkpoint_age_seconds));
    out.push_back(Gauge("caseledger_verified_size",
                        "Records [0, N) checked by the background verifier since start.",
                        static_cast<double>(f->verified_size)));
    out.push_back(Gauge("caseledger_verification_lag_records",
                        "Records committed but not yet checked by the background verifier.",
                        static_cast<double>(f->verification_lag_records)));
    out.push_back(Gauge("caseledger_verification_lag_seconds",
                        "Age of the oldest record the background verifier has not checked.",
                        f->verification_lag_seconds));
    out.push_back(Gauge("caseledger_projector_lag_records",
                        "Committed records the read models do not reflect yet.",
                        static_cast<double>(f->projector_lag_records)));
    out.push_back(Gauge("caseledger_integrity_ok",
                        "1 while no damaged record is known; 0 once a check found one.",
                        f->damaged ? 0 : 1));
    out.push_back(Gauge("caseledger_integrity_first_bad_seq",
                        "The first damaged record's seq; -1 while none is known.",
                        f->damaged ? static_cast<double>(f->first_bad_seq) : -1));
    out.push_back(Gauge("caseledger_integrity_failures_total",
                        "Damaged records reported by the integrity checks since start.",
                        static_cast<double>(f->damage_reports), MetricType::Counter));
    return out;
  }

 private:
  mutable absl::Mutex mu_;
  std::function<absl::StatusOr<LiveFigures>()> source_ ABSL_GUARDED_BY(mu_);
};

ServerMetrics::ServerMetrics()
    : registry_(std::make_shared<prometheus::Registry>()), live_(std::make_shared<Live>()) {
  append_seconds_ = &prometheus::BuildHistogram()
                         .Name("caseledger_append_duration_seconds")
                         .Help("Producer appends from receipt to answer (durable or refused), "
                               "by LedgerService method; AppendStream per request.")
                         .Register(*registry_);
  for (absl::string_view m : kAppendMethods) {
    append_by_method_.push_back(&append_seconds_->Add({{"method", std::string(m)}}, SecondsBuckets()));
  }
  append_by_method_.push_back(&append_seconds_->Add({{"method", "other"}}, SecondsBuckets()));
  append_errors_ = &prometheus::BuildCounter()
                        .Name("caseledger_append_errors_total")
                        .Help("Producer appends answered with an error, by method and gRPC code.")
                        .Register(*registry_);
  commit_records_ = &prometheus::BuildHistogram()
                         .Name("caseledger_group_commit_records")
                         .Help("Records written by one group commit (one synced write).")
                         .Register(*registry_)
                         .Add({}, RecordBuckets());
  commit_seconds_ = &prometheus::BuildHistogram()
                         .Name("caseledger_group_commit_duration_seconds")
                         .Help("One group commit: sequencing, hashing, signing when due, and "
                               "the synced write.")
                         .Register(*registry_)
                         .Add({}, SecondsBuckets());
  fsync_seconds_ = &prometheus::BuildHistogram()
                        .Name("caseledger_fsync_duration_seconds")
                        .Help("The synced RocksDB write of one group commit (WAL append and "
                              "fsync).")
                        .Register(*registry_)
                        .Add({}, SecondsBuckets());
  commits_with_checkpoint_ = &prometheus::BuildCounter()
                                  .Name("caseledger_checkpoints_signed_total")
                                  .Help("Checkpoints signed into group commits since start.")
                                  .Register(*registry_)
                                  .Add({});
  refusals_ = &prometheus::BuildCounter()
                   .Name("caseledger_refusals_total")
                   .Help("Calls refused by authorization, by the caller's role.")
                   .Register(*registry_);
  erasures_ = &prometheus::BuildCounter()
                   .Name("caseledger_erasures_total")
                   .Help("Committed erasures: subject_erased (a client's keys) and "
                         "records_disposed (a case's keys).")
                   .Register(*registry_);
  subjects_erased_ = &erasures_->Add({{"kind", "subject_erased"}});
  records_disposed_ = &erasures_->Add({{"kind", "records_disposed"}});
}

ServerMetrics::~ServerMetrics() { exposer_.reset(); }

void ServerMetrics::ObserveAppend(absl::string_view method, absl::StatusCode code,
                                  absl::Duration latency) {
  size_t i = 0;
  while (i < std::size(kAppendMethods) && kAppendMethods[i] != method) ++i;
  append_by_method_[i]->Observe(absl::ToDoubleSeconds(latency));
  if (code != absl::StatusCode::kOk) {
    const std::string m = i < std::size(kAppendMethods) ? std::string(method) : "other";
    append_errors_->Add({{"method", m}, {"code", absl::StatusCodeToString(code)}}).Increment();
  }
}

void ServerMetrics::ObserveGroupCommit(const GroupCommitStats& stats) {
  commit_records_->Observe(static_cast<double>(stats.records));
  commit_seconds_->Observe(absl::ToDoubleSeconds(stats.total));
  fsync_seconds_->Observe(absl::ToDoubleSeconds(stats.write));
  if (stats.checkpoint) commits_with_checkpoint_->Increment();
}

void ServerMetrics::CountRefusal(absl::string_view role) {
  refusals_->Add({{"role", std::string(role)}}).Increment();
}

void ServerMetrics::ObserveCommitted(const CommittedBatch& batch) {
  for (const RecordView& r : batch.records) {
    if (r.record.event_type == "subject_erased") subjects_erased_->Increment();
    if (r.record.event_type == "records_disposed") records_disposed_->Increment();
  }
}

void ServerMetrics::SetLiveSource(std::function<absl::StatusOr<LiveFigures>()> source) {
  live_->Set(std::move(source));
}

std::string ServerMetrics::Render() const {
  std::vector<MetricFamily> families = registry_->Collect();
  std::vector<MetricFamily> live = live_->Collect();
  families.insert(families.end(), live.begin(), live.end());
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return out.str();
}

LiveFigures LiveFiguresOf(const v1::LedgerMetrics& m, uint64_t projector_position,
                          const IntegrityMonitor::State& integrity) {
  LiveFigures f;
  f.tree_size = m.tree_size();
  f.unsigned_records = m.unsigned_records();
  f.checkpoint_age_seconds = m.last_checkpoint_age_seconds();
  f.verified_size = m.verified_size();
  f.verification_lag_records = m.verification_lag_records();
  f.verification_lag_seconds = m.verification_lag_seconds();
  f.projector_lag_records = m.tree_size() > projector_position ? m.tree_size() - projector_position : 0;
  f.damaged = integrity.damaged;
  f.first_bad_seq = integrity.first_bad_seq;
  f.damage_reports = integrity.reports;
  return f;
}

absl::Status ServerMetrics::Serve(const std::string& listen) {
  if (!IsLoopbackListen(listen)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--metrics_listen: got \"", listen,
        "\", want a loopback address (127.0.0.1:PORT or localhost:PORT): metrics "
        "are served in plaintext without authentication (services/metrics/METRICS.md)"));
  }
  if (exposer_ != nullptr) return absl::FailedPreconditionError("metrics already served");
  // civetweb takes numeric addresses only.
  const std::string address = absl::StartsWith(listen, "localhost:")
                                  ? absl::StrCat("127.0.0.1", listen.substr(listen.find(':')))
                                  : listen;
  // civetweb's own messages (why it could not bind) go to the server's log.
  CivetCallbacks callbacks{};
  callbacks.log_message = [](const mg_connection*, const char* message) {
    std::fprintf(stderr, "caseledger: metrics endpoint: %s\n", message);
    return 1;
  };
  // civetweb throws when it cannot bind.
  try {
    exposer_ = std::make_unique<prometheus::Exposer>(
        std::vector<std::string>{"listening_ports", address, "num_threads", "2"}, &callbacks);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("--metrics_listen: cannot serve on \"", listen, "\": ", e.what()));
  }
  exposer_->RegisterCollectable(registry_);
  exposer_->RegisterCollectable(live_);
  return absl::OkStatus();
}

int ServerMetrics::port() const {
  if (exposer_ == nullptr) return 0;
  std::vector<int> ports = exposer_->GetListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

}  // namespace caseledger
