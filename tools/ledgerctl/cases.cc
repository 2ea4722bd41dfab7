// ledgerctl case, cases and accounting: the read models of case state and of
// the accounting of disclosures.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <cstdio>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "proto/cases.grpc.pb.h"
#include "tools/ledgerctl/cli.h"
#include "tools/ledgerctl/commands.h"
#include "tools/ledgerctl/context.h"
#include "tools/ledgerctl/ledgerctl_lib.h"

namespace caseledger::ledgerctl {
namespace {

void SetTimestamp(absl::Time t, google::protobuf::Timestamp* ts) {
  ts->set_seconds(absl::ToUnixSeconds(t));
}

std::string SummaryLine(const v1::CaseSummary& s) {
  std::string due = s.has_next_access_due()
                        ? FormatTimestamp(s.next_access_due().seconds(), 0).substr(0, 10)
                        : "-";
  return absl::StrFormat("%-24s %-12s %-12s %-10s v%-6llu access:%u%s due:%s notices:%u%s%s%s",
                         s.case_id(), s.status(), s.program(),
                         s.manager_id().empty() ? "-" : s.manager_id(),
                         static_cast<unsigned long long>(s.version()), s.open_access_requests(),
                         s.access_overdue() ? " OVERDUE" : "", due, s.pending_client_notices(),
                         s.accounting_overdue() ? " ACCOUNTING-OVERDUE" : "",
                         s.amendment_overdue() ? " AMENDMENT-OVERDUE" : "",
                         s.part2_list_overdue() ? " PART2-LIST-OVERDUE" : "");
}

struct CaseFlags {
  std::optional<std::string> id;
  std::optional<uint64_t> min_seq;
};

int RunCase(Client& c, const Command& cmd, const CaseFlags& f) {
  if (!f.id) return Usage(cmd, "--id=CASE is required");
  if (absl::Status s = c.Connect(); !s.ok()) return Fail("case", s);
  auto stub = v1::CaseService::NewStub(c.channel());
  grpc::ClientContext ctx;
  c.SetDeadline(&ctx);
  v1::GetCaseRequest req;
  req.set_case_id(*f.id);
  req.set_min_seq(f.min_seq.value_or(0));
  v1::CaseView view;
  absl::Status s = FromGrpc(stub->GetCase(&ctx, req, &view), "GetCase", c.options());
  if (!s.ok()) return Fail("case", s);
  if (c.options().json) {
    std::printf("%s\n", ToJson(view, true).c_str());
  } else {
    std::printf("%s\nas of seq %llu\n%s\n", SummaryLine(view.summary()).c_str(),
                static_cast<unsigned long long>(view.as_of_seq()), view.state_json().c_str());
  }
  return kExitOk;
}

struct CasesFlags {
  std::optional<std::string> status;
  std::optional<std::string> manager;
  bool overdue = false;
  bool access_overdue = false;
  std::optional<uint64_t> limit;
};

int RunCases(Client& c, const CasesFlags& f) {
  if (absl::Status s = c.Connect(); !s.ok()) return Fail("cases", s);
  auto stub = v1::CaseService::NewStub(c.channel());
  v1::ListCasesRequest req;
  if (f.status) req.set_status(*f.status);
  if (f.manager) req.set_manager_id(*f.manager);
  req.set_overdue(f.overdue);
  req.set_access_overdue(f.access_overdue);
  // --limit=0 means every page.
  uint64_t left = f.limit.value_or(0) == 0 ? UINT64_MAX : *f.limit;
  uint64_t printed = 0;
  for (;;) {
    grpc::ClientContext ctx;
    c.SetDeadline(&ctx);
    req.set_limit(static_cast<uint32_t>(std::min<uint64_t>(left, 1000)));
    v1::ListCasesResponse resp;
    absl::Status s = FromGrpc(stub->ListCases(&ctx, req, &resp), "ListCases", c.options());
    if (!s.ok()) return Fail("cases", s);
    for (const v1::CaseSummary& summary : resp.cases()) {
      std::printf("%s\n",
                  c.options().json ? ToJson(summary, true).c_str() : SummaryLine(summary).c_str());
      ++printed;
    }
    left -= std::min<uint64_t>(left, resp.cases_size());
    if (resp.next_page_token().empty() || left == 0) break;
    req.set_page_token(resp.next_page_token());
  }
  if (!c.options().json) {
    std::fprintf(stderr, "%llu cases\n", static_cast<unsigned long long>(printed));
  }
  return kExitOk;
}

struct AccountingFlags {
  std::optional<std::string> client;
  std::optional<std::string> from;
  std::optional<std::string> to;
  bool include_excluded = false;
  bool summarize = false;
  std::optional<uint64_t> min_seq;
  std::optional<std::string> case_id;
  std::optional<std::string> part2_list;
};

int RunAccounting(Client& c, const Command& cmd, const AccountingFlags& f) {
  if (!f.client) return Usage(cmd, "--client=CLIENT_ID is required");
  v1::GetAccountingRequest req;
  req.set_client_id(*f.client);
  if (f.from) {
    absl::StatusOr<absl::Time> t = ParseWhen("from", *f.from);
    if (!t.ok()) return Usage(cmd, t.status().message());
    SetTimestamp(*t, req.mutable_window_start());
  }
  if (f.to) {
    absl::StatusOr<absl::Time> t = ParseWhen("to", *f.to);
    if (!t.ok()) return Usage(cmd, t.status().message());
    SetTimestamp(*t, req.mutable_window_end());
  }
  req.set_include_excluded(f.include_excluded);
  req.set_summarize(f.summarize);
  req.set_min_seq(f.min_seq.value_or(0));
  req.set_case_id(f.case_id.value_or(""));
  req.set_part2_list_request_id(f.part2_list.value_or(""));
  if (absl::Status s = c.Connect(); !s.ok()) return Fail("accounting", s);
  auto stub = v1::DisclosureService::NewStub(c.channel());
  grpc::ClientContext ctx;
  c.SetDeadline(&ctx);
  v1::Accounting resp;
  absl::Status s = FromGrpc(stub->GetAccounting(&ctx, req, &resp), "GetAccounting", c.options());
  if (!s.ok()) return Fail("accounting", s);
  // The export is JSON either way: readable by a person, parseable by a script.
  std::printf("%s\n", resp.json().c_str());
  if (!c.options().json) {
    std::fprintf(stderr, "%u disclosures for %s, as of seq %llu\n", resp.disclosures(),
                 resp.client_id().c_str(), static_cast<unsigned long long>(resp.as_of_seq()));
  }
  return kExitOk;
}

}  // namespace

void AddCaseCommands(Registry& registry) {
  {
    Command& cmd =
        registry.Add("case", "usage: ledgerctl case --id=CASE [--min_seq=N]\n",
                     "Prints a case's current state from the case-state read model: status,\n"
                     "program, manager and history, participants and roles, consents with scope\n"
                     "and expiry, conflicts, access requests with their legal due dates, and\n"
                     "disclosures whose client notice is pending.\n");
    auto& f = registry.Own<CaseFlags>();
    AddString(cmd.app, "--id", &f.id, "CASE", "the case (stream) id");
    AddUint(cmd.app, "--min_seq", &f.min_seq, "N",
            "wait until the read model reflects records below N (read your\n"
            "own writes: the seq of your last append + 1)");
    cmd.run = [&f](Client& c, const Command& cmd) { return RunCase(c, cmd, f); };
  }
  {
    Command& cmd = registry.Add(
        "cases",
        "usage: ledgerctl cases [--status=S] [--manager=ID] [--overdue] [--access_overdue]\n"
        "                       [--limit=N]\n",
        "Lists cases, one line each: id, status, program, manager, version, open\n"
        "access requests (OVERDUE past their legal due date), next due date, pending\n"
        "client notices.\n");
    auto& f = registry.Own<CasesFlags>();
    AddString(cmd.app, "--status", &f.status, "S", "open, interrupted, closed or disposed");
    AddString(cmd.app, "--manager", &f.manager, "ID", "assigned to this case manager");
    AddFlag(cmd.app, "--overdue", &f.overdue,
            "only cases with a client request (access, accounting,\n"
            "amendment or 42 CFR 2.24 list) past its legal due date");
    AddFlag(cmd.app, "--access_overdue", &f.access_overdue,
            "only cases with an access request past its due date");
    AddUint(cmd.app, "--limit", &f.limit, "N", "at most N cases (default 0: all)");
    cmd.run = [&f](Client& c, const Command&) { return RunCases(c, f); };
  }
  {
    Command& cmd = registry.Add(
        "accounting",
        "usage: ledgerctl accounting --client=ID [--from=DATE] [--to=DATE] [--include_excluded]\n"
        "                            [--summarize]\n"
        "       ledgerctl accounting --client=ID --case=CASE --part2_list=REQUEST_ID\n",
        "Prints a client's accounting of disclosures (45 CFR 164.528) as readable\n"
        "JSON: date, recipient name and address, what was disclosed, purpose, basis.\n"
        "With --part2_list, the 42 CFR 2.24 list for that request of the case instead:\n"
        "the disclosures under the consent's general designation in the 3 years before\n"
        "the request was received (RULES.md W14).\n");
    auto& f = registry.Own<AccountingFlags>();
    AddString(cmd.app, "--client", &f.client, "ID", "the client (data subject) id");
    AddString(cmd.app, "--from", &f.from, "DATE",
              "window start (default: six years ago); 2026-01-31 or RFC 3339");
    AddString(cmd.app, "--to", &f.to, "DATE", "window end (default: now)");
    AddFlag(cmd.app, "--include_excluded", &f.include_excluded,
            "also disclosures HIPAA excludes (treatment, payment,\n"
            "operations, to the client, under authorization), flagged");
    AddFlag(cmd.app, "--summarize", &f.summarize,
            "repeated disclosures to one recipient for one purpose as\n"
            "first, count and last");
    AddUint(cmd.app, "--min_seq", &f.min_seq, "N",
            "wait until the read model reflects records below N");
    AddString(cmd.app, "--case", &f.case_id, "CASE", "the case of the --part2_list request");
    AddString(cmd.app, "--part2_list", &f.part2_list, "REQUEST_ID",
              "a part2_list_requested request id: print its 42 CFR 2.24 list");
    cmd.run = [&f](Client& c, const Command& cmd) { return RunAccounting(c, cmd, f); };
  }
}

}  // namespace caseledger::ledgerctl
