// A deliberately naive RFC 9162 Merkle tree: the recursive definitions of
// section 2.1 transcribed as they are written, with no caching and no stored
// nodes. Slow (every call rehashes whole subtrees) and obviously correct; the
// fast code in ledger/ is cross-checked against it. Test-only.
//
// All functions take the leaf hashes D[0..n) (LeafHash() of each entry), so
// that MTH of a single entry is its leaf hash.
#ifndef CASELEDGER_TESTS_NAIVE_MERKLE_H_
#define CASELEDGER_TESTS_NAIVE_MERKLE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "ledger/hash.h"

namespace caseledger::testing {

// LeafHash() of each entry, in order.
std::vector<Hash> NaiveLeafHashes(const std::vector<std::string>& entries);

// MTH(D[n]) (RFC 9162 2.1.1); SHA-256("") for n == 0.
Hash NaiveRoot(const std::vector<Hash>& leaf_hashes);

// PATH(m, D[n]) (RFC 9162 2.1.3.1). Requires m < n; aborts otherwise.
std::vector<Hash> NaivePath(uint64_t m, const std::vector<Hash>& leaf_hashes);

// PROOF(m, D[n]) (RFC 9162 2.1.4.1) for 0 < m <= n; empty for m == 0, which
// the RFC leaves undefined. Requires m <= n; aborts otherwise.
std::vector<Hash> NaiveProof(uint64_t m, const std::vector<Hash>& leaf_hashes);

}  // namespace caseledger::testing

#endif  // CASELEDGER_TESTS_NAIVE_MERKLE_H_
