#include "services/append/event_codec.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/reflection.h>
#include <google/protobuf/wire_format_lite.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ledger/internal/status_macros.h"
#include "proto/options.pb.h"

namespace caseledger {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;
using google::protobuf::internal::WireFormatLite;

// 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z, as google.protobuf.Timestamp allows.
constexpr int64_t kMinSeconds = -62135596800;
constexpr int64_t kMaxSeconds = 253402300799;

// Unknown fields and unknown enum numbers, anywhere in `m`.
absl::Status CheckKnown(const Message& m, const std::string& path) {
  const Reflection* r = m.GetReflection();
  const google::protobuf::UnknownFieldSet& unknown = r->GetUnknownFields(m);
  if (!unknown.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": unknown field number ",
                                                   unknown.field(0).number(),
                                                   " (is the client newer than the server?)"));
  }
  std::vector<const FieldDescriptor*> fields;
  r->ListFields(m, &fields);
  for (const FieldDescriptor* f : fields) {
    std::string sub = absl::StrCat(path, ".", f->name());
    if (f->type() == FieldDescriptor::TYPE_ENUM) {
      int n = f->is_repeated() ? r->FieldSize(m, f) : 1;
      for (int i = 0; i < n; ++i) {
        int v = f->is_repeated() ? r->GetRepeatedEnumValue(m, f, i) : r->GetEnumValue(m, f);
        if (f->enum_type()->FindValueByNumber(v) == nullptr) {
          return absl::InvalidArgumentError(
              absl::StrCat(sub, ": unknown ", f->enum_type()->name(), " value ", v));
        }
      }
    } else if (f->type() == FieldDescriptor::TYPE_MESSAGE) {
      if (f->is_repeated()) {
        for (int i = 0; i < r->FieldSize(m, f); ++i) {
          CL_RETURN_IF_ERROR(
              CheckKnown(r->GetRepeatedMessage(m, f, i), absl::StrCat(sub, "[", i, "]")));
        }
      } else {
        CL_RETURN_IF_ERROR(CheckKnown(r->GetMessage(m, f), sub));
      }
    }
  }
  return absl::OkStatus();
}

std::string SerializeDeterministic(const Message& m) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    m.SerializeWithCachedSizes(&coded);
  }
  return out;
}

// Splits a wire encoding into (field number, that field's records) runs.
absl::StatusOr<std::vector<std::pair<int, std::string>>> SplitByField(const std::string& bytes) {
  std::vector<std::pair<int, std::string>> out;
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                                            static_cast<int>(bytes.size()));
  for (;;) {
    int start = in.CurrentPosition();
    uint32_t tag = in.ReadTag();
    if (tag == 0) break;
    if (!WireFormatLite::SkipField(&in, tag)) {
      return absl::InternalError("event body: malformed wire encoding");
    }
    int number = WireFormatLite::GetTagFieldNumber(tag);
    absl::string_view run(bytes.data() + start, in.CurrentPosition() - start);
    if (!out.empty() && out.back().first == number) {
      out.back().second.append(run.data(), run.size());
    } else {
      out.emplace_back(number, std::string(run));
    }
  }
  return out;
}

const google::protobuf::OneofDescriptor* BodyOneof() {
  static const auto* oneof = v1::Event::descriptor()->FindOneofByName("body");
  return oneof;
}

}  // namespace

absl::StatusOr<Event> ToLedgerEvent(const v1::Event& wire) {
  const Reflection* r = wire.GetReflection();
  const FieldDescriptor* body_field = r->GetOneofFieldDescriptor(wire, BodyOneof());
  if (body_field == nullptr) {
    const auto& unknown = r->GetUnknownFields(wire);
    if (!unknown.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "event.body: unknown event type (field number ", unknown.field(0).number(),
          "; is the client newer than the server?)"));
    }
    return absl::InvalidArgumentError("event.body: must be set to one of the event types");
  }
  CL_RETURN_IF_ERROR(CheckKnown(wire, "event"));
  if (!wire.has_occurred_at()) return absl::InvalidArgumentError("event.occurred_at: must be set");
  const auto& ts = wire.occurred_at();
  if (ts.seconds() < kMinSeconds || ts.seconds() > kMaxSeconds || ts.nanos() < 0 ||
      ts.nanos() > 999999999) {
    return absl::InvalidArgumentError(absl::StrCat("event.occurred_at: got ", ts.seconds(), "s ",
                                                   ts.nanos(),
                                                   "ns, want a time in years 1 to 9999"));
  }

  Event e;
  e.event_id = wire.event_id();
  e.stream_id = wire.stream_id();
  e.producer = wire.producer();
  e.subject_ids.assign(wire.subject_ids().begin(), wire.subject_ids().end());
  e.occurred_at_micros = ts.seconds() * 1000000 + ts.nanos() / 1000;
  e.event_type = body_field->name();

  const Message& body = r->GetMessage(wire, body_field);
  body.ByteSizeLong();  // caches sizes for SerializeWithCachedSizes
  CL_ASSIGN_OR_RETURN(auto runs, SplitByField(SerializeDeterministic(body)));
  const Descriptor* type = body.GetDescriptor();
  for (auto& [number, value] : runs) {
    const FieldDescriptor* f = type->FindFieldByNumber(number);
    if (f == nullptr) return absl::InternalError("event body: field vanished");  // checked above
    uint8_t flags = f->options().GetExtension(v1::protected_detail) ? kFieldProtected : 0;
    e.fields.push_back({f->name(), std::move(value), flags});
  }
  // The size limit is the body's (ledger/FORMAT.md), but the producer sent
  // fields: name the largest, as the producer knows it.
  size_t total = 0;
  const PayloadField* largest = nullptr;
  for (const PayloadField& f : e.fields) {
    total += f.value.size();
    if (largest == nullptr || f.value.size() > largest->value.size()) largest = &f;
  }
  if (total > kMaxPayloadBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("event.", e.event_type, ".", largest->name, ": got ", largest->value.size(),
                     " bytes encoded, and the body's fields total ", total, " bytes; want at most ",
                     kMaxPayloadBytes, " bytes in all"));
  }
  absl::Status valid = ValidateEvent(e);
  if (!valid.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("event.", valid.message()));
  }
  return e;
}

absl::StatusOr<v1::Record> ToWireRecord(const RecordView& stored, View view, Origin origin) {
  const Record& rec = stored.record;
  auto where = [&rec](absl::string_view what) {
    return absl::StrCat("record ", rec.seq, ": ", what);
  };
  v1::Record out;
  out.set_seq(rec.seq);
  out.set_stream_id(rec.stream_id);
  out.set_version(rec.version);
  out.set_event_id(rec.event_id);
  out.mutable_commit_time()->set_seconds(rec.commit_time_micros / 1000000);
  out.mutable_commit_time()->set_nanos(static_cast<int32_t>(rec.commit_time_micros % 1000000) *
                                       1000);
  out.set_prev_hash(std::string(AsBytes(rec.prev_hash)));
  out.set_leaf(stored.leaf);
  out.set_leaf_hash(std::string(AsBytes(stored.leaf_hash)));
  out.set_payload(stored.payload);

  v1::Event* e = out.mutable_event();
  e->set_event_id(rec.event_id);
  e->set_stream_id(rec.stream_id);
  e->set_producer(rec.producer);
  for (const std::string& s : rec.subject_ids) e->add_subject_ids(s);
  e->mutable_occurred_at()->set_seconds(rec.occurred_at_micros / 1000000);
  e->mutable_occurred_at()->set_nanos(static_cast<int32_t>(rec.occurred_at_micros % 1000000) *
                                      1000);

  const FieldDescriptor* body_field = v1::Event::descriptor()->FindFieldByName(rec.event_type);
  if (body_field == nullptr || body_field->containing_oneof() != BodyOneof()) {
    return absl::DataLossError(where(absl::StrCat("unknown event_type \"", rec.event_type, "\"")));
  }
  absl::StatusOr<Payload> payload = DecodePayload(stored.payload);
  if (!payload.ok()) return absl::DataLossError(where(payload.status().message()));
  const bool check = origin == Origin::kStore;
  if (check) CL_RETURN_IF_ERROR(CheckPayloadCommitment(*payload, rec.payload_commitment));
  if (!payload->key_id.empty()) {
    if (!stored.openings.has_value()) {
      // Erased (a key was destroyed) or no key store: the record is served
      // with its commitments only and every field withheld, so that readers
      // of the log carry on and can still verify it.
      for (const FieldCommitment& f : payload->fields) out.add_withheld_fields(f.name);
      out.set_withheld_reason(stored.erased ? "erased" : "sealed");
      Payload commitments_only = *payload;
      commitments_only.sealed_openings.clear();
      out.set_payload(EncodePayload(commitments_only));
      e->GetReflection()->MutableMessage(e, body_field);  // an empty body of the right type
      return out;
    }
    // Served opened, as a plaintext payload with the same commitments, so a
    // reader checks every opening exactly as for an unencrypted record.
    payload->key_id.clear();
    payload->sealed_openings = *stored.openings;
    out.set_payload(EncodePayload(*payload));
  }
  absl::StatusOr<std::vector<FieldOpening>> openings =
      DecodeOpenings(payload->sealed_openings, payload->fields.size());
  if (!openings.ok()) return absl::DataLossError(where(openings.status().message()));
  if (check) {
    absl::Status opened = CheckOpenings(*payload, *openings);
    if (!opened.ok()) return absl::DataLossError(where(opened.message()));
  }

  std::string body_bytes;
  for (size_t i = 0; i < payload->fields.size(); ++i) {
    const FieldCommitment& f = payload->fields[i];
    if (view == View::kClientView && (f.flags & kFieldProtected) != 0) {
      out.add_withheld_fields(f.name);
      continue;
    }
    body_bytes += (*openings)[i].value;
  }
  if (view == View::kClientView) {
    // Never ship withheld openings. Until the revealed-payload format exists
    // (issue 5), a client view carries the commitments only.
    Payload commitments_only = *payload;
    commitments_only.sealed_openings.clear();
    out.set_payload(EncodePayload(commitments_only));
  }
  Message* body = e->GetReflection()->MutableMessage(e, body_field);
  if (!body->ParseFromString(body_bytes)) {
    return absl::DataLossError(where("payload fields do not parse as " +
                                     body->GetDescriptor()->full_name()));
  }
  return out;
}

absl::Status ToCommitmentsOnly(v1::Record* record) {
  // The leaf commits to the payload; the reader checks chain, tree and the
  // field commitments without seeing an opening.
  absl::StatusOr<std::string> commitments = StripOpenings(record->payload());
  if (!commitments.ok()) return commitments.status();
  record->set_payload(*std::move(commitments));
  record->clear_stream_id();
  record->clear_event_id();
  record->clear_event();
  record->clear_withheld_fields();
  return absl::OkStatus();
}

}  // namespace caseledger
