// rpc_sweep: the fuzz-style sweep of tests/rpc_sweep.h against a running
// server, for as long as asked:
//   bazel run //tests:rpc_sweep -- --server=127.0.0.1:7070 --seconds=600
// With --ca/--cert/--key_file it speaks mutual TLS (one identity for the
// fuzzers and the writer; the writer's certificate must be a producer
// registered for "housing", or the server in --insecure_loopback). Exit 0
// when the server answered throughout and every valid append landed.
#include <grpcpp/grpcpp.h>

#include <cstdio>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "tests/rpc_sweep.h"
#include "tests/test_util.h"

ABSL_FLAG(std::string, server, "127.0.0.1:7070", "host:port of the server");
ABSL_FLAG(int, seconds, 60, "How long to sweep.");
ABSL_FLAG(uint64_t, seed, 1, "Random seed.");
ABSL_FLAG(int, threads, 4, "Fuzzing threads.");
ABSL_FLAG(uint64_t, max_message_bytes, 16 << 20, "The server's --max_message_bytes.");
ABSL_FLAG(std::string, writer_case, "", "The writer's case id (default sweep-<seed>-<time>).");
ABSL_FLAG(std::string, ca, "", "CA certificate (PEM): use mutual TLS.");
ABSL_FLAG(std::string, cert, "", "Client certificate (PEM).");
ABSL_FLAG(std::string, key_file, "", "Client key (PEM).");
ABSL_FLAG(std::string, tls_server_name, "localhost", "Name the server certificate must have.");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
  grpc::ChannelArguments args;
  if (!absl::GetFlag(FLAGS_ca).empty()) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = caseledger::testing::ReadFileOrEmpty(absl::GetFlag(FLAGS_ca));
    ssl.pem_cert_chain = caseledger::testing::ReadFileOrEmpty(absl::GetFlag(FLAGS_cert));
    ssl.pem_private_key = caseledger::testing::ReadFileOrEmpty(absl::GetFlag(FLAGS_key_file));
    creds = grpc::SslCredentials(ssl);
    args.SetString(GRPC_SSL_TARGET_NAME_OVERRIDE_ARG, absl::GetFlag(FLAGS_tls_server_name));
  }
  auto channel = grpc::CreateCustomChannel(absl::GetFlag(FLAGS_server), creds, args);
  caseledger::testing::SweepOptions options;
  options.duration = absl::Seconds(absl::GetFlag(FLAGS_seconds));
  options.seed = absl::GetFlag(FLAGS_seed);
  options.threads = absl::GetFlag(FLAGS_threads);
  options.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  options.writer_case = absl::GetFlag(FLAGS_writer_case);
  if (options.writer_case.empty()) {
    options.writer_case =
        absl::StrCat("sweep-", options.seed, "-", absl::ToUnixSeconds(absl::Now()));
  }
  caseledger::testing::SweepReport report =
      caseledger::testing::RunSweep({channel}, channel, options);
  std::printf("%s\n", caseledger::testing::Summary(report).c_str());
  for (const std::string& e : report.writer_errors) std::printf("writer error: %s\n", e.c_str());
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  bool up = channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10));
  std::printf("server %s after the sweep\n", up ? "up" : "DOWN");
  return up && report.writer_errors.empty() && report.writer_acked > 0 ? 0 : 1;
}
