// PgStore against a real PostgreSQL 15 started by the test: the log of record
// in PostgreSQL, derived state rebuilt from it, and the fenced sequencer.
#include "ledger/pg_store.h"

#include <postgresql/libpq-fe.h>

#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "ledger/key_store.h"
#include "ledger/ledger.h"
#include "ledger/pg_verify.h"
#include "ledger/rocks_store.h"
#include "tests/postgres_process.h"
#include "tests/postgres_suite.h"
#include "tests/test_util.h"

namespace caseledger {
namespace {

using ::caseledger::testing::NewTempDir;
using ::caseledger::testing::PostgresProcess;
using ::caseledger::testing::TestEvent;

std::unique_ptr<LogStore> Local(const std::string& dir) {
  RocksStoreOptions o;
  o.path = dir;
  o.block_cache_bytes = 8 << 20;
  o.write_buffer_bytes = 4 << 20;
  auto s = OpenRocksStore(o);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *std::move(s) : nullptr;
}

// A node: a PgStore over its own local directory, a key store on the shared
// key table, and a ledger.
struct Node {
  std::unique_ptr<NoteSigner> signer;
  std::unique_ptr<KeyStore> keys;
  std::unique_ptr<Ledger> ledger;
  Ledger* operator->() { return ledger.get(); }
};

AeadKey Master() {
  std::array<uint8_t, kAeadKeySize> b;
  b.fill(7);
  return AeadKey(b);
}

absl::StatusOr<std::unique_ptr<LogStore>> OpenStore(const PostgresProcess& pg,
                                                    const std::string& local_dir,
                                                    const std::string& node_id,
                                                    std::function<void(const absl::Status&)>
                                                        on_fenced = nullptr) {
  PgStoreOptions o;
  o.conninfo = pg.conninfo();
  o.node_id = node_id;
  o.local = Local(local_dir);
  o.lease_ttl = absl::Seconds(2);
  o.reconnect_timeout = absl::Seconds(5);
  o.on_fenced = std::move(on_fenced);
  return OpenPgStore(std::move(o));
}

absl::StatusOr<Node> OpenNode(std::unique_ptr<LogStore> store) {
  Node n;
  n.signer = std::make_unique<NoteSigner>(testing::TestNoteSigner());
  auto keys = KeyStore::Open(store->keys(), Master(), {"records_disposed", "subject_erased"});
  if (!keys.ok()) return keys.status();
  n.keys = *std::move(keys);
  LedgerOptions options;
  options.origin = testing::kTestOrigin;
  options.signer = n.signer.get();
  options.cipher = n.keys.get();
  options.checkpoint_every_records = 7;
  auto ledger = Ledger::Open(std::move(options), std::move(store));
  if (!ledger.ok()) return ledger.status();
  n.ledger = *std::move(ledger);
  return n;
}

// One value from PostgreSQL, as text.
std::string Query(const PostgresProcess& pg, const std::string& sql) {
  PGconn* c = PQconnectdb(pg.conninfo().c_str());
  PGresult* r = PQexec(c, sql.c_str());
  std::string out = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0
                        ? PQgetvalue(r, 0, 0)
                        : absl::StrCat("error: ", PQresultErrorMessage(r));
  PQclear(r);
  PQfinish(c);
  return out;
}

class PgStoreTest : public testing::PostgresSuite {};

TEST_F(PgStoreTest, AppendsLandInPostgresAndRetriesReturnTheOriginal) {
  std::string dir = NewTempDir("pg_append");
  auto store = OpenStore(*pg_, dir, "node-a");
  ASSERT_TRUE(store.ok()) << store.status();
  auto node = OpenNode(*std::move(store));
  ASSERT_TRUE(node.ok()) << node.status();
  for (int i = 0; i < 20; ++i) {
    auto r = (*node)->Append({TestEvent(absl::StrCat("e", i), absl::StrCat("case-", i % 3))});
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->seq, static_cast<uint64_t>(i));
  }
  EXPECT_EQ(Query(*pg_, "SELECT count(*) FROM cl_records"), "20");
  EXPECT_EQ(Query(*pg_, "SELECT head_seq FROM cl_partitions WHERE part = 0"), "20");
  // The data keys are in PostgreSQL, where another node finds them.
  EXPECT_NE(Query(*pg_, "SELECT count(*) FROM cl_keys"), "0");
  auto again = (*node)->Append({TestEvent("e4", "case-1")});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->duplicate);
  EXPECT_EQ(again->seq, 4u);
  EXPECT_EQ(Query(*pg_, "SELECT count(*) FROM cl_records"), "20");
  // P = 1 (no global log) verifies from the tables alone.
  ASSERT_TRUE((*node)->Checkpoint().ok());
  NoteVerifier v = testing::TestNoteVerifier();
  auto summary = VerifyPgLedger(pg_->conninfo(), testing::kTestOrigin, v, v);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->partition_sizes, std::vector<uint64_t>{20});
  EXPECT_EQ(summary->global_size, 0u);
}

TEST_F(PgStoreTest, NodeWithoutLocalStateRebuildsFromPostgres) {
  std::string dir_a = NewTempDir("pg_rebuild_a");
  Hash root;
  uint64_t size;
  std::optional<StoredCheckpoint> latest;
  std::vector<uint64_t> history;
  {
    auto store = OpenStore(*pg_, dir_a, "node-a");
    ASSERT_TRUE(store.ok()) << store.status();
    auto node = OpenNode(*std::move(store));
    ASSERT_TRUE(node.ok()) << node.status();
    for (int i = 0; i < 30; ++i) {
      ASSERT_TRUE((*node)->Append({TestEvent(absl::StrCat("r", i), absl::StrCat("case-", i % 4))}).ok());
    }
    ASSERT_TRUE((*node)->Checkpoint().ok());
    size = (*node)->Size();
    root = (*node)->Root();
    auto h = (*node)->History("client-case-1");
    ASSERT_TRUE(h.ok()) << h.status();
    history = h->seqs;
    latest = h->checkpoint;
  }
  // The data directory is lost: a new node rebuilds nodes, the subject
  // index and the record mirror from the log of record.
  std::filesystem::remove_all(dir_a);
  std::string dir_b = NewTempDir("pg_rebuild_b");
  auto store = OpenStore(*pg_, dir_b, "node-b-same-host");
  // node-a's lease (2 s) is still live unless it was the same node; wait.
  if (!store.ok()) {
    ASSERT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition) << store.status();
    absl::SleepFor(absl::Milliseconds(2500));
    store = OpenStore(*pg_, dir_b, "node-b-same-host");
  }
  ASSERT_TRUE(store.ok()) << store.status();
  auto node = OpenNode(*std::move(store));
  ASSERT_TRUE(node.ok()) << node.status();
  EXPECT_EQ((*node)->Size(), size);
  EXPECT_EQ((*node)->Root(), root);
  auto h = (*node)->History("client-case-1");
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->seqs, history);
  EXPECT_EQ(h->checkpoint.note, latest->note);
  // Payloads stay readable: the data keys came from PostgreSQL too.
  auto rec = (*node)->Read(5);
  ASSERT_TRUE(rec.ok()) << rec.status();
  ASSERT_TRUE(rec->openings.has_value());
  EXPECT_FALSE(rec->erased);
  // And it continues the chain where the head is.
  auto r = (*node)->Append({TestEvent("after", "case-9")});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->seq, size);
  auto view = (*node)->Read(size);
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(view->record.prev_hash, LeafHash((*(*node)->Read(size - 1)).leaf));
}

TEST_F(PgStoreTest, StaleOwnerCannotCommit) {
  std::string dir_a = NewTempDir("pg_stale_a"), dir_b = NewTempDir("pg_stale_b");
  absl::Notification fenced;
  absl::Status fenced_with;
  auto store_a = OpenStore(*pg_, dir_a, "node-a", [&](const absl::Status& s) {
    fenced_with = s;
    if (!fenced.HasBeenNotified()) fenced.Notify();
  });
  ASSERT_TRUE(store_a.ok()) << store_a.status();
  auto a = OpenNode(*std::move(store_a));
  ASSERT_TRUE(a.ok()) << a.status();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE((*a)->Append({TestEvent(absl::StrCat("a", i), "case-1")}).ok());

  // Another process of the same node id (a restart while the old one still
  // runs) takes the lease at once with a new epoch.
  auto store_b = OpenStore(*pg_, dir_b, "node-a");
  ASSERT_TRUE(store_b.ok()) << store_b.status();
  auto b = OpenNode(*std::move(store_b));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(Query(*pg_, "SELECT epoch FROM cl_partitions WHERE part = 0"), "2");

  auto stale = (*a)->Append({TestEvent("from-stale", "case-2")});
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kUnavailable) << stale.status();
  EXPECT_TRUE(absl::StrContains(stale.status().message(), "taken over")) << stale.status();
  ASSERT_TRUE(fenced.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_EQ(fenced_with.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Query(*pg_, "SELECT count(*) FROM cl_records"), "5");
  EXPECT_EQ(Query(*pg_, "SELECT count(*) FROM cl_records WHERE event_id = 'from-stale'"), "0");

  // The new owner continues from (head seq, head hash).
  auto r = (*b)->Append({TestEvent("from-new", "case-2")});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->seq, 5u);
  EXPECT_EQ((*b)->Read(5)->record.prev_hash, (*a)->Read(4)->leaf_hash);
  EXPECT_EQ(Query(*pg_, "SELECT head_seq FROM cl_partitions WHERE part = 0"), "6");
}

TEST_F(PgStoreTest, UniqueConstraintsHoldWithoutTheSequencer) {
  // A commit that passes the head check but repeats an event id or a
  // (case, version) is refused by PostgreSQL and changes nothing.
  std::string dir = NewTempDir("pg_unique");
  auto store = OpenStore(*pg_, dir, "node-a");
  ASSERT_TRUE(store.ok()) << store.status();
  auto node = OpenNode(*std::move(store));
  ASSERT_TRUE(node.ok()) << node.status();
  ASSERT_TRUE((*node)->Append({TestEvent("u0", "case-1")}).ok());
  auto leaf0 = (*node)->Read(0);
  ASSERT_TRUE(leaf0.ok());
  std::string head_before = Query(*pg_, "SELECT head_seq FROM cl_partitions");
  PGconn* c = PQconnectdb(pg_->conninfo().c_str());
  auto insert = [&](const std::string& event_id, const std::string& stream, int version) {
    std::string sql = absl::StrCat(
        "INSERT INTO cl_records (part, seq, leaf, payload, stream_id, version, event_id, epoch) "
        "VALUES (0, 1, '\\x00', '\\x00', convert_to('",
        stream, "', 'UTF8'), ", version, ", convert_to('", event_id, "', 'UTF8'), 1)");
    PGresult* r = PQexec(c, sql.c_str());
    std::string state = PQresultErrorField(r, PG_DIAG_SQLSTATE) != nullptr
                            ? PQresultErrorField(r, PG_DIAG_SQLSTATE)
                            : "ok";
    PQclear(r);
    return state;
  };
  EXPECT_EQ(insert("u0", "case-1", 1), "23505");  // event id again
  EXPECT_EQ(insert("u1", "case-1", 0), "23505");  // version 0 of case-1 again
  PQfinish(c);
  EXPECT_EQ(Query(*pg_, "SELECT count(*) FROM cl_records"), "1");
  EXPECT_EQ(Query(*pg_, "SELECT head_seq FROM cl_partitions"), head_before);
}

TEST_F(PgStoreTest, LocalStoreAheadOfTheLogOfRecordIsDataLoss) {
  std::string dir = NewTempDir("pg_ahead");
  {
    auto store = OpenStore(*pg_, dir, "node-a");
    ASSERT_TRUE(store.ok()) << store.status();
    auto node = OpenNode(*std::move(store));
    ASSERT_TRUE(node.ok()) << node.status();
    for (int i = 0; i < 3; ++i) ASSERT_TRUE((*node)->Append({TestEvent(absl::StrCat("x", i), "c")}).ok());
  }
  // The log of record lost its records (another database, a restore).
  SetUp();
  auto store = OpenStore(*pg_, dir, "node-a");
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss) << store.status();
  EXPECT_TRUE(absl::StrContains(store.status().message(), "holds 3 records")) << store.status();
}

}  // namespace
}  // namespace caseledger

namespace caseledger {
namespace {

absl::StatusOr<std::unique_ptr<LogStore>> OpenPartition(const PostgresProcess& pg,
                                                        const std::string& dir, int32_t part,
                                                        int32_t partitions) {
  PgStoreOptions o;
  o.conninfo = pg.conninfo();
  o.node_id = "node-p";
  o.local = Local(dir);
  o.partition = part;
  o.partitions = partitions;
  o.lease_ttl = absl::Seconds(2);
  o.reconnect_timeout = absl::Seconds(5);
  return OpenPgStore(std::move(o));
}

// P is written when the ledger is created and a node with another P is
// refused, naming the flag (CLUSTER.md "Partition of a case").
TEST_F(PgStoreTest, PartitionCountIsFixedAtCreation) {
  {
    auto one = OpenPartition(*pg_, NewTempDir("pg_p1"), 0, 1);
    ASSERT_TRUE(one.ok()) << one.status();
  }
  auto four = OpenPartition(*pg_, NewTempDir("pg_p4"), 2, 4);
  ASSERT_FALSE(four.ok());
  EXPECT_EQ(four.status().code(), absl::StatusCode::kFailedPrecondition) << four.status();
  EXPECT_TRUE(absl::StrContains(four.status().message(),
                                "partitions (--pg_partitions): got 4, the ledger in PostgreSQL "
                                "was created with 1"))
      << four.status();
  EXPECT_EQ(Query(*pg_, "SELECT count(*) FROM cl_partitions"), "1");
}

TEST_F(PgStoreTest, PartitionedLedgerRefusesAnUnpartitionedNode) {
  {
    auto p2 = OpenPartition(*pg_, NewTempDir("pg_p4_2"), 2, 4);
    ASSERT_TRUE(p2.ok()) << p2.status();
  }
  EXPECT_EQ(Query(*pg_, "SELECT count(*) FROM cl_partitions WHERE partitions = 4"), "4");
  auto one = OpenPartition(*pg_, NewTempDir("pg_p4_1"), 0, 1);
  ASSERT_FALSE(one.ok());
  EXPECT_TRUE(absl::StrContains(one.status().message(), "got 1, the ledger in PostgreSQL was "
                                                        "created with 4"))
      << one.status();
  auto bad = OpenPartition(*pg_, NewTempDir("pg_p4_9"), 4, 4);
  EXPECT_TRUE(absl::IsInvalidArgument(bad.status())) << bad.status();
}

}  // namespace
}  // namespace caseledger
