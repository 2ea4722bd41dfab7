// What each request names for authorization (authz.h Resource), and the
// checks of its form that come before authorization: a malformed request is
// answered INVALID_ARGUMENT naming the field, and nothing is recorded
// (AUTHZ.md). The authorization interceptor and the handlers both use these,
// so each rule is written once.
#ifndef CASELEDGER_SERVICES_API_REQUEST_RESOURCES_H_
#define CASELEDGER_SERVICES_API_REQUEST_RESOURCES_H_

#include <google/protobuf/message.h>

#include <cstddef>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/cases.pb.h"
#include "proto/ledger.pb.h"
#include "services/authz/authz.h"
#include "services/append/case_gate.h"

namespace caseledger {

// What `request` (of any caseledger method) touches: one Resource, or one
// per event of an AppendBatchRequest, in order (a case opened earlier in the
// batch has the program its case_opened names). Never empty. The Resources
// point into `request`, which must outlive them.
//   AppendRequest: the event; AppendBatchRequest: each event;
//   ListCasesRequest: manager_id (the whole log when empty);
//   ReadLogRequest, SubscribeRequest: the whole log;
//   any other: the top-level fields client_id (or subject_id), case_id (or
//   stream_id) and seq, by name.
std::vector<Resource> ResourcesOf(const google::protobuf::Message& request);

// The form checks of `request` that its handler answers before
// authorization; OK for request types that have none.
absl::Status CheckFormBeforeAuthz(const google::protobuf::Message& request,
                                  size_t max_batch_events);

// The event of an append request in its gate form; INVALID_ARGUMENT naming
// the field.
absl::StatusOr<GatedEvent> AppendFromWire(const v1::AppendRequest& req);
// Every event of a batch (1 to `max_events`); INVALID_ARGUMENT naming the
// request ("requests[2].event.body: ...").
absl::StatusOr<std::vector<GatedEvent>> BatchFromWire(const v1::AppendBatchRequest& req,
                                                      size_t max_events);
absl::Status CheckForm(const v1::ReadStreamRequest& req);
absl::Status CheckForm(const v1::GetCaseRequest& req);
absl::Status CheckForm(const v1::GetAccountingRequest& req);

}  // namespace caseledger

#endif  // CASELEDGER_SERVICES_API_REQUEST_RESOURCES_H_
