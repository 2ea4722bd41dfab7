#include "services/authz/authz.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"

namespace caseledger {
namespace {

// Three cases: case-h (housing, cm-1, client-1), case-x (health, cm-2) and
// case-c (housing, cm-1, who declared a conflict in it); records 0 (case-h,
// naming client-1) and 1 (case-x, naming client-2), no record 2 or later.
class FakeDirectory : public ResourceDirectory {
 public:
  absl::StatusOr<CaseFacts> Case(const std::string& case_id) override {
    CaseFacts f;
    if (case_id == "case-h" || case_id == "case-c") {
      f = {true, "housing", "cm-1", {}, {"client-1"}};
      if (case_id == "case-c") f.conflicted.insert("cm-1");
    } else if (case_id == "case-x") {
      f = {true, "health", "cm-2", {}, {"client-2"}};
    }
    return f;
  }
  absl::StatusOr<RecordFacts> Record(uint64_t seq) override {
    if (seq == 0) return RecordFacts{"case-h", {"client-1"}};
    if (seq == 1) return RecordFacts{"case-x", {"client-2"}};
    return absl::NotFoundError(absl::StrCat("seq: got ", seq, ", want less than 2"));
  }
};

AuthzConfig Config() {
  absl::StatusOr<AuthzConfig> c = ParseAuthzConfig(
      "# dev registrations\n"
      "producer intake housing\n"
      "audit_grant aud-1 case-h\n"
      "audit_grant aud-all *\n");
  EXPECT_TRUE(c.ok()) << c.status();
  return *c;
}

const Principal kWho[] = {
    {Role::kProducer, "intake"}, {Role::kCaseManager, "cm-1"}, {Role::kClient, "client-1"},
    {Role::kAuditor, "aud-1"},   {Role::kAdmin, "ops-1"},      {Role::kLocal, "local"},
};

v1::Event Entry(const std::string& case_id) {
  v1::Event e;
  e.set_event_id("e-1");
  e.set_stream_id(case_id);
  e.set_producer("intake");
  e.mutable_record_entry_written()->set_entry_id("n-1");
  return e;
}

v1::Event Disposal(const std::string& case_id) {
  v1::Event e = Entry(case_id);
  e.mutable_records_disposed()->set_method("crypto-shredding");
  return e;
}

// What a role may do with a method, checked with a request it should be
// allowed ("good") and one it should not ("bad"):
//   allow  - both allowed;  deny - both refused;
//   cond   - good allowed, bad refused;
//   commit - both allowed; bad gets commitments only, good the payloads;
//   commit_all - both allowed, commitments only.
// Written out by hand, not derived from the table, so that a change to the
// table without a change here fails.
struct Row {
  std::string method;
  std::string expect[6];  // producer, case_manager, client, auditor, admin, local
};

const char kL[] = "/caseledger.v1.LedgerService/";
const std::vector<Row>& Matrix() {
  static const auto* rows = new std::vector<Row>{
      {absl::StrCat(kL, "Append"), {"cond", "cond", "deny", "deny", "cond", "allow"}},
      {absl::StrCat(kL, "AppendBatch"), {"cond", "cond", "deny", "deny", "cond", "allow"}},
      {absl::StrCat(kL, "AppendStream"), {"cond", "cond", "deny", "deny", "cond", "allow"}},
      {absl::StrCat(kL, "ReadStream"), {"deny", "cond", "deny", "commit", "deny", "allow"}},
      {absl::StrCat(kL, "ReadLog"), {"deny", "deny", "deny", "commit_all", "deny", "allow"}},
      {absl::StrCat(kL, "Subscribe"), {"deny", "deny", "deny", "commit_all", "deny", "allow"}},
      {absl::StrCat(kL, "GetCheckpoint"), {"allow", "allow", "allow", "allow", "allow", "allow"}},
      {absl::StrCat(kL, "ListCheckpoints"), {"allow", "allow", "allow", "allow", "allow", "allow"}},
      {absl::StrCat(kL, "GetInclusionProof"),
       {"allow", "allow", "allow", "allow", "allow", "allow"}},
      {absl::StrCat(kL, "GetConsistencyProof"),
       {"allow", "allow", "allow", "allow", "allow", "allow"}},
      {absl::StrCat(kL, "GetPublicKey"), {"allow", "allow", "allow", "allow", "allow", "allow"}},
      {"/caseledger.v1.CaseService/GetCase", {"deny", "cond", "deny", "cond", "deny", "allow"}},
      {"/caseledger.v1.CaseService/ListCases", {"deny", "cond", "deny", "deny", "deny", "allow"}},
      {"/caseledger.v1.DisclosureService/GetAccounting",
       {"deny", "deny", "deny", "deny", "deny", "allow"}},
      {"/caseledger.v1.AccessService/GetRecordHistory",
       {"deny", "deny", "cond", "deny", "deny", "allow"}},
      {"/caseledger.v1.AccessService/GetAccessReport",
       {"deny", "deny", "cond", "deny", "deny", "allow"}},
      // One record by seq: a client's own record; an auditor's granted case.
      {"/caseledger.v1.AccessService/ReadRecord",
       {"deny", "deny", "cond", "cond", "deny", "allow"}},
      {"/caseledger.v1.AuditService/VerifyRange",
       {"deny", "deny", "deny", "allow", "deny", "allow"}},
      {"/caseledger.v1.WitnessService/AddCosignature",
       {"deny", "deny", "deny", "allow", "deny", "allow"}},
      {"/caseledger.v1.WitnessService/GetCosignedCheckpoint",
       {"allow", "allow", "allow", "allow", "allow", "allow"}},
      {"/caseledger.v1.WitnessService/GetSubjectTransition",
       {"deny", "deny", "deny", "allow", "deny", "allow"}},
      {"/caseledger.v1.KeyAdminService/EraseSubject",
       {"deny", "deny", "deny", "deny", "allow", "allow"}},
      {"/caseledger.v1.KeyAdminService/RotateMasterKey",
       {"deny", "deny", "deny", "deny", "allow", "allow"}},
      {"/grpc.health.v1.Health/Check", {"allow", "allow", "allow", "allow", "allow", "allow"}},
      {"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
       {"allow", "allow", "allow", "allow", "allow", "allow"}},
      {"/caseledger.v1.Unknown/Method", {"deny", "deny", "deny", "deny", "deny", "deny"}},
  };
  return *rows;
}

// The good and bad request of `method` for `who`.
struct Requests {
  Resource good, bad;
  v1::Event good_event, bad_event;  // owned here; Resource::event points in
};

void Fill(const std::string& method, const Principal& who, Requests* r) {
  if (absl::StrContains(method, "/Append")) {
    if (who.role == Role::kAdmin) {
      r->good_event = Disposal("case-h");
      r->bad_event = Entry("case-h");  // not a disposal
    } else {
      r->good_event = Entry("case-h");
      r->bad_event = Entry("case-x");  // another program, another manager
    }
    r->good.event = &r->good_event;
    r->bad.event = &r->bad_event;
  } else if (absl::StrContains(method, "ReadLog") || absl::StrContains(method, "Subscribe")) {
    r->good.whole_log = r->bad.whole_log = true;
  } else if (absl::StrContains(method, "ReadStream") || absl::StrContains(method, "GetCase")) {
    r->good.case_id = "case-h";
    r->bad.case_id = "case-x";
  } else if (absl::StrContains(method, "ListCases")) {
    r->good.manager_id = who.id;
    r->bad.whole_log = true;  // no filter: every case
  } else if (absl::StrContains(method, "ReadRecord")) {
    // Record 0 is client-1's, in case-h (aud-1's grant); record 1 is
    // client-2's, in case-x.
    r->good.record_seq = 0;
    r->bad.record_seq = 1;
    if (who.role == Role::kClient) r->good.client_id = r->bad.client_id = who.id;
  } else if (absl::StrContains(method, "Accounting") || absl::StrContains(method, "History") ||
             absl::StrContains(method, "AccessReport")) {
    r->good.client_id = who.id;
    r->bad.client_id = "client-2";
  }
}

TEST(AuthzMatrixTest, EveryRoleTimesEveryMethod) {
  FakeDirectory directory;
  Authorizer authz(Config(), &directory);
  for (const Row& row : Matrix()) {
    for (int i = 0; i < 6; ++i) {
      const Principal& who = kWho[i];
      SCOPED_TRACE(absl::StrCat(row.method, " as ", who.ToString()));
      Requests r;
      Fill(row.method, who, &r);
      absl::StatusOr<Decision> good = authz.Check(who, row.method, r.good);
      absl::StatusOr<Decision> bad = authz.Check(who, row.method, r.bad);
      const std::string& want = row.expect[i];
      if (want == "deny") {
        EXPECT_EQ(good.status().code(), absl::StatusCode::kPermissionDenied);
        EXPECT_EQ(bad.status().code(), absl::StatusCode::kPermissionDenied);
        EXPECT_TRUE(absl::StartsWith(good.status().message(), "rule ")) << good.status();
      } else if (want == "cond") {
        ASSERT_TRUE(good.ok()) << good.status();
        EXPECT_FALSE(good->commitments_only);
        EXPECT_EQ(bad.status().code(), absl::StatusCode::kPermissionDenied);
        // The refusal names the role and the rule.
        EXPECT_TRUE(absl::StartsWith(bad.status().message(),
                                     absl::StrCat("rule ", RoleName(who.role), ".")))
            << bad.status();
      } else if (want == "allow") {
        ASSERT_TRUE(good.ok()) << good.status();
        ASSERT_TRUE(bad.ok()) << bad.status();
        EXPECT_FALSE(good->commitments_only || bad->commitments_only);
      } else if (want == "commit") {
        ASSERT_TRUE(good.ok()) << good.status();
        ASSERT_TRUE(bad.ok()) << bad.status();
        EXPECT_FALSE(good->commitments_only);
        EXPECT_TRUE(bad->commitments_only);
      } else if (want == "commit_all") {
        ASSERT_TRUE(good.ok()) << good.status();
        ASSERT_TRUE(bad.ok()) << bad.status();
        EXPECT_TRUE(good->commitments_only && bad->commitments_only);
      } else {
        FAIL() << "bad expectation " << want;
      }
    }
  }
}

// A new KeyAdminService RPC fails here until the matrix names it, and so
// says by hand who may call it (the service's /* row would admit it quietly).
TEST(AuthzMatrixTest, EveryKeyAdminMethodIsInTheMatrix) {
  const google::protobuf::ServiceDescriptor* service =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
          "caseledger.v1.KeyAdminService");
  ASSERT_NE(service, nullptr) << "proto/keys.proto is not linked in";
  for (int i = 0; i < service->method_count(); ++i) {
    std::string method =
        absl::StrCat("/caseledger.v1.KeyAdminService/", service->method(i)->name());
    bool found = false;
    for (const Row& row : Matrix()) found |= row.method == method;
    EXPECT_TRUE(found) << method << " has no row in the test's matrix";
  }
}

TEST(AuthzMatrixTest, EveryTableRowIsInTheMatrix) {
  for (const MethodPolicy& policy : PolicyTable()) {
    std::string m = policy.method;
    bool found = false;
    for (const Row& row : Matrix()) {
      if (row.method == m ||
          (absl::EndsWith(m, "/*") && absl::StartsWith(row.method, m.substr(0, m.size() - 1)))) {
        found = true;
      }
    }
    EXPECT_TRUE(found) << m << " has no row in the test's matrix";
  }
}

TEST(AuthzMatrixTest, TableCoversEveryMethodOfTheServices) {
  EXPECT_TRUE(CheckTableCovers({"caseledger.v1.LedgerService", "caseledger.v1.CaseService",
                                "caseledger.v1.DisclosureService", "caseledger.v1.KeyAdminService"})
                  .ok());
  absl::Status missing = CheckTableCovers({"caseledger.v1.NoSuchService"});
  EXPECT_EQ(missing.code(), absl::StatusCode::kFailedPrecondition);
}

TEST(AuthzTest, ConfidentialReadsAreRecordedExceptForLocal) {
  FakeDirectory directory;
  Authorizer authz(Config(), &directory);
  Resource r;
  r.case_id = "case-h";
  auto cm = authz.Check(kWho[1], "/caseledger.v1.LedgerService/ReadStream", r);
  ASSERT_TRUE(cm.ok());
  EXPECT_TRUE(cm->record_access);
  auto local = authz.Check(kWho[5], "/caseledger.v1.LedgerService/ReadStream", r);
  ASSERT_TRUE(local.ok());
  EXPECT_FALSE(local->record_access);
  // Commitments only are not confidential content.
  Resource other;
  other.case_id = "case-x";
  auto aud = authz.Check(kWho[3], "/caseledger.v1.LedgerService/ReadStream", other);
  ASSERT_TRUE(aud.ok());
  EXPECT_FALSE(aud->record_access);
  Resource mine;
  mine.manager_id = "cm-1";
  auto listing = authz.Check(kWho[1], "/caseledger.v1.CaseService/ListCases", mine);
  ASSERT_TRUE(listing.ok());
  EXPECT_TRUE(listing->record_access);
  auto proof = authz.Check(kWho[2], "/caseledger.v1.LedgerService/GetInclusionProof", {});
  ASSERT_TRUE(proof.ok());
  EXPECT_FALSE(proof->record_access);
}

TEST(AuthzTest, ConflictOfInterestBlocksTheAssignedManager) {
  FakeDirectory directory;
  Authorizer authz(Config(), &directory);
  Resource r;
  r.case_id = "case-c";
  auto read = authz.Check(kWho[1], "/caseledger.v1.CaseService/GetCase", r);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(read.status().message(),
            "rule case_manager.assigned_case: case_manager cm-1 has an unresolved conflict of "
            "interest in case \"case-c\"");
  v1::Event e = Entry("case-c");
  Resource append;
  append.event = &e;
  EXPECT_EQ(authz.Check(kWho[1], "/caseledger.v1.LedgerService/Append", append).status().code(),
            absl::StatusCode::kPermissionDenied);
}

TEST(AuthzTest, RefusalsNameTheRuleAndTheFacts) {
  FakeDirectory directory;
  Authorizer authz(Config(), &directory);
  Resource r;
  r.case_id = "case-x";
  EXPECT_EQ(authz.Check(kWho[1], "/caseledger.v1.LedgerService/ReadStream", r).status().message(),
            "rule case_manager.assigned_case: case \"case-x\" is assigned to \"cm-2\", not to "
            "case_manager cm-1");
  EXPECT_EQ(authz.Check(kWho[0], "/caseledger.v1.LedgerService/ReadLog", {}).status().message(),
            "rule producer.deny: /caseledger.v1.LedgerService/ReadLog is not allowed for producer "
            "intake");
  EXPECT_EQ(authz.Check(kWho[1], "/x.Y/Z", {}).status().message(),
            "rule no_rule: /x.Y/Z has no row in the policy table");
}

TEST(AuthzTest, ProducerAppendRules) {
  FakeDirectory directory;
  Authorizer authz(Config(), &directory);
  const std::string m = "/caseledger.v1.LedgerService/Append";
  auto check = [&](const v1::Event& e, const std::string& opened = "") {
    Resource r;
    r.event = &e;
    r.opened_program = opened;
    return authz.Check(kWho[0], m, r).status();
  };
  v1::Event open = Entry("case-new");
  open.mutable_case_opened()->set_program("housing");
  EXPECT_TRUE(check(open).ok());
  open.mutable_case_opened()->set_program("health");
  EXPECT_EQ(check(open).message(),
            "rule producer.own_program: producer \"intake\" is not registered for program "
            "\"health\"");
  // An entry in a case the directory does not know yet, opened earlier in
  // the same batch.
  EXPECT_EQ(check(Entry("case-new")).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(check(Entry("case-new"), "housing").ok());
  v1::Event forged = Entry("case-h");
  forged.set_producer("someone-else");
  EXPECT_EQ(check(forged).message(),
            "rule producer.own_program: event.producer: got \"someone-else\", want \"intake\" "
            "(the certificate's id)");
  v1::Event reserved = Entry("@access");
  EXPECT_EQ(check(reserved).message(),
            "rule producer.own_program: stream \"@access\" is reserved for the server");
  v1::Event transfer = Entry("case-h");
  transfer.mutable_case_transferred()->set_to_program("health");
  EXPECT_EQ(check(transfer).code(), absl::StatusCode::kPermissionDenied);
}

TEST(AuthzTest, AuditGrantForAllCasesGivesPayloads) {
  FakeDirectory directory;
  Authorizer authz(Config(), &directory);
  Resource r;
  r.whole_log = true;
  auto d = authz.Check({Role::kAuditor, "aud-all"}, "/caseledger.v1.LedgerService/ReadLog", r);
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(d->commitments_only);
  EXPECT_TRUE(d->record_access);
  Resource client;
  client.client_id = "client-9";
  EXPECT_TRUE(authz
                  .Check({Role::kAuditor, "aud-all"},
                         "/caseledger.v1.DisclosureService/GetAccounting", client)
                  .ok());
}

// AccessService.ReadRecord is decided on the record, and a refusal says
// nothing about it: not its case, not whom it names, not whether it exists.
TEST(AuthzTest, ARecordReadIsDecidedOnTheRecord) {
  FakeDirectory directory;
  Authorizer authz(Config(), &directory);
  const std::string m = "/caseledger.v1.AccessService/ReadRecord";
  auto read = [&](const Principal& who, const std::string& subject, uint64_t seq) {
    Resource r;
    r.client_id = subject;
    r.record_seq = seq;
    return authz.Check(who, m, r).status();
  };
  const Principal client{Role::kClient, "client-1"};
  EXPECT_TRUE(read(client, "client-1", 0).ok());
  // Their own id, another's record; and a record that does not exist.
  EXPECT_EQ(read(client, "client-1", 1).message(),
            "rule client.own_subject: record 1 is not one of \"client-1\"'s records");
  EXPECT_EQ(read(client, "client-1", 7).message(),
            "rule client.own_subject: record 7 is not one of \"client-1\"'s records");
  // Another's id, even for a record that names them.
  EXPECT_EQ(read(client, "client-2", 1).message(),
            "rule client.own_subject: client_id: got \"client-2\", want your own id "
            "\"client-1\"");
  // No subject at all.
  EXPECT_EQ(read(client, "", 0).code(), absl::StatusCode::kPermissionDenied);

  // An auditor: a grant for the record's case, named or not by the request.
  const Principal auditor{Role::kAuditor, "aud-1"};
  EXPECT_TRUE(read(auditor, "", 0).ok());
  EXPECT_TRUE(read(auditor, "client-1", 0).ok());
  EXPECT_EQ(read(auditor, "", 1).message(),
            "rule auditor.audit_grant: auditor aud-1 has no audit grant for the case of record 1");
  EXPECT_EQ(read(auditor, "", 9).message(),
            "rule auditor.audit_grant: auditor aud-1 has no audit grant for the case of record 9");
  EXPECT_TRUE(read({Role::kAuditor, "aud-all"}, "", 1).ok());
  // Case managers read records through LedgerService, as before.
  EXPECT_EQ(read({Role::kCaseManager, "cm-1"}, "client-1", 0).code(),
            absl::StatusCode::kPermissionDenied);
}

// The server's own events are dated by the time they are given (the ledger's
// clock), never by a clock of their own, to the microsecond.
TEST(ServerEventsTest, AreDatedByTheGivenTime) {
  const absl::Time t = absl::FromUnixMicros(1767225600123456);
  const Principal who{Role::kAdmin, "ops-1"};
  Resource r;
  r.case_id = "case-h";
  for (const v1::Event& e :
       {RecordAccessEvent(who, "/m", r, "case-h", {"client-1"}, t),
        AccessRefusedEvent(who, "/m", r, absl::PermissionDeniedError("no"), {"client-1"}, t),
        SubjectErasedEvent(who, "client-1", "gdpr-art17", t),
        MasterKeyRotatedEvent(who, "k1", "k2", 3, t)}) {
    EXPECT_EQ(e.occurred_at().seconds(), 1767225600) << e.DebugString();
    EXPECT_EQ(e.occurred_at().nanos(), 123456000) << e.DebugString();
    EXPECT_EQ(e.producer(), kServerProducer);
  }
}

TEST(PrincipalTest, FromUris) {
  auto p = PrincipalFromUris({"https://example.org/x", "caseledger://case_manager/cm-1"});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->role, Role::kCaseManager);
  EXPECT_EQ(p->id, "cm-1");
  EXPECT_EQ(PrincipalFromUris({}).status().message(),
            "client certificate: no URI SAN caseledger://ROLE/ID names the caller");
  EXPECT_EQ(PrincipalFromUris({"caseledger://local/me"}).status().message(),
            "client certificate: role \"local\", want producer, case_manager, client, auditor "
            "or admin");
  EXPECT_EQ(PrincipalFromUris({"caseledger://client/a", "caseledger://client/b"}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PrincipalFromUris({"caseledger://client/a/b"}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PrincipalFromUris({"caseledger://client/a b"}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(PrincipalTest, PlaintextIsLocalOnlyWithInsecureLoopback) {
  auto local = PrincipalOf(nullptr, true);
  ASSERT_TRUE(local.ok());
  EXPECT_EQ(local->role, Role::kLocal);
  EXPECT_EQ(PrincipalOf(nullptr, false).status().code(), absl::StatusCode::kUnauthenticated);
}

// Golden vector for the config format (AUTHZ.md).
TEST(AuthzConfigTest, Golden) {
  absl::StatusOr<AuthzConfig> c = ParseAuthzConfig(
      "producer intake-svc housing behavioral-health   # two programs\n"
      "\n"
      "producer intake-svc reentry\n"
      "audit_grant aud-7 case-1 case-2\n"
      "audit_grant aud-8 *\n");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->producer_programs,
            (std::map<std::string, std::set<std::string>>{
                {"intake-svc", {"behavioral-health", "housing", "reentry"}}}));
  EXPECT_EQ(c->audit_grants, (std::map<std::string, std::set<std::string>>{
                                 {"aud-7", {"case-1", "case-2"}}, {"aud-8", {"*"}}}));
  EXPECT_EQ(ParseAuthzConfig("producer p\n").status().message(),
            "authz config line 1: got \"producer p\", want producer ID PROGRAM... or "
            "audit_grant ID CASE...|*");
  EXPECT_EQ(ParseAuthzConfig("\nwriter p x\n").status().message(),
            "authz config line 2: got \"writer\", want producer or audit_grant");
  EXPECT_EQ(ParseAuthzConfig("producer p *\n").status().message(),
            "authz config line 1: a producer is registered for named programs, not *");
}

}  // namespace
}  // namespace caseledger
