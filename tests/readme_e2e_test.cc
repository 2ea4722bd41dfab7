// The README runs as a test: every `$ledgerctl` example of README.md's
// "Using it" block, and of its mutual-TLS block ("Who may do what"), read from
// README.md at test time, against a server started through tools/serve.sh as
// a reader would start it (encrypted payloads under a development master key,
// default flags), each with its own data directory and a free port.
//
// Each example runs as written, through bash, with `$ledgerctl` pointing at
// the server, KEY the server's verifier key, W1,W2 the witnesses' keys, and
// the file names as written in a scratch directory. An example with optional
// parts ([...]) runs without them first and, after every example ran, once
// more with all of them. Data an example needs (records to read, checkpoints
// at the sizes it names, a note to start from, a cosignature) is put there
// first. Any example that exits non-zero fails the test, which prints it and
// its stderr.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "proto/ledger.grpc.pb.h"
#include "tests/server_process.h"
#include "tests/subprocess.h"
#include "tests/test_util.h"

namespace caseledger {
namespace {

using testing::CommandResult;
using testing::RunCommand;
using testing::ServerProcess;

constexpr char kServe[] = "tools/serve.sh";
constexpr char kLedgerctl[] = "tools/ledgerctl";
constexpr char kWitness[] = "tools/ledger_witness";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Absolute(const std::string& path) {
  char* real = realpath(path.c_str(), nullptr);
  std::string out = real != nullptr ? real : path;
  free(real);
  return out;
}

// The `index`th ```sh block after the line `heading`, as logical lines: a
// line ending in a backslash, or inside an open single quote, goes on with
// the next. Comments (" #" outside quotes) are dropped.
absl::StatusOr<std::vector<std::string>> ShellBlock(const std::string& readme,
                                                    const std::string& heading) {
  size_t at = readme.find("\n" + heading + "\n");
  if (at == std::string::npos) {
    return absl::NotFoundError(absl::StrCat("README.md: no heading \"", heading, "\""));
  }
  size_t start = readme.find("```sh\n", at);
  size_t end = start == std::string::npos ? start : readme.find("\n```", start + 6);
  if (end == std::string::npos) {
    return absl::NotFoundError(absl::StrCat("README.md: no ```sh block under \"", heading, "\""));
  }
  std::vector<std::string> lines;
  std::string current;
  bool in_quote = false;
  for (absl::string_view raw : absl::StrSplit(readme.substr(start + 6, end - start - 6), '\n')) {
    std::string line;
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '\'') in_quote = !in_quote;
      if (!in_quote && raw[i] == '#' && (i == 0 || raw[i - 1] == ' ')) break;
      line.push_back(raw[i]);
    }
    absl::string_view stripped = absl::StripTrailingAsciiWhitespace(line);
    const bool continued = absl::ConsumeSuffix(&stripped, "\\");
    absl::StrAppend(&current, stripped);
    if (in_quote) {
      current.push_back('\n');
    } else if (continued) {
      current.push_back(' ');
    } else {
      std::string logical(absl::StripAsciiWhitespace(current));
      if (!logical.empty()) lines.push_back(logical);
      current.clear();
    }
  }
  return lines;
}

// `line` with its optional parts ([...] outside quotes) left out, or kept
// without their brackets.
std::string Optional(const std::string& line, bool keep) {
  std::string out;
  bool in_quote = false;
  int depth = 0;
  for (char c : line) {
    if (c == '\'') in_quote = !in_quote;
    if (!in_quote && c == '[') {
      ++depth;
      continue;
    }
    if (!in_quote && c == ']' && depth > 0) {
      --depth;
      continue;
    }
    if (depth == 0 || keep) out.push_back(c);
  }
  return absl::StrJoin(absl::StrSplit(out, ' ', absl::SkipEmpty()), " ");
}

class ReadmeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    readme_ = ReadFile("README.md");
    ASSERT_FALSE(readme_.empty()) << "README.md is not in the test's runfiles";
    dir_ = testing::NewTempDir("readme");
    ledgerctl_ = Absolute(kLedgerctl);
    // serve.sh: the binaries from the runfiles, a development master key of
    // this test's own, and payloads encrypted under it.
    setenv("CASELEDGER_SERVE_PREBUILT", "1", 1);
    setenv("CASELEDGER_DEV_KEY", (dir_ + "/dev-master.key").c_str(), 1);
    unsetenv("CASELEDGER_MASTER_KEY");
    unsetenv("CASELEDGER_PLAINTEXT");
  }

  void Serve(const std::vector<std::string>& flags) {
    auto s = ServerProcess::Start(kServe, dir_ + "/data", flags);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
    ASSERT_TRUE(absl::StrContains(server_->Stderr(), "serve.sh: development master key"))
        << server_->Stderr();
    const std::string err = server_->Stderr();
    size_t at = err.find(", key ");
    ASSERT_NE(at, std::string::npos) << err;
    key_ = err.substr(at + 6, err.find('\n', at) - at - 6);
  }

  // Runs `script` with bash in the scratch directory, $ledgerctl set.
  CommandResult Bash(const std::string& script, const std::string& ledgerctl) {
    return RunCommand(
        {"/bin/bash", "-c",
         absl::StrCat("set -o pipefail\ncd '", dir_, "'\nledgerctl='", ledgerctl, "'\n", script)});
  }

  // Runs a README command, substituting `vars`; a failure names it.
  void RunExample(const std::string& command, const std::string& ledgerctl,
                  const std::vector<std::pair<std::string, std::string>>& vars) {
    std::string script = absl::StrReplaceAll(command, vars);
    CommandResult r = Bash(script, ledgerctl);
    ++ran_;
    if (r.exit_code != 0) {
      ADD_FAILURE() << "README.md example failed (exit " << r.exit_code << "):\n  " << command
                    << "\nran as:\n  " << script << "\nstderr:\n"
                    << r.err << "stdout:\n"
                    << r.out.substr(0, 2000);
    }
  }

  // Every `$ledgerctl` line of `lines`: without optional parts, then those
  // that have some, with all of them.
  void RunExamples(const std::vector<std::string>& lines, const std::string& ledgerctl,
                   const std::vector<std::pair<std::string, std::string>>& vars) {
    std::vector<std::string> full;
    for (const std::string& line : lines) {
      if (!absl::StartsWith(line, "$ledgerctl")) continue;
      const std::string bare = Optional(line, false);
      // tail follows the log until interrupted; only its form with --count
      // ends by itself.
      if (!absl::StartsWith(bare, "$ledgerctl tail")) RunExample(bare, ledgerctl, vars);
      if (Optional(line, true) != bare) full.push_back(Optional(line, true));
    }
    for (const std::string& line : full) RunExample(line, ledgerctl, vars);
  }

  void Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ + "/" + name) << text;
  }

  // A ledgerctl command the test needs (not a README example).
  CommandResult Ledgerctl(const std::string& args, const std::string& ledgerctl) {
    CommandResult r = Bash("$ledgerctl " + args, ledgerctl);
    EXPECT_EQ(r.exit_code, 0) << "ledgerctl " << args << ": " << r.err;
    return r;
  }

  std::string readme_;
  std::string dir_;
  std::string ledgerctl_;
  std::string key_;
  std::unique_ptr<ServerProcess> server_;
  int ran_ = 0;
};

// "Using it", against `bash tools/serve.sh` on loopback.
TEST_F(ReadmeTest, UsingItRunsAsWritten) {
  absl::StatusOr<std::vector<std::string>> lines = ShellBlock(readme_, "## Using it");
  ASSERT_TRUE(lines.ok()) << lines.status();
  ASSERT_FALSE(lines->empty());
  ASSERT_EQ((*lines)[0], "ledgerctl=bazel-bin/tools/ledgerctl")
      << "the block no longer starts by naming the binary; update this test";

  // Two witnesses (for `cosigned`), known to the server from its start.
  std::vector<std::string> witness_keys;
  for (const char* w : {"w1", "w2"}) {
    CommandResult vkey =
        RunCommand({kWitness, absl::StrCat("--witness_key=", dir_, "/", w, ".key"),
                    absl::StrCat("--witness_name=witness.example/", w), "--print_vkey"});
    ASSERT_EQ(vkey.exit_code, 0) << vkey.err;
    witness_keys.push_back(std::string(absl::StripAsciiWhitespace(vkey.out)));
  }
  ASSERT_NO_FATAL_FAILURE(Serve({"--witness_keys=" + absl::StrJoin(witness_keys, ",")}));
  const std::string ledgerctl = ledgerctl_ + " --server=" + server_->address();

  // `prove --from_size=10 --to_size=20` needs checkpoints signed at 10 and
  // 20: ten cases of client-1 opened (so `read-record --seq=0
  // --subject=client-1` is theirs), a checkpoint (GetAccessReport signs one
  // covering every record), ten more, another.
  for (int round = 0; round < 2; ++round) {
    std::string events;
    for (int i = 0; i < 10; ++i) {
      absl::StrAppend(&events, "{\"event_id\":\"pre-", round, "-", i,
                      "\",\"stream_id\":\"case-pre-", round, "-", i,
                      "\",\"subject_ids\":[\"client-1\"],\"case_opened\":{\"program\":\"housing\","
                      "\"jurisdiction\":\"US-CA\","
                      "\"record_class\":\"RECORD_CLASS_GENERAL\"}}\n");
    }
    Write("pre.jsonl", events);
    CommandResult appended = Ledgerctl("--json append --file=pre.jsonl", ledgerctl);
    ASSERT_TRUE(absl::StrContains(appended.out, absl::StrCat("\"seq\":", round * 10 + 9)))
        << "want the tree at size " << round * 10 + 10 << ": " << appended.out;
    Ledgerctl("access-report --subject=nobody", ledgerctl);
  }
  // The notes `--since=old.note` and `--since=audit.note` name: the
  // checkpoint at size 10.
  auto stub = v1::LedgerService::NewStub(
      grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials()));
  {
    grpc::ClientContext ctx;
    v1::GetCheckpointRequest req;
    req.set_size(10);
    v1::Checkpoint cp;
    grpc::Status s = stub->GetCheckpoint(&ctx, req, &cp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    Write("old.note", cp.note());
    Write("audit.note", cp.note());
  }
  // `append --file=events.jsonl`: the rest of case-1, which the first
  // example opens.
  Write("events.jsonl",
        "{\"event_id\":\"e2\",\"stream_id\":\"case-1\",\"subject_ids\":[\"client-1\"],"
        "\"participant_added\":{\"participant_id\":\"client-1\",\"role\":"
        "\"PARTICIPANT_ROLE_CLIENT\"}}\n"
        "{\"event_id\":\"e3\",\"stream_id\":\"case-1\",\"subject_ids\":[\"client-1\"],"
        "\"record_entry_written\":{\"entry_id\":\"entry-1\",\"data_category\":\"housing\","
        "\"text\":\"first visit\"}}\n");
  // `cosigned`: both witnesses cosign the latest checkpoint.
  for (const char* w : {"w1", "w2"}) {
    CommandResult cosigned =
        RunCommand({kWitness, "--server=" + server_->address(), "--log_key=" + key_,
                    absl::StrCat("--witness_key=", dir_, "/", w, ".key"),
                    absl::StrCat("--witness_name=witness.example/", w),
                    absl::StrCat("--state=", dir_, "/", w, ".state"), "--once"});
    ASSERT_EQ(cosigned.exit_code, 0) << cosigned.err;
  }

  lines->erase(lines->begin());
  RunExamples(*lines, ledgerctl,
              {{"=KEY", "=" + key_}, {"W1,W2", absl::StrJoin(witness_keys, ",")}});
  EXPECT_GE(ran_, 20) << "the block has fewer examples than it had; update this test";

  // The 42 CFR 2.24 example's list holds the disclosure hie-1 made under the
  // general designation, and its request is answered (RULES.md W14).
  CommandResult list =
      Ledgerctl("accounting --client=client-1 --case=case-2 --part2_list=pl-1", ledgerctl);
  for (const char* want : {"\"rule\": \"42 CFR 2.24\"", "\"name\": \"Eastside Clinic\"",
                           "\"description\": \"medication list\"",
                           "\"general_designation\": \"my treating providers\""}) {
    EXPECT_TRUE(absl::StrContains(list.out, want)) << want << " not in\n" << list.out;
  }
  CommandResult state = Ledgerctl("case --id=case-2", ledgerctl);
  EXPECT_TRUE(absl::StrContains(state.out, "\"decision\": \"DECISION_FULFILLED\""))
      << state.out;
}

// The mutual-TLS example: the server line's flags through serve.sh, and each
// `$ledgerctl` line with its certificates.
TEST_F(ReadmeTest, MutualTlsExamplesRunAsWritten) {
  absl::StatusOr<std::vector<std::string>> lines = ShellBlock(readme_, "## Who may do what");
  ASSERT_TRUE(lines.ok()) << lines.status();
  ASSERT_FALSE(lines->empty());
  const std::string kServer = "bazel-bin/services/api/caseledger_server ";
  ASSERT_TRUE(absl::StartsWith((*lines)[0], kServer))
      << "the block no longer starts with the server; update this test: " << (*lines)[0];
  CommandResult made = RunCommand({"/bin/bash", "tools/make_dev_certs.sh", dir_ + "/dev-certs"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  Write("authz.conf", "producer intake housing\naudit_grant aud-1 case-1\n");
  // The server's flags as written, with its files in the scratch directory;
  // --listen is the test's free port.
  std::vector<std::string> flags;
  for (absl::string_view flag :
       absl::StrSplit((*lines)[0].substr(kServer.size()), ' ', absl::SkipEmpty())) {
    if (absl::StartsWith(flag, "--listen=")) continue;
    flags.push_back(absl::StrReplaceAll(flag, {{"=dev-certs/", "=" + dir_ + "/dev-certs/"},
                                               {"=authz.conf", "=" + dir_ + "/authz.conf"}}));
  }
  ASSERT_NO_FATAL_FAILURE(Serve(flags));

  // case-1 (housing, manager cm-1, client client-1), as the producer.
  auto as = [&](const std::string& who) {
    return absl::StrCat(ledgerctl_, " --server=", server_->address(), " --ca=", dir_,
                        "/dev-certs/ca.pem --cert=", dir_, "/dev-certs/", who,
                        ".pem --key_file=", dir_, "/dev-certs/", who,
                        ".key --tls_server_name=localhost");
  };
  Write("case-1.jsonl",
        "{\"event_id\":\"o1\",\"stream_id\":\"case-1\",\"subject_ids\":[\"client-1\"],"
        "\"producer\":\"intake\",\"case_opened\":{\"program\":\"housing\",\"jurisdiction\":"
        "\"US-CA\",\"record_class\":\"RECORD_CLASS_GENERAL\"}}\n"
        "{\"event_id\":\"a1\",\"stream_id\":\"case-1\",\"subject_ids\":[\"client-1\"],"
        "\"producer\":\"intake\",\"case_manager_assigned\":{\"manager_id\":\"cm-1\"}}\n"
        "{\"event_id\":\"p1\",\"stream_id\":\"case-1\",\"subject_ids\":[\"client-1\"],"
        "\"producer\":\"intake\",\"participant_added\":{\"participant_id\":\"client-1\","
        "\"role\":\"PARTICIPANT_ROLE_CLIENT\"}}\n"
        "{\"event_id\":\"n1\",\"stream_id\":\"case-1\",\"subject_ids\":[\"client-1\"],"
        "\"producer\":\"intake\",\"record_entry_written\":{\"entry_id\":\"entry-1\","
        "\"data_category\":\"housing\",\"text\":\"first visit\"}}\n");
  Ledgerctl("append --file=case-1.jsonl", as("producer-intake"));

  lines->erase(lines->begin());
  const std::string ledgerctl = ledgerctl_;
  RunExamples(*lines, ledgerctl, {{"--server=127.0.0.1:7443", "--server=" + server_->address()}});
  EXPECT_GE(ran_, 3) << "want the case manager's and the client's examples";
}

}  // namespace
}  // namespace caseledger
