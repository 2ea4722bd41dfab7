// Verifies a ledger in PostgreSQL (ledger/CLUSTER.md), any P, from its
// tables alone: what an auditor with read access to the database and the
// log's verifier keys runs (ledger_verify --pg_conninfo).
#ifndef CASELEDGER_LEDGER_PG_VERIFY_H_
#define CASELEDGER_LEDGER_PG_VERIFY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "ledger/checkpoint.h"

namespace caseledger {

// Checks a partitioned ledger from PostgreSQL alone: every partition's
// records chain (seq, prev_hash) and match each of its checkpoints (signed
// by `verifier`, origin PartitionOrigin) at their sizes, and each global
// checkpoint is signed by `global_verifier`; every global leaf
// is the body of a stored checkpoint of its partition, in increasing size
// per partition; every global checkpoint's root matches the global leaves
// and each is consistent with the next. DATA_LOSS naming the first fault.
struct PgLedgerSummary {
  std::vector<uint64_t> partition_sizes;
  uint64_t global_size = 0;
  uint64_t global_checkpoints = 0;
};
absl::StatusOr<PgLedgerSummary> VerifyPgLedger(const std::string& conninfo,
                                               const std::string& origin,
                                               const NoteVerifier& verifier,
                                               const NoteVerifier& global_verifier);

}  // namespace caseledger

#endif  // CASELEDGER_LEDGER_PG_VERIFY_H_
