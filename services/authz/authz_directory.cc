#include "services/authz/authz_directory.h"

#include <utility>

namespace caseledger {

absl::StatusOr<CaseFacts> CaseFactsFromGate(CaseGate& gate, const std::string& case_id) {
  CaseFacts facts;
  absl::Status s = gate.Inspect(case_id, [&facts](const CaseState& state) {
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

absl::StatusOr<CaseFacts> ServerResourceDirectory::Case(const std::string& case_id) {
  // The server's own streams are not cases; folding one (it grows with every
  // refusal) into the gate's cache would cost a scan of it.
  if (!case_id.empty() && case_id[0] == '@') return CaseFacts();
  return CaseFactsFromGate(*gate_, case_id);
}

absl::StatusOr<RecordFacts> ServerResourceDirectory::Record(uint64_t seq) {
  absl::StatusOr<RecordView> view = ledger_->Read(seq);
  if (!view.ok()) return view.status();
  RecordFacts facts;
  facts.case_id = std::move(view->record.stream_id);
  facts.subject_ids = std::move(view->record.subject_ids);
  return facts;
}

}  // namespace caseledger
