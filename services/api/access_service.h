// AccessService: a client's complete, verifiable, redacted record history
// (HISTORY_BUNDLE.md), single-record reads, and the report of who read a
// client's records. Every read of record content is recorded first, as
// record_accessed events naming the subjects whose records were read; no
// content leaves without its access event being durable.
#ifndef CASELEDGER_SERVICES_API_ACCESS_SERVICE_H_
#define CASELEDGER_SERVICES_API_ACCESS_SERVICE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "ledger/clock.h"
#include "ledger/ledger.h"
#include "proto/access.grpc.pb.h"
#include "services/append/case_gate.h"
#include "services/history/history_bundle.h"

namespace caseledger {

// Fills `out`'s payload_commitments, revealed and withheld fields from a
// stored record (HISTORY_BUNDLE.md "Redaction"): every field's commitment;
// the opening of each field shown; for each other field, the reason.
// Openings come from the payload itself (plaintext) or from `view.openings`
// (sealed, opened by Ledger::Read). A sealed record whose keys were
// destroyed (`view.erased`) shows no field: protected ones are withheld as
// protected details, the others for `destroyed` (kKeysDestroyed when null).
// Protected fields are withheld unless `reveal_protected`. Sets neither seq
// nor leaf.
//  DATA_LOSS: the payload does not decode or does not match its commitment.
//  FAILED_PRECONDITION: a sealed payload the ledger did not open (no cipher).
absl::Status RevealPayload(const RecordView& view, bool reveal_protected,
                           const DestroyedContent* destroyed, v1::HistoryRecord* out);

// Moves the revealed fields of `r` (its payload_commitments already set) to
// `withheld` as WITHHELD_SUSPENDED with `by_seq`, the accounting_suspended
// record in force (HISTORY_BUNDLE.md "Redaction", reason 6); the suspension
// record itself (by_seq = its own seq) keeps kShownWhileSuspended.
//  DATA_LOSS: payload_commitments do not decode.
absl::Status WithholdWhileSuspended(uint64_t by_seq, v1::HistoryRecord* r);

// The bundle of `subject_id` at the ledger's latest checkpoint (client view:
// protected fields withheld; erased records with the reason), its note with
// every stored cosignature, a consistency proof from `since_size` when it is
// non-zero, and the accounting derived from its records as of
// `produced_at` (truncated to the second). Codes as Ledger::History;
// INVALID_ARGUMENT for a since_size beyond the checkpoint. Does not record
// the access.
absl::StatusOr<v1::HistoryBundle> BuildHistoryBundle(const Ledger& ledger,
                                                     absl::string_view subject_id,
                                                     uint64_t since_size, absl::Time produced_at);

struct AccessServiceOptions {
  const Clock* clock = nullptr;  // borrowed; null = Clock::Real()
  // The producer named on the access events this service appends.
  std::string producer = "caseledger/access-service";
  // The authenticated caller of a call as (id, role), when the server knows
  // one (mutual TLS). It replaces the id and role the request's `accessor`
  // claims, so the access log names who really read. Unset, or nullopt for a
  // call: the request's accessor is taken as given (plaintext loopback).
  std::function<std::optional<std::pair<std::string, std::string>>(const grpc::ServerContext&)>
      authenticated;
};

// Thread-safe. Everything passed in is borrowed and must outlive the
// service.
class AccessServiceImpl final : public v1::AccessService::Service {
 public:
  AccessServiceImpl(Ledger* ledger, CaseGate* gate,
                    AccessServiceOptions options = AccessServiceOptions());

  grpc::Status GetRecordHistory(grpc::ServerContext* ctx, const v1::GetRecordHistoryRequest* req,
                                v1::HistoryBundle* resp) override;
  grpc::Status ReadRecord(grpc::ServerContext* ctx, const v1::ReadRecordRequest* req,
                          v1::ReadRecordResponse* resp) override;
  grpc::Status GetAccessReport(grpc::ServerContext* ctx, const v1::GetAccessReportRequest* req,
                               v1::AccessReport* resp) override;
  grpc::Status ExportFhir(grpc::ServerContext* ctx, const v1::ExportFhirRequest* req,
                          v1::FhirExport* resp) override;

  // The gRPC-free bodies of the handlers above.
  absl::StatusOr<v1::HistoryBundle> GetRecordHistory(const v1::GetRecordHistoryRequest& req);
  absl::StatusOr<v1::ReadRecordResponse> ReadRecord(const v1::ReadRecordRequest& req);
  absl::StatusOr<v1::AccessReport> GetAccessReport(const v1::GetAccessReportRequest& req);
  // services/fhir/FHIR.md: a checkpoint is signed first, so the export
  // covers every record so far; the records read are recorded first.
  absl::StatusOr<v1::FhirExport> ExportFhir(const v1::ExportFhirRequest& req);

 private:
  // Replaces the accessor's id and role with the authenticated caller's.
  void Authenticate(const grpc::ServerContext& ctx, v1::Accessor* accessor) const;
  // One record that was read: its case and seq.
  struct Read {
    std::string stream_id;
    uint64_t seq;
  };
  // Appends (durably) one record_accessed event per case read, naming
  // `subjects`, and the events in `also`, as one all-or-nothing batch
  // through the gate. Nothing is appended when both are empty.
  absl::Status RecordAccess(const v1::Accessor& accessor, const std::vector<std::string>& subjects,
                            const std::vector<Read>& reads, std::vector<GatedEvent> also = {});
  std::string NewEventId(absl::string_view kind);

  Ledger* const ledger_;
  CaseGate* const gate_;
  const AccessServiceOptions options_;
  const Clock& clock_;
  std::atomic<uint64_t> next_event_ = 0;
};

}  // namespace caseledger

#endif  // CASELEDGER_SERVICES_API_ACCESS_SERVICE_H_
