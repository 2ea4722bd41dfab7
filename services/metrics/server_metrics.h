// The server's Prometheus metrics (names, units and labels: METRICS.md
// beside this file) and the HTTP endpoint that serves them.
//
// No metric carries a client id, case id, event id, caller id or payload:
// labels take only values from fixed sets (method names, role names, gRPC
// code names, erasure kinds), so a scraper learns counts and times, never
// who or which case.
#ifndef CASELEDGER_SERVICES_METRICS_SERVER_METRICS_H_
#define CASELEDGER_SERVICES_METRICS_SERVER_METRICS_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "ledger/ledger.h"
#include "services/metrics/integrity.h"
#include "proto/audit.pb.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace prometheus {
class Exposer;
}  // namespace prometheus

namespace caseledger {

// Figures read fresh at each scrape (gauges), from AuditService.GetMetrics'
// view of the ledger, the projector and the integrity monitor.
struct LiveFigures {
  uint64_t tree_size = 0;
  uint64_t unsigned_records = 0;
  double checkpoint_age_seconds = 0;  // of the newest record the checkpoint covers
  uint64_t verified_size = 0;
  uint64_t verification_lag_records = 0;
  double verification_lag_seconds = 0;
  uint64_t projector_lag_records = 0;
  bool damaged = false;
  uint64_t first_bad_seq = 0;
  uint64_t damage_reports = 0;
};

// The figures of AuditService.GetMetrics (`m`), the projector's position
// and the integrity monitor's state, as a scrape shows them.
LiveFigures LiveFiguresOf(const v1::LedgerMetrics& m, uint64_t projector_position,
                          const IntegrityMonitor::State& integrity);

// Thread-safe: every Observe/Count method may be called from any thread.
class ServerMetrics {
 public:
  // The append methods of LedgerService, the only `method` label values.
  static constexpr absl::string_view kAppendMethods[] = {"Append", "AppendBatch",
                                                         "AppendStream"};

  ServerMetrics();
  ~ServerMetrics();
  ServerMetrics(const ServerMetrics&) = delete;
  ServerMetrics& operator=(const ServerMetrics&) = delete;

  // One producer append (a whole Append or AppendBatch call, or one request
  // of an AppendStream) from receipt to its answer. `method` outside
  // kAppendMethods is counted as "other".
  void ObserveAppend(absl::string_view method, absl::StatusCode code, absl::Duration latency);
  // One group commit (LedgerOptions::on_group_commit).
  void ObserveGroupCommit(const GroupCommitStats& stats);
  // One refused call, by the caller's role name (services/api/authz.h).
  void CountRefusal(absl::string_view role);
  // Counts the erasures in a committed batch (the commit feed): records of
  // the two event types that destroy keys.
  void ObserveCommitted(const CommittedBatch& batch);

  // Where scrapes read the gauges; called once per scrape, one scrape at a
  // time. Until set (or when it fails) the gauges are left out of the
  // scrape. Set(nullptr) returns after any running call: do so before what
  // the source refers to goes away.
  void SetLiveSource(std::function<absl::StatusOr<LiveFigures>()> source);

  // The text exposition format, as a scrape gets it.
  std::string Render() const;

  // Serves Render() at http://`listen`/metrics (civetweb, through
  // prometheus-cpp's Exposer). `listen` must be a loopback host:port
  // (127.x.x.x or localhost, services/tlog/http_server.h
  // IsLoopbackListen, the rule of every HTTP listener); port 0 picks a free one.
  // INVALID_ARGUMENT naming --metrics_listen otherwise; UNAVAILABLE when it
  // cannot bind. Call at most once.
  absl::Status Serve(const std::string& listen);
  // The bound port after Serve, else 0.
  int port() const;

 private:
  class Live;

  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<Live> live_;
  prometheus::Family<prometheus::Histogram>* append_seconds_;
  prometheus::Family<prometheus::Counter>* append_errors_;
  prometheus::Family<prometheus::Counter>* refusals_;
  prometheus::Family<prometheus::Counter>* erasures_;
  std::vector<prometheus::Histogram*> append_by_method_;  // kAppendMethods + "other"
  prometheus::Histogram* commit_records_;
  prometheus::Histogram* commit_seconds_;
  prometheus::Histogram* fsync_seconds_;
  prometheus::Counter* commits_with_checkpoint_;
  prometheus::Counter* subjects_erased_;
  prometheus::Counter* records_disposed_;
  std::unique_ptr<prometheus::Exposer> exposer_;
};

}  // namespace caseledger

#endif  // CASELEDGER_SERVICES_METRICS_SERVER_METRICS_H_
