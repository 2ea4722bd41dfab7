// ledgerctl: the command-line client of a caseledger server, for people and
// scripts. `ledgerctl help` lists the commands; `ledgerctl help COMMAND` (or
// `ledgerctl COMMAND --help`) describes one.
//
// Exit status: 0 success, 1 failure (an RPC error, a failed verification, a
// bad event), 2 usage error.
#include <signal.h>

#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "tools/channel.h"
#include "tools/ledgerctl/cli.h"
#include "tools/ledgerctl/commands.h"
#include "tools/ledgerctl/context.h"

namespace caseledger::ledgerctl {
namespace {

int Main(const std::vector<std::string>& args) {
  Registry registry;
  AddAppendReadCommands(registry);
  AddProofCommands(registry);
  AddCaseCommands(registry);
  AddHistoryCommands(registry);
  AddAuditCommands(registry);
  AddWitnessCommands(registry);
  AddFhirCommands(registry);
  AddWorkflowCommands(registry);

  Invocation inv = ParseCommandLine(registry, args);
  if (inv.command == nullptr) {
    std::fputs(inv.out.c_str(), stdout);
    std::fputs(inv.err.c_str(), stderr);
    return inv.exit_code;
  }
  const Command& cmd = *inv.command;
  absl::StatusOr<Options> options = OptionsOf(registry.global());
  if (!options.ok()) return Usage(cmd, options.status().message());
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = NewChannel(options->channel);
  if (!channel.ok()) return Usage(cmd, channel.status().message());
  if (cmd.blocks_stop_signals) {
    // Before any gRPC thread exists, so that only the command's signal
    // thread receives SIGINT and SIGTERM.
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  }
  Client client(*options, *std::move(channel));
  return cmd.run(client, cmd);
}

}  // namespace
}  // namespace caseledger::ledgerctl

int main(int argc, char** argv) {
  return caseledger::ledgerctl::Main(std::vector<std::string>(argv + 1, argv + argc));
}
