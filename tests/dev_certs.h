// Mutual TLS with the certificates tools/make_dev_certs.sh writes (ca.pem,
// server.pem/.key, and <who>.pem/.key per principal), for tests that run a
// gRPC server in process or talk to a server binary; and the one way tests
// start the server binary with TLS: as tools/serve.sh does when given TLS
// flags, with a master key (payloads encrypted, record format 2).
#ifndef CASELEDGER_TESTS_DEV_CERTS_H_
#define CASELEDGER_TESTS_DEV_CERTS_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tests/server_process.h"

namespace caseledger::testing {

// Server credentials that present server.pem and require a client
// certificate signed by ca.pem.
std::shared_ptr<grpc::ServerCredentials> DevServerCredentials(const std::string& certs);

// A channel to `address` that trusts ca.pem, expects the server's name to be
// "localhost", and presents <who>.pem (no client certificate when `who` is
// empty).
std::shared_ptr<grpc::Channel> DevChannel(const std::string& address, const std::string& certs,
                                          const std::string& who);

// A dev PKI and master key for servers started the way tools/serve.sh starts
// them with TLS flags.
struct DevTls {
  std::string certs;            // tools/make_dev_certs.sh's directory
  std::string master_key_file;  // 64 hex digits, mode 0600, outside any data directory

  // --tls_cert, --tls_key, --tls_client_ca and --master_key_file.
  std::vector<std::string> ServerFlags() const;
  // The global flags ledgerctl and ledger_witness take to present <who>.pem
  // (--ca, --cert, --key_file, --tls_server_name=localhost).
  std::vector<std::string> ClientFlags(const std::string& who) const;
  // DevChannel(address, certs, who).
  std::shared_ptr<grpc::Channel> Channel(const std::string& address, const std::string& who) const;
};

// Runs tools/make_dev_certs.sh (TEST_EXTRAS=1: also expired, wrong-ca and
// no-uri) for `principals` ("producer/intake", ...) into a new temporary
// directory, and writes a master key beside the certificates.
absl::StatusOr<DevTls> MakeDevTls(const std::vector<std::string>& principals);

// The server binary started as `bash tools/serve.sh --tls_cert=... --tls_key=...
// --tls_client_ca=...` starts it: mutual TLS and payloads encrypted under
// `tls.master_key_file` (so identifiers are blinded, ledger/BLINDING.md), on
// `data_dir`, plus `flags` (--authz_config, --record_format=1 for a test about
// format 1, ...). The same `tls` restarts it on the same data.
absl::StatusOr<std::unique_ptr<ServerProcess>> StartTlsServer(
    const DevTls& tls, const std::string& data_dir, const std::vector<std::string>& flags = {});

}  // namespace caseledger::testing

#endif  // CASELEDGER_TESTS_DEV_CERTS_H_
