#include "tools/channel.h"

#include <fstream>
#include <iterator>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "ledger/internal/status_macros.h"

namespace caseledger {
namespace {

absl::StatusOr<std::string> ReadPem(const char* flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": cannot read \"", path, "\", want a PEM file"));
  }
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> NewChannelCredentials(
    const ChannelOptions& o) {
  if (o.ca_file.empty()) {
    if (!o.cert_file.empty() || !o.key_file.empty()) {
      return absl::InvalidArgumentError(
          "--cert and --key_file: given without --ca, want --ca too (mutual TLS)");
    }
    return grpc::InsecureChannelCredentials();
  }
  if (o.cert_file.empty() != o.key_file.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("--cert and --key_file: got only ",
                                                   o.cert_file.empty() ? "--key_file" : "--cert",
                                                   ", want both or neither"));
  }
  grpc::SslCredentialsOptions ssl;
  CL_ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadPem("ca", o.ca_file));
  if (!o.cert_file.empty()) {
    CL_ASSIGN_OR_RETURN(ssl.pem_cert_chain, ReadPem("cert", o.cert_file));
    CL_ASSIGN_OR_RETURN(ssl.pem_private_key, ReadPem("key_file", o.key_file));
  }
  return grpc::SslCredentials(ssl);
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> NewChannel(const ChannelOptions& o,
                                                          grpc::ChannelArguments args) {
  CL_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ChannelCredentials> credentials,
                      NewChannelCredentials(o));
  if (!o.ca_file.empty() && !o.tls_server_name.empty()) {
    args.SetString(GRPC_SSL_TARGET_NAME_OVERRIDE_ARG, o.tls_server_name);
  }
  if (o.max_receive_message_bytes > 0) {
    args.SetMaxReceiveMessageSize(o.max_receive_message_bytes);
  }
  return grpc::CreateCustomChannel(o.target, std::move(credentials), args);
}

}  // namespace caseledger
