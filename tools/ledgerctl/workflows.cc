// ledgerctl accounting-request, amendment-request, disagree, hold,
// review-denial and part2-list: the events of the client workflows
// (proto/events.proto fields 60-73, 81-82), one command per workflow and one word per event. Each
// event's flags are its body's proto field names, taken from the schema, so
// a new field needs no code here; the server's policy (services/policy/RULES.md W5
// to W14) decides whether the event is allowed.
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "google/protobuf/descriptor.h"
#include "proto/events.pb.h"
#include "tools/ledgerctl/cli.h"
#include "tools/ledgerctl/commands.h"
#include "tools/ledgerctl/context.h"
#include "tools/ledgerctl/ledgerctl_lib.h"

namespace caseledger::ledgerctl {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

struct Action {
  const char* word;
  const char* body;  // the Event oneof field
  const char* what;  // one line for the help
};

struct Workflow {
  const char* name;
  const char* description;
  std::vector<Action> actions;
};

const std::vector<Workflow>& Workflows() {
  static const auto* const kWorkflows = new std::vector<Workflow>{
      {"accounting-request",
       "A client's request for an accounting of disclosures (45 CFR 164.528; RULES.md\n"
       "W5, W6): due 60 days after receipt, extendable once by 30 with a reason.\n",
       {{"request", "accounting_requested", "the client asks (--request_id, --client_id)"},
        {"extend", "accounting_extended", "30 more days, with --reason"},
        {"fulfill", "accounting_fulfilled", "the accounting was given"},
        {"suspend", "accounting_suspended",
         "an agency's suspension (164.528(a)(2)): --agency_kind, --ends_at"}}},
      {"amendment-request",
       "A client's request to amend an entry (45 CFR 164.526; RULES.md W7).\n",
       {{"request", "amendment_requested", "--entry_id and --requested_change"},
        {"accept", "amendment_accepted", "--amendment_entry_id: the record_amended entry"},
        {"deny", "amendment_denied", "--basis and --explanation"},
        {"extend", "amendment_extended", "30 more days, with --reason"}}},
      {"disagree",
       "A statement of disagreement with a denied amendment, and its rebuttal\n"
       "(45 CFR 164.526(d); RULES.md W7.5). Pass --subject=CLIENT.\n",
       {{"file", "disagreement_filed", "the client's --statement"},
        {"rebut", "disagreement_rebutted", "--rebuttal by --author_id"}}},
      {"hold",
       "Legal holds: while one is in force the case's records are not disposed of\n"
       "and its clients are not erased (RULES.md W12).\n",
       {{"place", "legal_hold_placed", "--hold_id, --scope, --ground, --authority"},
        {"release", "legal_hold_released", "--hold_id, --released_by, --reason"}}},
      {"review-denial",
       "Review of a denial of access on a reviewable ground (45 CFR 164.524(a)(3),\n"
       "(a)(4), (d)(4); RULES.md W13).\n",
       {{"request", "access_review_requested", "the client asks for review"},
        {"decide", "access_reviewed", "a licensed reviewer's --outcome"}}},
      {"part2-list",
       "A patient's written request for the list of disclosures made under a\n"
       "consent's general designation (42 CFR 2.24; RULES.md W14): due 30 days after\n"
       "receipt, no extension. `ledgerctl accounting --part2_list` prints the list.\n",
       {{"request", "part2_list_requested",
         "--request_id, --client_id, --consent_id, --written_request_sha256=HEX"},
        {"provide", "part2_list_provided", "the list was given"}}},
  };
  return *kWorkflows;
}

const Descriptor* BodyType(const Action& a) {
  return v1::Event::descriptor()->FindFieldByName(a.body)->message_type();
}

// What a flag takes, for the help: an enum's short names, a date, text.
std::string Metavar(const FieldDescriptor* f) {
  if (f->enum_type() != nullptr) {
    std::vector<std::string> names;
    const std::string& zero = f->enum_type()->value(0)->name();
    const size_t prefix = zero.size() - std::string("UNSPECIFIED").size();
    for (int i = 1; i < f->enum_type()->value_count(); ++i) {
      names.push_back(absl::AsciiStrToLower(f->enum_type()->value(i)->name().substr(prefix)));
    }
    return absl::StrJoin(names, "|");
  }
  if (f->message_type() != nullptr) return "DATE";
  return "TEXT";
}

struct WorkflowFlags {
  std::vector<std::string> words;
  std::optional<std::string> case_id, event_id, subject, occurred_at, late;
  // Body fields by proto field name; std::map keeps the addresses stable.
  std::map<std::string, std::optional<std::string>> fields;
};

int RunWorkflow(Client& c, const Command& cmd, const Workflow& w, WorkflowFlags& f) {
  std::vector<std::string> words;
  for (const Action& a : w.actions) words.push_back(a.word);
  const Action* action = nullptr;
  for (const Action& a : w.actions) {
    if (f.words.size() == 1 && f.words[0] == a.word) action = &a;
  }
  if (action == nullptr) {
    return Usage(cmd, absl::StrCat("got \"", absl::StrJoin(f.words, " "), "\", want one of ",
                                   absl::StrJoin(words, ", ")));
  }
  if (!f.case_id) return Usage(cmd, "--case=CASE is required");
  WorkflowEnvelope env;
  env.stream_id = *f.case_id;
  env.event_id = f.event_id.value_or("");
  if (f.subject) env.subject_ids = absl::StrSplit(*f.subject, ',', absl::SkipEmpty());
  env.occurred_at = f.occurred_at.value_or("");
  env.late = f.late.value_or("");
  std::vector<FlagValue> given;
  for (const auto& [name, value] : f.fields) {
    if (value) given.emplace_back(name, *value);
  }
  absl::StatusOr<v1::AppendRequest> req = WorkflowEvent(env, action->body, given, absl::Now());
  if (!req.ok()) {
    return Usage(cmd, absl::StrCat(action->word, ": ", req.status().message()));
  }
  return SendAppend(c, w.name, *req);
}

}  // namespace

void AddWorkflowCommands(Registry& registry) {
  for (const Workflow& w : Workflows()) {
    std::vector<std::string> words;
    std::string actions;
    for (const Action& a : w.actions) {
      words.push_back(a.word);
      absl::StrAppend(&actions, "  ", a.word, std::string(10 - std::string(a.word).size(), ' '),
                      a.body, ": ", a.what, "\n");
    }
    Command& cmd = registry.Add(
        w.name,
        absl::StrCat("usage: ledgerctl ", w.name, " ", absl::StrJoin(words, "|"),
                     " --case=CASE [--FIELD=VALUE ...] [--subject=IDS] [--late=REASON]\n"),
        absl::StrCat(w.description, "Appends one event to the case:\n", actions,
                     "Each --FIELD is a field of that event's body (proto/events.proto).\n"));
    auto& f = registry.Own<WorkflowFlags>();
    AddPositionals(cmd.app, &f.words);
    AddString(cmd.app, "--case", &f.case_id, "CASE", "the case (stream) id");
    AddString(cmd.app, "--event_id", &f.event_id, "ID",
              "the event id (default: made from the time; give one to retry safely)");
    AddString(cmd.app, "--subject", &f.subject, "IDS",
              "subject ids, comma-separated (default: --client_id; an answer to a client's request must name that client, RULES.md S8)");
    AddString(cmd.app, "--occurred_at", &f.occurred_at, "DATE", "when it happened (default: now)");
    AddString(cmd.app, "--late", &f.late, "REASON",
              "recorded after later events of the case, and why (RULES.md T3)");
    for (const Action& a : w.actions) {
      const Descriptor* body = BodyType(a);
      for (int i = 0; i < body->field_count(); ++i) {
        const FieldDescriptor* field = body->field(i);
        if (field->name() == "late_documentation" || field->is_repeated() ||
            f.fields.count(field->name()) > 0) {
          continue;
        }
        AddString(cmd.app, "--" + field->name(), &f.fields[field->name()], Metavar(field),
                  absl::StrCat(a.body, ".", field->name()));
      }
    }
    cmd.run = [&w, &f](Client& c, const Command& cmd) { return RunWorkflow(c, cmd, w, f); };
  }
}

}  // namespace caseledger::ledgerctl
