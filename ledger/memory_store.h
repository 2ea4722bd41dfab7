// A LogStore in memory, over ordered maps: for unit tests that need a store
// but not a data directory. It behaves as RocksStore does (the ledger's tests
// run against both), except that nothing survives the object: "durable"
// means "applied", and Purge has no files to clean.
#ifndef CASELEDGER_LEDGER_MEMORY_STORE_H_
#define CASELEDGER_LEDGER_MEMORY_STORE_H_

#include <memory>

#include "ledger/log_store.h"

namespace caseledger {

struct MemoryStoreOptions {
  // Whether the store has a key table (LogStore::keys); RocksStore always
  // does, except for an old directory opened read-only.
  bool keys = true;
};

// A new, empty store. Thread-safe as LogStore requires.
std::unique_ptr<LogStore> NewMemoryStore(const MemoryStoreOptions& options = {});

}  // namespace caseledger

#endif  // CASELEDGER_LEDGER_MEMORY_STORE_H_
