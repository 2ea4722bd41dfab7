// ledgerctl audit, metrics and export: what auditors and operators ask of
// the whole ledger.
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "ledger/checkpoint.h"
#include "ledger/hash.h"
#include "proto/audit.grpc.pb.h"
#include "tools/bundle_export.h"
#include "tools/ledgerctl/cli.h"
#include "tools/ledgerctl/commands.h"
#include "tools/ledgerctl/context.h"
#include "tools/ledgerctl/ledgerctl_lib.h"

namespace caseledger::ledgerctl {
namespace {

struct AuditFlags {
  std::vector<std::string> args;  // the subcommand: verify-range
  std::optional<uint64_t> from_seq;
  std::optional<uint64_t> to_seq;
  std::optional<uint64_t> max_failures;
};

int RunAudit(Client& c, const Command& cmd, const AuditFlags& f) {
  if (f.args.size() != 1 || f.args[0] != "verify-range") {
    return Usage(cmd, "want the subcommand verify-range");
  }
  v1::VerifyRangeRequest req;
  req.set_from_seq(f.from_seq.value_or(0));
  req.set_to_seq(f.to_seq.value_or(0));
  req.set_max_failures(static_cast<uint32_t>(f.max_failures.value_or(0)));
  if (absl::Status s = c.Connect(); !s.ok()) return Fail("audit", s);
  std::unique_ptr<v1::AuditService::Stub> audit = v1::AuditService::NewStub(c.channel());
  grpc::ClientContext ctx;  // no deadline: a long range takes as long as it takes
  v1::VerifyRangeResponse resp;
  if (absl::Status s = FromGrpc(audit->VerifyRange(&ctx, req, &resp), "VerifyRange", c.options());
      !s.ok()) {
    return Fail("audit", s);
  }
  absl::StatusOr<Hash> root = HashFromBytes(resp.root_hash());
  std::string root_hex = root.ok() ? ToHex(*root) : "(malformed)";
  if (c.options().json) {
    JsonObject o;
    o.Add("ok", resp.ok()).Add("from_seq", resp.from_seq()).Add("to_seq", resp.to_seq());
    o.Add("records_checked", resp.records_checked());
    o.Add("checkpoints_checked", resp.checkpoints_checked()).Add("root_hash", root_hex);
    if (resp.failures_size() > 0) {
      o.Add("first_bad_seq", resp.failures(0).seq()).Add("error", resp.failures(0).message());
    }
    std::printf("%s\n", o.str().c_str());
  } else if (resp.ok()) {
    std::printf(
        "OK: records [%llu, %llu) verified on the server: %llu records, %llu "
        "checkpoints, root %s (%.3fs)\n",
        static_cast<unsigned long long>(resp.from_seq()),
        static_cast<unsigned long long>(resp.to_seq()),
        static_cast<unsigned long long>(resp.records_checked()),
        static_cast<unsigned long long>(resp.checkpoints_checked()), root_hex.c_str(),
        resp.seconds());
  }
  if (!resp.ok()) {
    for (const v1::RangeFailure& failure : resp.failures()) {
      std::fprintf(stderr, "FAILED: seq %llu: %s\n", static_cast<unsigned long long>(failure.seq()),
                   failure.message().c_str());
    }
    return kExitFailure;
  }
  return kExitOk;
}

int RunMetrics(Client& c) {
  if (absl::Status s = c.Connect(); !s.ok()) return Fail("metrics", s);
  std::unique_ptr<v1::AuditService::Stub> audit = v1::AuditService::NewStub(c.channel());
  grpc::ClientContext ctx;
  c.SetDeadline(&ctx);
  v1::LedgerMetrics m;
  if (absl::Status s =
          FromGrpc(audit->GetMetrics(&ctx, v1::GetMetricsRequest(), &m), "GetMetrics", c.options());
      !s.ok()) {
    return Fail("metrics", s);
  }
  if (c.options().json) {
    std::printf("%s\n", ToJson(m, /*all_fields=*/true).c_str());
    return kExitOk;
  }
  auto u = [](uint64_t v) { return static_cast<unsigned long long>(v); };
  std::printf(
      "tree_size                     %llu\n"
      "last_checkpoint_size          %llu\n"
      "last_checkpoint_age_seconds   %.3f\n"
      "unsigned_records              %llu\n"
      "verified_size                 %llu\n"
      "verification_lag_records      %llu\n"
      "verification_lag_seconds      %.3f\n"
      "verification_failed           %s\n"
      "last_cosigned_size            %llu\n"
      "last_cosignature_age_seconds  %.3f\n"
      "trusted_witnesses             %u\n",
      u(m.tree_size()), u(m.last_checkpoint_size()), m.last_checkpoint_age_seconds(),
      u(m.unsigned_records()), u(m.verified_size()), u(m.verification_lag_records()),
      m.verification_lag_seconds(),
      m.verification_failed()
          ? absl::StrCat("yes, first bad seq ", m.first_bad_seq(), ": ", m.verification_failure())
                .c_str()
          : "no",
      u(m.last_cosigned_size()), m.last_cosignature_age_seconds(), m.trusted_witnesses());
  return m.verification_failed() ? kExitFailure : kExitOk;
}

struct ExportFlags {
  std::optional<std::string> out;
  std::optional<uint64_t> from;
  std::optional<std::string> since;
  std::optional<uint64_t> to;
  std::optional<std::string> payloads;
};

int RunExport(Client& c, const Command& cmd, const ExportFlags& f) {
  if (!f.out) return Usage(cmd, "--out=FILE is required (- for stdout)");
  const std::string out_path = *f.out;
  ExportOptions options;
  options.timeout = c.options().timeout;
  options.from = f.from.value_or(0);
  if (f.since) {
    if (f.from) return Usage(cmd, "--since and --from do not go together");
    absl::StatusOr<std::string> note = ReadFileBytes(*f.since);
    absl::StatusOr<Checkpoint> since =
        note.ok() ? ParseCheckpointNote(*note) : absl::StatusOr<Checkpoint>(note.status());
    if (!since.ok()) {
      return Usage(cmd, absl::StrCat("--since: ", *f.since, ": ",
                                     note.ok() ? since.status().message() : "cannot be read"));
    }
    options.from = since->size;
  }
  if (f.to) options.to = *f.to;
  const std::string payloads = f.payloads.value_or("full");
  if (payloads == "commitments") {
    options.payloads = BundlePayload::kCommitmentsOnly;
  } else if (payloads != "full") {
    return Usage(cmd, absl::StrCat("--payloads: got \"", payloads, "\", want full or commitments"));
  }
  if (out_path == "-" && isatty(STDOUT_FILENO)) {
    return Usage(cmd, "--out=-: stdout is a terminal; redirect it to a file");
  }
  if (absl::Status s = c.Connect(); !s.ok()) return Fail("export", s);
  // Written beside the target and renamed at the end, so that a bundle at
  // --out is always a complete one.
  const std::string tmp_path = out_path == "-" ? "" : out_path + ".partial";
  FILE* out = out_path == "-" ? stdout : std::fopen(tmp_path.c_str(), "wb");
  if (out == nullptr) {
    return Fail("export", absl::InternalError(absl::StrCat("--out: cannot write ", tmp_path)));
  }
  absl::Time start = absl::Now();
  if (isatty(STDERR_FILENO)) {
    options.progress = [start](uint64_t done, uint64_t total) {
      double secs = absl::ToDoubleSeconds(absl::Now() - start);
      std::fprintf(stderr, "\rexported %llu / %llu records (%.0f records/s)   ",
                   static_cast<unsigned long long>(done), static_cast<unsigned long long>(total),
                   secs > 0 ? done / secs : 0.0);
      if (done >= total) std::fprintf(stderr, "\n");
    };
  }
  absl::StatusOr<ExportSummary> summary =
      ExportBundle(c.stub(), options, [out](absl::string_view b) {
        if (std::fwrite(b.data(), 1, b.size(), out) != b.size()) {
          return absl::InternalError("--out: write failed (disk full?)");
        }
        return absl::OkStatus();
      });
  bool closed = out == stdout ? std::fflush(out) == 0 : std::fclose(out) == 0;
  if (summary.ok() && !closed) summary = absl::InternalError("--out: write failed on close");
  if (summary.ok() && !tmp_path.empty() && std::rename(tmp_path.c_str(), out_path.c_str()) != 0) {
    summary =
        absl::InternalError(absl::StrCat("--out: cannot rename ", tmp_path, " to ", out_path));
  }
  if (!summary.ok()) {
    if (!tmp_path.empty()) std::remove(tmp_path.c_str());
    return Fail("export", summary.status());
  }
  FILE* report = out_path == "-" ? stderr : stdout;
  if (c.options().json) {
    JsonObject o;
    o.Add("out", out_path)
        .Add("first_seq", summary->first_seq)
        .Add("end_seq", summary->end_seq)
        .Add("records", summary->end_seq - summary->first_seq)
        .Add("checkpoints", summary->checkpoints)
        .Add("bytes", summary->bytes);
    std::fprintf(report, "%s\n", o.str().c_str());
  } else {
    std::fprintf(report,
                 "exported records %llu..%llu (%llu records, %llu checkpoints, %llu bytes) to %s\n",
                 static_cast<unsigned long long>(summary->first_seq),
                 static_cast<unsigned long long>(summary->end_seq) - 1,
                 static_cast<unsigned long long>(summary->end_seq - summary->first_seq),
                 static_cast<unsigned long long>(summary->checkpoints),
                 static_cast<unsigned long long>(summary->bytes), out_path.c_str());
  }
  return kExitOk;
}

}  // namespace

void AddAuditCommands(Registry& registry) {
  {
    Command& cmd = registry.Add(
        "audit",
        "usage: ledgerctl audit verify-range [--from_seq=N] [--to_seq=M] [--max_failures=K]\n",
        "Asks the server to verify stored records [N, M) (AuditService.VerifyRange):\n"
        "hash chain, leaf and payload commitments, Merkle nodes, and every checkpoint\n"
        "signed at a size in (N, M], anchored on the stored Merkle nodes at N.\n"
        "Prints \"OK: ...\" and exits 0, or one \"FAILED: seq S: reason\" line per failure\n"
        "on stderr and exits 1. An auditor who does not trust the server runs\n"
        "ledger_verify on a copy of the data directory instead.\n");
    auto& f = registry.Own<AuditFlags>();
    AddPositionals(cmd.app, &f.args);
    AddUint(cmd.app, "--from_seq", &f.from_seq, "N", "first record (default 0)");
    AddUint(cmd.app, "--to_seq", &f.to_seq, "M", "end, exclusive (default 0: the tree size)");
    AddUint(cmd.app, "--max_failures", &f.max_failures, "K", "report up to K failures (default 1)");
    cmd.run = [&f](Client& c, const Command& cmd) { return RunAudit(c, cmd, f); };
  }
  {
    Command& cmd = registry.Add(
        "metrics", "usage: ledgerctl metrics\n",
        "Prints the server's ledger gauges (AuditService.GetMetrics): tree size, the\n"
        "latest checkpoint's size and age (of the newest record it covers), records\n"
        "not yet signed, how far the background verifier got and how far behind it is\n"
        "(records and seconds), the newest cosigned checkpoint and its cosignature's\n"
        "age. Exits 1 if the background verifier found damage.\n");
    cmd.run = [](Client& c, const Command&) { return RunMetrics(c); };
  }
  {
    Command& cmd =
        registry.Add("export",
                     "usage: ledgerctl export --out=FILE|- [--from=N | --since=NOTE] [--to=M]\n"
                     "                        [--payloads=full|commitments]\n",
                     "Writes an export bundle (ledger/BUNDLE.md) for auditors: records, payload\n"
                     "commitments, signed checkpoints and the log's key, streamed, with progress.\n"
                     "Check it offline with ledger_verify --bundle=FILE --key=KEY.\n");
    auto& f = registry.Own<ExportFlags>();
    AddString(cmd.app, "--out", &f.out, "FILE",
              "where to write (- for stdout); written to FILE.partial and\n"
              "renamed when complete");
    AddUint(cmd.app, "--from", &f.from, "N",
            "first record (default 0); a range carries the proofs that\n"
            "tie it to the tree before it");
    AddString(cmd.app, "--since", &f.since, "NOTE",
              "start at the size of this checkpoint note (the one\n"
              "ledger_verify --save_note kept): an incremental audit");
    AddUint(cmd.app, "--to", &f.to, "M",
            "end before record M (default: the latest checkpoint's size,\n"
            "so a signature covers every exported record)");
    AddString(cmd.app, "--payloads", &f.payloads, "P",
              "full (default): payloads as stored, encrypted ones stay\n"
              "encrypted; commitments: only what the record commits to");
    cmd.run = [&f](Client& c, const Command& cmd) { return RunExport(c, cmd, f); };
  }
}

}  // namespace caseledger::ledgerctl
