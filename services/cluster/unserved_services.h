// The services a partitioned server (--pg_partitions > 1) does not serve
// yet: their read models, audit, witness and key administration are built
// over one ledger (ledger/CLUSTER.md "Serving P > 1"). Every method answers
// UNIMPLEMENTED naming the service, the method and --pg_partitions, after
// the authorization verdict (so that the interceptor's rules still apply).
#ifndef CASELEDGER_SERVICES_CLUSTER_UNSERVED_SERVICES_H_
#define CASELEDGER_SERVICES_CLUSTER_UNSERVED_SERVICES_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <vector>

namespace caseledger {

// One object per service (CaseService, DisclosureService, AccessService,
// AuditService, WitnessService, KeyAdminService), to register with the
// server builder; they must outlive the server.
std::vector<std::unique_ptr<grpc::Service>> UnservedServices(int partitions);

}  // namespace caseledger

#endif  // CASELEDGER_SERVICES_CLUSTER_UNSERVED_SERVICES_H_
