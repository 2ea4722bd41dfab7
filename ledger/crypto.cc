#include "ledger/crypto.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <pthread.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace caseledger {
namespace {

struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;
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

// Fetched once: with OpenSSL 3, passing the legacy EVP_aes_256_gcm() to an
// init call does an implicit provider fetch on every call. Shared across
// threads (read-only) and kept until exit on purpose.
const EVP_CIPHER* AesGcm() {
  static EVP_CIPHER* const cipher = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  return cipher;
}

// Random nonces come from a per-thread pool refilled 4 KiB at a time:
// RAND_bytes costs a getpid() system call (its fork check) per call, which
// was most of a seal's time. The pool is discarded in a forked child, so a
// parent and child never draw the same bytes.
std::atomic<uint64_t> g_fork_generation{0};

struct NoncePool {
  uint8_t bytes[4096];
  size_t used = sizeof(bytes);
  uint64_t generation = 0;
  ~NoncePool() { OPENSSL_cleanse(bytes, sizeof(bytes)); }
};

absl::Status RandomNonce(GcmNonce* nonce) {
  static std::once_flag once;
  std::call_once(once, [] {
    pthread_atfork(nullptr, nullptr,
                   [] { g_fork_generation.fetch_add(1, std::memory_order_relaxed); });
  });
  thread_local NoncePool pool;
  uint64_t generation = g_fork_generation.load(std::memory_order_relaxed);
  if (pool.used + nonce->size() > sizeof(pool.bytes) || pool.generation != generation) {
    if (RAND_bytes(pool.bytes, sizeof(pool.bytes)) != 1) {
      return absl::InternalError(SslError("RAND_bytes for GCM nonces"));
    }
    pool.used = 0;
    pool.generation = generation;
  }
  std::memcpy(nonce->data(), pool.bytes + pool.used, nonce->size());
  // Each pooled byte is used once and then wiped.
  OPENSSL_cleanse(pool.bytes + pool.used, nonce->size());
  pool.used += nonce->size();
  return absl::OkStatus();
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
    return absl::InvalidArgumentError(absl::StrCat("key: got ", hex.size(), " characters, want ",
                                                   2 * kAeadKeySize, " hex digits"));
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
  if (AesGcm() == nullptr ||
      EVP_EncryptInit_ex2(ctx.get(), AesGcm(), key.data(), nonce.data(), nullptr) != 1) {
    return absl::InternalError(SslError("AES-256-GCM encrypt init"));
  }
  int len = 0;
  if (!aad.empty() &&
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, U(aad), static_cast<int>(aad.size())) != 1) {
    return absl::InternalError(SslError("AES-256-GCM aad"));
  }
  std::string out(plaintext.size() + kGcmTagSize, '\0');
  unsigned char* p = reinterpret_cast<unsigned char*>(out.data());
  if (!plaintext.empty() && EVP_EncryptUpdate(ctx.get(), p, &len, U(plaintext),
                                              static_cast<int>(plaintext.size())) != 1) {
    return absl::InternalError(SslError("AES-256-GCM encrypt"));
  }
  int tail = 0;
  if (EVP_EncryptFinal_ex(ctx.get(), p + plaintext.size(), &tail) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kGcmTagSize, p + plaintext.size()) !=
          1) {
    return absl::InternalError(SslError("AES-256-GCM tag"));
  }
  return out;
}

absl::StatusOr<std::string> Seal(const AeadKey& key, absl::string_view plaintext,
                                 absl::string_view aad) {
  GcmNonce nonce;
  absl::Status random = RandomNonce(&nonce);
  if (!random.ok()) return random;
  absl::StatusOr<std::string> body = SealWithNonce(key, nonce, plaintext, aad);
  if (!body.ok()) return body.status();
  std::string out(reinterpret_cast<const char*>(nonce.data()), nonce.size());
  out += *body;
  return out;
}

absl::StatusOr<std::string> Open(const AeadKey& key, absl::string_view sealed,
                                 absl::string_view aad) {
  if (sealed.size() < kSealOverhead) {
    return absl::DataLossError(absl::StrCat("sealed bytes: got ", sealed.size(), ", want at least ",
                                            kSealOverhead, " (nonce and tag)"));
  }
  absl::string_view nonce = sealed.substr(0, kGcmNonceSize);
  absl::string_view body = sealed.substr(kGcmNonceSize, sealed.size() - kSealOverhead);
  absl::string_view tag = sealed.substr(sealed.size() - kGcmTagSize);
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  if (ctx == nullptr) return absl::InternalError(SslError("EVP_CIPHER_CTX_new"));
  if (AesGcm() == nullptr ||
      EVP_DecryptInit_ex2(ctx.get(), AesGcm(), key.data(), U(nonce), nullptr) != 1) {
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
  // Fetched once: a fetch is a provider lookup, slower than the derivation.
  // EVP_KDF objects are reference-counted and safe to share across threads;
  // this one lives until exit on purpose.
  static EVP_KDF* const kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  if (kdf == nullptr) return absl::InternalError(SslError("EVP_KDF_fetch(HKDF)"));
  std::unique_ptr<EVP_KDF_CTX, KdfCtxFree> ctx(EVP_KDF_CTX_new(kdf));
  if (ctx == nullptr) return absl::InternalError(SslError("EVP_KDF_CTX_new"));
  char digest[] = "SHA256";
  OSSL_PARAM params[5];
  int n = 0;
  params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0);
  params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<char*>(ikm.data()),
                                                  ikm.size());
  if (!salt.empty()) {
    params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
                                                    const_cast<char*>(salt.data()), salt.size());
  }
  params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
                                                  const_cast<char*>(info.data()), info.size());
  params[n] = OSSL_PARAM_construct_end();
  std::string out(length, '\0');
  if (EVP_KDF_derive(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), out.size(), params) !=
      1) {
    return absl::InternalError(SslError("HKDF-SHA256"));
  }
  return out;
}

}  // namespace caseledger
