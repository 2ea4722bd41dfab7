// The two status macros abseil 20220623 does not ship.
#ifndef CASELEDGER_LEDGER_INTERNAL_STATUS_MACROS_H_
#define CASELEDGER_LEDGER_INTERNAL_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define CL_CONCAT_INNER_(a, b) a##b
#define CL_CONCAT_(a, b) CL_CONCAT_INNER_(a, b)

// Returns the status from the enclosing function unless it is OK.
#define CL_RETURN_IF_ERROR(expr)                     \
  do {                                               \
    ::absl::Status cl_status_ = (expr);              \
    if (!cl_status_.ok()) return cl_status_;         \
  } while (0)

// `lhs = *expr` when expr (a StatusOr) is OK; returns its status otherwise.
#define CL_ASSIGN_OR_RETURN(lhs, expr) \
  CL_ASSIGN_OR_RETURN_IMPL_(CL_CONCAT_(cl_statusor_, __LINE__), lhs, expr)
#define CL_ASSIGN_OR_RETURN_IMPL_(var, lhs, expr) \
  auto var = (expr);                              \
  if (!var.ok()) return var.status();             \
  lhs = std::move(*var)

#endif  // CASELEDGER_LEDGER_INTERNAL_STATUS_MACROS_H_
