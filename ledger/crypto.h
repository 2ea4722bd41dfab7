// AES-256-GCM and HKDF-SHA256 over OpenSSL EVP: the primitives behind payload
// encryption (ledger/ENCRYPTION.md). Nothing here knows about records or keys
// in storage; ledger/key_store.h builds on it.
#ifndef CASELEDGER_LEDGER_CRYPTO_H_
#define CASELEDGER_LEDGER_CRYPTO_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace caseledger {

inline constexpr size_t kAeadKeySize = 32;   // AES-256
inline constexpr size_t kGcmNonceSize = 12;  // 96-bit nonce (RFC 5116 AEAD_AES_256_GCM)
inline constexpr size_t kGcmTagSize = 16;    // 128-bit tag
// What sealing adds to a plaintext: nonce || ciphertext || tag.
inline constexpr size_t kSealOverhead = kGcmNonceSize + kGcmTagSize;

// A 256-bit secret key. Wiped when destroyed, so a destroyed data key does not
// linger in freed memory.
class AeadKey {
 public:
  AeadKey() { bytes_.fill(0); }
  explicit AeadKey(const std::array<uint8_t, kAeadKeySize>& bytes) : bytes_(bytes) {}
  AeadKey(const AeadKey&) = default;
  AeadKey& operator=(const AeadKey&) = default;
  ~AeadKey();

  // INVALID_ARGUMENT unless `bytes` is exactly 32 bytes.
  static absl::StatusOr<AeadKey> FromBytes(absl::string_view bytes);
  // INVALID_ARGUMENT unless `hex` is 64 hex digits (surrounding whitespace,
  // such as a file's trailing newline, is ignored).
  static absl::StatusOr<AeadKey> FromHex(absl::string_view hex);
  // A fresh key from OpenSSL's RAND_bytes; INTERNAL if it fails.
  static absl::StatusOr<AeadKey> Generate();

  const uint8_t* data() const { return bytes_.data(); }
  absl::string_view bytes() const {
    return absl::string_view(reinterpret_cast<const char*>(bytes_.data()), bytes_.size());
  }
  bool operator==(const AeadKey& other) const { return bytes_ == other.bytes_; }

 private:
  std::array<uint8_t, kAeadKeySize> bytes_;
};

using GcmNonce = std::array<uint8_t, kGcmNonceSize>;

// AES-256-GCM with the given nonce: returns ciphertext || tag. The caller
// guarantees the nonce is never reused under `key`; only tests and golden
// vectors pick nonces, everything else calls Seal.
absl::StatusOr<std::string> SealWithNonce(const AeadKey& key, const GcmNonce& nonce,
                                          absl::string_view plaintext, absl::string_view aad);

// AES-256-GCM with a fresh random 96-bit nonce: returns nonce || ciphertext ||
// tag (kSealOverhead bytes longer than the plaintext).
absl::StatusOr<std::string> Seal(const AeadKey& key, absl::string_view plaintext,
                                 absl::string_view aad);

// Inverse of Seal. DATA_LOSS when `sealed` is shorter than kSealOverhead or
// the tag does not verify (wrong key, wrong aad, or altered bytes: GCM cannot
// tell these apart, and says so).
absl::StatusOr<std::string> Open(const AeadKey& key, absl::string_view sealed,
                                 absl::string_view aad);

// HKDF-SHA256 (RFC 5869) with `length` output bytes; empty salt means the
// RFC's default (zeros).
absl::StatusOr<std::string> HkdfSha256(absl::string_view ikm, absl::string_view salt,
                                       absl::string_view info, size_t length);

}  // namespace caseledger

#endif  // CASELEDGER_LEDGER_CRYPTO_H_
