#include "services/api/history_render.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"

namespace caseledger {
namespace {

std::string FormatMicros(int64_t micros) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", absl::FromUnixMicros(micros),
                          absl::UTCTimeZone());
}

std::string HtmlEscape(absl::string_view s) {
  return absl::StrReplaceAll(s, {{"&", "&amp;"},
                                 {"<", "&lt;"},
                                 {">", "&gt;"},
                                 {"\"", "&quot;"},
                                 {"'", "&#39;"}});
}

std::string WithheldNames(const VerifiedRecord& r) {
  std::vector<std::string> names;
  for (const WithheldField& w : r.withheld) names.push_back(w.name);
  return absl::StrJoin(names, ", ");
}

}  // namespace

std::vector<std::string> SupportedLanguages() { return {"en"}; }

absl::StatusOr<std::string> RenderHistoryText(const HistoryVerification& h,
                                              const RenderOptions& options) {
  if (options.lang != "en") return absl::InvalidArgumentError(absl::StrCat("lang: got \"", options.lang, "\", want en"));
  std::string out = absl::StrCat("Record history of ", h.subject_id, "\n", "checkpoint size ",
                                 h.checkpoint.size, ", ", h.records.size(), " records\n\n");
  for (const VerifiedRecord& r : h.records) {
    absl::StrAppend(&out, "#", r.record.seq, "  ", FormatMicros(r.record.occurred_at_micros), "  ",
                    r.record.event_type, "  case ", r.record.stream_id, " v", r.record.version,
                    "  by ", r.record.producer, "\n");
    if (std::string body = RevealedBodyJson(r); !body.empty()) {
      absl::StrAppend(&out, "    ", body, "\n");
    }
    if (!r.withheld.empty()) {
      absl::StrAppend(&out, "    withheld (third-party or protected): ",
                      WithheldNames(r), "\n");
    }
  }
  absl::StrAppend(&out, "\nChecked:\n");
  for (const std::string& c : h.checks) absl::StrAppend(&out, "  - ", c, "\n");
  return out;
}

absl::StatusOr<std::string> RenderHistoryHtml(const HistoryVerification& h,
                                              const RenderOptions& options) {
  if (options.lang != "en") return absl::InvalidArgumentError(absl::StrCat("lang: got \"", options.lang, "\", want en"));
  std::string out =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
      "<title>Record history of " +
      HtmlEscape(h.subject_id) +
      "</title>\n<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
      "table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:4px;"
      "vertical-align:top;text-align:left}.w{color:#777;font-style:italic}"
      "code{word-break:break-all}</style>\n</head><body>\n";
  absl::StrAppend(&out, "<h1>Record history of ", HtmlEscape(h.subject_id), "</h1>\n",
                  "<p>", h.records.size(), " records, complete as of checkpoint size ",
                  h.checkpoint.size, ".</p>\n",
                  "<table><tr><th>seq</th><th>when</th><th>event</th><th>case</th>"
                  "<th>content</th></tr>\n");
  for (const VerifiedRecord& r : h.records) {
    absl::StrAppend(&out, "<tr><td>", r.record.seq, "</td><td>",
                    FormatMicros(r.record.occurred_at_micros), "</td><td>",
                    HtmlEscape(r.record.event_type), "</td><td>", HtmlEscape(r.record.stream_id),
                    "</td><td><code>", HtmlEscape(RevealedBodyJson(r)), "</code>");
    if (!r.withheld.empty()) {
      absl::StrAppend(&out, "<div class=\"w\">withheld (third-party or protected): ",
                      HtmlEscape(WithheldNames(r)), "</div>");
    }
    absl::StrAppend(&out, "</td></tr>\n");
  }
  absl::StrAppend(&out, "</table>\n<h2>What was checked</h2>\n<ul>\n");
  for (const std::string& c : h.checks) absl::StrAppend(&out, "<li>", HtmlEscape(c), "</li>\n");
  absl::StrAppend(&out, "</ul>\n");
  absl::StrAppend(&out, "<h2>Accounting of disclosures</h2>\n<pre>",
                  HtmlEscape(AccountingReportToJson(h.accounting)), "</pre>\n");
  absl::StrAppend(&out, "</body></html>\n");
  return out;
}

}  // namespace caseledger
