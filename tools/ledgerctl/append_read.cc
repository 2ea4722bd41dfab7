// ledgerctl append, read, tail and status: writing events and reading the
// log back.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <deque>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "ledger/hash.h"
#include "proto/audit.grpc.pb.h"
#include "proto/ledger.grpc.pb.h"
#include "services/metrics/integrity.h"
#include "services/cluster/cluster_client.h"
#include "tools/ledgerctl/cli.h"
#include "tools/ledgerctl/commands.h"
#include "tools/ledgerctl/context.h"
#include "tools/ledgerctl/ledgerctl_lib.h"

namespace caseledger::ledgerctl {
namespace {

// Calls `call(client, ctx)` at `c` and, when a partitioned server
// (--pg_partitions > 1) refuses it because another node owns the case's
// partition, naming that node (kOwnerTrailer), makes the same call there, at
// most 3 hops (ledger/CLUSTER.md "Serving P > 1"). A redirected call has
// written nothing. The status of the last call made.
template <typename Call>
absl::Status CallAtOwner(Client& c, const Call& call) {
  std::unique_ptr<Client> redirected;
  Client* at = &c;
  for (int hops = 0;; ++hops) {
    grpc::ClientContext ctx;
    absl::Status s = call(*at, &ctx);
    const std::string owner = RedirectAddress(ctx);
    if (s.ok() || owner.empty() || hops == 3) return s;
    Options o = at->options();
    o.server = owner;
    o.channel.target = owner;
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = NewChannel(o.channel);
    if (!channel.ok()) return channel.status();
    redirected = std::make_unique<Client>(o, *std::move(channel));
    at = redirected.get();
  }
}

std::string AppendJson(const v1::AppendResponse& r, uint64_t line) {
  JsonObject o;
  if (line > 0) o.Add("line", line);
  absl::StatusOr<Hash> leaf = HashFromBytes(r.leaf_hash());
  return o.Add("seq", static_cast<uint64_t>(r.seq()))
      .Add("version", static_cast<uint64_t>(r.version()))
      .Add("leaf_hash", leaf.ok() ? ToHex(*leaf) : "")
      .Add("duplicate", r.duplicate())
      .str();
}

int AppendOne(Client& c, const std::string& json) {
  absl::StatusOr<v1::AppendRequest> req = ParseEventJson(json, absl::Now());
  if (!req.ok())
    return Fail("append", absl::Status(req.status().code(),
                                       absl::StrCat("--event: ", req.status().message())));
  return SendAppend(c, "append", *req);
}

// Reads events from `path` ("-" for stdin) and pipelines them over one
// AppendStream. A regular file is parsed whole first, so that a malformed
// line appends nothing.
int AppendMany(Client& c, const std::string& path) {
  std::ifstream file;
  if (path != "-") {
    file.open(path);
    if (!file)
      return Fail("append", absl::NotFoundError(absl::StrCat("--file: cannot open ", path)));
  }
  std::istream& in = path == "-" ? std::cin : file;
  uint64_t total = 0;
  std::string line;
  if (path != "-") {
    for (uint64_t n = 1; std::getline(in, line); ++n) {
      if (IsBlankLine(line)) continue;
      absl::StatusOr<v1::AppendRequest> req = ParseEventJson(line, absl::Now());
      if (!req.ok()) {
        std::fprintf(stderr, "ledgerctl append: line %llu: %s (nothing was sent)\n",
                     static_cast<unsigned long long>(n), req.status().ToString().c_str());
        return kExitFailure;
      }
      ++total;
    }
    in.clear();
    in.seekg(0);
  }

  const bool progress = isatty(STDERR_FILENO) && (total == 0 || total >= 1000);
  grpc::ClientContext ctx;
  auto stream = c.stub().AppendStream(&ctx);
  absl::Mutex mu;
  std::deque<uint64_t> pending_lines;  // line numbers of requests sent, not yet answered
  absl::Status parse_error;            // set by the writer, with parse_line
  uint64_t parse_line = 0;
  std::thread writer([&] {
    std::string l;
    for (uint64_t n = 1; std::getline(in, l); ++n) {
      if (IsBlankLine(l)) continue;
      absl::StatusOr<v1::AppendRequest> req = ParseEventJson(l, absl::Now());
      absl::MutexLock lock(&mu);
      if (!req.ok()) {
        parse_error = req.status();
        parse_line = n;
        break;
      }
      pending_lines.push_back(n);
      mu.Unlock();
      bool ok = stream->Write(*req);
      mu.Lock();
      if (!ok) break;  // the server ended the stream; Finish says why
    }
    stream->WritesDone();
  });

  absl::Time start = absl::Now();
  absl::Time last_progress = start;
  uint64_t appended = 0, duplicates = 0;
  v1::AppendResponse resp;
  while (stream->Read(&resp)) {
    uint64_t n;
    {
      absl::MutexLock lock(&mu);
      n = pending_lines.front();
      pending_lines.pop_front();
    }
    (resp.duplicate() ? duplicates : appended)++;
    if (c.options().json) std::printf("%s\n", AppendJson(resp, n).c_str());
    if (progress && absl::Now() - last_progress > absl::Milliseconds(100)) {
      last_progress = absl::Now();
      std::fprintf(stderr, "\r\033[K%s",
                   ProgressLine(appended + duplicates, total, last_progress - start).c_str());
    }
  }
  writer.join();
  absl::Status status = FromGrpc(stream->Finish(), "AppendStream", c.options());
  absl::Duration elapsed = absl::Now() - start;
  if (progress) std::fprintf(stderr, "\r\033[K");
  uint64_t done = appended + duplicates;
  double secs = std::max(absl::ToDoubleSeconds(elapsed), 1e-6);
  std::string summary = absl::StrFormat("%d appended, %d duplicates in %.2fs (%.0f events/s)",
                                        appended, duplicates, secs, done / secs);
  std::fprintf(c.options().json ? stderr : stdout, "%s\n", summary.c_str());
  if (!status.ok()) {
    absl::MutexLock lock(&mu);
    std::string where = pending_lines.empty() ? "after the last line"
                                              : absl::StrCat("line ", pending_lines.front());
    std::fprintf(stderr,
                 "ledgerctl append: %s: %s\n"
                 "  Lines before it were stored. Fix it and run the same input again: events\n"
                 "  already stored come back as duplicates.\n",
                 where.c_str(), status.ToString().c_str());
    return kExitFailure;
  }
  absl::MutexLock lock(&mu);
  if (!parse_error.ok()) {
    std::fprintf(stderr, "ledgerctl append: line %llu: %s (lines before it were stored)\n",
                 static_cast<unsigned long long>(parse_line), parse_error.ToString().c_str());
    return kExitFailure;
  }
  return kExitOk;
}

// ---- read / tail ----------------------------------------------------------

void PrintRecord(const Options& o, const v1::Record& r, bool first) {
  if (o.json) {
    std::printf("%s\n", ToJson(r, /*all_fields=*/true).c_str());
  } else {
    std::printf("%s%s", first ? "" : "\n", FormatRecordText(r).c_str());
  }
  std::fflush(stdout);
}

struct AppendFlags {
  std::optional<std::string> event;
  std::optional<std::string> file;
  std::vector<std::string> args;
};

int RunAppend(Client& c, const Command& cmd, const AppendFlags& f) {
  std::string file = f.file.value_or("");
  if (f.args.size() == 1 && f.args[0] == "-" && file.empty()) {
    file = "-";
  } else if (!f.args.empty()) {
    return Usage(cmd, absl::StrCat("unexpected argument \"", f.args[0], "\""));
  }
  if (f.event.has_value() == !file.empty()) {
    return Usage(cmd, "give exactly one of --event=JSON, --file=F or - (stdin)");
  }
  if (file == "-" && isatty(STDIN_FILENO)) {
    std::fprintf(stderr, "reading JSON lines from stdin (Ctrl-D to end)\n");
  }
  absl::Status connected = c.Connect();
  if (!connected.ok()) return Fail("append", connected);
  return f.event ? AppendOne(c, *f.event) : AppendMany(c, file);
}

struct ReadFlags {
  std::optional<std::string> stream;
  std::optional<uint64_t> from_version;
  std::optional<uint64_t> from_seq;
  std::optional<uint64_t> limit;
};

int RunRead(Client& c, const Command& cmd, const ReadFlags& f) {
  const bool by_stream = f.stream.has_value();
  if (by_stream && f.from_seq) return Usage(cmd, "--stream and --from_seq do not go together");
  if (!by_stream && f.from_version) return Usage(cmd, "--from_version needs --stream");
  const uint64_t from = by_stream ? f.from_version.value_or(0) : f.from_seq.value_or(0);
  const uint64_t limit = f.limit.value_or(0);
  if (limit > UINT32_MAX) return Usage(cmd, "--limit: at most 4294967295");
  if (absl::Status s = c.Connect(); !s.ok()) return Fail("read", s);
  uint64_t n = 0;
  // A case's stream is read from the owner of its partition (P > 1).
  absl::Status s = CallAtOwner(c, [&](Client& at, grpc::ClientContext* ctx) {
    std::unique_ptr<grpc::ClientReader<v1::Record>> reader;
    if (by_stream) {
      v1::ReadStreamRequest req;
      req.set_stream_id(*f.stream);
      req.set_from_version(from);
      req.set_limit(static_cast<uint32_t>(limit));
      reader = at.stub().ReadStream(ctx, req);
    } else {
      v1::ReadLogRequest req;
      req.set_from_seq(from);
      req.set_limit(static_cast<uint32_t>(limit));
      reader = at.stub().ReadLog(ctx, req);
    }
    v1::Record r;
    while (reader->Read(&r)) PrintRecord(at.options(), r, n++ == 0);
    return FromGrpc(reader->Finish(), by_stream ? "ReadStream" : "ReadLog", at.options());
  });
  if (!s.ok()) return Fail("read", s);
  if (n == 0 && !c.options().json) std::fprintf(stderr, "no records\n");
  return kExitOk;
}

struct TailFlags {
  std::optional<uint64_t> from_seq;
  std::optional<uint64_t> count;
};

int RunTail(Client& c, const TailFlags& f) {
  const uint64_t count = f.count.value_or(0);
  if (absl::Status s = c.Connect(); !s.ok()) return Fail("tail", s);
  uint64_t from = f.from_seq.value_or(0);
  if (!f.from_seq) {
    absl::StatusOr<uint64_t> size = c.TreeSize(0);
    if (!size.ok()) return Fail("tail", size.status());
    from = *size;
  }
  if (!c.options().json && isatty(STDERR_FILENO)) {
    std::fprintf(stderr, "following from seq %llu (Ctrl-C to stop)\n",
                 static_cast<unsigned long long>(from));
  }
  // Shared with the signal thread, which may outlive this function when the
  // count is reached first.
  auto ctx = std::make_shared<grpc::ClientContext>();
  std::thread([ctx] {
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    int sig;
    sigwait(&stop, &sig);
    ctx->TryCancel();
  }).detach();
  v1::SubscribeRequest req;
  req.set_from_seq(from);
  auto reader = c.stub().Subscribe(ctx.get(), req);
  v1::Record r;
  uint64_t n = 0;
  while ((count == 0 || n < count) && reader->Read(&r)) PrintRecord(c.options(), r, n++ == 0);
  if (count > 0 && n >= count) ctx->TryCancel();
  grpc::Status st = reader->Finish();
  if (st.error_code() == grpc::StatusCode::CANCELLED) return kExitOk;  // by us
  absl::Status s = FromGrpc(st, "Subscribe", c.options());
  return s.ok() ? kExitOk : Fail("tail", s);
}

// The integrity health entry (services/metrics/INTEGRITY.md), with the first
// bad seq when AuditService.GetMetrics tells it to this caller.
std::string IntegrityLine(Client& c) {
  absl::StatusOr<std::string> h = c.Health(kIntegrityHealthService);
  if (!h.ok()) return absl::StrCat("unknown (", h.status().ToString(), ")");
  if (*h == "SERVING") return "ok (no damaged record found)";
  std::string line = "DAMAGED";
  auto audit = v1::AuditService::NewStub(c.channel());
  grpc::ClientContext ctx;
  c.SetDeadline(&ctx);
  v1::LedgerMetrics m;
  if (audit->GetMetrics(&ctx, v1::GetMetricsRequest(), &m).ok() && m.verification_failed()) {
    absl::StrAppend(&line, ": first bad record at seq ", m.first_bad_seq());
  }
  absl::StrAppend(&line, "; appends refused, reads, proofs and exports still answer (health ",
                  *h, ")");
  return line;
}

int RunStatus(Client& c) {
  if (absl::Status s = c.Connect(); !s.ok()) return Fail("status", s);
  absl::StatusOr<std::string> health = c.Health();
  const std::string integrity = IntegrityLine(c);
  absl::StatusOr<v1::PublicKey> pk = c.GetPublicKey();
  if (!pk.ok()) return Fail("status", pk.status());
  absl::StatusOr<v1::Checkpoint> cp = c.GetCheckpoint(0);
  bool empty = cp.status().code() == absl::StatusCode::kFailedPrecondition;
  if (!cp.ok() && !empty) return Fail("status", cp.status());
  uint64_t cp_size = cp.ok() ? cp->size() : 0;
  absl::StatusOr<uint64_t> size = c.TreeSize(cp_size);
  if (!size.ok()) return Fail("status", size.status());
  // A checkpoint carries no signing time; the commit time of its last record
  // bounds its age from below.
  std::string cp_text = "none (empty ledger)", root_hex, last_commit, age;
  if (cp.ok() && cp_size > 0) {
    absl::StatusOr<Hash> root = HashFromBytes(cp->root_hash());
    root_hex = root.ok() ? ToHex(*root) : "(malformed)";
    cp_text = absl::StrCat("size ", cp_size, ", root ", root.ok() ? ShortHex(*root) : root_hex);
    absl::StatusOr<std::optional<v1::Record>> last = c.ReadOne(cp_size - 1);
    if (last.ok() && last->has_value()) {
      const auto& t = (*last)->commit_time();
      last_commit = FormatTimestamp(t.seconds(), t.nanos());
      age = FormatAge(absl::Now() -
                      (absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos())));
      absl::StrAppend(&cp_text, ", covers records committed up to ", last_commit, " (", age,
                      " ago)");
    }
  }
  std::string health_text = health.ok() ? *health : health.status().ToString();
  if (c.options().json) {
    JsonObject o;
    o.Add("server", c.options().server).Add("health", health_text).Add("tree_size", *size);
    o.Add("checkpoint_size", cp_size).Add("checkpoint_root_hash", root_hex);
    o.Add("checkpoint_last_commit", last_commit).Add("verifier_key", pk->verifier_key());
    o.Add("origin", pk->origin()).Add("integrity", integrity);
    std::printf("%s\n", o.str().c_str());
  } else {
    std::printf(
        "integrity     %s\nserver        %s\nhealth        %s\ntree size     %llu\n"
        "checkpoint    %s\nverifier key  %s\norigin        %s\n",
        integrity.c_str(), c.options().server.c_str(), health_text.c_str(), static_cast<unsigned long long>(*size),
        cp_text.c_str(), pk->verifier_key().c_str(), pk->origin().c_str());
  }
  const bool intact = !absl::StartsWith(integrity, "DAMAGED");
  return health.ok() && *health == "SERVING" && intact ? kExitOk : kExitFailure;
}

}  // namespace

int SendAppend(Client& c, const char* command, const v1::AppendRequest& req) {
  v1::AppendResponse resp;
  absl::Status s = CallAtOwner(c, [&](Client& at, grpc::ClientContext* ctx) {
    at.SetDeadline(ctx);
    return FromGrpc(at.stub().Append(ctx, req, &resp), "Append", at.options());
  });
  if (!s.ok()) return Fail(command, s);
  if (c.options().json) {
    std::printf("%s\n", AppendJson(resp, 0).c_str());
  } else {
    absl::StatusOr<Hash> leaf = HashFromBytes(resp.leaf_hash());
    std::printf("%s seq %llu: %s@%llu, leaf %s\n", resp.duplicate() ? "duplicate of" : "appended",
                static_cast<unsigned long long>(resp.seq()), req.event().stream_id().c_str(),
                static_cast<unsigned long long>(resp.version()),
                leaf.ok() ? ShortHex(*leaf).c_str() : "?");
  }
  return kExitOk;
}

void AddAppendReadCommands(Registry& registry) {
  {
    Command& cmd = registry.Add(
        "append",
        "usage: ledgerctl append --event='{...}'\n"
        "       ledgerctl append --file=EVENTS.jsonl | --file=- | -\n",
        "Appends events. Each is one JSON object in the protobuf JSON mapping of\n"
        "caseledger.v1.Event, or of caseledger.v1.AppendRequest ({\"event\": {...},\n"
        "\"expected_version\": N}). occurred_at defaults to now, producer to \"ledgerctl\".\n",
        "On an error, prints the line number and the server's status, and exits 1.\n"
        "Appends are idempotent by event_id: re-running the same input is safe.\n");
    auto& f = registry.Own<AppendFlags>();
    AddString(cmd.app, "--event", &f.event, "JSON",
              "one event, appended with Append; prints its seq and leaf hash");
    AddString(cmd.app, "--file", &f.file, "F",
              "JSON lines (blank lines skipped) from F, or from stdin for - ;\n"
              "pipelined over one AppendStream, with a progress bar when\n"
              "stderr is a terminal. A file is parsed whole before anything is\n"
              "sent. Ends with \"N appended, M duplicates in Ts (R events/s)\"\n"
              "(on stderr with --json, which prints one result per line).");
    AddPositionals(cmd.app, &f.args);
    cmd.run = [&f](Client& c, const Command& cmd) { return RunAppend(c, cmd, f); };
  }
  {
    Command& cmd =
        registry.Add("read",
                     "usage: ledgerctl read --stream=CASE [--from_version=N] [--limit=N]\n"
                     "       ledgerctl read [--from_seq=N] [--limit=N]\n",
                     "Prints records: one case's stream (ReadStream) or the global log (ReadLog,\n"
                     "from seq 0 by default) up to the current tree size. One block per record,\n"
                     "or with --json one caseledger.v1.Record per line (protobuf JSON mapping:\n"
                     "bytes in base64, 64-bit numbers as strings).\n");
    auto& f = registry.Own<ReadFlags>();
    AddString(cmd.app, "--stream", &f.stream, "CASE", "the case (stream_id) to read");
    AddUint(cmd.app, "--from_version", &f.from_version, "N",
            "first version of the stream (default 0)");
    AddUint(cmd.app, "--from_seq", &f.from_seq, "N", "first seq of the log (default 0)");
    AddUint(cmd.app, "--limit", &f.limit, "N", "at most N records (default 0: all)");
    cmd.run = [&f](Client& c, const Command& cmd) { return RunRead(c, cmd, f); };
  }
  {
    Command& cmd =
        registry.Add("tail", "usage: ledgerctl tail [--from_seq=N] [--count=N]\n",
                     "Follows the log (Subscribe) and prints records as they are committed,\n"
                     "until interrupted (Ctrl-C) or --count records were printed.\n");
    auto& f = registry.Own<TailFlags>();
    AddUint(cmd.app, "--from_seq", &f.from_seq, "N",
            "first seq (default: the current tree size, i.e. only new records)");
    AddUint(cmd.app, "--count", &f.count, "N", "stop after N records (default 0: never)");
    cmd.run = [&f](Client& c, const Command&) { return RunTail(c, f); };
    cmd.blocks_stop_signals = true;
  }
  {
    Command& cmd = registry.Add(
        "status", "usage: ledgerctl status\n",
        "Prints the server address, its gRPC health (grpc.health.v1), the tree size,\n"
        "the latest checkpoint (size, root, and the commit time of its last record as a\n"
        "lower bound of its age), the verifier key and origin. Exits 1 unless SERVING.\n");
    cmd.run = [](Client& c, const Command&) { return RunStatus(c); };
  }
}

}  // namespace caseledger::ledgerctl
