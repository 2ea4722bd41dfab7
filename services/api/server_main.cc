// caseledger_server: the ledger service on an embedded RocksDB data directory.
//
//   caseledger_server --data_dir=./data --listen=127.0.0.1:7070
//
// Data directory layout: <data_dir>/ledger (RocksDB), <data_dir>/signing.key
// (Ed25519, PKCS#8 PEM, mode 0600, created on first start unless
// --signing_key names one).
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "ledger/checkpoint.h"
#include "ledger/internal/status_macros.h"
#include "ledger/key_store.h"
#include "ledger/ledger.h"
#include "ledger/pg_store.h"
#include "ledger/rocks_store.h"
#include "ledger/signer.h"
#include "services/api/access_service.h"
#include "services/api/audit_service.h"
#include "services/authz/authz.h"
#include "services/authz/authz_directory.h"
#include "services/authz/authz_interceptor.h"
#include "services/authz/authz_verdict.h"
#include "services/append/case_gate.h"
#include "services/api/case_service.h"
#include "services/api/key_admin_service.h"
#include "services/api/ledger_service.h"
#include "services/api/warm_read_models.h"
#include "services/cluster/partitioned_server.h"
#include "ledger/partition.h"
#include "services/readmodel/projections.h"
#include "services/readmodel/projector.h"
#include "services/tlog/tlog_http.h"
#include "services/metrics/integrity.h"
#include "services/metrics/server_metrics.h"

ABSL_FLAG(std::string, data_dir, "./data", "Data directory; created when missing.");
ABSL_FLAG(std::string, listen, "127.0.0.1:7070",
          "host:port to serve on. Port 0 picks a free port (printed at start). Any address "
          "with TLS; only loopback with --insecure_loopback.");
ABSL_FLAG(std::string, signing_key, "",
          "Ed25519 checkpoint signing key (PKCS#8 PEM, mode 0600). Default "
          "<data_dir>/signing.key, generated on first start.");
ABSL_FLAG(std::string, origin, "caseledger.local/log",
          "Checkpoint origin line; also the signing key's name.");
ABSL_FLAG(uint64_t, stream_read_ahead, 1,
          "How many requests of an AppendStream may be read ahead of the append gate "
          "(LedgerServiceOptions::max_stream_read_ahead; 1: read the next once the ones before "
          "are queued).");
ABSL_FLAG(uint64_t, checkpoint_every_records, 100000,
          "Sign a checkpoint after this many new records.");
ABSL_FLAG(absl::Duration, checkpoint_interval, absl::Seconds(5),
          "Sign a checkpoint this long after the last one when there are new records.");
ABSL_FLAG(uint64_t, max_batch_events, 10000, "Most events in one AppendBatch.");
ABSL_FLAG(uint64_t, max_group_events, 8192, "Most events in one group commit (one fsync).");
ABSL_FLAG(int32_t, max_message_bytes, 16 << 20, "Largest gRPC message accepted, in bytes.");
ABSL_FLAG(uint64_t, block_cache_mb, 64, "RocksDB block cache, MiB.");
ABSL_FLAG(uint64_t, subject_map_cache_mb, caseledger::kDefaultSubjectMapCacheBytes >> 20,
          "Memory for the subject map's cache of nodes read from the data directory, MiB "
          "(ledger/SUBJECT_INDEX.md \"Storage\").");
ABSL_FLAG(std::vector<std::string>, witness_keys, {},
          "Comma-separated verifier keys (<name>+<hash>+<base64(0x04 || key)>) of the witnesses "
          "whose cosignatures WitnessService.AddCosignature accepts (ledger/COSIGNATURE.md).");
ABSL_FLAG(std::string, tiles_listen, "",
          "Serve the log as C2SP tlog-tiles (read-only HTTP: /checkpoint, /tile/...) on this "
          "loopback host:port; off when empty (services/tlog/TILES.md).");
ABSL_FLAG(std::vector<std::string>, witness_url, {},
          "Comma-separated <witness verifier key>@<URL prefix> of C2SP tlog-witness witnesses "
          "to push each new checkpoint to; their cosignatures are stored and they are trusted "
          "as --witness_keys are (services/tlog/WITNESS_HTTP.md).");
ABSL_FLAG(absl::Duration, witness_push_interval, absl::Seconds(1),
          "How often the witness pusher looks for a checkpoint the --witness_url witnesses "
          "have not cosigned.");
ABSL_FLAG(absl::Duration, verify_interval, absl::Seconds(30),
          "The background verifier checks newly committed records this often (0 = off); "
          "AuditService.GetMetrics reports how far it got.");
ABSL_FLAG(uint64_t, verify_chunk, 1 << 18,
          "Most records the background verifier checks per round.");
ABSL_FLAG(std::string, tls_cert, "",
          "Server certificate chain (PEM). With --tls_key and "
          "--tls_client_ca: mutual TLS, every caller named by its client certificate.");
ABSL_FLAG(std::string, tls_key, "", "Server private key (PEM).");
ABSL_FLAG(std::string, tls_client_ca, "",
          "CA certificates (PEM) that client certificates must chain to.");
ABSL_FLAG(bool, insecure_loopback, false,
          "Serve plaintext on a loopback address: every caller is the trusted local "
          "developer (role local), allowed every method; its refusals and guarded reads are "
          "not recorded, but AccessService still records each read of a client's history "
          "(under the accessor the request names). For development only.");
ABSL_FLAG(absl::Duration, max_occurred_ahead, absl::Minutes(5),
          "How far an event's occurred_at may be ahead of the time the server received it "
          "(producers' clock drift); later is refused INVALID_ARGUMENT (services/policy/RULES.md).");
ABSL_FLAG(absl::Duration, max_occurred_behind, absl::Minutes(1),
          "How far an event's occurred_at may be before the latest event of its case without "
          "late_documentation (clock skew between producers); earlier is refused "
          "FAILED_PRECONDITION (services/policy/RULES.md T3).");
ABSL_FLAG(std::string, authz_config, "",
          "Producer registrations and audit grants (services/authz/AUTHZ.md): lines "
          "'producer ID PROGRAM...' and 'audit_grant ID CASE...|*'.");
ABSL_FLAG(std::string, pg_conninfo, "",
          "Cluster mode (ledger/CLUSTER.md): libpq connection string of the PostgreSQL log of "
          "record, e.g. 'host=h1,h2 port=p1,p2 dbname=caseledger target_session_attrs=read-write'. "
          "Empty: the embedded single-node store.");
ABSL_FLAG(std::string, node_id, "", "Cluster mode: this node's name in the partition lease.");
ABSL_FLAG(absl::Duration, pg_lease_ttl, absl::Seconds(10),
          "Cluster mode: the partition lease's length; another node takes over this long after "
          "the owner stops renewing it.");
ABSL_FLAG(absl::Duration, pg_tail_interval, absl::Milliseconds(300),
          "Cluster mode, --pg_partitions=1: while waiting for the lease, copy the owner's new "
          "records from PostgreSQL into the local store this often (read-only), so a takeover "
          "has only the last moments to catch up; 0 = off (ledger/CLUSTER.md).");
ABSL_FLAG(int32_t, pg_partitions, 1,
          "Cluster mode: the ledger's partition count P, fixed when the ledger is created in "
          "PostgreSQL (a node with another P is refused). P > 1 serves appends (routed to the "
          "case's partition's owner), global checkpoints and two-level proofs; the other "
          "services answer UNIMPLEMENTED (ledger/CLUSTER.md \"Serving P > 1\").");
ABSL_FLAG(int32_t, pg_max_new_partitions, 0,
          "Cluster mode, --pg_partitions > 1: how many partitions that never had an owner this "
          "node takes (0: all it finds free); two nodes with P/2 each split a new ledger. "
          "Partitions whose owner stopped renewing are always taken over.");
ABSL_FLAG(std::string, master_key_file, "",
          "Master key (64 hex digits, mode 0600) that wraps the per-subject data keys "
          "encrypting payloads at rest (ledger/ENCRYPTION.md). Default: $CASELEDGER_MASTER_KEY; "
          "with neither, payloads are stored unencrypted. Keep it outside the data directory.");
ABSL_FLAG(std::string, metrics_listen, "",
          "Serve Prometheus metrics at http://HOST:PORT/metrics (services/metrics/METRICS.md); "
          "off when empty. Loopback addresses only (plaintext, no authentication). Port 0 "
          "picks a free port (printed at start).");
ABSL_FLAG(int, record_format, 2,
          "Record format to write (ledger/FORMAT.md): 2 blinds subject, case, event and "
          "producer ids under salts in the key store (needs a master key; ledger/BLINDING.md); "
          "1 keeps them in clear, for a data directory written in format 1.");

namespace caseledger {
namespace {

void Log(const std::string& line) {
  std::fprintf(stderr, "%s caseledger: %s\n",
               absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now(), absl::UTCTimeZone()).c_str(),
               line.c_str());
}

// A thread that watches `stop`; joined at the latest when this goes.
struct BackgroundThread {
  std::atomic<bool> stop{false};
  std::thread thread;
  void Join() {
    stop.store(true);
    if (thread.joinable()) thread.join();
  }
  ~BackgroundThread() { Join(); }
};

int Fail(const absl::Status& s, absl::string_view what) {
  Log(absl::StrCat(what, ": ", s.ToString()));
  return 1;
}

absl::StatusOr<std::string> ReadFile(const std::string& flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, ": cannot read \"", path, "\""));
  }
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Mutual TLS from the --tls_* flags, or plaintext with --insecure_loopback.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> Credentials(bool loopback) {
  const std::string cert = absl::GetFlag(FLAGS_tls_cert);
  const std::string key = absl::GetFlag(FLAGS_tls_key);
  const std::string ca = absl::GetFlag(FLAGS_tls_client_ca);
  const int set = !cert.empty() + !key.empty() + !ca.empty();
  if (absl::GetFlag(FLAGS_insecure_loopback)) {
    if (set > 0) {
      return absl::InvalidArgumentError(
          "--insecure_loopback: got it with --tls_* flags, want one or the other");
    }
    if (!loopback) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--listen: got \"", absl::GetFlag(FLAGS_listen),
          "\", want a loopback address (127.0.0.1:PORT, localhost:PORT or [::1]:PORT) with "
          "--insecure_loopback; use --tls_cert, --tls_key and --tls_client_ca to serve others"));
    }
    return grpc::InsecureServerCredentials();
  }
  if (set != 3) {
    return absl::InvalidArgumentError(
        "TLS: want all of --tls_cert, --tls_key and --tls_client_ca (mutual TLS), or "
        "--insecure_loopback for plaintext on a loopback address");
  }
  grpc::SslServerCredentialsOptions options(
      GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  CL_ASSIGN_OR_RETURN(options.pem_root_certs, ReadFile("tls_client_ca", ca));
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  CL_ASSIGN_OR_RETURN(pair.private_key, ReadFile("tls_key", key));
  CL_ASSIGN_OR_RETURN(pair.cert_chain, ReadFile("tls_cert", cert));
  options.pem_key_cert_pairs.push_back(std::move(pair));
  return grpc::SslServerCredentials(options);
}

absl::StatusOr<AuthzConfig> LoadAuthzConfig() {
  const std::string path = absl::GetFlag(FLAGS_authz_config);
  if (path.empty()) return AuthzConfig();
  CL_ASSIGN_OR_RETURN(std::string text, ReadFile("authz_config", path));
  return ParseAuthzConfig(text);
}

bool IsLoopback(absl::string_view listen) {
  return absl::StartsWith(listen, "127.") || absl::StartsWith(listen, "localhost:") ||
         absl::StartsWith(listen, "[::1]:");
}

// The read models' store: with encryption on, a disposal destroys keys, so the
// values projected from the disposed records must go as well
// (services/readmodel/projector.h), and the values are sealed at rest like
// the payloads.
absl::StatusOr<ProjectorOptions> ProjectorOptionsFor(const std::string& data_dir,
                                                     const AeadKey* master) {
  ProjectorOptions o;
  o.path = data_dir + "/projections";
  if (master != nullptr) {
    o.shred_event_type = "records_disposed";
    CL_ASSIGN_OR_RETURN(o.value_key, ProjectionsKey(*master));
  }
  return o;
}

// The server's read models (each knows its own name and layout).
std::vector<std::unique_ptr<Projection>> NewProjections() {
  std::vector<std::unique_ptr<Projection>> p;
  p.push_back(std::make_unique<CaseStateProjection>());
  p.push_back(std::make_unique<AccountingProjection>());
  return p;
}

// Cluster mode, P = 1: what a waiting node needs to keep its read models
// warm, as the server opens them at lease time.
absl::StatusOr<WarmReadModelsOptions> WarmOptionsFromFlags(const std::string& data_dir,
                                                           const NoteSigner* signer) {
  WarmReadModelsOptions w;
  w.conninfo = absl::GetFlag(FLAGS_pg_conninfo);
  w.origin = absl::GetFlag(FLAGS_origin);
  w.signer = signer;
  absl::StatusOr<AeadKey> master =
      LoadMasterKey(absl::GetFlag(FLAGS_master_key_file), "CASELEDGER_MASTER_KEY");
  if (master.ok()) {
    w.master_key = *master;
    w.key_options.shred_event_type = "records_disposed";
    w.key_options.erase_event_type = "subject_erased";
  } else if (!absl::IsNotFound(master.status())) {
    return master.status();
  }
  w.blind_ids = absl::GetFlag(FLAGS_record_format) == 2;
  CL_ASSIGN_OR_RETURN(w.projector,
                      ProjectorOptionsFor(data_dir, master.ok() ? &*master : nullptr));
  w.projections = NewProjections;
  w.log = Log;
  return w;
}

// --pg_partitions > 1 (services/cluster/partitioned_server.h).
int RunPartitionedFromFlags(std::shared_ptr<grpc::ServerCredentials> credentials,
                            AuthzConfig authz, const std::string& key_path) {
  PartitionedServerOptions p;
  p.partitions = absl::GetFlag(FLAGS_pg_partitions);
  if (absl::Status s = ValidatePartitionCount(p.partitions, "--pg_partitions"); !s.ok()) {
    return Fail(s, "refusing to start");
  }
  p.conninfo = absl::GetFlag(FLAGS_pg_conninfo);
  if (p.conninfo.empty()) {
    return Fail(absl::InvalidArgumentError(absl::StrCat(
                    "--pg_partitions: got ", p.partitions,
                    " without --pg_conninfo; partitions live in PostgreSQL (ledger/CLUSTER.md)")),
                "refusing to start");
  }
  absl::StatusOr<AeadKey> master =
      LoadMasterKey(absl::GetFlag(FLAGS_master_key_file), "CASELEDGER_MASTER_KEY");
  if (master.ok()) {
    p.master_key = *std::move(master);
  } else if (!absl::IsNotFound(master.status())) {
    return Fail(master.status(), "master key");
  }
  p.listen = absl::GetFlag(FLAGS_listen);
  p.credentials = std::move(credentials);
  p.insecure_loopback = absl::GetFlag(FLAGS_insecure_loopback);
  p.authz = std::move(authz);
  p.data_dir = absl::GetFlag(FLAGS_data_dir);
  p.signing_key = key_path;
  p.origin = absl::GetFlag(FLAGS_origin);
  p.node_id = absl::GetFlag(FLAGS_node_id);
  p.lease_ttl = absl::GetFlag(FLAGS_pg_lease_ttl);
  p.max_new_partitions = absl::GetFlag(FLAGS_pg_max_new_partitions);
  p.checkpoint_interval = absl::GetFlag(FLAGS_checkpoint_interval);
  p.checkpoint_every_records = absl::GetFlag(FLAGS_checkpoint_every_records);
  p.max_batch_events = absl::GetFlag(FLAGS_max_batch_events);
  p.max_group_events = absl::GetFlag(FLAGS_max_group_events);
  p.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  p.max_occurred_ahead = absl::GetFlag(FLAGS_max_occurred_ahead);
  p.max_occurred_behind = absl::GetFlag(FLAGS_max_occurred_behind);
  for (const std::string& vkey : absl::GetFlag(FLAGS_witness_keys)) p.witness_keys.push_back(vkey);
  for (const std::string& flag : absl::GetFlag(FLAGS_witness_url)) {
    absl::StatusOr<PushWitness> w = ParseWitnessUrl(flag);
    if (!w.ok()) return Fail(w.status(), "--witness_url");
    p.witness_keys.push_back(w->vkey);
    p.push_witnesses.push_back(*std::move(w));
  }
  p.witness_push_interval = absl::GetFlag(FLAGS_witness_push_interval);
  p.log = Log;
  return RunPartitioned(std::move(p));
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
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      Credentials(IsLoopback(listen));
  if (!credentials.ok()) return Fail(credentials.status(), "refusing to start");
  absl::StatusOr<AuthzConfig> authz_config = LoadAuthzConfig();
  if (!authz_config.ok()) return Fail(authz_config.status(), "refusing to start");
  absl::Status covered =
      CheckTableCovers({"caseledger.v1.LedgerService", "caseledger.v1.CaseService",
                        "caseledger.v1.DisclosureService", "caseledger.v1.AccessService",
                        "caseledger.v1.AuditService", "caseledger.v1.WitnessService",
                        "caseledger.v1.KeyAdminService"});
  if (!covered.ok()) return Fail(covered, "refusing to start");
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) {
    return Fail(absl::FailedPreconditionError(ec.message()), "create data directory " + data_dir);
  }
  std::string key_path = absl::GetFlag(FLAGS_signing_key);
  if (key_path.empty()) key_path = data_dir + "/signing.key";
  if (absl::GetFlag(FLAGS_pg_partitions) != 1) return RunPartitionedFromFlags(
      *std::move(credentials), *std::move(authz_config), key_path);
  auto key = Ed25519Signer::LoadOrCreate(key_path);
  if (!key.ok()) return Fail(key.status(), "signing key");
  auto signer = NoteSigner::New(absl::GetFlag(FLAGS_origin), *std::move(key));
  if (!signer.ok()) return Fail(signer.status(), "signing key");

  RocksStoreOptions store_options;
  store_options.path = data_dir + "/ledger";
  store_options.block_cache_bytes = absl::GetFlag(FLAGS_block_cache_mb) << 20;
  auto store = OpenRocksStore(store_options);
  if (!store.ok()) return Fail(store.status(), "open store");
  std::optional<WarmReadModels> warm;
  LogStore* pg_store = nullptr;  // cluster mode: the store holding the lease (owned by the ledger)
  if (!absl::GetFlag(FLAGS_pg_conninfo).empty()) {
    // Cluster mode: PostgreSQL is the log of record; the RocksDB directory
    // keeps the state derived from it. Waits for the partition's lease.
    PgStoreOptions pg;
    pg.conninfo = absl::GetFlag(FLAGS_pg_conninfo);
    pg.node_id = absl::GetFlag(FLAGS_node_id);
    pg.lease_ttl = absl::GetFlag(FLAGS_pg_lease_ttl);
    pg.partitions = absl::GetFlag(FLAGS_pg_partitions);
    pg.address = listen;
    pg.wait_for_lease = true;
    pg.tail_interval = absl::GetFlag(FLAGS_pg_tail_interval);
    // ... and its read models (services/api/warm_read_models.h).
    absl::StatusOr<WarmReadModelsOptions> warm_options = WarmOptionsFromFlags(data_dir, &*signer);
    if (!warm_options.ok()) return Fail(warm_options.status(), "refusing to start");
    warm.emplace(*std::move(warm_options));
    pg.while_waiting = [&warm](LogStore& local) { warm->Step(local); };
    pg.local = *std::move(store);
    pg.log = Log;
    // Another node owns the partition now: stop at once (exit 75) so that a
    // supervisor restarts this one as a standby.
    pg.on_fenced = [](const absl::Status& s) {
      Log(absl::StrCat("lost the partition lease: ", s.message()));
      std::_Exit(75);
    };
    store = OpenPgStore(std::move(pg));
    if (!store.ok()) return Fail(store.status(), "open PostgreSQL log of record");
    pg_store = store->get();
    if (absl::Status s = warm->Finish(); !s.ok()) return Fail(s, "warm read models");
  }

  // Payload encryption: on with a master key, else plaintext (and said so).
  std::unique_ptr<KeyStore> keys;
  absl::StatusOr<AeadKey> master =
      LoadMasterKey(absl::GetFlag(FLAGS_master_key_file), "CASELEDGER_MASTER_KEY");
  if (master.ok()) {
    KeyStoreOptions key_options;
    key_options.shred_event_type = "records_disposed";
    key_options.erase_event_type = "subject_erased";
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

  // Metrics (served only with --metrics_listen) and the integrity alarm:
  // both outlive everything that reports to them.
  ServerMetrics metrics;
  IntegrityMonitor integrity(IntegrityMonitorOptions{Log});

  LedgerOptions options;
  options.on_group_commit = [&metrics](const GroupCommitStats& s) {
    metrics.ObserveGroupCommit(s);
  };
  options.cipher = keys.get();
  const int record_format = absl::GetFlag(FLAGS_record_format);
  if (record_format != 1 && record_format != 2) {
    return Fail(absl::InvalidArgumentError(absl::StrCat("--record_format: got ", record_format,
                                                        ", want 1 or 2")),
                "flags");
  }
  // Without a master key there is nowhere to keep salts: format 1.
  if (record_format == 2 && keys != nullptr) options.blinder = keys.get();
  Log(options.blinder != nullptr
          ? "records are written in format 2: identifiers blinded (ledger/BLINDING.md)"
          : "records are written in format 1: identifiers in clear");
  options.origin = absl::GetFlag(FLAGS_origin);
  options.signer = &*signer;
  options.checkpoint_every_records = absl::GetFlag(FLAGS_checkpoint_every_records);
  options.checkpoint_interval = absl::GetFlag(FLAGS_checkpoint_interval);
  options.max_batch_events = absl::GetFlag(FLAGS_max_batch_events);
  options.max_group_events = absl::GetFlag(FLAGS_max_group_events);
  options.subject_map_cache_bytes = absl::GetFlag(FLAGS_subject_map_cache_mb) << 20;
  auto ledger = Ledger::Open(options, *std::move(store));
  if (absl::IsDataLoss(ledger.status())) {
    Log("INTEGRITY ALARM: the open check found the stored tree damaged; run ledger_verify "
        "--data_dir to name the first bad seq");
  }
  if (!ledger.ok()) return Fail(ledger.status(), "open ledger");
  (*ledger)->AddCommitListener(
      [&metrics](const std::shared_ptr<const CommittedBatch>& b) { metrics.ObserveCommitted(*b); });

  // Read models: case state and accounting of disclosures, in their own
  // store beside the ledger; they catch up from the log on start.
  std::vector<std::unique_ptr<Projection>> projections = NewProjections();
  const auto* cases_view = dynamic_cast<const CaseStateProjection*>(projections[0].get());
  const auto* accounting_view = dynamic_cast<const AccountingProjection*>(projections[1].get());
  // Checks appends against the cases' states, cached in memory.
  CaseGate::Options gate_options;
  gate_options.max_occurred_ahead = absl::GetFlag(FLAGS_max_occurred_ahead);
  if (gate_options.max_occurred_ahead < absl::ZeroDuration()) {
    return Fail(absl::InvalidArgumentError(absl::StrCat(
                    "--max_occurred_ahead: got ",
                    absl::FormatDuration(gate_options.max_occurred_ahead), ", want 0 or more")),
                "refusing to start");
  }
  gate_options.max_occurred_behind = absl::GetFlag(FLAGS_max_occurred_behind);
  if (gate_options.max_occurred_behind < absl::ZeroDuration()) {
    return Fail(absl::InvalidArgumentError(absl::StrCat(
                    "--max_occurred_behind: got ",
                    absl::FormatDuration(gate_options.max_occurred_behind), ", want 0 or more")),
                "refusing to start");
  }
  // Built once the projector is open: the gate reads the cases' committed
  // states from the case-state read model (ProjectedCaseStates).
  std::optional<CaseGate> gate;
  std::atomic<CaseGate*> gate_ready{nullptr};

  absl::StatusOr<ProjectorOptions> base_projector_options =
      ProjectorOptionsFor(data_dir, keys != nullptr ? &*master : nullptr);
  if (!base_projector_options.ok()) return Fail(base_projector_options.status(), "projections key");
  ProjectorOptions projector_options = *std::move(base_projector_options);
  if (keys != nullptr) {
    // The gate's cached states were folded while erased records still opened.
    projector_options.after_reproject = [&gate_ready] {
      if (CaseGate* g = gate_ready.load()) g->ForgetAll();
    };
  }
  auto projector = Projector::Open(projector_options, ledger->get(), std::move(projections));
  if (!projector.ok()) return Fail(projector.status(), "open projections");
  (*projector)->Start();
  // Cluster mode: say when the read models (which the append gate waits
  // for) have caught up with the log this node took over.
  BackgroundThread read_models_caught_up;
  if (!absl::GetFlag(FLAGS_pg_conninfo).empty()) {
    read_models_caught_up.thread = std::thread([&, size = (*ledger)->Size(),
                                                from = (*projector)->position(), start = absl::Now()] {
      while (!read_models_caught_up.stop.load()) {
        if ((*projector)->WaitFor(size, absl::Milliseconds(200)).ok()) {
          Log(absl::StrCat("read models caught up from ", from, " to ", size, " in ",
                           absl::FormatDuration(
                               absl::Trunc(absl::Now() - start, absl::Milliseconds(1)))));
          return;
        }
      }
    });
  }
  ProjectedCaseStates committed_states(projector->get(), cases_view);
  gate_options.committed = &committed_states;
  gate.emplace(ledger->get(), gate_options);
  gate_ready.store(&*gate);

  std::vector<CosignatureVerifier> witnesses;
  for (const std::string& vkey : absl::GetFlag(FLAGS_witness_keys)) {
    auto w = CosignatureVerifier::FromVerifierKey(vkey);
    if (!w.ok()) return Fail(w.status(), "--witness_keys");
    witnesses.push_back(*std::move(w));
  }
  std::vector<PushWitness> push_witnesses;
  for (const std::string& flag : absl::GetFlag(FLAGS_witness_url)) {
    auto w = ParseWitnessUrl(flag);
    if (!w.ok()) return Fail(w.status(), "--witness_url");
    witnesses.push_back(*CosignatureVerifier::FromVerifierKey(w->vkey));
    push_witnesses.push_back(*std::move(w));
  }
  auto log_verifier = NoteVerifier::FromVerifierKey(signer->VerifierKey());
  if (!log_verifier.ok()) return Fail(log_verifier.status(), "signing key");
  WitnessServiceImpl witness_service(ledger->get(), std::move(witnesses));
  AuditServiceOptions audit_options;
  audit_options.note_verifier = &*log_verifier;
  audit_options.origin = absl::GetFlag(FLAGS_origin);
  audit_options.verify_interval = absl::GetFlag(FLAGS_verify_interval);
  audit_options.verify_chunk = absl::GetFlag(FLAGS_verify_chunk);
  audit_options.on_damage = [&integrity](uint64_t seq, const std::string& message) {
    integrity.ReportDamage("the verifier", seq, message);
  };
  AuditServiceImpl audit_service(ledger->get(), &witness_service, audit_options);
  audit_service.Start();

  // One authorization for every call of every service: the interceptor
  // decides and records (authz_interceptor.h); handlers return its verdict.
  ServerResourceDirectory directory(&*gate, ledger->get());
  Authorizer authorizer(*std::move(authz_config), &directory);
  AuthzInterceptorOptions authz_options;
  authz_options.insecure_loopback = absl::GetFlag(FLAGS_insecure_loopback);
  authz_options.max_batch_events = (*ledger)->options().max_batch_events;
  authz_options.on_refusal = [&metrics](Role role) { metrics.CountRefusal(RoleName(role)); };
  LedgerServiceOptions ledger_service_options;
  ledger_service_options.max_stream_read_ahead = absl::GetFlag(FLAGS_stream_read_ahead);
  ledger_service_options.admit_appends = [&integrity] { return integrity.CheckAppendsAllowed(); };
  ledger_service_options.on_append = [&metrics](absl::string_view method, absl::StatusCode code,
                                                absl::Duration latency) {
    metrics.ObserveAppend(method, code, latency);
  };
  LedgerServiceImpl service(ledger->get(), &*gate, &*signer, ledger_service_options);
  CaseServiceImpl case_service(projector->get(), cases_view);
  DisclosureServiceImpl disclosure_service(projector->get(), accounting_view, nullptr, cases_view);
  AccessServiceOptions access_options;
  // AccessService records every read itself; it names the authenticated
  // caller (the interceptor's verdict), not the one the request claims.
  access_options.authenticated =
      [](const grpc::ServerContext& ctx) -> std::optional<std::pair<std::string, std::string>> {
    absl::StatusOr<Admitted> admitted = CallVerdict(ctx);
    if (!admitted.ok() || admitted->caller.role == Role::kLocal) return std::nullopt;
    return std::make_pair(admitted->caller.id, std::string(RoleName(admitted->caller.role)));
  };
  AccessServiceImpl access_service(ledger->get(), &*gate, access_options);
  KeyAdminServiceOptions key_admin_options;
  key_admin_options.log = Log;
  // Legal holds keep subjects from erasure: asked of the case states once
  // they reflect every committed record.
  key_admin_options.erasure_allowed = [&](const std::string& subject_id) -> absl::Status {
    CL_RETURN_IF_ERROR((*projector)->WaitFor((*ledger)->Size(), absl::Seconds(5)));
    return CaseStateProjection::CheckErasure(**projector, *cases_view, subject_id);
  };
  KeyAdminServiceImpl key_admin_service(keys.get(), &*gate, projector->get(), key_admin_options);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(listen, *credentials, &port);
  // The producer appends are callback handlers and hold no thread; the
  // other methods are synchronous, and a read or Subscribe keeps its thread
  // while it runs: let idle threads stay rather than be torn down and
  // recreated for every call (gRPC keeps only two idle pollers by default).
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MIN_POLLERS, 4);
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MAX_POLLERS, 256);
  builder.SetMaxReceiveMessageSize(absl::GetFlag(FLAGS_max_message_bytes));
  builder.SetMaxSendMessageSize(absl::GetFlag(FLAGS_max_message_bytes));
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
  creators.push_back(
      std::make_unique<AuthzInterceptorFactory>(&authorizer, &directory, &*gate, authz_options));
  builder.experimental().SetInterceptorCreators(std::move(creators));
  builder.RegisterService(&service);
  builder.RegisterService(&case_service);
  builder.RegisterService(&disclosure_service);
  builder.RegisterService(&witness_service);
  builder.RegisterService(&audit_service);
  builder.RegisterService(&access_service);
  builder.RegisterService(&key_admin_service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    // Holding a lease it cannot serve, the node would leave the partition
    // without a server until the lease lapsed: give it up first, under our
    // epoch only (ledger/CLUSTER.md "A node that cannot listen").
    if (pg_store != nullptr) {
      absl::Status released = ReleasePgLease(*pg_store);
      if (!released.ok()) Log(absl::StrCat("release the partition lease: ", released.ToString()));
    }
    return Fail(absl::UnavailableError("could not bind " + listen), "start");
  }
  // The integrity alarm turns these health entries NOT_SERVING (INTEGRITY.md).
  integrity.SetHealthSink([health = server->GetHealthCheckService()](bool serving) {
    health->SetServingStatus(std::string(kIntegrityHealthService), serving);
    health->SetServingStatus("caseledger.v1.LedgerService", serving);
  });
  metrics.SetLiveSource([&]() -> absl::StatusOr<LiveFigures> {
    CL_ASSIGN_OR_RETURN(v1::LedgerMetrics m, audit_service.Metrics());
    return LiveFiguresOf(m, (*projector)->position(), integrity.state());
  });
  if (const std::string at = absl::GetFlag(FLAGS_metrics_listen); !at.empty()) {
    if (absl::Status s = metrics.Serve(at); !s.ok()) return Fail(s, "refusing to start");
    Log(absl::StrCat("metrics on http://", at.substr(0, at.rfind(':')), ":", metrics.port(),
                     "/metrics"));
  }
  TlogHttpOptions tlog_options;
  tlog_options.tiles_listen = absl::GetFlag(FLAGS_tiles_listen);
  tlog_options.witnesses = std::move(push_witnesses);
  tlog_options.push_interval = absl::GetFlag(FLAGS_witness_push_interval);
  tlog_options.store_cosigned = [&witness_service](absl::string_view note) {
    return witness_service.Add(note).status();
  };
  tlog_options.log = [](const std::string& m) { Log("witness push: " + m); };
  auto tlog = TlogHttp::Start(ledger->get(), std::move(tlog_options));
  if (!tlog.ok()) return Fail(tlog.status(), "--tiles_listen");
  if ((*tlog)->tiles_port() != 0) {
    Log(absl::StrCat("tiles (C2SP tlog-tiles) on http://127.0.0.1:", (*tlog)->tiles_port()));
  }
  std::string host = listen.substr(0, listen.rfind(':'));
  Log(authz_options.insecure_loopback
          ? "transport: PLAINTEXT on loopback (--insecure_loopback): every caller is trusted "
            "as role local, allowed every method; refusals and guarded reads are not recorded "
            "(AccessService reads still are)"
          : "transport: mutual TLS; callers are named by their certificates' "
            "caseledger://ROLE/ID URI");
  Log(absl::StrCat("listening on ", host, ":", port, ", data dir ", data_dir, ", tree size ",
                   (*ledger)->Size(), ", key ", signer->VerifierKey()));

  int sig = 0;
  sigwait(&stop, &sig);
  Log(absl::StrCat("received ", sig == SIGINT ? "SIGINT" : "SIGTERM",
                   ": finishing in-flight requests"));
  tlog->reset();
  read_models_caught_up.Join();
  service.StopStreams();
  audit_service.Stop();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(10));
  server->Wait();
  integrity.SetHealthSink(nullptr);
  metrics.SetLiveSource(nullptr);
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
  // Debian builds abseil without NDEBUG, which leaves Mutex deadlock
  // detection on: a lock-order graph update on every contended lock. Tests
  // keep it; production and benchmark binaries turn it off.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return caseledger::Run();
}
