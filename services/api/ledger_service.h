// LedgerService: thin gRPC handlers over caseledger::Ledger. Each handler
// checks the request, calls the ledger, and converts the status once.
#ifndef CASELEDGER_SERVICES_API_LEDGER_SERVICE_H_
#define CASELEDGER_SERVICES_API_LEDGER_SERVICE_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "ledger/checkpoint.h"
#include "ledger/ledger.h"
#include "proto/ledger.grpc.pb.h"
#include "services/append/case_gate.h"

namespace caseledger {

struct LedgerServiceOptions {
  // At most this many requests of a producer stream may be read and not yet
  // answered (waiting to be gated, for durability, or to be written) before
  // the server stops reading from it.
  size_t max_stream_in_flight = 8192;
  // At most this many requests of a producer stream may be read and not yet
  // queued with the gate: how far a stream is read ahead of the gate. 1:
  // the next request is read once the ones before are queued (measured best
  // under load, README "AppendStream pipelined"); more overlaps reading with
  // gating. At least 1.
  size_t max_stream_read_ahead = 1;
  // Threads that run the handler work of Append, AppendBatch and
  // AppendStream (decoding, admission, AppendStream's per-request
  // authorization, the gate's checks, sealing, queueing) off gRPC's
  // callback threads. 0: one per hardware thread, at least 2.
  size_t append_workers = 0;
  // How often a live subscriber re-checks for cancellation while idle.
  absl::Duration subscribe_poll = absl::Milliseconds(500);
  // Optional: asked before each producer append (Append, AppendBatch, each
  // AppendStream request) is gated; an error refuses it with that status and
  // queues nothing (the integrity alarm, services/metrics/integrity.h).
  std::function<absl::Status()> admit_appends;
  // Optional: told each authorized producer append's method, outcome and
  // time from receipt to answer (services/metrics/server_metrics.h). Quick;
  // may run on the ledger's committer thread.
  std::function<void(absl::string_view method, absl::StatusCode code, absl::Duration latency)>
      on_append;
};

// The producer appends (Append, AppendBatch, AppendStream) use gRPC's
// callback API: a handler queues its events with the gate (CaseGate::Submit)
// and returns; the ledger's committer thread finishes the call once the
// commit is durable. No thread waits for a commit, and a stream holds no
// thread between its messages. All three hand the work (decoding,
// admission, the gate, sealing) to a few worker threads of the service
// (LedgerServiceOptions::append_workers), so that none of that runs on, or
// waits for a case lock on, gRPC's few callback threads. (The authorization
// interceptor's decision on a unary call, which looks the case up through
// the gate, still runs there; AppendStream's per-request decisions run on
// the workers, DeferRequestVerdicts.) AppendStream may read ahead of the
// gate (max_stream_read_ahead). The other methods are synchronous handlers.
using LedgerServiceBase = v1::LedgerService::WithCallbackMethod_Append<
    v1::LedgerService::WithCallbackMethod_AppendBatch<
        v1::LedgerService::WithCallbackMethod_AppendStream<v1::LedgerService::Service>>>;

// Thread-safe. `ledger`, `gate` and `signer` are borrowed and must outlive the
// service. Every append goes through `gate` (the confidentiality policy).
// Every call is authorized by the AuthzInterceptorFactory
// (authz_interceptor.h), whose verdict each handler returns first; without
// it every call is refused INTERNAL.
class LedgerServiceImpl final : public LedgerServiceBase {
 public:
  LedgerServiceImpl(Ledger* ledger, CaseGate* gate, const NoteSigner* signer,
                    LedgerServiceOptions options = LedgerServiceOptions());
  ~LedgerServiceImpl() override;

  // Ends every live Subscribe so that the server can shut down.
  void StopStreams();

  grpc::ServerUnaryReactor* Append(grpc::CallbackServerContext* ctx, const v1::AppendRequest* req,
                                   v1::AppendResponse* resp) override;
  grpc::ServerUnaryReactor* AppendBatch(grpc::CallbackServerContext* ctx,
                                        const v1::AppendBatchRequest* req,
                                        v1::AppendBatchResponse* resp) override;
  grpc::ServerBidiReactor<v1::AppendRequest, v1::AppendResponse>* AppendStream(
      grpc::CallbackServerContext* ctx) override;
  grpc::Status ReadStream(grpc::ServerContext* ctx, const v1::ReadStreamRequest* req,
                          grpc::ServerWriter<v1::Record>* writer) override;
  grpc::Status ReadLog(grpc::ServerContext* ctx, const v1::ReadLogRequest* req,
                       grpc::ServerWriter<v1::Record>* writer) override;
  grpc::Status Subscribe(grpc::ServerContext* ctx, const v1::SubscribeRequest* req,
                         grpc::ServerWriter<v1::Record>* writer) override;
  grpc::Status GetCheckpoint(grpc::ServerContext* ctx, const v1::GetCheckpointRequest* req,
                             v1::Checkpoint* resp) override;
  grpc::Status GetInclusionProof(grpc::ServerContext* ctx, const v1::InclusionProofRequest* req,
                                 v1::InclusionProof* resp) override;
  grpc::Status GetConsistencyProof(grpc::ServerContext* ctx, const v1::ConsistencyProofRequest* req,
                                   v1::ConsistencyProof* resp) override;
  grpc::Status GetPublicKey(grpc::ServerContext* ctx, const v1::GetPublicKeyRequest* req,
                            v1::PublicKey* resp) override;
  grpc::Status ListCheckpoints(grpc::ServerContext* ctx, const v1::ListCheckpointsRequest* req,
                               grpc::ServerWriter<v1::Checkpoint>* writer) override;

 private:
  class StreamReactor;  // one AppendStream call
  class Workers;        // the append worker threads

  // options_.admit_appends, or OK without one.
  absl::Status Admit() const;
  // The producer append path: Admit, then the gate.
  // `done` runs once, with the refusal (on this thread) or once the outcome
  // is durable (on the ledger's committer thread).
  void GateAppend(std::vector<GatedEvent> events, Ledger::AppendCallback done);
  // Tells options_.on_append and converts `status` for the caller.
  grpc::Status Answered(absl::string_view method, const absl::Status& status,
                        absl::Time received) const;

  // Writes records [from, to) to `writer`; stops early when the client goes.
  // With `commitments_only`, records go without event, ids and openings
  // (the payload keeps its field commitments only).
  absl::Status WriteRange(grpc::ServerContext* ctx, uint64_t from, uint64_t to,
                          grpc::ServerWriter<v1::Record>* writer, bool commitments_only);

  Ledger* const ledger_;
  CaseGate* const gate_;
  const NoteSigner* const signer_;
  const LedgerServiceOptions options_;
  uint64_t listener_ = 0;  // the ledger commit listener's handle

  // A live Subscribe's share of the commit feed: batches queued by the
  // committer thread, at most kMaxQueuedRecords records; beyond that they
  // are dropped and the subscriber reads them from the store.
  struct Subscriber {
    std::deque<std::shared_ptr<const CommittedBatch>> queue;
    size_t records = 0;
  };
  static constexpr size_t kMaxQueuedRecords = 16384;
  // Writes the records [from, to) of `batches` (which cover that range).
  absl::Status WriteFromFeed(grpc::ServerContext* ctx, uint64_t from, uint64_t to,
                             const std::vector<std::shared_ptr<const CommittedBatch>>& batches,
                             grpc::ServerWriter<v1::Record>* writer, bool commitments_only);
  static absl::Status WriteRecord(v1::Record record, grpc::ServerWriter<v1::Record>* writer,
                                  bool commitments_only);

  absl::Mutex mu_;
  uint64_t committed_ ABSL_GUARDED_BY(mu_);  // tree size after the last commit
  std::set<Subscriber*> subscribers_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;

  // Last: destroyed first, running every task still queued (each finishes
  // its call) before the members above go.
  std::unique_ptr<Workers> workers_;
};

}  // namespace caseledger

#endif  // CASELEDGER_SERVICES_API_LEDGER_SERVICE_H_
