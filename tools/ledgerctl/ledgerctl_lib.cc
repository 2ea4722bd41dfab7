#include "tools/ledgerctl/ledgerctl_lib.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <utility>

#include <google/protobuf/timestamp.pb.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "ledger/hash.h"
#include "ledger/internal/status_macros.h"
#include "ledger/merkle_verify.h"
#include "ledger/record.h"

namespace caseledger::ledgerctl {
namespace {

using google::protobuf::util::JsonParseOptions;
using google::protobuf::util::JsonPrintOptions;

std::string ProtoMessage(const google::protobuf::util::Status& s) {
  return std::string(s.message().data(), s.message().size());
}

absl::StatusOr<Hash> ToHash(const std::string& bytes, absl::string_view what) {
  absl::StatusOr<Hash> h = HashFromBytes(bytes);
  if (!h.ok()) {
    return absl::DataLossError(
        absl::StrCat(what, ": got ", bytes.size(), " bytes, want ", kHashSize));
  }
  return h;
}

absl::StatusOr<std::vector<Hash>> ToHashes(
    const google::protobuf::RepeatedPtrField<std::string>& in, absl::string_view what) {
  std::vector<Hash> out;
  out.reserve(in.size());
  for (int i = 0; i < in.size(); ++i) {
    CL_ASSIGN_OR_RETURN(Hash h, ToHash(in[i], absl::StrCat(what, "[", i, "]")));
    out.push_back(h);
  }
  return out;
}

}  // namespace

absl::StatusOr<v1::AppendRequest> ParseEventJson(absl::string_view json, absl::Time now) {
  JsonParseOptions opts;
  opts.ignore_unknown_fields = false;
  const std::string text(json);
  v1::AppendRequest req;
  // A bare Event has no field "event", so at most one of the two parses.
  google::protobuf::util::Status as_event = JsonStringToMessage(text, req.mutable_event(), opts);
  if (!as_event.ok()) {
    req.Clear();
    google::protobuf::util::Status as_request = JsonStringToMessage(text, &req, opts);
    if (!as_request.ok() || !req.has_event()) {
      // Report the error of the shape the text looks like.
      google::protobuf::Struct top;
      bool is_request =
          JsonStringToMessage(text, &top, opts).ok() &&
          (top.fields().count("event") > 0 || top.fields().count("expected_version") > 0 ||
           top.fields().count("expectedVersion") > 0);
      if (is_request) {
        return absl::InvalidArgumentError(
            as_request.ok() ? "AppendRequest.event: must be set"
                            : absl::StrCat("AppendRequest: ", ProtoMessage(as_request)));
      }
      return absl::InvalidArgumentError(absl::StrCat("Event: ", ProtoMessage(as_event)));
    }
  }
  FillEventDefaults(now, req.mutable_event());
  return req;
}

void FillEventDefaults(absl::Time now, v1::Event* e) {
  if (!e->has_occurred_at()) {
    int64_t micros = absl::ToUnixMicros(now);
    e->mutable_occurred_at()->set_seconds(micros / 1000000);
    e->mutable_occurred_at()->set_nanos(static_cast<int32_t>(micros % 1000000) * 1000);
  }
  if (e->producer().empty()) e->set_producer("ledgerctl");
}

absl::StatusOr<absl::Time> ParseWhen(absl::string_view flag, const std::string& value) {
  absl::Time t;
  std::string err;
  if (absl::ParseTime(absl::RFC3339_full, value, &t, &err) ||
      absl::ParseTime("%Y-%m-%d", value, absl::UTCTimeZone(), &t, &err)) {
    return t;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--", flag, ": got \"", value, "\", want a date (2026-01-31) or RFC 3339 time"));
}

namespace {

// The enum value `value` names: its full name (LEGAL_HOLD_SCOPE_CASE) or,
// in any case, what follows the prefix every value of the enum shares
// (case).
const google::protobuf::EnumValueDescriptor* EnumValueNamed(
    const google::protobuf::EnumDescriptor* d, const std::string& value) {
  if (const auto* v = d->FindValueByName(value); v != nullptr) return v;
  // Every enum of proto/events.proto starts with PREFIX_UNSPECIFIED = 0.
  const std::string& zero = d->value(0)->name();
  if (!absl::EndsWith(zero, "UNSPECIFIED")) return nullptr;
  const std::string prefix = zero.substr(0, zero.size() - std::string("UNSPECIFIED").size());
  return d->FindValueByName(prefix + absl::AsciiStrToUpper(value));
  return nullptr;
}

}  // namespace

absl::StatusOr<v1::AppendRequest> WorkflowEvent(const WorkflowEnvelope& envelope,
                                                absl::string_view body,
                                                const std::vector<FlagValue>& fields,
                                                absl::Time now) {
  using google::protobuf::FieldDescriptor;
  v1::AppendRequest req;
  v1::Event* e = req.mutable_event();
  const FieldDescriptor* b = v1::Event::descriptor()->FindFieldByName(std::string(body));
  if (b == nullptr || b->message_type() == nullptr || b->containing_oneof() == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("no event body \"", body, "\""));
  }
  google::protobuf::Message* m = e->GetReflection()->MutableMessage(e, b);
  const google::protobuf::Reflection* r = m->GetReflection();
  for (const auto& [flag, value] : fields) {
    const FieldDescriptor* f = b->message_type()->FindFieldByName(flag);
    if (f == nullptr || f->is_repeated() || f->name() == "late_documentation") {
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag, ": not a field of ", body));
    }
    if (f->type() == FieldDescriptor::TYPE_STRING) {
      r->SetString(m, f, value);
    } else if (f->type() == FieldDescriptor::TYPE_ENUM) {
      const auto* v = EnumValueNamed(f->enum_type(), value);
      if (v == nullptr || v->number() == 0) {
        std::vector<std::string> want;
        for (int i = 1; i < f->enum_type()->value_count(); ++i) {
          want.push_back(f->enum_type()->value(i)->name());
        }
        return absl::InvalidArgumentError(absl::StrCat("--", flag, ": got \"", value,
                                                       "\", want one of ",
                                                       absl::StrJoin(want, ", ")));
      }
      r->SetEnum(m, f, v);
    } else if (f->type() == FieldDescriptor::TYPE_BYTES) {
      // Every bytes field of a workflow body is a SHA-256 (events.proto).
      absl::StatusOr<Hash> h = HashFromHex(value);
      if (!h.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("--", flag, ": got \"", value, "\", want 64 hex digits (a SHA-256)"));
      }
      r->SetString(m, f, std::string(h->begin(), h->end()));
    } else if (f->message_type() == google::protobuf::Timestamp::descriptor()) {
      CL_ASSIGN_OR_RETURN(absl::Time t, ParseWhen(flag, value));
      auto* ts = static_cast<google::protobuf::Timestamp*>(r->MutableMessage(m, f));
      ts->set_seconds(absl::ToUnixSeconds(t));
    } else {
      return absl::InvalidArgumentError(absl::StrCat("--", flag, ": not settable from a flag"));
    }
  }
  if (!envelope.late.empty()) {
    const FieldDescriptor* late = b->message_type()->FindFieldByName("late_documentation");
    if (late == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("--late: ", body, " cannot be marked late"));
    }
    static_cast<v1::LateDocumentation*>(r->MutableMessage(m, late))->set_reason(envelope.late);
  }
  e->set_event_id(envelope.event_id);
  e->set_stream_id(envelope.stream_id);
  for (const std::string& s : envelope.subject_ids) e->add_subject_ids(s);
  if (envelope.subject_ids.empty()) {
    // The client a body names is in its history (services/policy/RULES.md S8).
    const FieldDescriptor* client = b->message_type()->FindFieldByName("client_id");
    if (client != nullptr && !r->GetString(*m, client).empty()) {
      e->add_subject_ids(r->GetString(*m, client));
    }
  }
  if (!envelope.occurred_at.empty()) {
    CL_ASSIGN_OR_RETURN(absl::Time t, ParseWhen("occurred_at", envelope.occurred_at));
    e->mutable_occurred_at()->set_seconds(absl::ToUnixSeconds(t));
  }
  FillEventDefaults(now, e);
  if (e->event_id().empty()) {
    e->set_event_id(absl::StrCat("ledgerctl-", body, "-", absl::ToUnixMicros(now)));
  }
  return req;
}

JsonObject& JsonObject::AddRaw(absl::string_view key, absl::string_view json) {
  if (!body_.empty()) body_ += ',';
  absl::StrAppend(&body_, JsonQuote(key), ":", json);
  return *this;
}
JsonObject& JsonObject::Add(absl::string_view key, absl::string_view value) {
  return AddRaw(key, JsonQuote(value));
}
JsonObject& JsonObject::Add(absl::string_view key, uint64_t value) {
  return AddRaw(key, absl::StrCat(value));
}
JsonObject& JsonObject::Add(absl::string_view key, bool value) {
  return AddRaw(key, value ? "true" : "false");
}

bool IsBlankLine(absl::string_view line) { return absl::StripAsciiWhitespace(line).empty(); }

std::string ToJson(const google::protobuf::Message& m, bool all_fields) {
  JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  opts.always_print_primitive_fields = all_fields;
  std::string out;
  google::protobuf::util::Status s = MessageToJsonString(m, &out, opts);
  if (!s.ok()) return absl::StrCat("{\"error\":\"", ProtoMessage(s), "\"}");
  return out;
}

std::string FormatTimestamp(int64_t seconds, int32_t nanos) {
  absl::Time t = absl::FromUnixSeconds(seconds) + absl::Nanoseconds(nanos);
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", t, absl::UTCTimeZone());
}

std::string FormatAge(absl::Duration d) {
  if (d < absl::ZeroDuration()) return "in the future";
  int64_t s = absl::ToInt64Seconds(d);
  if (s < 60) return absl::StrCat(s, "s");
  if (s < 3600) return absl::StrCat(s / 60, "m", s % 60, "s");
  if (s < 86400) return absl::StrCat(s / 3600, "h", s % 3600 / 60, "m");
  return absl::StrCat(s / 86400, "d", s % 86400 / 3600, "h");
}

std::string ProgressLine(uint64_t done, uint64_t total, absl::Duration elapsed) {
  double secs = absl::ToDoubleSeconds(elapsed);
  uint64_t rate = secs > 0 ? static_cast<uint64_t>(std::llround(done / secs)) : 0;
  if (total == 0) return absl::StrFormat("%d events  %d events/s", done, rate);
  constexpr int kWidth = 30;
  uint64_t shown = std::min(done, total);
  int filled = static_cast<int>(shown * kWidth / total);
  return absl::StrFormat("[%s%s] %d/%d %3d%%  %d events/s", std::string(filled, '#'),
                         std::string(kWidth - filled, '.'), done, total, shown * 100 / total, rate);
}

std::string FormatRecordText(const v1::Record& r) {
  const v1::Event& e = r.event();
  const google::protobuf::Reflection* refl = e.GetReflection();
  const google::protobuf::FieldDescriptor* body_field =
      refl->GetOneofFieldDescriptor(e, v1::Event::descriptor()->FindOneofByName("body"));
  std::string type = body_field != nullptr ? body_field->name() : "(no body)";
  std::string out =
      absl::StrCat("seq ", r.seq(), "  ", r.stream_id(), "@", r.version(), "  ", type, "\n");
  auto line = [&out](absl::string_view key, absl::string_view value) {
    absl::StrAppend(&out, "  ", absl::StrFormat("%-11s", key), value, "\n");
  };
  line("event_id", r.event_id());
  line("committed", FormatTimestamp(r.commit_time().seconds(), r.commit_time().nanos()));
  line("occurred", FormatTimestamp(e.occurred_at().seconds(), e.occurred_at().nanos()));
  line("producer", e.producer());
  if (e.subject_ids_size() > 0) line("subjects", absl::StrJoin(e.subject_ids(), ", "));
  absl::StatusOr<Hash> leaf = HashFromBytes(r.leaf_hash());
  line("leaf_hash", leaf.ok() ? ShortHex(*leaf) : "(malformed)");
  if (body_field != nullptr) line("body", ToJson(refl->GetMessage(e, body_field)));
  if (r.withheld_fields_size() > 0) line("withheld", absl::StrJoin(r.withheld_fields(), ", "));
  return out;
}

absl::StatusOr<NoteVerifier> LoadVerifier(const std::string& key_or_file) {
  std::string key = key_or_file;
  if (std::count(key_or_file.begin(), key_or_file.end(), '+') < 2) {
    std::ifstream in(key_or_file);
    if (!in) {
      return absl::NotFoundError(
          absl::StrCat("--key: \"", key_or_file,
                       "\" is neither a verifier key (name+hash+base64) nor a readable file"));
    }
    std::stringstream ss;
    ss << in.rdbuf();
    key = std::string(absl::StripAsciiWhitespace(ss.str()));
  }
  absl::StatusOr<NoteVerifier> v = NoteVerifier::FromVerifierKey(key);
  if (!v.ok()) return absl::InvalidArgumentError(absl::StrCat("--key: ", v.status().message()));
  return v;
}

absl::StatusOr<Checkpoint> VerifyCheckpoint(const v1::Checkpoint& cp, const NoteVerifier& verifier,
                                            absl::string_view origin) {
  CL_ASSIGN_OR_RETURN(Checkpoint signed_cp, OpenCheckpoint(cp.note(), verifier, origin));
  if (signed_cp.size != cp.size()) {
    return absl::DataLossError(absl::StrCat("checkpoint size: the response says ", cp.size(),
                                            ", the signed note says ", signed_cp.size));
  }
  CL_ASSIGN_OR_RETURN(Hash root, ToHash(cp.root_hash(), "checkpoint root_hash"));
  if (root != signed_cp.root) {
    return absl::DataLossError(absl::StrCat("checkpoint root: the response says ", ShortHex(root),
                                            ", the signed note says ", ShortHex(signed_cp.root)));
  }
  return signed_cp;
}

absl::Status CheckRecordMatchesProof(const v1::Record& record, const v1::InclusionProof& proof) {
  if (record.seq() != proof.seq()) {
    return absl::DataLossError(
        absl::StrCat("record seq: got ", record.seq(), ", want ", proof.seq()));
  }
  Hash computed = LeafHash(record.leaf());
  CL_ASSIGN_OR_RETURN(Hash proof_leaf, ToHash(proof.leaf_hash(), "proof leaf_hash"));
  if (computed != proof_leaf) {
    return absl::DataLossError(absl::StrCat("record ", record.seq(), ": SHA-256(0x00 || leaf) is ",
                                            ShortHex(computed), ", the proof's leaf_hash is ",
                                            ShortHex(proof_leaf)));
  }
  CL_ASSIGN_OR_RETURN(Hash claimed, ToHash(record.leaf_hash(), "record leaf_hash"));
  if (computed != claimed) {
    return absl::DataLossError(
        absl::StrCat("record ", record.seq(), ": SHA-256(0x00 || leaf) is ", ShortHex(computed),
                     ", the record's leaf_hash field says ", ShortHex(claimed)));
  }
  absl::StatusOr<Record> leaf = DecodeRecord(record.leaf());
  if (!leaf.ok()) {
    return absl::DataLossError(
        absl::StrCat("record ", record.seq(), ": leaf does not decode: ", leaf.status().message()));
  }
  auto differs = [&](absl::string_view what, const auto& got, const auto& want) {
    return absl::DataLossError(absl::StrCat("record ", record.seq(), ": ", what, " in the leaf is ",
                                            got, ", the record says ", want));
  };
  if (leaf->seq != record.seq()) return differs("seq", leaf->seq, record.seq());
  // A format-2 leaf holds the stream and event ids blinded (ledger/FORMAT.md):
  // without their salts only seq, version and the payload can be compared.
  const bool blinded = leaf->format_version == kRecordFormatBlinded;
  if (!blinded && leaf->stream_id != record.stream_id()) {
    return differs("stream_id", leaf->stream_id, record.stream_id());
  }
  if (leaf->version != record.version()) return differs("version", leaf->version, record.version());
  if (!blinded && leaf->event_id != record.event_id()) {
    return differs("event_id", leaf->event_id, record.event_id());
  }
  absl::StatusOr<Payload> payload = DecodePayload(record.payload());
  if (!payload.ok()) {
    return absl::DataLossError(absl::StrCat(
        "record ", record.seq(), ": payload does not decode: ", payload.status().message()));
  }
  absl::Status committed = CheckPayloadCommitment(*payload, leaf->payload_commitment);
  if (!committed.ok()) {
    return absl::DataLossError(absl::StrCat("record ", record.seq(), ": ", committed.message()));
  }
  return absl::OkStatus();
}

absl::Status CheckInclusion(const v1::InclusionProof& proof, const Checkpoint& cp) {
  if (proof.tree_size() != cp.size) {
    return absl::DataLossError(absl::StrCat("proof tree_size: got ", proof.tree_size(),
                                            ", want the checkpoint's ", cp.size));
  }
  CL_ASSIGN_OR_RETURN(Hash leaf, ToHash(proof.leaf_hash(), "proof leaf_hash"));
  CL_ASSIGN_OR_RETURN(std::vector<Hash> path, ToHashes(proof.hashes(), "proof hashes"));
  return VerifyInclusion(leaf, proof.seq(), cp.size, path, cp.root);
}

absl::Status CheckConsistency(const v1::ConsistencyProof& proof, const Checkpoint& from,
                              const Checkpoint& to) {
  if (proof.from_size() != from.size || proof.to_size() != to.size) {
    return absl::DataLossError(absl::StrCat("proof sizes: got ", proof.from_size(), " -> ",
                                            proof.to_size(), ", want ", from.size, " -> ",
                                            to.size));
  }
  CL_ASSIGN_OR_RETURN(std::vector<Hash> path, ToHashes(proof.hashes(), "proof hashes"));
  return VerifyConsistency(from.size, to.size, path, from.root, to.root);
}

}  // namespace caseledger::ledgerctl
