#include "services/readmodel/projector.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "ledger/crypto.h"
#include "ledger/internal/status_macros.h"
#include "ledger/key_store.h"
#include "ledger/rocks_store.h"
#include "services/append/case_gate.h"
#include "services/append/event_codec.h"
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
  auto master = AeadKey::FromBytes(std::string(32, '\x07'));
  ASSERT_TRUE(master.ok());
  auto ledger = testing::OpenEncryptedTestLedger(dir + "/ledger", *master);
  ASSERT_TRUE(ledger.ok()) << ledger.status();

  ProjectorOptions popts{dir + "/projections", 16};
  auto projector = Projector::Open(popts, ledger->ledger.get(), Counting());
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
}

}  // namespace
}  // namespace caseledger

namespace caseledger {
namespace {

// Each entry's text by event id: values that come from payload plaintext.
class TextsProjection : public Projection {
 public:
  std::string name() const override { return "texts"; }
  absl::Status Apply(const v1::Record& record, ProjectionTxn& txn) override {
    if (record.event().has_record_entry_written()) {
      txn.Put(record.event_id(), record.event().record_entry_written().text());
    }
    return absl::OkStatus();
  }
};

using testing::FilesContaining;

// The same texts keyed by case, so that a case's can be forgotten: erasures
// re-derive only the cases they touch (Projection::CanForget).
class CaseTextsProjection : public Projection {
 public:
  std::string name() const override { return "case-texts"; }
  static std::string Key(const std::string& stream, const std::string& event_id) {
    return stream + "/" + event_id;
  }
  absl::Status Apply(const v1::Record& record, ProjectionTxn& txn) override {
    if (record.event().has_record_entry_written()) {
      txn.Put(Key(record.event().stream_id(), record.event_id()),
              record.event().record_entry_written().text());
    }
    return absl::OkStatus();
  }
  bool CanForget() const override { return true; }
  absl::Status Forget(const std::set<std::string>& streams, ProjectionTxn& txn) override {
    for (const std::string& stream : streams) {
      std::vector<std::string> keys;
      CL_RETURN_IF_ERROR(txn.ScanStored(stream + "/", [&](absl::string_view k, absl::string_view) {
        keys.emplace_back(k);
        return true;
      }));
      for (const std::string& k : keys) txn.Delete(k);
    }
    return absl::OkStatus();
  }
};

// An encrypted ledger whose case-A entries (client-A) say DOOMED-i and
// case-B entries (client-B) KEPT-i, and a projector of their texts.
class ErasureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::NewTempDir("projector-erasure");
    auto master = AeadKey::FromBytes(std::string(32, '\x07'));
    ASSERT_TRUE(master.ok());
    auto db = testing::OpenEncryptedTestLedger(dir_ + "/ledger", *master);
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = *std::move(db);
    keys_ = db_.keys.get();
    ledger_ = db_.ledger.get();
    for (int i = 0; i < 40; ++i) {
      bool a = i % 2 == 0;
      Append(absl::StrCat("e", i), a ? "case-A" : "case-B", a ? "client-A" : "client-B",
             absl::StrCat(a ? "DOOMED-" : "KEPT-", i));
    }
    ASSERT_TRUE(OpenProjector().ok());
    ASSERT_EQ(projector_->CatchUp(), absl::OkStatus());
    ASSERT_EQ(Text("e10"), "DOOMED-10");
    // Control: the plaintext is in the store's files (an SST: chunks are not
    // logged, and closing the store flushed them).
    ASSERT_TRUE(OpenProjector().ok());
    ASSERT_FALSE(FilesContaining(projections(), "DOOMED-").empty());
  }
  void TearDown() override {
    projector_.reset();
    db_.ledger.reset();
  }

  absl::Status OpenProjector(std::optional<AeadKey> value_key = std::nullopt) {
    std::vector<std::unique_ptr<Projection>> p;
    if (by_case_) {
      p.push_back(std::make_unique<CaseTextsProjection>());
    } else {
      p.push_back(std::make_unique<TextsProjection>());
    }
    ProjectorOptions options{projections(), 8, "records_disposed", value_key};
    options.after_reproject = [this] { ++after_reproject_calls_; };
    projector_.reset();
    auto opened = Projector::Open(options, ledger_, std::move(p));
    if (!opened.ok()) return opened.status();
    projector_ = *std::move(opened);
    return absl::OkStatus();
  }

  void Append(const std::string& id, const std::string& stream, const std::string& subject,
              const std::string& text) {
    v1::Event e;
    e.set_event_id(id);
    e.set_stream_id(stream);
    e.add_subject_ids(subject);
    e.set_producer("test");
    e.mutable_occurred_at()->set_seconds(1767225600);
    if (text.empty()) {
      e.mutable_records_disposed()->set_method("crypto-shredding");
      e.mutable_records_disposed()->set_authority("retention-7y");
    } else {
      e.mutable_record_entry_written()->set_entry_id(id);
      e.mutable_record_entry_written()->set_text(text);
    }
    auto event = ToLedgerEvent(e);
    ASSERT_TRUE(event.ok()) << event.status();
    ASSERT_TRUE(ledger_->Append({*std::move(event)}).ok());
  }

  std::string Text(const std::string& event_id) {
    TextsProjection texts;
    return projector_->Get(texts, event_id).value_or("<absent>");
  }
  // With by_case_: entry i of the fixture's cases.
  std::string CaseText(int i) {
    CaseTextsProjection texts;
    return projector_
        ->Get(texts, CaseTextsProjection::Key(i % 2 == 0 ? "case-A" : "case-B", absl::StrCat("e", i)))
        .value_or("<absent>");
  }
  std::string projections() const { return dir_ + "/projections"; }
  bool MarkerExists() const { return std::filesystem::exists(projections() + ".reproject"); }

  std::string dir_;
  testing::TestLedger db_;
  KeyStore* keys_ = nullptr;
  Ledger* ledger_ = nullptr;
  std::unique_ptr<Projector> projector_;
  int after_reproject_calls_ = 0;
  bool by_case_ = false;  // CaseTextsProjection instead of TextsProjection
};

// Projected chunks are not logged (ledger/STORE.md "Restart"): a restart
// has no projection WAL to replay, and after a crash the catch-up re-applies
// what the last flush did not keep.
TEST_F(ErasureTest, ProjectedValuesNeverReachTheWal) {
  Append("e100", "case-B", "client-B", "UNLOGGED-100");
  ASSERT_EQ(projector_->CatchUp(), absl::OkStatus());
  ASSERT_EQ(Text("e100"), "UNLOGGED-100");
  EXPECT_EQ(FilesContaining(projections(), "UNLOGGED-"), std::vector<std::string>{});
  // Control: closing flushes it into a table, where the search finds it.
  ASSERT_TRUE(OpenProjector().ok());
  EXPECT_FALSE(FilesContaining(projections(), "UNLOGGED-").empty());
  EXPECT_EQ(Text("e100"), "UNLOGGED-100");
}

TEST_F(ErasureTest, ADisposalReprojectsAndTheOldValuesLeaveTheFiles) {
  Append("dispose-A", "case-A", "client-A", "");
  ASSERT_EQ(projector_->CatchUp(), absl::OkStatus());
  EXPECT_EQ(projector_->reprojections(), 1u);
  EXPECT_EQ(after_reproject_calls_, 1);  // the server drops the gate's states here
  EXPECT_EQ(projector_->position(), 41u);
  // The disposed case's entries no longer open; the other case's still do.
  EXPECT_NE(Text("e10"), "DOOMED-10");
  EXPECT_EQ(Text("e11"), "KEPT-11");
  EXPECT_FALSE(MarkerExists());
  // Raw bytes, with the store still open: no erased value in any file, while
  // the kept case's values are there (the search works).
  EXPECT_EQ(FilesContaining(projections(), "DOOMED-"), std::vector<std::string>{});
  EXPECT_FALSE(FilesContaining(projections(), "KEPT-").empty());

  // The disposal is accounted for: neither a rebuild, nor a reopen, nor a
  // later append reprojects again.
  ASSERT_EQ(projector_->Rebuild(), absl::OkStatus());
  Append("e-late", "case-B", "client-B", "KEPT-late");
  ASSERT_EQ(projector_->CatchUp(), absl::OkStatus());
  EXPECT_EQ(projector_->reprojections(), 1u);
  ASSERT_TRUE(OpenProjector().ok());
  ASSERT_EQ(projector_->CatchUp(), absl::OkStatus());
  EXPECT_EQ(projector_->reprojections(), 0u);
  EXPECT_EQ(Text("e-late"), "KEPT-late");
}

TEST_F(ErasureTest, TheFollowingThreadReprojectsAfterADisposal) {
  projector_->Start();
  Append("dispose-A", "case-A", "client-A", "");
  ASSERT_EQ(projector_->WaitFor(41, absl::Seconds(10)), absl::OkStatus());
  // WaitFor returns once the disposal's chunk is stored; the reprojection
  // follows on the same thread.
  for (int i = 0; i < 1000 && projector_->reprojections() == 0; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  projector_->Stop();
  EXPECT_EQ(projector_->reprojections(), 1u);
  EXPECT_EQ(projector_->health(), absl::OkStatus());
  EXPECT_NE(Text("e10"), "DOOMED-10");
  EXPECT_EQ(FilesContaining(projections(), "DOOMED-"), std::vector<std::string>{});
}

TEST_F(ErasureTest, AnErasureCutShortIsFinishedByTheNextOpen) {
  // What KeyAdminService does, up to a crash after the keys are destroyed.
  ASSERT_EQ(projector_->MarkStale(), absl::OkStatus());
  auto destroyed = keys_->EraseSubject("client-A");
  ASSERT_TRUE(destroyed.ok()) << destroyed.status();
  EXPECT_EQ(*destroyed, 1u);
  projector_.reset();
  ASSERT_TRUE(MarkerExists());
  EXPECT_FALSE(FilesContaining(projections(), "DOOMED-").empty());

  ASSERT_TRUE(OpenProjector().ok());
  EXPECT_EQ(projector_->reprojections(), 1u);
  EXPECT_EQ(projector_->full_reprojections(), 1u);  // MarkStale names everything
  EXPECT_FALSE(MarkerExists());
  EXPECT_NE(Text("e10"), "DOOMED-10");
  EXPECT_EQ(Text("e11"), "KEPT-11");
  EXPECT_EQ(FilesContaining(projections(), "DOOMED-"), std::vector<std::string>{});
}

// A marker that names the subject (what KeyAdminService writes) is finished
// by re-deriving that subject's cases only: no clear and replay of the
// ledger, and the same result as one.
TEST_F(ErasureTest, ANamedErasureCutShortIsFinishedForItsCasesOnly) {
  by_case_ = true;
  ASSERT_TRUE(OpenProjector().ok());  // the layout changed: rebuilt by case
  ASSERT_EQ(CaseText(10), "DOOMED-10");
  ASSERT_EQ(projector_->MarkStaleSubject(projector_->SubjectKeyOf("client-A")),
            absl::OkStatus());
  ASSERT_TRUE(keys_->EraseSubject("client-A").ok());
  projector_.reset();
  ASSERT_TRUE(MarkerExists());

  ASSERT_TRUE(OpenProjector().ok());
  EXPECT_EQ(projector_->reprojections(), 1u);
  EXPECT_EQ(projector_->full_reprojections(), 0u);
  EXPECT_FALSE(MarkerExists());
  EXPECT_NE(CaseText(10), "DOOMED-10");
  EXPECT_EQ(CaseText(11), "KEPT-11");
  EXPECT_EQ(FilesContaining(projections(), "DOOMED-"), std::vector<std::string>{});
  std::vector<std::string> rederived;
  for (int i = 0; i < 40; ++i) rederived.push_back(CaseText(i));
  // A full rebuild agrees.
  ASSERT_EQ(projector_->Rebuild(), absl::OkStatus());
  for (int i = 0; i < 40; ++i) EXPECT_EQ(CaseText(i), rederived[i]) << i;
}

TEST_F(ErasureTest, WithoutTheMarkerNothingIsRebuilt) {
  // The control for the test above: keys destroyed, no marker, no rebuild at
  // Open (so the marker is what finishes the work).
  ASSERT_TRUE(keys_->EraseSubject("client-A").ok());
  projector_.reset();
  ASSERT_TRUE(OpenProjector().ok());
  EXPECT_EQ(projector_->reprojections(), 0u);
  EXPECT_EQ(Text("e10"), "DOOMED-10");
}

// The read models sealed at rest: a plaintext store is rebuilt sealed (and
// purged) at Open, and the values read back.
TEST_F(ErasureTest, ASealedStoreHoldsNoPlaintextAndAPlaintextOneIsResealed) {
  ASSERT_FALSE(FilesContaining(projections(), "KEPT-").empty());
  auto key = ProjectionsKey(*AeadKey::FromBytes(std::string(32, '\x07')));
  ASSERT_TRUE(key.ok());
  ASSERT_TRUE(OpenProjector(*key).ok());
  EXPECT_EQ(projector_->reprojections(), 1u);
  EXPECT_EQ(Text("e11"), "KEPT-11");
  EXPECT_EQ(FilesContaining(projections(), "KEPT-"), std::vector<std::string>{});
  EXPECT_EQ(FilesContaining(projections(), "DOOMED-"), std::vector<std::string>{});
  // Following the ledger, sealed.
  Append("e-late", "case-B", "client-B", "KEPT-late");
  ASSERT_EQ(projector_->CatchUp(), absl::OkStatus());
  EXPECT_EQ(Text("e-late"), "KEPT-late");
  EXPECT_EQ(FilesContaining(projections(), "KEPT-late"), std::vector<std::string>{});
  // The same key again: nothing to rebuild.
  ASSERT_TRUE(OpenProjector(*key).ok());
  EXPECT_EQ(projector_->reprojections(), 0u);
  EXPECT_EQ(Text("e-late"), "KEPT-late");
  // Another key (a new master key): rebuilt under it.
  auto other = ProjectionsKey(*AeadKey::FromBytes(std::string(32, '\x08')));
  ASSERT_TRUE(OpenProjector(*other).ok());
  EXPECT_EQ(projector_->reprojections(), 1u);
  EXPECT_EQ(Text("e-late"), "KEPT-late");
}

TEST_F(ErasureTest, TheStoreNamesItsSealingKeyAsEncryptionMdSays) {
  std::string master;
  for (int i = 0; i < 32; ++i) master.push_back(static_cast<char>(i));
  auto key = ProjectionsKey(*AeadKey::FromBytes(master));
  ASSERT_TRUE(key.ok());
  ASSERT_TRUE(OpenProjector(*key).ok());
  projector_.reset();
  rocksdb::DB* raw = nullptr;
  ASSERT_TRUE(rocksdb::DB::OpenForReadOnly(rocksdb::Options(), projections(), &raw).ok());
  std::unique_ptr<rocksdb::DB> db(raw);
  std::string id;
  ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), "\x01sealing", &id).ok());
  EXPECT_EQ(id, "0445ccede15ee9ad");  // tests/testdata/encryption_golden.py
}

// The append gate caches case states folded while records still opened; an
// erasure makes it forget them (KeyAdminService calls ForgetAll).
TEST_F(ErasureTest, TheGateForgetsWhatErasedRecordsSaid) {
  v1::Event open;
  open.set_event_id("open-A");
  open.set_stream_id("case-A");
  open.add_subject_ids("client-A");
  open.set_producer("test");
  open.mutable_occurred_at()->set_seconds(1767225600);
  open.mutable_case_opened()->set_program("housing");
  open.mutable_case_opened()->set_jurisdiction("DOOMED-JURISDICTION");
  open.mutable_case_opened()->set_record_class(v1::RECORD_CLASS_GENERAL);
  auto event = ToLedgerEvent(open);
  ASSERT_TRUE(event.ok()) << event.status();
  ASSERT_TRUE(ledger_->Append({*std::move(event)}).ok());

  CaseGate gate(ledger_);
  auto jurisdiction = [&gate] {
    std::string out = "<error>";
    EXPECT_TRUE(gate.Inspect("case-A", [&](const CaseState& s) { out = s.jurisdiction; }).ok());
    return out;
  };
  ASSERT_EQ(jurisdiction(), "DOOMED-JURISDICTION");
  ASSERT_TRUE(keys_->EraseSubject("client-A").ok());
  EXPECT_EQ(jurisdiction(), "DOOMED-JURISDICTION");  // cached: the control
  gate.ForgetAll();
  EXPECT_EQ(jurisdiction(), "");
}

}  // namespace
}  // namespace caseledger
