// Witnesses for a partitioned ledger's global log (ledger/CLUSTER.md "The
// global log"): the global checkpoints (origin <origin>/global) go to the
// --witness_url witnesses the way a single node's checkpoints do
// (WitnessPusher, c2sp.org/tlog-witness), and their cosignatures are kept in
// PostgreSQL (PartitionedNode::AddGlobalCosignatures), so any node serves
// them.
#ifndef CASELEDGER_SERVICES_TLOG_GLOBAL_WITNESS_H_
#define CASELEDGER_SERVICES_TLOG_GLOBAL_WITNESS_H_

#include <memory>

#include "ledger/pg_partitions.h"
#include "services/tlog/witness_http.h"

namespace caseledger {

// A pusher of `node`'s global checkpoints (not started: call Start, or
// PushOnce). `options` gives the witnesses, interval, timeout and log; its
// latest, proof and store are set here. Only while `node` owns partition 0
// (the global log's sequencer) does it offer anything, so one node pushes
// at a time; after a takeover the new owner learns each witness's size from
// its 409 answer and sends the consistency proof from there. Each witness
// must also be in the node's witness_keys, or its lines are refused.
// `node` is borrowed and must outlive the pusher.
std::unique_ptr<WitnessPusher> NewGlobalWitnessPusher(PartitionedNode* node,
                                                      WitnessPusherOptions options);

}  // namespace caseledger

#endif  // CASELEDGER_SERVICES_TLOG_GLOBAL_WITNESS_H_
