#include "tools/ledgerctl/cli.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"

namespace caseledger::ledgerctl {
namespace {

// A registry with one command shaped like ledgerctl's: a typed integer, a
// string, a boolean and positionals.
struct Toy {
  Registry registry;
  std::optional<uint64_t> seq;
  std::optional<std::string> key;
  bool full = false;
  std::vector<std::string> args;
  const Command* cmd = nullptr;

  Toy() {
    Command& c = registry.Add("prove", "usage: ledgerctl prove --seq=N [--key=K]\n",
                              "Proves things.\n", "Prints OK.\n");
    AddUint(c.app, "--seq", &seq, "N", "the record\nsecond line");
    AddString(c.app, "--key", &key, "K", "the key");
    AddFlag(c.app, "--full", &full, "everything");
    AddPositionals(c.app, &args);
    c.run = [](Client&, const Command&) { return kExitOk; };
    cmd = &c;
  }
};

TEST(ParseCommandLineTest, TypedFlagsAndGlobalFlagsOnEitherSide) {
  Toy t;
  Invocation inv = ParseCommandLine(t.registry, {"--server=h:1", "prove", "--seq", "7", "--json",
                                                 "-", "--key=k", "--full", "--timeout=3s"});
  ASSERT_EQ(inv.command, t.cmd) << inv.err;
  EXPECT_EQ(t.seq, 7u);
  EXPECT_EQ(t.key, "k");
  EXPECT_TRUE(t.full);
  EXPECT_EQ(t.args, std::vector<std::string>{"-"});
  EXPECT_EQ(t.registry.global().server, "h:1");
  EXPECT_TRUE(t.registry.global().json);
  EXPECT_EQ(t.registry.global().timeout, "3s");
}

TEST(ParseCommandLineTest, AbsentFlagsStayUnset) {
  Toy t;
  Invocation inv = ParseCommandLine(t.registry, {"prove"});
  ASSERT_EQ(inv.command, t.cmd) << inv.err;
  EXPECT_FALSE(t.seq.has_value());
  EXPECT_FALSE(t.key.has_value());
  EXPECT_EQ(t.registry.global().server, "127.0.0.1:7070");
  EXPECT_EQ(t.registry.global().timeout, "10s");
}

TEST(ParseCommandLineTest, UsageErrorsNameTheFlag) {
  const std::string kTail =
      "usage: ledgerctl prove --seq=N [--key=K]\n(ledgerctl help prove for more)\n";
  struct Case {
    std::vector<std::string> args;
    std::string err;
  } cases[] = {
      {{"prove", "--seq=-1"}, "ledgerctl prove: --seq: got \"-1\", want a non-negative integer\n"},
      {{"prove", "--seq=x"}, "ledgerctl prove: --seq: got \"x\", want a non-negative integer\n"},
      {{"prove", "--bogus=1"}, "ledgerctl prove: unknown flag --bogus\n"},
      {{"prove", "--seq=1", "--seq=2"},
       "ledgerctl prove: --seq: At Most 1 required but received 2\n"},
  };
  for (const Case& c : cases) {
    Toy t;
    Invocation inv = ParseCommandLine(t.registry, c.args);
    EXPECT_EQ(inv.command, nullptr);
    EXPECT_EQ(inv.exit_code, kExitUsage);
    EXPECT_EQ(inv.err, c.err + kTail);
  }
  Toy t;
  Invocation inv = ParseCommandLine(t.registry, {"frobnicate"});
  EXPECT_EQ(inv.exit_code, kExitUsage);
  EXPECT_TRUE(absl::StartsWith(inv.err, "ledgerctl: unknown command \"frobnicate\"\nusage:"))
      << inv.err;
  Toy t2;
  inv = ParseCommandLine(t2.registry, {});
  EXPECT_EQ(inv.exit_code, kExitUsage);
  EXPECT_TRUE(absl::StartsWith(inv.err, "ledgerctl: missing COMMAND\n")) << inv.err;
}

TEST(HelpTest, GeneratedFromTheFlagsAndTheSameEitherWay) {
  Toy t;
  const std::string want =
      "usage: ledgerctl prove --seq=N [--key=K]\n"
      "\n"
      "Proves things.\n"
      "\n"
      "  --seq=N  the record\n"
      "           second line\n"
      "  --key=K  the key\n"
      "  --full   everything\n"
      "\n"
      "Prints OK.\n"
      "\n"
      "global flags: --server=HOST:PORT --json --timeout=DURATION\n"
      "              --ca=CA.pem --cert=ME.pem --key_file=ME.key --tls_server_name=NAME\n";
  EXPECT_EQ(CommandHelp(*t.cmd), want);
  Invocation inv = ParseCommandLine(t.registry, {"help", "prove"});
  EXPECT_EQ(inv.exit_code, kExitOk);
  EXPECT_EQ(inv.out, want);
  Toy t2;
  inv = ParseCommandLine(t2.registry, {"prove", "--help"});
  EXPECT_EQ(inv.exit_code, kExitOk);
  EXPECT_EQ(inv.out, want);
  Toy t3;
  inv = ParseCommandLine(t3.registry, {"help"});
  EXPECT_EQ(inv.exit_code, kExitOk);
  EXPECT_TRUE(absl::StrContains(inv.out, "  --server=HOST:PORT")) << inv.out;
  EXPECT_TRUE(absl::StrContains(inv.out, "commands:\n  ledgerctl prove --seq=N [--key=K]\n"))
      << inv.out;
  Toy t4;
  inv = ParseCommandLine(t4.registry, {"help", "nope"});
  EXPECT_EQ(inv.exit_code, kExitUsage);
  EXPECT_EQ(inv.err, "ledgerctl help: unknown command \"nope\"\n");
}

}  // namespace
}  // namespace caseledger::ledgerctl
