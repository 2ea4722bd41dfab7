#include "tools/ledgerctl/context.h"

#include <grpcpp/generic/generic_stub.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "ledger/internal/status_macros.h"
#include "tools/ledgerctl/ledgerctl_lib.h"

namespace caseledger::ledgerctl {

absl::StatusOr<Options> OptionsOf(const GlobalFlags& flags) {
  Options o;
  o.server = flags.server;
  o.json = flags.json;
  if (!absl::ParseDuration(flags.timeout, &o.timeout) || o.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--timeout: got \"", flags.timeout, "\", want a positive duration such as 10s or 500ms"));
  }
  // Every command talks over the one channel NewChannel makes from these.
  o.channel.target = o.server;
  o.channel.ca_file = flags.ca;
  o.channel.cert_file = flags.cert;
  o.channel.key_file = flags.key_file;
  o.channel.tls_server_name = flags.tls_server_name;
  // History bundles can be large (gRPC's default limit is 4 MiB).
  o.channel.max_receive_message_bytes = 256 << 20;
  return o;
}

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

Client::Client(const Options& o, std::shared_ptr<grpc::Channel> channel)
    : options_(o), channel_(std::move(channel)), stub_(v1::LedgerService::NewStub(channel_)) {}

absl::Status Client::Connect() {
  if (channel_->WaitForConnected(absl::ToChronoTime(absl::Now() + options_.timeout))) {
    return absl::OkStatus();
  }
  return absl::UnavailableError(absl::StrCat("could not connect to ", options_.server, " within ",
                                             absl::FormatDuration(options_.timeout),
                                             " (is caseledger_server running there?)"));
}

void Client::SetDeadline(grpc::ClientContext* ctx) const {
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + options_.timeout));
}

absl::StatusOr<v1::Checkpoint> Client::GetCheckpoint(uint64_t size) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  v1::GetCheckpointRequest req;
  req.set_size(size);
  v1::Checkpoint resp;
  CL_RETURN_IF_ERROR(FromGrpc(stub_->GetCheckpoint(&ctx, req, &resp), "GetCheckpoint", options_));
  return resp;
}

absl::StatusOr<v1::PublicKey> Client::GetPublicKey() {
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  v1::PublicKey resp;
  CL_RETURN_IF_ERROR(FromGrpc(stub_->GetPublicKey(&ctx, v1::GetPublicKeyRequest(), &resp),
                              "GetPublicKey", options_));
  return resp;
}

absl::StatusOr<std::optional<v1::Record>> Client::ReadOne(uint64_t seq) {
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

absl::StatusOr<uint64_t> Client::TreeSize(uint64_t at_least) {
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

// Through the generic stub: Debian ships no generated health client.
absl::StatusOr<std::string> Client::Health(absl::string_view service) {
  grpc::GenericStub generic(channel_);
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  // HealthCheckRequest{service: 1 (string)}: tag 0x0a, a one-byte length.
  if (service.size() > 127) return absl::InvalidArgumentError("health service name too long");
  std::string request = {0x0a, static_cast<char>(service.size())};
  request.append(service.data(), service.size());
  grpc::Slice slice(request.data(), request.size());
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
    for (const grpc::Slice& s : slices) {
      bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
  }
  // HealthCheckResponse{status = 1 (enum)}: tag 0x08 then a small varint.
  int code = bytes.size() >= 2 && bytes[0] == 0x08 ? bytes[1] : 0;
  constexpr const char* kNames[] = {"UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"};
  return std::string(code >= 0 && code < 4 ? kNames[code] : "UNKNOWN");
}

void AddKeyFlags(CLI::App* app, KeyFlags* flags, const std::string& key_help) {
  AddString(app, "--key", &flags->key, "K",
            !key_help.empty() ? key_help
                              : "the verifier key (name+hash+base64, or a file holding it)\n"
                                "you trust. Without it the server's own key is used, with a\n"
                                "warning: a server that lies could sign with any key");
  AddString(app, "--origin", &flags->origin, "O",
            "the log origin checkpoints must name (default: the key's name;\n"
            "without --key, the origin the server reports)");
}

absl::StatusOr<TrustedKey> ResolveKey(Client& c, const KeyFlags& flags) {
  if (flags.key) {
    CL_ASSIGN_OR_RETURN(NoteVerifier v, LoadVerifier(*flags.key));
    std::string origin = flags.origin.value_or(v.name());
    return TrustedKey{std::move(v), std::move(origin)};
  }
  CL_ASSIGN_OR_RETURN(v1::PublicKey pk, c.GetPublicKey());
  CL_ASSIGN_OR_RETURN(NoteVerifier v, NoteVerifier::FromVerifierKey(pk.verifier_key()));
  std::fprintf(stderr,
               "warning: verifying with the key the server itself sent (%s). That only shows\n"
               "  the server is consistent with itself; pass --key=KEY_OR_FILE with a key you\n"
               "  obtained another way.\n",
               pk.verifier_key().c_str());
  return TrustedKey{std::move(v), flags.origin.value_or(pk.origin())};
}

void AddWitnessFlags(CLI::App* app, WitnessFlags* flags) {
  AddString(app, "--witness_keys", &flags->keys, "K1,K2|FILE",
            "witnesses you trust: their verifier keys (name+hash+base64 of\n"
            "0x04||key), comma-separated, or a file with one per line");
  AddUint(app, "--quorum", &flags->quorum, "Q",
          "how many of them must have cosigned (default: all)");
}

absl::StatusOr<WitnessPolicy> WitnessPolicyOf(const WitnessFlags& flags) {
  WitnessPolicy p;
  if (!flags.keys) {
    if (flags.quorum) return absl::InvalidArgumentError("--quorum needs --witness_keys");
    return p;
  }
  std::string list = *flags.keys;
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
  const uint64_t quorum = flags.quorum.value_or(p.witnesses.size());
  if (quorum == 0 || quorum > p.witnesses.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--quorum: got ", quorum, ", want 1..", p.witnesses.size()));
  }
  p.quorum = quorum;
  return p;
}

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

}  // namespace caseledger::ledgerctl
