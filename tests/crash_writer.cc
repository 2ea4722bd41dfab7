// A writer process for the durability test: appends events from several
// threads and prints "ack <event_id> <seq>" for each one the ledger has
// acknowledged, after a first line "ready" once the ledger is open. The test
// kills it with SIGKILL at a random moment after that.
//
// Usage: crash_writer DATA_DIR ID_PREFIX THREADS [MASTER_KEY_HEX]
// With a master key, payloads are encrypted (ledger/ENCRYPTION.md) and every
// subject-case pair's data key is created on the way.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ledger/key_store.h"
#include "ledger/rocks_store.h"
#include "tests/test_util.h"

int main(int argc, char** argv) {
  if (argc != 4 && argc != 5) {
    std::fprintf(stderr, "usage: crash_writer DATA_DIR ID_PREFIX THREADS [MASTER_KEY_HEX]\n");
    return 2;
  }
  std::string dir = argv[1], prefix = argv[2];
  int threads = std::atoi(argv[3]);
  caseledger::LedgerOptions options;
  options.checkpoint_every_records = 500;
  std::unique_ptr<caseledger::KeyStore> keys;  // outlives the ledger below
  absl::StatusOr<caseledger::testing::TestLedger> t;
  if (argc == 5) {
    // The same ledger as OpenTestLedger, with a key store on its key table.
    auto master = caseledger::AeadKey::FromHex(argv[4]);
    caseledger::RocksStoreOptions so;
    so.path = dir;
    auto store = caseledger::OpenRocksStore(so);
    if (!master.ok() || !store.ok()) {
      std::fprintf(stderr, "open: bad key or store\n");
      return 1;
    }
    auto opened = caseledger::KeyStore::Open((*store)->keys(), *master);
    if (!opened.ok()) {
      std::fprintf(stderr, "open: %s\n", opened.status().ToString().c_str());
      return 1;
    }
    keys = *std::move(opened);
    caseledger::testing::TestLedger tl;
    tl.signer = std::make_unique<caseledger::NoteSigner>(caseledger::testing::TestNoteSigner());
    options.signer = tl.signer.get();
    options.origin = caseledger::testing::kTestOrigin;
    options.cipher = keys.get();
    auto ledger = caseledger::Ledger::Open(options, *std::move(store));
    if (ledger.ok()) {
      tl.ledger = *std::move(ledger);
      t = std::move(tl);
    } else {
      t = ledger.status();
    }
  } else {
    t = caseledger::testing::OpenTestLedger(dir, options);
  }
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
          // Encrypted runs spread over many cases, so that data keys are
          // created (a synced write each) while the kill may land.
          std::string stream = argc == 5 ? absl::StrCat("case-", prefix, "-", (i * 7 + k) % 50)
                                         : absl::StrCat("case-", w % 4);
          batch.push_back({caseledger::testing::TestEvent(absl::StrCat(id, "-", k), stream, 200)});
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
