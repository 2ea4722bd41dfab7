// The server's integrity alarm: once a check finds a damaged record, the
// ledger is known to be damaged until an operator restores it, and the
// server says so everywhere at once (INTEGRITY.md beside this file).
#ifndef CASELEDGER_SERVICES_METRICS_INTEGRITY_H_
#define CASELEDGER_SERVICES_METRICS_INTEGRITY_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace caseledger {

// The grpc.health.v1 entry that is NOT_SERVING while damage is known.
inline constexpr absl::string_view kIntegrityHealthService = "caseledger.integrity";

struct IntegrityMonitorOptions {
  // Writes one alarm line to the operator's log (the server's Log). Null:
  // stderr.
  std::function<void(const std::string&)> log;
};

// Thread-safe.
class IntegrityMonitor {
 public:
  struct State {
    bool damaged = false;
    uint64_t first_bad_seq = 0;  // meaningful only when damaged
    uint64_t reports = 0;        // damage reports received
  };

  explicit IntegrityMonitor(IntegrityMonitorOptions options = IntegrityMonitorOptions());

  // Damage found by `source` (e.g. "background verifier") at record `seq`;
  // `detail` is the check's got/want message. Logs an alarm line at once
  // naming the seq, and on the first report (or a lower seq) tells the
  // health sink. Never blocks for long.
  void ReportDamage(absl::string_view source, uint64_t seq, absl::string_view detail);

  // OK while no damage is known; otherwise DATA_LOSS naming the first bad
  // seq, for calls that would extend the ledger (producer appends). The
  // message says nothing but the seq: the details are in the log and in
  // AuditService.GetMetrics.
  absl::Status CheckAppendsAllowed() const;

  State state() const;

  // `sink(serving)` is called now with the current state and again each time
  // it changes (serving = no damage known). One sink; a later call replaces
  // it. The sink runs under this monitor's lock and must not call it.
  void SetHealthSink(std::function<void(bool serving)> sink);

 private:
  const IntegrityMonitorOptions options_;
  mutable absl::Mutex mu_;
  State state_ ABSL_GUARDED_BY(mu_);
  std::function<void(bool)> sink_ ABSL_GUARDED_BY(mu_);
};

}  // namespace caseledger

#endif  // CASELEDGER_SERVICES_METRICS_INTEGRITY_H_
