// ledgerctl history, verify-history, render-history, read-record and
// access-report: a client's record history, verified and shown to them, and
// who read it.
#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "ledger/checkpoint.h"
#include "ledger/cosignature.h"
#include "ledger/hash.h"
#include "ledger/internal/json.h"
#include "ledger/internal/status_macros.h"
#include "proto/access.grpc.pb.h"
#include "proto/audit.grpc.pb.h"
#include "services/history/history_bundle.h"
#include "services/history/history_render.h"
#include "tools/ledgerctl/cli.h"
#include "tools/ledgerctl/commands.h"
#include "tools/ledgerctl/context.h"
#include "tools/ledgerctl/ledgerctl_lib.h"

namespace caseledger::ledgerctl {
namespace {

absl::StatusOr<v1::HistoryBundle> LoadBundle(const std::string& path) {
  CL_ASSIGN_OR_RETURN(std::string bytes, ReadFileBytes(path));
  v1::HistoryBundle b;
  if (!b.ParseFromString(bytes)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a caseledger.v1.HistoryBundle (binary protobuf)"));
  }
  return b;
}

// Fetches the history until its checkpoint carries cosignatures by
// `policy`'s quorum of witnesses, or `wait` has passed. Witnesses cosign the
// newest checkpoint each time they run, and every fetch is itself recorded
// (a newer checkpoint), so a bundle's checkpoint is cosigned only if a
// witness ran before the fetch: between fetches this waits, polling
// WitnessService.GetCosignedCheckpoint once a second, until a witness has
// cosigned a checkpoint at least as new as the last bundle's, then fetches
// again (from the newest checkpoint). Each fetch is recorded as a read.
absl::StatusOr<v1::HistoryBundle> FetchCosignedHistory(Client& c, v1::GetRecordHistoryRequest req,
                                                       const WitnessPolicy& policy,
                                                       absl::Duration wait) {
  auto access = v1::AccessService::NewStub(c.channel());
  auto witness = v1::WitnessService::NewStub(c.channel());
  const absl::Time deadline = absl::Now() + wait;
  bool told = false;
  while (true) {
    grpc::ClientContext ctx;
    c.SetDeadline(&ctx);
    v1::HistoryBundle bundle;
    CL_RETURN_IF_ERROR(
        FromGrpc(access->GetRecordHistory(&ctx, req, &bundle), "GetRecordHistory", c.options()));
    if (policy.quorum == 0) return bundle;
    absl::StatusOr<std::vector<Cosignature>> have =
        VerifyCosignatureQuorum(bundle.checkpoint_note(), policy.witnesses, policy.quorum);
    if (have.ok()) return bundle;
    if (have.status().code() != absl::StatusCode::kFailedPrecondition) return have.status();
    CL_ASSIGN_OR_RETURN(Checkpoint unverified, ParseCheckpointNote(bundle.checkpoint_note()));
    const uint64_t size = unverified.size;
    while (true) {
      if (absl::Now() >= deadline) {
        return absl::FailedPreconditionError(absl::StrCat(
            "the history's checkpoint (size ", size,
            ") is not cosigned as you require: ", have.status().message(),
            wait > absl::ZeroDuration() ? absl::StrCat("; no witness cosigned a newer one within ",
                                                       absl::FormatDuration(wait))
                                        : "",
            ". Witnesses cosign the newest checkpoint each time they run: try again with "
            "--wait=5m, or later"));
      }
      if (!told && !c.options().json) {
        std::fprintf(stderr, "waiting up to %s for the witnesses to cosign the history...\n",
                     absl::FormatDuration(deadline - absl::Now()).c_str());
        told = true;
      }
      absl::SleepFor(absl::Seconds(1));
      grpc::ClientContext wctx;
      c.SetDeadline(&wctx);
      v1::GetCosignedCheckpointRequest wreq;
      wreq.set_cosigned_only(true);
      v1::CosignedCheckpoint newest;
      grpc::Status got = witness->GetCosignedCheckpoint(&wctx, wreq, &newest);
      if (got.error_code() == grpc::StatusCode::NOT_FOUND) continue;  // none cosigned yet
      CL_RETURN_IF_ERROR(FromGrpc(got, "GetCosignedCheckpoint", c.options()));
      if (newest.checkpoint().size() >= size) break;
    }
    req.set_current(false);  // the newest checkpoint, which a witness may have cosigned
  }
}

struct HistoryFlags {
  std::optional<std::string> subject;
  std::optional<std::string> out;
  std::optional<std::string> since;
  bool current = false;
  std::optional<std::string> accessor;
  std::optional<std::string> role;
  std::optional<std::string> purpose;
  std::optional<std::string> request;
  std::optional<std::string> case_id;
  WitnessFlags witnesses;
  std::optional<std::string> wait;
};

int RunHistory(Client& c, const Command& cmd, const HistoryFlags& f) {
  if (!f.subject) return Usage(cmd, "--subject is required");
  if (!f.out) return Usage(cmd, "--out is required");
  v1::GetRecordHistoryRequest req;
  req.set_subject_id(*f.subject);
  req.mutable_accessor()->set_accessor_id(f.accessor.value_or(*f.subject));
  req.mutable_accessor()->set_role(f.role.value_or("client"));
  req.mutable_accessor()->set_purpose(f.purpose.value_or("right of access"));
  req.set_current(f.current);
  if (f.request) req.set_request_id(*f.request);
  if (f.case_id) req.set_case_id(*f.case_id);
  if (f.since) {
    absl::StatusOr<std::string> note = ReadFileBytes(*f.since);
    if (!note.ok()) return Fail("history", note.status());
    absl::StatusOr<Checkpoint> since = ParseCheckpointNote(*note);
    if (!since.ok()) return Fail("history", since.status());
    req.set_since_size(since->size);
  }
  absl::StatusOr<WitnessPolicy> witnesses = WitnessPolicyOf(f.witnesses);
  if (!witnesses.ok()) return Usage(cmd, witnesses.status().message());
  absl::Duration wait = absl::ZeroDuration();
  if (f.wait && (!absl::ParseDuration(*f.wait, &wait) || wait < absl::ZeroDuration())) {
    return Usage(cmd,
                 absl::StrCat("--wait: got \"", *f.wait, "\", want a duration such as 90s or 5m"));
  }
  absl::StatusOr<v1::HistoryBundle> fetched = FetchCosignedHistory(c, req, *witnesses, wait);
  if (!fetched.ok()) return Fail("history", fetched.status());
  const v1::HistoryBundle& bundle = *fetched;
  std::string bytes = bundle.SerializeAsString();
  if (absl::Status w = WriteFileBytes(*f.out, bytes); !w.ok()) return Fail("history", w);
  if (c.options().json) {
    std::printf("%s\n", JsonObject()
                            .Add("subject", bundle.subject_id())
                            .Add("records", static_cast<uint64_t>(bundle.records_size()))
                            .Add("bytes", static_cast<uint64_t>(bytes.size()))
                            .Add("sha256", ToHex(Sha256Of(bytes)))
                            .Add("out", *f.out)
                            .str()
                            .c_str());
  } else {
    std::printf(
        "wrote %s: %d records of %s, %zu bytes, sha256 %s\n"
        "check it with: ledgerctl verify-history %s --key=KEY\n",
        f.out->c_str(), bundle.records_size(), bundle.subject_id().c_str(), bytes.size(),
        ToHex(Sha256Of(bytes)).c_str(), f.out->c_str());
  }
  return kExitOk;
}

// The flags of verify-history and render-history that say what to trust.
struct BundleCheckFlags {
  std::vector<std::string> args;  // BUNDLE
  KeyFlags key;
  std::optional<std::string> since;
  std::optional<std::string> subject;
  WitnessFlags witnesses;
};

void AddBundleCheckFlags(CLI::App* app, BundleCheckFlags* f) {
  AddPositionals(app, &f->args);
  AddKeyFlags(app, &f->key, "the log's verifier key (or a file holding it)");
  AddString(app, "--subject", &f->subject, "ID", "refuse a bundle that is not ID's history");
  AddString(app, "--since", &f->since, "NOTE",
            "a checkpoint note you kept (e.g. from verify-history --save_note)");
  AddWitnessFlags(app, &f->witnesses);
}

// Loads and verifies BUNDLE with --key [--origin] [--since] [--subject]
// [--witness_keys [--quorum]].
absl::StatusOr<std::pair<v1::HistoryBundle, HistoryVerification>> VerifyBundleArgs(
    const BundleCheckFlags& f) {
  CL_ASSIGN_OR_RETURN(NoteVerifier v, LoadVerifier(*f.key.key));
  HistoryVerifyOptions options;
  options.log_key = &v;
  if (f.key.origin) options.origin = *f.key.origin;
  if (f.since) {
    CL_ASSIGN_OR_RETURN(options.since_note, ReadFileBytes(*f.since));
  }
  if (f.subject) options.subject_id = *f.subject;
  CL_ASSIGN_OR_RETURN(WitnessPolicy witnesses, WitnessPolicyOf(f.witnesses));
  options.witnesses = std::move(witnesses.witnesses);
  options.quorum = witnesses.quorum;
  CL_ASSIGN_OR_RETURN(v1::HistoryBundle bundle, LoadBundle(f.args[0]));
  CL_ASSIGN_OR_RETURN(HistoryVerification h, VerifyHistoryBundle(bundle, options));
  return std::make_pair(std::move(bundle), std::move(h));
}

struct VerifyHistoryFlags {
  BundleCheckFlags check;
  std::optional<std::string> save_note;
};

int RunVerifyHistory(Client& c, const Command& cmd, const VerifyHistoryFlags& f) {
  if (f.check.args.size() != 1 || !f.check.key.key) {
    return Usage(cmd, "want BUNDLE and --key=KEY_OR_FILE");
  }
  auto verified = VerifyBundleArgs(f.check);
  if (!verified.ok()) {
    if (c.options().json) {
      std::printf("%s\n", JsonObject()
                              .Add("verified", false)
                              .Add("error", verified.status().ToString())
                              .str()
                              .c_str());
    }
    return Fail("verify-history", verified.status());
  }
  const HistoryVerification& h = verified->second;
  if (f.save_note) {
    absl::Status w = WriteFileBytes(*f.save_note, verified->first.checkpoint_note());
    if (!w.ok()) return Fail("verify-history", w);
  }
  if (c.options().json) {
    std::string checks = "[";
    for (size_t i = 0; i < h.checks.size(); ++i) {
      absl::StrAppend(&checks, i ? "," : "", JsonQuote(h.checks[i]));
    }
    checks += "]";
    std::printf("%s\n", JsonObject()
                            .Add("verified", true)
                            .Add("subject", h.subject_id)
                            .Add("records", static_cast<uint64_t>(h.records.size()))
                            .Add("checkpoint_size", h.checkpoint.size)
                            .AddRaw("checks", checks)
                            .str()
                            .c_str());
  } else {
    for (const std::string& line : h.checks) std::printf("OK  %s\n", line.c_str());
    std::printf("history of %s verified: %zu records, complete as of checkpoint size %llu\n",
                h.subject_id.c_str(), h.records.size(),
                static_cast<unsigned long long>(h.checkpoint.size));
  }
  return kExitOk;
}

struct RenderHistoryFlags {
  BundleCheckFlags check;
  std::optional<std::string> html;
  std::optional<std::string> lang;
  std::optional<std::string> tz;
};

int RunRenderHistory(const Command& cmd, const RenderHistoryFlags& f) {
  if (f.check.args.size() != 1 || !f.check.key.key) {
    return Usage(cmd, "want BUNDLE and --key=KEY_OR_FILE");
  }
  RenderOptions options;
  if (f.lang) {
    options.lang = *f.lang;
    bool known = false;
    std::string langs;
    for (const std::string& l : SupportedLanguages()) {
      known |= l == options.lang;
      absl::StrAppend(&langs, langs.empty() ? "" : ", ", l);
    }
    if (!known) {
      return Usage(cmd, absl::StrCat("--lang: got \"", options.lang, "\", want one of: ", langs));
    }
  }
  if (f.tz && !absl::LoadTimeZone(*f.tz, &options.time_zone)) {
    return Usage(cmd, absl::StrCat("--tz: got \"", *f.tz,
                                   "\", want a time zone name such as UTC or America/Los_Angeles"));
  }
  auto verified = VerifyBundleArgs(f.check);
  if (!verified.ok()) return Fail("render-history", verified.status());
  if (f.html) {
    absl::StatusOr<std::string> html = RenderHistoryHtml(verified->second, options);
    if (!html.ok()) return Fail("render-history", html.status());
    absl::Status w = WriteFileBytes(*f.html, *html);
    if (!w.ok()) return Fail("render-history", w);
    std::fprintf(stderr, "wrote %s\n", f.html->c_str());
  } else {
    absl::StatusOr<std::string> text = RenderHistoryText(verified->second, options);
    if (!text.ok()) return Fail("render-history", text.status());
    std::printf("%s", text->c_str());
  }
  return kExitOk;
}

struct ReadRecordFlags {
  std::optional<uint64_t> seq;
  std::optional<std::string> subject;
  std::optional<std::string> purpose;
  bool full_view = false;
  std::optional<std::string> accessor;
  std::optional<std::string> role;
};

int RunReadRecord(Client& c, const Command& cmd, const ReadRecordFlags& f) {
  if (!f.seq) return Usage(cmd, "--seq is required");
  v1::ReadRecordRequest req;
  req.set_seq(*f.seq);
  req.set_subject_id(f.subject.value_or(""));
  req.set_full_view(f.full_view);
  v1::Accessor* accessor = req.mutable_accessor();
  // With mutual TLS the server names the reader from the certificate.
  const bool by_subject = !req.subject_id().empty();
  accessor->set_accessor_id(f.accessor.value_or(by_subject ? req.subject_id() : "local"));
  accessor->set_role(f.role.value_or(by_subject ? "client" : "local"));
  accessor->set_purpose(f.purpose.value_or("right of access"));
  auto stub = v1::AccessService::NewStub(c.channel());
  grpc::ClientContext ctx;
  c.SetDeadline(&ctx);
  v1::ReadRecordResponse resp;
  absl::Status s = FromGrpc(stub->ReadRecord(&ctx, req, &resp), "ReadRecord", c.options());
  if (!s.ok()) return Fail("read-record", s);
  if (c.options().json) {
    std::printf("%s\n", ToJson(resp).c_str());
    return kExitOk;
  }
  std::string withheld;
  for (const std::string& w : resp.withheld_fields()) {
    absl::StrAppend(&withheld, withheld.empty() ? "" : ", ", w);
  }
  std::printf("record %llu: %s\nwithheld: %s\n",
              static_cast<unsigned long long>(resp.record().seq()), resp.event_json().c_str(),
              withheld.empty() ? "nothing" : withheld.c_str());
  return kExitOk;
}

int RunAccessReport(Client& c, const Command& cmd, const std::optional<std::string>& subject) {
  if (!subject) return Usage(cmd, "--subject is required");
  if (absl::Status s = c.Connect(); !s.ok()) return Fail("access-report", s);
  auto stub = v1::AccessService::NewStub(c.channel());
  grpc::ClientContext ctx;
  c.SetDeadline(&ctx);
  v1::GetAccessReportRequest req;
  req.set_subject_id(*subject);
  v1::AccessReport report;
  absl::Status s =
      FromGrpc(stub->GetAccessReport(&ctx, req, &report), "GetAccessReport", c.options());
  if (!s.ok()) return Fail("access-report", s);
  if (c.options().json) {
    std::printf("%s\n", ToJson(report, true).c_str());
    return kExitOk;
  }
  for (const v1::AccessReportEntry& e : report.entries()) {
    std::string seqs;
    for (uint64_t q : e.seqs()) absl::StrAppend(&seqs, seqs.empty() ? "" : ",", q);
    std::printf("%s  %s (%s)  purpose: %s  records: %s\n",
                absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixSeconds(e.at().seconds()),
                                 absl::UTCTimeZone())
                    .c_str(),
                e.accessor_id().c_str(), e.accessor_role().c_str(), e.purpose().c_str(),
                seqs.c_str());
  }
  std::fprintf(stderr, "%d accesses to records of %s, as of tree size %llu\n",
               report.entries_size(), report.subject_id().c_str(),
               static_cast<unsigned long long>(report.as_of_size()));
  return kExitOk;
}

}  // namespace

void AddHistoryCommands(Registry& registry) {
  {
    Command& cmd = registry.Add(
        "history",
        "usage: ledgerctl history --subject=ID --out=BUNDLE [--since=NOTEFILE] [--current]\n"
        "                         [--accessor=ID] [--role=R] [--purpose=P] [--request=ID "
        "--case=ID]\n"
        "                         [--witness_keys=K1,K2|FILE [--quorum=Q] [--wait=5m]]\n",
        "Fetches a client's record history (AccessService.GetRecordHistory) and writes\n"
        "the bundle (binary caseledger.v1.HistoryBundle) to BUNDLE. The read is recorded\n"
        "as an access event. Check the file with verify-history.\n");
    auto& f = registry.Own<HistoryFlags>();
    AddString(cmd.app, "--subject", &f.subject, "ID", "the client (data subject)");
    AddString(cmd.app, "--out", &f.out, "BUNDLE", "where to write the bundle");
    AddString(cmd.app, "--since", &f.since, "NOTE",
              "a checkpoint note kept from before: the bundle then proves\n"
              "consistency with it");
    AddFlag(cmd.app, "--current", &f.current, "sign a checkpoint covering every record first");
    AddString(cmd.app, "--accessor", &f.accessor, "ID", "who reads (default: the subject)");
    AddString(cmd.app, "--role", &f.role, "R", "their role (default \"client\")");
    AddString(cmd.app, "--purpose", &f.purpose, "P", "why (default \"right of access\")");
    AddString(cmd.app, "--request", &f.request, "ID",
              "with --case: the access request this fulfils (appends\n"
              "access_fulfilled with the bundle's SHA-256)");
    AddString(cmd.app, "--case", &f.case_id, "ID", "the case of --request");
    AddWitnessFlags(cmd.app, &f.witnesses);
    AddString(cmd.app, "--wait", &f.wait, "D",
              "how long to wait for the witnesses to cosign (default 0: fail\n"
              "at once if they have not); each fetch while waiting is recorded");
    cmd.run = [&f](Client& c, const Command& cmd) { return RunHistory(c, cmd, f); };
  }
  {
    Command& cmd = registry.Add(
        "verify-history",
        "usage: ledgerctl verify-history BUNDLE --key=KEY_OR_FILE [--subject=ID] [--origin=O]\n"
        "                                [--since=NOTEFILE] [--save_note=NOTEFILE]\n"
        "                                [--witness_keys=K1,K2|FILE [--quorum=Q]]\n",
        "Checks a history bundle offline: the checkpoint's signature (and, with\n"
        "--witness_keys, that enough witnesses you trust cosigned it), the subject index\n"
        "proof (how many records the subject has, and their chain head), that the bundle\n"
        "holds exactly those records in order, each naming the subject, each leaf hash\n"
        "included in the checkpoint's tree, the redaction (fields about other people\n"
        "withheld, every other field shown or withheld for a stated reason), the\n"
        "accounting of disclosures against the records, and with --since, that your\n"
        "earlier checkpoint is a prefix of the bundle's. Prints each check; exits 1 with\n"
        "the reason on the first failure.\n");
    auto& f = registry.Own<VerifyHistoryFlags>();
    AddBundleCheckFlags(cmd.app, &f.check);
    AddString(cmd.app, "--save_note", &f.save_note, "F",
              "after success, write the bundle's checkpoint note to F");
    cmd.run = [&f](Client& c, const Command& cmd) { return RunVerifyHistory(c, cmd, f); };
  }
  {
    Command& cmd = registry.Add(
        "render-history",
        "usage: ledgerctl render-history BUNDLE --key=KEY_OR_FILE [--since=NOTEFILE] "
        "[--html=OUT]\n"
        "                                [--lang=en|es] [--tz=ZONE]\n",
        "Verifies BUNDLE as verify-history does, then shows it to the person it is\n"
        "about, in plain words: whether it is complete and unaltered, each entry as a\n"
        "sentence, who their information was shared with, who looked at their record,\n"
        "and how this was checked. Prints text, or writes a standalone HTML page (no\n"
        "scripts, nothing fetched; readable on a phone, printable) to OUT.\n");
    auto& f = registry.Own<RenderHistoryFlags>();
    AddBundleCheckFlags(cmd.app, &f.check);
    AddString(cmd.app, "--html", &f.html, "OUT",
              "write the HTML page to OUT instead of printing text");
    AddString(cmd.app, "--lang", &f.lang, "L",
              "the page's language: en (English, the default) or es (Spanish)");
    AddString(cmd.app, "--tz", &f.tz, "ZONE",
              "show dates and times in ZONE, e.g. America/Los_Angeles\n"
              "(default UTC); the zone is named next to each time");
    cmd.run = [&f](Client&, const Command& cmd) { return RunRenderHistory(cmd, f); };
  }
  {
    Command& cmd = registry.Add(
        "read-record",
        "usage: ledgerctl read-record --seq=N [--subject=ID] [--purpose=P] [--full_view]\n"
        "                             [--accessor=ID] [--role=R]\n",
        "Prints one record's content, as its reader may see it\n"
        "(AccessService.ReadRecord): the event as JSON and the fields withheld. The\n"
        "read is recorded as an access event in the record's case.\n");
    auto& f = registry.Own<ReadRecordFlags>();
    AddUint(cmd.app, "--seq", &f.seq, "N", "the record");
    AddString(cmd.app, "--subject", &f.subject, "ID",
              "the client (data subject) the record is about: a client reads\n"
              "only records that name their own id; an auditor may leave it\n"
              "out (their audit grant must cover the record's case)");
    AddString(cmd.app, "--purpose", &f.purpose, "P",
              "why (default \"right of access\"); recorded with the read");
    AddFlag(cmd.app, "--full_view", &f.full_view,
            "protected fields too (staff with a need to know; never a client)");
    AddString(cmd.app, "--accessor", &f.accessor, "ID",
              "who reads, on a plaintext loopback server (default: the\n"
              "subject, or \"local\" without --subject); with mutual TLS the\n"
              "certificate says who reads");
    AddString(cmd.app, "--role", &f.role, "R",
              "their role (default: \"client\", or \"local\" without --subject)");
    cmd.run = [&f](Client& c, const Command& cmd) { return RunReadRecord(c, cmd, f); };
  }
  {
    Command& cmd = registry.Add("access-report", "usage: ledgerctl access-report --subject=ID\n",
                                "Who accessed a client's records: every recorded read (who, role, "
                                "purpose,\nwhich records, when), from "
                                "AccessService.GetAccessReport.\n");
    auto& subject = registry.Own<std::optional<std::string>>();
    AddString(cmd.app, "--subject", &subject, "ID", "the client (data subject)");
    cmd.run = [&subject](Client& c, const Command& cmd) {
      return RunAccessReport(c, cmd, subject);
    };
  }
}

}  // namespace caseledger::ledgerctl
