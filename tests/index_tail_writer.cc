// A writer process for index_tail_test: appends EVENTS events (batches of 7
// over 5 cases, one client subject per case) on a data directory whose
// event-id and stream index entries wait in the index tail (ledger/STORE.md
// "Deferred indexes"), prints "ack <event_id> <stream_id> <seq> <version>"
// for each acknowledged one, then kills itself with SIGKILL: whatever of the
// tail was not yet flushed to disk without the WAL is lost, and the next
// open must rebuild it from index_log.
//
// Usage: index_tail_writer DATA_DIR EVENTS TAIL_EVENTS [FIRST [CHECKPOINT_EVERY]]
// FIRST (default 0) numbers the first event, so that a second run on the
// same directory appends new events after the first run's. With
// CHECKPOINT_EVERY = K > 0, after every K-th batch it also asks for a
// checkpoint and prints "checkpoint <size> <root hex>" for the one served.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ledger/checkpoint.h"
#include "ledger/ledger.h"
#include "ledger/rocks_store.h"
#include "tests/test_util.h"

int main(int argc, char** argv) {
  if (argc < 4 || argc > 6) {
    std::fprintf(stderr,
                 "usage: index_tail_writer DATA_DIR EVENTS TAIL_EVENTS [FIRST [CHECKPOINT_EVERY]]\n");
    return 2;
  }
  const int first = argc >= 5 ? std::atoi(argv[4]) : 0;
  const int checkpoint_every = argc == 6 ? std::atoi(argv[5]) : 0;
  const int events = first + std::atoi(argv[2]);
  caseledger::RocksStoreOptions so;
  so.path = argv[1];
  so.index_tail_events = static_cast<size_t>(std::atoll(argv[3]));
  auto store = caseledger::OpenRocksStore(so);
  if (!store.ok()) {
    std::fprintf(stderr, "open store: %s\n", store.status().ToString().c_str());
    return 1;
  }
  caseledger::NoteSigner signer = caseledger::testing::TestNoteSigner();
  caseledger::LedgerOptions options;
  options.signer = &signer;
  options.origin = caseledger::testing::kTestOrigin;
  options.checkpoint_every_records = 100;
  auto ledger = caseledger::Ledger::Open(options, *std::move(store));
  if (!ledger.ok()) {
    std::fprintf(stderr, "open ledger: %s\n", ledger.status().ToString().c_str());
    return 1;
  }
  for (int i = first, batches = 0; i < events; ++batches) {
    std::vector<caseledger::AppendRequest> batch;
    std::vector<std::string> ids, streams;
    for (int k = 0; k < 7 && i < events; ++k, ++i) {
      ids.push_back(absl::StrCat("tail-ev-", i));
      streams.push_back(absl::StrCat("case-", i % 5));
      batch.push_back({caseledger::testing::TestEvent(ids.back(), streams.back(), 200)});
    }
    auto r = (*ledger)->AppendBatch(std::move(batch));
    if (!r.ok()) {
      std::fprintf(stderr, "append: %s\n", r.status().ToString().c_str());
      return 1;
    }
    std::string lines;
    for (size_t k = 0; k < ids.size(); ++k) {
      absl::StrAppend(&lines, "ack ", ids[k], " ", streams[k], " ", (*r)[k].seq, " ",
                      (*r)[k].version, "\n");
    }
    if (checkpoint_every > 0 && batches % checkpoint_every == checkpoint_every - 1) {
      auto served = (*ledger)->Checkpoint();
      if (!served.ok()) {
        std::fprintf(stderr, "checkpoint: %s\n", served.status().ToString().c_str());
        return 1;
      }
      auto cp = caseledger::ParseCheckpointNote(served->note);
      if (!cp.ok()) {
        std::fprintf(stderr, "checkpoint: %s\n", cp.status().ToString().c_str());
        return 1;
      }
      absl::StrAppend(&lines, "checkpoint ", cp->size, " ", caseledger::ToHex(cp->root), "\n");
    }
    if (write(STDOUT_FILENO, lines.data(), lines.size()) < 0) return 1;
  }
  raise(SIGKILL);
  return 1;
}
