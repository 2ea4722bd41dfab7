// Master key rotation under kill -9 (ledger/ENCRYPTION.md "Master key
// rotation"): a process rotates the master key back and forth over a key
// table of a few thousand data keys and is killed with SIGKILL at random
// moments. After each kill every data key must be wrapped under the old
// master key or every one under the new, the table's master key id must say
// which, and every data key must unwrap to its original bytes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <random>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "ledger/crypto.h"
#include "ledger/key_store.h"
#include "ledger/rocks_store.h"
#include "tests/test_util.h"

namespace caseledger {
namespace {

constexpr int kDataKeys = 3000;

// Starts the rotator, waits for "ready", lets it run for `run_for`, kills it.
// Returns how many rotations it reported.
int RunAndKill(const std::string& dir, const std::string& a_hex, const std::string& b_hex,
               std::chrono::milliseconds run_for) {
  testing::KilledChild child = testing::RunThenKill(
      {"tests/rotation_crash_writer", dir, a_hex, b_hex}, "ready\n", absl::FromChrono(run_for));
  EXPECT_TRUE(child.ready) << child.out;
  EXPECT_TRUE(child.killed) << "rotator exited on its own";
  const std::string& out = child.out;
  int rotations = 0;
  for (size_t pos = 0; (pos = out.find("rotated ", pos)) != std::string::npos; ++pos) ++rotations;
  return rotations;
}

TEST(RotationCrashTest, KillNineLeavesAllOldOrAllNewWrapping) {
  std::string dir = testing::NewTempDir("rotation-crash");
  auto a = AeadKey::Generate();
  auto b = AeadKey::Generate();
  ASSERT_TRUE(a.ok() && b.ok());
  const std::string a_id = MasterKeyId(*a), b_id = MasterKeyId(*b);

  // kDataKeys wrapped data keys under A, written directly in the
  // ENCRYPTION.md format (creating them through appends would take an fsync
  // each).
  std::map<std::string, std::string> data_keys;  // raw id -> raw key
  {
    auto store = OpenRocksStore({dir});
    ASSERT_TRUE(store.ok()) << store.status();
    std::vector<KeyWrite> writes = {{kMasterKeyIdKey, a_id}};
    for (int i = 0; i < kDataKeys; ++i) {
      std::string id = absl::StrCat("data-key-", 100000 + i);  // 16 bytes
      auto k = AeadKey::Generate();
      ASSERT_TRUE(k.ok());
      std::string subject = absl::StrCat("client-", i), stream = absl::StrCat("case-", i % 97);
      auto sealed = Seal(*a, k->bytes(), WrapAad(id, subject, stream));
      ASSERT_TRUE(sealed.ok());
      writes.push_back({DataKeyEntryKey(id), EncodeWrappedKey({a_id, subject, stream, *sealed})});
      data_keys[id] = std::string(k->bytes());
    }
    ASSERT_TRUE((*store)->keys()->WriteKeys(writes).ok());
  }

  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> run_ms(0, 600);
  int rotations = 0;
  std::map<std::string, int> seen;  // master key id -> rounds that ended under it
  constexpr int kRounds = 8;
  for (int round = 0; round < kRounds; ++round) {
    rotations +=
        RunAndKill(dir, absl::BytesToHexString(a->bytes()), absl::BytesToHexString(b->bytes()),
                   std::chrono::milliseconds(run_ms(rng)));
    auto store = OpenRocksStore({dir});
    ASSERT_TRUE(store.ok()) << "round " << round << ": " << store.status();
    KeyTable* table = (*store)->keys();
    auto meta = table->GetKey(kMasterKeyIdKey);
    ASSERT_TRUE(meta.ok() && meta->has_value());
    ASSERT_TRUE(**meta == a_id || **meta == b_id) << **meta;
    const AeadKey& master = **meta == a_id ? *a : *b;
    ++seen[**meta];
    int checked = 0;
    ASSERT_TRUE(table
                    ->ScanKeys("d",
                               [&](absl::string_view key, absl::string_view value) {
                                 std::string id(key.substr(1));
                                 auto w = DecodeWrappedKey(value);
                                 EXPECT_TRUE(w.ok()) << id;
                                 if (!w.ok()) return false;
                                 EXPECT_EQ(w->master_key_id, **meta)
                                     << "round " << round << ": key " << id
                                     << " wrapped under another master key";
                                 auto raw = Open(master, w->sealed,
                                                 WrapAad(id, w->subject_id, w->stream_id));
                                 EXPECT_TRUE(raw.ok())
                                     << "round " << round << ": key " << id << ": " << raw.status();
                                 if (raw.ok()) EXPECT_EQ(*raw, data_keys[id]) << id;
                                 ++checked;
                                 return true;
                               })
                    .ok());
    ASSERT_EQ(checked, kDataKeys) << "round " << round;
  }
  EXPECT_GT(rotations, 0) << "no rotation finished in any round";
  std::printf("%d rounds, %d rotations reported, rounds ending under A: %d, under B: %d\n", kRounds,
              rotations, seen[a_id], seen[b_id]);
}

}  // namespace
}  // namespace caseledger
