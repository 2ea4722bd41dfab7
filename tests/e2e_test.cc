// End to end: the real caseledger_server binary on a loopback port with a
// temporary data directory, driven through the generated gRPC client.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "ledger/checkpoint.h"
#include "ledger/hash.h"
#include "ledger/merkle_verify.h"
#include "proto/cases.grpc.pb.h"
#include "proto/ledger.grpc.pb.h"
#include "tests/server_process.h"
#include "tests/test_events.h"
#include "tests/test_util.h"

namespace caseledger {
namespace {

using testing::ServerProcess;

constexpr char kServer[] = "services/api/caseledger_server";

v1::Event MakeEvent(const std::string& id, const std::string& stream) {
  return testing::NoteRequest(id, stream, "client-" + stream, "e2e").event();
}

v1::AppendRequest Req(const std::string& id, const std::string& stream,
                      std::optional<uint64_t> expected = std::nullopt) {
  v1::AppendRequest r = testing::NoteRequest(id, stream, "client-" + stream, "e2e");
  if (expected) r.set_expected_version(*expected);
  return r;
}

v1::AppendRequest OpenReq(const std::string& stream) {
  return testing::OpenCaseRequest("open-" + stream, stream, "client-" + stream, "e2e");
}

Hash H(const std::string& bytes) { return *HashFromBytes(bytes); }

class E2ETest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::NewTempDir("e2e"); }

  void StartServer(std::vector<std::string> flags = {}) {
    flags.push_back("--checkpoint_every_records=10");
    flags.push_back("--checkpoint_interval=1h");
    flags.push_back("--max_batch_events=50");
    // As tools/serve.sh starts it: payloads encrypted (record format 2).
    flags.push_back("--master_key_file=" + testing::WriteTestMasterKey(dir_ + "-key"));
    auto s = ServerProcess::Start(kServer, dir_, flags);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
    auto channel = grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials());
    stub_ = v1::LedgerService::NewStub(channel);
  }

  uint64_t TreeSize() {
    grpc::ClientContext ctx;
    v1::ReadLogRequest req;
    req.set_from_seq(0);
    auto reader = stub_->ReadLog(&ctx, req);
    v1::Record r;
    uint64_t n = 0;
    while (reader->Read(&r)) ++n;
    EXPECT_TRUE(reader->Finish().ok());
    return n;
  }

  absl::StatusOr<v1::AppendResponse> Append(const v1::AppendRequest& req) {
    grpc::ClientContext ctx;
    v1::AppendResponse resp;
    grpc::Status s = stub_->Append(&ctx, req, &resp);
    if (!s.ok()) return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
    return resp;
  }

  std::string dir_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<v1::LedgerService::Stub> stub_;
};

TEST_F(E2ETest, AppendReadSubscribeProveAndRestart) {
  StartServer();
  // Open four cases in one batch (seqs 0-3, each at version 0).
  {
    grpc::ClientContext ctx;
    v1::AppendBatchRequest req;
    for (int c = 1; c <= 4; ++c) *req.add_requests() = OpenReq(absl::StrCat("case-", c));
    v1::AppendBatchResponse resp;
    grpc::Status s = stub_->AppendBatch(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(resp.results(3).seq(), 3u);
  }
  // Appends with expected versions.
  std::vector<v1::AppendResponse> acks;
  for (uint64_t i = 0; i < 10; ++i) {
    auto r = Append(Req(absl::StrCat("a", i), "case-1", i + 1));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->seq(), 4 + i);
    EXPECT_EQ(r->version(), i + 1);
    acks.push_back(*r);
  }
  // A retried event id returns the original result.
  auto retry = Append(Req("a3", "case-1", 4));
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_TRUE(retry->duplicate());
  EXPECT_EQ(retry->seq(), 7u);
  EXPECT_EQ(retry->leaf_hash(), acks[3].leaf_hash());
  // So does a retried case_opened, which the policy alone would refuse.
  auto reopen = Append(OpenReq("case-1"));
  ASSERT_TRUE(reopen.ok()) << reopen.status();
  EXPECT_TRUE(reopen->duplicate());
  EXPECT_EQ(reopen->seq(), 0u);
  // A stale expected version is refused.
  auto stale = Append(Req("a10", "case-1", 4));
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(std::string(stale.status().message()),
            "stream \"case-1\": expected_version 4, but the stream's next version is 11");

  // A batch, all or nothing.
  {
    grpc::ClientContext ctx;
    v1::AppendBatchRequest req;
    for (int i = 0; i < 5; ++i) *req.add_requests() = Req(absl::StrCat("b", i), "case-2");
    v1::AppendBatchResponse resp;
    ASSERT_TRUE(stub_->AppendBatch(&ctx, req, &resp).ok());
    ASSERT_EQ(resp.results_size(), 5);
    EXPECT_EQ(resp.results(4).seq(), 18u);
    EXPECT_EQ(resp.results(4).version(), 5u);
  }

  // ReadStream gives the case's records from a version, as sent.
  {
    grpc::ClientContext ctx;
    v1::ReadStreamRequest req;
    req.set_stream_id("case-1");
    req.set_from_version(3);
    auto reader = stub_->ReadStream(&ctx, req);
    v1::Record r;
    uint64_t want = 3;
    while (reader->Read(&r)) {
      EXPECT_EQ(r.version(), want);
      EXPECT_EQ(r.event().record_entry_written().text(), absl::StrCat("note a", want - 1));
      ++want;
    }
    ASSERT_TRUE(reader->Finish().ok());
    EXPECT_EQ(want, 11u);
  }

  // ReadLog: the chain links and the leaf hashes recompute from the bytes.
  {
    grpc::ClientContext ctx;
    v1::ReadLogRequest req;
    auto reader = stub_->ReadLog(&ctx, req);
    v1::Record r;
    std::string prev(32, '\0');
    uint64_t n = 0;
    while (reader->Read(&r)) {
      EXPECT_EQ(r.seq(), n++);
      EXPECT_EQ(r.prev_hash(), prev);
      EXPECT_EQ(ToHex(LeafHash(r.leaf())), ToHex(H(r.leaf_hash())));
      prev = r.leaf_hash();
    }
    ASSERT_TRUE(reader->Finish().ok());
    EXPECT_EQ(n, 19u);
  }

  // Subscribe from seq 5: catch-up, then live while appends continue.
  std::vector<uint64_t> seen;
  std::thread subscriber([&] {
    grpc::ClientContext ctx;
    v1::SubscribeRequest req;
    req.set_from_seq(5);
    auto reader = stub_->Subscribe(&ctx, req);
    v1::Record r;
    while (seen.size() < 30 && reader->Read(&r)) seen.push_back(r.seq());
    ctx.TryCancel();
    reader->Finish();
  });
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(Append(Req(absl::StrCat("c", i), "case-3")).ok());
  subscriber.join();
  ASSERT_EQ(seen.size(), 30u);
  for (size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], 5 + i) << "gap or duplicate";

  // Checkpoints (signed every 10 records) and proofs, checked with the
  // project's verifier against the server's key.
  v1::PublicKey key;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub_->GetPublicKey(&ctx, v1::GetPublicKeyRequest(), &key).ok());
    EXPECT_EQ(key.ed25519_public_key().size(), 32u);
    // The raw key is the verifier key's base64 part after the algorithm byte
    // (that part may itself contain '+').
    std::string vkey = key.verifier_key();
    std::string decoded;
    ASSERT_TRUE(absl::Base64Unescape(vkey.substr(vkey.find('+', vkey.find('+') + 1) + 1),
                                     &decoded));
    EXPECT_EQ(decoded, "\x01" + key.ed25519_public_key());
  }
  auto verifier = NoteVerifier::FromVerifierKey(key.verifier_key());
  ASSERT_TRUE(verifier.ok()) << verifier.status();
  auto checkpoint_at = [&](uint64_t size) {
    grpc::ClientContext ctx;
    v1::GetCheckpointRequest req;
    req.set_size(size);
    v1::Checkpoint cp;
    grpc::Status s = stub_->GetCheckpoint(&ctx, req, &cp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    auto opened = OpenCheckpoint(cp.note(), *verifier, key.origin());
    EXPECT_TRUE(opened.ok()) << opened.status();
    if (!opened.ok()) return Checkpoint();
    EXPECT_EQ(opened->size, cp.size());
    EXPECT_EQ(std::string(AsBytes(opened->root)), cp.root_hash());
    return *opened;
  };
  Checkpoint cp10 = checkpoint_at(10);
  Checkpoint cp30 = checkpoint_at(30);
  Checkpoint latest = checkpoint_at(0);
  EXPECT_EQ(latest.size, 30u);
  {
    grpc::ClientContext ctx;
    v1::InclusionProofRequest req;
    req.set_seq(acks[7].seq());
    req.set_tree_size(30);
    v1::InclusionProof proof;
    ASSERT_TRUE(stub_->GetInclusionProof(&ctx, req, &proof).ok());
    std::vector<Hash> path;
    for (const std::string& h : proof.hashes()) path.push_back(H(h));
    EXPECT_EQ(proof.leaf_hash(), acks[7].leaf_hash());
    EXPECT_EQ(VerifyInclusion(H(acks[7].leaf_hash()), acks[7].seq(), 30, path, cp30.root),
              absl::OkStatus());
  }
  {
    grpc::ClientContext ctx;
    v1::ConsistencyProofRequest req;
    req.set_from_size(10);
    req.set_to_size(30);
    v1::ConsistencyProof proof;
    ASSERT_TRUE(stub_->GetConsistencyProof(&ctx, req, &proof).ok());
    std::vector<Hash> path;
    for (const std::string& h : proof.hashes()) path.push_back(H(h));
    EXPECT_EQ(VerifyConsistency(10, 30, path, cp10.root, cp30.root), absl::OkStatus());
  }

  // A producer stream: responses in order, and the first bad request ends it
  // with a status naming the request and the field.
  {
    grpc::ClientContext ctx;
    auto stream = stub_->AppendStream(&ctx);
    for (int i = 0; i < 50; ++i) ASSERT_TRUE(stream->Write(Req(absl::StrCat("s", i), "case-4")));
    v1::AppendRequest bad = Req("", "case-4");
    ASSERT_TRUE(stream->Write(bad));
    stream->WritesDone();
    v1::AppendResponse resp;
    uint64_t n = 0;
    while (stream->Read(&resp)) EXPECT_EQ(resp.version(), ++n);
    EXPECT_EQ(n, 50u);
    grpc::Status s = stream->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(s.error_message(), "request 50: event.event_id: must not be empty");
  }
  EXPECT_EQ(TreeSize(), 89u);

  // SIGTERM: a clean exit; restart continues the same chain.
  int status = server_->Stop(SIGTERM);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  StartServer();
  EXPECT_EQ(TreeSize(), 89u);
  auto again = Append(Req("a3", "case-1"));
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->duplicate());
  auto next = Append(Req("a10", "case-1", 11));
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->seq(), 89u);
  // Checkpoints fall on group-commit boundaries: take the newest one, which
  // the streamed appends moved past 30.
  Checkpoint after = checkpoint_at(0);
  ASSERT_GT(after.size, 30u);
  {
    grpc::ClientContext ctx;
    v1::ConsistencyProofRequest req;
    req.set_from_size(30);
    req.set_to_size(after.size);
    v1::ConsistencyProof proof;
    ASSERT_TRUE(stub_->GetConsistencyProof(&ctx, req, &proof).ok());
    std::vector<Hash> path;
    for (const std::string& h : proof.hashes()) path.push_back(H(h));
    EXPECT_EQ(VerifyConsistency(30, after.size, path, cp30.root, after.root), absl::OkStatus());
  }
}

TEST_F(E2ETest, CaseStateAndAccountingFollowTheLog) {
  StartServer();
  auto channel = grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials());
  auto cases = v1::CaseService::NewStub(channel);
  auto disclosures = v1::DisclosureService::NewStub(channel);
  ASSERT_TRUE(Append(OpenReq("case-1")).ok());
  v1::AppendRequest disclosure;
  v1::Event* e = disclosure.mutable_event();
  e->set_event_id("d1");
  e->set_stream_id("case-1");
  e->add_subject_ids("client-case-1");
  e->set_producer("e2e");
  e->mutable_occurred_at()->set_seconds(1767225600);
  auto* d = e->mutable_disclosure_made();
  d->set_disclosure_id("d1");
  d->set_client_id("client-case-1");
  d->mutable_recipient()->set_recipient_id("court");
  d->mutable_recipient()->set_name("County Court");
  d->mutable_recipient()->set_address("5 Court Sq");
  d->set_purpose("subpoena");
  d->add_data_categories("housing");
  d->set_description("attendance dates");
  d->set_disclosed_by("cm-1");
  d->set_minimum_necessary("dates only");
  // Without a basis: refused, naming the field.
  auto refused = Append(disclosure);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument) << refused.status();
  d->set_legal_basis(v1::LEGAL_BASIS_REQUIRED_BY_LAW);
  d->set_legal_citation("Cal. Evid. Code 1560");
  auto ok = Append(disclosure);
  ASSERT_TRUE(ok.ok()) << ok.status();

  {
    grpc::ClientContext ctx;
    v1::GetCaseRequest req;
    req.set_case_id("case-1");
    req.set_min_seq(ok->seq() + 1);  // read our own write
    v1::CaseView view;
    grpc::Status s = cases->GetCase(&ctx, req, &view);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(view.summary().status(), "open");
    EXPECT_EQ(view.summary().program(), "housing");
    EXPECT_EQ(view.summary().version(), 2u);
    EXPECT_EQ(view.summary().pending_client_notices(), 1u);
    EXPECT_GE(view.as_of_seq(), ok->seq() + 1);
    EXPECT_TRUE(absl::StrContains(view.state_json(), "\"jurisdiction\": \"US-CA\""))
        << view.state_json();
  }
  {
    grpc::ClientContext ctx;
    v1::GetAccountingRequest req;
    req.set_client_id("client-case-1");
    req.set_min_seq(ok->seq() + 1);
    req.mutable_window_start()->set_seconds(1700000000);
    req.mutable_window_end()->set_seconds(1800000000);
    v1::Accounting acct;
    grpc::Status s = disclosures->GetAccounting(&ctx, req, &acct);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(acct.disclosures(), 1u);
    EXPECT_TRUE(absl::StrContains(acct.json(), "County Court")) << acct.json();
    EXPECT_TRUE(absl::StrContains(acct.json(), "5 Court Sq")) << acct.json();
  }
  {
    grpc::ClientContext ctx;
    v1::ListCasesRequest req;
    req.set_status("open");
    v1::ListCasesResponse resp;
    ASSERT_TRUE(cases->ListCases(&ctx, req, &resp).ok());
    ASSERT_EQ(resp.cases_size(), 1);
    EXPECT_EQ(resp.cases(0).case_id(), "case-1");
  }
  {
    grpc::ClientContext ctx;
    v1::GetCaseRequest req;
    req.set_case_id("case-404");
    v1::CaseView view;
    grpc::Status s = cases->GetCase(&ctx, req, &view);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_TRUE(absl::StartsWith(s.error_message(), "case_id: no case \"case-404\"")) << s.error_message();
  }
  {
    grpc::ClientContext ctx;
    v1::ListCasesRequest req;
    req.set_status("pending");
    v1::ListCasesResponse resp;
    grpc::Status s = cases->ListCases(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(s.error_message(),
              "status: got \"pending\", want open, interrupted, closed or disposed");
  }
}

struct BadCase {
  std::string name;
  std::function<grpc::Status(v1::LedgerService::Stub&)> call;
  grpc::StatusCode code;
  std::string message;
};

// Two producers whose clocks differ a little write to one case: the second
// event to arrive may carry the earlier time. Up to --max_occurred_behind
// (default 1 minute) that is not late documentation (RULES.md T3); the flag
// reaches the gate (0s refuses a second's skew).
TEST_F(E2ETest, ProducersClockSkewWithinTheFlagIsNotLateDocumentation) {
  StartServer();
  ASSERT_TRUE(Append(OpenReq("case-s")).ok());
  ASSERT_TRUE(Append(Req("s-now", "case-s")).ok());  // 1767225600
  v1::AppendRequest skewed = Req("s-skewed", "case-s");
  skewed.mutable_event()->mutable_occurred_at()->set_seconds(1767225600 - 30);
  EXPECT_TRUE(Append(skewed).ok()) << Append(skewed).status();
  v1::AppendRequest late = Req("s-late", "case-s");
  late.mutable_event()->mutable_occurred_at()->set_seconds(1767225600 - 90);
  absl::Status refused = Append(late).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition) << refused;
  EXPECT_TRUE(absl::StrContains(refused.message(), "by more than 1m (--max_occurred_behind)"))
      << refused;

  server_.reset();
  StartServer({"--max_occurred_behind=0s"});
  v1::AppendRequest one_second = Req("s-second", "case-s");
  one_second.mutable_event()->mutable_occurred_at()->set_seconds(1767225600 - 1);
  refused = Append(one_second).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition) << refused;
  EXPECT_TRUE(absl::StrContains(refused.message(), "by more than 0 (--max_occurred_behind)"))
      << refused;
}

TEST_F(E2ETest, BadInputsGetClearErrorsAndStoreNothing) {
  StartServer();
  ASSERT_TRUE(Append(OpenReq("case-1")).ok());
  auto append = [](v1::AppendRequest req) {
    return [req](v1::LedgerService::Stub& stub) {
      grpc::ClientContext ctx;
      v1::AppendResponse resp;
      return stub.Append(&ctx, req, &resp);
    };
  };
  v1::AppendRequest no_event;
  v1::AppendRequest empty_id = Req("", "case-1");
  v1::AppendRequest huge_stream = Req("x1", std::string(129, 's'));
  v1::AppendRequest dup_subjects = Req("x2", "case-1");
  dup_subjects.mutable_event()->add_subject_ids("client-case-1");
  v1::AppendRequest unknown_type = Req("x3", "case-1");
  unknown_type.mutable_event()->clear_body();
  unknown_type.mutable_event()->MergeFromString(std::string("\x9a\x06\x00", 3));
  v1::AppendRequest bad_enum = Req("x4", "case-1");
  bad_enum.mutable_event()->mutable_case_opened()->set_record_class(
      static_cast<v1::RecordClass>(7));
  v1::AppendBatchRequest too_big;
  for (int i = 0; i < 51; ++i) *too_big.add_requests() = Req(absl::StrCat("y", i), "case-1");
  v1::AppendBatchRequest bad_in_batch;
  *bad_in_batch.add_requests() = Req("z0", "case-1");
  *bad_in_batch.add_requests() = Req("z1", "");

  v1::AppendRequest unopened = Req("x5", "case-9");
  const std::vector<BadCase> cases = {
      {"policy: case not opened", append(unopened), grpc::StatusCode::FAILED_PRECONDITION,
       "case \"case-9\" has not been opened: record_entry_written is not allowed before "
       "case_opened"},
      {"no event", append(no_event), grpc::StatusCode::INVALID_ARGUMENT, "event: must be set"},
      {"empty event id", append(empty_id), grpc::StatusCode::INVALID_ARGUMENT,
       "event.event_id: must not be empty"},
      {"huge stream id", append(huge_stream), grpc::StatusCode::INVALID_ARGUMENT,
       "event.stream_id: got 129 bytes, want at most 128"},
      {"duplicate subject", append(dup_subjects), grpc::StatusCode::INVALID_ARGUMENT,
       "event.subject_ids[1]: duplicate id \"client-case-1\""},
      {"unknown event type", append(unknown_type), grpc::StatusCode::INVALID_ARGUMENT,
       "event.body: unknown event type (field number 99; is the client newer than the server?)"},
      {"unknown enum", append(bad_enum), grpc::StatusCode::INVALID_ARGUMENT,
       "event.case_opened.record_class: unknown RecordClass value 7"},
      {"batch over limit",
       [&](v1::LedgerService::Stub& stub) {
         grpc::ClientContext ctx;
         v1::AppendBatchResponse resp;
         return stub.AppendBatch(&ctx, too_big, &resp);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "requests: got 51 events, want at most 50"},
      {"bad event in batch",
       [&](v1::LedgerService::Stub& stub) {
         grpc::ClientContext ctx;
         v1::AppendBatchResponse resp;
         return stub.AppendBatch(&ctx, bad_in_batch, &resp);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "requests[1].event.stream_id: must not be empty"},
      {"empty batch",
       [&](v1::LedgerService::Stub& stub) {
         grpc::ClientContext ctx;
         v1::AppendBatchResponse resp;
         return stub.AppendBatch(&ctx, v1::AppendBatchRequest(), &resp);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "requests: must not be empty"},
      {"proof beyond the tree",
       [](v1::LedgerService::Stub& stub) {
         grpc::ClientContext ctx;
         v1::InclusionProofRequest req;
         req.set_seq(0);
         req.set_tree_size(5);
         v1::InclusionProof resp;
         return stub.GetInclusionProof(&ctx, req, &resp);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "tree_size: got 5, want at most the tree size 1"},
      {"inclusion seq not below size",
       [](v1::LedgerService::Stub& stub) {
         grpc::ClientContext ctx;
         v1::InclusionProofRequest req;
         req.set_seq(1);
         req.set_tree_size(1);
         v1::InclusionProof resp;
         return stub.GetInclusionProof(&ctx, req, &resp);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "tree_size: got 1, want more than seq 1"},
      {"consistency from zero",
       [](v1::LedgerService::Stub& stub) {
         grpc::ClientContext ctx;
         v1::ConsistencyProofRequest req;
         req.set_to_size(1);
         v1::ConsistencyProof resp;
         return stub.GetConsistencyProof(&ctx, req, &resp);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "from_size: must be at least 1"},
      {"consistency beyond the tree",
       [](v1::LedgerService::Stub& stub) {
         grpc::ClientContext ctx;
         v1::ConsistencyProofRequest req;
         req.set_from_size(1);
         req.set_to_size(9);
         v1::ConsistencyProof resp;
         return stub.GetConsistencyProof(&ctx, req, &resp);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "to_size: got 9, want at most the tree size 1"},
      {"checkpoint never signed",
       [](v1::LedgerService::Stub& stub) {
         grpc::ClientContext ctx;
         v1::GetCheckpointRequest req;
         req.set_size(1);
         v1::Checkpoint resp;
         return stub.GetCheckpoint(&ctx, req, &resp);
       },
       grpc::StatusCode::NOT_FOUND,
       "size: no checkpoint was signed at size 1 (ask for size 0 for the latest, or a size a "
       "checkpoint was signed at)"},
      {"read past the end",
       [](v1::LedgerService::Stub& stub) {
         grpc::ClientContext ctx;
         v1::ReadLogRequest req;
         req.set_from_seq(7);
         auto reader = stub.ReadLog(&ctx, req);
         v1::Record r;
         while (reader->Read(&r)) {
         }
         return reader->Finish();
       },
       grpc::StatusCode::OUT_OF_RANGE, "from_seq: got 7, the tree size is 1"},
      {"read stream without id",
       [](v1::LedgerService::Stub& stub) {
         grpc::ClientContext ctx;
         auto reader = stub.ReadStream(&ctx, v1::ReadStreamRequest());
         v1::Record r;
         while (reader->Read(&r)) {
         }
         return reader->Finish();
       },
       grpc::StatusCode::INVALID_ARGUMENT, "stream_id: must not be empty"},
  };
  for (const BadCase& c : cases) {
    grpc::Status s = c.call(*stub_);
    EXPECT_EQ(s.error_code(), c.code) << c.name << ": " << s.error_message();
    EXPECT_EQ(s.error_message(), c.message) << c.name;
  }
  EXPECT_EQ(TreeSize(), 1u) << "a refused request stored something";
}

}  // namespace
}  // namespace caseledger
