// History bundles (services/api/HISTORY_BUNDLE.md): what a client receives
// from AccessService.GetRecordHistory, and the client-side check that it is
// complete, untampered and consistent with a checkpoint the client kept.
//
// Pure functions over bytes and protos: no storage, no network. The ledger
// side (building a bundle from a Ledger) is in access_service.h.
//
// Thread-safety: every function here is safe to call from any thread.
#ifndef CASELEDGER_SERVICES_API_HISTORY_BUNDLE_H_
#define CASELEDGER_SERVICES_API_HISTORY_BUNDLE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "ledger/checkpoint.h"
#include "ledger/hash.h"
#include "ledger/record.h"
#include "ledger/subject_index.h"
#include "proto/access.pb.h"
#include "proto/events.pb.h"
#include "services/accounting.h"

namespace caseledger {

inline constexpr uint32_t kHistoryBundleVersion = 1;

// Fills `out`'s payload_commitments and revealed fields from a stored
// payload: every field's commitment, and the opening of each field that is
// shown. Protected fields (kFieldProtected) are withheld unless
// `reveal_protected`; their names are appended to `withheld`. DATA_LOSS when
// the payload does not decode or does not match `payload_commitment`;
// UNIMPLEMENTED for sealed (encrypted) openings.
absl::Status RevealPayload(absl::string_view payload, const Hash& payload_commitment,
                           bool reveal_protected, v1::HistoryRecord* out,
                           std::vector<std::string>* withheld);

// Conversions between the map proof and its wire form.
v1::SubjectMapProof MapProofToWire(const SubjectMapProof& proof);
// INVALID_ARGUMENT naming the field for hashes that are not 32 bytes.
absl::StatusOr<SubjectMapProof> MapProofFromWire(const v1::SubjectMapProof& proof);

// Why a field of one of the client's records is not shown
// (HISTORY_BUNDLE.md "Redaction"). Every reason is checked by the verifier.
enum class WithheldReason {
  // The field is marked (protected_detail) in proto/events.proto: a third
  // party's or otherwise protected detail.
  kProtectedDetail,
  // The client's data was erased: `by_seq` is the subject_erased record, in
  // the same bundle, after this record.
  kErased,
  // The case's records were disposed of: `by_seq` is the records_disposed
  // record of the same case, in the same bundle, after this record.
  kDisposed,
  // Another person named in the same record had their data erased, which
  // destroys the record's content for everyone it names (ENCRYPTION.md).
  // Only stated, not provable from this bundle: the erasure record names
  // the other person, not this client.
  kErasedWithOther,
};

struct WithheldField {
  std::string name;  // the proto field name of the event body
  WithheldReason reason = WithheldReason::kProtectedDetail;
  uint64_t by_seq = 0;  // for kErased and kDisposed
};

// One record of a verified bundle, as the client may see it.
struct VerifiedRecord {
  Record record;
  Hash leaf_hash{};
  // Revealed fields (name, value bytes), in field order, and the withheld
  // ones with their reasons, in field order.
  std::vector<std::pair<std::string, std::string>> revealed;
  std::vector<WithheldField> withheld;
};

// The event body rebuilt from a record's revealed fields, as JSON (empty if
// the event type is unknown to this build or the fields do not parse).
std::string RevealedBodyJson(const VerifiedRecord& r);
// A full v1::Event with the record's envelope fields (ids, subjects,
// occurred_at) and that body, or nullopt for an unknown type.
std::optional<v1::Event> RevealedEvent(const VerifiedRecord& r);

struct HistoryVerification {
  std::string subject_id;
  Checkpoint checkpoint;
  Hash subjects_root{};
  SubjectState state;
  std::vector<VerifiedRecord> records;
  // What was checked, one line each, in order.
  std::vector<std::string> checks;
  std::optional<uint64_t> since_size;
  // When the server built the bundle (the accounting's window ends here).
  absl::Time produced_at = absl::InfinitePast();
  // The accounting of disclosures recomputed from the records (equal to the
  // one the server served, or verification fails).
  AccountingReport accounting;
  // Fields withheld as protected details (third parties), over all records.
  uint64_t withheld_protected = 0;
  // Names of the witnesses whose cosignatures were checked, when a quorum was
  // required (VerifyOptions::witnesses).
  std::vector<std::string> cosigned_by;
};

// Checks a bundle against the log's verifier key and origin and, when
// `since_note` is non-null, against that earlier signed checkpoint:
//  - the checkpoint's signature (DATA_LOSS) and origin (FAILED_PRECONDITION),
//    and its "subjects" line;
//  - the map proof of the subject against that root, giving (count, head);
//  - exactly `count` records, in increasing seq, each below the checkpoint
//    size, each naming the subject, each with a valid inclusion proof;
//  - each record's payload commitments and revealed openings;
//  - the subject chain over (seq, leaf hash) ends in `head`;
//  - the earlier checkpoint is no newer than the bundle's and the bundle's
//    consistency proof ties the two.
// DATA_LOSS (or FAILED_PRECONDITION for an older checkpoint than the one
// held) naming the first failing record and what was got and wanted;
// INVALID_ARGUMENT for a malformed bundle.
absl::StatusOr<HistoryVerification> VerifyHistoryBundle(const v1::HistoryBundle& bundle,
                                                        const NoteVerifier& verifier,
                                                        absl::string_view origin,
                                                        const std::string* since_note);

}  // namespace caseledger

#endif  // CASELEDGER_SERVICES_API_HISTORY_BUNDLE_H_
