// The accounting of disclosures per client (45 CFR 164.528; 42 CFR 2.24 list
// of disclosures), built from committed disclosure_made events and updated by
// client_informed. Every disclosure is kept; those HIPAA excludes from the
// accounting (treatment, payment, health care operations, to the client,
// under an authorization i.e. consent) are flagged with the reason and left
// out of a query unless asked for. Repeated disclosures to the same recipient
// for the same purpose can be summarized (164.528(b)(3)): the first in full,
// how many, and the date of the last. A suspension at an agency's request
// (accounting_suspended, 164.528(a)(2)) leaves the disclosures of its case to
// that agency out of every query made while it lasts.
#ifndef CASELEDGER_SERVICES_ACCOUNTING_H_
#define CASELEDGER_SERVICES_ACCOUNTING_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "proto/events.pb.h"
#include "services/readmodel/case_state.h"

namespace caseledger {

struct AccountingEntry {
  std::string case_id;  // the stream the disclosure was recorded in
  std::string disclosure_id;
  std::string client_id;
  uint64_t seq = 0;                                // ledger seq of the disclosure_made event
  absl::Time disclosed_at = absl::InfinitePast();  // occurred_at
  std::string recipient_id;
  std::string recipient_name;
  std::string recipient_address;
  std::string description;  // what was disclosed
  std::string purpose;
  std::vector<std::string> data_categories;
  v1::LegalBasis legal_basis = v1::LEGAL_BASIS_UNSPECIFIED;
  // The consent id (consent) or legal citation (required_by_law, court
  // order); empty otherwise. Protected details (person_at_risk) are not kept.
  std::string basis_detail;
  std::string disclosed_by;
  bool excluded = false;         // excluded from the HIPAA accounting
  std::string exclusion_reason;  // e.g. "45 CFR 164.528(a)(1)(i): treatment"
  bool client_informed = false;
  absl::Time client_informed_at = absl::InfinitePast();
  std::string client_informed_method;
};

// Repeated disclosures to one recipient (recipient_id, else name) for one
// purpose, with the same excluded flag.
struct AccountingSummary {
  AccountingEntry first;  // the first in the window, in full
  uint64_t count = 0;
  absl::Time last_disclosed_at = absl::InfinitePast();
};

struct AccountingReport {
  std::string client_id;
  absl::Time window_start = absl::InfinitePast();  // inclusive
  absl::Time window_end = absl::InfiniteFuture();  // exclusive
  bool include_excluded = false;
  bool summarized = false;
  std::vector<AccountingEntry> entries;      // unless summarized; by date, then seq
  std::vector<AccountingSummary> summaries;  // if summarized; by first date, then seq
};

// True, with the rule in *reason, for a basis 164.528(a)(1) excludes from the
// accounting. *reason may be null.
bool ExcludedFromAccounting(v1::LegalBasis basis, std::string* reason);

// The accounting entry for a disclosure_made event (ignores other bodies'
// contents; the caller passes a disclosure_made event).
AccountingEntry AccountingEntryFromEvent(const v1::Event& e, uint64_t seq);

// 45 CFR 164.528(a)(2) as RULES.md W6.3 reads it: `s` is in force at `as_of`
// (suspended_at <= as_of < ends_at) and covers `a`: a disclosure of the same
// client and case, dated before ends_at, to the agency (recipient_id equals a
// non-empty agency_id, or the recipient's name equals a non-empty
// agency_name). The accounting query and the history bundle's withholding
// (HISTORY_BUNDLE.md reason 6) both ask this.
bool SuspensionInForce(const AccountingSuspension& s, absl::Time as_of);
bool SuspensionCovers(const AccountingSuspension& s, const AccountingEntry& a, absl::Time as_of);

// The default accounting window: the six years before `now` (164.528(a)(1)).
absl::Time DefaultAccountingWindowStart(absl::Time now);

// Not thread-safe; a plain value.
class DisclosureAccounting {
 public:
  // Folds a committed event: disclosure_made adds an entry for its client,
  // client_informed marks the disclosure (same stream, same disclosure id) as
  // told, accounting_suspended adds a suspension for its client; every other
  // event is ignored. Deterministic.
  // INVALID_ARGUMENT for an event without occurred_at.
  absl::Status Apply(const v1::Event& e, uint64_t seq);

  // The client's disclosures with window_start <= disclosed_at < window_end;
  // excluded ones only if include_excluded; grouped if summarize. `as_of` is
  // when the accounting is given: a disclosure under a suspension in force
  // then (suspended_at <= as_of < ends_at, same case, recipient_id =
  // agency_id or recipient name = agency_name, disclosed before ends_at) is
  // left out, whatever include_excluded says.
  AccountingReport Query(absl::string_view client_id, absl::Time window_start,
                         absl::Time window_end, bool include_excluded, bool summarize,
                         absl::Time as_of) const;

  // The client's suspensions in the order applied (empty for none).
  const std::vector<AccountingSuspension>& suspensions(absl::string_view client_id) const;

  // Removes every entry recorded in one of `case_ids` (a targeted
  // re-derivation after an erasure re-applies those cases' events next;
  // Apply puts each entry back at its place in seq order).
  void ForgetCases(const std::set<std::string>& case_ids);

  // Every entry of the client in seq order (empty for an unknown client).
  const std::vector<AccountingEntry>& entries(absl::string_view client_id) const;
  // Client ids in order (clients with disclosures).
  std::vector<std::string> client_ids() const;
  // True when it holds neither a disclosure nor a suspension.
  bool empty() const { return by_client_.empty() && suspensions_.empty(); }

  // The accounting as rows (services/readmodel/PROJECTIONS.md "Accounting
  // rows"): for each client one row per entry and one per suspension. A row
  // key (what follows the client id) is 0x00 "entry" 0x00 and the entry's
  // seq, or 0x00 "suspension" 0x00 and the suspension's index in the order
  // applied, each as 16 lowercase hex digits; the value is the entry's
  // AccountingEntryRecord or the suspension's AccountingSuspensionRecord
  // (deterministic bytes). Row keys sort in seq (index) order.
  //
  // The keys of client_id's rows that Apply(e, seq) may change (as applied
  // to this accounting, which holds client_id's entries).
  std::vector<std::string> RowsTouchedBy(const v1::Event& e, uint64_t seq,
                                         absl::string_view client_id) const;
  // The keys of client_id's entry rows recorded in one of `case_ids`
  // (the rows ForgetCases removes).
  std::vector<std::string> RowsOfCases(absl::string_view client_id,
                                       const std::set<std::string>& case_ids) const;
  // The value of client_id's row `row_key` now; nullopt when it has none.
  std::optional<std::string> Row(absl::string_view client_id, absl::string_view row_key) const;
  // Calls fn(row key, value) for each of client_id's rows, in key order.
  void ForEachRow(absl::string_view client_id,
                  const std::function<void(const std::string&, const std::string&)>& fn) const;
  // Adds one stored row of client_id; a client's rows are added in key
  // order. INVALID_ARGUMENT for a row key or value that does not decode, or
  // a suspension row out of order.
  absl::Status AddRow(const std::string& client_id, absl::string_view row_key,
                      absl::string_view value);

  // Deterministic bytes (services/readmodel/case_state.proto AccountingRecord).
  std::string Encode() const;
  // INVALID_ARGUMENT for bytes that are not an encoded DisclosureAccounting.
  static absl::StatusOr<DisclosureAccounting> Decode(absl::string_view bytes);

 private:
  void Index(const std::string& client_id, size_t i);
  void Reindex();

  std::map<std::string, std::vector<AccountingEntry>, std::less<>> by_client_;
  std::map<std::string, std::vector<AccountingSuspension>, std::less<>> suspensions_;
  // (case_id, disclosure_id) -> (client_id, index in by_client_); the first
  // disclosure of that id wins. Derived; not encoded.
  std::map<std::pair<std::string, std::string>, std::pair<std::string, size_t>> index_;
};

// A readable, indented JSON rendering of the report (UTF-8, strings escaped
// per RFC 8259). Times are RFC 3339 UTC.
std::string AccountingReportToJson(const AccountingReport& report);

// ---- 42 CFR 2.24: the list of disclosures under a general designation ----

// The list a patient asked for (services/policy/RULES.md W14.5): each
// consent-based disclosure of the request's case under the consent's
// general designation, dated from 3 years before the request's receipt
// (2.24(a)(2)) up to `window_end`, when the list is given.
struct Part2DisclosureList {
  std::string client_id;
  std::string case_id;
  std::string request_id;
  std::string consent_id;
  std::string general_designation;
  std::string intermediary;
  absl::Time received_at = absl::InfinitePast();
  absl::Time due_at = absl::InfiniteFuture();
  absl::Time window_start = absl::InfinitePast();  // inclusive
  absl::Time window_end = absl::InfiniteFuture();  // inclusive
  std::vector<AccountingEntry> entries;            // by date, then seq
};

// The start of the 2.24 look-back: 3 calendar years before receipt (UTC).
absl::Time Part2ListWindowStart(absl::Time received_at);

// Picks the list from the client's accounting entries (`client_entries`,
// DisclosureAccounting::entries): entries of `case_id` with legal basis
// consent and basis_detail `consent.consent_id`, disclosed by
// `consent.intermediary` to a recipient `consent` does not name, dated
// within [Part2ListWindowStart(request.received_at), as_of]. Suspensions of
// the HIPAA accounting do not apply (2.24 has none).
Part2DisclosureList QueryPart2List(const std::vector<AccountingEntry>& client_entries,
                                   absl::string_view case_id, const Consent& consent,
                                   const Part2ListRequest& request, absl::Time as_of);

// The list as readable JSON, like AccountingReportToJson.
std::string Part2DisclosureListToJson(const Part2DisclosureList& list);

}  // namespace caseledger

#endif  // CASELEDGER_SERVICES_ACCOUNTING_H_
