// The golden history bundle of services/history/HISTORY_BUNDLE.md "Golden
// bundle", built from the inputs that section states: the test log key, a
// fake clock at 2026-01-01T00:00:00Z, salts 00…00, 01…01, …, three
// record_entry_written events in case-g and the bundle of client-a. Pinned by
// access_service_test; written out by tests/independent/make_history for the
// independent verifier.
#ifndef CASELEDGER_TESTS_HISTORY_GOLDEN_H_
#define CASELEDGER_TESTS_HISTORY_GOLDEN_H_

#include <string>

#include "absl/status/statusor.h"
#include "proto/access.pb.h"

namespace caseledger::testing {

// Builds the ledger in a fresh directory under `dir` and returns the bundle.
absl::StatusOr<v1::HistoryBundle> GoldenHistoryBundle(const std::string& dir);

}  // namespace caseledger::testing

#endif  // CASELEDGER_TESTS_HISTORY_GOLDEN_H_
