#include "services/metrics/integrity.h"

#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"

namespace caseledger {

IntegrityMonitor::IntegrityMonitor(IntegrityMonitorOptions options)
    : options_(std::move(options)) {}

void IntegrityMonitor::ReportDamage(absl::string_view source, uint64_t seq,
                                    absl::string_view detail) {
  const std::string alarm =
      absl::StrCat("INTEGRITY ALARM: ", source, " found a damaged record at seq ", seq, ": ",
                   detail, "; producer appends are refused until the data directory is restored "
                   "(reads, proofs and exports still answer)");
  if (options_.log) {
    options_.log(alarm);
  } else {
    std::fprintf(stderr, "caseledger: %s\n", alarm.c_str());
  }
  absl::MutexLock lock(&mu_);
  ++state_.reports;
  if (state_.damaged && state_.first_bad_seq <= seq) return;
  const bool was_damaged = state_.damaged;
  state_.damaged = true;
  state_.first_bad_seq = seq;
  if (!was_damaged && sink_) sink_(false);
}

absl::Status IntegrityMonitor::CheckAppendsAllowed() const {
  absl::MutexLock lock(&mu_);
  if (!state_.damaged) return absl::OkStatus();
  return absl::DataLossError(absl::StrCat(
      "the ledger is damaged at seq ", state_.first_bad_seq,
      " (first bad record found by the server's integrity checks): appends are refused until "
      "an operator restores the data directory; reads, proofs and exports still answer"));
}

IntegrityMonitor::State IntegrityMonitor::state() const {
  absl::MutexLock lock(&mu_);
  return state_;
}

void IntegrityMonitor::SetHealthSink(std::function<void(bool serving)> sink) {
  absl::MutexLock lock(&mu_);
  sink_ = std::move(sink);
  if (sink_) sink_(!state_.damaged);
}

}  // namespace caseledger
