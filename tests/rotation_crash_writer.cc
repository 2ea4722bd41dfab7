// A rotating process for the rotation crash test: opens a key table and
// rotates its master key back and forth between two keys forever, printing
// "ready" once open and "rotated <id>" after each rotation. The test kills it
// with SIGKILL at a random moment.
//
// Usage: rotation_crash_writer DATA_DIR KEY_A_HEX KEY_B_HEX
#include <unistd.h>

#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "ledger/key_store.h"
#include "ledger/rocks_store.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: rotation_crash_writer DATA_DIR KEY_A_HEX KEY_B_HEX\n");
    return 2;
  }
  auto a = caseledger::AeadKey::FromHex(argv[2]);
  auto b = caseledger::AeadKey::FromHex(argv[3]);
  caseledger::RocksStoreOptions o;
  o.path = argv[1];
  auto store = caseledger::OpenRocksStore(o);
  if (!a.ok() || !b.ok() || !store.ok()) {
    std::fprintf(stderr, "open failed\n");
    return 1;
  }
  caseledger::KeyTable* table = (*store)->keys();
  static constexpr char kReady[] = "ready\n";
  if (write(STDOUT_FILENO, kReady, sizeof(kReady) - 1) < 0) return 1;
  for (;;) {
    auto current = table->GetKey(caseledger::kMasterKeyIdKey);
    if (!current.ok() || !current->has_value()) return 1;
    bool under_a = **current == caseledger::MasterKeyId(*a);
    auto n = caseledger::RotateMasterKey(table, under_a ? *a : *b, under_a ? *b : *a);
    if (!n.ok()) {
      std::fprintf(stderr, "rotate: %s\n", n.status().ToString().c_str());
      return 1;
    }
    std::string line = absl::StrCat("rotated ", caseledger::MasterKeyId(under_a ? *b : *a), "\n");
    if (write(STDOUT_FILENO, line.data(), line.size()) < 0) return 1;
  }
}
