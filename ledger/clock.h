// Time and timed waits flow through this interface so that tests can pin
// them (shared/STYLE.md "Inject the world", after leveldb's Env): the ledger
// reads the time and waits for its checkpoint interval only through a Clock.
#ifndef CASELEDGER_LEDGER_CLOCK_H_
#define CASELEDGER_LEDGER_CLOCK_H_

#include <atomic>
#include <cstdint>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace caseledger {

// Thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
  // Waits until `cond` holds or Now() reaches `deadline`, whichever comes
  // first, and returns cond's value then. The caller holds `*mu`; like
  // absl::Mutex::Await it is released while waiting and held again on
  // return. `cond` must only read state guarded by `*mu` (it is evaluated
  // with `*mu` held), and whoever changes that state does so holding `*mu`.
  // This default suits clocks that run at real pace (however offset): it
  // waits deadline - Now() of real time.
  virtual bool AwaitUntil(absl::Mutex* mu, const absl::Condition& cond, absl::Time deadline) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return mu->AwaitWithTimeout(cond, deadline - Now());
  }
  // The process-wide real clock; never destroyed.
  static const Clock& Real();
};

// A clock tests set by hand: time moves only by Advance, and Advance wakes
// the AwaitUntil callers whose deadline it reaches, so a test drives timers
// without sleeping. Thread-safe.
class FakeClock : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1767225600))  // 2026-01-01
      : micros_(absl::ToUnixMicros(start)) {}
  // Must not be destroyed while a thread waits in AwaitUntil.
  ~FakeClock() override = default;

  absl::Time Now() const override { return absl::FromUnixMicros(micros_.load()); }
  // Moves time forward by `d` and wakes every waiter whose deadline that
  // reaches.
  void Advance(absl::Duration d);

  // Waits in fake time: returns when `cond` holds or Advance reaches
  // `deadline`. Real time plays no part.
  bool AwaitUntil(absl::Mutex* mu, const absl::Condition& cond, absl::Time deadline) const override
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  // For tests that must know a waiter has settled (e.g. that the committer
  // finished its work and waits again) without sleeping.
  //
  // The number of AwaitUntil calls that began to wait so far (not counting
  // those that returned at once).
  uint64_t waits_begun() const;
  // Blocks until waits_begun() >= `n`, or `timeout` of
  // real time passes (a safety net for a test that would otherwise hang);
  // returns whether they had.
  bool AwaitWaitsBegun(uint64_t n, absl::Duration timeout = absl::Seconds(30)) const;
  // Blocks until at least `n` threads are waiting in AwaitUntil, or
  // `timeout` of real time passes; returns whether they were.
  bool AwaitWaiters(int n, absl::Duration timeout = absl::Seconds(30)) const;

 private:
  std::atomic<int64_t> micros_;
  // Registered waiters' mutexes (a multiset: counts per mutex). Advance
  // locks and unlocks each, which makes absl re-evaluate their conditions.
  // Lock order: waiters_mu_ before any waiter's mutex; a waiter never holds
  // its mutex while taking waiters_mu_.
  mutable absl::Mutex waiters_mu_;
  mutable std::vector<absl::Mutex*> waiters_ ABSL_GUARDED_BY(waiters_mu_);
  mutable uint64_t waits_begun_ ABSL_GUARDED_BY(waiters_mu_) = 0;
};

}  // namespace caseledger

#endif  // CASELEDGER_LEDGER_CLOCK_H_
