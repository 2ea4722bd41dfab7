#include "ledger/record.h"

#include <openssl/rand.h>

#include <algorithm>
#include <cstdlib>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "ledger/internal/bytes.h"
#include "ledger/internal/status_macros.h"

namespace caseledger {

absl::Status CheckText(absl::string_view field, absl::string_view value, size_t max_bytes) {
  if (value.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": must not be empty"));
  if (value.size() > max_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": got ", value.size(), " bytes, want at most ", max_bytes));
  }
  for (unsigned char c : value) {
    if (c < 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": contains control byte 0x", absl::Hex(c, absl::kZeroPad2)));
    }
  }
  return absl::OkStatus();
}

namespace {

using internal::ByteReader;
using internal::ByteWriter;

absl::Status CheckId(absl::string_view field, absl::string_view value, bool required = true) {
  if (value.empty() && !required) return absl::OkStatus();
  return CheckText(field, value, kMaxIdBytes);
}

// ByteReader::Str16 without the copy: the same reads, so the same messages.
absl::Status ReadStr16(ByteReader& in, const char* what, absl::string_view* v) {
  uint16_t n;
  CL_RETURN_IF_ERROR(in.U16(what, &n));
  return in.Raw(what, n, v);
}

// ByteReader::Str32 without the copy; the over-limit message is the one
// ByteReader::Str32 gives for `format`.
absl::Status ReadStr32(ByteReader& in, absl::string_view format, const char* what, size_t max,
                       absl::string_view* v) {
  uint32_t n;
  CL_RETURN_IF_ERROR(in.U32(what, &n));
  if (n > max) {
    return absl::InvalidArgumentError(
        absl::StrCat(format, ": ", what, " length ", n, " exceeds limit ", max));
  }
  return in.Raw(what, n, v);
}

Hash HashFromView(absl::string_view bytes) {  // `bytes` has kHashSize bytes
  Hash h;
  std::copy(bytes.begin(), bytes.end(), h.begin());
  return h;
}

// One reusable context per thread: a Sha256 per call costs an EVP context
// allocation and initialization, more than hashing a small field.
Sha256& ThreadHasher() {
  thread_local Sha256 hasher;
  return hasher;
}

// CommitField with the salt as bytes (kHashSize of them).
Hash CommitFieldBytes(absl::string_view name, absl::string_view salt, absl::string_view value) {
  // 0x02 || salt || u16 len(name) || name || u32 len(value), in one update
  // when the name is short (it always is for valid events).
  constexpr size_t kMaxInlineName = kMaxFieldNameBytes;
  char prefix[1 + kHashSize + 2 + kMaxInlineName + 4];
  size_t n = 0;
  prefix[n++] = static_cast<char>(kFieldCommitmentPrefix);
  std::copy(salt.begin(), salt.end(), prefix + n);
  n += kHashSize;
  prefix[n++] = static_cast<char>((name.size() >> 8) & 0xff);
  prefix[n++] = static_cast<char>(name.size() & 0xff);
  Sha256& h = ThreadHasher();
  if (name.size() <= kMaxInlineName) {
    std::copy(name.begin(), name.end(), prefix + n);
    n += name.size();
  } else {
    h.Update(absl::string_view(prefix, n));
    h.Update(name);
    n = 0;
  }
  const uint32_t len = static_cast<uint32_t>(value.size());
  for (int shift = 24; shift >= 0; shift -= 8) prefix[n++] = static_cast<char>((len >> shift) & 0xff);
  h.Update(absl::string_view(prefix, n));
  h.Update(value);
  return h.Finish();
}

absl::Status PayloadCommitmentMismatch(const Hash& got, const Hash& want) {
  return absl::DataLossError(absl::StrCat("payload commitment: got ", ShortHex(got), ", want ",
                                          ShortHex(want)));
}

absl::Status OpeningMismatch(absl::string_view name, const Hash& got, const Hash& want) {
  return absl::DataLossError(absl::StrCat("field \"", name, "\": opening commits to ",
                                          ShortHex(got), ", want ", ShortHex(want)));
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
  size_t largest = 0;  // index of the largest value
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
    if (f.value.size() > event.fields[largest].value.size()) largest = i;
  }
  if (total > kMaxPayloadBytes) {
    const PayloadField& f = event.fields[largest];
    return absl::InvalidArgumentError(absl::StrCat(
        "fields[", largest, "].value: field \"", f.name, "\" got ", f.value.size(),
        " bytes; the payload values total ", total, " bytes, want at most ", kMaxPayloadBytes));
  }
  return absl::OkStatus();
}

Hash CommitField(absl::string_view name, const Hash& salt, absl::string_view value) {
  return CommitFieldBytes(name, AsBytes(salt), value);
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

Hash BlindTag(BlindKind kind, const Hash& salt, absl::string_view id) {
  Sha256& h = ThreadHasher();
  const char head[1] = {static_cast<char>(kind)};
  h.Update(absl::string_view(head, 1));
  h.Update(AsBytes(salt));
  const char len[2] = {static_cast<char>((id.size() >> 8) & 0xff),
                       static_cast<char>(id.size() & 0xff)};
  h.Update(absl::string_view(len, 2));
  h.Update(id);
  return h.Finish();
}

std::string BoxId(BlindKind kind, const Hash& stream_salt, uint64_t version,
                  absl::string_view bytes) {
  std::string out(bytes.data(), bytes.size());
  char block_input[1 + kHashSize + 8 + 1];
  block_input[0] = static_cast<char>(kind);
  std::copy(stream_salt.begin(), stream_salt.end(), block_input + 1);
  for (int i = 0; i < 8; ++i) {
    block_input[1 + kHashSize + i] = static_cast<char>((version >> (56 - 8 * i)) & 0xff);
  }
  for (size_t block = 0; block * kHashSize < out.size(); ++block) {
    block_input[sizeof(block_input) - 1] = static_cast<char>(block);
    const Hash pad = Sha256Of(absl::string_view(block_input, sizeof(block_input)));
    for (size_t i = block * kHashSize; i < out.size() && i < (block + 1) * kHashSize; ++i) {
      out[i] = static_cast<char>(out[i] ^ pad[i - block * kHashSize]);
    }
  }
  return out;
}

std::string EncodeRecord(const Record& r) {
  if (r.format_version == kRecordFormatBlinded) {
    std::string out;
    out.reserve(200 + r.event_id_box.size() + r.producer_box.size() + r.event_type.size() +
                kHashSize * r.subject_tags.size());
    ByteWriter w(&out);
    w.U8(kRecordFormatBlinded);
    w.U64(r.seq);
    w.HashValue(r.prev_hash);
    w.I64(r.commit_time_micros);
    w.HashValue(r.stream_tag);
    w.U64(r.version);
    w.Str16(r.event_id_box);
    w.Str16(r.producer_box);
    w.Str16(r.event_type);
    w.I64(r.occurred_at_micros);
    w.U16(static_cast<uint16_t>(r.subject_tags.size()));
    for (const Hash& t : r.subject_tags) w.HashValue(t);
    w.HashValue(r.payload_commitment);
    return out;
  }
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

absl::StatusOr<LeafView> DecodeLeafView(absl::string_view leaf) {
  ByteReader in(leaf, "record");
  LeafView r;
  uint8_t version;
  CL_RETURN_IF_ERROR(in.U8("format_version", &version));
  if (version != kRecordFormatVersion && version != kRecordFormatBlinded) {
    return absl::InvalidArgumentError(absl::StrCat("record: format_version got ", version,
                                                   ", want ", kRecordFormatVersion, " or ",
                                                   kRecordFormatBlinded));
  }
  const bool blinded = version == kRecordFormatBlinded;
  r.format_version = version;
  absl::string_view hash;
  CL_RETURN_IF_ERROR(in.U64("seq", &r.seq));
  CL_RETURN_IF_ERROR(in.Raw("prev_hash", kHashSize, &hash));
  r.prev_hash = HashFromView(hash);
  CL_RETURN_IF_ERROR(in.I64("commit_time", &r.commit_time_micros));
  if (blinded) {
    CL_RETURN_IF_ERROR(in.Raw("stream_tag", kHashSize, &hash));
    r.stream_tag = HashFromView(hash);
  } else {
    CL_RETURN_IF_ERROR(ReadStr16(in, "stream_id", &r.stream_id));
  }
  CL_RETURN_IF_ERROR(in.U64("version", &r.version));
  CL_RETURN_IF_ERROR(ReadStr16(in, blinded ? "event_id_box" : "event_id",
                               blinded ? &r.event_id_box : &r.event_id));
  CL_RETURN_IF_ERROR(ReadStr16(in, blinded ? "producer_box" : "producer",
                               blinded ? &r.producer_box : &r.producer));
  CL_RETURN_IF_ERROR(ReadStr16(in, "event_type", &r.event_type));
  CL_RETURN_IF_ERROR(in.I64("occurred_at", &r.occurred_at_micros));
  uint16_t n;
  CL_RETURN_IF_ERROR(in.U16("subject_count", &n));
  if (n > kMaxSubjects) {
    return absl::InvalidArgumentError(
        absl::StrCat("record: subject_count got ", n, ", want at most ", kMaxSubjects));
  }
  r.subject_count = n;
  const size_t subjects_begin = in.pos();
  for (uint16_t i = 0; i < n; ++i) {
    absl::string_view subject;
    if (blinded) {
      CL_RETURN_IF_ERROR(in.Raw("subject_tag", kHashSize, &subject));
    } else {
      CL_RETURN_IF_ERROR(ReadStr16(in, "subject_id", &subject));
    }
  }
  r.encoded_subject_ids = leaf.substr(subjects_begin, in.pos() - subjects_begin);
  CL_RETURN_IF_ERROR(in.Raw("payload_commitment", kHashSize, &hash));
  r.payload_commitment = HashFromView(hash);
  CL_RETURN_IF_ERROR(in.Done());
  return r;
}

absl::StatusOr<Record> DecodeRecord(absl::string_view leaf) {
  CL_ASSIGN_OR_RETURN(const LeafView v, DecodeLeafView(leaf));
  Record r;
  r.format_version = v.format_version;
  r.seq = v.seq;
  r.prev_hash = v.prev_hash;
  r.commit_time_micros = v.commit_time_micros;
  r.stream_id.assign(v.stream_id.data(), v.stream_id.size());
  r.version = v.version;
  r.event_id.assign(v.event_id.data(), v.event_id.size());
  r.producer.assign(v.producer.data(), v.producer.size());
  r.event_type.assign(v.event_type.data(), v.event_type.size());
  r.occurred_at_micros = v.occurred_at_micros;
  r.payload_commitment = v.payload_commitment;
  if (v.format_version == kRecordFormatBlinded) {
    r.stream_tag = v.stream_tag;
    r.event_id_box.assign(v.event_id_box.data(), v.event_id_box.size());
    r.producer_box.assign(v.producer_box.data(), v.producer_box.size());
    r.subject_tags.resize(v.subject_count);
    for (size_t i = 0; i < r.subject_tags.size(); ++i) {
      r.subject_tags[i] = HashFromView(v.encoded_subject_ids.substr(i * kHashSize, kHashSize));
    }
    return r;
  }
  r.subject_ids.resize(v.subject_count);
  ByteReader subjects(v.encoded_subject_ids, "record");  // checked: cannot fail
  for (std::string& id : r.subject_ids) {
    absl::string_view subject;
    CL_RETURN_IF_ERROR(ReadStr16(subjects, "subject_id", &subject));
    id.assign(subject.data(), subject.size());
  }
  r.payload_commitment = v.payload_commitment;
  return r;
}

std::string EncodePayload(const Payload& p) {
  std::string out;
  size_t size = 1 + 2 + p.key_id.size() + 2 + 4 + p.sealed_openings.size();
  for (const FieldCommitment& f : p.fields) size += 2 + f.name.size() + 1 + kHashSize;
  out.reserve(size);  // one allocation; the openings dominate
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

absl::StatusOr<PayloadView> DecodePayloadView(absl::string_view bytes) {
  ByteReader in(bytes, "payload");
  PayloadView p;
  uint8_t version;
  CL_RETURN_IF_ERROR(in.U8("format_version", &version));
  if (version != kPayloadFormatVersion) {
    return absl::InvalidArgumentError(absl::StrCat("payload: format_version got ", version,
                                                   ", want ", kPayloadFormatVersion));
  }
  CL_RETURN_IF_ERROR(ReadStr16(in, "key_id", &p.key_id));
  const size_t fields_begin = in.pos();
  uint16_t n;
  CL_RETURN_IF_ERROR(in.U16("field_count", &n));
  if (n > kMaxFields) {
    return absl::InvalidArgumentError(
        absl::StrCat("payload: field_count got ", n, ", want at most ", kMaxFields));
  }
  p.field_count = n;
  for (uint16_t i = 0; i < n; ++i) {
    absl::string_view name;
    uint8_t flags;
    absl::string_view commitment;
    CL_RETURN_IF_ERROR(ReadStr16(in, "field name", &name));
    CL_RETURN_IF_ERROR(in.U8("field flags", &flags));
    CL_RETURN_IF_ERROR(in.Raw("field commitment", kHashSize, &commitment));
  }
  p.encoded_fields = bytes.substr(fields_begin, in.pos() - fields_begin);
  // Openings hold salts and values, plus AEAD overhead when sealed.
  CL_RETURN_IF_ERROR(ReadStr32(in, "payload", "sealed_openings",
                               kMaxPayloadBytes + n * 40 + 1024, &p.sealed_openings));
  CL_RETURN_IF_ERROR(in.Done());
  return p;
}

absl::StatusOr<std::string> StripOpenings(absl::string_view payload) {
  CL_ASSIGN_OR_RETURN(PayloadView view, DecodePayloadView(payload));
  std::string out;
  ByteWriter w(&out);
  w.U8(kPayloadFormatVersion);
  w.Str16(view.key_id);
  w.Raw(view.encoded_fields);
  w.Str32("");
  return out;
}

bool PayloadView::FieldIterator::Next(FieldCommitmentView* field) {
  // The bytes were checked by DecodePayloadView; stop rather than overrun if not.
  if (rest_.size() < 2) return false;
  const size_t n = (static_cast<size_t>(static_cast<uint8_t>(rest_[0])) << 8) |
                   static_cast<uint8_t>(rest_[1]);
  if (rest_.size() < 2 + n + 1 + kHashSize) return false;
  field->name = rest_.substr(2, n);
  field->flags = static_cast<uint8_t>(rest_[2 + n]);
  field->commitment = HashFromView(rest_.substr(2 + n + 1, kHashSize));
  rest_.remove_prefix(2 + n + 1 + kHashSize);
  return true;
}

absl::StatusOr<Payload> DecodePayload(absl::string_view bytes) {
  CL_ASSIGN_OR_RETURN(const PayloadView v, DecodePayloadView(bytes));
  Payload p;
  p.key_id.assign(v.key_id.data(), v.key_id.size());
  p.fields.reserve(v.field_count);
  FieldCommitmentView f;
  for (PayloadView::FieldIterator it(v); it.Next(&f);) {
    p.fields.push_back({std::string(f.name.data(), f.name.size()), f.flags, f.commitment});
  }
  p.sealed_openings.assign(v.sealed_openings.data(), v.sealed_openings.size());
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
  return PayloadCommitmentMismatch(got, want);
}

absl::Status CheckPayloadCommitment(const PayloadView& payload, const Hash& want) {
  // encoded_fields is byte for byte what CommitPayload writes after 0x03.
  Sha256& h = ThreadHasher();
  h.Update(kPayloadCommitmentPrefix);
  h.Update(payload.encoded_fields);
  Hash got = h.Finish();
  if (got == want) return absl::OkStatus();
  return PayloadCommitmentMismatch(got, want);
}

absl::Status CheckOpenings(const Payload& payload, absl::Span<const FieldOpening> openings) {
  if (openings.size() != payload.fields.size()) {
    return absl::DataLossError(absl::StrCat("openings: got ", openings.size(), ", want ",
                                            payload.fields.size()));
  }
  for (size_t i = 0; i < openings.size(); ++i) {
    const FieldCommitment& f = payload.fields[i];
    Hash got = CommitField(f.name, openings[i].salt, openings[i].value);
    if (got != f.commitment) return OpeningMismatch(f.name, got, f.commitment);
  }
  return absl::OkStatus();
}

absl::Status CheckPlaintextOpenings(const PayloadView& payload) {
  // The reads of DecodeOpenings, in order, so malformed openings get its
  // messages; a mismatch is reported only once all of them decode.
  ByteReader in(payload.sealed_openings, "openings");
  PayloadView::FieldIterator fields(payload);
  FieldCommitmentView field;
  bool mismatch = false;
  FieldCommitmentView bad_field;
  Hash bad_got{};
  for (uint16_t i = 0; i < payload.field_count; ++i) {
    if (!fields.Next(&field)) return absl::InternalError("payload view: fields overrun");
    absl::string_view salt;
    absl::string_view value;
    CL_RETURN_IF_ERROR(in.Raw("salt", kHashSize, &salt));
    CL_RETURN_IF_ERROR(ReadStr32(in, "openings", "value", kMaxPayloadBytes, &value));
    if (mismatch) continue;
    Hash got = CommitFieldBytes(field.name, salt, value);
    if (got != field.commitment) {
      mismatch = true;
      bad_field = field;
      bad_got = got;
    }
  }
  CL_RETURN_IF_ERROR(in.Done());
  if (mismatch) return OpeningMismatch(bad_field.name, bad_got, bad_field.commitment);
  return absl::OkStatus();
}

}  // namespace caseledger
