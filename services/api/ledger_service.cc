#include "services/api/ledger_service.h"

#include <pthread.h>

#include <algorithm>
#include <deque>
#include <functional>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "google/protobuf/unknown_field_set.h"
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

// A unary call refused or answered before anything was queued.
grpc::ServerUnaryReactor* FinishedWith(grpc::CallbackServerContext* ctx, grpc::Status status) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(std::move(status));
  return reactor;
}

void ToWire(const StoredCheckpoint& cp, const Checkpoint& parsed, v1::Checkpoint* out) {
  out->set_size(cp.size);
  out->set_root_hash(std::string(AsBytes(parsed.root)));
  out->set_note(cp.note);
}

}  // namespace

// The append worker threads: tasks run in the order posted, each on one of
// a fixed set of threads. Post never blocks; what waits in the queue is
// bounded by the calls in flight (an AppendBatch call's one task, a stream's
// at most max_stream_in_flight requests). The destructor runs every task
// still queued, then joins.
class LedgerServiceImpl::Workers {
 public:
  explicit Workers(size_t n) {
    for (size_t i = 0; i < n; ++i) {
      threads_.emplace_back([this] {
        // Named for top, perf and ledger_bench's per-thread CPU.
        pthread_setname_np(pthread_self(), "append-worker");
        Run();
      });
    }
  }
  ~Workers() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
      wake_.SignalAll();
    }
    for (std::thread& t : threads_) t.join();
  }
  Workers(const Workers&) = delete;
  Workers& operator=(const Workers&) = delete;

  void Post(std::function<void()> task) {
    absl::MutexLock lock(&mu_);
    tasks_.push_back(std::move(task));
    wake_.Signal();
  }

 private:
  void Run() {
    for (;;) {
      std::function<void()> task;
      {
        absl::MutexLock lock(&mu_);
        while (tasks_.empty() && !stopping_) wake_.Wait(&mu_);
        if (tasks_.empty()) return;  // stopping, and nothing is left
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
  }

  absl::Mutex mu_;
  absl::CondVar wake_;
  std::deque<std::function<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

namespace {

// gRPC reports a streamed request that does not parse as a failed read, as
// it reports the client's half-close. Parsing clears the message first, so
// a marker put in it before the read tells the two apart: a read that
// failed with the marker still there parsed nothing. The marker is an
// unknown field under the largest field number, which no caseledger message
// uses.
constexpr int kUnreadMarker = (1 << 29) - 1;
constexpr uint64_t kUnreadValue = 0x756e72656164;  // "unread"

void MarkUnread(v1::AppendRequest* r) {
  r->Clear();
  r->GetReflection()->MutableUnknownFields(r)->AddVarint(kUnreadMarker, kUnreadValue);
}

bool StillUnread(const v1::AppendRequest& r) {
  const google::protobuf::UnknownFieldSet& u = r.GetReflection()->GetUnknownFields(r);
  return u.field_count() == 1 && u.field(0).number() == kUnreadMarker &&
         u.field(0).type() == google::protobuf::UnknownField::TYPE_VARINT &&
         u.field(0).varint() == kUnreadValue;
}

}  // namespace

LedgerServiceImpl::LedgerServiceImpl(Ledger* ledger, CaseGate* gate, const NoteSigner* signer,
                                     LedgerServiceOptions options)
    : ledger_(ledger),
      gate_(gate),
      signer_(signer),
      options_(options),
      committed_(ledger->Size()),
      workers_(std::make_unique<Workers>(
          options.append_workers > 0
              ? options.append_workers
              : std::max<size_t>(2, std::thread::hardware_concurrency()))) {
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

grpc::ServerUnaryReactor* LedgerServiceImpl::Append(grpc::CallbackServerContext* ctx,
                                                    const v1::AppendRequest* req,
                                                    v1::AppendResponse* resp) {
  if (grpc::Status refused = AuthzVerdict(*ctx); !refused.ok()) {
    return FinishedWith(ctx, std::move(refused));
  }
  const absl::Time received = absl::Now();
  // Decoding, admission, the gate and sealing run on a worker, as for
  // AppendBatch: measured better than on this callback thread (README
  // "Performance"). Finished from the committer thread once durable (or on
  // the worker when refused); the call, and so `req` and `resp`, lives until
  // Finish.
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  workers_->Post([this, reactor, req, resp, received] {
    absl::StatusOr<GatedEvent> event = AppendFromWire(*req);
    if (!event.ok()) {
      reactor->Finish(Answered("Append", event.status(), received));
      return;
    }
    std::vector<GatedEvent> one;
    one.push_back(*std::move(event));
    GateAppend(std::move(one),
               [this, reactor, resp, received](absl::StatusOr<std::vector<AppendResult>> result) {
                 if (result.ok()) ToWire((*result)[0], resp);
                 reactor->Finish(Answered("Append", result.status(), received));
               });
  });
  return reactor;
}

absl::Status LedgerServiceImpl::Admit() const {
  return options_.admit_appends ? options_.admit_appends() : absl::OkStatus();
}

void LedgerServiceImpl::GateAppend(std::vector<GatedEvent> events, Ledger::AppendCallback done) {
  if (absl::Status admit = Admit(); !admit.ok()) {
    done(std::move(admit));
    return;
  }
  gate_->Submit(std::move(events), std::move(done));
}

grpc::Status LedgerServiceImpl::Answered(absl::string_view method, const absl::Status& status,
                                         absl::Time received) const {
  if (options_.on_append) options_.on_append(method, status.code(), absl::Now() - received);
  return ToGrpcStatus(status);
}

grpc::ServerUnaryReactor* LedgerServiceImpl::AppendBatch(grpc::CallbackServerContext* ctx,
                                                         const v1::AppendBatchRequest* req,
                                                         v1::AppendBatchResponse* resp) {
  // Each event is authorized by the interceptor, in order.
  if (grpc::Status refused = AuthzVerdict(*ctx); !refused.ok()) {
    return FinishedWith(ctx, std::move(refused));
  }
  const absl::Time received = absl::Now();
  // Decoding, the gate and sealing run on a worker; the call (and so `req`
  // and `resp`) lives until Finish.
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  workers_->Post([this, reactor, req, resp, received] {
    absl::StatusOr<std::vector<GatedEvent>> events =
        BatchFromWire(*req, ledger_->options().max_batch_events);
    if (!events.ok()) {
      reactor->Finish(Answered("AppendBatch", events.status(), received));
      return;
    }
    GateAppend(*std::move(events),
               [this, reactor, resp, received](absl::StatusOr<std::vector<AppendResult>> results) {
                 if (results.ok()) {
                   for (const AppendResult& r : *results) ToWire(r, resp->add_results());
                 }
                 reactor->Finish(Answered("AppendBatch", results.status(), received));
               });
  });
  return reactor;
}

// One AppendStream call, pipelined: the stream may be read ahead of what
// has been gated (max_stream_read_ahead), so that reading, gating and
// committing overlap; gating and committing overlap always. Each request
// read is queued for the gating task of the stream, which runs on one of
// the service's workers and takes the queued requests in request order: it
// asks the interceptor's per-request decider (DeferRequestVerdicts: the
// decision is taken here rather than as the request is read, so that it
// sees the case state every earlier request of the stream leaves), decodes
// and admits the request, and queues it with the gate, one gate submission
// per request (a refusal stores nothing of that request and nothing after
// it). The next request is read while fewer than max_stream_read_ahead
// requests wait to be gated (or are being gated) and fewer than
// max_stream_in_flight are read and not yet answered; beyond that the
// stream is not read until the gating task catches up or the oldest answer
// is written. A
// request's outcome is written when it and every one before it are known,
// in request order, one write at a time. The first failure (a request that
// does not parse, is bad, refused or fails; a failed write; cancellation)
// stops reading and drops every request read but not yet gated (unstored,
// undecided, unanswered); the responses before it are written, appends
// already queued still land (their outcomes are not reported), and the call
// finishes with the failure once every queued append has its outcome, so
// that nothing is in flight when the call ends. On gRPC's callback threads
// this handler only reads and writes.
//
// Lifetime: gRPC calls OnDone after Finish; the gating task and the gate's
// callbacks (which run on the committer thread) hold references of their
// own (self_ is dropped in OnDone), so the reactor lives until the last of
// them returns. Neither touches ctx_ after the call is finished, and the
// decider is asked only for a request whose slot keeps the call open.
class LedgerServiceImpl::StreamReactor
    : public grpc::ServerBidiReactor<v1::AppendRequest, v1::AppendResponse>,
      public std::enable_shared_from_this<StreamReactor> {
 public:
  static StreamReactor* Start(LedgerServiceImpl* service, grpc::CallbackServerContext* ctx) {
    auto reactor = std::shared_ptr<StreamReactor>(new StreamReactor(service, ctx));
    reactor->self_ = reactor;
    // The interceptor decided on the caller before this handler ran; each
    // request is decided by the gating task (before the first read).
    grpc::Status refused = AuthzVerdict(*ctx);
    if (refused.ok()) {
      absl::StatusOr<RequestDecider> decider = DeferRequestVerdicts(*ctx);
      if (decider.ok()) {
        reactor->decider_ = *std::move(decider);
      } else {
        refused = ToGrpcStatus(decider.status());
      }
    }
    if (!refused.ok()) {
      reactor->Finish(std::move(refused));
      return reactor.get();
    }
    {
      absl::MutexLock lock(&reactor->mu_);
      reactor->reading_ = true;
    }
    MarkUnread(&reactor->request_);
    reactor->StartRead(&reactor->request_);
    return reactor.get();
  }

  void OnReadDone(bool ok) override {
    Read read;
    read.index = next_index_++;
    read.received = absl::Now();
    bool unparsed = false;
    absl::Status parse_error;
    if (ok) {
      read.request = std::make_unique<v1::AppendRequest>();
      read.request->Swap(&request_);
    } else if (!StillUnread(request_)) {
      unparsed = true;
      parse_error = absl::InvalidArgumentError(
          absl::StrCat("request ", read.index, ": not a valid protobuf message of type ",
                       v1::AppendRequest::descriptor()->full_name()));
    }
    Actions actions;
    bool post = false;
    {
      absl::MutexLock lock(&mu_);
      reading_ = false;
      if (reading_done_ || (!ok && !unparsed)) {
        // The client is done sending, or the stream already failed: a
        // request read after the failure is dropped.
        reading_done_ = true;
      } else if (unparsed) {
        // The requests read before it are still gated (they come first).
        reading_done_ = true;
        slots_.push_back(Slot{true, parse_error});
      } else {
        slots_.push_back(Slot{});
        queued_.push_back(std::move(read));
        if (!gating_) {
          gating_ = true;
          post = true;
        }
      }
      actions = Next();
    }
    if (unparsed) {
      (void)service_->Answered("AppendStream", parse_error, read.received);
    }
    if (post) {
      service_->workers_->Post([self = shared_from_this()] { self->GateQueued(); });
    }
    Run(actions);
  }

  void OnWriteDone(bool ok) override {
    Actions actions;
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (!ok) {
        if (failure_.ok()) failure_ = absl::CancelledError("client went away");
        reading_done_ = true;
        DropQueued("the client went away first");
      }
      actions = Next();
    }
    Run(actions);
  }

  void OnCancel() override {
    Actions actions;
    {
      absl::MutexLock lock(&mu_);
      reading_done_ = true;
      DropQueued("the client cancelled first");
      actions = Next();
    }
    Run(actions);
  }

  void OnDone() override {
    std::shared_ptr<StreamReactor> last = std::move(self_);  // may free this on return
  }

 private:
  struct Slot {
    bool done = false;
    absl::StatusOr<AppendResult> result = absl::UnknownError("pending");
  };
  // A request read and not yet queued with the gate.
  struct Read {
    uint64_t index = 0;
    absl::Time received;
    std::unique_ptr<v1::AppendRequest> request;
  };
  // What to do once mu_ is released.
  struct Actions {
    bool read = false;
    bool write = false;
    std::optional<grpc::Status> finish;
  };

  // The most requests the gating task takes in one run on a worker, so that
  // a busy stream does not hold a worker while other calls wait for one.
  static constexpr size_t kTurn = 32;

  StreamReactor(LedgerServiceImpl* service, grpc::CallbackServerContext* ctx)
      : service_(service),
        ctx_(ctx),
        max_in_flight_(service->options_.max_stream_in_flight),
        max_read_ahead_(std::max<size_t>(1, service->options_.max_stream_read_ahead)) {}

  // On a worker, the stream's one gating task: takes the queued requests in
  // order until none is left (the reader queues more meanwhile), at most
  // kTurn of them before it goes to the back of the workers' queue.
  void GateQueued() {
    for (size_t taken = 0;; ++taken) {
      Read read;
      {
        absl::MutexLock lock(&mu_);
        if (queued_.empty()) {
          gating_ = false;
          break;
        }
        if (taken == kTurn) {
          // Its turn is over: the tasks posted meanwhile (other streams,
          // batches, unary appends) go first.
          service_->workers_->Post([self = shared_from_this()] { self->GateQueued(); });
          return;
        }
        read = std::move(queued_.front());
        queued_.pop_front();
      }
      GateOne(std::move(read));
    }
    Actions actions;
    {
      absl::MutexLock lock(&mu_);
      actions = Next();
    }
    Run(actions);
  }

  // Decides, decodes and admits one request and queues it with the gate.
  void GateOne(Read read) {
    const uint64_t index = read.index;
    // The decision first, as the interceptor took it when it decided on
    // reading: it answers a malformed request as the decoder would,
    // recording nothing.
    absl::Status verdict = decider_(*read.request).status();
    absl::StatusOr<GatedEvent> event = AppendFromWire(*read.request);
    bool authorized = true;  // authorization's refusals are counted apart
    if (event.ok() && !verdict.ok()) {
      event = verdict;
      authorized = false;
    }
    // Admitted here rather than by GateAppend: a refusal names the request.
    if (event.ok()) {
      if (absl::Status admit = service_->Admit(); !admit.ok()) event = admit;
    }
    if (!event.ok()) {
      if (authorized) (void)service_->Answered("AppendStream", event.status(), read.received);
      Actions actions;
      {
        absl::MutexLock lock(&mu_);
        Fail(index, Prefixed(event.status(), absl::StrCat("request ", index, ": ")));
        actions = Next();
      }
      Run(actions);
      return;
    }
    std::vector<GatedEvent> one;
    one.push_back(*std::move(event));
    // `done` may run at once, on this thread, with a refusal; the next
    // request is then dropped, not gated.
    service_->gate_->Submit(std::move(one), [self = shared_from_this(), index,
                                             received = read.received](
                                                absl::StatusOr<std::vector<AppendResult>> r) {
      (void)self->service_->Answered("AppendStream", r.status(), received);
      Actions actions;
      {
        absl::MutexLock lock(&self->mu_);
        if (r.ok()) {
          Slot& slot = self->slots_[index - self->first_index_];
          slot.done = true;
          slot.result = (*r)[0];
        } else {
          self->Fail(index, r.status());
        }
        actions = self->Next();
      }
      self->Run(actions);
    });
  }

  // Request `index` failed: read no more, gate nothing more.
  void Fail(uint64_t index, absl::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Slot& slot = slots_[index - first_index_];
    slot.done = true;
    slot.result = std::move(status);
    reading_done_ = true;
    DropQueued(absl::StrCat("request ", index, " failed first"));
  }

  // Drops every request read and not yet gated: each is unstored and, as
  // it comes after the failure, unanswered.
  void DropQueued(absl::string_view why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (const Read& read : queued_) {
      Slot& slot = slots_[read.index - first_index_];
      slot.done = true;
      slot.result =
          absl::CancelledError(absl::StrCat("request ", read.index, ": not appended, ", why));
    }
    queued_.clear();
  }

  // Takes the outcomes now known off the front, in order, and decides the
  // next read, write or finish.
  Actions Next() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Actions actions;
    while (!writing_ && !slots_.empty() && slots_.front().done) {
      Slot slot = std::move(slots_.front());
      slots_.pop_front();
      ++first_index_;
      if (!slot.result.ok() && failure_.ok()) {
        failure_ = slot.result.status();
        reading_done_ = true;
      }
      // After a failure, later appends still land (they were accepted);
      // their outcomes are not reported.
      if (!failure_.ok()) continue;
      response_.Clear();
      ToWire(*slot.result, &response_);
      writing_ = true;
      actions.write = true;
    }
    // Requests read and not yet taken by the gating task, plus the one it
    // may be gating, count against the read-ahead.
    if (!reading_done_ && !reading_ && slots_.size() < max_in_flight_ &&
        queued_.size() + (gating_ ? 1 : 0) < max_read_ahead_) {
      reading_ = true;
      actions.read = true;
    }
    // A read still pending after a failure completes (not ok) once the call
    // is finished; nothing waits for it.
    if (reading_done_ && slots_.empty() && !writing_ && !finished_) {
      finished_ = true;
      actions.finish = ctx_->IsCancelled()
                           ? grpc::Status(grpc::StatusCode::CANCELLED, "client cancelled")
                           : ToGrpcStatus(failure_);
    }
    return actions;
  }

  // Finish last: after it the call may end (OnDone) on another thread.
  void Run(const Actions& actions) {
    if (actions.write) StartWrite(&response_);
    if (actions.read) {
      MarkUnread(&request_);
      StartRead(&request_);
    }
    if (actions.finish.has_value()) Finish(*actions.finish);
  }

  LedgerServiceImpl* const service_;
  grpc::CallbackServerContext* const ctx_;
  const size_t max_in_flight_;
  const size_t max_read_ahead_;
  std::shared_ptr<StreamReactor> self_;  // until OnDone
  // Set in Start, before the first read; then only read, by the gating task.
  RequestDecider decider_;
  // Only the reader touches request_ and next_index_ (one read at a time);
  // only the writer response_ (one write at a time).
  v1::AppendRequest request_;
  v1::AppendResponse response_;
  uint64_t next_index_ = 0;  // the index of the next request read

  absl::Mutex mu_;
  std::deque<Slot> slots_ ABSL_GUARDED_BY(mu_);  // requests [first_index_, ...) in flight
  std::deque<Read> queued_ ABSL_GUARDED_BY(mu_);  // read, not yet taken by the gating task
  uint64_t first_index_ ABSL_GUARDED_BY(mu_) = 0;
  bool reading_ ABSL_GUARDED_BY(mu_) = false;       // a read is pending
  bool reading_done_ ABSL_GUARDED_BY(mu_) = false;  // no more reads
  bool gating_ ABSL_GUARDED_BY(mu_) = false;        // the gating task is posted or running
  bool writing_ ABSL_GUARDED_BY(mu_) = false;       // a write is pending
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status failure_ ABSL_GUARDED_BY(mu_);
};

grpc::ServerBidiReactor<v1::AppendRequest, v1::AppendResponse>* LedgerServiceImpl::AppendStream(
    grpc::CallbackServerContext* ctx) {
  // The interceptor decides on the caller first; the stream's gating task
  // decides each request (DeferRequestVerdicts).
  return StreamReactor::Start(this, ctx);
}

absl::Status LedgerServiceImpl::WriteRecord(v1::Record record,
                                            grpc::ServerWriter<v1::Record>* writer,
                                            bool commitments_only) {
  // The auditor can export the commitments (BUNDLE.md commitments-only
  // mode). The server opened the case and event ids from the leaf's stream
  // tag and box (ledger/BLINDING.md): without a grant they stay closed, as
  // in the leaf.
  if (commitments_only) CL_RETURN_IF_ERROR(ToCommitmentsOnly(&record));
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
