// PgStore against a real PostgreSQL 15 started by the test: the log of record
// in PostgreSQL, derived state rebuilt from it, and the fenced sequencer.
#include "ledger/pg_store.h"

#include <postgresql/libpq-fe.h>

#include <atomic>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
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

// Options of a node that waits for the lease and tails the log meanwhile.
PgStoreOptions WaitingNode(const PostgresProcess& pg, const std::string& local_dir) {
  PgStoreOptions o;
  o.conninfo = pg.conninfo();
  o.node_id = "node-b";
  o.local = Local(local_dir);
  o.lease_ttl = absl::Seconds(2);
  o.reconnect_timeout = absl::Seconds(5);
  o.wait_for_lease = true;
  o.tail_interval = absl::Milliseconds(50);
  return o;
}

// A node waiting for the lease copies the owner's records into its local
// store while it waits (reading PostgreSQL only): at lease time it is
// already at the owner's size, and the ledger it opens is the owner's.
TEST_F(PgStoreTest, WaitingNodeKeepsItsLocalStoreWarm) {
  auto store_a = OpenStore(*pg_, NewTempDir("pg_warm_a"), "node-a");
  ASSERT_TRUE(store_a.ok()) << store_a.status();
  auto a = OpenNode(*std::move(store_a));
  ASSERT_TRUE(a.ok()) << a.status();
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE((*a)->Append({TestEvent(absl::StrCat("w", i), absl::StrCat("case-", i % 5))}).ok());
  }
  const std::string keys_before = Query(*pg_, "SELECT count(*) FROM cl_keys");

  testing::LogLines log;
  absl::StatusOr<std::unique_ptr<LogStore>> store_b;
  std::thread waiting([&] {
    PgStoreOptions o = WaitingNode(*pg_, NewTempDir("pg_warm_b"));
    o.log = log.Sink();
    store_b = OpenPgStore(std::move(o));
  });
  EXPECT_TRUE(log.WaitFor("kept warm at 40 of 40", absl::Seconds(30)))
      << "the waiting node did not copy the owner's 40 records";
  // Waiting, it wrote nothing: the owner's epoch, the rows and the keys are as they were.
  EXPECT_EQ(Query(*pg_, "SELECT epoch || ' ' || owner FROM cl_partitions WHERE part = 0"),
            "1 node-a");
  EXPECT_EQ(Query(*pg_, "SELECT count(*) FROM cl_keys"), keys_before);
  for (int i = 40; i < 50; ++i) {
    ASSERT_TRUE((*a)->Append({TestEvent(absl::StrCat("w", i), absl::StrCat("case-", i % 5))}).ok());
  }
  ASSERT_TRUE((*a)->Checkpoint().ok());
  const Hash root = (*a)->Root();
  a->ledger.reset();  // the owner stops renewing; its lease lapses
  waiting.join();
  ASSERT_TRUE(store_b.ok()) << store_b.status();
  // It took the lease already warm: not from 0.
  const std::string at_lease = log.Find("at lease time the local store is at");
  ASSERT_FALSE(at_lease.empty()) << log.All();
  EXPECT_FALSE(absl::StrContains(at_lease, "local store is at 0,")) << at_lease;
  auto b = OpenNode(*std::move(store_b));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ((*b)->Size(), 50u);
  EXPECT_EQ((*b)->Root(), root);
  auto rec = (*b)->Read(7);
  ASSERT_TRUE(rec.ok()) << rec.status();
  EXPECT_TRUE(rec->openings.has_value());
  auto next = (*b)->Append({TestEvent("after-warm", "case-1")});
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->seq, 50u);
}

// A waiting node checks each record it copies against the one before: a
// log of record whose chain is broken is refused while it waits.
TEST_F(PgStoreTest, WaitingNodeRefusesABrokenChain) {
  auto store_a = OpenStore(*pg_, NewTempDir("pg_warm_chain_a"), "node-a");
  ASSERT_TRUE(store_a.ok()) << store_a.status();
  auto a = OpenNode(*std::move(store_a));
  ASSERT_TRUE(a.ok()) << a.status();
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE((*a)->Append({TestEvent(absl::StrCat("c", i), "case-1")}).ok());
  }
  // Record 6 carries record 5's leaf: its seq and prev_hash do not follow.
  ASSERT_EQ(Query(*pg_,
                  "UPDATE cl_records SET leaf = (SELECT leaf FROM cl_records WHERE seq = 5) "
                  "WHERE seq = 6 RETURNING 1"),
            "1");
  PgStoreOptions o = WaitingNode(*pg_, NewTempDir("pg_warm_chain_b"));
  absl::StatusOr<std::unique_ptr<LogStore>> b;
  absl::Notification done;
  std::thread waiting([&] {
    b = OpenPgStore(std::move(o));  // a's lease is live: b only waits (and tails)
    done.Notify();
  });
  const bool refused_while_waiting = done.WaitForNotificationWithTimeout(absl::Seconds(15));
  EXPECT_TRUE(refused_while_waiting) << "still waiting: the broken record was not seen";
  EXPECT_EQ(Query(*pg_, "SELECT epoch || ' ' || owner FROM cl_partitions WHERE part = 0"),
            "1 node-a");
  a->ledger.reset();  // (lets a waiting b take the lease and return)
  waiting.join();
  EXPECT_EQ(b.status().code(), absl::StatusCode::kDataLoss) << b.status();
  EXPECT_TRUE(absl::StrContains(b.status().message(), "record 6 does not chain")) << b.status();
}

// The owner answers key reads from memory (CLUSTER.md "Data keys of the
// owner"); a disposal's key deletions, committed with its record, reach that
// copy too: the disposed case's records no longer open, the others do.
TEST_F(PgStoreTest, DisposedKeysAreGoneFromTheOwnersKeyCopy) {
  auto store = OpenStore(*pg_, NewTempDir("pg_mirror"), "node-a");
  ASSERT_TRUE(store.ok()) << store.status();
  auto node = OpenNode(*std::move(store));
  ASSERT_TRUE(node.ok()) << node.status();
  ASSERT_TRUE((*node)->Append({TestEvent("m0", "case-1")}).ok());
  ASSERT_TRUE((*node)->Append({TestEvent("m1", "case-2")}).ok());
  auto before = (*node)->Read(0);
  ASSERT_TRUE(before.ok()) << before.status();
  ASSERT_TRUE(before->openings.has_value());
  Event disposal = TestEvent("m2", "case-1");
  disposal.event_type = "records_disposed";
  ASSERT_TRUE((*node)->Append({disposal}).ok());
  auto after = (*node)->Read(0);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_TRUE(after->erased);
  EXPECT_FALSE(after->openings.has_value());
  auto other = (*node)->Read(1);
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_TRUE(other->openings.has_value());
}

// While no synchronous standby answers, appends wait but the owner's lease
// is still renewed (its renewal commits locally): a standby outage longer
// than the lease does not hand the partition to another node.
TEST_F(PgStoreTest, LeaseIsRenewedWhileNoSynchronousStandbyAnswers) {
  auto store = OpenStore(*pg_, NewTempDir("pg_lease_sync"), "node-a");
  ASSERT_TRUE(store.ok()) << store.status();
  // No standby is named "absent": every commit that waits for a synchronous
  // standby waits until the setting is lifted (which releases it).
  struct Restore {
    const PostgresProcess& pg;
    ~Restore() {
      Query(pg, "ALTER SYSTEM RESET synchronous_standby_names");
      Query(pg, "SELECT pg_reload_conf()");
    }
  } restore{*pg_};
  Query(*pg_, "ALTER SYSTEM SET synchronous_standby_names = 'absent'");
  ASSERT_EQ(Query(*pg_, "SELECT pg_reload_conf()"), "t");
  const std::string before = Query(*pg_, "SELECT lease_until FROM cl_partitions WHERE part = 0");
  absl::SleepFor(absl::Seconds(4));  // two lease lengths: several renewals are due
  const std::string after = Query(*pg_, "SELECT lease_until FROM cl_partitions WHERE part = 0");
  EXPECT_NE(after, before) << "the lease was not renewed while no synchronous standby answered";
  EXPECT_EQ(Query(*pg_, "SELECT lease_until > clock_timestamp() FROM cl_partitions WHERE part = 0"),
            "t");
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

// A node that cannot serve gives its lease back (the server when it cannot
// bind its port): another node takes it at once, under a new epoch, and the
// release touches no later owner's lease.
TEST_F(PgStoreTest, ReleasedLeaseIsTakenAtOnceAndOnlyItsOwnIsReleased) {
  auto a = OpenStore(*pg_, NewTempDir("pg_release_a"), "node-a");
  ASSERT_TRUE(a.ok()) << a.status();
  auto refused = OpenStore(*pg_, NewTempDir("pg_release_b0"), "node-b");
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition) << refused.status();

  ASSERT_TRUE(ReleasePgLease(**a).ok());
  EXPECT_EQ(Query(*pg_, "SELECT lease_until <= clock_timestamp() FROM cl_partitions "
                        "WHERE part = 0"),
            "t");
  absl::SleepFor(absl::Seconds(1));  // a renewal (every 2/3 s) would have extended it
  auto b = OpenStore(*pg_, NewTempDir("pg_release_b"), "node-b");
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(Query(*pg_, "SELECT owner || ' ' || epoch FROM cl_partitions WHERE part = 0"),
            "node-b 2");
  // The released store commits nothing from then on.
  CommitBatch empty;
  absl::Status commit = (*a)->Commit(empty);
  EXPECT_EQ(commit.code(), absl::StatusCode::kFailedPrecondition) << commit;
  // Releasing again names epoch 1 only: node-b's lease stays.
  absl::Status again = ReleasePgLease(**a);
  EXPECT_EQ(again.code(), absl::StatusCode::kFailedPrecondition) << again;
  EXPECT_EQ(Query(*pg_, "SELECT lease_until > clock_timestamp() FROM cl_partitions WHERE part = 0"),
            "t");
  EXPECT_EQ(ReleasePgLease(*Local(NewTempDir("pg_release_local"))).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(PgStoreTest, LeaseIsRenewedWhileTheNewOwnerCatchesUp) {
  // node-b takes the lease and then spends two lease lengths before it is
  // open (here: held in its log callback at the catch-up's first line, as
  // a long catch-up or a take that waited for the synchronous standby
  // would). Its lease must be renewed meanwhile: node-c, starting then,
  // finds it held.
  {
    auto a = OpenStore(*pg_, NewTempDir("pg_catchup_a"), "node-a");
    ASSERT_TRUE(a.ok()) << a.status();
  }  // closed without releasing: the lease lapses after 2 s
  absl::Notification catching_up;
  std::thread b([&] {
    PgStoreOptions o;
    o.conninfo = pg_->conninfo();
    o.node_id = "node-b";
    o.local = Local(NewTempDir("pg_catchup_b"));
    o.lease_ttl = absl::Seconds(2);
    o.reconnect_timeout = absl::Seconds(5);
    o.wait_for_lease = true;
    o.log = [&](const std::string& line) {
      if (absl::StrContains(line, "at lease time the local store is at") &&
          !catching_up.HasBeenNotified()) {
        catching_up.Notify();
        absl::SleepFor(absl::Seconds(4));
      }
    };
    auto store = OpenPgStore(std::move(o));
    EXPECT_TRUE(store.ok()) << store.status();
  });
  catching_up.WaitForNotification();
  absl::SleepFor(absl::Seconds(3));  // past node-b's lease as taken
  auto c = OpenStore(*pg_, NewTempDir("pg_catchup_c"), "node-c");
  EXPECT_EQ(c.status().code(), absl::StatusCode::kFailedPrecondition)
      << "node-c took the lease of a node that was catching up";
  b.join();
  EXPECT_EQ(Query(*pg_, "SELECT owner FROM cl_partitions WHERE part = 0"), "node-b");
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

// Two partition owners create the same key at once (P > 1: a subject's cases
// in partitions of different nodes): the first creation stays, the second
// write changes nothing and says ABORTED, and both read the first's value
// (CLUSTER.md "Data keys in a partitioned ledger").
TEST_F(PgStoreTest, KeyCreationIsFirstWriterWins) {
  auto a = OpenPartition(*pg_, NewTempDir("pg_fww_a"), 0, 2);
  ASSERT_TRUE(a.ok()) << a.status();
  auto b = OpenPartition(*pg_, NewTempDir("pg_fww_b"), 1, 2);
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_TRUE((*a)->keys()->WriteKeys({{"k/subject", "key-a"}}).ok());
  absl::Status lost = (*b)->keys()->WriteKeys({{"k/other", "x"}, {"k/subject", "key-b"}});
  EXPECT_EQ(lost.code(), absl::StatusCode::kAborted) << lost;
  for (LogStore* s : {a->get(), b->get()}) {
    auto v = s->keys()->GetKey("k/subject");
    ASSERT_TRUE(v.ok()) << v.status();
    EXPECT_EQ(v->value_or("<none>"), "key-a");
    auto other = s->keys()->GetKey("k/other");
    ASSERT_TRUE(other.ok()) << other.status();
    EXPECT_FALSE(other->has_value()) << "the refused write was applied in part";
  }
  // The same value again (a repeat after a failover) is not a conflict.
  EXPECT_TRUE((*b)->keys()->WriteKeys({{"k/subject", "key-a"}}).ok());
}

// A KeyTable whose next GetKey, once armed, answers "missing": a key store
// that looked a subject up just before another node created its key.
class StaleOnce : public KeyTable {
 public:
  explicit StaleOnce(KeyTable* t) : t_(t) {}
  void Arm() { armed_ = true; }
  absl::StatusOr<std::optional<std::string>> GetKey(absl::string_view key) const override {
    if (armed_.exchange(false)) return std::optional<std::string>();
    return t_->GetKey(key);
  }
  absl::Status ScanKeys(
      absl::string_view prefix,
      const std::function<bool(absl::string_view, absl::string_view)>& fn) const override {
    return t_->ScanKeys(prefix, fn);
  }
  absl::Status WriteKeys(const std::vector<KeyWrite>& writes, bool purge) override {
    return t_->WriteKeys(writes, purge);
  }
  absl::Status UpdateKeys(
      const std::function<absl::StatusOr<std::vector<KeyWrite>>()>& plan) override {
    return t_->UpdateKeys(plan);
  }
  absl::Status Purge() override { return t_->Purge(); }

 private:
  KeyTable* t_;
  mutable std::atomic<bool> armed_{false};
};

// Two key stores on two partition owners seal for the same subject and case,
// the second having looked up before the first created the key: both seal
// under the same data key, and each opens the other's payload.
TEST_F(PgStoreTest, RacingKeyStoresSealUnderTheSameDataKey) {
  auto a = OpenPartition(*pg_, NewTempDir("pg_race_a"), 0, 2);
  ASSERT_TRUE(a.ok()) << a.status();
  auto b = OpenPartition(*pg_, NewTempDir("pg_race_b"), 1, 2);
  ASSERT_TRUE(b.ok()) << b.status();
  StaleOnce stale((*b)->keys());
  auto ka = KeyStore::Open((*a)->keys(), Master());
  ASSERT_TRUE(ka.ok()) << ka.status();
  auto kb = KeyStore::Open(&stale, Master());
  ASSERT_TRUE(kb.ok()) << kb.status();
  Event e = TestEvent("e1", "case-1");
  CommittedPayload pa = CommitFields(e.fields), pb = CommitFields(e.fields);
  std::vector<KeyWrite> wa, wb;
  ASSERT_TRUE((*ka)->Seal(e, &pa, &wa).ok());
  stale.Arm();
  absl::Status sealed = (*kb)->Seal(e, &pb, &wb);
  ASSERT_TRUE(sealed.ok()) << sealed;
  ASSERT_FALSE(pa.payload.key_id.empty());
  EXPECT_EQ(pb.payload.key_id, pa.payload.key_id);
  EXPECT_TRUE(
      (*kb)->OpenOpenings(pa.payload.key_id, pa.payload.sealed_openings, pa.commitment).ok());
  EXPECT_TRUE(
      (*ka)->OpenOpenings(pb.payload.key_id, pb.payload.sealed_openings, pb.commitment).ok());
}

// Two nodes start at once on a new key table with different master keys:
// the second, having found no master key id before the first wrote its own,
// is refused naming both ids (not ABORTED by the first-writer-wins write).
TEST_F(PgStoreTest, RacingOpensWithDifferentMasterKeysRefuseTheSecond) {
  auto a = OpenPartition(*pg_, NewTempDir("pg_master_a"), 0, 2);
  ASSERT_TRUE(a.ok()) << a.status();
  auto b = OpenPartition(*pg_, NewTempDir("pg_master_b"), 1, 2);
  ASSERT_TRUE(b.ok()) << b.status();
  StaleOnce stale((*b)->keys());
  ASSERT_TRUE(KeyStore::Open((*a)->keys(), Master()).ok());
  const AeadKey other = *AeadKey::FromBytes(std::string(kAeadKeySize, '\x09'));
  stale.Arm();
  auto refused = KeyStore::Open(&stale, other);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition) << refused.status();
  EXPECT_TRUE(absl::StrContains(refused.status().message(), MasterKeyId(Master())))
      << refused.status();
  EXPECT_TRUE(absl::StrContains(refused.status().message(), MasterKeyId(other)))
      << refused.status();
}

}  // namespace
}  // namespace caseledger
