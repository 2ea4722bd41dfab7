#include "ledger/ledger.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "ledger/key_store.h"
#include "ledger/memory_store.h"
#include "ledger/merkle_verify.h"
#include "ledger/subject_index.h"
#include "ledger/subject_map_store.h"
#include "tests/test_util.h"

namespace caseledger {
namespace {

using ::caseledger::testing::NewTempDir;
using ::caseledger::testing::OpenTestLedger;
using ::caseledger::testing::TestEvent;
using ::caseledger::testing::TestLedger;

std::string Msg(const absl::Status& s) { return std::string(s.message()); }

// The ledger's behaviour does not depend on the store behind it: the tests
// below run on RocksStore (a data directory) and on MemoryStore.
enum class StoreKind { kRocks, kMemory };

class LedgerStoreTest : public ::testing::TestWithParam<StoreKind> {
 protected:
  absl::StatusOr<TestLedger> OpenLedger(LedgerOptions options = LedgerOptions()) {
    if (GetParam() == StoreKind::kRocks) return OpenTestLedger(NewTempDir("ledger"), options);
    return OpenOnMemory(nullptr, std::move(options));
  }
  // With payloads sealed under data keys wrapped by `master`.
  absl::StatusOr<TestLedger> OpenEncryptedLedger(const AeadKey& master) {
    if (GetParam() == StoreKind::kRocks) {
      return testing::OpenEncryptedTestLedger(NewTempDir("ledger"), master);
    }
    return OpenOnMemory(&master, LedgerOptions());
  }

 private:
  // As testing::OpenTestLedger and OpenEncryptedTestLedger, on a MemoryStore.
  static absl::StatusOr<TestLedger> OpenOnMemory(const AeadKey* master, LedgerOptions options) {
    TestLedger t;
    t.signer = std::make_unique<NoteSigner>(testing::TestNoteSigner());
    options.origin = testing::kTestOrigin;
    options.signer = t.signer.get();
    std::unique_ptr<LogStore> store = NewMemoryStore();
    if (master != nullptr) {
      auto keys = KeyStore::Open(store->keys(), *master, {"records_disposed", "subject_erased"});
      if (!keys.ok()) return keys.status();
      t.keys = *std::move(keys);
      options.cipher = t.keys.get();
    }
    auto ledger = Ledger::Open(std::move(options), std::move(store));
    if (!ledger.ok()) return ledger.status();
    t.ledger = *std::move(ledger);
    return t;
  }
};

std::string StoreName(const ::testing::TestParamInfo<StoreKind>& info) {
  return info.param == StoreKind::kRocks ? "Rocks" : "Memory";
}

INSTANTIATE_TEST_SUITE_P(Stores, LedgerStoreTest,
                         ::testing::Values(StoreKind::kRocks, StoreKind::kMemory), StoreName);

TEST_P(LedgerStoreTest, AppendsAreSequencedAndChained) {
  auto t = OpenLedger();
  ASSERT_TRUE(t.ok()) << t.status();
  Ledger& l = *t->ledger;
  for (int i = 0; i < 5; ++i) {
    auto r = l.Append({TestEvent(absl::StrCat("e", i), i % 2 ? "case-a" : "case-b")});
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->seq, static_cast<uint64_t>(i));
    EXPECT_EQ(r->version, static_cast<uint64_t>(i / 2));
    EXPECT_FALSE(r->duplicate);
  }
  EXPECT_EQ(l.Size(), 5u);
  auto r3 = l.Read(3);
  auto r4 = l.Read(4);
  ASSERT_TRUE(r3.ok() && r4.ok());
  EXPECT_EQ(r4->record.prev_hash, r3->leaf_hash);
  EXPECT_EQ(r4->record.stream_id, "case-b");
  EXPECT_EQ(r4->record.version, 2u);
  EXPECT_EQ(l.Read(5).status().code(), absl::StatusCode::kNotFound);
}

TEST_P(LedgerStoreTest, DuplicateEventIdReturnsOriginalAndAppendsNothing) {
  auto t = OpenLedger();
  ASSERT_TRUE(t.ok()) << t.status();
  auto first = (*t)->Append({TestEvent("evt-1", "case-1")});
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE((*t)->Append({TestEvent("evt-2", "case-1")}).ok());
  auto retry = (*t)->Append({TestEvent("evt-1", "case-1")});
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_TRUE(retry->duplicate);
  EXPECT_EQ(retry->seq, first->seq);
  EXPECT_EQ(retry->leaf_hash, first->leaf_hash);
  EXPECT_EQ((*t)->Size(), 2u);

  auto other_stream = (*t)->Append({TestEvent("evt-1", "case-9")});
  EXPECT_EQ(other_stream.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(Msg(other_stream.status()),
            "event_id \"evt-1\" is already taken by an event of another stream; a retry "
            "repeats its stream_id, a new event needs a new event_id");
  EXPECT_EQ(Msg(other_stream.status()).find("case-1"), std::string::npos);
  EXPECT_EQ((*t)->Size(), 2u);
}

TEST_P(LedgerStoreTest, ExpectedVersionConflictIsAbortedAndStoresNothing) {
  auto t = OpenLedger();
  ASSERT_TRUE(t.ok()) << t.status();
  ASSERT_TRUE((*t)->Append({TestEvent("a", "case-1"), 0}).ok());
  ASSERT_TRUE((*t)->Append({TestEvent("b", "case-1"), 1}).ok());
  auto stale = (*t)->Append({TestEvent("c", "case-1"), 1});
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(Msg(stale.status()),
            "stream \"case-1\": expected_version 1, but the stream's next version is 2");
  EXPECT_EQ((*t)->Size(), 2u);
  // A retry of an acknowledged event succeeds even with a now-stale version.
  auto retry = (*t)->Append({TestEvent("a", "case-1"), 0});
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_TRUE(retry->duplicate);
}

TEST_P(LedgerStoreTest, BatchIsAllOrNothing) {
  auto t = OpenLedger();
  ASSERT_TRUE(t.ok()) << t.status();
  ASSERT_TRUE((*t)->Append({TestEvent("a", "case-1")}).ok());
  std::vector<AppendRequest> batch = {{TestEvent("b", "case-1")},
                                      {TestEvent("c", "case-2")},
                                      {TestEvent("d", "case-1"), 5}};
  auto r = (*t)->AppendBatch(batch);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(Msg(r.status()), "requests[2]: stream \"case-1\": expected_version 5, but the "
                             "stream's next version is 2");
  EXPECT_EQ((*t)->Size(), 1u);

  batch[2].expected_version = 2;
  r = (*t)->AppendBatch(batch);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[2].version, 2u);
  EXPECT_EQ((*t)->Size(), 4u);

  std::vector<AppendRequest> bad = {{TestEvent("x", "case-3")}, {TestEvent("", "case-3")}};
  r = (*t)->AppendBatch(bad);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Msg(r.status()), "requests[1]: event_id: must not be empty");
  EXPECT_EQ((*t)->Size(), 4u);
  EXPECT_EQ((*t)->AppendBatch({}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_P(LedgerStoreTest, DuplicateWithinOneBatch) {
  auto t = OpenLedger();
  ASSERT_TRUE(t.ok()) << t.status();
  auto r = (*t)->AppendBatch({{TestEvent("a", "s")}, {TestEvent("a", "s")}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE((*r)[0].duplicate);
  EXPECT_TRUE((*r)[1].duplicate);
  EXPECT_EQ((*r)[1].seq, (*r)[0].seq);
  EXPECT_EQ((*t)->Size(), 1u);
}

TEST_P(LedgerStoreTest, ConcurrentAppendersGetUniqueDenseSeqsAndIdempotency) {
  auto t = OpenLedger();
  ASSERT_TRUE(t.ok()) << t.status();
  constexpr int kThreads = 8, kPerThread = 200;
  std::vector<std::vector<AppendResult>> results(kThreads);
  std::atomic<int> conflicts{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < kThreads; ++w) {
    threads.emplace_back([&, w] {
      for (int i = 0; i < kPerThread; ++i) {
        // Every event is sent twice, by two different threads: exactly one
        // append, and both see the same seq.
        std::string id = absl::StrCat("evt-", (w / 2) * kPerThread + i);
        auto r = (*t)->Append({TestEvent(id, absl::StrCat("case-", i % 7))});
        ASSERT_TRUE(r.ok()) << r.status();
        results[w].push_back(*r);
        // All threads race on one stream with expected versions.
        auto c = (*t)->Append({TestEvent(absl::StrCat("race-", w, "-", i), "contended"),
                               static_cast<uint64_t>(i)});
        if (c.status().code() == absl::StatusCode::kAborted) ++conflicts;
      }
    });
  }
  for (auto& th : threads) th.join();
  std::set<uint64_t> seqs;
  for (int w = 0; w < kThreads; w += 2) {
    for (int i = 0; i < kPerThread; ++i) {
      EXPECT_EQ(results[w][i].seq, results[w + 1][i].seq);
      EXPECT_NE(results[w][i].duplicate, results[w + 1][i].duplicate);
      seqs.insert(results[w][i].seq);
    }
  }
  uint64_t unique_events = kThreads / 2 * kPerThread;
  EXPECT_EQ(seqs.size(), unique_events);
  // The contended stream accepted exactly one append per expected version.
  uint64_t contended = (*t)->Size() - unique_events;
  EXPECT_EQ(contended + conflicts.load(), static_cast<uint64_t>(kThreads * kPerThread));
  EXPECT_GE(contended, static_cast<uint64_t>(kPerThread));
  EXPECT_LE(contended, static_cast<uint64_t>(kPerThread) * 2 - 1);
}

TEST_P(LedgerStoreTest, CheckpointIsSignedAndProofsVerify) {
  auto t = OpenLedger();
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ((*t)->Checkpoint().status().code(), absl::StatusCode::kFailedPrecondition);
  std::vector<AppendResult> appended;
  for (int i = 0; i < 37; ++i) {
    auto r = (*t)->Append({TestEvent(absl::StrCat("e", i), "case-1")});
    ASSERT_TRUE(r.ok());
    appended.push_back(*r);
  }
  auto cp = (*t)->Checkpoint();
  ASSERT_TRUE(cp.ok()) << cp.status();
  EXPECT_EQ(cp->size, 37u);
  NoteVerifier verifier = testing::TestNoteVerifier();
  auto opened = OpenCheckpoint(cp->note, verifier, testing::kTestOrigin);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->root, (*t)->Root());

  for (uint64_t seq : {0, 17, 36}) {
    auto proof = (*t)->InclusionProof(seq, 37);
    ASSERT_TRUE(proof.ok()) << proof.status();
    EXPECT_EQ(VerifyInclusion(appended[seq].leaf_hash, seq, 37, *proof, opened->root),
              absl::OkStatus());
  }
  for (int i = 37; i < 50; ++i) ASSERT_TRUE((*t)->Append({TestEvent(absl::StrCat("e", i), "c")}).ok());
  auto cp2 = (*t)->Checkpoint();
  ASSERT_TRUE(cp2.ok());
  auto opened2 = OpenCheckpoint(cp2->note, verifier, testing::kTestOrigin);
  ASSERT_TRUE(opened2.ok());
  auto consistency = (*t)->ConsistencyProof(37, 50);
  ASSERT_TRUE(consistency.ok());
  EXPECT_EQ(VerifyConsistency(37, 50, *consistency, opened->root, opened2->root),
            absl::OkStatus());
  // A second Checkpoint with nothing new returns the same note.
  auto again = (*t)->Checkpoint();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->note, cp2->note);

  auto beyond = (*t)->InclusionProof(3, 51);
  EXPECT_EQ(beyond.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Msg(beyond.status()), "tree_size: got 51, want at most the tree size 50");
}

TEST_P(LedgerStoreTest, CheckpointsAreSignedEveryNRecords) {
  LedgerOptions options;
  options.checkpoint_every_records = 10;
  auto t = OpenLedger(options);
  ASSERT_TRUE(t.ok()) << t.status();
  for (int i = 0; i < 25; ++i) ASSERT_TRUE((*t)->Append({TestEvent(absl::StrCat("e", i), "c")}).ok());
  auto all = (*t)->store().Checkpoints();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].size, 10u);
  EXPECT_EQ((*all)[1].size, 20u);
}

// The checkpoint interval runs on the ledger's clock: a fake clock's Advance
// wakes the committer, and nothing sleeps.
TEST_P(LedgerStoreTest, CheckpointIntervalRunsOnTheInjectedClock) {
  FakeClock clock;
  LedgerOptions options;
  options.clock = &clock;
  options.checkpoint_every_records = 1000000;
  options.checkpoint_interval = absl::Hours(1);
  auto t = OpenLedger(options);
  ASSERT_TRUE(t.ok()) << t.status();
  ASSERT_TRUE((*t)->Append({TestEvent("e0", "case-1")}).ok());
  // The committer is done with the append and waits (in fake time) for the
  // interval to end; no checkpoint yet.
  ASSERT_TRUE(clock.AwaitWaiters(1));
  auto latest = (*t)->store().LatestCheckpoint();
  ASSERT_TRUE(latest.ok()) << latest.status();
  EXPECT_FALSE(latest->has_value());

  clock.Advance(absl::Minutes(59));
  ASSERT_TRUE(clock.AwaitWaiters(1));
  latest = (*t)->store().LatestCheckpoint();
  ASSERT_TRUE(latest.ok()) << latest.status();
  EXPECT_FALSE(latest->has_value());

  // The interval ends: the committer wakes, signs, commits, and waits again.
  uint64_t waits = clock.waits_begun();
  clock.Advance(absl::Minutes(1));
  ASSERT_TRUE(clock.AwaitWaitsBegun(waits + 1)) << "the committer did not wake on Advance";
  latest = (*t)->store().LatestCheckpoint();
  ASSERT_TRUE(latest.ok()) << latest.status();
  ASSERT_TRUE(latest->has_value());
  EXPECT_EQ((*latest)->size, 1u);
}

TEST(LedgerTest, ReopenContinuesTheSameChain) {
  std::string dir = NewTempDir("ledger");
  Hash root;
  {
    auto t = OpenTestLedger(dir);
    ASSERT_TRUE(t.ok()) << t.status();
    for (int i = 0; i < 20; ++i) {
      ASSERT_TRUE((*t)->Append({TestEvent(absl::StrCat("e", i), "case-1")}).ok());
    }
    ASSERT_TRUE((*t)->Checkpoint().ok());
    root = (*t)->Root();
  }
  auto t = OpenTestLedger(dir);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ((*t)->Size(), 20u);
  EXPECT_EQ((*t)->Root(), root);
  auto dup = (*t)->Append({TestEvent("e3", "case-1")});
  ASSERT_TRUE(dup.ok());
  EXPECT_TRUE(dup->duplicate);
  auto next = (*t)->Append({TestEvent("e20", "case-1"), 20});
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->seq, 20u);
  auto r19 = (*t)->Read(19);
  auto r20 = (*t)->Read(20);
  ASSERT_TRUE(r19.ok() && r20.ok());
  EXPECT_EQ(r20->record.prev_hash, r19->leaf_hash);
}

TEST(LedgerTest, RefusesToOpenWhenCheckpointDisagreesWithStoredTree) {
  std::string dir = NewTempDir("ledger");
  {
    auto t = OpenTestLedger(dir);
    ASSERT_TRUE(t.ok()) << t.status();
    for (int i = 0; i < 8; ++i) ASSERT_TRUE((*t)->Append({TestEvent(absl::StrCat("e", i), "c")}).ok());
    ASSERT_TRUE((*t)->Checkpoint().ok());
  }
  // Rewrite the stored Merkle node the root at size 8 is read from: level 3, index 0.
  std::string key(1, '\x03');
  key += testing::SeqKey(0);
  ASSERT_TRUE(testing::RawPut(dir, "nodes", key, std::string(32, '\x07')).ok());
  auto t = OpenTestLedger(dir);
  EXPECT_EQ(t.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StartsWith(t.status().message(), "checkpoint at size 8: root ")) << t.status();
}

TEST(LedgerTest, SecondOpenOfTheSameDirectoryIsRefused) {
  std::string dir = NewTempDir("ledger");
  auto first = OpenTestLedger(dir);
  ASSERT_TRUE(first.ok());
  auto second = OpenTestLedger(dir);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(second.status().message(), "lock")) << second.status();
}

TEST_P(LedgerStoreTest, AsyncAppendsCompleteInOrderOfSubmission) {
  auto t = OpenLedger();
  ASSERT_TRUE(t.ok());
  absl::Mutex mu;
  std::vector<uint64_t> seqs;
  std::vector<absl::Status> errors;
  int done = 0;
  for (int i = 0; i < 100; ++i) {
    (*t)->AppendBatchAsync({{TestEvent(absl::StrCat("e", i), "s")}},
                           [&](absl::StatusOr<std::vector<AppendResult>> r) {
                             absl::MutexLock lock(&mu);
                             if (r.ok()) seqs.push_back((*r)[0].seq);
                             ++done;
                           });
  }
  (*t)->AppendBatchAsync({{TestEvent("", "s")}}, [&](absl::StatusOr<std::vector<AppendResult>> r) {
    absl::MutexLock lock(&mu);
    errors.push_back(r.status());
    ++done;
  });
  absl::MutexLock lock(&mu);
  mu.Await(absl::Condition(+[](int* d) { return *d == 101; }, &done));
  ASSERT_EQ(seqs.size(), 100u);
  for (uint64_t i = 0; i < 100; ++i) EXPECT_EQ(seqs[i], i);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(Msg(errors[0]), "event_id: must not be empty");
}

TEST_P(LedgerStoreTest, RemovedCommitListenerIsNotCalledAgain) {
  auto t = OpenLedger();
  ASSERT_TRUE(t.ok());
  std::atomic<uint64_t> seen{0}, other{0};
  uint64_t handle = (*t)->AddCommitListener(
      [&](const std::shared_ptr<const CommittedBatch>& b) { seen = b->new_size; });
  (*t)->AddCommitListener(
      [&](const std::shared_ptr<const CommittedBatch>& b) { other = b->new_size; });
  ASSERT_TRUE((*t)->Append({TestEvent("a", "s")}).ok());
  EXPECT_EQ(seen.load(), 1u);
  (*t)->RemoveCommitListener(handle);
  ASSERT_TRUE((*t)->Append({TestEvent("b", "s")}).ok());
  EXPECT_EQ(seen.load(), 1u);
  EXPECT_EQ(other.load(), 2u);
}

// The commit feed hands over exactly what Read returns from the store, in
// order, before the appends are acknowledged.
TEST_P(LedgerStoreTest, TheCommitFeedCarriesWhatWasStored) {
  auto master = AeadKey::FromBytes(std::string(32, '\x05'));
  ASSERT_TRUE(master.ok());
  auto t = OpenEncryptedLedger(*master);
  ASSERT_TRUE(t.ok()) << t.status();
  std::vector<std::shared_ptr<const CommittedBatch>> batches;
  absl::Mutex mu;
  (*t)->AddCommitListener([&](const std::shared_ptr<const CommittedBatch>& b) {
    absl::MutexLock lock(&mu);
    batches.push_back(b);
  });
  for (int i = 0; i < 3; ++i) {
    Event sealed = TestEvent(absl::StrCat("sealed-", i), "case-1");
    sealed.subject_ids = {"client-1"};
    Event plain = TestEvent(absl::StrCat("plain-", i), "case-2");
    plain.subject_ids.clear();  // nothing to key it to: stays plaintext
    std::vector<AppendRequest> two{{sealed}, {plain}};
    ASSERT_TRUE((*t)->AppendBatch(std::move(two)).ok());
    absl::MutexLock lock(&mu);
    ASSERT_EQ(batches.size(), static_cast<size_t>(i + 1));  // before the acknowledgement
  }
  uint64_t next = 0;
  for (const auto& b : batches) {
    EXPECT_TRUE((*t)->OpeningsCurrent(*b));
    EXPECT_EQ(b->first_seq, next);
    EXPECT_EQ(b->new_size, next + b->records.size());
    for (const RecordView& got : b->records) {
      auto want = (*t)->Read(next);
      ASSERT_TRUE(want.ok()) << want.status();
      EXPECT_EQ(got.record.seq, next);
      EXPECT_EQ(got.record.commit_time_micros, b->commit_time_micros);
      EXPECT_EQ(got.leaf, want->leaf);
      EXPECT_EQ(got.leaf_hash, want->leaf_hash);
      EXPECT_EQ(got.payload, want->payload);
      EXPECT_EQ(EncodeRecord(got.record), want->leaf);
      EXPECT_EQ(got.openings, want->openings);  // set for the sealed ones only
      EXPECT_EQ(got.openings.has_value(), next % 2 == 0);
      ++next;
    }
  }
  EXPECT_EQ(next, 6u);
  // Once the subject's keys are destroyed the feed's plaintext is no longer
  // vouched for, and a consumer re-opens from the store.
  ASSERT_TRUE(t->keys->EraseSubject("client-1").ok());
  EXPECT_FALSE((*t)->OpeningsCurrent(*batches[0]));
  RecordView view = batches[0]->records[0];
  ASSERT_EQ((*t)->Reopen(&view), absl::OkStatus());
  EXPECT_TRUE(view.erased);
  EXPECT_FALSE(view.openings.has_value());
}

TEST_P(LedgerStoreTest, AppendAfterCloseIsUnavailable) {
  auto t = OpenLedger();
  ASSERT_TRUE(t.ok());
  (*t)->Close();
  EXPECT_EQ((*t)->Append({TestEvent("a", "s")}).status().code(), absl::StatusCode::kUnavailable);
}

// ---------------------------------------------------------------------------
// The per-subject index (SUBJECT_INDEX.md).

class SubjectIndexStoreTest : public LedgerStoreTest {};
INSTANTIATE_TEST_SUITE_P(Stores, SubjectIndexStoreTest,
                         ::testing::Values(StoreKind::kRocks, StoreKind::kMemory), StoreName);

Event SubjectEvent(int i) {
  Event e = TestEvent(absl::StrCat("subj-", i), absl::StrCat("case-", i % 3));
  // Every event names client-<i%4>; every fifth also names client-x.
  e.subject_ids = {absl::StrCat("client-", i % 4)};
  if (i % 5 == 0) e.subject_ids.push_back("client-x");
  return e;
}

// The subjects root recomputed from the stored records [0, size).
Hash RecomputeSubjectsRoot(Ledger& l, uint64_t size) {
  SubjectIndexBuilder b;
  for (uint64_t seq = 0; seq < size; ++seq) {
    absl::StatusOr<RecordView> r = l.Read(seq);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return Hash{};
    EXPECT_TRUE(b.Add(seq, r->leaf_hash, r->record.subject_ids).ok());
  }
  return b.Root();
}

Hash SubjectsRootOf(const StoredCheckpoint& cp) {
  absl::StatusOr<Checkpoint> c =
      OpenCheckpoint(cp.note, testing::TestNoteVerifier(), testing::kTestOrigin);
  EXPECT_TRUE(c.ok()) << c.status();
  if (!c.ok()) return Hash{};
  absl::StatusOr<std::optional<Hash>> root = SubjectRootFromExtensions(c->extensions);
  EXPECT_TRUE(root.ok() && root->has_value()) << cp.note;
  return root.ok() && root->has_value() ? **root : Hash{};
}

// Checks History(subject) against the builder's state and the checkpoint.
void ExpectHistoryMatches(Ledger& l, const std::string& subject) {
  absl::StatusOr<SubjectHistory> h = l.History(subject);
  ASSERT_TRUE(h.ok()) << h.status();
  Hash root = SubjectsRootOf(h->checkpoint);
  absl::StatusOr<SubjectState> proven = VerifySubjectMapProof(root, SubjectKey(subject), h->proof);
  ASSERT_TRUE(proven.ok()) << proven.status();
  EXPECT_EQ(*proven, h->state);
  SubjectState chain;
  for (uint64_t seq : h->seqs) {
    ASSERT_LT(seq, h->checkpoint.size);
    absl::StatusOr<RecordView> r = l.Read(seq);
    ASSERT_TRUE(r.ok());
    EXPECT_NE(std::find(r->record.subject_ids.begin(), r->record.subject_ids.end(), subject),
              r->record.subject_ids.end());
    chain = SubjectChainAppend(chain, seq, r->leaf_hash);
  }
  EXPECT_EQ(chain, h->state) << subject;
}

TEST_P(SubjectIndexStoreTest, EveryCheckpointCommitsToTheSubjectsOfExactlyItsRecords) {
  LedgerOptions options;
  options.checkpoint_every_records = 7;
  auto t = OpenLedger(options);
  ASSERT_TRUE(t.ok()) << t.status();
  Ledger& l = *t->ledger;
  EXPECT_EQ(l.History("client-0").status().code(), absl::StatusCode::kFailedPrecondition);
  for (int i = 0; i < 40; i += 4) {
    std::vector<AppendRequest> batch;
    for (int j = i; j < i + 4; ++j) batch.push_back({SubjectEvent(j), std::nullopt});
    ASSERT_TRUE(l.AppendBatch(std::move(batch)).ok());
  }
  ASSERT_TRUE(l.Checkpoint().ok());
  absl::StatusOr<std::vector<StoredCheckpoint>> cps = l.store().Checkpoints();
  ASSERT_TRUE(cps.ok());
  ASSERT_GE(cps->size(), 5u);
  for (const StoredCheckpoint& cp : *cps) {
    EXPECT_EQ(SubjectsRootOf(cp), RecomputeSubjectsRoot(l, cp.size)) << "checkpoint " << cp.size;
  }
  for (const char* s : {"client-0", "client-1", "client-3", "client-x", "nobody"}) {
    ExpectHistoryMatches(l, s);
  }
  absl::StatusOr<SubjectHistory> x = l.History("client-x");
  ASSERT_TRUE(x.ok());
  EXPECT_EQ(x->seqs, (std::vector<uint64_t>{0, 5, 10, 15, 20, 25, 30, 35}));
  EXPECT_EQ(l.History("").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_P(SubjectIndexStoreTest, HistoryStopsAtTheLatestCheckpoint) {
  LedgerOptions options;
  options.checkpoint_every_records = 1000;
  options.checkpoint_interval = absl::Hours(1);
  auto t = OpenLedger(options);
  ASSERT_TRUE(t.ok()) << t.status();
  Ledger& l = *t->ledger;
  ASSERT_TRUE(l.Append({SubjectEvent(0)}).ok());
  ASSERT_TRUE(l.Checkpoint().ok());
  ASSERT_TRUE(l.Append({SubjectEvent(4)}).ok());  // client-0 again, after the checkpoint
  absl::StatusOr<SubjectHistory> h = l.History("client-0");
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->checkpoint.size, 1u);
  EXPECT_EQ(h->seqs, std::vector<uint64_t>{0});
  ASSERT_TRUE(l.Checkpoint().ok());
  h = l.History("client-0");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->seqs, (std::vector<uint64_t>{0, 1}));
}

TEST(LedgerSubjectIndexTest, ReopenKeepsTheMapAndSubjectsTouchedBeforeIt) {
  std::string dir = NewTempDir("subjects");
  LedgerOptions options;
  options.checkpoint_every_records = 1000;
  options.checkpoint_interval = absl::Hours(1);
  {
    auto t = OpenTestLedger(dir, options);
    ASSERT_TRUE(t.ok()) << t.status();
    for (int i = 0; i < 10; ++i) ASSERT_TRUE((*t)->Append({SubjectEvent(i)}).ok());
    ASSERT_TRUE((*t)->Checkpoint().ok());
    // Touched after the checkpoint, then the ledger closes without another.
    for (int i = 10; i < 13; ++i) ASSERT_TRUE((*t)->Append({SubjectEvent(i)}).ok());
  }
  auto t = OpenTestLedger(dir, options);
  ASSERT_TRUE(t.ok()) << t.status();
  Ledger& l = *t->ledger;
  absl::StatusOr<SubjectHistory> h = l.History("client-1");
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->checkpoint.size, 10u);
  ASSERT_TRUE(l.Append({SubjectEvent(13)}).ok());
  absl::StatusOr<StoredCheckpoint> cp = l.Checkpoint();
  ASSERT_TRUE(cp.ok());
  EXPECT_EQ(SubjectsRootOf(*cp), RecomputeSubjectsRoot(l, 14));
  for (const char* s : {"client-0", "client-1", "client-2", "client-3", "client-x"}) {
    ExpectHistoryMatches(l, s);
  }
}

TEST(LedgerSubjectIndexTest, RefusesToOpenWhenTheStoredMapDisagreesWithTheCheckpoint) {
  std::string dir = NewTempDir("subjects");
  {
    auto t = OpenTestLedger(dir);
    ASSERT_TRUE(t.ok());
    for (int i = 0; i < 4; ++i) ASSERT_TRUE((*t)->Append({SubjectEvent(i)}).ok());
    ASSERT_TRUE((*t)->Checkpoint().ok());
  }
  // Rewrite the map's root node (SUBJECT_INDEX.md "Storage") to another
  // interior node.
  const std::string root_path = "n" + SubjectMapNodePath(Hash{}, 0);
  StoredSubjectMap::Node other;
  other.child[0] = SubjectKey("client-2");
  ASSERT_TRUE(testing::RawPut(dir, "subjects", root_path, EncodeSubjectMapNode(other)).ok());
  auto t = OpenTestLedger(dir);
  ASSERT_EQ(t.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StrContains(t.status().message(), "subjects root")) << t.status();
}

// A data directory from before the map's nodes were stored (layout 1: its
// leaves under 'm', no 'v') opens: the nodes are built from the leaves once,
// and the map's root, proofs and later checkpoints are as before.
TEST(LedgerSubjectIndexTest, OpensALayout1DirectoryByBuildingTheNodes) {
  std::string dir = NewTempDir("subjects_layout1");
  LedgerOptions options;
  options.checkpoint_every_records = 1000;
  options.checkpoint_interval = absl::Hours(1);
  std::vector<std::pair<std::string, SubjectState>> leaves;
  {
    auto t = OpenTestLedger(dir, options);
    ASSERT_TRUE(t.ok()) << t.status();
    for (int i = 0; i < 20; ++i) ASSERT_TRUE((*t)->Append({SubjectEvent(i)}).ok());
    ASSERT_TRUE((*t)->Checkpoint().ok());
    for (const char* s : {"client-0", "client-1", "client-2", "client-3", "client-x"}) {
      absl::StatusOr<SubjectHistory> h = (*t)->History(s);
      ASSERT_TRUE(h.ok()) << h.status();
      leaves.emplace_back("m" + std::string(AsBytes(SubjectKey(s))), h->state);
    }
  }
  // Back to layout 1: the leaves, no layout key, no root node.
  for (const auto& [key, state] : leaves) {
    std::string value = testing::SeqKey(state.count) + std::string(AsBytes(state.head));
    ASSERT_TRUE(testing::RawPut(dir, "subjects", key, value).ok());
  }
  ASSERT_TRUE(testing::RawDelete(dir, "subjects", "v").ok());
  ASSERT_TRUE(testing::RawDelete(dir, "subjects", "n" + SubjectMapNodePath(Hash{}, 0)).ok());
  auto t = OpenTestLedger(dir, options);
  ASSERT_TRUE(t.ok()) << t.status();
  Ledger& l = *t->ledger;
  for (const char* s : {"client-0", "client-1", "client-3", "client-x", "nobody"}) {
    ExpectHistoryMatches(l, s);
  }
  ASSERT_TRUE(l.Append({SubjectEvent(20)}).ok());
  absl::StatusOr<StoredCheckpoint> cp = l.Checkpoint();
  ASSERT_TRUE(cp.ok());
  EXPECT_EQ(SubjectsRootOf(*cp), RecomputeSubjectsRoot(l, 21));
}

// The transition end a checkpoint note describes.
SubjectTransitionEnd EndOf(const StoredCheckpoint& cp) {
  absl::StatusOr<Checkpoint> c =
      OpenCheckpoint(cp.note, testing::TestNoteVerifier(), testing::kTestOrigin);
  EXPECT_TRUE(c.ok()) << c.status();
  if (!c.ok()) return {};
  return {c->size, c->root, SubjectsRootOf(cp)};
}

TEST_P(SubjectIndexStoreTest, TransitionsFromEveryCheckpointVerifyAndMatchTheReference) {
  LedgerOptions options;
  options.checkpoint_every_records = 7;
  auto t = OpenLedger(options);
  ASSERT_TRUE(t.ok()) << t.status();
  Ledger& l = *t->ledger;
  EXPECT_EQ(l.SubjectTransitionTo(0).status().code(), absl::StatusCode::kFailedPrecondition);
  for (int i = 0; i < 60; ++i) {
    Event e = SubjectEvent(i);
    if (i % 3 == 0) e.subject_ids.push_back(absl::StrCat("new-", i));  // first seen here
    ASSERT_TRUE(l.Append({e}).ok());
  }
  absl::StatusOr<StoredCheckpoint> latest = l.Checkpoint();
  ASSERT_TRUE(latest.ok());
  std::vector<std::string> records;
  for (uint64_t seq = 0; seq < latest->size; ++seq) records.push_back(l.Read(seq)->leaf);
  absl::StatusOr<std::vector<StoredCheckpoint>> cps = l.store().Checkpoints();
  ASSERT_TRUE(cps.ok());
  std::vector<SubjectTransitionEnd> froms = {{0, EmptyRoot(), EmptySubjectMapRoot()}};
  for (const StoredCheckpoint& cp : *cps) froms.push_back(EndOf(cp));
  ASSERT_GE(froms.size(), 9u);
  for (const SubjectTransitionEnd& from : froms) {
    SCOPED_TRACE(absl::StrCat("from ", from.size));
    absl::StatusOr<PublishedTransition> p = l.SubjectTransitionTo(from.size);
    ASSERT_TRUE(p.ok()) << p.status();
    EXPECT_EQ(p->checkpoint.size, latest->size);
    EXPECT_EQ(p->checkpoint.note, latest->note);
    absl::StatusOr<SubjectTransitionStats> v =
        VerifySubjectTransition(from, EndOf(*latest), p->transition);
    ASSERT_TRUE(v.ok()) << v.status();
    // The same proof as the reference builder computes from all records.
    absl::StatusOr<SubjectTransition> want = SubjectTransitionFromRecords(records, from.size);
    ASSERT_TRUE(want.ok());
    EXPECT_EQ(p->transition.old_map, want->old_map);
    EXPECT_EQ(p->transition.old_range, want->old_range);
    EXPECT_EQ(p->transition.records, want->records);
  }
  EXPECT_EQ(l.SubjectTransitionTo(latest->size + 1).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace caseledger
