// The hook through which the ledger encrypts payload openings at rest
// (ledger/ENCRYPTION.md). The ledger core knows only this interface; the
// key store (ledger/key_store.h) implements it.
#ifndef CASELEDGER_LEDGER_PAYLOAD_CIPHER_H_
#define CASELEDGER_LEDGER_PAYLOAD_CIPHER_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ledger/hash.h"
#include "ledger/log_store.h"
#include "ledger/record.h"

namespace caseledger {

// Thread-safe: Seal and OpenOpenings may run concurrently on any threads.
class PayloadCipher {
 public:
  virtual ~PayloadCipher() = default;

  // Called on the appending thread for each validated event, after its
  // payload is committed (key_id empty, plaintext openings) and before the
  // event is queued: either seals `payload->payload` in place (encrypts
  // sealed_openings and sets key_id) or leaves it plaintext. May add
  // key-table writes to `commit_with`; the ledger stores them in the same
  // atomic commit as the record, and only if the record is stored (a retried
  // event id stores nothing). An error fails the append.
  virtual absl::Status Seal(const Event& event, CommittedPayload* payload,
                            std::vector<KeyWrite>* commit_with) = 0;

  // Called on the committer thread after `writes` (the key-table writes that
  // Seal returned for the records of one group commit) are durable, before
  // those appends are acknowledged: drop anything cached about destroyed
  // keys. Must not block for long.
  virtual void Committed(const std::vector<KeyWrite>& writes) {}

  // How many times keys were destroyed outside a ledger commit (an erasure
  // of a subject). Bumped BEFORE the keys are destroyed: the ledger reads it
  // before sealing, and its commit feed hands on the plaintext openings it
  // sealed only while the count is unchanged (Ledger::OpeningsCurrent).
  // Destructions committed with a record (a case's disposal) need no count:
  // feed consumers see the disposal in order.
  virtual uint64_t erasures() const { return 0; }

  // The plaintext openings of a stored payload whose key_id is set, sealed
  // for the record committing to `payload_commitment`. NOT_FOUND when a key
  // it needs was destroyed (the openings are erased); DATA_LOSS when they do
  // not decrypt (altered bytes, or a payload moved to another record).
  virtual absl::StatusOr<std::string> OpenOpenings(absl::string_view key_id,
                                                   absl::string_view sealed_openings,
                                                   const Hash& payload_commitment) const = 0;
};

}  // namespace caseledger

#endif  // CASELEDGER_LEDGER_PAYLOAD_CIPHER_H_
