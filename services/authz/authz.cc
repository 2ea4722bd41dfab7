#include "services/authz/authz.h"

#include <grpc/grpc_security_constants.h>

#include <algorithm>

#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "google/protobuf/descriptor.h"
#include "ledger/internal/status_macros.h"

namespace caseledger {
namespace {

constexpr absl::string_view kUriPrefix = "caseledger://";

bool IdChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == ':' ||
         c == '@' || c == '-';
}

bool ValidId(absl::string_view id) {
  return !id.empty() && id.size() <= 128 && std::all_of(id.begin(), id.end(), IdChar);
}

absl::Status Denied(Rule rule, Role role, absl::string_view why) {
  return absl::PermissionDeniedError(
      absl::StrCat("rule ", RoleName(role), ".", RuleName(rule), ": ", why));
}

constexpr Rule D = Rule::kDeny;
constexpr Rule A = Rule::kAllow;

// Columns: producer, case_manager, client, auditor, admin, local.
const std::vector<MethodPolicy>* BuildTable() {
  auto append = [](const char* m) {
    return MethodPolicy{
        m, {Rule::kOwnProgram, Rule::kAssignedCase, D, D, Rule::kDisposalOnly, A}, false};
  };
  return new std::vector<MethodPolicy>{
      // Writes.
      append("/caseledger.v1.LedgerService/Append"),
      append("/caseledger.v1.LedgerService/AppendBatch"),
      append("/caseledger.v1.LedgerService/AppendStream"),
      // Payload reads. Clients read only through AccessService; producers and
      // admins never read payloads.
      {"/caseledger.v1.LedgerService/ReadStream",
       {D, Rule::kAssignedCase, D, Rule::kCommitments, D, A},
       true},
      {"/caseledger.v1.LedgerService/ReadLog", {D, D, D, Rule::kCommitments, D, A}, true},
      {"/caseledger.v1.LedgerService/Subscribe", {D, D, D, Rule::kCommitments, D, A}, true},
      // Verification material: public by design (a checkpoint and its proofs
      // reveal hashes only).
      {"/caseledger.v1.LedgerService/GetCheckpoint", {A, A, A, A, A, A}, false},
      {"/caseledger.v1.LedgerService/ListCheckpoints", {A, A, A, A, A, A}, false},
      {"/caseledger.v1.LedgerService/GetInclusionProof", {A, A, A, A, A, A}, false},
      {"/caseledger.v1.LedgerService/GetConsistencyProof", {A, A, A, A, A, A}, false},
      {"/caseledger.v1.LedgerService/GetPublicKey", {A, A, A, A, A, A}, false},
      // Read models.
      {"/caseledger.v1.CaseService/GetCase",
       {D, Rule::kAssignedCase, D, Rule::kAuditGrant, D, A},
       true},
      // Summaries name programs (a substance-use program says much): recorded.
      {"/caseledger.v1.CaseService/ListCases",
       {D, Rule::kOwnManagerFilter, D, Rule::kAuditGrant, D, A},
       true},
      {"/caseledger.v1.DisclosureService/GetAccounting", {D, D, D, Rule::kAuditGrant, D, A}, true},
      // A client's own record history and access report (proto/access.proto).
      // AccessService records each read itself (record_accessed naming the
      // authenticated caller and the records shown), so not again here.
      {"/caseledger.v1.AccessService/*", {D, D, Rule::kOwnSubject, Rule::kAuditGrant, D, A}, false},
      // Witnesses and auditors (proto/audit.proto).
      {"/caseledger.v1.AuditService/*", {D, D, D, A, D, A}, false},
      {"/caseledger.v1.WitnessService/*", {D, D, D, A, D, A}, false},
      // A checkpoint with its witnesses' cosignature lines: hashes and
      // signatures only, public like GetCheckpoint, so that a client can wait
      // for the witnesses it trusts to cosign its history's checkpoint.
      {"/caseledger.v1.WitnessService/GetCosignedCheckpoint", {A, A, A, A, A, A}, false},
      // Every record's bytes between two checkpoints: ids, types, producers,
      // times and payload commitments, never payloads or openings (what
      // ReadLog gives an auditor without a grant). Not recorded: witnesses
      // poll it, and each access record would be in the next transition.
      {"/caseledger.v1.WitnessService/GetSubjectTransition", {D, D, D, A, D, A}, false},
      // Crypto-shredding (proto/keys.proto): destroys a client's data keys.
      // Admins only; the erasure is not a read, so nothing to record here.
      {"/caseledger.v1.KeyAdminService/*", {D, D, D, D, A, A}, false},
      // Master key rotation: re-wraps every data key. Admins only, in a row
      // of its own so that no change to the service's row opens it to others.
      {"/caseledger.v1.KeyAdminService/RotateMasterKey", {D, D, D, D, A, A}, false},
      // Standard services: liveness and schema only.
      {"/grpc.health.v1.Health/*", {A, A, A, A, A, A}, false},
      {"/grpc.reflection.v1alpha.ServerReflection/*", {A, A, A, A, A, A}, false},
  };
}

}  // namespace

absl::string_view RoleName(Role role) {
  switch (role) {
    case Role::kProducer:
      return "producer";
    case Role::kCaseManager:
      return "case_manager";
    case Role::kClient:
      return "client";
    case Role::kAuditor:
      return "auditor";
    case Role::kAdmin:
      return "admin";
    case Role::kLocal:
      return "local";
  }
  return "unknown";
}

std::optional<Role> RoleFromName(absl::string_view name) {
  for (Role r : kAllRoles) {
    if (r != Role::kLocal && RoleName(r) == name) return r;
  }
  return std::nullopt;
}

absl::string_view RuleName(Rule rule) {
  switch (rule) {
    case Rule::kDeny:
      return "deny";
    case Rule::kAllow:
      return "allow";
    case Rule::kOwnProgram:
      return "own_program";
    case Rule::kAssignedCase:
      return "assigned_case";
    case Rule::kOwnManagerFilter:
      return "own_manager_filter";
    case Rule::kOwnSubject:
      return "own_subject";
    case Rule::kAuditGrant:
      return "audit_grant";
    case Rule::kCommitments:
      return "commitments";
    case Rule::kDisposalOnly:
      return "disposal_only";
  }
  return "unknown";
}

std::string Principal::ToString() const { return absl::StrCat(RoleName(role), " ", id); }

absl::StatusOr<Principal> PrincipalFromUris(const std::vector<std::string>& uris) {
  std::optional<Principal> found;
  for (const std::string& uri : uris) {
    if (!absl::StartsWith(uri, kUriPrefix)) continue;
    if (found.has_value()) {
      return absl::InvalidArgumentError(
          "client certificate: more than one caseledger:// URI SAN, want exactly one");
    }
    std::vector<absl::string_view> parts =
        absl::StrSplit(absl::string_view(uri).substr(kUriPrefix.size()), '/');
    if (parts.size() != 2) {
      return absl::InvalidArgumentError(
          absl::StrCat("client certificate: URI SAN \"", uri, "\", want caseledger://ROLE/ID"));
    }
    std::optional<Role> role = RoleFromName(parts[0]);
    if (!role.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat("client certificate: role \"", parts[0],
                       "\", want producer, case_manager, client, auditor or admin"));
    }
    if (!ValidId(parts[1])) {
      return absl::InvalidArgumentError(absl::StrCat("client certificate: id \"", parts[1],
                                                     "\", want 1-128 of [A-Za-z0-9._:@-]"));
    }
    found = Principal{*role, std::string(parts[1])};
  }
  if (!found.has_value()) {
    return absl::InvalidArgumentError(
        "client certificate: no URI SAN caseledger://ROLE/ID names the caller");
  }
  return *found;
}

absl::StatusOr<Principal> PrincipalOf(const grpc::AuthContext* auth, bool insecure_loopback) {
  bool tls = false;
  if (auth != nullptr) {
    for (const grpc::string_ref& v :
         auth->FindPropertyValues(GRPC_TRANSPORT_SECURITY_TYPE_PROPERTY_NAME)) {
      if (std::string(v.data(), v.size()) == GRPC_SSL_TRANSPORT_SECURITY_TYPE) tls = true;
    }
  }
  if (!tls) {
    if (insecure_loopback) return Principal{Role::kLocal, "local"};
    return absl::UnauthenticatedError("plaintext connection: a client certificate is required");
  }
  if (!auth->IsPeerAuthenticated()) {
    return absl::UnauthenticatedError("TLS peer presented no verified client certificate");
  }
  std::vector<std::string> uris;
  for (const grpc::string_ref& v : auth->FindPropertyValues(GRPC_PEER_URI_PROPERTY_NAME)) {
    uris.emplace_back(v.data(), v.size());
  }
  absl::StatusOr<Principal> p = PrincipalFromUris(uris);
  if (!p.ok()) return absl::UnauthenticatedError(p.status().message());
  return p;
}

const std::vector<MethodPolicy>& PolicyTable() {
  static const std::vector<MethodPolicy>* table = BuildTable();
  return *table;
}

const MethodPolicy* FindPolicy(absl::string_view method) {
  const MethodPolicy* service_row = nullptr;
  size_t slash = method.rfind('/');
  for (const MethodPolicy& row : PolicyTable()) {
    absl::string_view m = row.method;
    if (m == method) return &row;
    if (slash != absl::string_view::npos && absl::EndsWith(m, "/*") &&
        m.substr(0, m.size() - 1) == method.substr(0, slash + 1)) {
      service_row = &row;
    }
  }
  return service_row;
}

absl::Status CheckTableCovers(const std::vector<std::string>& services) {
  const google::protobuf::DescriptorPool* pool = google::protobuf::DescriptorPool::generated_pool();
  for (const std::string& name : services) {
    const google::protobuf::ServiceDescriptor* service = pool->FindServiceByName(name);
    if (service == nullptr) {
      return absl::FailedPreconditionError(absl::StrCat("service ", name, " is not linked in"));
    }
    for (int i = 0; i < service->method_count(); ++i) {
      std::string method = absl::StrCat("/", name, "/", service->method(i)->name());
      if (FindPolicy(method) == nullptr) {
        return absl::FailedPreconditionError(
            absl::StrCat(method, " has no row in the policy table (services/authz/authz.cc)"));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<AuthzConfig> ParseAuthzConfig(absl::string_view text) {
  AuthzConfig config;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    line = absl::StripAsciiWhitespace(line.substr(0, line.find('#')));
    if (line.empty()) continue;
    std::vector<absl::string_view> words = absl::StrSplit(line, ' ', absl::SkipWhitespace());
    auto bad = [&](absl::string_view why) {
      return absl::InvalidArgumentError(absl::StrCat("authz config line ", line_no, ": ", why));
    };
    if (words.size() < 3) {
      return bad(absl::StrCat("got \"", line,
                              "\", want producer ID PROGRAM... or audit_grant ID "
                              "CASE...|*"));
    }
    if (!ValidId(words[1])) return bad(absl::StrCat("id \"", words[1], "\" is not a valid id"));
    std::set<std::string>* into;
    if (words[0] == "producer") {
      into = &config.producer_programs[std::string(words[1])];
    } else if (words[0] == "audit_grant") {
      into = &config.audit_grants[std::string(words[1])];
    } else {
      return bad(absl::StrCat("got \"", words[0], "\", want producer or audit_grant"));
    }
    for (size_t i = 2; i < words.size(); ++i) {
      if (words[i] != "*" && !ValidId(words[i])) {
        return bad(absl::StrCat("\"", words[i], "\" is not a valid id"));
      }
      if (words[i] == "*" && words[0] == "producer") {
        return bad("a producer is registered for named programs, not *");
      }
      into->insert(std::string(words[i]));
    }
  }
  return config;
}

Authorizer::Authorizer(AuthzConfig config, ResourceDirectory* directory)
    : config_(std::move(config)), directory_(directory) {}

absl::StatusOr<RecordFacts> Authorizer::RecordOf(const Resource& r) {
  absl::StatusOr<RecordFacts> facts = directory_->Record(*r.record_seq);
  if (facts.status().code() == absl::StatusCode::kNotFound ||
      facts.status().code() == absl::StatusCode::kOutOfRange) {
    return RecordFacts();
  }
  return facts;
}

absl::StatusOr<Decision> Authorizer::Check(const Principal& who, absl::string_view method,
                                           const Resource& resource) {
  const MethodPolicy* row = FindPolicy(method);
  if (row == nullptr) {
    return absl::PermissionDeniedError(
        absl::StrCat("rule no_rule: ", method, " has no row in the policy table"));
  }
  Decision d;
  d.rule = row->rules[static_cast<int>(who.role)];
  CL_RETURN_IF_ERROR(CheckRule(d.rule, who, method, resource, &d));
  d.record_access = row->confidential && who.role != Role::kLocal && !d.commitments_only;
  return d;
}

absl::Status Authorizer::CheckRule(Rule rule, const Principal& who, absl::string_view method,
                                   const Resource& r, Decision* d) {
  auto grant_covers = [&](const std::string& case_id) {
    auto it = config_.audit_grants.find(who.id);
    if (it == config_.audit_grants.end()) return false;
    return it->second.count("*") > 0 || (!case_id.empty() && it->second.count(case_id) > 0);
  };
  switch (rule) {
    case Rule::kDeny:
      return Denied(rule, who.role, absl::StrCat(method, " is not allowed for ", who.ToString()));
    case Rule::kAllow:
      return absl::OkStatus();
    case Rule::kOwnProgram:
    case Rule::kDisposalOnly:
    case Rule::kAssignedCase:
      if (r.event != nullptr) return CheckAppend(who, rule, r);
      if (rule != Rule::kAssignedCase) {
        return Denied(rule, who.role, "only appends are allowed");
      }
      {
        if (r.case_id.empty()) {
          return Denied(rule, who.role, "the request names no single case");
        }
        CL_ASSIGN_OR_RETURN(CaseFacts facts, directory_->Case(r.case_id));
        if (facts.manager_id != who.id) {
          return Denied(rule, who.role,
                        absl::StrCat("case \"", r.case_id, "\" is assigned to \"", facts.manager_id,
                                     "\", not to ", who.ToString()));
        }
        if (facts.conflicted.count(who.id) > 0) {
          return Denied(rule, who.role,
                        absl::StrCat(who.ToString(),
                                     " has an unresolved conflict of interest in "
                                     "case \"",
                                     r.case_id, "\""));
        }
      }
      return absl::OkStatus();
    case Rule::kOwnManagerFilter:
      if (r.manager_id != who.id) {
        return Denied(rule, who.role,
                      absl::StrCat("manager_id: got \"", r.manager_id, "\", want your own id \"",
                                   who.id, "\""));
      }
      return absl::OkStatus();
    case Rule::kOwnSubject:
      if (r.client_id != who.id) {
        return Denied(rule, who.role,
                      absl::StrCat("client_id: got \"", r.client_id, "\", want your own id \"",
                                   who.id, "\""));
      }
      if (r.record_seq.has_value()) {
        // The same answer whether the record is someone else's or absent.
        CL_ASSIGN_OR_RETURN(RecordFacts record, RecordOf(r));
        if (std::find(record.subject_ids.begin(), record.subject_ids.end(), who.id) ==
            record.subject_ids.end()) {
          return Denied(
              rule, who.role,
              absl::StrCat("record ", *r.record_seq, " is not one of \"", who.id, "\"'s records"));
        }
      }
      return absl::OkStatus();
    case Rule::kAuditGrant:
      if (r.record_seq.has_value()) {
        // Named by its seq alone: the grant must cover the record's case,
        // which the refusal does not name.
        CL_ASSIGN_OR_RETURN(RecordFacts record, RecordOf(r));
        if (grant_covers(record.case_id)) return absl::OkStatus();
        return Denied(rule, who.role,
                      absl::StrCat(who.ToString(), " has no audit grant for the case of record ",
                                   *r.record_seq));
      }
      if (r.whole_log || r.case_id.empty()) {
        if (grant_covers("")) return absl::OkStatus();
        return Denied(rule, who.role,
                      absl::StrCat(who.ToString(), " has no audit grant for all cases (*)"));
      }
      if (grant_covers(r.case_id)) return absl::OkStatus();
      return Denied(
          rule, who.role,
          absl::StrCat(who.ToString(), " has no audit grant for case \"", r.case_id, "\""));
    case Rule::kCommitments:
      // Without a grant, an auditor still gets every record's leaf and
      // hashes: enough to verify the chain and the tree.
      d->commitments_only = !grant_covers(r.whole_log ? "" : r.case_id);
      return absl::OkStatus();
  }
  return Denied(rule, who.role, "unknown rule");
}

absl::Status Authorizer::CheckAppend(const Principal& who, Rule rule, const Resource& resource) {
  const v1::Event& e = *resource.event;
  if (absl::StartsWith(e.stream_id(), "@")) {
    return Denied(rule, who.role,
                  absl::StrCat("stream \"", e.stream_id(), "\" is reserved for the server"));
  }
  switch (rule) {
    case Rule::kDisposalOnly:
      if (!e.has_records_disposed()) {
        return Denied(
            rule, who.role,
            absl::StrCat("an admin may append records_disposed only, got ",
                         e.body_case() == v1::Event::BODY_NOT_SET
                             ? std::string("no body")
                             : e.GetDescriptor()->FindFieldByNumber(e.body_case())->name()));
      }
      return absl::OkStatus();
    case Rule::kOwnProgram: {
      if (e.producer() != who.id) {
        return Denied(rule, who.role,
                      absl::StrCat("event.producer: got \"", e.producer(), "\", want \"", who.id,
                                   "\" (the certificate's id)"));
      }
      auto it = config_.producer_programs.find(who.id);
      auto registered = [&](const std::string& program) {
        return it != config_.producer_programs.end() && it->second.count(program) > 0;
      };
      std::string program;
      if (e.has_case_opened()) {
        program = e.case_opened().program();
      } else {
        CL_ASSIGN_OR_RETURN(CaseFacts facts, directory_->Case(e.stream_id()));
        if (!facts.exists && !resource.opened_program.empty()) {
          facts.exists = true;
          facts.program = resource.opened_program;
        }
        if (!facts.exists) {
          return Denied(
              rule, who.role,
              absl::StrCat("case \"", e.stream_id(), "\" is not open, so it has no program yet"));
        }
        program = facts.program;
      }
      if (!registered(program)) {
        return Denied(rule, who.role,
                      absl::StrCat("producer \"", who.id, "\" is not registered for program \"",
                                   program, "\""));
      }
      if (e.has_case_transferred() && !e.case_transferred().to_program().empty() &&
          !registered(e.case_transferred().to_program())) {
        return Denied(rule, who.role,
                      absl::StrCat("producer \"", who.id, "\" is not registered for program \"",
                                   e.case_transferred().to_program(), "\" (the transfer target)"));
      }
      return absl::OkStatus();
    }
    case Rule::kAssignedCase: {
      Resource r;
      r.case_id = e.stream_id();
      Decision unused;
      return CheckRule(Rule::kAssignedCase, who, "append", r, &unused);
    }
    default:
      return Denied(rule, who.role, "not an append rule");
  }
}

namespace {

void Stamp(const std::string& stream_id, const std::vector<std::string>& subjects, absl::Time now,
           v1::Event* e) {
  static absl::Mutex* mu = new absl::Mutex;
  static absl::BitGen* gen = new absl::BitGen;
  uint64_t a, b;
  {
    absl::MutexLock lock(mu);
    a = absl::Uniform<uint64_t>(*gen);
    b = absl::Uniform<uint64_t>(*gen);
  }
  e->set_event_id(
      absl::StrCat("access-", absl::Hex(a, absl::kZeroPad16), absl::Hex(b, absl::kZeroPad16)));
  e->set_stream_id(stream_id);
  for (const std::string& s : subjects) e->add_subject_ids(s);
  e->set_producer(kServerProducer);
  // To the microsecond, as the ledger stores times: a read recorded in the
  // same second as the case's opening is not dated before it.
  const int64_t micros = absl::ToUnixMicros(now);
  e->mutable_occurred_at()->set_seconds(micros / 1000000);
  e->mutable_occurred_at()->set_nanos(static_cast<int32_t>(micros % 1000000) * 1000);
}

std::string Describe(absl::string_view method, const Resource& r) {
  std::vector<std::string> parts = {std::string(method)};
  if (!r.case_id.empty()) parts.push_back(absl::StrCat("case ", r.case_id));
  if (!r.client_id.empty()) parts.push_back(absl::StrCat("client ", r.client_id));
  if (!r.manager_id.empty()) parts.push_back(absl::StrCat("manager ", r.manager_id));
  if (r.whole_log) parts.push_back("whole log");
  if (r.record_seq.has_value()) parts.push_back(absl::StrCat("record ", *r.record_seq));
  if (r.event != nullptr) parts.push_back(absl::StrCat("event ", r.event->event_id()));
  return absl::StrJoin(parts, ", ");
}

}  // namespace

v1::Event RecordAccessEvent(const Principal& who, absl::string_view method,
                            const Resource& resource, const std::string& stream_id,
                            const std::vector<std::string>& subjects, absl::Time now) {
  v1::Event e;
  Stamp(stream_id, subjects, now, &e);
  v1::RecordAccessed* a = e.mutable_record_accessed();
  a->set_accessor_id(who.id);
  a->set_accessor_role(std::string(RoleName(who.role)));
  a->set_purpose(Describe(method, resource));
  return e;
}

v1::Event AccessRefusedEvent(const Principal& who, absl::string_view method,
                             const Resource& resource, const absl::Status& refusal,
                             const std::vector<std::string>& subjects, absl::Time now) {
  v1::Event e;
  Stamp(kAccessStream, subjects, now, &e);
  v1::AccessRefused* a = e.mutable_access_refused();
  a->set_accessor_id(who.id);
  a->set_accessor_role(std::string(RoleName(who.role)));
  a->set_method(std::string(method));
  a->set_resource(Describe(method, resource));
  a->set_reason(std::string(refusal.message()));
  return e;
}

v1::Event SubjectErasedEvent(const Principal& who, const std::string& subject_id,
                             const std::string& authority, absl::Time now) {
  v1::Event e;
  Stamp(kKeysStream, {subject_id}, now, &e);
  v1::SubjectErased* a = e.mutable_subject_erased();
  a->set_erased_by(absl::StrCat(RoleName(who.role), "/", who.id));
  a->set_authority(authority);
  a->set_method("crypto-shredding of the subject's data keys");
  return e;
}

v1::Event MasterKeyRotatedEvent(const Principal& who, const std::string& old_id,
                                const std::string& new_id, uint64_t keys_rewrapped,
                                absl::Time now) {
  v1::Event e;
  Stamp(kKeysStream, {}, now, &e);
  v1::MasterKeyRotated* r = e.mutable_master_key_rotated();
  r->set_rotated_by(absl::StrCat(RoleName(who.role), "/", who.id));
  r->set_old_master_key_id(old_id);
  r->set_new_master_key_id(new_id);
  r->set_keys_rewrapped(keys_rewrapped);
  return e;
}

}  // namespace caseledger
