// The one channel factory of the command-line tools (ledgerctl,
// ledger_witness, ledger_bench): plaintext to a server started with
// --insecure_loopback, or mutual TLS from the flags every tool spells the
// same way:
//
//   --ca=CA.pem            the CA the server's certificate must chain to;
//                          given: mutual TLS, absent: plaintext
//   --cert, --key_file     the client's certificate and key (PEM), whose URI
//                          SAN caseledger://ROLE/ID names the caller
//   --tls_server_name=N    the name the server's certificate must carry
//                          (default: the host of the target)
#ifndef CASELEDGER_TOOLS_CHANNEL_H_
#define CASELEDGER_TOOLS_CHANNEL_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace caseledger {

struct ChannelOptions {
  std::string target;           // host:port
  std::string ca_file;          // --ca; empty: plaintext
  std::string cert_file;        // --cert
  std::string key_file;         // --key_file
  std::string tls_server_name;  // --tls_server_name; empty: the host of `target`
  // Largest message received; 0 keeps gRPC's default (4 MiB).
  int max_receive_message_bytes = 0;
};

// The credentials `options` ask for. INVALID_ARGUMENT naming the flag when a
// file cannot be read, when --cert or --key_file come without --ca, or when
// only one of them is given.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> NewChannelCredentials(
    const ChannelOptions& options);

// A channel to options.target with those credentials. `args` holds further
// channel arguments (the TLS name and message size are added to it). Errors
// as NewChannelCredentials; connecting happens later, on first use.
absl::StatusOr<std::shared_ptr<grpc::Channel>> NewChannel(
    const ChannelOptions& options, grpc::ChannelArguments args = grpc::ChannelArguments());

}  // namespace caseledger

#endif  // CASELEDGER_TOOLS_CHANNEL_H_
