// caseledger_server: the ledger service on an embedded RocksDB data directory.
//
//   caseledger_server --data_dir=./data --listen=127.0.0.1:7070
//
// Data directory layout: <data_dir>/ledger (RocksDB), <data_dir>/signing.key
// (Ed25519, PKCS#8 PEM, mode 0600, created on first start unless
// --signing_key names one).
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "ledger/checkpoint.h"
#include "ledger/key_store.h"
#include "ledger/ledger.h"
#include "ledger/rocks_store.h"
#include "ledger/signer.h"
#include "services/api/case_gate.h"
#include "services/api/case_service.h"
#include "services/api/key_admin_service.h"
#include "services/api/projections.h"
#include "services/api/projector.h"
#include "services/api/ledger_service.h"

ABSL_FLAG(std::string, data_dir, "./data", "Data directory; created when missing.");
ABSL_FLAG(std::string, listen, "127.0.0.1:7070",
          "host:port to serve on. Port 0 picks a free port (printed at start). Only loopback "
          "addresses until TLS exists.");
ABSL_FLAG(std::string, signing_key, "",
          "Ed25519 checkpoint signing key (PKCS#8 PEM, mode 0600). Default "
          "<data_dir>/signing.key, generated on first start.");
ABSL_FLAG(std::string, origin, "caseledger.local/log",
          "Checkpoint origin line; also the signing key's name.");
ABSL_FLAG(uint64_t, checkpoint_every_records, 100000,
          "Sign a checkpoint after this many new records.");
ABSL_FLAG(absl::Duration, checkpoint_interval, absl::Seconds(5),
          "Sign a checkpoint this long after the last one when there are new records.");
ABSL_FLAG(uint64_t, max_batch_events, 10000, "Most events in one AppendBatch.");
ABSL_FLAG(uint64_t, max_group_events, 8192, "Most events in one group commit (one fsync).");
ABSL_FLAG(int32_t, max_message_bytes, 16 << 20, "Largest gRPC message accepted, in bytes.");
ABSL_FLAG(uint64_t, block_cache_mb, 64, "RocksDB block cache, MiB.");
ABSL_FLAG(std::string, master_key_file, "",
          "Master key (64 hex digits, mode 0600) that wraps the per-subject data keys "
          "encrypting payloads at rest (ledger/ENCRYPTION.md). Default: $CASELEDGER_MASTER_KEY; "
          "with neither, payloads are stored unencrypted. Keep it outside the data directory.");

namespace caseledger {
namespace {

void Log(const std::string& line) {
  std::fprintf(stderr, "%s caseledger: %s\n",
               absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now(), absl::UTCTimeZone()).c_str(),
               line.c_str());
}

int Fail(const absl::Status& s, absl::string_view what) {
  Log(absl::StrCat(what, ": ", s.ToString()));
  return 1;
}

bool IsLoopback(absl::string_view listen) {
  return absl::StartsWith(listen, "127.") || absl::StartsWith(listen, "localhost:") ||
         absl::StartsWith(listen, "[::1]:");
}

int Run() {
  // Block the stop signals in every thread; main waits for them below.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  const std::string data_dir = absl::GetFlag(FLAGS_data_dir);
  const std::string listen = absl::GetFlag(FLAGS_listen);
  if (!IsLoopback(listen)) {
    return Fail(absl::InvalidArgumentError(absl::StrCat(
                    "--listen: got \"", listen,
                    "\", want a loopback address (127.0.0.1:PORT, localhost:PORT or [::1]:PORT): "
                    "TLS is not built yet, so the ledger serves only this machine")),
                "refusing to start");
  }
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) {
    return Fail(absl::FailedPreconditionError(ec.message()), "create data directory " + data_dir);
  }
  std::string key_path = absl::GetFlag(FLAGS_signing_key);
  if (key_path.empty()) key_path = data_dir + "/signing.key";
  auto key = Ed25519Signer::LoadOrCreate(key_path);
  if (!key.ok()) return Fail(key.status(), "signing key");
  auto signer = NoteSigner::New(absl::GetFlag(FLAGS_origin), *std::move(key));
  if (!signer.ok()) return Fail(signer.status(), "signing key");

  RocksStoreOptions store_options;
  store_options.path = data_dir + "/ledger";
  store_options.block_cache_bytes = absl::GetFlag(FLAGS_block_cache_mb) << 20;
  auto store = OpenRocksStore(store_options);
  if (!store.ok()) return Fail(store.status(), "open store");

  // Payload encryption: on with a master key, else plaintext (and said so).
  std::unique_ptr<KeyStore> keys;
  absl::StatusOr<AeadKey> master =
      LoadMasterKey(absl::GetFlag(FLAGS_master_key_file), "CASELEDGER_MASTER_KEY");
  if (master.ok()) {
    KeyStoreOptions key_options;
    key_options.shred_event_type = "records_disposed";
    auto opened = KeyStore::Open((*store)->keys(), *master, key_options);
    if (!opened.ok()) return Fail(opened.status(), "key store");
    keys = *std::move(opened);
    Log(absl::StrCat("payloads are encrypted at rest (AES-256-GCM, master key id ",
                     keys->master_key_id(), ")"));
    // A key stored with the data it protects protects nothing from whoever
    // copies the directory (or its backups).
    std::string key_file = absl::GetFlag(FLAGS_master_key_file);
    if (!key_file.empty()) {
      std::string abs_key = std::filesystem::weakly_canonical(key_file, ec).string();
      std::string abs_data = std::filesystem::weakly_canonical(data_dir, ec).string();
      if (!ec && absl::StartsWith(abs_key, abs_data + "/")) {
        Log(absl::StrCat("WARNING: --master_key_file ", key_file,
                         " is inside the data directory: a copy of the directory can be "
                         "decrypted; keep the key elsewhere"));
      }
    }
  } else if (absl::IsNotFound(master.status())) {
    KeyTable* table = (*store)->keys();
    auto wrapped_under = table->GetKey(kMasterKeyIdKey);
    if (!wrapped_under.ok()) return Fail(wrapped_under.status(), "key store");
    if (wrapped_under->has_value()) {
      return Fail(absl::FailedPreconditionError(absl::StrCat(
                      "the data directory holds data keys wrapped under master key id ",
                      **wrapped_under, ": pass --master_key_file or set CASELEDGER_MASTER_KEY")),
                  "refusing to start");
    }
    Log("payloads are NOT encrypted at rest: no --master_key_file and no "
        "CASELEDGER_MASTER_KEY");
  } else {
    return Fail(master.status(), "master key");
  }

  LedgerOptions options;
  options.cipher = keys.get();
  options.origin = absl::GetFlag(FLAGS_origin);
  options.signer = &*signer;
  options.checkpoint_every_records = absl::GetFlag(FLAGS_checkpoint_every_records);
  options.checkpoint_interval = absl::GetFlag(FLAGS_checkpoint_interval);
  options.max_batch_events = absl::GetFlag(FLAGS_max_batch_events);
  options.max_group_events = absl::GetFlag(FLAGS_max_group_events);
  auto ledger = Ledger::Open(options, *std::move(store));
  if (!ledger.ok()) return Fail(ledger.status(), "open ledger");

  // Read models: case state and accounting of disclosures, in their own
  // store beside the ledger; they catch up from the log on start.
  auto cases = std::make_unique<CaseStateProjection>();
  auto accounting = std::make_unique<AccountingProjection>();
  const CaseStateProjection* cases_view = cases.get();
  const AccountingProjection* accounting_view = accounting.get();
  std::vector<std::unique_ptr<Projection>> projections;
  projections.push_back(std::move(cases));
  projections.push_back(std::move(accounting));
  auto projector = Projector::Open({data_dir + "/projections"}, ledger->get(),
                                   std::move(projections));
  if (!projector.ok()) return Fail(projector.status(), "open projections");
  (*projector)->Start();

  CaseGate gate(ledger->get());
  LedgerServiceImpl service(ledger->get(), &gate, &*signer);
  CaseServiceImpl case_service(projector->get(), cases_view);
  DisclosureServiceImpl disclosure_service(projector->get(), accounting_view);
  KeyAdminServiceImpl key_admin_service(keys.get());
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  // Appends block a handler thread until durable; let idle threads stay
  // rather than be torn down and recreated for every call (gRPC keeps only
  // two idle pollers by default).
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MIN_POLLERS, 4);
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MAX_POLLERS, 256);
  builder.SetMaxReceiveMessageSize(absl::GetFlag(FLAGS_max_message_bytes));
  builder.SetMaxSendMessageSize(absl::GetFlag(FLAGS_max_message_bytes));
  builder.RegisterService(&service);
  builder.RegisterService(&case_service);
  builder.RegisterService(&disclosure_service);
  builder.RegisterService(&key_admin_service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    return Fail(absl::UnavailableError("could not bind " + listen), "start");
  }
  std::string host = listen.substr(0, listen.rfind(':'));
  Log(absl::StrCat("listening on ", host, ":", port, ", data dir ", data_dir, ", tree size ",
                   (*ledger)->Size(), ", key ", signer->VerifierKey()));

  int sig = 0;
  sigwait(&stop, &sig);
  Log(absl::StrCat("received ", sig == SIGINT ? "SIGINT" : "SIGTERM",
                   ": finishing in-flight requests"));
  service.StopStreams();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(10));
  server->Wait();
  // The ledger finishes its queue first: its commit listeners include the
  // projector's.
  (*ledger)->Close();
  (*projector)->Stop();
  Log(absl::StrCat("stopped cleanly at tree size ", (*ledger)->Size()));
  return 0;
}

}  // namespace
}  // namespace caseledger

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Serves the caseledger gRPC API on an embedded RocksDB data directory.\n"
      "  caseledger_server --data_dir=./data --listen=127.0.0.1:7070");
  absl::ParseCommandLine(argc, argv);
  return caseledger::Run();
}
