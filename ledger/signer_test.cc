#include "ledger/signer.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace caseledger {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string Hex(absl::string_view hex) { return absl::HexStringToBytes(hex); }

// RFC 8032 section 7.1, TEST 1 and TEST 2.
constexpr absl::string_view kRfcSeed1 =
    "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
constexpr absl::string_view kRfcPub1 =
    "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
constexpr absl::string_view kRfcSig1 =
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b4"
    "6bd25bf5f0595bbe24655141438e7a100b";
constexpr absl::string_view kRfcSeed2 =
    "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb";
constexpr absl::string_view kRfcPub2 =
    "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c";
constexpr absl::string_view kRfcSig2 =
    "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d"
    "8c387b2eaeb4302aeeb00d291612bb0c00";

// The RFC 8032 TEST 1 key as a PEM PKCS#8 file, produced by
// `openssl pkey -inform DER` from 302e020100300506032b657004220420 || seed.
constexpr absl::string_view kRfcKeyPem1 =
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n"
    "-----END PRIVATE KEY-----\n";

TEST(Ed25519SignerTest, Rfc8032Vectors) {
  auto s1 = Ed25519Signer::FromSeed(Hex(kRfcSeed1));
  ASSERT_TRUE(s1.ok()) << s1.status();
  EXPECT_EQ(absl::BytesToHexString((*s1)->PublicKey()), kRfcPub1);
  auto sig1 = (*s1)->Sign("");
  ASSERT_TRUE(sig1.ok()) << sig1.status();
  EXPECT_EQ(absl::BytesToHexString(*sig1), kRfcSig1);

  auto s2 = Ed25519Signer::FromSeed(Hex(kRfcSeed2));
  ASSERT_TRUE(s2.ok()) << s2.status();
  EXPECT_EQ(absl::BytesToHexString((*s2)->PublicKey()), kRfcPub2);
  auto sig2 = (*s2)->Sign(Hex("72"));
  ASSERT_TRUE(sig2.ok()) << sig2.status();
  EXPECT_EQ(absl::BytesToHexString(*sig2), kRfcSig2);

  auto v1 = Ed25519Verifier::New(Hex(kRfcPub1));
  ASSERT_TRUE(v1.ok()) << v1.status();
  EXPECT_TRUE((*v1)->Verify("", Hex(kRfcSig1)).ok());
  auto v2 = Ed25519Verifier::New(Hex(kRfcPub2));
  ASSERT_TRUE(v2.ok()) << v2.status();
  EXPECT_TRUE((*v2)->Verify(Hex("72"), Hex(kRfcSig2)).ok());
}

TEST(Ed25519SignerTest, FromSeedRejectsWrongSize) {
  auto s = Ed25519Signer::FromSeed(std::string(31, 'x'));
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.status().message(), "ed25519 seed: got 31 bytes, want 32");
}

TEST(Ed25519SignerTest, GenerateGivesDistinctWorkingKeys) {
  auto a = Ed25519Signer::Generate();
  auto b = Ed25519Signer::Generate();
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ((*a)->PublicKey().size(), 32u);
  EXPECT_NE((*a)->PublicKey(), (*b)->PublicKey());
  auto sig = (*a)->Sign("hello");
  ASSERT_TRUE(sig.ok()) << sig.status();
  auto va = Ed25519Verifier::New((*a)->PublicKey());
  auto vb = Ed25519Verifier::New((*b)->PublicKey());
  ASSERT_TRUE(va.ok() && vb.ok());
  EXPECT_TRUE((*va)->Verify("hello", *sig).ok());
  absl::Status wrong_key = (*vb)->Verify("hello", *sig);
  EXPECT_EQ(wrong_key.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(wrong_key.message(), "ed25519 signature does not verify");
}

TEST(Ed25519VerifierTest, Mutations) {
  auto v = Ed25519Verifier::New(Hex(kRfcPub2));
  ASSERT_TRUE(v.ok()) << v.status();
  std::string sig = Hex(kRfcSig2);

  absl::Status flipped_data = (*v)->Verify(Hex("73"), sig);
  EXPECT_EQ(flipped_data.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(flipped_data.message(), "ed25519 signature does not verify");

  for (size_t i : {size_t{0}, size_t{31}, size_t{32}, size_t{63}}) {
    std::string bad = sig;
    bad[i] ^= 0x01;
    absl::Status s = (*v)->Verify(Hex("72"), bad);
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << "byte " << i;
  }

  absl::Status short_sig = (*v)->Verify(Hex("72"), sig.substr(0, 63));
  EXPECT_EQ(short_sig.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(short_sig.message(), "ed25519 signature: got 63 bytes, want 64");

  auto bad_key = Ed25519Verifier::New(Hex(kRfcPub2).substr(1));
  EXPECT_EQ(bad_key.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad_key.status().message(), "ed25519 public key: got 31 bytes, want 32");
}

// A fresh directory under TEST_TMPDIR for one test.
std::string TestDir(absl::string_view name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string dir = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/", name);
  mkdir(dir.c_str(), 0700);
  return dir;
}

std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return names;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  closedir(d);
  return names;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, absl::string_view data, mode_t mode) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
  out.close();
  ASSERT_EQ(chmod(path.c_str(), mode), 0);
}

TEST(Ed25519SignerTest, LoadOrCreateCreatesThenLoads) {
  std::string dir = TestDir("create_then_load");
  std::string path = dir + "/log.key";
  auto created = Ed25519Signer::LoadOrCreate(path);
  ASSERT_TRUE(created.ok()) << created.status();

  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_THAT(ReadFile(path), StartsWith("-----BEGIN PRIVATE KEY-----\n"));
  EXPECT_THAT(ListDir(dir), ElementsAre("log.key"));  // No temporary file left.

  auto loaded = Ed25519Signer::LoadOrCreate(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ((*loaded)->PublicKey(), (*created)->PublicKey());
  auto sig = (*loaded)->Sign("x");
  auto want = (*created)->Sign("x");
  ASSERT_TRUE(sig.ok() && want.ok());
  EXPECT_EQ(*sig, *want);
}

TEST(Ed25519SignerTest, LoadOrCreateReadsOpensslKeyFile) {
  std::string path = TestDir("openssl_key") + "/rfc.key";
  WriteFile(path, kRfcKeyPem1, 0600);
  auto s = Ed25519Signer::LoadOrCreate(path);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(absl::BytesToHexString((*s)->PublicKey()), kRfcPub1);
  EXPECT_EQ(ReadFile(path), kRfcKeyPem1);  // Loading never rewrites the file.
}

TEST(Ed25519SignerTest, LoadOrCreateRefusesGroupOrOtherAccess) {
  std::string path = TestDir("mode") + "/log.key";
  WriteFile(path, kRfcKeyPem1, 0644);
  auto s = Ed25519Signer::LoadOrCreate(path);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.status().message(),
            absl::StrCat("key file ", path,
                         ": mode got 0644, want 0600 (no access for group or others)"));

  ASSERT_EQ(chmod(path.c_str(), 0640), 0);
  s = Ed25519Signer::LoadOrCreate(path);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("mode got 0640, want 0600"));

  ASSERT_EQ(chmod(path.c_str(), 0400), 0);  // Owner read-only is fine.
  s = Ed25519Signer::LoadOrCreate(path);
  EXPECT_TRUE(s.ok()) << s.status();
}

TEST(Ed25519SignerTest, LoadOrCreateRejectsBadFiles) {
  std::string dir = TestDir("bad_files");
  std::string garbage = dir + "/garbage.key";
  WriteFile(garbage, "not a key\n", 0600);
  auto s = Ed25519Signer::LoadOrCreate(garbage);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.status().message()),
              StartsWith(absl::StrCat("key file ", garbage,
                                      ": got no unencrypted PEM \"PRIVATE KEY\" block")));
  EXPECT_EQ(ReadFile(garbage), "not a key\n");  // Not replaced.

  std::string subdir = dir + "/adir";
  ASSERT_EQ(mkdir(subdir.c_str(), 0700), 0);
  s = Ed25519Signer::LoadOrCreate(subdir);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("want a regular file"));

  s = Ed25519Signer::LoadOrCreate(dir + "/missing/dir/log.key");
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("mkstemp"));
}

}  // namespace
}  // namespace caseledger
