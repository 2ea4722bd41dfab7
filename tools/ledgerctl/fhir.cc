// ledgerctl export-fhir: a client's consents, disclosures, reads and
// refusals as a FHIR R4 Bundle (AccessService.ExportFhir,
// services/fhir/FHIR.md).
#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "proto/access.grpc.pb.h"
#include "tools/ledgerctl/cli.h"
#include "tools/ledgerctl/commands.h"
#include "tools/ledgerctl/context.h"
#include "tools/ledgerctl/ledgerctl_lib.h"

namespace caseledger::ledgerctl {
namespace {

struct ExportFhirFlags {
  std::optional<std::string> subject;
  std::optional<std::string> case_id;
  std::optional<std::string> from;
  std::optional<std::string> until;
  std::optional<std::string> out;
  std::optional<std::string> purpose;
  std::optional<std::string> accessor;
  std::optional<std::string> role;
  bool full_view = false;
  bool searchset = false;
};

// A time flag (ParseWhen) into `out`.
absl::Status SetTime(const char* flag, const std::string& text, google::protobuf::Timestamp* out) {
  absl::StatusOr<absl::Time> t = ParseWhen(flag, text);
  if (!t.ok()) return t.status();
  out->set_seconds(absl::ToUnixSeconds(*t));
  out->set_nanos(static_cast<int32_t>((*t - absl::FromUnixSeconds(out->seconds())) /
                                      absl::Nanoseconds(1)));
  return absl::OkStatus();
}

int RunExportFhir(Client& c, const Command& cmd, const ExportFhirFlags& f) {
  if (!f.subject) return Usage(cmd, "--subject is required");
  v1::ExportFhirRequest req;
  req.set_subject_id(*f.subject);
  req.set_case_id(f.case_id.value_or(""));
  if (f.from) {
    if (absl::Status s = SetTime("from", *f.from, req.mutable_from()); !s.ok()) {
      return Usage(cmd, s.message());
    }
  }
  if (f.until) {
    if (absl::Status s = SetTime("until", *f.until, req.mutable_until()); !s.ok()) {
      return Usage(cmd, s.message());
    }
  }
  req.set_full_view(f.full_view);
  req.set_searchset(f.searchset);
  // With mutual TLS the server names the reader from the certificate.
  v1::Accessor* accessor = req.mutable_accessor();
  accessor->set_accessor_id(f.accessor.value_or(req.subject_id()));
  accessor->set_role(f.role.value_or("client"));
  accessor->set_purpose(f.purpose.value_or("right of access"));
  if (absl::Status s = c.Connect(); !s.ok()) return Fail("export-fhir", s);
  auto stub = v1::AccessService::NewStub(c.channel());
  grpc::ClientContext ctx;
  c.SetDeadline(&ctx);
  v1::FhirExport resp;
  absl::Status s = FromGrpc(stub->ExportFhir(&ctx, req, &resp), "ExportFhir", c.options());
  if (!s.ok()) return Fail("export-fhir", s);
  const std::string json = resp.bundle_json() + "\n";
  if (f.out) {
    if (absl::Status w = WriteFileBytes(*f.out, json); !w.ok()) return Fail("export-fhir", w);
  } else {
    std::fputs(json.c_str(), stdout);
  }
  std::fprintf(stderr, "%u FHIR resources from %u records of %s, as of tree size %llu\n",
               resp.resources(), resp.records_read(), req.subject_id().c_str(),
               static_cast<unsigned long long>(resp.as_of_size()));
  return kExitOk;
}

}  // namespace

void AddFhirCommands(Registry& registry) {
  Command& cmd = registry.Add(
      "export-fhir",
      "usage: ledgerctl export-fhir --subject=ID [--case=ID] [--from=TIME] [--until=TIME]\n"
      "                             [--out=FILE] [--searchset] [--full_view] [--purpose=P]\n"
      "                             [--accessor=ID] [--role=R]\n",
      "Prints a client's consents, disclosures, reads of their records and refused\n"
      "calls as a FHIR R4 Bundle (JSON) of IHE BALP AuditEvents and Consents\n"
      "(AccessService.ExportFhir; mapping in services/fhir/FHIR.md). Each resource\n"
      "names its ledger record (seq, leaf hash): `ledgerctl prove --seq=N` proves\n"
      "it. The export is recorded as a read of those records.\n");
  auto& f = registry.Own<ExportFhirFlags>();
  AddString(cmd.app, "--subject", &f.subject, "ID", "the client (data subject)");
  AddString(cmd.app, "--case", &f.case_id, "ID",
            "only this case (an auditor's grant must cover it; without it,\n"
            "the grant must cover all cases)");
  AddString(cmd.app, "--from", &f.from, "TIME", "only events that occurred at or after (2026-01-31 or RFC 3339)");
  AddString(cmd.app, "--until", &f.until, "TIME", "only events that occurred before (2026-01-31 or RFC 3339)");
  AddString(cmd.app, "--out", &f.out, "FILE", "write the Bundle here instead of to stdout");
  AddFlag(cmd.app, "--searchset", &f.searchset, "Bundle.type searchset instead of collection");
  AddFlag(cmd.app, "--full_view", &f.full_view,
          "protected details too (an auditor with a grant; never a client)");
  AddString(cmd.app, "--purpose", &f.purpose, "P",
            "why (default \"right of access\"); recorded with the read");
  AddString(cmd.app, "--accessor", &f.accessor, "ID",
            "who reads, on a plaintext loopback server (default: the\n"
            "subject); with mutual TLS the certificate says who reads");
  AddString(cmd.app, "--role", &f.role, "R", "their role (default \"client\")");
  cmd.run = [&f](Client& c, const Command& cmd) { return RunExportFhir(c, cmd, f); };
}

}  // namespace caseledger::ledgerctl
