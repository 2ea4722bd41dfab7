// caseledger_server with --pg_partitions > 1 (ledger/CLUSTER.md "Serving
// P > 1"): a PartitionedNode, LedgerService routing appends to the case's
// partition (appended here when this node owns it, else redirected to the
// owner), global checkpoints and two-level proofs from any node, and the
// services built over one ledger answering UNIMPLEMENTED.
#ifndef CASELEDGER_SERVICES_CLUSTER_PARTITIONED_SERVER_H_
#define CASELEDGER_SERVICES_CLUSTER_PARTITIONED_SERVER_H_

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/time/time.h"
#include "ledger/crypto.h"
#include "services/authz/authz.h"
#include "services/tlog/witness_http.h"

namespace caseledger {

struct PartitionedServerOptions {
  // From the server's flags, already checked by server_main.cc.
  std::string listen;  // also the address other nodes send this node's callers to
  std::shared_ptr<grpc::ServerCredentials> credentials;
  bool insecure_loopback = false;
  AuthzConfig authz;
  std::string data_dir;     // partition i's state in <data_dir>/partitions/p<i>
  std::string signing_key;  // Ed25519 PKCS#8 PEM path (signs partitions and the global log)
  std::string origin;
  std::string conninfo;
  std::string node_id;
  int32_t partitions = 2;
  absl::Duration lease_ttl = absl::Seconds(10);
  int32_t max_new_partitions = 0;  // PartitionedNodeOptions::max_new_partitions
  absl::Duration checkpoint_interval = absl::Seconds(5);  // also the global log's round
  uint64_t checkpoint_every_records = 100000;
  uint64_t max_batch_events = 10000;
  uint64_t max_group_events = 8192;
  int32_t max_message_bytes = 16 << 20;
  absl::Duration max_occurred_ahead = absl::Minutes(5);
  absl::Duration max_occurred_behind = absl::Minutes(1);
  // Payloads sealed and identifiers blinded under it, as on a single node;
  // unset: plaintext, format 1.
  std::optional<AeadKey> master_key;
  // --witness_keys and the keys of --witness_url: whose cosignatures of the
  // global checkpoints are kept (PartitionedNodeOptions::witness_keys).
  std::vector<std::string> witness_keys;
  // --witness_url: witnesses the global checkpoints are pushed to
  // (c2sp.org/tlog-witness) while this node owns partition 0.
  std::vector<PushWitness> push_witnesses;
  absl::Duration witness_push_interval = absl::Seconds(1);
  std::function<void(const std::string&)> log;
};

// Serves until SIGINT or SIGTERM (which the caller has blocked in every
// thread); returns the process's exit status (0 after a clean stop, 1 when
// it cannot start, with the reason logged).
int RunPartitioned(PartitionedServerOptions options);

}  // namespace caseledger

#endif  // CASELEDGER_SERVICES_CLUSTER_PARTITIONED_SERVER_H_
