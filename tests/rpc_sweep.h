// A fuzz-style sweep of a running server: random, malformed, truncated and
// oversized requests to every RPC of LedgerService, CaseService and
// DisclosureService (and to a method that does not exist), from several
// threads, while one valid writer keeps appending to its own case. Used by
// //tests:fuzz_sweep_test (seconds) and //tests:rpc_sweep (as long as asked).
#ifndef CASELEDGER_TESTS_RPC_SWEEP_H_
#define CASELEDGER_TESTS_RPC_SWEEP_H_

#include <grpcpp/channel.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace caseledger::testing {

struct SweepOptions {
  absl::Duration duration = absl::Seconds(3);
  uint64_t seed = 1;
  int threads = 4;
  // The server's --max_message_bytes: oversized requests are just above it.
  size_t max_message_bytes = 64 << 10;
  // Deadline of each fuzz call (Subscribe would otherwise wait forever).
  absl::Duration call_deadline = absl::Milliseconds(300);
  // The valid writer's case; it opens it first.
  std::string writer_case = "sweep-writer";
};

struct SweepReport {
  uint64_t calls = 0;
  std::map<std::string, uint64_t> by_code;  // "OK", "INVALID_ARGUMENT", ...
  // The first "method: message" seen for each code (to see what INTERNAL is).
  std::map<std::string, std::string> sample;
  uint64_t writer_acked = 0;
  std::vector<std::string> writer_event_ids;  // acknowledged, in order
  std::vector<std::string> writer_errors;     // every failed valid append
};

// Runs the sweep; the fuzzers use `fuzz` channels (one picked at random per
// call, e.g. one per identity) and the writer uses `writer`.
SweepReport RunSweep(const std::vector<std::shared_ptr<grpc::Channel>>& fuzz,
                     std::shared_ptr<grpc::Channel> writer, const SweepOptions& options);

// "calls N, by code: OK n, ...; writer acked N, errors N".
std::string Summary(const SweepReport& report);

}  // namespace caseledger::testing

#endif  // CASELEDGER_TESTS_RPC_SWEEP_H_
