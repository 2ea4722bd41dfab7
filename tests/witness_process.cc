#include "tests/witness_process.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

namespace caseledger::testing {

WitnessProcess::WitnessProcess(const std::vector<std::string>& args) {
  int out[2];
  EXPECT_EQ(pipe(out), 0);
  pid_ = fork();
  if (pid_ == 0) {
    dup2(out[1], 1);
    close(out[0]);
    std::vector<char*> argv;
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(out[1]);
  std::string line;
  char c;
  while (read(out[0], &c, 1) == 1 && c != '\n') line.push_back(c);
  close(out[0]);
  size_t colon = line.rfind("127.0.0.1:");
  EXPECT_NE(colon, std::string::npos) << "witness said: " << line;
  if (colon != std::string::npos) {
    url_ = "http://" + line.substr(colon, line.find(' ', colon) - colon);
  }
}

WitnessProcess::~WitnessProcess() {
  kill(pid_, SIGTERM);
  int status = 0;
  waitpid(pid_, &status, 0);
}

}  // namespace caseledger::testing
