// Starts a throwaway PostgreSQL 15 server for tests (Debian's postgresql-15).
#ifndef CASELEDGER_TESTS_POSTGRES_PROCESS_H_
#define CASELEDGER_TESTS_POSTGRES_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace caseledger::testing {

// A free TCP port on 127.0.0.1 (bound once and released; racy but fine for tests).
int FreePort();

// The directory PostgreSQL's tools live in (/usr/lib/postgresql/15/bin).
std::string PostgresBinDir();

// A fresh directory the database server may write: under $TEST_TMPDIR when
// not root; as root (PostgreSQL refuses to run as root, and the postgres user
// cannot enter root's home) a /tmp directory owned by postgres, removed by
// the caller.
absl::StatusOr<std::string> NewPostgresDir(const std::string& name);

// argv prefix that runs a command as the postgres user when we are root
// (setpriv execs in place, so the pid is the command's).
std::vector<std::string> AsPostgresUser(std::vector<std::string> argv);

class PostgresProcess {
 public:
  // initdb (trust auth, user "caseledger", database "caseledger") in a new
  // directory and starts the server on 127.0.0.1 at a free port; returns
  // once it accepts connections.
  static absl::StatusOr<std::unique_ptr<PostgresProcess>> Start(const std::string& name);
  // Stops the server (SIGQUIT) and removes its directory.
  ~PostgresProcess();

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  // "host=127.0.0.1 port=N user=caseledger dbname=caseledger".
  std::string conninfo() const;

 private:
  PostgresProcess() = default;
  std::string dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace caseledger::testing

#endif  // CASELEDGER_TESTS_POSTGRES_PROCESS_H_
