// What caseledger_server runs of the tlog protocols (TILES.md,
// WITNESS_HTTP.md): the read-only tiles listener (--tiles_listen) and the
// pusher of checkpoints to tlog-witness witnesses (--witness_url). Both are
// off unless configured.
#ifndef CASELEDGER_SERVICES_TLOG_TLOG_HTTP_H_
#define CASELEDGER_SERVICES_TLOG_TLOG_HTTP_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ledger/ledger.h"
#include "services/tlog/http_server.h"
#include "services/tlog/tiles.h"
#include "services/tlog/witness_http.h"

namespace caseledger {

struct TlogHttpOptions {
  // host:port on loopback; empty: no tiles listener.
  std::string tiles_listen;
  // Empty: no pusher.
  std::vector<PushWitness> witnesses;
  absl::Duration push_interval = absl::Seconds(1);
  // Stores a checkpoint note carrying a witness's lines (the server's
  // WitnessService::Add, which checks them against its trusted witnesses).
  std::function<absl::Status(absl::string_view)> store_cosigned;
  std::function<void(const std::string&)> log;
};

// `ledger` is borrowed and must outlive the returned object; destroy it
// before closing the ledger.
class TlogHttp {
 public:
  // Errors of HttpServer::Start (INVALID_ARGUMENT for a non-loopback
  // address, UNAVAILABLE when it cannot bind).
  static absl::StatusOr<std::unique_ptr<TlogHttp>> Start(const Ledger* ledger,
                                                         TlogHttpOptions options);
  ~TlogHttp();

  // 0 without a tiles listener.
  int tiles_port() const { return http_ != nullptr ? http_->port() : 0; }

 private:
  explicit TlogHttp(const Ledger* ledger) : tiles_(ledger->store(), ledger->store()) {}

  TileServer tiles_;
  std::unique_ptr<HttpServer> http_;
  std::unique_ptr<WitnessPusher> pusher_;
};

}  // namespace caseledger

#endif  // CASELEDGER_SERVICES_TLOG_TLOG_HTTP_H_
