#include "ledger/crypto.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace caseledger {
namespace {

struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;
struct KdfFree {
  void operator()(EVP_KDF* k) const { EVP_KDF_free(k); }
};
struct KdfCtxFree {
  void operator()(EVP_KDF_CTX* c) const { EVP_KDF_CTX_free(c); }
};

// OpenSSL's last error, for INTERNAL messages.
std::string SslError(absl::string_view what) {
  unsigned long e = ERR_get_error();
  char buf[256] = {0};
  if (e != 0) ERR_error_string_n(e, buf, sizeof(buf));
  ERR_clear_error();
  return absl::StrCat(what, " failed", e != 0 ? ": " : "", buf);
}

const unsigned char* U(absl::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

}  // namespace

AeadKey::~AeadKey() { OPENSSL_cleanse(bytes_.data(), bytes_.size()); }

absl::StatusOr<AeadKey> AeadKey::FromBytes(absl::string_view bytes) {
  if (bytes.size() != kAeadKeySize) {
    return absl::InvalidArgumentError(
        absl::StrCat("key: got ", bytes.size(), " bytes, want ", kAeadKeySize));
  }
  std::array<uint8_t, kAeadKeySize> b;
  std::copy(bytes.begin(), bytes.end(), b.begin());
  AeadKey key(b);
  OPENSSL_cleanse(b.data(), b.size());
  return key;
}

absl::StatusOr<AeadKey> AeadKey::FromHex(absl::string_view hex) {
  hex = absl::StripAsciiWhitespace(hex);
  if (hex.size() != 2 * kAeadKeySize) {
    return absl::InvalidArgumentError(absl::StrCat("key: got ", hex.size(),
                                                   " characters, want ", 2 * kAeadKeySize,
                                                   " hex digits"));
  }
  for (char c : hex) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) {
      return absl::InvalidArgumentError("key: contains a character that is not a hex digit");
    }
  }
  std::string raw = absl::HexStringToBytes(hex);
  absl::StatusOr<AeadKey> key = FromBytes(raw);
  OPENSSL_cleanse(raw.data(), raw.size());
  return key;
}

absl::StatusOr<AeadKey> AeadKey::Generate() {
  std::array<uint8_t, kAeadKeySize> b;
  if (RAND_bytes(b.data(), static_cast<int>(b.size())) != 1) {
    return absl::InternalError(SslError("RAND_bytes for a new key"));
  }
  AeadKey key(b);
  OPENSSL_cleanse(b.data(), b.size());
  return key;
}

absl::StatusOr<std::string> SealWithNonce(const AeadKey& key, const GcmNonce& nonce,
                                          absl::string_view plaintext, absl::string_view aad) {
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  if (ctx == nullptr) return absl::InternalError(SslError("EVP_CIPHER_CTX_new"));
  // The default GCM IV length is 96 bits, the one RFC 5116 fixes.
  if (EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.data(), nonce.data()) != 1) {
    return absl::InternalError(SslError("AES-256-GCM encrypt init"));
  }
  int len = 0;
  if (!aad.empty() &&
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, U(aad), static_cast<int>(aad.size())) != 1) {
    return absl::InternalError(SslError("AES-256-GCM aad"));
  }
  std::string out(plaintext.size() + kGcmTagSize, '\0');
  unsigned char* p = reinterpret_cast<unsigned char*>(out.data());
  if (!plaintext.empty() &&
      EVP_EncryptUpdate(ctx.get(), p, &len, U(plaintext), static_cast<int>(plaintext.size())) !=
          1) {
    return absl::InternalError(SslError("AES-256-GCM encrypt"));
  }
  int tail = 0;
  if (EVP_EncryptFinal_ex(ctx.get(), p + plaintext.size(), &tail) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kGcmTagSize,
                          p + plaintext.size()) != 1) {
    return absl::InternalError(SslError("AES-256-GCM tag"));
  }
  return out;
}

absl::StatusOr<std::string> Seal(const AeadKey& key, absl::string_view plaintext,
                                 absl::string_view aad) {
  GcmNonce nonce;
  if (RAND_bytes(nonce.data(), static_cast<int>(nonce.size())) != 1) {
    return absl::InternalError(SslError("RAND_bytes for a GCM nonce"));
  }
  absl::StatusOr<std::string> body = SealWithNonce(key, nonce, plaintext, aad);
  if (!body.ok()) return body.status();
  std::string out(reinterpret_cast<const char*>(nonce.data()), nonce.size());
  out += *body;
  return out;
}

absl::StatusOr<std::string> Open(const AeadKey& key, absl::string_view sealed,
                                 absl::string_view aad) {
  if (sealed.size() < kSealOverhead) {
    return absl::DataLossError(absl::StrCat("sealed bytes: got ", sealed.size(),
                                            ", want at least ", kSealOverhead,
                                            " (nonce and tag)"));
  }
  absl::string_view nonce = sealed.substr(0, kGcmNonceSize);
  absl::string_view body = sealed.substr(kGcmNonceSize, sealed.size() - kSealOverhead);
  absl::string_view tag = sealed.substr(sealed.size() - kGcmTagSize);
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  if (ctx == nullptr) return absl::InternalError(SslError("EVP_CIPHER_CTX_new"));
  if (EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.data(), U(nonce)) != 1) {
    return absl::InternalError(SslError("AES-256-GCM decrypt init"));
  }
  int len = 0;
  if (!aad.empty() &&
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, U(aad), static_cast<int>(aad.size())) != 1) {
    return absl::InternalError(SslError("AES-256-GCM aad"));
  }
  std::string out(body.size(), '\0');
  unsigned char* p = reinterpret_cast<unsigned char*>(out.data());
  if (!body.empty() &&
      EVP_DecryptUpdate(ctx.get(), p, &len, U(body), static_cast<int>(body.size())) != 1) {
    return absl::InternalError(SslError("AES-256-GCM decrypt"));
  }
  // EVP_CTRL_GCM_SET_TAG takes a non-const pointer but only reads it.
  std::string tag_copy(tag);
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kGcmTagSize, tag_copy.data()) != 1) {
    return absl::InternalError(SslError("AES-256-GCM set tag"));
  }
  int tail = 0;
  if (EVP_DecryptFinal_ex(ctx.get(), p + body.size(), &tail) != 1) {
    ERR_clear_error();
    OPENSSL_cleanse(out.data(), out.size());
    return absl::DataLossError(
        "AES-256-GCM tag does not verify: wrong key, wrong associated data, or altered bytes");
  }
  return out;
}

absl::StatusOr<std::string> HkdfSha256(absl::string_view ikm, absl::string_view salt,
                                       absl::string_view info, size_t length) {
  std::unique_ptr<EVP_KDF, KdfFree> kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr));
  if (kdf == nullptr) return absl::InternalError(SslError("EVP_KDF_fetch(HKDF)"));
  std::unique_ptr<EVP_KDF_CTX, KdfCtxFree> ctx(EVP_KDF_CTX_new(kdf.get()));
  if (ctx == nullptr) return absl::InternalError(SslError("EVP_KDF_CTX_new"));
  char digest[] = "SHA256";
  OSSL_PARAM params[5];
  int n = 0;
  params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0);
  params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
                                                  const_cast<char*>(ikm.data()), ikm.size());
  if (!salt.empty()) {
    params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
                                                    const_cast<char*>(salt.data()), salt.size());
  }
  params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
                                                  const_cast<char*>(info.data()), info.size());
  params[n] = OSSL_PARAM_construct_end();
  std::string out(length, '\0');
  if (EVP_KDF_derive(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), out.size(),
                     params) != 1) {
    return absl::InternalError(SslError("HKDF-SHA256"));
  }
  return out;
}

}  // namespace caseledger
