#include "services/history/history_bundle.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <map>
#include <cstring>
#include <memory>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/inlined_vector.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"
#include "ledger/internal/status_macros.h"
#include "ledger/merkle_verify.h"
#include "proto/events.pb.h"
#include "proto/options.pb.h"

namespace caseledger {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::MessageFactory;

absl::Status DataLoss(absl::string_view where, absl::string_view what) {
  return absl::DataLossError(absl::StrCat(where, ": ", what));
}

absl::StatusOr<Hash> WireHash(const std::string& bytes, absl::string_view field) {
  absl::StatusOr<Hash> h = HashFromBytes(bytes);
  if (!h.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": got ", bytes.size(), " bytes, want 32"));
  }
  return *h;
}

// WireHash for the per-record fields: `field()` names the field, and is
// called only for the error.
template <typename FieldName>
absl::Status WireHashTo(const std::string& bytes, const FieldName& field, Hash* out) {
  if (bytes.size() != kHashSize) {
    return absl::InvalidArgumentError(
        absl::StrCat(field(), ": got ", bytes.size(), " bytes, want 32"));
  }
  std::copy(bytes.begin(), bytes.end(), out->begin());
  return absl::OkStatus();
}

// SchemaProtected, remembered per (event type, field) for one bundle: the
// descriptor lookups are done once per pair, not once per record. Errors are
// not remembered (they end the verification). Not thread-safe.
class SchemaCache {
 public:
  absl::StatusOr<bool> Protected(const std::string& event_type, const std::string& field) {
    auto type = types_.find(event_type);
    if (type == types_.end()) type = types_.emplace(event_type, Fields()).first;
    auto it = type->second.find(field);
    if (it != type->second.end()) return it->second;
    absl::StatusOr<bool> prot = SchemaProtected(event_type, field);
    if (prot.ok()) type->second.emplace(field, *prot);
    return prot;
  }

 private:
  using Fields = absl::flat_hash_map<std::string, bool>;
  absl::flat_hash_map<std::string, Fields> types_;
};

// The body of `event_type` parsed from the revealed values (concatenated in
// field order, which is a valid encoding of the body with those fields), as
// JSON; empty if the type is unknown.
std::string BodyJson(absl::string_view event_type,
                     const std::vector<std::pair<std::string, std::string>>& revealed) {
  const FieldDescriptor* f = v1::Event::descriptor()->FindFieldByName(std::string(event_type));
  if (f == nullptr || f->message_type() == nullptr) return "";
  std::unique_ptr<Message> body(
      MessageFactory::generated_factory()->GetPrototype(f->message_type())->New());
  std::string bytes;
  for (const auto& [name, value] : revealed) bytes += value;
  if (!body->ParseFromString(bytes)) return "";
  google::protobuf::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(*body, &json, opts).ok()) return "";
  return json;
}

// Checks many inclusion proofs against one tree. Every node hash a verified
// proof computed is a node of that tree; a later proof that computes one of
// them has shown its leaf is in the tree and stops there. (Record bytes hold
// their seq, so a subtree cannot appear at two places without a hash
// collision.) For a subject's records this skips the upper levels that all
// their paths share.
class InclusionChecker {
 public:
  InclusionChecker(uint64_t tree_size, const Hash& root) : size_(tree_size), root_(root) {}

  absl::Status Check(const Hash& leaf_hash, uint64_t index, absl::Span<const Hash> proof) {
    if (index >= size_) {
      return absl::InvalidArgumentError(
          absl::StrCat("index ", index, " is not below the tree size ", size_));
    }
    // The path has the RFC's length, whether or not it is read to the end.
    if (proof.size() != InclusionProofLength(index, size_)) {
      return absl::InvalidArgumentError(absl::StrCat("got ", proof.size(), " hashes, want ",
                                                     InclusionProofLength(index, size_),
                                                     " for leaf ", index, " in a tree of ", size_));
    }
    // RFC 9162 section 2.1.3.2 (the one walk, ledger/merkle_verify.h), with
    // the early exit.
    InclusionWalk walk(leaf_hash, index, size_);
    std::vector<Hash>& path = path_;
    path.clear();
    for (const Hash& p : proof) {
      if (walk.done()) break;  // too long: fails below
      walk.Step(p);
      if (known_.contains(walk.hash())) return Remember(path);
      path.push_back(walk.hash());
    }
    const Hash& r = walk.hash();
    if (!walk.done() || path.size() != proof.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "proof of ", proof.size(), " hashes does not fit leaf ", index, " in a tree of ", size_,
          " (want ", InclusionProofLength(index, size_), ")"));
    }
    if (r != root_) {
      return absl::DataLossError(
          absl::StrCat("computed root ", ShortHex(r), ", want ", ShortHex(root_)));
    }
    return Remember(path);
  }

 private:
  absl::Status Remember(const std::vector<Hash>& path) {
    known_.insert(path.begin(), path.end());
    return absl::OkStatus();
  }

  // Node hashes are SHA-256 outputs the checker computed itself: their
  // first bytes are already uniform, so they are their own hash.
  struct NodeHashHasher {
    size_t operator()(const Hash& h) const {
      uint64_t v;
      std::memcpy(&v, h.data(), sizeof(v));
      return static_cast<size_t>(v);
    }
  };

  const uint64_t size_;
  const Hash root_;
  absl::flat_hash_set<Hash, NodeHashHasher> known_;
  std::vector<Hash> path_;  // reused by Check
};

}  // namespace

absl::StatusOr<bool> SchemaProtected(absl::string_view event_type, absl::string_view field) {
  const FieldDescriptor* body = v1::Event::descriptor()->FindFieldByName(std::string(event_type));
  if (body == nullptr || body->message_type() == nullptr || body->containing_oneof() == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "event type \"", event_type,
        "\" is unknown to this verifier, so its redaction cannot be checked (update ledgerctl)"));
  }
  const FieldDescriptor* f = body->message_type()->FindFieldByName(std::string(field));
  if (f == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("field \"", field, "\" of event type \"", event_type,
                     "\" is unknown to this verifier, so its redaction cannot be checked "
                     "(update ledgerctl)"));
  }
  return f->options().GetExtension(v1::protected_detail);
}

v1::WithheldReason WithheldReasonToWire(WithheldReason reason) {
  switch (reason) {
    case WithheldReason::kProtectedDetail:
      return v1::WITHHELD_PROTECTED_DETAIL;
    case WithheldReason::kErased:
      return v1::WITHHELD_ERASED;
    case WithheldReason::kDisposed:
      return v1::WITHHELD_DISPOSED;
    case WithheldReason::kErasedWithOther:
      return v1::WITHHELD_ERASED_WITH_OTHER;
    case WithheldReason::kKeysDestroyed:
      return v1::WITHHELD_KEYS_DESTROYED;
    case WithheldReason::kSuspended:
      return v1::WITHHELD_SUSPENDED;
  }
  return v1::WITHHELD_REASON_UNSPECIFIED;
}

absl::StatusOr<WithheldReason> WithheldReasonFromWire(int reason) {
  switch (reason) {
    case v1::WITHHELD_PROTECTED_DETAIL:
      return WithheldReason::kProtectedDetail;
    case v1::WITHHELD_ERASED:
      return WithheldReason::kErased;
    case v1::WITHHELD_DISPOSED:
      return WithheldReason::kDisposed;
    case v1::WITHHELD_ERASED_WITH_OTHER:
      return WithheldReason::kErasedWithOther;
    case v1::WITHHELD_KEYS_DESTROYED:
      return WithheldReason::kKeysDestroyed;
    case v1::WITHHELD_SUSPENDED:
      return WithheldReason::kSuspended;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("reason: got ", reason, ", want 1 to 6 (HISTORY_BUNDLE.md \"Redaction\")"));
  }
}

v1::SubjectMapProof MapProofToWire(const SubjectMapProof& proof) {
  v1::SubjectMapProof out;
  for (const Hash& h : proof.siblings) out.add_siblings(std::string(AsBytes(h)));
  if (proof.leaf.has_value()) {
    v1::SubjectMapLeaf* l = out.mutable_leaf();
    l->set_key(std::string(AsBytes(proof.leaf->key)));
    l->set_count(proof.leaf->state.count);
    l->set_head(std::string(AsBytes(proof.leaf->state.head)));
  }
  return out;
}

absl::StatusOr<SubjectMapProof> MapProofFromWire(const v1::SubjectMapProof& proof) {
  SubjectMapProof out;
  out.siblings.reserve(proof.siblings_size());
  for (int i = 0; i < proof.siblings_size(); ++i) {
    CL_ASSIGN_OR_RETURN(Hash h,
                        WireHash(proof.siblings(i), absl::StrCat("map_proof.siblings[", i, "]")));
    out.siblings.push_back(h);
  }
  if (proof.has_leaf()) {
    SubjectMapProof::Leaf leaf;
    CL_ASSIGN_OR_RETURN(leaf.key, WireHash(proof.leaf().key(), "map_proof.leaf.key"));
    CL_ASSIGN_OR_RETURN(leaf.state.head, WireHash(proof.leaf().head(), "map_proof.leaf.head"));
    leaf.state.count = proof.leaf().count();
    out.leaf = leaf;
  }
  return out;
}

namespace {

absl::string_view ReasonName(WithheldReason reason) {
  switch (reason) {
    case WithheldReason::kProtectedDetail:
      return "a protected detail";
    case WithheldReason::kErased:
      return "erased";
    case WithheldReason::kDisposed:
      return "disposed of";
    case WithheldReason::kErasedWithOther:
      return "erased with another person";
    case WithheldReason::kKeysDestroyed:
      return "keys destroyed";
    case WithheldReason::kSuspended:
      return "suspended";
  }
  return "unknown";
}

}  // namespace

DestroyedContent PrescribedDestroyedReason(const std::vector<const Record*>& history, size_t i) {
  const Record& r = *history[i];
  for (size_t j = i + 1; j < history.size(); ++j) {
    if (history[j]->event_type == "subject_erased") {
      return {WithheldReason::kErased, history[j]->seq};
    }
  }
  for (size_t j = i + 1; j < history.size(); ++j) {
    if (history[j]->event_type == "records_disposed" && history[j]->stream_id == r.stream_id) {
      return {WithheldReason::kDisposed, history[j]->seq};
    }
  }
  if (r.subject_ids.size() > 1) return {WithheldReason::kErasedWithOther, 0};
  return {WithheldReason::kKeysDestroyed, 0};
}

namespace {

// The redaction of one record (HISTORY_BUNDLE.md "Redaction"), against this
// build's schema. Fills v->revealed and v->withheld. Reasons that point at
// another record are queued in `pointers` and checked once every record of
// the bundle is known.
struct ReasonPointer {
  std::string where;
  uint64_t seq = 0;
  std::string stream_id;
  WithheldReason reason;
  uint64_t by_seq = 0;
};

// Reason 6 within one record (HISTORY_BUNDLE.md "Redaction"): a
// disclosure_made record shows nothing of its own; an accounting_suspended
// record points at itself and shows at most kShownWhileSuspended, ends_at
// and client_id among them. Whether the suspension is in force and covers
// the record is checked once every record is read (CheckSuspensions).
template <typename Where>
absl::Status CheckSuspendedRedaction(const Where& where, const VerifiedRecord& v,
                                     uint64_t by_seq) {
  const std::string& type = v.record.event_type;
  if (type == "disclosure_made") {
    if (!v.revealed.empty()) {
      return DataLoss(where(), absl::StrCat("withheld as suspended, but field \"",
                                            v.revealed.front().first,
                                            "\" is revealed: a suspended disclosure is withheld "
                                            "whole"));
    }
    return absl::OkStatus();
  }
  if (type != "accounting_suspended") {
    return DataLoss(where(), absl::StrCat("withheld as suspended, but a suspension of accounting "
                                          "withholds only disclosure_made and "
                                          "accounting_suspended records, not ",
                                          type));
  }
  if (by_seq != v.record.seq) {
    return DataLoss(where(), absl::StrCat("a suspension withheld as suspended points at seq ",
                                          by_seq, ", want its own seq ", v.record.seq));
  }
  bool ends = false, client = false;
  for (const auto& [name, value] : v.revealed) {
    if (std::find(std::begin(kShownWhileSuspended), std::end(kShownWhileSuspended), name) ==
        std::end(kShownWhileSuspended)) {
      return DataLoss(where(), absl::StrCat("withheld as suspended, but field \"", name,
                                            "\" is revealed (a suspension shows only client_id, "
                                            "ends_at and agency_kind while it lasts)"));
    }
    ends = ends || name == "ends_at";
    client = client || name == "client_id";
  }
  if (!ends || !client) {
    return DataLoss(where(), absl::StrCat("withheld as suspended, but its ",
                                          ends ? "client_id" : "ends_at",
                                          " is not revealed: the client could not check how long "
                                          "it lasts, or that it is theirs"));
  }
  return absl::OkStatus();
}

// `where()` names the record; it is called only for an error or a pointer.
template <typename Where>
absl::Status CheckRedaction(const Where& where, const v1::HistoryRecord& w, const Payload& payload,
                            SchemaCache* schema, VerifiedRecord* v,
                            std::vector<ReasonPointer>* pointers) {
  const size_t n = payload.fields.size();
  absl::InlinedVector<uint8_t, 8> shown(n, 0);  // 1 revealed, 2 withheld
  int64_t last = -1;
  for (const v1::RevealedField& r : w.revealed()) {
    if (r.index() >= n || static_cast<int64_t>(r.index()) <= last) {
      return absl::InvalidArgumentError(
          absl::StrCat(where(), ": revealed index ", r.index(),
                       " is out of range or out of order (want increasing, below ", n, ")"));
    }
    last = r.index();
    const FieldCommitment& f = payload.fields[r.index()];
    Hash salt;
    CL_RETURN_IF_ERROR(WireHashTo(
        r.salt(), [&] { return absl::StrCat(where(), ".revealed.salt"); }, &salt));
    if (CommitField(f.name, salt, r.value()) != f.commitment) {
      return DataLoss(
          where(), absl::StrCat("revealed field \"", f.name, "\" does not match its commitment"));
    }
    shown[r.index()] = 1;
    v->revealed.emplace_back(f.name, r.value());
  }
  last = -1;
  std::optional<WithheldReason> destroyed;
  for (const v1::WithheldField& x : w.withheld()) {
    if (x.index() >= n || static_cast<int64_t>(x.index()) <= last) {
      return absl::InvalidArgumentError(
          absl::StrCat(where(), ": withheld index ", x.index(),
                       " is out of range or out of order (want increasing, below ", n, ")"));
    }
    last = x.index();
    const FieldCommitment& f = payload.fields[x.index()];
    if (shown[x.index()] != 0) {
      return DataLoss(where(),
                      absl::StrCat("field \"", f.name, "\" is both revealed and withheld"));
    }
    absl::StatusOr<WithheldReason> reason = WithheldReasonFromWire(x.reason());
    if (!reason.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where(), ": withheld field \"", f.name, "\": ", reason.status().message()));
    }
    if (*reason != WithheldReason::kProtectedDetail) {
      if (destroyed.has_value() && *destroyed != *reason) {
        return DataLoss(where(), absl::StrCat("field \"", f.name,
                                              "\" gives another reason for the record's content "
                                              "being gone than the fields before it"));
      }
      if (!destroyed.has_value()) {
        pointers->push_back({where(), v->record.seq, v->record.stream_id, *reason, x.by_seq()});
      } else if ((*reason == WithheldReason::kErased || *reason == WithheldReason::kDisposed ||
                  *reason == WithheldReason::kSuspended) &&
                 x.by_seq() != pointers->back().by_seq) {
        return DataLoss(where(), absl::StrCat("field \"", f.name, "\" points at seq ", x.by_seq(),
                                              " for the reason, the fields before it at seq ",
                                              pointers->back().by_seq));
      }
      destroyed = *reason;
    }
    shown[x.index()] = 2;
    v->withheld.push_back({f.name, *reason, x.by_seq()});
  }
  for (size_t j = 0; j < n; ++j) {
    const FieldCommitment& f = payload.fields[j];
    if (shown[j] == 0) {
      return DataLoss(where(), absl::StrCat("field \"", f.name,
                                            "\" is neither revealed nor withheld with a reason"));
    }
    absl::StatusOr<bool> prot = schema->Protected(v->record.event_type, f.name);
    if (!prot.ok()) {
      return absl::Status(prot.status().code(),
                          absl::StrCat(where(), ": ", prot.status().message()));
    }
    if (*prot != ((f.flags & kFieldProtected) != 0)) {
      return DataLoss(where(), absl::StrCat("field \"", f.name, "\" is committed with flags ",
                                            f.flags, ", but the schema ",
                                            *prot ? "marks" : "does not mark", " it protected"));
    }
    if (shown[j] == 1 && *prot) {
      return DataLoss(where(), absl::StrCat("field \"", f.name,
                                            "\" is a protected detail (about someone else) and "
                                            "must be withheld, but the bundle reveals it"));
    }
  }
  for (const WithheldField& x : v->withheld) {
    const bool prot = *schema->Protected(v->record.event_type, x.name);
    if (x.reason == WithheldReason::kProtectedDetail && !prot) {
      return DataLoss(where(), absl::StrCat("field \"", x.name,
                                            "\" is withheld as a protected detail, but the schema "
                                            "does not mark it protected: the client's own field "
                                            "must be shown"));
    }
    if (x.reason != WithheldReason::kProtectedDetail && prot) {
      return DataLoss(where(), absl::StrCat("field \"", x.name,
                                            "\" is a protected detail and must be withheld as "
                                            "one, not for another reason"));
    }
  }
  if (destroyed == WithheldReason::kSuspended) {
    return CheckSuspendedRedaction(where, *v, pointers->back().by_seq);
  }
  if (destroyed.has_value()) {
    if (payload.key_id.empty()) {
      return DataLoss(where(),
                      "fields are withheld as destroyed, but the payload was never "
                      "sealed (no key_id), so no key of it could be destroyed");
    }
    if (!v->revealed.empty()) {
      return DataLoss(where(), absl::StrCat("fields are withheld as destroyed, but field \"",
                                            v->revealed.front().first,
                                            "\" is revealed: a record's content is destroyed "
                                            "whole or not at all"));
    }
    if (*destroyed == WithheldReason::kErasedWithOther && v->record.subject_ids.size() < 2) {
      return DataLoss(where(),
                      "withheld because another person named in the record was erased, "
                      "but the record names no one else");
    }
  }
  return absl::OkStatus();
}

// Reason 6 across the bundle: each record withheld as suspended points at a
// suspension of the same case, of this subject, in force at produced_at,
// and a disclosure it withholds is dated before the suspension's end. The
// suspension's agency is withheld, so that the disclosure went to it is not
// checked here (HISTORY_BUNDLE.md "Who is trusted for what").
absl::Status CheckSuspensions(const std::vector<ReasonPointer>& pointers,
                              const std::vector<VerifiedRecord>& records,
                              absl::string_view subject_id, absl::Time produced_at,
                              uint64_t* suspended) {
  const auto at = [&](uint64_t seq) -> const VerifiedRecord* {
    auto it = std::lower_bound(records.begin(), records.end(), seq,
                               [](const VerifiedRecord& r, uint64_t q) { return r.record.seq < q; });
    return it != records.end() && it->record.seq == seq ? &*it : nullptr;
  };
  bool any = false;
  for (const ReasonPointer& p : pointers) {
    if (p.reason != WithheldReason::kSuspended) continue;
    any = true;
    ++*suspended;
    const VerifiedRecord* s = at(p.by_seq);
    if (s == nullptr || s->record.event_type != "accounting_suspended") {
      return DataLoss(p.where, absl::StrCat("withheld as suspended by seq ", p.by_seq,
                                            ", which is not a suspension of accounting in this "
                                            "history"));
    }
    if (s->record.stream_id != p.stream_id) {
      return DataLoss(p.where, absl::StrCat("withheld as suspended by seq ", p.by_seq,
                                            ", a suspension recorded in another case (a "
                                            "suspension covers its own case only)"));
    }
    std::optional<v1::Event> e = RevealedEvent(*s);
    if (!e.has_value() || !e->accounting_suspended().has_ends_at()) {
      return DataLoss(p.where, absl::StrCat("withheld as suspended by seq ", p.by_seq,
                                            ", whose end is not shown"));
    }
    const v1::AccountingSuspended& b = e->accounting_suspended();
    if (b.client_id() != subject_id) {
      return DataLoss(p.where, absl::StrCat("withheld as suspended by seq ", p.by_seq,
                                            ", a suspension of someone else's accounting"));
    }
    const absl::Time from = absl::FromUnixMicros(s->record.occurred_at_micros);
    const absl::Time ends = absl::FromUnixSeconds(b.ends_at().seconds()) +
                            absl::Nanoseconds(b.ends_at().nanos());
    if (produced_at < from || produced_at >= ends) {
      return DataLoss(p.where,
                      absl::StrCat("withheld as suspended by seq ", p.by_seq, " from ",
                                   absl::FormatTime(absl::RFC3339_sec, from, absl::UTCTimeZone()),
                                   " until ",
                                   absl::FormatTime(absl::RFC3339_sec, ends, absl::UTCTimeZone()),
                                   ", but the bundle was produced at ",
                                   absl::FormatTime(absl::RFC3339_sec, produced_at,
                                                    absl::UTCTimeZone()),
                                   ", when it is not in force: the record must be shown"));
    }
    const VerifiedRecord* r = at(p.seq);
    if (r->record.event_type == "disclosure_made" &&
        absl::FromUnixMicros(r->record.occurred_at_micros) >= ends) {
      return DataLoss(p.where, absl::StrCat("withheld as suspended by seq ", p.by_seq,
                                            ", but the record is dated at or after the "
                                            "suspension's end"));
    }
  }
  if (!any) return absl::OkStatus();
  // produced_at is the server's word; it cannot be before a record it holds
  // was committed (so it cannot be backdated past the bundle's own records
  // to keep a suspension in force).
  for (const VerifiedRecord& r : records) {
    if (absl::FromUnixMicros(r.record.commit_time_micros) > produced_at) {
      return absl::DataLossError(absl::StrCat(
          "produced_at: ",
          absl::FormatTime(absl::RFC3339_sec, produced_at, absl::UTCTimeZone()),
          " is before seq ", r.record.seq, " was committed, yet records are withheld as "
          "suspended as of that time"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<std::pair<uint64_t, uint64_t>>> SuspendedRecords(
    absl::string_view subject_id, const std::vector<VerifiedRecord>& records,
    absl::Time produced_at) {
  DisclosureAccounting folded;
  // (case, suspension id) -> seq of its record; the first wins.
  std::map<std::pair<std::string, std::string>, uint64_t> suspension_seq;
  for (const VerifiedRecord& r : records) {
    if (r.record.event_type != "disclosure_made" &&
        r.record.event_type != "accounting_suspended") {
      continue;
    }
    std::optional<v1::Event> e = RevealedEvent(r);
    if (!e.has_value()) {
      return absl::DataLossError(absl::StrCat(
          "seq ", r.record.seq, ": the revealed fields do not parse as ", r.record.event_type));
    }
    if (e->has_accounting_suspended()) {
      suspension_seq.emplace(
          std::make_pair(e->stream_id(), e->accounting_suspended().suspension_id()),
          r.record.seq);
    }
    CL_RETURN_IF_ERROR(folded.Apply(*e, r.record.seq));
  }
  std::vector<std::pair<uint64_t, uint64_t>> out;
  const std::vector<AccountingSuspension>& suspensions = folded.suspensions(subject_id);
  const auto seq_of = [&](const AccountingSuspension& s) {
    return suspension_seq.at(std::make_pair(s.case_id, s.suspension_id));
  };
  for (const AccountingSuspension& s : suspensions) {
    if (SuspensionInForce(s, produced_at)) out.emplace_back(seq_of(s), seq_of(s));
  }
  for (const AccountingEntry& a : folded.entries(subject_id)) {
    const AccountingSuspension* first = nullptr;
    for (const AccountingSuspension& s : suspensions) {
      if (SuspensionCovers(s, a, produced_at) && (first == nullptr || seq_of(s) < seq_of(*first))) {
        first = &s;
      }
    }
    if (first != nullptr) out.emplace_back(a.seq, seq_of(*first));
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end(),
                        [](const auto& x, const auto& y) { return x.first == y.first; }),
            out.end());
  return out;
}

absl::StatusOr<AccountingReport> HistoryAccounting(absl::string_view subject_id,
                                                   const std::vector<VerifiedRecord>& records,
                                                   absl::Time produced_at) {
  DisclosureAccounting folded;
  for (const VerifiedRecord& r : records) {
    // A suspension's records are withheld while it lasts (reason 6), so
    // the disclosures it covers drop out with no revealed client_id; its
    // own revealed fields are not folded.
    if (r.record.event_type != "disclosure_made" && r.record.event_type != "client_informed") {
      continue;
    }
    std::optional<v1::Event> e = RevealedEvent(r);
    if (!e.has_value()) {
      return absl::DataLossError(absl::StrCat(
          "seq ", r.record.seq, ": the revealed fields do not parse as ", r.record.event_type));
    }
    CL_RETURN_IF_ERROR(folded.Apply(*e, r.record.seq));
  }
  return folded.Query(subject_id, DefaultAccountingWindowStart(produced_at), produced_at,
                      /*include_excluded=*/false, /*summarize=*/false, /*as_of=*/produced_at);
}

absl::StatusOr<SaltTable> BundleSalts(const v1::HistoryBundle& bundle) {
  SaltTable table;
  auto salt_of = [](absl::string_view bytes, absl::string_view field) -> absl::StatusOr<Hash> {
    absl::StatusOr<Hash> h = HashFromBytes(bytes);
    if (!h.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": got ", bytes.size(), " bytes, want ", kHashSize));
    }
    return h;
  };
  if (!bundle.subject_salt().empty()) {
    CL_ASSIGN_OR_RETURN(Hash salt, salt_of(bundle.subject_salt(), "subject_salt"));
    table.Add(BlindKind::kSubject, bundle.subject_id(), salt);
  }
  for (int i = 0; i < bundle.stream_salts_size(); ++i) {
    const v1::StreamSalt& s = bundle.stream_salts(i);
    CL_ASSIGN_OR_RETURN(Hash salt, salt_of(s.salt(), absl::StrCat("stream_salts[", i, "].salt")));
    table.Add(BlindKind::kStream, s.stream_id(), salt);
  }
  return table;
}

absl::StatusOr<Hash> BundleSubjectKey(const v1::HistoryBundle& bundle) {
  if (bundle.subject_salt().empty()) return SubjectKey(bundle.subject_id());
  CL_ASSIGN_OR_RETURN(SaltTable salts, BundleSalts(bundle));
  CL_ASSIGN_OR_RETURN(Hash salt, salts.FindSalt(BlindKind::kSubject, bundle.subject_id()));
  return BlindTag(BlindKind::kSubject, salt, bundle.subject_id());
}

absl::StatusOr<Record> DecodeBundleRecord(absl::string_view leaf, const SaltTable& salts) {
  CL_ASSIGN_OR_RETURN(Record r, DecodeRecord(leaf));
  CL_RETURN_IF_ERROR(OpenBlindedRecord(salts, &r));
  return r;
}

absl::StatusOr<HistoryVerification> VerifyHistoryBundle(const v1::HistoryBundle& bundle,
                                                        const HistoryVerifyOptions& options) {
  HistoryVerification h;
  if (options.log_key == nullptr) {
    return absl::InvalidArgumentError("log_key: the log's verifier key is required");
  }
  const NoteVerifier& verifier = *options.log_key;
  const std::string origin = options.origin.empty() ? verifier.name() : options.origin;
  if (bundle.format_version() != kHistoryBundleVersion) {
    return absl::InvalidArgumentError(absl::StrCat(
        "format_version: got ", bundle.format_version(), ", want ", kHistoryBundleVersion,
        bundle.format_version() == 1 ? " (version 1 bundles state no reasons for withheld "
                                       "fields; ask the server for a new one)"
                                     : ""));
  }
  if (bundle.subject_id().empty()) {
    return absl::InvalidArgumentError("subject_id: must not be empty");
  }
  h.subject_id = bundle.subject_id();
  if (options.subject_id.has_value() && *options.subject_id != h.subject_id) {
    // Names only the subject the client asked about: the other one is not
    // theirs to learn.
    return absl::FailedPreconditionError(
        absl::StrCat("subject_id: this bundle is not the history of \"", *options.subject_id,
                     "\"; it is another person's"));
  }

  // 1. The checkpoint, its cosignatures and its subjects root.
  CL_ASSIGN_OR_RETURN(h.checkpoint, OpenCheckpoint(bundle.checkpoint_note(), verifier, origin));
  CL_ASSIGN_OR_RETURN(std::optional<Hash> root, SubjectRootFromExtensions(h.checkpoint.extensions));
  if (!root.has_value()) {
    return absl::DataLossError(
        "checkpoint: no \"subjects\" line, so it commits to no subject index");
  }
  h.subjects_root = *root;
  h.checks.push_back(absl::StrCat("checkpoint signature OK: ", verifier.VerifierKey(), ", origin ",
                                  origin, ", size ", h.checkpoint.size, ", root ",
                                  ToHex(h.checkpoint.root)));
  if (options.quorum > 0) {
    absl::StatusOr<std::vector<Cosignature>> cosigs =
        VerifyCosignatureQuorum(bundle.checkpoint_note(), options.witnesses, options.quorum);
    if (!cosigs.ok()) {
      return absl::Status(cosigs.status().code(),
                          absl::StrCat("checkpoint cosignatures: ", cosigs.status().message()));
    }
    for (const Cosignature& c : *cosigs) h.cosigned_by.push_back(c.name);
    h.checks.push_back(absl::StrCat(
        "cosignatures OK: ", h.cosigned_by.size(), " of the ", options.witnesses.size(),
        " witnesses you trust (", absl::StrJoin(h.cosigned_by, ", "),
        ") checked that this "
        "checkpoint's tree extends the one they saw before and that its subjects root follows "
        "from the records in between"));
  }

  // 2. The subject's (count, head) in the map.
  CL_ASSIGN_OR_RETURN(SubjectMapProof proof, MapProofFromWire(bundle.map_proof()));
  CL_ASSIGN_OR_RETURN(const Hash key, BundleSubjectKey(bundle));
  CL_ASSIGN_OR_RETURN(const SaltTable salts, BundleSalts(bundle));
  absl::StatusOr<SubjectState> state = VerifySubjectMapProof(h.subjects_root, key, proof);
  if (!state.ok()) {
    return absl::Status(state.status().code(),
                        absl::StrCat("subject index proof: ", state.status().message()));
  }
  h.state = *state;
  h.checks.push_back(absl::StrCat("subject index proof OK: subjects root ", ToHex(h.subjects_root),
                                  " says subject \"", h.subject_id, "\" has ", h.state.count,
                                  " records, chain head ", ToHex(h.state.head)));

  // 3. Exactly those records, each included and redacted as the schema says.
  if (static_cast<uint64_t>(bundle.records_size()) != h.state.count) {
    return absl::DataLossError(absl::StrCat("completeness: the bundle has ", bundle.records_size(),
                                            " records, the checkpoint's subject index says ",
                                            h.state.count));
  }
  SubjectState chain;
  uint64_t revealed_fields = 0;
  std::vector<ReasonPointer> pointers;
  InclusionChecker inclusion(h.checkpoint.size, h.checkpoint.root);
  SchemaCache schema;
  std::vector<Hash> path;
  h.records.reserve(bundle.records_size());
  for (int i = 0; i < bundle.records_size(); ++i) {
    const v1::HistoryRecord& w = bundle.records(i);
    // Named only when something is wrong (or pointed at).
    const auto where = [&] { return absl::StrCat("records[", i, "] (seq ", w.seq(), ")"); };
    absl::StatusOr<Record> rec = DecodeBundleRecord(w.leaf(), salts);
    if (!rec.ok()) return DataLoss(where(), rec.status().message());
    if (rec->seq != w.seq()) {
      return DataLoss(where(), absl::StrCat("the record's bytes hold seq ", rec->seq));
    }
    if (rec->seq >= h.checkpoint.size) {
      return DataLoss(where(),
                      absl::StrCat("seq is beyond the checkpoint size ", h.checkpoint.size));
    }
    if (i > 0 && rec->seq <= h.records.back().record.seq) {
      return DataLoss(where(), absl::StrCat("out of order: seq ", rec->seq, " after seq ",
                                            h.records.back().record.seq));
    }
    if (std::find(rec->subject_ids.begin(), rec->subject_ids.end(), h.subject_id) ==
        rec->subject_ids.end()) {
      return DataLoss(where(),
                      absl::StrCat("the record does not name subject \"", h.subject_id,
                                   "\" (it names ", rec->subject_ids.size(), " other subjects)"));
    }
    VerifiedRecord v;
    v.leaf_hash = LeafHash(w.leaf());
    path.resize(w.inclusion_proof_size());
    for (int j = 0; j < w.inclusion_proof_size(); ++j) {
      CL_RETURN_IF_ERROR(WireHashTo(
          w.inclusion_proof(j), [&] { return absl::StrCat(where(), ".inclusion_proof[", j, "]"); },
          &path[j]));
    }
    absl::Status included = inclusion.Check(v.leaf_hash, rec->seq, path);
    if (!included.ok()) {
      return absl::Status(included.code(),
                          absl::StrCat(where(), ": inclusion proof: ", included.message()));
    }
    // The payload: commitments recompute the record's payload commitment,
    // each revealed opening matches its commitment, and every other field
    // is withheld for a reason.
    absl::StatusOr<Payload> payload = DecodePayload(w.payload_commitments());
    if (!payload.ok()) return DataLoss(where(), payload.status().message());
    absl::Status committed = CheckPayloadCommitment(*payload, rec->payload_commitment);
    if (!committed.ok()) return DataLoss(where(), committed.message());
    if (!payload->sealed_openings.empty()) {
      return DataLoss(where(), "payload_commitments carries openings; they belong in revealed");
    }
    chain = SubjectChainAppend(chain, rec->seq, v.leaf_hash);
    v.record = *std::move(rec);
    CL_RETURN_IF_ERROR(CheckRedaction(where, w, *payload, &schema, &v, &pointers));
    revealed_fields += v.revealed.size();
    bool destroyed = false, stated = false;
    for (const WithheldField& x : v.withheld) {
      if (x.reason == WithheldReason::kProtectedDetail) {
        ++h.withheld_protected;
      } else if (x.reason != WithheldReason::kSuspended) {
        destroyed = true;
        stated = x.reason == WithheldReason::kErasedWithOther ||
                 x.reason == WithheldReason::kKeysDestroyed;
      }
    }
    if (destroyed) ++(stated ? h.destroyed_stated : h.destroyed_proven);
    h.records.push_back(std::move(v));
  }
  h.checks.push_back(absl::StrCat(
      "records OK: ", h.records.size(), " records in increasing seq below ", h.checkpoint.size,
      ", each naming the subject, each leaf hash included in the checkpoint's tree"));

  // The reason for content that is gone is the one the history prescribes
  // (the first later erasure, else the case's first later disposal, ...):
  // the server has no choice of reason, so it cannot state an unproven one
  // where the history proves another.
  if (!pointers.empty()) {
    std::vector<const Record*> history;
    history.reserve(h.records.size());
    for (const VerifiedRecord& r : h.records) history.push_back(&r.record);
    for (const ReasonPointer& p : pointers) {
      if (p.reason == WithheldReason::kSuspended) continue;  // CheckSuspensions
      const size_t i = std::lower_bound(h.records.begin(), h.records.end(), p.seq,
                                        [](const VerifiedRecord& r, uint64_t seq) {
                                          return r.record.seq < seq;
                                        }) -
                       h.records.begin();
      const DestroyedContent want = PrescribedDestroyedReason(history, i);
      const bool points =
          p.reason == WithheldReason::kErased || p.reason == WithheldReason::kDisposed;
      if (p.reason != want.reason || (points && p.by_seq != want.by_seq)) {
        return DataLoss(p.where,
                        absl::StrCat("fields are withheld as ", ReasonName(p.reason),
                                     points ? absl::StrCat(" (by seq ", p.by_seq, ")") : "",
                                     ", but this history prescribes ", ReasonName(want.reason),
                                     want.by_seq != 0 || want.reason == WithheldReason::kErased ||
                                             want.reason == WithheldReason::kDisposed
                                         ? absl::StrCat(" (by seq ", want.by_seq, ")")
                                         : "",
                                     " (HISTORY_BUNDLE.md \"Redaction\")"));
      }
    }
  }
  h.checks.push_back(absl::StrCat(
      "redaction OK: ", revealed_fields, " revealed fields match their commitments; ",
      h.withheld_protected,
      " fields withheld are protected details about other people, as the "
      "schema marks them; ",
      h.destroyed_proven,
      " records erased or disposed of, as records in "
      "this history show",
      h.destroyed_stated > 0
          ? absl::StrCat("; ", h.destroyed_stated,
                         " records whose content is gone for a reason the server states but "
                         "this history cannot prove")
          : ""));

  // 4. The chain.
  if (chain != h.state) {
    return absl::DataLossError(absl::StrCat(
        "completeness: the chain over the bundle's records ends in ", ShortHex(chain.head),
        " after ", chain.count, " records, the checkpoint's subject index says ",
        ShortHex(h.state.head), " after ", h.state.count));
  }
  h.checks.push_back(
      "completeness OK: the chain over the records' seqs and leaf hashes "
      "equals the indexed head: no record is missing, added or reordered");

  // 5. The accounting, derived again from the records.
  if (!bundle.has_produced_at()) {
    return absl::InvalidArgumentError(
        "produced_at: must be set (the accounting's window ends there)");
  }
  h.produced_at = absl::FromUnixSeconds(bundle.produced_at().seconds()) +
                  absl::Nanoseconds(bundle.produced_at().nanos());
  CL_RETURN_IF_ERROR(
      CheckSuspensions(pointers, h.records, h.subject_id, h.produced_at, &h.suspended));
  if (h.suspended > 0) {
    h.checks.push_back(absl::StrCat(
        "suspensions OK: ", h.suspended,
        " records withheld while a suspension of accounting recorded in their case, of your "
        "accounting, is in force (45 CFR 164.528(a)(2)); that the withheld disclosures went to "
        "that agency is the server's statement until the suspension ends, when they must be "
        "shown"));
  }
  CL_ASSIGN_OR_RETURN(h.accounting, HistoryAccounting(h.subject_id, h.records, h.produced_at));
  const std::string derived = AccountingReportToJson(h.accounting);
  if (derived != bundle.accounting_json()) {
    return absl::DataLossError(absl::StrCat(
        "accounting_json: differs from the accounting derived from the bundle's disclosure "
        "records (",
        h.accounting.entries.size(), " disclosures in the window ",
        absl::FormatTime(absl::RFC3339_sec, h.accounting.window_start, absl::UTCTimeZone()), " to ",
        absl::FormatTime(absl::RFC3339_sec, h.produced_at, absl::UTCTimeZone()),
        "); first difference at byte ",
        std::mismatch(derived.begin(), derived.end(), bundle.accounting_json().begin(),
                      bundle.accounting_json().end())
                .first -
            derived.begin()));
  }
  h.checks.push_back(absl::StrCat("accounting OK: the ", h.accounting.entries.size(),
                                  " disclosures listed are exactly those the records show"));

  // 6. The checkpoint the client kept.
  if (options.since_note.has_value()) {
    CL_ASSIGN_OR_RETURN(Checkpoint since, OpenCheckpoint(*options.since_note, verifier, origin));
    h.since_size = since.size;
    if (since.size > h.checkpoint.size) {
      return absl::FailedPreconditionError(
          absl::StrCat("the bundle's checkpoint (size ", h.checkpoint.size,
                       ") is older than the one you hold (size ", since.size,
                       "): the server answered from an old state"));
    }
    std::vector<Hash> cproof;
    for (int j = 0; j < bundle.consistency_proof_size(); ++j) {
      CL_ASSIGN_OR_RETURN(Hash p, WireHash(bundle.consistency_proof(j),
                                           absl::StrCat("consistency_proof[", j, "]")));
      cproof.push_back(p);
    }
    if (since.size != h.checkpoint.size && bundle.since_size() != since.size) {
      return absl::FailedPreconditionError(absl::StrCat(
          "consistency: the bundle's proof is from size ", bundle.since_size(),
          ", your checkpoint has size ", since.size, " (ask with since_size=", since.size, ")"));
    }
    // The same size: the roots must agree, and the bundle's proof (from
    // whatever size it was asked for) is not needed.
    absl::Status consistent =
        since.size == h.checkpoint.size
            ? (since.root == h.checkpoint.root
                   ? absl::OkStatus()
                   : absl::DataLossError(absl::StrCat("root ", ShortHex(h.checkpoint.root),
                                                      " at the same size, want ",
                                                      ShortHex(since.root), ": a fork")))
            : VerifyConsistency(since.size, h.checkpoint.size, cproof, since.root,
                                h.checkpoint.root);
    if (!consistent.ok()) {
      return absl::Status(consistent.code(),
                          absl::StrCat("consistency with your checkpoint of size ", since.size,
                                       ": ", consistent.message()));
    }
    h.checks.push_back(absl::StrCat("consistency OK: your checkpoint of size ", since.size,
                                    " is a prefix of the bundle's (size ", h.checkpoint.size, ")"));
  }
  return h;
}

std::string RevealedBodyJson(const VerifiedRecord& r) {
  return BodyJson(r.record.event_type, r.revealed);
}

std::optional<v1::Event> RevealedEvent(const VerifiedRecord& r) {
  const FieldDescriptor* f = v1::Event::descriptor()->FindFieldByName(r.record.event_type);
  if (f == nullptr || f->message_type() == nullptr || f->containing_oneof() == nullptr) {
    return std::nullopt;
  }
  v1::Event e;
  e.set_event_id(r.record.event_id);
  e.set_stream_id(r.record.stream_id);
  e.set_producer(r.record.producer);
  for (const std::string& s : r.record.subject_ids) e.add_subject_ids(s);
  e.mutable_occurred_at()->set_seconds(r.record.occurred_at_micros / 1000000);
  e.mutable_occurred_at()->set_nanos(static_cast<int32_t>(r.record.occurred_at_micros % 1000000) *
                                     1000);
  std::string bytes;
  for (const auto& [name, value] : r.revealed) bytes += value;
  Message* body = e.GetReflection()->MutableMessage(&e, f);
  if (!body->ParseFromString(bytes)) return std::nullopt;
  return e;
}

}  // namespace caseledger
