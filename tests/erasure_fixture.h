// The data directory of the erasure crash test (erasure_crash_test.cc): a
// blinded, encrypted ledger (as the default server keeps it) and the
// server's read models (case state and accounting) beside it.
#ifndef CASELEDGER_TESTS_ERASURE_FIXTURE_H_
#define CASELEDGER_TESTS_ERASURE_FIXTURE_H_

#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "services/readmodel/projector.h"
#include "tests/test_util.h"

namespace caseledger::testing {

// The master key both processes use.
inline constexpr char kErasureMasterHex[] =
    "0707070707070707070707070707070707070707070707070707070707070707";

struct ErasureFixture {
  TestLedger db;
  std::unique_ptr<Projector> projector;  // closed before the ledger
  ~ErasureFixture() { projector.reset(); }
};

// Opens `dir`/ledger and `dir`/projections (as Projector::Open does: a
// marker found there is finished before this returns).
absl::StatusOr<std::unique_ptr<ErasureFixture>> OpenErasureFixture(const std::string& dir);

// Every key and value of the closed projection store at `dir`/projections.
absl::StatusOr<std::map<std::string, std::string>> DumpProjections(const std::string& dir);

}  // namespace caseledger::testing

#endif  // CASELEDGER_TESTS_ERASURE_FIXTURE_H_
