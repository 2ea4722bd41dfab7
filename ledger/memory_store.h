// A LogStore in memory, over ordered maps: for unit tests that need a store
// but not a data directory. It behaves as RocksStore does (the ledger's tests
// run against both), except that nothing survives the object: "durable"
// means "applied", and Purge has no files to clean.
#ifndef CASELEDGER_LEDGER_MEMORY_STORE_H_
#define CASELEDGER_LEDGER_MEMORY_STORE_H_

#include <map>
#include <memory>
#include <optional>

#include "ledger/log_store.h"

namespace caseledger {

struct MemoryStoreOptions {
  // Whether the store has a key table (LogStore::keys); RocksStore always
  // does, except for an old directory opened read-only.
  bool keys = true;
  // When set, the store is as a data directory from before the subject map's
  // nodes were stored left it (SUBJECT_INDEX.md "Storage", layout 1): these
  // map leaves and no nodes. Otherwise it starts empty, also in layout 1.
  std::optional<std::map<Hash, SubjectState>> layout1_subject_map;
};

// A new, empty store. Thread-safe as LogStore requires.
std::unique_ptr<LogStore> NewMemoryStore(const MemoryStoreOptions& options = {});

}  // namespace caseledger

#endif  // CASELEDGER_LEDGER_MEMORY_STORE_H_
