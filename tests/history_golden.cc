#include "tests/history_golden.h"

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "ledger/clock.h"
#include "ledger/internal/status_macros.h"
#include "ledger/ledger.h"
#include "services/api/access_service.h"
#include "tests/test_util.h"

namespace caseledger::testing {

absl::StatusOr<v1::HistoryBundle> GoldenHistoryBundle(const std::string& dir) {
  FakeClock clock;  // 2026-01-01T00:00:00Z
  LedgerOptions options;
  options.clock = &clock;
  options.checkpoint_interval = absl::Hours(1);
  uint8_t next_salt = 0;
  options.salt_source = [&next_salt] {
    Hash h;
    h.fill(next_salt++);
    return h;
  };
  CL_ASSIGN_OR_RETURN(TestLedger t, OpenTestLedger(dir, options));
  for (int i = 0; i < 3; ++i) {
    Event e;
    e.event_id = absl::StrCat("golden-", i);
    e.stream_id = "case-g";
    e.producer = "golden";
    e.event_type = "record_entry_written";
    e.occurred_at_micros = 1767225600000000 + i;
    e.subject_ids = {i == 1 ? "client-b" : "client-a"};
    e.fields = {{"text", absl::StrCat("\x1a\x06note ", i), 0},
                {"third_party_mentions", "\x22\x08J. Smith", kFieldProtected}};
    CL_RETURN_IF_ERROR(t->Append({e}).status());
  }
  CL_RETURN_IF_ERROR(t->Checkpoint().status());
  return BuildHistoryBundle(*t.ledger, "client-a", 0, absl::FromUnixSeconds(1767225600));
}

}  // namespace caseledger::testing
