// The confidentiality policy on the append path.
//
// Every event is checked (services/policy/policy.h) against its case's state as it
// will be when the event is committed: the gate keeps each active case's
// state, including appends already queued, and queues the event with the
// expected version the check assumed, while holding that case's lock. A
// case's committed state comes from the one fold of its records, the
// case-state read model (Options::committed), and the gate folds only its
// own queued events on top, in place, taking them back on a refusal
// (CaseStateUndo). So the
// ledger's order for a case is the order the checks saw, and a refused event
// stores nothing. A retried event id passes through to the ledger, which
// returns the original result.
#ifndef CASELEDGER_SERVICES_API_CASE_GATE_H_
#define CASELEDGER_SERVICES_API_CASE_GATE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "ledger/ledger.h"
#include "proto/events.pb.h"
#include "services/readmodel/case_state.h"
#include "services/readmodel/committed_case_states.h"
#include "services/policy/policy.h"

namespace caseledger {

struct GatedEvent {
  v1::Event wire;                          // as the producer sent it
  AppendRequest request;                   // its ledger form (ToLedgerEvent)
};

// Thread-safe. `ledger` is borrowed and must outlive the gate.
//
// Time: each Submit reads the ledger's clock (LedgerOptions::clock) once as
// the events' receipt time and passes it to the policy (CheckContext), which
// bounds occurred_at by it; the ledger's commit time is at or after it.
class CaseGate {
 public:
  struct Options {
    size_t max_cached_cases = 10000;
    // How far occurred_at may run ahead of receipt (--max_occurred_ahead).
    absl::Duration max_occurred_ahead = kDefaultMaxOccurredAhead;
    // How far occurred_at may fall before the case's latest event without
    // late_documentation (--max_occurred_behind).
    absl::Duration max_occurred_behind = kDefaultMaxOccurredBehind;
    // Borrowed; must outlive the gate. Where a case's committed state comes
    // from when the gate has none cached (the server: the case-state read
    // model, ProjectedCaseStates). Null: folded from the case's records in
    // the log (tools and unit tests without a projector).
    const CommittedCaseStates* committed = nullptr;
  };
  explicit CaseGate(Ledger* ledger) : CaseGate(ledger, Options()) {}
  CaseGate(Ledger* ledger, Options options);

  // Checks every event (in order, each against the state its predecessors
  // leave) and, when all pass, queues them as one all-or-nothing batch.
  // `done` runs once: with the refusal (FAILED_PRECONDITION naming the rule
  // and facts, or the ledger's error), or with the results once durable.
  void Submit(std::vector<GatedEvent> events, Ledger::AppendCallback done);

  // Synchronous form.
  absl::StatusOr<std::vector<AppendResult>> Append(std::vector<GatedEvent> events);

  // Appends one event the server writes itself (access_refused,
  // record_accessed not tied to one case, subject_erased,
  // master_key_rotated) to one of its own streams, whose names begin with
  // '@' (services/authz/authz.h). Those streams are not cases: there is no
  // lifecycle to check, so the event is queued as it is and the ledger gives
  // it the stream's next version. Producers never reach this: Submit refuses
  // '@' streams and server-written event types (services/policy/policy.h).
  // INTERNAL for a stream that is not the server's; otherwise the ledger's
  // result, once durable.
  absl::StatusOr<AppendResult> AppendToServerStream(GatedEvent event);

  // Calls `fn` with the case's state as the checks see it (committed plus
  // queued appends), under the case's lock; `fn` must not call the gate. A
  // case without records gives a state with status kNotOpened.
  absl::Status Inspect(const std::string& case_id,
                       const std::function<void(const CaseState&)>& fn);

  // The ledger's clock (LedgerOptions::clock): the one time source of the
  // append path, which also dates the events the server writes itself.
  const Clock& clock() const { return ledger_->clock(); }

  // Drops every cached case state; each is loaded again (Options::committed)
  // when next needed (a case with appends in flight, once they land). Called after an
  // erasure: states folded while the erased records still opened hold what
  // they said.
  void ForgetAll();

 private:
  struct Slot {
    absl::Mutex mu;  // held while checking and queueing
    bool loaded ABSL_GUARDED_BY(mu) = false;
    CaseState state ABSL_GUARDED_BY(mu);  // committed plus queued events

    absl::Mutex pending_mu;  // never held while taking `mu`
    uint64_t pending ABSL_GUARDED_BY(pending_mu) = 0;
    absl::flat_hash_set<std::string> pending_ids ABSL_GUARDED_BY(pending_mu);
    // The cached state may differ from the log (a queued append failed or
    // turned out to be a retry): reload once nothing is queued.
    bool stale ABSL_GUARDED_BY(pending_mu) = false;
  };

  std::shared_ptr<Slot> SlotFor(const std::string& case_id);
  // Sets `slot->state` to the case's committed state (Options::committed).
  // Nothing of the case may be queued meanwhile.
  absl::Status Load(const std::string& case_id, Slot& slot) ABSL_EXCLUSIVE_LOCKS_REQUIRED(slot.mu);
  // Makes `slot->state` current (waiting for queued appends after a failure).
  absl::Status Refresh(const std::string& case_id, Slot& slot)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(slot.mu);
  bool IsRetry(const std::string& event_id, Slot& slot);

  Ledger* const ledger_;
  const Options options_;
  absl::Mutex mu_;
  // shared_ptr: a slot stays alive for callbacks after it is evicted.
  absl::flat_hash_map<std::string, std::shared_ptr<Slot>> slots_ ABSL_GUARDED_BY(mu_);
};

}  // namespace caseledger

#endif  // CASELEDGER_SERVICES_API_CASE_GATE_H_
