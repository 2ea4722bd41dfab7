// Durable small-file writes, for state kept beside a data directory (the
// witness state, the projector's reprojection marker, saved notes).
#ifndef CASELEDGER_LEDGER_INTERNAL_FILE_H_
#define CASELEDGER_LEDGER_INTERNAL_FILE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace caseledger::internal {

// Replaces the file at `path` atomically: `text` goes to a temporary file
// beside it, which is fsync'd and renamed over `path`, and then the
// directory is fsync'd. After a crash the file is the old one or the new
// one, never a mix. INTERNAL naming the path and the failed step.
absl::Status WriteFileDurably(const std::string& path, absl::string_view text);

// Removes the file at `path` (absent is fine) and fsyncs its directory.
absl::Status RemoveFileDurably(const std::string& path);

}  // namespace caseledger::internal

#endif  // CASELEDGER_LEDGER_INTERNAL_FILE_H_
