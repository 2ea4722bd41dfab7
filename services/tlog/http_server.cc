#include "services/tlog/http_server.h"

#include <civetweb.h>

#include <cstring>
#include <mutex>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace caseledger {
namespace {

void Send(mg_connection* conn, const HttpResponse& r) {
  std::string head = absl::StrCat(
      "HTTP/1.1 ", r.status, " ", mg_get_response_code_text(conn, r.status),
      "\r\nContent-Type: ", r.content_type, "\r\nContent-Length: ", r.body.size(),
      "\r\nCache-Control: ", r.cache_control, "\r\nX-Content-Type-Options: nosniff\r\n\r\n");
  mg_write(conn, head.data(), head.size());
  if (!r.body.empty()) mg_write(conn, r.body.data(), r.body.size());
}

// civetweb's own messages (bind failures and the like) are not ours to print.
int QuietLog(const mg_connection*, const char*) { return 1; }

}  // namespace

HttpResponse TextResponse(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  if (r.body.empty() || r.body.back() != '\n') r.body.push_back('\n');
  return r;
}

bool IsLoopbackListen(absl::string_view listen) {
  size_t colon = listen.rfind(':');
  if (colon == absl::string_view::npos) return false;
  absl::string_view host = listen.substr(0, colon);
  int port = 0;
  if (!absl::SimpleAtoi(listen.substr(colon + 1), &port) || port < 0 || port > 65535) return false;
  return host == "localhost" || absl::StartsWith(host, "127.");
}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerOptions& options,
                                                              HttpHandler handler) {
  if (!IsLoopbackListen(options.listen)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "listen address got \"", options.listen,
        "\", want 127.x.y.z:PORT or localhost:PORT (the HTTP listeners have no TLS; publish "
        "them through a TLS-terminating proxy)"));
  }
  static std::once_flag init;
  std::call_once(init, [] { mg_init_library(0); });
  std::string listen = options.listen;
  if (absl::StartsWith(listen, "localhost:")) {
    listen = absl::StrCat("127.0.0.1", listen.substr(listen.rfind(':')));
  }
  const std::string threads = std::to_string(options.threads);
  const char* mg_options[] = {"listening_ports",   listen.c_str(), "num_threads", threads.c_str(),
                              "enable_keep_alive", "yes",          nullptr};
  mg_callbacks callbacks;
  std::memset(&callbacks, 0, sizeof(callbacks));
  callbacks.log_message = QuietLog;
  std::unique_ptr<HttpServer> server(new HttpServer(std::move(handler), options.max_body_bytes));
  server->ctx_ = mg_start(&callbacks, nullptr, mg_options);
  if (server->ctx_ == nullptr) {
    return absl::UnavailableError(absl::StrCat("HTTP: could not listen on ", options.listen));
  }
  mg_set_request_handler(server->ctx_, "/", &HttpServer::Dispatch, server.get());
  mg_server_port ports[2];
  if (mg_get_server_ports(server->ctx_, 2, ports) < 1) {
    return absl::UnavailableError(absl::StrCat("HTTP: no port bound for ", options.listen));
  }
  server->port_ = ports[0].port;
  return server;
}

HttpServer::~HttpServer() {
  if (ctx_ != nullptr) mg_stop(ctx_);
}

int HttpServer::Dispatch(mg_connection* conn, void* self_ptr) {
  auto* self = static_cast<HttpServer*>(self_ptr);
  const mg_request_info* info = mg_get_request_info(conn);
  HttpRequest req;
  req.method = info->request_method != nullptr ? info->request_method : "";
  req.path = info->local_uri != nullptr ? info->local_uri : "";
  if (info->content_length > 0 && static_cast<uint64_t>(info->content_length) > self->max_body_) {
    Send(conn, TextResponse(413, absl::StrCat("request body got ", info->content_length,
                                              " bytes, want at most ", self->max_body_)));
    return 413;
  }
  char buf[8192];
  for (;;) {
    int n = mg_read(conn, buf, sizeof(buf));
    if (n <= 0) break;
    req.body.append(buf, static_cast<size_t>(n));
    if (req.body.size() > self->max_body_) {
      Send(conn, TextResponse(413, absl::StrCat("request body over ", self->max_body_, " bytes")));
      return 413;
    }
  }
  HttpResponse resp = self->handler_(req);
  Send(conn, resp);
  return resp.status;
}

}  // namespace caseledger
