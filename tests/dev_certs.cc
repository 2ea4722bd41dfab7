#include "tests/dev_certs.h"

#include "tests/test_util.h"

namespace caseledger::testing {

std::shared_ptr<grpc::ServerCredentials> DevServerCredentials(const std::string& certs) {
  grpc::SslServerCredentialsOptions ssl(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  ssl.pem_root_certs = ReadFileOrEmpty(certs + "/ca.pem");
  ssl.pem_key_cert_pairs.push_back(
      {ReadFileOrEmpty(certs + "/server.key"), ReadFileOrEmpty(certs + "/server.pem")});
  return grpc::SslServerCredentials(ssl);
}

std::shared_ptr<grpc::Channel> DevChannel(const std::string& address, const std::string& certs,
                                          const std::string& who) {
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ReadFileOrEmpty(certs + "/ca.pem");
  if (!who.empty()) {
    ssl.pem_cert_chain = ReadFileOrEmpty(certs + "/" + who + ".pem");
    ssl.pem_private_key = ReadFileOrEmpty(certs + "/" + who + ".key");
  }
  grpc::ChannelArguments args;
  args.SetString(GRPC_SSL_TARGET_NAME_OVERRIDE_ARG, "localhost");
  return grpc::CreateCustomChannel(address, grpc::SslCredentials(ssl), args);
}

}  // namespace caseledger::testing
