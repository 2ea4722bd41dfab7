#include "ledger/signer.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace caseledger {

void internal::EvpPkeyDeleter::operator()(EVP_PKEY* pkey) const { EVP_PKEY_free(pkey); }

namespace {

struct EvpMdCtxDeleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
using EvpMdCtxPtr = std::unique_ptr<EVP_MD_CTX, EvpMdCtxDeleter>;

struct EvpPkeyCtxDeleter {
  void operator()(EVP_PKEY_CTX* ctx) const { EVP_PKEY_CTX_free(ctx); }
};
using EvpPkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, EvpPkeyCtxDeleter>;

struct BioDeleter {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;

// Closes a file descriptor on scope exit.
class ScopedFd {
 public:
  explicit ScopedFd(int fd) : fd_(fd) {}
  ~ScopedFd() {
    if (fd_ >= 0) close(fd_);
  }
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
  int get() const { return fd_; }
  // Closes now and reports close(2)'s result.
  int Close() {
    int rc = close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

// Overwrites key material before the string's memory is released.
class ScopedCleanse {
 public:
  explicit ScopedCleanse(std::string* s) : s_(s) {}
  ~ScopedCleanse() { OPENSSL_cleanse(&(*s_)[0], s_->size()); }
  ScopedCleanse(const ScopedCleanse&) = delete;
  ScopedCleanse& operator=(const ScopedCleanse&) = delete;

 private:
  std::string* s_;
};

// The first error on OpenSSL's queue, which is then cleared.
std::string OpenSslError() {
  unsigned long code = ERR_get_error();  // NOLINT(runtime/int): OpenSSL's type.
  ERR_clear_error();
  if (code == 0) return "no OpenSSL error reported";
  char buf[256];
  ERR_error_string_n(code, buf, sizeof(buf));
  return buf;
}

absl::Status CryptoError(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", OpenSslError()));
}

std::string ErrnoText(int err) { return std::strerror(err); }

absl::Status IoError(const std::string& path, absl::string_view op, int err) {
  return absl::InternalError(absl::StrCat("key file ", path, ": ", op, ": ", ErrnoText(err)));
}

// Refuses passphrase prompts: key files are never encrypted.
int NoPassword(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*u*/) { return -1; }

constexpr size_t kMaxKeyFileSize = 64 * 1024;

// The directory holding `path`, for creating the temporary file next to it.
std::string DirOf(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

absl::Status WriteAll(int fd, absl::string_view data) {
  while (!data.empty()) {
    ssize_t n = write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::ErrnoToStatus(errno, "write");
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

}  // namespace

Signer::~Signer() = default;

Ed25519Signer::Ed25519Signer(internal::EvpPkeyPtr pkey, std::string public_key)
    : pkey_(std::move(pkey)), public_key_(std::move(public_key)) {}

Ed25519Signer::~Ed25519Signer() = default;

absl::StatusOr<std::unique_ptr<Ed25519Signer>> Ed25519Signer::FromPkey(internal::EvpPkeyPtr pkey) {
  std::string pub(kEd25519PublicKeySize, '\0');
  size_t len = pub.size();
  if (EVP_PKEY_get_raw_public_key(pkey.get(), reinterpret_cast<unsigned char*>(&pub[0]), &len) !=
          1 ||
      len != kEd25519PublicKeySize) {
    return CryptoError("ed25519: reading the public key");
  }
  return std::unique_ptr<Ed25519Signer>(new Ed25519Signer(std::move(pkey), std::move(pub)));
}

absl::StatusOr<std::unique_ptr<Ed25519Signer>> Ed25519Signer::Generate() {
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr));
  if (ctx == nullptr || EVP_PKEY_keygen_init(ctx.get()) != 1) {
    return CryptoError("ed25519: keygen init");
  }
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_keygen(ctx.get(), &raw) != 1) return CryptoError("ed25519: keygen");
  return FromPkey(internal::EvpPkeyPtr(raw));
}

absl::StatusOr<std::unique_ptr<Ed25519Signer>> Ed25519Signer::FromSeed(absl::string_view seed) {
  if (seed.size() != kEd25519SeedSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("ed25519 seed: got ", seed.size(), " bytes, want ", kEd25519SeedSize));
  }
  internal::EvpPkeyPtr pkey(EVP_PKEY_new_raw_private_key(
      EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(seed.data()), seed.size()));
  if (pkey == nullptr) return CryptoError("ed25519: importing the seed");
  return FromPkey(std::move(pkey));
}

namespace {

absl::StatusOr<std::unique_ptr<Ed25519Signer>> LoadKeyFile(const std::string& path, int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) return IoError(path, "fstat", errno);
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat("key file ", path, ": got a file of type ",
                                                      absl::StrFormat("0%o", st.st_mode & S_IFMT),
                                                      ", want a regular file"));
  }
  if ((st.st_mode & 077) != 0) {
    return absl::FailedPreconditionError(
        absl::StrFormat("key file %s: mode got %04o, want 0600 (no access for group or others)",
                        path, st.st_mode & 07777));
  }
  if (static_cast<uint64_t>(st.st_size) > kMaxKeyFileSize) {
    return absl::InvalidArgumentError(absl::StrCat("key file ", path, ": got ", st.st_size,
                                                   " bytes, want at most ", kMaxKeyFileSize));
  }
  std::string pem(static_cast<size_t>(st.st_size), '\0');
  ScopedCleanse cleanse(&pem);
  size_t have = 0;
  while (have < pem.size()) {
    ssize_t n = read(fd, &pem[have], pem.size() - have);
    if (n < 0) {
      if (errno == EINTR) continue;
      return IoError(path, "read", errno);
    }
    if (n == 0) break;
    have += static_cast<size_t>(n);
  }
  pem.resize(have);

  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (bio == nullptr) return CryptoError("key file: BIO_new_mem_buf");
  internal::EvpPkeyPtr pkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassword, nullptr));
  if (pkey == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("key file ", path, ": got no unencrypted PEM \"PRIVATE KEY\" block (",
                     OpenSslError(), "), want a PKCS#8 Ed25519 private key"));
  }
  if (EVP_PKEY_get_id(pkey.get()) != EVP_PKEY_ED25519) {
    const char* got = OBJ_nid2sn(EVP_PKEY_get_id(pkey.get()));
    return absl::InvalidArgumentError(absl::StrCat(
        "key file ", path, ": got key type ", got != nullptr ? got : "unknown", ", want ED25519"));
  }
  size_t seed_len = 0;
  if (EVP_PKEY_get_raw_private_key(pkey.get(), nullptr, &seed_len) != 1 ||
      seed_len != kEd25519SeedSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("key file ", path, ": holds no Ed25519 private key (", OpenSslError(), ")"));
  }
  // Re-import through FromSeed so a loaded key is built exactly like a seeded one.
  std::string seed(kEd25519SeedSize, '\0');
  ScopedCleanse cleanse_seed(&seed);
  if (EVP_PKEY_get_raw_private_key(pkey.get(), reinterpret_cast<unsigned char*>(&seed[0]),
                                   &seed_len) != 1) {
    return CryptoError("key file: reading the private key");
  }
  return Ed25519Signer::FromSeed(seed);
}

// Serializes the private key of `pkey` as unencrypted PEM PKCS#8.
absl::StatusOr<std::string> ToPkcs8Pem(EVP_PKEY* pkey) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr) return CryptoError("key file: BIO_new");
  if (PEM_write_bio_PrivateKey(bio.get(), pkey, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return CryptoError("key file: PEM_write_bio_PrivateKey");
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);  // NOLINT(runtime/int): OpenSSL's type.
  std::string pem(data, static_cast<size_t>(len));
  OPENSSL_cleanse(data, static_cast<size_t>(len));
  return pem;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Ed25519Signer>> Ed25519Signer::LoadOrCreate(
    const std::string& path) {
  {
    ScopedFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() >= 0) return LoadKeyFile(path, fd.get());
    if (errno != ENOENT) return IoError(path, "open", errno);
  }

  absl::StatusOr<std::unique_ptr<Ed25519Signer>> signer = Generate();
  if (!signer.ok()) return signer.status();
  absl::StatusOr<std::string> pem = ToPkcs8Pem((*signer)->pkey_.get());
  if (!pem.ok()) return pem.status();
  ScopedCleanse cleanse(&*pem);

  std::string tmp = path + ".tmp.XXXXXX";
  ScopedFd fd(mkstemp(&tmp[0]));  // Creates the file with mode 0600.
  if (fd.get() < 0) return IoError(path, "mkstemp", errno);
  absl::Status status = WriteAll(fd.get(), *pem);
  if (status.ok() && fchmod(fd.get(), 0600) != 0) status = absl::ErrnoToStatus(errno, "fchmod");
  if (status.ok() && fsync(fd.get()) != 0) status = absl::ErrnoToStatus(errno, "fsync");
  if (status.ok() && fd.Close() != 0) status = absl::ErrnoToStatus(errno, "close");
  // link(2), unlike rename(2), fails instead of replacing a file that another
  // process created since our open() above.
  int link_errno = 0;
  if (status.ok() && link(tmp.c_str(), path.c_str()) != 0) link_errno = errno;
  unlink(tmp.c_str());
  if (!status.ok()) {
    return absl::InternalError(
        absl::StrCat("key file ", path, ": writing ", tmp, ": ", status.message()));
  }
  if (link_errno == EEXIST) {
    ScopedFd existing(open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (existing.get() < 0) return IoError(path, "open", errno);
    return LoadKeyFile(path, existing.get());
  }
  if (link_errno != 0) return IoError(path, "link", link_errno);

  std::string dir = DirOf(path);
  ScopedFd dir_fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir_fd.get() < 0) return IoError(path, absl::StrCat("open directory ", dir), errno);
  if (fsync(dir_fd.get()) != 0) return IoError(path, absl::StrCat("fsync directory ", dir), errno);
  return signer;
}

absl::StatusOr<std::string> Ed25519Signer::Sign(absl::string_view data) const {
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  if (ctx == nullptr ||
      EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, pkey_.get()) != 1) {
    return CryptoError("ed25519: sign init");
  }
  std::string sig(kEd25519SignatureSize, '\0');
  size_t len = sig.size();
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(&sig[0]), &len,
                     reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1 ||
      len != kEd25519SignatureSize) {
    return CryptoError("ed25519: sign");
  }
  return sig;
}

std::string Ed25519Signer::PublicKey() const { return public_key_; }

Ed25519Verifier::Ed25519Verifier(internal::EvpPkeyPtr pkey, std::string public_key)
    : pkey_(std::move(pkey)), public_key_(std::move(public_key)) {}

Ed25519Verifier::~Ed25519Verifier() = default;

absl::StatusOr<std::unique_ptr<Ed25519Verifier>> Ed25519Verifier::New(
    absl::string_view public_key) {
  if (public_key.size() != kEd25519PublicKeySize) {
    return absl::InvalidArgumentError(absl::StrCat("ed25519 public key: got ", public_key.size(),
                                                   " bytes, want ", kEd25519PublicKeySize));
  }
  internal::EvpPkeyPtr pkey(EVP_PKEY_new_raw_public_key(
      EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(public_key.data()),
      public_key.size()));
  if (pkey == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("ed25519 public key: rejected by OpenSSL: ", OpenSslError()));
  }
  return std::unique_ptr<Ed25519Verifier>(
      new Ed25519Verifier(std::move(pkey), std::string(public_key)));
}

absl::Status Ed25519Verifier::Verify(absl::string_view data, absl::string_view signature) const {
  if (signature.size() != kEd25519SignatureSize) {
    return absl::InvalidArgumentError(absl::StrCat("ed25519 signature: got ", signature.size(),
                                                   " bytes, want ", kEd25519SignatureSize));
  }
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  if (ctx == nullptr ||
      EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, pkey_.get()) != 1) {
    return CryptoError("ed25519: verify init");
  }
  int rc = EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                            signature.size(), reinterpret_cast<const unsigned char*>(data.data()),
                            data.size());
  if (rc != 1) {
    ERR_clear_error();
    return absl::DataLossError("ed25519 signature does not verify");
  }
  return absl::OkStatus();
}

}  // namespace caseledger
