#include "services/api/audit_service.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "ledger/store_verifier.h"
#include "services/authz/authz_verdict.h"
#include "services/common/grpc_status.h"

namespace caseledger {
namespace {

// U+2014 EM DASH, then a space: the start of every signature line.
constexpr absl::string_view kSigPrefix = "\xE2\x80\x94 ";

std::string WitnessId(const CosignatureVerifier& w) {
  return absl::StrFormat("%s+%08x", w.name(), w.KeyHash());
}

bool HasLineOf(const SignedNote& note, const CosignatureVerifier& w) {
  return std::any_of(note.signatures.begin(), note.signatures.end(), [&](const NoteSignature& s) {
    return s.name == w.name() && s.key_hash == w.KeyHash();
  });
}

double SecondsBetween(absl::Time from, absl::Time to) {
  return std::max(0.0, absl::ToDoubleSeconds(to - from));
}

}  // namespace

// ---------------------------------------------------------------------------
// WitnessService

WitnessServiceImpl::WitnessServiceImpl(Ledger* ledger, std::vector<CosignatureVerifier> witnesses,
                                       const Clock* clock, absl::Duration max_future)
    : ledger_(ledger),
      witnesses_(std::move(witnesses)),
      clock_(clock != nullptr ? *clock : Clock::Real()),
      max_future_(max_future) {}

absl::StatusOr<v1::AddCosignatureResponse> WitnessServiceImpl::Add(absl::string_view note) {
  if (witnesses_.empty()) {
    return absl::FailedPreconditionError(
        "this server trusts no witness: start it with --witness_keys=<witness verifier key>,...");
  }
  absl::StatusOr<SignedNote> parsed = ParseSignedNote(note);
  if (!parsed.ok()) return parsed.status();
  absl::StatusOr<Checkpoint> cp = ParseCheckpointBody(parsed->text);
  if (!cp.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("note: ", cp.status().message()));
  }
  const std::string& origin = ledger_->options().origin;
  if (cp->origin != origin) {
    return absl::InvalidArgumentError(
        absl::StrCat("note: checkpoint origin got \"", cp->origin, "\", want \"", origin, "\""));
  }
  absl::StatusOr<StoredCheckpoint> stored = ledger_->store().CheckpointAt(cp->size);
  if (stored.status().code() == absl::StatusCode::kNotFound) {
    return absl::NotFoundError(
        absl::StrCat("note: this log signed no checkpoint at size ", cp->size));
  }
  if (!stored.ok()) return stored.status();
  absl::StatusOr<SignedNote> ours = ParseSignedNote(stored->note);
  if (!ours.ok()) return ours.status();
  if (ours->text != parsed->text) {
    absl::StatusOr<Checkpoint> signed_cp = ParseCheckpointBody(ours->text);
    return absl::InvalidArgumentError(absl::StrCat(
        "note: text is not the checkpoint this log signed at size ", cp->size, " (root got ",
        ToHex(cp->root), ", signed ", signed_cp.ok() ? ToHex(signed_cp->root) : "?", ")"));
  }
  const absl::Time now = clock_.Now();
  v1::AddCosignatureResponse resp;
  resp.set_size(cp->size);
  for (const CosignatureVerifier& w : witnesses_) {
    if (!HasLineOf(*parsed, w)) continue;
    absl::StatusOr<Cosignature> cs = w.Verify(note);
    if (!cs.ok()) {
      return absl::InvalidArgumentError(std::string(cs.status().message()));
    }
    if (absl::FromUnixSeconds(static_cast<int64_t>(cs->timestamp)) > now + max_future_) {
      return absl::InvalidArgumentError(
          absl::StrCat("note: cosignature by ", WitnessId(w), " is dated ", cs->timestamp,
                       ", want at most ", absl::FormatDuration(max_future_),
                       " after the server's time ", absl::ToUnixSeconds(now)));
    }
    uint64_t kept = cs->timestamp;
    {
      absl::MutexLock lock(&write_mu_);
      // Keep the newer of the stored and the offered line.
      absl::StatusOr<v1::CosignedCheckpoint> current = Cosigned(cp->size);
      if (!current.ok()) return current.status();
      bool newer_stored = false;
      for (const v1::WitnessCosignature& c : current->cosignatures()) {
        if (c.witness() == WitnessId(w) && c.timestamp() > cs->timestamp) {
          newer_stored = true;
          kept = c.timestamp();
        }
      }
      if (!newer_stored) {
        absl::Status put = ledger_->PutCosignature(cp->size, WitnessId(w), cs->line);
        if (!put.ok()) return put;
      }
    }
    v1::WitnessCosignature* out = resp.add_stored();
    out->set_witness(WitnessId(w));
    out->set_timestamp(kept);
  }
  if (resp.stored_size() == 0) {
    std::vector<std::string> ids;
    for (const CosignatureVerifier& w : witnesses_) ids.push_back(WitnessId(w));
    return absl::PermissionDeniedError(
        absl::StrCat("note: no cosignature line by a witness this server trusts (trusted: ",
                     absl::StrJoin(ids, ", "), ")"));
  }
  return resp;
}

absl::StatusOr<v1::CosignedCheckpoint> WitnessServiceImpl::Cosigned(uint64_t size) const {
  absl::StatusOr<StoredCheckpoint> stored = ledger_->store().CheckpointAt(size);
  if (stored.status().code() == absl::StatusCode::kNotFound) {
    return absl::NotFoundError(
        absl::StrCat("size: no checkpoint was signed at size ", size,
                     " (ask for size 0 for the latest, or a size a checkpoint was signed at)"));
  }
  if (!stored.ok()) return stored.status();
  absl::StatusOr<Checkpoint> cp = ParseCheckpointNote(stored->note);
  if (!cp.ok()) return cp.status();
  absl::StatusOr<std::vector<std::string>> lines = ledger_->store().Cosignatures(size);
  if (!lines.ok()) return lines.status();

  v1::CosignedCheckpoint out;
  std::string note = stored->note;
  for (const std::string& line : *lines) {
    // Serve only lines that still verify under a witness trusted now.
    std::string single = absl::StrCat(stored->note, line, "\n");
    for (const CosignatureVerifier& w : witnesses_) {
      if (line.rfind(absl::StrCat(kSigPrefix, w.name(), " "), 0) != 0) continue;
      absl::StatusOr<Cosignature> cs = w.Verify(single);
      if (!cs.ok()) continue;
      absl::StrAppend(&note, line, "\n");
      v1::WitnessCosignature* c = out.add_cosignatures();
      c->set_witness(WitnessId(w));
      c->set_timestamp(cs->timestamp);
      break;
    }
  }
  out.mutable_checkpoint()->set_size(size);
  out.mutable_checkpoint()->set_root_hash(std::string(AsBytes(cp->root)));
  out.mutable_checkpoint()->set_note(std::move(note));
  return out;
}

grpc::Status WitnessServiceImpl::AddCosignature(grpc::ServerContext* ctx,
                                                const v1::AddCosignatureRequest* req,
                                                v1::AddCosignatureResponse* resp) {
  if (grpc::Status refused = AuthzVerdict(*ctx); !refused.ok()) return refused;
  absl::StatusOr<v1::AddCosignatureResponse> r = Add(req->note());
  if (!r.ok()) return ToGrpcStatus(r.status());
  *resp = *std::move(r);
  return grpc::Status::OK;
}

void WitnessServiceImpl::ChunkTransition(
    const PublishedTransition& p, size_t max_bytes,
    const std::function<bool(v1::SubjectTransitionChunk&)>& write) {
  const SubjectTransition& t = p.transition;
  v1::SubjectTransitionChunk chunk;
  size_t bytes = 0;
  auto flush = [&]() {
    bool more = write(chunk);
    chunk.Clear();
    bytes = 0;
    return more;
  };
  chunk.mutable_checkpoint()->set_size(p.checkpoint.size);
  chunk.mutable_checkpoint()->set_note(p.checkpoint.note);
  if (absl::StatusOr<Checkpoint> body = ParseCheckpointNote(p.checkpoint.note); body.ok()) {
    chunk.mutable_checkpoint()->set_root_hash(std::string(AsBytes(body->root)));
  }
  chunk.set_from_size(t.from_size);
  for (const Hash& h : t.old_range) chunk.add_old_range(std::string(AsBytes(h)));
  bytes = p.checkpoint.note.size() + t.old_range.size() * kHashSize;
  for (const std::string& r : t.records) {
    if (bytes + r.size() > max_bytes && !flush()) return;
    chunk.add_records(r);
    bytes += r.size() + 8;
  }
  for (size_t at = 0; at < t.old_map.size();) {
    if (bytes >= max_bytes && !flush()) return;
    const size_t n = std::min(t.old_map.size() - at, max_bytes - bytes);
    chunk.set_old_map(t.old_map.substr(at, n));
    bytes += n;
    at += n;
  }
  for (const SubjectClaim& c : t.claims) {
    if (bytes + 2 * kHashSize + 16 > max_bytes && !flush()) return;
    v1::SubjectClaim* out = chunk.add_claims();
    out->set_key(std::string(AsBytes(c.key)));
    out->set_count(c.state.count);
    out->set_head(std::string(AsBytes(c.state.head)));
    bytes += 2 * kHashSize + 16;
  }
  flush();
}

grpc::Status WitnessServiceImpl::GetSubjectTransition(
    grpc::ServerContext* ctx, const v1::SubjectTransitionRequest* req,
    grpc::ServerWriter<v1::SubjectTransitionChunk>* writer) {
  if (grpc::Status refused = AuthzVerdict(*ctx); !refused.ok()) return refused;
  absl::StatusOr<PublishedTransition> t = ledger_->SubjectTransitionTo(req->from_size());
  if (!t.ok()) return ToGrpcStatus(t.status());
  constexpr size_t kMaxChunkBytes = 768 << 10;
  bool gone = false;
  ChunkTransition(*t, kMaxChunkBytes, [&](v1::SubjectTransitionChunk& chunk) {
    if (ctx->IsCancelled() || !writer->Write(chunk)) {
      gone = true;
      return false;
    }
    return true;
  });
  if (gone) return grpc::Status(grpc::StatusCode::CANCELLED, "client went away");
  return grpc::Status::OK;
}

grpc::Status WitnessServiceImpl::GetCosignedCheckpoint(grpc::ServerContext* ctx,
                                                       const v1::GetCosignedCheckpointRequest* req,
                                                       v1::CosignedCheckpoint* resp) {
  if (grpc::Status refused = AuthzVerdict(*ctx); !refused.ok()) return refused;
  uint64_t size = req->size();
  if (size == 0) {
    if (req->cosigned_only()) {
      absl::StatusOr<std::optional<uint64_t>> newest = ledger_->store().LatestCosignedSize();
      if (!newest.ok()) return ToGrpcStatus(newest.status());
      if (!newest->has_value()) {
        return ToGrpcStatus(absl::NotFoundError("no checkpoint has a cosignature yet"));
      }
      size = **newest;
    } else {
      absl::StatusOr<std::optional<StoredCheckpoint>> latest = ledger_->store().LatestCheckpoint();
      if (!latest.ok()) return ToGrpcStatus(latest.status());
      if (!latest->has_value()) {
        return ToGrpcStatus(absl::NotFoundError("no checkpoint has been signed yet"));
      }
      size = (*latest)->size;
    }
  }
  absl::StatusOr<v1::CosignedCheckpoint> r = Cosigned(size);
  if (!r.ok()) return ToGrpcStatus(r.status());
  *resp = *std::move(r);
  return grpc::Status::OK;
}

// ---------------------------------------------------------------------------
// AuditService

AuditServiceImpl::AuditServiceImpl(Ledger* ledger, const WitnessServiceImpl* witness,
                                   AuditServiceOptions options)
    : ledger_(ledger),
      witness_(witness),
      options_(std::move(options)),
      clock_(options_.clock != nullptr ? *options_.clock : Clock::Real()) {}

AuditServiceImpl::~AuditServiceImpl() { Stop(); }

void AuditServiceImpl::Start() {
  if (options_.verify_interval <= absl::ZeroDuration() || thread_.joinable()) return;
  thread_ = std::thread([this] { Loop(); });
}

void AuditServiceImpl::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void AuditServiceImpl::Loop() {
  for (;;) {
    VerifyOnce();
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), options_.verify_interval);
    if (stopping_) return;
  }
}

void AuditServiceImpl::VerifyOnce() {
  absl::MutexLock round(&round_mu_);
  uint64_t from;
  {
    absl::MutexLock lock(&mu_);
    if (failed_) return;  // Damage stays reported; nothing after it is trusted.
    from = verified_size_;
  }
  uint64_t size = ledger_->Size();
  uint64_t to = std::min(size, from + std::max<uint64_t>(options_.verify_chunk, 1));
  if (to <= from) return;
  StoreVerifyOptions verify;
  verify.note_verifier = options_.note_verifier;
  verify.origin = options_.origin;
  StoreVerifyReport report = VerifyStoreRange(ledger_->store(), from, to, verify);
  {
    absl::MutexLock lock(&mu_);
    if (report.status.ok()) {
      verified_size_ = to;
      failure_.clear();
    } else if (!report.failures.empty()) {
      failed_ = true;
      first_bad_seq_ = report.failures.front().seq;
      failure_ = std::string(report.status.message());
    } else {
      failure_ = report.status.ToString();  // e.g. an I/O error: retried next round
    }
  }
  // Once: a failed verifier does not run again (above).
  if (!report.failures.empty() && options_.on_damage) {
    options_.on_damage(report.failures.front().seq,
                       std::string(report.failures.front().status.message()));
  }
}

absl::StatusOr<double> AuditServiceImpl::RecordAge(uint64_t seq) const {
  absl::StatusOr<RecordView> r = ledger_->Read(seq);
  if (!r.ok()) return r.status();
  return SecondsBetween(absl::FromUnixMicros(r->record.commit_time_micros), clock_.Now());
}

absl::StatusOr<v1::LedgerMetrics> AuditServiceImpl::Metrics() const {
  v1::LedgerMetrics m;
  const uint64_t size = ledger_->Size();
  m.set_tree_size(size);
  absl::StatusOr<std::optional<StoredCheckpoint>> latest = ledger_->store().LatestCheckpoint();
  if (!latest.ok()) return latest.status();
  uint64_t signed_size = latest->has_value() ? (*latest)->size : 0;
  m.set_last_checkpoint_size(signed_size);
  if (signed_size > 0) {
    absl::StatusOr<double> age = RecordAge(signed_size - 1);
    if (!age.ok()) return age.status();
    m.set_last_checkpoint_age_seconds(*age);
  }
  m.set_unsigned_records(size >= signed_size ? size - signed_size : 0);
  {
    absl::MutexLock lock(&mu_);
    m.set_verified_size(verified_size_);
    m.set_verification_failed(failed_);
    m.set_first_bad_seq(first_bad_seq_);
    m.set_verification_failure(failure_);
  }
  const uint64_t verified = m.verified_size();
  m.set_verification_lag_records(size > verified ? size - verified : 0);
  if (size > verified) {
    absl::StatusOr<double> age = RecordAge(verified);
    if (!age.ok()) return age.status();
    m.set_verification_lag_seconds(*age);
  }
  if (witness_ != nullptr) {
    m.set_trusted_witnesses(static_cast<uint32_t>(witness_->witness_count()));
    absl::StatusOr<std::optional<uint64_t>> cosigned = ledger_->store().LatestCosignedSize();
    if (!cosigned.ok()) return cosigned.status();
    if (cosigned->has_value()) {
      absl::StatusOr<v1::CosignedCheckpoint> c = witness_->Cosigned(**cosigned);
      if (!c.ok()) return c.status();
      uint64_t newest = 0;
      for (const v1::WitnessCosignature& w : c->cosignatures()) {
        newest = std::max<uint64_t>(newest, w.timestamp());
      }
      if (c->cosignatures_size() > 0) {
        m.set_last_cosigned_size(**cosigned);
        m.set_last_cosignature_age_seconds(
            SecondsBetween(absl::FromUnixSeconds(static_cast<int64_t>(newest)), clock_.Now()));
      }
    }
  }
  return m;
}

grpc::Status AuditServiceImpl::VerifyRange(grpc::ServerContext* ctx,
                                           const v1::VerifyRangeRequest* req,
                                           v1::VerifyRangeResponse* resp) {
  if (grpc::Status refused = AuthzVerdict(*ctx); !refused.ok()) return refused;
  const uint64_t to = req->to_seq() == 0 ? ledger_->Size() : req->to_seq();
  StoreVerifyOptions verify;
  verify.note_verifier = options_.note_verifier;
  verify.origin = options_.origin;
  verify.max_failures = std::max<uint32_t>(req->max_failures(), 1);
  const absl::Time start = absl::Now();
  StoreVerifyReport report = VerifyStoreRange(ledger_->store(), req->from_seq(), to, verify);
  if (!report.status.ok() && report.failures.empty()) {
    if (report.status.code() == absl::StatusCode::kInvalidArgument) {
      return ToGrpcStatus(
          absl::InvalidArgumentError(absl::StrCat("from_seq, to_seq: ", report.status.message())));
    }
    return ToGrpcStatus(report.status);
  }
  if (!report.failures.empty() && options_.on_damage) {
    options_.on_damage(report.failures.front().seq,
                       std::string(report.failures.front().status.message()));
  }
  resp->set_from_seq(req->from_seq());
  resp->set_to_seq(to);
  resp->set_records_checked(report.records_checked);
  resp->set_checkpoints_checked(report.checkpoints_checked);
  resp->set_ok(report.status.ok());
  for (const VerifyFailure& f : report.failures) {
    v1::RangeFailure* out = resp->add_failures();
    out->set_seq(f.seq);
    out->set_message(std::string(f.status.message()));
  }
  resp->set_root_hash(std::string(AsBytes(report.root)));
  resp->set_seconds(absl::ToDoubleSeconds(absl::Now() - start));
  return grpc::Status::OK;
}

grpc::Status AuditServiceImpl::GetMetrics(grpc::ServerContext* ctx, const v1::GetMetricsRequest*,
                                          v1::LedgerMetrics* resp) {
  if (grpc::Status refused = AuthzVerdict(*ctx); !refused.ok()) return refused;
  absl::StatusOr<v1::LedgerMetrics> m = Metrics();
  if (!m.ok()) return ToGrpcStatus(m.status());
  *resp = *std::move(m);
  return grpc::Status::OK;
}

}  // namespace caseledger
