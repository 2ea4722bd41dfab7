#include "ledger/hash.h"

#include <gtest/gtest.h>

namespace caseledger {
namespace {

// Known answers: FIPS 180-2 "abc", and RFC 9162 leaf/node prefixes checked
// against `printf '\x00abc' | sha256sum` style computations.
TEST(HashTest, Sha256KnownAnswer) {
  EXPECT_EQ(ToHex(Sha256Of("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(ToHex(EmptyRoot()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(HashTest, LeafHashIsDomainSeparated) {
  // SHA-256 of the single byte 0x00: the RFC 9162 hash of an empty leaf.
  EXPECT_EQ(ToHex(LeafHash("")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
  EXPECT_NE(LeafHash("abc"), Sha256Of("abc"));
}

TEST(HashTest, NodeHashOrderMatters) {
  Hash a = LeafHash("a"), b = LeafHash("b");
  EXPECT_NE(NodeHash(a, b), NodeHash(b, a));
  Sha256 h;
  h.Update(uint8_t{0x01});
  h.Update(a);
  h.Update(b);
  EXPECT_EQ(NodeHash(a, b), h.Finish());
}

TEST(HashTest, HexRoundTripAndErrors) {
  Hash h = Sha256Of("x");
  auto back = HashFromHex(ToHex(h));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, h);
  EXPECT_EQ(HashFromHex("abc").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(HashFromHex(std::string(64, 'z')).status().message(),
            "hash: '" + std::string(64, 'z') + "' is not hex");
  EXPECT_EQ(HashFromBytes("short").status().message(), "hash: got 5 bytes, want 32");
}

TEST(HashTest, IncrementalEqualsOneShot) {
  Sha256 h;
  h.Update("ab");
  h.Update("c");
  EXPECT_EQ(h.Finish(), Sha256Of("abc"));
  h.Update("abc");  // reusable after Finish
  EXPECT_EQ(h.Finish(), Sha256Of("abc"));
}

}  // namespace
}  // namespace caseledger
