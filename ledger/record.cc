#include "ledger/record.h"

#include <openssl/rand.h>

#include <cstdlib>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "ledger/internal/bytes.h"
#include "ledger/internal/status_macros.h"

namespace caseledger {
namespace {

using internal::ByteReader;
using internal::ByteWriter;

absl::Status CheckId(absl::string_view field, absl::string_view value, bool required = true) {
  if (value.empty()) {
    if (!required) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat(field, ": must not be empty"));
  }
  if (value.size() > kMaxIdBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": got ", value.size(), " bytes, want at most ", kMaxIdBytes));
  }
  for (unsigned char c : value) {
    if (c < 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": contains control byte 0x", absl::Hex(c, absl::kZeroPad2)));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateEvent(const Event& event) {
  CL_RETURN_IF_ERROR(CheckId("event_id", event.event_id));
  CL_RETURN_IF_ERROR(CheckId("stream_id", event.stream_id));
  CL_RETURN_IF_ERROR(CheckId("producer", event.producer));
  CL_RETURN_IF_ERROR(CheckId("event_type", event.event_type));
  if (event.subject_ids.size() > kMaxSubjects) {
    return absl::InvalidArgumentError(absl::StrCat(
        "subject_ids: got ", event.subject_ids.size(), " ids, want at most ", kMaxSubjects));
  }
  absl::flat_hash_set<absl::string_view> seen;
  for (size_t i = 0; i < event.subject_ids.size(); ++i) {
    CL_RETURN_IF_ERROR(CheckId(absl::StrCat("subject_ids[", i, "]"), event.subject_ids[i]));
    if (!seen.insert(event.subject_ids[i]).second) {
      return absl::InvalidArgumentError(absl::StrCat("subject_ids[", i, "]: duplicate id \"",
                                                     event.subject_ids[i], "\""));
    }
  }
  if (event.fields.size() > kMaxFields) {
    return absl::InvalidArgumentError(absl::StrCat("fields: got ", event.fields.size(),
                                                   " fields, want at most ", kMaxFields));
  }
  size_t total = 0;
  absl::flat_hash_set<absl::string_view> names;
  for (size_t i = 0; i < event.fields.size(); ++i) {
    const PayloadField& f = event.fields[i];
    std::string where = absl::StrCat("fields[", i, "].name");
    if (f.name.empty()) return absl::InvalidArgumentError(where + ": must not be empty");
    if (f.name.size() > kMaxFieldNameBytes) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": got ", f.name.size(),
                                                     " bytes, want at most ", kMaxFieldNameBytes));
    }
    if (!names.insert(f.name).second) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": duplicate name \"", f.name, "\""));
    }
    if ((f.flags & ~kFieldProtected) != 0) {
      return absl::InvalidArgumentError(absl::StrCat("fields[", i, "].flags: unknown bits 0x",
                                                     absl::Hex(f.flags, absl::kZeroPad2)));
    }
    total += f.value.size();
  }
  if (total > kMaxPayloadBytes) {
    return absl::InvalidArgumentError(absl::StrCat("fields: payload values total ", total,
                                                   " bytes, want at most ", kMaxPayloadBytes));
  }
  return absl::OkStatus();
}

Hash CommitField(absl::string_view name, const Hash& salt, absl::string_view value) {
  std::string prefix;
  ByteWriter w(&prefix);
  w.U8(kFieldCommitmentPrefix);
  w.HashValue(salt);
  w.Str16(name);
  w.U32(static_cast<uint32_t>(value.size()));
  Sha256 h;
  h.Update(prefix);
  h.Update(value);
  return h.Finish();
}

Hash CommitPayload(absl::Span<const FieldCommitment> fields) {
  std::string buf;
  ByteWriter w(&buf);
  w.U8(kPayloadCommitmentPrefix);
  w.U16(static_cast<uint16_t>(fields.size()));
  for (const FieldCommitment& f : fields) {
    w.Str16(f.name);
    w.U8(f.flags);
    w.HashValue(f.commitment);
  }
  return Sha256Of(buf);
}

std::string EncodeRecord(const Record& r) {
  std::string out;
  out.reserve(160 + r.stream_id.size() + r.event_id.size() + r.producer.size() +
              r.event_type.size() + 32 * r.subject_ids.size());
  ByteWriter w(&out);
  w.U8(kRecordFormatVersion);
  w.U64(r.seq);
  w.HashValue(r.prev_hash);
  w.I64(r.commit_time_micros);
  w.Str16(r.stream_id);
  w.U64(r.version);
  w.Str16(r.event_id);
  w.Str16(r.producer);
  w.Str16(r.event_type);
  w.I64(r.occurred_at_micros);
  w.U16(static_cast<uint16_t>(r.subject_ids.size()));
  for (const std::string& s : r.subject_ids) w.Str16(s);
  w.HashValue(r.payload_commitment);
  return out;
}

absl::StatusOr<Record> DecodeRecord(absl::string_view leaf) {
  ByteReader in(leaf, "record");
  Record r;
  uint8_t version;
  CL_RETURN_IF_ERROR(in.U8("format_version", &version));
  if (version != kRecordFormatVersion) {
    return absl::InvalidArgumentError(absl::StrCat("record: format_version got ", version,
                                                   ", want ", kRecordFormatVersion));
  }
  CL_RETURN_IF_ERROR(in.U64("seq", &r.seq));
  CL_RETURN_IF_ERROR(in.HashValue("prev_hash", &r.prev_hash));
  CL_RETURN_IF_ERROR(in.I64("commit_time", &r.commit_time_micros));
  CL_RETURN_IF_ERROR(in.Str16("stream_id", &r.stream_id));
  CL_RETURN_IF_ERROR(in.U64("version", &r.version));
  CL_RETURN_IF_ERROR(in.Str16("event_id", &r.event_id));
  CL_RETURN_IF_ERROR(in.Str16("producer", &r.producer));
  CL_RETURN_IF_ERROR(in.Str16("event_type", &r.event_type));
  CL_RETURN_IF_ERROR(in.I64("occurred_at", &r.occurred_at_micros));
  uint16_t n;
  CL_RETURN_IF_ERROR(in.U16("subject_count", &n));
  if (n > kMaxSubjects) {
    return absl::InvalidArgumentError(
        absl::StrCat("record: subject_count got ", n, ", want at most ", kMaxSubjects));
  }
  r.subject_ids.resize(n);
  for (uint16_t i = 0; i < n; ++i) CL_RETURN_IF_ERROR(in.Str16("subject_id", &r.subject_ids[i]));
  CL_RETURN_IF_ERROR(in.HashValue("payload_commitment", &r.payload_commitment));
  CL_RETURN_IF_ERROR(in.Done());
  return r;
}

std::string EncodePayload(const Payload& p) {
  std::string out;
  ByteWriter w(&out);
  w.U8(kPayloadFormatVersion);
  w.Str16(p.key_id);
  w.U16(static_cast<uint16_t>(p.fields.size()));
  for (const FieldCommitment& f : p.fields) {
    w.Str16(f.name);
    w.U8(f.flags);
    w.HashValue(f.commitment);
  }
  w.Str32(p.sealed_openings);
  return out;
}

absl::StatusOr<Payload> DecodePayload(absl::string_view bytes) {
  ByteReader in(bytes, "payload");
  Payload p;
  uint8_t version;
  CL_RETURN_IF_ERROR(in.U8("format_version", &version));
  if (version != kPayloadFormatVersion) {
    return absl::InvalidArgumentError(absl::StrCat("payload: format_version got ", version,
                                                   ", want ", kPayloadFormatVersion));
  }
  CL_RETURN_IF_ERROR(in.Str16("key_id", &p.key_id));
  uint16_t n;
  CL_RETURN_IF_ERROR(in.U16("field_count", &n));
  if (n > kMaxFields) {
    return absl::InvalidArgumentError(
        absl::StrCat("payload: field_count got ", n, ", want at most ", kMaxFields));
  }
  p.fields.resize(n);
  for (FieldCommitment& f : p.fields) {
    CL_RETURN_IF_ERROR(in.Str16("field name", &f.name));
    CL_RETURN_IF_ERROR(in.U8("field flags", &f.flags));
    CL_RETURN_IF_ERROR(in.HashValue("field commitment", &f.commitment));
  }
  // Openings hold salts and values, plus AEAD overhead when sealed.
  CL_RETURN_IF_ERROR(
      in.Str32("sealed_openings", kMaxPayloadBytes + n * 40 + 1024, &p.sealed_openings));
  CL_RETURN_IF_ERROR(in.Done());
  return p;
}

std::string EncodeOpenings(absl::Span<const FieldOpening> openings) {
  std::string out;
  ByteWriter w(&out);
  for (const FieldOpening& o : openings) {
    w.HashValue(o.salt);
    w.Str32(o.value);
  }
  return out;
}

absl::StatusOr<std::vector<FieldOpening>> DecodeOpenings(absl::string_view bytes,
                                                         size_t field_count) {
  ByteReader in(bytes, "openings");
  std::vector<FieldOpening> out(field_count);
  for (FieldOpening& o : out) {
    CL_RETURN_IF_ERROR(in.HashValue("salt", &o.salt));
    CL_RETURN_IF_ERROR(in.Str32("value", kMaxPayloadBytes, &o.value));
  }
  CL_RETURN_IF_ERROR(in.Done());
  return out;
}

CommittedPayload CommitFields(absl::Span<const PayloadField> fields,
                              const SaltSource& salt_source) {
  CommittedPayload out;
  std::vector<FieldOpening> openings(fields.size());
  out.payload.fields.resize(fields.size());
  for (size_t i = 0; i < fields.size(); ++i) {
    Hash salt;
    if (salt_source) {
      salt = salt_source();
    } else if (RAND_bytes(salt.data(), static_cast<int>(salt.size())) != 1) {
      std::abort();  // No randomness: nothing safe can be committed.
    }
    openings[i].salt = salt;
    openings[i].value = fields[i].value;
    out.payload.fields[i] = {fields[i].name, fields[i].flags,
                             CommitField(fields[i].name, salt, fields[i].value)};
  }
  out.payload.sealed_openings = EncodeOpenings(openings);
  out.commitment = CommitPayload(out.payload.fields);
  return out;
}

absl::Status CheckPayloadCommitment(const Payload& payload, const Hash& want) {
  Hash got = CommitPayload(payload.fields);
  if (got == want) return absl::OkStatus();
  return absl::DataLossError(absl::StrCat("payload commitment: got ", ShortHex(got), ", want ",
                                          ShortHex(want)));
}

absl::Status CheckOpenings(const Payload& payload, absl::Span<const FieldOpening> openings) {
  if (openings.size() != payload.fields.size()) {
    return absl::DataLossError(absl::StrCat("openings: got ", openings.size(), ", want ",
                                            payload.fields.size()));
  }
  for (size_t i = 0; i < openings.size(); ++i) {
    const FieldCommitment& f = payload.fields[i];
    Hash got = CommitField(f.name, openings[i].salt, openings[i].value);
    if (got != f.commitment) {
      return absl::DataLossError(absl::StrCat("field \"", f.name, "\": opening commits to ",
                                              ShortHex(got), ", want ", ShortHex(f.commitment)));
    }
  }
  return absl::OkStatus();
}

}  // namespace caseledger
