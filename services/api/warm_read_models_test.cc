// A waiting node's read models kept warm from its tailed local store
// (services/api/warm_read_models.h), against a PostgreSQL started by the test.
#include "services/api/warm_read_models.h"

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "ledger/key_store.h"
#include "ledger/ledger.h"
#include "ledger/pg_store.h"
#include "ledger/rocks_store.h"
#include "services/readmodel/projections.h"
#include "tests/postgres_process.h"
#include "tests/postgres_suite.h"
#include "services/append/event_codec.h"
#include "tests/test_events.h"
#include "tests/test_util.h"

namespace caseledger {
namespace {

using ::caseledger::testing::NewTempDir;

// A well-formed event, as a producer sends it: the read models parse its body.
Event Note(const std::string& id, const std::string& case_id) {
  v1::AppendRequest r = testing::NoteRequest(id, case_id, "client-" + case_id, "producer-1");
  auto e = ToLedgerEvent(r.event());
  EXPECT_TRUE(e.ok()) << e.status();
  return e.ok() ? *std::move(e) : Event();
}
Event Disposal(const std::string& id, const std::string& case_id) {
  v1::AppendRequest r = testing::EventRequest(id, case_id, "client-" + case_id, "producer-1",
                                              testing::kNoteAt + 60);
  r.mutable_event()->mutable_records_disposed()->set_method("crypto-shred");
  r.mutable_event()->mutable_records_disposed()->set_authority("retention-7y");
  auto e = ToLedgerEvent(r.event());
  EXPECT_TRUE(e.ok()) << e.status();
  return e.ok() ? *std::move(e) : Event();
}

AeadKey Master() { return *AeadKey::FromBytes(std::string(kAeadKeySize, '\x07')); }

KeyStoreOptions KeyOptions() {
  KeyStoreOptions k;
  k.shred_event_type = "records_disposed";
  k.erase_event_type = "subject_erased";
  return k;
}

std::unique_ptr<LogStore> Local(const std::string& dir) {
  RocksStoreOptions o;
  o.path = dir;
  o.block_cache_bytes = 8 << 20;
  auto s = OpenRocksStore(o);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *std::move(s) : nullptr;
}

std::vector<std::unique_ptr<Projection>> Projections() {
  std::vector<std::unique_ptr<Projection>> p;
  p.push_back(std::make_unique<CaseStateProjection>());
  p.push_back(std::make_unique<AccountingProjection>());
  return p;
}

// The owner: a PgStore holding the lease, its key store and ledger.
struct Owner {
  NoteSigner signer = testing::TestNoteSigner();
  std::unique_ptr<KeyStore> keys;
  std::unique_ptr<Ledger> ledger;
};

std::unique_ptr<Owner> OpenOwner(const std::string& conninfo) {
  PgStoreOptions o;
  o.conninfo = conninfo;
  o.node_id = "owner";
  o.local = Local(NewTempDir("warm_owner"));
  o.lease_ttl = absl::Seconds(2);
  auto store = OpenPgStore(std::move(o));
  EXPECT_TRUE(store.ok()) << store.status();
  if (!store.ok()) return nullptr;
  auto owner = std::make_unique<Owner>();
  auto keys = KeyStore::Open((*store)->keys(), Master(), KeyOptions());
  EXPECT_TRUE(keys.ok()) << keys.status();
  if (!keys.ok()) return nullptr;
  owner->keys = *std::move(keys);
  LedgerOptions lo;
  lo.origin = testing::kTestOrigin;
  lo.signer = &owner->signer;
  lo.cipher = owner->keys.get();
  lo.blinder = owner->keys.get();
  lo.checkpoint_every_records = 7;
  auto ledger = Ledger::Open(std::move(lo), *std::move(store));
  EXPECT_TRUE(ledger.ok()) << ledger.status();
  if (!ledger.ok()) return nullptr;
  owner->ledger = *std::move(ledger);
  return owner;
}

class WarmReadModelsTest : public testing::PostgresSuite {
 protected:
  // Starts a node waiting for the lease that keeps its local store and its
  // read models (under `projections`) warm; `opened` gets its store once
  // it takes the lease.
  void StartWaiting(const std::string& projections) {
    NoteSigner* signer = &waiting_signer_;
    WarmReadModelsOptions w;
    w.conninfo = pg_->conninfo();
    w.origin = testing::kTestOrigin;
    w.signer = signer;
    w.master_key = Master();
    w.key_options = KeyOptions();
    w.projector.path = projections;
    w.projector.shred_event_type = "records_disposed";
    w.projector.value_key = *ProjectionsKey(Master());
    w.projections = Projections;
    w.min_interval = absl::Milliseconds(50);
    w.log = log_.Sink();
    warm_.emplace(std::move(w));
    waiting_ = std::thread([this] {
      PgStoreOptions o;
      o.conninfo = pg_->conninfo();
      o.node_id = "waiting";
      o.local = Local(NewTempDir("warm_waiting"));
      o.lease_ttl = absl::Seconds(2);
      o.wait_for_lease = true;
      o.tail_interval = absl::Milliseconds(50);
      o.while_waiting = [this](LogStore& local) { warm_->Step(local); };
      o.log = log_.Sink();
      opened_ = OpenPgStore(std::move(o));
    });
  }
  void TearDown() override {
    if (waiting_.joinable()) waiting_.join();
  }

  NoteSigner waiting_signer_ = testing::TestNoteSigner();
  testing::LogLines log_;
  std::optional<WarmReadModels> warm_;
  std::thread waiting_;
  absl::StatusOr<std::unique_ptr<LogStore>> opened_;
};

// While it waits, the node's read models follow the owner's log (from an
// empty one, as in a new cluster); at lease time they need no catch-up, and
// stay as they are (no key was destroyed).
TEST_F(WarmReadModelsTest, ReadModelsFollowTheOwnerWhileWaiting) {
  auto owner = OpenOwner(pg_->conninfo());
  ASSERT_NE(owner, nullptr);
  const std::string projections = NewTempDir("warm_projections") + "/p";
  StartWaiting(projections);
  ASSERT_TRUE(log_.WaitFor("local store kept warm at 0 of 0", absl::Seconds(30))) << log_.All();
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(owner->ledger->Append({Note(absl::StrCat("e", i), absl::StrCat("case-", i % 3))}).ok());
  }
  EXPECT_TRUE(log_.WaitFor("read models kept warm at 30 of 30", absl::Seconds(30))) << log_.All();
  owner.reset();  // the lease lapses
  waiting_.join();
  ASSERT_TRUE(opened_.ok()) << opened_.status();
  ASSERT_TRUE(warm_->Finish().ok());
  EXPECT_FALSE(std::filesystem::exists(projections + ".reproject"));
  // The server's projector, opened at lease time, starts where they are.
  NoteSigner signer = testing::TestNoteSigner();
  auto keys = KeyStore::Open((*opened_)->keys(), Master(), KeyOptions());
  ASSERT_TRUE(keys.ok()) << keys.status();
  LedgerOptions lo;
  lo.origin = testing::kTestOrigin;
  lo.signer = &signer;
  lo.cipher = keys->get();
  lo.blinder = keys->get();
  auto ledger = Ledger::Open(std::move(lo), *std::move(opened_));
  ASSERT_TRUE(ledger.ok()) << ledger.status();
  ProjectorOptions po;
  po.path = projections;
  po.shred_event_type = "records_disposed";
  po.value_key = *ProjectionsKey(Master());
  auto projector = Projector::Open(po, ledger->get(), Projections());
  ASSERT_TRUE(projector.ok()) << projector.status();
  EXPECT_EQ((*projector)->position(), 30u);
  EXPECT_EQ((*projector)->full_reprojections(), 0u);
}

// A key the owner destroys while the node waits (a disposal) may have opened
// records the warm read models reflect: at lease time they are marked stale,
// so that the server's projector rebuilds them from the log.
TEST_F(WarmReadModelsTest, AKeyDestroyedWhileWaitingMarksTheReadModelsStale) {
  auto owner = OpenOwner(pg_->conninfo());
  ASSERT_NE(owner, nullptr);
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(owner->ledger->Append({Note(absl::StrCat("e", i), absl::StrCat("case-", i % 2))}).ok());
  }
  const std::string projections = NewTempDir("warm_projections_stale") + "/p";
  StartWaiting(projections);
  ASSERT_TRUE(log_.WaitFor("read models kept warm at 10 of 10", absl::Seconds(30))) << log_.All();
  auto disposed = owner->ledger->Append({Disposal("d", "case-1")});
  ASSERT_TRUE(disposed.ok()) << disposed.status();
  owner.reset();
  waiting_.join();
  ASSERT_TRUE(opened_.ok()) << opened_.status();
  ASSERT_TRUE(warm_->Finish().ok());
  EXPECT_TRUE(std::filesystem::exists(projections + ".reproject")) << log_.All();
}

}  // namespace
}  // namespace caseledger
