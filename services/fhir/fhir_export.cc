#include "services/fhir/fhir_export.h"

#include "absl/strings/str_cat.h"
#include "ledger/internal/status_macros.h"
#include "services/append/event_codec.h"
#include "services/fhir/fhir_bundle.h"

namespace caseledger {
namespace {

absl::Time TimeOf(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

}  // namespace

absl::Status CheckExportFhirRequest(const v1::ExportFhirRequest& req) {
  if (req.subject_id().empty()) return absl::InvalidArgumentError("subject_id: must not be empty");
  if (req.has_from() && req.has_until() && TimeOf(req.from()) >= TimeOf(req.until())) {
    return absl::InvalidArgumentError(
        absl::StrCat("from: got ", absl::FormatTime(TimeOf(req.from())),
                     ", want before until (", absl::FormatTime(TimeOf(req.until())), ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<FhirExportResult> ExportFhir(const Ledger& ledger, const v1::ExportFhirRequest& req,
                                            absl::Time produced_at) {
  CL_RETURN_IF_ERROR(CheckExportFhirRequest(req));
  CL_ASSIGN_OR_RETURN(SubjectHistory h, ledger.History(req.subject_id()));
  FhirExportResult out;
  CL_ASSIGN_OR_RETURN(std::vector<RecordView> views, ledger.ReadMany(h.seqs));
  std::vector<v1::Record> records;
  records.reserve(views.size());
  const View view = req.full_view() ? View::kFull : View::kClientView;
  for (const RecordView& v : views) {
    if (!req.case_id().empty() && v.record.stream_id != req.case_id()) continue;
    if (req.has_until() &&
        absl::FromUnixMicros(v.record.occurred_at_micros) >= TimeOf(req.until())) {
      continue;
    }
    CL_ASSIGN_OR_RETURN(v1::Record wire, ToWireRecord(v, view));
    out.reads.emplace_back(v.record.stream_id, v.record.seq);
    records.push_back(std::move(wire));
  }
  FhirBundleOptions options;
  options.origin = ledger.options().origin;
  options.searchset = req.searchset();
  options.produced_at = absl::FromUnixSeconds(absl::ToUnixSeconds(produced_at));
  if (req.has_from()) options.emit_from = TimeOf(req.from());
  CL_ASSIGN_OR_RETURN(nlohmann::ordered_json bundle, FhirBundle(records, options));
  out.response.set_as_of_size(h.checkpoint.size);
  out.response.set_records_read(static_cast<uint32_t>(records.size()));
  out.response.set_resources(static_cast<uint32_t>(bundle["entry"].size()));
  out.response.set_bundle_json(bundle.dump(2));
  return out;
}

}  // namespace caseledger
