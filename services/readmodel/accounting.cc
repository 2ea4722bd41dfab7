#include "services/readmodel/accounting.h"

#include <algorithm>
#include <set>
#include <tuple>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "ledger/internal/json.h"
#include "ledger/internal/status_macros.h"
#include "services/readmodel/case_state.h"
#include "services/readmodel/case_state.pb.h"

namespace caseledger {
namespace {

namespace pv1 = ::caseledger::projection::v1;

constexpr uint32_t kFormatVersion = 1;

bool ByDate(const AccountingEntry& a, const AccountingEntry& b) {
  return std::tie(a.disclosed_at, a.seq) < std::tie(b.disclosed_at, b.seq);
}

// ---- JSON ----

std::string JsonTime(absl::Time t) {
  if (t == absl::InfinitePast() || t == absl::InfiniteFuture()) return "null";
  return JsonQuote(FormatUtc(t));
}

// "LEGAL_BASIS_REQUIRED_BY_LAW" -> "required_by_law".
std::string BasisName(v1::LegalBasis b) {
  std::string name = v1::LegalBasis_Name(b);
  if (name.empty()) return absl::StrCat(static_cast<int>(b));
  return absl::AsciiStrToLower(absl::StripPrefix(name, "LEGAL_BASIS_"));
}

void EntryJson(const AccountingEntry& e, absl::string_view ind, std::string* out) {
  const std::string in2 = absl::StrCat(ind, "  ");
  absl::StrAppend(out, "{\n");
  absl::StrAppend(out, in2, "\"date\": ", JsonTime(e.disclosed_at), ",\n");
  absl::StrAppend(out, in2, "\"disclosure_id\": ", JsonQuote(e.disclosure_id), ",\n");
  absl::StrAppend(out, in2, "\"case_id\": ", JsonQuote(e.case_id), ",\n");
  absl::StrAppend(out, in2, "\"recipient\": {\"name\": ", JsonQuote(e.recipient_name),
                  ", \"address\": ", JsonQuote(e.recipient_address), "},\n");
  absl::StrAppend(out, in2, "\"description\": ", JsonQuote(e.description), ",\n");
  absl::StrAppend(out, in2, "\"data_categories\": [");
  for (size_t i = 0; i < e.data_categories.size(); ++i) {
    absl::StrAppend(out, i ? ", " : "", JsonQuote(e.data_categories[i]));
  }
  absl::StrAppend(out, "],\n");
  absl::StrAppend(out, in2, "\"purpose\": ", JsonQuote(e.purpose), ",\n");
  absl::StrAppend(out, in2, "\"basis\": ", JsonQuote(BasisName(e.legal_basis)), ",\n");
  absl::StrAppend(out, in2, "\"basis_detail\": ", JsonQuote(e.basis_detail), ",\n");
  absl::StrAppend(out, in2, "\"excluded_from_accounting\": ", e.excluded ? "true" : "false", ",\n");
  if (e.excluded) {
    absl::StrAppend(out, in2, "\"exclusion_reason\": ", JsonQuote(e.exclusion_reason), ",\n");
  }
  absl::StrAppend(out, in2, "\"client_informed\": ", e.client_informed ? "true" : "false");
  if (e.client_informed) {
    absl::StrAppend(out, ",\n", in2, "\"client_informed_at\": ", JsonTime(e.client_informed_at));
  }
  absl::StrAppend(out, "\n", ind, "}");
}

// The same calendar time `years` years earlier, in UTC.
absl::Time YearsBefore(absl::Time t, int years) {
  const absl::TimeZone utc = absl::UTCTimeZone();
  const absl::CivilSecond c = absl::ToCivilSecond(t, utc);
  return absl::FromCivil(
      absl::CivilSecond(c.year() - years, c.month(), c.day(), c.hour(), c.minute(), c.second()),
      utc);
}

// The "disclosures" member: each entry in full.
void DisclosuresJson(const std::vector<AccountingEntry>& entries, std::string* out) {
  absl::StrAppend(out, "  \"disclosures\": [");
  for (size_t i = 0; i < entries.size(); ++i) {
    absl::StrAppend(out, i ? ",\n    " : "\n    ");
    EntryJson(entries[i], "    ", out);
  }
  absl::StrAppend(out, entries.empty() ? "]\n" : "\n  ]\n");
}

void EntryToRecord(const AccountingEntry& a, pv1::AccountingEntryRecord* o) {
  o->set_case_id(a.case_id);
  o->set_disclosure_id(a.disclosure_id);
  o->set_client_id(a.client_id);
  o->set_seq(a.seq);
  o->set_disclosed_at_micros(TimeToMicros(a.disclosed_at));
  o->set_recipient_id(a.recipient_id);
  o->set_recipient_name(a.recipient_name);
  o->set_recipient_address(a.recipient_address);
  o->set_description(a.description);
  o->set_purpose(a.purpose);
  for (const auto& cat : a.data_categories) o->add_data_categories(cat);
  o->set_legal_basis(a.legal_basis);
  o->set_basis_detail(a.basis_detail);
  o->set_excluded(a.excluded);
  o->set_exclusion_reason(a.exclusion_reason);
  o->set_client_informed(a.client_informed);
  o->set_client_informed_at_micros(TimeToMicros(a.client_informed_at));
  o->set_client_informed_method(a.client_informed_method);
  o->set_disclosed_by(a.disclosed_by);
}

AccountingEntry EntryFromRecord(const pv1::AccountingEntryRecord& o) {
  AccountingEntry a;
  a.case_id = o.case_id();
  a.disclosure_id = o.disclosure_id();
  a.client_id = o.client_id();
  a.seq = o.seq();
  a.disclosed_at = TimeFromMicros(o.disclosed_at_micros());
  a.recipient_id = o.recipient_id();
  a.recipient_name = o.recipient_name();
  a.recipient_address = o.recipient_address();
  a.description = o.description();
  a.purpose = o.purpose();
  a.data_categories.assign(o.data_categories().begin(), o.data_categories().end());
  a.legal_basis = static_cast<v1::LegalBasis>(o.legal_basis());
  a.basis_detail = o.basis_detail();
  a.excluded = o.excluded();
  a.exclusion_reason = o.exclusion_reason();
  a.client_informed = o.client_informed();
  a.client_informed_at = TimeFromMicros(o.client_informed_at_micros());
  a.client_informed_method = o.client_informed_method();
  a.disclosed_by = o.disclosed_by();
  return a;
}

// ---- Rows ----

constexpr char kEntryKind[] = "entry";
constexpr char kSuspensionKind[] = "suspension";

std::string RowKey(absl::string_view kind, uint64_t n) {
  return absl::StrCat(std::string(1, '\0'), kind, std::string(1, '\0'),
                      absl::Hex(n, absl::kZeroPad16));
}

// Splits a row key into its kind and number; false for another form.
bool ParseRowKey(absl::string_view key, absl::string_view* kind, uint64_t* n) {
  if (key.size() < 2 + 16 || key[0] != '\0' || key[key.size() - 17] != '\0') return false;
  *kind = key.substr(1, key.size() - 18);
  return absl::SimpleHexAtoi(key.substr(key.size() - 16), n);
}

const AccountingEntry* FindBySeq(const std::vector<AccountingEntry>& list, uint64_t seq) {
  auto it = std::lower_bound(list.begin(), list.end(), seq,
                             [](const AccountingEntry& x, uint64_t s) { return x.seq < s; });
  return it != list.end() && it->seq == seq ? &*it : nullptr;
}

}  // namespace

bool ExcludedFromAccounting(v1::LegalBasis basis, std::string* reason) {
  const char* why = nullptr;
  switch (basis) {
    case v1::LEGAL_BASIS_TREATMENT:
      why = "45 CFR 164.528(a)(1)(i): treatment";
      break;
    case v1::LEGAL_BASIS_PAYMENT:
      why = "45 CFR 164.528(a)(1)(i): payment";
      break;
    case v1::LEGAL_BASIS_OPERATIONS:
      why = "45 CFR 164.528(a)(1)(i): health care operations";
      break;
    case v1::LEGAL_BASIS_TO_CLIENT:
      why = "45 CFR 164.528(a)(1)(ii): to the individual";
      break;
    case v1::LEGAL_BASIS_CONSENT:
      why = "45 CFR 164.528(a)(1)(iv): pursuant to an authorization";
      break;
    default:
      return false;
  }
  if (reason != nullptr) *reason = why;
  return true;
}

AccountingEntry AccountingEntryFromEvent(const v1::Event& e, uint64_t seq) {
  const auto& d = e.disclosure_made();
  AccountingEntry a;
  a.case_id = e.stream_id();
  a.disclosure_id = d.disclosure_id();
  a.client_id = d.client_id();
  a.seq = seq;
  a.disclosed_at = TimeFromProto(e.occurred_at());
  a.recipient_id = d.recipient().recipient_id();
  a.recipient_name = d.recipient().name();
  a.recipient_address = d.recipient().address();
  a.description = d.description();
  a.purpose = d.purpose();
  a.data_categories.assign(d.data_categories().begin(), d.data_categories().end());
  a.legal_basis = d.legal_basis();
  switch (d.legal_basis()) {
    case v1::LEGAL_BASIS_CONSENT:
      a.basis_detail = d.consent_id();
      break;
    case v1::LEGAL_BASIS_REQUIRED_BY_LAW:
    case v1::LEGAL_BASIS_PART2_COURT_ORDER:
      a.basis_detail = d.legal_citation();
      break;
    default:
      break;
  }
  a.disclosed_by = d.disclosed_by();
  a.excluded = ExcludedFromAccounting(d.legal_basis(), &a.exclusion_reason);
  if (d.client_informed()) {
    a.client_informed = true;
    a.client_informed_at =
        d.has_client_informed_at() ? TimeFromProto(d.client_informed_at()) : a.disclosed_at;
  }
  return a;
}

absl::Time DefaultAccountingWindowStart(absl::Time now) { return YearsBefore(now, 6); }

absl::Time Part2ListWindowStart(absl::Time received_at) { return YearsBefore(received_at, 3); }

bool SuspensionInForce(const AccountingSuspension& s, absl::Time as_of) {
  return s.suspended_at <= as_of && as_of < s.ends_at;
}

bool SuspensionCovers(const AccountingSuspension& s, const AccountingEntry& a, absl::Time as_of) {
  if (!SuspensionInForce(s, as_of) || s.case_id != a.case_id || s.client_id != a.client_id ||
      a.disclosed_at >= s.ends_at) {
    return false;
  }
  return (!s.agency_id.empty() && s.agency_id == a.recipient_id) ||
         (!s.agency_name.empty() && s.agency_name == a.recipient_name);
}

void DisclosureAccounting::Index(const std::string& client_id, size_t i) {
  const AccountingEntry& a = by_client_[client_id][i];
  index_.emplace(std::make_pair(a.case_id, a.disclosure_id), std::make_pair(client_id, i));
}

absl::Status DisclosureAccounting::Apply(const v1::Event& e, uint64_t seq) {
  if (e.body_case() != v1::Event::kDisclosureMade && e.body_case() != v1::Event::kClientInformed &&
      e.body_case() != v1::Event::kAccountingSuspended) {
    return absl::OkStatus();
  }
  if (!e.has_occurred_at()) {
    return absl::InvalidArgumentError(
        absl::StrCat("event.occurred_at: must be set (event at seq ", seq, ")"));
  }
  if (e.has_accounting_suspended()) {
    // The case state folds it the same way; one fold for both read models.
    CaseState folded;
    CL_RETURN_IF_ERROR(ApplyEvent(e, seq, TimeFromProto(e.occurred_at()), &folded));
    for (auto& [id, s] : folded.accounting_suspensions) {
      suspensions_[s.client_id].push_back(std::move(s));
    }
    return absl::OkStatus();
  }
  if (e.has_disclosure_made()) {
    AccountingEntry a = AccountingEntryFromEvent(e, seq);
    std::string client = a.client_id;
    auto& list = by_client_[client];
    if (list.empty() || list.back().seq < seq) {
      list.push_back(std::move(a));
      Index(client, list.size() - 1);
      return absl::OkStatus();
    }
    // Re-applied after ForgetCases: keep seq order, then re-index the client.
    auto at = std::upper_bound(list.begin(), list.end(), seq,
                               [](uint64_t s, const AccountingEntry& x) { return s < x.seq; });
    list.insert(at, std::move(a));
    Reindex();
    return absl::OkStatus();
  }
  auto it = index_.find(std::make_pair(e.stream_id(), e.client_informed().disclosure_id()));
  if (it == index_.end()) return absl::OkStatus();
  AccountingEntry& a = by_client_[it->second.first][it->second.second];
  if (a.client_informed) return absl::OkStatus();
  a.client_informed = true;
  a.client_informed_at = TimeFromProto(e.occurred_at());
  a.client_informed_method = e.client_informed().method();
  return absl::OkStatus();
}

void DisclosureAccounting::Reindex() {
  index_.clear();
  for (const auto& [client, list] : by_client_) {
    for (size_t i = 0; i < list.size(); ++i) Index(client, i);
  }
}

void DisclosureAccounting::ForgetCases(const std::set<std::string>& case_ids) {
  for (auto& [client, list] : by_client_) {
    list.erase(std::remove_if(list.begin(), list.end(),
                              [&](const AccountingEntry& a) { return case_ids.count(a.case_id) > 0; }),
               list.end());
  }
  for (auto it = by_client_.begin(); it != by_client_.end();) {
    it = it->second.empty() ? by_client_.erase(it) : std::next(it);
  }
  Reindex();
}

const std::vector<AccountingEntry>& DisclosureAccounting::entries(
    absl::string_view client_id) const {
  static const std::vector<AccountingEntry>* const kEmpty = new std::vector<AccountingEntry>();
  auto it = by_client_.find(client_id);
  return it == by_client_.end() ? *kEmpty : it->second;
}

std::vector<std::string> DisclosureAccounting::client_ids() const {
  std::vector<std::string> out;
  for (const auto& [id, list] : by_client_) out.push_back(id);
  return out;
}

const std::vector<AccountingSuspension>& DisclosureAccounting::suspensions(
    absl::string_view client_id) const {
  static const std::vector<AccountingSuspension>* const kNone =
      new std::vector<AccountingSuspension>();
  auto it = suspensions_.find(client_id);
  return it == suspensions_.end() ? *kNone : it->second;
}

AccountingReport DisclosureAccounting::Query(absl::string_view client_id, absl::Time window_start,
                                             absl::Time window_end, bool include_excluded,
                                             bool summarize, absl::Time as_of) const {
  // 164.528(a)(2): left out only while the suspension lasts.
  auto suspended = [&](const AccountingEntry& a) {
    for (const AccountingSuspension& s : suspensions(client_id)) {
      if (SuspensionCovers(s, a, as_of)) return true;
    }
    return false;
  };
  AccountingReport r;
  r.client_id = std::string(client_id);
  r.window_start = window_start;
  r.window_end = window_end;
  r.include_excluded = include_excluded;
  r.summarized = summarize;
  std::vector<AccountingEntry> selected;
  for (const AccountingEntry& a : entries(client_id)) {
    if (a.disclosed_at < window_start || a.disclosed_at >= window_end) continue;
    if (a.excluded && !include_excluded) continue;
    if (suspended(a)) continue;
    selected.push_back(a);
  }
  std::sort(selected.begin(), selected.end(), ByDate);
  if (!summarize) {
    r.entries = std::move(selected);
    return r;
  }
  // (recipient, purpose, excluded) -> index in r.summaries
  std::map<std::tuple<std::string, std::string, bool>, size_t> groups;
  for (AccountingEntry& a : selected) {
    auto key = std::make_tuple(a.recipient_id.empty() ? a.recipient_name : a.recipient_id,
                               a.purpose, a.excluded);
    auto [it, added] = groups.emplace(key, r.summaries.size());
    if (added) {
      r.summaries.push_back(AccountingSummary{a, 1, a.disclosed_at});
      continue;
    }
    AccountingSummary& s = r.summaries[it->second];
    s.count++;
    s.last_disclosed_at = a.disclosed_at;
  }
  return r;
}

std::vector<std::string> DisclosureAccounting::RowsTouchedBy(const v1::Event& e, uint64_t seq,
                                                           absl::string_view client_id) const {
  std::vector<std::string> out;
  if (e.has_disclosure_made()) {
    out.push_back(RowKey(kEntryKind, seq));
  } else if (e.has_client_informed()) {
    for (const AccountingEntry& a : entries(client_id)) {
      if (a.case_id == e.stream_id() && a.disclosure_id == e.client_informed().disclosure_id()) {
        out.push_back(RowKey(kEntryKind, a.seq));
      }
    }
  } else if (e.has_accounting_suspended()) {
    out.push_back(RowKey(kSuspensionKind, suspensions(client_id).size()));
  }
  return out;
}

std::vector<std::string> DisclosureAccounting::RowsOfCases(
    absl::string_view client_id, const std::set<std::string>& case_ids) const {
  std::vector<std::string> out;
  for (const AccountingEntry& a : entries(client_id)) {
    if (case_ids.count(a.case_id) > 0) out.push_back(RowKey(kEntryKind, a.seq));
  }
  return out;
}

std::optional<std::string> DisclosureAccounting::Row(absl::string_view client_id,
                                                     absl::string_view row_key) const {
  absl::string_view kind;
  uint64_t n = 0;
  if (!ParseRowKey(row_key, &kind, &n)) return std::nullopt;
  if (kind == kEntryKind) {
    const AccountingEntry* a = FindBySeq(entries(client_id), n);
    if (a == nullptr) return std::nullopt;
    pv1::AccountingEntryRecord r;
    EntryToRecord(*a, &r);
    return DeterministicBytes(r);
  }
  if (kind == kSuspensionKind) {
    const std::vector<AccountingSuspension>& list = suspensions(client_id);
    if (n >= list.size()) return std::nullopt;
    pv1::AccountingSuspensionRecord r;
    EncodeSuspension(list[n], &r);
    return DeterministicBytes(r);
  }
  return std::nullopt;
}

void DisclosureAccounting::ForEachRow(
    absl::string_view client_id,
    const std::function<void(const std::string&, const std::string&)>& fn) const {
  for (const AccountingEntry& a : entries(client_id)) {
    const std::string key = RowKey(kEntryKind, a.seq);
    fn(key, *Row(client_id, key));
  }
  for (size_t i = 0; i < suspensions(client_id).size(); ++i) {
    const std::string key = RowKey(kSuspensionKind, i);
    fn(key, *Row(client_id, key));
  }
}

absl::Status DisclosureAccounting::AddRow(const std::string& client_id, absl::string_view row_key,
                                          absl::string_view value) {
  absl::string_view kind;
  uint64_t n = 0;
  if (!ParseRowKey(row_key, &kind, &n)) {
    return absl::InvalidArgumentError(absl::StrCat("disclosure accounting: row key \"",
                                                   absl::CHexEscape(row_key),
                                                   "\" is not 0x00 kind 0x00 16 hex digits"));
  }
  if (kind == kEntryKind) {
    pv1::AccountingEntryRecord r;
    if (!r.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
      return absl::InvalidArgumentError(absl::StrCat(
          "disclosure accounting: entry row ", n, " (", value.size(),
          " bytes) does not parse as an AccountingEntryRecord"));
    }
    if (r.seq() != n) {
      return absl::InvalidArgumentError(absl::StrCat(
          "disclosure accounting: entry row ", n, " holds seq got ", r.seq(), ", want ", n));
    }
    auto& list = by_client_[client_id];
    if (!list.empty() && list.back().seq >= n) {
      return absl::InvalidArgumentError(absl::StrCat("disclosure accounting: entry row ", n,
                                                     " after entry ", list.back().seq,
                                                     ": want rows in seq order"));
    }
    list.push_back(EntryFromRecord(r));
    Index(client_id, list.size() - 1);
    return absl::OkStatus();
  }
  if (kind == kSuspensionKind) {
    pv1::AccountingSuspensionRecord r;
    if (!r.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
      return absl::InvalidArgumentError(absl::StrCat(
          "disclosure accounting: suspension row ", n, " (", value.size(),
          " bytes) does not parse as an AccountingSuspensionRecord"));
    }
    auto& list = suspensions_[client_id];
    if (n != list.size()) {
      return absl::InvalidArgumentError(absl::StrCat("disclosure accounting: suspension row got ",
                                                     n, ", want ", list.size()));
    }
    list.push_back(DecodeSuspension(r));
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("disclosure accounting: unknown row kind \"", absl::CHexEscape(kind), "\""));
}

std::string DisclosureAccounting::Encode() const {
  pv1::AccountingRecord rec;
  rec.set_format_version(kFormatVersion);
  // Clients with disclosures or suspensions, in client_id order.
  std::set<std::string> clients;
  for (const auto& [client, list] : by_client_) clients.insert(client);
  for (const auto& [client, list] : suspensions_) clients.insert(client);
  for (const std::string& client : clients) {
    const std::vector<AccountingEntry>& list = entries(client);
    auto* c = rec.add_clients();
    c->set_format_version(kFormatVersion);
    c->set_client_id(client);
    for (const AccountingEntry& a : list) {
      EntryToRecord(a, c->add_entries());
    }
    for (const AccountingSuspension& a : suspensions(client)) {
      EncodeSuspension(a, c->add_suspensions());
    }
  }
  return DeterministicBytes(rec);
}

absl::StatusOr<DisclosureAccounting> DisclosureAccounting::Decode(absl::string_view bytes) {
  pv1::AccountingRecord rec;
  if (!rec.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::InvalidArgumentError(absl::StrCat("disclosure accounting: ", bytes.size(),
                                                   " bytes do not parse as an AccountingRecord"));
  }
  if (rec.format_version() != kFormatVersion) {
    return absl::InvalidArgumentError(absl::StrCat("disclosure accounting: format_version got ",
                                                   rec.format_version(), ", want ",
                                                   kFormatVersion));
  }
  DisclosureAccounting out;
  for (const auto& c : rec.clients()) {
    auto& list = out.by_client_[c.client_id()];
    for (const auto& o : c.entries()) {
      list.push_back(EntryFromRecord(o));
      out.Index(c.client_id(), list.size() - 1);
    }
    if (c.entries().empty()) out.by_client_.erase(c.client_id());
    for (const auto& o : c.suspensions()) {
      out.suspensions_[c.client_id()].push_back(DecodeSuspension(o));
    }
  }
  return out;
}

std::string AccountingReportToJson(const AccountingReport& r) {
  std::string out = "{\n";
  absl::StrAppend(&out, "  \"client_id\": ", JsonQuote(r.client_id), ",\n");
  absl::StrAppend(&out, "  \"window\": {\"from\": ", JsonTime(r.window_start),
                  ", \"to\": ", JsonTime(r.window_end), "},\n");
  absl::StrAppend(&out, "  \"includes_excluded\": ", r.include_excluded ? "true" : "false", ",\n");
  if (!r.summarized) {
    DisclosuresJson(r.entries, &out);
  } else {
    absl::StrAppend(&out, "  \"summaries\": [");
    for (size_t i = 0; i < r.summaries.size(); ++i) {
      const AccountingSummary& s = r.summaries[i];
      absl::StrAppend(&out, i ? ",\n    " : "\n    ", "{\n");
      absl::StrAppend(&out, "      \"count\": ", s.count, ",\n");
      absl::StrAppend(&out, "      \"last_date\": ", JsonTime(s.last_disclosed_at), ",\n");
      absl::StrAppend(&out, "      \"first\": ");
      EntryJson(s.first, "      ", &out);
      absl::StrAppend(&out, "\n    }");
    }
    absl::StrAppend(&out, r.summaries.empty() ? "]\n" : "\n  ]\n");
  }
  absl::StrAppend(&out, "}\n");
  return out;
}

Part2DisclosureList QueryPart2List(const std::vector<AccountingEntry>& client_entries,
                                   absl::string_view case_id, const Consent& consent,
                                   const Part2ListRequest& request, absl::Time as_of) {
  Part2DisclosureList l;
  l.client_id = request.client_id;
  l.case_id = std::string(case_id);
  l.request_id = request.request_id;
  l.consent_id = consent.consent_id;
  l.general_designation = consent.general_designation;
  l.intermediary = consent.intermediary;
  l.received_at = request.received_at;
  l.due_at = request.due_at;
  l.window_start = Part2ListWindowStart(request.received_at);
  l.window_end = as_of;
  if (consent.general_designation.empty()) return l;
  for (const AccountingEntry& a : client_entries) {
    if (a.case_id != case_id || a.client_id != request.client_id ||
        a.legal_basis != v1::LEGAL_BASIS_CONSENT || a.basis_detail != consent.consent_id ||
        a.disclosed_by != consent.intermediary ||
        consent.NamesRecipient(a.recipient_id, a.recipient_name) ||
        a.disclosed_at < l.window_start || a.disclosed_at > l.window_end) {
      continue;
    }
    l.entries.push_back(a);
  }
  std::sort(l.entries.begin(), l.entries.end(), ByDate);
  return l;
}

std::string Part2DisclosureListToJson(const Part2DisclosureList& l) {
  std::string out = "{\n";
  absl::StrAppend(&out, "  \"rule\": \"42 CFR 2.24\",\n");
  absl::StrAppend(&out, "  \"client_id\": ", JsonQuote(l.client_id), ",\n");
  absl::StrAppend(&out, "  \"case_id\": ", JsonQuote(l.case_id), ",\n");
  absl::StrAppend(&out, "  \"request_id\": ", JsonQuote(l.request_id), ",\n");
  absl::StrAppend(&out, "  \"consent_id\": ", JsonQuote(l.consent_id), ",\n");
  absl::StrAppend(&out, "  \"general_designation\": ", JsonQuote(l.general_designation), ",\n");
  absl::StrAppend(&out, "  \"intermediary\": ", JsonQuote(l.intermediary), ",\n");
  absl::StrAppend(&out, "  \"received_at\": ", JsonTime(l.received_at), ",\n");
  absl::StrAppend(&out, "  \"due_at\": ", JsonTime(l.due_at), ",\n");
  absl::StrAppend(&out, "  \"window_start\": ", JsonTime(l.window_start), ",\n");
  absl::StrAppend(&out, "  \"window_end\": ", JsonTime(l.window_end), ",\n");
  DisclosuresJson(l.entries, &out);
  absl::StrAppend(&out, "}\n");
  return out;
}

}  // namespace caseledger
