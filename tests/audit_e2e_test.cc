// The auditor's workflow end to end, through the binaries only: the real
// caseledger_server, `ledgerctl export`, and `ledger_verify --bundle` with the
// auditor's own key. Covers the incremental audit (--save_note / --since),
// the tamper drills on an exported bundle, a rolled-back log and a fork
// signed with the same key.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "proto/ledger.grpc.pb.h"
#include "tests/server_process.h"
#include "tests/subprocess.h"
#include "tests/synthetic_log.h"
#include "tests/test_util.h"

namespace caseledger {
namespace {

using testing::CommandResult;
using testing::RunCommand;
using testing::ServerProcess;

constexpr char kServer[] = "services/api/caseledger_server";
constexpr char kLedgerctl[] = "tools/ledgerctl";
constexpr char kVerify[] = "tools/ledger_verify";

std::string Describe(const CommandResult& r) {
  return absl::StrCat("exit ", r.exit_code, "\n--- stdout:\n", r.out, "--- stderr:\n", r.err);
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// Events [first, first + n) as JSON lines: events 0-2 open three cases, the
// rest write entries into them. `tag` makes the texts (and so the history)
// differ between two ledgers.
std::string Events(int first, int n, const std::string& tag) {
  std::string lines;
  for (int i = first; i < first + n; ++i) {
    std::string body = i < 3 ? R"("case_opened":{"program":"housing","jurisdiction":"US-CA",)"
                               R"("record_class":"RECORD_CLASS_GENERAL","reason":"referral"})"
                             : absl::StrCat(R"("record_entry_written":{"entry_id":"entry-)", i,
                                            R"(","data_category":"housing","text":")", tag, " ", i,
                                            R"(","author_id":"cm-1"})");
    absl::StrAppend(&lines, R"({"event_id":"ev-)", i, R"(","stream_id":"case-)", i % 3,
                    R"(","subject_ids":["client-)", i % 3,
                    R"("],"producer":"audit","occurred_at":"2026-01-01T00:00:00Z",)", body, "}\n");
  }
  return lines;
}

// One running server with its own data directory, started as tools/serve.sh
// starts it on loopback (payloads encrypted under a master key kept beside
// the data directory, record format 2).
class Server {
 public:
  Server(const std::string& dir, const std::vector<std::string>& flags = {}) : dir_(dir) {
    std::vector<std::string> all = {"--master_key_file=" + testing::WriteTestMasterKey(dir),
                                    "--checkpoint_interval=100ms",
                                    "--checkpoint_every_records=1000000"};
    all.insert(all.end(), flags.begin(), flags.end());
    auto s = ServerProcess::Start(kServer, dir + "/data", all);
    EXPECT_TRUE(s.ok()) << s.status();
    if (!s.ok()) return;
    process_ = *std::move(s);
    std::string err = process_->Stderr();
    size_t at = err.find(", key ");
    EXPECT_NE(at, std::string::npos) << err;
    if (at != std::string::npos) key_ = err.substr(at + 6, err.find('\n', at) - at - 6);
  }
  ~Server() {
    if (process_ != nullptr) process_->Stop(SIGTERM);
  }

  bool ok() const { return process_ != nullptr && !key_.empty(); }
  const std::string& key() const { return key_; }
  const std::string& address() const { return process_->address(); }
  std::string key_file() const { return dir_ + "/data/signing.key"; }

  CommandResult Ctl(std::vector<std::string> args) {
    args.insert(args.begin(), {kLedgerctl, "--server=" + process_->address()});
    return RunCommand(args);
  }

  // Appends events and waits until a checkpoint covers all of them.
  void Append(int first, int n, const std::string& tag) {
    std::string file = absl::StrCat(dir_, "/events-", first, ".jsonl");
    WriteFile(file, Events(first, n, tag));
    CommandResult r = Ctl({"append", "--file=" + file});
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
    std::string want = absl::StrCat("{\"size\":", first + n, ",");
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      r = Ctl({"--json", "checkpoint"});
      if (r.exit_code == 0 && absl::StartsWith(r.out, want)) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    FAIL() << "no checkpoint at size " << first + n << ": " << Describe(r);
  }

 private:
  std::string dir_;
  std::string key_;
  std::unique_ptr<ServerProcess> process_;
};

class AuditTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::NewTempDir("audit_e2e"); }

  CommandResult Verify(const std::string& key, std::vector<std::string> extra) {
    std::vector<std::string> argv = {kVerify, "--key=" + key};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return RunCommand(argv);
  }

  std::string dir_;
};

TEST_F(AuditTest, ExportVerifyAndAuditIncrementally) {
  Server server(dir_ + "/a");
  ASSERT_TRUE(server.ok());
  server.Append(0, 30, "note");
  const std::string full = dir_ + "/full.bundle";
  const std::string note = dir_ + "/auditor.note";

  CommandResult r = server.Ctl({"export", "--out=" + full});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_TRUE(absl::StartsWith(r.out, "exported records 0..29 (30 records, ")) << r.out;
  EXPECT_EQ(r.err, "");  // not a terminal: no progress line

  r = Verify(server.key(), {"--bundle=" + full, "--save_note=" + note});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_TRUE(absl::StrContains(r.out, "records:       30 checked")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "OK: the ledger verifies")) << r.out;
  ASSERT_TRUE(absl::StrContains(ReadFile(note), "\n30\n"));

  // More records; the next audit exports and reads only those.
  server.Append(30, 25, "note");
  const std::string inc = dir_ + "/inc.bundle";
  r = server.Ctl({"--json", "export", "--since=" + note, "--out=" + inc});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_TRUE(absl::StartsWith(r.out, R"({"out":")")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, R"("first_seq":30,"end_seq":55,"records":25,)")) << r.out;
  r = Verify(server.key(), {"--bundle=" + inc, "--since=" + note, "--save_note=" + note});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_TRUE(absl::StrContains(r.out, "range:         records 30..54")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "records:       25 checked")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "since:         your checkpoint at size 30 holds")) << r.out;
  ASSERT_TRUE(absl::StrContains(ReadFile(note), "\n55\n"));

  // The whole log again, with the payload openings left out: still verifies.
  const std::string lean = dir_ + "/lean.bundle";
  r = server.Ctl({"export", "--payloads=commitments", "--out=" + lean});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  r = Verify(server.key(), {"--bundle=" + lean, "--since=" + note, "--json"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_TRUE(absl::StartsWith(r.out, R"({"ok":true,"tree_size":55,"records_checked":55,)"))
      << r.out;

  // The first bundle is a true but older log: rolled back, for this auditor.
  r = Verify(server.key(), {"--bundle=" + full, "--since=" + note});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_TRUE(absl::StrContains(r.out,
                                "FAIL at seq 30: the bundle ends at size 30, before your "
                                "checkpoint at size 55: the log was rolled back"))
      << r.out;

  // Usage errors name the flag.
  r = server.Ctl({"export", "--out=" + full, "--from=99"});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_TRUE(absl::StrContains(r.err, "INVALID_ARGUMENT: --from: got 99, want at most 55"))
      << r.err;
  r = server.Ctl({"export", "--out=" + full, "--to=999"});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_TRUE(absl::StrContains(r.err,
                                "OUT_OF_RANGE: --to: got 999, but the log holds only 55 "
                                "records"))
      << r.err;
  EXPECT_TRUE(absl::StrContains(ReadFile(full), "CLBUNDLE")) << "a failed export left --out alone";
  r = server.Ctl({"export"});
  EXPECT_EQ(r.exit_code, 2) << Describe(r);
  EXPECT_TRUE(absl::StrContains(r.err, "--out=FILE is required")) << r.err;
  r = server.Ctl({"export", "--out=x", "--payloads=some"});
  EXPECT_TRUE(absl::StrContains(r.err, "--payloads: got \"some\", want full or commitments"))
      << r.err;

  // ListCheckpoints refuses an empty window, names the field.
  auto channel = grpc::CreateChannel(server.address(), grpc::InsecureChannelCredentials());
  auto stub = v1::LedgerService::NewStub(channel);
  grpc::ClientContext ctx;
  v1::ListCheckpointsRequest req;
  req.set_from_size(10);
  req.set_to_size(5);
  auto reader = stub->ListCheckpoints(&ctx, req);
  v1::Checkpoint cp;
  EXPECT_FALSE(reader->Read(&cp));
  grpc::Status s = reader->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "to_size: got 5, want 0 (the latest) or at least from_size 10");
}

TEST_F(AuditTest, TamperDrillsOnAnExportedBundle) {
  Server server(dir_ + "/a");
  ASSERT_TRUE(server.ok());
  server.Append(0, 40, "note");
  const std::string path = dir_ + "/log.bundle";
  CommandResult r = server.Ctl({"export", "--out=" + path});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  const std::string good = ReadFile(path);
  ASSERT_EQ(Verify(server.key(), {"--bundle=" + path}).exit_code, 0);

  using testing::NthBundleEntry;
  auto check = [&](const std::string& what, const std::string& bad, const std::string& want) {
    const std::string p = dir_ + "/bad.bundle";
    WriteFile(p, bad);
    // --keep_going: the server signs checkpoints on a timer, so one may sit
    // next to the damaged record and be reported first.
    CommandResult v = Verify(server.key(), {"--bundle=" + p, "--keep_going"});
    EXPECT_EQ(v.exit_code, 1) << what << "\n" << Describe(v);
    EXPECT_TRUE(absl::StrContains(v.out, want)) << what << ": want \"" << want << "\"\n" << v.out;
  };

  testing::BundleEntryAt rec5 = NthBundleEntry(good, testing::kRecordEntry, 5);
  ASSERT_GT(rec5.size, 0u);
  std::string bad = good;
  // The last byte of record 5's leaf: its payload commitment. (A flip that
  // leaves the record well formed and consistent, say in its event id, is
  // caught one record later: "record 6: prev_hash …, want … (leaf hash of
  // record 5)", and by the next checkpoint.)
  size_t leaf5 = testing::BigEndianAt(good, rec5.offset + 14, 4);
  bad[rec5.offset + 18 + leaf5 - 1] ^= 0x04;
  check("flip a record", bad, "FAIL at seq 5: record 5: payload commitment: ");
  bad = good;
  // The first byte of record 5's stream tag (record format 2, ledger/FORMAT.md):
  // the record now belongs to a stream with no version 0.
  const size_t tag5 = rec5.offset + 18 + 1 + 8 + 32 + 8;
  bad[tag5] ^= 0x01;
  check("flip a record's stream tag", bad,
        absl::StrCat("FAIL at seq 5: record 5: stream tag ",
                     absl::BytesToHexString(bad.substr(tag5, 4)), "… version 1, want 0"));

  testing::BundleEntryAt rec8 = NthBundleEntry(good, testing::kRecordEntry, 8);
  bad = good;
  size_t leaf_len = testing::BigEndianAt(good, rec8.offset + 14, 4);
  bad[rec8.offset + 18 + leaf_len + 4 + 20] ^= 0x01;  // inside record 8's payload
  check("flip a payload", bad, "FAIL at seq 8: record 8: ");

  testing::BundleEntryAt cp = NthBundleEntry(good, testing::kCheckpointEntry, 0);
  ASSERT_GT(cp.size, 0u);
  uint64_t cp_size = testing::BigEndianAt(good, cp.offset + 5, 8);
  bad = good;
  bad[cp.offset + cp.size - 8] ^= 0x01;  // inside the signature line
  check("flip a checkpoint", bad,
        absl::StrCat("FAIL at seq ", cp_size - 1, ": checkpoint at size ", cp_size, ": "));

  testing::BundleEntryAt rec12 = NthBundleEntry(good, testing::kRecordEntry, 12);
  bad = good;
  bad.erase(rec12.offset, rec12.size);
  check("delete a record", bad, "FAIL at seq 12: record 12 is missing (next stored record is 13)");

  testing::BundleEntryAt rec20 = NthBundleEntry(good, testing::kRecordEntry, 20);
  testing::BundleEntryAt rec21 = NthBundleEntry(good, testing::kRecordEntry, 21);
  // Whatever lies between them (a checkpoint) stays where it is.
  bad = good.substr(0, rec20.offset) + good.substr(rec21.offset, rec21.size) +
        good.substr(rec20.offset + rec20.size, rec21.offset - rec20.offset - rec20.size) +
        good.substr(rec20.offset, rec20.size) + good.substr(rec21.offset + rec21.size);
  check("swap two records", bad, "FAIL at seq 20: record 20 is missing");

  testing::BundleEntryAt rec33 = NthBundleEntry(good, testing::kRecordEntry, 33);
  check("truncate", good.substr(0, rec33.offset + 11), "FAIL at seq 33: bundle truncated: ");
}

TEST_F(AuditTest, ForkSignedWithTheSameKeyIsCaughtByTheAuditorsNote) {
  const std::string note = dir_ + "/auditor.note";
  std::string key;
  std::string key_file;
  {
    Server a(dir_ + "/a");
    ASSERT_TRUE(a.ok());
    a.Append(0, 20, "original");
    CommandResult r = a.Ctl({"export", "--out=" + dir_ + "/a.bundle"});
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
    r = Verify(a.key(), {"--bundle=" + dir_ + "/a.bundle", "--save_note=" + note});
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
    key = a.key();
    key_file = a.key_file();
  }
  // The operator rebuilds another history from scratch with the same key.
  Server b(dir_ + "/b", {"--signing_key=" + key_file});
  ASSERT_TRUE(b.ok());
  ASSERT_EQ(b.key(), key);
  b.Append(0, 30, "rewritten");
  CommandResult r = b.Ctl({"export", "--out=" + dir_ + "/b.bundle"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  // Valid on its own: every signature is genuine.
  r = Verify(key, {"--bundle=" + dir_ + "/b.bundle"});
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  // Not to an auditor who verified the original at size 20.
  r = Verify(key, {"--bundle=" + dir_ + "/b.bundle", "--since=" + note});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_TRUE(absl::StrContains(r.out,
                                "FAIL at seq 19: the bundle's tree at your checkpoint's "
                                "size 20 has root "))
      << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "the log was forked or rewritten")) << r.out;
  // The same with a range export starting at the auditor's size.
  r = b.Ctl({"export", "--since=" + note, "--out=" + dir_ + "/b-range.bundle"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  r = Verify(key, {"--bundle=" + dir_ + "/b-range.bundle", "--since=" + note});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_TRUE(absl::StrContains(r.out, "the log was forked or rewritten")) << r.out;
}

}  // namespace
}  // namespace caseledger
