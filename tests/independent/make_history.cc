// Writes the history bundles (services/history/HISTORY_BUNDLE.md) that
// verify_history_test checks with both verifiers:
//   make_history OUTDIR
// Built in-process with the server's own code (test ledgers, CaseGate,
// AccessServiceImpl, KeyAdminServiceImpl); the test only reads the files.
//
//   golden.pb          the golden bundle, from the inputs HISTORY_BUNDLE.md states
//   story-0.pb         client-0 of a 3-case story (disclosures, protected fields,
//                      an imminent-harm disclosure), since_size = the size in early.note
//   story-0-full.pb    the same records in the full view (protected fields revealed):
//                      the source of a "revealed protected field" mutation
//   story-1.pb         client-1's bundle from the same ledger
//   early.note         an earlier checkpoint note of the story ledger
//   old-0.pb           client-0's bundle at that earlier checkpoint
//   late.note          the story ledger's latest note (newer than old-0.pb's)
//   enc-<c>.pb         an encrypted ledger's bundles of client-0..3 after: a record
//                      naming client-0 and client-1, client-1 erased (subject_erased
//                      recorded), case-2 disposed of, client-3 erased offline
//   susp.pb            client-0 of case-0's story and a suspension of accounting by
//                      County Court (agency of its required-by-law disclosure d-0-2),
//                      produced while it lasts: reason 6 on both records
//   susp-after.pb      the same history produced after the suspension ended
//   blind-0.pb         record format 2: client-0's bundle (a note also names client-1)
//   blind-0-after.pb   the same after client-1's erasure
//   blind-1-after.pb   client-1's bundle after its erasure (no records: unlinked)
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ledger/crypto.h"
#include "services/api/access_service.h"
#include "services/authz/authz_verdict.h"
#include "services/append/case_gate.h"
#include "services/readmodel/case_story.h"
#include "services/append/event_codec.h"
#include "services/api/key_admin_service.h"
#include "tests/history_golden.h"
#include "tests/test_util.h"

namespace caseledger {
namespace {

#define CHECK_OK(expr)                                                              \
  do {                                                                              \
    absl::Status _s = (expr);                                                       \
    if (!_s.ok()) {                                                                 \
      std::fprintf(stderr, "make_history: %s: %s\n", #expr, _s.ToString().c_str()); \
      std::exit(1);                                                                 \
    }                                                                               \
  } while (0)

template <typename T>
T Must(absl::StatusOr<T> v, const char* what) {
  if (!v.ok()) {
    std::fprintf(stderr, "make_history: %s: %s\n", what, v.status().ToString().c_str());
    std::exit(1);
  }
  return *std::move(v);
}

void Write(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out.good()) {
    std::fprintf(stderr, "make_history: cannot write %s\n", path.c_str());
    std::exit(1);
  }
}

absl::Status Gated(CaseGate& gate, const v1::Event& e) {
  absl::StatusOr<Event> le = ToLedgerEvent(e);
  if (!le.ok()) return le.status();
  std::vector<GatedEvent> one;
  one.push_back(GatedEvent{e, {*std::move(le), std::nullopt}});
  return gate.Append(std::move(one)).status();
}

// Straight into the ledger, past the case policy (a record naming two clients).
absl::Status Direct(Ledger& ledger, const v1::Event& e) {
  absl::StatusOr<Event> le = ToLedgerEvent(e);
  if (!le.ok()) return le.status();
  return ledger.Append({*std::move(le), std::nullopt}).status();
}

v1::HistoryBundle History(AccessServiceImpl& s, const std::string& subject, uint64_t since,
                          bool current = true) {
  v1::GetRecordHistoryRequest req;
  req.set_subject_id(subject);
  req.mutable_accessor()->set_accessor_id(subject);
  req.mutable_accessor()->set_role("client");
  req.mutable_accessor()->set_purpose("right of access");
  req.set_current(current);
  req.set_since_size(since);
  return Must(s.GetRecordHistory(req), "GetRecordHistory");
}

void Golden(const std::string& dir) {
  v1::HistoryBundle b =
      Must(testing::GoldenHistoryBundle(testing::NewTempDir("golden")), "golden");
  Write(dir + "/golden.pb", b.SerializeAsString());
}

void Story(const std::string& dir) {
  LedgerOptions options;
  options.checkpoint_interval = absl::Hours(1);  // checkpoints only when asked
  auto t = Must(testing::OpenTestLedger(testing::NewTempDir("story"), options), "open story");
  CaseGate gate(t.ledger.get());
  AccessServiceImpl access(t.ledger.get(), &gate);
  for (int v = 0; v < 10; ++v) {
    for (int c = 0; c < 3; ++c) CHECK_OK(Gated(gate, testing::Story(c, v)));
  }
  StoredCheckpoint early = Must(t->Checkpoint(), "early checkpoint");
  Write(dir + "/early.note", early.note);
  Write(dir + "/old-0.pb", History(access, "client-0", 0, false).SerializeAsString());
  for (int v = 10; v < testing::kStoryLength; ++v) {
    for (int c = 0; c < 3; ++c) CHECK_OK(Gated(gate, testing::Story(c, v)));
  }
  // A disclosure to prevent imminent harm: its person_at_risk is protected;
  // the client is told of it later by a client_informed event.
  v1::Event harm = testing::Story(0, testing::kStoryLength - 1);
  harm.set_event_id("case-0-harm");
  harm.clear_body();
  {
    auto* d = harm.mutable_disclosure_made();
    d->set_disclosure_id("d-0-harm");
    d->set_client_id("client-0");
    d->mutable_recipient()->set_recipient_id("police-1");
    d->mutable_recipient()->set_name("City Police");
    d->mutable_recipient()->set_address("100 Station Rd");
    d->set_purpose("prevent serious harm");
    d->add_data_categories("contact");
    d->set_description("address and threat summary");
    d->set_legal_basis(v1::LEGAL_BASIS_IMMINENT_HARM);
    d->set_justification("credible threat against a named person");
    d->set_person_at_risk("R. Roe, neighbour");
    d->set_disclosed_by("cm-0");
    d->set_minimum_necessary("address only");
  }
  absl::Status harm_ok = Gated(gate, harm);
  if (!harm_ok.ok()) std::fprintf(stderr, "make_history: (harm disclosure skipped: %s)\n",
                                  harm_ok.ToString().c_str());
  v1::Event told = testing::Story(0, testing::kStoryLength - 1);
  told.set_event_id("case-0-told-2");
  told.clear_body();
  told.mutable_client_informed()->set_disclosure_id("d-0-2");
  told.mutable_client_informed()->set_method("phone call");
  CHECK_OK(Gated(gate, told));
  v1::HistoryBundle b0 = History(access, "client-0", early.size);
  Write(dir + "/story-0.pb", b0.SerializeAsString());
  Write(dir + "/story-1.pb", History(access, "client-1", 0).SerializeAsString());
  // The same records in the full view.
  v1::HistoryBundle full = b0;
  for (v1::HistoryRecord& r : *full.mutable_records()) {
    RecordView view = Must(t->Read(r.seq()), "Read");
    v1::HistoryRecord shown;
    CHECK_OK(RevealPayload(view, true, nullptr, &shown));
    *r.mutable_revealed() = shown.revealed();
    *r.mutable_withheld() = shown.withheld();
  }
  Write(dir + "/story-0-full.pb", full.SerializeAsString());
  // One more checkpoint after the bundles: newer than old-0.pb's.
  StoredCheckpoint late = Must(t->Checkpoint(), "late checkpoint");
  Write(dir + "/late.note", late.note);
}

void Encrypted(const std::string& dir) {
  AeadKey master = Must(
      AeadKey::FromHex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"),
      "master key");
  LedgerOptions options;
  options.checkpoint_interval = absl::Hours(1);
  auto t = Must(testing::OpenEncryptedTestLedger(testing::NewTempDir("enc"), master,
                                                 {"records_disposed", "subject_erased"}, options),
                "open encrypted");
  CaseGate gate(t.ledger.get());
  for (int v = 0; v < testing::kStoryLength; ++v) {
    for (int c = 0; c < 4; ++c) CHECK_OK(Gated(gate, testing::Story(c, v)));
  }
  // A note about both client-0 and client-1, in case-0.
  v1::Event both = testing::Story(0, 4);
  both.set_event_id("case-0-both");
  both.add_subject_ids("client-1");
  *both.mutable_occurred_at() = testing::Story(0, testing::kStoryLength - 1).occurred_at();
  CHECK_OK(Direct(*t.ledger, both));
  // Case 2 (closed) is disposed of.
  v1::Event disposed = testing::Story(2, testing::kStoryLength - 1);
  disposed.set_event_id("case-2-disposed");
  disposed.clear_body();
  disposed.mutable_records_disposed()->set_method("crypto-shredding");
  disposed.mutable_records_disposed()->set_authority("retention rule R-7");
  absl::Status d = Gated(gate, disposed);
  if (!d.ok()) {
    std::fprintf(stderr, "make_history: (gate refused the disposal: %s; appending directly)\n",
                 d.ToString().c_str());
    CHECK_OK(Direct(*t.ledger, disposed));
  }
  // client-1 erased through the admin service (recorded), client-3 offline (not).
  CaseGate admin_gate(t.ledger.get());
  KeyAdminServiceImpl admin(t.keys.get(), &admin_gate, nullptr);
  grpc::ServerContext ctx;
  internal::VerdictSlot admitted(&ctx);  // what the AuthzInterceptor decides
  Admitted admin_caller;
  admin_caller.caller.role = Role::kAdmin;
  admin_caller.caller.id = "ops-1";
  admitted.Decide(admin_caller);
  v1::EraseSubjectRequest req;
  req.set_subject_id("client-1");
  req.set_authority("GDPR Art. 17 request 42");
  v1::EraseSubjectResponse resp;
  grpc::Status erased = admin.EraseSubject(&ctx, &req, &resp);
  if (!erased.ok()) {
    std::fprintf(stderr, "make_history: EraseSubject: %s\n", erased.error_message().c_str());
    std::exit(1);
  }
  Must(t.keys->EraseSubject("client-3"), "offline erasure");
  // A fresh gate: the first one never saw the records appended past it.
  CaseGate fresh(t.ledger.get());
  AccessServiceImpl access(t.ledger.get(), &fresh);
  for (int c = 0; c < 4; ++c) {
    std::string id = absl::StrCat("client-", c);
    Write(absl::StrCat(dir, "/enc-", c, ".pb"), History(access, id, 0).SerializeAsString());
  }
}

// 45 CFR 164.528(a)(2): a suspension dated now (commit times are the real
// clock's), in force for 90 days.
void Suspended(const std::string& dir) {
  LedgerOptions options;
  options.checkpoint_interval = absl::Hours(1);
  auto t = Must(testing::OpenTestLedger(testing::NewTempDir("susp"), options), "open susp");
  CaseGate gate(t.ledger.get());
  for (int v = 0; v < testing::kStoryLength; ++v) CHECK_OK(Gated(gate, testing::Story(0, v)));
  const int64_t now = absl::ToUnixSeconds(absl::Now());
  v1::Event e = testing::Story(0, testing::kStoryLength - 1);
  e.set_event_id("case-0-suspended");
  e.clear_body();
  e.mutable_occurred_at()->set_seconds(now);
  auto* s = e.mutable_accounting_suspended();
  s->set_suspension_id("s-1");
  s->set_client_id("client-0");
  s->set_agency_id("court-7");
  s->set_agency_name("County Court");
  s->set_form(v1::SUSPENSION_FORM_WRITTEN);
  s->set_statement("sealed order 99");
  s->set_agency_kind(v1::SUSPENDING_AGENCY_LAW_ENFORCEMENT);
  s->mutable_ends_at()->set_seconds(now + 90 * 86400);
  CHECK_OK(Gated(gate, e));
  Must(t->Checkpoint(), "susp checkpoint");
  Write(dir + "/susp.pb",
        Must(BuildHistoryBundle(*t.ledger, "client-0", 0, absl::FromUnixSeconds(now + 10 * 86400)),
             "susp bundle")
            .SerializeAsString());
  Write(dir + "/susp-after.pb",
        Must(BuildHistoryBundle(*t.ledger, "client-0", 0, absl::FromUnixSeconds(now + 91 * 86400)),
             "susp-after bundle")
            .SerializeAsString());
}

// Record format 2 (ledger/BLINDING.md): a blinded, encrypted ledger of
// clients 0 and 1 with a note naming both; client-0's bundle, then client-1
// erased and both bundles again.
void Blinded(const std::string& dir) {
  AeadKey master = Must(
      AeadKey::FromHex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"),
      "master key");
  LedgerOptions options;
  options.checkpoint_interval = absl::Hours(1);
  auto t = Must(testing::OpenBlindedTestLedger(testing::NewTempDir("blind"), master, options),
                "open blinded");
  CaseGate gate(t.ledger.get());
  for (int v = 0; v < testing::kStoryLength; ++v) {
    for (int c = 0; c < 2; ++c) CHECK_OK(Gated(gate, testing::Story(c, v)));
  }
  v1::Event both = testing::Story(0, 4);
  both.set_event_id("case-0-both");
  both.add_subject_ids("client-1");
  *both.mutable_occurred_at() = testing::Story(0, testing::kStoryLength - 1).occurred_at();
  CHECK_OK(Direct(*t.ledger, both));
  // A fresh gate: the first one never saw the record appended past it.
  CaseGate read_gate(t.ledger.get());
  AccessServiceImpl access(t.ledger.get(), &read_gate);
  Write(dir + "/blind-0.pb", History(access, "client-0", 0).SerializeAsString());
  Must(t.keys->EraseSubject("client-1"), "erase client-1");
  CaseGate fresh(t.ledger.get());
  AccessServiceImpl after(t.ledger.get(), &fresh);
  Write(dir + "/blind-0-after.pb", History(after, "client-0", 0).SerializeAsString());
  Write(dir + "/blind-1-after.pb", History(after, "client-1", 0).SerializeAsString());
}

}  // namespace
}  // namespace caseledger

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_history OUTDIR\n");
    return 2;
  }
  std::string dir = argv[1];
  caseledger::Golden(dir);
  caseledger::Story(dir);
  caseledger::Encrypted(dir);
  caseledger::Suspended(dir);
  caseledger::Blinded(dir);
  return 0;
}
