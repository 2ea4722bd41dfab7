#include "tests/server_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace caseledger::testing {

absl::StatusOr<std::unique_ptr<ServerProcess>> ServerProcess::Start(
    const std::string& binary, const std::string& data_dir,
    const std::vector<std::string>& flags) {
  int fds[2];
  if (pipe(fds) != 0) return absl::InternalError("pipe");
  std::vector<std::string> args = {binary, "--data_dir=" + data_dir, "--listen=127.0.0.1:0"};
  // Plaintext on loopback unless the test asks for TLS (or says so itself).
  bool transport_chosen = false;
  for (const std::string& f : flags) {
    if (f.rfind("--tls_", 0) == 0 || f.rfind("--insecure_loopback", 0) == 0) {
      transport_chosen = true;
    }
  }
  if (!transport_chosen) args.push_back("--insecure_loopback");
  args.insert(args.end(), flags.begin(), flags.end());
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], STDERR_FILENO);
    close(fds[0]);
    close(fds[1]);
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
  close(fds[1]);
  std::unique_ptr<ServerProcess> p(new ServerProcess);
  p->pid_ = pid;
  p->stderr_fd_ = fds[0];
  fcntl(p->stderr_fd_, F_SETFL, O_NONBLOCK);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    std::string err = p->Stderr();
    size_t at = err.find("listening on ");
    if (at != std::string::npos) {
      size_t end = err.find(',', at);
      if (end != std::string::npos) {
        p->address_ = err.substr(at + 13, end - at - 13);
        return p;
      }
    }
    int status;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      p->pid_ = -1;
      return absl::UnavailableError(absl::StrCat("server exited with status ", status, ": ", err));
    }
    pollfd pfd{p->stderr_fd_, POLLIN, 0};
    poll(&pfd, 1, 20);
  }
  return absl::DeadlineExceededError("server did not start: " + p->Stderr());
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) Stop(SIGKILL);
  if (stderr_fd_ >= 0) close(stderr_fd_);
}

std::string ServerProcess::Stderr() {
  char buf[4096];
  for (;;) {
    ssize_t n = read(stderr_fd_, buf, sizeof(buf));
    if (n <= 0) break;
    stderr_.append(buf, n);
  }
  return stderr_;
}

int ServerProcess::Stop(int signal) {
  if (pid_ <= 0) return -1;
  kill(pid_, signal);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  Stderr();
  return status;
}

std::string WriteTestMasterKey(const std::string& dir) {
  // tools/serve.sh generates one per machine; a fixed one keeps failures
  // reproducible.
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/master.key";
  std::ofstream(path) << "5a17c0ffee5a17c0ffee5a17c0ffee5a17c0ffee5a17c0ffee5a17c0ffee5a17\n";
  chmod(path.c_str(), 0600);
  return path;
}

}  // namespace caseledger::testing
