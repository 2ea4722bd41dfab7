// Runs a command to completion and captures what it printed.
#ifndef CASELEDGER_TESTS_SUBPROCESS_H_
#define CASELEDGER_TESTS_SUBPROCESS_H_

#include <string>
#include <vector>

namespace caseledger::testing {

struct CommandResult {
  int exit_code = -1;  // -1 when it did not exit normally
  std::string out;
  std::string err;
};

// Runs argv[0] with `argv`, feeding `input` on stdin.
CommandResult RunCommand(const std::vector<std::string>& argv, const std::string& input = "");

}  // namespace caseledger::testing

#endif  // CASELEDGER_TESTS_SUBPROCESS_H_
