#include "services/api/projector.h"

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "ledger/crypto.h"
#include "ledger/key_store.h"
#include "ledger/rocks_store.h"
#include "services/api/event_codec.h"
#include "tests/test_util.h"

namespace caseledger {
namespace {

// Counts records per stream and remembers the last text written to each.
class CountingProjection : public Projection {
 public:
  std::string name() const override { return "count"; }
  absl::Status Apply(const v1::Record& record, ProjectionTxn& txn) override {
    uint64_t n = 0;
    auto old = txn.Get(record.stream_id());
    if (old.ok() && !absl::SimpleAtoi(*old, &n)) return absl::DataLossError("bad count");
    txn.Put(record.stream_id(), absl::StrCat(n + 1));
    txn.Put(record.stream_id() + "#text", record.event().record_entry_written().text());
    return absl::OkStatus();
  }
};

AppendRequest Entry(int i) {
  v1::Event e;
  e.set_event_id(absl::StrCat("e", i));
  e.set_stream_id(absl::StrCat("case-", i % 7));
  e.set_producer("test");
  e.mutable_occurred_at()->set_seconds(1767225600 + i);
  e.mutable_record_entry_written()->set_text(absl::StrCat("text ", i));
  return {*ToLedgerEvent(e)};
}

std::vector<std::unique_ptr<Projection>> Counting() {
  std::vector<std::unique_ptr<Projection>> p;
  p.push_back(std::make_unique<CountingProjection>());
  return p;
}

std::map<std::string, std::string> Dump(const Projector& p) {
  CountingProjection c;
  std::map<std::string, std::string> out;
  EXPECT_EQ(p.Scan(c, "",
                   [&](absl::string_view k, absl::string_view v) {
                     out[std::string(k)] = std::string(v);
                     return true;
                   }),
            absl::OkStatus());
  return out;
}

TEST(ProjectorTest, FollowsTheLedgerAndRebuildGivesTheSameState) {
  std::string dir = testing::NewTempDir("projector");
  auto t = testing::OpenTestLedger(dir + "/ledger");
  ASSERT_TRUE(t.ok()) << t.status();
  ProjectorOptions options{dir + "/projections", 16};
  auto projector = Projector::Open(options, t->ledger.get(), Counting());
  ASSERT_TRUE(projector.ok()) << projector.status();
  (*projector)->Start();
  for (int i = 0; i < 100; ++i) ASSERT_TRUE((*t)->Append(Entry(i)).ok());
  ASSERT_EQ((*projector)->WaitFor(100, absl::Seconds(10)), absl::OkStatus());
  (*projector)->Stop();
  std::map<std::string, std::string> incremental = Dump(**projector);
  EXPECT_EQ(incremental["case-3"], "14");  // i % 7 == 3 for 14 values below 100
  EXPECT_EQ(incremental["case-3#text"], "text 94");

  ASSERT_EQ((*projector)->Rebuild(), absl::OkStatus());
  EXPECT_EQ((*projector)->position(), 100u);
  EXPECT_EQ(Dump(**projector), incremental);
}

TEST(ProjectorTest, ReopenResumesFromTheStoredPosition) {
  std::string dir = testing::NewTempDir("projector");
  auto t = testing::OpenTestLedger(dir + "/ledger");
  ASSERT_TRUE(t.ok());
  ProjectorOptions options{dir + "/projections", 8};
  for (int i = 0; i < 30; ++i) ASSERT_TRUE((*t)->Append(Entry(i)).ok());
  {
    auto p = Projector::Open(options, t->ledger.get(), Counting());
    ASSERT_TRUE(p.ok());
    ASSERT_EQ((*p)->CatchUp(), absl::OkStatus());
    EXPECT_EQ((*p)->position(), 30u);
  }
  for (int i = 30; i < 45; ++i) ASSERT_TRUE((*t)->Append(Entry(i)).ok());
  auto p = Projector::Open(options, t->ledger.get(), Counting());
  ASSERT_TRUE(p.ok());
  EXPECT_EQ((*p)->position(), 30u);
  ASSERT_EQ((*p)->CatchUp(), absl::OkStatus());
  EXPECT_EQ(Dump(**p)["case-0"], "7");  // 0, 7, ..., 42
  EXPECT_EQ((*p)->WaitFor(46, absl::Milliseconds(10)).code(),
            absl::StatusCode::kDeadlineExceeded);
}

TEST(ProjectorTest, ProjectionsAheadOfTheLedgerAreRefused) {
  std::string dir = testing::NewTempDir("projector");
  ProjectorOptions options{dir + "/projections", 8};
  {
    auto t = testing::OpenTestLedger(dir + "/ledger");
    ASSERT_TRUE(t.ok());
    for (int i = 0; i < 5; ++i) ASSERT_TRUE((*t)->Append(Entry(i)).ok());
    auto p = Projector::Open(options, t->ledger.get(), Counting());
    ASSERT_TRUE(p.ok());
    ASSERT_EQ((*p)->CatchUp(), absl::OkStatus());
  }
  auto empty = testing::OpenTestLedger(dir + "/other-ledger");
  ASSERT_TRUE(empty.ok());
  auto p = Projector::Open(options, empty->ledger.get(), Counting());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StartsWith(p.status().message(),
                               "projections are at seq 5 but the ledger has only 0 records"))
      << p.status();
}

}  // namespace
}  // namespace caseledger

namespace caseledger {
namespace {

// With encryption at rest the projector reads sealed payloads from its scan
// and must open them as Ledger::Read does; otherwise every body would
// project empty.
TEST(ProjectorTest, ProjectsSealedPayloadsOpened) {
  std::string dir = testing::NewTempDir("projector-sealed");
  RocksStoreOptions so;
  so.path = dir + "/ledger";
  auto store = OpenRocksStore(so);
  ASSERT_TRUE(store.ok()) << store.status();
  auto master = AeadKey::FromBytes(std::string(32, '\x07'));
  ASSERT_TRUE(master.ok());
  auto keys = KeyStore::Open((*store)->keys(), *master, {"records_disposed"});
  ASSERT_TRUE(keys.ok()) << keys.status();
  NoteSigner signer = testing::TestNoteSigner();
  LedgerOptions options;
  options.signer = &signer;
  options.origin = testing::kTestOrigin;
  options.cipher = keys->get();
  auto ledger = Ledger::Open(options, *std::move(store));
  ASSERT_TRUE(ledger.ok()) << ledger.status();

  ProjectorOptions popts{dir + "/projections", 16};
  auto projector = Projector::Open(popts, ledger->get(), Counting());
  ASSERT_TRUE(projector.ok()) << projector.status();
  (*projector)->Start();
  for (int i = 0; i < 30; ++i) {
    AppendRequest r = Entry(i);
    r.event.subject_ids = {absl::StrCat("client-", i % 7)};
    ASSERT_TRUE((*ledger)->Append({std::move(r)}).ok());
  }
  ASSERT_EQ((*projector)->WaitFor(30, absl::Seconds(10)), absl::OkStatus());
  (*projector)->Stop();

  // The payloads really are sealed, and the projection saw their text.
  auto payload = (*ledger)->store().GetPayload(24);
  ASSERT_TRUE(payload.ok());
  auto decoded = DecodePayload(*payload);
  ASSERT_TRUE(decoded.ok());
  EXPECT_FALSE(decoded->key_id.empty());
  EXPECT_FALSE(absl::StrContains(*payload, "text 24"));
  std::map<std::string, std::string> state = Dump(**projector);
  EXPECT_EQ(state["case-3#text"], "text 24");  // 3, 10, 17, 24
  EXPECT_EQ(state["case-3"], "4");
  projector->reset();
  ledger->reset();
}

}  // namespace
}  // namespace caseledger
