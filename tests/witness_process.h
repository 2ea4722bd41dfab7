// A ledger_witness serving c2sp.org/tlog-witness on a loopback port, for
// end-to-end tests: started with `args` (argv[0] the binary, with
// --listen=127.0.0.1:0), its URL read from the first line it prints,
// stopped with SIGTERM when destroyed.
#ifndef CASELEDGER_TESTS_WITNESS_PROCESS_H_
#define CASELEDGER_TESTS_WITNESS_PROCESS_H_

#include <sys/types.h>

#include <string>
#include <vector>

namespace caseledger::testing {

class WitnessProcess {
 public:
  explicit WitnessProcess(const std::vector<std::string>& args);
  ~WitnessProcess();
  // "http://127.0.0.1:PORT"; empty when the witness did not say where.
  const std::string& url() const { return url_; }

 private:
  pid_t pid_ = -1;
  std::string url_;
};

}  // namespace caseledger::testing

#endif  // CASELEDGER_TESTS_WITNESS_PROCESS_H_
