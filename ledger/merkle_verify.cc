#include "ledger/merkle_verify.h"

#include "absl/numeric/bits.h"
#include "absl/strings/str_cat.h"

namespace caseledger {
namespace {

// Splits PATH(index, D[tree_size]) into the `inner` hashes below the level
// where the leaf's path joins the tree's right edge, and the `border` hashes
// of left siblings along that edge.
struct PathShape {
  uint64_t inner;
  uint64_t border;
};

PathShape ShapeOf(uint64_t index, uint64_t tree_size) {
  const uint64_t inner = absl::bit_width(index ^ (tree_size - 1));
  const uint64_t border = inner >= 64 ? 0 : absl::popcount(index >> inner);
  return {inner, border};
}

bool IsPowerOfTwo(uint64_t x) { return absl::has_single_bit(x); }

}  // namespace

uint64_t InclusionProofLength(uint64_t index, uint64_t tree_size) {
  const PathShape shape = ShapeOf(index, tree_size);
  return shape.inner + shape.border;
}

uint64_t ConsistencyProofLength(uint64_t size1, uint64_t size2) {
  if (size1 == 0 || size1 == size2) return 0;
  // The proof is the audit path of the old tree's last perfect subtree (at
  // level countr_zero(size1)) in the new tree, preceded by that subtree's
  // hash unless it is the whole old tree.
  const PathShape shape = ShapeOf(size1 - 1, size2);
  const uint64_t level = absl::countr_zero(size1);
  return (shape.inner - level) + shape.border + (IsPowerOfTwo(size1) ? 0 : 1);
}

absl::StatusOr<Hash> RootFromInclusionProof(const Hash& leaf_hash, uint64_t index,
                                            uint64_t tree_size, absl::Span<const Hash> proof) {
  // RFC 9162 2.1.3.2, step 1.
  if (index >= tree_size) {
    return absl::InvalidArgumentError(absl::StrCat("inclusion proof: got index ", index,
                                                   ", want less than tree size ", tree_size));
  }
  const uint64_t want = InclusionProofLength(index, tree_size);
  if (proof.size() != want) {
    return absl::InvalidArgumentError(absl::StrCat("inclusion proof: got ", proof.size(),
                                                   " hashes, want ", want, " for index ", index,
                                                   " in tree of size ", tree_size));
  }
  // Steps 2 to 5. The length check above guarantees that sn reaches 0 exactly
  // with the last hash; the RFC's own checks stay as a guard.
  InclusionWalk walk(leaf_hash, index, tree_size);
  for (const Hash& p : proof) {
    if (walk.done()) {
      return absl::InternalError(absl::StrCat("inclusion proof: path too long for index ", index,
                                              " in tree of size ", tree_size,
                                              " despite length check"));
    }
    walk.Step(p);
  }
  if (!walk.done()) {
    return absl::InternalError(absl::StrCat("inclusion proof: path too short for index ", index,
                                            " in tree of size ", tree_size,
                                            " despite length check"));
  }
  return walk.hash();
}

absl::Status VerifyInclusion(const Hash& leaf_hash, uint64_t index, uint64_t tree_size,
                             absl::Span<const Hash> proof, const Hash& root) {
  absl::StatusOr<Hash> computed = RootFromInclusionProof(leaf_hash, index, tree_size, proof);
  if (!computed.ok()) return computed.status();
  if (*computed != root) {
    return absl::DataLossError(absl::StrCat("inclusion proof: computed root ", ShortHex(*computed),
                                            ", want ", ShortHex(root)));
  }
  return absl::OkStatus();
}

absl::Status VerifyConsistency(uint64_t size1, uint64_t size2, absl::Span<const Hash> proof,
                               const Hash& root1, const Hash& root2) {
  if (size1 > size2) {
    return absl::InvalidArgumentError(
        absl::StrCat("consistency proof: got size1 ", size1, ", want at most size2 ", size2));
  }
  const uint64_t want = ConsistencyProofLength(size1, size2);
  if (proof.size() != want) {
    return absl::InvalidArgumentError(absl::StrCat("consistency proof: got ", proof.size(),
                                                   " hashes, want ", want, " from size ", size1,
                                                   " to size ", size2));
  }
  if (size1 == 0) {
    const Hash empty = EmptyRoot();
    if (root1 != empty) {
      return absl::DataLossError(absl::StrCat("consistency proof: got root1 ", ShortHex(root1),
                                              " for size 0, want the empty-tree root ",
                                              ShortHex(empty)));
    }
  }
  if (size1 == size2) {
    if (root2 != root1) {
      return absl::DataLossError(absl::StrCat("consistency proof: got root2 ", ShortHex(root2),
                                              " for unchanged size ", size1, ", want root1 ",
                                              ShortHex(root1)));
    }
    return absl::OkStatus();
  }
  if (size1 == 0) return absl::OkStatus();

  // RFC 9162 2.1.4.2. Step 2 prepends root1 when size1 is a power of two;
  // instead of copying the proof, `seed` stands for the array's first value
  // and `rest` for the others.
  const bool prepend = IsPowerOfTwo(size1);
  const Hash& seed = prepend ? root1 : proof[0];
  absl::Span<const Hash> rest = prepend ? proof : proof.subspan(1);
  // Steps 3 and 4.
  uint64_t fn = size1 - 1;
  uint64_t sn = size2 - 1;
  while ((fn & 1) != 0) {
    fn >>= 1;
    sn >>= 1;
  }
  // Step 5.
  Hash fr = seed;
  Hash sr = seed;
  // Step 6.
  for (const Hash& c : rest) {
    if (sn == 0) {
      return absl::InternalError(absl::StrCat("consistency proof: too long from size ", size1,
                                              " to size ", size2, " despite length check"));
    }
    if ((fn & 1) != 0 || fn == sn) {
      fr = NodeHash(c, fr);
      sr = NodeHash(c, sr);
      if ((fn & 1) == 0) {
        while ((fn & 1) == 0 && fn != 0) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      sr = NodeHash(sr, c);
    }
    fn >>= 1;
    sn >>= 1;
  }
  // Step 7.
  if (sn != 0) {
    return absl::InternalError(absl::StrCat("consistency proof: too short from size ", size1,
                                            " to size ", size2, " despite length check"));
  }
  if (fr != root1) {
    return absl::DataLossError(absl::StrCat("consistency proof: computed root1 ", ShortHex(fr),
                                            ", want ", ShortHex(root1)));
  }
  if (sr != root2) {
    return absl::DataLossError(absl::StrCat("consistency proof: computed root2 ", ShortHex(sr),
                                            ", want ", ShortHex(root2)));
  }
  return absl::OkStatus();
}

}  // namespace caseledger
