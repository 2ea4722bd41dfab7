// Who learns what (ledger/BLINDING.md) through the real server binary on the
// default (master key, record format 2): what a witness fetches, what an
// auditor without a grant reads over mutual TLS, and what the server serves
// about a client after EraseSubject. Each search has a control that finds the
// id where it is allowed, so each search can fail.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "proto/access.grpc.pb.h"
#include "proto/audit.grpc.pb.h"
#include "proto/cases.grpc.pb.h"
#include "proto/keys.grpc.pb.h"
#include "proto/ledger.grpc.pb.h"
#include "tests/dev_certs.h"
#include "tests/server_process.h"
#include "tests/subprocess.h"
#include "tests/test_events.h"
#include "tests/test_util.h"

namespace caseledger {
namespace {

using testing::ServerProcess;

constexpr char kServer[] = "services/api/caseledger_server";
constexpr char kProducer[] = "intake";

// Distinctive ids, so a byte search cannot hit anything else.
std::string Client(const std::string& c) { return "SUBJ-" + c + "-q7"; }
std::string CaseId(const std::string& c) { return "CASEID-" + c + "-q7"; }

v1::AppendRequest Base(const std::string& id, const std::string& c, int64_t at) {
  return testing::EventRequest(id, CaseId(c), Client(c), kProducer, at);
}

// Opens case `c` for its client, writes a note, records a disclosure.
std::vector<v1::AppendRequest> Story(const std::string& c) {
  std::vector<v1::AppendRequest> out;
  out.push_back(testing::OpenCaseRequest("open-" + c, CaseId(c), Client(c), kProducer));
  v1::AppendRequest note = Base("note-" + c, c, 1767225100);
  auto* w = note.mutable_event()->mutable_record_entry_written();
  w->set_entry_id("entry-" + c);
  w->set_data_category("housing");
  w->set_text("a note");
  out.push_back(note);
  v1::AppendRequest d = Base("disclosure-" + c, c, 1767225500);
  auto* m = d.mutable_event()->mutable_disclosure_made();
  m->set_disclosure_id("d-" + c);
  m->set_client_id(Client(c));
  m->mutable_recipient()->set_recipient_id("court");
  m->mutable_recipient()->set_name("county court");
  m->set_purpose("subpoena");
  m->add_data_categories("housing");
  m->set_description("attendance dates");
  m->set_disclosed_by("cm-1");
  m->set_minimum_necessary("dates only");
  m->set_legal_basis(v1::LEGAL_BASIS_REQUIRED_BY_LAW);
  m->set_legal_citation("Cal. Evid. Code 1560");
  out.push_back(d);
  return out;
}

std::vector<std::string> Ids() {
  return {Client("A"), Client("B"), CaseId("A"), CaseId("B")};
}

// The ids of `ids` that occur in `bytes`.
std::vector<std::string> Found(const std::string& bytes, const std::vector<std::string>& ids) {
  std::vector<std::string> out;
  for (const std::string& id : ids)
    if (absl::StrContains(bytes, id)) out.push_back(id);
  return out;
}

// The "<<Type>>" labels ServedAbout puts before each response naming the id.
std::string Labels(const std::string& served) {
  std::string out;
  for (size_t at = served.find("<<"); at != std::string::npos; at = served.find("<<", at + 2))
    out += served.substr(at, served.find(">>", at) - at + 2) + " ";
  return out;
}

std::unique_ptr<grpc::ClientContext> Ctx() {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  return ctx;
}

template <typename Reader, typename Msg>
std::string Drain(Reader reader, Msg msg, grpc::Status* status) {
  std::string out;
  while (reader->Read(&msg)) out += msg.SerializeAsString();
  *status = reader->Finish();
  return out;
}

class BlindingE2ETest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::NewTempDir("blinding-e2e");
    key_file_ = testing::WriteTestMasterKey(testing::NewTempDir("blinding-e2e-key"));
  }

  // The server as tools/serve.sh runs it (payloads encrypted, so format 2;
  // with TLS flags when `tls` is given), signing a checkpoint after every
  // commit, plus `extra`.
  void Start(const std::string& data, std::vector<std::string> extra,
             const testing::DevTls* tls = nullptr) {
    std::vector<std::string> flags = {"--checkpoint_interval=1ms"};
    if (tls == nullptr) flags.push_back("--master_key_file=" + key_file_);
    flags.insert(flags.end(), extra.begin(), extra.end());
    server_.reset();
    auto s = tls != nullptr ? testing::StartTlsServer(*tls, data, flags)
                            : ServerProcess::Start(kServer, data, flags);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
  }

  void UseChannel(std::shared_ptr<grpc::Channel> channel) {
    ledger_ = v1::LedgerService::NewStub(channel);
    witness_ = v1::WitnessService::NewStub(channel);
    audit_ = v1::AuditService::NewStub(channel);
    access_ = v1::AccessService::NewStub(channel);
    cases_ = v1::CaseService::NewStub(channel);
    disclosures_ = v1::DisclosureService::NewStub(channel);
    keys_ = v1::KeyAdminService::NewStub(channel);
  }
  void UseLoopback() {
    UseChannel(grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials()));
  }

  void AppendBoth() {
    for (const char* c : {"A", "B"}) {
      for (const v1::AppendRequest& r : Story(c)) {
        auto ctx = Ctx();
        v1::AppendResponse resp;
        grpc::Status s = ledger_->Append(ctx.get(), r, &resp);
        ASSERT_TRUE(s.ok()) << r.event().event_id() << ": " << s.error_message();
      }
    }
  }

  // A signed checkpoint covering all `n` records appended so far.
  v1::Checkpoint WaitForCheckpoint(uint64_t n) {
    v1::Checkpoint cp;
    for (int i = 0; i < 200; ++i) {
      auto ctx = Ctx();
      grpc::Status s = ledger_->GetCheckpoint(ctx.get(), v1::GetCheckpointRequest(), &cp);
      if (s.ok() && cp.size() >= n) return cp;
      absl::SleepFor(absl::Milliseconds(25));
    }
    ADD_FAILURE() << "no checkpoint of size " << n;
    return cp;
  }

  std::string ReadLog(grpc::Status* status = nullptr) {
    grpc::Status s;
    auto ctx = Ctx();
    std::string out = Drain(ledger_->ReadLog(ctx.get(), v1::ReadLogRequest()), v1::Record(), &s);
    if (status != nullptr) *status = s;
    else EXPECT_TRUE(s.ok()) << s.error_message();
    return out;
  }

  // Everything ledger_witness fetches (tools/ledger_witness.cc): the latest
  // checkpoint, a consistency proof, the subject transition from the empty
  // log (records and pruned map), and the cosigned checkpoint.
  std::string WitnessView(uint64_t n, grpc::Status* status) {
    std::string out;
    v1::Checkpoint cp = WaitForCheckpoint(n);
    out += cp.SerializeAsString();
    {
      auto ctx = Ctx();
      v1::ConsistencyProofRequest req;
      req.set_from_size(1);
      req.set_to_size(cp.size());
      v1::ConsistencyProof proof;
      *status = ledger_->GetConsistencyProof(ctx.get(), req, &proof);
      if (!status->ok()) return out;
      out += proof.SerializeAsString();
    }
    {
      auto ctx = Ctx();
      v1::SubjectTransitionRequest req;
      req.set_from_size(0);
      std::string t = Drain(witness_->GetSubjectTransition(ctx.get(), req),
                            v1::SubjectTransitionChunk(), status);
      if (!status->ok()) return out;
      EXPECT_GT(t.size(), 100u);
      out += t;
    }
    {
      auto ctx = Ctx();
      v1::CosignedCheckpoint c;
      *status = witness_->GetCosignedCheckpoint(ctx.get(), v1::GetCosignedCheckpointRequest(), &c);
      out += c.SerializeAsString();
    }
    return out;
  }

  // Everything the server serves about client `c` of case `c` to a caller
  // allowed everything (role local, as a granted auditor): the records, each
  // record read alone, the client's history, access report and FHIR export,
  // the case, the case list and the client's accounting. Fields that only
  // echo the request's own id are cleared; refusals add their messages.
  std::string ServedAbout(const std::string& c, uint64_t n) {
    std::string out = ReadLog();
    auto add = [&](const grpc::Status& s, const google::protobuf::Message& m) {
      std::string got = s.ok() ? m.SerializeAsString() : s.error_message();
      // An accounting (alone or in a history bundle) names the client the
      // request asked for: an echo of the caller's own id, not served state.
      absl::StrReplaceAll({{absl::StrCat("\"client_id\": \"", Client(c), "\""), ""}}, &got);
      if (absl::StrContains(got, Client(c))) out += "\n<<" + m.GetTypeName() + ">>\n";
      out += got;
    };
    v1::Accessor accessor;
    accessor.set_accessor_id("aud-all");
    accessor.set_role("auditor");
    accessor.set_purpose("audit");
    for (uint64_t seq = 0; seq < n; ++seq) {
      auto ctx = Ctx();
      v1::ReadRecordRequest req;
      req.set_seq(seq);
      *req.mutable_accessor() = accessor;
      req.set_full_view(true);
      v1::ReadRecordResponse resp;
      add(access_->ReadRecord(ctx.get(), req, &resp), resp);
    }
    {
      auto ctx = Ctx();
      v1::GetRecordHistoryRequest req;
      req.set_subject_id(Client(c));
      *req.mutable_accessor() = accessor;
      v1::HistoryBundle resp;
      grpc::Status s = access_->GetRecordHistory(ctx.get(), req, &resp);
      resp.clear_subject_id();
      add(s, resp);
    }
    {
      auto ctx = Ctx();
      v1::GetAccessReportRequest req;
      req.set_subject_id(Client(c));
      v1::AccessReport resp;
      grpc::Status s = access_->GetAccessReport(ctx.get(), req, &resp);
      resp.clear_subject_id();
      add(s, resp);
    }
    {
      auto ctx = Ctx();
      v1::ExportFhirRequest req;
      req.set_subject_id(Client(c));
      *req.mutable_accessor() = accessor;
      req.set_full_view(true);
      v1::FhirExport resp;
      add(access_->ExportFhir(ctx.get(), req, &resp), resp);
    }
    {
      auto ctx = Ctx();
      v1::GetCaseRequest req;
      req.set_case_id(CaseId(c));
      req.set_min_seq(n);
      v1::CaseView resp;
      add(cases_->GetCase(ctx.get(), req, &resp), resp);
    }
    {
      auto ctx = Ctx();
      v1::ListCasesRequest req;
      req.set_min_seq(n);
      v1::ListCasesResponse resp;
      add(cases_->ListCases(ctx.get(), req, &resp), resp);
    }
    {
      auto ctx = Ctx();
      v1::GetAccountingRequest req;
      req.set_client_id(Client(c));
      req.set_min_seq(n);
      req.mutable_window_start()->set_seconds(1700000000);
      req.mutable_window_end()->set_seconds(1800000000);
      v1::Accounting resp;
      grpc::Status s = disclosures_->GetAccounting(ctx.get(), req, &resp);
      resp.clear_client_id();
      add(s, resp);
    }
    return out;
  }

  std::string dir_;
  std::string key_file_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<v1::LedgerService::Stub> ledger_;
  std::unique_ptr<v1::WitnessService::Stub> witness_;
  std::unique_ptr<v1::AuditService::Stub> audit_;
  std::unique_ptr<v1::AccessService::Stub> access_;
  std::unique_ptr<v1::CaseService::Stub> cases_;
  std::unique_ptr<v1::DisclosureService::Stub> disclosures_;
  std::unique_ptr<v1::KeyAdminService::Stub> keys_;
};

// (1) A witness's fetches hold no client id and no case id on the default;
// the control (--record_format=1) finds all four in the same fetches.
TEST_F(BlindingE2ETest, AWitnessFetchesNoClientOrCaseId) {
  Start(dir_ + "/format1", {"--record_format=1"});
  UseLoopback();
  AppendBoth();
  grpc::Status s;
  std::string clear = WitnessView(6, &s);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(Found(clear, Ids()), Ids());
  ASSERT_EQ(server_->Stop(SIGTERM), 0);

  Start(dir_ + "/format2", {});
  UseLoopback();
  AppendBoth();
  std::string blind = WitnessView(6, &s);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(Found(blind, Ids()), std::vector<std::string>{});
  // The same server opens the ids for a caller allowed everything.
  EXPECT_EQ(Found(ReadLog(), Ids()), Ids());
}

// (2) Over mutual TLS, an auditor without a grant reads every read RPC its
// role may call (services/authz/AUTHZ.md) and the refusals of the ones it may
// not; none of it names a client or a case. The control: an auditor with a
// grant for every case reads the ids through the same ReadLog.
TEST_F(BlindingE2ETest, AnAuditorWithoutAGrantReadsNoClientOrCaseId) {
  absl::StatusOr<testing::DevTls> tls =
      testing::MakeDevTls({"producer/intake", "auditor/aud-none", "auditor/aud-all"});
  ASSERT_TRUE(tls.ok()) << tls.status();
  std::ofstream(dir_ + "/authz.conf") << "producer intake housing\n"
                                         "audit_grant aud-all *\n";
  Start(dir_ + "/data", {"--authz_config=" + dir_ + "/authz.conf"}, &*tls);
  UseChannel(tls->Channel(server_->address(), "producer-intake"));
  AppendBoth();

  UseChannel(tls->Channel(server_->address(), "auditor-aud-all"));
  EXPECT_EQ(Found(ReadLog(), Ids()), Ids());

  UseChannel(tls->Channel(server_->address(), "auditor-aud-none"));
  std::string seen;
  grpc::Status s;
  seen += ReadLog(&s);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_GT(seen.size(), 6 * 64u);
  {
    auto ctx = Ctx();
    v1::ReadStreamRequest req;
    req.set_stream_id(CaseId("A"));
    std::string stream = Drain(ledger_->ReadStream(ctx.get(), req), v1::Record(), &s);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_GT(stream.size(), 3 * 64u);
    seen += stream;
  }
  seen += WitnessView(6, &s);
  ASSERT_TRUE(s.ok()) << s.error_message();
  {
    auto ctx = Ctx();
    seen += Drain(ledger_->ListCheckpoints(ctx.get(), v1::ListCheckpointsRequest()),
                  v1::Checkpoint(), &s);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  {
    auto ctx = Ctx();
    v1::VerifyRangeResponse resp;
    ASSERT_TRUE(audit_->VerifyRange(ctx.get(), v1::VerifyRangeRequest(), &resp).ok());
    EXPECT_TRUE(resp.ok());
    seen += resp.SerializeAsString();
  }
  {
    auto ctx = Ctx();
    v1::LedgerMetrics resp;
    ASSERT_TRUE(audit_->GetMetrics(ctx.get(), v1::GetMetricsRequest(), &resp).ok());
    seen += resp.SerializeAsString();
  }
  // Refused reads that name no id in the request must not name one in the
  // refusal either.
  {
    auto ctx = Ctx();
    v1::ReadRecordRequest req;
    req.set_seq(1);
    req.mutable_accessor()->set_accessor_id("aud-none");
    req.mutable_accessor()->set_purpose("audit");
    v1::ReadRecordResponse resp;
    s = access_->ReadRecord(ctx.get(), req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
    seen += s.error_message() + resp.SerializeAsString();
  }
  {
    auto ctx = Ctx();
    v1::ListCasesResponse resp;
    s = cases_->ListCases(ctx.get(), v1::ListCasesRequest(), &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
    seen += s.error_message() + resp.SerializeAsString();
  }
  EXPECT_EQ(Found(seen, Ids()), std::vector<std::string>{});
}

// (3) After EraseSubject(A), nothing the server serves about client A names
// A: records, single-record reads, history, access report, FHIR export, case,
// case list, accounting. Controls: the same reads name A before the erasure,
// and name B (not erased) after it.
TEST_F(BlindingE2ETest, AfterErasureNothingServedNamesTheClient) {
  Start(dir_, {});
  UseLoopback();
  AppendBoth();
  const uint64_t n = WaitForCheckpoint(6).size();
  EXPECT_EQ(Found(ServedAbout("A", n), {Client("A")}), std::vector<std::string>{Client("A")});

  auto ctx = Ctx();
  v1::EraseSubjectRequest req;
  req.set_subject_id(Client("A"));
  req.set_authority("gdpr-art17-request-1");
  v1::EraseSubjectResponse resp;
  grpc::Status s = keys_->EraseSubject(ctx.get(), req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  const uint64_t m = WaitForCheckpoint(n + 1).size();

  std::string a = ServedAbout("A", m);
  EXPECT_EQ(Found(a, {Client("A")}), std::vector<std::string>{})
      << Labels(a);
  EXPECT_EQ(Found(ServedAbout("B", m), {Client("B")}), std::vector<std::string>{Client("B")});

  // And after a restart.
  ASSERT_EQ(server_->Stop(SIGTERM), 0);
  Start(dir_, {});
  UseLoopback();
  EXPECT_EQ(Found(ServedAbout("A", m), {Client("A")}), std::vector<std::string>{});
}

}  // namespace
}  // namespace caseledger
