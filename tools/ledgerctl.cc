// ledgerctl: the command-line client of a caseledger server, for people and
// scripts. `ledgerctl help` lists the commands; `ledgerctl help COMMAND` (or
// `ledgerctl COMMAND --help`) describes one.
//
// Exit status: 0 success, 1 failure (an RPC error, a failed verification, a
// bad event), 2 usage error.
#include <google/protobuf/util/json_util.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "ledger/checkpoint.h"
#include "ledger/cosignature.h"
#include "ledger/hash.h"
#include "ledger/internal/status_macros.h"
#include "proto/access.grpc.pb.h"
#include "proto/audit.grpc.pb.h"
#include "proto/cases.grpc.pb.h"
#include "proto/ledger.grpc.pb.h"
#include "services/api/history_bundle.h"
#include "services/api/history_render.h"
#include "tools/bundle_export.h"
#include "tools/channel.h"
#include "tools/ledgerctl_lib.h"

namespace caseledger::ledgerctl {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

const FlagSpec kGlobalFlags = {
    {"server", true}, {"json", false}, {"timeout", true},  {"help", false},
    {"ca", true},     {"cert", true},  {"key_file", true}, {"tls_server_name", true}};

constexpr char kGlobalUsage[] =
    "usage: ledgerctl [--server=127.0.0.1:7070] [--json] [--timeout=10s]\n"
    "                 [--ca=CA.pem --cert=ME.pem --key_file=ME.key [--tls_server_name=N]]\n"
    "                 COMMAND [flags]\n"
    "\n"
    "  --server   host:port of the caseledger server (default 127.0.0.1:7070)\n"
    "  --json     machine-readable output: one JSON object per line on stdout\n"
    "  --timeout  deadline for connecting and for each unary call (default 10s)\n"
    "  --ca       CA certificate (PEM) of the server: use mutual TLS; without it, plaintext\n"
    "             (a server started with --insecure_loopback)\n"
    "  --cert, --key_file  your client certificate and key (PEM); the certificate's URI\n"
    "             caseledger://ROLE/ID says who you are\n"
    "  --tls_server_name  the name to check the server certificate against (default: the\n"
    "             host of --server)\n"
    "\n"
    "Global flags may also follow the command. Exit status: 0 OK, 1 failure, 2 usage error.\n";

struct Options {
  std::string server = "127.0.0.1:7070";
  bool json = false;
  absl::Duration timeout = absl::Seconds(10);
  ChannelOptions channel;  // target: `server`; TLS from --ca, --cert, --key_file
};

// The channel options of the global flags: mutual TLS from --ca, --cert,
// --key_file and --tls_server_name, plaintext without --ca. Every command
// talks over the one channel NewChannel makes from them.
ChannelOptions ChannelOptionsOf(const std::string& server,
                                const std::map<std::string, std::string>& flags) {
  auto get = [&](const char* name) {
    auto it = flags.find(name);
    return it == flags.end() ? std::string() : it->second;
  };
  ChannelOptions o;
  o.target = server;
  o.ca_file = get("ca");
  o.cert_file = get("cert");
  o.key_file = get("key_file");
  o.tls_server_name = get("tls_server_name");
  // History bundles can be large (gRPC's default limit is 4 MiB).
  o.max_receive_message_bytes = 256 << 20;
  return o;
}

// The one place where grpc::Status becomes absl::Status (same codes).
absl::Status FromGrpc(const grpc::Status& s, absl::string_view rpc, const Options& o) {
  if (s.ok()) return absl::OkStatus();
  std::string msg = absl::StrCat(rpc, ": ", s.error_message());
  if (s.error_code() == grpc::StatusCode::UNAVAILABLE) {
    absl::StrAppend(&msg, " (is caseledger_server running at ", o.server, "?)");
  }
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), msg);
}

int Fail(absl::string_view command, const absl::Status& s) {
  std::fprintf(stderr, "ledgerctl %s: %s\n", std::string(command).c_str(), s.ToString().c_str());
  return kExitFailure;
}

// The RPCs that several commands share. Unary calls carry --timeout as their
// deadline; streams carry none (they are bounded by Connect instead).
class Client {
 public:
  // `channel` comes from NewChannel(o.channel).
  Client(const Options& o, std::shared_ptr<grpc::Channel> channel)
      : options_(o), channel_(std::move(channel)), stub_(v1::LedgerService::NewStub(channel_)) {}

  const Options& options() const { return options_; }
  v1::LedgerService::Stub& stub() { return *stub_; }
  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }

  absl::Status Connect() {
    if (channel_->WaitForConnected(absl::ToChronoTime(absl::Now() + options_.timeout))) {
      return absl::OkStatus();
    }
    return absl::UnavailableError(absl::StrCat("could not connect to ", options_.server, " within ",
                                               absl::FormatDuration(options_.timeout),
                                               " (is caseledger_server running there?)"));
  }

  void SetDeadline(grpc::ClientContext* ctx) const {
    ctx->set_deadline(absl::ToChronoTime(absl::Now() + options_.timeout));
  }

  absl::StatusOr<v1::Checkpoint> GetCheckpoint(uint64_t size) {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    v1::GetCheckpointRequest req;
    req.set_size(size);
    v1::Checkpoint resp;
    CL_RETURN_IF_ERROR(FromGrpc(stub_->GetCheckpoint(&ctx, req, &resp), "GetCheckpoint", options_));
    return resp;
  }

  absl::StatusOr<v1::PublicKey> GetPublicKey() {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    v1::PublicKey resp;
    CL_RETURN_IF_ERROR(FromGrpc(stub_->GetPublicKey(&ctx, v1::GetPublicKeyRequest(), &resp),
                                "GetPublicKey", options_));
    return resp;
  }

  // The record at `seq`, or nullopt when seq == tree size. OUT_OF_RANGE
  // beyond it.
  absl::StatusOr<std::optional<v1::Record>> ReadOne(uint64_t seq) {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    v1::ReadLogRequest req;
    req.set_from_seq(seq);
    req.set_limit(1);
    auto reader = stub_->ReadLog(&ctx, req);
    v1::Record r;
    std::optional<v1::Record> out;
    while (reader->Read(&r)) out = r;
    CL_RETURN_IF_ERROR(FromGrpc(reader->Finish(), "ReadLog", options_));
    return out;
  }

  // The current tree size. The API has no call for it, so this probes
  // ReadLog (one record per probe, O(log n) probes) upward from `at_least`,
  // which must not exceed it.
  absl::StatusOr<uint64_t> TreeSize(uint64_t at_least) {
    // -1: seq beyond the tree; 0: seq == size; 1: seq < size.
    auto probe = [this](uint64_t seq) -> absl::StatusOr<int> {
      absl::StatusOr<std::optional<v1::Record>> r = ReadOne(seq);
      if (r.status().code() == absl::StatusCode::kOutOfRange) return -1;
      if (!r.ok()) return r.status();
      return r->has_value() ? 1 : 0;
    };
    uint64_t lo = at_least;  // lo < size from here on
    CL_ASSIGN_OR_RETURN(int p, probe(lo));
    if (p == 0) return lo;
    if (p < 0) lo = 0;
    uint64_t step = 1;
    uint64_t hi = lo + 1;
    for (;;) {
      CL_ASSIGN_OR_RETURN(p, probe(hi));
      if (p == 0) return hi;
      if (p < 0) break;
      lo = hi;
      step *= 2;
      hi = lo + step;
    }
    while (hi - lo > 1) {
      uint64_t mid = lo + (hi - lo) / 2;
      CL_ASSIGN_OR_RETURN(p, probe(mid));
      if (p == 0) return mid;
      (p > 0 ? lo : hi) = mid;
    }
    return lo + 1;  // the tree grew while probing
  }

  // grpc.health.v1.Health/Check for the whole server, through the generic
  // stub (Debian ships no generated health client): "SERVING", etc.
  absl::StatusOr<std::string> Health() {
    grpc::GenericStub generic(channel_);
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    const char kRequest[] = {0x0a, 0x00};  // HealthCheckRequest{service: ""}
    grpc::Slice slice(kRequest, sizeof(kRequest));
    grpc::ByteBuffer req(&slice, 1);
    grpc::ByteBuffer resp;
    grpc::Status status;
    absl::Notification done;
    generic.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &req, &resp,
                      [&](grpc::Status s) {
                        status = std::move(s);
                        done.Notify();
                      });
    done.WaitForNotification();
    CL_RETURN_IF_ERROR(FromGrpc(status, "Health.Check", options_));
    std::vector<grpc::Slice> slices;
    std::string bytes;
    if (resp.Dump(&slices).ok()) {
      for (const grpc::Slice& s : slices)
        bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
    // HealthCheckResponse{status = 1 (enum)}: tag 0x08 then a small varint.
    int code = bytes.size() >= 2 && bytes[0] == 0x08 ? bytes[1] : 0;
    constexpr const char* kNames[] = {"UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"};
    return std::string(code >= 0 && code < 4 ? kNames[code] : "UNKNOWN");
  }

 private:
  Options options_;
  std::shared_ptr<grpc::Channel> channel_;  // shared: gRPC's stubs take it so
  std::unique_ptr<v1::LedgerService::Stub> stub_;
};

// ---- append ---------------------------------------------------------------

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
  grpc::ClientContext ctx;
  c.SetDeadline(&ctx);
  v1::AppendResponse resp;
  absl::Status s = FromGrpc(c.stub().Append(&ctx, *req, &resp), "Append", c.options());
  if (!s.ok()) return Fail("append", s);
  if (c.options().json) {
    std::printf("%s\n", AppendJson(resp, 0).c_str());
  } else {
    absl::StatusOr<Hash> leaf = HashFromBytes(resp.leaf_hash());
    std::printf("%s seq %llu: %s@%llu, leaf %s\n", resp.duplicate() ? "duplicate of" : "appended",
                static_cast<unsigned long long>(resp.seq()), req->event().stream_id().c_str(),
                static_cast<unsigned long long>(resp.version()),
                leaf.ok() ? ShortHex(*leaf).c_str() : "?");
  }
  return kExitOk;
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

// ---- checkpoints and proofs ------------------------------------------------

struct TrustedKey {
  NoteVerifier verifier;
  std::string origin;
};

// --key (trusted, preferred) or the server's own key (warned about).
absl::StatusOr<TrustedKey> ResolveKey(Client& c, const ParsedArgs& a) {
  auto key = a.flags.find("key");
  auto origin = a.flags.find("origin");
  if (key != a.flags.end()) {
    CL_ASSIGN_OR_RETURN(NoteVerifier v, LoadVerifier(key->second));
    std::string o = origin != a.flags.end() ? origin->second : v.name();
    return TrustedKey{std::move(v), o};
  }
  CL_ASSIGN_OR_RETURN(v1::PublicKey pk, c.GetPublicKey());
  CL_ASSIGN_OR_RETURN(NoteVerifier v, NoteVerifier::FromVerifierKey(pk.verifier_key()));
  std::fprintf(stderr,
               "warning: verifying with the key the server itself sent (%s). That only shows\n"
               "  the server is consistent with itself; pass --key=KEY_OR_FILE with a key you\n"
               "  obtained another way.\n",
               pk.verifier_key().c_str());
  std::string o = origin != a.flags.end() ? origin->second : pk.origin();
  return TrustedKey{std::move(v), o};
}

absl::StatusOr<Checkpoint> FetchVerifiedCheckpoint(Client& c, const TrustedKey& key,
                                                   uint64_t size) {
  CL_ASSIGN_OR_RETURN(v1::Checkpoint cp, c.GetCheckpoint(size));
  absl::StatusOr<Checkpoint> opened = VerifyCheckpoint(cp, key.verifier, key.origin);
  if (!opened.ok()) {
    return absl::Status(opened.status().code(), absl::StrCat("checkpoint at size ", cp.size(), ": ",
                                                             opened.status().message()));
  }
  if (size != 0 && opened->size != size) {
    return absl::DataLossError(
        absl::StrCat("checkpoint size: got ", opened->size, ", asked for ", size));
  }
  return opened;
}

int RunCheckpoint(Client& c, const ParsedArgs& a) {
  absl::StatusOr<v1::Checkpoint> cp = c.GetCheckpoint(FlagUint(a, "size", 0).value());
  if (!cp.ok()) return Fail("checkpoint", cp.status());
  absl::StatusOr<Hash> root = HashFromBytes(cp->root_hash());
  std::string root_hex = root.ok() ? ToHex(*root) : "(malformed)";
  std::optional<TrustedKey> key;
  absl::Status verified = absl::OkStatus();
  if (a.flags.count("key") > 0) {
    absl::StatusOr<TrustedKey> k = ResolveKey(c, a);
    if (!k.ok()) return Fail("checkpoint", k.status());
    verified = VerifyCheckpoint(*cp, k->verifier, k->origin).status();
    key = std::move(*k);
  }
  if (c.options().json) {
    JsonObject o;
    o.Add("size", static_cast<uint64_t>(cp->size()))
        .Add("root_hash", root_hex)
        .Add("note", cp->note());
    if (key) o.Add("verified", verified.ok());
    std::printf("%s\n", o.str().c_str());
  } else {
    std::printf("size  %llu\nroot  %s\nnote:\n%s", static_cast<unsigned long long>(cp->size()),
                root_hex.c_str(), cp->note().c_str());
    if (key && verified.ok()) {
      std::printf("signature OK: key %s, origin %s\n", key->verifier.VerifierKey().c_str(),
                  key->origin.c_str());
    }
  }
  if (!verified.ok()) return Fail("checkpoint", verified);
  return kExitOk;
}

absl::Status ProveInclusion(Client& c, const ParsedArgs& a, std::string* ok_line) {
  CL_ASSIGN_OR_RETURN(uint64_t seq, FlagUint(a, "seq", 0));
  CL_ASSIGN_OR_RETURN(uint64_t size, FlagUint(a, "size", 0));
  CL_ASSIGN_OR_RETURN(TrustedKey key, ResolveKey(c, a));
  CL_ASSIGN_OR_RETURN(Checkpoint cp, FetchVerifiedCheckpoint(c, key, size));
  if (seq >= cp.size) {
    return absl::OutOfRangeError(
        absl::StrCat("record ", seq, " is not in the tree of size ", cp.size,
                     size == 0 ? " (the latest checkpoint); wait for the next checkpoint" : ""));
  }
  grpc::ClientContext ctx;
  c.SetDeadline(&ctx);
  v1::InclusionProofRequest req;
  req.set_seq(seq);
  req.set_tree_size(cp.size);
  v1::InclusionProof proof;
  CL_RETURN_IF_ERROR(
      FromGrpc(c.stub().GetInclusionProof(&ctx, req, &proof), "GetInclusionProof", c.options()));
  if (proof.seq() != seq) {
    return absl::DataLossError(absl::StrCat("proof seq: got ", proof.seq(), ", want ", seq));
  }
  CL_ASSIGN_OR_RETURN(std::optional<v1::Record> record, c.ReadOne(seq));
  if (!record) return absl::DataLossError(absl::StrCat("ReadLog: no record at seq ", seq));
  CL_RETURN_IF_ERROR(CheckRecordMatchesProof(*record, proof));
  CL_RETURN_IF_ERROR(CheckInclusion(proof, cp));
  *ok_line = c.options().json ? JsonObject()
                                    .Add("ok", true)
                                    .Add("seq", seq)
                                    .Add("tree_size", cp.size)
                                    .Add("root_hash", ToHex(cp.root))
                                    .Add("leaf_hash", ToHex(LeafHash(record->leaf())))
                                    .str()
                              : absl::StrCat("OK: record ", seq, " is in the tree of size ",
                                             cp.size, " with root ", ToHex(cp.root));
  return absl::OkStatus();
}

absl::Status ProveConsistency(Client& c, const ParsedArgs& a, std::string* ok_line) {
  CL_ASSIGN_OR_RETURN(uint64_t from, FlagUint(a, "from_size", 0));
  CL_ASSIGN_OR_RETURN(uint64_t to, FlagUint(a, "to_size", 0));
  CL_ASSIGN_OR_RETURN(TrustedKey key, ResolveKey(c, a));
  CL_ASSIGN_OR_RETURN(Checkpoint old_cp, FetchVerifiedCheckpoint(c, key, from));
  CL_ASSIGN_OR_RETURN(Checkpoint new_cp, FetchVerifiedCheckpoint(c, key, to));
  if (old_cp.size > new_cp.size) {
    return absl::InvalidArgumentError(absl::StrCat("--from_size: got ", old_cp.size,
                                                   ", want at most the later size ", new_cp.size));
  }
  grpc::ClientContext ctx;
  c.SetDeadline(&ctx);
  v1::ConsistencyProofRequest req;
  req.set_from_size(old_cp.size);
  req.set_to_size(new_cp.size);
  v1::ConsistencyProof proof;
  CL_RETURN_IF_ERROR(FromGrpc(c.stub().GetConsistencyProof(&ctx, req, &proof),
                              "GetConsistencyProof", c.options()));
  CL_RETURN_IF_ERROR(CheckConsistency(proof, old_cp, new_cp));
  *ok_line = c.options().json ? JsonObject()
                                    .Add("ok", true)
                                    .Add("from_size", old_cp.size)
                                    .Add("from_root_hash", ToHex(old_cp.root))
                                    .Add("to_size", new_cp.size)
                                    .Add("to_root_hash", ToHex(new_cp.root))
                                    .str()
                              : absl::StrCat("OK: the tree of size ", new_cp.size, " with root ",
                                             ToHex(new_cp.root), " extends the tree of size ",
                                             old_cp.size, " with root ", ToHex(old_cp.root));
  return absl::OkStatus();
}

// ---- the command table -----------------------------------------------------

struct Command {
  const char* name;
  const char* synopsis;  // "usage: ..." line(s)
  const char* help;      // what it does, its flags
  FlagSpec flags;
  int (*run)(Client&, const ParsedArgs&);
};

const std::vector<Command>& Commands();

int Usage(const Command& cmd, absl::string_view message) {
  std::fprintf(stderr, "ledgerctl %s: %s\n%s(ledgerctl help %s for more)\n", cmd.name,
               std::string(message).c_str(), cmd.synopsis, cmd.name);
  return kExitUsage;
}

const Command& Find(absl::string_view name) {
  for (const Command& c : Commands()) {
    if (name == c.name) return c;
  }
  std::abort();
}

int RunAppend(Client& c, const ParsedArgs& a) {
  const Command& cmd = Find("append");
  bool has_event = a.flags.count("event") > 0;
  std::string file = a.flags.count("file") > 0 ? a.flags.at("file") : "";
  if (a.positional.size() == 1 && a.positional[0] == "-" && file.empty()) {
    file = "-";
  } else if (!a.positional.empty()) {
    return Usage(cmd, absl::StrCat("unexpected argument \"", a.positional[0], "\""));
  }
  if (has_event == !file.empty()) {
    return Usage(cmd, "give exactly one of --event=JSON, --file=F or - (stdin)");
  }
  if (file == "-" && isatty(STDIN_FILENO)) {
    std::fprintf(stderr, "reading JSON lines from stdin (Ctrl-D to end)\n");
  }
  absl::Status connected = c.Connect();
  if (!connected.ok()) return Fail("append", connected);
  return has_event ? AppendOne(c, a.flags.at("event")) : AppendMany(c, file);
}

int RunRead(Client& c, const ParsedArgs& a) {
  const Command& cmd = Find("read");
  if (!a.positional.empty()) return Usage(cmd, "unexpected argument \"" + a.positional[0] + "\"");
  bool by_stream = a.flags.count("stream") > 0;
  if (by_stream && a.flags.count("from_seq") > 0) {
    return Usage(cmd, "--stream and --from_seq do not go together");
  }
  if (!by_stream && a.flags.count("from_version") > 0) {
    return Usage(cmd, "--from_version needs --stream");
  }
  absl::StatusOr<uint64_t> from = FlagUint(a, by_stream ? "from_version" : "from_seq", 0);
  absl::StatusOr<uint64_t> limit = FlagUint(a, "limit", 0);
  if (!from.ok()) return Usage(cmd, from.status().message());
  if (!limit.ok()) return Usage(cmd, limit.status().message());
  if (*limit > UINT32_MAX) return Usage(cmd, "--limit: at most 4294967295");
  if (absl::Status s = c.Connect(); !s.ok()) return Fail("read", s);
  grpc::ClientContext ctx;
  std::unique_ptr<grpc::ClientReader<v1::Record>> reader;
  if (by_stream) {
    v1::ReadStreamRequest req;
    req.set_stream_id(a.flags.at("stream"));
    req.set_from_version(*from);
    req.set_limit(static_cast<uint32_t>(*limit));
    reader = c.stub().ReadStream(&ctx, req);
  } else {
    v1::ReadLogRequest req;
    req.set_from_seq(*from);
    req.set_limit(static_cast<uint32_t>(*limit));
    reader = c.stub().ReadLog(&ctx, req);
  }
  v1::Record r;
  uint64_t n = 0;
  while (reader->Read(&r)) PrintRecord(c.options(), r, n++ == 0);
  absl::Status s = FromGrpc(reader->Finish(), by_stream ? "ReadStream" : "ReadLog", c.options());
  if (!s.ok()) return Fail("read", s);
  if (n == 0 && !c.options().json) std::fprintf(stderr, "no records\n");
  return kExitOk;
}

int RunTail(Client& c, const ParsedArgs& a) {
  const Command& cmd = Find("tail");
  if (!a.positional.empty()) return Usage(cmd, "unexpected argument \"" + a.positional[0] + "\"");
  absl::StatusOr<uint64_t> count = FlagUint(a, "count", 0);
  if (!count.ok()) return Usage(cmd, count.status().message());
  absl::StatusOr<uint64_t> from_flag = FlagUint(a, "from_seq", 0);
  if (!from_flag.ok()) return Usage(cmd, from_flag.status().message());
  if (absl::Status s = c.Connect(); !s.ok()) return Fail("tail", s);
  uint64_t from = *from_flag;
  if (a.flags.count("from_seq") == 0) {
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
  while ((*count == 0 || n < *count) && reader->Read(&r)) PrintRecord(c.options(), r, n++ == 0);
  if (*count > 0 && n >= *count) ctx->TryCancel();
  grpc::Status st = reader->Finish();
  if (st.error_code() == grpc::StatusCode::CANCELLED) return kExitOk;  // by us
  absl::Status s = FromGrpc(st, "Subscribe", c.options());
  return s.ok() ? kExitOk : Fail("tail", s);
}

int RunCheckpointCmd(Client& c, const ParsedArgs& a) {
  const Command& cmd = Find("checkpoint");
  if (!a.positional.empty()) return Usage(cmd, "unexpected argument \"" + a.positional[0] + "\"");
  if (absl::StatusOr<uint64_t> s = FlagUint(a, "size", 0); !s.ok()) {
    return Usage(cmd, s.status().message());
  }
  if (a.flags.count("origin") > 0 && a.flags.count("key") == 0) {
    return Usage(cmd, "--origin needs --key");
  }
  if (absl::Status s = c.Connect(); !s.ok()) return Fail("checkpoint", s);
  return RunCheckpoint(c, a);
}

int RunProve(Client& c, const ParsedArgs& a) {
  const Command& cmd = Find("prove");
  if (!a.positional.empty()) return Usage(cmd, "unexpected argument \"" + a.positional[0] + "\"");
  bool inclusion = a.flags.count("seq") > 0;
  bool consistency = a.flags.count("from_size") > 0 || a.flags.count("to_size") > 0;
  if (inclusion == consistency) {
    return Usage(cmd, "give either --seq=N [--size=M] or --from_size=A [--to_size=B]");
  }
  if (consistency && a.flags.count("size") > 0) return Usage(cmd, "--size goes with --seq");
  for (const char* f : {"seq", "size", "from_size", "to_size"}) {
    if (absl::StatusOr<uint64_t> v = FlagUint(a, f, 0); !v.ok()) {
      return Usage(cmd, v.status().message());
    }
  }
  if (consistency && FlagUint(a, "from_size", 0).value() == 0) {
    return Usage(cmd, "--from_size: must be at least 1");
  }
  if (absl::Status s = c.Connect(); !s.ok()) return Fail("prove", s);
  std::string ok_line;
  absl::Status s = inclusion ? ProveInclusion(c, a, &ok_line) : ProveConsistency(c, a, &ok_line);
  if (!s.ok()) {
    if (c.options().json) {
      std::printf("%s\n", JsonObject().Add("ok", false).Add("error", s.ToString()).str().c_str());
    }
    std::fprintf(stderr, "FAILED: %s\n", s.ToString().c_str());
    return kExitFailure;
  }
  std::printf("%s\n", ok_line.c_str());
  return kExitOk;
}

int RunStatus(Client& c, const ParsedArgs& a) {
  const Command& cmd = Find("status");
  if (!a.positional.empty()) return Usage(cmd, "unexpected argument \"" + a.positional[0] + "\"");
  if (absl::Status s = c.Connect(); !s.ok()) return Fail("status", s);
  absl::StatusOr<std::string> health = c.Health();
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
    o.Add("origin", pk->origin());
    std::printf("%s\n", o.str().c_str());
  } else {
    std::printf(
        "server        %s\nhealth        %s\ntree size     %llu\ncheckpoint    %s\n"
        "verifier key  %s\norigin        %s\n",
        c.options().server.c_str(), health_text.c_str(), static_cast<unsigned long long>(*size),
        cp_text.c_str(), pk->verifier_key().c_str(), pk->origin().c_str());
  }
  return health.ok() && *health == "SERVING" ? kExitOk : kExitFailure;
}

// ---- read models: cases and the accounting of disclosures -----------------

// "2026-01-31" or RFC 3339 ("2026-01-31T12:00:00Z").
absl::StatusOr<absl::Time> ParseWhen(const std::string& flag, const std::string& value) {
  absl::Time t;
  std::string err;
  if (absl::ParseTime(absl::RFC3339_full, value, &t, &err) ||
      absl::ParseTime("%Y-%m-%d", value, absl::UTCTimeZone(), &t, &err)) {
    return t;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--", flag, ": got \"", value, "\", want a date (2026-01-31) or RFC 3339 time"));
}

void SetTimestamp(absl::Time t, google::protobuf::Timestamp* ts) {
  ts->set_seconds(absl::ToUnixSeconds(t));
}

std::string SummaryLine(const v1::CaseSummary& s) {
  std::string due = s.has_next_access_due()
                        ? FormatTimestamp(s.next_access_due().seconds(), 0).substr(0, 10)
                        : "-";
  return absl::StrFormat("%-24s %-12s %-12s %-10s v%-6llu access:%u%s due:%s notices:%u",
                         s.case_id(), s.status(), s.program(),
                         s.manager_id().empty() ? "-" : s.manager_id(),
                         static_cast<unsigned long long>(s.version()), s.open_access_requests(),
                         s.access_overdue() ? " OVERDUE" : "", due, s.pending_client_notices());
}

// The witnesses a client trusts (--witness_keys=K1,K2 or a file of keys, one
// per line) and how many must have cosigned (--quorum, default all).
// INVALID_ARGUMENT naming the flag.
struct WitnessPolicy {
  std::vector<CosignatureVerifier> witnesses;
  size_t quorum = 0;
};

absl::StatusOr<WitnessPolicy> WitnessFlags(const ParsedArgs& a) {
  WitnessPolicy p;
  auto keys = a.flags.find("witness_keys");
  if (keys == a.flags.end()) {
    if (a.flags.count("quorum") > 0) {
      return absl::InvalidArgumentError("--quorum needs --witness_keys");
    }
    return p;
  }
  std::string list = keys->second;
  if (std::ifstream file(list); file.good() && list.find('+') == std::string::npos) {
    std::stringstream ss;
    ss << file.rdbuf();
    list = ss.str();
  }
  for (absl::string_view k : absl::StrSplit(list, absl::ByAnyChar(",\n"), absl::SkipWhitespace())) {
    absl::StatusOr<CosignatureVerifier> w =
        CosignatureVerifier::FromVerifierKey(absl::StripAsciiWhitespace(k));
    if (!w.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--witness_keys: ", w.status().message()));
    }
    p.witnesses.push_back(*std::move(w));
  }
  CL_ASSIGN_OR_RETURN(uint64_t quorum, FlagUint(a, "quorum", p.witnesses.size()));
  if (quorum == 0 || quorum > p.witnesses.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--quorum: got ", quorum, ", want 1..", p.witnesses.size()));
  }
  p.quorum = quorum;
  return p;
}

int RunCosigned(Client& c, const ParsedArgs& a) {
  const Command& cmd = Find("cosigned");
  if (!a.positional.empty()) return Usage(cmd, "unexpected argument \"" + a.positional[0] + "\"");
  absl::StatusOr<uint64_t> size = FlagUint(a, "size", 0);
  if (!size.ok()) return Usage(cmd, size.status().message());
  if (a.flags.count("witness_keys") == 0) return Usage(cmd, "--witness_keys is required");
  absl::StatusOr<WitnessPolicy> policy = WitnessFlags(a);
  if (!policy.ok()) return Usage(cmd, policy.status().message());
  const std::vector<CosignatureVerifier>& witnesses = policy->witnesses;
  const size_t quorum = policy->quorum;
  if (absl::Status s = c.Connect(); !s.ok()) return Fail("cosigned", s);
  absl::StatusOr<TrustedKey> key = ResolveKey(c, a);
  if (!key.ok()) return Fail("cosigned", key.status());
  std::unique_ptr<v1::WitnessService::Stub> stub = v1::WitnessService::NewStub(c.channel());
  grpc::ClientContext ctx;
  c.SetDeadline(&ctx);
  v1::GetCosignedCheckpointRequest req;
  req.set_size(*size);
  req.set_cosigned_only(*size == 0);
  v1::CosignedCheckpoint resp;
  if (absl::Status s = FromGrpc(stub->GetCosignedCheckpoint(&ctx, req, &resp),
                                "GetCosignedCheckpoint", c.options());
      !s.ok()) {
    return Fail("cosigned", s);
  }
  absl::Status status;
  absl::StatusOr<Checkpoint> cp = VerifyCheckpoint(resp.checkpoint(), key->verifier, key->origin);
  absl::StatusOr<std::vector<Cosignature>> cosigs;
  if (!cp.ok()) {
    status = cp.status();
  } else {
    cosigs = VerifyCosignatureQuorum(resp.checkpoint().note(), witnesses, quorum);
    status = cosigs.status();
  }
  if (!status.ok()) {
    if (c.options().json) {
      std::printf("%s\n",
                  JsonObject().Add("ok", false).Add("error", status.ToString()).str().c_str());
    }
    std::fprintf(stderr, "FAILED: %s\n", status.ToString().c_str());
    return kExitFailure;
  }
  if (c.options().json) {
    JsonObject o;
    o.Add("ok", true).Add("size", cp->size).Add("root_hash", ToHex(cp->root));
    o.Add("cosignatures", static_cast<uint64_t>(cosigs->size()));
    o.Add("note", resp.checkpoint().note());
    std::printf("%s\n", o.str().c_str());
    return kExitOk;
  }
  std::printf(
      "OK: checkpoint size %llu root %s is signed by the log and cosigned by %zu of %zu "
      "trusted witnesses\n%s",
      static_cast<unsigned long long>(cp->size), ToHex(cp->root).c_str(), cosigs->size(),
      witnesses.size(), resp.checkpoint().note().c_str());
  return kExitOk;
}

int RunAudit(Client& c, const ParsedArgs& a) {
  const Command& cmd = Find("audit");
  if (a.positional.size() != 1 || a.positional[0] != "verify-range") {
    return Usage(cmd, "want the subcommand verify-range");
  }
  v1::VerifyRangeRequest req;
  for (const char* f : {"from_seq", "to_seq", "max_failures"}) {
    absl::StatusOr<uint64_t> v = FlagUint(a, f, 0);
    if (!v.ok()) return Usage(cmd, v.status().message());
    if (std::string(f) == "from_seq") req.set_from_seq(*v);
    if (std::string(f) == "to_seq") req.set_to_seq(*v);
    if (std::string(f) == "max_failures") req.set_max_failures(static_cast<uint32_t>(*v));
  }
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
    for (const v1::RangeFailure& f : resp.failures()) {
      std::fprintf(stderr, "FAILED: seq %llu: %s\n", static_cast<unsigned long long>(f.seq()),
                   f.message().c_str());
    }
    return kExitFailure;
  }
  return kExitOk;
}

int RunMetrics(Client& c, const ParsedArgs& a) {
  const Command& cmd = Find("metrics");
  if (!a.positional.empty()) return Usage(cmd, "unexpected argument \"" + a.positional[0] + "\"");
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
    std::string json;
    google::protobuf::util::JsonPrintOptions po;
    po.always_print_primitive_fields = true;
    po.preserve_proto_field_names = true;
    if (!google::protobuf::util::MessageToJsonString(m, &json, po).ok()) {
      return Fail("metrics", absl::InternalError("metrics: JSON encoding failed"));
    }
    std::printf("%s\n", json.c_str());
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

int RunCase(Client& c, const ParsedArgs& a) {
  const Command& cmd = Find("case");
  if (a.flags.count("id") == 0) return Usage(cmd, "--id=CASE is required");
  absl::StatusOr<uint64_t> min_seq = FlagUint(a, "min_seq", 0);
  if (!min_seq.ok()) return Usage(cmd, min_seq.status().message());
  if (absl::Status s = c.Connect(); !s.ok()) return Fail("case", s);
  auto stub = v1::CaseService::NewStub(c.channel());
  grpc::ClientContext ctx;
  c.SetDeadline(&ctx);
  v1::GetCaseRequest req;
  req.set_case_id(a.flags.at("id"));
  req.set_min_seq(*min_seq);
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

int RunCases(Client& c, const ParsedArgs& a) {
  const Command& cmd = Find("cases");
  absl::StatusOr<uint64_t> limit = FlagUint(a, "limit", 0);
  if (!limit.ok()) return Usage(cmd, limit.status().message());
  if (absl::Status s = c.Connect(); !s.ok()) return Fail("cases", s);
  auto stub = v1::CaseService::NewStub(c.channel());
  v1::ListCasesRequest req;
  if (a.flags.count("status")) req.set_status(a.flags.at("status"));
  if (a.flags.count("manager")) req.set_manager_id(a.flags.at("manager"));
  req.set_access_overdue(a.flags.count("overdue") > 0);
  // --limit=0 means every page.
  uint64_t left = *limit == 0 ? UINT64_MAX : *limit;
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
  if (!c.options().json)
    std::fprintf(stderr, "%llu cases\n", static_cast<unsigned long long>(printed));
  return kExitOk;
}

int RunAccounting(Client& c, const ParsedArgs& a) {
  const Command& cmd = Find("accounting");
  if (a.flags.count("client") == 0) return Usage(cmd, "--client=CLIENT_ID is required");
  v1::GetAccountingRequest req;
  req.set_client_id(a.flags.at("client"));
  for (const char* flag : {"from", "to"}) {
    if (a.flags.count(flag) == 0) continue;
    absl::StatusOr<absl::Time> t = ParseWhen(flag, a.flags.at(flag));
    if (!t.ok()) return Usage(cmd, t.status().message());
    SetTimestamp(
        *t, std::string(flag) == "from" ? req.mutable_window_start() : req.mutable_window_end());
  }
  req.set_include_excluded(a.flags.count("include_excluded") > 0);
  req.set_summarize(a.flags.count("summarize") > 0);
  absl::StatusOr<uint64_t> min_seq = FlagUint(a, "min_seq", 0);
  if (!min_seq.ok()) return Usage(cmd, min_seq.status().message());
  req.set_min_seq(*min_seq);
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

// ---- client access: record histories ----------------------------------------

absl::StatusOr<std::string> ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return bytes;
}

absl::Status WriteFileBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
  out.close();
  if (!out) return absl::UnavailableError(absl::StrCat(path, ": cannot write"));
  return absl::OkStatus();
}

absl::StatusOr<v1::HistoryBundle> LoadBundle(const std::string& path) {
  CL_ASSIGN_OR_RETURN(std::string bytes, ReadFileBytes(path));
  v1::HistoryBundle b;
  if (!b.ParseFromString(bytes)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a caseledger.v1.HistoryBundle (binary protobuf)"));
  }
  return b;
}

// The size a signed note's checkpoint states, unverified (verify-history
// checks the signature).
absl::StatusOr<uint64_t> NoteSize(const std::string& note) {
  size_t end = note.find("\n\n");
  CL_ASSIGN_OR_RETURN(Checkpoint cp, ParseCheckpointBody(absl::string_view(note).substr(
                                         0, end == std::string::npos ? note.size() : end + 1)));
  return cp.size;
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
    CL_ASSIGN_OR_RETURN(uint64_t size, NoteSize(bundle.checkpoint_note()));
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

int RunHistory(Client& c, const ParsedArgs& a) {
  const Command& cmd = Find("history");
  for (const char* f : {"subject", "out"}) {
    if (a.flags.count(f) == 0) return Usage(cmd, absl::StrCat("--", f, " is required"));
  }
  v1::GetRecordHistoryRequest req;
  req.set_subject_id(a.flags.at("subject"));
  req.mutable_accessor()->set_accessor_id(a.flags.count("accessor") ? a.flags.at("accessor")
                                                                    : a.flags.at("subject"));
  req.mutable_accessor()->set_role(a.flags.count("role") ? a.flags.at("role") : "client");
  req.mutable_accessor()->set_purpose(a.flags.count("purpose") ? a.flags.at("purpose")
                                                               : "right of access");
  req.set_current(a.flags.count("current") > 0);
  if (a.flags.count("request")) req.set_request_id(a.flags.at("request"));
  if (a.flags.count("case")) req.set_case_id(a.flags.at("case"));
  if (a.flags.count("since")) {
    absl::StatusOr<std::string> note = ReadFileBytes(a.flags.at("since"));
    if (!note.ok()) return Fail("history", note.status());
    absl::StatusOr<uint64_t> size = NoteSize(*note);
    if (!size.ok()) return Fail("history", size.status());
    req.set_since_size(*size);
  }
  absl::StatusOr<WitnessPolicy> witnesses = WitnessFlags(a);
  if (!witnesses.ok()) return Usage(cmd, witnesses.status().message());
  absl::Duration wait = absl::ZeroDuration();
  if (a.flags.count("wait") > 0 &&
      (!absl::ParseDuration(a.flags.at("wait"), &wait) || wait < absl::ZeroDuration())) {
    return Usage(cmd, absl::StrCat("--wait: got \"", a.flags.at("wait"),
                                   "\", want a duration such as 90s or 5m"));
  }
  absl::StatusOr<v1::HistoryBundle> fetched = FetchCosignedHistory(c, req, *witnesses, wait);
  if (!fetched.ok()) return Fail("history", fetched.status());
  const v1::HistoryBundle& bundle = *fetched;
  std::string bytes = bundle.SerializeAsString();
  if (absl::Status w = WriteFileBytes(a.flags.at("out"), bytes); !w.ok()) {
    return Fail("history", w);
  }
  if (c.options().json) {
    std::printf("%s\n", JsonObject()
                            .Add("subject", bundle.subject_id())
                            .Add("records", static_cast<uint64_t>(bundle.records_size()))
                            .Add("bytes", static_cast<uint64_t>(bytes.size()))
                            .Add("sha256", ToHex(Sha256Of(bytes)))
                            .Add("out", a.flags.at("out"))
                            .str()
                            .c_str());
  } else {
    std::printf(
        "wrote %s: %d records of %s, %zu bytes, sha256 %s\n"
        "check it with: ledgerctl verify-history %s --key=KEY\n",
        a.flags.at("out").c_str(), bundle.records_size(), bundle.subject_id().c_str(), bytes.size(),
        ToHex(Sha256Of(bytes)).c_str(), a.flags.at("out").c_str());
  }
  return kExitOk;
}

// Loads and verifies BUNDLE with --key [--origin] [--since].
absl::StatusOr<std::pair<v1::HistoryBundle, HistoryVerification>> VerifyBundleArgs(
    const Command& cmd, const ParsedArgs& a) {
  if (a.positional.size() != 1) {
    return absl::InvalidArgumentError("want exactly one BUNDLE file");
  }
  if (a.flags.count("key") == 0) {
    return absl::InvalidArgumentError(
        "--key is required: the log's verifier key, obtained other than from the server");
  }
  CL_ASSIGN_OR_RETURN(NoteVerifier v, LoadVerifier(a.flags.at("key")));
  HistoryVerifyOptions options;
  options.log_key = &v;
  if (a.flags.count("origin")) options.origin = a.flags.at("origin");
  if (a.flags.count("since")) {
    CL_ASSIGN_OR_RETURN(options.since_note, ReadFileBytes(a.flags.at("since")));
  }
  if (a.flags.count("subject")) options.subject_id = a.flags.at("subject");
  CL_ASSIGN_OR_RETURN(WitnessPolicy witnesses, WitnessFlags(a));
  options.witnesses = std::move(witnesses.witnesses);
  options.quorum = witnesses.quorum;
  CL_ASSIGN_OR_RETURN(v1::HistoryBundle bundle, LoadBundle(a.positional[0]));
  CL_ASSIGN_OR_RETURN(HistoryVerification h, VerifyHistoryBundle(bundle, options));
  return std::make_pair(std::move(bundle), std::move(h));
}

int RunVerifyHistory(Client& c, const ParsedArgs& a) {
  const Command& cmd = Find("verify-history");
  if (a.positional.size() != 1 || a.flags.count("key") == 0) {
    return Usage(cmd, "want BUNDLE and --key=KEY_OR_FILE");
  }
  auto verified = VerifyBundleArgs(cmd, a);
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
  if (a.flags.count("save_note")) {
    absl::Status w = WriteFileBytes(a.flags.at("save_note"), verified->first.checkpoint_note());
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

int RunExport(Client& c, const ParsedArgs& a) {
  const Command& cmd = Find("export");
  if (!a.positional.empty()) return Usage(cmd, "unexpected argument \"" + a.positional[0] + "\"");
  if (a.flags.count("out") == 0) return Usage(cmd, "--out=FILE is required (- for stdout)");
  const std::string out_path = a.flags.at("out");
  ExportOptions options;
  options.timeout = c.options().timeout;
  absl::StatusOr<uint64_t> from = FlagUint(a, "from", 0);
  if (!from.ok()) return Usage(cmd, from.status().message());
  options.from = *from;
  if (a.flags.count("since") > 0) {
    if (a.flags.count("from") > 0) return Usage(cmd, "--since and --from do not go together");
    std::ifstream file(a.flags.at("since"));
    std::stringstream note;
    note << file.rdbuf();
    absl::StatusOr<uint64_t> size = NoteSize(note.str());
    if (!file.good() || !size.ok()) {
      return Usage(cmd, absl::StrCat("--since: ", a.flags.at("since"), ": ",
                                     size.ok() ? "cannot be read" : size.status().message()));
    }
    options.from = *size;
  }
  if (a.flags.count("to") > 0) {
    absl::StatusOr<uint64_t> to = FlagUint(a, "to", 0);
    if (!to.ok()) return Usage(cmd, to.status().message());
    options.to = *to;
  }
  std::string payloads = a.flags.count("payloads") > 0 ? a.flags.at("payloads") : "full";
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

int RunRenderHistory(Client& c, const ParsedArgs& a) {
  const Command& cmd = Find("render-history");
  if (a.positional.size() != 1 || a.flags.count("key") == 0) {
    return Usage(cmd, "want BUNDLE and --key=KEY_OR_FILE");
  }
  RenderOptions options;
  if (a.flags.count("lang")) {
    options.lang = a.flags.at("lang");
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
  if (a.flags.count("tz")) {
    const std::string& tz = a.flags.at("tz");
    if (!absl::LoadTimeZone(tz, &options.time_zone)) {
      return Usage(cmd,
                   absl::StrCat("--tz: got \"", tz,
                                "\", want a time zone name such as UTC or America/Los_Angeles"));
    }
  }
  auto verified = VerifyBundleArgs(cmd, a);
  if (!verified.ok()) return Fail("render-history", verified.status());
  if (a.flags.count("html")) {
    absl::StatusOr<std::string> html = RenderHistoryHtml(verified->second, options);
    if (!html.ok()) return Fail("render-history", html.status());
    absl::Status w = WriteFileBytes(a.flags.at("html"), *html);
    if (!w.ok()) return Fail("render-history", w);
    std::fprintf(stderr, "wrote %s\n", a.flags.at("html").c_str());
  } else {
    absl::StatusOr<std::string> text = RenderHistoryText(verified->second, options);
    if (!text.ok()) return Fail("render-history", text.status());
    std::printf("%s", text->c_str());
  }
  return kExitOk;
}

int RunReadRecord(Client& c, const ParsedArgs& a) {
  const Command& cmd = Find("read-record");
  if (a.flags.count("seq") == 0) return Usage(cmd, "--seq is required");
  absl::StatusOr<uint64_t> seq = FlagUint(a, "seq", 0);
  if (!seq.ok()) return Usage(cmd, seq.status().message());
  auto flag = [&](const char* name, const std::string& fallback) {
    auto it = a.flags.find(name);
    return it == a.flags.end() ? fallback : it->second;
  };
  v1::ReadRecordRequest req;
  req.set_seq(*seq);
  req.set_subject_id(flag("subject", ""));
  req.set_full_view(a.flags.count("full_view") > 0);
  v1::Accessor* accessor = req.mutable_accessor();
  // With mutual TLS the server names the reader from the certificate.
  accessor->set_accessor_id(
      flag("accessor", req.subject_id().empty() ? "local" : req.subject_id()));
  accessor->set_role(flag("role", req.subject_id().empty() ? "local" : "client"));
  accessor->set_purpose(flag("purpose", "right of access"));
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

int RunAccessReport(Client& c, const ParsedArgs& a) {
  const Command& cmd = Find("access-report");
  if (a.flags.count("subject") == 0) return Usage(cmd, "--subject is required");
  if (absl::Status s = c.Connect(); !s.ok()) return Fail("access-report", s);
  auto stub = v1::AccessService::NewStub(c.channel());
  grpc::ClientContext ctx;
  c.SetDeadline(&ctx);
  v1::GetAccessReportRequest req;
  req.set_subject_id(a.flags.at("subject"));
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

const std::vector<Command>& Commands() {
  static const auto* commands = new std::vector<Command>{
      {"append",
       "usage: ledgerctl append --event='{...}'\n"
       "       ledgerctl append --file=EVENTS.jsonl | --file=- | -\n",
       "Appends events. Each is one JSON object in the protobuf JSON mapping of\n"
       "caseledger.v1.Event, or of caseledger.v1.AppendRequest ({\"event\": {...},\n"
       "\"expected_version\": N}). occurred_at defaults to now, producer to \"ledgerctl\".\n"
       "\n"
       "  --event=JSON  one event, appended with Append; prints its seq and leaf hash\n"
       "  --file=F      JSON lines (blank lines skipped) from F, or from stdin for - ;\n"
       "                pipelined over one AppendStream, with a progress bar when\n"
       "                stderr is a terminal. A file is parsed whole before anything is\n"
       "                sent. Ends with \"N appended, M duplicates in Ts (R events/s)\"\n"
       "                (on stderr with --json, which prints one result per line).\n"
       "\n"
       "On an error, prints the line number and the server's status, and exits 1.\n"
       "Appends are idempotent by event_id: re-running the same input is safe.\n",
       {{"event", true}, {"file", true}},
       RunAppend},
      {"read",
       "usage: ledgerctl read --stream=CASE [--from_version=N] [--limit=N]\n"
       "       ledgerctl read [--from_seq=N] [--limit=N]\n",
       "Prints records: one case's stream (ReadStream) or the global log (ReadLog,\n"
       "from seq 0 by default) up to the current tree size. One block per record,\n"
       "or with --json one caseledger.v1.Record per line (protobuf JSON mapping:\n"
       "bytes in base64, 64-bit numbers as strings).\n"
       "\n"
       "  --stream=CASE     the case (stream_id) to read\n"
       "  --from_version=N  first version of the stream (default 0)\n"
       "  --from_seq=N      first seq of the log (default 0)\n"
       "  --limit=N         at most N records (default 0: all)\n",
       {{"stream", true}, {"from_version", true}, {"from_seq", true}, {"limit", true}},
       RunRead},
      {"tail",
       "usage: ledgerctl tail [--from_seq=N] [--count=N]\n",
       "Follows the log (Subscribe) and prints records as they are committed,\n"
       "until interrupted (Ctrl-C) or --count records were printed.\n"
       "\n"
       "  --from_seq=N  first seq (default: the current tree size, i.e. only new records)\n"
       "  --count=N     stop after N records (default 0: never)\n",
       {{"from_seq", true}, {"count", true}},
       RunTail},
      {"checkpoint",
       "usage: ledgerctl checkpoint [--size=N] [--key=VERIFIER_KEY_OR_FILE [--origin=O]]\n",
       "Prints a signed checkpoint: its size, root hash (hex) and signed note.\n"
       "\n"
       "  --size=N    the checkpoint signed at size N (default: the latest)\n"
       "  --key=K     verify the note with this verifier key (name+hash+base64), or\n"
       "              the key in file K; prints \"signature OK\" or fails\n"
       "  --origin=O  the log origin the checkpoint must name (default: the key's name)\n",
       {{"size", true}, {"key", true}, {"origin", true}},
       RunCheckpointCmd},
      {"prove",
       "usage: ledgerctl prove --seq=N [--size=M] [--key=K] [--origin=O]\n"
       "       ledgerctl prove --from_size=A [--to_size=B] [--key=K] [--origin=O]\n",
       "Verifies, on this machine, that the server's log is what its checkpoints say.\n"
       "\n"
       "  --seq=N        record N is in the tree of the checkpoint (latest, or at --size):\n"
       "                 verifies the checkpoint's signature, fetches the record and checks\n"
       "                 SHA-256(0x00 || leaf) is the proof's leaf hash (and the leaf\n"
       "                 matches the record and its payload), then checks the inclusion\n"
       "                 proof against the signed root\n"
       "  --size=M       use the checkpoint signed at size M\n"
       "  --from_size=A  the checkpoint at B (default: the latest) extends the one at A:\n"
       "  --to_size=B    verifies both signatures and the consistency proof\n"
       "  --key=K        the verifier key (or a file holding it) you trust. Without it\n"
       "                 the server's own key is used, with a warning: a server that\n"
       "                 lies could sign with any key\n"
       "  --origin=O     the log origin checkpoints must name (default: the key's name;\n"
       "                 without --key, the origin the server reports)\n"
       "\n"
       "Prints \"OK: ...\" and exits 0, or \"FAILED: reason\" on stderr and exits 1.\n",
       {{"seq", true},
        {"size", true},
        {"from_size", true},
        {"to_size", true},
        {"key", true},
        {"origin", true}},
       RunProve},
      {"status",
       "usage: ledgerctl status\n",
       "Prints the server address, its gRPC health (grpc.health.v1), the tree size,\n"
       "the latest checkpoint (size, root, and the commit time of its last record as a\n"
       "lower bound of its age), the verifier key and origin. Exits 1 unless SERVING.\n",
       {},
       RunStatus},
      {"case",
       "usage: ledgerctl case --id=CASE [--min_seq=N]\n",
       "Prints a case's current state from the case-state read model: status,\n"
       "program, manager and history, participants and roles, consents with scope\n"
       "and expiry, conflicts, access requests with their legal due dates, and\n"
       "disclosures whose client notice is pending.\n"
       "\n"
       "  --id=CASE    the case (stream) id\n"
       "  --min_seq=N  wait until the read model reflects records below N (read your\n"
       "               own writes: the seq of your last append + 1)\n",
       {{"id", true}, {"min_seq", true}},
       RunCase},
      {"cases",
       "usage: ledgerctl cases [--status=S] [--manager=ID] [--overdue] [--limit=N]\n",
       "Lists cases, one line each: id, status, program, manager, version, open\n"
       "access requests (OVERDUE past their legal due date), next due date, pending\n"
       "client notices.\n"
       "\n"
       "  --status=S    open, interrupted, closed or disposed\n"
       "  --manager=ID  assigned to this case manager\n"
       "  --overdue     only cases with an access request past its due date\n"
       "  --limit=N     at most N cases (default 0: all)\n",
       {{"status", true}, {"manager", true}, {"overdue", false}, {"limit", true}},
       RunCases},
      {"accounting",
       "usage: ledgerctl accounting --client=ID [--from=DATE] [--to=DATE] [--include_excluded]\n"
       "                            [--summarize]\n",
       "Prints a client's accounting of disclosures (45 CFR 164.528) as readable\n"
       "JSON: date, recipient name and address, what was disclosed, purpose, basis.\n"
       "\n"
       "  --client=ID         the client (data subject) id\n"
       "  --from=DATE         window start (default: six years ago); 2026-01-31 or RFC 3339\n"
       "  --to=DATE           window end (default: now)\n"
       "  --include_excluded  also disclosures HIPAA excludes (treatment, payment,\n"
       "                      operations, to the client, under authorization), flagged\n"
       "  --summarize         repeated disclosures to one recipient for one purpose as\n"
       "                      first, count and last\n",
       {{"client", true},
        {"from", true},
        {"to", true},
        {"include_excluded", false},
        {"summarize", false},
        {"min_seq", true}},
       RunAccounting},
      {"history",
       "usage: ledgerctl history --subject=ID --out=BUNDLE [--since=NOTEFILE] [--current]\n"
       "                         [--accessor=ID] [--role=R] [--purpose=P] [--request=ID "
       "--case=ID]\n"
       "                         [--witness_keys=K1,K2|FILE [--quorum=Q] [--wait=5m]]\n",
       "Fetches a client's record history (AccessService.GetRecordHistory) and writes\n"
       "the bundle (binary caseledger.v1.HistoryBundle) to BUNDLE. The read is recorded\n"
       "as an access event. Check the file with verify-history.\n"
       "\n"
       "  --subject=ID    the client (data subject)\n"
       "  --out=BUNDLE    where to write the bundle\n"
       "  --since=NOTE    a checkpoint note kept from before: the bundle then proves\n"
       "                  consistency with it\n"
       "  --current       sign a checkpoint covering every record first\n"
       "  --accessor, --role, --purpose   who reads and why (default: the subject,\n"
       "                  \"client\", \"right of access\")\n"
       "  --request=ID --case=ID   the access request this fulfils (appends\n"
       "                  access_fulfilled with the bundle's SHA-256)\n"
       "  --witness_keys  witnesses you trust: the bundle must carry cosignatures by\n"
       "                  --quorum of them (default all); checked again by verify-history\n"
       "  --wait=D        how long to wait for them to cosign (default 0: fail at once\n"
       "                  if they have not); each fetch while waiting is recorded\n",
       {{"subject", true},
        {"witness_keys", true},
        {"quorum", true},
        {"wait", true},
        {"out", true},
        {"since", true},
        {"current", false},
        {"accessor", true},
        {"role", true},
        {"purpose", true},
        {"request", true},
        {"case", true}},
       RunHistory},
      {"verify-history",
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
       "the reason on the first failure.\n"
       "\n"
       "  --key=K         the log's verifier key (or a file holding it)\n"
       "  --subject=ID    refuse a bundle that is not ID's history\n"
       "  --since=NOTE    a checkpoint note you kept (e.g. from --save_note)\n"
       "  --save_note=F   after success, write the bundle's checkpoint note to F\n"
       "  --witness_keys  witnesses you trust (verifier keys, comma-separated, or a file)\n"
       "  --quorum=Q      how many of them must have cosigned (default: all)\n",
       {{"key", true},
        {"origin", true},
        {"since", true},
        {"save_note", true},
        {"subject", true},
        {"witness_keys", true},
        {"quorum", true}},
       RunVerifyHistory},
      {"render-history",
       "usage: ledgerctl render-history BUNDLE --key=KEY_OR_FILE [--since=NOTEFILE] "
       "[--html=OUT]\n"
       "                                [--lang=en|es] [--tz=ZONE]\n",
       "Verifies BUNDLE as verify-history does, then shows it to the person it is\n"
       "about, in plain words: whether it is complete and unaltered, each entry as a\n"
       "sentence, who their information was shared with, who looked at their record,\n"
       "and how this was checked. Prints text, or writes a standalone HTML page (no\n"
       "scripts, nothing fetched; readable on a phone, printable) to OUT.\n"
       "\n"
       "  --key=K         the log's verifier key (or a file holding it)\n"
       "  --subject=ID    refuse a bundle that is not ID's history\n"
       "  --since=NOTE    a checkpoint note you kept (e.g. from verify-history --save_note)\n"
       "  --witness_keys, --quorum  require witnesses' cosignatures, as verify-history\n"
       "  --html=OUT      write the HTML page to OUT instead of printing text\n"
       "  --lang=L        the page's language: en (English, the default) or es (Spanish)\n"
       "  --tz=ZONE       show dates and times in ZONE, e.g. America/Los_Angeles\n"
       "                  (default UTC); the zone is named next to each time\n",
       {{"key", true},
        {"origin", true},
        {"since", true},
        {"html", true},
        {"lang", true},
        {"tz", true},
        {"subject", true},
        {"witness_keys", true},
        {"quorum", true}},
       RunRenderHistory},
      {"read-record",
       "usage: ledgerctl read-record --seq=N [--subject=ID] [--purpose=P] [--full_view]\n"
       "                             [--accessor=ID] [--role=R]\n",
       "Prints one record's content, as its reader may see it\n"
       "(AccessService.ReadRecord): the event as JSON and the fields withheld. The\n"
       "read is recorded as an access event in the record's case.\n"
       "\n"
       "  --seq=N       the record\n"
       "  --subject=ID  the client (data subject) the record is about: a client reads\n"
       "                only records that name their own id; an auditor may leave it\n"
       "                out (their audit grant must cover the record's case)\n"
       "  --purpose=P   why (default \"right of access\"); recorded with the read\n"
       "  --full_view   protected fields too (staff with a need to know; never a client)\n"
       "  --accessor, --role   who reads, on a plaintext loopback server (default: the\n"
       "                subject and \"client\", or \"local\" without --subject); with\n"
       "                mutual TLS the certificate says who reads\n",
       {{"seq", true},
        {"subject", true},
        {"purpose", true},
        {"full_view", false},
        {"accessor", true},
        {"role", true}},
       RunReadRecord},
      {"access-report",
       "usage: ledgerctl access-report --subject=ID\n",
       "Who accessed a client's records: every recorded read (who, role, purpose,\n"
       "which records, when), from AccessService.GetAccessReport.\n",
       {{"subject", true}},
       RunAccessReport},
      {"audit",
       "usage: ledgerctl audit verify-range [--from_seq=N] [--to_seq=M] [--max_failures=K]\n",
       "Asks the server to verify stored records [N, M) (AuditService.VerifyRange):\n"
       "hash chain, leaf and payload commitments, Merkle nodes, and every checkpoint\n"
       "signed at a size in (N, M], anchored on the stored Merkle nodes at N.\n"
       "Prints \"OK: ...\" and exits 0, or one \"FAILED: seq S: reason\" line per failure\n"
       "on stderr and exits 1. An auditor who does not trust the server runs\n"
       "ledger_verify on a copy of the data directory instead.\n"
       "\n"
       "  --from_seq=N      first record (default 0)\n"
       "  --to_seq=M        end, exclusive (default 0: the tree size)\n"
       "  --max_failures=K  report up to K failures (default 1)\n",
       {{"from_seq", true}, {"to_seq", true}, {"max_failures", true}},
       RunAudit},
      {"metrics",
       "usage: ledgerctl metrics\n",
       "Prints the server's ledger gauges (AuditService.GetMetrics): tree size, the\n"
       "latest checkpoint's size and age (of the newest record it covers), records\n"
       "not yet signed, how far the background verifier got and how far behind it is\n"
       "(records and seconds), the newest cosigned checkpoint and its cosignature's\n"
       "age. Exits 1 if the background verifier found damage.\n",
       {},
       RunMetrics},
      {"cosigned",
       "usage: ledgerctl cosigned --witness_keys=K1,K2|FILE [--quorum=Q] [--size=N]\n"
       "                          [--key=K] [--origin=O]\n",
       "Fetches a checkpoint with the witness cosignatures the server collected\n"
       "(WitnessService.GetCosignedCheckpoint) and verifies, on this machine, the\n"
       "log's signature and cosignatures by at least Q of the trusted witnesses\n"
       "(ledger/COSIGNATURE.md). Prints \"OK: ...\" and the note, or \"FAILED: reason\".\n"
       "\n"
       "  --witness_keys=...  witness verifier keys (name+hash+base64 of 0x04||key),\n"
       "                      comma-separated, or a file with one per line\n"
       "  --quorum=Q          cosignatures required (default: all the witnesses)\n"
       "  --size=N            the checkpoint signed at size N (default: the newest\n"
       "                      checkpoint that has a cosignature)\n"
       "  --key=K, --origin=O the log's verifier key and origin, as for prove\n",
       {{"witness_keys", true}, {"quorum", true}, {"size", true}, {"key", true}, {"origin", true}},
       RunCosigned},
      {"export",
       "usage: ledgerctl export --out=FILE|- [--from=N | --since=NOTE] [--to=M]\n"
       "                        [--payloads=full|commitments]\n",
       "Writes an export bundle (ledger/BUNDLE.md) for auditors: records, payload\n"
       "commitments, signed checkpoints and the log's key, streamed, with progress.\n"
       "Check it offline with ledger_verify --bundle=FILE --key=KEY.\n"
       "\n"
       "  --out=FILE       where to write (- for stdout); written to FILE.partial and\n"
       "                   renamed when complete\n"
       "  --from=N         first record (default 0); a range carries the proofs that\n"
       "                   tie it to the tree before it\n"
       "  --since=NOTE     start at the size of this checkpoint note (the one\n"
       "                   ledger_verify --save_note kept): an incremental audit\n"
       "  --to=M           end before record M (default: the latest checkpoint's size,\n"
       "                   so a signature covers every exported record)\n"
       "  --payloads=P     full (default): payloads as stored, encrypted ones stay\n"
       "                   encrypted; commitments: only what the record commits to\n",
       {{"out", true}, {"from", true}, {"since", true}, {"to", true}, {"payloads", true}},
       RunExport},
  };
  return *commands;
}

void PrintHelp(FILE* out) {
  std::fprintf(out, "%s\ncommands:\n", kGlobalUsage);
  for (const Command& c : Commands()) std::fprintf(out, "  %s", c.synopsis + 7);  // no "usage: "
  std::fprintf(out, "  help [COMMAND]\n");
}

void PrintCommandHelp(const Command& c) {
  std::printf(
      "%s\n%s\nglobal flags: --server=HOST:PORT --json --timeout=DURATION\n"
      "              --ca=CA.pem --cert=ME.pem --key_file=ME.key --tls_server_name=NAME\n",
      c.synopsis, c.help);
}

int Main(const std::vector<std::string>& args) {
  // Global flags before the command: find where the command starts.
  size_t i = 0;
  while (i < args.size() && args[i].size() > 1 && args[i][0] == '-') {
    std::string name = args[i].substr(args[i].find_first_not_of('-'));
    bool takes_value = kGlobalFlags.count(name) > 0 && kGlobalFlags.at(name);
    i += takes_value ? 2 : 1;  // "--server X"; "--server=X" has another name
  }
  i = std::min(i, args.size());
  absl::StatusOr<ParsedArgs> global =
      ParseArgs(std::vector<std::string>(args.begin(), args.begin() + i), kGlobalFlags);
  if (!global.ok()) {
    std::fprintf(stderr, "ledgerctl: %s\n%s", std::string(global.status().message()).c_str(),
                 kGlobalUsage);
    return kExitUsage;
  }
  if (i == args.size()) {
    if (global->flags.count("help") > 0) {
      PrintHelp(stdout);
      return kExitOk;
    }
    std::fprintf(stderr, "ledgerctl: missing COMMAND\n");
    PrintHelp(stderr);
    return kExitUsage;
  }
  const std::string& name = args[i];
  if (name == "help") {
    if (i + 1 == args.size()) {
      PrintHelp(stdout);
      return kExitOk;
    }
    for (const Command& c : Commands()) {
      if (args[i + 1] == c.name) {
        PrintCommandHelp(c);
        return kExitOk;
      }
    }
    std::fprintf(stderr, "ledgerctl help: unknown command \"%s\"\n", args[i + 1].c_str());
    return kExitUsage;
  }
  const Command* cmd = nullptr;
  for (const Command& c : Commands()) {
    if (name == c.name) cmd = &c;
  }
  if (cmd == nullptr) {
    std::fprintf(stderr, "ledgerctl: unknown command \"%s\"\n", name.c_str());
    PrintHelp(stderr);
    return kExitUsage;
  }
  FlagSpec spec = cmd->flags;
  spec.insert(kGlobalFlags.begin(), kGlobalFlags.end());
  absl::StatusOr<ParsedArgs> parsed =
      ParseArgs(std::vector<std::string>(args.begin() + i + 1, args.end()), spec);
  if (!parsed.ok()) return Usage(*cmd, parsed.status().message());
  for (const auto& [flag, value] : global->flags) {
    if (!parsed->flags.emplace(flag, value).second) {
      return Usage(*cmd, absl::StrCat("--", flag, ": given twice"));
    }
  }
  if (parsed->flags.count("help") > 0) {
    PrintCommandHelp(*cmd);
    return kExitOk;
  }
  Options o;
  if (auto it = parsed->flags.find("server"); it != parsed->flags.end()) o.server = it->second;
  o.json = parsed->flags.count("json") > 0;
  if (auto it = parsed->flags.find("timeout"); it != parsed->flags.end()) {
    if (!absl::ParseDuration(it->second, &o.timeout) || o.timeout <= absl::ZeroDuration()) {
      return Usage(*cmd, absl::StrCat("--timeout: got \"", it->second,
                                      "\", want a positive duration such as 10s or 500ms"));
    }
  }
  o.channel = ChannelOptionsOf(o.server, parsed->flags);
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = NewChannel(o.channel);
  if (!channel.ok()) return Usage(*cmd, channel.status().message());
  for (const char* f :
       {"server", "json", "timeout", "help", "ca", "cert", "key_file", "tls_server_name"}) {
    parsed->flags.erase(f);
  }
  if (cmd->run == RunTail) {
    // Before any gRPC thread exists, so that only the tail's signal thread
    // receives SIGINT and SIGTERM.
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  }
  Client client(o, *std::move(channel));
  return cmd->run(client, *parsed);
}

}  // namespace
}  // namespace caseledger::ledgerctl

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return caseledger::ledgerctl::Main(args);
}
