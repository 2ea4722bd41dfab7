#include "services/cluster/cluster_client.h"

#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace caseledger {
namespace {

v1::InclusionProof WellFormed() {
  v1::InclusionProof p;
  p.set_seq(5);
  p.set_tree_size(8);
  p.add_hashes(std::string(32, 'a'));
  p.add_hashes(std::string(32, 'b'));
  v1::PartitionedInclusion* g = p.mutable_partitioned();
  g->set_partition(3);
  g->set_partition_body("example.org/log/p3\n8\nroot\nsubjects s\n");
  g->set_global_index(7);
  g->add_global_hashes(std::string(32, 'c'));
  return p;
}

TEST(PartitionedProofFromWire, CarriesEveryField) {
  absl::StatusOr<PartitionedProof> p = PartitionedProofFromWire(WellFormed(), "leaf bytes");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->partition, 3u);
  EXPECT_EQ(p->seq, 5u);
  EXPECT_EQ(p->record_leaf, "leaf bytes");
  EXPECT_EQ(p->partition_body, "example.org/log/p3\n8\nroot\nsubjects s\n");
  EXPECT_EQ(p->global_index, 7u);
  ASSERT_EQ(p->partition_proof.size(), 2u);
  EXPECT_EQ(p->partition_proof[1][0], 'b');
  ASSERT_EQ(p->global_proof.size(), 1u);
  EXPECT_EQ(p->global_proof[0][31], 'c');
}

TEST(PartitionedProofFromWire, RefusesAnAnswerWithoutThePartitionedLevel) {
  v1::InclusionProof p = WellFormed();
  p.clear_partitioned();
  absl::StatusOr<PartitionedProof> got = PartitionedProofFromWire(p, "leaf");
  EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(got.status().message(), "partitioned: missing")) << got.status();
}

TEST(PartitionedProofFromWire, NamesAHashOfTheWrongLength) {
  v1::InclusionProof p = WellFormed();
  p.mutable_partitioned()->add_global_hashes(std::string(31, 'd'));
  absl::StatusOr<PartitionedProof> got = PartitionedProofFromWire(p, "leaf");
  EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(got.status().message(), "partitioned.global_hashes[1]: "))
      << got.status();
  p = WellFormed();
  p.set_hashes(0, "short");
  got = PartitionedProofFromWire(p, "leaf");
  EXPECT_TRUE(absl::StartsWith(got.status().message(), "hashes[0]: ")) << got.status();
}

}  // namespace
}  // namespace caseledger
