// The canonical record encoding and the payload commitment scheme.
//
// The byte formats are specified in ledger/FORMAT.md, which is the spec the
// golden tests in record_test.cc check. The encoded record ("leaf") is exactly
// what is stored, served and leaf-hashed; nothing is re-serialized to verify.
#ifndef CASELEDGER_LEDGER_RECORD_H_
#define CASELEDGER_LEDGER_RECORD_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "ledger/hash.h"

namespace caseledger {

inline constexpr uint8_t kRecordFormatVersion = 1;
// Format 2: identifiers blinded (FORMAT.md "Record, format 2"; BLINDING.md).
inline constexpr uint8_t kRecordFormatBlinded = 2;
inline constexpr uint8_t kPayloadFormatVersion = 1;

// Limits enforced by ValidateEvent (and by the decoders).
inline constexpr size_t kMaxIdBytes = 128;          // stream, event, producer, subject ids
inline constexpr size_t kMaxEventTypeBytes = 128;
inline constexpr size_t kMaxSubjects = 64;
inline constexpr size_t kMaxFields = 256;
inline constexpr size_t kMaxFieldNameBytes = 128;
inline constexpr size_t kMaxPayloadBytes = 1 << 20;  // sum of field values

// The rule for ids and other short text: 1..max_bytes bytes, no control
// bytes. INVALID_ARGUMENT naming `field` and the rule broken.
absl::Status CheckText(absl::string_view field, absl::string_view value, size_t max_bytes);

// What a blinded tag or box hides; the value is its hash domain byte.
enum class BlindKind : uint8_t {
  kSubject = 0x20,   // tag of a subject id under the subject's salt
  kStream = 0x21,    // tag of a stream id under the stream's salt
  kEventId = 0x22,   // box of the event id under the stream's salt
  kProducer = 0x23,  // box of the producer under the stream's salt
};

// SHA-256(kind || salt || str16(id)): the hiding commitment a format-2 leaf
// holds instead of `id` (kind kSubject or kStream).
Hash BlindTag(BlindKind kind, const Hash& salt, absl::string_view id);

// `bytes` XOR the first len(bytes) bytes of the keystream
// SHA-256(kind || stream_salt || u64 version || u8 0) || ... || u8 3)
// (kind kEventId or kProducer; at most 128 bytes). Its own inverse: it boxes
// an id and opens a box.
std::string BoxId(BlindKind kind, const Hash& stream_salt, uint64_t version,
                  absl::string_view bytes);

// Field flags (one byte per field, committed to).
inline constexpr uint8_t kFieldProtected = 0x01;  // third-party or protected detail

// One named field of an event payload.
struct PayloadField {
  std::string name;
  std::string value;
  uint8_t flags = 0;
};

// The opening of one field commitment: the salt and the value.
struct FieldOpening {
  Hash salt{};
  std::string value;
};

// What a producer asks the ledger to store.
struct Event {
  std::string event_id;   // idempotency key, unique in the ledger
  std::string stream_id;  // the case id
  std::string producer;
  std::string event_type;
  int64_t occurred_at_micros = 0;  // producer's clock, Unix microseconds
  std::vector<std::string> subject_ids;
  std::vector<PayloadField> fields;
};

// The committed part of a record: the leaf.
struct Record {
  // kRecordFormatVersion (ids in clear) or kRecordFormatBlinded.
  uint8_t format_version = kRecordFormatVersion;
  uint64_t seq = 0;
  Hash prev_hash{};  // leaf hash of record seq-1; all zero for seq 0
  int64_t commit_time_micros = 0;
  std::string stream_id;
  uint64_t version = 0;  // 0-based position within the stream
  std::string event_id;
  std::string producer;
  std::string event_type;
  int64_t occurred_at_micros = 0;
  std::vector<std::string> subject_ids;
  Hash payload_commitment{};

  // Format 2 only: what the leaf holds instead of stream_id, event_id,
  // producer and subject_ids. EncodeRecord writes these (not the clear ids);
  // DecodeRecord fills these and leaves the clear ids empty, and whoever
  // holds the salts opens them (OpenBlindedRecord, ledger/blinder.h).
  Hash stream_tag{};
  std::string event_id_box;
  std::string producer_box;
  std::vector<Hash> subject_tags;
};

// One field of a stored payload, as anyone may see it: name, flags and the
// salted commitment. Reveals nothing about the value.
struct FieldCommitment {
  std::string name;
  uint8_t flags = 0;
  Hash commitment{};
};

// The payload stored beside a record (its own column family).
struct Payload {
  // Empty when `openings` is plaintext; otherwise the id of the key that
  // encrypts it. Deleting that key shreds every opening under it.
  std::string key_id;
  std::vector<FieldCommitment> fields;
  // The encoded openings (EncodeOpenings), possibly encrypted.
  std::string sealed_openings;
};

// INVALID_ARGUMENT naming the field and the rule for any event that may not be
// stored: empty or oversized ids, duplicate subject ids, too many fields, etc.
absl::Status ValidateEvent(const Event& event);

// SHA-256(0x02 || salt || u16 len(name) || name || u32 len(value) || value).
Hash CommitField(absl::string_view name, const Hash& salt, absl::string_view value);

// SHA-256(0x03 || u16 count || for each field: u16 len(name) || name || flags || commitment).
Hash CommitPayload(absl::Span<const FieldCommitment> fields);

// Record encoding (FORMAT.md "Record").
std::string EncodeRecord(const Record& record);
// INVALID_ARGUMENT for bytes that are not a well-formed record (message says
// which part and what was got).
absl::StatusOr<Record> DecodeRecord(absl::string_view leaf);

// The fields of an encoded record, borrowed from the bytes they were decoded
// from (which must outlive the view). DecodeLeafView checks exactly what
// DecodeRecord checks, with the same messages, without allocating; it is
// what verifiers reading every record use.
// A format-2 leaf leaves stream_id, event_id and producer empty and sets
// stream_tag and the boxes instead; its encoded_subject_ids holds
// subject_count 32-byte tags.
struct LeafView {
  uint8_t format_version = kRecordFormatVersion;
  uint64_t seq = 0;
  Hash prev_hash{};
  int64_t commit_time_micros = 0;
  absl::string_view stream_id;
  uint64_t version = 0;
  absl::string_view event_id;
  absl::string_view producer;
  absl::string_view event_type;
  int64_t occurred_at_micros = 0;
  uint16_t subject_count = 0;
  // The subject_count str16 subject ids as encoded (format 1) or the
  // subject_count tags (format 2); already checked.
  absl::string_view encoded_subject_ids;
  Hash payload_commitment{};
  Hash stream_tag{};                 // format 2
  absl::string_view event_id_box;    // format 2
  absl::string_view producer_box;    // format 2
};
absl::StatusOr<LeafView> DecodeLeafView(absl::string_view leaf);

// Payload envelope encoding (FORMAT.md "Payload").
std::string EncodePayload(const Payload& payload);
absl::StatusOr<Payload> DecodePayload(absl::string_view bytes);

// One field of a PayloadView; `name` is borrowed like the view.
struct FieldCommitmentView {
  absl::string_view name;
  uint8_t flags = 0;
  Hash commitment{};
};

// A decoded payload borrowing the bytes it was decoded from (which must
// outlive it). DecodePayloadView checks exactly what DecodePayload checks,
// with the same messages, without allocating.
struct PayloadView {
  absl::string_view key_id;
  uint16_t field_count = 0;
  // `u16 field_count || per field: str16(name) || u8 flags || H` as stored;
  // already checked. These are the bytes CommitPayload hashes after 0x03.
  absl::string_view encoded_fields;
  absl::string_view sealed_openings;

  // Iterates the fields in order:
  //   for (PayloadView::FieldIterator it(view); it.Next(&field);) ...
  class FieldIterator {
   public:
    explicit FieldIterator(const PayloadView& view)
        : rest_(view.encoded_fields.size() < 2 ? absl::string_view()
                                               : view.encoded_fields.substr(2)) {}
    // Sets `*field` to the next field; false after the last.
    bool Next(FieldCommitmentView* field);

   private:
    absl::string_view rest_;
  };
};
absl::StatusOr<PayloadView> DecodePayloadView(absl::string_view bytes);

// The payload envelope with its sealed openings dropped (key_id kept): the
// fields that payload_commitment covers, nothing else. What a reader who may
// not see the payload still gets to verify the commitment (an export's
// commitments-only mode, BUNDLE.md; an auditor without a grant, AUTHZ.md).
absl::StatusOr<std::string> StripOpenings(absl::string_view payload);

// Openings encoding: for each field in order, salt || u32 len(value) || value.
std::string EncodeOpenings(absl::Span<const FieldOpening> openings);
absl::StatusOr<std::vector<FieldOpening>> DecodeOpenings(absl::string_view bytes,
                                                         size_t field_count);

// Builds the commitments and openings for `fields`. Salts come from
// `salt_source`, or from OpenSSL's RAND_bytes when it is empty; tests pass a
// deterministic one.
struct CommittedPayload {
  Payload payload;  // key_id empty, sealed_openings = plaintext openings
  Hash commitment{};
};
using SaltSource = std::function<Hash()>;
CommittedPayload CommitFields(absl::Span<const PayloadField> fields,
                              const SaltSource& salt_source = nullptr);

// Checks that `payload` hashes to `want` (no plaintext needed): DATA_LOSS with
// got/want otherwise.
absl::Status CheckPayloadCommitment(const Payload& payload, const Hash& want);
// The same for a view: one hash over its encoded fields, no copies.
absl::Status CheckPayloadCommitment(const PayloadView& payload, const Hash& want);

// Checks each opening against its field commitment: DATA_LOSS naming the field.
absl::Status CheckOpenings(const Payload& payload, absl::Span<const FieldOpening> openings);

// For a payload whose key_id is empty: decodes its plaintext openings and
// checks each against its field commitment, without copying values. The
// result is exactly that of DecodeOpenings(sealed_openings, field_count)
// followed by CheckOpenings: INVALID_ARGUMENT for malformed openings (which
// wins over any mismatch), else DATA_LOSS naming the first field that does
// not match.
absl::Status CheckPlaintextOpenings(const PayloadView& payload);

}  // namespace caseledger

#endif  // CASELEDGER_LEDGER_RECORD_H_
