#include "tools/ledgerctl/cli.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"

namespace caseledger::ledgerctl {
namespace {

constexpr char kGlobalSynopsis[] =
    "usage: ledgerctl [--server=127.0.0.1:7070] [--json] [--timeout=10s]\n"
    "                 [--ca=CA.pem --cert=ME.pem --key_file=ME.key [--tls_server_name=N]]\n"
    "                 COMMAND [flags]\n";

constexpr char kGlobalFooter[] =
    "Global flags may also follow the command. Exit status: 0 OK, 1 failure, 2 usage error.\n";

constexpr char kGlobalFlagsLine[] =
    "global flags: --server=HOST:PORT --json --timeout=DURATION\n"
    "              --ca=CA.pem --cert=ME.pem --key_file=ME.key --tls_server_name=NAME\n";

// The widest flag column; longer flags push their help to the right.
constexpr size_t kMaxFlagColumn = 22;

// Every CLI11 app of ledgerctl parses alike: flags it does not know go to
// the root (global flags may follow the command), and what nobody knows is
// collected and reported by ParseCommandLine in ledgerctl's own words.
void Configure(CLI::App* app) {
  app->set_help_flag();
  app->allow_extras();
}

// The flag lines of `app`: "  --name=META  help", help continued under itself.
std::string FlagList(const CLI::App& app) {
  std::vector<std::pair<std::string, std::string>> rows;
  for (const CLI::Option* o : app.get_options()) {
    if (!o->nonpositional() || o->get_description().empty()) continue;
    std::string name = o->get_name();
    if (o->get_items_expected_max() != 0) absl::StrAppend(&name, "=", o->get_type_name());
    rows.emplace_back(std::move(name), o->get_description());
  }
  size_t column = 0;
  for (const auto& row : rows) column = std::max(column, row.first.size() + 2);
  column = std::min(column, kMaxFlagColumn);
  std::string out;
  for (const auto& [name, help] : rows) {
    std::string pad(name.size() + 2 > column ? 2 : column - name.size(), ' ');
    absl::StrAppend(&out, "  ", name, pad,
                    absl::StrReplaceAll(help, {{"\n", "\n" + std::string(column + 2, ' ')}}), "\n");
  }
  return out;
}

Invocation UsageError(const Registry& registry, const Command* command, absl::string_view message) {
  Invocation inv;
  inv.exit_code = kExitUsage;
  if (command != nullptr) {
    inv.err = absl::StrCat("ledgerctl ", command->name, ": ", message, "\n", command->synopsis,
                           "(ledgerctl help ", command->name, " for more)\n");
  } else {
    inv.err = absl::StrCat("ledgerctl: ", message, "\n", MainHelp(registry));
  }
  return inv;
}

// The command whose name was given, or nullptr.
const Command* ParsedCommand(const Registry& registry) {
  for (const auto& c : registry.commands()) {
    if (c->app->parsed()) return c.get();
  }
  return nullptr;
}

// What was left over: the first flag or argument no one took, as a usage
// message; empty if nothing was.
std::string LeftOver(const std::vector<std::string>& extras) {
  for (const std::string& e : extras) {
    if (e == "--") continue;
    if (e.size() > 1 && e[0] == '-') {
      std::string name = e.substr(0, e.find('='));
      return absl::StrCat("unknown flag ", name);
    }
    return absl::StrCat("unexpected argument \"", e, "\"");
  }
  return "";
}

}  // namespace

Registry::Registry() : root_("", "ledgerctl") {
  Configure(&root_);
  auto global = [&](const std::string& name, std::string* value, const std::string& meta,
                    const std::string& help) {
    root_.add_option(name, *value, help)->type_name(meta);
  };
  global("--server", &global_.server, "HOST:PORT",
         "host:port of the caseledger server (default 127.0.0.1:7070)");
  root_.add_flag("--json", global_.json,
                 "machine-readable output: one JSON object per line on stdout");
  global("--timeout", &global_.timeout, "DURATION",
         "deadline for connecting and for each unary call (default 10s)");
  global("--ca", &global_.ca, "CA.pem",
         "CA certificate (PEM) of the server: use mutual TLS; without it,\n"
         "plaintext (a server started with --insecure_loopback)");
  global("--cert", &global_.cert, "ME.pem",
         "your client certificate (PEM); its URI caseledger://ROLE/ID\n"
         "says who you are");
  global("--key_file", &global_.key_file, "ME.key", "the key of --cert (PEM)");
  global("--tls_server_name", &global_.tls_server_name, "N",
         "the name to check the server certificate against (default:\n"
         "the host of --server)");
  root_.add_flag("--help", global_.help, "this help; after a command, the command's help");
  help_ = root_.add_subcommand("help", "describes the commands, or one");
  Configure(help_);
  help_->fallthrough();
  help_->add_option("topics", help_topics_);
}

Command& Registry::Add(const std::string& name, const std::string& synopsis,
                       const std::string& description, const std::string& footer) {
  auto c = std::make_unique<Command>();
  c->name = name;
  c->synopsis = synopsis;
  c->app = root_.add_subcommand(name, description);
  Configure(c->app);
  c->app->fallthrough();
  c->app->footer(footer);
  commands_.push_back(std::move(c));
  return *commands_.back();
}

const Command* Registry::Find(absl::string_view name) const {
  for (const auto& c : commands_) {
    if (c->name == name) return c.get();
  }
  return nullptr;
}

CLI::Option* AddUint(CLI::App* app, const std::string& name, std::optional<uint64_t>* value,
                     const std::string& metavar, const std::string& help) {
  // Checked before CLI11 converts, which would wrap "-1" around to 2^64-1.
  CLI::Validator non_negative(
      [](std::string& text) -> std::string {
        uint64_t v;
        if (!text.empty() && text[0] != '-' && text[0] != '+' && absl::SimpleAtoi(text, &v)) {
          return "";
        }
        return absl::StrCat("got \"", text, "\", want a non-negative integer");
      },
      "", "");
  return app->add_option(name, *value, help)->type_name(metavar)->check(non_negative);
}

CLI::Option* AddString(CLI::App* app, const std::string& name, std::optional<std::string>* value,
                       const std::string& metavar, const std::string& help) {
  return app->add_option(name, *value, help)->type_name(metavar);
}

CLI::Option* AddFlag(CLI::App* app, const std::string& name, bool* value, const std::string& help) {
  return app->add_flag(name, *value, help);
}

CLI::Option* AddPositionals(CLI::App* app, std::vector<std::string>* values) {
  return app->add_option("args", *values);
}

std::string MainHelp(const Registry& registry) {
  std::string out = absl::StrCat(kGlobalSynopsis, "\n", FlagList(registry.root()), "\n",
                                 kGlobalFooter, "\ncommands:\n");
  for (const auto& c : registry.commands()) {
    absl::StrAppend(&out, "  ", absl::StripPrefix(c->synopsis, "usage: "));
  }
  absl::StrAppend(&out, "  help [COMMAND]\n");
  return out;
}

std::string CommandHelp(const Command& command) {
  std::string out = absl::StrCat(command.synopsis, "\n", command.app->get_description());
  std::string flags = FlagList(*command.app);
  if (!flags.empty()) absl::StrAppend(&out, "\n", flags);
  if (!command.app->get_footer().empty()) absl::StrAppend(&out, "\n", command.app->get_footer());
  absl::StrAppend(&out, "\n", kGlobalFlagsLine);
  return out;
}

int Usage(const Command& command, absl::string_view message) {
  std::fprintf(stderr, "ledgerctl %s: %s\n%s(ledgerctl help %s for more)\n", command.name.c_str(),
               std::string(message).c_str(), command.synopsis.c_str(), command.name.c_str());
  return kExitUsage;
}

Invocation ParseCommandLine(Registry& registry, const std::vector<std::string>& args) {
  CLI::App& root = registry.root();
  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 pops from the back
  try {
    root.parse(reversed);
  } catch (const CLI::ParseError& e) {
    return UsageError(registry, ParsedCommand(registry), e.what());
  }
  const Command* command = ParsedCommand(registry);
  const bool help = registry.global().help || registry.help_command()->parsed();
  if (registry.help_command()->parsed() && !registry.help_topics().empty()) {
    const std::string& topic = registry.help_topics().front();
    command = registry.Find(topic);
    if (command == nullptr) {
      Invocation inv;
      inv.exit_code = kExitUsage;
      inv.err = absl::StrCat("ledgerctl help: unknown command \"", topic, "\"\n");
      return inv;
    }
  }
  if (help) {
    Invocation inv;
    inv.out = command != nullptr ? CommandHelp(*command) : MainHelp(registry);
    return inv;
  }
  std::vector<std::string> extras = root.remaining();
  if (command != nullptr) {
    std::vector<std::string> more = command->app->remaining();
    extras.insert(extras.end(), more.begin(), more.end());
  }
  if (command == nullptr) {
    for (const std::string& e : extras) {
      if (e.size() > 1 && e[0] == '-') return UsageError(registry, nullptr, LeftOver({e}));
      return UsageError(registry, nullptr, absl::StrCat("unknown command \"", e, "\""));
    }
    return UsageError(registry, nullptr, "missing COMMAND");
  }
  if (std::string left = LeftOver(extras); !left.empty()) {
    return UsageError(registry, command, left);
  }
  Invocation inv;
  inv.command = command;
  return inv;
}

}  // namespace caseledger::ledgerctl
