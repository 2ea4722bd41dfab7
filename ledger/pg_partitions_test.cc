// A partitioned ledger (P = 4) on a real PostgreSQL 15 started by the test
// (ledger/CLUSTER.md "Partitions"): two nodes split the partitions; kill -9
// of one (a child process running this binary) and the other takes its
// partitions over; every acknowledged append is present once; every
// partition chain, the global log and two-level proofs verify; a stale owner
// commits nothing to a partition or to the global log.
#include "ledger/pg_partitions.h"

#include <postgresql/libpq-fe.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <atomic>
#include <map>
#include <set>
#include <sstream>
#include <thread>
#include <tuple>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "ledger/cosignature.h"
#include "ledger/merkle_verify.h"
#include "ledger/pg_verify.h"
#include "ledger/signer.h"
#include "ledger/witness.h"
#include "tests/postgres_suite.h"
#include "tests/subprocess.h"
#include "tests/test_util.h"

extern char** environ;

namespace caseledger {
namespace {

using ::caseledger::testing::kTestOrigin;
using ::caseledger::testing::NewTempDir;
using ::caseledger::testing::CommandResult;
using ::caseledger::testing::RunCommand;
using ::caseledger::testing::TestEvent;

constexpr int32_t kP = 4;
constexpr char kChildAddress[] = "10.0.0.1:7001";

std::string Query(const std::string& conninfo, const std::string& sql) {
  PGconn* c = PQconnectdb(conninfo.c_str());
  PGresult* r = PQexec(c, sql.c_str());
  std::string out;
  if (PQresultStatus(r) == PGRES_TUPLES_OK) {
    for (int i = 0; i < PQntuples(r); ++i) {
      for (int j = 0; j < PQnfields(r); ++j) absl::StrAppend(&out, j ? " " : "", PQgetvalue(r, i, j));
      out += "\n";
    }
  } else if (PQresultStatus(r) != PGRES_COMMAND_OK) {
    out = absl::StrCat("error: ", PQresultErrorMessage(r));
  }
  PQclear(r);
  PQfinish(c);
  return out;
}

// The global log's key: the test key under the global origin's name.
const NoteSigner& GlobalSigner() {
  static const NoteSigner* signer = [] {
    auto key = Ed25519Signer::FromSeed(std::string(32, '\x42'));
    auto note = NoteSigner::New(GlobalOrigin(kTestOrigin), *std::move(key));
    return new NoteSigner(*std::move(note));
  }();
  return *signer;
}
NoteVerifier GlobalVerifier() { return *NoteVerifier::FromVerifierKey(GlobalSigner().VerifierKey()); }

AeadKey MasterKey(char fill) { return *AeadKey::FromBytes(std::string(kAeadKeySize, fill)); }

PartitionedNodeOptions NodeOptions(const std::string& conninfo, const std::string& node_id,
                                   const std::string& address, const std::string& dir,
                                   const NoteSigner* signer, int32_t max_new) {
  PartitionedNodeOptions o;
  o.conninfo = conninfo;
  o.node_id = node_id;
  o.address = address;
  o.partitions = kP;
  o.dir = dir;
  o.lease_ttl = absl::Seconds(2);
  o.reconnect_timeout = absl::Seconds(5);
  o.acquire_interval = absl::Milliseconds(300);
  o.max_new_partitions = max_new;
  o.ledger.origin = kTestOrigin;
  o.ledger.signer = signer;
  o.global_signer = &GlobalSigner();
  o.ledger.checkpoint_every_records = 7;
  // The README's default: payloads encrypted, identifiers blinded.
  o.master_key = MasterKey('\x5a');
  o.key_options.shred_event_type = "records_disposed";
  o.key_options.erase_event_type = "subject_erased";
  return o;
}

// The child: node-a on the conninfo it is given, appending to cases of its
// own partitions until it is killed, writing each acknowledged append as
// "ack <event id> <case> <partition> <seq>" (after the ledger returned).
TEST(PartitionedChild, RunNode) {
  const char* conninfo = std::getenv("CL_PARTS_CHILD_CONNINFO");
  if (conninfo == nullptr) GTEST_SKIP() << "run by PartitionedNodeTest only";
  const std::string dir = std::getenv("CL_PARTS_CHILD_DIR");
  std::ofstream out(dir + "/acks", std::ios::app);
  NoteSigner signer = testing::TestNoteSigner();
  auto node = PartitionedNode::Start(
      NodeOptions(conninfo, "node-a", kChildAddress, dir + "/node", &signer, kP / 2));
  ASSERT_TRUE(node.ok()) << node.status();
  std::vector<int32_t> owned = (*node)->Owned();
  std::set<int32_t> mine(owned.begin(), owned.end());
  out << "owned";
  for (int32_t p : owned) out << " " << p;
  out << "\n" << std::flush;
  for (int i = 0;; ++i) {
    std::string stream = absl::StrCat("case-a", i % 50);
    if (mine.count(static_cast<int32_t>(PartitionOf(stream, kP))) == 0) continue;
    std::string id = absl::StrCat("a-", i);
    auto r = (*node)->Append({TestEvent(id, stream)});
    if (!r.ok()) continue;
    out << "ack " << id << " " << stream << " " << PartitionOf(stream, kP) << " " << r->seq
        << "\n"
        << std::flush;
    absl::SleepFor(absl::Milliseconds(5));
  }
}

struct Ack {
  std::string event_id, stream;
  int32_t part = 0;
  uint64_t seq = 0;
};

class PartitionedNodeTest : public testing::PostgresSuite {
 protected:
  void SetUp() override {
    PostgresSuite::SetUp();
    signer_ = std::make_unique<NoteSigner>(testing::TestNoteSigner());
  }

  // Checkpoints every owned partition, publishes the global log, and checks
  // the proof of each ack from the global checkpoint alone.
  void ProveAll(PartitionedNode& node, const std::vector<Ack>& acks) {
    for (int32_t p : node.Owned()) {
      auto l = node.Partition(p);
      ASSERT_TRUE(l.ok());
      if ((*l)->Size() > 0) {
        ASSERT_TRUE((*l)->Checkpoint().ok());
      }
    }
    auto g = node.PublishGlobal();
    ASSERT_TRUE(g.ok()) << g.status();
    NoteVerifier v = testing::TestNoteVerifier();
    for (const Ack& a : acks) {
      auto proof = node.Prove(a.part, a.seq);
      ASSERT_TRUE(proof.ok()) << a.event_id << ": " << proof.status();
      auto cp = VerifyPartitionedProof(proof->second.note, GlobalVerifier(), kTestOrigin, kP,
                                       proof->first);
      ASSERT_TRUE(cp.ok()) << a.event_id << ": " << cp.status();
      // The proven record is this event's.
      auto rec = (*node.Partition(a.part))->Read(a.seq);
      ASSERT_TRUE(rec.ok());
      EXPECT_EQ(rec->record.event_id, a.event_id);
    }
  }

  // node-1 owning partitions 0 and 1, node-2 owning 2 and 3.
  void StartTwoNodes(const std::string& dir, std::unique_ptr<PartitionedNode>* n1,
                     std::unique_ptr<PartitionedNode>* n2) {
    auto a = PartitionedNode::Start(
        NodeOptions(pg_->conninfo(), "node-1", "10.0.0.4:7004", dir + "/1", signer_.get(), kP / 2));
    ASSERT_TRUE(a.ok()) << a.status();
    auto b = PartitionedNode::Start(
        NodeOptions(pg_->conninfo(), "node-2", "10.0.0.5:7005", dir + "/2", signer_.get(), kP / 2));
    ASSERT_TRUE(b.ok()) << b.status();
    ASSERT_EQ((*a)->Owned(), (std::vector<int32_t>{0, 1}));
    ASSERT_EQ((*b)->Owned(), (std::vector<int32_t>{2, 3}));
    *n1 = *std::move(a);
    *n2 = *std::move(b);
  }

  std::unique_ptr<NoteSigner> signer_;
};

std::vector<Ack> ReadAcks(const std::string& path, std::set<int32_t>* owned) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  std::string text = s.str();
  // A line the kill cut short was not acknowledged to anyone.
  text = text.substr(0, text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1);
  std::vector<Ack> acks;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::vector<std::string> f = absl::StrSplit(line, ' ');
    if (f[0] == "owned" && owned != nullptr) {
      for (size_t i = 1; i < f.size(); ++i) owned->insert(std::stoi(f[i]));
    } else if (f[0] == "ack" && f.size() == 5) {
      acks.push_back({f[1], f[2], std::stoi(f[3]), std::stoull(f[4])});
    }
  }
  return acks;
}

TEST_F(PartitionedNodeTest, TwoNodesSplitPartitionsAndTheSurvivorTakesOverAfterKill9) {
  const std::string dir = NewTempDir("parts_kill");
  // node-a in a child process (this binary, one test).
  std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  std::vector<std::string> args = {self, "--gtest_filter=PartitionedChild.RunNode"};
  std::vector<std::string> env = {"CL_PARTS_CHILD_CONNINFO=" + pg_->conninfo(),
                                  "CL_PARTS_CHILD_DIR=" + dir};
  for (char** e = environ; *e != nullptr; ++e) {
    // The child's gtest must not touch the parent's result files.
    absl::string_view var(*e);
    if (absl::StartsWith(var, "TEST_PREMATURE_EXIT_FILE=") || absl::StartsWith(var, "XML_OUTPUT_FILE=") ||
        absl::StartsWith(var, "GTEST_") || absl::StartsWith(var, "TEST_SHARD")) {
      continue;
    }
    env.emplace_back(var);
  }
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t child = -1;
  ASSERT_EQ(posix_spawn(&child, self.c_str(), nullptr, nullptr, argv.data(), envp.data()), 0);
  struct Reaper {
    pid_t pid;
    ~Reaper() {
      if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
      }
    }
  } reaper{child};

  std::set<int32_t> child_owned;
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (child_owned.empty() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
    ASSERT_EQ(waitpid(child, nullptr, WNOHANG), 0) << "node-a exited";
    ReadAcks(dir + "/acks", &child_owned);
  }
  ASSERT_EQ(child_owned.size(), 2u) << "node-a did not report its partitions";

  // node-b takes the other two.
  auto b = PartitionedNode::Start(
      NodeOptions(pg_->conninfo(), "node-b", "10.0.0.2:7002", dir + "/b", signer_.get(), kP / 2));
  ASSERT_TRUE(b.ok()) << b.status();
  std::vector<int32_t> b_owned = (*b)->Owned();
  ASSERT_EQ(b_owned.size(), 2u);
  for (int32_t p : b_owned) EXPECT_EQ(child_owned.count(p), 0u) << p;

  // A write for node-a's partition names node-a and its address.
  std::string foreign;
  for (int i = 0; foreign.empty(); ++i) {
    std::string s = absl::StrCat("case-x", i);
    if (child_owned.count(static_cast<int32_t>(PartitionOf(s, kP)))) foreign = s;
  }
  auto routed = (*b)->Append({TestEvent("b-foreign", foreign)});
  ASSERT_FALSE(routed.ok());
  EXPECT_EQ(routed.status().code(), absl::StatusCode::kFailedPrecondition) << routed.status();
  EXPECT_TRUE(absl::StrContains(routed.status().message(), kChildAddress)) << routed.status();
  EXPECT_TRUE(absl::StrContains(routed.status().message(), "node-a")) << routed.status();

  std::vector<Ack> b_acks;
  auto append_b = [&](const std::string& id, const std::string& stream) {
    auto r = (*b)->Append({TestEvent(id, stream)});
    ASSERT_TRUE(r.ok()) << id << ": " << r.status();
    b_acks.push_back({id, stream, static_cast<int32_t>(PartitionOf(stream, kP)), r->seq});
  };
  for (int i = 0, n = 0; n < 30; ++i) {
    std::string s = absl::StrCat("case-b", i % 40);
    if (child_owned.count(static_cast<int32_t>(PartitionOf(s, kP)))) continue;
    append_b(absl::StrCat("b-", i), s);
    ++n;
  }

  // node-a dies mid-stream.
  deadline = absl::Now() + absl::Seconds(30);
  while (ReadAcks(dir + "/acks", nullptr).size() < 40 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_EQ(kill(child, SIGKILL), 0);
  waitpid(child, nullptr, 0);
  reaper.pid = -1;
  std::vector<Ack> a_acks = ReadAcks(dir + "/acks", nullptr);
  ASSERT_GE(a_acks.size(), 40u);

  // node-b takes node-a's partitions once their leases lapse.
  deadline = absl::Now() + absl::Seconds(20);
  while ((*b)->Owned().size() < static_cast<size_t>(kP) && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_EQ((*b)->Owned().size(), static_cast<size_t>(kP));

  // Retries of node-a's acknowledged appends get the original result.
  for (size_t i = 0; i < a_acks.size(); i += 7) {
    auto r = (*b)->Append({TestEvent(a_acks[i].event_id, a_acks[i].stream)});
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_TRUE(r->duplicate) << a_acks[i].event_id;
    EXPECT_EQ(r->seq, a_acks[i].seq) << a_acks[i].event_id;
  }
  // node-b opens node-a's blinded records and sealed payloads: the salts
  // and data keys node-a created are in cl_keys, under the master key.
  for (size_t i = 0; i < a_acks.size(); i += 5) {
    auto rec = (*(*b)->Partition(a_acks[i].part))->Read(a_acks[i].seq);
    ASSERT_TRUE(rec.ok()) << a_acks[i].event_id << ": " << rec.status();
    EXPECT_EQ(rec->record.format_version, kRecordFormatBlinded) << a_acks[i].event_id;
    EXPECT_EQ(rec->record.event_id, a_acks[i].event_id);
    EXPECT_EQ(rec->record.subject_ids, std::vector<std::string>{"client-" + a_acks[i].stream});
    EXPECT_TRUE(rec->openings.has_value()) << a_acks[i].event_id;
    EXPECT_FALSE(rec->erased) << a_acks[i].event_id;
  }
  // And it continues on every partition, node-a's included.
  for (int i = 0; i < 24; ++i) append_b(absl::StrCat("b-after-", i), absl::StrCat("case-a", i));

  // Every acknowledged append is in the log of record once, where it was
  // acknowledged.
  std::vector<Ack> all = a_acks;
  all.insert(all.end(), b_acks.begin(), b_acks.end());
  for (const Ack& a : all) {
    EXPECT_EQ(Query(pg_->conninfo(),
                    absl::StrCat("SELECT part, seq FROM cl_records WHERE event_id = "
                                 "convert_to('", a.event_id, "', 'UTF8')")),
              absl::StrCat(a.part, " ", a.seq, "\n"))
        << a.event_id;
  }

  // Proofs from the global checkpoint, twice, and the two global
  // checkpoints are consistent.
  ProveAll(**b, all);
  auto g1 = (*b)->PublishGlobal();
  ASSERT_TRUE(g1.ok()) << g1.status();
  for (int i = 0; i < 9; ++i) append_b(absl::StrCat("b-late-", i), absl::StrCat("case-c", i));
  ProveAll(**b, b_acks);
  auto g2 = (*b)->PublishGlobal();
  ASSERT_TRUE(g2.ok()) << g2.status();
  ASSERT_GT(g2->size, g1->size);
  NoteVerifier v = testing::TestNoteVerifier();
  auto c1 = OpenCheckpoint(g1->note, GlobalVerifier(), GlobalOrigin(kTestOrigin));
  auto c2 = OpenCheckpoint(g2->note, GlobalVerifier(), GlobalOrigin(kTestOrigin));
  ASSERT_TRUE(c1.ok() && c2.ok());
  auto consistency = (*b)->GlobalConsistency(g1->size, g2->size);
  ASSERT_TRUE(consistency.ok()) << consistency.status();
  EXPECT_TRUE(VerifyConsistency(c1->size, c2->size, *consistency, c1->root, c2->root).ok());

  // A witness cosigns the global checkpoints (tlog-witness add-checkpoint:
  // the first from the empty tree, the second with the consistency proof).
  auto witness_key = Ed25519Signer::FromSeed(std::string(32, '\x07'));
  ASSERT_TRUE(witness_key.ok());
  auto witness = Cosigner::New("witness.test/w", *std::move(witness_key));
  ASSERT_TRUE(witness.ok()) << witness.status();
  WitnessState state;
  uint64_t known = 0;
  std::vector<NoteVerifier> logs;
  logs.push_back(GlobalVerifier());
  auto w1 = WitnessAddCheckpoint(logs, {0, {}, g1->note}, *witness, 1767225600,
                                 &state, &known);
  ASSERT_TRUE(w1.ok()) << w1.status();
  auto w2 = WitnessAddCheckpoint(logs, {g1->size, *consistency, g2->note}, *witness,
                                 1767225601, &state, &known);
  ASSERT_TRUE(w2.ok()) << w2.status();
  EXPECT_EQ(w2->checkpoint.size, g2->size);
  // A global checkpoint signed under the partitions' key name is not one a
  // witness configured with the global log's key accepts.
  Checkpoint wrong = *c2;
  auto wrong_note = SignCheckpoint(wrong, *signer_);
  ASSERT_TRUE(wrong_note.ok());
  EXPECT_FALSE(WitnessAddCheckpoint(logs, {g2->size, {}, *wrong_note}, *witness,
                                    1767225602, &state, &known)
                   .ok());

  // Everything in PostgreSQL verifies on its own.
  auto summary = VerifyPgLedger(pg_->conninfo(), kTestOrigin, v, GlobalVerifier());
  ASSERT_TRUE(summary.ok()) << summary.status();
  uint64_t total = 0;
  for (uint64_t s : summary->partition_sizes) total += s;
  // node-a may have committed one append whose acknowledgement the kill cut.
  EXPECT_GE(total, a_acks.size() + b_acks.size());
  EXPECT_LE(total, a_acks.size() + b_acks.size() + 1);
  EXPECT_EQ(summary->global_size, g2->size);
}

TEST_F(PartitionedNodeTest, StaleOwnerCommitsNothingToAPartitionOrTheGlobalLog) {
  const std::string dir = NewTempDir("parts_stale");
  auto node = PartitionedNode::Start(
      NodeOptions(pg_->conninfo(), "node-s", "10.0.0.3:7003", dir, signer_.get(), 0));
  ASSERT_TRUE(node.ok()) << node.status();
  ASSERT_EQ((*node)->Owned().size(), static_cast<size_t>(kP));
  std::map<int32_t, std::string> case_of;
  for (int i = 0; case_of.size() < static_cast<size_t>(kP); ++i) {
    std::string s = absl::StrCat("case-s", i);
    case_of.emplace(PartitionOf(s, kP), s);
  }
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE((*node)->Append({TestEvent(absl::StrCat("s-", i), case_of[i % kP])}).ok());
  }
  for (int32_t p = 0; p < kP; ++p) ASSERT_TRUE((*(*node)->Partition(p))->Checkpoint().ok());
  ASSERT_TRUE((*node)->PublishGlobal().ok());

  // Another node took partition 1 (and, below, partition 0) behind this
  // one's back.
  const std::string take = "UPDATE cl_partitions SET epoch = epoch + 1, owner = 'intruder', "
                           "lease_until = clock_timestamp() + interval '1 hour' WHERE part = ";
  Query(pg_->conninfo(), take + "1");
  const std::string count1 = Query(pg_->conninfo(), "SELECT count(*) FROM cl_records WHERE part = 1");
  auto refused = (*node)->Append({TestEvent("s-stale", case_of[1])});
  EXPECT_FALSE(refused.ok());
  EXPECT_EQ(Query(pg_->conninfo(), "SELECT count(*) FROM cl_records WHERE part = 1"), count1);
  EXPECT_EQ(Query(pg_->conninfo(),
                  "SELECT count(*) FROM cl_records WHERE event_id = convert_to('s-stale', 'UTF8')"),
            "0\n");
  // Partition 2's sequencer is fenced on its own: it goes on.
  EXPECT_TRUE((*node)->Append({TestEvent("s-2-after", case_of[2])}).ok());
  // The intruder now owns partition 1: writes there are routed to it.
  auto routed = (*node)->Append({TestEvent("s-stale-2", case_of[1])});
  EXPECT_FALSE(routed.ok());

  Query(pg_->conninfo(), take + "0");
  ASSERT_TRUE((*(*node)->Partition(2))->Checkpoint().ok());
  const std::string global = Query(pg_->conninfo(), "SELECT count(*) FROM cl_global");
  auto published = (*node)->PublishGlobal();
  EXPECT_EQ(published.status().code(), absl::StatusCode::kFailedPrecondition)
      << published.status();
  EXPECT_EQ(Query(pg_->conninfo(), "SELECT count(*) FROM cl_global"), global);
}

// A node restarted with its node id and directory takes its partitions back
// at once (a new epoch each, fencing its previous incarnation) and goes on
// from where it stopped.
TEST_F(PartitionedNodeTest, RestartedNodeTakesItsPartitionsBackAndContinues) {
  const std::string dir = NewTempDir("parts_restart");
  std::vector<std::pair<std::string, AppendResult>> before;
  std::string epochs;
  {
    auto node = PartitionedNode::Start(
        NodeOptions(pg_->conninfo(), "node-r", "10.0.0.6:7006", dir, signer_.get(), 0));
    ASSERT_TRUE(node.ok()) << node.status();
    for (int i = 0; i < 12; ++i) {
      std::string s = absl::StrCat("case-r", i);
      auto r = (*node)->Append({TestEvent(absl::StrCat("r-", i), s)});
      ASSERT_TRUE(r.ok()) << r.status();
      before.emplace_back(s, *r);
    }
    epochs = Query(pg_->conninfo(), "SELECT sum(epoch) FROM cl_partitions");
  }
  auto node = PartitionedNode::Start(
      NodeOptions(pg_->conninfo(), "node-r", "10.0.0.6:7006", dir, signer_.get(), 0));
  ASSERT_TRUE(node.ok()) << node.status();
  EXPECT_EQ((*node)->Owned().size(), static_cast<size_t>(kP));
  EXPECT_NE(Query(pg_->conninfo(), "SELECT sum(epoch) FROM cl_partitions"), epochs);
  for (size_t i = 0; i < before.size(); ++i) {
    auto r = (*node)->Append({TestEvent(absl::StrCat("r-", i), before[i].first)});
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_TRUE(r->duplicate);
    EXPECT_EQ(r->seq, before[i].second.seq);
  }
  auto next = (*node)->Append({TestEvent("r-next", before[0].first)});
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->version, 1u);
  ASSERT_TRUE(
      VerifyPgLedger(pg_->conninfo(), kTestOrigin, testing::TestNoteVerifier(), GlobalVerifier())
          .ok());
}

TEST_F(PartitionedNodeTest, AnyNodeProvesAndABatchStaysInOnePartition) {
  const std::string dir = NewTempDir("parts_any");
  PartitionedNodeOptions o1 =
      NodeOptions(pg_->conninfo(), "node-1", "10.0.0.4:7004", dir + "/1", signer_.get(), kP / 2);
  o1.global_interval = absl::Milliseconds(200);
  auto n1 = PartitionedNode::Start(o1);
  ASSERT_TRUE(n1.ok()) << n1.status();
  auto n2 = PartitionedNode::Start(
      NodeOptions(pg_->conninfo(), "node-2", "10.0.0.5:7005", dir + "/2", signer_.get(), kP / 2));
  ASSERT_TRUE(n2.ok()) << n2.status();
  ASSERT_EQ((*n1)->Owned(), (std::vector<int32_t>{0, 1}));
  ASSERT_EQ((*n2)->Owned(), (std::vector<int32_t>{2, 3}));
  std::map<int32_t, std::vector<std::string>> cases;
  for (int i = 0; i < 400; ++i) {
    std::string s = absl::StrCat("case-any", i);
    cases[PartitionOf(s, kP)].push_back(s);
  }
  // A batch across partitions is refused whole, naming the event.
  std::vector<AppendRequest> mixed = {{TestEvent("m-0", cases[2][0])},
                                      {TestEvent("m-1", cases[3][0])}};
  auto refused = (*n2)->AppendBatch(mixed);
  EXPECT_TRUE(absl::IsInvalidArgument(refused.status())) << refused.status();
  EXPECT_TRUE(absl::StrContains(refused.status().message(), "events[1].stream_id"))
      << refused.status();
  EXPECT_EQ(Query(pg_->conninfo(), "SELECT count(*) FROM cl_records"), "0\n");
  // One partition's batch goes through, on its owner only.
  std::vector<AppendRequest> same = {{TestEvent("m-2", cases[2][0])},
                                     {TestEvent("m-3", cases[2][1])}};
  EXPECT_EQ((*n1)->AppendBatch(same).status().code(), absl::StatusCode::kFailedPrecondition);
  auto batch = (*n2)->AppendBatch(same);
  ASSERT_TRUE(batch.ok()) << batch.status();
  std::vector<Ack> acks;
  for (size_t i = 0; i < batch->size(); ++i) acks.push_back({"", "", 2, (*batch)[i].seq});
  for (int32_t p = 0; p < kP; ++p) {
    PartitionedNode& owner = p < 2 ? **n1 : **n2;
    for (int i = 0; i < 5; ++i) {
      auto r = owner.Append({TestEvent(absl::StrCat("any-", p, "-", i), cases[p][i])});
      ASSERT_TRUE(r.ok()) << r.status();
      acks.push_back({"", "", p, r->seq});
    }
  }
  for (int32_t p : (*n2)->Owned()) ASSERT_TRUE((*(*n2)->Partition(p))->Checkpoint().ok());
  // node-1 publishes on its own; each node proves every event, its own
  // partitions' and the other node's, from the global checkpoint.
  NoteVerifier v = testing::TestNoteVerifier();
  for (PartitionedNode* node : {n1->get(), n2->get()}) {
    for (const Ack& a : acks) {
      absl::StatusOr<std::pair<PartitionedProof, GlobalCheckpoint>> proof;
      absl::Time deadline = absl::Now() + absl::Seconds(15);
      do {
        proof = node->Prove(a.part, a.seq);
        if (!proof.ok()) absl::SleepFor(absl::Milliseconds(100));
      } while (!proof.ok() && absl::IsFailedPrecondition(proof.status()) &&
               absl::Now() < deadline);
      ASSERT_TRUE(proof.ok()) << a.part << "/" << a.seq << ": " << proof.status();
      auto cp = VerifyPartitionedProof(proof->second.note, GlobalVerifier(), kTestOrigin, kP,
                                       proof->first);
      EXPECT_TRUE(cp.ok()) << a.part << "/" << a.seq << ": " << cp.status();
    }
  }
  auto summary = VerifyPgLedger(pg_->conninfo(), kTestOrigin, v, GlobalVerifier());
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_GE(summary->global_checkpoints, 1u);

  // The auditor's tool says the same, and notices one changed record byte.
  const std::vector<std::string> verify = {
      "tools/ledger_verify", "--pg_conninfo=" + pg_->conninfo(),
      "--key=" + testing::TestNoteSigner().VerifierKey(),
      "--global_key=" + GlobalSigner().VerifierKey(), std::string("--origin=") + kTestOrigin};
  CommandResult ok = RunCommand(verify);
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  EXPECT_TRUE(absl::StrContains(ok.out, "OK: the ledger in PostgreSQL verifies")) << ok.out;
  n1->reset();
  n2->reset();
  Query(pg_->conninfo(),
        "UPDATE cl_records SET leaf = overlay(leaf placing '\\xff'::bytea from 60) "
        "WHERE part = 2 AND seq = 0");
  CommandResult bad = RunCommand(verify);
  EXPECT_EQ(bad.exit_code, 1) << bad.out << bad.err;
  EXPECT_TRUE(absl::StrContains(bad.out, "partition 2")) << bad.out;
}


// The cases of each partition, `n` of them, named "<prefix><i>".
std::map<int32_t, std::vector<std::string>> CasesByPartition(const std::string& prefix, int n) {
  std::map<int32_t, std::vector<std::string>> cases;
  for (int i = 0; i < n; ++i) {
    std::string s = absl::StrCat(prefix, i);
    cases[PartitionOf(s, kP)].push_back(s);
  }
  return cases;
}

Event SubjectEvent(const std::string& id, const std::string& stream, const std::string& subject,
                   const std::string& type = "record_entry_written") {
  Event e = TestEvent(id, stream);
  e.subject_ids.clear();
  if (!subject.empty()) e.subject_ids.push_back(subject);
  e.event_type = type;
  return e;
}

// The hex of `bytes` as PostgreSQL prints a bytea ("\x" and lowercase hex).
std::string PgHex(absl::string_view bytes) { return absl::BytesToHexString(bytes); }

// Two nodes owning different partitions see new subjects at the same time
// (one event each, in their own partitions, from two threads): each subject
// ends up with one blinding salt, both partitions' records carry the same
// subject tag and open on either node, and cl_keys holds exactly the keys
// the events need (no loser's key left behind).
TEST_F(PartitionedNodeTest, RacingNodesCreateOneSaltAndKeySetPerSubject) {
  std::unique_ptr<PartitionedNode> n1, n2;
  ASSERT_NO_FATAL_FAILURE(StartTwoNodes(NewTempDir("parts_race"), &n1, &n2));
  auto cases = CasesByPartition("case-race", 200);
  constexpr int kSubjects = 20;
  std::vector<AppendResult> r1(kSubjects), r2(kSubjects);
  std::atomic<int> ready{0};
  auto run = [&](PartitionedNode* node, int32_t part, std::vector<AppendResult>* out) {
    ready.fetch_add(1);
    while (ready.load() < 2) {
    }
    for (int i = 0; i < kSubjects; ++i) {
      auto r = node->Append({SubjectEvent(absl::StrCat("race-", part, "-", i), cases[part][i],
                                          absl::StrCat("client-race-", i))});
      ASSERT_TRUE(r.ok()) << r.status();
      (*out)[i] = *r;
    }
  };
  std::thread t1(run, n1.get(), 0, &r1);
  std::thread t2(run, n2.get(), 2, &r2);
  t1.join();
  t2.join();
  for (int i = 0; i < kSubjects; ++i) {
    const std::string subject = absl::StrCat("client-race-", i);
    auto a = (*n1->Partition(0))->Read(r1[i].seq);
    auto b = (*n2->Partition(2))->Read(r2[i].seq);
    ASSERT_TRUE(a.ok() && b.ok()) << a.status() << b.status();
    ASSERT_EQ(a->record.subject_tags.size(), 1u);
    ASSERT_EQ(b->record.subject_tags.size(), 1u);
    EXPECT_EQ(a->record.subject_tags[0], b->record.subject_tags[0]) << subject;
    EXPECT_EQ(a->record.subject_ids, std::vector<std::string>{subject});
    EXPECT_EQ(b->record.subject_ids, std::vector<std::string>{subject});
    EXPECT_TRUE(a->openings.has_value() && b->openings.has_value()) << subject;
    // Either node finds the one salt.
    auto s1 = n1->key_store()->FindSalt(BlindKind::kSubject, subject);
    auto s2 = n2->key_store()->FindSalt(BlindKind::kSubject, subject);
    ASSERT_TRUE(s1.ok() && s2.ok());
    EXPECT_EQ(*s1, *s2);
  }
  // Per subject: its salt and one data key per case; per case: its salt.
  EXPECT_EQ(Query(pg_->conninfo(), "SELECT count(*) FROM cl_keys WHERE substring(k from 1 for 1) = 'd'"),
            absl::StrCat(kSubjects * (1 + 2 + 2), "\n"));
}

// A subject with cases in partitions of both nodes is erased on one node
// (its erasure event appended, then its keys destroyed, as a single node
// does): neither node opens its payloads or its subject tag any more, in any
// partition; the other node, which had the keys cached, seals the subject's
// next event under a fresh key (readable, a new tag). A case's disposal
// destroys its keys in its partition.
TEST_F(PartitionedNodeTest, ErasureDestroysTheSubjectsKeysInEveryPartition) {
  std::unique_ptr<PartitionedNode> n1, n2;
  ASSERT_NO_FATAL_FAILURE(StartTwoNodes(NewTempDir("parts_erase"), &n1, &n2));
  auto cases = CasesByPartition("case-erase", 200);
  // A case of partition 1 is disposed of: its keys go with the record of
  // the disposal (first: a disposal empties node-1's key cache).
  auto kept = n1->Append({SubjectEvent("d-0", cases[1][5], "client-disposed")});
  ASSERT_TRUE(kept.ok()) << kept.status();
  ASSERT_TRUE(n1->Append({SubjectEvent("d-1", cases[1][5], "", "records_disposed")}).ok());
  auto disposed = (*n1->Partition(1))->Read(kept->seq);
  ASSERT_TRUE(disposed.ok()) << disposed.status();
  EXPECT_TRUE(disposed->erased);
  const std::string subject = "client-erased";
  // (node, partition, seq) of the subject's records.
  std::vector<std::tuple<PartitionedNode*, int32_t, uint64_t>> records;
  for (int32_t p = 0; p < kP; ++p) {
    PartitionedNode* owner = p < 2 ? n1.get() : n2.get();
    for (int i = 0; i < 2; ++i) {
      auto r = owner->Append({SubjectEvent(absl::StrCat("e-", p, "-", i), cases[p][i], subject)});
      ASSERT_TRUE(r.ok()) << r.status();
      records.emplace_back(owner, p, r->seq);
    }
  }
  auto before = (*n1->Partition(0))->Read(std::get<2>(records[0]));
  ASSERT_TRUE(before.ok() && before->openings.has_value()) << before.status();
  const Hash old_tag = before->record.subject_tags.at(0);

  // Erased on node-2: the erasure event first, then the keys.
  ASSERT_TRUE(n2->Append({SubjectEvent("erase-0", cases[3][9], subject, "subject_erased")}).ok());
  auto destroyed = n2->key_store()->EraseSubject(subject);
  ASSERT_TRUE(destroyed.ok()) << destroyed.status();
  EXPECT_EQ(*destroyed, records.size());
  for (const auto& [node, part, seq] : records) {
    auto rec = (*node->Partition(part))->Read(seq);
    ASSERT_TRUE(rec.ok()) << part << "/" << seq << ": " << rec.status();
    EXPECT_TRUE(rec->erased) << part << "/" << seq;
    EXPECT_FALSE(rec->openings.has_value()) << part << "/" << seq;
    EXPECT_TRUE(absl::StartsWith(rec->record.subject_ids.at(0), "unlinked-subject:"))
        << rec->record.subject_ids.at(0);
  }
  EXPECT_TRUE(absl::IsNotFound(n1->key_store()->FindSalt(BlindKind::kSubject, subject).status()));
  // node-1 had the subject's keys cached; its next event is sealed anew.
  auto next = n1->Append({SubjectEvent("e-after", cases[0][0], subject)});
  ASSERT_TRUE(next.ok()) << next.status();
  auto after = (*n1->Partition(0))->Read(next->seq);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_TRUE(after->openings.has_value());
  EXPECT_FALSE(after->erased);
  EXPECT_EQ(after->record.subject_ids, std::vector<std::string>{subject});
  EXPECT_NE(after->record.subject_tags.at(0), old_tag);
}

// The ids a format-2 record blinds (case, event, producer, subjects) and the
// payload's field values are nowhere in cl_records' leaf and payload bytes.
TEST_F(PartitionedNodeTest, BlindedIdsAndSealedValuesAreNotInTheLogOfRecord) {
  const std::string dir = NewTempDir("parts_blind");
  auto node = PartitionedNode::Start(
      NodeOptions(pg_->conninfo(), "node-b", "10.0.0.7:7007", dir, signer_.get(), 0));
  ASSERT_TRUE(node.ok()) << node.status();
  std::vector<std::string> secrets;
  for (int i = 0; i < 8; ++i) {
    Event e = SubjectEvent(absl::StrCat("event-blind-", i), absl::StrCat("case-blind-", i),
                           absl::StrCat("client-blind-", i));
    e.producer = "producer-blind";
    e.fields = {{"note", absl::StrCat("value-blind-", i), 0}};
    secrets.insert(secrets.end(), {e.event_id, e.stream_id, e.subject_ids[0], e.producer,
                                   e.fields[0].value});
    ASSERT_TRUE((*node)->Append({e}).ok());
  }
  const std::string rows =
      Query(pg_->conninfo(), "SELECT count(*), string_agg(leaf || payload, ''::bytea) FROM cl_records");
  ASSERT_TRUE(absl::StartsWith(rows, "8 \\x")) << rows.substr(0, 40);
  for (const std::string& secret : secrets) {
    EXPECT_FALSE(absl::StrContains(rows, PgHex(secret))) << secret;
  }
}

// A node restarted with another master key, or none, is refused, naming the
// key ids; nothing is written.
TEST_F(PartitionedNodeTest, RestartWithTheWrongMasterKeyIsRefused) {
  const std::string dir = NewTempDir("parts_wrongkey");
  PartitionedNodeOptions o =
      NodeOptions(pg_->conninfo(), "node-k", "10.0.0.8:7008", dir, signer_.get(), 0);
  {
    auto node = PartitionedNode::Start(o);
    ASSERT_TRUE(node.ok()) << node.status();
    ASSERT_TRUE((*node)->Append({TestEvent("k-0", "case-k")}).ok());
  }
  const std::string keys = Query(pg_->conninfo(), "SELECT k, v FROM cl_keys ORDER BY k");
  o.master_key = MasterKey('\x33');
  auto wrong = PartitionedNode::Start(o);
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kFailedPrecondition) << wrong.status();
  EXPECT_TRUE(absl::StrContains(wrong.status().message(), MasterKeyId(MasterKey('\x33'))))
      << wrong.status();
  EXPECT_TRUE(absl::StrContains(wrong.status().message(), MasterKeyId(MasterKey('\x5a'))))
      << wrong.status();
  o.master_key.reset();
  auto none = PartitionedNode::Start(o);
  EXPECT_EQ(none.status().code(), absl::StatusCode::kFailedPrecondition) << none.status();
  EXPECT_EQ(Query(pg_->conninfo(), "SELECT k, v FROM cl_keys ORDER BY k"), keys);
  o.master_key = MasterKey('\x5a');
  auto right = PartitionedNode::Start(o);
  ASSERT_TRUE(right.ok()) << right.status();
  auto rec = (*(*right)->Partition(PartitionOf("case-k", kP)))->Read(0);
  ASSERT_TRUE(rec.ok()) << rec.status();
  EXPECT_TRUE(rec->openings.has_value());
}

}  // namespace
}  // namespace caseledger
