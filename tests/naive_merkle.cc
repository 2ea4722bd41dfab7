#include "tests/naive_merkle.h"

#include <cstdlib>

namespace caseledger::testing {
namespace {

using Leaves = std::vector<Hash>;

// D[begin:end], copied, as the RFC writes it.
Leaves Slice(const Leaves& d, uint64_t begin, uint64_t end) {
  return Leaves(d.begin() + begin, d.begin() + end);
}

// The largest power of two smaller than n, for n > 1, found by counting.
uint64_t Split(uint64_t n) {
  uint64_t k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

std::vector<Hash> Concat(std::vector<Hash> a, const Hash& b) {
  a.push_back(b);
  return a;
}

// SUBPROOF(m, D[n], b).
std::vector<Hash> SubProof(uint64_t m, const Leaves& d, bool b) {
  const uint64_t n = d.size();
  if (m == n) {
    if (b) return {};
    return {NaiveRoot(d)};
  }
  const uint64_t k = Split(n);
  if (m <= k) {
    return Concat(SubProof(m, Slice(d, 0, k), b), NaiveRoot(Slice(d, k, n)));
  }
  return Concat(SubProof(m - k, Slice(d, k, n), false), NaiveRoot(Slice(d, 0, k)));
}

}  // namespace

std::vector<Hash> NaiveLeafHashes(const std::vector<std::string>& entries) {
  std::vector<Hash> out;
  for (const std::string& e : entries) out.push_back(LeafHash(e));
  return out;
}

Hash NaiveRoot(const Leaves& d) {
  const uint64_t n = d.size();
  if (n == 0) return Sha256Of("");
  if (n == 1) return d[0];
  const uint64_t k = Split(n);
  return NodeHash(NaiveRoot(Slice(d, 0, k)), NaiveRoot(Slice(d, k, n)));
}

std::vector<Hash> NaivePath(uint64_t m, const Leaves& d) {
  const uint64_t n = d.size();
  if (m >= n) std::abort();
  if (n == 1) return {};
  const uint64_t k = Split(n);
  if (m < k) return Concat(NaivePath(m, Slice(d, 0, k)), NaiveRoot(Slice(d, k, n)));
  return Concat(NaivePath(m - k, Slice(d, k, n)), NaiveRoot(Slice(d, 0, k)));
}

std::vector<Hash> NaiveProof(uint64_t m, const Leaves& d) {
  if (m > d.size()) std::abort();
  if (m == 0) return {};
  return SubProof(m, d, true);
}

}  // namespace caseledger::testing
