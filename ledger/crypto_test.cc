#include "ledger/crypto.h"

#include <gtest/gtest.h>

#include "absl/strings/escaping.h"

namespace caseledger {
namespace {

std::string Hex(absl::string_view bytes) { return absl::BytesToHexString(bytes); }
std::string Bytes(absl::string_view hex) { return absl::HexStringToBytes(hex); }

AeadKey KeyFromHex(absl::string_view hex) {
  auto k = AeadKey::FromHex(hex);
  EXPECT_TRUE(k.ok()) << k.status();
  return k.ok() ? *k : AeadKey();
}

GcmNonce NonceFromHex(absl::string_view hex) {
  std::string b = Bytes(hex);
  GcmNonce n;
  std::copy(b.begin(), b.end(), n.begin());
  return n;
}

// The AES-256 cases of the GCM specification's test vectors (McGrew & Viega,
// "The Galois/Counter Mode of Operation", test cases 13, 14 and 16; the same
// vectors NIST's CAVP and RFC 5116 implementations are checked against).
struct GcmVector {
  const char* name;
  const char* key;
  const char* nonce;
  const char* plaintext;
  const char* aad;
  const char* ciphertext_and_tag;
};
const GcmVector kGcmVectors[] = {
    {"case13", "0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000", "", "", "530f8afbc74536b9a963b4f1c4cb738b"},
    {"case14", "0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000", "00000000000000000000000000000000", "",
     "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919"},
    {"case16", "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
     "cafebabefacedbaddecaf888",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e24"
     "49a6b525b16aedf5aa0de657ba637b39",
     "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b10"
     "56828838c5f61e6393ba7a0abcc9f662"
     "76fc6ece0f4e1768cddf8853bb2d551b"},
};

TEST(CryptoTest, AesGcmMatchesPublishedVectors) {
  for (const GcmVector& v : kGcmVectors) {
    SCOPED_TRACE(v.name);
    AeadKey key = KeyFromHex(v.key);
    auto sealed = SealWithNonce(key, NonceFromHex(v.nonce), Bytes(v.plaintext), Bytes(v.aad));
    ASSERT_TRUE(sealed.ok()) << sealed.status();
    EXPECT_EQ(Hex(*sealed), v.ciphertext_and_tag);
    // And Open accepts nonce || ciphertext || tag back.
    auto opened = Open(key, Bytes(v.nonce) + *sealed, Bytes(v.aad));
    ASSERT_TRUE(opened.ok()) << opened.status();
    EXPECT_EQ(Hex(*opened), v.plaintext);
  }
}

TEST(CryptoTest, HkdfMatchesRfc5869Case1) {
  auto okm = HkdfSha256(std::string(22, '\x0b'), Bytes("000102030405060708090a0b0c"),
                        Bytes("f0f1f2f3f4f5f6f7f8f9"), 42);
  ASSERT_TRUE(okm.ok()) << okm.status();
  EXPECT_EQ(Hex(*okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
}

TEST(CryptoTest, SealOpenRoundTripWithFreshNonces) {
  auto key = AeadKey::Generate();
  ASSERT_TRUE(key.ok());
  auto a = Seal(*key, "secret MARKER", "aad");
  auto b = Seal(*key, "secret MARKER", "aad");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->size(), 13 + kSealOverhead);
  EXPECT_NE(a->substr(0, kGcmNonceSize), b->substr(0, kGcmNonceSize));
  EXPECT_EQ(a->find("MARKER"), std::string::npos);
  auto opened = Open(*key, *a, "aad");
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(*opened, "secret MARKER");
}

TEST(CryptoTest, WrongKeyWrongAadAndEveryFlippedByteFail) {
  auto key = AeadKey::Generate();
  auto other = AeadKey::Generate();
  ASSERT_TRUE(key.ok() && other.ok());
  auto sealed = Seal(*key, "confidential", "record 7");
  ASSERT_TRUE(sealed.ok());
  auto wrong_key = Open(*other, *sealed, "record 7");
  EXPECT_EQ(wrong_key.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(wrong_key.status().message().find("tag does not verify"), std::string::npos);
  EXPECT_EQ(Open(*key, *sealed, "record 8").status().code(), absl::StatusCode::kDataLoss);
  // Nonce, ciphertext and tag bytes alike.
  for (size_t i = 0; i < sealed->size(); ++i) {
    std::string bad = *sealed;
    bad[i] ^= 0x01;
    EXPECT_EQ(Open(*key, bad, "record 7").status().code(), absl::StatusCode::kDataLoss)
        << "byte " << i;
  }
  auto short_input = Open(*key, sealed->substr(0, kSealOverhead - 1), "record 7");
  EXPECT_EQ(short_input.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(short_input.status().message(),
            "sealed bytes: got 27, want at least 28 (nonce and tag)");
}

TEST(CryptoTest, KeyFromHexChecksInput) {
  EXPECT_TRUE(AeadKey::FromHex(std::string(64, 'a') + "\n").ok());
  auto short_key = AeadKey::FromHex("abcd");
  EXPECT_EQ(short_key.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(short_key.status().message(), "key: got 4 characters, want 64 hex digits");
  auto not_hex = AeadKey::FromHex(std::string(63, 'a') + "g");
  EXPECT_EQ(not_hex.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(AeadKey::FromBytes("short").status().message(), "key: got 5 bytes, want 32");
}

}  // namespace
}  // namespace caseledger
