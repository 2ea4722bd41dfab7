#include "services/authz/request_resources.h"

#include <google/protobuf/descriptor.h>

#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "ledger/internal/status_macros.h"
#include "services/append/event_codec.h"

namespace caseledger {
namespace {

// The first of `names` that is a top-level string field of `m`.
std::string StringField(const google::protobuf::Message& m,
                        std::initializer_list<const char*> names) {
  for (const char* name : names) {
    const google::protobuf::FieldDescriptor* f = m.GetDescriptor()->FindFieldByName(name);
    if (f != nullptr && !f->is_repeated() &&
        f->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_STRING) {
      return m.GetReflection()->GetString(m, f);
    }
  }
  return "";
}

// The top-level uint64 field `name` of `m`, when it has one.
std::optional<uint64_t> Uint64Field(const google::protobuf::Message& m, const char* name) {
  const google::protobuf::FieldDescriptor* f = m.GetDescriptor()->FindFieldByName(name);
  if (f == nullptr || f->is_repeated() ||
      f->cpp_type() != google::protobuf::FieldDescriptor::CPPTYPE_UINT64) {
    return std::nullopt;
  }
  return m.GetReflection()->GetUInt64(m, f);
}

absl::Status Prefixed(const absl::Status& s, absl::string_view prefix) {
  if (s.ok()) return s;
  return absl::Status(s.code(), absl::StrCat(prefix, s.message()));
}

}  // namespace

std::vector<Resource> ResourcesOf(const google::protobuf::Message& request) {
  Resource r;
  if (const auto* append = dynamic_cast<const v1::AppendRequest*>(&request)) {
    if (append->has_event()) r.event = &append->event();
    return {r};
  }
  if (const auto* batch = dynamic_cast<const v1::AppendBatchRequest*>(&request)) {
    std::vector<Resource> out;
    std::map<std::string, std::string> opened;
    for (const v1::AppendRequest& req : batch->requests()) {
      const v1::Event& e = req.event();
      Resource each;
      each.event = &e;
      auto it = opened.find(e.stream_id());
      if (it != opened.end()) each.opened_program = it->second;
      if (e.has_case_opened()) opened.emplace(e.stream_id(), e.case_opened().program());
      out.push_back(std::move(each));
    }
    if (out.empty()) out.push_back(r);
    return out;
  }
  if (const auto* list = dynamic_cast<const v1::ListCasesRequest*>(&request)) {
    r.manager_id = list->manager_id();
    r.whole_log = list->manager_id().empty();
    return {r};
  }
  if (dynamic_cast<const v1::ReadLogRequest*>(&request) != nullptr ||
      dynamic_cast<const v1::SubscribeRequest*>(&request) != nullptr) {
    r.whole_log = true;
    return {r};
  }
  r.client_id = StringField(request, {"client_id", "subject_id"});
  r.case_id = StringField(request, {"case_id", "stream_id"});
  // One record named by its seq (AccessService.ReadRecord).
  r.record_seq = Uint64Field(request, "seq");
  return {r};
}

absl::Status CheckFormBeforeAuthz(const google::protobuf::Message& request,
                                  size_t max_batch_events) {
  if (const auto* append = dynamic_cast<const v1::AppendRequest*>(&request)) {
    return AppendFromWire(*append).status();
  }
  if (const auto* batch = dynamic_cast<const v1::AppendBatchRequest*>(&request)) {
    return BatchFromWire(*batch, max_batch_events).status();
  }
  if (const auto* read = dynamic_cast<const v1::ReadStreamRequest*>(&request)) {
    return CheckForm(*read);
  }
  if (const auto* get = dynamic_cast<const v1::GetCaseRequest*>(&request)) return CheckForm(*get);
  if (const auto* accounting = dynamic_cast<const v1::GetAccountingRequest*>(&request)) {
    return CheckForm(*accounting);
  }
  return absl::OkStatus();
}

absl::StatusOr<GatedEvent> AppendFromWire(const v1::AppendRequest& req) {
  if (!req.has_event()) return absl::InvalidArgumentError("event: must be set");
  CL_ASSIGN_OR_RETURN(Event event, ToLedgerEvent(req.event()));
  GatedEvent out{req.event(), {std::move(event), std::nullopt}};
  if (req.has_expected_version()) out.request.expected_version = req.expected_version();
  return out;
}

absl::StatusOr<std::vector<GatedEvent>> BatchFromWire(const v1::AppendBatchRequest& req,
                                                      size_t max_events) {
  if (req.requests_size() == 0) return absl::InvalidArgumentError("requests: must not be empty");
  if (static_cast<size_t>(req.requests_size()) > max_events) {
    return absl::InvalidArgumentError(
        absl::StrCat("requests: got ", req.requests_size(), " events, want at most ", max_events));
  }
  std::vector<GatedEvent> events;
  events.reserve(req.requests_size());
  for (int i = 0; i < req.requests_size(); ++i) {
    absl::StatusOr<GatedEvent> e = AppendFromWire(req.requests(i));
    if (!e.ok()) return Prefixed(e.status(), absl::StrCat("requests[", i, "]."));
    events.push_back(*std::move(e));
  }
  return events;
}

absl::Status CheckForm(const v1::ReadStreamRequest& req) {
  if (req.stream_id().empty()) return absl::InvalidArgumentError("stream_id: must not be empty");
  return absl::OkStatus();
}

absl::Status CheckForm(const v1::GetCaseRequest& req) {
  if (req.case_id().empty()) return absl::InvalidArgumentError("case_id: must not be empty");
  return absl::OkStatus();
}

absl::Status CheckForm(const v1::GetAccountingRequest& req) {
  if (req.client_id().empty()) return absl::InvalidArgumentError("client_id: must not be empty");
  // The 42 CFR 2.24 list names its request and case, and nothing of the
  // HIPAA accounting's query.
  if (req.case_id().empty() != req.part2_list_request_id().empty()) {
    return absl::InvalidArgumentError(
        req.case_id().empty()
            ? "case_id: must not be empty when part2_list_request_id is set"
            : "part2_list_request_id: must not be empty when case_id is set");
  }
  if (!req.part2_list_request_id().empty() &&
      (req.has_window_start() || req.has_window_end() || req.include_excluded() ||
       req.summarize())) {
    return absl::InvalidArgumentError(
        "part2_list_request_id: window_start, window_end, include_excluded and summarize must "
        "be unset (the 42 CFR 2.24 list has its own window)");
  }
  return absl::OkStatus();
}

}  // namespace caseledger
