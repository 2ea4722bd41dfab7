// libpq helpers shared by the PostgreSQL stores (pg_store, pg_partitions):
// connections on the primary, binary parameters, statuses. Internal to
// //ledger.
#ifndef CASELEDGER_LEDGER_INTERNAL_PG_H_
#define CASELEDGER_LEDGER_INTERNAL_PG_H_

#include <postgresql/libpq-fe.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace caseledger::pg {

struct ConnDeleter {
  void operator()(PGconn* c) const { PQfinish(c); }
};
using Conn = std::unique_ptr<PGconn, ConnDeleter>;
struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

constexpr Oid kInt4 = 23, kInt8 = 20, kBytea = 17;

// Parameters in PostgreSQL's binary format; the values live as long as this.
class Params {
 public:
  Params& Int4(int32_t v) {
    std::string& s = values_.emplace_back(4, '\0');
    for (int i = 0; i < 4; ++i) s[i] = static_cast<char>(static_cast<uint32_t>(v) >> (24 - 8 * i));
    return Add(kInt4);
  }
  Params& Int8(int64_t v) {
    std::string& s = values_.emplace_back(8, '\0');
    for (int i = 0; i < 8; ++i) s[i] = static_cast<char>(static_cast<uint64_t>(v) >> (56 - 8 * i));
    return Add(kInt8);
  }
  Params& Bytes(absl::string_view v) {
    values_.emplace_back(v);
    return Add(kBytea);
  }
  int size() const { return static_cast<int>(types_.size()); }
  const Oid* types() const { return types_.data(); }
  const char* const* values() {
    ptrs_.clear();
    for (const std::string& v : values_) ptrs_.push_back(v.data());
    return ptrs_.data();
  }
  const int* lengths() const { return lengths_.data(); }
  const int* formats() const { return formats_.data(); }

 private:
  Params& Add(Oid type) {
    types_.push_back(type);
    lengths_.push_back(static_cast<int>(values_.back().size()));
    formats_.push_back(1);
    return *this;
  }
  std::deque<std::string> values_;
  std::vector<const char*> ptrs_;
  std::vector<Oid> types_;
  std::vector<int> lengths_;
  std::vector<int> formats_;
};


int32_t GetInt4(const PGresult* r, int row, int col);
int64_t GetInt8(const PGresult* r, int row, int col);
std::string GetBytes(const PGresult* r, int row, int col);

bool ConnectionLost(PGconn* c);

// The status for a failed statement: UNAVAILABLE when the connection is gone
// (the outcome of a COMMIT is then unknown), ALREADY_EXISTS for a unique
// violation, INTERNAL otherwise.
absl::Status PgError(PGconn* c, const PGresult* r, absl::string_view what);

// One statement with binary parameters (or none) and binary results.
absl::StatusOr<Result> Exec(PGconn* c, const std::string& sql, Params* params,
                            absl::string_view what);

// A script of statements in text form (one implicit transaction).
absl::Status ExecText(PGconn* c, const char* sql, absl::string_view what);

// A session on the primary: read-write, synchronous_commit on (an append is
// acknowledged only once a synchronous standby has its commit record).
// `warned` (borrowed, may be null) is set when the server says a commit was
// not replicated (a cancelled synchronous-replication wait).
absl::StatusOr<Conn> Connect(const std::string& conninfo, bool* warned);

}  // namespace caseledger::pg

#endif  // CASELEDGER_LEDGER_INTERNAL_PG_H_
