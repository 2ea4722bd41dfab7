#include "services/api/history_bundle.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <memory>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"
#include "ledger/internal/status_macros.h"
#include "ledger/merkle_verify.h"
#include "proto/events.pb.h"

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
    // RFC 9162 section 2.1.3.2, with the early exit.
    uint64_t fn = index, sn = size_ - 1;
    Hash r = leaf_hash;
    std::vector<Hash> path;
    path.reserve(proof.size());
    for (const Hash& p : proof) {
      if (sn == 0) break;  // too long: fails below
      if ((fn & 1) == 1 || fn == sn) {
        r = NodeHash(p, r);
        if ((fn & 1) == 0) {
          while ((fn & 1) == 0 && fn != 0) {
            fn >>= 1;
            sn >>= 1;
          }
        }
      } else {
        r = NodeHash(r, p);
      }
      fn >>= 1;
      sn >>= 1;
      if (known_.contains(r)) return Remember(path);
      path.push_back(r);
    }
    if (sn != 0 || path.size() != proof.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("proof of ", proof.size(), " hashes does not fit leaf ", index,
                       " in a tree of ", size_, " (want ", InclusionProofLength(index, size_),
                       ")"));
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

  const uint64_t size_;
  const Hash root_;
  absl::flat_hash_set<Hash> known_;
};

}  // namespace

absl::Status RevealPayload(absl::string_view payload_bytes, const Hash& payload_commitment,
                           bool reveal_protected, v1::HistoryRecord* out,
                           std::vector<std::string>* withheld) {
  absl::StatusOr<Payload> payload = DecodePayload(payload_bytes);
  if (!payload.ok()) return absl::DataLossError(payload.status().message());
  CL_RETURN_IF_ERROR(CheckPayloadCommitment(*payload, payload_commitment));
  if (!payload->key_id.empty()) {
    return absl::UnimplementedError("encrypted payloads cannot be opened yet");
  }
  absl::StatusOr<std::vector<FieldOpening>> openings =
      DecodeOpenings(payload->sealed_openings, payload->fields.size());
  if (!openings.ok()) return absl::DataLossError(openings.status().message());
  absl::Status opened = CheckOpenings(*payload, *openings);
  if (!opened.ok()) return absl::DataLossError(opened.message());
  for (size_t i = 0; i < payload->fields.size(); ++i) {
    if ((payload->fields[i].flags & kFieldProtected) != 0 && !reveal_protected) {
      withheld->push_back(payload->fields[i].name);
      continue;
    }
    v1::RevealedField* r = out->add_revealed();
    r->set_index(static_cast<uint32_t>(i));
    r->set_salt(std::string(AsBytes((*openings)[i].salt)));
    r->set_value((*openings)[i].value);
  }
  // Never ship an opening that is not in `revealed`.
  Payload commitments_only = *std::move(payload);
  commitments_only.sealed_openings.clear();
  out->set_payload_commitments(EncodePayload(commitments_only));
  return absl::OkStatus();
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

absl::StatusOr<HistoryVerification> VerifyHistoryBundle(const v1::HistoryBundle& bundle,
                                                        const NoteVerifier& verifier,
                                                        absl::string_view origin,
                                                        const std::string* since_note) {
  HistoryVerification h;
  if (bundle.format_version() != kHistoryBundleVersion) {
    return absl::InvalidArgumentError(absl::StrCat("format_version: got ",
                                                   bundle.format_version(), ", want ",
                                                   kHistoryBundleVersion));
  }
  if (bundle.subject_id().empty()) {
    return absl::InvalidArgumentError("subject_id: must not be empty");
  }
  h.subject_id = bundle.subject_id();

  // 1. The checkpoint and its subjects root.
  CL_ASSIGN_OR_RETURN(h.checkpoint, OpenCheckpoint(bundle.checkpoint_note(), verifier, origin));
  CL_ASSIGN_OR_RETURN(std::optional<Hash> root,
                      SubjectRootFromExtensions(h.checkpoint.extensions));
  if (!root.has_value()) {
    return absl::DataLossError(
        "checkpoint: no \"subjects\" line, so it commits to no subject index");
  }
  h.subjects_root = *root;
  h.checks.push_back(absl::StrCat("checkpoint signature OK: ", verifier.VerifierKey(),
                                  ", origin ", origin, ", size ", h.checkpoint.size, ", root ",
                                  ToHex(h.checkpoint.root)));

  // 2. The subject's (count, head) in the map.
  CL_ASSIGN_OR_RETURN(SubjectMapProof proof, MapProofFromWire(bundle.map_proof()));
  const Hash key = SubjectKey(h.subject_id);
  absl::StatusOr<SubjectState> state = VerifySubjectMapProof(h.subjects_root, key, proof);
  if (!state.ok()) {
    return absl::Status(state.status().code(),
                        absl::StrCat("subject index proof: ", state.status().message()));
  }
  h.state = *state;
  h.checks.push_back(absl::StrCat("subject index proof OK: subjects root ",
                                  ToHex(h.subjects_root), " says subject \"", h.subject_id,
                                  "\" has ", h.state.count, " records, chain head ",
                                  ToHex(h.state.head)));

  // 3. Exactly those records.
  if (static_cast<uint64_t>(bundle.records_size()) != h.state.count) {
    return absl::DataLossError(absl::StrCat(
        "completeness: the bundle has ", bundle.records_size(),
        " records, the checkpoint's subject index says ", h.state.count));
  }
  SubjectState chain;
  uint64_t revealed_fields = 0, withheld_fields = 0;
  InclusionChecker inclusion(h.checkpoint.size, h.checkpoint.root);
  for (int i = 0; i < bundle.records_size(); ++i) {
    const v1::HistoryRecord& w = bundle.records(i);
    const std::string where = absl::StrCat("records[", i, "] (seq ", w.seq(), ")");
    absl::StatusOr<Record> rec = DecodeRecord(w.leaf());
    if (!rec.ok()) return DataLoss(where, rec.status().message());
    if (rec->seq != w.seq()) {
      return DataLoss(where, absl::StrCat("the record's bytes hold seq ", rec->seq));
    }
    if (rec->seq >= h.checkpoint.size) {
      return DataLoss(where, absl::StrCat("seq is beyond the checkpoint size ",
                                          h.checkpoint.size));
    }
    if (i > 0 && rec->seq <= h.records.back().record.seq) {
      return DataLoss(where, absl::StrCat("out of order: seq ", rec->seq, " after seq ",
                                          h.records.back().record.seq));
    }
    if (std::find(rec->subject_ids.begin(), rec->subject_ids.end(), h.subject_id) ==
        rec->subject_ids.end()) {
      return DataLoss(where, absl::StrCat("the record does not name subject \"", h.subject_id,
                                          "\" (it names ", rec->subject_ids.size(),
                                          " other subjects)"));
    }
    VerifiedRecord v;
    v.leaf_hash = LeafHash(w.leaf());
    std::vector<Hash> path;
    path.reserve(w.inclusion_proof_size());
    for (int j = 0; j < w.inclusion_proof_size(); ++j) {
      CL_ASSIGN_OR_RETURN(Hash p, WireHash(w.inclusion_proof(j),
                                           absl::StrCat(where, ".inclusion_proof[", j, "]")));
      path.push_back(p);
    }
    absl::Status included = inclusion.Check(v.leaf_hash, rec->seq, path);
    if (!included.ok()) {
      return absl::Status(included.code(),
                          absl::StrCat(where, ": inclusion proof: ", included.message()));
    }
    // The payload: commitments recompute the record's payload commitment,
    // and each revealed opening matches its commitment.
    absl::StatusOr<Payload> payload = DecodePayload(w.payload_commitments());
    if (!payload.ok()) return DataLoss(where, payload.status().message());
    absl::Status committed = CheckPayloadCommitment(*payload, rec->payload_commitment);
    if (!committed.ok()) return DataLoss(where, committed.message());
    if (!payload->sealed_openings.empty()) {
      return DataLoss(where, "payload_commitments carries openings; they belong in revealed");
    }
    std::vector<bool> shown(payload->fields.size(), false);
    int64_t last_index = -1;
    for (const v1::RevealedField& r : w.revealed()) {
      if (r.index() >= payload->fields.size() || static_cast<int64_t>(r.index()) <= last_index) {
        return absl::InvalidArgumentError(absl::StrCat(where, ": revealed index ", r.index(),
                                                       " is out of range or out of order"));
      }
      last_index = r.index();
      const FieldCommitment& f = payload->fields[r.index()];
      CL_ASSIGN_OR_RETURN(Hash salt, WireHash(r.salt(), absl::StrCat(where, ".revealed.salt")));
      if (CommitField(f.name, salt, r.value()) != f.commitment) {
        return DataLoss(where, absl::StrCat("revealed field \"", f.name,
                                            "\" does not match its commitment"));
      }
      shown[r.index()] = true;
      v.revealed.emplace_back(f.name, r.value());
    }
    for (size_t j = 0; j < shown.size(); ++j) {
      if (!shown[j]) v.withheld.push_back({payload->fields[j].name});
    }
    revealed_fields += v.revealed.size();
    withheld_fields += v.withheld.size();
    chain = SubjectChainAppend(chain, rec->seq, v.leaf_hash);
    v.record = *std::move(rec);
    h.records.push_back(std::move(v));
  }
  h.checks.push_back(absl::StrCat(
      "records OK: ", h.records.size(), " records in increasing seq below ", h.checkpoint.size,
      ", each naming the subject, each leaf hash included in the checkpoint's tree"));
  h.checks.push_back(absl::StrCat("redaction OK: ", revealed_fields,
                                  " revealed fields match their commitments; ", withheld_fields,
                                  " withheld fields shown as commitments only"));

  // 4. The chain.
  if (chain != h.state) {
    return absl::DataLossError(absl::StrCat(
        "completeness: the chain over the bundle's records ends in ", ShortHex(chain.head),
        " after ", chain.count, " records, the checkpoint's subject index says ",
        ShortHex(h.state.head), " after ", h.state.count));
  }
  h.checks.push_back("completeness OK: the chain over the records' seqs and leaf hashes "
                     "equals the indexed head: no record is missing, added or reordered");

  // 5. The checkpoint the client kept.
  if (since_note != nullptr) {
    CL_ASSIGN_OR_RETURN(Checkpoint since, OpenCheckpoint(*since_note, verifier, origin));
    h.since_size = since.size;
    if (since.size > h.checkpoint.size) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the bundle's checkpoint (size ", h.checkpoint.size,
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
    absl::Status consistent =
        VerifyConsistency(since.size, h.checkpoint.size, cproof, since.root, h.checkpoint.root);
    if (!consistent.ok()) {
      return absl::Status(consistent.code(),
                          absl::StrCat("consistency with your checkpoint of size ", since.size,
                                       ": ", consistent.message()));
    }
    h.checks.push_back(absl::StrCat("consistency OK: your checkpoint of size ", since.size,
                                    " is a prefix of the bundle's (size ", h.checkpoint.size,
                                    ")"));
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
  e.mutable_occurred_at()->set_nanos(
      static_cast<int32_t>(r.record.occurred_at_micros % 1000000) * 1000);
  std::string bytes;
  for (const auto& [name, value] : r.revealed) bytes += value;
  Message* body = e.GetReflection()->MutableMessage(&e, f);
  if (!body->ParseFromString(bytes)) return std::nullopt;
  return e;
}

}  // namespace caseledger
