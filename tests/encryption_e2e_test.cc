// Payload encryption through the real server binary: --master_key_file, reads
// of sealed records, crypto-shredding by a records_disposed event proven on
// the data directory's raw bytes, restart after erasure, ledger_verify on the
// erased ledger, and master key rotation through the RPC.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "proto/cases.grpc.pb.h"
#include "proto/keys.grpc.pb.h"
#include "proto/access.pb.h"
#include "proto/ledger.grpc.pb.h"
#include "tests/server_process.h"
#include "tests/subprocess.h"
#include "tests/test_events.h"
#include "tests/test_util.h"

namespace caseledger {
namespace {

using testing::ServerProcess;

constexpr char kServer[] = "services/api/caseledger_server";
constexpr char kVerify[] = "tools/ledger_verify";
constexpr char kLedgerctl[] = "tools/ledgerctl";
constexpr char kMasterHex[] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

v1::AppendRequest Base(const std::string& id, const std::string& stream, int64_t at) {
  return testing::EventRequest(id, stream, "client-" + stream, "e2e", at);
}

std::vector<v1::AppendRequest> CaseStory(const std::string& stream, const std::string& marker) {
  std::vector<v1::AppendRequest> out;
  out.push_back(testing::OpenCaseRequest("open-" + stream, stream, "client-" + stream, "e2e"));
  for (int i = 0; i < 3; ++i) {
    v1::AppendRequest note = Base(absl::StrCat("note-", stream, "-", i), stream, 1767225100 + i);
    auto* w = note.mutable_event()->mutable_record_entry_written();
    w->set_entry_id(absl::StrCat("entry-", stream, "-", i));
    w->set_data_category("housing");
    w->set_text(absl::StrCat(marker, "-", i));
    out.push_back(note);
  }
  v1::AppendRequest close = Base("close-" + stream, stream, 1767226000);
  close.mutable_event()->mutable_case_closed()->set_reason("goals met");
  out.push_back(close);
  return out;
}

// A disclosure in `stream` whose recipient is named `marker`, to be
// appended before the case closes.
v1::AppendRequest Disclosure(const std::string& stream, const std::string& marker) {
  v1::AppendRequest r = Base("disclosure-" + stream, stream, 1767225500);
  auto* d = r.mutable_event()->mutable_disclosure_made();
  d->set_disclosure_id("d-" + stream);
  d->set_client_id("client-" + stream);
  d->mutable_recipient()->set_recipient_id("court");
  d->mutable_recipient()->set_name(marker);
  d->set_purpose("subpoena");
  d->add_data_categories("housing");
  d->set_description("attendance dates");
  d->set_disclosed_by("cm-1");
  d->set_minimum_necessary("dates only");
  d->set_legal_basis(v1::LEGAL_BASIS_REQUIRED_BY_LAW);
  d->set_legal_citation("Cal. Evid. Code 1560");
  return r;
}

using testing::FilesContaining;

class EncryptionE2ETest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::NewTempDir("crypto-e2e");
    // The key lives outside the data directory, mode 0600.
    key_file_ = testing::NewTempDir("crypto-e2e-key") + "/master.key";
    std::ofstream(key_file_) << kMasterHex << "\n";
    chmod(key_file_.c_str(), 0600);
  }

  absl::Status Start(std::vector<std::string> flags) {
    flags.push_back("--checkpoint_interval=1h");
    auto s = ServerProcess::Start(kServer, dir_, flags);
    if (!s.ok()) return s.status();
    server_ = *std::move(s);
    auto channel = grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials());
    stub_ = v1::LedgerService::NewStub(channel);
    keys_ = v1::KeyAdminService::NewStub(channel);
    cases_ = v1::CaseService::NewStub(channel);
    disclosures_ = v1::DisclosureService::NewStub(channel);
    return absl::OkStatus();
  }

  void Append(const v1::AppendRequest& req) {
    grpc::ClientContext ctx;
    v1::AppendResponse resp;
    grpc::Status s = stub_->Append(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << req.event().event_id() << ": " << s.error_message();
  }

  // case-A (client-case-A, texts ERASED-SUBJECT-i) and case-B
  // (client-case-B, OTHER-SUBJECT-i), each with a disclosure to
  // RECIPIENT-OF-<case> before it closes.
  void AppendTwoClientsWithDisclosures() {
    for (const std::string& stream : {"case-A", "case-B"}) {
      std::vector<v1::AppendRequest> story =
          CaseStory(stream, stream == std::string("case-A") ? "ERASED-SUBJECT" : "OTHER-SUBJECT");
      story.insert(story.end() - 1, Disclosure(stream, "RECIPIENT-OF-" + stream));
      for (const auto& r : story) Append(r);
    }
  }

  std::vector<v1::Record> ReadLog() {
    grpc::ClientContext ctx;
    auto reader = stub_->ReadLog(&ctx, v1::ReadLogRequest());
    std::vector<v1::Record> out;
    v1::Record r;
    while (reader->Read(&r)) out.push_back(r);
    grpc::Status s = reader->Finish();
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out;
  }

  std::string dir_;
  std::string key_file_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<v1::LedgerService::Stub> stub_;
  std::unique_ptr<v1::KeyAdminService::Stub> keys_;
  std::unique_ptr<v1::CaseService::Stub> cases_;
  std::unique_ptr<v1::DisclosureService::Stub> disclosures_;

  grpc::Status RotateMasterKey(const std::string& path, v1::RotateMasterKeyResponse* resp) {
    grpc::ClientContext ctx;
    v1::RotateMasterKeyRequest req;
    req.set_new_master_key_file(path);
    return keys_->RotateMasterKey(&ctx, req, resp);
  }

  grpc::Status EraseSubject(const std::string& subject, uint32_t* destroyed,
                            uint64_t* seq = nullptr,
                            const std::string& authority = "gdpr-art17-request-1") {
    grpc::ClientContext ctx;
    v1::EraseSubjectRequest req;
    req.set_subject_id(subject);
    req.set_authority(authority);
    v1::EraseSubjectResponse resp;
    grpc::Status s = keys_->EraseSubject(&ctx, req, &resp);
    *destroyed = resp.keys_destroyed();
    if (seq != nullptr) *seq = resp.erasure_seq();
    return s;
  }

  // The read models as the services show them (JSON), once they reflect
  // every record appended so far.
  std::string CaseJson(const std::string& case_id) {
    grpc::ClientContext ctx;
    v1::GetCaseRequest req;
    req.set_case_id(case_id);
    req.set_min_seq(ReadLog().size());
    v1::CaseView view;
    grpc::Status s = cases_->GetCase(&ctx, req, &view);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return view.state_json();
  }
  std::string AccountingJson(const std::string& client_id) {
    grpc::ClientContext ctx;
    v1::GetAccountingRequest req;
    req.set_client_id(client_id);
    req.set_min_seq(ReadLog().size());
    req.mutable_window_start()->set_seconds(1700000000);
    req.mutable_window_end()->set_seconds(1800000000);
    v1::Accounting acct;
    grpc::Status s = disclosures_->GetAccounting(&ctx, req, &acct);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return acct.json();
  }
};

TEST_F(EncryptionE2ETest, DisposalShredsTheCaseAndTheLedgerStillVerifies) {
  ASSERT_TRUE(Start({"--master_key_file=" + key_file_}).ok());
  EXPECT_TRUE(absl::StrContains(server_->Stderr(), "payloads are encrypted at rest"))
      << server_->Stderr();
  EXPECT_FALSE(absl::StrContains(server_->Stderr(), kMasterHex));
  for (const auto& r : CaseStory("case-A", "SHRED-MARKER")) Append(r);
  for (const auto& r : CaseStory("case-B", "KEEP-MARKER")) Append(r);

  std::vector<v1::Record> before = ReadLog();
  ASSERT_EQ(before.size(), 10u);
  EXPECT_EQ(before[1].event().record_entry_written().text(), "SHRED-MARKER-0");
  EXPECT_EQ(before[1].withheld_reason(), "");

  EXPECT_TRUE(absl::StrContains(CaseJson("case-A"), "US-CA"));

  v1::AppendRequest dispose = Base("dispose-case-A", "case-A", 1767227000);
  dispose.mutable_event()->mutable_records_disposed()->set_method("crypto-shred");
  dispose.mutable_event()->mutable_records_disposed()->set_authority("retention-7y");
  Append(dispose);

  std::vector<v1::Record> after = ReadLog();  // no error for erased records
  ASSERT_EQ(after.size(), 11u);
  for (const v1::Record& r : after) {
    bool erased = r.stream_id() == "case-A" && r.event_id() != "dispose-case-A";
    EXPECT_EQ(r.withheld_reason(), erased ? "erased" : "") << r.event_id();
    EXPECT_EQ(r.withheld_fields_size() > 0, erased) << r.event_id();
    EXPECT_EQ(r.leaf(), r.seq() < 10 ? before[r.seq()].leaf() : r.leaf());
  }
  EXPECT_EQ(after[1].event().record_entry_written().text(), "");
  EXPECT_EQ(after[6].event().record_entry_written().text(), "KEEP-MARKER-0");
  EXPECT_EQ(after[10].event().records_disposed().authority(), "retention-7y");
  // The read models were rebuilt without what the disposed records said.
  std::string disposed;
  for (int i = 0; i < 500; ++i) {
    disposed = CaseJson("case-A");
    if (!absl::StrContains(disposed, "US-CA")) break;
    absl::SleepFor(absl::Milliseconds(20));  // the projector reprojects after the chunk
  }
  EXPECT_FALSE(absl::StrContains(disposed, "US-CA")) << disposed;
  EXPECT_TRUE(absl::StrContains(CaseJson("case-B"), "US-CA"));

  // Restart: erased stays erased, and the policy and read models rebuild.
  ASSERT_EQ(server_->Stop(SIGTERM), 0);
  ASSERT_TRUE(Start({"--master_key_file=" + key_file_}).ok()) << server_->Stderr();
  std::vector<v1::Record> restarted = ReadLog();
  ASSERT_EQ(restarted.size(), 11u);
  EXPECT_EQ(restarted[2].withheld_reason(), "erased");
  EXPECT_EQ(restarted[7].event().record_entry_written().text(), "KEEP-MARKER-1");
  // The disposed case still refuses new entries (its state was rebuilt).
  {
    v1::AppendRequest late = Base("late-note", "case-A", 1767228000);
    late.mutable_event()->mutable_record_entry_written()->set_entry_id("entry-late");
    late.mutable_event()->mutable_record_entry_written()->set_data_category("housing");
    late.mutable_event()->mutable_record_entry_written()->set_text("late");
    grpc::ClientContext ctx;
    v1::AppendResponse resp;
    grpc::Status s = stub_->Append(&ctx, late, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
    EXPECT_TRUE(absl::StrContains(s.error_message(), "disposed")) << s.error_message();
  }
  grpc::ClientContext ctx;
  v1::PublicKey key;
  ASSERT_TRUE(stub_->GetPublicKey(&ctx, v1::GetPublicKeyRequest(), &key).ok());
  ASSERT_EQ(server_->Stop(SIGTERM), 0);

  // Raw bytes of every file under the data directory (ledger WAL, SST,
  // MANIFEST, projections): no erased plaintext; the kept case's plaintext
  // is not there either, since it is encrypted.
  EXPECT_EQ(FilesContaining(dir_, "SHRED-MARKER"), std::vector<std::string>{});
  EXPECT_EQ(FilesContaining(dir_, "KEEP-MARKER"), std::vector<std::string>{});

  testing::CommandResult v = testing::RunCommand(
      {kVerify, "--data_dir=" + dir_, "--key=" + key.verifier_key(), "--origin=" + key.origin()});
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  EXPECT_TRUE(absl::StrContains(v.out, "OK: the ledger verifies")) << v.out;
}

TEST_F(EncryptionE2ETest, EncryptedDirectoryNeedsItsMasterKey) {
  ASSERT_TRUE(Start({"--master_key_file=" + key_file_}).ok());
  for (const auto& r : CaseStory("case-A", "M")) Append(r);
  ASSERT_EQ(server_->Stop(SIGTERM), 0);

  absl::Status no_key = Start({});
  EXPECT_EQ(no_key.code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(no_key.message(),
                                "holds data keys wrapped under master key id 4eb8f8345d4e9985"))
      << no_key;

  std::string other = testing::NewTempDir("crypto-e2e-other") + "/other.key";
  std::ofstream(other) << std::string(64, 'f') << "\n";
  chmod(other.c_str(), 0600);
  absl::Status wrong = Start({"--master_key_file=" + other});
  EXPECT_TRUE(absl::StrContains(wrong.message(), "master key: got key id ")) << wrong;

  chmod(other.c_str(), 0644);
  absl::Status readable = Start({"--master_key_file=" + other});
  EXPECT_TRUE(absl::StrContains(readable.message(), "lets others read it; want 600 or 400"))
      << readable;
}

TEST_F(EncryptionE2ETest, WithoutAKeyThePlaintextModeSaysSo) {
  ASSERT_TRUE(Start({}).ok());
  EXPECT_TRUE(absl::StrContains(server_->Stderr(), "payloads are NOT encrypted at rest"))
      << server_->Stderr();
  uint32_t destroyed = 0;
  grpc::Status s = EraseSubject("client-case-A", &destroyed);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(absl::StartsWith(s.error_message(), "payload encryption is off"))
      << s.error_message();
}

TEST_F(EncryptionE2ETest, EraseSubjectRpcShredsTheSubjectWhileServing) {
  ASSERT_TRUE(Start({"--master_key_file=" + key_file_}).ok());
  AppendTwoClientsWithDisclosures();
  // Control: the read models show plaintext derived from the payloads; the
  // projection store keeps it sealed (ENCRYPTION.md "Read models").
  EXPECT_TRUE(absl::StrContains(AccountingJson("client-case-A"), "RECIPIENT-OF-case-A"));
  EXPECT_TRUE(absl::StrContains(CaseJson("case-A"), "US-CA"));
  EXPECT_EQ(FilesContaining(dir_ + "/projections", "RECIPIENT-OF-"), std::vector<std::string>{});

  uint32_t destroyed = 0;
  grpc::Status bad = EraseSubject("", &destroyed);
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(bad.error_message(), "subject_id: must not be empty");
  bad = EraseSubject(std::string("client\x01", 7), &destroyed);
  EXPECT_EQ(bad.error_message(), "subject_id: contains control byte 0x01");
  bad = EraseSubject("client-case-A", &destroyed, nullptr, "");
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(bad.error_message(), "authority: must not be empty");
  bad = EraseSubject("client-case-A", &destroyed, nullptr, std::string(513, 'a'));
  EXPECT_EQ(bad.error_message(), "authority: got 513 bytes, want at most 512");
  const size_t records_before = ReadLog().size();  // the bad calls stored nothing

  uint64_t erasure_seq = 0;
  grpc::Status s = EraseSubject("client-case-A", &destroyed, &erasure_seq);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(destroyed, 1u);
  EXPECT_EQ(erasure_seq, records_before);
  std::vector<v1::Record> log = ReadLog();
  ASSERT_EQ(log.size(), records_before + 1);
  for (const v1::Record& r : log) {
    EXPECT_EQ(r.withheld_reason(), r.stream_id() == "case-A" ? "erased" : "") << r.event_id();
  }
  // The erasure is itself a record, unsealed, in the subject's history.
  const v1::Record& erasure = log[erasure_seq];
  EXPECT_EQ(erasure.stream_id(), "@keys");
  ASSERT_EQ(erasure.event().subject_ids_size(), 1);
  // Record format 2 (ledger/BLINDING.md): the erasure destroyed the salt,
  // so nothing served names the subject any more, not even its own erasure
  // record; the other client is still named.
  EXPECT_TRUE(absl::StartsWith(erasure.event().subject_ids(0), "unlinked-subject:"))
      << erasure.event().subject_ids(0);
  std::string served;
  for (const v1::Record& r : log) served += r.SerializeAsString();
  EXPECT_FALSE(absl::StrContains(served, "client-case-A"));
  EXPECT_TRUE(absl::StrContains(served, "client-case-B"));
  EXPECT_EQ(erasure.event().subject_erased().authority(), "gdpr-art17-request-1");
  EXPECT_EQ(erasure.event().subject_erased().erased_by(), "local/local");

  // The read models no longer show what the erased records said; the other
  // client's are untouched.
  EXPECT_FALSE(absl::StrContains(AccountingJson("client-case-A"), "RECIPIENT-OF-case-A"));
  EXPECT_FALSE(absl::StrContains(CaseJson("case-A"), "US-CA"));
  EXPECT_TRUE(absl::StrContains(AccountingJson("client-case-B"), "RECIPIENT-OF-case-B"));
  EXPECT_TRUE(absl::StrContains(CaseJson("case-B"), "US-CA"));
  EXPECT_EQ(FilesContaining(dir_ + "/projections", "RECIPIENT-OF-case-A"),
            std::vector<std::string>{});

  ASSERT_TRUE(EraseSubject("client-case-A", &destroyed).ok());
  EXPECT_EQ(destroyed, 0u);  // idempotent (each call is recorded)
  // New events of the subject get a new key and stay readable.
  v1::AppendRequest access = Base("access-after-erasure", "case-A", 1767229000);
  auto* a = access.mutable_event()->mutable_record_accessed();
  a->set_accessor_id("auditor-1");
  a->set_accessor_role("auditor");
  a->add_seqs(1);
  a->set_purpose("ERASURE-CHECK");
  Append(access);
  EXPECT_EQ(ReadLog().back().event().record_accessed().purpose(), "ERASURE-CHECK");

  grpc::ClientContext ctx;
  v1::PublicKey key;
  ASSERT_TRUE(stub_->GetPublicKey(&ctx, v1::GetPublicKeyRequest(), &key).ok());
  ASSERT_EQ(server_->Stop(SIGTERM), 0);
  EXPECT_EQ(FilesContaining(dir_, "ERASED-SUBJECT"), std::vector<std::string>{});
  EXPECT_EQ(FilesContaining(dir_, "RECIPIENT-OF-case-A"), std::vector<std::string>{});
  testing::CommandResult v = testing::RunCommand(
      {kVerify, "--data_dir=" + dir_, "--key=" + key.verifier_key(), "--origin=" + key.origin()});
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
}

// A client's history on an encrypted server, as the client gets and checks
// it with ledgerctl: before an erasure, after it (the erased entries with
// their reason), and after a restart; never another client's bundle.
TEST_F(EncryptionE2ETest, HistoryOfAnEncryptedAndErasedClientVerifiesAndSaysWhy) {
  ASSERT_TRUE(Start({"--master_key_file=" + key_file_}).ok());
  AppendTwoClientsWithDisclosures();
  grpc::ClientContext key_ctx;
  v1::PublicKey key;
  ASSERT_TRUE(stub_->GetPublicKey(&key_ctx, v1::GetPublicKeyRequest(), &key).ok());
  const std::string out = testing::NewTempDir("crypto-e2e-history");
  auto ledgerctl = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {kLedgerctl, "--server=" + server_->address()});
    return testing::RunCommand(args);
  };
  auto history = [&](const std::string& subject, const std::string& file) {
    testing::CommandResult r =
        ledgerctl({"history", "--subject=" + subject, "--out=" + file, "--current"});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    r = ledgerctl({"verify-history", file, "--key=" + key.verifier_key(), "--subject=" + subject});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    return r.out;
  };

  // Before the erasure: the client's own entries and disclosure, opened
  // from the sealed payloads.
  std::string checks = history("client-case-A", out + "/a.bundle");
  EXPECT_TRUE(absl::StrContains(checks, "accounting OK: the 1 disclosures")) << checks;
  testing::CommandResult page = ledgerctl({"render-history", out + "/a.bundle",
                                           "--key=" + key.verifier_key(),
                                           "--subject=client-case-A"});
  ASSERT_EQ(page.exit_code, 0) << page.err;
  EXPECT_TRUE(absl::StrContains(page.out, "ERASED-SUBJECT-0")) << page.out;
  EXPECT_TRUE(absl::StrContains(page.out, "RECIPIENT-OF-case-A")) << page.out;
  // Another client's bundle is refused for this client.
  history("client-case-B", out + "/b.bundle");
  testing::CommandResult wrong =
      ledgerctl({"verify-history", out + "/b.bundle", "--key=" + key.verifier_key(),
                 "--subject=client-case-A"});
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(wrong.err, "not the history of \"client-case-A\"")) << wrong.err;

  // After the erasure (record format 2, ledger/BLINDING.md): the salt is gone,
  // so nothing links the client to its records any more: the server finds
  // no history, proves the id absent, and that empty bundle verifies. The
  // bundle saved before the erasure still verifies offline.
  uint32_t destroyed = 0;
  uint64_t erasure_seq = 0;
  ASSERT_TRUE(EraseSubject("client-case-A", &destroyed, &erasure_seq).ok());
  history("client-case-A", out + "/a2.bundle");
  std::ifstream bundle_file(out + "/a2.bundle", std::ios::binary);
  v1::HistoryBundle bundle;
  ASSERT_TRUE(bundle.ParseFromIstream(&bundle_file));
  EXPECT_EQ(bundle.records_size(), 0);
  EXPECT_TRUE(bundle.subject_salt().empty());
  EXPECT_FALSE(absl::StrContains(bundle.SerializeAsString(), "ERASED-SUBJECT"));
  testing::CommandResult old_bundle =
      ledgerctl({"verify-history", out + "/a.bundle", "--key=" + key.verifier_key(),
                 "--subject=client-case-A"});
  EXPECT_EQ(old_bundle.exit_code, 0) << old_bundle.out << old_bundle.err;
  // The other client's history is untouched.
  history("client-case-B", out + "/b2.bundle");

  // After a restart, the same.
  ASSERT_EQ(server_->Stop(SIGTERM), 0);
  ASSERT_TRUE(Start({"--master_key_file=" + key_file_}).ok());
  history("client-case-A", out + "/a3.bundle");
  std::ifstream after_restart(out + "/a3.bundle", std::ios::binary);
  ASSERT_TRUE(bundle.ParseFromIstream(&after_restart));
  EXPECT_EQ(bundle.records_size(), 0);
  history("client-case-B", out + "/b3.bundle");
}

// Record format 2 on the default server (ledger/BLINDING.md "Who learns
// what"): an export holder in commitments-only mode finds no client, case,
// event or producer id in the bundle's bytes, and the bundle verifies; after
// an erasure and a restart no file of the data directory names the erased
// client. The control runs the same export with --record_format=1, where the
// same search finds the ids.
TEST_F(EncryptionE2ETest, BlindedIdsStayOutOfExportsAndOutOfTheDataDirectoryAfterErasure) {
  const std::vector<std::string> ids = {"client-case-A", "client-case-B", "case-A",
                                        "case-B",        "open-case-A",   "e2e"};
  auto export_bytes = [&](const std::string& file) {
    testing::CommandResult r =
        testing::RunCommand({kLedgerctl, "--server=" + server_->address(), "export",
                             "--payloads=commitments", "--out=" + file});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    return testing::ReadFileOrEmpty(file);
  };
  // Control: format 1 shows every id in clear.
  ASSERT_TRUE(Start({"--master_key_file=" + key_file_, "--record_format=1"}).ok());
  AppendTwoClientsWithDisclosures();
  const std::string out = testing::NewTempDir("crypto-e2e-export");
  std::string clear = export_bytes(out + "/clear.bundle");
  for (const std::string& id : ids) EXPECT_TRUE(absl::StrContains(clear, id)) << id;
  ASSERT_EQ(server_->Stop(SIGTERM), 0);

  dir_ = testing::NewTempDir("crypto-e2e-blind");
  ASSERT_TRUE(Start({"--master_key_file=" + key_file_}).ok());
  AppendTwoClientsWithDisclosures();
  grpc::ClientContext key_ctx;
  v1::PublicKey key;
  ASSERT_TRUE(stub_->GetPublicKey(&key_ctx, v1::GetPublicKeyRequest(), &key).ok());
  // The server itself opens the ids for those who may read them.
  std::vector<v1::Record> log = ReadLog();
  ASSERT_FALSE(log.empty());
  EXPECT_EQ(log[0].stream_id(), "case-A");
  EXPECT_EQ(log[0].event_id(), "open-case-A");
  std::string blind = export_bytes(out + "/blind.bundle");
  ASSERT_FALSE(blind.empty());
  for (const std::string& id : ids) EXPECT_FALSE(absl::StrContains(blind, id)) << id;
  testing::CommandResult v = testing::RunCommand(
      {kVerify, "--key=" + key.verifier_key(), "--bundle=" + out + "/blind.bundle"});
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;

  uint32_t destroyed = 0;
  ASSERT_TRUE(EraseSubject("client-case-A", &destroyed).ok());
  // Restarted twice: the first open rewrites RocksDB's MANIFEST, which named
  // the purged key-table files' boundary keys.
  ASSERT_EQ(server_->Stop(SIGTERM), 0);
  ASSERT_TRUE(Start({"--master_key_file=" + key_file_}).ok());
  log = ReadLog();
  std::string served;
  for (const v1::Record& r : log) served += r.SerializeAsString();
  EXPECT_FALSE(absl::StrContains(served, "client-case-A"));
  EXPECT_TRUE(absl::StrContains(served, "client-case-B"));
  ASSERT_EQ(server_->Stop(SIGTERM), 0);
  EXPECT_EQ(FilesContaining(dir_ + "/ledger", "client-case-A"), std::vector<std::string>{});
  EXPECT_FALSE(FilesContaining(dir_ + "/ledger", "client-case-B").empty());
  v = testing::RunCommand({kVerify, "--data_dir=" + dir_, "--key=" + key.verifier_key(),
                           "--origin=" + key.origin()});
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
}

TEST_F(EncryptionE2ETest, RotateMasterKeyRpcThenRestartWithTheNewKey) {
  ASSERT_TRUE(Start({"--master_key_file=" + key_file_}).ok());
  for (const auto& r : CaseStory("case-A", "BEFORE-ROTATION")) Append(r);

  v1::RotateMasterKeyResponse resp;
  grpc::Status bad = RotateMasterKey("", &resp);
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StartsWith(bad.error_message(), "new_master_key_file: must not be empty"))
      << bad.error_message();
  bad = RotateMasterKey(key_file_, &resp);
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StrContains(bad.error_message(), "got the current master key"))
      << bad.error_message();

  const std::string new_key = testing::NewTempDir("crypto-e2e-new-key") + "/new.key";
  const std::string new_hex(64, 'e');
  std::ofstream(new_key) << new_hex << "\n";
  chmod(new_key.c_str(), 0600);
  grpc::Status s = RotateMasterKey(new_key, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.old_master_key_id(), "4eb8f8345d4e9985");
  EXPECT_EQ(resp.new_master_key_id().size(), 16u);
  EXPECT_NE(resp.new_master_key_id(), resp.old_master_key_id());
  // client-case-A's data key in case-A, and the blinding salts of
  // client-case-A and case-A (ENCRYPTION.md "Blinding salts").
  EXPECT_EQ(resp.keys_rewrapped(), 3u);
  // The rotation is recorded after the story's five records, ids only.
  EXPECT_EQ(resp.rotation_seq(), 5u);

  // Serving goes on under the new key: old records read, new ones seal.
  for (const auto& r : CaseStory("case-B", "AFTER-ROTATION")) Append(r);
  auto expect_texts = [&resp](const std::vector<v1::Record>& log) {
    ASSERT_EQ(log.size(), 11u);
    EXPECT_EQ(log[1].event().record_entry_written().text(), "BEFORE-ROTATION-0");
    EXPECT_EQ(log[5].stream_id(), "@keys");
    EXPECT_EQ(log[5].event().master_key_rotated().rotated_by(), "local/local");
    EXPECT_EQ(log[5].event().master_key_rotated().old_master_key_id(), "4eb8f8345d4e9985");
    EXPECT_EQ(log[5].event().master_key_rotated().new_master_key_id(), resp.new_master_key_id());
    EXPECT_EQ(log[5].event().master_key_rotated().keys_rewrapped(), 3u);
    EXPECT_EQ(log[9].event().record_entry_written().text(), "AFTER-ROTATION-2");
    for (const v1::Record& r : log) EXPECT_EQ(r.withheld_reason(), "") << r.event_id();
  };
  expect_texts(ReadLog());
  ASSERT_EQ(server_->Stop(SIGTERM), 0);
  const std::string log = server_->Stderr();
  EXPECT_TRUE(absl::StrContains(
      log,
      absl::StrCat("master key rotated from id 4eb8f8345d4e9985 to id ", resp.new_master_key_id(),
                   " (3 data keys re-wrapped); restart with "
                   "--master_key_file=",
                   new_key)))
      << log;
  EXPECT_FALSE(absl::StrContains(log, new_hex));

  // The old key no longer opens the directory; the new one does.
  absl::Status old_key = Start({"--master_key_file=" + key_file_});
  EXPECT_TRUE(absl::StrContains(old_key.message(),
                                absl::StrCat("master key: got key id 4eb8f8345d4e9985, but the "
                                             "data keys are wrapped under key id ",
                                             resp.new_master_key_id())))
      << old_key;
  ASSERT_TRUE(Start({"--master_key_file=" + new_key}).ok()) << server_->Stderr();
  EXPECT_TRUE(absl::StrContains(server_->Stderr(), "master key id " + resp.new_master_key_id()))
      << server_->Stderr();
  expect_texts(ReadLog());
  ASSERT_EQ(server_->Stop(SIGTERM), 0);
}

}  // namespace
}  // namespace caseledger
