#include "services/tlog/tlog_http.h"

#include <utility>

namespace caseledger {

absl::StatusOr<std::unique_ptr<TlogHttp>> TlogHttp::Start(const Ledger* ledger,
                                                          TlogHttpOptions options) {
  std::unique_ptr<TlogHttp> t(new TlogHttp(ledger));
  if (!options.tiles_listen.empty()) {
    HttpServerOptions http;
    http.listen = options.tiles_listen;
    http.max_body_bytes = 0;  // GET only
    TileServer* tiles = &t->tiles_;
    absl::StatusOr<std::unique_ptr<HttpServer>> server =
        HttpServer::Start(http, [tiles](const HttpRequest& r) { return tiles->Handle(r); });
    if (!server.ok()) return server.status();
    t->http_ = *std::move(server);
  }
  if (!options.witnesses.empty()) {
    WitnessPusherOptions push;
    push.witnesses = std::move(options.witnesses);
    push.latest = [ledger] { return ledger->store().LatestCheckpoint(); };
    push.proof = [ledger](uint64_t from, uint64_t to) {
      return ledger->ConsistencyProof(from, to);
    };
    push.store = std::move(options.store_cosigned);
    push.interval = options.push_interval;
    push.log = std::move(options.log);
    t->pusher_ = std::make_unique<WitnessPusher>(std::move(push));
    t->pusher_->Start();
  }
  return t;
}

TlogHttp::~TlogHttp() {
  if (pusher_ != nullptr) pusher_->Stop();
  http_.reset();
}

}  // namespace caseledger
