// A writer process for the durability test: appends events from several
// threads and prints "ack <event_id> <seq>" for each one the ledger has
// acknowledged, after a first line "ready" once the ledger is open. The test
// kills it with SIGKILL at a random moment after that.
//
// Usage: crash_writer DATA_DIR ID_PREFIX THREADS
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/test_util.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: crash_writer DATA_DIR ID_PREFIX THREADS\n");
    return 2;
  }
  std::string dir = argv[1], prefix = argv[2];
  int threads = std::atoi(argv[3]);
  caseledger::LedgerOptions options;
  options.checkpoint_every_records = 500;
  auto t = caseledger::testing::OpenTestLedger(dir, options);
  if (!t.ok()) {
    std::fprintf(stderr, "open: %s\n", t.status().ToString().c_str());
    return 1;
  }
  // The test's clock starts here: opening after a kill replays the WAL, which
  // takes a varying time that must not eat into the writing window.
  static constexpr char kReady[] = "ready\n";
  if (write(STDOUT_FILENO, kReady, sizeof(kReady) - 1) < 0) return 1;
  std::vector<std::thread> workers;
  for (int w = 0; w < threads; ++w) {
    workers.emplace_back([&, w] {
      for (int i = 0;; ++i) {
        std::string id = absl::StrCat(prefix, "-", w, "-", i);
        std::vector<caseledger::AppendRequest> batch;
        // Mix single appends with small batches.
        int n = i % 3 == 0 ? 5 : 1;
        for (int k = 0; k < n; ++k) {
          batch.push_back({caseledger::testing::TestEvent(absl::StrCat(id, "-", k),
                                                          absl::StrCat("case-", w % 4), 200)});
        }
        auto r = (*t)->AppendBatch(std::move(batch));
        if (!r.ok()) {
          std::fprintf(stderr, "append: %s\n", r.status().ToString().c_str());
          std::_Exit(1);
        }
        std::string line;
        for (int k = 0; k < n; ++k) absl::StrAppend(&line, "ack ", id, "-", k, " ", (*r)[k].seq, "\n");
        // One write per acknowledgement batch; lines are whole or absent.
        if (write(STDOUT_FILENO, line.data(), line.size()) < 0) std::_Exit(1);
      }
    });
  }
  for (auto& w : workers) w.join();
}
