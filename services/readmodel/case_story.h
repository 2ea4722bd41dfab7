// A generated case history for tests and benchmarks: every event passes the
// confidentiality policy when case c's events are appended in version order.
#ifndef CASELEDGER_SERVICES_API_CASE_STORY_H_
#define CASELEDGER_SERVICES_API_CASE_STORY_H_

#include <cstdint>

#include "proto/events.pb.h"

namespace caseledger::testing {

// Events per case in the story.
inline constexpr int kStoryLength = 20;
// occurred_at of case 0's first event (2026-01-01); later events follow by days.
inline constexpr int64_t kStoryStart = 1767225600;

// The v-th event (0 <= v < kStoryLength) of case c ("case-<c>", client
// "client-<c>"): intake, manager, consent, entries, disclosures (under
// consent, required by law, for treatment), a client notice, an access
// request and its fulfilment or extension, and closure for two cases in three.
v1::Event Story(int c, int v);

}  // namespace caseledger::testing

#endif  // CASELEDGER_SERVICES_API_CASE_STORY_H_
