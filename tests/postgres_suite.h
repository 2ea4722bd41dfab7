// A gtest fixture whose suite shares one throwaway PostgreSQL 15
// (PostgresProcess) and whose every test starts with no ledger tables.
#ifndef CASELEDGER_TESTS_POSTGRES_SUITE_H_
#define CASELEDGER_TESTS_POSTGRES_SUITE_H_

#include <postgresql/libpq-fe.h>

#include "gtest/gtest.h"
#include "tests/postgres_process.h"

namespace caseledger::testing {

class PostgresSuite : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto pg = PostgresProcess::Start("suite");
    ASSERT_TRUE(pg.ok()) << pg.status();
    pg_ = pg->release();
  }
  static void TearDownTestSuite() {
    delete pg_;
    pg_ = nullptr;
  }
  void SetUp() override {
    PGconn* c = PQconnectdb(pg_->conninfo().c_str());
    PQclear(PQexec(c,
                   "SET client_min_messages TO warning; DROP TABLE IF EXISTS cl_partitions, "
                   "cl_records, cl_checkpoints, cl_keys, cl_global, cl_global_checkpoints, "
                   "cl_cosignatures"));
    PQfinish(c);
  }
  static inline PostgresProcess* pg_ = nullptr;
};

}  // namespace caseledger::testing

#endif  // CASELEDGER_TESTS_POSTGRES_SUITE_H_
