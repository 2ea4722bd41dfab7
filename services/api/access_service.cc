#include "services/api/access_service.h"

#include <google/protobuf/util/json_util.h>
#include <openssl/rand.h>

#include <algorithm>
#include <map>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "ledger/blinder.h"
#include "ledger/internal/status_macros.h"
#include "ledger/merkle_verify.h"
#include "services/readmodel/accounting.h"
#include "services/authz/authz_verdict.h"
#include "services/append/event_codec.h"
#include "services/common/grpc_status.h"
#include "services/history/history_bundle.h"
#include "services/fhir/fhir_export.h"

namespace caseledger {
namespace {

absl::Status CheckAccessor(const v1::Accessor& a) {
  if (a.accessor_id().empty() || a.accessor_id().size() > kMaxIdBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "accessor.accessor_id: got ", a.accessor_id().size(), " bytes, want 1 to ", kMaxIdBytes));
  }
  if (a.purpose().empty()) {
    return absl::InvalidArgumentError(
        "accessor.purpose: must not be empty (every read of record content says why)");
  }
  return absl::OkStatus();
}

// A client sees the client view only (AUTHZ.md, ReadRecord and ExportFhir).
absl::Status CheckFullView(bool full_view, const v1::Accessor& a) {
  if (full_view && a.role() == "client") {
    return absl::PermissionDeniedError(
        "full_view: got true from a client, want false (a client's view withholds third "
        "parties' protected fields)");
  }
  return absl::OkStatus();
}

void AddProof(const std::vector<Hash>& proof,
              google::protobuf::RepeatedPtrField<std::string>* out) {
  out->Reserve(static_cast<int>(proof.size()));
  for (const Hash& h : proof) out->Add(std::string(AsBytes(h)));
}

}  // namespace

absl::Status RevealPayload(const RecordView& view, bool reveal_protected,
                           const DestroyedContent* destroyed, v1::HistoryRecord* out) {
  absl::StatusOr<Payload> payload = DecodePayload(view.payload);
  if (!payload.ok()) return absl::DataLossError(payload.status().message());
  CL_RETURN_IF_ERROR(CheckPayloadCommitment(*payload, view.record.payload_commitment));
  const bool sealed = !payload->key_id.empty();
  std::vector<FieldOpening> openings;
  if (!(sealed && view.erased)) {
    if (sealed && !view.openings.has_value()) {
      return absl::FailedPreconditionError(
          "the payload is sealed and this server has no master key to open it "
          "(--master_key_file)");
    }
    absl::StatusOr<std::vector<FieldOpening>> decoded =
        DecodeOpenings(sealed ? *view.openings : payload->sealed_openings, payload->fields.size());
    if (!decoded.ok()) return absl::DataLossError(decoded.status().message());
    Payload opened = *payload;
    opened.key_id.clear();
    absl::Status ok = CheckOpenings(opened, *decoded);
    if (!ok.ok()) return absl::DataLossError(ok.message());
    openings = *std::move(decoded);
  }
  for (size_t i = 0; i < payload->fields.size(); ++i) {
    const bool prot = (payload->fields[i].flags & kFieldProtected) != 0;
    if (openings.empty() || (prot && !reveal_protected)) {
      v1::WithheldField* w = out->add_withheld();
      w->set_index(static_cast<uint32_t>(i));
      if (prot) {
        w->set_reason(v1::WITHHELD_PROTECTED_DETAIL);
      } else {
        const DestroyedContent why = destroyed != nullptr ? *destroyed : DestroyedContent{};
        w->set_reason(WithheldReasonToWire(why.reason));
        w->set_by_seq(why.by_seq);
      }
      continue;
    }
    v1::RevealedField* r = out->add_revealed();
    r->set_index(static_cast<uint32_t>(i));
    r->set_salt(std::string(AsBytes(openings[i].salt)));
    r->set_value(std::move(openings[i].value));
  }
  // Never ship an opening, plaintext or sealed, that is not in `revealed`.
  payload->sealed_openings.clear();
  out->set_payload_commitments(EncodePayload(*payload));
  return absl::OkStatus();
}

absl::Status WithholdWhileSuspended(uint64_t by_seq, v1::HistoryRecord* r) {
  absl::StatusOr<Payload> payload = DecodePayload(r->payload_commitments());
  if (!payload.ok()) return absl::DataLossError(payload.status().message());
  const bool own = by_seq == r->seq();  // the suspension record shows its end
  std::vector<v1::RevealedField> kept;
  std::vector<v1::WithheldField> withheld(r->withheld().begin(), r->withheld().end());
  for (v1::RevealedField& f : *r->mutable_revealed()) {
    const std::string& name = payload->fields[f.index()].name;
    if (own && std::find(std::begin(kShownWhileSuspended), std::end(kShownWhileSuspended),
                         name) != std::end(kShownWhileSuspended)) {
      kept.push_back(std::move(f));
      continue;
    }
    v1::WithheldField w;
    w.set_index(f.index());
    w.set_reason(v1::WITHHELD_SUSPENDED);
    w.set_by_seq(by_seq);
    withheld.push_back(std::move(w));
  }
  std::sort(withheld.begin(), withheld.end(),
            [](const v1::WithheldField& a, const v1::WithheldField& b) {
              return a.index() < b.index();
            });
  r->clear_revealed();
  for (v1::RevealedField& f : kept) *r->add_revealed() = std::move(f);
  r->clear_withheld();
  for (v1::WithheldField& w : withheld) *r->add_withheld() = std::move(w);
  return absl::OkStatus();
}

namespace {

// `t` to the microsecond, as the ledger stores times: a read recorded in the
// same second as the case's opening is not dated before it.
void SetTimestamp(absl::Time t, google::protobuf::Timestamp* out) {
  const int64_t micros = absl::ToUnixMicros(t);
  out->set_seconds(micros / 1000000);
  out->set_nanos(static_cast<int32_t>(micros % 1000000) * 1000);
}

}  // namespace

absl::StatusOr<v1::HistoryBundle> BuildHistoryBundle(const Ledger& ledger,
                                                     absl::string_view subject_id,
                                                     uint64_t since_size, absl::Time produced_at) {
  CL_ASSIGN_OR_RETURN(SubjectHistory h, ledger.History(subject_id));
  if (since_size > h.checkpoint.size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "since_size: got ", since_size, ", want at most the checkpoint size ", h.checkpoint.size));
  }
  v1::HistoryBundle b;
  b.set_format_version(kHistoryBundleVersion);
  b.set_subject_id(std::string(subject_id));
  // The note with every cosignature the witnesses added to it.
  std::string note = h.checkpoint.note;
  CL_ASSIGN_OR_RETURN(std::vector<std::string> cosignatures,
                      ledger.store().Cosignatures(h.checkpoint.size));
  for (const std::string& line : cosignatures) absl::StrAppend(&note, line, "\n");
  b.set_checkpoint_note(std::move(note));
  *b.mutable_map_proof() = MapProofToWire(h.proof);

  CL_ASSIGN_OR_RETURN(std::vector<RecordView> views, ledger.ReadMany(h.seqs));
  // Format 2: the salts the client needs to link the tags that are theirs
  // (their own and their cases'), and only those; other subjects named in
  // the same records stay pseudonyms, as the client's verifier shows them.
  if (h.blinding_salt.has_value()) {
    b.set_subject_salt(std::string(AsBytes(*h.blinding_salt)));
    absl::flat_hash_set<std::string> streams;
    for (RecordView& v : views) {
      Record& rec = v.record;
      if (rec.format_version != kRecordFormatBlinded) continue;
      if (streams.insert(rec.stream_id).second) {
        CL_ASSIGN_OR_RETURN(Hash salt, ledger.BlindingSalt(BlindKind::kStream, rec.stream_id));
        v1::StreamSalt* s = b.add_stream_salts();
        s->set_stream_id(rec.stream_id);
        s->set_salt(std::string(AsBytes(salt)));
      }
      for (size_t j = 0; j < rec.subject_ids.size(); ++j) {
        if (rec.subject_tags[j] != h.subject_key) {
          rec.subject_ids[j] = UnlinkedSubjectId(rec.subject_tags[j]);
        }
      }
    }
  }
  // Only later records are consulted for each one, and each record is moved
  // out only after its own turn.
  std::vector<const Record*> history;
  history.reserve(views.size());
  for (const RecordView& v : views) history.push_back(&v.record);
  CL_ASSIGN_OR_RETURN(std::vector<std::vector<Hash>> proofs,
                      ledger.InclusionProofs(h.seqs, h.checkpoint.size));
  std::vector<VerifiedRecord> shown;
  shown.reserve(views.size());
  b.mutable_records()->Reserve(static_cast<int>(views.size()));
  for (size_t i = 0; i < views.size(); ++i) {
    RecordView& view = views[i];
    const uint64_t seq = view.record.seq;
    v1::HistoryRecord* r = b.add_records();
    r->set_seq(seq);
    std::optional<DestroyedContent> destroyed;
    if (view.erased) destroyed = PrescribedDestroyedReason(history, i);
    absl::Status revealed =
        RevealPayload(view, /*reveal_protected=*/false, destroyed ? &*destroyed : nullptr, r);
    if (!revealed.ok()) {
      return absl::Status(revealed.code(), absl::StrCat("record ", seq, ": ", revealed.message()));
    }
    AddProof(proofs[i], r->mutable_inclusion_proof());
    VerifiedRecord v;
    for (const v1::RevealedField& f : r->revealed()) {
      // Names from the stored payload: the same order as `revealed`.
      v.revealed.emplace_back("", f.value());
    }
    v.record = std::move(view.record);
    r->set_leaf(std::move(view.leaf));
    shown.push_back(std::move(v));
  }
  // 45 CFR 164.528(a)(2): what a suspension in force withholds
  // (HISTORY_BUNDLE.md "Redaction", reason 6), from the full view of the
  // client's own fields.
  produced_at = absl::FromUnixSeconds(absl::ToUnixSeconds(produced_at));
  CL_ASSIGN_OR_RETURN(auto suspended, SuspendedRecords(subject_id, shown, produced_at));
  for (const auto& [seq, by_seq] : suspended) {
    const size_t i = std::lower_bound(h.seqs.begin(), h.seqs.end(), seq) - h.seqs.begin();
    CL_RETURN_IF_ERROR(WithholdWhileSuspended(by_seq, b.mutable_records(static_cast<int>(i))));
    shown[i].revealed.clear();
    for (const v1::RevealedField& f : b.records(static_cast<int>(i)).revealed()) {
      shown[i].revealed.emplace_back("", f.value());
    }
  }
  if (since_size > 0) {
    b.set_since_size(since_size);
    CL_ASSIGN_OR_RETURN(std::vector<Hash> proof,
                        ledger.ConsistencyProof(since_size, h.checkpoint.size));
    AddProof(proof, b.mutable_consistency_proof());
  }
  // The accounting, derived from these records as the client's verifier
  // derives it again.
  b.mutable_produced_at()->set_seconds(absl::ToUnixSeconds(produced_at));
  CL_ASSIGN_OR_RETURN(AccountingReport accounting,
                      HistoryAccounting(subject_id, shown, produced_at));
  b.set_accounting_json(AccountingReportToJson(accounting));
  return b;
}

AccessServiceImpl::AccessServiceImpl(Ledger* ledger, CaseGate* gate, AccessServiceOptions options)
    : ledger_(ledger),
      gate_(gate),
      options_(std::move(options)),
      clock_(options_.clock != nullptr ? *options_.clock : Clock::Real()) {}

std::string AccessServiceImpl::NewEventId(absl::string_view kind) {
  Hash random{};
  if (RAND_bytes(random.data(), 16) != 1) random = Sha256Of(absl::StrCat(next_event_.load()));
  return absl::StrCat(kind, "-", ToHex(random).substr(0, 32), "-", next_event_++);
}

absl::Status AccessServiceImpl::RecordAccess(const v1::Accessor& accessor,
                                             const std::vector<std::string>& subjects,
                                             const std::vector<Read>& reads,
                                             std::vector<GatedEvent> also) {
  std::map<std::string, std::vector<uint64_t>> by_case;
  for (const Read& r : reads) {
    // The server's own streams ('@keys': erasures, key rotations) hold no
    // case content and are stored unsealed; there is no case to record a
    // read of them in.
    if (!r.stream_id.empty() && r.stream_id[0] == '@') continue;
    by_case[r.stream_id].push_back(r.seq);
  }
  std::vector<GatedEvent> events;
  const absl::Time now = clock_.Now();
  for (auto& [stream, seqs] : by_case) {
    v1::Event e;
    e.set_event_id(NewEventId("access"));
    e.set_stream_id(stream);
    for (const std::string& s : subjects) e.add_subject_ids(s);
    e.set_producer(options_.producer);
    SetTimestamp(now, e.mutable_occurred_at());
    v1::RecordAccessed* a = e.mutable_record_accessed();
    a->set_accessor_id(accessor.accessor_id());
    a->set_accessor_role(accessor.role());
    a->set_purpose(accessor.purpose());
    for (uint64_t seq : seqs) a->add_seqs(seq);
    CL_ASSIGN_OR_RETURN(Event ledger_event, ToLedgerEvent(e));
    events.push_back(GatedEvent{std::move(e), {std::move(ledger_event), std::nullopt}});
  }
  for (GatedEvent& e : also) events.push_back(std::move(e));
  if (events.empty()) return absl::OkStatus();
  absl::StatusOr<std::vector<AppendResult>> appended = gate_->Append(std::move(events));
  if (!appended.ok()) {
    return absl::Status(
        appended.status().code(),
        absl::StrCat("recording the access (nothing was shown): ", appended.status().message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::HistoryBundle> AccessServiceImpl::GetRecordHistory(
    const v1::GetRecordHistoryRequest& req) {
  if (req.subject_id().empty()) return absl::InvalidArgumentError("subject_id: must not be empty");
  CL_RETURN_IF_ERROR(CheckAccessor(req.accessor()));
  if (req.request_id().empty() != req.case_id().empty()) {
    return absl::InvalidArgumentError(
        "request_id and case_id: give both (the access request and its case) or neither");
  }
  if (req.current()) CL_RETURN_IF_ERROR(ledger_->Checkpoint().status());
  const absl::Time now = clock_.Now();
  absl::StatusOr<v1::HistoryBundle> bundle =
      BuildHistoryBundle(*ledger_, req.subject_id(), req.since_size(), now);
  if (bundle.status().code() == absl::StatusCode::kFailedPrecondition && !req.current()) {
    // No checkpoint yet: sign one rather than refuse.
    CL_RETURN_IF_ERROR(ledger_->Checkpoint().status());
    bundle = BuildHistoryBundle(*ledger_, req.subject_id(), req.since_size(), now);
  }
  CL_RETURN_IF_ERROR(bundle.status());
  std::vector<Read> reads;
  reads.reserve(bundle->records_size());
  CL_ASSIGN_OR_RETURN(const SaltTable salts, BundleSalts(*bundle));
  for (const v1::HistoryRecord& r : bundle->records()) {
    CL_ASSIGN_OR_RETURN(Record rec, DecodeBundleRecord(r.leaf(), salts));
    reads.push_back({std::move(rec.stream_id), r.seq()});
  }
  std::vector<GatedEvent> fulfilled;
  if (!req.request_id().empty()) {
    v1::Event e;
    e.set_event_id(NewEventId("access-fulfilled"));
    e.set_stream_id(req.case_id());
    e.add_subject_ids(req.subject_id());
    e.set_producer(options_.producer);
    SetTimestamp(now, e.mutable_occurred_at());
    e.mutable_access_fulfilled()->set_request_id(req.request_id());
    e.mutable_access_fulfilled()->set_bundle_sha256(ToHex(Sha256Of(bundle->SerializeAsString())));
    CL_ASSIGN_OR_RETURN(Event ledger_event, ToLedgerEvent(e));
    fulfilled.push_back(GatedEvent{std::move(e), {std::move(ledger_event), std::nullopt}});
  }
  // One all-or-nothing batch: an access request that cannot be fulfilled
  // (unknown, already decided) records nothing and shows nothing.
  CL_RETURN_IF_ERROR(RecordAccess(req.accessor(), {req.subject_id()}, reads, std::move(fulfilled)));
  return bundle;
}

absl::StatusOr<v1::ReadRecordResponse> AccessServiceImpl::ReadRecord(
    const v1::ReadRecordRequest& req) {
  CL_RETURN_IF_ERROR(CheckAccessor(req.accessor()));
  CL_RETURN_IF_ERROR(CheckFullView(req.full_view(), req.accessor()));
  CL_ASSIGN_OR_RETURN(RecordView view, ledger_->Read(req.seq()));
  const std::vector<std::string>& named = view.record.subject_ids;
  if (!req.subject_id().empty() &&
      std::find(named.begin(), named.end(), req.subject_id()) == named.end()) {
    // Says nothing about the record but that it is not the subject's.
    return absl::PermissionDeniedError(absl::StrCat(
        "subject_id: record ", req.seq(), " is not one of \"", req.subject_id(), "\"'s records"));
  }
  v1::ReadRecordResponse resp;
  v1::HistoryRecord* r = resp.mutable_record();
  r->set_seq(req.seq());
  r->set_leaf(view.leaf);
  CL_RETURN_IF_ERROR(RevealPayload(view, req.full_view(), /*destroyed=*/nullptr, r));
  absl::StatusOr<Payload> fields = DecodePayload(r->payload_commitments());
  if (!fields.ok()) return absl::DataLossError(fields.status().message());
  for (const v1::WithheldField& w : r->withheld()) {
    resp.add_withheld_fields(fields->fields[w.index()].name);
  }
  absl::StatusOr<v1::Record> wire =
      ToWireRecord(view, req.full_view() ? View::kFull : View::kClientView);
  CL_RETURN_IF_ERROR(wire.status());
  google::protobuf::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  if (!google::protobuf::util::MessageToJsonString(wire->event(), resp.mutable_event_json(), opts)
           .ok()) {
    return absl::InternalError(
        absl::StrCat("record ", req.seq(), ": event does not print as JSON"));
  }
  CL_RETURN_IF_ERROR(
      RecordAccess(req.accessor(), view.record.subject_ids, {{view.record.stream_id, req.seq()}}));
  return resp;
}

absl::StatusOr<v1::AccessReport> AccessServiceImpl::GetAccessReport(
    const v1::GetAccessReportRequest& req) {
  if (req.subject_id().empty()) return absl::InvalidArgumentError("subject_id: must not be empty");
  // Cover every access recorded so far, not only the last checkpoint's.
  CL_RETURN_IF_ERROR(ledger_->Checkpoint().status());
  CL_ASSIGN_OR_RETURN(SubjectHistory h, ledger_->History(req.subject_id()));
  v1::AccessReport report;
  report.set_subject_id(req.subject_id());
  report.set_as_of_size(h.checkpoint.size);
  for (uint64_t seq : h.seqs) {
    CL_ASSIGN_OR_RETURN(RecordView view, ledger_->Read(seq));
    if (view.record.event_type != "record_accessed") continue;
    CL_ASSIGN_OR_RETURN(v1::Record wire, ToWireRecord(view, View::kFull));
    const v1::RecordAccessed& a = wire.event().record_accessed();
    v1::AccessReportEntry* e = report.add_entries();
    e->set_seq(seq);
    *e->mutable_at() = wire.commit_time();
    e->set_accessor_id(a.accessor_id());
    e->set_accessor_role(a.accessor_role());
    e->set_purpose(a.purpose());
    *e->mutable_seqs() = a.seqs();
  }
  return report;
}

absl::StatusOr<v1::FhirExport> AccessServiceImpl::ExportFhir(const v1::ExportFhirRequest& req) {
  CL_RETURN_IF_ERROR(CheckExportFhirRequest(req));
  CL_RETURN_IF_ERROR(CheckAccessor(req.accessor()));
  CL_RETURN_IF_ERROR(CheckFullView(req.full_view(), req.accessor()));
  CL_RETURN_IF_ERROR(ledger_->Checkpoint().status());
  CL_ASSIGN_OR_RETURN(FhirExportResult out, caseledger::ExportFhir(*ledger_, req, clock_.Now()));
  std::vector<Read> reads;
  reads.reserve(out.reads.size());
  for (auto& [stream, seq] : out.reads) reads.push_back({std::move(stream), seq});
  CL_RETURN_IF_ERROR(RecordAccess(req.accessor(), {req.subject_id()}, reads));
  return std::move(out.response);
}

void AccessServiceImpl::Authenticate(const grpc::ServerContext& ctx, v1::Accessor* accessor) const {
  if (!options_.authenticated) return;
  std::optional<std::pair<std::string, std::string>> who = options_.authenticated(ctx);
  if (!who.has_value()) return;
  accessor->set_accessor_id(who->first);
  accessor->set_role(who->second);
}

grpc::Status AccessServiceImpl::GetRecordHistory(grpc::ServerContext* ctx,
                                                 const v1::GetRecordHistoryRequest* req,
                                                 v1::HistoryBundle* resp) {
  if (grpc::Status refused = AuthzVerdict(*ctx); !refused.ok()) return refused;
  v1::GetRecordHistoryRequest bound = *req;
  Authenticate(*ctx, bound.mutable_accessor());
  absl::StatusOr<v1::HistoryBundle> b = GetRecordHistory(bound);
  if (!b.ok()) return ToGrpcStatus(b.status());
  *resp = *std::move(b);
  return grpc::Status::OK;
}

grpc::Status AccessServiceImpl::ReadRecord(grpc::ServerContext* ctx,
                                           const v1::ReadRecordRequest* req,
                                           v1::ReadRecordResponse* resp) {
  if (grpc::Status refused = AuthzVerdict(*ctx); !refused.ok()) return refused;
  v1::ReadRecordRequest bound = *req;
  Authenticate(*ctx, bound.mutable_accessor());
  absl::StatusOr<v1::ReadRecordResponse> r = ReadRecord(bound);
  if (!r.ok()) return ToGrpcStatus(r.status());
  *resp = *std::move(r);
  return grpc::Status::OK;
}

grpc::Status AccessServiceImpl::GetAccessReport(grpc::ServerContext* ctx,
                                                const v1::GetAccessReportRequest* req,
                                                v1::AccessReport* resp) {
  if (grpc::Status refused = AuthzVerdict(*ctx); !refused.ok()) return refused;
  absl::StatusOr<v1::AccessReport> r = GetAccessReport(*req);
  if (!r.ok()) return ToGrpcStatus(r.status());
  *resp = *std::move(r);
  return grpc::Status::OK;
}

grpc::Status AccessServiceImpl::ExportFhir(grpc::ServerContext* ctx,
                                           const v1::ExportFhirRequest* req,
                                           v1::FhirExport* resp) {
  if (grpc::Status refused = AuthzVerdict(*ctx); !refused.ok()) return refused;
  v1::ExportFhirRequest bound = *req;
  Authenticate(*ctx, bound.mutable_accessor());
  absl::StatusOr<v1::FhirExport> r = ExportFhir(bound);
  if (!r.ok()) return ToGrpcStatus(r.status());
  *resp = *std::move(r);
  return grpc::Status::OK;
}

}  // namespace caseledger
