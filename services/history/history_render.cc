#include "services/history/history_render.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/descriptor.h"
#include "ledger/hash.h"
#include "proto/events.pb.h"
#include "services/history/history_messages.h"
#include "services/readmodel/case_state.h"

namespace caseledger {
namespace {

using Args = std::vector<std::pair<absl::string_view, std::string>>;

// One language of the catalog.
class Catalog {
 public:
  static absl::StatusOr<Catalog> For(const std::string& lang) {
    Catalog c;
    for (const Message& m : MessageCatalog()) {
      for (const MessageText& t : m.texts) {
        if (lang == t.lang) c.texts_[m.id] = t.text;
      }
    }
    if (c.texts_.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "lang: got \"", lang, "\", want one of: ", absl::StrJoin(CatalogLanguages(), ", ")));
    }
    return c;
  }

  bool Has(absl::string_view id) const { return texts_.find(id) != texts_.end(); }

  // The text of `id` with each {name} replaced by its value in `args`. A
  // missing id gives "[[id]]", so that it shows (and tests catch it).
  std::string T(absl::string_view id, const Args& args = {}) const {
    auto it = texts_.find(id);
    if (it == texts_.end()) return absl::StrCat("[[", id, "]]");
    absl::string_view text = it->second;
    std::string out;
    size_t i = 0;
    while (i < text.size()) {
      size_t open = text.find('{', i);
      if (open == absl::string_view::npos) break;
      size_t close = text.find('}', open);
      if (close == absl::string_view::npos) break;
      out.append(text.data() + i, open - i);
      absl::string_view key = text.substr(open + 1, close - open - 1);
      bool found = false;
      for (const auto& [name, value] : args) {
        if (name == key) {
          out += value;
          found = true;
          break;
        }
      }
      if (!found) out.append(text.data() + open, close - open + 1);
      i = close + 1;
    }
    out.append(text.data() + i, text.size() - i);
    return out;
  }

 private:
  std::map<std::string, const char*, std::less<>> texts_;
};

std::string Capitalized(std::string s) {
  if (!s.empty() && absl::ascii_islower(static_cast<unsigned char>(s[0]))) {
    s[0] = absl::ascii_toupper(static_cast<unsigned char>(s[0]));
  }
  return s;
}

// "care-coordination" -> "care coordination": ids read as words.
std::string Words(absl::string_view id) {
  return absl::StrReplaceAll(id, {{"_", " "}, {"-", " "}});
}

// ---- The page, language-independent: every string already translated ----

struct Table {
  std::vector<std::string> head;
  std::vector<std::vector<std::string>> rows;
};

struct EventItem {
  std::string title;
  std::string when;
  std::string case_label;
  std::vector<std::string> lines;  // what happened
  std::vector<std::string> notes;  // what is not shown, and why
};

struct Section {
  std::string id;  // for the HTML anchor
  std::string heading;
  std::vector<std::string> paragraphs;
  Table table;  // empty when there are no rows
};

struct Page {
  std::string lang;
  std::string title;
  std::string about;
  Section verdict;
  Section events;
  std::vector<EventItem> items;
  Section accounting;
  Section access;
  Section checks;
  std::string details_summary;
  std::vector<std::string> details;
  std::string help;
};

// Builds the page from a verified history.
class PageBuilder {
 public:
  PageBuilder(const HistoryVerification& h, const RenderOptions& options, const Catalog& cat)
      : h_(h), tz_(options.time_zone), cat_(cat) {}

  Page Build(const std::string& lang) {
    Scan();
    Page p;
    p.lang = lang;
    p.title = cat_.T("page.title");
    p.about = cat_.T("page.about", {{"subject", h_.subject_id}});
    BuildVerdict(&p.verdict);
    p.events.id = "events";
    p.events.heading = cat_.T("events.heading");
    p.events.paragraphs.push_back(cat_.T(h_.records.empty() ? "events.none" : "events.intro"));
    for (const VerifiedRecord& r : h_.records) p.items.push_back(BuildEvent(r));
    BuildAccounting(&p.accounting);
    BuildAccess(&p.access);
    BuildChecks(&p);
    p.help = cat_.T("page.help");
    return p;
  }

 private:
  struct Consent {
    absl::Time granted_at;
    bool by_client = false;
    std::string general_designation;  // 42 CFR 2.31(a)(4)(ii)(B)
    std::string intermediary;
  };
  struct Disclosure {
    std::string recipient;
    absl::Time at;
  };

  // What later sentences refer to: consents, disclosures, managers, and the
  // records by seq.
  void Scan() {
    for (size_t i = 0; i < h_.records.size(); ++i) {
      const VerifiedRecord& r = h_.records[i];
      by_seq_[r.record.seq] = i;
      if (ContentGone(r)) continue;
      std::optional<v1::Event> e = RevealedEvent(r);
      if (!e.has_value()) continue;
      events_[r.record.seq] = *e;
      if (e->has_consent_granted()) {
        const v1::ConsentGranted& g = e->consent_granted();
        consents_.emplace(g.consent_id(),
                          Consent{At(r.record.occurred_at_micros), g.grantor_id() == h_.subject_id,
                                  g.general_designation(), g.intermediary()});
      } else if (e->has_disclosure_made()) {
        const v1::DisclosureMade& d = e->disclosure_made();
        disclosures_.emplace(
            std::make_pair(r.record.stream_id, d.disclosure_id()),
            Disclosure{RecipientName(d.recipient()), At(r.record.occurred_at_micros)});
      } else if (e->has_case_manager_assigned()) {
        managers_ever_.insert(e->case_manager_assigned().manager_id());
      } else if (e->has_case_transferred() && !e->case_transferred().to_manager_id().empty()) {
        managers_ever_.insert(e->case_transferred().to_manager_id());
      }
    }
  }

  static absl::Time At(int64_t micros) { return absl::FromUnixMicros(micros); }
  static bool Set(absl::Time t) { return t != absl::InfinitePast() && t != absl::InfiniteFuture(); }

  std::string Date(absl::Time t) const {
    absl::CivilDay day = absl::ToCivilDay(t, tz_);
    return cat_.T("date.format", {{"day", absl::StrCat(day.day())},
                                  {"month", cat_.T(absl::StrCat("month.", day.month()))},
                                  {"year", absl::StrCat(day.year())}});
  }
  std::string DateTime(absl::Time t) const {
    return cat_.T(
        "datetime.format",
        {{"date", Date(t)}, {"time", absl::FormatTime("%H:%M", t, tz_)}, {"zone", ZoneName()}});
  }
  std::string DateTime(const google::protobuf::Timestamp& ts) const {
    return DateTime(absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos()));
  }
  std::string Date(const google::protobuf::Timestamp& ts) const {
    return Date(absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos()));
  }

  // "America/Los_Angeles" reads as "America/Los Angeles".
  std::string ZoneName() const { return absl::StrReplaceAll(tz_.name(), {{"_", " "}}); }

  std::string OrNone(const std::string& v) const { return v.empty() ? cat_.T("value.none") : v; }

  std::string List(const google::protobuf::RepeatedPtrField<std::string>& items) const {
    std::vector<std::string> words;
    for (const std::string& s : items) words.push_back(Words(s));
    if (words.empty()) return cat_.T("value.none");
    if (words.size() == 1) return words[0];
    std::string last = words.back();
    words.pop_back();
    return cat_.T("list.last", {{"rest", absl::StrJoin(words, ", ")}, {"last", last}});
  }

  // How a person id reads in a sentence: "you", "your case manager (cm-1)" or
  // the id itself.
  std::string Person(const std::string& id, const std::string& fallback = "") const {
    if (id.empty()) return fallback.empty() ? cat_.T("value.none") : Person(fallback);
    if (id == h_.subject_id) return cat_.T("person.you");
    if (managers_ever_.count(id)) return cat_.T("person.manager", {{"id", id}});
    return id;
  }

  // A reader of the record: "you", "your case manager (cm-1)", or
  // "aud-2 (auditor, who checks the records)".
  std::string PersonWithRole(const std::string& id, const std::string& role) const {
    if (id == h_.subject_id || (role == "case_manager" && managers_ever_.count(id)))
      return Person(id);
    return cat_.T("person.with_role", {{"who", Person(id)}, {"role", Role(role)}});
  }

  std::string Role(const std::string& role) const {
    std::string id = absl::StrCat("role.", role);
    if (cat_.Has(id)) return cat_.T(id);
    return cat_.T("role.other", {{"role", OrNone(role)}});
  }

  template <typename EnumT>
  std::string EnumLabel(const google::protobuf::EnumDescriptor* d, EnumT value) const {
    const google::protobuf::EnumValueDescriptor* v = d->FindValueByNumber(static_cast<int>(value));
    if (v == nullptr) return cat_.T("value.none");
    return cat_.T(absl::StrCat("enum.", absl::AsciiStrToLower(v->name())));
  }

  static std::string RecipientName(const v1::Recipient& r) {
    return r.name().empty() ? r.recipient_id() : r.name();
  }

  static bool ContentGone(const VerifiedRecord& r) {
    for (const WithheldField& w : r.withheld) {
      if (w.reason != WithheldReason::kProtectedDetail && w.reason != WithheldReason::kSuspended) {
        return true;
      }
    }
    return false;
  }

  // The suspension of accounting `r` is withheld for (reason 6), or null.
  const v1::AccountingSuspended* SuspendedBy(const VerifiedRecord& r) const {
    for (const WithheldField& w : r.withheld) {
      if (w.reason != WithheldReason::kSuspended) continue;
      const v1::Event* e = EventAt(w.by_seq);
      static const v1::AccountingSuspended* const kUnknown = new v1::AccountingSuspended();
      return e != nullptr && e->has_accounting_suspended() ? &e->accounting_suspended()
                                                           : kUnknown;
    }
    return nullptr;
  }

  std::string SuspendedUntil(const v1::AccountingSuspended& s) const {
    return s.has_ends_at() ? Date(s.ends_at()) : cat_.T("value.none");
  }

  // The revealed event at `seq` in this history, or null.
  const v1::Event* EventAt(uint64_t seq) const {
    auto it = events_.find(seq);
    return it == events_.end() ? nullptr : &it->second;
  }

  void BuildVerdict(Section* s) {
    s->id = "summary";
    s->heading = cat_.T("verdict.heading");
    std::vector<std::string> v;
    v.push_back(Set(h_.produced_at)
                    ? cat_.T("verdict.complete", {{"date", DateTime(h_.produced_at)}})
                    : cat_.T("verdict.complete_undated"));
    v.push_back(cat_.T("verdict.unaltered"));
    s->paragraphs.push_back(absl::StrJoin(v, " "));
    v.clear();
    size_t n = h_.records.size();
    std::string count = absl::StrCat(n);
    v.push_back(cat_.T(n == 0   ? "verdict.entries.zero"
                       : n == 1 ? "verdict.entries.one"
                                : "verdict.entries.other",
                       {{"count", count}}));
    uint64_t w = h_.withheld_protected;
    v.push_back(cat_.T(w == 0   ? "verdict.withheld.zero"
                       : w == 1 ? "verdict.withheld.one"
                                : "verdict.withheld.other",
                       {{"count", absl::StrCat(w)}}));
    size_t gone = 0, suspended = 0;
    for (const VerifiedRecord& r : h_.records) {
      gone += ContentGone(r) ? 1 : 0;
      suspended += SuspendedBy(r) != nullptr ? 1 : 0;
    }
    if (gone > 0) {
      v.push_back(cat_.T(gone == 1 ? "verdict.erased.one" : "verdict.erased.other",
                         {{"count", absl::StrCat(gone)}}));
    }
    if (suspended > 0) {
      v.push_back(cat_.T(suspended == 1 ? "verdict.suspended.one" : "verdict.suspended.other",
                         {{"count", absl::StrCat(suspended)}}));
    }
    if (h_.destroyed_stated > 0) {
      v.push_back(cat_.T("verdict.unproven", {{"count", absl::StrCat(h_.destroyed_stated)}}));
    }
    if (!h_.cosigned_by.empty()) {
      v.push_back(
          cat_.T(h_.cosigned_by.size() == 1 ? "verdict.witnesses.one" : "verdict.witnesses.other",
                 {{"count", absl::StrCat(h_.cosigned_by.size())},
                  {"names", absl::StrJoin(h_.cosigned_by, ", ")}}));
    }
    s->paragraphs.push_back(absl::StrJoin(v, " "));
  }

  void Reason(const std::string& reason, std::vector<std::string>* lines) const {
    if (!reason.empty()) lines->push_back(cat_.T("event.reason", {{"reason", reason}}));
  }
  void Referral(const std::string& referral, std::vector<std::string>* lines) const {
    if (!referral.empty()) lines->push_back(cat_.T("event.referral", {{"referral", referral}}));
  }

  // Protected fields are printed only when revealed (never in the client's
  // view, where they are withheld and explained by a note instead).
  void Mentions(const google::protobuf::RepeatedPtrField<std::string>& mentions,
                std::vector<std::string>* lines) const {
    if (mentions.empty()) return;
    lines->push_back(cat_.T("event.mentions", {{"mentions", absl::StrJoin(mentions, "; ")}}));
  }

  EventItem BuildEvent(const VerifiedRecord& r) {
    EventItem item;
    const std::string& type = r.record.event_type;
    std::string title_id = absl::StrCat("title.", type);
    item.title = cat_.T(cat_.Has(title_id) ? title_id : "title.unknown");
    item.when = DateTime(At(r.record.occurred_at_micros));
    if (!r.record.stream_id.empty() && r.record.stream_id[0] != '@') {
      item.case_label = cat_.T("events.case", {{"case", r.record.stream_id}});
    }
    // The sentence names the day; the time and zone are on the line above.
    std::string when = Date(At(r.record.occurred_at_micros));
    const v1::Event* e = EventAt(r.record.seq);
    // A record withheld while a suspension lasts: neither its kind nor its
    // content is named, only until when and at whose kind of request.
    if (const v1::AccountingSuspended* s = SuspendedBy(r); s != nullptr) {
      item.title = cat_.T("title.withheld_for_now");
      item.lines.push_back(cat_.T(
          "event.suspended",
          {{"when", when},
           {"until", SuspendedUntil(*s)},
           {"agency", EnumLabel(v1::SuspendingAgency_descriptor(), s->agency_kind())}}));
      item.notes.push_back(cat_.T("withheld.suspended", {{"until", SuspendedUntil(*s)}}));
      return item;
    }
    if (ContentGone(r)) {
      item.lines.push_back(cat_.T("event.no_content", {{"when", when}}));
    } else if (e == nullptr) {
      item.lines.push_back(cat_.T("event.unknown", {{"when", when}, {"type", type}}));
    } else {
      Sentences(r, *e, when, &item.lines);
    }
    std::set<std::string> seen;
    for (const WithheldField& w : r.withheld) {
      std::string note = WithheldNote(w);
      if (seen.insert(note).second) item.notes.push_back(note);
    }
    return item;
  }

  std::string WithheldNote(const WithheldField& w) const {
    switch (w.reason) {
      case WithheldReason::kProtectedDetail:
        return cat_.T("withheld.protected");
      case WithheldReason::kErased: {
        auto it = by_seq_.find(w.by_seq);
        const v1::Event* e = EventAt(w.by_seq);
        if (it == by_seq_.end() || e == nullptr || !e->has_subject_erased()) {
          return cat_.T("withheld.erased_undated");
        }
        return cat_.T("withheld.erased",
                      {{"date", Date(At(h_.records[it->second].record.occurred_at_micros))},
                       {"authority", OrNone(e->subject_erased().authority())}});
      }
      case WithheldReason::kDisposed: {
        auto it = by_seq_.find(w.by_seq);
        const v1::Event* e = EventAt(w.by_seq);
        if (it == by_seq_.end() || e == nullptr || !e->has_records_disposed()) {
          return cat_.T("withheld.disposed_undated");
        }
        return cat_.T("withheld.disposed",
                      {{"date", Date(At(h_.records[it->second].record.occurred_at_micros))},
                       {"authority", OrNone(e->records_disposed().authority())}});
      }
      case WithheldReason::kErasedWithOther:
        return cat_.T("withheld.erased_with_other");
      case WithheldReason::kKeysDestroyed:
        return cat_.T("withheld.keys_destroyed");
      case WithheldReason::kSuspended:  // BuildEvent explains it
        return cat_.T("withheld.suspended", {{"until", cat_.T("value.none")}});
    }
    return cat_.T("withheld.protected");
  }

  // What the client was told before consenting, in which language, and who decided.
  void Informed(const v1::InformedConsent& i, std::vector<std::string>* out) {
    std::vector<std::string> told;
    if (i.told_right_to_revoke()) told.push_back(cat_.T("consent.told.revoke"));
    if (i.told_consequences_of_refusing()) told.push_back(cat_.T("consent.told.refusing"));
    if (i.told_redisclosure_risk()) told.push_back(cat_.T("consent.told.redisclosure"));
    if (i.told_limits_of_confidentiality()) told.push_back(cat_.T("consent.told.limits"));
    out->push_back(
        cat_.T("event.consent_granted.told",
               {{"told", told.empty() ? cat_.T("value.none") : absl::StrJoin(told, "; ")},
                {"language", OrNone(i.language())},
                {"aid", EnumLabel(v1::ComprehensionAid_descriptor(), i.comprehension_aid())}}));
    if (i.capacity() == v1::CONSENT_CAPACITY_REPRESENTATIVE_ACTS) {
      out->push_back(cat_.T("event.consent_granted.representative_decided",
                            {{"why", OrNone(i.capacity_note())}}));
    }
  }

  // What a representative may decide for the client, and until when.
  void RepresentativeAuthority(const v1::RepresentativeAuthority& a,
                               std::vector<std::string>* out) {
    std::string scope = EnumLabel(v1::RepresentativeScope_descriptor(), a.scope());
    if (a.scope() == v1::REPRESENTATIVE_SCOPE_PROGRAM) {
      scope = cat_.T("event.participant_added.authority.program", {{"program", a.program()}});
    }
    out->push_back(cat_.T(a.has_ends_at() ? "event.participant_added.authority.until"
                                          : "event.participant_added.authority",
                          {{"kind", OrNone(a.document_kind())},
                           {"scope", scope},
                           {"until", a.has_ends_at() ? Date(a.ends_at()) : ""}}));
  }

  // The sentences of one event whose content is shown.
  void Sentences(const VerifiedRecord& r, const v1::Event& e, const std::string& when,
                 std::vector<std::string>* out) {
    const std::string& producer = r.record.producer;
    switch (e.body_case()) {
      case v1::Event::kCaseOpened: {
        const v1::CaseOpened& b = e.case_opened();
        out->push_back(cat_.T("event.case_opened", {{"when", when},
                                                    {"program", OrNone(b.program())},
                                                    {"jurisdiction", OrNone(b.jurisdiction())}}));
        if (b.record_class() != v1::RECORD_CLASS_UNSPECIFIED) {
          out->push_back(cat_.T(
              "event.case_opened.class",
              {{"record_class", EnumLabel(v1::RecordClass_descriptor(), b.record_class())}}));
        }
        Reason(b.reason(), out);
        break;
      }
      case v1::Event::kParticipantAdded: {
        const v1::ParticipantAdded& b = e.participant_added();
        std::string role = EnumLabel(v1::ParticipantRole_descriptor(), b.role());
        if (b.participant_id() == h_.subject_id) {
          out->push_back(cat_.T("event.participant_added.self", {{"when", when}, {"role", role}}));
        } else {
          out->push_back(cat_.T(
              "event.participant_added",
              {{"when", when}, {"participant", Person(b.participant_id())}, {"role", role}}));
        }
        if (!b.display_name().empty())
          out->push_back(cat_.T("event.name", {{"name", b.display_name()}}));
        if (b.has_authority()) RepresentativeAuthority(b.authority(), out);
        break;
      }
      case v1::Event::kParticipantRemoved: {
        const v1::ParticipantRemoved& b = e.participant_removed();
        out->push_back(cat_.T("event.participant_removed",
                              {{"when", when}, {"participant", Person(b.participant_id())}}));
        Reason(b.reason(), out);
        break;
      }
      case v1::Event::kCaseManagerAssigned: {
        const v1::CaseManagerAssigned& b = e.case_manager_assigned();
        if (b.previous_manager_id().empty()) {
          out->push_back(cat_.T("event.case_manager_assigned",
                                {{"when", when}, {"manager", OrNone(b.manager_id())}}));
        } else {
          out->push_back(cat_.T("event.case_manager_assigned.replaced",
                                {{"when", when},
                                 {"manager", OrNone(b.manager_id())},
                                 {"previous", b.previous_manager_id()}}));
        }
        Reason(b.reason(), out);
        break;
      }
      case v1::Event::kConflictDeclared: {
        const v1::ConflictOfInterestDeclared& b = e.conflict_declared();
        out->push_back(cat_.T("event.conflict_declared",
                              {{"when", when}, {"person", Person(b.declared_by(), producer)}}));
        if (!b.description().empty()) {
          out->push_back(
              cat_.T("event.conflict_declared.description", {{"description", b.description()}}));
        }
        break;
      }
      case v1::Event::kConflictResolved:
        out->push_back(
            cat_.T("event.conflict_resolved",
                   {{"when", when}, {"resolution", OrNone(e.conflict_resolved().resolution())}}));
        break;
      case v1::Event::kClientInformedOfConflict:
        out->push_back(cat_.T("event.client_informed_of_conflict",
                              {{"when", when},
                               {"method", OrNone(e.client_informed_of_conflict().method())}}));
        break;
      case v1::Event::kReferralMade: {
        const v1::ReferralMade& b = e.referral_made();
        out->push_back(
            cat_.T("event.referral_made", {{"when", when}, {"to", OrNone(b.referred_to())}}));
        Reason(b.reason(), out);
        break;
      }
      case v1::Event::kCaseTransferred: {
        const v1::CaseTransferred& b = e.case_transferred();
        const char* id = b.to_program().empty()      ? "event.case_transferred.manager"
                         : b.to_manager_id().empty() ? "event.case_transferred.program"
                                                     : "event.case_transferred.both";
        out->push_back(cat_.T(
            id,
            {{"when", when}, {"program", b.to_program()}, {"manager", OrNone(b.to_manager_id())}}));
        Reason(b.reason(), out);
        break;
      }
      case v1::Event::kServicesInterrupted: {
        const v1::ServicesInterrupted& b = e.services_interrupted();
        out->push_back(cat_.T("event.services_interrupted", {{"when", when}}));
        Reason(b.reason(), out);
        Referral(b.referral(), out);
        break;
      }
      case v1::Event::kServicesResumed: {
        out->push_back(cat_.T("event.services_resumed", {{"when", when}}));
        if (!e.services_resumed().note().empty()) {
          out->push_back(cat_.T("event.note", {{"note", e.services_resumed().note()}}));
        }
        break;
      }
      case v1::Event::kCaseClosed: {
        const v1::CaseClosed& b = e.case_closed();
        out->push_back(cat_.T("event.case_closed", {{"when", when}}));
        Reason(b.reason(), out);
        Referral(b.referral(), out);
        break;
      }
      case v1::Event::kCaseReopened:
        out->push_back(cat_.T("event.case_reopened", {{"when", when}}));
        Reason(e.case_reopened().reason(), out);
        break;
      case v1::Event::kRecordsDisposed: {
        const v1::RecordsDisposed& b = e.records_disposed();
        out->push_back(cat_.T("event.records_disposed", {{"when", when},
                                                         {"method", OrNone(b.method())},
                                                         {"authority", OrNone(b.authority())}}));
        break;
      }
      case v1::Event::kRecordEntryWritten: {
        const v1::RecordEntryWritten& b = e.record_entry_written();
        out->push_back(
            cat_.T("event.record_entry_written",
                   {{"when", when},
                    {"author", Person(b.author_id(), producer)},
                    {"category", b.data_category().empty() ? cat_.T("value.none")
                                                           : Words(b.data_category())}}));
        if (!b.text().empty()) out->push_back(cat_.T("event.text", {{"text", b.text()}}));
        Mentions(b.third_party_mentions(), out);
        break;
      }
      case v1::Event::kRecordAmended: {
        const v1::RecordAmended& b = e.record_amended();
        out->push_back(cat_.T("event.record_amended",
                              {{"when", when}, {"original", OrNone(b.amends_entry_id())}}));
        Reason(b.reason(), out);
        if (!b.text().empty()) out->push_back(cat_.T("event.text", {{"text", b.text()}}));
        Mentions(b.third_party_mentions(), out);
        break;
      }
      case v1::Event::kConsentGranted: {
        const v1::ConsentGranted& b = e.consent_granted();
        Args args = {{"when", when},
                     {"categories", List(b.data_categories())},
                     {"recipients", List(b.recipients())},
                     {"purposes", List(b.purposes())}};
        if (b.grantor_id() == h_.subject_id) {
          out->push_back(cat_.T("event.consent_granted.self", args));
        } else {
          args.push_back({"grantor", OrNone(b.grantor_id())});
          args.push_back(
              {"grantor_kind", EnumLabel(v1::GrantorKind_descriptor(), b.grantor_kind())});
          out->push_back(cat_.T("event.consent_granted.other", args));
        }
        if (b.has_starts_at() && b.has_expires_at()) {
          out->push_back(cat_.T("event.consent_granted.period",
                                {{"start", Date(b.starts_at())}, {"end", Date(b.expires_at())}}));
        } else if (b.has_starts_at()) {
          out->push_back(cat_.T("event.consent_granted.from", {{"start", Date(b.starts_at())}}));
        }
        if (!b.expiry_event().empty()) {
          out->push_back(cat_.T("event.consent_granted.until", {{"event", b.expiry_event()}}));
        }
        if (!b.general_designation().empty()) {
          out->push_back(cat_.T("event.consent_granted.general_designation",
                                {{"designation", b.general_designation()},
                                 {"intermediary", OrNone(b.intermediary())}}));
        }
        if (b.revocable()) out->push_back(cat_.T("event.consent_granted.revocable"));
        if (b.has_informed()) Informed(b.informed(), out);
        if (!b.consent_id().empty())
          out->push_back(cat_.T("event.reference", {{"ref", b.consent_id()}}));
        break;
      }
      case v1::Event::kConsentRevoked: {
        const v1::ConsentRevoked& b = e.consent_revoked();
        std::string who = Person(b.revoked_by(), producer);
        auto it = consents_.find(b.consent_id());
        if (it != consents_.end()) {
          out->push_back(
              cat_.T("event.consent_revoked.dated",
                     {{"when", when}, {"who", who}, {"granted", Date(it->second.granted_at)}}));
        } else {
          out->push_back(
              cat_.T("event.consent_revoked",
                     {{"when", when}, {"who", who}, {"consent", OrNone(b.consent_id())}}));
        }
        Reason(b.reason(), out);
        break;
      }
      case v1::Event::kDisclosureMade:
        Disclosed(e.disclosure_made(), when, producer, out);
        break;
      case v1::Event::kClientInformed: {
        const v1::ClientInformedOfDisclosure& b = e.client_informed();
        auto it = disclosures_.find(std::make_pair(r.record.stream_id, b.disclosure_id()));
        if (it != disclosures_.end()) {
          out->push_back(
              cat_.T("event.client_informed", {{"when", when},
                                               {"method", OrNone(b.method())},
                                               {"recipient", OrNone(it->second.recipient)},
                                               {"shared_on", Date(it->second.at)}}));
        } else {
          out->push_back(
              cat_.T("event.client_informed.unknown", {{"when", when},
                                                       {"method", OrNone(b.method())},
                                                       {"ref", OrNone(b.disclosure_id())}}));
        }
        break;
      }
      case v1::Event::kAccessRequested: {
        const v1::AccessRequested& b = e.access_requested();
        out->push_back(
            cat_.T("event.access_requested", {{"when", when},
                                              {"who", Person(b.requested_by(), b.client_id())},
                                              {"scope", OrNone(b.scope())}}));
        break;
      }
      case v1::Event::kAccessFulfilled:
        out->push_back(cat_.T("event.access_fulfilled", {{"when", when}}));
        break;
      case v1::Event::kAccessDenied: {
        const v1::AccessDenied& b = e.access_denied();
        out->push_back(cat_.T("event.access_denied", {{"when", when}}));
        Reason(b.reason(), out);
        if (b.ground() != v1::ACCESS_DENIAL_GROUND_UNSPECIFIED) {
          out->push_back(
              cat_.T("event.access_denied.ground",
                     {{"ground", EnumLabel(v1::AccessDenialGround_descriptor(), b.ground())}}));
          out->push_back(cat_.T(IsReviewableDenial(b.ground())
                                    ? "event.access_denied.reviewable"
                                    : "event.access_denied.unreviewable"));
        }
        if (!b.reviewable_by().empty()) {
          out->push_back(cat_.T("event.access_denied.review", {{"reviewer", b.reviewable_by()}}));
        }
        break;
      }
      case v1::Event::kAccessReviewRequested: {
        const v1::AccessReviewRequested& b = e.access_review_requested();
        out->push_back(cat_.T("event.access_review_requested",
                              {{"when", when}, {"who", Person(b.requested_by(), producer)}}));
        break;
      }
      case v1::Event::kAccessReviewed: {
        const v1::AccessReviewed& b = e.access_reviewed();
        out->push_back(cat_.T(b.outcome() == v1::ACCESS_REVIEW_OUTCOME_OVERTURNED
                                  ? "event.access_reviewed.overturned"
                                  : "event.access_reviewed.upheld",
                              {{"when", when}, {"reviewer", OrNone(b.reviewer_id())}}));
        Reason(b.explanation(), out);
        break;
      }
      case v1::Event::kAccountingRequested: {
        const v1::AccountingRequested& b = e.accounting_requested();
        out->push_back(cat_.T("event.accounting_requested",
                              {{"when", when}, {"who", Person(b.requested_by(), b.client_id())}}));
        if (!b.fee_notice().empty()) {
          out->push_back(cat_.T("event.accounting_requested.fee", {{"fee", b.fee_notice()}}));
        }
        break;
      }
      case v1::Event::kAccountingFulfilled:
        out->push_back(cat_.T("event.accounting_fulfilled", {{"when", when}}));
        break;
      case v1::Event::kPart2ListRequested: {
        const v1::Part2ListRequested& b = e.part2_list_requested();
        auto it = consents_.find(b.consent_id());
        const bool known = it != consents_.end();
        out->push_back(cat_.T(
            "event.part2_list_requested",
            {{"when", when},
             {"who", Person(b.requested_by(), b.client_id())},
             {"designation", OrNone(known ? it->second.general_designation : "")},
             {"intermediary", OrNone(known ? it->second.intermediary : "")}}));
        break;
      }
      case v1::Event::kPart2ListProvided:
        out->push_back(cat_.T("event.part2_list_provided", {{"when", when}}));
        break;
      case v1::Event::kAccountingExtended:
        out->push_back(cat_.T("event.accounting_extended", {{"when", when}}));
        Reason(e.accounting_extended().reason(), out);
        break;
      case v1::Event::kAccountingSuspended: {
        const v1::AccountingSuspended& b = e.accounting_suspended();
        out->push_back(
            cat_.T("event.accounting_suspended",
                   {{"when", when},
                    {"agency", OrNone(b.agency_name().empty() ? b.agency_id() : b.agency_name())},
                    {"until", b.has_ends_at() ? Date(b.ends_at()) : cat_.T("value.none")}}));
        break;
      }
      case v1::Event::kAmendmentRequested: {
        const v1::AmendmentRequested& b = e.amendment_requested();
        out->push_back(
            cat_.T("event.amendment_requested", {{"when", when},
                                                 {"who", Person(b.requested_by(), b.client_id())},
                                                 {"ref", OrNone(b.entry_id())}}));
        if (!b.requested_change().empty()) {
          out->push_back(
              cat_.T("event.amendment_requested.change", {{"change", b.requested_change()}}));
        }
        break;
      }
      case v1::Event::kAmendmentAccepted:
        out->push_back(cat_.T("event.amendment_accepted", {{"when", when}}));
        break;
      case v1::Event::kAmendmentDenied: {
        const v1::AmendmentDenied& b = e.amendment_denied();
        out->push_back(
            cat_.T("event.amendment_denied",
                   {{"when", when},
                    {"basis", EnumLabel(v1::AmendmentDenialBasis_descriptor(), b.basis())}}));
        if (!b.explanation().empty()) {
          out->push_back(
              cat_.T("event.amendment_denied.explanation", {{"explanation", b.explanation()}}));
        }
        out->push_back(cat_.T("event.amendment_denied.rights"));
        break;
      }
      case v1::Event::kAmendmentExtended:
        out->push_back(cat_.T("event.amendment_extended", {{"when", when}}));
        Reason(e.amendment_extended().reason(), out);
        break;
      case v1::Event::kDisagreementFiled: {
        out->push_back(cat_.T("event.disagreement_filed", {{"when", when}}));
        if (!e.disagreement_filed().statement().empty()) {
          out->push_back(cat_.T("event.disagreement_filed.statement",
                                {{"statement", e.disagreement_filed().statement()}}));
        }
        break;
      }
      case v1::Event::kDisagreementRebutted: {
        out->push_back(cat_.T("event.disagreement_rebutted", {{"when", when}}));
        if (!e.disagreement_rebutted().rebuttal().empty()) {
          out->push_back(cat_.T("event.disagreement_rebutted.text",
                                {{"rebuttal", e.disagreement_rebutted().rebuttal()}}));
        }
        break;
      }
      case v1::Event::kLegalHoldPlaced: {
        const v1::LegalHoldPlaced& b = e.legal_hold_placed();
        out->push_back(cat_.T(
            b.scope() == v1::LEGAL_HOLD_SCOPE_CLIENT ? "event.legal_hold_placed.client"
                                                     : "event.legal_hold_placed.case",
            {{"when", when}, {"ground", EnumLabel(v1::LegalHoldGround_descriptor(), b.ground())}}));
        if (!b.authority().empty()) {
          out->push_back(cat_.T("event.reference", {{"ref", b.authority()}}));
        }
        break;
      }
      case v1::Event::kLegalHoldReleased:
        out->push_back(cat_.T("event.legal_hold_released", {{"when", when}}));
        Reason(e.legal_hold_released().reason(), out);
        break;
      case v1::Event::kAccessExtended:
        out->push_back(cat_.T("event.access_extended", {{"when", when}}));
        Reason(e.access_extended().reason(), out);
        break;
      case v1::Event::kRecordAccessed: {
        const v1::RecordAccessed& b = e.record_accessed();
        int n = b.seqs_size();
        out->push_back(cat_.T(n == 1 ? "event.record_accessed.one" : "event.record_accessed.other",
                              {{"when", when},
                               {"who", PersonWithRole(b.accessor_id(), b.accessor_role())},
                               {"count", absl::StrCat(n)}}));
        if (!b.purpose().empty()) {
          out->push_back(cat_.T("event.record_accessed.purpose", {{"purpose", b.purpose()}}));
        }
        break;
      }
      case v1::Event::kAccessRefused: {
        const v1::AccessRefused& b = e.access_refused();
        out->push_back(
            cat_.T("event.access_refused",
                   {{"when", when}, {"who", PersonWithRole(b.accessor_id(), b.accessor_role())}}));
        break;
      }
      case v1::Event::kSubjectErased:
        out->push_back(
            cat_.T("event.subject_erased",
                   {{"when", when}, {"authority", OrNone(e.subject_erased().authority())}}));
        break;
      case v1::Event::kMasterKeyRotated:
        out->push_back(cat_.T("event.master_key_rotated", {{"when", when}}));
        break;
      case v1::Event::BODY_NOT_SET:
        out->push_back(cat_.T("event.unknown", {{"when", when}, {"type", r.record.event_type}}));
        break;
    }
  }

  // The basis of a disclosure in words, for a sentence or a table cell.
  std::string ConsentDate(const std::string& consent_id, bool* by_client) const {
    auto it = consents_.find(consent_id);
    if (it == consents_.end()) return "";
    if (by_client != nullptr) *by_client = it->second.by_client;
    return Date(it->second.granted_at);
  }

  void Disclosed(const v1::DisclosureMade& d, const std::string& when, const std::string& producer,
                 std::vector<std::string>* out) const {
    std::string what = d.description().empty() ? List(d.data_categories()) : d.description();
    out->push_back(
        cat_.T("event.disclosure_made", {{"when", when},
                                         {"who", Person(d.disclosed_by(), producer)},
                                         {"what", what},
                                         {"recipient", OrNone(RecipientName(d.recipient()))},
                                         {"purpose", OrNone(Words(d.purpose()))}}));
    if (!d.description().empty() && d.data_categories_size() > 0) {
      out->push_back(
          cat_.T("event.disclosure_made.categories", {{"categories", List(d.data_categories())}}));
    }
    if (d.disagreements_included_size() > 0) {
      out->push_back(cat_.T("event.disclosure_made.disagreement"));
    }
    if (!d.part2_notice_sha256().empty()) {
      out->push_back(cat_.T("event.disclosure_made.part2_notice"));
    }
    if (d.legal_basis() == v1::LEGAL_BASIS_CONSENT) {
      bool by_client = false;
      std::string granted = ConsentDate(d.consent_id(), &by_client);
      if (granted.empty()) {
        out->push_back(
            cat_.T("event.disclosure_made.consent_unknown", {{"consent", OrNone(d.consent_id())}}));
      } else {
        out->push_back(cat_.T(by_client ? "event.disclosure_made.consent_self"
                                        : "event.disclosure_made.consent_other",
                              {{"granted", granted}}));
      }
    } else {
      out->push_back(cat_.T("event.disclosure_made.basis",
                            {{"basis", EnumLabel(v1::LegalBasis_descriptor(), d.legal_basis())}}));
    }
    if (!d.legal_citation().empty()) {
      out->push_back(cat_.T("event.disclosure_made.citation", {{"citation", d.legal_citation()}}));
    }
    if (!d.person_at_risk().empty()) {
      out->push_back(cat_.T("event.disclosure_made.at_risk", {{"person", d.person_at_risk()}}));
    }
    if (!d.justification().empty()) {
      out->push_back(
          cat_.T("event.disclosure_made.justification", {{"justification", d.justification()}}));
    }
    if (!d.minimum_necessary().empty()) {
      out->push_back(cat_.T("event.disclosure_made.minimum", {{"minimum", d.minimum_necessary()}}));
    }
    if (d.client_informed()) {
      if (d.has_client_informed_at()) {
        out->push_back(
            cat_.T("event.disclosure_made.told", {{"date", Date(d.client_informed_at())}}));
      }
    } else if (d.has_client_informed_at()) {
      out->push_back(
          cat_.T("event.disclosure_made.to_tell", {{"date", Date(d.client_informed_at())}}));
    }
  }

  std::vector<std::string> AccountingRow(const AccountingEntry& a) const {
    std::string to = a.recipient_name.empty() ? a.recipient_id : a.recipient_name;
    if (!a.recipient_address.empty()) to = absl::StrCat(to, ", ", a.recipient_address);
    std::string what = a.description;
    if (what.empty()) {
      google::protobuf::RepeatedPtrField<std::string> cats(a.data_categories.begin(),
                                                           a.data_categories.end());
      what = List(cats);
    }
    std::string basis = EnumLabel(v1::LegalBasis_descriptor(), a.legal_basis);
    if (a.legal_basis == v1::LEGAL_BASIS_CONSENT) {
      std::string granted = ConsentDate(a.basis_detail, nullptr);
      if (!granted.empty())
        basis = cat_.T("accounting.consent_of", {{"basis", basis}, {"date", granted}});
    } else if (!a.basis_detail.empty()) {
      basis = cat_.T("accounting.basis_detail", {{"basis", basis}, {"detail", a.basis_detail}});
    }
    std::string told;
    if (a.client_informed) {
      told = Set(a.client_informed_at)
                 ? cat_.T("accounting.told.yes", {{"date", Date(a.client_informed_at)}})
                 : cat_.T("accounting.told.yes_undated");
    } else {
      told = Set(a.client_informed_at)
                 ? cat_.T("accounting.told.planned", {{"date", Date(a.client_informed_at)}})
                 : cat_.T("accounting.told.no");
    }
    return {DateTime(a.disclosed_at),  OrNone(to),
            Capitalized(OrNone(what)), Capitalized(OrNone(Words(a.purpose))),
            Capitalized(basis),        told};
  }

  void BuildAccounting(Section* s) const {
    s->id = "shared";
    s->heading = cat_.T("accounting.heading");
    s->paragraphs.push_back(cat_.T("accounting.intro"));
    s->paragraphs.push_back(cat_.T("accounting.excluded"));
    const AccountingReport& rep = h_.accounting;
    if (Set(rep.window_start) && Set(rep.window_end)) {
      s->paragraphs.push_back(cat_.T(
          "accounting.window", {{"start", Date(rep.window_start)}, {"end", Date(rep.window_end)}}));
    }
    s->table.head = {cat_.T("accounting.col.date"),  cat_.T("accounting.col.to"),
                     cat_.T("accounting.col.what"),  cat_.T("accounting.col.why"),
                     cat_.T("accounting.col.basis"), cat_.T("accounting.col.told")};
    for (const AccountingEntry& a : rep.entries) s->table.rows.push_back(AccountingRow(a));
    for (const AccountingSummary& sum : rep.summaries) {
      std::vector<std::string> row = AccountingRow(sum.first);
      if (sum.count > 1) {
        row[0] = absl::StrCat(
            row[0], " ",
            cat_.T("accounting.repeated",
                   {{"count", absl::StrCat(sum.count)}, {"date", Date(sum.last_disclosed_at)}}));
      }
      s->table.rows.push_back(std::move(row));
    }
    if (s->table.rows.empty()) s->paragraphs.push_back(cat_.T("accounting.none"));
  }

  void BuildAccess(Section* s) const {
    s->id = "looked";
    s->heading = cat_.T("access.heading");
    s->paragraphs.push_back(cat_.T("access.intro"));
    s->table.head = {cat_.T("access.col.when"), cat_.T("access.col.who"), cat_.T("access.col.role"),
                     cat_.T("access.col.why"), cat_.T("access.col.count")};
    for (const VerifiedRecord& r : h_.records) {
      const v1::Event* e = EventAt(r.record.seq);
      if (e == nullptr || !e->has_record_accessed()) continue;
      const v1::RecordAccessed& b = e->record_accessed();
      s->table.rows.push_back({DateTime(At(r.record.occurred_at_micros)),
                               Capitalized(Person(b.accessor_id())),
                               Capitalized(Role(b.accessor_role())),
                               Capitalized(OrNone(b.purpose())), absl::StrCat(b.seqs_size())});
    }
    if (s->table.rows.empty()) s->paragraphs.push_back(cat_.T("access.none"));
  }

  void BuildChecks(Page* p) const {
    Section* s = &p->checks;
    s->id = "checked";
    s->heading = cat_.T("checks.heading");
    s->paragraphs.push_back(cat_.T("checks.local"));
    s->paragraphs.push_back(absl::StrCat(cat_.T("checks.sealed"), " ", cat_.T("checks.signed")));
    if (h_.withheld_protected > 0 ||
        std::any_of(h_.records.begin(), h_.records.end(),
                    [](const VerifiedRecord& r) { return !r.withheld.empty(); })) {
      s->paragraphs.push_back(cat_.T("checks.hidden"));
    }
    if (h_.since_size.has_value()) {
      s->paragraphs.push_back(cat_.T("checks.since", {{"size", absl::StrCat(*h_.since_size)}}));
    }
    if (!h_.cosigned_by.empty()) {
      s->paragraphs.push_back(
          cat_.T("checks.witnesses", {{"names", absl::StrJoin(h_.cosigned_by, ", ")}}));
    }
    p->details_summary = cat_.T("checks.details");
    p->details.push_back(cat_.T("checks.checkpoint", {{"origin", h_.checkpoint.origin},
                                                      {"size", absl::StrCat(h_.checkpoint.size)},
                                                      {"root", ToHex(h_.checkpoint.root)}}));
    for (const std::string& c : h_.checks) p->details.push_back(c);
  }

  const HistoryVerification& h_;
  const absl::TimeZone tz_;
  const Catalog& cat_;
  std::map<uint64_t, size_t> by_seq_;
  std::map<uint64_t, v1::Event> events_;
  std::map<std::string, Consent> consents_;
  std::map<std::pair<std::string, std::string>, Disclosure> disclosures_;
  std::set<std::string> managers_ever_;
};

absl::StatusOr<Page> BuildPage(const HistoryVerification& h, const RenderOptions& options) {
  absl::StatusOr<Catalog> cat = Catalog::For(options.lang);
  if (!cat.ok()) return cat.status();
  return PageBuilder(h, options, *cat).Build(options.lang);
}

// ---- Plain text ----

// Wraps `text` at `width` bytes, each line starting with `indent`.
void Wrapped(absl::string_view text, absl::string_view indent, std::string* out,
             size_t width = 78) {
  std::string line;
  for (absl::string_view word : absl::StrSplit(text, ' ', absl::SkipEmpty())) {
    if (!line.empty() && indent.size() + line.size() + 1 + word.size() > width) {
      absl::StrAppend(out, indent, line, "\n");
      line.clear();
    }
    absl::StrAppend(&line, line.empty() ? "" : " ", word);
  }
  if (!line.empty()) absl::StrAppend(out, indent, line, "\n");
}

void TextHeading(const std::string& heading, char underline, std::string* out) {
  // Underline by characters, not bytes (UTF-8 continuation bytes do not count).
  size_t chars = 0;
  for (unsigned char c : heading) chars += (c & 0xC0) != 0x80;
  absl::StrAppend(out, heading, "\n", std::string(chars, underline), "\n");
}

void TextSection(const Section& s, std::string* out) {
  absl::StrAppend(out, "\n");
  TextHeading(s.heading, '-', out);
  for (const std::string& para : s.paragraphs) Wrapped(para, "", out);
  for (const auto& row : s.table.rows) {
    absl::StrAppend(out, "\n");
    for (size_t i = 0; i < row.size() && i < s.table.head.size(); ++i) {
      const std::string& head = s.table.head[i];
      Wrapped(absl::StrCat(head, absl::EndsWith(head, "?") ? " " : ": ", row[i]),
              i == 0 ? "- " : "  ", out);
    }
  }
}

std::string TextPage(const Page& p) {
  std::string out;
  TextHeading(p.title, '=', &out);
  Wrapped(p.about, "", &out);
  TextSection(p.verdict, &out);
  TextSection(p.events, &out);
  int n = 0;
  for (const EventItem& e : p.items) {
    absl::StrAppend(&out, "\n", ++n, ". ", e.title, "\n");
    Wrapped(e.case_label.empty() ? e.when : absl::StrCat(e.when, " - ", e.case_label), "   ", &out);
    for (const std::string& line : e.lines) Wrapped(line, "   ", &out);
    for (const std::string& note : e.notes) Wrapped(absl::StrCat("* ", note), "   ", &out);
  }
  TextSection(p.accounting, &out);
  TextSection(p.access, &out);
  TextSection(p.checks, &out);
  absl::StrAppend(&out, "\n", p.details_summary, ":\n");
  for (const std::string& d : p.details) Wrapped(d, "  ", &out);
  absl::StrAppend(&out, "\n");
  Wrapped(p.help, "", &out);
  return out;
}

// ---- HTML ----

std::string Esc(absl::string_view s) {
  return absl::StrReplaceAll(
      s, {{"&", "&amp;"}, {"<", "&lt;"}, {">", "&gt;"}, {"\"", "&quot;"}, {"'", "&#39;"}});
}

// Inline, so the page is one file. Single column; tables become labelled
// blocks below 40em; 4.5:1 contrast or better for all text.
constexpr char kCss[] = R"css(
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%;text-size-adjust:100%}
body{margin:0;background:#fff;color:#1a1a1a;font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;font-size:1.125rem;line-height:1.55;overflow-wrap:anywhere;word-wrap:break-word}
main{max-width:42rem;margin:0 auto;padding:1rem 1.1rem 3rem}
h1{font-size:1.75rem;line-height:1.25;margin:.5rem 0 .25rem}
h2{font-size:1.35rem;line-height:1.3;margin:2.25rem 0 .5rem;padding-bottom:.25rem;border-bottom:2px solid #d0d7de}
h3{font-size:1.1rem;margin:0 0 .15rem}
p{margin:.5rem 0}
.about{color:#3d3d3d;margin-top:0}
.verdict{background:#eaf5ec;border-left:.4rem solid #1b6e33;padding:.75rem 1rem;margin-top:1rem}
.verdict h2{margin-top:0;border:0}
.verdict p{font-size:1.2rem}
ol.events{list-style:none;margin:0;padding:0}
.event{border:1px solid #d0d7de;border-radius:.4rem;padding:.75rem .9rem;margin:.75rem 0}
.meta{color:#3d3d3d;font-size:1rem;margin:0 0 .4rem}
.withheld{background:#f4f4f4;border-left:.3rem solid #6a6a6a;padding:.35rem .6rem;color:#2b2b2b}
table{border-collapse:collapse;width:100%;margin:.75rem 0;font-size:1rem}
th,td{border:1px solid #c4ccd4;padding:.45rem .55rem;text-align:left;vertical-align:top}
th{background:#eef1f4}
details{margin:1rem 0;border:1px solid #d0d7de;border-radius:.4rem;padding:.5rem .8rem}
summary{cursor:pointer;font-weight:600}
.tech{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.85rem;padding-left:1.1rem}
footer{margin-top:2.5rem;border-top:2px solid #d0d7de;padding-top:.75rem}
@media (max-width:40em){
 table,thead,tbody,tr,th,td{display:block}
 thead tr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
 tr{border:1px solid #c4ccd4;border-radius:.4rem;margin:.75rem 0;padding:.25rem .5rem}
 td{border:0;border-bottom:1px solid #e3e7eb;padding:.35rem 0}
 td:last-child{border-bottom:0}
 td::before{content:attr(data-label);display:block;font-weight:600;font-size:.9rem;color:#3d3d3d}
}
@media print{
 body{font-size:11pt;color:#000;background:none}
 main{max-width:none;padding:0}
 .verdict,.withheld,th{background:none}
 .verdict{border:2px solid #000}
 .event,tr,.verdict{break-inside:avoid;page-break-inside:avoid}
 h2,h3{break-after:avoid;page-break-after:avoid}
 details{border:0;padding:0}
}
)css";

void HtmlParagraphs(const Section& s, std::string* out) {
  for (const std::string& para : s.paragraphs) absl::StrAppend(out, "<p>", Esc(para), "</p>\n");
}

void HtmlTable(const Table& t, std::string* out) {
  if (t.rows.empty()) return;
  absl::StrAppend(out, "<table>\n<thead><tr>");
  for (const std::string& h : t.head) absl::StrAppend(out, "<th scope=\"col\">", Esc(h), "</th>");
  absl::StrAppend(out, "</tr></thead>\n<tbody>\n");
  for (const auto& row : t.rows) {
    absl::StrAppend(out, "<tr>");
    for (size_t i = 0; i < row.size(); ++i) {
      absl::StrAppend(out, "<td data-label=\"", Esc(i < t.head.size() ? t.head[i] : ""), "\">",
                      Esc(row[i]), "</td>");
    }
    absl::StrAppend(out, "</tr>\n");
  }
  absl::StrAppend(out, "</tbody>\n</table>\n");
}

void HtmlSectionStart(const Section& s, const char* cls, std::string* out) {
  absl::StrAppend(out, "<section", cls[0] ? absl::StrCat(" class=\"", cls, "\"") : "",
                  " aria-labelledby=\"", s.id, "\">\n<h2 id=\"", s.id, "\">", Esc(s.heading),
                  "</h2>\n");
}

std::string HtmlPage(const Page& p) {
  std::string out;
  absl::StrAppend(&out, "<!DOCTYPE html>\n<html lang=\"", Esc(p.lang), "\">\n<head>\n",
                  "<meta charset=\"utf-8\">\n",
                  "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n",
                  "<title>", Esc(p.title), "</title>\n<style>", kCss,
                  "</style>\n</head>\n<body>\n<main>\n", "<h1>", Esc(p.title),
                  "</h1>\n<p class=\"about\">", Esc(p.about), "</p>\n");
  HtmlSectionStart(p.verdict, "verdict", &out);
  HtmlParagraphs(p.verdict, &out);
  absl::StrAppend(&out, "</section>\n");

  HtmlSectionStart(p.events, "", &out);
  HtmlParagraphs(p.events, &out);
  if (!p.items.empty()) {
    absl::StrAppend(&out, "<ol class=\"events\">\n");
    for (const EventItem& e : p.items) {
      absl::StrAppend(&out, "<li class=\"event\">\n<h3>", Esc(e.title), "</h3>\n<p class=\"meta\">",
                      Esc(e.when));
      if (!e.case_label.empty()) absl::StrAppend(&out, " · ", Esc(e.case_label));
      absl::StrAppend(&out, "</p>\n");
      for (const std::string& line : e.lines) absl::StrAppend(&out, "<p>", Esc(line), "</p>\n");
      for (const std::string& note : e.notes) {
        absl::StrAppend(&out, "<p class=\"withheld\">", Esc(note), "</p>\n");
      }
      absl::StrAppend(&out, "</li>\n");
    }
    absl::StrAppend(&out, "</ol>\n");
  }
  absl::StrAppend(&out, "</section>\n");

  for (const Section* s : {&p.accounting, &p.access}) {
    HtmlSectionStart(*s, "", &out);
    HtmlParagraphs(*s, &out);
    HtmlTable(s->table, &out);
    absl::StrAppend(&out, "</section>\n");
  }

  HtmlSectionStart(p.checks, "", &out);
  HtmlParagraphs(p.checks, &out);
  absl::StrAppend(&out, "<details>\n<summary>", Esc(p.details_summary),
                  "</summary>\n<ul class=\"tech\">\n");
  for (const std::string& d : p.details) absl::StrAppend(&out, "<li>", Esc(d), "</li>\n");
  absl::StrAppend(&out, "</ul>\n</details>\n</section>\n");

  absl::StrAppend(&out, "<footer>\n<p>", Esc(p.help),
                  "</p>\n</footer>\n</main>\n</body>\n</html>\n");
  return out;
}

}  // namespace

std::vector<std::string> SupportedLanguages() { return CatalogLanguages(); }

absl::StatusOr<std::string> RenderHistoryText(const HistoryVerification& h,
                                              const RenderOptions& options) {
  absl::StatusOr<Page> page = BuildPage(h, options);
  if (!page.ok()) return page.status();
  return TextPage(*page);
}

absl::StatusOr<std::string> RenderHistoryHtml(const HistoryVerification& h,
                                              const RenderOptions& options) {
  absl::StatusOr<Page> page = BuildPage(h, options);
  if (!page.ok()) return page.status();
  return HtmlPage(*page);
}

}  // namespace caseledger
