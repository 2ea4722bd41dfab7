#include "services/append/case_gate.h"

#include <algorithm>
#include <map>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "ledger/internal/status_macros.h"
#include "services/append/event_codec.h"
#include "services/policy/policy.h"
#include "services/readmodel/case_state_rows.h"
#include "services/readmodel/case_state_undo.h"

namespace caseledger {
namespace {

// A case with several events in one call and at most this many collection
// items is saved by a copy; a bigger one by an undo log (CaseStateUndo).
constexpr size_t kCopyItems = 256;

}  // namespace

CaseGate::CaseGate(Ledger* ledger, Options options) : ledger_(ledger), options_(options) {}

std::shared_ptr<CaseGate::Slot> CaseGate::SlotFor(const std::string& case_id) {
  absl::MutexLock lock(&mu_);
  auto it = slots_.find(case_id);
  if (it != slots_.end()) return it->second;
  if (slots_.size() >= options_.max_cached_cases) {
    // Forget idle cases; a forgotten case is reloaded from the log.
    for (auto i = slots_.begin(); i != slots_.end();) {
      Slot& s = *i->second;
      absl::MutexLock pending(&s.pending_mu);
      if (s.pending == 0 && i->second.use_count() == 1) {
        slots_.erase(i++);
      } else {
        ++i;
      }
    }
  }
  auto slot = std::make_shared<Slot>();
  slots_[case_id] = slot;
  return slot;
}

absl::Status CaseGate::Load(const std::string& case_id, Slot& slot) {
  if (options_.committed != nullptr) {
    CL_ASSIGN_OR_RETURN(slot.state, options_.committed->Committed(case_id));
    slot.loaded = true;
    return absl::OkStatus();
  }
  // No read model (tools and unit tests without a projector): the same
  // fold over the case's records, read from the log.
  CaseState state;
  std::vector<uint64_t> seqs;
  CL_RETURN_IF_ERROR(ledger_->store().ScanStream(case_id, 0, [&](uint64_t, uint64_t seq) {
    seqs.push_back(seq);
    return true;
  }));
  for (uint64_t seq : seqs) {
    CL_ASSIGN_OR_RETURN(RecordView view, ledger_->Read(seq));
    CL_ASSIGN_OR_RETURN(v1::Record record, ToWireRecord(view));
    absl::Time commit = absl::FromUnixMicros(view.record.commit_time_micros);
    CL_RETURN_IF_ERROR(ApplyEvent(record.event(), seq, commit, &state));
  }
  slot.state = std::move(state);
  slot.loaded = true;
  return absl::OkStatus();
}

absl::Status CaseGate::Refresh(const std::string& case_id, Slot& slot) {
  bool stale;
  {
    absl::MutexLock lock(&slot.pending_mu);
    if (slot.stale) {
      // Let everything queued land, then read the case back from the log.
      slot.pending_mu.Await(absl::Condition(
          +[](uint64_t* pending) { return *pending == 0; }, &slot.pending));
      slot.stale = false;
      slot.loaded = false;
    }
    stale = !slot.loaded;
  }
  return stale ? Load(case_id, slot) : absl::OkStatus();
}

bool CaseGate::IsRetry(const std::string& event_id, Slot& slot) {
  {
    absl::MutexLock lock(&slot.pending_mu);
    if (slot.pending_ids.contains(event_id)) return true;
  }
  absl::StatusOr<std::optional<uint64_t>> seen = ledger_->store().FindEventId(event_id);
  return seen.ok() && seen->has_value();
}

void CaseGate::Submit(std::vector<GatedEvent> events, Ledger::AppendCallback done) {
  if (events.empty()) {
    done(absl::InvalidArgumentError("requests: must not be empty"));
    return;
  }
  const CheckContext context{ledger_->clock().Now(), options_.max_occurred_ahead,
                             options_.max_occurred_behind};
  // Lock every case involved, in id order (no deadlock between batches).
  std::map<std::string, std::shared_ptr<Slot>> slots;
  for (const GatedEvent& e : events) slots.emplace(e.wire.stream_id(), nullptr);
  for (auto& [id, slot] : slots) {
    slot = SlotFor(id);
    slot->mu.Lock();
  }
  auto unlock_all = [&slots] {
    for (auto& [id, slot] : slots) slot->mu.Unlock();
  };

  // Check in order, each event against the state its predecessors leave,
  // and change nothing on a refusal. A case with one event in the call is
  // checked against its cached state and folded only once every check
  // passed (CheckApplicable says the fold cannot fail). A case with several
  // is folded in place as its events pass, after saving what a refusal
  // restores: a copy of a small state (one copy per call, cheaper than
  // noting each event's items), an undo log for a big one (what the events
  // touch, whatever the case's size).
  std::map<std::string, int> per_case;
  for (const GatedEvent& e : events) ++per_case[e.wire.stream_id()];
  struct Saved {
    std::optional<CaseState> copy;  // a small state as it was
    CaseStateUndo undo;             // else
  };
  std::map<std::string, Saved> saved;  // per case with several events, once refreshed
  std::vector<std::pair<CaseState*, size_t>> deferred;  // (state, event index) to fold
  auto refuse = [&](absl::Status status) {
    for (auto& [case_id, sv] : saved) {
      CaseState& state = slots[case_id]->state;
      if (sv.copy.has_value()) {
        state = *std::move(sv.copy);
      } else {
        sv.undo.RollBack(&state);
      }
    }
    unlock_all();
    done(std::move(status));
  };
  // Provisional seq and commit time: the real ones are known only after
  // the commit (at or after `received`); only the order matters here.
  auto seq_after = [](const CaseState& state) {
    return state.version == 0 ? 0 : state.last_seq + 1;
  };
  std::vector<AppendRequest> requests;
  requests.reserve(events.size());
  for (size_t i = 0; i < events.size(); ++i) {
    GatedEvent& e = events[i];
    const std::string& case_id = e.wire.stream_id();
    Slot& slot = *slots[case_id];
    const bool single = per_case[case_id] == 1;
    auto sv = saved.find(case_id);
    if (single || sv == saved.end()) {
      // Once per call and case: later events see the earlier ones applied.
      absl::Status s = Refresh(case_id, slot);
      if (!s.ok()) {
        refuse(s);
        return;
      }
      if (!single) {
        sv = saved.try_emplace(case_id).first;
        if (ItemCount(slot.state) <= kCopyItems) sv->second.copy = slot.state;
      }
    }
    CaseState& state = slot.state;
    // Names the event in a refusal (built only then).
    auto where = [&events, i] {
      return events.size() > 1 ? absl::StrCat("requests[", i, "]: ") : std::string();
    };
    absl::Status check = CheckEvent(state, e.wire, context);
    if (!check.ok()) {
      if (IsRetry(e.wire.event_id(), slot)) {
        // The ledger answers a retry with the original result.
        requests.push_back(std::move(e.request));
        continue;
      }
      refuse(absl::Status(check.code(), absl::StrCat(where(), check.message())));
      return;
    }
    if (e.request.expected_version.has_value() && *e.request.expected_version != state.version &&
        !IsRetry(e.wire.event_id(), slot)) {
      refuse(absl::AbortedError(absl::StrCat(where(), "stream \"", case_id, "\": expected_version ",
                                             *e.request.expected_version,
                                             ", but the stream's next version is ",
                                             state.version)));
      return;
    }
    if (!e.request.expected_version.has_value()) e.request.expected_version = state.version;
    absl::Status applied;
    if (single) {
      applied = CheckApplicable(e.wire, seq_after(state), state);
      if (applied.ok()) deferred.emplace_back(&state, i);
    } else if (sv->second.copy.has_value()) {
      applied = ApplyEvent(e.wire, seq_after(state), context.received_at, &state);
    } else {
      applied = sv->second.undo.Apply(e.wire, seq_after(state), context.received_at, &state);
    }
    if (!applied.ok()) {
      refuse(absl::Status(applied.code(), absl::StrCat(where(), applied.message())));
      return;
    }
    requests.push_back(std::move(e.request));
  }
  for (auto [state, i] : deferred) {
    // Checked above (CheckApplicable): the fold cannot fail.
    ApplyEvent(events[i].wire, seq_after(*state), context.received_at, state).IgnoreError();
  }

  // All passed: queue the batch while the cases are still locked, so the
  // ledger sees them in this order.
  std::vector<std::string> ids;
  for (const AppendRequest& r : requests) ids.push_back(r.event.event_id);
  for (auto& [case_id, slot] : slots) {
    // One per call and case; the callback below releases each.
    absl::MutexLock lock(&slot->pending_mu);
    ++slot->pending;
  }
  for (size_t i = 0; i < requests.size(); ++i) {
    Slot& slot = *slots[requests[i].event.stream_id];
    absl::MutexLock lock(&slot.pending_mu);
    slot.pending_ids.insert(ids[i]);
  }
  std::vector<std::shared_ptr<Slot>> held;
  std::vector<std::string> case_ids;
  for (auto& [id, slot] : slots) {
    held.push_back(slot);
    case_ids.push_back(id);
  }
  std::vector<std::string> stream_of;
  for (const AppendRequest& r : requests) stream_of.push_back(r.event.stream_id);
  ledger_->AppendBatchAsync(
      std::move(requests),
      [held, case_ids, ids, stream_of, done = std::move(done)](
          absl::StatusOr<std::vector<AppendResult>> r) {
        for (size_t k = 0; k < held.size(); ++k) {
          Slot& slot = *held[k];
          absl::MutexLock lock(&slot.pending_mu);
          --slot.pending;
          for (size_t i = 0; i < ids.size(); ++i) {
            if (stream_of[i] == case_ids[k]) slot.pending_ids.erase(ids[i]);
          }
          bool retried = false;
          if (r.ok()) {
            for (size_t i = 0; i < r->size(); ++i) {
              retried |= (*r)[i].duplicate && stream_of[i] == case_ids[k];
            }
          }
          // A failed append, or a retry the checks counted as new, leaves the
          // cached state ahead of the log.
          if (!r.ok() || retried) slot.stale = true;
        }
        done(std::move(r));
      });
  unlock_all();
}

absl::StatusOr<std::vector<AppendResult>> CaseGate::Append(std::vector<GatedEvent> events) {
  absl::Notification finished;
  absl::StatusOr<std::vector<AppendResult>> result;
  Submit(std::move(events), [&](absl::StatusOr<std::vector<AppendResult>> r) {
    result = std::move(r);
    finished.Notify();
  });
  finished.WaitForNotification();
  return result;
}

absl::StatusOr<AppendResult> CaseGate::AppendToServerStream(GatedEvent event) {
  const std::string& stream = event.request.event.stream_id;
  if (stream.empty() || stream[0] != '@' || event.wire.stream_id() != stream) {
    return absl::InternalError(absl::StrCat("stream_id: got \"", stream,
                                            "\", want one of the server's own streams (@...)"));
  }
  return ledger_->Append(std::move(event.request));
}

void CaseGate::ForgetAll() {
  absl::MutexLock lock(&mu_);
  for (auto i = slots_.begin(); i != slots_.end();) {
    Slot& s = *i->second;
    absl::MutexLock pending(&s.pending_mu);
    if (s.pending == 0 && i->second.use_count() == 1) {
      slots_.erase(i++);
    } else {
      // In use: reloaded by its next check, after what is queued lands.
      s.stale = true;
      ++i;
    }
  }
}

absl::Status CaseGate::Inspect(const std::string& case_id,
                               const std::function<void(const CaseState&)>& fn) {
  std::shared_ptr<Slot> slot = SlotFor(case_id);
  absl::MutexLock lock(&slot->mu);
  CL_RETURN_IF_ERROR(Refresh(case_id, *slot));
  fn(slot->state);
  return absl::OkStatus();
}

}  // namespace caseledger
