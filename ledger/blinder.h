// The hook through which the ledger blinds the identifiers in format-2
// records (ledger/BLINDING.md, FORMAT.md "Record, format 2"): one random
// salt per subject and per stream, kept by the key store (KeyStore
// implements this), destroyed with the subject's keys on erasure.
#ifndef CASELEDGER_LEDGER_BLINDER_H_
#define CASELEDGER_LEDGER_BLINDER_H_

#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "ledger/hash.h"
#include "ledger/record.h"

namespace caseledger {

// Thread-safe: every method may run concurrently on any thread.
class Blinder {
 public:
  virtual ~Blinder() = default;

  // The salt of `id` (kind kSubject or kStream), created when it has none:
  // one synced key-table write, on the appending thread, before the record
  // naming it is queued (a salt without a record is harmless; a record
  // without its salt is not).
  virtual absl::StatusOr<Hash> SaltFor(BlindKind kind, absl::string_view id) = 0;

  // The salt of `id` if it has one. NOT_FOUND when it never appeared or was
  // erased.
  virtual absl::StatusOr<Hash> FindSalt(BlindKind kind, absl::string_view id) const = 0;

  // The id behind `tag` and its salt. NOT_FOUND when the tag is unknown or
  // its salt was erased.
  struct Opening {
    std::string id;
    Hash salt{};
  };
  virtual absl::StatusOr<Opening> OpenTag(BlindKind kind, const Hash& tag) const = 0;
};

// The placeholder shown for a subject tag its reader cannot open (the salt
// was erased, or the reader holds no grant for it): "unlinked-subject:" and
// the first 8 bytes of the tag in hex. It names the pseudonym the leaf
// already shows, nothing more.
std::string UnlinkedSubjectId(const Hash& tag);

// A Blinder over salts handed to a reader (a history bundle's, a granted
// auditor's): opens the tags of the ids it was given, nothing else. Not
// thread-safe while Add runs; SaltFor only returns salts it holds.
class SaltTable : public Blinder {
 public:
  void Add(BlindKind kind, absl::string_view id, const Hash& salt);
  absl::StatusOr<Hash> SaltFor(BlindKind kind, absl::string_view id) override {
    return FindSalt(kind, id);
  }
  absl::StatusOr<Hash> FindSalt(BlindKind kind, absl::string_view id) const override;
  absl::StatusOr<Opening> OpenTag(BlindKind kind, const Hash& tag) const override;

 private:
  absl::flat_hash_map<std::pair<uint8_t, std::string>, Hash> salts_;
  absl::flat_hash_map<std::pair<uint8_t, Hash>, Opening> tags_;
};

// Fills the clear stream_id, event_id, producer and subject_ids of a
// decoded format-2 record from its tags and boxes (a no-op for format 1).
// A subject whose salt was erased gets UnlinkedSubjectId. DATA_LOSS naming the
// seq when the stream tag cannot be opened (stream salts are never
// destroyed) or a salt does not reproduce its tag.
absl::Status OpenBlindedRecord(const Blinder& blinder, Record* record);

// Sets the format-2 fields of `record` (whose clear ids, version and the
// rest are set) from the salts: stream tag, boxes, subject tags.
void BlindRecord(const Hash& stream_salt, absl::Span<const Hash> subject_salts,
                 Record* record);

}  // namespace caseledger

#endif  // CASELEDGER_LEDGER_BLINDER_H_
