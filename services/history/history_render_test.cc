#include "services/history/history_render.h"

#include <gtest/gtest.h>

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "google/protobuf/descriptor.h"
#include "ledger/record.h"
#include "proto/events.pb.h"
#include "services/readmodel/accounting.h"
#include "services/append/event_codec.h"
#include "services/history/history_bundle.h"
#include "services/history/history_messages.h"

namespace caseledger {
namespace {

// Protected details in the source events: they must never reach the page.
constexpr char kSecretName[] = "Zelda Quixote-Marlowe";
constexpr char kSecretMention[] = "neighbour Ophelia Vantablack";
constexpr char kErasedText[] = "ERASED-NOTE-xyzzy";

constexpr char kClient[] = "client-7";

int64_t Micros(int y, int mo, int d, int h, int mi) {
  return absl::ToUnixMicros(
      absl::FromCivil(absl::CivilMinute(y, mo, d, h, mi), absl::UTCTimeZone()));
}

v1::Event Base(const std::string& id, const std::string& stream, int64_t micros) {
  v1::Event e;
  e.set_event_id(id);
  e.set_stream_id(stream);
  e.add_subject_ids(kClient);
  e.set_producer("intake-service");
  e.mutable_occurred_at()->set_seconds(micros / 1000000);
  return e;
}

// A record as VerifyHistoryBundle gives it: the fields of the event's
// committed payload (event_codec), protected ones withheld unless
// `reveal_protected`; every field withheld with `gone` when given.
VerifiedRecord Verified(uint64_t seq, const v1::Event& e, bool reveal_protected = false,
                        std::optional<WithheldField> gone = std::nullopt) {
  absl::StatusOr<Event> le = ToLedgerEvent(e);
  EXPECT_TRUE(le.ok()) << le.status() << " for " << e.event_id();
  VerifiedRecord r;
  r.record.seq = seq;
  r.record.stream_id = e.stream_id();
  r.record.event_id = e.event_id();
  r.record.producer = e.producer();
  r.record.event_type = le.ok() ? le->event_type : "";
  r.record.occurred_at_micros = le.ok() ? le->occurred_at_micros : 0;
  r.record.commit_time_micros = r.record.occurred_at_micros + 1;
  r.record.subject_ids = {e.subject_ids().begin(), e.subject_ids().end()};
  if (!le.ok()) return r;
  for (const PayloadField& f : le->fields) {
    if (gone.has_value()) {
      r.withheld.push_back({f.name, gone->reason, gone->by_seq});
    } else if ((f.flags & kFieldProtected) && !reveal_protected) {
      r.withheld.push_back({f.name, WithheldReason::kProtectedDetail, 0});
    } else {
      r.revealed.emplace_back(f.name, f.value);
    }
  }
  return r;
}

// client-7's history: a case, a manager, a third party, a consent, two
// disclosures (under the consent; required by law), a note naming another
// person, a note later erased, a read of the record, and the erasure.
HistoryVerification Story(bool reveal_protected = false) {
  HistoryVerification h;
  h.subject_id = kClient;
  h.checkpoint.origin = "ledger.example.org/log";
  h.checkpoint.size = 420;
  h.checkpoint.root.fill(0xab);
  h.produced_at = absl::FromUnixMicros(Micros(2026, 12, 2, 14, 5));
  h.checks = {"checkpoint signature OK (origin ledger.example.org/log)",
              "completeness OK: 10 records, subject chain head matches"};
  h.cosigned_by = {"witness-north", "witness-south"};

  v1::Event opened = Base("e1", "case-1", Micros(2026, 10, 1, 9, 0));
  opened.mutable_case_opened()->set_program("housing support");
  opened.mutable_case_opened()->set_jurisdiction("US-CA");
  opened.mutable_case_opened()->set_record_class(v1::RECORD_CLASS_BEHAVIORAL_HEALTH);

  v1::Event manager = Base("e2", "case-1", Micros(2026, 10, 1, 9, 30));
  manager.mutable_case_manager_assigned()->set_manager_id("cm-3");
  manager.mutable_case_manager_assigned()->set_reason("intake");

  v1::Event third = Base("e3", "case-1", Micros(2026, 10, 2, 11, 0));
  third.mutable_participant_added()->set_participant_id("p-44");
  third.mutable_participant_added()->set_role(v1::PARTICIPANT_ROLE_THIRD_PARTY);
  third.mutable_participant_added()->set_display_name(kSecretName);

  v1::Event consent = Base("e4", "case-1", Micros(2026, 11, 1, 10, 0));
  auto* g = consent.mutable_consent_granted();
  g->set_consent_id("consent-9");
  g->set_client_id(kClient);
  g->set_grantor_kind(v1::GRANTOR_KIND_CLIENT);
  g->set_grantor_id(kClient);
  g->add_recipients("Eastside Clinic");
  g->add_purposes("treatment");
  g->add_data_categories("housing_status");
  g->mutable_starts_at()->set_seconds(Micros(2026, 11, 1, 0, 0) / 1000000);
  g->mutable_expires_at()->set_seconds(Micros(2027, 11, 1, 0, 0) / 1000000);
  g->set_revocable(true);
  {
    // What the client was told (services/policy/RULES.md I1-I2).
    v1::InformedConsent* i = g->mutable_informed();
    i->set_told_right_to_revoke(true);
    i->set_told_consequences_of_refusing(true);
    i->set_told_redisclosure_risk(true);
    i->set_told_limits_of_confidentiality(true);
    i->set_language("en");
    i->set_comprehension_aid(v1::COMPREHENSION_AID_PLAIN_LANGUAGE);
    i->set_capacity(v1::CONSENT_CAPACITY_CLIENT_CAPABLE);
  }

  v1::Event shared = Base("e5", "case-1", Micros(2026, 12, 2, 14, 5));
  auto* d = shared.mutable_disclosure_made();
  d->set_disclosure_id("d-1");
  d->set_client_id(kClient);
  d->mutable_recipient()->set_recipient_id("clinic-1");
  d->mutable_recipient()->set_name("Eastside Clinic");
  d->mutable_recipient()->set_address("1 Main St, Oakland CA");
  d->set_purpose("treatment");
  d->add_data_categories("housing_status");
  d->set_description("your housing status");
  d->set_legal_basis(v1::LEGAL_BASIS_CONSENT);
  d->set_consent_id("consent-9");
  d->set_disclosed_by("cm-3");
  d->set_client_informed(true);
  d->mutable_client_informed_at()->set_seconds(Micros(2026, 12, 2, 15, 0) / 1000000);
  d->set_minimum_necessary("status only, no notes");

  v1::Event court = Base("e6", "case-1", Micros(2026, 12, 3, 9, 0));
  auto* c = court.mutable_disclosure_made();
  c->set_disclosure_id("d-2");
  c->set_client_id(kClient);
  c->mutable_recipient()->set_recipient_id("court-7");
  c->mutable_recipient()->set_name("County Court");
  c->set_purpose("subpoena");
  c->add_data_categories("attendance");
  c->set_description("attendance dates");
  c->set_legal_basis(v1::LEGAL_BASIS_REQUIRED_BY_LAW);
  c->set_legal_citation("Cal. Evid. Code 1560");
  c->set_disclosed_by("cm-3");

  v1::Event note = Base("e7", "case-1", Micros(2026, 12, 4, 16, 20));
  auto* w = note.mutable_record_entry_written();
  w->set_entry_id("entry-1");
  w->set_data_category("housing");
  w->set_text("Visited the flat; heating repaired.");
  w->add_third_party_mentions(kSecretMention);
  w->set_author_id("cm-3");

  v1::Event erased_note = Base("e8", "case-1", Micros(2026, 12, 5, 8, 0));
  erased_note.mutable_record_entry_written()->set_entry_id("entry-2");
  erased_note.mutable_record_entry_written()->set_text(kErasedText);

  v1::Event read = Base("e9", "@access", Micros(2026, 12, 6, 12, 0));
  auto* a = read.mutable_record_accessed();
  a->set_accessor_id("cm-3");
  a->set_accessor_role("case_manager");
  a->add_seqs(10);
  a->add_seqs(14);
  a->add_seqs(16);
  a->set_purpose("care planning");

  v1::Event erasure = Base("e10", "@keys", Micros(2026, 12, 7, 10, 0));
  erasure.set_producer("caseledger");
  erasure.mutable_subject_erased()->set_erased_by("admin/ops-1");
  erasure.mutable_subject_erased()->set_authority("GDPR Art. 17 request R-5");
  erasure.mutable_subject_erased()->set_method("crypto-shredding of the subject's data keys");

  h.records.push_back(Verified(10, opened));
  h.records.push_back(Verified(11, manager));
  h.records.push_back(Verified(12, third, reveal_protected));
  h.records.push_back(Verified(13, consent));
  h.records.push_back(Verified(14, shared));
  h.records.push_back(Verified(15, court));
  h.records.push_back(Verified(16, note, reveal_protected));
  h.records.push_back(
      Verified(17, erased_note, false, WithheldField{"", WithheldReason::kErased, 19}));
  h.records.push_back(Verified(18, read));
  h.records.push_back(Verified(19, erasure));
  for (const VerifiedRecord& r : h.records) {
    for (const WithheldField& f : r.withheld) {
      h.withheld_protected += f.reason == WithheldReason::kProtectedDetail ? 1 : 0;
    }
  }

  DisclosureAccounting acc;
  EXPECT_TRUE(acc.Apply(shared, 14).ok());
  EXPECT_TRUE(acc.Apply(court, 15).ok());
  h.accounting = acc.Query(kClient, absl::InfinitePast(), absl::InfiniteFuture(),
                           /*include_excluded=*/true, /*summarize=*/false,
                           /*as_of=*/absl::InfiniteFuture());
  return h;
}

std::string Html(const HistoryVerification& h, const std::string& lang = "en",
                 absl::TimeZone tz = absl::UTCTimeZone()) {
  RenderOptions o;
  o.lang = lang;
  o.time_zone = tz;
  absl::StatusOr<std::string> s = RenderHistoryHtml(h, o);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *s : "";
}

std::string RawText(const HistoryVerification& h, const std::string& lang = "en") {
  RenderOptions o;
  o.lang = lang;
  absl::StatusOr<std::string> s = RenderHistoryText(h, o);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *s : "";
}

// The text with its wrapping undone: each run of white space one space.
std::string Text(const HistoryVerification& h, const std::string& lang = "en") {
  std::string out;
  for (char ch : RawText(h, lang)) {
    bool space = ch == ' ' || ch == '\n';
    if (space && (out.empty() || out.back() == ' ')) continue;
    out += space ? ' ' : ch;
  }
  return out;
}

// Every rendering of the story, in every language and both forms.
std::vector<std::string> AllRenderings(const HistoryVerification& h) {
  std::vector<std::string> out;
  for (const std::string& lang : SupportedLanguages()) {
    out.push_back(Html(h, lang));
    out.push_back(RawText(h, lang));
  }
  return out;
}

// The {placeholders} of a text.
std::set<std::string> Placeholders(absl::string_view text) {
  std::set<std::string> out;
  for (size_t open = text.find('{'); open != absl::string_view::npos;
       open = text.find('{', open + 1)) {
    size_t close = text.find('}', open);
    if (close == absl::string_view::npos) break;
    out.insert(std::string(text.substr(open + 1, close - open - 1)));
  }
  return out;
}

// Empty if every element is closed in order; else what went wrong. Void
// elements need no end tag; the page has no comments or raw '<' in text.
std::string TagBalance(absl::string_view html) {
  static const std::set<std::string> kVoid = {"meta", "br", "hr", "img", "link", "input", "wbr"};
  std::vector<std::string> open;
  int html_elements = 0;
  for (size_t i = html.find('<'); i != absl::string_view::npos; i = html.find('<', i + 1)) {
    if (absl::StartsWith(html.substr(i), "<!DOCTYPE")) continue;
    bool end = i + 1 < html.size() && html[i + 1] == '/';
    size_t start = i + (end ? 2 : 1);
    size_t stop = start;
    while (stop < html.size() && std::isalnum(static_cast<unsigned char>(html[stop]))) ++stop;
    std::string name = absl::AsciiStrToLower(html.substr(start, stop - start));
    if (name.empty()) return absl::StrCat("bad tag at offset ", i);
    if (!end && name == "html") ++html_elements;
    if (kVoid.count(name)) continue;
    if (!end) {
      open.push_back(name);
    } else if (open.empty() || open.back() != name) {
      return absl::StrCat("</", name, "> at offset ", i, " closes <",
                          open.empty() ? "" : open.back(), ">");
    } else {
      open.pop_back();
    }
  }
  if (!open.empty()) return absl::StrCat("<", open.back(), "> never closed");
  if (html_elements != 1) return absl::StrCat(html_elements, " <html> elements");
  return "";
}

// The longest run of decimal digits.
size_t LongestDigitRun(absl::string_view s) {
  size_t best = 0, run = 0;
  for (char ch : s) {
    run = absl::ascii_isdigit(static_cast<unsigned char>(ch)) ? run + 1 : 0;
    best = std::max(best, run);
  }
  return best;
}

TEST(HistoryRenderTest, TheVerdictComesFirstInPlainWords) {
  HistoryVerification h = Story();
  std::string text = Text(h);
  EXPECT_TRUE(absl::StrContains(text,
                                "This is your complete record as of 2 December 2026, 14:05 (UTC). "
                                "Nothing in it was altered. It has 10 entries. 2 items about other "
                                "people were withheld."))
      << text;
  EXPECT_TRUE(
      absl::StrContains(text, "checked by 2 independent witnesses: witness-north, witness-south"))
      << text;
  std::string html = Html(h);
  size_t verdict = html.find("This is your complete record as of");
  ASSERT_NE(verdict, std::string::npos);
  EXPECT_LT(verdict, html.find("What happened"));
}

TEST(HistoryRenderTest, EventsAreSentences) {
  std::string text = Text(Story());
  for (const char* want : {
           "On 1 October 2026, a case was opened for you in the housing support program",
           "Kind of records: behavioral health (mental health).",
           "cm-3 became your case manager.",
           "p-44 was added to your case (role: another person involved).",
           "you gave consent to share housing status with Eastside Clinic, for treatment.",
           "On 2 December 2026, your case manager (cm-3) shared your housing status with Eastside "
           "Clinic, for treatment.",
           "This was allowed by the consent you gave on 1 November 2026.",
           "The legal reason: required by law.",
           "The law named: Cal. Evid. Code 1560.",
           "your case manager (cm-3) looked at 3 entries of your record.",
           "your data was erased at your request (GDPR Art. 17 request R-5).",
       }) {
    EXPECT_TRUE(absl::StrContains(text, want)) << "missing: " << want << "\n" << text;
  }
}

// Issue 13's client workflows: a denial names its ground and the right to a
// review; a refused correction names the client's rights, and their
// statement of disagreement travels with later sharings.
TEST(HistoryRenderTest, ClientWorkflowsAreSentences) {
  HistoryVerification h;
  h.subject_id = kClient;
  v1::Event denied = Base("w1", "case-1", Micros(2026, 11, 3, 9, 0));
  auto* d = denied.mutable_access_denied();
  d->set_request_id("ar-1");
  d->set_reason("it may put you at risk");
  d->set_ground(v1::ACCESS_DENIAL_GROUND_ENDANGERS_LIFE_OR_SAFETY);
  d->set_denied_by("dr-1");
  v1::Event reviewed = Base("w2", "case-1", Micros(2026, 11, 20, 9, 0));
  auto* rv = reviewed.mutable_access_reviewed();
  rv->set_request_id("ar-1");
  rv->set_reviewer_id("dr-2");
  rv->set_reviewer_license("CA-PSY-12");
  rv->set_outcome(v1::ACCESS_REVIEW_OUTCOME_OVERTURNED);
  v1::Event refused = Base("w3", "case-1", Micros(2026, 11, 21, 9, 0));
  refused.mutable_amendment_denied()->set_request_id("am-1");
  refused.mutable_amendment_denied()->set_basis(v1::AMENDMENT_DENIAL_BASIS_ACCURATE_AND_COMPLETE);
  refused.mutable_amendment_denied()->set_explanation("the lease shows May");
  v1::Event disagreed = Base("w4", "case-1", Micros(2026, 11, 22, 9, 0));
  disagreed.mutable_disagreement_filed()->set_request_id("am-1");
  disagreed.mutable_disagreement_filed()->set_statement("the lease was signed late");
  v1::Event hold = Base("w5", "case-1", Micros(2026, 11, 23, 9, 0));
  hold.mutable_legal_hold_placed()->set_hold_id("h-1");
  hold.mutable_legal_hold_placed()->set_scope(v1::LEGAL_HOLD_SCOPE_CLIENT);
  hold.mutable_legal_hold_placed()->set_client_id(kClient);
  hold.mutable_legal_hold_placed()->set_ground(v1::LEGAL_HOLD_GROUND_LITIGATION);
  hold.mutable_legal_hold_placed()->set_authority("notice 17");
  hold.mutable_legal_hold_placed()->set_matter(kSecretName);
  v1::Event fee = Base("w6", "case-1", Micros(2026, 11, 24, 9, 0));
  fee.mutable_accounting_requested()->set_request_id("acr-2");
  fee.mutable_accounting_requested()->set_client_id(kClient);
  fee.mutable_accounting_requested()->set_requested_by(kClient);
  fee.mutable_accounting_requested()->set_fee_notice("$20");
  uint64_t seq = 1;
  for (const v1::Event* e : {&denied, &reviewed, &refused, &disagreed, &hold, &fee}) {
    h.records.push_back(Verified(seq++, *e));
  }
  std::string text = Text(h);
  for (const char* want : {
           "On 3 November 2026, a request to see your records was refused.",
           "The legal ground: a health professional judged it could put your life or safety, or "
           "someone else's, at risk.",
           "You have the right to have this decision reviewed by a licensed health professional "
           "who did not take part in it. Their decision is final.",
           "a licensed reviewer (dr-2) who did not take part in the refusal looked at it again "
           "and reversed it. You must now be given your records.",
           "your request to correct your record was refused: the record is accurate and "
           "complete.",
           "You can write a statement saying why you disagree.",
           "your statement of disagreement was added to your record.",
           "Your statement: the lease was signed late.",
           "your records were put on legal hold (a court case).",
           "you were told of a fee before it was made: $20.",
       }) {
    EXPECT_TRUE(absl::StrContains(text, want)) << "missing: " << want << "\n" << text;
  }
  EXPECT_FALSE(absl::StrContains(text, kSecretName)) << text;  // the hold's matter
  std::string es = Text(h, "es");
  EXPECT_TRUE(absl::StrContains(es, "Tiene derecho a que revise esta decisión")) << es;
}

TEST(HistoryRenderTest, WithheldFieldsAreExplainedNeverPrinted) {
  HistoryVerification h = Story();
  for (const std::string& page : AllRenderings(h)) {
    EXPECT_FALSE(absl::StrContains(page, kSecretName));
    EXPECT_FALSE(absl::StrContains(page, kSecretMention));
    EXPECT_FALSE(absl::StrContains(page, kErasedText));
    EXPECT_FALSE(absl::StrContains(page, "display_name"));
    EXPECT_FALSE(absl::StrContains(page, "third_party_mentions"));
  }
  std::string text = Text(h);
  EXPECT_TRUE(absl::StrContains(
      text, "Some details about another person were withheld to protect their privacy."));
  EXPECT_TRUE(absl::StrContains(
      text, "This entry was erased on 7 December 2026 at your request (GDPR Art. 17 request R-5)."))
      << text;
  // The control: had the same fields been revealed, the page would show them.
  HistoryVerification revealed = Story(/*reveal_protected=*/true);
  std::string shown = Text(revealed) + Html(revealed);
  EXPECT_TRUE(absl::StrContains(shown, kSecretName));
  EXPECT_TRUE(absl::StrContains(shown, kSecretMention));
}

TEST(HistoryRenderTest, DisposedAndErasedWithOtherAreExplained) {
  HistoryVerification h = Story();
  v1::Event disposed = Base("e11", "case-1", Micros(2026, 12, 8, 9, 0));
  disposed.mutable_records_disposed()->set_method("crypto-shredding");
  disposed.mutable_records_disposed()->set_authority("retention rule R-7y");
  h.records.push_back(Verified(20, disposed));
  h.records[1].withheld = {{"manager_id", WithheldReason::kDisposed, 20}};
  h.records[1].revealed.clear();
  h.records[5].withheld = {{"recipient", WithheldReason::kErasedWithOther, 0}};
  h.records[5].revealed.clear();
  std::string text = Text(h);
  EXPECT_TRUE(absl::StrContains(
      text, "This case's records were disposed of on 8 December 2026 under retention rule R-7y."))
      << text;
  EXPECT_TRUE(absl::StrContains(
      text, "Its content was erased because another person named in it asked for erasure."));
  EXPECT_FALSE(absl::StrContains(text, "nothing in your record proves")) << text;
}

// A reason the bundle only states is said to be unproven, in the verdict and
// beside the entry.
TEST(HistoryRenderTest, ContentGoneWithoutARecordSaysSo) {
  HistoryVerification h = Story();
  h.records[1].withheld = {{"manager_id", WithheldReason::kKeysDestroyed, 0}};
  h.records[1].revealed.clear();
  h.destroyed_stated = 1;
  for (const std::string& page : {Text(h), Html(h)}) {
    EXPECT_TRUE(absl::StrContains(page, "the organization says why, but nothing in your record "
                                        "proves it"))
        << page;
    EXPECT_TRUE(absl::StrContains(page, "nothing in your record says why")) << page;
  }
}

// 45 CFR 164.528(a)(2) (HISTORY_BUNDLE.md reason 6): while a suspension
// lasts, the page names neither the agency, nor its statement, nor what the
// withheld entry is; it says until when, and at what kind of agency's request.
TEST(HistoryRenderTest, SuspendedEntriesSayUntilWhenAndNothingElse) {
  HistoryVerification h = Story();
  v1::Event suspension = Base("e11", "case-1", Micros(2026, 12, 8, 9, 0));
  auto* s = suspension.mutable_accounting_suspended();
  s->set_suspension_id("s-1");
  s->set_client_id(kClient);
  s->set_agency_id("court-7");
  s->set_agency_name("County Court");
  s->set_form(v1::SUSPENSION_FORM_WRITTEN);
  s->set_statement("sealed order 99");
  s->set_agency_kind(v1::SUSPENDING_AGENCY_LAW_ENFORCEMENT);
  s->mutable_ends_at()->set_seconds(Micros(2027, 3, 1, 0, 0) / 1000000);
  VerifiedRecord sr = Verified(20, suspension);
  std::vector<std::pair<std::string, std::string>> shown;
  for (auto& [name, value] : sr.revealed) {
    if (name == "client_id" || name == "ends_at" || name == "agency_kind") {
      shown.emplace_back(name, value);
    } else {
      sr.withheld.push_back({name, WithheldReason::kSuspended, 20});
    }
  }
  sr.revealed = shown;
  h.records.push_back(sr);
  h.records[5].withheld.clear();
  for (const auto& [name, value] : h.records[5].revealed) {
    h.records[5].withheld.push_back({name, WithheldReason::kSuspended, 20});
  }
  h.records[5].revealed.clear();
  h.accounting.entries.erase(h.accounting.entries.begin() + 1);  // as the verifier derives it
  ASSERT_EQ(h.accounting.entries.size(), 1u);
  for (const std::string& page : AllRenderings(h)) {
    EXPECT_FALSE(absl::StrContains(page, "County Court")) << page;
    EXPECT_FALSE(absl::StrContains(page, "sealed order 99")) << page;
    EXPECT_FALSE(absl::StrContains(page, "attendance dates")) << page;
  }
  const std::string text = Text(h);
  EXPECT_TRUE(absl::StrContains(text, "An entry dated 3 December 2026 is withheld from you until "
                                      "1 March 2027 at the request of a law enforcement agency."))
      << text;
  EXPECT_TRUE(absl::StrContains(text, "An entry dated 8 December 2026 is withheld from you until "
                                      "1 March 2027"))
      << text;
  EXPECT_TRUE(absl::StrContains(text, "This entry will be shown to you after 1 March 2027"))
      << text;
  EXPECT_TRUE(absl::StrContains(text, "2 entries are withheld for now at an agency's request"))
      << text;
  EXPECT_TRUE(absl::StrContains(text, "The content of 1 entry was erased.")) << text;  // not 3
  EXPECT_TRUE(absl::StrContains(Text(h, "es"), "a petición de una autoridad policial"));
}

TEST(HistoryRenderTest, NoEnumNamesRawStampsOrFieldNames) {
  for (const std::string& page : AllRenderings(Story())) {
    for (const char* bad : {"LEGAL_BASIS_", "RECORD_CLASS_", "PARTICIPANT_ROLE_", "GRANTOR_KIND_",
                            "[[", "disclosure_made", "record_accessed", "T14:05"}) {
      EXPECT_FALSE(absl::StrContains(page, bad)) << bad;
    }
    // Unix seconds have 10 digits, micros 16; years have 4.
    EXPECT_LT(LongestDigitRun(page), 5u);
  }
}

TEST(HistoryRenderTest, DatesAreHumanInTheChosenZone) {
  absl::TimeZone la;
  ASSERT_TRUE(absl::LoadTimeZone("America/Los_Angeles", &la));
  std::string html = Html(Story(), "en", la);
  EXPECT_TRUE(absl::StrContains(html, "2 December 2026, 06:05 (America/Los Angeles)")) << html;
  EXPECT_TRUE(absl::StrContains(Html(Story(), "es"), "2 de diciembre de 2026, 14:05 (UTC)"));
}

TEST(HistoryRenderTest, SpanishIsSpanish) {
  std::string es = Text(Story(), "es");
  for (const char* want :
       {"Este es su expediente completo a fecha de 2 de diciembre de 2026, 14:05 (UTC).",
        "Nada en él fue alterado.", "Se ocultaron 2 datos sobre otras personas.",
        "Con quién se compartió su información", "Quién consultó su expediente", "Cómo se comprobó",
        "exigido por la ley",
        "Lo permitía el consentimiento que usted dio el 1 de noviembre de 2026."}) {
    EXPECT_TRUE(absl::StrContains(es, want)) << "missing: " << want << "\n" << es;
  }
  EXPECT_FALSE(absl::StrContains(es, "Nothing in it was altered"));
  EXPECT_TRUE(absl::StrContains(Html(Story(), "es"), "<html lang=\"es\">"));
}

TEST(HistoryRenderTest, TablesOfDisclosuresAndReads) {
  std::string html = Html(Story());
  EXPECT_TRUE(absl::StrContains(
      html, "<td data-label=\"To whom\">Eastside Clinic, 1 Main St, Oakland CA</td>"))
      << html;
  EXPECT_TRUE(
      absl::StrContains(html, "<td data-label=\"Were you told?\">Yes, on 2 December 2026</td>"));
  EXPECT_TRUE(absl::StrContains(
      html, "<td data-label=\"Legal reason\">Required by law (Cal. Evid. Code 1560)</td>"));
  EXPECT_TRUE(absl::StrContains(
      html, "<td data-label=\"Legal reason\">Your consent, given on 1 November 2026</td>"));
  EXPECT_TRUE(absl::StrContains(html, "<td data-label=\"Why\">Care planning</td>"));
  EXPECT_TRUE(absl::StrContains(html, "<td data-label=\"Entries read\">3</td>"));
}

TEST(HistoryRenderTest, HtmlIsStandaloneBalancedAndEscaped) {
  HistoryVerification h = Story();
  h.subject_id = "<b>client & \"7\"</b>";
  h.checks.push_back("<script>alert(1)</script>");
  std::string html = Html(h);
  EXPECT_TRUE(absl::StartsWith(html, "<!DOCTYPE html>\n<html lang=\"en\">"));
  EXPECT_FALSE(absl::StrContains(html, "<script"));
  EXPECT_FALSE(absl::StrContains(html, "<b>"));
  EXPECT_TRUE(absl::StrContains(html, "&lt;b&gt;client &amp; &quot;7&quot;&lt;/b&gt;"));
  EXPECT_TRUE(absl::StrContains(
      html, "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"));
  EXPECT_TRUE(absl::StrContains(html, "@media print"));
  EXPECT_TRUE(absl::StrContains(html, "<details>"));
  for (const char* external : {"http://", "https://", "src=", "<link", "@import", "url("}) {
    EXPECT_FALSE(absl::StrContains(html, external)) << external;
  }
  for (const std::string& lang : SupportedLanguages()) {
    EXPECT_EQ(TagBalance(Html(h, lang)), "") << lang;
  }
  // Headings in order: one h1, and no level skipped.
  int last = 0;
  for (size_t i = html.find("<h"); i != std::string::npos; i = html.find("<h", i + 1)) {
    char level = html[i + 2];
    if (level < '1' || level > '6') continue;
    EXPECT_LE(level - '0', last + 1) << html.substr(i, 40);
    last = level - '0';
  }
}

TEST(HistoryRenderTest, AnEmptyHistoryStillReads) {
  HistoryVerification h;
  h.subject_id = kClient;
  std::string text = Text(h);
  EXPECT_TRUE(absl::StrContains(text,
                                "This is your complete record. Nothing in it was altered. "
                                "There are no entries about you."))
      << text;
  EXPECT_TRUE(absl::StrContains(text, "Nothing shared in this time has to be on this list."));
  // A client who agreed to a sharing must not read "not shared with anyone": the page says
  // what the list leaves out, and where to find it.
  EXPECT_FALSE(absl::StrContains(text, "not shared with anyone"));
  EXPECT_TRUE(absl::StrContains(text, "This list leaves out what the law lets us leave out"));
  EXPECT_TRUE(absl::StrContains(text, "No one has looked at your record yet."));
  EXPECT_EQ(TagBalance(Html(h)), "");
}

// 42 CFR 2.24 (RULES.md W14): the consent's general designation, the
// written request for the list and its answer are sentences, in English and
// Spanish.
TEST(HistoryRenderTest, Part2ListIsASentence) {
  HistoryVerification h;
  h.subject_id = kClient;
  v1::Event consent = Base("p1", "case-2", Micros(2026, 10, 1, 9, 0));
  auto* c = consent.mutable_consent_granted();
  c->set_consent_id("c-hie");
  c->set_client_id(kClient);
  c->set_grantor_id(kClient);
  c->add_recipients("hie-1");
  c->set_general_designation("my treating providers");
  c->set_intermediary("Bay HIE");
  v1::Event asked = Base("p2", "case-2", Micros(2026, 11, 2, 9, 0));
  auto* r = asked.mutable_part2_list_requested();
  r->set_request_id("pl-1");
  r->set_client_id(kClient);
  r->set_requested_by(kClient);
  r->set_consent_id("c-hie");
  v1::Event given = Base("p3", "case-2", Micros(2026, 11, 20, 9, 0));
  given.mutable_part2_list_provided()->set_request_id("pl-1");
  uint64_t seq = 1;
  for (const v1::Event* e : {&consent, &asked, &given}) h.records.push_back(Verified(seq++, *e));
  const std::string text = Text(h);
  for (const char* want : {
           "It also lets Bay HIE share it with \"my treating providers\"; you can ask for the "
           "list of those it was shared with.",
           "asked in writing for the list of everyone your substance use treatment information "
           "was shared with under your consent to \"my treating providers\" through Bay HIE. It "
           "covers the 3 years before the request and is due within 30 days.",
           "On 20 November 2026, you were given the list of everyone your information was "
           "shared with under your general consent.",
       }) {
    EXPECT_TRUE(absl::StrContains(text, want)) << "missing: " << want << "\n" << text;
  }
  const std::string es = Text(h, "es");
  for (const char* want : {"a través de Bay HIE. Abarca los 3 años",
                           "bajo su consentimiento general."}) {
    EXPECT_TRUE(absl::StrContains(es, want)) << "missing: " << want << "\n" << es;
  }
}

TEST(HistoryRenderTest, EveryEventTypeHasASentence) {
  const google::protobuf::OneofDescriptor* body = v1::Event::descriptor()->FindOneofByName("body");
  ASSERT_NE(body, nullptr);
  for (int i = 0; i < body->field_count(); ++i) {
    const std::string& type = body->field(i)->name();
    HistoryVerification h;
    h.subject_id = kClient;
    VerifiedRecord r;
    r.record.seq = 1;
    r.record.stream_id = "case-1";
    r.record.event_type = type;
    r.record.occurred_at_micros = Micros(2026, 12, 2, 14, 5);
    h.records.push_back(r);
    for (const std::string& lang : SupportedLanguages()) {
      std::string text = Text(h, lang);
      EXPECT_FALSE(absl::StrContains(text, "[[")) << type << " " << lang << "\n" << text;
      EXPECT_FALSE(absl::StrContains(text, lang == "en" ? "Other entry" : "Otra entrada")) << type;
      EXPECT_FALSE(absl::StrContains(text, type)) << type << " " << lang << "\n" << text;
    }
  }
  // A type this build does not know gets the generic sentence.
  HistoryVerification h;
  VerifiedRecord r;
  r.record.event_type = "teleport_requested";
  r.record.occurred_at_micros = Micros(2026, 12, 2, 14, 5);
  h.records.push_back(r);
  EXPECT_TRUE(absl::StrContains(Text(h),
                                "an entry of a kind this program does not know was written "
                                "(teleport_requested)."));
}

TEST(HistoryRenderTest, AnUnknownLanguageNamesTheFlagAndTheLanguages) {
  RenderOptions o;
  o.lang = "fr";
  for (const absl::StatusOr<std::string>& s :
       {RenderHistoryHtml(Story(), o), RenderHistoryText(Story(), o)}) {
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(s.status().message(), "lang: got \"fr\", want one of: en, es");
  }
}

// Leaves the story's pages in the test's undeclared outputs, for a person
// (or a headless browser) to look at (outside Bazel: TEST_TMPDIR or /tmp),
// and checks each page was written whole.
TEST(HistoryRenderTest, WritesThePagesToLookAt) {
  const char* dir = std::getenv("TEST_UNDECLARED_OUTPUTS_DIR");
  if (dir == nullptr) dir = std::getenv("TEST_TMPDIR");
  if (dir == nullptr) dir = "/tmp";
  absl::TimeZone la;
  ASSERT_TRUE(absl::LoadTimeZone("America/Los_Angeles", &la));
  for (const std::string& lang : SupportedLanguages()) {
    std::ofstream(absl::StrCat(dir, "/history_", lang, ".html")) << Html(Story(), lang, la);
    std::ofstream(absl::StrCat(dir, "/history_", lang, ".txt")) << RawText(Story(), lang);
    std::ifstream back(absl::StrCat(dir, "/history_", lang, ".html"));
    std::string written((std::istreambuf_iterator<char>(back)), std::istreambuf_iterator<char>());
    EXPECT_EQ(written, Html(Story(), lang, la)) << lang;
  }
}

TEST(HistoryMessagesTest, EveryMessageHasEveryLanguageWithTheSamePlaceholders) {
  std::set<std::string> ids;
  ASSERT_EQ(CatalogLanguages().front(), "en");
  for (const Message& m : MessageCatalog()) {
    EXPECT_TRUE(ids.insert(m.id).second) << "duplicate id " << m.id;
    ASSERT_FALSE(m.texts.empty()) << m.id;
    std::set<std::string> langs;
    for (const MessageText& t : m.texts) {
      EXPECT_TRUE(langs.insert(t.lang).second) << m.id << " has " << t.lang << " twice";
      EXPECT_NE(std::string(t.text), "") << m.id << " " << t.lang;
      EXPECT_EQ(Placeholders(t.text), Placeholders(m.texts[0].text))
          << m.id << ": " << t.lang << " and " << m.texts[0].lang << " differ in placeholders";
    }
    EXPECT_EQ(langs, std::set<std::string>(CatalogLanguages().begin(), CatalogLanguages().end()))
        << m.id;
  }
  // Every enum value shown to the client has a label, and every event type a
  // title and a sentence.
  for (const google::protobuf::EnumDescriptor* e :
       {v1::LegalBasis_descriptor(), v1::RecordClass_descriptor(), v1::ParticipantRole_descriptor(),
        v1::GrantorKind_descriptor(), v1::AccessDenialGround_descriptor(),
        v1::AmendmentDenialBasis_descriptor(), v1::LegalHoldGround_descriptor(),
        v1::RepresentativeScope_descriptor(), v1::ComprehensionAid_descriptor(),
        v1::SuspendingAgency_descriptor()}) {
    for (int i = 0; i < e->value_count(); ++i) {
      std::string id = absl::StrCat("enum.", absl::AsciiStrToLower(e->value(i)->name()));
      EXPECT_TRUE(ids.count(id)) << "missing " << id;
    }
  }
  const google::protobuf::OneofDescriptor* body = v1::Event::descriptor()->FindOneofByName("body");
  for (int i = 0; i < body->field_count(); ++i) {
    const std::string& type = body->field(i)->name();
    EXPECT_TRUE(ids.count(absl::StrCat("title.", type))) << "missing title." << type;
    bool sentence = false;
    for (const std::string& id : ids)
      sentence |= absl::StartsWith(id, absl::StrCat("event.", type));
    EXPECT_TRUE(sentence) << "missing event." << type;
  }
}

}  // namespace
}  // namespace caseledger
