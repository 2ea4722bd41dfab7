#include "ledger/cosignature.h"

#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ledger/checkpoint.h"
#include "ledger/hash.h"
#include "ledger/signer.h"

namespace caseledger {
namespace {

using ::testing::HasSubstr;

// ---------------------------------------------------------------------------
// Golden cosignature (ledger/COSIGNATURE.md "Worked example"). The checkpoint
// is the golden one of ledger/CHECKPOINT.md; the witness key is the RFC 8032
// section 7.1 TEST 2 seed under the name "witness.example.com/w1"; the time is
// the one in the C2SP spec's example. The line was computed independently
// with Python's `cryptography` (see the markdown) and matches this code.

constexpr absl::string_view kLogVkey =
    "example.com/caseledger+c01f25d7+AddamAGCsQq31Uv+08lkBzoO4XLz2qYjJa8CGmj3B1Ea";
constexpr absl::string_view kLogNote =
    "example.com/caseledger\n"
    "1042\n"
    "pMo86ES74Fh8GVLAZBW0p3OrmFm562r1FYRlZcBp/tI=\n"
    "\n"
    "\xE2\x80\x94 example.com/caseledger "
    "wB8l10V1tBA+zmG5EbclDqYuzQ589zw3fLWoULmKxRKMrmeSVz4VmM4v/9NyRLyVROVU3zpoqF/"
    "FwgINqKVglAweEAM=\n";
constexpr absl::string_view kWitnessSeedHex =
    "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb";
constexpr absl::string_view kWitnessName = "witness.example.com/w1";
constexpr uint32_t kWitnessKeyHash = 0xe8498172;
constexpr absl::string_view kWitnessVkey =
    "witness.example.com/w1+e8498172+BD1AF8PoQ4lakrcKp00bfrycmCzPLsSWjMDNVfEq9GYM";
constexpr uint64_t kTime = 1679315147;
constexpr absl::string_view kCosigLine =
    "\xE2\x80\x94 witness.example.com/w1 "
    "6EmBcgAAAABkGFDLkFb5ZBttqmZpoup4dUkV1uYc89zn7LxDbdDLFoo9A92Yg5y5wBD0BU9x0pURqCfUEvxQgmjW7fij"
    "klnTeCAvBQ==\n";

std::string CosignedNote() { return absl::StrCat(kLogNote, kCosigLine); }

Cosigner GoldenCosigner() {
  auto signer = Ed25519Signer::FromSeed(absl::HexStringToBytes(kWitnessSeedHex));
  EXPECT_TRUE(signer.ok()) << signer.status();
  auto c = Cosigner::New(std::string(kWitnessName), *std::move(signer));
  EXPECT_TRUE(c.ok()) << c.status();
  return *std::move(c);
}

CosignatureVerifier GoldenVerifier() {
  auto v = CosignatureVerifier::FromVerifierKey(kWitnessVkey);
  EXPECT_TRUE(v.ok()) << v.status();
  return *std::move(v);
}

TEST(CosignatureGoldenTest, SignedMessage) {
  EXPECT_EQ(CosignatureV1Message("o\n1\nr\n", 1679315147),
            "cosignature/v1\ntime 1679315147\no\n1\nr\n");
  EXPECT_EQ(CosignatureV1Message("o\n1\nr\n", 0), "cosignature/v1\ntime 0\no\n1\nr\n");
}

TEST(CosignatureGoldenTest, KeyHashVerifierKeyAndLine) {
  Cosigner c = GoldenCosigner();
  EXPECT_EQ(c.KeyHash(), kWitnessKeyHash) << std::hex << c.KeyHash();
  EXPECT_EQ(c.VerifierKey(), kWitnessVkey);
  absl::StatusOr<std::string> body = NoteVerifier::FromVerifierKey(kLogVkey)->Open(kLogNote);
  ASSERT_TRUE(body.ok()) << body.status();
  absl::StatusOr<std::string> line = c.SignatureLine(*body, kTime);
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_EQ(*line, kCosigLine);
  absl::StatusOr<std::string> note = c.Cosign(kLogNote, kTime);
  ASSERT_TRUE(note.ok()) << note.status();
  EXPECT_EQ(*note, CosignedNote());
}

TEST(CosignatureGoldenTest, VerifiesAndLogSignatureStillOpens) {
  absl::StatusOr<Cosignature> cs = GoldenVerifier().Verify(CosignedNote());
  ASSERT_TRUE(cs.ok()) << cs.status();
  EXPECT_EQ(cs->timestamp, kTime);
  EXPECT_EQ(absl::StrCat(cs->line, "\n"), kCosigLine);
  // The log's verifier ignores the witness line (another key).
  absl::StatusOr<NoteVerifier> log = NoteVerifier::FromVerifierKey(kLogVkey);
  ASSERT_TRUE(log.ok());
  EXPECT_TRUE(log->Open(CosignedNote()).ok());
}

// The two cosignature lines published with the spec and with
// transparency-dev/formats (their keys are not published): the key hash and
// timestamp sit where we read them.
TEST(CosignatureGoldenTest, PublishedLinesCarryKeyHashThenTimestamp) {
  for (const auto& [b64, key_hash, time] :
       {std::tuple<std::string, std::string, uint64_t>{
            "jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/"
            "zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+"
            "mbIUBkBIfZ+qnA==",
            "8d66cf3f", 1679315147},
        {"ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFi"
         "EBYJXORmnFBOBA==",
         "646846b9", 1727964367}}) {
    std::string raw;
    ASSERT_TRUE(absl::Base64Unescape(b64, &raw));
    ASSERT_EQ(raw.size(), 4 + kCosignatureV1Size);
    EXPECT_EQ(absl::BytesToHexString(raw.substr(0, 4)), key_hash);
    uint64_t t = 0;
    for (int i = 4; i < 12; ++i) t = (t << 8) | static_cast<uint8_t>(raw[i]);
    EXPECT_EQ(t, time);
  }
}

TEST(CosignatureTest, RoundTripWithFreshKeyAndOtherLines) {
  auto key = Ed25519Signer::Generate();
  ASSERT_TRUE(key.ok());
  auto c = Cosigner::New("w2.example", *std::move(key));
  ASSERT_TRUE(c.ok()) << c.status();
  // Cosign a note that already carries the golden witness's line.
  absl::StatusOr<std::string> note = c->Cosign(CosignedNote(), 42);
  ASSERT_TRUE(note.ok()) << note.status();
  auto v2 = CosignatureVerifier::FromVerifierKey(c->VerifierKey());
  ASSERT_TRUE(v2.ok()) << v2.status();
  absl::StatusOr<Cosignature> mine = v2->Verify(*note);
  ASSERT_TRUE(mine.ok()) << mine.status();
  EXPECT_EQ(mine->timestamp, 42u);
  absl::StatusOr<Cosignature> golden = GoldenVerifier().Verify(*note);
  ASSERT_TRUE(golden.ok()) << golden.status();
  EXPECT_EQ(golden->timestamp, kTime);
  // Cosigning again replaces the witness's own line.
  absl::StatusOr<std::string> again = c->Cosign(*note, 43);
  ASSERT_TRUE(again.ok());
  ASSERT_TRUE(ParseSignedNote(*again).ok());
  EXPECT_EQ(ParseSignedNote(*again)->signatures.size(), 3u);
  EXPECT_EQ(v2->Verify(*again)->timestamp, 43u);
}

TEST(CosignatureTest, EveryFlippedByteOfBodyOrLineIsRefused) {
  const std::string note = CosignedNote();
  const size_t body_end = kLogNote.find("\n\n") + 1;
  const size_t line_start = kLogNote.size();
  CosignatureVerifier v = GoldenVerifier();
  for (size_t i = 0; i < note.size(); ++i) {
    if (i >= body_end && i < line_start) continue;  // the log's own line
    std::string bad = note;
    bad[i] ^= 0x01;
    absl::StatusOr<Cosignature> got = v.Verify(bad);
    EXPECT_FALSE(got.ok()) << "flip at byte " << i;
  }
}

TEST(CosignatureTest, TamperedTimestampOrBodyIsDataLoss) {
  Cosigner c = GoldenCosigner();
  CosignatureVerifier v = GoldenVerifier();
  // Re-encode the line with another timestamp but the same signature.
  std::string b64 = std::string(kCosigLine.substr(kCosigLine.rfind(' ') + 1));
  b64.pop_back();
  std::string raw;
  ASSERT_TRUE(absl::Base64Unescape(b64, &raw));
  raw[11] ^= 0x01;  // the last byte of the timestamp
  std::string forged =
      absl::StrCat(kLogNote, "\xE2\x80\x94 witness.example.com/w1 ", absl::Base64Escape(raw), "\n");
  absl::StatusOr<Cosignature> got = v.Verify(forged);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(got.status().message(), HasSubstr("time 1679315146 does not verify"));

  // The cosignature moved onto another checkpoint (size 1043).
  std::string other = absl::StrReplaceAll(CosignedNote(), {{"\n1042\n", "\n1043\n"}});
  got = v.Verify(other);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kDataLoss);

  // A log signature line (0x01 key) is not a cosignature of the same name.
  got = v.Verify(kLogNote);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(got.status().message(),
              HasSubstr("note has no cosignature by witness.example.com/w1+e8498172"));

  // A line with the witness's name and key hash but a 64-byte payload.
  std::string short_raw = raw.substr(0, 4) + raw.substr(12);
  got = v.Verify(absl::StrCat(kLogNote, "\xE2\x80\x94 witness.example.com/w1 ",
                              absl::Base64Escape(short_raw), "\n"));
  EXPECT_EQ(got.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(got.status().message(), HasSubstr("got 64 bytes after the key hash, want 72"));
}

TEST(CosignatureTest, BadInputs) {
  Cosigner c = GoldenCosigner();
  EXPECT_EQ(c.SignatureLine("no newline", 1).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(c.SignatureLine("a\n", kMaxCosignatureTimestamp + 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(c.SignatureLine("a\n", kMaxCosignatureTimestamp).ok());
  EXPECT_EQ(c.Cosign("not a note", 1).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Cosigner::New("bad name", Ed25519Signer::Generate().value()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Cosigner::New("w", nullptr).status().code(), absl::StatusCode::kInvalidArgument);
  // A log (0x01) verifier key is not a cosignature key, and the reverse.
  auto wrong_alg = CosignatureVerifier::FromVerifierKey(kLogVkey);
  EXPECT_EQ(wrong_alg.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(wrong_alg.status().message(),
              HasSubstr("algorithm got 0x01, want 0x04 (Ed25519 cosignature/v1)"));
  EXPECT_EQ(NoteVerifier::FromVerifierKey(kWitnessVkey).status().code(),
            absl::StatusCode::kInvalidArgument);
  // A key hash computed with 0x01 is refused for a 0x04 key.
  EXPECT_FALSE(CosignatureVerifier::FromVerifierKey(
                   "witness.example.com/w1+00000000+BD1AF8PoQ4lakrcKp00bfrycmCzPLsSWjMDNVfEq9GYM")
                   .ok());
  EXPECT_EQ(GoldenVerifier().Verify("garbage").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(CosignatureTest, QuorumOfTrustedWitnesses) {
  auto key2 = Ed25519Signer::FromSeed(std::string(32, '\x07'));
  auto w2 = Cosigner::New("w2.example", *std::move(key2));
  ASSERT_TRUE(w2.ok());
  std::vector<CosignatureVerifier> trusted;
  trusted.push_back(GoldenVerifier());
  trusted.push_back(*CosignatureVerifier::FromVerifierKey(w2->VerifierKey()));

  // Only the golden witness cosigned.
  absl::StatusOr<std::vector<Cosignature>> got =
      VerifyCosignatureQuorum(CosignedNote(), trusted, 1);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ((*got)[0].timestamp, kTime);
  got = VerifyCosignatureQuorum(CosignedNote(), trusted, 2);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(got.status().message(),
              HasSubstr("got 1 of the 2 trusted witnesses, want at least 2 (missing: w2.example+"));
  // Both.
  std::string both = *w2->Cosign(CosignedNote(), 5);
  got = VerifyCosignatureQuorum(both, trusted, 2);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->size(), 2u);
  // A line that does not verify is DATA_LOSS, not merely "missing".
  std::string bad = both;
  bad[bad.size() - 5] = bad[bad.size() - 5] == 'A' ? 'B' : 'A';
  EXPECT_EQ(VerifyCosignatureQuorum(bad, trusted, 1).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(VerifyCosignatureQuorum(both, trusted, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(VerifyCosignatureQuorum(both, trusted, 3).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// ledger/COSIGNATURE.md shows the golden line; keep them in step.
TEST(CosignatureGoldenTest, FormatDocShowsTheGoldenLine) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  ASSERT_NE(srcdir, nullptr);
  ASSERT_NE(workspace, nullptr);
  std::ifstream in(absl::StrCat(srcdir, "/", workspace, "/ledger/COSIGNATURE.md"));
  ASSERT_TRUE(in.good());
  std::stringstream doc;
  doc << in.rdbuf();
  EXPECT_THAT(doc.str(), HasSubstr(CosignedNote()));
  EXPECT_THAT(doc.str(), HasSubstr(absl::StrCat(kWitnessVkey, "\n")));
  EXPECT_THAT(doc.str(), HasSubstr(std::string(kWitnessSeedHex)));
}

}  // namespace
}  // namespace caseledger
