// ledgerctl's commands, one function per group; each adds its commands, with
// their flags and help, to the registry. main.cc calls them all, in the
// order `ledgerctl help` lists them.
#ifndef CASELEDGER_TOOLS_LEDGERCTL_COMMANDS_H_
#define CASELEDGER_TOOLS_LEDGERCTL_COMMANDS_H_

#include "proto/ledger.pb.h"
#include "tools/ledgerctl/cli.h"

namespace caseledger::ledgerctl {

// append, read, tail, status (append_read.cc).
void AddAppendReadCommands(Registry& registry);
// checkpoint, prove (proofs.cc).
void AddProofCommands(Registry& registry);
// case, cases, accounting (cases.cc).
void AddCaseCommands(Registry& registry);
// history, verify-history, render-history, read-record, access-report
// (history.cc).
void AddHistoryCommands(Registry& registry);
// audit, metrics, export (audit.cc).
void AddAuditCommands(Registry& registry);
// cosigned (witness.cc).
void AddWitnessCommands(Registry& registry);
// export-fhir (fhir.cc).
void AddFhirCommands(Registry& registry);

// accounting-request, amendment-request, disagree, hold, review-denial: the
// client workflows' events (workflows.cc).
void AddWorkflowCommands(Registry& registry);

// Sends one append and prints its result as `append` does (seq, stream
// version, leaf hash; JSON with --json). Returns the exit status; errors are
// printed as "ledgerctl COMMAND: ...".
int SendAppend(Client& c, const char* command, const v1::AppendRequest& req);

}  // namespace caseledger::ledgerctl

#endif  // CASELEDGER_TOOLS_LEDGERCTL_COMMANDS_H_
