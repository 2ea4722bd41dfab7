// SHA-256 values and the RFC 9162 domain-separated hashes built on them.
//
// Thread-safety: every function here is safe to call from any thread.
#ifndef CASELEDGER_LEDGER_HASH_H_
#define CASELEDGER_LEDGER_HASH_H_

#include <array>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace caseledger {

// A SHA-256 digest. A value type: compare, copy and use it as a map key.
using Hash = std::array<uint8_t, 32>;

inline constexpr size_t kHashSize = 32;

// Domain-separation prefixes. 0x00 and 0x01 are RFC 9162 section 2.1.1; the
// others are this project's and are listed in ledger/FORMAT.md.
inline constexpr uint8_t kLeafPrefix = 0x00;
inline constexpr uint8_t kNodePrefix = 0x01;
inline constexpr uint8_t kFieldCommitmentPrefix = 0x02;
inline constexpr uint8_t kPayloadCommitmentPrefix = 0x03;

// Incremental SHA-256 over OpenSSL EVP. Not thread-safe; one per thread.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(absl::string_view data);
  void Update(const Hash& h);
  void Update(uint8_t byte);
  // Returns the digest and resets the object for reuse.
  Hash Finish();

 private:
  void* ctx_;  // EVP_MD_CTX*, owned.
};

// SHA-256 of `data`.
Hash Sha256Of(absl::string_view data);

// RFC 9162: SHA-256(0x00 || leaf).
Hash LeafHash(absl::string_view leaf);
// RFC 9162: SHA-256(0x01 || left || right).
Hash NodeHash(const Hash& left, const Hash& right);
// The root of the empty tree: SHA-256 of the empty string.
Hash EmptyRoot();

// Lower-case hex, 64 characters.
std::string ToHex(const Hash& h);
// Inverse of ToHex. INVALID_ARGUMENT unless `hex` is 64 hex digits.
absl::StatusOr<Hash> HashFromHex(absl::string_view hex);
// The first 8 hex digits followed by "…", for error messages.
std::string ShortHex(const Hash& h);
// The hash's bytes as a string (32 bytes).
inline absl::string_view AsBytes(const Hash& h) {
  return absl::string_view(reinterpret_cast<const char*>(h.data()), h.size());
}
// INVALID_ARGUMENT unless `bytes` has exactly 32 bytes.
absl::StatusOr<Hash> HashFromBytes(absl::string_view bytes);

}  // namespace caseledger

#endif  // CASELEDGER_LEDGER_HASH_H_
