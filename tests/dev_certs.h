// Mutual TLS with the certificates tools/make_dev_certs.sh writes (ca.pem,
// server.pem/.key, and <who>.pem/.key per principal), for tests that run a
// gRPC server in process or talk to a server binary.
#ifndef CASELEDGER_TESTS_DEV_CERTS_H_
#define CASELEDGER_TESTS_DEV_CERTS_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

namespace caseledger::testing {

// Server credentials that present server.pem and require a client
// certificate signed by ca.pem.
std::shared_ptr<grpc::ServerCredentials> DevServerCredentials(const std::string& certs);

// A channel to `address` that trusts ca.pem, expects the server's name to be
// "localhost", and presents <who>.pem (no client certificate when `who` is
// empty).
std::shared_ptr<grpc::Channel> DevChannel(const std::string& address, const std::string& certs,
                                          const std::string& who);

}  // namespace caseledger::testing

#endif  // CASELEDGER_TESTS_DEV_CERTS_H_
