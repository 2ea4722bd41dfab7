// A blocking HTTP client over libcurl for the tlog protocols (pushing
// checkpoints to witnesses; tests fetching tiles). Plain http:// and https://
// URLs; redirects are not followed.
//
// Thread-safe: each call uses its own curl handle.
#ifndef CASELEDGER_SERVICES_TLOG_HTTP_CLIENT_H_
#define CASELEDGER_SERVICES_TLOG_HTTP_CLIENT_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace caseledger {

struct HttpAnswer {
  long status = 0;
  std::string body;
  std::string content_type;   // "" when absent
  std::string cache_control;  // "" when absent
};

// The answer, whatever its status; UNAVAILABLE naming the URL when none came
// (refused connection, timeout, ...).
absl::StatusOr<HttpAnswer> HttpPost(const std::string& url, const std::string& body,
                                    absl::Duration timeout);
absl::StatusOr<HttpAnswer> HttpGet(const std::string& url, absl::Duration timeout);

}  // namespace caseledger

#endif  // CASELEDGER_SERVICES_TLOG_HTTP_CLIENT_H_
