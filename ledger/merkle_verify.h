// Verification of RFC 9162 Merkle inclusion and consistency proofs.
//
// Pure functions over hashes: no storage, no I/O. The algorithms are those of
// RFC 9162 sections 2.1.3.2 (inclusion) and 2.1.4.2 (consistency); the proof
// layout they expect is described in ledger/MERKLE.md.
//
// Error codes, for every function here:
//   INVALID_ARGUMENT  the arguments cannot describe a valid proof: an index
//                     outside the tree, size1 > size2, or a proof whose
//                     length is not the one the sizes require. The message
//                     names the values.
//   DATA_LOSS         the proof is well formed but does not reproduce the
//                     given root(s). The message gives the computed and the
//                     expected root (ShortHex).
//
// Thread-safety: every function here is safe to call from any thread.
#ifndef CASELEDGER_LEDGER_MERKLE_VERIFY_H_
#define CASELEDGER_LEDGER_MERKLE_VERIFY_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "ledger/hash.h"

namespace caseledger {

// The number of hashes in PATH(index, D[tree_size]) (RFC 9162 2.1.3.1).
// Requires index < tree_size.
uint64_t InclusionProofLength(uint64_t index, uint64_t tree_size);

// The number of hashes in PROOF(size1, D[size2]) (RFC 9162 2.1.4.1): 0 when
// size1 == 0 or size1 == size2. Requires size1 <= size2.
uint64_t ConsistencyProofLength(uint64_t size1, uint64_t size2);

// Returns the root that `proof`, an audit path ordered leaf-side first,
// implies for the leaf `leaf_hash` (already LeafHash()ed) at `index` in a tree
// of `tree_size` leaves. INVALID_ARGUMENT if index >= tree_size or the proof
// length is wrong for (index, tree_size).
absl::StatusOr<Hash> RootFromInclusionProof(const Hash& leaf_hash, uint64_t index,
                                            uint64_t tree_size, absl::Span<const Hash> proof);

// The walk of RFC 9162 section 2.1.3.2, steps 2 to 5, one audit-path hash at
// a time: the one inclusion check, shared by RootFromInclusionProof and by
// verifiers that may stop early (the history bundle's checker stops at a node
// an earlier proof computed). Requires index < tree_size; the caller checks
// the path's length (InclusionProofLength) and compares hash() with the root
// once done().
class InclusionWalk {
 public:
  InclusionWalk(const Hash& leaf_hash, uint64_t index, uint64_t tree_size)
      : fn_(index), sn_(tree_size - 1), hash_(leaf_hash) {}

  // True once the walk has reached the root: a further hash is one too many.
  bool done() const { return sn_ == 0; }
  // The node hash computed so far (the leaf hash before the first Step).
  const Hash& hash() const { return hash_; }

  // Folds in the next hash of the path. Requires !done().
  void Step(const Hash& sibling) {
    if ((fn_ & 1) != 0 || fn_ == sn_) {
      hash_ = NodeHash(sibling, hash_);
      if ((fn_ & 1) == 0) {
        while ((fn_ & 1) == 0 && fn_ != 0) {
          fn_ >>= 1;
          sn_ >>= 1;
        }
      }
    } else {
      hash_ = NodeHash(hash_, sibling);
    }
    fn_ >>= 1;
    sn_ >>= 1;
  }

 private:
  uint64_t fn_;
  uint64_t sn_;
  Hash hash_;
};

// OK iff `proof` shows that `leaf_hash` is the leaf at `index` in the tree of
// `tree_size` leaves whose root is `root`. INVALID_ARGUMENT as for
// RootFromInclusionProof; DATA_LOSS if the computed root differs from `root`.
absl::Status VerifyInclusion(const Hash& leaf_hash, uint64_t index, uint64_t tree_size,
                             absl::Span<const Hash> proof, const Hash& root);

// OK iff `proof` shows that the tree of `size2` leaves with root `root2`
// extends the tree of `size1` leaves with root `root1`.
//
// Edge cases, which RFC 9162 leaves to the verifier:
//   size1 == size2: the proof must be empty and root1 == root2.
//   size1 == 0:     the proof must be empty and root1 must be EmptyRoot();
//                   every tree extends the empty tree, so root2 is not checked.
// INVALID_ARGUMENT if size1 > size2 or the proof length is wrong for the
// sizes; DATA_LOSS if a root does not match.
absl::Status VerifyConsistency(uint64_t size1, uint64_t size2, absl::Span<const Hash> proof,
                               const Hash& root1, const Hash& root2);

}  // namespace caseledger

#endif  // CASELEDGER_LEDGER_MERKLE_VERIFY_H_
