#include "tests/dev_certs.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "tests/subprocess.h"
#include "tests/test_util.h"

namespace caseledger::testing {

namespace {

constexpr char kServer[] = "services/api/caseledger_server";

}  // namespace

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

std::vector<std::string> DevTls::ServerFlags() const {
  return {"--tls_cert=" + certs + "/server.pem", "--tls_key=" + certs + "/server.key",
          "--tls_client_ca=" + certs + "/ca.pem", "--master_key_file=" + master_key_file};
}

std::vector<std::string> DevTls::ClientFlags(const std::string& who) const {
  return {"--ca=" + certs + "/ca.pem", "--cert=" + certs + "/" + who + ".pem",
          "--key_file=" + certs + "/" + who + ".key", "--tls_server_name=localhost"};
}

std::shared_ptr<grpc::Channel> DevTls::Channel(const std::string& address,
                                               const std::string& who) const {
  return DevChannel(address, certs, who);
}

absl::StatusOr<DevTls> MakeDevTls(const std::vector<std::string>& principals) {
  DevTls tls;
  tls.certs = NewTempDir("dev-certs");
  std::vector<std::string> argv = {"/usr/bin/env", "TEST_EXTRAS=1", "bash",
                                   "tools/make_dev_certs.sh", tls.certs};
  argv.insert(argv.end(), principals.begin(), principals.end());
  CommandResult made = RunCommand(argv);
  if (made.exit_code != 0) {
    return absl::InternalError(
        absl::StrCat("tools/make_dev_certs.sh exited ", made.exit_code, ": ", made.err));
  }
  tls.master_key_file = WriteTestMasterKey(tls.certs);
  return tls;
}

absl::StatusOr<std::unique_ptr<ServerProcess>> StartTlsServer(
    const DevTls& tls, const std::string& data_dir, const std::vector<std::string>& flags) {
  std::vector<std::string> all = tls.ServerFlags();
  all.insert(all.end(), flags.begin(), flags.end());
  return ServerProcess::Start(kServer, data_dir, all);
}

}  // namespace caseledger::testing
