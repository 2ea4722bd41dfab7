#include "ledger/internal/pg.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "ledger/internal/status_macros.h"

namespace caseledger::pg {

int32_t GetInt4(const PGresult* r, int row, int col) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(PQgetvalue(r, row, col));
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | p[i];
  return static_cast<int32_t>(v);
}
int64_t GetInt8(const PGresult* r, int row, int col) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(PQgetvalue(r, row, col));
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return static_cast<int64_t>(v);
}
std::string GetBytes(const PGresult* r, int row, int col) {
  return std::string(PQgetvalue(r, row, col), PQgetlength(r, row, col));
}

bool ConnectionLost(PGconn* c) { return c == nullptr || PQstatus(c) != CONNECTION_OK; }

// The status for a failed statement: UNAVAILABLE when the connection is gone
// (the outcome of a COMMIT is then unknown), ALREADY_EXISTS for a unique
// violation, INTERNAL otherwise.
absl::Status PgError(PGconn* c, const PGresult* r, absl::string_view what) {
  std::string msg = r != nullptr ? PQresultErrorMessage(r) : PQerrorMessage(c);
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  std::string full = absl::StrCat("postgresql: ", what, ": ", msg);
  if (ConnectionLost(c)) return absl::UnavailableError(full);
  const char* state = r != nullptr ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  if (state != nullptr && absl::string_view(state) == "23505") {
    return absl::AlreadyExistsError(full);
  }
  // 57P01 admin shutdown, 08xxx connection errors, 40001/40P01 retryable.
  if (state != nullptr && (absl::StartsWith(state, "08") || absl::StartsWith(state, "57P"))) {
    return absl::UnavailableError(full);
  }
  return absl::InternalError(full);
}

absl::StatusOr<Result> Exec(PGconn* c, const std::string& sql, Params* params,
                            absl::string_view what) {
  if (ConnectionLost(c)) return absl::UnavailableError(absl::StrCat("postgresql: ", what, ": not connected"));
  Result r(params == nullptr
               ? PQexecParams(c, sql.c_str(), 0, nullptr, nullptr, nullptr, nullptr, 1)
               : PQexecParams(c, sql.c_str(), params->size(), params->types(), params->values(),
                              params->lengths(), params->formats(), 1));
  ExecStatusType st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return PgError(c, r.get(), what);
  return r;
}

absl::Status ExecText(PGconn* c, const char* sql, absl::string_view what) {
  if (ConnectionLost(c)) return absl::UnavailableError(absl::StrCat("postgresql: ", what, ": not connected"));
  Result r(PQexec(c, sql));
  ExecStatusType st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return PgError(c, r.get(), what);
  return absl::OkStatus();
}

// A session on the primary: read-write, synchronous_commit on (an append is
// acknowledged only once a synchronous standby has its commit record).
// `warned` (borrowed, may be null) is set when the server says a commit was
// not replicated (a cancelled synchronous-replication wait).
absl::StatusOr<Conn> Connect(const std::string& conninfo, bool* warned) {
  Conn c(PQconnectdb(conninfo.c_str()));
  if (ConnectionLost(c.get())) {
    std::string msg = c ? PQerrorMessage(c.get()) : "out of memory";
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    return absl::UnavailableError(absl::StrCat("postgresql: connect: ", msg));
  }
  if (warned != nullptr) {
    PQsetNoticeReceiver(
        c.get(),
        [](void* arg, const PGresult* r) {
          const char* m = PQresultErrorMessage(r);
          if (m != nullptr && absl::StrContains(m, "synchronous replication")) {
            *static_cast<bool*>(arg) = true;
          }
        },
        warned);
  }
  CL_RETURN_IF_ERROR(ExecText(c.get(), "SET synchronous_commit TO on", "session"));
  CL_ASSIGN_OR_RETURN(Result r, Exec(c.get(), "SELECT pg_is_in_recovery()::int4", nullptr,
                                     "session"));
  if (PQgetvalue(r.get(), 0, 0)[3] != 0) {
    return absl::UnavailableError(
        "postgresql: connected to a standby; want the primary (target_session_attrs=read-write)");
  }
  return c;
}

}  // namespace caseledger::pg
