// Time flows through this interface so that tests can pin it.
#ifndef CASELEDGER_LEDGER_CLOCK_H_
#define CASELEDGER_LEDGER_CLOCK_H_

#include <atomic>
#include <cstdint>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace caseledger {

// Thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
  // The process-wide real clock; never destroyed.
  static const Clock& Real();
};

// A clock tests set by hand. Thread-safe.
class FakeClock : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1767225600))  // 2026-01-01
      : micros_(absl::ToUnixMicros(start)) {}
  absl::Time Now() const override { return absl::FromUnixMicros(micros_.load()); }
  void Advance(absl::Duration d) { micros_ += absl::ToInt64Microseconds(d); }

 private:
  std::atomic<int64_t> micros_;
};

inline const Clock& Clock::Real() {
  class RealClock : public Clock {
    absl::Time Now() const override { return absl::Now(); }
  };
  static const RealClock* clock = new RealClock;
  return *clock;
}

}  // namespace caseledger

#endif  // CASELEDGER_LEDGER_CLOCK_H_
