#include "services/api/ledger_service.h"

#include <deque>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "ledger/internal/status_macros.h"
#include "ledger/record.h"
#include "services/authz/authz_verdict.h"
#include "services/append/case_gate.h"
#include "services/append/event_codec.h"
#include "services/common/grpc_status.h"
#include "services/authz/request_resources.h"

namespace caseledger {
namespace {

absl::Status Prefixed(const absl::Status& s, absl::string_view prefix) {
  if (s.ok()) return s;
  return absl::Status(s.code(), absl::StrCat(prefix, s.message()));
}

void ToWire(const AppendResult& r, v1::AppendResponse* out) {
  out->set_seq(r.seq);
  out->set_version(r.version);
  out->set_leaf_hash(std::string(AsBytes(r.leaf_hash)));
  out->set_duplicate(r.duplicate);
}

// The checkpoint a stored note states (ParseCheckpointNote). DATA_LOSS when
// the store holds a note that does not parse.
absl::StatusOr<Checkpoint> ParseNote(absl::string_view note) {
  absl::StatusOr<Checkpoint> c = ParseCheckpointNote(note);
  if (!c.ok()) {
    return absl::DataLossError(absl::StrCat("stored checkpoint: ", c.status().message()));
  }
  return c;
}

void ToWire(const StoredCheckpoint& cp, const Checkpoint& parsed, v1::Checkpoint* out) {
  out->set_size(cp.size);
  out->set_root_hash(std::string(AsBytes(parsed.root)));
  out->set_note(cp.note);
}

}  // namespace

LedgerServiceImpl::LedgerServiceImpl(Ledger* ledger, CaseGate* gate, const NoteSigner* signer,
                                     LedgerServiceOptions options)
    : ledger_(ledger), gate_(gate), signer_(signer), options_(options), committed_(ledger->Size()) {
  // On the committer thread: hand the batch to each live subscriber's
  // queue, or drop it for one whose queue is full; never block.
  listener_ = ledger_->AddCommitListener([this](const std::shared_ptr<const CommittedBatch>& b) {
    absl::MutexLock lock(&mu_);
    committed_ = std::max(committed_, b->new_size);
    for (Subscriber* s : subscribers_) {
      if (s->records + b->records.size() > kMaxQueuedRecords) continue;
      s->queue.push_back(b);
      s->records += b->records.size();
    }
  });
}

LedgerServiceImpl::~LedgerServiceImpl() { ledger_->RemoveCommitListener(listener_); }

void LedgerServiceImpl::StopStreams() {
  absl::MutexLock lock(&mu_);
  stopping_ = true;
}

grpc::Status LedgerServiceImpl::Append(grpc::ServerContext* ctx, const v1::AppendRequest* req,
                                       v1::AppendResponse* resp) {
  if (grpc::Status refused = AuthzVerdict(*ctx); !refused.ok()) return refused;
  const absl::Time received = absl::Now();
  absl::StatusOr<GatedEvent> event = AppendFromWire(*req);
  if (!event.ok()) return Answered("Append", event.status(), received);
  std::vector<GatedEvent> one;
  one.push_back(*std::move(event));
  absl::StatusOr<std::vector<AppendResult>> result = GateAppend(std::move(one));
  if (!result.ok()) return Answered("Append", result.status(), received);
  ToWire((*result)[0], resp);
  return Answered("Append", absl::OkStatus(), received);
}

absl::StatusOr<std::vector<AppendResult>> LedgerServiceImpl::GateAppend(
    std::vector<GatedEvent> events) {
  if (options_.admit_appends) CL_RETURN_IF_ERROR(options_.admit_appends());
  return gate_->Append(std::move(events));
}

grpc::Status LedgerServiceImpl::Answered(absl::string_view method, const absl::Status& status,
                                         absl::Time received) const {
  if (options_.on_append) options_.on_append(method, status.code(), absl::Now() - received);
  return ToGrpcStatus(status);
}

grpc::Status LedgerServiceImpl::AppendBatch(grpc::ServerContext* ctx,
                                            const v1::AppendBatchRequest* req,
                                            v1::AppendBatchResponse* resp) {
  // Each event is authorized by the interceptor, in order.
  if (grpc::Status refused = AuthzVerdict(*ctx); !refused.ok()) return refused;
  const absl::Time received = absl::Now();
  absl::StatusOr<std::vector<GatedEvent>> events =
      BatchFromWire(*req, ledger_->options().max_batch_events);
  if (!events.ok()) return Answered("AppendBatch", events.status(), received);
  absl::StatusOr<std::vector<AppendResult>> results = GateAppend(*std::move(events));
  if (!results.ok()) return Answered("AppendBatch", results.status(), received);
  for (const AppendResult& r : *results) ToWire(r, resp->add_results());
  return Answered("AppendBatch", absl::OkStatus(), received);
}

grpc::Status LedgerServiceImpl::AppendStream(
    grpc::ServerContext* ctx,
    grpc::ServerReaderWriter<v1::AppendResponse, v1::AppendRequest>* stream) {
  // The reader (this thread) submits appends asynchronously; a writer thread
  // sends their outcomes in request order. The first failure ends the stream
  // after the responses before it. The ledger's callbacks may outlive this
  // handler, so what they touch is shared with them.
  struct Slot {
    bool done = false;
    absl::StatusOr<AppendResult> result;
  };
  struct State {
    absl::Mutex mu;
    std::deque<std::shared_ptr<Slot>> slots ABSL_GUARDED_BY(mu);
    bool reading_done ABSL_GUARDED_BY(mu) = false;
    absl::Status failure ABSL_GUARDED_BY(mu);
  };
  // The interceptor decides on the caller first, then on each event as it
  // is read (CallVerdict after each Read).
  if (grpc::Status refused = AuthzVerdict(*ctx); !refused.ok()) return refused;
  auto state = std::make_shared<State>();
  const size_t max_in_flight = options_.max_stream_in_flight;

  std::thread writer([state, stream] {
    for (;;) {
      std::shared_ptr<Slot> slot;
      {
        absl::MutexLock lock(&state->mu);
        auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state->mu) {
          return (!state->slots.empty() && state->slots.front()->done) ||
                 (state->slots.empty() && state->reading_done);
        };
        state->mu.Await(absl::Condition(&ready));
        if (state->slots.empty()) return;
        slot = std::move(state->slots.front());
        state->slots.pop_front();
        if (!slot->result.ok() && state->failure.ok()) {
          state->failure = slot->result.status();
          state->reading_done = true;
        }
        // After a failure, later appends still land (they were accepted);
        // their outcomes are not reported.
        if (!state->failure.ok()) continue;
      }
      v1::AppendResponse resp;
      ToWire(*slot->result, &resp);
      if (!stream->Write(resp)) {
        absl::MutexLock lock(&state->mu);
        if (state->failure.ok()) state->failure = absl::CancelledError("client went away");
        state->reading_done = true;
      }
    }
  });

  v1::AppendRequest req;
  for (uint64_t index = 0;; ++index) {
    {
      absl::MutexLock lock(&state->mu);
      auto room = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state->mu) {
        return state->slots.size() < max_in_flight || state->reading_done;
      };
      state->mu.Await(absl::Condition(&room));
      if (state->reading_done) break;
    }
    if (!stream->Read(&req)) break;
    const absl::Time received = absl::Now();
    auto slot = std::make_shared<Slot>();
    absl::StatusOr<GatedEvent> event = AppendFromWire(req);
    bool authorized = true;  // authorization's refusals are counted apart
    if (event.ok()) {
      absl::StatusOr<Admitted> admitted = CallVerdict(*ctx);
      if (!admitted.ok()) event = admitted.status();
      authorized = admitted.ok();
    }
    if (event.ok() && options_.admit_appends) {
      if (absl::Status admit = options_.admit_appends(); !admit.ok()) event = admit;
    }
    absl::MutexLock lock(&state->mu);
    state->slots.push_back(slot);
    if (!event.ok()) {
      slot->result = Prefixed(event.status(), absl::StrCat("request ", index, ": "));
      slot->done = true;
      if (authorized) (void)Answered("AppendStream", event.status(), received);
      break;
    }
    std::vector<GatedEvent> one;
    one.push_back(*std::move(event));
    state->mu.Unlock();
    // The service outlives the ledger's callbacks (the ledger is closed first).
    gate_->Submit(std::move(one), [this, state, slot,
                                   received](absl::StatusOr<std::vector<AppendResult>> r) {
      (void)Answered("AppendStream", r.status(), received);
      absl::MutexLock lock(&state->mu);
      if (r.ok()) {
        slot->result = (*r)[0];
      } else {
        slot->result = r.status();
      }
      slot->done = true;
    });
    state->mu.Lock();
  }
  {
    absl::MutexLock lock(&state->mu);
    state->reading_done = true;
  }
  writer.join();
  if (ctx->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "client cancelled");
  absl::MutexLock lock(&state->mu);
  return ToGrpcStatus(state->failure);
}

absl::Status LedgerServiceImpl::WriteRecord(v1::Record record,
                                            grpc::ServerWriter<v1::Record>* writer,
                                            bool commitments_only) {
  if (commitments_only) {
    // The leaf commits to the payload; the auditor checks chain, tree and
    // the field commitments without seeing an opening (and can export them,
    // BUNDLE.md commitments-only mode). The server opened the case and event
    // ids from the leaf's stream tag and box (ledger/BLINDING.md): without a
    // grant they stay closed, as in the leaf.
    CL_ASSIGN_OR_RETURN(std::string commitments, StripOpenings(record.payload()));
    record.set_payload(std::move(commitments));
    record.clear_stream_id();
    record.clear_event_id();
    record.clear_event();
    record.clear_withheld_fields();
  }
  if (!writer->Write(record)) return absl::CancelledError("client went away");
  return absl::OkStatus();
}

absl::Status LedgerServiceImpl::WriteFromFeed(
    grpc::ServerContext* ctx, uint64_t from, uint64_t to,
    const std::vector<std::shared_ptr<const CommittedBatch>>& batches,
    grpc::ServerWriter<v1::Record>* writer, bool commitments_only) {
  for (const auto& b : batches) {
    const bool current = ledger_->OpeningsCurrent(*b);
    for (uint64_t seq = std::max(from, b->first_seq); seq < std::min(to, b->new_size); ++seq) {
      if (ctx->IsCancelled()) return absl::CancelledError("client cancelled");
      const RecordView& view = b->records[seq - b->first_seq];
      absl::StatusOr<v1::Record> record;
      if (current || !view.openings.has_value()) {
        record = ToWireRecord(view, View::kFull, Origin::kJustCommitted);
      } else {
        RecordView reopened = view;  // keys destroyed since it was sealed
        CL_RETURN_IF_ERROR(ledger_->Reopen(&reopened));
        record = ToWireRecord(reopened, View::kFull, Origin::kJustCommitted);
      }
      if (!record.ok()) return record.status();
      CL_RETURN_IF_ERROR(WriteRecord(*std::move(record), writer, commitments_only));
    }
  }
  return absl::OkStatus();
}

absl::Status LedgerServiceImpl::WriteRange(grpc::ServerContext* ctx, uint64_t from, uint64_t to,
                                           grpc::ServerWriter<v1::Record>* writer,
                                           bool commitments_only) {
  for (uint64_t seq = from; seq < to; ++seq) {
    if (ctx->IsCancelled()) return absl::CancelledError("client cancelled");
    CL_ASSIGN_OR_RETURN(RecordView view, ledger_->Read(seq));
    CL_ASSIGN_OR_RETURN(v1::Record record, ToWireRecord(view));
    CL_RETURN_IF_ERROR(WriteRecord(std::move(record), writer, commitments_only));
  }
  return absl::OkStatus();
}

grpc::Status LedgerServiceImpl::ReadStream(grpc::ServerContext* ctx,
                                           const v1::ReadStreamRequest* req,
                                           grpc::ServerWriter<v1::Record>* writer) {
  absl::StatusOr<Admitted> admitted = CallVerdict(*ctx);
  if (!admitted.ok()) return ToGrpcStatus(admitted.status());
  if (absl::Status form = CheckForm(*req); !form.ok()) return ToGrpcStatus(form);
  uint64_t version = req->from_version();
  uint64_t left = req->limit() == 0 ? UINT64_MAX : req->limit();
  // Chunks, so that no iterator is held while the client reads slowly.
  while (left > 0) {
    std::vector<uint64_t> seqs;
    absl::Status s =
        ledger_->store().ScanStream(req->stream_id(), version, [&](uint64_t v, uint64_t seq) {
          seqs.push_back(seq);
          version = v + 1;
          return seqs.size() < 256 && seqs.size() < left;
        });
    if (!s.ok()) return ToGrpcStatus(s);
    if (seqs.empty()) break;
    for (uint64_t seq : seqs) {
      absl::Status w = WriteRange(ctx, seq, seq + 1, writer, admitted->decision.commitments_only);
      if (!w.ok()) return ToGrpcStatus(w);
    }
    left -= seqs.size();
  }
  return grpc::Status::OK;
}

grpc::Status LedgerServiceImpl::ReadLog(grpc::ServerContext* ctx, const v1::ReadLogRequest* req,
                                        grpc::ServerWriter<v1::Record>* writer) {
  absl::StatusOr<Admitted> admitted = CallVerdict(*ctx);
  if (!admitted.ok()) return ToGrpcStatus(admitted.status());
  uint64_t size = ledger_->Size();
  if (req->from_seq() > size) {
    return ToGrpcStatus(absl::OutOfRangeError(
        absl::StrCat("from_seq: got ", req->from_seq(), ", the tree size is ", size)));
  }
  uint64_t to = size;
  if (req->limit() > 0) to = std::min<uint64_t>(size, req->from_seq() + req->limit());
  return ToGrpcStatus(
      WriteRange(ctx, req->from_seq(), to, writer, admitted->decision.commitments_only));
}

grpc::Status LedgerServiceImpl::Subscribe(grpc::ServerContext* ctx, const v1::SubscribeRequest* req,
                                          grpc::ServerWriter<v1::Record>* writer) {
  // Live records come from the commit feed (queued for this subscriber by
  // the committer thread); the store serves only what the queue does not
  // hold: records before the subscription (catch-up) and batches dropped
  // while this subscriber was slow. Both are written in seq order from
  // `next`, so there is no gap and no duplicate at a switch.
  absl::StatusOr<Admitted> admitted = CallVerdict(*ctx);
  if (!admitted.ok()) return ToGrpcStatus(admitted.status());
  Subscriber self;
  {
    absl::MutexLock lock(&mu_);
    subscribers_.insert(&self);
  }
  struct Unsubscribe {
    LedgerServiceImpl* service;
    Subscriber* self;
    ~Unsubscribe() {
      absl::MutexLock lock(&service->mu_);
      service->subscribers_.erase(self);
    }
  } unsubscribe{this, &self};
  uint64_t next = req->from_seq();
  for (;;) {
    uint64_t to;
    std::vector<std::shared_ptr<const CommittedBatch>> batches;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return committed_ > next || stopping_;
      };
      mu_.AwaitWithTimeout(absl::Condition(&ready), options_.subscribe_poll);
      if (stopping_) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "server shutting down");
      // Bounded chunks keep shutdown and cancellation prompt.
      to = std::min(committed_, next + 1024);
      while (!self.queue.empty() && self.queue.front()->new_size <= next) {
        self.records -= self.queue.front()->records.size();
        self.queue.pop_front();
      }
      uint64_t covered = next;
      for (const auto& b : self.queue) {
        if (b->first_seq > covered || covered >= to) break;
        batches.push_back(b);
        covered = b->new_size;
      }
      if (!batches.empty()) {
        to = std::min(to, covered);
      } else if (!self.queue.empty()) {
        to = std::min(to, self.queue.front()->first_seq);
      }
    }
    if (ctx->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "client cancelled");
    if (to <= next) continue;
    absl::Status s =
        batches.empty()
            ? WriteRange(ctx, next, to, writer, admitted->decision.commitments_only)
            : WriteFromFeed(ctx, next, to, batches, writer, admitted->decision.commitments_only);
    if (!s.ok()) return ToGrpcStatus(s);
    next = to;
  }
}

grpc::Status LedgerServiceImpl::GetCheckpoint(grpc::ServerContext* ctx,
                                              const v1::GetCheckpointRequest* req,
                                              v1::Checkpoint* resp) {
  if (grpc::Status refused = AuthzVerdict(*ctx); !refused.ok()) return refused;
  absl::StatusOr<StoredCheckpoint> cp;
  if (req->size() == 0) {
    absl::StatusOr<std::optional<StoredCheckpoint>> latest = ledger_->store().LatestCheckpoint();
    if (!latest.ok()) return ToGrpcStatus(latest.status());
    // None signed yet: sign one now (FAILED_PRECONDITION for an empty ledger).
    cp = latest->has_value() ? absl::StatusOr<StoredCheckpoint>(**latest) : ledger_->Checkpoint();
  } else {
    if (req->size() > ledger_->Size()) {
      return ToGrpcStatus(absl::InvalidArgumentError(absl::StrCat(
          "size: got ", req->size(), ", want at most the tree size ", ledger_->Size())));
    }
    cp = ledger_->store().CheckpointAt(req->size());
    if (cp.status().code() == absl::StatusCode::kNotFound) {
      return ToGrpcStatus(absl::NotFoundError(
          absl::StrCat("size: no checkpoint was signed at size ", req->size(),
                       " (ask for size 0 for the latest, or a size a checkpoint was signed at)")));
    }
  }
  if (!cp.ok()) return ToGrpcStatus(cp.status());
  absl::StatusOr<Checkpoint> parsed = ParseNote(cp->note);
  if (!parsed.ok()) return ToGrpcStatus(parsed.status());
  ToWire(*cp, *parsed, resp);
  return grpc::Status::OK;
}

grpc::Status LedgerServiceImpl::GetInclusionProof(grpc::ServerContext* ctx,
                                                  const v1::InclusionProofRequest* req,
                                                  v1::InclusionProof* resp) {
  if (grpc::Status refused = AuthzVerdict(*ctx); !refused.ok()) return refused;
  if (req->seq() >= req->tree_size()) {
    return ToGrpcStatus(absl::InvalidArgumentError(
        absl::StrCat("tree_size: got ", req->tree_size(), ", want more than seq ", req->seq())));
  }
  absl::StatusOr<std::vector<Hash>> proof = ledger_->InclusionProof(req->seq(), req->tree_size());
  if (!proof.ok()) return ToGrpcStatus(proof.status());
  absl::StatusOr<Hash> leaf = ledger_->store().GetNode(0, req->seq());
  if (!leaf.ok()) return ToGrpcStatus(leaf.status());
  resp->set_seq(req->seq());
  resp->set_tree_size(req->tree_size());
  resp->set_leaf_hash(std::string(AsBytes(*leaf)));
  for (const Hash& h : *proof) resp->add_hashes(std::string(AsBytes(h)));
  return grpc::Status::OK;
}

grpc::Status LedgerServiceImpl::GetConsistencyProof(grpc::ServerContext* ctx,
                                                    const v1::ConsistencyProofRequest* req,
                                                    v1::ConsistencyProof* resp) {
  if (grpc::Status refused = AuthzVerdict(*ctx); !refused.ok()) return refused;
  if (req->from_size() == 0) {
    return ToGrpcStatus(absl::InvalidArgumentError("from_size: must be at least 1"));
  }
  if (req->from_size() > req->to_size()) {
    return ToGrpcStatus(absl::InvalidArgumentError(absl::StrCat(
        "from_size: got ", req->from_size(), ", want at most to_size ", req->to_size())));
  }
  absl::StatusOr<std::vector<Hash>> proof =
      ledger_->ConsistencyProof(req->from_size(), req->to_size());
  if (!proof.ok()) return ToGrpcStatus(proof.status());
  resp->set_from_size(req->from_size());
  resp->set_to_size(req->to_size());
  for (const Hash& h : *proof) resp->add_hashes(std::string(AsBytes(h)));
  return grpc::Status::OK;
}

grpc::Status LedgerServiceImpl::GetPublicKey(grpc::ServerContext* ctx,
                                             const v1::GetPublicKeyRequest*, v1::PublicKey* resp) {
  if (grpc::Status refused = AuthzVerdict(*ctx); !refused.ok()) return refused;
  std::string vkey = signer_->VerifierKey();
  resp->set_verifier_key(vkey);
  resp->set_origin(ledger_->options().origin);
  // name+keyhash+base64(0x01 || key): the raw key follows the algorithm byte.
  // Only the first two '+' separate; base64 has '+' of its own.
  size_t first = vkey.find('+');
  size_t second = first == std::string::npos ? first : vkey.find('+', first + 1);
  std::string raw;
  if (second == std::string::npos || !absl::Base64Unescape(vkey.substr(second + 1), &raw) ||
      raw.size() != 33) {
    return ToGrpcStatus(absl::InternalError("verifier key: cannot read the raw public key"));
  }
  resp->set_ed25519_public_key(raw.substr(1));
  return grpc::Status::OK;
}

grpc::Status LedgerServiceImpl::ListCheckpoints(grpc::ServerContext* ctx,
                                                const v1::ListCheckpointsRequest* req,
                                                grpc::ServerWriter<v1::Checkpoint>* writer) {
  if (grpc::Status refused = AuthzVerdict(*ctx); !refused.ok()) return refused;
  if (req->to_size() != 0 && req->to_size() < req->from_size()) {
    return ToGrpcStatus(absl::InvalidArgumentError(
        absl::StrCat("to_size: got ", req->to_size(),
                     ", want 0 (the latest) or at least from_size ", req->from_size())));
  }
  absl::StatusOr<std::vector<StoredCheckpoint>> all = ledger_->store().Checkpoints();
  if (!all.ok()) return ToGrpcStatus(all.status());
  for (const StoredCheckpoint& cp : *all) {
    if (cp.size < req->from_size()) continue;
    if (req->to_size() != 0 && cp.size > req->to_size()) break;
    if (ctx->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "client cancelled");
    // Served as stored even when damaged (then without root_hash): judging
    // it is the auditor's verifier's job, and an export must not hide it.
    v1::Checkpoint out;
    absl::StatusOr<Checkpoint> parsed = ParseNote(cp.note);
    if (parsed.ok()) {
      ToWire(cp, *parsed, &out);
    } else {
      out.set_size(cp.size);
      out.set_note(cp.note);
    }
    if (!writer->Write(out)) return grpc::Status(grpc::StatusCode::CANCELLED, "client went away");
  }
  return grpc::Status::OK;
}

}  // namespace caseledger
