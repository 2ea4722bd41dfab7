// History bundles (services/history/HISTORY_BUNDLE.md): what a client receives
// from AccessService.GetRecordHistory, and the client-side check that it is
// complete, untampered and consistent with a checkpoint the client kept.
//
// Pure functions over bytes and protos: no storage, no network, so a client's
// verifier links it without the server. The ledger side (building a bundle
// from a Ledger, redacting stored payloads) is in access_service.h.
//
// Thread-safety: every function here is safe to call from any thread.
#ifndef CASELEDGER_SERVICES_HISTORY_BUNDLE_H_
#define CASELEDGER_SERVICES_HISTORY_BUNDLE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "ledger/blinder.h"
#include "ledger/checkpoint.h"
#include "ledger/cosignature.h"
#include "ledger/hash.h"
#include "ledger/record.h"
#include "ledger/subject_index.h"
#include "proto/access.pb.h"
#include "proto/events.pb.h"
#include "services/readmodel/accounting.h"

namespace caseledger {

inline constexpr uint32_t kHistoryBundleVersion = 2;

// Why a field of one of the client's records is not shown
// (HISTORY_BUNDLE.md "Redaction"). Every reason is checked by the verifier,
// as far as the bundle can prove it.
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
  // the other person, not this client. The verifier checks that the record
  // names someone else.
  kErasedWithOther,
  // The record's keys are gone and no record in the bundle says why (an
  // offline erasure, say). Only stated; nothing in the bundle proves it.
  kKeysDestroyed,
  // An agency's suspension of the client's accounting (45 CFR 164.528(a)(2))
  // is in force at the bundle's produced_at: `by_seq` is the
  // accounting_suspended record of the same case in the same bundle, which
  // shows only kShownWhileSuspended. Withholds a disclosure_made record it
  // covers whole, and the suspension record's other fields. The verifier
  // checks the suspension's case, dates and subject; that the record is a
  // disclosure to that agency is stated until the suspension ends.
  kSuspended,
};

// The fields of an accounting_suspended record shown to the client while it
// lasts (HISTORY_BUNDLE.md "Redaction", reason 6): whose it is, when it ends
// and the kind of agency, never the agency or its statement.
inline constexpr absl::string_view kShownWhileSuspended[] = {"client_id", "ends_at",
                                                             "agency_kind"};



// Why a sealed record whose keys were destroyed shows no content, and the
// record of the same history that says so.
struct DestroyedContent {
  WithheldReason reason = WithheldReason::kKeysDestroyed;
  uint64_t by_seq = 0;  // for kErased and kDisposed
  friend bool operator==(const DestroyedContent& a, const DestroyedContent& b) {
    return a.reason == b.reason && a.by_seq == b.by_seq;
  }
};

// The reason HISTORY_BUNDLE.md "Redaction" prescribes for `history[i]` (in
// seq order, one subject's records) when its content is gone: the first later
// subject_erased record; else the first later records_disposed record of the
// same case; else kErasedWithOther when the record names someone else; else
// kKeysDestroyed. A function of the history alone, so the server has no
// choice of reason and the verifier recomputes it.
DestroyedContent PrescribedDestroyedReason(const std::vector<const Record*>& history, size_t i);

// Whether field `field` of event type `event_type` is marked
// (protected_detail) in this build's proto/events.proto. FAILED_PRECONDITION
// naming the type or field when this build does not know it.
absl::StatusOr<bool> SchemaProtected(absl::string_view event_type, absl::string_view field);

// Conversions between the map proof and its wire form.
v1::SubjectMapProof MapProofToWire(const SubjectMapProof& proof);
// INVALID_ARGUMENT naming the field for hashes that are not 32 bytes.
absl::StatusOr<SubjectMapProof> MapProofFromWire(const v1::SubjectMapProof& proof);

// The reason's wire form and back; FromWire is INVALID_ARGUMENT for
// WITHHELD_REASON_UNSPECIFIED or a value this build does not know.
v1::WithheldReason WithheldReasonToWire(WithheldReason reason);
absl::StatusOr<WithheldReason> WithheldReasonFromWire(int reason);

struct WithheldField {
  std::string name;  // the proto field name of the event body
  WithheldReason reason = WithheldReason::kProtectedDetail;
  uint64_t by_seq = 0;  // for kErased, kDisposed and kSuspended
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

// The records HISTORY_BUNDLE.md "Redaction" withholds as kSuspended from
// `subject_id`'s history built at `produced_at`: every accounting_suspended
// record of the subject in force then (client_id = subject_id, occurred_at
// <= produced_at < ends_at), and every disclosure_made record of the subject
// one of them covers (SuspensionCovers in services/readmodel/accounting.h), each
// mapped to the seq of the first such suspension in seq order. `records` is
// the server's full view (every field of the client's own revealed).
// DATA_LOSS for revealed fields that do not parse as their event type.
absl::StatusOr<std::vector<std::pair<uint64_t, uint64_t>>> SuspendedRecords(
    absl::string_view subject_id, const std::vector<VerifiedRecord>& records,
    absl::Time produced_at);

// The event body rebuilt from a record's revealed fields, as JSON (empty if
// the event type is unknown to this build or the fields do not parse).
std::string RevealedBodyJson(const VerifiedRecord& r);
// A full v1::Event with the record's envelope fields (ids, subjects,
// occurred_at) and that body, or nullopt for an unknown type.
std::optional<v1::Event> RevealedEvent(const VerifiedRecord& r);

// The client's accounting of disclosures as a bundle states it
// (HISTORY_BUNDLE.md "Accounting"): the disclosure_made and
// client_informed_of_disclosure events among `records`, folded in order, for
// disclosures of `subject_id` in the six years before `produced_at`
// (excluded ones left out, not summarized). The server serves it and the
// verifier derives it again from the same records.
absl::StatusOr<AccountingReport> HistoryAccounting(absl::string_view subject_id,
                                                   const std::vector<VerifiedRecord>& records,
                                                   absl::Time produced_at);

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
  // Records whose content is gone for a reason the bundle proves (kErased,
  // kDisposed), and for one it only states (kErasedWithOther,
  // kKeysDestroyed).
  uint64_t destroyed_proven = 0;
  uint64_t destroyed_stated = 0;
  // Records withheld while an agency's suspension of accounting lasts
  // (kSuspended), the suspension records among them included.
  uint64_t suspended = 0;
  // Names of the witnesses whose cosignatures were checked, when a quorum was
  // required (HistoryVerifyOptions::witnesses).
  std::vector<std::string> cosigned_by;
};

struct HistoryVerifyOptions {
  // Required, borrowed for the call: the log's verifier key, obtained other
  // than from the server.
  const NoteVerifier* log_key = nullptr;
  // The checkpoint origin the client expects, compared byte for byte with
  // the note's first line. Empty: the log key's name.
  std::string origin;
  // When set: a checkpoint note the client kept from before.
  std::optional<std::string> since_note;
  // When set: the subject the client expects; a bundle for anyone else is
  // refused.
  std::optional<std::string> subject_id;
  // Witnesses the client trusts and how many of them must have cosigned the
  // bundle's checkpoint (0: no cosignature required).
  std::vector<CosignatureVerifier> witnesses;
  size_t quorum = 0;
};

// Checks a bundle (HISTORY_BUNDLE.md "What the client checks"):
//  - the bundle is for options.subject_id, when given (FAILED_PRECONDITION);
//  - the checkpoint's signature (DATA_LOSS) and origin (FAILED_PRECONDITION),
//    its "subjects" line and, with a quorum, the witnesses' cosignatures
//    (FAILED_PRECONDITION when too few);
//  - the map proof of the subject against that root, giving (count, head);
//  - exactly `count` records, in increasing seq, each below the checkpoint
//    size, each naming the subject, each with a valid inclusion proof;
//  - each record's payload commitments and revealed openings, and its
//    redaction against this build's schema: protected fields withheld, every
//    other field shown or withheld for a reason the bundle supports;
//  - the subject chain over (seq, leaf hash) ends in `head`;
//  - the served accounting equals the one derived from the records;
//  - the earlier checkpoint is no newer than the bundle's and the bundle's
//    consistency proof ties the two.
// DATA_LOSS naming the first failing record (seq) and field and what was got
// and wanted; FAILED_PRECONDITION as above and for an older checkpoint than
// the one held; INVALID_ARGUMENT for a malformed bundle or options.
// Record format 2 (HISTORY_BUNDLE.md "Blinded records"): the salts a
// bundle carries, as a Blinder that opens the client's own tag and their
// cases'; INVALID_ARGUMENT naming the field for a salt that is not 32 bytes.
absl::StatusOr<SaltTable> BundleSalts(const v1::HistoryBundle& bundle);
// The subject's map key: its tag under subject_salt when the bundle has one,
// SubjectKey(subject_id) otherwise.
absl::StatusOr<Hash> BundleSubjectKey(const v1::HistoryBundle& bundle);
// DecodeRecord of a bundle's leaf, its format-2 ids opened with `salts`
// (other subjects' tags become UnlinkedSubjectId).
absl::StatusOr<Record> DecodeBundleRecord(absl::string_view leaf, const SaltTable& salts);

absl::StatusOr<HistoryVerification> VerifyHistoryBundle(const v1::HistoryBundle& bundle,
                                                        const HistoryVerifyOptions& options);

}  // namespace caseledger

#endif  // CASELEDGER_SERVICES_HISTORY_BUNDLE_H_
