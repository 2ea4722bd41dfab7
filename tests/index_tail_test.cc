// The deferred event-id and stream indexes (ledger/STORE.md "Deferred
// indexes") after kill -9: a writer process appends, is killed while index
// entries are only in the synced index_log (and, with a small tail, partly in
// unlogged writes that die with it), and the reopened ledger must have every
// index complete: event ids (a retry returns the original seq), case
// versions, inclusion proofs, every subject's chain (entries, head, the map
// root of a new checkpoint) and subject histories. The Merkle nodes wait in
// the same tail (ledger/STORE.md "Deferred Merkle nodes"): after the kill the
// nodes family lacks those past meta/nodes_size, and every open, read-only
// or not, must serve the tree of every checkpoint served before the kill.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "ledger/checkpoint.h"
#include "ledger/merkle_tree.h"
#include "ledger/merkle_verify.h"
#include "ledger/subject_index.h"
#include "ledger/rocks_store.h"
#include "ledger/store_verifier.h"
#include "tests/test_util.h"

namespace caseledger {
namespace {

struct Acked {
  std::string stream;
  uint64_t seq = 0;
  uint64_t version = 0;
};

// A checkpoint the writer served: its size and root.
struct Served {
  uint64_t size = 0;
  Hash root{};
};

// Runs tests/index_tail_writer to its SIGKILL; returns its acknowledgements.
// `first` numbers the first event (a later run appends after an earlier one).
// With `checkpoint_every` > 0 the writer asks for a checkpoint after every
// that many batches, and `served` gets them.
std::map<std::string, Acked> RunWriter(const std::string& dir, int events, int tail_events,
                                       int first = 0, int checkpoint_every = 0,
                                       std::vector<Served>* served = nullptr) {
  testing::Child child = testing::StartChild(
      {"tests/index_tail_writer", dir, std::to_string(events), std::to_string(tail_events),
       std::to_string(first), std::to_string(checkpoint_every)});
  EXPECT_GT(child.pid, 0) << "fork failed";
  std::string out;
  char buf[1 << 16];
  for (ssize_t n; (n = read(child.out, buf, sizeof(buf))) > 0;) out.append(buf, n);
  close(child.out);
  int status = 0;
  waitpid(child.pid, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      << "writer did not kill itself, status " << status;
  std::map<std::string, Acked> acked;
  for (absl::string_view line : absl::StrSplit(out, '\n', absl::SkipEmpty())) {
    std::vector<std::string> p = absl::StrSplit(line, ' ');
    Acked a;
    if (p.size() == 5 && p[0] == "ack" && absl::SimpleAtoi(p[3], &a.seq) &&
        absl::SimpleAtoi(p[4], &a.version)) {
      a.stream = p[2];
      acked[p[1]] = a;
    } else if (Served c; served != nullptr && p.size() == 3 && p[0] == "checkpoint" &&
                         absl::SimpleAtoi(p[1], &c.size)) {
      absl::StatusOr<Hash> root = HashFromHex(p[2]);
      EXPECT_TRUE(root.ok()) << line;
      if (root.ok()) c.root = *root;
      served->push_back(c);
    } else {
      ADD_FAILURE() << "bad line from writer: " << line;
    }
  }
  return acked;
}

// Every index the ledger serves from the reopened directory agrees with the
// acknowledgements.
void CheckIndexes(const std::string& dir, const std::map<std::string, Acked>& acked) {
  auto t = testing::OpenTestLedger(dir);
  ASSERT_TRUE(t.ok()) << t.status();
  ASSERT_EQ((*t)->Size(), acked.size());
  const LogStore& store = (*t)->store();
  std::map<std::string, std::vector<std::pair<uint64_t, uint64_t>>> streams;  // (version, seq)
  for (const auto& [id, a] : acked) {
    auto found = store.FindEventId(id);
    ASSERT_TRUE(found.ok()) << found.status();
    ASSERT_TRUE(found->has_value()) << id << " has no event-id entry";
    EXPECT_EQ(**found, a.seq) << id;
    auto at = store.FindStreamVersion(a.stream, a.version);
    ASSERT_TRUE(at.ok()) << id << ": " << at.status();
    EXPECT_EQ(*at, a.seq) << id;
    streams[a.stream].emplace_back(a.version, a.seq);
  }
  for (auto& [stream, entries] : streams) {
    std::sort(entries.begin(), entries.end());
    auto length = store.StreamLength(stream);
    ASSERT_TRUE(length.ok()) << length.status();
    EXPECT_EQ(*length, entries.size()) << stream;
    std::vector<std::pair<uint64_t, uint64_t>> scanned;
    ASSERT_TRUE(store.ScanStream(stream, 0, [&](uint64_t v, uint64_t s) {
      scanned.emplace_back(v, s);
      return true;
    }).ok());
    EXPECT_EQ(scanned, entries) << stream;
  }

  // Every subject's chain in the store is what a replay of the records gives:
  // each entry (seq and head), the head, and a scan from the start and from
  // the middle.
  const uint64_t records = (*t)->Size();
  SubjectIndexBuilder replay;
  std::map<std::string, std::vector<std::pair<uint64_t, Hash>>> chains;  // (seq, head)
  for (uint64_t seq = 0; seq < records; ++seq) {
    auto view = (*t)->Read(seq);
    ASSERT_TRUE(view.ok()) << view.status();
    ASSERT_TRUE(replay.Add(seq, view->leaf_hash, view->record.subject_ids).ok());
    for (const std::string& subject : view->record.subject_ids) {
      std::vector<std::pair<uint64_t, Hash>>& chain = chains[subject];
      SubjectState before{chain.size(), chain.empty() ? Hash{} : chain.back().second};
      chain.emplace_back(seq, SubjectChainAppend(before, seq, view->leaf_hash).head);
    }
  }
  ASSERT_EQ(chains.size(), streams.size());
  for (const auto& [subject, chain] : chains) {
    const Hash key = SubjectKey(subject);
    auto head = store.GetSubjectHead(key);
    ASSERT_TRUE(head.ok()) << head.status();
    EXPECT_EQ(head->count, chain.size()) << subject;
    EXPECT_EQ(head->head, chain.back().second) << subject;
    for (uint64_t i = 0; i < chain.size(); ++i) {
      auto entry = store.GetSubjectEntry(key, i);
      ASSERT_TRUE(entry.ok()) << subject << " entry " << i << ": " << entry.status();
      EXPECT_EQ(entry->seq, chain[i].first) << subject << " entry " << i;
      EXPECT_EQ(entry->head, chain[i].second) << subject << " entry " << i;
    }
    EXPECT_TRUE(absl::IsNotFound(store.GetSubjectEntry(key, chain.size()).status())) << subject;
    for (uint64_t from : {uint64_t{0}, uint64_t{chain.size() / 2}}) {
      std::vector<std::pair<uint64_t, uint64_t>> scanned, want;
      for (uint64_t i = from; i < chain.size(); ++i) want.emplace_back(i, chain[i].first);
      ASSERT_TRUE(store.ScanSubject(key, from, [&](uint64_t i, uint64_t s) {
        scanned.emplace_back(i, s);
        return true;
      }).ok());
      EXPECT_EQ(scanned, want) << subject << " from " << from;
    }
  }

  // A retry of every acknowledged event returns its original seq.
  std::vector<AppendRequest> retry;
  for (const auto& [id, a] : acked) retry.push_back({testing::TestEvent(id, a.stream, 200)});
  auto again = (*t)->AppendBatch(retry);
  ASSERT_TRUE(again.ok()) << again.status();
  size_t i = 0;
  for (const auto& [id, a] : acked) {
    EXPECT_TRUE((*again)[i].duplicate) << id;
    EXPECT_EQ((*again)[i].seq, a.seq) << id;
    ++i;
  }
  ASSERT_EQ((*t)->Size(), acked.size()) << "a retry appended";

  // Inclusion proofs of every record against the current root.
  const uint64_t size = (*t)->Size();
  const Hash root = (*t)->Root();
  for (uint64_t seq = 0; seq < size; ++seq) {
    auto view = (*t)->Read(seq);
    ASSERT_TRUE(view.ok()) << view.status();
    auto proof = (*t)->InclusionProof(seq, size);
    ASSERT_TRUE(proof.ok()) << proof.status();
    ASSERT_TRUE(VerifyInclusion(view->leaf_hash, seq, size, *proof, root).ok()) << seq;
  }

  // A new checkpoint's subjects root is the replay's; each case's client
  // subject has exactly that case's records.
  auto checkpoint = (*t)->Checkpoint();
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  auto opened = OpenCheckpoint(checkpoint->note, testing::TestNoteVerifier(), testing::kTestOrigin);
  ASSERT_TRUE(opened.ok()) << opened.status();
  auto subjects_root = SubjectRootFromExtensions(opened->extensions);
  ASSERT_TRUE(subjects_root.ok() && subjects_root->has_value()) << checkpoint->note;
  EXPECT_EQ(**subjects_root, replay.Root());
  for (const auto& [stream, entries] : streams) {
    auto history = (*t)->History("client-" + stream);
    ASSERT_TRUE(history.ok()) << history.status();
    std::vector<uint64_t> want;
    for (const auto& e : entries) want.push_back(e.second);
    EXPECT_EQ(history->seqs, want) << stream;
  }
}

void KillAndCheck(int events, int tail_events) {
  const std::string dir = testing::NewTempDir("index_tail");
  std::map<std::string, Acked> acked = RunWriter(dir, events, tail_events);
  ASSERT_EQ(acked.size(), static_cast<size_t>(events));
  CheckIndexes(dir, acked);
  // The reopen above closed cleanly: the tail went to the index families,
  // and a read-only open (which writes nothing) sees a store that verifies.
  CheckIndexes(dir, acked);
  StoreVerifyReport report = testing::VerifyTestDataDir(dir);
  EXPECT_EQ(report.status, absl::OkStatus());
  EXPECT_EQ(report.records_checked, static_cast<uint64_t>(events));
}

// The tail never reached its size: every index entry was only in index_log.
TEST(IndexTailTest, KilledBeforeAnyIndexWrite) { KillAndCheck(700, 1 << 16); }

// A small tail: several unlogged index writes (with their watermark and
// index_log deletions) ran before the kill and were lost with the memtables.
TEST(IndexTailTest, KilledAfterUnloggedIndexWrites) { KillAndCheck(700, 50); }

// Killed twice: the second writer extends every subject's chain from heads
// that, after the first kill, were only in subject_log (reloaded into the
// tail at its open), and checkpoints (every 100 records) commit the map to
// them; then the chains, the map root and the histories are checked.
TEST(IndexTailTest, SubjectChainsContinueAcrossKills) {
  for (int tail_events : {1 << 16, 50}) {
    SCOPED_TRACE(absl::StrCat("tail_events ", tail_events));
    const std::string dir = testing::NewTempDir("index_tail_subjects");
    std::map<std::string, Acked> acked = RunWriter(dir, 350, tail_events);
    ASSERT_EQ(acked.size(), 350u);
    std::map<std::string, Acked> more = RunWriter(dir, 350, tail_events, 350);
    ASSERT_EQ(more.size(), 350u);
    acked.insert(more.begin(), more.end());
    CheckIndexes(dir, acked);
  }
}

// A clean close leaves index_log empty; a damaged value found at open is
// DATA_LOSS naming it, not a silently incomplete index.
TEST(IndexTailTest, CleanCloseEmptiesTheLogAndDamageIsReported) {
  const std::string dir = testing::NewTempDir("index_tail_damage");
  {
    auto t = testing::OpenTestLedger(dir);
    ASSERT_TRUE(t.ok()) << t.status();
    ASSERT_TRUE((*t)->Append({testing::TestEvent("ev-1", "case-1")}).ok());
  }
  EXPECT_TRUE(absl::IsNotFound(testing::RawGet(dir, "index_log", testing::SeqKey(0)).status()));
  EXPECT_TRUE(absl::IsNotFound(testing::RawGet(dir, "subject_log", testing::SeqKey(0)).status()));
  auto indexed = testing::RawGet(dir, "meta", "indexed_size");
  ASSERT_TRUE(indexed.ok()) << indexed.status();
  EXPECT_EQ(*indexed, testing::SeqKey(1));

  ASSERT_TRUE(testing::RawPut(dir, "index_log", testing::SeqKey(1),
                              std::string("\0\0\0\x09short", 9)).ok());
  RocksStoreOptions o;
  o.path = dir;
  auto store = OpenRocksStore(o);
  ASSERT_FALSE(store.ok());
  EXPECT_TRUE(absl::IsDataLoss(store.status())) << store.status();
  EXPECT_NE(store.status().message().find("index_log entry 1"), std::string::npos)
      << store.status();
}

// A subject_log value that is not whole entries, or whose entries do not
// continue their subject's chain, is DATA_LOSS naming it at open.
TEST(IndexTailTest, DamagedSubjectLogIsReported) {
  const std::string dir = testing::NewTempDir("subject_log_damage");
  {
    auto t = testing::OpenTestLedger(dir);
    ASSERT_TRUE(t.ok()) << t.status();
    ASSERT_TRUE((*t)->Append({testing::TestEvent("ev-1", "case-1")}).ok());
  }
  // Entry layout: key(S) || u64 index || u64 seq || head.
  const std::string key(reinterpret_cast<const char*>(SubjectKey("client-x").data()), 32);
  const std::string head(32, '\x07');
  const std::string entry0 = key + testing::SeqKey(0) + testing::SeqKey(1) + head;
  const std::string entry2 = key + testing::SeqKey(2) + testing::SeqKey(1) + head;
  struct Case {
    std::string value;
    std::string want;
  };
  for (const Case& c : {Case{entry0.substr(0, 79), "79 bytes, want a multiple of 80"},
                        Case{entry0 + entry2, "has index 2, want 1"}}) {
    ASSERT_TRUE(testing::RawPut(dir, "subject_log", testing::SeqKey(1), c.value).ok());
    RocksStoreOptions o;
    o.path = dir;
    auto store = OpenRocksStore(o);
    ASSERT_FALSE(store.ok()) << c.want;
    EXPECT_TRUE(absl::IsDataLoss(store.status())) << store.status();
    EXPECT_NE(store.status().message().find("subject_log entry 1"), std::string::npos)
        << store.status();
    EXPECT_NE(store.status().message().find(c.want), std::string::npos) << store.status();
  }
}

// The tree of every served checkpoint, as `nodes` serves it: the root
// recomputed from the stored and tail nodes, a consistency proof from it to
// the last served one, and inclusion proofs of its first and last leaves.
void CheckServedTrees(const NodeReader& nodes, const std::vector<Served>& served,
                      absl::string_view what) {
  ASSERT_FALSE(served.empty());
  const Served& last = served.back();
  for (const Served& c : served) {
    SCOPED_TRACE(absl::StrCat(what, ": checkpoint at size ", c.size));
    auto root = RootAt(c.size, nodes);
    ASSERT_TRUE(root.ok()) << root.status();
    EXPECT_EQ(ToHex(*root), ToHex(c.root));
    auto consistency = ConsistencyProof(c.size, last.size, nodes);
    ASSERT_TRUE(consistency.ok()) << consistency.status();
    EXPECT_TRUE(VerifyConsistency(c.size, last.size, *consistency, c.root, last.root).ok());
    for (uint64_t seq : {uint64_t{0}, c.size - 1}) {
      auto proof = InclusionProof(seq, c.size, nodes);
      ASSERT_TRUE(proof.ok()) << proof.status();
      auto leaf = nodes.GetNode(0, seq);
      ASSERT_TRUE(leaf.ok()) << leaf.status();
      EXPECT_TRUE(VerifyInclusion(*leaf, seq, c.size, *proof, c.root).ok()) << seq;
    }
  }
}

// Killed with Merkle nodes only in the tail (all of them, or those after a
// few unlogged tail writes): the nodes family lacks the last record's leaf
// node, nodes_size is behind the tree size, and a read-only open (the store
// verifier's, ledger_verify's) and a read-write one both serve the tree of
// every checkpoint served before the kill; the store verifies; and a clean
// close writes the recomputed nodes, moving nodes_size to the tree size.
TEST(IndexTailTest, MerkleNodesPastTheWatermarkAreRecomputed) {
  for (int tail_events : {1 << 16, 50}) {
    SCOPED_TRACE(absl::StrCat("tail_events ", tail_events));
    const std::string dir = testing::NewTempDir("node_tail");
    std::vector<Served> served;
    std::map<std::string, Acked> acked = RunWriter(dir, 700, tail_events, 0, 2, &served);
    ASSERT_EQ(acked.size(), 700u);
    ASSERT_GE(served.size(), 30u);
    EXPECT_EQ(served.back().size, 700u);

    auto nodes_size = testing::RawGet(dir, "meta", "nodes_size");
    ASSERT_TRUE(nodes_size.ok()) << nodes_size.status();
    EXPECT_LT(*nodes_size, testing::SeqKey(700)) << "every node reached the disk";
    EXPECT_TRUE(absl::IsNotFound(
        testing::RawGet(dir, "nodes", std::string(1, '\0') + testing::SeqKey(699)).status()))
        << "the last leaf's node is on disk: it was in the synced write";

    {
      RocksStoreOptions o;
      o.path = dir;
      o.read_only = true;
      auto store = OpenRocksStore(o);
      ASSERT_TRUE(store.ok()) << store.status();
      CheckServedTrees(**store, served, "read-only");
    }
    StoreVerifyReport report = testing::VerifyTestDataDir(dir);
    EXPECT_EQ(report.status, absl::OkStatus());
    EXPECT_EQ(report.records_checked, 700u);
    {
      auto t = testing::OpenTestLedger(dir);
      ASSERT_TRUE(t.ok()) << t.status();
      CheckServedTrees((*t)->store(), served, "read-write");
      for (const Served& c : served) {
        auto root = (*t)->RootAt(c.size);
        ASSERT_TRUE(root.ok()) << root.status();
        EXPECT_EQ(ToHex(*root), ToHex(c.root)) << c.size;
      }
      EXPECT_EQ(ToHex((*t)->Root()), ToHex(served.back().root));
    }
    nodes_size = testing::RawGet(dir, "meta", "nodes_size");
    ASSERT_TRUE(nodes_size.ok()) << nodes_size.status();
    EXPECT_EQ(*nodes_size, testing::SeqKey(700));
    auto leaf = testing::RawGet(dir, "nodes", std::string(1, '\0') + testing::SeqKey(699));
    EXPECT_TRUE(leaf.ok()) << leaf.status();
    report = testing::VerifyTestDataDir(dir);
    EXPECT_EQ(report.status, absl::OkStatus());
  }
}

// A damaged nodes_size, or a damaged node of the frontier the recomputation
// starts from, is DATA_LOSS naming its key at open, read-only or not (a
// nodes_size past the tree size only read-write: a read-only verifier goes on
// to report what else disagrees with the size).
TEST(IndexTailTest, DamagedNodeWatermarkOrNodeIsReported) {
  const std::string dir = testing::NewTempDir("node_tail_damage");
  {
    // Closed cleanly: every node is in the family, nodes_size is 100.
    auto t = testing::OpenTestLedger(dir);
    ASSERT_TRUE(t.ok()) << t.status();
    std::vector<AppendRequest> batch;
    for (int i = 0; i < 100; ++i) {
      batch.push_back({testing::TestEvent(absl::StrCat("ev-", i), "case-1")});
    }
    ASSERT_TRUE((*t)->AppendBatch(std::move(batch)).ok());
  }
  // Recomputing from 96 = 64 + 32 reads the frontier (6, 0), (5, 2).
  struct Case {
    std::string family, key, value, want;
    bool read_only_too = true;  // a read-only open (a verifier's) refuses it too
  };
  const std::string node_5_2 = std::string(1, '\5') + testing::SeqKey(2);
  for (const Case& c : {
           Case{"meta", "nodes_size", "short", "meta nodes_size: got 5 bytes, want 8"},
           Case{"meta", "nodes_size", testing::SeqKey(101),
                "meta nodes_size: got 101, want at most the tree size 100", false},
           Case{"nodes", node_5_2, std::string(31, 'x'), "merkle node (5, 2)"},
       }) {
    SCOPED_TRACE(c.want);
    auto old_size = testing::RawGet(dir, "meta", "nodes_size");
    ASSERT_TRUE(old_size.ok()) << old_size.status();
    auto old_node = testing::RawGet(dir, "nodes", node_5_2);
    ASSERT_TRUE(testing::RawPut(dir, "meta", "nodes_size", testing::SeqKey(96)).ok());
    ASSERT_TRUE(testing::RawPut(dir, c.family, c.key, c.value).ok());
    for (bool read_only : {true, false}) {
      if (read_only && !c.read_only_too) continue;
      RocksStoreOptions o;
      o.path = dir;
      o.read_only = read_only;
      auto store = OpenRocksStore(o);
      ASSERT_FALSE(store.ok()) << "read_only " << read_only;
      EXPECT_TRUE(absl::IsDataLoss(store.status())) << store.status();
      EXPECT_NE(store.status().message().find(c.want), std::string::npos) << store.status();
    }
    ASSERT_TRUE(testing::RawPut(dir, "meta", "nodes_size", *old_size).ok());
    if (old_node.ok()) {
      ASSERT_TRUE(testing::RawPut(dir, "nodes", node_5_2, *old_node).ok());
    } else {
      ASSERT_TRUE(testing::RawDelete(dir, "nodes", node_5_2).ok());
    }
  }
}

// Two appends to a new ledger in `dir`, closed cleanly: every node written.
void AppendTwoAndClose(const std::string& dir) {
  auto t = testing::OpenTestLedger(dir);
  ASSERT_TRUE(t.ok()) << t.status();
  ASSERT_TRUE((*t)->Append({testing::TestEvent("ev-1", "case-1")}).ok());
  ASSERT_TRUE((*t)->Append({testing::TestEvent("ev-2", "case-1")}).ok());
}

// A directory written before nodes_size synced every node with its record:
// it opens read-only as it is, and its first read-write open sets nodes_size
// to the tree size, recomputing nothing.
TEST(IndexTailTest, DirectoryWithoutNodeWatermarkHasEveryNode) {
  const std::string dir = testing::NewTempDir("node_tail_old");
  ASSERT_NO_FATAL_FAILURE(AppendTwoAndClose(dir));
  ASSERT_TRUE(testing::RawDelete(dir, "meta", "nodes_size").ok());
  EXPECT_EQ(testing::VerifyTestDataDir(dir).status, absl::OkStatus());
  EXPECT_TRUE(absl::IsNotFound(testing::RawGet(dir, "meta", "nodes_size").status()));
  {
    auto t = testing::OpenTestLedger(dir);
    ASSERT_TRUE(t.ok()) << t.status();
    EXPECT_EQ((*t)->Size(), 2u);
  }
  auto nodes_size = testing::RawGet(dir, "meta", "nodes_size");
  ASSERT_TRUE(nodes_size.ok()) << nodes_size.status();
  EXPECT_EQ(*nodes_size, testing::SeqKey(2));
}

// A tail holding only recomputed nodes (nodes_size behind a complete
// index, which only damage or a hand edit leaves) writes them on close and
// moves neither watermark back.
TEST(IndexTailTest, RecomputedNodesAloneMoveNoWatermarkBack) {
  const std::string dir = testing::NewTempDir("node_tail_alone");
  ASSERT_NO_FATAL_FAILURE(AppendTwoAndClose(dir));
  ASSERT_TRUE(testing::RawPut(dir, "meta", "nodes_size", testing::SeqKey(0)).ok());
  ASSERT_TRUE(testing::RawDelete(dir, "nodes", std::string(1, '\0') + testing::SeqKey(1)).ok());
  {
    RocksStoreOptions o;
    o.path = dir;
    auto store = OpenRocksStore(o);
    ASSERT_TRUE(store.ok()) << store.status();
  }
  for (const char* key : {"indexed_size", "nodes_size"}) {
    auto v = testing::RawGet(dir, "meta", key);
    ASSERT_TRUE(v.ok()) << key << ": " << v.status();
    EXPECT_EQ(*v, testing::SeqKey(2)) << key;
  }
  EXPECT_TRUE(testing::RawGet(dir, "nodes", std::string(1, '\0') + testing::SeqKey(1)).ok());
  EXPECT_EQ(testing::VerifyTestDataDir(dir).status, absl::OkStatus());
}

}  // namespace
}  // namespace caseledger
