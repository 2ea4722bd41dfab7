// Ed25519 signing keys (RFC 8032) over OpenSSL EVP, and the key file that holds
// the log's private key. The key file format is in ledger/CHECKPOINT.md.
//
// Thread-safety: Signer and Ed25519Verifier objects are immutable after
// construction; Sign, Verify and PublicKey may be called from any thread.
#ifndef CASELEDGER_LEDGER_SIGNER_H_
#define CASELEDGER_LEDGER_SIGNER_H_

#include <openssl/types.h>

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace caseledger {

inline constexpr size_t kEd25519SeedSize = 32;
inline constexpr size_t kEd25519PublicKeySize = 32;
inline constexpr size_t kEd25519SignatureSize = 64;

namespace internal {
// Frees an EVP_PKEY; lets the header hold one without including <openssl/evp.h>.
struct EvpPkeyDeleter {
  void operator()(EVP_PKEY* pkey) const;
};
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, EvpPkeyDeleter>;
}  // namespace internal

// Signs byte strings with one private key.
class Signer {
 public:
  virtual ~Signer();

  // The signature over `data`. INTERNAL if the crypto library fails.
  virtual absl::StatusOr<std::string> Sign(absl::string_view data) const = 0;

  // The raw public key (32 bytes for Ed25519).
  virtual std::string PublicKey() const = 0;
};

// A pure Ed25519 (RFC 8032, no pre-hash, no context) signer. Signatures are
// deterministic: the same key and data always give the same 64 bytes.
class Ed25519Signer : public Signer {
 public:
  // A fresh key from OpenSSL's CSPRNG. INTERNAL if the crypto library fails.
  static absl::StatusOr<std::unique_ptr<Ed25519Signer>> Generate();

  // The key whose RFC 8032 private key (the 32-byte seed) is `seed`.
  // INVALID_ARGUMENT unless `seed` has exactly 32 bytes.
  static absl::StatusOr<std::unique_ptr<Ed25519Signer>> FromSeed(absl::string_view seed);

  // Loads the PEM PKCS#8 Ed25519 key file at `path`, or, if no file is there,
  // generates a key and publishes it at `path` with mode 0600 (written to a
  // temporary file in the same directory, fsync'd, then hard-linked into place
  // so that a concurrent creator's key is never replaced; the directory is
  // fsync'd too). If two processes race, both end up with the key that won.
  //
  // Returns FAILED_PRECONDITION if the file is readable, writable or
  // executable by group or others, or is not a regular file; INVALID_ARGUMENT
  // if it is not a PEM PKCS#8 Ed25519 private key; INTERNAL for I/O errors.
  // Messages name `path`.
  static absl::StatusOr<std::unique_ptr<Ed25519Signer>> LoadOrCreate(const std::string& path);

  ~Ed25519Signer() override;
  Ed25519Signer(const Ed25519Signer&) = delete;
  Ed25519Signer& operator=(const Ed25519Signer&) = delete;

  absl::StatusOr<std::string> Sign(absl::string_view data) const override;
  std::string PublicKey() const override;

 private:
  Ed25519Signer(internal::EvpPkeyPtr pkey, std::string public_key);
  static absl::StatusOr<std::unique_ptr<Ed25519Signer>> FromPkey(internal::EvpPkeyPtr pkey);

  internal::EvpPkeyPtr pkey_;  // Never modified after construction.
  std::string public_key_;     // 32 bytes.
};

// Verifies Ed25519 signatures by one public key.
class Ed25519Verifier {
 public:
  // INVALID_ARGUMENT unless `public_key` has exactly 32 bytes. (A 32-byte
  // string that is not a curve point is accepted here and fails every Verify.)
  static absl::StatusOr<std::unique_ptr<Ed25519Verifier>> New(absl::string_view public_key);

  ~Ed25519Verifier();
  Ed25519Verifier(const Ed25519Verifier&) = delete;
  Ed25519Verifier& operator=(const Ed25519Verifier&) = delete;

  // OK if `signature` is this key's signature over `data`.
  // INVALID_ARGUMENT if `signature` is not 64 bytes; DATA_LOSS if it does not
  // verify.
  absl::Status Verify(absl::string_view data, absl::string_view signature) const;

  // The raw 32-byte public key.
  const std::string& PublicKey() const { return public_key_; }

 private:
  Ed25519Verifier(internal::EvpPkeyPtr pkey, std::string public_key);

  internal::EvpPkeyPtr pkey_;  // Never modified after construction.
  std::string public_key_;
};

}  // namespace caseledger

#endif  // CASELEDGER_LEDGER_SIGNER_H_
