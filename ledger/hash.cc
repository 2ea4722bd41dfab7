#include "ledger/hash.h"

#include <openssl/evp.h>

#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace caseledger {
namespace {

// Fetched once: OpenSSL 3 looks up the implementation on every EVP_sha256()
// call otherwise.
const EVP_MD* Sha256Md() {
  static const EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}

EVP_MD_CTX* Ctx(void* p) { return static_cast<EVP_MD_CTX*>(p); }

}  // namespace

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  if (ctx_ == nullptr || EVP_DigestInit_ex(Ctx(ctx_), Sha256Md(), nullptr) != 1) std::abort();
}

Sha256::~Sha256() { EVP_MD_CTX_free(Ctx(ctx_)); }

void Sha256::Update(absl::string_view data) {
  EVP_DigestUpdate(Ctx(ctx_), data.data(), data.size());
}

void Sha256::Update(const Hash& h) { EVP_DigestUpdate(Ctx(ctx_), h.data(), h.size()); }

void Sha256::Update(uint8_t byte) { EVP_DigestUpdate(Ctx(ctx_), &byte, 1); }

Hash Sha256::Finish() {
  Hash out;
  unsigned int len = 0;
  EVP_DigestFinal_ex(Ctx(ctx_), out.data(), &len);
  EVP_DigestInit_ex(Ctx(ctx_), Sha256Md(), nullptr);
  return out;
}

namespace {
// One reusable context per thread keeps hashing free of allocation.
Sha256& ThreadHasher() {
  thread_local Sha256 hasher;
  return hasher;
}
}  // namespace

Hash Sha256Of(absl::string_view data) {
  Sha256& h = ThreadHasher();
  h.Update(data);
  return h.Finish();
}

Hash LeafHash(absl::string_view leaf) {
  Sha256& h = ThreadHasher();
  h.Update(kLeafPrefix);
  h.Update(leaf);
  return h.Finish();
}

Hash NodeHash(const Hash& left, const Hash& right) {
  Sha256& h = ThreadHasher();
  h.Update(kNodePrefix);
  h.Update(left);
  h.Update(right);
  return h.Finish();
}

Hash EmptyRoot() { return Sha256Of(""); }

std::string ToHex(const Hash& h) { return absl::BytesToHexString(AsBytes(h)); }

absl::StatusOr<Hash> HashFromHex(absl::string_view hex) {
  if (hex.size() != 2 * kHashSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("hash: got ", hex.size(), " hex digits, want 64"));
  }
  for (char c : hex) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) {
      return absl::InvalidArgumentError(absl::StrCat("hash: '", hex, "' is not hex"));
    }
  }
  return HashFromBytes(absl::HexStringToBytes(hex));
}

std::string ShortHex(const Hash& h) { return ToHex(h).substr(0, 8) + "\u2026"; }

absl::StatusOr<Hash> HashFromBytes(absl::string_view bytes) {
  if (bytes.size() != kHashSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("hash: got ", bytes.size(), " bytes, want 32"));
  }
  Hash h;
  std::copy(bytes.begin(), bytes.end(), h.begin());
  return h;
}

}  // namespace caseledger
