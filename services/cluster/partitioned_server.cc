#include "services/cluster/partitioned_server.h"

#include <grpcpp/health_check_service_interface.h>
#include <signal.h>

#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "ledger/checkpoint.h"
#include "ledger/partition.h"
#include "ledger/pg_partitions.h"
#include "ledger/signer.h"
#include "services/authz/authz_interceptor.h"
#include "services/cluster/partition_router.h"
#include "services/cluster/partitioned_ledger_service.h"
#include "services/cluster/unserved_services.h"
#include "services/tlog/global_witness.h"

namespace caseledger {
namespace {

absl::StatusOr<NoteSigner> LoadSigner(const std::string& path, const std::string& name) {
  absl::StatusOr<std::unique_ptr<Ed25519Signer>> key = Ed25519Signer::LoadOrCreate(path);
  if (!key.ok()) return key.status();
  return NoteSigner::New(name, *std::move(key));
}

}  // namespace

int RunPartitioned(PartitionedServerOptions o) {
  auto fail = [&o](const absl::Status& s, absl::string_view what) {
    o.log(absl::StrCat(what, ": ", s.ToString()));
    return 1;
  };
  if (absl::EndsWith(o.listen, ":0")) {
    return fail(absl::InvalidArgumentError(absl::StrCat(
                    "--listen: got \"", o.listen,
                    "\", want a fixed port with --pg_partitions > 1: other nodes send the "
                    "callers of this node's partitions to this address")),
                "refusing to start");
  }
  absl::StatusOr<NoteSigner> signer = LoadSigner(o.signing_key, o.origin);
  if (!signer.ok()) return fail(signer.status(), "signing key");
  // The same key signs the global checkpoints under the name witnesses
  // know the global log by.
  absl::StatusOr<NoteSigner> global_signer = LoadSigner(o.signing_key, GlobalOrigin(o.origin));
  if (!global_signer.ok()) return fail(global_signer.status(), "signing key");

  PartitionedNodeOptions node_options;
  node_options.conninfo = o.conninfo;
  node_options.node_id = o.node_id;
  node_options.address = o.listen;
  node_options.partitions = o.partitions;
  node_options.dir = o.data_dir + "/partitions";
  node_options.lease_ttl = o.lease_ttl;
  node_options.max_new_partitions = o.max_new_partitions;
  node_options.global_interval = o.checkpoint_interval;
  node_options.ledger.origin = o.origin;
  node_options.ledger.signer = &*signer;
  node_options.ledger.checkpoint_every_records = o.checkpoint_every_records;
  node_options.ledger.checkpoint_interval = o.checkpoint_interval;
  node_options.ledger.max_batch_events = o.max_batch_events;
  node_options.ledger.max_group_events = o.max_group_events;
  node_options.global_signer = &*global_signer;
  // As a single node: payloads sealed and identifiers blinded (record format
  // 2) under the master key, keys destroyed by the same event types.
  node_options.master_key = std::move(o.master_key);
  node_options.key_options.shred_event_type = "records_disposed";
  node_options.key_options.erase_event_type = "subject_erased";
  node_options.witness_keys = o.witness_keys;
  node_options.log = o.log;
  absl::StatusOr<std::unique_ptr<PartitionedNode>> node =
      PartitionedNode::Start(std::move(node_options));
  if (!node.ok()) return fail(node.status(), "open the partitioned ledger in PostgreSQL");

  // Every node signs with the one ledger key: a global checkpoint another
  // key signed means this node was given the wrong --signing_key.
  absl::StatusOr<std::optional<GlobalCheckpoint>> latest = (*node)->LatestGlobal();
  if (!latest.ok()) return fail(latest.status(), "read the global checkpoint");
  if (const std::optional<GlobalCheckpoint>& g = *latest; g.has_value()) {
    absl::StatusOr<NoteVerifier> mine = NoteVerifier::FromVerifierKey(global_signer->VerifierKey());
    if (!mine.ok()) return fail(mine.status(), "signing key");
    if (absl::Status s = OpenCheckpoint(g->note, *mine, GlobalOrigin(o.origin)).status(); !s.ok()) {
      return fail(absl::FailedPreconditionError(absl::StrCat(
                      "--signing_key: the ledger's global checkpoint ", g->size,
                      " does not verify under this node's key ", global_signer->VerifierKey(),
                      " (", s.message(), "); every node of a ledger signs with the same key")),
                  "refusing to start");
    }
  }

  // The global checkpoints go to the --witness_url witnesses from whichever
  // node owns partition 0 (the pusher offers nothing elsewhere), and their
  // cosignatures are kept in PostgreSQL for every node to serve.
  std::unique_ptr<WitnessPusher> pusher;
  if (!o.push_witnesses.empty()) {
    WitnessPusherOptions push_options;
    push_options.witnesses = o.push_witnesses;
    push_options.interval = o.witness_push_interval;
    push_options.log = [log = o.log](const std::string& m) { log("global witness push: " + m); };
    pusher = NewGlobalWitnessPusher(node->get(), std::move(push_options));
    pusher->Start();
  }

  PartitionRouter::Options router_options;
  router_options.conninfo = o.conninfo;
  router_options.node_id = o.node_id;
  router_options.partitions = o.partitions;
  router_options.gate.max_occurred_ahead = o.max_occurred_ahead;
  router_options.gate.max_occurred_behind = o.max_occurred_behind;
  PartitionRouter router(node->get(), router_options);

  Authorizer authorizer(std::move(o.authz), &router);
  AuthzInterceptorOptions authz_options;
  authz_options.insecure_loopback = o.insecure_loopback;
  authz_options.max_batch_events = o.max_batch_events;
  authz_options.gate_for = [&router](const std::string& stream) { return router.GateFor(stream); };
  PartitionedLedgerServiceOptions service_options;
  service_options.origin = o.origin;
  service_options.partitions = o.partitions;
  service_options.max_batch_events = o.max_batch_events;
  PartitionedLedgerService service(node->get(), &router, &*global_signer, &authorizer,
                                   service_options);
  std::vector<std::unique_ptr<grpc::Service>> unserved = UnservedServices(o.partitions);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(o.listen, o.credentials, &port);
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MIN_POLLERS, 4);
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MAX_POLLERS, 256);
  builder.SetMaxReceiveMessageSize(o.max_message_bytes);
  builder.SetMaxSendMessageSize(o.max_message_bytes);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
  creators.push_back(
      std::make_unique<AuthzInterceptorFactory>(&authorizer, &router, nullptr, authz_options));
  builder.experimental().SetInterceptorCreators(std::move(creators));
  builder.RegisterService(&service);
  for (const auto& s : unserved) builder.RegisterService(s.get());
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    return fail(absl::UnavailableError("could not bind " + o.listen), "start");
  }
  std::string owned;
  for (int32_t p : (*node)->Owned()) absl::StrAppend(&owned, owned.empty() ? "" : ",", p);
  o.log(absl::StrCat("partitioned ledger: P = ", o.partitions, ", node \"", o.node_id,
                     "\" owns partitions [", owned, "]; global log key ",
                     global_signer->VerifierKey()));
  o.log(o.insecure_loopback
            ? "transport: PLAINTEXT on loopback (--insecure_loopback)"
            : "transport: mutual TLS; callers are named by their certificates' "
              "caseledger://ROLE/ID URI");
  o.log(absl::StrCat("listening on ", o.listen.substr(0, o.listen.rfind(':')), ":", port,
                     ", data dir ", o.data_dir, ", key ", signer->VerifierKey()));

  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  int sig = 0;
  sigwait(&stop, &sig);
  o.log(absl::StrCat("received ", sig == SIGINT ? "SIGINT" : "SIGTERM",
                     ": finishing in-flight requests"));
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(10));
  server->Wait();
  pusher.reset();
  node->reset();
  o.log("stopped cleanly");
  return 0;
}

}  // namespace caseledger
