#include "services/readmodel/projections.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "ledger/internal/status_macros.h"
#include "services/policy/policy.h"

namespace caseledger {
namespace {

constexpr char kClientPrefix[] = "client/";
constexpr char kDisclosurePrefix[] = "disclosure/";

std::string DisclosureKey(const std::string& case_id, const std::string& disclosure_id) {
  // Ids hold no control bytes, so 0x00 separates them unambiguously.
  return absl::StrCat(kDisclosurePrefix, case_id, std::string(1, '\0'), disclosure_id);
}

absl::Time CommitTime(const v1::Record& r) {
  return absl::FromUnixSeconds(r.commit_time().seconds()) +
         absl::Nanoseconds(r.commit_time().nanos());
}

}  // namespace

absl::Status CaseStateProjection::Apply(const v1::Record& record, ProjectionTxn& txn) {
  // Streams named "@..." are the server's own (the access log), not cases.
  if (!record.stream_id().empty() && record.stream_id()[0] == '@') return absl::OkStatus();
  auto it = dirty_.find(record.stream_id());
  if (it == dirty_.end()) {
    CaseState state;
    absl::StatusOr<std::string> stored = txn.Get(record.stream_id());
    if (stored.ok()) {
      CL_ASSIGN_OR_RETURN(state, DecodeCaseState(*stored));
    } else if (stored.status().code() != absl::StatusCode::kNotFound) {
      return stored.status();
    }
    it = dirty_.emplace(record.stream_id(), std::move(state)).first;
  }
  return ApplyEvent(record.event(), record.seq(), CommitTime(record), &it->second);
}

absl::Status CaseStateProjection::Forget(const std::set<std::string>& streams,
                                         ProjectionTxn& txn) {
  for (const std::string& case_id : streams) {
    dirty_.erase(case_id);
    txn.Delete(case_id);
  }
  return absl::OkStatus();
}

absl::Status CaseStateProjection::Flush(ProjectionTxn& txn) {
  for (auto& [case_id, state] : dirty_) txn.Put(case_id, EncodeCaseState(state));
  dirty_.clear();
  return absl::OkStatus();
}

absl::StatusOr<CaseState> CaseStateProjection::Load(const Projector& projector,
                                                    const CaseStateProjection& projection,
                                                    const std::string& case_id) {
  absl::StatusOr<std::string> stored = projector.Get(projection, case_id);
  if (stored.status().code() == absl::StatusCode::kNotFound) {
    return absl::NotFoundError(absl::StrCat("case_id: no case \"", case_id, "\" (as of seq ",
                                            projector.position(), ")"));
  }
  if (!stored.ok()) return stored.status();
  return DecodeCaseState(*stored);
}

absl::Status CaseStateProjection::CheckErasure(const Projector& projector,
                                               const CaseStateProjection& projection,
                                               const std::string& subject_id) {
  absl::Status held;
  CL_RETURN_IF_ERROR(
      projector.Scan(projection, "", [&](absl::string_view, absl::string_view value) {
        absl::StatusOr<CaseState> state = DecodeCaseState(value);
        held = state.ok() ? caseledger::CheckErasure(*state, subject_id) : state.status();
        return held.ok();
      }));
  return held;
}

absl::StatusOr<DisclosureAccounting*> AccountingProjection::Client(const std::string& client_id,
                                                                   ProjectionTxn& txn) {
  auto it = dirty_.find(client_id);
  if (it != dirty_.end()) return &it->second;
  DisclosureAccounting accounting;
  absl::StatusOr<std::string> stored = txn.Get(kClientPrefix + client_id);
  if (stored.ok()) {
    CL_ASSIGN_OR_RETURN(accounting, DisclosureAccounting::Decode(*stored));
  } else if (stored.status().code() != absl::StatusCode::kNotFound) {
    return stored.status();
  }
  return &dirty_.emplace(client_id, std::move(accounting)).first->second;
}

absl::Status AccountingProjection::Apply(const v1::Record& record, ProjectionTxn& txn) {
  const v1::Event& e = record.event();
  std::string client_id;
  if (e.has_disclosure_made()) {
    client_id = e.disclosure_made().client_id();
    txn.Put(DisclosureKey(e.stream_id(), e.disclosure_made().disclosure_id()), client_id);
  } else if (e.has_client_informed()) {
    absl::StatusOr<std::string> owner =
        txn.Get(DisclosureKey(e.stream_id(), e.client_informed().disclosure_id()));
    if (owner.status().code() == absl::StatusCode::kNotFound) return absl::OkStatus();
    if (!owner.ok()) return owner.status();
    client_id = *owner;
  } else if (e.has_accounting_suspended()) {
    client_id = e.accounting_suspended().client_id();
  } else {
    return absl::OkStatus();
  }
  CL_ASSIGN_OR_RETURN(DisclosureAccounting * accounting, Client(client_id, txn));
  return accounting->Apply(e, record.seq());
}

absl::Status AccountingProjection::Forget(const std::set<std::string>& streams,
                                          ProjectionTxn& txn) {
  // The clients are read from the index, which was derived while the
  // records still opened: an erased disclosure_made no longer names its
  // client, and one whose client was erased projects under client "".
  std::set<std::string> clients{""};
  for (const std::string& case_id : streams) {
    const std::string prefix = DisclosureKey(case_id, "");
    CL_RETURN_IF_ERROR(txn.ScanStored(prefix, [&](absl::string_view key, absl::string_view client) {
      txn.Delete(std::string(key));
      clients.insert(std::string(client));
      return true;
    }));
  }
  for (const std::string& client_id : clients) {
    absl::StatusOr<std::string> stored = txn.Get(kClientPrefix + client_id);
    if (stored.status().code() == absl::StatusCode::kNotFound) continue;
    if (!stored.ok()) return stored.status();
    CL_ASSIGN_OR_RETURN(DisclosureAccounting * accounting, Client(client_id, txn));
    accounting->ForgetCases(streams);
  }
  return absl::OkStatus();
}

absl::Status AccountingProjection::Flush(ProjectionTxn& txn) {
  for (auto& [client_id, accounting] : dirty_) {
    // Emptied by Forget: as a rebuild would leave it, absent.
    if (accounting.empty()) {
      txn.Delete(kClientPrefix + client_id);
    } else {
      txn.Put(kClientPrefix + client_id, accounting.Encode());
    }
  }
  dirty_.clear();
  return absl::OkStatus();
}

absl::StatusOr<DisclosureAccounting> AccountingProjection::Load(
    const Projector& projector, const AccountingProjection& projection,
    const std::string& client_id) {
  absl::StatusOr<std::string> stored = projector.Get(projection, kClientPrefix + client_id);
  if (stored.status().code() == absl::StatusCode::kNotFound) return DisclosureAccounting();
  if (!stored.ok()) return stored.status();
  return DisclosureAccounting::Decode(*stored);
}

}  // namespace caseledger
