// Mutual TLS and authorization end to end: the real server started as
// tools/serve.sh starts it with TLS flags (a master key, so payloads are
// encrypted and records are format 2), with a CA made at test time by
// tools/make_dev_certs.sh, callers named by their certificates.
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/credentials.h>
#include <signal.h>

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "ledger/record.h"
#include "proto/access.pb.h"
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

v1::AppendRequest Event(const std::string& id, const std::string& stream,
                        const std::string& producer) {
  return testing::EventRequest(id, stream, "client-1", producer, testing::kNoteAt);
}

v1::AppendRequest Open(const std::string& id, const std::string& stream,
                       const std::string& program) {
  v1::AppendRequest r = Event(id, stream, "intake");
  testing::SetCaseOpened(r.mutable_event(), program);
  return r;
}

class MtlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<testing::DevTls> tls = testing::MakeDevTls(
        {"producer/intake", "case_manager/cm-1", "case_manager/cm-2", "client/client-1",
         "client/client-2", "auditor/aud-1", "auditor/aud-all", "admin/ops-1"});
    ASSERT_TRUE(tls.ok()) << tls.status();
    tls_ = new testing::DevTls(*std::move(tls));
  }

  void SetUp() override {
    dir_ = testing::NewTempDir("mtls");
    std::ofstream(dir_ + "/authz.conf") << "producer intake housing\n"
                                           "audit_grant aud-1 case-1\n"
                                           "audit_grant aud-all *\n";
  }

  // The default server (as tools/serve.sh starts it with TLS flags) on
  // dir_/data, plus `flags`.
  void StartServer(std::vector<std::string> flags = {}) {
    flags.push_back("--authz_config=" + dir_ + "/authz.conf");
    server_.reset();
    auto s = testing::StartTlsServer(*tls_, dir_ + "/data", flags);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
  }

  // A channel presenting `name`.pem / `name`.key (none when empty), trusting
  // the dev CA.
  std::shared_ptr<grpc::Channel> Channel(const std::string& name) {
    return tls_->Channel(server_->address(), name);
  }

  // ledgerctl as `who` over mutual TLS.
  testing::CommandResult Ledgerctl(const std::string& who,
                                   const std::vector<std::string>& command) {
    std::vector<std::string> argv = {"tools/ledgerctl", "--server=" + server_->address()};
    for (const std::string& flag : tls_->ClientFlags(who)) argv.push_back(flag);
    argv.insert(argv.end(), command.begin(), command.end());
    return testing::RunCommand(argv);
  }

  // The log's verifier key, as the server logs it at start.
  std::string LogKey() {
    const std::string err = server_->Stderr();
    const size_t at = err.find(", key ");
    EXPECT_NE(at, std::string::npos) << err;
    if (at == std::string::npos) return "";
    return err.substr(at + 6, err.find('\n', at) - at - 6);
  }

  std::unique_ptr<v1::LedgerService::Stub> Stub(const std::string& name) {
    return v1::LedgerService::NewStub(Channel(name));
  }

  static grpc::Status Append(v1::LedgerService::Stub& stub, const v1::AppendRequest& req) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::AppendResponse resp;
    return stub.Append(&ctx, req, &resp);
  }

  static grpc::Status ReadStream(v1::LedgerService::Stub& stub, const std::string& stream,
                                 std::vector<v1::Record>* out) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::ReadStreamRequest req;
    req.set_stream_id(stream);
    auto reader = stub.ReadStream(&ctx, req);
    v1::Record r;
    while (reader->Read(&r)) out->push_back(r);
    return reader->Finish();
  }

  static grpc::Status Checkpoint(v1::LedgerService::Stub& stub) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::GetPublicKeyRequest req;
    v1::PublicKey resp;
    return stub.GetPublicKey(&ctx, req, &resp);
  }

  // Opens case-1 (housing, manager cm-1, client client-1) as the producer.
  void OpenCase() {
    auto producer = Stub("producer-intake");
    ASSERT_TRUE(Append(*producer, Open("o-1", "case-1", "housing")).ok());
    v1::AppendRequest assign = Event("a-1", "case-1", "intake");
    assign.mutable_event()->mutable_case_manager_assigned()->set_manager_id("cm-1");
    ASSERT_TRUE(Append(*producer, assign).ok());
    v1::AppendRequest client = Event("p-1", "case-1", "intake");
    client.mutable_event()->mutable_participant_added()->set_participant_id("client-1");
    client.mutable_event()->mutable_participant_added()->set_role(v1::PARTICIPANT_ROLE_CLIENT);
    ASSERT_TRUE(Append(*producer, client).ok());
    v1::AppendRequest note = Event("n-1", "case-1", "intake");
    auto* w = note.mutable_event()->mutable_record_entry_written();
    w->set_entry_id("entry-1");
    w->set_data_category("housing");
    w->set_text("first visit");
    grpc::Status s = Append(*producer, note);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }

  static testing::DevTls* tls_;
  std::string dir_;
  std::unique_ptr<ServerProcess> server_;
};

testing::DevTls* MtlsTest::tls_ = nullptr;

TEST_F(MtlsTest, RolesAreEnforcedAndEveryRefusalAndReadIsRecorded) {
  StartServer();
  OpenCase();
  auto producer = Stub("producer-intake");

  // A producer appends only for its programs, in its own name, and reads no
  // payloads.
  grpc::Status s = Append(*producer, Open("o-2", "case-2", "health"));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(s.error_message(),
            "rule producer.own_program: producer \"intake\" is not registered for program "
            "\"health\"");
  std::vector<v1::Record> records;
  s = ReadStream(*producer, "case-1", &records);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(absl::StartsWith(s.error_message(), "rule producer.deny: ")) << s.error_message();
  EXPECT_TRUE(records.empty());

  // The assigned case manager reads the case; the read is recorded in it.
  auto cm = Stub("case_manager-cm-1");
  records.clear();
  s = ReadStream(*cm, "case-1", &records);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(records.size(), 5u);
  EXPECT_EQ(records[3].event().record_entry_written().text(), "first visit");
  const v1::Event& accessed = records[4].event();
  ASSERT_TRUE(accessed.has_record_accessed()) << accessed.DebugString();
  EXPECT_EQ(accessed.record_accessed().accessor_id(), "cm-1");
  EXPECT_EQ(accessed.record_accessed().accessor_role(), "case_manager");
  EXPECT_EQ(accessed.subject_ids(0), "client-1");
  // ...and appends to it; another manager may do neither.
  v1::AppendRequest note = Event("n-2", "case-1", "cm-1");
  note.mutable_event()->mutable_record_entry_written()->set_entry_id("entry-2");
  note.mutable_event()->mutable_record_entry_written()->set_data_category("housing");
  note.mutable_event()->mutable_record_entry_written()->set_text("second visit");
  s = Append(*cm, note);
  EXPECT_TRUE(s.ok()) << s.error_message();
  auto cm2 = Stub("case_manager-cm-2");
  records.clear();
  s = ReadStream(*cm2, "case-1", &records);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(s.error_message(),
            "rule case_manager.assigned_case: case \"case-1\" is assigned to \"cm-1\", not to "
            "case_manager cm-2");

  // A conflict of interest declared by cm-1 blocks cm-1.
  v1::AppendRequest conflict = Event("c-1", "case-1", "intake");
  conflict.mutable_event()->mutable_conflict_declared()->set_conflict_id("coi-1");
  conflict.mutable_event()->mutable_conflict_declared()->set_declared_by("cm-1");
  conflict.mutable_event()->mutable_conflict_declared()->set_description("neighbour");
  ASSERT_TRUE(Append(*producer, conflict).ok());
  records.clear();
  s = ReadStream(*cm, "case-1", &records);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(absl::StrContains(s.error_message(), "unresolved conflict of interest"));

  // Clients, admins: no reads here; everyone: verification material.
  for (const char* name : {"client-client-1", "admin-ops-1"}) {
    auto stub = Stub(name);
    records.clear();
    EXPECT_EQ(ReadStream(*stub, "case-1", &records).error_code(),
              grpc::StatusCode::PERMISSION_DENIED)
        << name;
    EXPECT_TRUE(Checkpoint(*stub).ok()) << name;
  }
  auto client = v1::DisclosureService::NewStub(Channel("client-client-1"));
  {
    grpc::ClientContext ctx;
    v1::GetAccountingRequest req;
    req.set_client_id("client-1");
    v1::Accounting resp;
    EXPECT_EQ(client->GetAccounting(&ctx, req, &resp).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }

  // An auditor without a grant for every case gets commitments only from the
  // log; with a grant for the case, its payloads.
  auto auditor = Stub("auditor-aud-1");
  {
    grpc::ClientContext ctx;
    v1::ReadLogRequest req;
    auto reader = auditor->ReadLog(&ctx, req);
    v1::Record r;
    int n = 0;
    while (reader->Read(&r)) {
      ++n;
      EXPECT_FALSE(r.has_event());
      // The field commitments, no opening (AUTHZ.md `commitments`).
      absl::StatusOr<PayloadView> payload = DecodePayloadView(r.payload());
      ASSERT_TRUE(payload.ok()) << payload.status();
      EXPECT_GT(payload->field_count, 0);
      EXPECT_TRUE(payload->sealed_openings.empty());
      EXPECT_FALSE(r.leaf().empty());
    }
    ASSERT_TRUE(reader->Finish().ok());
    EXPECT_GT(n, 5);
  }
  records.clear();
  ASSERT_TRUE(ReadStream(*auditor, "case-1", &records).ok());
  EXPECT_EQ(records[3].event().record_entry_written().text(), "first visit");

  // Every refusal above is in the server's access stream, naming the rule.
  auto auditor_all = Stub("auditor-aud-all");
  records.clear();
  ASSERT_TRUE(ReadStream(*auditor_all, "@access", &records).ok());
  std::vector<std::string> refused;
  for (const v1::Record& r : records) {
    if (!r.event().has_access_refused()) continue;
    refused.push_back(r.event().access_refused().accessor_id() + " " +
                      r.event().access_refused().method());
  }
  EXPECT_EQ(refused, (std::vector<std::string>{
                         "intake /caseledger.v1.LedgerService/Append",
                         "intake /caseledger.v1.LedgerService/ReadStream",
                         "cm-2 /caseledger.v1.LedgerService/ReadStream",
                         "cm-1 /caseledger.v1.LedgerService/ReadStream",
                         "client-1 /caseledger.v1.LedgerService/ReadStream",
                         "ops-1 /caseledger.v1.LedgerService/ReadStream",
                         "client-1 /caseledger.v1.DisclosureService/GetAccounting",
                     }));
  ASSERT_FALSE(records.empty());
  EXPECT_TRUE(absl::StartsWith(records[0].event().access_refused().reason(),
                               "rule producer.own_program"));

  // Nobody may write to the server's stream.
  v1::AppendRequest forged = Event("f-1", "@access", "intake");
  forged.mutable_event()->mutable_case_opened()->set_program("housing");
  EXPECT_EQ(Append(*producer, forged).error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(MtlsTest, UntrustedExpiredMissingOrNamelessCertificatesAreRefused) {
  StartServer();
  // Handshake failures: the call never reaches a handler.
  for (const char* name : {"wrong-ca", "expired", ""}) {
    auto stub = Stub(name);
    grpc::Status s = Checkpoint(*stub);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << "'" << name << "' " << s.error_message();
  }
  // A certificate from the right CA that names no caller.
  auto nameless = Stub("no-uri");
  grpc::Status s = Checkpoint(*nameless);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(s.error_message(),
            "client certificate: no URI SAN caseledger://ROLE/ID names the caller");
  // Plaintext to a TLS server.
  auto plain = v1::LedgerService::NewStub(
      grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials()));
  EXPECT_EQ(Checkpoint(*plain).error_code(), grpc::StatusCode::UNAVAILABLE);
  // The good certificate still works.
  EXPECT_TRUE(Checkpoint(*Stub("auditor-aud-1")).ok());
}

TEST_F(MtlsTest, LedgerctlSpeaksMutualTls) {
  StartServer();
  OpenCase();
  testing::CommandResult read = Ledgerctl("case_manager-cm-1", {"read", "--stream=case-1"});
  EXPECT_EQ(read.exit_code, 0) << read.err;
  EXPECT_TRUE(absl::StrContains(read.out, "first visit")) << read.out;
  testing::CommandResult refused = Ledgerctl("producer-intake", {"read", "--stream=case-1"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(refused.err, "PERMISSION_DENIED")) << refused.err;
  EXPECT_TRUE(absl::StrContains(refused.err, "rule producer.deny")) << refused.err;
}

// Every ledgerctl command over the one mutual-TLS channel, and
// AccessService.ReadRecord decided on the record: a client reads their own
// records, an auditor those of a case their grant covers, and a refusal
// reveals nothing of the record.
TEST_F(MtlsTest, ClientsReadTheirOwnHistoryAndRecordsWithLedgerctl) {
  StartServer();
  OpenCase();  // seqs 0-3 in case-1, naming client-1; seq 3 says "first visit"
  // Seq 4: client-2's case, which neither client-1 nor aud-1 may read.
  v1::AppendRequest other = Open("o-2", "case-2", "housing");
  other.mutable_event()->set_subject_ids(0, "client-2");
  grpc::ClientContext ctx;
  v1::AppendResponse appended;
  ASSERT_TRUE(Stub("producer-intake")->Append(&ctx, other, &appended).ok());
  ASSERT_EQ(appended.seq(), 4u);

  const std::string client = "client-client-1";
  testing::CommandResult history =
      Ledgerctl(client, {"history", "--subject=client-1", "--out=" + dir_ + "/mine.bundle"});
  EXPECT_EQ(history.exit_code, 0) << history.err;
  EXPECT_TRUE(absl::StrContains(history.out, "records of client-1")) << history.out;
  testing::CommandResult report = Ledgerctl(client, {"access-report", "--subject=client-1"});
  EXPECT_EQ(report.exit_code, 0) << report.err;
  EXPECT_TRUE(absl::StrContains(report.out, "client-1 (client)")) << report.out;

  testing::CommandResult own = Ledgerctl(client, {"read-record", "--seq=3", "--subject=client-1"});
  EXPECT_EQ(own.exit_code, 0) << own.err;
  EXPECT_TRUE(absl::StrContains(own.out, "first visit")) << own.out;
  // Another client's record, with the client's own id or theirs, and no
  // subject at all: refused, and the refusal names neither case nor client.
  for (const std::vector<std::string>& command :
       std::vector<std::vector<std::string>>{{"read-record", "--seq=4", "--subject=client-1"},
                                             {"read-record", "--seq=4", "--subject=client-2"},
                                             {"read-record", "--seq=4", "--accessor=client-1"}}) {
    testing::CommandResult refused = Ledgerctl(client, command);
    EXPECT_EQ(refused.exit_code, 1) << command[2];
    EXPECT_TRUE(absl::StrContains(refused.err, "PERMISSION_DENIED")) << refused.err;
    EXPECT_TRUE(absl::StrContains(refused.err, "rule client.own_subject")) << refused.err;
    EXPECT_FALSE(absl::StrContains(refused.err, "case-2")) << refused.err;
    EXPECT_FALSE(absl::StrContains(refused.out, "case-2")) << refused.out;
  }
  EXPECT_TRUE(
      absl::StrContains(Ledgerctl(client, {"read-record", "--seq=4", "--subject=client-1"}).err,
                        "rule client.own_subject: record 4 is not one of \"client-1\"'s records"));
  // A client never gets the staff view.
  EXPECT_EQ(
      Ledgerctl(client, {"read-record", "--seq=3", "--subject=client-1", "--full_view"}).exit_code,
      1);

  // aud-1's grant covers case-1, not case-2, which the refusal does not name.
  testing::CommandResult audited = Ledgerctl("auditor-aud-1", {"read-record", "--seq=3"});
  EXPECT_EQ(audited.exit_code, 0) << audited.err;
  EXPECT_TRUE(absl::StrContains(audited.out, "first visit")) << audited.out;
  testing::CommandResult ungranted = Ledgerctl("auditor-aud-1", {"read-record", "--seq=4"});
  EXPECT_EQ(ungranted.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(
      ungranted.err,
      "rule auditor.audit_grant: auditor aud-1 has no audit grant for the case of record 4"))
      << ungranted.err;
  EXPECT_FALSE(absl::StrContains(ungranted.err, "case-2")) << ungranted.err;
  // ledger_witness over the same channel factory, as an auditor (the
  // history above signed a checkpoint); plaintext is refused.
  const std::string log_key = LogKey();
  ASSERT_FALSE(log_key.empty());
  std::vector<std::string> witness = {"tools/ledger_witness",
                                      "--server=" + server_->address(),
                                      "--log_key=" + log_key,
                                      "--witness_key=" + dir_ + "/witness.key",
                                      "--witness_name=witness.example/w1",
                                      "--state=" + dir_ + "/witness.state",
                                      "--submit=false",
                                      "--timeout=5s"};
  testing::CommandResult plain = testing::RunCommand(witness);
  EXPECT_EQ(plain.exit_code, 1) << plain.err;
  for (const std::string& flag : tls_->ClientFlags("auditor-aud-1")) witness.push_back(flag);
  testing::CommandResult witnessed = testing::RunCommand(witness);
  EXPECT_EQ(witnessed.exit_code, 0) << witnessed.err;

  // Case managers read through LedgerService, as before.
  testing::CommandResult manager =
      Ledgerctl("case_manager-cm-1", {"read-record", "--seq=3", "--subject=client-1"});
  EXPECT_EQ(manager.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(manager.err, "rule case_manager.deny")) << manager.err;
}

// Every client command of the README over mutual TLS on the default server
// (payloads encrypted, record format 2), each as the role that runs it, and
// again after kill -9 and a restart: a client's history, its offline
// verification and rendering; the auditor's export and ledger_verify, then
// the incremental one; a witness cosigning and `cosigned` checking it; an
// erasure, then the erased client's and the other client's histories.
TEST_F(MtlsTest, EveryClientCommandOnTheDefaultServerAndAfterAKill9Restart) {
  const std::string witness_key = dir_ + "/witness.key";
  testing::CommandResult vkey =
      testing::RunCommand({"tools/ledger_witness", "--witness_key=" + witness_key,
                           "--witness_name=witness.example/w1", "--print_vkey"});
  ASSERT_EQ(vkey.exit_code, 0) << vkey.err;
  const std::string witness_vkey = vkey.out.substr(0, vkey.out.find('\n'));
  const std::vector<std::string> flags = {"--witness_keys=" + witness_vkey};
  StartServer(flags);
  ASSERT_TRUE(absl::StrContains(server_->Stderr(), "records are written in format 2"))
      << server_->Stderr();
  OpenCase();  // seqs 0-3 in case-1, naming client-1; seq 3 says "first visit"
  {
    v1::AppendRequest other = Open("o-2", "case-2", "housing");  // client-2's case
    other.mutable_event()->set_subject_ids(0, "client-2");
    other.mutable_event()->mutable_case_opened()->set_reason("RECORD-OF-CLIENT-2");
    ASSERT_TRUE(Append(*Stub("producer-intake"), other).ok());
  }
  const std::string key = LogKey();
  ASSERT_FALSE(key.empty());
  auto ok = [](const testing::CommandResult& r) {
    return r.exit_code == 0 ? ::testing::AssertionSuccess()
                            : ::testing::AssertionFailure() << "exit " << r.exit_code << "\n"
                                                            << r.out << r.err;
  };
  // The client's history at a checkpoint signed for it (--current): fetched,
  // verified offline (keeping the note), rendered; `since` continues from a
  // kept note.
  auto history = [&](const std::string& subject, const std::string& name,
                     const std::string& since) {
    std::vector<std::string> fetch = {"history", "--subject=" + subject, "--current",
                                      "--out=" + dir_ + "/" + name + ".bundle"};
    std::vector<std::string> verify = {"verify-history", dir_ + "/" + name + ".bundle",
                                       "--key=" + key, "--subject=" + subject,
                                       "--save_note=" + dir_ + "/" + name + ".note"};
    if (!since.empty()) {
      fetch.push_back("--since=" + dir_ + "/" + since + ".note");
      verify.push_back("--since=" + dir_ + "/" + since + ".note");
    }
    EXPECT_TRUE(ok(Ledgerctl("client-" + subject, fetch))) << name;
    testing::CommandResult verified = Ledgerctl("client-" + subject, verify);
    EXPECT_TRUE(ok(verified)) << name;
    testing::CommandResult page = Ledgerctl(
        "client-" + subject, {"render-history", dir_ + "/" + name + ".bundle", "--key=" + key});
    EXPECT_TRUE(ok(page)) << name;
    v1::HistoryBundle bundle;
    std::ifstream in(dir_ + "/" + name + ".bundle", std::ios::binary);
    EXPECT_TRUE(bundle.ParseFromIstream(&in)) << name;
    return std::make_pair(bundle, page.out);
  };
  // The auditor's export and ledger_verify, full or since the saved note.
  auto audit = [&](const std::string& name, bool since) {
    std::vector<std::string> exp = {"export", "--out=" + dir_ + "/" + name + ".export"};
    std::vector<std::string> verify = {"tools/ledger_verify",
                                       "--bundle=" + dir_ + "/" + name + ".export", "--key=" + key,
                                       "--save_note=" + dir_ + "/audit.note"};
    if (since) {
      exp.push_back("--since=" + dir_ + "/audit.note");
      verify.push_back("--since=" + dir_ + "/audit.note");
    }
    EXPECT_TRUE(ok(Ledgerctl("auditor-aud-all", exp))) << name;
    testing::CommandResult verified = testing::RunCommand(verify);
    EXPECT_TRUE(ok(verified)) << name;
    EXPECT_TRUE(absl::StrContains(verified.out, "OK")) << name << ": " << verified.out;
  };
  // A witness (an auditor's certificate) cosigns the newest checkpoint, and
  // a client checks the cosignature.
  auto witness = [&](const std::string& when) {
    std::vector<std::string> argv = {"tools/ledger_witness",
                                     "--server=" + server_->address(),
                                     "--log_key=" + key,
                                     "--witness_key=" + witness_key,
                                     "--witness_name=witness.example/w1",
                                     "--state=" + dir_ + "/witness.state",
                                     "--timeout=10s"};
    for (const std::string& flag : tls_->ClientFlags("auditor-aud-1")) argv.push_back(flag);
    EXPECT_TRUE(ok(testing::RunCommand(argv))) << when;
    EXPECT_TRUE(ok(Ledgerctl("client-client-1", {"cosigned", "--key=" + key,
                                                 "--witness_keys=" + witness_vkey, "--quorum=1"})))
        << when;
  };

  // The rest of the README's commands, each as the role that runs it, with
  // a line each prints; `from_size` is a checkpoint size signed earlier.
  auto readme = [&](const std::string& when, const std::string& from_size) {
    struct Command {
      std::string who;
      std::vector<std::string> args;
      std::string want;  // in its output
    };
    std::vector<Command> commands = {
        {"client-client-1", {"checkpoint", "--key=" + key}, "signature OK: key " + key},
        {"client-client-1", {"access-report", "--subject=client-1"}, "client-1 (client)"},
        {"client-client-1", {"read-record", "--seq=3", "--subject=client-1"}, "first visit"},
        {"client-client-1", {"export-fhir", "--subject=client-1"}, "\"resourceType\": \"Bundle\""},
        {"case_manager-cm-1", {"read", "--stream=case-1"}, "first visit"},
        {"case_manager-cm-1", {"case", "--id=case-1"}, "housing"},
        {"case_manager-cm-1", {"cases", "--manager=cm-1"}, "case-1"},
        {"auditor-aud-all", {"cases", "--overdue"}, ""},
        {"auditor-aud-all", {"accounting", "--client=client-1"}, "client-1"},
        {"auditor-aud-all", {"tail", "--from_seq=0", "--count=5"}, "first visit"},
        {"auditor-aud-1", {"tail", "--from_seq=0", "--count=5"}, "seq 4"},
        {"auditor-aud-1", {"prove", "--seq=0", "--key=" + key}, "OK"},
        {"auditor-aud-1", {"status"}, "integrity     ok"},
        {"auditor-aud-1", {"metrics"}, "verification_failed           no"},
        {"auditor-aud-1", {"audit", "verify-range", "--from_seq=0"}, "OK: records [0, "},
    };
    if (!from_size.empty()) {
      commands.push_back(
          {"auditor-aud-1", {"prove", "--from_size=" + from_size, "--key=" + key}, "OK"});
    } else {
      // Client workflows, once (each is one event of case-1).
      for (std::vector<std::string> workflow : std::vector<std::vector<std::string>>{
               {"accounting-request", "request", "--request_id=acc-1", "--client_id=client-1",
                "--requested_by=client-1"},
               {"accounting-request", "extend", "--request_id=acc-1", "--subject=client-1",
                "--reason=records in storage"},
               {"hold", "place", "--hold_id=hold-1", "--scope=case", "--ground=litigation",
                "--authority=notice 17", "--placed_by=cm-1"},
               {"hold", "release", "--hold_id=hold-1", "--released_by=cm-1",
                "--reason=matter settled"}}) {
        workflow.insert(workflow.begin() + 2, "--case=case-1");
        commands.push_back({"case_manager-cm-1", workflow, ""});
      }
    }
    for (const Command& c : commands) {
      testing::CommandResult r = Ledgerctl(c.who, c.args);
      EXPECT_TRUE(ok(r)) << when << ": " << c.who << " " << c.args[0];
      EXPECT_TRUE(absl::StrContains(r.out, c.want))
          << when << ": " << c.who << " " << c.args[0] << ": want \"" << c.want << "\" in\n"
          << r.out;
    }
    // An auditor whose grant does not cover every case exports and verifies
    // the log's commitments (BLINDING.md "Who learns what"); a full export is
    // refused naming the mode to use.
    const std::string out = dir_ + "/commitments.export";
    EXPECT_TRUE(
        ok(Ledgerctl("auditor-aud-1", {"export", "--out=" + out, "--payloads=commitments"})))
        << when;
    testing::CommandResult verified =
        testing::RunCommand({"tools/ledger_verify", "--bundle=" + out, "--key=" + key});
    EXPECT_TRUE(ok(verified)) << when;
    testing::CommandResult full = Ledgerctl("auditor-aud-1", {"export", "--out=" + out});
    EXPECT_EQ(full.exit_code, 1) << when << full.out;
    EXPECT_TRUE(absl::StrContains(full.err, "export with --payloads=commitments")) << full.err;
  };

  auto [first, page] = history("client-1", "h1", "");
  EXPECT_EQ(first.records_size(), 4);
  EXPECT_TRUE(absl::StrContains(page, "first visit")) << page;
  audit("a1", false);
  witness("before the restart");
  readme("before the restart", "");
  // The size of the checkpoint the first history was signed at (its note's
  // second line).
  const std::vector<std::string> note = absl::StrSplit(first.checkpoint_note(), '\n');
  ASSERT_GT(note.size(), 1u);
  const std::string signed_before = note[1];

  // An admin erases client-2: client-2's history is empty and verifies;
  // client-1's is untouched.
  {
    auto keys = v1::KeyAdminService::NewStub(Channel("admin-ops-1"));
    grpc::ClientContext ctx;
    v1::EraseSubjectRequest req;
    req.set_subject_id("client-2");
    req.set_authority("gdpr-art17-request-1");
    v1::EraseSubjectResponse resp;
    grpc::Status s = keys->EraseSubject(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(resp.keys_destroyed(), 1u);
  }
  auto [erased, erased_page] = history("client-2", "e1", "");
  EXPECT_EQ(erased.records_size(), 0);
  EXPECT_FALSE(absl::StrContains(erased.SerializeAsString(), "RECORD-OF-CLIENT-2"));
  auto [second, second_page] = history("client-1", "h2", "h1");
  EXPECT_TRUE(absl::StrContains(second_page, "first visit")) << second_page;

  // kill -9, then the same server again on the same data and key.
  server_->Stop(SIGKILL);
  StartServer(flags);
  EXPECT_EQ(LogKey(), key);
  {
    v1::AppendRequest note = Event("n-after", "case-1", "intake");
    // After the workflows above, which happened moments ago: to the nanosecond, since the
    // case's latest event may lie in this same second (whole seconds made this flaky).
    const int64_t now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
    note.mutable_event()->mutable_occurred_at()->set_seconds(now_ns / 1000000000);
    note.mutable_event()->mutable_occurred_at()->set_nanos(static_cast<int32_t>(now_ns % 1000000000));
    auto* w = note.mutable_event()->mutable_record_entry_written();
    w->set_entry_id("entry-after");
    w->set_data_category("housing");
    w->set_text("visit after the restart");
    grpc::Status s = Append(*Stub("producer-intake"), note);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  auto [third, third_page] = history("client-1", "h3", "h2");
  EXPECT_TRUE(absl::StrContains(third_page, "visit after the restart")) << third_page;
  EXPECT_TRUE(absl::StrContains(third_page, "first visit")) << third_page;
  auto [erased_again, erased_again_page] = history("client-2", "e2", "");
  EXPECT_EQ(erased_again.records_size(), 0);
  audit("a2", true);
  witness("after the restart");
  readme("after the restart", signed_before);
  testing::CommandResult read = Ledgerctl("case_manager-cm-1", {"read", "--stream=case-1"});
  EXPECT_TRUE(ok(read));
  EXPECT_TRUE(absl::StrContains(read.out, "visit after the restart")) << read.out;
}

// The 42 CFR 2.24 list of disclosures over mutual TLS on the default server,
// and again after kill -9 and a restart: a substance-use case whose client
// consented to "my treating providers" through the intermediary hie-1, one
// disclosure by hie-1 under it and one by someone else, the client's written
// request, the list (the intermediary's disclosure only), then, after the
// restart, the same list from the rebuilt read models and the request given.
TEST_F(MtlsTest, Part2ListOfDisclosuresOverMutualTlsAndAfterAKill9Restart) {
  StartServer();
  auto ok = [](const testing::CommandResult& r) {
    return r.exit_code == 0 ? ::testing::AssertionSuccess()
                            : ::testing::AssertionFailure() << "exit " << r.exit_code << "\n"
                                                            << r.out << r.err;
  };
  const std::string sha = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
  const std::vector<std::string> events = {
      R"({"event_id":"p2-open","producer":"intake","stream_id":"case-p2","subject_ids":["client-1"],
          "case_opened":{"program":"housing","jurisdiction":"US-CA",
          "record_class":"RECORD_CLASS_SUBSTANCE_USE"}})",
      R"({"event_id":"p2-assign","producer":"intake","stream_id":"case-p2","subject_ids":["client-1"],
          "case_manager_assigned":{"manager_id":"cm-1"}})",
      R"({"event_id":"p2-consent","producer":"intake","stream_id":"case-p2","subject_ids":["client-1"],
          "consent_granted":{"consent_id":"c-hie","client_id":"client-1",
          "grantor_kind":"GRANTOR_KIND_CLIENT","grantor_id":"client-1","recipients":["hie-1"],
          "purposes":["treatment"],"data_categories":["sud_treatment"],
          "expiry_event":"end of treatment","patient_name":"A. Client",
          "signed_at":"2026-01-05T00:00:00Z","signed_form_sha256":")" + sha + R"(",
          "informed":{"told_right_to_revoke":true,"told_consequences_of_refusing":true,
          "told_redisclosure_risk":true,"told_limits_of_confidentiality":true,"language":"en",
          "comprehension_aid":"COMPREHENSION_AID_NONE",
          "capacity":"CONSENT_CAPACITY_CLIENT_CAPABLE"},
          "general_designation":"my treating providers","intermediary":"hie-1"}})",
      R"({"event_id":"p2-sent","producer":"intake","stream_id":"case-p2","subject_ids":["client-1"],
          "disclosure_made":{"disclosure_id":"d-1","client_id":"client-1","disclosed_by":"hie-1",
          "recipient":{"recipient_id":"clinic-7","name":"Eastside Clinic"},
          "purpose":"treatment","data_categories":["sud_treatment"],
          "description":"medication list","legal_basis":"LEGAL_BASIS_CONSENT",
          "consent_id":"c-hie","minimum_necessary":"the current medications only",
          "part2_notice_sha256":")" + sha + R"("}})",
  };
  for (const std::string& event : events) {
    ASSERT_TRUE(ok(Ledgerctl("producer-intake", {"append", "--event=" + event})));
  }
  ASSERT_TRUE(ok(Ledgerctl(
      "case_manager-cm-1",
      {"part2-list", "request", "--case=case-p2", "--request_id=pl-1", "--client_id=client-1",
       "--requested_by=client-1", "--consent_id=c-hie",
       "--written_request_sha256="
       "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"})));
  auto list = [&](const std::string& when) {
    testing::CommandResult r =
        Ledgerctl("auditor-aud-all", {"accounting", "--client=client-1", "--case=case-p2",
                                      "--part2_list=pl-1"});
    EXPECT_TRUE(ok(r)) << when;
    EXPECT_TRUE(absl::StrContains(r.out, "Eastside Clinic")) << when << ":\n" << r.out;
    EXPECT_TRUE(absl::StrContains(r.out, "medication list")) << when << ":\n" << r.out;
  };
  list("before the restart");
  // The open request shows as the case's; a case cannot close with it open.
  testing::CommandResult open_case = Ledgerctl("case_manager-cm-1", {"case", "--id=case-p2"});
  EXPECT_TRUE(ok(open_case));
  EXPECT_TRUE(absl::StrContains(open_case.out, "pl-1")) << open_case.out;

  server_->Stop(SIGKILL);
  StartServer();
  list("after kill -9 and a restart");
  EXPECT_TRUE(ok(Ledgerctl("case_manager-cm-1",
                           {"part2-list", "provide", "--case=case-p2", "--subject=client-1", "--request_id=pl-1"})));
  // Given once: a second answer to the same request is refused and stores nothing.
  testing::CommandResult again = Ledgerctl(
      "case_manager-cm-1", {"part2-list", "provide", "--case=case-p2", "--subject=client-1", "--request_id=pl-1"});
  EXPECT_NE(again.exit_code, 0) << again.out;
  // The client's own history shows the request and the answer.
  testing::CommandResult history = Ledgerctl(
      "client-client-1",
      {"history", "--subject=client-1", "--current", "--out=" + dir_ + "/p2.bundle"});
  ASSERT_TRUE(ok(history));
  testing::CommandResult page =
      Ledgerctl("client-client-1", {"render-history", dir_ + "/p2.bundle", "--key=" + LogKey()});
  EXPECT_TRUE(ok(page));
  EXPECT_TRUE(absl::StrContains(page.out, "Request for the list of sharings")) << page.out;
  EXPECT_TRUE(absl::StrContains(page.out, "List of sharings under your general consent given"))
      << page.out;
  // The sharing the client agreed to is on the page; the accounting section must not say
  // nothing was shared.
  EXPECT_TRUE(absl::StrContains(page.out, "Eastside Clinic")) << page.out;
  EXPECT_FALSE(absl::StrContains(page.out, "not shared with anyone")) << page.out;
}

TEST_F(MtlsTest, NoPlaintextOffLoopbackAndNoSilentPlaintext) {
  // Neither TLS flags nor --insecure_loopback: refuses to start.
  auto none = ServerProcess::Start(kServer, dir_ + "/d1", {"--insecure_loopback=false"});
  ASSERT_FALSE(none.ok());
  EXPECT_TRUE(absl::StrContains(none.status().message(), "--tls_cert, --tls_key and --tls_client_ca"))
      << none.status();
  auto wide = ServerProcess::Start(kServer, dir_ + "/d2",
                                   {"--insecure_loopback", "--listen=0.0.0.0:0"});
  ASSERT_FALSE(wide.ok());
  EXPECT_TRUE(absl::StrContains(wide.status().message(), "want a loopback address"))
      << wide.status();
}

}  // namespace
}  // namespace caseledger
