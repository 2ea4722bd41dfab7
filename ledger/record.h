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
inline constexpr uint8_t kPayloadFormatVersion = 1;

// Limits enforced by ValidateEvent (and by the decoders).
inline constexpr size_t kMaxIdBytes = 128;          // stream, event, producer, subject ids
inline constexpr size_t kMaxEventTypeBytes = 128;
inline constexpr size_t kMaxSubjects = 64;
inline constexpr size_t kMaxFields = 256;
inline constexpr size_t kMaxFieldNameBytes = 128;
inline constexpr size_t kMaxPayloadBytes = 1 << 20;  // sum of field values

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

// Payload envelope encoding (FORMAT.md "Payload").
std::string EncodePayload(const Payload& payload);
absl::StatusOr<Payload> DecodePayload(absl::string_view bytes);

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

// Checks each opening against its field commitment: DATA_LOSS naming the field.
absl::Status CheckOpenings(const Payload& payload, absl::Span<const FieldOpening> openings);

}  // namespace caseledger

#endif  // CASELEDGER_LEDGER_RECORD_H_
