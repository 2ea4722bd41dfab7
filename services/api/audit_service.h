// WitnessService (collects witness cosignatures of this log's checkpoints and
// serves cosigned checkpoints) and AuditService (server-side range
// verification and monitoring gauges, with an optional background verifier).
// Formats: ledger/COSIGNATURE.md.
#ifndef CASELEDGER_SERVICES_API_AUDIT_SERVICE_H_
#define CASELEDGER_SERVICES_API_AUDIT_SERVICE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "ledger/checkpoint.h"
#include "ledger/clock.h"
#include "ledger/cosignature.h"
#include "ledger/ledger.h"
#include "proto/audit.grpc.pb.h"

namespace caseledger {

// Thread-safe. `ledger` is borrowed and must outlive the service.
class WitnessServiceImpl final : public v1::WitnessService::Service {
 public:
  // `witnesses`: the cosignature verifiers this server accepts lines from.
  // `clock` is borrowed (null: the real clock); cosignatures dated more than
  // `max_future` after it are refused.
  WitnessServiceImpl(Ledger* ledger, std::vector<CosignatureVerifier> witnesses,
                     const Clock* clock = nullptr, absl::Duration max_future = absl::Minutes(10));

  grpc::Status AddCosignature(grpc::ServerContext* ctx, const v1::AddCosignatureRequest* req,
                              v1::AddCosignatureResponse* resp) override;
  grpc::Status GetCosignedCheckpoint(grpc::ServerContext* ctx,
                                     const v1::GetCosignedCheckpointRequest* req,
                                     v1::CosignedCheckpoint* resp) override;
  grpc::Status GetSubjectTransition(
      grpc::ServerContext* ctx, const v1::SubjectTransitionRequest* req,
      grpc::ServerWriter<v1::SubjectTransitionChunk>* writer) override;

  // The chunks of GetSubjectTransition for `t`, each under `max_bytes`
  // (plus one record, which is far smaller), passed to `write` in order
  // until it returns false.
  static void ChunkTransition(const PublishedTransition& t, size_t max_bytes,
                              const std::function<bool(v1::SubjectTransitionChunk&)>& write);

  // The checks and the write behind AddCosignature, without gRPC.
  absl::StatusOr<v1::AddCosignatureResponse> Add(absl::string_view note);
  // The stored checkpoint at `size` with its collected lines appended.
  absl::StatusOr<v1::CosignedCheckpoint> Cosigned(uint64_t size) const;
  size_t witness_count() const { return witnesses_.size(); }

 private:
  Ledger* const ledger_;
  const std::vector<CosignatureVerifier> witnesses_;
  const Clock& clock_;
  const absl::Duration max_future_;
  // Serializes read-compare-write of one witness's line, so that an older
  // cosignature never replaces a newer one.
  absl::Mutex write_mu_;
};

struct AuditServiceOptions {
  // Checks checkpoint signatures; borrowed, must outlive the service.
  const NoteVerifier* note_verifier = nullptr;
  std::string origin;
  // The background verifier runs this often (zero: no background verifier)
  // and checks at most `verify_chunk` records per round.
  absl::Duration verify_interval = absl::ZeroDuration();
  uint64_t verify_chunk = 1 << 20;
  // Borrowed; null: the real clock.
  const Clock* clock = nullptr;
  // Optional: called with the first damaged record's seq and the check's
  // message when a check finds damage: the background verifier (once, on
  // its thread) or a VerifyRange call (on the caller's thread). The
  // integrity alarm, services/metrics/integrity.h.
  std::function<void(uint64_t seq, const std::string& message)> on_damage;
};

// Thread-safe. `ledger` and `witness` (may be null) are borrowed and must
// outlive the service.
class AuditServiceImpl final : public v1::AuditService::Service {
 public:
  AuditServiceImpl(Ledger* ledger, const WitnessServiceImpl* witness, AuditServiceOptions options);
  // Stops the background verifier.
  ~AuditServiceImpl() override;

  // Starts the background verifier if options.verify_interval > 0.
  void Start();
  // Stops it and waits for its thread. Idempotent.
  void Stop();
  // One round of background verification, on the calling thread (tests).
  void VerifyOnce();

  grpc::Status VerifyRange(grpc::ServerContext* ctx, const v1::VerifyRangeRequest* req,
                           v1::VerifyRangeResponse* resp) override;
  grpc::Status GetMetrics(grpc::ServerContext* ctx, const v1::GetMetricsRequest* req,
                          v1::LedgerMetrics* resp) override;

  absl::StatusOr<v1::LedgerMetrics> Metrics() const;

 private:
  // Seconds from the commit time of record `seq` to now.
  absl::StatusOr<double> RecordAge(uint64_t seq) const;
  void Loop();

  Ledger* const ledger_;
  const WitnessServiceImpl* const witness_;
  const AuditServiceOptions options_;
  const Clock& clock_;

  mutable absl::Mutex mu_;
  uint64_t verified_size_ ABSL_GUARDED_BY(mu_) = 0;
  bool failed_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t first_bad_seq_ ABSL_GUARDED_BY(mu_) = 0;
  std::string failure_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Serializes verification rounds (the thread and VerifyOnce callers).
  absl::Mutex round_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  std::thread thread_;
};

}  // namespace caseledger

#endif  // CASELEDGER_SERVICES_API_AUDIT_SERVICE_H_
