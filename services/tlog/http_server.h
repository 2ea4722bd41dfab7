// A small HTTP/1.1 server over civetweb for the transparency protocols
// (c2sp.org/tlog-tiles, c2sp.org/tlog-witness): one handler function sees
// every request and returns the whole response. No TLS: it listens on
// loopback addresses only (services/tlog/TLOG_HTTP.md "Listeners"); put a
// TLS-terminating proxy in front to publish it.
//
// Thread-safety: the handler is called from several server threads at once
// and must be thread-safe. Start and the destructor are not concurrent with
// anything else.
#ifndef CASELEDGER_SERVICES_TLOG_HTTP_SERVER_H_
#define CASELEDGER_SERVICES_TLOG_HTTP_SERVER_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

struct mg_context;
struct mg_connection;

namespace caseledger {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;    // decoded path, without the query string
  std::string body;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string cache_control = "no-store";
  std::string body;
};

// A plain-text response (errors name the rule that was broken).
HttpResponse TextResponse(int status, std::string body);

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

struct HttpServerOptions {
  // host:port; the host must be a loopback address (127.0.0.0/8 or
  // "localhost"); port 0 picks a free port.
  std::string listen;
  // Larger request bodies get 413 without reaching the handler.
  size_t max_body_bytes = 1 << 20;
  int threads = 4;
};

// True for "127.x.y.z:port" and "localhost:port".
bool IsLoopbackListen(absl::string_view listen);

class HttpServer {
 public:
  // INVALID_ARGUMENT for an address that is not host:port on loopback;
  // UNAVAILABLE when it cannot bind.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const HttpServerOptions& options,
                                                           HttpHandler handler);
  // Stops listening and waits for requests in flight.
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The port it listens on (the chosen one when started with port 0).
  int port() const { return port_; }

 private:
  HttpServer(HttpHandler handler, size_t max_body)
      : handler_(std::move(handler)), max_body_(max_body) {}
  static int Dispatch(mg_connection* conn, void* self);

  HttpHandler handler_;
  size_t max_body_;
  mg_context* ctx_ = nullptr;
  int port_ = 0;
};

}  // namespace caseledger

#endif  // CASELEDGER_SERVICES_TLOG_HTTP_SERVER_H_
