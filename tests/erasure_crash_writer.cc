// A process for the erasure crash test: fills the fixture's data directory
// (erasure_fixture.h) on first use, projects it and closes the read models
// (so that they hold every case, flushed), reopens them, then does what
// KeyAdminService.EraseSubject does up to the reprojection: marks the
// read models stale naming the subject, and destroys its keys. It prints
// "erased" and waits to be killed with SIGKILL.
//
// Usage: erasure_crash_writer DIR SUBJECT
#include <unistd.h>

#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "proto/ledger.pb.h"
#include "services/append/event_codec.h"
#include "tests/erasure_fixture.h"

namespace caseledger {
namespace {

int Fail(const std::string& what, const absl::Status& s) {
  std::fprintf(stderr, "erasure_crash_writer: %s: %s\n", what.c_str(), s.ToString().c_str());
  return 1;
}

// Entries in 6 cases by 4 clients; every third entry names two clients.
absl::Status Fill(Ledger& ledger) {
  for (int i = 0; i < 120; ++i) {
    v1::Event e;
    e.set_event_id(absl::StrCat("e", i));
    e.set_stream_id(absl::StrCat("case-", i % 6));
    e.add_subject_ids(absl::StrCat("client-", i % 4));
    if (i % 3 == 0) e.add_subject_ids(absl::StrCat("client-", (i + 1) % 4));
    e.set_producer("test");
    e.mutable_occurred_at()->set_seconds(1767225600 + i);
    e.mutable_record_entry_written()->set_entry_id(absl::StrCat("entry-", i));
    e.mutable_record_entry_written()->set_text(absl::StrCat("TEXT-", i % 4, "-", i));
    absl::StatusOr<Event> event = ToLedgerEvent(e);
    if (!event.ok()) return event.status();
    absl::StatusOr<AppendResult> r = ledger.Append({*std::move(event)});
    if (!r.ok()) return r.status();
  }
  return absl::OkStatus();
}

int Run(const std::string& dir, const std::string& subject) {
  {
    absl::StatusOr<std::unique_ptr<testing::ErasureFixture>> f = testing::OpenErasureFixture(dir);
    if (!f.ok()) return Fail("open", f.status());
    if ((*f)->db.ledger->Size() == 0) {
      if (absl::Status s = Fill(*(*f)->db.ledger); !s.ok()) return Fail("fill", s);
    }
    if (absl::Status s = (*f)->projector->CatchUp(); !s.ok()) return Fail("project", s);
  }
  absl::StatusOr<std::unique_ptr<testing::ErasureFixture>> f = testing::OpenErasureFixture(dir);
  if (!f.ok()) return Fail("reopen", f.status());
  Projector& projector = *(*f)->projector;
  const std::optional<Hash> key = projector.SubjectKeyOf(subject);
  if (absl::Status s = projector.MarkStaleSubject(key); !s.ok()) return Fail("mark", s);
  absl::StatusOr<size_t> erased = (*f)->db.keys->EraseSubject(subject);
  if (!erased.ok()) return Fail("erase", erased.status());
  std::printf("erased %zu\n", *erased);
  std::fflush(stdout);
  for (;;) pause();
}

}  // namespace
}  // namespace caseledger

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: erasure_crash_writer DIR SUBJECT\n");
    return 2;
  }
  return caseledger::Run(argv[1], argv[2]);
}
