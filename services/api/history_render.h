// The client's page: a verified record history (history_bundle.h) rendered
// for the person it is about, as plain text or a standalone HTML page (no
// scripts, no external resources; every value escaped; printable and
// readable on a phone). Every sentence comes from one message catalog so that
// it can be translated.
//
// Pure functions; thread-safe.
#ifndef CASELEDGER_SERVICES_API_HISTORY_RENDER_H_
#define CASELEDGER_SERVICES_API_HISTORY_RENDER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "services/api/history_bundle.h"

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

#endif  // CASELEDGER_SERVICES_API_HISTORY_RENDER_H_
