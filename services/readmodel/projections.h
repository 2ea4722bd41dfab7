// The case-management read models, kept by the Projector:
//   - "case": the state of each case (services/readmodel/case_state.h), by case id;
//   - "accounting": each client's accounting of disclosures
//     (services/readmodel/accounting.h), by client id, plus an index from
//     (case, disclosure id) to the client so that a later client_informed
//     event finds its disclosure; accounting_suspended goes to its client.
// Both keep decoded values for the length of a chunk and write them once in
// Flush, so a busy case is decoded and encoded once per chunk, not per event.
#ifndef CASELEDGER_SERVICES_API_PROJECTIONS_H_
#define CASELEDGER_SERVICES_API_PROJECTIONS_H_

#include <map>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "services/readmodel/accounting.h"
#include "services/readmodel/projector.h"
#include "services/readmodel/case_state.h"

namespace caseledger {

class CaseStateProjection : public Projection {
 public:
  std::string name() const override { return "case"; }
  absl::Status Apply(const v1::Record& record, ProjectionTxn& txn) override;
  absl::Status Flush(ProjectionTxn& txn) override;
  // A case's row derives from its own stream only: forgetting deletes it.
  bool CanForget() const override { return true; }
  absl::Status Forget(const std::set<std::string>& streams, ProjectionTxn& txn) override;

  // The projected state of a case; NOT_FOUND naming the case when it has no
  // records (as of the projector's position).
  static absl::StatusOr<CaseState> Load(const Projector& projector,
                                        const CaseStateProjection& projection,
                                        const std::string& case_id);

  // OK when no case holds `subject_id` under a legal hold (services/policy/policy.h
  // CheckErasure, asked of every case as of the projector's position);
  // FAILED_PRECONDITION naming the first hold, in case id order.
  static absl::Status CheckErasure(const Projector& projector,
                                   const CaseStateProjection& projection,
                                   const std::string& subject_id);

 private:
  std::map<std::string, CaseState> dirty_;
};

class AccountingProjection : public Projection {
 public:
  std::string name() const override { return "accounting"; }
  absl::Status Apply(const v1::Record& record, ProjectionTxn& txn) override;
  absl::Status Flush(ProjectionTxn& txn) override;
  // Drops the streams' disclosure index entries and, from every client they
  // name (and the client "" of disclosures whose client was erased), the
  // entries recorded in those streams.
  bool CanForget() const override { return true; }
  absl::Status Forget(const std::set<std::string>& streams, ProjectionTxn& txn) override;

  // The client's accounting (empty when the client has none).
  static absl::StatusOr<DisclosureAccounting> Load(const Projector& projector,
                                                   const AccountingProjection& projection,
                                                   const std::string& client_id);

 private:
  absl::StatusOr<DisclosureAccounting*> Client(const std::string& client_id, ProjectionTxn& txn);
  std::map<std::string, DisclosureAccounting> dirty_;
};

}  // namespace caseledger

#endif  // CASELEDGER_SERVICES_API_PROJECTIONS_H_
