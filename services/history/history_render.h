// The client's page: a verified record history (history_bundle.h) rendered
// for the person it is about, as plain text or a standalone HTML page (no
// scripts, no external resources; every value escaped; printable and
// readable on a phone). In order: a verdict in plain words (complete as of
// when, unaltered, how much was withheld, how many witnesses checked it);
// each record as a sentence, with what was withheld and why (never the
// value); the accounting of disclosures and the reads of the record
// (record_accessed) as tables; how it was checked, with the verifier's
// technical lines folded away. Every text comes from one message catalog
// (history_messages.h) so that it can be translated.
//
// Pure functions; thread-safe.
#ifndef CASELEDGER_SERVICES_HISTORY_RENDER_H_
#define CASELEDGER_SERVICES_HISTORY_RENDER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "services/history/history_bundle.h"

namespace caseledger {

struct RenderOptions {
  // A language of SupportedLanguages().
  std::string lang = "en";
  // Dates and times are shown in this zone, and the zone is named.
  absl::TimeZone time_zone = absl::UTCTimeZone();
};

// The languages the catalog has, e.g. {"en", "es"}.
std::vector<std::string> SupportedLanguages();

// INVALID_ARGUMENT naming `lang` and the supported languages for a language
// the catalog does not have.
absl::StatusOr<std::string> RenderHistoryText(const HistoryVerification& h,
                                              const RenderOptions& options);
absl::StatusOr<std::string> RenderHistoryHtml(const HistoryVerification& h,
                                              const RenderOptions& options);

}  // namespace caseledger

#endif  // CASELEDGER_SERVICES_HISTORY_RENDER_H_
