#include "ledger/ledger_builder.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ledger/clock.h"
#include "ledger/ledger.h"
#include "ledger/rocks_store.h"
#include "ledger/store_verifier.h"
#include "ledger/subject_index_check.h"
#include "tests/test_util.h"

namespace caseledger {
namespace {

constexpr uint64_t kCases = 30;

// Event n: case n % kCases, its client, and every 7th event a second
// subject shared by many cases.
Event EventNo(uint64_t n) {
  Event e = testing::TestEvent(absl::StrCat("ev-", n), absl::StrCat("case-", n % kCases), 100);
  if (n % 7 == 0) e.subject_ids.push_back(absl::StrCat("shared-", n % 3));
  return e;
}

// Deterministic salts, the same sequence for the ledger and the builder.
SaltSource CountingSalts() {
  auto next = std::make_shared<uint64_t>(0);
  return [next] {
    Hash h{};
    uint64_t v = ++*next;
    for (int i = 0; i < 8; ++i) h[i] = static_cast<uint8_t>(v >> (8 * i));
    return h;
  };
}

std::unique_ptr<LogStore> OpenStore(const std::string& dir, bool bulk_load) {
  RocksStoreOptions o;
  o.path = dir;
  o.bulk_load = bulk_load;
  absl::StatusOr<std::unique_ptr<LogStore>> store = OpenRocksStore(o);
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? *std::move(store) : nullptr;
}

// Every key and value of every column family of a closed data directory.
std::map<std::string, std::map<std::string, std::string>> Contents(const std::string& dir) {
  std::vector<std::string> names;
  EXPECT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir, &names).ok());
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (const std::string& n : names) families.emplace_back(n, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  rocksdb::Status s =
      rocksdb::DB::OpenForReadOnly(rocksdb::DBOptions(), dir, families, &handles, &db);
  EXPECT_TRUE(s.ok()) << s.ToString();
  std::map<std::string, std::map<std::string, std::string>> out;
  if (!s.ok()) return out;
  for (size_t i = 0; i < handles.size(); ++i) {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), handles[i]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      out[names[i]][it->key().ToString()] = it->value().ToString();
    }
    db->DestroyColumnFamilyHandle(handles[i]);
  }
  delete db;
  return out;
}

// VerifyStore with the subject-map check, as ledger_verify runs it offline.
void ExpectVerifies(const std::string& dir, uint64_t size, uint64_t checkpoints) {
  RocksStoreOptions o;
  o.path = dir;
  o.read_only = true;
  absl::StatusOr<std::unique_ptr<LogStore>> store = OpenRocksStore(o);
  ASSERT_TRUE(store.ok()) << store.status();
  NoteVerifier verifier = testing::TestNoteVerifier();
  SubjectIndexCheck subjects;
  StoreVerifyOptions vo;
  vo.note_verifier = &verifier;
  vo.origin = testing::kTestOrigin;
  vo.observer = &subjects;
  StoreVerifyReport report = VerifyStore(**store, vo);
  EXPECT_TRUE(report.status.ok()) << report.status;
  EXPECT_EQ(report.records_checked, size);
  EXPECT_EQ(report.checkpoints_checked, checkpoints);
  EXPECT_EQ(subjects.checked(), checkpoints);
}

// Builds kEvents events with the builder (checkpoint_every_records =
// `every`) and through a Ledger (a checkpoint by count at the same sizes, or
// only the final Checkpoint() for 0), and compares the directories.
void ExpectSameBytes(uint64_t every) {
  const std::string ledger_dir = testing::NewTempDir("builder_ledger");
  const std::string built_dir = testing::NewTempDir("builder_built");
  const NoteSigner signer = testing::TestNoteSigner();
  FakeClock clock;
  constexpr uint64_t kEvents = 2300, kBatch = 100;
  const uint64_t checkpoints = every > 0 ? kEvents / every + 1 : 1;
  {
    LedgerOptions o;
    o.origin = testing::kTestOrigin;
    o.signer = &signer;
    o.clock = &clock;
    o.salt_source = CountingSalts();
    o.checkpoint_every_records = every > 0 ? every : uint64_t{1} << 40;
    absl::StatusOr<std::unique_ptr<Ledger>> ledger = Ledger::Open(o, OpenStore(ledger_dir, false));
    ASSERT_TRUE(ledger.ok()) << ledger.status();
    // One AppendBatch at a time: each is one group commit of kBatch events.
    for (uint64_t n = 0; n < kEvents; n += kBatch) {
      std::vector<AppendRequest> batch;
      for (uint64_t i = n; i < n + kBatch; ++i) batch.push_back({EventNo(i), std::nullopt});
      ASSERT_TRUE((*ledger)->AppendBatch(std::move(batch)).ok());
    }
    ASSERT_TRUE((*ledger)->Checkpoint().ok());
  }
  {
    LedgerBuilderOptions o;
    o.origin = testing::kTestOrigin;
    o.signer = &signer;
    o.clock = &clock;
    o.salt_source = CountingSalts();
    o.batch_records = kBatch;
    o.checkpoint_every_records = every;
    std::unique_ptr<LogStore> store = OpenStore(built_dir, /*bulk_load=*/true);
    ASSERT_NE(store, nullptr);
    absl::Status s = BuildLedger(o, kEvents, EventNo, store.get());
    ASSERT_TRUE(s.ok()) << s;
  }
  auto want = Contents(ledger_dir);
  auto got = Contents(built_dir);
  ASSERT_EQ(want.size(), got.size());
  for (const auto& [family, entries] : want) {
    // Records, payloads, Merkle nodes, subject entries and map nodes,
    // checkpoints, the event-id and stream indexes, the tree size.
    EXPECT_EQ(got[family].size(), entries.size()) << family;
    EXPECT_TRUE(got[family] == entries) << "column family " << family << " differs";
  }
  EXPECT_EQ(want["records"].size(), kEvents);
  EXPECT_EQ(want["checkpoints"].size(), checkpoints);
  ExpectVerifies(built_dir, kEvents, checkpoints);
}

TEST(LedgerBuilderTest, StoresTheBytesALedgerStores) { ExpectSameBytes(500); }

// One checkpoint, the subject map built at once from its leaves.
TEST(LedgerBuilderTest, StoresTheBytesALedgerStoresWithOneCheckpoint) { ExpectSameBytes(0); }

// How many of events [0, limit) are in case c (c < limit).
uint64_t InCase(uint64_t limit, uint64_t c) { return (limit - c + kCases - 1) / kCases; }
// The version event n gets in its case.
uint64_t VersionOf(uint64_t n) { return InCase(n, n % kCases); }

TEST(LedgerBuilderTest, GrowsALedgerThatLedgerOpensAndAppendsTo) {
  const std::string dir = testing::NewTempDir("builder_grow");
  const NoteSigner signer = testing::TestNoteSigner();
  FakeClock clock;  // no checkpoint falls due by time in the ledger below
  LedgerOptions lo;
  lo.clock = &clock;
  LedgerBuilderOptions bo;
  bo.origin = testing::kTestOrigin;
  bo.signer = &signer;
  bo.clock = &clock;
  bo.batch_records = 128;
  bo.checkpoint_every_records = 400;
  {
    std::unique_ptr<LogStore> store = OpenStore(dir, true);
    ASSERT_NE(store, nullptr);
    absl::Status s = BuildLedger(bo, 1000, EventNo, store.get());
    ASSERT_TRUE(s.ok()) << s;
  }
  ExpectVerifies(dir, 1000, 2);  // at 512 (the first batch end 400 past 0) and 1000
  {
    // The real ledger opens it and continues each stream's versions.
    absl::StatusOr<testing::TestLedger> l = testing::OpenTestLedger(dir, lo);
    ASSERT_TRUE(l.ok()) << l.status();
    EXPECT_EQ((*l)->Size(), 1000u);
    absl::StatusOr<AppendResult> r = (*l)->Append({EventNo(1000), VersionOf(1000)});
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->seq, 1000u);
    absl::StatusOr<SubjectHistory> h = (*l)->History("client-case-3");
    ASSERT_TRUE(h.ok()) << h.status();
    EXPECT_EQ(h->seqs.size(), InCase(1000, 3));  // as of the builder's last checkpoint
  }
  {
    // Record 1000 is after the latest checkpoint: the builder refuses.
    std::unique_ptr<LogStore> store = OpenStore(dir, true);
    ASSERT_NE(store, nullptr);
    absl::Status s = BuildLedger(bo, 10, EventNo, store.get());
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  }
  {
    absl::StatusOr<testing::TestLedger> l = testing::OpenTestLedger(dir, lo);
    ASSERT_TRUE(l.ok()) << l.status();
    ASSERT_TRUE((*l)->Checkpoint().ok());
  }
  {
    // Grown from there: versions and subject chains continue from the store.
    std::unique_ptr<LogStore> store = OpenStore(dir, true);
    ASSERT_NE(store, nullptr);
    absl::Status s = BuildLedger(bo, 600, EventNo, store.get());
    ASSERT_TRUE(s.ok()) << s;
  }
  ExpectVerifies(dir, 1601, 5);  // and at 1001, 1513, 1601
  absl::StatusOr<testing::TestLedger> l = testing::OpenTestLedger(dir, lo);
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ((*l)->Size(), 1601u);
  absl::StatusOr<AppendResult> r = (*l)->Append({EventNo(1601), VersionOf(1601)});
  ASSERT_TRUE(r.ok()) << r.status();
  absl::StatusOr<SubjectHistory> h = (*l)->History("shared-0");
  ASSERT_TRUE(h.ok()) << h.status();
  uint64_t want = 0;
  for (uint64_t n = 0; n < 1601; ++n) want += (n % 7 == 0 && n % 3 == 0);
  EXPECT_EQ(h->seqs.size(), want);
}

}  // namespace
}  // namespace caseledger
