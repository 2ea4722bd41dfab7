#include "ledger/clock.h"

#include <algorithm>

namespace caseledger {

namespace {

class RealClock : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
  bool AwaitUntil(absl::Mutex* mu, const absl::Condition& cond, absl::Time deadline) const override
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return mu->AwaitWithDeadline(cond, deadline);
  }
};

}  // namespace

const Clock& Clock::Real() {
  static const RealClock* clock = new RealClock;
  return *clock;
}

void FakeClock::Advance(absl::Duration d) {
  micros_ += absl::ToInt64Microseconds(d);
  // Releasing a waiter's mutex makes absl re-evaluate its condition, which
  // now sees the new time.
  absl::MutexLock lock(&waiters_mu_);
  for (absl::Mutex* mu : waiters_) {
    mu->Lock();
    mu->Unlock();
  }
}

bool FakeClock::AwaitUntil(absl::Mutex* mu, const absl::Condition& cond,
                           absl::Time deadline) const ABSL_NO_THREAD_SAFETY_ANALYSIS {
  if (cond.Eval()) return true;
  if (Now() >= deadline) return false;
  // Registered without holding *mu (lock order: waiters_mu_ before *mu). An
  // Advance between here and the Await below is seen by the Await's first
  // evaluation, since it moves the time before waking anyone.
  mu->Unlock();
  {
    absl::MutexLock lock(&waiters_mu_);
    waiters_.push_back(mu);
    ++waits_begun_;
  }
  mu->Lock();
  auto woken = [&cond, deadline, this]() { return cond.Eval() || Now() >= deadline; };
  mu->Await(absl::Condition(&woken));
  mu->Unlock();
  {
    absl::MutexLock lock(&waiters_mu_);
    waiters_.erase(std::find(waiters_.begin(), waiters_.end(), mu));
  }
  mu->Lock();
  return cond.Eval();
}

uint64_t FakeClock::waits_begun() const {
  absl::MutexLock lock(&waiters_mu_);
  return waits_begun_;
}

bool FakeClock::AwaitWaitsBegun(uint64_t n, absl::Duration timeout) const {
  absl::MutexLock lock(&waiters_mu_);
  auto done = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(waiters_mu_) { return waits_begun_ >= n; };
  return waiters_mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
}

bool FakeClock::AwaitWaiters(int n, absl::Duration timeout) const {
  absl::MutexLock lock(&waiters_mu_);
  auto done = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(waiters_mu_) {
    return static_cast<int>(waiters_.size()) >= n;
  };
  return waiters_mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
}

}  // namespace caseledger
