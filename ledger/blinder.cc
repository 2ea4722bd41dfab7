#include "ledger/blinder.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace caseledger {

std::string UnlinkedSubjectId(const Hash& tag) {
  return absl::StrCat("unlinked-subject:",
                      absl::BytesToHexString(AsBytes(tag).substr(0, 8)));
}

void SaltTable::Add(BlindKind kind, absl::string_view id, const Hash& salt) {
  salts_[{static_cast<uint8_t>(kind), std::string(id)}] = salt;
  tags_[{static_cast<uint8_t>(kind), BlindTag(kind, salt, id)}] = Opening{std::string(id), salt};
}

absl::StatusOr<Hash> SaltTable::FindSalt(BlindKind kind, absl::string_view id) const {
  auto it = salts_.find(std::make_pair(static_cast<uint8_t>(kind), std::string(id)));
  if (it == salts_.end()) return absl::NotFoundError("no salt given for this id");
  return it->second;
}

absl::StatusOr<Blinder::Opening> SaltTable::OpenTag(BlindKind kind, const Hash& tag) const {
  auto it = tags_.find(std::make_pair(static_cast<uint8_t>(kind), tag));
  if (it == tags_.end()) {
    return absl::NotFoundError(absl::StrCat("no salt given opens tag ", ShortHex(tag)));
  }
  return it->second;
}

void BlindRecord(const Hash& stream_salt, absl::Span<const Hash> subject_salts,
                 Record* r) {
  r->format_version = kRecordFormatBlinded;
  r->stream_tag = BlindTag(BlindKind::kStream, stream_salt, r->stream_id);
  r->event_id_box = BoxId(BlindKind::kEventId, stream_salt, r->version, r->event_id);
  r->producer_box = BoxId(BlindKind::kProducer, stream_salt, r->version, r->producer);
  r->subject_tags.clear();
  for (size_t i = 0; i < r->subject_ids.size(); ++i) {
    r->subject_tags.push_back(BlindTag(BlindKind::kSubject, subject_salts[i], r->subject_ids[i]));
  }
}

absl::Status OpenBlindedRecord(const Blinder& blinder, Record* r) {
  if (r->format_version != kRecordFormatBlinded) return absl::OkStatus();
  absl::StatusOr<Blinder::Opening> stream = blinder.OpenTag(BlindKind::kStream, r->stream_tag);
  if (!stream.ok()) {
    return absl::DataLossError(absl::StrCat("record ", r->seq, ": stream tag ",
                                            ShortHex(r->stream_tag),
                                            " does not open: ", stream.status().message()));
  }
  if (BlindTag(BlindKind::kStream, stream->salt, stream->id) != r->stream_tag) {
    return absl::DataLossError(absl::StrCat("record ", r->seq, ": stream salt gives tag ",
                                            ShortHex(BlindTag(BlindKind::kStream, stream->salt,
                                                              stream->id)),
                                            ", want ", ShortHex(r->stream_tag)));
  }
  r->stream_id = stream->id;
  r->event_id = BoxId(BlindKind::kEventId, stream->salt, r->version, r->event_id_box);
  r->producer = BoxId(BlindKind::kProducer, stream->salt, r->version, r->producer_box);
  r->subject_ids.clear();
  for (const Hash& tag : r->subject_tags) {
    absl::StatusOr<Blinder::Opening> s = blinder.OpenTag(BlindKind::kSubject, tag);
    if (absl::IsNotFound(s.status())) {
      r->subject_ids.push_back(UnlinkedSubjectId(tag));
      continue;
    }
    if (!s.ok()) {
      return absl::Status(s.status().code(),
                          absl::StrCat("record ", r->seq, ": ", s.status().message()));
    }
    if (BlindTag(BlindKind::kSubject, s->salt, s->id) != tag) {
      return absl::DataLossError(absl::StrCat("record ", r->seq, ": subject salt does not give tag ",
                                              ShortHex(tag)));
    }
    r->subject_ids.push_back(s->id);
  }
  return absl::OkStatus();
}

}  // namespace caseledger
