// Starts the real caseledger_server binary for end-to-end tests.
#ifndef CASELEDGER_TESTS_SERVER_PROCESS_H_
#define CASELEDGER_TESTS_SERVER_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace caseledger::testing {

class ServerProcess {
 public:
  // Starts `binary` (a runfiles path such as "services/api/caseledger_server")
  // on 127.0.0.1 port 0 with --data_dir=`data_dir` and `flags`, and waits for
  // its "listening on" line (UNAVAILABLE with its stderr if it exits first).
  // Adds --insecure_loopback unless `flags` hold a --tls_* or
  // --insecure_loopback flag.
  static absl::StatusOr<std::unique_ptr<ServerProcess>> Start(
      const std::string& binary, const std::string& data_dir,
      const std::vector<std::string>& flags = {});
  // Sends SIGKILL if still running.
  ~ServerProcess();

  const std::string& address() const { return address_; }
  pid_t pid() const { return pid_; }
  // Sends `signal` and waits; returns the exit status as waitpid gives it.
  int Stop(int signal);
  // Everything the server wrote to stderr so far.
  std::string Stderr();

 private:
  ServerProcess() = default;
  pid_t pid_ = -1;
  int stderr_fd_ = -1;
  std::string stderr_;
  std::string address_;
};

// Writes the tests' master key (64 hex digits, mode 0600) to `dir`/master.key
// (creating `dir`) and returns the file's path: with --master_key_file=<it> the server runs
// as tools/serve.sh starts it by default (payloads encrypted, record format
// 2). `dir` must not be a server's data directory.
std::string WriteTestMasterKey(const std::string& dir);

}  // namespace caseledger::testing

#endif  // CASELEDGER_TESTS_SERVER_PROCESS_H_
