// End to end for the CLI: the real caseledger_server on a loopback port with
// a temporary data directory, driven only through the ledgerctl binary as a
// person or a script would (fork/exec, stdout and stderr captured apart).
#include <fcntl.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "ledger/checkpoint.h"
#include "ledger/signer.h"
#include "proto/access.pb.h"
#include "proto/ledger.pb.h"
#include "tests/server_process.h"
#include "tests/test_util.h"

namespace caseledger {
namespace {

using testing::ServerProcess;

constexpr char kServer[] = "services/api/caseledger_server";
constexpr char kLedgerctl[] = "tools/ledgerctl";

struct Result {
  int exit_code = -1;  // -1 if it did not exit normally
  std::string out;
  std::string err;
};

// Runs ledgerctl with `args`, stdin from `stdin_path` (default /dev/null).
Result RunLedgerctl(const std::vector<std::string>& args,
                    const std::string& stdin_path = "/dev/null") {
  int out_fds[2], err_fds[2];
  EXPECT_EQ(pipe(out_fds), 0);
  EXPECT_EQ(pipe(err_fds), 0);
  pid_t pid = fork();
  if (pid == 0) {
    int in = open(stdin_path.c_str(), O_RDONLY);
    dup2(in, STDIN_FILENO);
    dup2(out_fds[1], STDOUT_FILENO);
    dup2(err_fds[1], STDERR_FILENO);
    for (int fd : {in, out_fds[0], out_fds[1], err_fds[0], err_fds[1]}) close(fd);
    std::vector<std::string> argv_s = {kLedgerctl};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(kLedgerctl, argv.data());
    _exit(127);
  }
  close(out_fds[1]);
  close(err_fds[1]);
  Result r;
  pollfd fds[2] = {{out_fds[0], POLLIN, 0}, {err_fds[0], POLLIN, 0}};
  std::string* sinks[2] = {&r.out, &r.err};
  int open_fds = 2;
  char buf[1 << 16];
  while (open_fds > 0) {
    if (poll(fds, 2, 30000) <= 0) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      ssize_t n = read(fds[i].fd, buf, sizeof(buf));
      if (n > 0) {
        sinks[i]->append(buf, n);
      } else {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (const pollfd& p : fds) {
    if (p.fd >= 0) close(p.fd);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  return r;
}

std::string Describe(const Result& r) {
  return absl::StrCat("exit ", r.exit_code, "\n--- stdout:\n", r.out, "--- stderr:\n", r.err);
}

// Event `n` of case-(n % 5); events 0-4 open the five cases.
std::string EventJson(const std::string& id, int n) {
  std::string body = n < 5 ? R"("case_opened":{"program":"housing","jurisdiction":"US-CA",)"
                             R"("record_class":"RECORD_CLASS_GENERAL","reason":"referral"})"
                           : absl::StrCat(R"("record_entry_written":{"entry_id":"entry-)", id,
                                          R"(","data_category":"housing","text":"note )", n,
                                          R"(","author_id":"cm-1"})");
  return absl::StrCat(R"({"event_id":")", id, R"(","stream_id":"case-)", n % 5,
                      R"(","subject_ids":["client-)", n % 5,
                      R"("],"producer":"e2e","occurred_at":"2026-01-01T00:00:00Z",)", body, "}");
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
}

class LedgerctlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::NewTempDir("ledgerctl_e2e");
    auto s =
        ServerProcess::Start(kServer, dir_ + "/data",
                             {"--master_key_file=" + testing::WriteTestMasterKey(dir_),
                              "--checkpoint_interval=200ms", "--checkpoint_every_records=1000000"});
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
    // The operator's key, as printed at start; a client gets it out of band.
    std::string err = server_->Stderr();
    size_t at = err.find(", key ");
    ASSERT_NE(at, std::string::npos) << err;
    key_ = err.substr(at + 6, err.find('\n', at) - at - 6);
  }

  void TearDown() override {
    if (server_ == nullptr) return;
    int status = server_->Stop(SIGTERM);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status << "\n"
                                                               << server_->Stderr();
    EXPECT_TRUE(absl::StrContains(server_->Stderr(), "stopped cleanly")) << server_->Stderr();
  }

  Result Ctl(std::vector<std::string> args, const std::string& stdin_path = "/dev/null") {
    args.insert(args.begin(), "--server=" + server_->address());
    return RunLedgerctl(args, stdin_path);
  }

  // Polls until the latest checkpoint has `size`; returns its root hex.
  std::string WaitForCheckpoint(uint64_t size) {
    std::string want = absl::StrCat("{\"size\":", size, ",\"root_hash\":\"");
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    Result r;
    while (std::chrono::steady_clock::now() < deadline) {
      r = Ctl({"--json", "checkpoint"});
      if (r.exit_code == 0 && absl::StartsWith(r.out, want)) return r.out.substr(want.size(), 64);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "no checkpoint at size " << size << ": " << Describe(r);
    return "";
  }

  std::string dir_;
  std::string key_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(LedgerctlTest, AppendReadCheckpointProveAndErrors) {
  // 200 lines, line 101 repeats the event of line 8: 199 records.
  std::string lines;
  for (int i = 0; i < 200; ++i) {
    int n = i == 100 ? 7 : i;
    absl::StrAppend(&lines, EventJson(absl::StrCat("ev-", n), n), "\n");
  }
  WriteFile(dir_ + "/events.jsonl", lines);
  Result r = Ctl({"append", "--file=" + dir_ + "/events.jsonl"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_TRUE(absl::StartsWith(r.out, "199 appended, 1 duplicates in ")) << r.out;
  EXPECT_TRUE(absl::EndsWith(r.out, " events/s)\n")) << r.out;
  EXPECT_EQ(r.err, "");  // stderr is not a terminal: no progress bar

  // read --json: one Record per line, in seq order, as sent.
  r = Ctl({"read", "--json"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  std::vector<std::string> json_lines = absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(json_lines.size(), 199u);
  EXPECT_TRUE(absl::StartsWith(json_lines[0], R"({"seq":"0","stream_id":"case-0","version":"0",)"))
      << json_lines[0];
  for (size_t i = 0; i < json_lines.size(); ++i) {
    v1::Record rec;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json_lines[i], &rec).ok())
        << json_lines[i];
    int n = i < 100 ? static_cast<int>(i) : static_cast<int>(i) + 1;  // line 101 was the repeat
    EXPECT_EQ(rec.seq(), i);
    EXPECT_EQ(rec.event_id(), absl::StrCat("ev-", n));
    EXPECT_EQ(rec.stream_id(), absl::StrCat("case-", n % 5));
    if (n >= 5) EXPECT_EQ(rec.event().record_entry_written().text(), absl::StrCat("note ", n));
  }

  // One case, from a version, human-readable.
  r = Ctl({"read", "--stream=case-2", "--from_version=3", "--limit=1"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  std::vector<std::string> block = absl::StrSplit(r.out, '\n');
  ASSERT_EQ(block.size(), 9u) << r.out;  // 8 lines and the end
  EXPECT_EQ(block[0], "seq 17  case-2@3  record_entry_written");
  EXPECT_EQ(block[1], "  event_id   ev-17");
  EXPECT_EQ(block[3], "  occurred   2026-01-01T00:00:00.000000Z");
  EXPECT_EQ(block[4], "  producer   e2e");
  EXPECT_EQ(block[5], "  subjects   client-2");
  EXPECT_EQ(block[7],
            R"(  body       {"entry_id":"entry-ev-17","data_category":"housing","text":"note 17",)"
            R"("author_id":"cm-1"})");

  // The signed checkpoint, verified with the operator's key (given inline
  // and as a file).
  std::string root199 = WaitForCheckpoint(199);
  r = Ctl({"checkpoint", "--key=" + key_});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_TRUE(absl::StartsWith(
      r.out, absl::StrCat("size  199\nroot  ", root199, "\nnote:\ncaseledger.local/log\n199\n")))
      << r.out;
  EXPECT_TRUE(absl::EndsWith(
      r.out, absl::StrCat("signature OK: key ", key_, ", origin caseledger.local/log\n")))
      << r.out;
  WriteFile(dir_ + "/log.key", key_ + "\n");
  r = Ctl({"--json", "checkpoint", "--key=" + dir_ + "/log.key"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_TRUE(absl::EndsWith(r.out, ",\"verified\":true}\n")) << r.out;

  // Another log's key does not verify it.
  auto other =
      NoteSigner::New("caseledger.local/log", *Ed25519Signer::FromSeed(std::string(32, '\x01')));
  ASSERT_TRUE(other.ok());
  r = Ctl({"checkpoint", "--key=" + other->VerifierKey()});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_TRUE(absl::StartsWith(r.err, "ledgerctl checkpoint: DATA_LOSS: ")) << r.err;

  // Inclusion of one record in the signed tree.
  r = Ctl({"prove", "--seq=42", "--key=" + key_});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(r.out,
            absl::StrCat("OK: record 42 is in the tree of size 199 with root ", root199, "\n"));
  EXPECT_EQ(r.err, "");
  r = Ctl({"prove", "--seq=198"});  // the server's own key: works, with a warning
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_TRUE(absl::StartsWith(r.err, "warning: verifying with the key the server itself sent"))
      << r.err;
  r = Ctl({"prove", "--seq=199", "--key=" + key_});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_EQ(r.err,
            "FAILED: OUT_OF_RANGE: record 199 is not in the tree of size 199 (the latest "
            "checkpoint); wait for the next checkpoint\n");

  // One more record, a new checkpoint, and consistency between the two.
  // case-0 holds 39 records: line 101 (ev-100, case-0) was replaced by the repeat.
  r = Ctl({"--json", "append", "--event=" + EventJson("ev-200", 200)});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_TRUE(absl::StartsWith(r.out, "{\"seq\":199,\"version\":39,\"leaf_hash\":\"")) << r.out;
  EXPECT_TRUE(absl::EndsWith(r.out, "\",\"duplicate\":false}\n")) << r.out;
  std::string root200 = WaitForCheckpoint(200);
  r = Ctl({"prove", "--from_size=199", "--to_size=200", "--key=" + key_});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(r.out, absl::StrCat("OK: the tree of size 200 with root ", root200,
                                " extends the tree of size 199 with root ", root199, "\n"));
  r = Ctl({"prove", "--seq=7", "--size=199", "--key=" + key_});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  r = Ctl({"prove", "--from_size=5", "--key=" + key_});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_TRUE(absl::StartsWith(r.err,
                               "FAILED: NOT_FOUND: GetCheckpoint: size: no checkpoint was "
                               "signed at size 5"))
      << r.err;

  // tail from a position, bounded.
  r = Ctl({"--json", "tail", "--from_seq=195", "--count=3"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  std::vector<std::string> tailed = absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(tailed.size(), 3u) << r.out;
  EXPECT_TRUE(absl::StartsWith(tailed[0], "{\"seq\":\"195\",")) << tailed[0];
  EXPECT_TRUE(absl::StartsWith(tailed[2], "{\"seq\":\"197\",")) << tailed[2];

  r = Ctl({"status", "--json"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_TRUE(absl::StartsWith(
      r.out, absl::StrCat("{\"server\":\"", server_->address(),
                          "\",\"health\":\"SERVING\",\"tree_size\":200,\"checkpoint_size\":200,")))
      << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, absl::StrCat("\"verifier_key\":\"", key_, "\""))) << r.out;

  // Bad events: non-zero exit and a message naming the field.
  r = Ctl({"append", "--event=" + EventJson("x1", 6).insert(1, R"("bogus":1,)")});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_EQ(r.err,
            "ledgerctl append: INVALID_ARGUMENT: --event: Event: bogus: Cannot find field.\n");
  r = Ctl({"append", "--event=" + EventJson("", 6)});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_EQ(r.err,
            "ledgerctl append: INVALID_ARGUMENT: Append: event.event_id: must not be empty\n");

  // A file with an unknown field on line 2 sends nothing.
  WriteFile(dir_ + "/unknown.jsonl",
            EventJson("u1", 6) + "\n" + EventJson("u2", 7).insert(1, R"("colour":"red",)") + "\n");
  r = Ctl({"append", "--file=" + dir_ + "/unknown.jsonl"});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_EQ(r.err,
            "ledgerctl append: line 2: INVALID_ARGUMENT: Event: colour: Cannot find field. "
            "(nothing was sent)\n");
  // From stdin, an empty event_id on line 4 (after a blank line): the lines
  // before it are stored, the server's status names the field.
  WriteFile(dir_ + "/empty_id.jsonl", EventJson("s1", 6) + "\n\n" + EventJson("s2", 7) + "\n" +
                                          EventJson("", 8) + "\n" + EventJson("s4", 9) + "\n");
  r = Ctl({"append", "-"}, dir_ + "/empty_id.jsonl");
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_TRUE(absl::StartsWith(r.out, "2 appended, 0 duplicates in ")) << r.out;
  EXPECT_TRUE(absl::StartsWith(r.err,
                               "ledgerctl append: line 4: INVALID_ARGUMENT: AppendStream: "
                               "request 2: event.event_id: must not be empty\n"))
      << r.err;
  // Running it again after the fix: the stored lines come back as duplicates.
  WriteFile(dir_ + "/fixed.jsonl", EventJson("s1", 6) + "\n\n" + EventJson("s2", 7) + "\n" +
                                       EventJson("s3", 8) + "\n" + EventJson("s4", 9) + "\n");
  r = Ctl({"append", "--file=" + dir_ + "/fixed.jsonl"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_TRUE(absl::StartsWith(r.out, "2 appended, 2 duplicates in ")) << r.out;
}

TEST_F(LedgerctlTest, UsageErrorsExitTwo) {
  Result r = Ctl({"prove"});
  EXPECT_EQ(r.exit_code, 2) << Describe(r);
  EXPECT_TRUE(absl::StartsWith(
      r.err, "ledgerctl prove: give either --seq=N [--size=M] or --from_size=A [--to_size=B]\n"))
      << r.err;
  r = Ctl({"read", "--bogus=1"});
  EXPECT_EQ(r.exit_code, 2) << Describe(r);
  EXPECT_TRUE(absl::StartsWith(r.err, "ledgerctl read: unknown flag --bogus\n")) << r.err;
  r = Ctl({"append"});
  EXPECT_EQ(r.exit_code, 2) << Describe(r);
  r = Ctl({"frobnicate"});
  EXPECT_EQ(r.exit_code, 2) << Describe(r);
  r = Ctl({"read", "--limit=-1"});
  EXPECT_EQ(r.exit_code, 2) << Describe(r);
  EXPECT_TRUE(absl::StartsWith(r.err,
                               "ledgerctl read: --limit: got \"-1\", want a non-negative "
                               "integer\n"))
      << r.err;

  r = Ctl({"help", "prove"});
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_TRUE(absl::StartsWith(r.out, "usage: ledgerctl prove --seq=N")) << r.out;
  Result same = Ctl({"prove", "--help"});
  EXPECT_EQ(same.exit_code, 0);
  EXPECT_EQ(same.out, r.out);

  // No server there: a clear failure, not a hang.
  r = RunLedgerctl({"--server=127.0.0.1:1", "--timeout=300ms", "status"});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_EQ(r.err,
            "ledgerctl status: UNAVAILABLE: could not connect to 127.0.0.1:1 within 300ms (is "
            "caseledger_server running there?)\n");
}

// Issue 5: a client fetches, verifies and renders their record history.
TEST_F(LedgerctlTest, HistoryVerifyRenderAndAccessReport) {
  std::string lines;
  for (int n = 0; n < 30; ++n) absl::StrAppend(&lines, EventJson(absl::StrCat("h-", n), n), "\n");
  // A third party named in client-1's record.
  absl::StrAppend(&lines,
                  R"({"event_id":"h-tp","stream_id":"case-1","subject_ids":["client-1"],)"
                  R"("producer":"e2e","occurred_at":"2026-01-01T00:00:00Z",)"
                  R"("record_entry_written":{"entry_id":"tp","data_category":"housing",)"
                  R"("text":"visit","third_party_mentions":["neighbour Ada Quill"],)"
                  R"("author_id":"cm-1"}})",
                  "\n");
  WriteFile(dir_ + "/events.jsonl", lines);
  Result r = Ctl({"append", "--file=" + dir_ + "/events.jsonl"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  WriteFile(dir_ + "/key", key_);

  const std::string b1 = dir_ + "/b1", b2 = dir_ + "/b2", note = dir_ + "/note";
  r = Ctl({"history", "--subject=client-1", "--current", "--out=" + b1});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  r = Ctl({"verify-history", b1, "--key=" + dir_ + "/key", "--save_note=" + note});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_TRUE(absl::StrContains(r.out, "has 7 records")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "OK  completeness OK")) << r.out;
  std::ifstream f(b1, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_FALSE(bytes.empty());
  EXPECT_FALSE(absl::StrContains(bytes, "Ada Quill"));

  // Later: consistent with the checkpoint kept from the first bundle.
  r = Ctl({"append", "--event=" + EventJson("h-late", 31)});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  r = Ctl({"history", "--subject=client-1", "--current", "--since=" + note, "--out=" + b2});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  r = Ctl({"verify-history", b2, "--key=" + key_, "--since=" + note});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_TRUE(absl::StrContains(r.out, "OK  consistency OK")) << r.out;

  // The older bundle against the newer checkpoint: refused, with the reason.
  r = Ctl({"verify-history", b2, "--key=" + key_, "--save_note=" + note});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  r = Ctl({"verify-history", b1, "--key=" + key_, "--since=" + note});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_TRUE(absl::StrContains(r.err, "older than the one you hold")) << r.err;

  // A server that drops a record is caught.
  v1::HistoryBundle tampered;
  ASSERT_TRUE(tampered.ParseFromString(bytes));
  tampered.mutable_records()->DeleteSubrange(2, 1);
  WriteFile(dir_ + "/bad", tampered.SerializeAsString());
  r = Ctl({"verify-history", dir_ + "/bad", "--key=" + key_});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_TRUE(absl::StrContains(r.err, "DATA_LOSS: completeness: the bundle has 6 records"))
      << r.err;

  r = Ctl({"render-history", b2, "--key=" + key_, "--html=" + dir_ + "/h.html"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  std::ifstream h(dir_ + "/h.html");
  std::string html((std::istreambuf_iterator<char>(h)), std::istreambuf_iterator<char>());
  EXPECT_TRUE(absl::StartsWith(html, "<!DOCTYPE html>"));
  EXPECT_TRUE(absl::StrContains(html, "Some details about another person were withheld"));
  EXPECT_FALSE(absl::StrContains(html, "third_party_mentions"));
  EXPECT_FALSE(absl::StrContains(html, "Ada Quill"));

  r = Ctl({"render-history", b2, "--key=" + key_, "--lang=es", "--tz=America/Los_Angeles"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_TRUE(absl::StrContains(r.out, "Este es su expediente completo")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "(America/Los Angeles)")) << r.out;
  EXPECT_FALSE(absl::StrContains(r.out, "Ada Quill"));
  r = Ctl({"render-history", b2, "--key=" + key_, "--lang=fr"});
  EXPECT_EQ(r.exit_code, 2) << Describe(r);
  EXPECT_TRUE(absl::StrContains(r.err, "--lang: got \"fr\", want one of: en, es")) << r.err;
  r = Ctl({"render-history", b2, "--key=" + key_, "--tz=Mars/Olympus"});
  EXPECT_EQ(r.exit_code, 2) << Describe(r);
  EXPECT_TRUE(absl::StrContains(r.err, "--tz: got \"Mars/Olympus\"")) << r.err;

  r = Ctl({"access-report", "--subject=client-1"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  std::vector<std::string> accesses = absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  EXPECT_EQ(accesses.size(), 2u) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "client-1 (client)  purpose: right of access")) << r.out;
}

}  // namespace
}  // namespace caseledger
