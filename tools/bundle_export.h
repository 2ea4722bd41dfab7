// The client side of `ledgerctl export`: reads the log, its checkpoints and
// proofs over LedgerService and writes an export bundle (ledger/BUNDLE.md).
// Kept apart from ledgerctl.cc so that it can be tested against a stub.
#ifndef CASELEDGER_TOOLS_BUNDLE_EXPORT_H_
#define CASELEDGER_TOOLS_BUNDLE_EXPORT_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ledger/bundle.h"
#include "proto/ledger.grpc.pb.h"

namespace caseledger::ledgerctl {

struct ExportOptions {
  uint64_t from = 0;  // first record exported
  // One past the last record exported; nullopt = the latest checkpoint's
  // size, so that every exported record is covered by a signature.
  std::optional<uint64_t> to;
  BundlePayload payloads = BundlePayload::kFull;
  // Deadline for each unary call (the record stream has none).
  absl::Duration timeout = absl::Seconds(10);
  // Called every 4096 records and at the end with (records written, total).
  std::function<void(uint64_t, uint64_t)> progress;
};

struct ExportSummary {
  uint64_t first_seq = 0;
  uint64_t end_seq = 0;
  uint64_t checkpoints = 0;
  uint64_t bytes = 0;
};

// Streams the bundle through `sink`. Errors: the RPC's status (with the
// method named), INVALID_ARGUMENT naming --from when it is past the end of
// the range, OUT_OF_RANGE naming --to when the log is shorter, DATA_LOSS
// when the server sends records out of order.
// The server is not trusted here: whatever it sends is written as it is, and
// ledger_verify judges it.
absl::StatusOr<ExportSummary> ExportBundle(v1::LedgerService::StubInterface& stub,
                                           const ExportOptions& options,
                                           const BundleWriter::Sink& sink);

}  // namespace caseledger::ledgerctl

#endif  // CASELEDGER_TOOLS_BUNDLE_EXPORT_H_
