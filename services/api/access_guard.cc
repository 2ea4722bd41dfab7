#include "services/api/access_guard.h"

#include <cstdio>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "services/api/event_codec.h"

namespace caseledger {

absl::StatusOr<CaseFacts> GateCaseDirectory::Facts(const std::string& case_id) {
  CaseFacts facts;
  // The server's own streams are not cases; folding one (it grows with every
  // refusal) into the gate's cache would cost a scan of it.
  if (!case_id.empty() && case_id[0] == '@') return facts;
  absl::Status s = gate_->Inspect(case_id, [&facts](const CaseState& state) {
    facts.exists = state.status != CaseStatus::kNotOpened;
    facts.program = state.program;
    facts.manager_id = state.manager_id;
    for (const Conflict* c : state.OpenConflicts()) facts.conflicted.insert(c->declared_by);
    for (const auto& [id, p] : state.participants) {
      if (p.role == v1::PARTICIPANT_ROLE_CLIENT) facts.clients.push_back(id);
    }
  });
  if (!s.ok()) return s;
  return facts;
}

absl::StatusOr<RecordFacts> LedgerRecordDirectory::Facts(uint64_t seq) {
  absl::StatusOr<RecordView> view = ledger_->Read(seq);
  if (!view.ok()) return view.status();
  RecordFacts facts;
  facts.case_id = std::move(view->record.stream_id);
  facts.subject_ids = std::move(view->record.subject_ids);
  return facts;
}

AccessGuard::AccessGuard(Authorizer* authz, CaseDirectory* cases, CaseGate* gate, Ledger* ledger,
                         AccessGuardOptions options)
    : authz_(authz), cases_(cases), gate_(gate), ledger_(ledger), options_(options) {}

absl::StatusOr<Principal> AccessGuard::Identify(const grpc::ServerContextBase* ctx) const {
  std::shared_ptr<const grpc::AuthContext> auth = ctx->auth_context();
  return PrincipalOf(auth.get(), options_.insecure_loopback);
}

absl::StatusOr<Decision> AccessGuard::Admit(const grpc::ServerContextBase* ctx,
                                            absl::string_view method, const Resource& resource) {
  absl::StatusOr<Principal> who = Identify(ctx);
  if (!who.ok()) {
    // Recorded under a placeholder id: the caller could not be named.
    RecordRefusal(Principal{Role::kClient, "unidentified"}, method, resource, who.status());
    return who.status();
  }
  return AdmitAs(*who, method, resource);
}

absl::StatusOr<Decision> AccessGuard::AdmitAs(const Principal& who, absl::string_view method,
                                              const Resource& resource) {
  absl::StatusOr<Decision> d = authz_->Check(who, method, resource);
  if (!d.ok()) {
    if (d.status().code() == absl::StatusCode::kPermissionDenied) {
      RecordRefusal(who, method, resource, d.status());
    }
    return d.status();
  }
  if (d->record_access) {
    absl::Status recorded = RecordAccess(who, method, resource);
    if (!recorded.ok()) {
      return absl::UnavailableError(absl::StrCat(
          "the read could not be recorded, so it is not served: ", recorded.message()));
    }
  }
  return d;
}

std::vector<std::string> AccessGuard::SubjectsOf(const Resource& r) {
  if (!r.client_id.empty()) return {r.client_id};
  if (!r.case_id.empty() && cases_ != nullptr) {
    absl::StatusOr<CaseFacts> facts = cases_->Facts(r.case_id);
    if (facts.ok()) return facts->clients;
  }
  return {};
}

void AccessGuard::RecordRefusal(const Principal& who, absl::string_view method,
                                const Resource& resource, const absl::Status& refusal) {
  if (who.role == Role::kLocal) return;
  v1::Event wire = AccessRefusedEvent(who, method, resource, refusal, SubjectsOf(resource));
  absl::StatusOr<Event> event = ToLedgerEvent(wire);
  absl::Status s = event.status();
  if (event.ok()) s = ledger_->Append({*std::move(event), std::nullopt}).status();
  // The refusal stands either way; the operator learns that it went unrecorded.
  if (!s.ok()) {
    std::fprintf(stderr, "caseledger: could not record a refusal of %s: %s\n",
                 std::string(method).c_str(), s.ToString().c_str());
  }
}

absl::Status AccessGuard::RecordAccess(const Principal& who, absl::string_view method,
                                       const Resource& resource) {
  std::vector<std::string> subjects = SubjectsOf(resource);
  bool in_case = false;
  if (!resource.case_id.empty()) {
    absl::StatusOr<CaseFacts> facts = cases_->Facts(resource.case_id);
    if (!facts.ok()) return facts.status();
    in_case = facts->exists;
  }
  // A read of one case is recorded in that case, where its clients find it
  // (through the gate, which keeps the case's versions in order); any other
  // read in the server's access stream.
  v1::Event wire = RecordAccessEvent(who, method, resource,
                                     in_case ? resource.case_id : kAccessStream, subjects);
  absl::StatusOr<Event> event = ToLedgerEvent(wire);
  if (!event.ok()) return event.status();
  if (in_case) {
    std::vector<GatedEvent> one;
    one.push_back(GatedEvent{std::move(wire), {*std::move(event), std::nullopt}});
    return gate_->Append(std::move(one)).status();
  }
  return ledger_->Append({*std::move(event), std::nullopt}).status();
}

}  // namespace caseledger
