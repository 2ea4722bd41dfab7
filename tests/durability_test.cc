// Invariant 1: an acknowledged append is durable. Runs a writer process,
// kills it with SIGKILL at random moments while appends are in flight
// (several rounds on one data directory), restarts, and checks that every
// acknowledged append is present at its seq and the whole ledger verifies.
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <random>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "ledger/key_store.h"
#include "ledger/rocks_store.h"
#include "ledger/store_verifier.h"
#include "ledger/subject_index.h"
#include "tests/test_util.h"

namespace caseledger {
namespace {

// Runs the writer until `run_for`, then SIGKILLs it. Returns the acked
// event ids with their seqs (only whole lines count).
std::map<std::string, uint64_t> RunAndKill(const std::string& dir, const std::string& prefix,
                                           std::chrono::milliseconds run_for,
                                           const std::string& master_key_hex = "") {
  std::vector<std::string> argv = {"tests/crash_writer", dir, prefix, "4"};
  if (!master_key_hex.empty()) argv.push_back(master_key_hex);
  testing::KilledChild child =
      testing::RunThenKill(argv, "ready\n", absl::FromChrono(run_for));
  EXPECT_TRUE(child.ready) << "writer did not open the ledger: " << child.out;
  EXPECT_TRUE(child.killed) << "writer exited on its own";
  std::string& out = child.out;
  std::map<std::string, uint64_t> acked;
  if (absl::StartsWith(out, "ready\n")) out.erase(0, 6);
  size_t end = out.rfind('\n');
  if (end == std::string::npos) return acked;
  for (absl::string_view line : absl::StrSplit(absl::string_view(out).substr(0, end), '\n')) {
    std::vector<absl::string_view> parts = absl::StrSplit(line, ' ');
    uint64_t seq;
    if (parts.size() == 3 && parts[0] == "ack" && absl::SimpleAtoi(parts[2], &seq)) {
      acked[std::string(parts[1])] = seq;
    } else {
      ADD_FAILURE() << "bad line from writer: " << line;
    }
  }
  return acked;
}

TEST(DurabilityTest, AcknowledgedAppendsSurviveKillNine) {
  std::string dir = testing::NewTempDir("durability");
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> run_ms(150, 900);
  std::map<std::string, uint64_t> all_acked;
  constexpr int kRounds = 6;
  for (int round = 0; round < kRounds; ++round) {
    int ms = run_ms(rng);
    std::map<std::string, uint64_t> acked =
        RunAndKill(dir, absl::StrCat("r", round), std::chrono::milliseconds(ms));
    EXPECT_GT(acked.size(), 0u) << "round " << round << " acknowledged nothing in " << ms << " ms";
    all_acked.insert(acked.begin(), acked.end());

    // Restart: every acknowledged append of every round is there, at its seq.
    auto t = testing::OpenTestLedger(dir);
    ASSERT_TRUE(t.ok()) << "round " << round << ": " << t.status();
    for (const auto& [id, seq] : all_acked) {
      auto found = (*t)->store().FindEventId(id);
      ASSERT_TRUE(found.ok()) << found.status();
      ASSERT_TRUE(found->has_value()) << "round " << round << ": acked " << id << " is missing";
      ASSERT_EQ(**found, seq) << id;
    }
    uint64_t size = (*t)->Size();
    EXPECT_GE(size, all_acked.size());
    // The per-subject index survived too: a checkpoint now (which must fold
    // in the subjects the killed writer touched after its last checkpoint)
    // and every checkpoint before it commit to exactly the subjects of
    // their records.
    ASSERT_TRUE((*t)->Checkpoint().ok()) << "round " << round;
    absl::StatusOr<std::vector<StoredCheckpoint>> checkpoints = (*t)->store().Checkpoints();
    ASSERT_TRUE(checkpoints.ok());
    SubjectIndexBuilder subjects;
    auto next_checkpoint = checkpoints->begin();
    for (uint64_t seq = 0; seq <= size; ++seq) {
      for (; next_checkpoint != checkpoints->end() && next_checkpoint->size == seq;
           ++next_checkpoint) {
        absl::StatusOr<Checkpoint> cp = OpenCheckpoint(
            next_checkpoint->note, testing::TestNoteVerifier(), testing::kTestOrigin);
        ASSERT_TRUE(cp.ok()) << cp.status();
        absl::StatusOr<std::optional<Hash>> want = SubjectRootFromExtensions(cp->extensions);
        ASSERT_TRUE(want.ok() && want->has_value()) << next_checkpoint->note;
        ASSERT_EQ(**want, subjects.Root())
            << "round " << round << ": subjects root of the checkpoint at size " << seq;
      }
      if (seq == size) break;
      absl::StatusOr<RecordView> r = (*t)->Read(seq);
      ASSERT_TRUE(r.ok()) << r.status();
      ASSERT_TRUE(subjects.Add(seq, r->leaf_hash, r->record.subject_ids).ok());
    }
    ASSERT_EQ(next_checkpoint, checkpoints->end());
    t->ledger.reset();

    StoreVerifyReport report = testing::VerifyTestDataDir(dir);
    ASSERT_EQ(report.status, absl::OkStatus()) << "round " << round;
    EXPECT_EQ(report.records_checked, size);
  }
  std::printf("%d rounds, %zu acknowledged appends, all present after kill -9\n", kRounds,
              all_acked.size());
}

// With payload encryption (ledger/ENCRYPTION.md) the writer also creates data
// keys as it goes (one synced write each, before the record is queued). After
// each kill every acknowledged record must still open: none may have lost its
// key.
TEST(DurabilityTest, EncryptedAppendsKeepTheirKeysAcrossKillNine) {
  std::string dir = testing::NewTempDir("durability-encrypted");
  const std::string key_hex(64, 'c');
  auto master = AeadKey::FromHex(key_hex);
  ASSERT_TRUE(master.ok());
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> run_ms(150, 900);
  std::map<std::string, uint64_t> all_acked;
  constexpr int kRounds = 4;
  for (int round = 0; round < kRounds; ++round) {
    std::map<std::string, uint64_t> acked =
        RunAndKill(dir, absl::StrCat("k", round), std::chrono::milliseconds(run_ms(rng)), key_hex);
    EXPECT_GT(acked.size(), 0u) << "round " << round;
    all_acked.insert(acked.begin(), acked.end());

    RocksStoreOptions so;
    so.path = dir;
    auto store = OpenRocksStore(so);
    ASSERT_TRUE(store.ok()) << store.status();
    auto keys = KeyStore::Open((*store)->keys(), *master);
    ASSERT_TRUE(keys.ok()) << keys.status();
    NoteSigner signer = testing::TestNoteSigner();
    LedgerOptions options;
    options.signer = &signer;
    options.origin = testing::kTestOrigin;
    options.cipher = keys->get();
    auto ledger = Ledger::Open(options, *std::move(store));
    ASSERT_TRUE(ledger.ok()) << ledger.status();
    for (const auto& [id, seq] : all_acked) {
      auto view = (*ledger)->Read(seq);
      ASSERT_TRUE(view.ok()) << id << ": " << view.status();
      ASSERT_EQ(view->record.event_id, id);
      ASSERT_FALSE(view->erased) << "round " << round << ": acked " << id << " lost its key";
      ASSERT_TRUE(view->openings.has_value()) << id;
    }
  }
  std::printf("%d encrypted rounds, %zu acknowledged appends, all readable after kill -9\n",
              kRounds, all_acked.size());
}

}  // namespace
}  // namespace caseledger
