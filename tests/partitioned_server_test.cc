// caseledger_server with --pg_partitions=4 on two nodes over one PostgreSQL
// (ledger/CLUSTER.md "Serving P > 1"), started as tools/cluster.sh starts
// its nodes (--pg_conninfo, --node_id, a fixed --listen each):
//   - appends for cases in every partition, sent to node A only and to node
//     B only: a node answers its own partitions and redirects the others
//     (UNAVAILABLE with the owner's address in the trailer); every ack has
//     the case's partition and that partition's next seq;
//   - every record is proved from the node that does NOT own its partition:
//     a two-level proof checked against the signed global checkpoint alone;
//   - kill -9 of node B: node A takes its partitions, appends continue at
//     the next seq, and retried event ids return their original seqs;
//   - ReadStream of a case: answered by its partition's owner, redirected by
//     the other node once the caller is allowed, and served by the node that
//     takes the partition over after a kill -9.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "ledger/checkpoint.h"
#include "ledger/cosignature.h"
#include "ledger/hash.h"
#include "ledger/partition.h"
#include "ledger/record.h"
#include "ledger/signer.h"
#include "proto/ledger.grpc.pb.h"
#include "services/cluster/cluster_client.h"
#include "tests/dev_certs.h"
#include "tests/postgres_suite.h"
#include "tests/server_process.h"
#include "tests/subprocess.h"
#include "tests/test_util.h"
#include "tests/witness_process.h"

namespace caseledger {
namespace {

using testing::ServerProcess;

constexpr int kPartitions = 4;
constexpr char kServer[] = "services/api/caseledger_server";

// The case's `n`th event: case_opened, then notes.
v1::AppendRequest CaseEvent(const std::string& event_id, const std::string& case_id, int n) {
  v1::AppendRequest r;
  v1::Event* e = r.mutable_event();
  e->set_event_id(event_id);
  e->set_stream_id(case_id);
  e->add_subject_ids("client-" + case_id);
  e->set_producer("partitioned-test");
  e->mutable_occurred_at()->set_seconds(1767225000);
  if (n > 0) {
    auto* w = e->mutable_record_entry_written();
    w->set_entry_id("entry-" + event_id);
    w->set_data_category("housing");
    w->set_text(absl::StrCat("note ", n));
    return r;
  }
  auto* o = e->mutable_case_opened();
  o->set_program("housing");
  o->set_jurisdiction("US-CA");
  o->set_record_class(v1::RECORD_CLASS_GENERAL);
  return r;
}

struct Ack {
  v1::AppendResponse response;
  std::string answered_by;  // the address that acknowledged it
  int redirects = 0;
};

class PartitionedServerTest : public testing::PostgresSuite {
 protected:
  void SetUp() override {
    PostgresSuite::SetUp();
    dir_ = testing::NewTempDir("partitioned_server");
    // Two cases in every partition.
    for (int i = 0; cases_.size() < 2 * kPartitions; ++i) {
      std::string id = absl::StrCat("case-", i);
      int p = static_cast<int>(PartitionOf(id, kPartitions));
      if (per_partition_[p] < 2) {
        ++per_partition_[p];
        cases_.push_back(id);
      }
    }
  }

  std::unique_ptr<ServerProcess> StartNode(const std::string& name,
                                           const std::vector<std::string>& extra_flags = {}) {
    const std::string address = absl::StrCat("127.0.0.1:", testing::FreePort());
    std::vector<std::string> flags = {
        "--pg_conninfo=" + pg_->conninfo(), "--node_id=" + name,
        absl::StrCat("--pg_partitions=", kPartitions), "--pg_max_new_partitions=2",
        "--pg_lease_ttl=2s", "--checkpoint_interval=300ms", "--listen=" + address,
        // One ledger key for every node, as tools/cluster.sh gives them.
        "--signing_key=" + dir_ + "/signing.key"};
    if (tls_.has_value()) {
      // serve.sh's TLS flags, its master key included.
      for (const std::string& f : tls_->ServerFlags()) flags.push_back(f);
      flags.push_back("--authz_config=" + dir_ + "/authz.conf");
    } else {
      // As serve.sh starts a server: payloads sealed, ids blinded.
      flags.push_back("--master_key_file=" + testing::WriteTestMasterKey(dir_ + "/master"));
    }
    flags.insert(flags.end(), extra_flags.begin(), extra_flags.end());
    auto s = ServerProcess::Start(kServer, dir_ + "/" + name, flags);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *std::move(s) : nullptr;
  }

  // Mutual TLS with certificates for `who` (ROLE/ID each), the producer
  // registered for housing and aud-1 granted every case; nodes A and B
  // started, B owning partitions 2 and 3.
  void StartOverMutualTls(const std::vector<std::string>& who,
                          std::unique_ptr<ServerProcess>* a, std::unique_ptr<ServerProcess>* b) {
    auto tls = testing::MakeDevTls(who);
    ASSERT_TRUE(tls.ok()) << tls.status();
    tls_ = *tls;
    std::ofstream(dir_ + "/authz.conf") << "producer partitioned-test housing\n"
                                        << "audit_grant aud-1 *\n";
    *a = StartNode("a");
    ASSERT_NE(*a, nullptr);
    *b = StartNode("b");
    ASSERT_NE(*b, nullptr);
    ASSERT_TRUE(absl::StrContains((*b)->Stderr(), "owns partitions [2,3]")) << (*b)->Stderr();
  }

  // Over mutual TLS (tls_) as `who_`, else plaintext.
  v1::LedgerService::Stub* Stub(const std::string& address) {
    auto& stub = stubs_[who_ + "@" + address];
    if (stub == nullptr) {
      stub = v1::LedgerService::NewStub(
          tls_.has_value() ? tls_->Channel(address, who_)
                           : grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
    }
    return stub.get();
  }

  // Calls `call` (a fresh context each time) at `entry`, following
  // redirects to the owner as a client does; retries while no node owns the
  // partition or the owner cannot be reached, for up to 30 s. Sets
  // `*answered_by` to the last address called and counts the redirects.
  grpc::Status FollowRedirects(
      const std::string& entry,
      const std::function<grpc::Status(const std::string&, grpc::ClientContext*)>& call,
      std::string* answered_by, int* redirects) {
    std::string at = entry;
    *redirects = 0;
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    for (;;) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
      grpc::Status s = call(at, &ctx);
      *answered_by = at;
      if (s.error_code() != grpc::StatusCode::UNAVAILABLE) return s;
      if (std::string owner = RedirectAddress(ctx); !owner.empty() && owner != at) {
        EXPECT_TRUE(absl::StrContains(s.error_message(), owner)) << s.error_message();
        ++*redirects;
        at = owner;
        continue;
      }
      if (std::chrono::steady_clock::now() > give_up) {
        return grpc::Status(s.error_code(), absl::StrCat("gave up at ", at, ": ", s.error_message()));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      at = entry;
    }
  }

  static absl::Status FromGrpc(const grpc::Status& s) {
    return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
  }

  // Appends through `entry`, following redirects (FollowRedirects).
  absl::StatusOr<Ack> Append(const std::string& entry, const v1::AppendRequest& req) {
    Ack ack;
    grpc::Status s = FollowRedirects(
        entry,
        [&](const std::string& at, grpc::ClientContext* ctx) {
          return Stub(at)->Append(ctx, req, &ack.response);
        },
        &ack.answered_by, &ack.redirects);
    if (!s.ok()) return FromGrpc(s);
    return ack;
  }

  // One ReadStream of `case_id` at `address`, without following anything.
  struct StreamRead {
    grpc::Status status;
    std::vector<v1::Record> records;
    std::string redirect;  // the kOwnerTrailer it named, if any
  };
  static StreamRead ReadInto(v1::LedgerService::Stub* stub, grpc::ClientContext* ctx,
                             const std::string& case_id) {
    StreamRead out;
    v1::ReadStreamRequest req;
    req.set_stream_id(case_id);
    auto reader = stub->ReadStream(ctx, req);
    v1::Record r;
    while (reader->Read(&r)) out.records.push_back(r);
    out.status = reader->Finish();
    out.redirect = RedirectAddress(*ctx);
    return out;
  }
  StreamRead ReadAt(const std::string& address, const std::string& case_id) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return ReadInto(Stub(address), &ctx, case_id);
  }

  // The case's records read through `entry`, following redirects
  // (FollowRedirects); a refused or redirected read must write nothing.
  absl::StatusOr<std::vector<v1::Record>> ReadCase(const std::string& entry,
                                                   const std::string& case_id,
                                                   std::string* answered_by, int* redirects) {
    StreamRead read;
    grpc::Status s = FollowRedirects(
        entry,
        [&](const std::string& at, grpc::ClientContext* ctx) {
          read = ReadInto(Stub(at), ctx, case_id);
          if (!read.status.ok()) EXPECT_TRUE(read.records.empty()) << case_id << " at " << at;
          return read.status;
        },
        answered_by, redirects);
    if (!s.ok()) return FromGrpc(s);
    return read.records;
  }

  // The proof of (partition, seq) from `address`, retried until a global
  // checkpoint covers it; checked against that node's global key.
  void ExpectProved(const std::string& address, const Ack& ack, const std::string& event_id,
                    const std::string& case_id) {
    SCOPED_TRACE(absl::StrCat(case_id, " seq ", ack.response.seq(), " from ", address));
    grpc::ClientContext kctx;
    v1::PublicKey key;
    ASSERT_TRUE(Stub(address)->GetPublicKey(&kctx, v1::GetPublicKeyRequest(), &key).ok());
    ASSERT_EQ(key.partitions(), static_cast<uint32_t>(kPartitions));
    absl::StatusOr<NoteVerifier> verifier = NoteVerifier::FromVerifierKey(key.verifier_key());
    ASSERT_TRUE(verifier.ok()) << verifier.status();
    v1::InclusionProofRequest req;
    req.set_partition(ack.response.partition());
    req.set_seq(ack.response.seq());
    v1::InclusionProof proof;
    grpc::Status s;
    for (int tries = 0; tries < 100; ++tries) {
      grpc::ClientContext ctx;
      s = Stub(address)->GetInclusionProof(&ctx, req, &proof);
      if (s.error_code() != grpc::StatusCode::FAILED_PRECONDITION) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
    ASSERT_EQ(proof.leaf_hash(), ack.response.leaf_hash());
    // The record read from the node that does not own it: written as a
    // single node with a master key writes it, in format 2, its ids blinded
    // (none of them in the leaf's bytes).
    const std::string& leaf = proof.partitioned().record_leaf();
    absl::StatusOr<Record> record = DecodeRecord(leaf);
    ASSERT_TRUE(record.ok()) << record.status();
    EXPECT_EQ(record->format_version, kRecordFormatBlinded);
    EXPECT_EQ(record->seq, ack.response.seq());
    EXPECT_FALSE(record->event_id_box.empty());
    EXPECT_FALSE(absl::StrContains(leaf, event_id)) << event_id;
    EXPECT_FALSE(absl::StrContains(leaf, case_id)) << case_id;
    absl::StatusOr<PartitionedProof> p =
        PartitionedProofFromWire(proof, proof.partitioned().record_leaf());
    ASSERT_TRUE(p.ok()) << p.status();
    absl::StatusOr<Checkpoint> global = VerifyPartitionedProof(
        proof.partitioned().global_note(), *verifier, key.origin(), kPartitions, *p);
    ASSERT_TRUE(global.ok()) << global.status();
    EXPECT_EQ(global->origin, GlobalOrigin(key.origin()));
    // A changed byte of the record fails the proof.
    std::string bad = proof.partitioned().record_leaf();
    bad[bad.size() - 1] ^= 1;
    p->record_leaf = bad;
    EXPECT_FALSE(VerifyPartitionedProof(proof.partitioned().global_note(), *verifier,
                                        key.origin(), kPartitions, *p)
                     .ok());
  }

  std::string dir_;
  std::optional<testing::DevTls> tls_;
  std::string who_;  // the client certificate presented with tls_
  std::vector<std::string> cases_;
  std::map<int, int> per_partition_;
  std::map<std::string, std::unique_ptr<v1::LedgerService::Stub>> stubs_;
};

TEST_F(PartitionedServerTest, AnyNodeTakesAppendsAndProvesEveryRecordAcrossAKill) {
  std::unique_ptr<ServerProcess> a = StartNode("a");
  ASSERT_NE(a, nullptr);
  std::unique_ptr<ServerProcess> b = StartNode("b");
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(absl::StrContains(a->Stderr(), "owns partitions [0,1]")) << a->Stderr();
  ASSERT_TRUE(absl::StrContains(b->Stderr(), "owns partitions [2,3]")) << b->Stderr();
  const std::map<int, std::string> owner = {
      {0, a->address()}, {1, a->address()}, {2, b->address()}, {3, b->address()}};

  // Case i's first event through A, its second through B.
  std::map<std::string, Ack> acks;                // event id -> ack
  std::map<std::string, std::string> case_of;     // event id -> case
  std::map<int, uint64_t> next_seq;                // partition -> its next seq
  for (int round = 0; round < 2; ++round) {
    const std::string entry = round == 0 ? a->address() : b->address();
    for (const std::string& c : cases_) {
      const std::string id = absl::StrCat(c, "-e", round);
      v1::AppendRequest req = CaseEvent(id, c, round);
      absl::StatusOr<Ack> ack = Append(entry, req);
      ASSERT_TRUE(ack.ok()) << c << ": " << ack.status();
      const int p = static_cast<int>(PartitionOf(c, kPartitions));
      EXPECT_EQ(ack->response.partition(), static_cast<uint32_t>(p)) << c;
      EXPECT_EQ(ack->response.seq(), next_seq[p]++) << c;
      EXPECT_EQ(ack->response.version(), static_cast<uint64_t>(round)) << c;
      EXPECT_FALSE(ack->response.duplicate());
      // Answered by the partition's owner; redirected iff the entry is not it.
      EXPECT_EQ(ack->answered_by, owner.at(p)) << c;
      EXPECT_EQ(ack->redirects, entry == owner.at(p) ? 0 : 1) << c;
      acks[id] = *ack;
      case_of[id] = c;
    }
  }

  // Every record proved by the node that does not own its partition.
  for (const auto& [id, ack] : acks) {
    const int p = static_cast<int>(ack.response.partition());
    const std::string other = owner.at(p) == a->address() ? b->address() : a->address();
    ExpectProved(other, ack, id, case_of[id]);
  }
  // GetCheckpoint answers the global checkpoint, from either node.
  for (const std::string& at : {a->address(), b->address()}) {
    grpc::ClientContext ctx;
    v1::Checkpoint cp;
    ASSERT_TRUE(Stub(at)->GetCheckpoint(&ctx, v1::GetCheckpointRequest(), &cp).ok());
    EXPECT_TRUE(absl::StartsWith(cp.note(), "caseledger.local/log/global\n")) << cp.note();
  }

  // ledgerctl follows the redirect too: a case of B's, sent to A.
  std::string cli_case;
  {
    std::string& c = cli_case;
    for (const std::string& x : cases_) {
      if (PartitionOf(x, kPartitions) >= 2) c = x;
    }
    const int p = static_cast<int>(PartitionOf(c, kPartitions));
    testing::CommandResult r = testing::RunCommand(
        {"tools/ledgerctl", "--server=" + a->address(), "--json", "append",
         absl::StrCat("--event={\"event_id\":\"", c, "-cli\",\"stream_id\":\"", c,
                      "\",\"subject_ids\":[\"client-", c,
                      "\"],\"occurred_at\":\"2025-12-31T23:50:00Z\",\"record_entry_written\":{\"entry_id\":\"e-cli\","
                      "\"data_category\":\"housing\",\"text\":\"by ledgerctl\"}}")});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_TRUE(absl::StrContains(r.out, absl::StrCat("\"seq\":", next_seq[p], ","))) << r.out;
    ++next_seq[p];
  }

  // kill -9 of B; A takes partitions 2 and 3 over.
  b->Stop(SIGKILL);
  for (const auto& [id, first] : acks) {
    // A retry of an acknowledged event returns its original seq.
    v1::AppendRequest again = CaseEvent(id, case_of[id], absl::EndsWith(id, "-e1") ? 1 : 0);
    absl::StatusOr<Ack> retry = Append(a->address(), again);
    ASSERT_TRUE(retry.ok()) << id << ": " << retry.status();
    EXPECT_TRUE(retry->response.duplicate()) << id;
    EXPECT_EQ(retry->response.seq(), first.response.seq()) << id;
    EXPECT_EQ(retry->response.partition(), first.response.partition()) << id;
    EXPECT_EQ(retry->answered_by, a->address());
  }
  for (const std::string& c : cases_) {
    const std::string id = c + "-e2";
    v1::AppendRequest req = CaseEvent(id, c, 2);
    absl::StatusOr<Ack> ack = Append(a->address(), req);
    ASSERT_TRUE(ack.ok()) << c << ": " << ack.status();
    const int p = static_cast<int>(PartitionOf(c, kPartitions));
    EXPECT_EQ(ack->response.seq(), next_seq[p]++) << c;
    EXPECT_EQ(ack->response.version(), c == cli_case ? 3u : 2u) << c;
    EXPECT_EQ(ack->answered_by, a->address());
    ExpectProved(a->address(), *ack, id, c);
    acks[id] = *ack;
    case_of[id] = c;
  }

  // B restarts on its data directory and owns nothing now (A's leases are
  // live): it sends appends to A and proves every record.
  b = StartNode("b");
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(absl::StrContains(b->Stderr(), "owns partitions []")) << b->Stderr();
  for (const auto& [id, first] : acks) {
    ExpectProved(b->address(), first, id, case_of[id]);
  }
  absl::StatusOr<Ack> late = Append(b->address(), CaseEvent("late", cases_.back(), 3));
  ASSERT_TRUE(late.ok()) << late.status();
  EXPECT_EQ(late->answered_by, a->address());
  EXPECT_EQ(late->redirects, 1);
}

// Over mutual TLS: a producer's appends through node A, including those it
// redirects (the producer's own refusal of a case not ours is the redirect);
// an auditor proves each record from the other node and reads its leaf; a
// client may not append, on either node.
TEST_F(PartitionedServerTest, RedirectsAndProvesOverMutualTls) {
  std::unique_ptr<ServerProcess> a, b;
  ASSERT_NO_FATAL_FAILURE(
      StartOverMutualTls({"producer/partitioned-test", "auditor/aud-1", "client/c-1"}, &a, &b));
  std::map<int, uint64_t> next_seq;
  std::vector<std::pair<std::string, Ack>> acks;
  for (const std::string& c : cases_) {
    who_ = "producer-partitioned-test";
    absl::StatusOr<Ack> ack = Append(a->address(), CaseEvent(c + "-e0", c, 0));
    ASSERT_TRUE(ack.ok()) << c << ": " << ack.status();
    const int p = static_cast<int>(PartitionOf(c, kPartitions));
    EXPECT_EQ(ack->response.partition(), static_cast<uint32_t>(p)) << c;
    // Refusals are recorded in "@access" (in its partition), so seqs only rise.
    EXPECT_GE(ack->response.seq(), next_seq[p]) << c;
    next_seq[p] = ack->response.seq() + 1;
    EXPECT_EQ(ack->redirects, p >= 2 ? 1 : 0) << c;
    acks.emplace_back(c, *ack);
    // A client may not append, whichever node owns the case.
    who_ = "client-c-1";
    for (const std::string& at : {a->address(), b->address()}) {
      grpc::ClientContext ctx;
      v1::AppendResponse resp;
      grpc::Status s = Stub(at)->Append(&ctx, CaseEvent(c + "-x", c, 1), &resp);
      EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << c << " at " << at;
    }
  }
  who_ = "auditor-aud-1";
  for (const auto& [c, ack] : acks) {
    const int p = static_cast<int>(ack.response.partition());
    ExpectProved(p >= 2 ? a->address() : b->address(), ack, c + "-e0", c);
  }
}

// ReadStream with P > 1: the owner of the case's partition answers with the
// case's records (payloads opened under the master key, seqs of that
// partition); the other node answers UNAVAILABLE naming the owner, writes
// nothing, and the client following it gets the same records; after kill -9
// of an owner, the node that takes its partitions serves them.
TEST_F(PartitionedServerTest, ReadStreamIsServedByTheCasesOwnerAcrossAKill) {
  std::unique_ptr<ServerProcess> a = StartNode("a");
  ASSERT_NE(a, nullptr);
  std::unique_ptr<ServerProcess> b = StartNode("b");
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(absl::StrContains(b->Stderr(), "owns partitions [2,3]")) << b->Stderr();
  const std::map<int, std::string> owner = {
      {0, a->address()}, {1, a->address()}, {2, b->address()}, {3, b->address()}};
  std::map<std::string, std::vector<Ack>> acks;  // case -> its acks in version order
  for (int n = 0; n < 2; ++n) {
    for (const std::string& c : cases_) {
      absl::StatusOr<Ack> ack = Append(a->address(), CaseEvent(absl::StrCat(c, "-e", n), c, n));
      ASSERT_TRUE(ack.ok()) << c << ": " << ack.status();
      acks[c].push_back(*ack);
    }
  }
  // The records as the owner serves them: the acks' seqs, leaves and events.
  auto expect_case = [&](const std::vector<v1::Record>& got, const std::string& c) {
    ASSERT_EQ(got.size(), 2u) << c;
    for (size_t n = 0; n < got.size(); ++n) {
      const Ack& ack = acks[c][n];
      EXPECT_EQ(got[n].seq(), ack.response.seq()) << c;
      EXPECT_EQ(got[n].version(), n) << c;
      EXPECT_EQ(got[n].stream_id(), c);
      EXPECT_EQ(got[n].event_id(), absl::StrCat(c, "-e", n));
      EXPECT_EQ(got[n].leaf_hash(), ack.response.leaf_hash()) << c;
      EXPECT_EQ(LeafHash(got[n].leaf()), HashFromBytes(ack.response.leaf_hash()).value()) << c;
    }
    EXPECT_TRUE(got[0].event().has_case_opened()) << c;
    EXPECT_EQ(got[1].event().record_entry_written().text(), "note 1") << c;
  };
  std::map<std::string, std::string> served;  // case -> the owner's answer, serialized
  for (const std::string& c : cases_) {
    SCOPED_TRACE(c);
    const std::string& mine = owner.at(static_cast<int>(PartitionOf(c, kPartitions)));
    const std::string& other = mine == a->address() ? b->address() : a->address();
    StreamRead at_owner = ReadAt(mine, c);
    ASSERT_TRUE(at_owner.status.ok()) << at_owner.status.error_message();
    EXPECT_TRUE(at_owner.redirect.empty());
    expect_case(at_owner.records, c);
    StreamRead elsewhere = ReadAt(other, c);
    EXPECT_EQ(elsewhere.status.error_code(), grpc::StatusCode::UNAVAILABLE)
        << elsewhere.status.error_message();
    EXPECT_EQ(elsewhere.redirect, mine);
    EXPECT_TRUE(elsewhere.records.empty());
    std::string by;
    int redirects = 0;
    absl::StatusOr<std::vector<v1::Record>> followed = ReadCase(other, c, &by, &redirects);
    ASSERT_TRUE(followed.ok()) << followed.status();
    EXPECT_EQ(by, mine);
    EXPECT_EQ(redirects, 1);
    ASSERT_EQ(followed->size(), at_owner.records.size());
    for (size_t i = 0; i < followed->size(); ++i) {
      EXPECT_EQ((*followed)[i].SerializeAsString(), at_owner.records[i].SerializeAsString());
    }
    served[c] = at_owner.records[0].SerializeAsString() + at_owner.records[1].SerializeAsString();
    // ledgerctl read follows the redirect too.
    testing::CommandResult r = testing::RunCommand(
        {"tools/ledgerctl", "--server=" + other, "--json", "read", "--stream=" + c});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_TRUE(absl::StrContains(r.out, "\"event_id\":\"" + c + "-e1\"")) << r.out;
    EXPECT_TRUE(absl::StrContains(r.out, "note 1")) << r.out;
  }
  // Bad input is refused by either node before any routing.
  for (const std::string& at : {a->address(), b->address()}) {
    StreamRead empty = ReadAt(at, "");
    EXPECT_EQ(empty.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << at;
    EXPECT_TRUE(absl::StrContains(empty.status.error_message(), "stream_id")) << at;
    EXPECT_TRUE(empty.redirect.empty());
  }

  // kill -9 of B: A takes partitions 2 and 3 and serves their cases.
  b->Stop(SIGKILL);
  for (const std::string& c : cases_) {
    std::string by;
    int redirects = 0;
    absl::StatusOr<std::vector<v1::Record>> after = ReadCase(a->address(), c, &by, &redirects);
    ASSERT_TRUE(after.ok()) << c << ": " << after.status();
    EXPECT_EQ(by, a->address()) << c;
    expect_case(*after, c);
    ASSERT_EQ(after->size(), 2u);
    EXPECT_EQ((*after)[0].SerializeAsString() + (*after)[1].SerializeAsString(), served[c]) << c;
  }
}

// Over mutual TLS: an auditor with a grant reads a case from its owner (the
// read recorded in the case there) and is redirected by the other node only
// once allowed; an auditor without a grant gets commitments only, from the
// owner; a client, who may not ReadStream, gets the same refusal from both
// nodes, with no owner address.
TEST_F(PartitionedServerTest, ReadStreamOverMutualTlsRedirectsOnlyAllowedCallers) {
  std::unique_ptr<ServerProcess> a, b;
  ASSERT_NO_FATAL_FAILURE(StartOverMutualTls(
      {"producer/partitioned-test", "auditor/aud-1", "auditor/aud-2", "client/c-1"}, &a, &b));
  std::map<std::string, Ack> opened;
  for (const std::string& c : cases_) {
    who_ = "producer-partitioned-test";
    absl::StatusOr<Ack> ack = Append(a->address(), CaseEvent(c + "-e0", c, 0));
    ASSERT_TRUE(ack.ok()) << c << ": " << ack.status();
    opened[c] = *ack;
  }
  for (const std::string& c : cases_) {
    SCOPED_TRACE(c);
    const int p = static_cast<int>(PartitionOf(c, kPartitions));
    const std::string mine = p >= 2 ? b->address() : a->address();
    const std::string other = p >= 2 ? a->address() : b->address();

    who_ = "client-c-1";
    StreamRead refused_owner = ReadAt(mine, c);
    StreamRead refused_other = ReadAt(other, c);
    EXPECT_EQ(refused_owner.status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_EQ(refused_other.status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_EQ(refused_other.status.error_message(), refused_owner.status.error_message());
    EXPECT_TRUE(refused_owner.redirect.empty());
    EXPECT_TRUE(refused_other.redirect.empty());
    EXPECT_FALSE(absl::StrContains(refused_other.status.error_message(), mine));
    EXPECT_TRUE(refused_other.records.empty());

    who_ = "auditor-aud-1";
    StreamRead elsewhere = ReadAt(other, c);
    EXPECT_EQ(elsewhere.status.error_code(), grpc::StatusCode::UNAVAILABLE)
        << elsewhere.status.error_message();
    EXPECT_EQ(elsewhere.redirect, mine);
    std::string by;
    int redirects = 0;
    absl::StatusOr<std::vector<v1::Record>> full = ReadCase(other, c, &by, &redirects);
    ASSERT_TRUE(full.ok()) << full.status();
    EXPECT_EQ(by, mine);
    // The case's event, then the recorded read(s) of it.
    ASSERT_GE(full->size(), 2u);
    EXPECT_EQ((*full)[0].seq(), opened[c].response.seq());
    EXPECT_EQ((*full)[0].event_id(), c + "-e0");
    EXPECT_TRUE((*full)[0].event().has_case_opened());
    EXPECT_TRUE(full->back().event().has_record_accessed());

    who_ = "auditor-aud-2";
    StreamRead commitments = ReadAt(mine, c);
    ASSERT_TRUE(commitments.status.ok()) << commitments.status.error_message();
    ASSERT_GE(commitments.records.size(), 1u);
    EXPECT_EQ(commitments.records[0].leaf_hash(), opened[c].response.leaf_hash());
    EXPECT_TRUE(commitments.records[0].stream_id().empty());
    EXPECT_FALSE(commitments.records[0].has_event());
    EXPECT_EQ(ReadAt(other, c).redirect, mine);
  }
}

// The global checkpoints reach a c2sp.org/tlog-witness witness (the real
// ledger_witness --listen) from the node that owns partition 0, and the node
// that does not serves them with the witness's cosignature (kept in
// PostgreSQL).
TEST_F(PartitionedServerTest, GlobalCheckpointsAreCosignedByThePushedWitness) {
  // The witness knows the global log's key before any node starts.
  auto key = Ed25519Signer::LoadOrCreate(dir_ + "/signing.key");
  ASSERT_TRUE(key.ok()) << key.status();
  const std::string global_vkey =
      NoteSigner::New(GlobalOrigin("caseledger.local/log"), *std::move(key))->VerifierKey();
  auto wkey = Ed25519Signer::LoadOrCreate(dir_ + "/witness.key");
  ASSERT_TRUE(wkey.ok()) << wkey.status();
  const std::string witness_vkey =
      Cosigner::New("partitioned.test/w1", *std::move(wkey))->VerifierKey();
  testing::WitnessProcess witness(
      {"tools/ledger_witness", "--listen=127.0.0.1:0", "--log_key=" + global_vkey,
       "--witness_key=" + dir_ + "/witness.key", "--witness_name=partitioned.test/w1",
       "--state=" + dir_ + "/witness.state"});
  ASSERT_FALSE(witness.url().empty());
  const std::vector<std::string> push = {"--witness_url=" + witness_vkey + "@" + witness.url(),
                                         "--witness_push_interval=50ms"};
  std::unique_ptr<ServerProcess> a = StartNode("a", push);
  ASSERT_NE(a, nullptr);
  std::unique_ptr<ServerProcess> b = StartNode("b", push);
  ASSERT_NE(b, nullptr);
  for (const std::string& c : cases_) {
    ASSERT_TRUE(Append(a->address(), CaseEvent(c + "-e0", c, 0)).ok()) << c;
  }
  absl::StatusOr<CosignatureVerifier> w = CosignatureVerifier::FromVerifierKey(witness_vkey);
  ASSERT_TRUE(w.ok()) << w.status();
  // Whichever node owns partition 0 pushes; each node serves the cosigned
  // note of the newest global checkpoint once the witness has answered.
  for (ServerProcess* node : {a.get(), b.get()}) {
    std::string last;
    bool cosigned = false;
    for (int tries = 0; tries < 300 && !cosigned; ++tries) {
      grpc::ClientContext latest_ctx;
      v1::Checkpoint latest;
      if (Stub(node->address())
              ->GetCheckpoint(&latest_ctx, v1::GetCheckpointRequest(), &latest)
              .ok() &&
          latest.size() > 0) {
        grpc::ClientContext ctx;
        v1::GetCheckpointRequest req;
        req.set_size(latest.size());
        v1::Checkpoint sized;
        grpc::Status s = Stub(node->address())->GetCheckpoint(&ctx, req, &sized);
        last = s.ok() ? sized.note() : s.error_message();
        cosigned = s.ok() && w->Verify(sized.note()).ok();
      }
      if (!cosigned) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_TRUE(cosigned) << node->address() << " served no cosigned global checkpoint; last: "
                          << last << "\n" << node->Stderr();
  }
}

// Every node of a ledger seals under the one master key: a node started
// with another key is refused before it serves, naming the key ids.
TEST_F(PartitionedServerTest, ANodeWithAnotherMasterKeyIsRefused) {
  std::unique_ptr<ServerProcess> a = StartNode("a");
  ASSERT_NE(a, nullptr);
  ASSERT_TRUE(Append(a->address(), CaseEvent(cases_[0] + "-e0", cases_[0], 0)).ok());
  const std::string other = dir_ + "/other-master";
  std::ofstream(other) << std::string(64, 'f') << "\n";
  chmod(other.c_str(), 0600);
  auto s = ServerProcess::Start(
      kServer, dir_ + "/b",
      {"--pg_conninfo=" + pg_->conninfo(), "--node_id=b",
       absl::StrCat("--pg_partitions=", kPartitions),
       absl::StrCat("--listen=127.0.0.1:", testing::FreePort()),
       "--signing_key=" + dir_ + "/signing.key", "--master_key_file=" + other});
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(absl::StrContains(s.status().message(), "master key")) << s.status();
}

}  // namespace
}  // namespace caseledger
