// ledgerctl's command line on CLI11: the global flags, the table of commands
// each group file fills in, typed flags that name themselves in their errors,
// the help generated from the flags' own descriptions, and the parse that
// turns argv into a command to run, a help text or a usage error.
//
// No network here: main.cc connects and runs the command this returns.
//
// Thread-safety: none; build, parse and run on one thread.
#ifndef CASELEDGER_TOOLS_LEDGERCTL_CLI_H_
#define CASELEDGER_TOOLS_LEDGERCTL_CLI_H_

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace caseledger::ledgerctl {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

class Client;  // context.h

// The flags every command takes, before or after its name.
struct GlobalFlags {
  std::string server = "127.0.0.1:7070";
  bool json = false;
  std::string timeout = "10s";
  std::string ca;
  std::string cert;
  std::string key_file;
  std::string tls_server_name;
  bool help = false;
};

// One command: its name, its "usage: ..." lines, the CLI11 subcommand that
// holds its flags, and what runs it.
struct Command {
  std::string name;
  std::string synopsis;     // "usage: ledgerctl NAME ...\n" (one or more lines)
  CLI::App* app = nullptr;  // owned by the Registry's root app
  // Runs the command after a successful parse; returns the exit status.
  std::function<int(Client&, const Command&)> run;
  // Block SIGINT and SIGTERM before any gRPC thread starts, so that the
  // command's own signal thread receives them (tail).
  bool blocks_stop_signals = false;
};

// The root CLI11 app with the global flags, and the commands. Flag values
// live in structs the registry owns (Own<T>), so they outlive the parse and
// the run.
class Registry {
 public:
  Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Adds a command. `description` says what it does and is printed before
  // its flags; `footer`, if any, after them. Both end in "\n".
  Command& Add(const std::string& name, const std::string& synopsis, const std::string& description,
               const std::string& footer = "");

  // A default-constructed T that lives as long as this registry.
  template <typename T>
  T& Own() {
    auto holder = std::make_unique<Holder<T>>();
    T& value = holder->value;
    owned_.push_back(std::move(holder));
    return value;
  }

  CLI::App& root() { return root_; }
  const CLI::App& root() const { return root_; }
  const GlobalFlags& global() const { return global_; }
  const std::vector<std::unique_ptr<Command>>& commands() const { return commands_; }
  // The command called `name`, or nullptr.
  const Command* Find(absl::string_view name) const;
  // The "help [COMMAND]" pseudo-command and the words given after it.
  const CLI::App* help_command() const { return help_; }
  const std::vector<std::string>& help_topics() const { return help_topics_; }

 private:
  struct HolderBase {
    virtual ~HolderBase() = default;
  };
  template <typename T>
  struct Holder : HolderBase {
    T value{};
  };

  CLI::App root_;
  CLI::App* help_ = nullptr;  // the "help [COMMAND]" pseudo-command
  std::vector<std::string> help_topics_;
  GlobalFlags global_;
  std::vector<std::unique_ptr<Command>> commands_;
  std::vector<std::unique_ptr<HolderBase>> owned_;
};

// ---- Typed flags ------------------------------------------------------------
// `help` is the flag's line in the generated help; "\n" continues it on the
// next line, indented under the first. `metavar` is what follows "=" there.

// --name=N: a non-negative decimal integer. Anything else is a usage error
// "--name: got \"X\", want a non-negative integer".
CLI::Option* AddUint(CLI::App* app, const std::string& name, std::optional<uint64_t>* value,
                     const std::string& metavar, const std::string& help);
// --name=VALUE.
CLI::Option* AddString(CLI::App* app, const std::string& name, std::optional<std::string>* value,
                       const std::string& metavar, const std::string& help);
// --name, a boolean.
CLI::Option* AddFlag(CLI::App* app, const std::string& name, bool* value, const std::string& help);
// The arguments that are not flags ("-", a BUNDLE file, a subcommand word).
// Not listed in the help: the synopsis shows them.
CLI::Option* AddPositionals(CLI::App* app, std::vector<std::string>* values);

// ---- Help -------------------------------------------------------------------

// `ledgerctl help`: the global usage, the global flags and every synopsis.
std::string MainHelp(const Registry& registry);
// `ledgerctl help COMMAND` and `ledgerctl COMMAND --help`: the synopsis, the
// description, the flags with their help, the footer, the global flags.
std::string CommandHelp(const Command& command);

// "ledgerctl NAME: MESSAGE\n" + the synopsis + a pointer to the help, on
// stderr; returns kExitUsage.
int Usage(const Command& command, absl::string_view message);

// ---- Parse ------------------------------------------------------------------

// What a command line asks for: a command to run (`command` set, flags
// filled in), or text to print and an exit status (help: stdout and 0;
// usage errors: stderr and 2).
struct Invocation {
  const Command* command = nullptr;
  int exit_code = kExitOk;
  std::string out;
  std::string err;
};

// Parses `args` (without the program name). Global flags may come before or
// after the command's name. A usage error names the flag and what was got
// and wanted: "ledgerctl read: unknown flag --bogus", "ledgerctl read:
// --limit: got \"-1\", want a non-negative integer".
Invocation ParseCommandLine(Registry& registry, const std::vector<std::string>& args);

}  // namespace caseledger::ledgerctl

#endif  // CASELEDGER_TOOLS_LEDGERCTL_CLI_H_
