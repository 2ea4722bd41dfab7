// ledger_witness: an independent witness for a caseledger log
// (ledger/COSIGNATURE.md). It remembers the last checkpoint it verified, and
// cosigns a new one only if the log signed it, it extends the remembered
// one (RFC 9162 consistency proof), and its subjects root follows from the
// remembered one's and the records between them (a subjects transition,
// ledger/SUBJECT_INDEX.md "Transitions"; from the empty log on first sight).
// A log that rolls back, forks or signs a subjects root its records do not
// give is refused and the remembered checkpoint is kept.
//
//   ledger_witness --server=127.0.0.1:7070 --log_key=LOG_VKEY_OR_FILE
//       --witness_key=witness.key --witness_name=witness.example/w1
//       --state=witness.state [--once | --interval=30s]
//       [--ca=ca.pem --cert=auditor.pem --key_file=auditor.key [--tls_server_name=N]]
//   ledger_witness --listen=127.0.0.1:8081 --log_key=LOG_VKEY[,LOG_VKEY...]
//       --witness_key=witness.key --witness_name=witness.example/w1 --state=witness.state
//       (serves C2SP tlog-witness POST /add-checkpoint until SIGINT/SIGTERM;
//       services/tlog/WITNESS_HTTP.md)
//   ledger_witness --witness_key=witness.key --witness_name=... --print_vkey
//
// Exit status: 0 cosigned; 1 an error (network, files); 2 bad usage; 3 the
// log was refused (rollback, fork, bad signature, a subjects root that does
// not follow from the records). With --interval it runs
// until SIGINT/SIGTERM and reports each round on stdout/stderr.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "ledger/checkpoint.h"
#include "ledger/cosignature.h"
#include "ledger/signer.h"
#include "ledger/subject_transition.h"
#include "ledger/witness.h"
#include "proto/audit.grpc.pb.h"
#include "proto/ledger.grpc.pb.h"
#include "services/tlog/http_server.h"
#include "services/tlog/witness_http.h"
#include "tools/channel.h"

ABSL_FLAG(std::string, server, "127.0.0.1:7070", "host:port of the caseledger server.");
ABSL_FLAG(std::string, ca, "",
          "CA certificate (PEM) of the server: speak mutual TLS with --cert/--key_file (an "
          "auditor certificate, caseledger://auditor/ID); without it, plaintext (a server "
          "started with --insecure_loopback).");
ABSL_FLAG(std::string, cert, "", "Client certificate (PEM), with --ca.");
ABSL_FLAG(std::string, key_file, "", "Client key (PEM), with --ca.");
ABSL_FLAG(std::string, tls_server_name, "",
          "Name the server certificate must have (default: the host of --server).");
ABSL_FLAG(std::string, log_key, "",
          "The log's checkpoint verifier key (name+hash+base64), or a file holding it. Use the "
          "key you trust, not one fetched from the server.");
ABSL_FLAG(std::string, witness_key, "",
          "The witness's Ed25519 key file (PKCS#8 PEM, mode 0600); generated when absent.");
ABSL_FLAG(std::string, witness_name, "caseledger-witness",
          "The witness's key name (goes into its key hash and signature lines).");
ABSL_FLAG(std::string, state, "",
          "File holding the last verified checkpoint per log origin (written atomically).");
ABSL_FLAG(bool, once, false, "Witness once and exit (the default unless --interval is set).");
ABSL_FLAG(absl::Duration, interval, absl::ZeroDuration(),
          "Witness again this long after each round, until SIGINT/SIGTERM.");
ABSL_FLAG(bool, submit, true, "Send the cosigned checkpoint to the server (AddCosignature).");
ABSL_FLAG(bool, print_vkey, false,
          "Print the witness's verifier key (for the server's --witness_keys) and exit.");
ABSL_FLAG(std::string, listen, "",
          "Serve C2SP tlog-witness (POST /add-checkpoint) over HTTP on this loopback host:port "
          "instead of polling --server; --log_key may then list several logs, comma-separated. "
          "Checks signatures and consistency only (no subjects transition).");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(10), "Deadline for each RPC.");

namespace caseledger {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitError = 1;
constexpr int kExitUsage = 2;
constexpr int kExitRefused = 3;

absl::Status FromGrpc(const grpc::Status& s, absl::string_view rpc) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      absl::StrCat(rpc, ": ", s.error_message()));
}

// A verifier key given inline, or the first line of a file holding it.
std::string KeyOrFile(std::string key) {
  if (std::ifstream file(key); file.good() && key.find('+') == std::string::npos) {
    std::stringstream ss;
    ss << file.rdbuf();
    key = std::string(absl::StripAsciiWhitespace(ss.str()));
  }
  return key;
}

class Witness {
 public:
  // `channel` comes from NewChannel (tools/channel.h).
  Witness(NoteVerifier log, Cosigner cosigner, std::string state_path, WitnessState state,
          std::shared_ptr<grpc::Channel> channel)
      : log_(std::move(log)),
        cosigner_(std::move(cosigner)),
        state_path_(std::move(state_path)),
        state_(std::move(state)),
        channel_(std::move(channel)),
        ledger_(v1::LedgerService::NewStub(channel_)),
        witness_(v1::WitnessService::NewStub(channel_)) {}

  // One round. DATA_LOSS means the log was refused.
  absl::Status Round() {
    v1::Checkpoint latest;
    {
      grpc::ClientContext ctx;
      Deadline(&ctx);
      v1::GetCheckpointRequest req;
      absl::Status s = FromGrpc(ledger_->GetCheckpoint(&ctx, req, &latest), "GetCheckpoint");
      if (!s.ok()) return s;
    }
    ConsistencyProofSource proofs = [this](uint64_t from,
                                           uint64_t to) -> absl::StatusOr<std::vector<Hash>> {
      grpc::ClientContext ctx;
      Deadline(&ctx);
      v1::ConsistencyProofRequest req;
      req.set_from_size(from);
      req.set_to_size(to);
      v1::ConsistencyProof proof;
      absl::Status s =
          FromGrpc(ledger_->GetConsistencyProof(&ctx, req, &proof), "GetConsistencyProof");
      if (!s.ok()) return s;
      std::vector<Hash> out;
      for (const std::string& h : proof.hashes()) {
        absl::StatusOr<Hash> hash = HashFromBytes(h);
        if (!hash.ok())
          return absl::DataLossError(absl::StrCat("proof hash: ", hash.status().message()));
        out.push_back(*hash);
      }
      return out;
    };
    SubjectTransitionSource transitions =
        [this, &latest](uint64_t from, uint64_t to) -> absl::StatusOr<SubjectTransition> {
      return FetchTransition(from, to, latest.note());
    };
    WitnessState next = state_;
    uint64_t now = static_cast<uint64_t>(absl::ToUnixSeconds(absl::Now()));
    absl::StatusOr<WitnessResult> r =
        WitnessCheckpoint(log_, latest.note(), proofs, transitions, cosigner_, now, &next);
    if (!r.ok()) return r.status();
    // Remember before publishing: a cosignature must never claim more than
    // the state on disk holds.
    absl::Status saved = next.Save(state_path_);
    if (!saved.ok()) return saved;
    state_ = std::move(next);
    std::string was = r->previous.has_value()
                          ? absl::StrCat("size ", r->previous->size)
                          : std::string(
                                "nothing (first checkpoint seen: verified from the "
                                "empty log)");
    std::string line =
        absl::StrCat("cosigned ", r->checkpoint.origin, " size ", r->checkpoint.size, " root ",
                     ToHex(r->checkpoint.root), " at time ", now, "; previously ", was,
                     "; subjects checked over ", r->subjects.records, " records, ",
                     r->subjects.keys, " subjects");
    if (absl::GetFlag(FLAGS_submit)) {
      grpc::ClientContext ctx;
      Deadline(&ctx);
      v1::AddCosignatureRequest req;
      req.set_note(r->cosigned_note);
      v1::AddCosignatureResponse resp;
      absl::Status s = FromGrpc(witness_->AddCosignature(&ctx, req, &resp), "AddCosignature");
      if (!s.ok()) {
        return absl::Status(s.code(),
                            absl::StrCat(line, "; but the server refused it: ", s.message()));
      }
      absl::StrAppend(&line, "; server stored it");
    }
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
    return absl::OkStatus();
  }

 private:
  // GetSubjectTransition(from), reassembled from its chunks. UNAVAILABLE when
  // it ends at another checkpoint than `note` (the log signed a newer one
  // meanwhile: the next round catches up); DATA_LOSS for a malformed answer.
  absl::StatusOr<SubjectTransition> FetchTransition(uint64_t from, uint64_t to,
                                                    const std::string& note) {
    grpc::ClientContext ctx;
    Deadline(&ctx);
    v1::SubjectTransitionRequest req;
    req.set_from_size(from);
    std::unique_ptr<grpc::ClientReader<v1::SubjectTransitionChunk>> reader =
        witness_->GetSubjectTransition(&ctx, req);
    SubjectTransition t;
    v1::SubjectTransitionChunk chunk;
    bool first = true;
    std::string end_note;
    absl::Status bad;
    auto hash = [&bad](const std::string& bytes, absl::string_view what) {
      absl::StatusOr<Hash> h = HashFromBytes(bytes);
      if (!h.ok() && bad.ok()) {
        bad = absl::DataLossError(
            absl::StrCat("GetSubjectTransition: ", what, ": ", h.status().message()));
      }
      return h.ok() ? *h : Hash{};
    };
    while (reader->Read(&chunk)) {
      if (first) {
        end_note = chunk.checkpoint().note();
        t.from_size = chunk.from_size();
        for (const std::string& h : chunk.old_range()) t.old_range.push_back(hash(h, "old_range"));
        first = false;
      }
      for (std::string& r : *chunk.mutable_records()) t.records.push_back(std::move(r));
      t.old_map.append(chunk.old_map());
      for (const v1::SubjectClaim& c : chunk.claims()) {
        t.claims.push_back({hash(c.key(), "claim key"), {c.count(), hash(c.head(), "claim head")}});
      }
    }
    absl::Status s = FromGrpc(reader->Finish(), "GetSubjectTransition");
    if (!s.ok()) return s;
    if (!bad.ok()) return bad;
    if (first) return absl::DataLossError("GetSubjectTransition: the stream was empty");
    if (end_note != note) {
      return absl::UnavailableError(
          absl::StrCat("GetSubjectTransition: the log signed a newer checkpoint than size ", to,
                       " meanwhile; the next round witnesses it"));
    }
    if (t.from_size != from) {
      return absl::DataLossError(absl::StrCat("GetSubjectTransition: got a transition from size ",
                                              t.from_size, ", asked for ", from));
    }
    return t;
  }

  void Deadline(grpc::ClientContext* ctx) {
    ctx->set_deadline(absl::ToChronoTime(absl::Now() + absl::GetFlag(FLAGS_timeout)));
  }

  NoteVerifier log_;
  Cosigner cosigner_;
  std::string state_path_;
  WitnessState state_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::LedgerService::Stub> ledger_;
  std::unique_ptr<v1::WitnessService::Stub> witness_;
};

int Report(const absl::Status& s) {
  if (s.ok()) return kExitOk;
  if (s.code() == absl::StatusCode::kDataLoss) {
    std::fprintf(stderr, "ledger_witness: REFUSED: %s\n", std::string(s.message()).c_str());
    return kExitRefused;
  }
  std::fprintf(stderr, "ledger_witness: %s\n", s.ToString().c_str());
  return kExitError;
}

// Blocks SIGINT and SIGTERM, so that sigwait/sigtimedwait take them.
sigset_t BlockStopSignals() {
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  return stop;
}

// --listen: the tlog-witness HTTP endpoint until SIGINT/SIGTERM.
int Serve(const std::string& listen, std::vector<NoteVerifier> logs, Cosigner cosigner,
          const std::string& state_path, WitnessState state) {
  sigset_t stop = BlockStopSignals();  // before the server's threads start
  WitnessHttpHandler handler(std::move(logs), &cosigner, state_path, std::move(state), [] {
    return static_cast<uint64_t>(absl::ToUnixSeconds(absl::Now()));
  });
  HttpServerOptions options;
  options.listen = listen;
  auto server =
      HttpServer::Start(options, [&handler](const HttpRequest& r) { return handler.Handle(r); });
  if (!server.ok()) {
    std::fprintf(stderr, "ledger_witness: --listen: %s\n", server.status().ToString().c_str());
    return kExitUsage;
  }
  std::printf("witness %s listening on http://127.0.0.1:%d (tlog-witness add-checkpoint)\n",
              cosigner.VerifierKey().c_str(), (*server)->port());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&stop, &sig);
  return kExitOk;
}

int Run() {
  const std::string key_path = absl::GetFlag(FLAGS_witness_key);
  if (key_path.empty()) {
    std::fprintf(stderr,
                 "ledger_witness: --witness_key is required (a key file; created when "
                 "absent)\n");
    return kExitUsage;
  }
  auto key = Ed25519Signer::LoadOrCreate(key_path);
  if (!key.ok()) {
    std::fprintf(stderr, "ledger_witness: --witness_key: %s\n", key.status().ToString().c_str());
    return kExitError;
  }
  auto cosigner = Cosigner::New(absl::GetFlag(FLAGS_witness_name), *std::move(key));
  if (!cosigner.ok()) {
    std::fprintf(stderr, "ledger_witness: --witness_name: %s\n",
                 cosigner.status().ToString().c_str());
    return kExitUsage;
  }
  if (absl::GetFlag(FLAGS_print_vkey)) {
    std::printf("%s\n", cosigner->VerifierKey().c_str());
    return kExitOk;
  }
  const std::string log_key = KeyOrFile(absl::GetFlag(FLAGS_log_key));
  if (log_key.empty()) {
    std::fprintf(stderr,
                 "ledger_witness: --log_key is required (the log's verifier key, or a "
                 "file holding it)\n");
    return kExitUsage;
  }
  // One log over gRPC; over HTTP (--listen) a comma-separated list.
  std::vector<NoteVerifier> logs;
  for (absl::string_view key : absl::StrSplit(log_key, ',', absl::SkipEmpty())) {
    auto log = NoteVerifier::FromVerifierKey(KeyOrFile(std::string(key)));
    if (!log.ok()) {
      std::fprintf(stderr, "ledger_witness: --log_key: %s\n", log.status().ToString().c_str());
      return kExitUsage;
    }
    logs.push_back(*std::move(log));
  }
  const std::string listen = absl::GetFlag(FLAGS_listen);
  if (listen.empty() && logs.size() != 1) {
    std::fprintf(stderr, "ledger_witness: --log_key: want one log key without --listen\n");
    return kExitUsage;
  }
  const std::string state_path = absl::GetFlag(FLAGS_state);
  if (state_path.empty()) {
    std::fprintf(stderr, "ledger_witness: --state is required (a file; created when absent)\n");
    return kExitUsage;
  }
  auto state = WitnessState::Load(state_path);
  if (!state.ok()) return Report(state.status());
  if (!listen.empty()) {
    return Serve(listen, std::move(logs), *std::move(cosigner), state_path, *std::move(state));
  }
  auto log = std::move(logs.front());

  ChannelOptions channel_options;
  channel_options.target = absl::GetFlag(FLAGS_server);
  channel_options.ca_file = absl::GetFlag(FLAGS_ca);
  channel_options.cert_file = absl::GetFlag(FLAGS_cert);
  channel_options.key_file = absl::GetFlag(FLAGS_key_file);
  channel_options.tls_server_name = absl::GetFlag(FLAGS_tls_server_name);
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = NewChannel(channel_options);
  if (!channel.ok()) {
    std::fprintf(stderr, "ledger_witness: %s\n", std::string(channel.status().message()).c_str());
    return kExitUsage;
  }
  Witness witness(std::move(log), *std::move(cosigner), state_path, *std::move(state),
                  *std::move(channel));
  const absl::Duration interval = absl::GetFlag(FLAGS_interval);
  if (absl::GetFlag(FLAGS_once) || interval <= absl::ZeroDuration()) {
    return Report(witness.Round());
  }
  sigset_t stop = BlockStopSignals();
  for (;;) {
    Report(witness.Round());  // A refusal is reported and the old state kept.
    timespec wait = absl::ToTimespec(interval);
    if (sigtimedwait(&stop, nullptr, &wait) > 0) return kExitOk;
  }
}

}  // namespace
}  // namespace caseledger

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Witnesses a caseledger log: verifies each new checkpoint against the last one it saw "
      "and cosigns it.\n"
      "  ledger_witness --server=HOST:PORT --log_key=VKEY --witness_key=FILE "
      "--witness_name=NAME --state=FILE [--once | --interval=30s]\n"
      "      [--ca=CA.pem --cert=ME.pem --key_file=ME.key [--tls_server_name=NAME]]\n"
      "  ledger_witness --listen=127.0.0.1:PORT --log_key=VKEY[,VKEY...] --witness_key=FILE "
      "--witness_name=NAME --state=FILE   (C2SP tlog-witness over HTTP)");
  absl::ParseCommandLine(argc, argv);
  return caseledger::Run();
}
