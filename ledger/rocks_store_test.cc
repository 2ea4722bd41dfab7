#include "ledger/rocks_store.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace caseledger {
namespace {

std::string TempDir() {
  static int n = 0;
  std::string dir = absl::StrCat(std::getenv("TEST_TMPDIR"), "/store-", n++);
  std::filesystem::remove_all(dir);
  return dir;
}

std::unique_ptr<LogStore> Open(const std::string& dir, bool read_only = false) {
  RocksStoreOptions o;
  o.path = dir;
  o.read_only = read_only;
  auto s = OpenRocksStore(o);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *std::move(s) : nullptr;
}

CommitBatch Batch(uint64_t first, int n, const std::string& stream, uint64_t first_version) {
  CommitBatch b;
  for (int i = 0; i < n; ++i) {
    uint64_t seq = first + i;
    b.records.push_back({seq, absl::StrCat("leaf-", seq), absl::StrCat("payload-", seq), stream,
                         first_version + i, absl::StrCat("evt-", seq)});
    b.nodes.push_back({0, seq, LeafHash(absl::StrCat("leaf-", seq))});
  }
  b.new_size = first + n;
  return b;
}

TEST(RocksStoreTest, CommitThenReadEveryIndex) {
  std::string dir = TempDir();
  auto store = Open(dir);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(*store->Size(), 0u);
  EXPECT_EQ(*store->StreamLength("case-1"), 0u);
  CommitBatch b = Batch(0, 3, "case-1", 0);
  b.checkpoints.emplace_back(3, "note-3");
  ASSERT_EQ(store->Commit(b), absl::OkStatus());
  ASSERT_EQ(store->Commit(Batch(3, 2, "case-10", 0)), absl::OkStatus());

  EXPECT_EQ(*store->Size(), 5u);
  EXPECT_EQ(*store->GetLeaf(4), "leaf-4");
  EXPECT_EQ(*store->GetPayload(1), "payload-1");
  EXPECT_EQ(store->GetLeaf(5).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(**store->FindEventId("evt-2"), 2u);
  EXPECT_FALSE(store->FindEventId("evt-9")->has_value());
  EXPECT_EQ(*store->FindStreamVersion("case-10", 1), 4u);
  // "case-1" is a prefix of "case-10": the separator keeps them apart.
  EXPECT_EQ(*store->StreamLength("case-1"), 3u);
  EXPECT_EQ(*store->StreamLength("case-10"), 2u);
  EXPECT_EQ(*store->StreamLength("case"), 0u);
  EXPECT_EQ(*store->GetNode(0, 3), LeafHash("leaf-3"));
  EXPECT_EQ(store->GetNode(1, 0).status().code(), absl::StatusCode::kNotFound);

  auto latest = store->LatestCheckpoint();
  ASSERT_TRUE(latest.ok() && latest->has_value());
  EXPECT_EQ((*latest)->size, 3u);
  EXPECT_EQ((*latest)->note, "note-3");
  EXPECT_EQ(store->CheckpointAt(4).status().code(), absl::StatusCode::kNotFound);

  std::vector<std::pair<uint64_t, uint64_t>> versions;
  ASSERT_EQ(store->ScanStream("case-1", 1,
                              [&](uint64_t v, uint64_t seq) {
                                versions.emplace_back(v, seq);
                                return true;
                              }),
            absl::OkStatus());
  EXPECT_EQ(versions, (std::vector<std::pair<uint64_t, uint64_t>>{{1, 1}, {2, 2}}));
}

// With a tail of 4 events, a stream's entries are spread over the index
// families, the tail being written and the active one while it is read
// (STORE.md "Deferred indexes"); every read sees all of them, in order.
TEST(RocksStoreTest, IndexReadsMergeTheTailAndTheFamilies) {
  std::string dir = TempDir();
  RocksStoreOptions o;
  o.path = dir;
  o.index_tail_events = 4;
  auto opened = OpenRocksStore(o);
  ASSERT_TRUE(opened.ok()) << opened.status();
  std::unique_ptr<LogStore> store = *std::move(opened);
  constexpr uint64_t kGroups = 40;
  for (uint64_t g = 0; g < kGroups; ++g) {
    ASSERT_EQ(store->Commit(Batch(3 * g, 3, g % 2 == 0 ? "even" : "odd", 3 * (g / 2))),
              absl::OkStatus());
    // Read while the background writer may be moving earlier entries.
    const uint64_t size = 3 * (g + 1);
    for (uint64_t seq = 0; seq < size; ++seq) {
      auto found = store->FindEventId(absl::StrCat("evt-", seq));
      ASSERT_TRUE(found.ok() && found->has_value()) << seq;
      ASSERT_EQ(**found, seq);
    }
    for (const char* stream : {"even", "odd"}) {
      const uint64_t parity = stream[0] == 'e' ? 0 : 1;
      const uint64_t groups = (g + 2 - parity) / 2;  // groups of this stream so far
      ASSERT_EQ(*store->StreamLength(stream), 3 * groups) << stream << " after group " << g;
      std::vector<std::pair<uint64_t, uint64_t>> want, got;
      for (uint64_t v = 1; v < 3 * groups; ++v) want.emplace_back(v, 6 * (v / 3) + 3 * parity + v % 3);
      ASSERT_EQ(store->ScanStream(stream, 1,
                                  [&](uint64_t v, uint64_t seq) {
                                    got.emplace_back(v, seq);
                                    return true;
                                  }),
                absl::OkStatus());
      ASSERT_EQ(got, want) << stream << " after group " << g;
      if (groups > 0) {
        ASSERT_EQ(*store->FindStreamVersion(stream, 3 * groups - 1), want.back().second);
      }
    }
  }
  store.reset();
  // A clean close wrote every entry: a reopen finds them with an empty tail.
  store = Open(dir);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(**store->FindEventId("evt-0"), 0u);
  EXPECT_EQ(**store->FindEventId(absl::StrCat("evt-", 3 * kGroups - 1)), 3 * kGroups - 1);
  EXPECT_EQ(*store->StreamLength("odd"), 3 * kGroups / 2);
}

TEST(RocksStoreTest, ScanRecordsPairsPayloadsAndNodesBySeq) {
  std::string dir = TempDir();
  auto store = Open(dir);
  ASSERT_NE(store, nullptr);
  CommitBatch b = Batch(0, 4, "s", 0);
  b.records[2].payload.clear();
  ASSERT_EQ(store->Commit(b), absl::OkStatus());
  std::vector<uint64_t> keys;
  ASSERT_EQ(store->ScanRecords(1,
                               [&](const LogStore::ScannedRecord& r) {
                                 keys.push_back(r.key_seq);
                                 EXPECT_EQ(std::string(r.leaf), absl::StrCat("leaf-", r.key_seq));
                                 EXPECT_TRUE(r.payload.has_value());
                                 EXPECT_TRUE(r.leaf_node.has_value());
                                 return r.key_seq < 2;  // stop after seq 2
                               }),
            absl::OkStatus());
  EXPECT_EQ(keys, (std::vector<uint64_t>{1, 2}));
}

TEST(RocksStoreTest, SurvivesReopenAndRefusesASecondWriter) {
  std::string dir = TempDir();
  {
    auto store = Open(dir);
    ASSERT_NE(store, nullptr);
    ASSERT_EQ(store->Commit(Batch(0, 2, "s", 0)), absl::OkStatus());
    RocksStoreOptions o;
    o.path = dir;
    auto second = OpenRocksStore(o);
    EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_TRUE(absl::StrContains(second.status().message(), dir)) << second.status();
  }
  auto store = Open(dir, /*read_only=*/true);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(*store->Size(), 2u);
  EXPECT_EQ(*store->GetLeaf(1), "leaf-1");
}

// What a restart replays is bounded: the live WAL stays near max_wal_bytes,
// not growing with what was committed, because reaching it flushes the memtables
// that hold the oldest WAL file's writes (memtables alone, 32 MiB each here,
// would keep all of it).
TEST(RocksStoreTest, LiveWalStaysNearItsCap) {
  std::string dir = TempDir();
  constexpr uint64_t kCap = 1 << 20;
  constexpr int kBatches = 96;  // 96 x 32 x 16 KiB = 48 MiB of payloads
  {
    RocksStoreOptions o;
    o.path = dir;
    o.max_wal_bytes = kCap;
    auto store = OpenRocksStore(o);
    ASSERT_TRUE(store.ok()) << store.status();
    for (int b = 0; b < kBatches; ++b) {
      CommitBatch batch = Batch(b * 32, 32, "s", b * 32);
      for (auto& r : batch.records) r.payload.assign(16 << 10, 'p');
      ASSERT_EQ((*store)->Commit(batch), absl::OkStatus());
    }
  }  // closed without a final flush, as kill -9 would leave it
  uint64_t wal_bytes = 0;
  std::string wal_files;
  for (const auto& f : std::filesystem::directory_iterator(dir)) {
    if (f.path().extension() != ".log") continue;
    wal_bytes += f.file_size();
    absl::StrAppend(&wal_files, " ", f.path().filename().string(), ":", f.file_size());
  }
  // The WAL also grows while a flush runs, by as much as is written
  // meanwhile: a loose bound, a third of what was written.
  EXPECT_LT(wal_bytes, 16 * kCap) << "live WAL after 48 MiB of commits:" << wal_files;
  auto store = Open(dir, /*read_only=*/true);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(*store->Size(), uint64_t{kBatches * 32});
  EXPECT_EQ(store->GetPayload(kBatches * 32 - 1)->size(), size_t{16 << 10});
}

// The names of the files under `dir` whose bytes contain `needle`.
std::vector<std::string> FilesWith(const std::string& dir, const std::string& needle) {
  std::vector<std::string> out;
  for (const auto& f : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(f.path(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (bytes.find(needle) != std::string::npos) out.push_back(f.path().filename().string());
  }
  return out;
}

// A clean close flushes: the next open has no WAL to replay.
TEST(RocksStoreTest, CloseLeavesNothingInTheWal) {
  std::string dir = TempDir();
  {
    auto store = Open(dir);
    ASSERT_NE(store, nullptr);
    CommitBatch b = Batch(0, 2, "s", 0);
    b.records[1].payload = "FLUSHED-AT-CLOSE";
    ASSERT_EQ(store->Commit(b), absl::OkStatus());
  }
  std::vector<std::string> files = FilesWith(dir, "FLUSHED-AT-CLOSE");
  ASSERT_FALSE(files.empty());
  for (const std::string& f : files) {
    EXPECT_FALSE(absl::EndsWith(f, ".log")) << f << " still holds the commit";
  }
  auto store = Open(dir, /*read_only=*/true);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(*store->GetPayload(1), "FLUSHED-AT-CLOSE");
}

TEST(RocksStoreTest, ReadOnlyOpenOfMissingDirectoryFails) {
  RocksStoreOptions o;
  o.path = TempDir();
  o.read_only = true;
  auto s = OpenRocksStore(o);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StartsWith(s.status().message(), "open data directory " + o.path))
      << s.status();
}

TEST(RocksStoreTest, CosignaturesPerSizeOneLinePerWitness) {
  std::string dir = TempDir();
  {
    auto store = Open(dir);
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Commit(Batch(0, 3, "s", 0)).ok());
    ASSERT_TRUE(store->PutCosignature(3, "w2+00000002", "line w2 old").ok());
    ASSERT_TRUE(store->PutCosignature(3, "w1+00000001", "line w1").ok());
    ASSERT_TRUE(store->PutCosignature(3, "w2+00000002", "line w2 new").ok());
    ASSERT_TRUE(store->PutCosignature(30, "w1+00000001", "other size").ok());
    auto lines = store->Cosignatures(3);
    ASSERT_TRUE(lines.ok()) << lines.status();
    EXPECT_EQ(*lines, (std::vector<std::string>{"line w1", "line w2 new"}));
    EXPECT_TRUE(store->Cosignatures(4)->empty());
    EXPECT_EQ(store->LatestCosignedSize()->value_or(0), 30u);
    CommitBatch cps;
    cps.new_size = 3;
    for (uint64_t size : {1, 2, 3}) cps.checkpoints.emplace_back(size, absl::StrCat("note ", size));
    ASSERT_TRUE(store->Commit(cps).ok());
    auto in = store->CheckpointsIn(2, 3);
    ASSERT_TRUE(in.ok()) << in.status();
    ASSERT_EQ(in->size(), 2u);
    EXPECT_EQ((*in)[0].size, 2u);
    EXPECT_EQ((*in)[1].note, "note 3");
    EXPECT_TRUE(store->CheckpointsIn(4, 100)->empty());
  }
  auto ro = Open(dir, /*read_only=*/true);
  ASSERT_NE(ro, nullptr);
  EXPECT_EQ(ro->Cosignatures(30)->size(), 1u);
}

// A data directory written before the cosignatures family existed still opens
// read-only (ledger_verify on an old copy): no lines, and writes are refused.
TEST(RocksStoreTest, ReadOnlyOpenOfADirectoryWithoutCosignatures) {
  std::string dir = TempDir();
  {
    auto store = Open(dir);
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Commit(Batch(0, 2, "s", 0)).ok());
  }
  {
    std::vector<std::string> names;
    ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir, &names).ok());
    std::vector<rocksdb::ColumnFamilyDescriptor> families;
    for (const std::string& n : names) families.emplace_back(n, rocksdb::ColumnFamilyOptions());
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* db = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::DBOptions(), dir, families, &handles, &db).ok());
    for (size_t i = 0; i < names.size(); ++i) {
      if (names[i] == "cosignatures") ASSERT_TRUE(db->DropColumnFamily(handles[i]).ok());
    }
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
    delete db;
  }
  auto ro = Open(dir, /*read_only=*/true);
  ASSERT_NE(ro, nullptr);
  EXPECT_EQ(*ro->Size(), 2u);
  EXPECT_TRUE(ro->Cosignatures(2)->empty());
  EXPECT_FALSE(ro->LatestCosignedSize()->has_value());
  EXPECT_EQ(ro->PutCosignature(2, "w+00000000", "x").code(),
            absl::StatusCode::kFailedPrecondition);
}

// The master key rotation's guarantee: a commit destroying a key (a case's
// disposal) that arrives while an update has read the key but not yet
// written it waits, so the update cannot bring the destroyed key back.
TEST(RocksStoreTest, UpdateKeysHoldsOtherKeyWritesBetweenItsReadsAndItsWrite) {
  auto store = Open(TempDir());
  ASSERT_NE(store, nullptr);
  KeyTable* table = store->keys();
  ASSERT_NE(table, nullptr);
  ASSERT_EQ(table->WriteKeys({{"dk", "wrapped-1"}}), absl::OkStatus());

  absl::Notification committed;
  bool committed_during_plan = true;
  std::thread disposal;
  absl::Status updated = table->UpdateKeys([&]() -> absl::StatusOr<std::vector<KeyWrite>> {
    auto read = table->GetKey("dk");
    EXPECT_TRUE(read.ok() && read->has_value());
    disposal = std::thread([&] {
      CommitBatch b;
      b.key_writes.push_back({"dk", std::nullopt});
      EXPECT_EQ(store->Commit(b), absl::OkStatus());
      committed.Notify();
    });
    // Without the exclusion the commit lands at once; with it, this bounded
    // wait runs out.
    committed_during_plan = committed.WaitForNotificationWithTimeout(absl::Milliseconds(300));
    return std::vector<KeyWrite>{{"dk", "wrapped-2"}};
  });
  EXPECT_EQ(updated, absl::OkStatus());
  disposal.join();
  EXPECT_FALSE(committed_during_plan);
  EXPECT_EQ(*table->GetKey("dk"), std::nullopt);  // deleted after the update, not before

  // An error from the plan writes nothing.
  absl::Status failed = table->UpdateKeys(
      []() -> absl::StatusOr<std::vector<KeyWrite>> { return absl::DataLossError("plan failed"); });
  EXPECT_EQ(failed, absl::DataLossError("plan failed"));
  EXPECT_EQ(*table->GetKey("dk"), std::nullopt);
}

}  // namespace
}  // namespace caseledger
