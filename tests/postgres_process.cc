#include "tests/postgres_process.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <postgresql/libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "tests/subprocess.h"

namespace caseledger::testing {

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

std::string PostgresBinDir() { return "/usr/lib/postgresql/15/bin"; }

absl::StatusOr<std::string> NewPostgresDir(const std::string& name) {
  if (geteuid() != 0) {
    const char* tmp = getenv("TEST_TMPDIR");
    std::string base = tmp != nullptr ? tmp : "/tmp";
    char templ[4096];
    snprintf(templ, sizeof(templ), "%s/%s-XXXXXX", base.c_str(), name.c_str());
    if (mkdtemp(templ) == nullptr) return absl::InternalError("mkdtemp");
    return std::string(templ);
  }
  std::string templ = "/tmp/caseledger-" + name + "-XXXXXX";
  if (mkdtemp(templ.data()) == nullptr) return absl::InternalError("mkdtemp");
  passwd* pw = getpwnam("postgres");
  if (pw == nullptr) return absl::FailedPreconditionError("no postgres user (apt-get install postgresql-15)");
  if (chown(templ.c_str(), pw->pw_uid, pw->pw_gid) != 0) return absl::InternalError("chown");
  return templ;
}

std::vector<std::string> AsPostgresUser(std::vector<std::string> argv) {
  if (geteuid() != 0) return argv;
  std::vector<std::string> out = {"/usr/bin/setpriv", "--reuid=postgres", "--regid=postgres",
                                  "--init-groups", "--"};
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

absl::StatusOr<std::unique_ptr<PostgresProcess>> PostgresProcess::Start(const std::string& name) {
  absl::StatusOr<std::string> dir = NewPostgresDir(name);
  if (!dir.ok()) return dir.status();
  std::unique_ptr<PostgresProcess> p(new PostgresProcess);
  p->dir_ = *dir;
  std::string data = p->dir_ + "/data";
  CommandResult init = RunCommand(AsPostgresUser(
      {PostgresBinDir() + "/initdb", "-D", data, "-A", "trust", "-U", "caseledger", "--no-locale",
       "-E", "UTF8", "--no-sync"}));
  if (init.exit_code != 0) {
    return absl::InternalError(absl::StrCat("initdb: ", init.out, init.err));
  }
  p->port_ = FreePort();
  std::vector<std::string> args = AsPostgresUser(
      {PostgresBinDir() + "/postgres", "-D", data, "-p", std::to_string(p->port_), "-k", p->dir_,
       "-c", "listen_addresses=127.0.0.1", "-c", "logging_collector=off"});
  pid_t pid = fork();
  if (pid == 0) {
    std::string log = p->dir_ + "/postgres.log";
    FILE* f = freopen(log.c_str(), "a", stderr);
    (void)f;
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  p->pid_ = pid;
  std::string admin = absl::StrCat("host=127.0.0.1 port=", p->port_, " user=caseledger dbname=postgres");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (PQping(admin.c_str()) != PQPING_OK) {
    if (std::chrono::steady_clock::now() > deadline) {
      return absl::UnavailableError("postgres did not start; see " + p->dir_ + "/postgres.log");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  PGconn* c = PQconnectdb(admin.c_str());
  PGresult* r = PQexec(c, "CREATE DATABASE caseledger");
  bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  std::string err = PQresultErrorMessage(r);
  PQclear(r);
  PQfinish(c);
  if (!ok) return absl::InternalError("create database: " + err);
  return p;
}

PostgresProcess::~PostgresProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGQUIT);
    int status;
    waitpid(pid_, &status, 0);
  }
  std::error_code ec;
  if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
}

std::string PostgresProcess::conninfo() const {
  return absl::StrCat("host=127.0.0.1 port=", port_, " user=caseledger dbname=caseledger");
}

}  // namespace caseledger::testing
