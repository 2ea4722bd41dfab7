// The case-management read models, kept by the Projector:
//   - "case": the state of each case (services/readmodel/case_state.h), by case id;
//   - "accounting": each client's accounting of disclosures
//     (services/readmodel/accounting.h), by client id, plus an index from
//     (case, disclosure id) to the client so that a later client_informed
//     event finds its disclosure; accounting_suspended goes to its client.
// The case state is stored as one row per item (PROJECTIONS.md): each event
// rewrites the case's header row and the rows of the items it touched, and
// the decoded states stay in memory between chunks. The accounting is stored
// the same way: one row per entry and per suspension of a client, each
// chunk writing only the rows it changed.
#ifndef CASELEDGER_SERVICES_API_PROJECTIONS_H_
#define CASELEDGER_SERVICES_API_PROJECTIONS_H_

#include <functional>
#include <map>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "services/readmodel/accounting.h"
#include "services/readmodel/projector.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/node_hash_map.h"
#include "services/readmodel/case_state.h"
#include "services/readmodel/case_state_rows.h"
#include "services/readmodel/committed_case_states.h"

namespace caseledger {

class CaseStateProjection : public Projection {
 public:
  std::string name() const override { return "case"; }
  absl::Status Apply(const v1::Record& record, ProjectionTxn& txn) override;
  absl::Status Flush(ProjectionTxn& txn) override;
  // A case's rows derive from its own stream only: forgetting deletes them.
  bool CanForget() const override { return true; }
  absl::Status Forget(const std::set<std::string>& streams, ProjectionTxn& txn) override;
  void Clear() override;
  // Full at kMaxCachedCases cases changed by the chunk.
  bool ChunkFull() const override { return dirty_.size() >= kMaxCachedCases; }
  // One row per item (PROJECTIONS.md); the whole state in one value before.
  std::string layout() const override { return "rows-1"; }

  // The projected state of a case; NOT_FOUND naming the case when it has no
  // records (as of the projector's position).
  static absl::StatusOr<CaseState> Load(const Projector& projector,
                                        const CaseStateProjection& projection,
                                        const std::string& case_id);

  // Calls fn with each case's state, in case id order, from the case `from`
  // on (inclusive), until fn returns false.
  static absl::Status ScanCases(const Projector& projector, const CaseStateProjection& projection,
                                const std::string& from,
                                const std::function<bool(const CaseState&)>& fn);

  // OK when no case holds `subject_id` under a legal hold (services/policy/policy.h
  // CheckErasure, asked of every case as of the projector's position);
  // FAILED_PRECONDITION naming the first hold, in case id order.
  static absl::Status CheckErasure(const Projector& projector,
                                   const CaseStateProjection& projection,
                                   const std::string& subject_id);

 private:
  // Cases kept in memory between chunks at most (the projector's thread
  // only; each is also stored).
  static constexpr size_t kMaxCachedCases = 16384;
  struct Dirty {
    CaseState* state;      // in cache_
    TouchedItems touched;  // what this chunk may have changed
    // The store holds no row of the case (a new case, or one this chunk
    // forgot): Flush writes all of its rows, so nothing is noted per event.
    bool fresh = false;
  };
  // The case's state, from memory or its stored rows; becomes dirty.
  absl::StatusOr<Dirty*> State(const std::string& case_id, ProjectionTxn& txn);
  absl::node_hash_map<std::string, Dirty> dirty_;  // written in key order by the txn
  std::set<std::string> forgotten_;  // by this chunk: their stored rows go
  // The decoded cases, dirty ones included (node map: a Dirty points into
  // it, so a state is never moved between chunks).
  absl::node_hash_map<std::string, CaseState> cache_;
  // Every case the store holds is in cache_ (after a clear, until the cache
  // is trimmed): a case not in it has no rows to read.
  bool cache_complete_ = false;
};

// The append gate's source of committed case states (CaseGate::Options::
// committed): the state the projection stored, plus the case's committed
// records the projector has not applied yet, folded by the same ApplyEvent.
// Reads no record from the log while the projector's queue covers what it
// has not applied (Projector::ReadWithUnapplied). Thread-safe.
class ProjectedCaseStates : public CommittedCaseStates {
 public:
  // Both borrowed; they must outlive this. `wait`: how long to wait for a
  // projector catching up from the store.
  ProjectedCaseStates(const Projector* projector, const CaseStateProjection* cases,
                      absl::Duration wait = absl::Seconds(30))
      : projector_(projector), cases_(cases), wait_(wait) {}
  absl::StatusOr<CaseState> Committed(const std::string& case_id) const override;

 private:
  const Projector* projector_;
  const CaseStateProjection* cases_;
  const absl::Duration wait_;
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
  void Clear() override;
  // Full at kMaxCachedClients clients changed by the chunk.
  bool ChunkFull() const override { return dirty_.size() >= kMaxCachedClients; }
  // One row per entry and per suspension (PROJECTIONS.md); one value per
  // client before.
  std::string layout() const override { return "rows-1"; }

  // The client's accounting (empty when the client has none).
  static absl::StatusOr<DisclosureAccounting> Load(const Projector& projector,
                                                   const AccountingProjection& projection,
                                                   const std::string& client_id);

 private:
  // Clients kept in memory between chunks at most (the projector's thread
  // only; each is also stored).
  static constexpr size_t kMaxCachedClients = 16384;
  struct Dirty {
    DisclosureAccounting accounting;  // this client's only
    // The rows this chunk may have changed, each with its value as stored
    // when the chunk began (nullopt: no row).
    std::map<std::string, std::optional<std::string>> touched;
  };
  // The client's accounting, from memory or its stored rows; becomes dirty.
  absl::StatusOr<Dirty*> Client(const std::string& client_id, ProjectionTxn& txn);
  // Notes rows of the client before they change.
  void Touch(const std::string& client_id, const std::vector<std::string>& rows, Dirty* d);
  std::map<std::string, Dirty> dirty_;
  absl::flat_hash_map<std::string, DisclosureAccounting> cache_;
  // Every client the store holds is in cache_ (after a clear, until the
  // cache is trimmed): a client not in it has no rows to read.
  bool cache_complete_ = false;
};

}  // namespace caseledger

#endif  // CASELEDGER_SERVICES_API_PROJECTIONS_H_
