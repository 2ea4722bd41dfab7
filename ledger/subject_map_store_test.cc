#include "ledger/subject_map_store.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "ledger/memory_store.h"
#include "ledger/rocks_store.h"
#include "ledger/subject_index.h"

namespace caseledger {
namespace {

Hash H(uint64_t i) { return Sha256Of(absl::StrCat("subject ", i)); }

SubjectState S(uint64_t count) { return SubjectState{count, Sha256Of(absl::StrCat("head ", count))}; }

// Commits the map's pending node writes as a checkpoint batch would.
void Commit(StoredSubjectMap& map, LogStore& store) {
  CommitBatch b;
  b.subject_map_nodes = map.TakeWrites();
  b.new_size = 0;
  ASSERT_TRUE(store.Commit(b).ok());
}

void ExpectSameProofs(StoredSubjectMap& stored, SubjectMap& mem, const std::vector<Hash>& keys) {
  ASSERT_EQ(stored.Root(), mem.Root());
  for (const Hash& k : keys) {
    absl::StatusOr<SubjectMapProof> a = stored.Prove(k);
    absl::StatusOr<SubjectMapProof> b = mem.Prove(k);
    ASSERT_TRUE(a.ok()) << a.status();
    ASSERT_TRUE(b.ok()) << b.status();
    EXPECT_EQ(a->siblings, b->siblings) << ShortHex(k);
    ASSERT_EQ(a->leaf.has_value(), b->leaf.has_value()) << ShortHex(k);
    if (a->leaf.has_value()) {
      EXPECT_EQ(a->leaf->key, b->leaf->key);
      EXPECT_EQ(a->leaf->state, b->leaf->state);
    }
    absl::StatusOr<std::optional<SubjectState>> got = stored.Get(k);
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(*got, mem.Get(k));
  }
}

bool SamePruned(const std::vector<PrunedMapNode>& a, const std::vector<PrunedMapNode>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].kind != b[i].kind || a[i].key != b[i].key || a[i].state != b[i].state ||
        a[i].hash != b[i].hash) {
      return false;
    }
  }
  return true;
}

// The stored map against the in-memory one (whose roots and proofs the
// golden vectors pin): same roots, proofs, states and pruned maps, through a
// cache of a few nodes, across reopening.
TEST(StoredSubjectMap, AgreesWithTheInMemoryMapThroughASmallCache) {
  std::unique_ptr<LogStore> store = NewMemoryStore();
  const SubjectMapStoreOptions tiny{8 * kSubjectMapCachedNodeBytes};
  absl::StatusOr<StoredSubjectMap> stored = StoredSubjectMap::Open(store.get(), tiny);
  ASSERT_TRUE(stored.ok()) << stored.status();
  SubjectMap mem;
  EXPECT_EQ(stored->Root(), EmptySubjectMapRoot());
  std::mt19937_64 rng(7);
  std::map<Hash, uint64_t> counts;
  std::vector<Hash> probe;
  for (uint64_t i = 0; i < 40; ++i) probe.push_back(H(100000 + i));  // never set
  for (int round = 0; round < 6; ++round) {
    std::map<Hash, SubjectState> before;
    for (int i = 0; i < 300; ++i) {
      Hash k = H(rng() % 1500);
      uint64_t& c = counts[k];
      if (!before.count(k)) before[k] = SubjectState{c, Hash{}};
      ++c;
      ASSERT_TRUE(stored->Set(k, S(c)).ok());
      mem.Set(k, S(c));
    }
    std::vector<Hash> keys = probe;
    for (const auto& [k, c] : counts) keys.push_back(k);
    ExpectSameProofs(*stored, mem, keys);
    // PrunedOld needs no pending writes in either map.
    Commit(*stored, *store);
    absl::flat_hash_map<Hash, SubjectState> old(before.begin(), before.end());
    absl::StatusOr<std::vector<PrunedMapNode>> a = stored->PrunedOld(old);
    absl::StatusOr<std::vector<PrunedMapNode>> b = mem.PrunedOld(old);
    ASSERT_TRUE(a.ok()) << a.status();
    ASSERT_TRUE(b.ok()) << b.status();
    EXPECT_TRUE(SamePruned(*a, *b)) << "round " << round;
    EXPECT_LE(stored->cached_nodes(), 8u);
    // Reopened from the store: the same map.
    stored = StoredSubjectMap::Open(store.get(), tiny);
    ASSERT_TRUE(stored.ok()) << stored.status();
    EXPECT_EQ(stored->Root(), mem.Root());
  }
  EXPECT_EQ(stored->PrunedOld({{H(999999), SubjectState{}}}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// Opening reads the root node only; a proof reads its path; an update
// writes only its path.
TEST(StoredSubjectMap, OpenReadsTheRootAndAnUpdateWritesItsPath) {
  std::unique_ptr<LogStore> store = NewMemoryStore();
  absl::StatusOr<StoredSubjectMap> map = StoredSubjectMap::Open(store.get());
  ASSERT_TRUE(map.ok());
  for (uint64_t i = 0; i < 5000; ++i) ASSERT_TRUE(map->Set(H(i), S(1)).ok());
  Commit(*map, *store);
  map = StoredSubjectMap::Open(store.get());
  ASSERT_TRUE(map.ok());
  EXPECT_EQ(map->store_reads(), 1u);
  absl::StatusOr<SubjectMapProof> proof = map->Prove(H(42));
  ASSERT_TRUE(proof.ok());
  EXPECT_EQ(map->store_reads(), proof->siblings.size() + 1);
  EXPECT_LT(proof->siblings.size(), 40u);
  ASSERT_TRUE(map->Set(H(42), S(2)).ok());
  std::vector<std::pair<std::string, std::string>> writes = map->TakeWrites();
  EXPECT_EQ(writes.size(), proof->siblings.size() + 1);
  // A new key splitting a leaf writes the path, the chain down to the split
  // and the moved leaf.
  ASSERT_TRUE(map->Set(H(5000), S(1)).ok());
  writes = map->TakeWrites();
  absl::StatusOr<SubjectMapProof> added = map->Prove(H(5000));
  ASSERT_TRUE(added.ok());
  EXPECT_EQ(writes.size(), added->siblings.size() + 2);
}

// A store from before the nodes were stored (layout 1, leaves only) is
// migrated at open: same root, layout 2, the old leaves gone.
TEST(StoredSubjectMap, MigratesALayout1Store) {
  SubjectMap mem;
  std::map<Hash, SubjectState> leaves;
  for (uint64_t i = 0; i < 3000; ++i) {
    leaves[H(i)] = S(i % 7 + 1);
    mem.Set(H(i), S(i % 7 + 1));
  }
  MemoryStoreOptions options;
  options.layout1_subject_map = leaves;
  std::unique_ptr<LogStore> store = NewMemoryStore(options);
  ASSERT_EQ(*store->SubjectMapLayout(), 1u);
  absl::StatusOr<StoredSubjectMap> map = StoredSubjectMap::Open(store.get());
  ASSERT_TRUE(map.ok()) << map.status();
  EXPECT_EQ(map->Root(), mem.Root());
  EXPECT_EQ(*store->SubjectMapLayout(), 2u);
  int left = 0;
  ASSERT_TRUE(store->ScanSubjectMap([&](const Hash&, const SubjectState&) { ++left; }).ok());
  EXPECT_EQ(left, 0);
  ExpectSameProofs(*map, mem, {H(0), H(17), H(2999), H(3000)});
}

// The golden vectors' map (SUBJECT_INDEX.md "Golden vectors"), stored in
// RocksDB and reopened.
TEST(StoredSubjectMap, GoldenRootInRocksDb) {
  const std::string dir = ::testing::TempDir() + "/subject_map_store_golden";
  std::filesystem::remove_all(dir);
  SubjectIndexBuilder b;
  const Hash l0 = Sha256Of("golden leaf 0"), l1 = Sha256Of("golden leaf 1"),
             l2 = Sha256Of("golden leaf 2");
  ASSERT_TRUE(b.Add(0, l0, {"client-1"}).ok());
  ASSERT_TRUE(b.Add(1, l1, {"client-2", "client-1"}).ok());
  ASSERT_TRUE(b.Add(2, l2, {"client-3"}).ok());
  {
    absl::StatusOr<std::unique_ptr<LogStore>> store = OpenRocksStore({dir});
    ASSERT_TRUE(store.ok()) << store.status();
    absl::StatusOr<StoredSubjectMap> map = StoredSubjectMap::Open(store->get());
    ASSERT_TRUE(map.ok()) << map.status();
    for (const char* id : {"client-1", "client-2", "client-3"}) {
      ASSERT_TRUE(map->Set(SubjectKey(id), b.StateOf(id)).ok());
    }
    Commit(*map, **store);
  }
  absl::StatusOr<std::unique_ptr<LogStore>> store = OpenRocksStore({dir});
  ASSERT_TRUE(store.ok()) << store.status();
  absl::StatusOr<StoredSubjectMap> map = StoredSubjectMap::Open(store->get());
  ASSERT_TRUE(map.ok()) << map.status();
  EXPECT_EQ(ToHex(map->Root()), "6eb9b30de491137e47208cbe09332eccf9b25b70781dd9efd1c21ed1baf39490");
  EXPECT_EQ(map->Root(), b.Root());
}

TEST(StoredSubjectMap, RefusesADamagedNode) {
  EXPECT_EQ(DecodeSubjectMapNode("\x03").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(DecodeSubjectMapNode(std::string(65, '\0')).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(SubjectMapNodePath(H(1), 0), std::string("\0\0", 2));
  const std::string p = SubjectMapNodePath(Hash{{0xff, 0xff}}, 9);
  EXPECT_EQ(p, std::string("\0\x09\xff\x80", 4));
}

}  // namespace
}  // namespace caseledger
