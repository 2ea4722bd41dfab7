// Who is calling, and may they make this call: the caller's identity from the
// client certificate, and ONE policy table, keyed by full gRPC method name,
// that every RPC is checked against (services/authz/AUTHZ.md).
//
// The table (PolicyTable()) holds, for each method, one rule per role. Rules
// that depend on the request (the case's program, its assigned manager, the
// client's own id) are evaluated against a Resource the handler fills in
// from the request and facts the ResourceDirectory supplies. A refusal is
// PERMISSION_DENIED and its message names the rule, e.g.
//   PERMISSION_DENIED: rule case_manager.assigned_case: case "case-7" is
//   assigned to "cm-2", not to case_manager "cm-1"
#ifndef CASELEDGER_SERVICES_API_AUTHZ_H_
#define CASELEDGER_SERVICES_API_AUTHZ_H_

#include <grpcpp/security/auth_context.h>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "proto/events.pb.h"

namespace caseledger {

enum class Role {
  kProducer = 0,     // a platform service: appends for its programs
  kCaseManager = 1,  // reads and appends on the cases assigned to them
  kClient = 2,       // a data subject: own history, only through AccessService
  kAuditor = 3,      // checkpoints, proofs, commitments; payloads with a grant
  kAdmin = 4,        // disposal and key rotation; no reads
  // Plaintext on loopback (--insecure_loopback): a developer on this machine.
  // Allowed everything, nothing recorded. Never given to a TLS peer.
  kLocal = 5,
};
inline constexpr Role kAllRoles[] = {Role::kProducer, Role::kCaseManager, Role::kClient,
                                     Role::kAuditor,  Role::kAdmin,       Role::kLocal};

// "producer", "case_manager", "client", "auditor", "admin", "local".
absl::string_view RoleName(Role role);
// The role named `name` (not "local", which no certificate can claim).
std::optional<Role> RoleFromName(absl::string_view name);

struct Principal {
  Role role = Role::kLocal;
  std::string id;                // from the certificate; "local" for kLocal
  std::string ToString() const;  // "case_manager cm-1"
};

// The caller named by a certificate URI SAN "caseledger://ROLE/ID" (ID is
// 1-128 bytes of [A-Za-z0-9._:@-]). Exactly one such URI must be present.
// INVALID_ARGUMENT naming what was wrong otherwise.
absl::StatusOr<Principal> PrincipalFromUris(const std::vector<std::string>& uris);

// The caller of this call: the TLS peer's certificate URI SANs when the
// transport is TLS; kLocal when it is plaintext and `insecure_loopback` is
// set. UNAUTHENTICATED otherwise.
absl::StatusOr<Principal> PrincipalOf(const grpc::AuthContext* auth, bool insecure_loopback);

// How one role may use one method.
enum class Rule {
  kDeny = 0,
  kAllow,             // no condition (public verification material)
  kOwnProgram,        // producer: appends to cases of its registered programs
  kAssignedCase,      // case manager: the case is assigned to them, no open conflict
  kOwnManagerFilter,  // case manager: a listing filtered to their own cases
  kOwnSubject,        // client: the request's client id is their own (and a
                      // record read names it)
  kAuditGrant,        // auditor: payloads of cases their audit grant covers
                      // (for a record read: the record's case)
  kCommitments,       // auditor: records without payloads unless a grant covers them
  kDisposalOnly,      // admin: appends of records_disposed only
};
absl::string_view RuleName(Rule rule);

// One row of the policy table.
struct MethodPolicy {
  // Full method name, "/caseledger.v1.LedgerService/Append", or a whole
  // service, "/caseledger.v1.AuditService/*".
  const char* method;
  Rule rules[6];  // indexed by Role
  // The answers carry confidential content (payload plaintext, case state,
  // a client's history): each allowed call is recorded as RecordAccessed.
  bool confidential;
};

// THE policy table. Exact rows win over service-wide "/Service/*" rows; a
// method with neither is refused for everyone (rule "no_rule").
const std::vector<MethodPolicy>& PolicyTable();
const MethodPolicy* FindPolicy(absl::string_view method);
// FAILED_PRECONDITION naming the first method of the named services (full
// names, e.g. "caseledger.v1.LedgerService", looked up in the generated
// descriptor pool) that has no row; the server checks this at start.
absl::Status CheckTableCovers(const std::vector<std::string>& services);

// What a request touches, filled in by the handler from the request.
struct Resource {
  std::string case_id;               // the case (stream) read or appended to
  std::string client_id;             // the data subject whose history is asked for
  std::string manager_id;            // ListCases' manager filter
  bool whole_log = false;            // ReadLog, Subscribe, unfiltered listings
  const v1::Event* event = nullptr;  // the event being appended
  // The program of a case_opened for this case earlier in the same request
  // (AppendBatch), which the ResourceDirectory cannot know of yet.
  std::string opened_program;
  // One record read by its seq (AccessService.ReadRecord): the rules
  // own_subject and audit_grant are decided on the record itself (the
  // subjects it names, its case), which the ResourceDirectory supplies.
  std::optional<uint64_t> record_seq;
};

// What the authorizer needs to know about a case.
struct CaseFacts {
  bool exists = false;  // it has a case_opened
  std::string program;
  std::string manager_id;
  // Staff with a declared, unresolved conflict of interest in the case.
  std::set<std::string> conflicted;
  // The case's clients (participants with the client role).
  std::vector<std::string> clients;
};

// What the authorizer needs to know about one record.
struct RecordFacts {
  std::string case_id;                   // its stream
  std::vector<std::string> subject_ids;  // the subjects it names
};

// The per-resource facts the rules need, through one injected interface: a
// case's program, manager, conflicts and clients, and a record's case and
// subjects. The server's (authz_directory.h) reads the append gate's view of
// each case and the ledger's committed records; tests pass fakes.
class ResourceDirectory {
 public:
  virtual ~ResourceDirectory() = default;
  // The case as it will be once every accepted append is committed; a case
  // without records has exists == false.
  virtual absl::StatusOr<CaseFacts> Case(const std::string& case_id) = 0;
  // The record at `seq`; NOT_FOUND or OUT_OF_RANGE when there is none.
  virtual absl::StatusOr<RecordFacts> Record(uint64_t seq) = 0;
};

// Registrations and grants (the --authz_config file, AUTHZ.md).
struct AuthzConfig {
  std::map<std::string, std::set<std::string>> producer_programs;  // producer id -> programs
  std::map<std::string, std::set<std::string>> audit_grants;       // auditor id -> case ids or "*"
};
// Parses the config file text. INVALID_ARGUMENT naming the line otherwise.
absl::StatusOr<AuthzConfig> ParseAuthzConfig(absl::string_view text);

struct Decision {
  Rule rule = Rule::kDeny;
  // The caller gets records without payloads (leaf, hashes, ids only).
  bool commitments_only = false;
  // The answer carries confidential content: record the access.
  bool record_access = false;
};

// Thread-safe; `directory` is borrowed and must outlive the authorizer.
// Reads no clock.
class Authorizer {
 public:
  Authorizer(AuthzConfig config, ResourceDirectory* directory);

  // May `who` call `method` on `resource`? PERMISSION_DENIED naming the rule
  // when not; a ResourceDirectory error (e.g. UNAVAILABLE) is passed on.
  absl::StatusOr<Decision> Check(const Principal& who, absl::string_view method,
                                 const Resource& resource);

 private:
  absl::Status CheckRule(Rule rule, const Principal& who, absl::string_view method,
                         const Resource& resource, Decision* decision);
  absl::Status CheckAppend(const Principal& who, Rule rule, const Resource& resource);

  // The record at r.record_seq; empty facts when there is none (so that a
  // refusal reads the same whether or not it exists).
  absl::StatusOr<RecordFacts> RecordOf(const Resource& r);

  const AuthzConfig config_;
  ResourceDirectory* const directory_;
};

// Builds the ledger events the server writes itself (an access, a refusal,
// an erasure, a key rotation): random event ids, producer kServerProducer,
// occurred_at `now` to the microsecond (the caller reads it from the
// ledger's clock, Ledger::clock()).
v1::Event RecordAccessEvent(const Principal& who, absl::string_view method,
                            const Resource& resource, const std::string& stream_id,
                            const std::vector<std::string>& subjects, absl::Time now);
v1::Event AccessRefusedEvent(const Principal& who, absl::string_view method,
                             const Resource& resource, const absl::Status& refusal,
                             const std::vector<std::string>& subjects, absl::Time now);
// In kKeysStream, naming the erased subject (so that its history shows it).
v1::Event SubjectErasedEvent(const Principal& who, const std::string& subject_id,
                             const std::string& authority, absl::Time now);
// In kKeysStream; no subjects (so stored unsealed).
v1::Event MasterKeyRotatedEvent(const Principal& who, const std::string& old_id,
                                const std::string& new_id, uint64_t keys_rewrapped, absl::Time now);

// The stream that holds access records and refusals not tied to one case.
// Names beginning with '@' are reserved for the server: nobody may append.
inline constexpr char kAccessStream[] = "@access";
// The stream that holds erasures (KeyAdminService).
inline constexpr char kKeysStream[] = "@keys";
inline constexpr char kServerProducer[] = "caseledger-server";

}  // namespace caseledger

#endif  // CASELEDGER_SERVICES_API_AUTHZ_H_
