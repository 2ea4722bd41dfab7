// JSON string literals for the hand-built JSON that tools and read models
// print (protobuf's JSON mapping covers messages; this covers the rest).
#ifndef CASELEDGER_LEDGER_INTERNAL_JSON_H_
#define CASELEDGER_LEDGER_INTERNAL_JSON_H_

#include <string>

#include "absl/strings/string_view.h"

namespace caseledger {

// `s` as a JSON string literal, quotes included. UTF-8 passes through;
// control characters are escaped.
std::string JsonQuote(absl::string_view s);

}  // namespace caseledger

#endif  // CASELEDGER_LEDGER_INTERNAL_JSON_H_
