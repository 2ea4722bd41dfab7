// Wire events the end-to-end tests send, built in one place: the envelope
// (id, case, one client, producer, time) and the two bodies most tests need
// (a case opened for housing in US-CA, and a housing note). A test that needs
// another body sets it on the envelope.
#ifndef CASELEDGER_TESTS_TEST_EVENTS_H_
#define CASELEDGER_TESTS_TEST_EVENTS_H_

#include <cstdint>
#include <string>

#include "proto/ledger.pb.h"

namespace caseledger::testing {

// The times the tests' cases open and their notes occur (2025-12-31T23:50Z
// and 2026-01-01T00:00Z): before any test's clock, after nothing.
inline constexpr int64_t kCaseOpenedAt = 1767225000;
inline constexpr int64_t kNoteAt = 1767225600;

// An append of an event without a body: `id`, case `case_id`, the one
// subject `client`, `producer`, occurred at `at` (Unix seconds).
v1::AppendRequest EventRequest(const std::string& id, const std::string& case_id,
                               const std::string& client, const std::string& producer,
                               int64_t at);

// Sets `e`'s body to case_opened: `program`, jurisdiction US-CA, general records.
void SetCaseOpened(v1::Event* e, const std::string& program = "housing");

// Sets `e`'s body to record_entry_written: entry "entry-<event id>", data
// category housing, text "note <event id>".
void SetNote(v1::Event* e);

// EventRequest with SetCaseOpened, at kCaseOpenedAt.
v1::AppendRequest OpenCaseRequest(const std::string& id, const std::string& case_id,
                                  const std::string& client, const std::string& producer);

// EventRequest with SetNote, at kNoteAt.
v1::AppendRequest NoteRequest(const std::string& id, const std::string& case_id,
                              const std::string& client, const std::string& producer);

}  // namespace caseledger::testing

#endif  // CASELEDGER_TESTS_TEST_EVENTS_H_
