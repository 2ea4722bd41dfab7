#include "ledger/checkpoint.h"

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ledger/hash.h"
#include "ledger/signer.h"

namespace caseledger {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// ---------------------------------------------------------------------------
// Published vectors from golang.org/x/mod/sumdb/note (package doc and
// note_test.go). Matching them byte for byte shows that our notes, key hashes
// and verifier keys are the ones Go's sumdb/note and C2SP tools produce.

constexpr absl::string_view kPeterVkey =
    "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
// From the published signer key "PRIVATE+KEY+PeterNeumann+c74f20a3+<this>":
// base64(0x01 || 32-byte Ed25519 seed).
constexpr absl::string_view kPeterSkeyData = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
constexpr absl::string_view kPeterText =
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n";
constexpr absl::string_view kPeterSig =
    "\xE2\x80\x94 PeterNeumann "
    "x08go/ZJkuBS9UG/"
    "SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
constexpr absl::string_view kEnochVkey =
    "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
constexpr absl::string_view kEnochSig =
    "\xE2\x80\x94 EnochRoot "
    "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/"
    "5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

std::string PeterNote() { return absl::StrCat(kPeterText, "\n", kPeterSig); }

NoteVerifier MustVerifier(absl::string_view vkey) {
  absl::StatusOr<NoteVerifier> v = NoteVerifier::FromVerifierKey(vkey);
  EXPECT_TRUE(v.ok()) << v.status();
  return *std::move(v);
}

NoteSigner MustSigner(absl::string_view name, absl::string_view seed) {
  auto s = Ed25519Signer::FromSeed(seed);
  EXPECT_TRUE(s.ok()) << s.status();
  absl::StatusOr<NoteSigner> ns = NoteSigner::New(std::string(name), *std::move(s));
  EXPECT_TRUE(ns.ok()) << ns.status();
  return *std::move(ns);
}

std::string PeterSeed() {
  std::string raw;
  EXPECT_TRUE(absl::Base64Unescape(kPeterSkeyData, &raw));
  EXPECT_EQ(raw.size(), 33u);
  EXPECT_EQ(raw[0], '\x01');
  return raw.substr(1);
}

TEST(GoSumdbNoteTest, VerifierAcceptsPublishedNote) {
  NoteVerifier v = MustVerifier(kPeterVkey);
  EXPECT_EQ(v.name(), "PeterNeumann");
  EXPECT_EQ(v.KeyHash(), 0xc74f20a3u);
  EXPECT_EQ(v.VerifierKey(), kPeterVkey);
  absl::StatusOr<std::string> text = v.Open(PeterNote());
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, kPeterText);
}

TEST(GoSumdbNoteTest, VerifierRejectsEveryOneByteFlip) {
  NoteVerifier v = MustVerifier(kPeterVkey);
  const std::string note = PeterNote();
  for (size_t i = 0; i < note.size(); ++i) {
    std::string bad = note;
    bad[i] ^= 0x01;
    EXPECT_FALSE(v.Open(bad).ok()) << "flipped byte " << i;
  }
  // The flip that matters most, in the signed text, with its exact error.
  std::string bad = note;
  bad[3] ^= 0x01;
  absl::Status s = v.Open(bad).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(s.message(),
            "note: signature line 1 by PeterNeumann+c74f20a3 does not verify: ed25519 "
            "signature does not verify");
}

TEST(GoSumdbNoteTest, SignerReproducesPublishedNote) {
  NoteSigner s = MustSigner("PeterNeumann", PeterSeed());
  EXPECT_EQ(s.KeyHash(), 0xc74f20a3u);
  EXPECT_EQ(s.VerifierKey(), kPeterVkey);
  absl::StatusOr<std::string> note = s.Sign(kPeterText);
  ASSERT_TRUE(note.ok()) << note.status();
  EXPECT_EQ(*note, PeterNote());
}

TEST(GoSumdbNoteTest, DoublySignedNoteOpensWithEitherKey) {
  const std::string note = absl::StrCat(kPeterText, "\n", kPeterSig, kEnochSig);
  for (absl::string_view vkey : {kPeterVkey, kEnochVkey}) {
    absl::StatusOr<std::string> text = MustVerifier(vkey).Open(note);
    ASSERT_TRUE(text.ok()) << vkey << ": " << text.status();
    EXPECT_EQ(*text, kPeterText);
  }
  // Go's test: a corrupted line of a key we do not know is ignored.
  std::string enoch_abcd(kEnochSig);
  enoch_abcd.insert(60, "ABCD");
  absl::StatusOr<std::string> text =
      MustVerifier(kPeterVkey).Open(absl::StrCat(kPeterText, "\n", kPeterSig, enoch_abcd));
  EXPECT_TRUE(text.ok()) << text.status();
  // ... but not a corrupted line of the key we verify with.
  absl::Status s =
      MustVerifier(kEnochVkey).Open(absl::StrCat(kPeterText, "\n", kPeterSig, enoch_abcd)).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(s.message()),
              StartsWith("note: signature line 2 by EnochRoot+af0cfe78 does not "
                         "verify: ed25519 signature: got 67 bytes, want 64"));
}

TEST(GoSumdbNoteTest, CosignAppendsAndReplacesOwnLine) {
  NoteSigner peter = MustSigner("PeterNeumann", PeterSeed());
  const std::string want = absl::StrCat(kPeterText, "\n", kEnochSig, kPeterSig);
  absl::StatusOr<std::string> cosigned = peter.Cosign(absl::StrCat(kPeterText, "\n", kEnochSig));
  ASSERT_TRUE(cosigned.ok()) << cosigned.status();
  EXPECT_EQ(*cosigned, want);
  // A line already there under this key (even a bogus one) is replaced.
  std::string bogus =
      absl::StrCat("\xE2\x80\x94 PeterNeumann ",
                   absl::Base64Escape(absl::HexStringToBytes("c74f20a3ffff")), "\n");
  cosigned = peter.Cosign(absl::StrCat(kPeterText, "\n", bogus, kEnochSig));
  ASSERT_TRUE(cosigned.ok()) << cosigned.status();
  EXPECT_EQ(*cosigned, want);
  EXPECT_TRUE(MustVerifier(kEnochVkey).Open(*cosigned).ok());
  EXPECT_TRUE(MustVerifier(kPeterVkey).Open(*cosigned).ok());

  absl::Status s = peter.Cosign(kPeterText).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "note: got no blank line, want text, a blank line, then signature lines");
}

TEST(GoSumdbNoteTest, VerifierKeyErrors) {
  struct Case {
    std::string vkey;
    std::string message;
  };
  const std::string peter_key64 = "ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
  const Case cases[] = {
      // From Go's note_test.go: unknown algorithm, with adjusted key hash.
      {"PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
       "verifier key: algorithm got 0x65, want 0x01 (Ed25519)"},
      // From Go's note_test.go: wrong-length key. Go accepts the non-canonical
      // final base64 quantum "EY=="; we refuse it one step earlier.
      {"PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
       "verifier key: key got \"ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==\", want "
       "standard base64 with padding"},
      {absl::StrCat("PeterNeumann+00000000+",
                    absl::Base64Escape(absl::StrCat("\x01", std::string(31, '\0')))),
       "verifier key: Ed25519 key got 31 bytes, want 32"},
      {absl::StrCat("PeterNeumann+c74f20a4+", peter_key64),
       "verifier key: key hash got c74f20a4, want c74f20a3"},
      {absl::StrCat("PeterNeumann+c74f20a+", peter_key64),
       "verifier key: key hash got \"c74f20a\", want 8 hex digits"},
      {absl::StrCat("Peter Neumann+c74f20a3+", peter_key64),
       "verifier key: name: got \"Peter Neumann\", want a non-empty name without spaces, '+' or "
       "control characters"},
      {"PeterNeumann",
       "verifier key: got \"PeterNeumann\", want <name>+<8 hex digits>+<base64 key>"},
      {"PeterNeumann+c74f20a3+", "verifier key: key got \"\", want standard base64 with padding"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<NoteVerifier> v = NoteVerifier::FromVerifierKey(c.vkey);
    EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument) << c.vkey;
    EXPECT_EQ(v.status().message(), c.message) << c.vkey;
  }
  // Go's manglings: every proper substring and every byte incremented fail.
  const std::string vkey(kPeterVkey);
  for (size_t i = 0; i <= vkey.size(); ++i) {
    for (size_t j = i + 1; j <= vkey.size(); ++j) {
      if (i == 0 && j == vkey.size()) continue;
      EXPECT_FALSE(NoteVerifier::FromVerifierKey(vkey.substr(i, j - i)).ok())
          << vkey.substr(i, j - i);
    }
  }
  for (size_t i = 0; i < vkey.size(); ++i) {
    std::string bad = vkey;
    ++bad[i];
    EXPECT_FALSE(NoteVerifier::FromVerifierKey(bad).ok()) << bad;
  }
}

// ---------------------------------------------------------------------------
// Our own golden checkpoint. Key: the RFC 8032 section 7.1 TEST 1 seed under
// the name "example.com/caseledger". Checkpoint: size 1042, root
// SHA-256("caseledger golden root").
//
// Computed once with this code, then cross-checked independently (see
// ledger/CHECKPOINT.md, "How the example was checked"):
//  * `openssl pkey` on the PKCS#8 DER 302e020100300506032b657004220420||seed
//    gives the public key d75a9801...511a (RFC 8032's);
//  * `printf 'example.com/caseledger\n\x01' | cat - pub.raw | openssl dgst
//    -sha256` gives the key hash (first 4 bytes);
//  * `openssl pkeyutl -sign -rawin -inkey key.pem -in body.txt` gives the 64
//    signature bytes in the signature line below;
//  * Python's `cryptography` Ed25519 built the whole note the same, byte for
//    byte.

constexpr absl::string_view kGoldenSeedHex =
    "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
constexpr absl::string_view kGoldenName = "example.com/caseledger";
constexpr uint32_t kGoldenKeyHash = 0xc01f25d7;
constexpr absl::string_view kGoldenVkey =
    "example.com/caseledger+c01f25d7+AddamAGCsQq31Uv+08lkBzoO4XLz2qYjJa8CGmj3B1Ea";
constexpr absl::string_view kGoldenBody =
    "example.com/caseledger\n"
    "1042\n"
    "pMo86ES74Fh8GVLAZBW0p3OrmFm562r1FYRlZcBp/tI=\n";
constexpr absl::string_view kGoldenSigLine =
    "\xE2\x80\x94 example.com/caseledger "
    "wB8l10V1tBA+zmG5EbclDqYuzQ589zw3fLWoULmKxRKMrmeSVz4VmM4v/9NyRLyVROVU3zpoqF/"
    "FwgINqKVglAweEAM=\n";
constexpr absl::string_view kGoldenNote =
    "example.com/caseledger\n"
    "1042\n"
    "pMo86ES74Fh8GVLAZBW0p3OrmFm562r1FYRlZcBp/tI=\n"
    "\n"
    "\xE2\x80\x94 example.com/caseledger "
    "wB8l10V1tBA+zmG5EbclDqYuzQ589zw3fLWoULmKxRKMrmeSVz4VmM4v/9NyRLyVROVU3zpoqF/"
    "FwgINqKVglAweEAM=\n";

Checkpoint GoldenCheckpoint() {
  Checkpoint c;
  c.origin = "example.com/caseledger";
  c.size = 1042;
  c.root = Sha256Of("caseledger golden root");
  return c;
}

NoteSigner GoldenSigner() {
  return MustSigner(kGoldenName, absl::HexStringToBytes(kGoldenSeedHex));
}

TEST(CheckpointGoldenTest, KeyAndNote) {
  NoteSigner signer = GoldenSigner();
  EXPECT_EQ(signer.KeyHash(), kGoldenKeyHash) << std::hex << signer.KeyHash();
  EXPECT_EQ(signer.VerifierKey(), kGoldenVkey);
  EXPECT_EQ(FormatCheckpointBody(GoldenCheckpoint()), kGoldenBody);
  absl::StatusOr<std::string> note = SignCheckpoint(GoldenCheckpoint(), signer);
  ASSERT_TRUE(note.ok()) << note.status();
  EXPECT_EQ(*note, kGoldenNote);

  NoteVerifier verifier = MustVerifier(kGoldenVkey);
  absl::StatusOr<Checkpoint> c = OpenCheckpoint(kGoldenNote, verifier, kGoldenName);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(*c, GoldenCheckpoint());
}

TEST(CheckpointGoldenTest, NoteIsBodyBlankLineSignatureLine) {
  EXPECT_EQ(kGoldenNote, absl::StrCat(kGoldenBody, "\n", kGoldenSigLine));
  // The signature line carries the key hash, then the 64-byte signature.
  std::string raw;
  ASSERT_TRUE(absl::Base64Unescape(
      absl::string_view(kGoldenSigLine).substr(strlen("\xE2\x80\x94 example.com/caseledger "), 92),
      &raw));
  EXPECT_EQ(raw.size(), 68u);
  EXPECT_EQ(absl::BytesToHexString(raw.substr(0, 4)), "c01f25d7");
}

// Opens `note` as the golden log's checkpoint.
absl::StatusOr<Checkpoint> OpenGolden(absl::string_view note) {
  return OpenCheckpoint(note, MustVerifier(kGoldenVkey), kGoldenName);
}

constexpr absl::string_view kGoldenDoesNotVerify =
    "note: signature line 1 by example.com/caseledger+c01f25d7 does not verify: ed25519 "
    "signature does not verify";

TEST(CheckpointGoldenTest, FlippedByteInBody) {
  std::string note(kGoldenNote);
  note[note.find("1042")] = '2';  // Size 2042.
  absl::Status s = OpenGolden(note).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(s.message(), kGoldenDoesNotVerify);

  note = std::string(kGoldenNote);
  note[kGoldenBody.size() - 3] ^= 0x01;  // In the root hash.
  s = OpenGolden(note).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(s.message(), kGoldenDoesNotVerify);
}

TEST(CheckpointGoldenTest, FlippedByteInSignature) {
  std::string note(kGoldenNote);
  // 'z' of "...Qzzw3..." well after the 4-byte key hash: 'z' -> 'y'.
  size_t at = note.find("zw3fLW");
  ASSERT_NE(at, std::string::npos);
  note[at] = 'y';
  absl::Status s = OpenGolden(note).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(s.message(), kGoldenDoesNotVerify);
}

TEST(CheckpointGoldenTest, WrongKey) {
  // Same name, another key: another key hash, so the line is not ours.
  NoteSigner other = MustSigner(kGoldenName, std::string(32, '\x07'));
  absl::Status s =
      OpenCheckpoint(kGoldenNote, MustVerifier(other.VerifierKey()), kGoldenName).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(s.message(), absl::StrCat("note has no signature by example.com/caseledger+",
                                      absl::StrFormat("%08x", other.KeyHash())));
  // Same key, another name.
  NoteSigner renamed = MustSigner("example.com/other", absl::HexStringToBytes(kGoldenSeedHex));
  s = MustVerifier(renamed.VerifierKey()).Open(kGoldenNote).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(s.message()), StartsWith("note has no signature by example.com/other+"));
}

TEST(CheckpointGoldenTest, TruncatedNote) {
  const std::string note(kGoldenNote);
  struct Case {
    size_t keep;
    std::string message;
  };
  const Case cases[] = {
      {note.size() - 1, "note: last signature line got no final newline, want one"},
      {kGoldenBody.size() + 1,
       "note: got no signature lines after the last blank line, want at least one"},
      {kGoldenBody.size(),
       "note: got no blank line, want text, a blank line, then signature lines"},
      {0, "note: got no blank line, want text, a blank line, then signature lines"},
  };
  for (const Case& c : cases) {
    absl::Status s = OpenGolden(note.substr(0, c.keep)).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.keep;
    EXPECT_EQ(s.message(), c.message) << c.keep;
  }
  // Cut inside the base64: no longer a whole number of quanta.
  absl::Status s = OpenGolden(absl::StrCat(note.substr(0, note.size() - 3), "\n")).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()),
              StartsWith("note: signature line 1: signature got \"wB8l10V1"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("want standard base64 with padding"));
}

TEST(CheckpointGoldenTest, MissingBlankLine) {
  absl::Status s = OpenGolden(absl::StrCat(kGoldenBody, kGoldenSigLine)).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "note: got no blank line, want text, a blank line, then signature lines");
}

TEST(CheckpointGoldenTest, UnknownKeySignatureLinesAreIgnored) {
  NoteSigner witness = MustSigner("witness.example/w1", std::string(32, '\x42'));
  absl::StatusOr<std::string> cosigned = witness.Cosign(kGoldenNote);
  ASSERT_TRUE(cosigned.ok()) << cosigned.status();
  EXPECT_THAT(*cosigned, StartsWith(std::string(kGoldenNote)));
  for (const std::string& note :
       {*cosigned, absl::StrCat(kGoldenBody, "\n", kPeterSig, kGoldenSigLine, kEnochSig)}) {
    absl::StatusOr<Checkpoint> c = OpenGolden(note);
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_EQ(*c, GoldenCheckpoint());
  }
  // The witness's verifier opens the cosigned note too.
  EXPECT_TRUE(MustVerifier(witness.VerifierKey()).Open(*cosigned).ok());
  // An unknown key's line still has to be well-formed.
  absl::Status s =
      OpenGolden(absl::StrCat(kGoldenNote, "\xE2\x80\x94 witness.example/w1 !!!!\n")).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "note: signature line 2: signature got \"!!!!\", want standard base64 with padding");
}

TEST(CheckpointGoldenTest, DuplicateLines) {
  // Identical repeats of our line are fine.
  absl::StatusOr<Checkpoint> c = OpenGolden(absl::StrCat(kGoldenNote, kGoldenSigLine));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(*c, GoldenCheckpoint());
  // A second, different line under our name and key hash must verify too
  // (signed-note: "If the key name and ID match a known key, verifiers MUST
  // verify the signature"). Go's sumdb/note would skip it.
  std::string bad_line(kGoldenSigLine);
  bad_line[bad_line.find("zw3fLW")] = 'y';
  absl::Status s = OpenGolden(absl::StrCat(kGoldenNote, bad_line)).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(s.message(),
            "note: signature line 2 by example.com/caseledger+c01f25d7 does not verify: ed25519 "
            "signature does not verify");
  // The bad line first: the note is rejected though a good line follows.
  s = OpenGolden(absl::StrCat(kGoldenBody, "\n", bad_line, kGoldenSigLine)).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(s.message(), kGoldenDoesNotVerify);
}

TEST(CheckpointGoldenTest, BadBase64) {
  std::string note(kGoldenNote);
  note.replace(note.find("wB8l"), 4, "wB8*");
  absl::Status s = OpenGolden(note).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()),
              StartsWith("note: signature line 1: signature got \"wB8*10V1tBA+"));

  // Dropping the padding: Go's StdEncoding refuses it and so do we.
  note = absl::StrReplaceAll(std::string(kGoldenNote), {{"AM=\n", "AM\n"}});
  s = OpenGolden(note).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("want standard base64 with padding"));
}

TEST(CheckpointGoldenTest, MalformedSignatureLines) {
  struct Case {
    std::string line;
    std::string message;
  };
  const Case cases[] = {
      {"-- example.com/caseledger wB8l\n",
       "note: signature line 1: got \"-- example.com/caseledger wB8l\", want \"\xE2\x80\x94 <key "
       "name> <base64 signature>\""},
      {"\xE2\x80\x94 bad+name AAAAAAAA\n",
       "note: signature line 1: key name: got \"bad+name\", want a non-empty name without "
       "spaces, '+' or control characters"},
      {"\xE2\x80\x94  AAAAAAAA\n",
       "note: signature line 1: key name: got \"\", want a non-empty name without spaces, '+' or "
       "control characters"},
      {"\xE2\x80\x94 example.com/caseledger AAAA\n",
       "note: signature line 1: signature got 3 bytes, want a 4-byte key hash and more"},
      {"\xE2\x80\x94 example.com/caseledger\n",
       "note: signature line 1: signature got \"\", want standard base64 with padding"},
  };
  for (const Case& c : cases) {
    absl::Status s = OpenGolden(absl::StrCat(kGoldenBody, "\n", c.line)).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.line;
    EXPECT_EQ(s.message(), c.message) << c.line;
  }
}

TEST(CheckpointGoldenTest, BadTextAndSize) {
  absl::Status s = OpenGolden(absl::StrCat("\x01", kGoldenNote)).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "note: byte 0: got control character 0x01, want no control characters but newline");
  s = OpenGolden(absl::StrCat("ex\xFF", kGoldenNote)).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "note: byte 2: got invalid UTF-8 (0xff), want UTF-8 text");
  s = OpenGolden(absl::StrCat("\xED\xA0\x80", kGoldenNote)).status();  // A surrogate.
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "note: byte 0: got invalid UTF-8 (0xed), want UTF-8 text");
  s = OpenGolden(absl::StrCat(kGoldenBody, "\r\n", kGoldenSigLine)).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("got control character 0x0d"));

  s = OpenGolden(absl::StrCat(std::string(kMaxNoteSize, 'x'), kGoldenNote)).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), absl::StrCat("note: got ", kMaxNoteSize + kGoldenNote.size(),
                                      " bytes, want at most 1048576"));

  std::string many(kGoldenNote);
  for (int i = 0; i < 100; ++i) absl::StrAppend(&many, kEnochSig);
  s = OpenGolden(many).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "note: got 101 signature lines, want at most 100");
}

// Signs `body` with the golden key, so only the checkpoint layer can object.
std::string SignedByGolden(absl::string_view body) {
  absl::StatusOr<std::string> note = GoldenSigner().Sign(body);
  EXPECT_TRUE(note.ok()) << note.status();
  return *note;
}

TEST(CheckpointGoldenTest, SignedButMalformedCheckpoints) {
  const std::string root64 = "pMo86ES74Fh8GVLAZBW0p3OrmFm562r1FYRlZcBp/tI=";
  struct Case {
    std::string body;
    std::string message;
  };
  const Case cases[] = {
      {absl::StrCat("example.com/caseledger\n01042\n", root64, "\n"),
       "checkpoint line 2 (tree size): got \"01042\", want decimal digits without leading zeros"},
      {absl::StrCat("example.com/caseledger\n00\n", root64, "\n"),
       "checkpoint line 2 (tree size): got \"00\", want decimal digits without leading zeros"},
      {absl::StrCat("example.com/caseledger\n+1042\n", root64, "\n"),
       "checkpoint line 2 (tree size): got \"+1042\", want decimal digits without leading zeros"},
      {absl::StrCat("example.com/caseledger\n\n", root64, "\n"),
       "checkpoint line 2 (tree size): got \"\", want decimal digits without leading zeros"},
      {absl::StrCat("example.com/caseledger\n18446744073709551616\n", root64, "\n"),
       "checkpoint line 2 (tree size): got \"18446744073709551616\", want at most 2^64-1"},
      {absl::StrCat("example.com/caseledger\n1042\n", absl::Base64Escape(std::string(31, '\xAB')),
                    "\n"),
       "checkpoint line 3 (root hash): got 31 bytes, want 32"},
      {absl::StrCat("example.com/caseledger\n1042\n", absl::Base64Escape(std::string(33, '\xAB')),
                    "\n"),
       "checkpoint line 3 (root hash): got 33 bytes, want 32"},
      // Non-canonical: the last character carries a stray low bit.
      {"example.com/caseledger\n1042\npMo86ES74Fh8GVLAZBW0p3OrmFm562r1FYRlZcBp/tJ=\n",
       "checkpoint line 3 (root hash): got \"pMo86ES74Fh8GVLAZBW0p3OrmFm562r1FYRlZcBp/tJ=\", want "
       "standard base64 of 32 bytes"},
      {"example.com/caseledger\n1042\npMo86ES74Fh8GVLAZBW0p3OrmFm562r1FYRlZcBp_tI=\n",
       "checkpoint line 3 (root hash): got \"pMo86ES74Fh8GVLAZBW0p3OrmFm562r1FYRlZcBp_tI=\", want "
       "standard base64 of 32 bytes"},
      {"example.com/caseledger\n1042\n",
       "checkpoint: got 2 lines, want at least 3 (origin, tree size, root hash)"},
      {absl::StrCat("\n1042\n", root64, "\n"),
       "checkpoint line 1 (origin): got an empty line, want a non-empty origin"},
      {absl::StrCat("example.com/caseledger\n1042\n", root64, "\next\n\n"),
       "checkpoint line 5 (extension): got an empty line, want non-empty"},
  };
  for (const Case& c : cases) {
    absl::Status s = OpenGolden(SignedByGolden(c.body)).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.body;
    EXPECT_EQ(s.message(), c.message) << c.body;
    absl::Status direct = ParseCheckpointBody(c.body).status();
    EXPECT_EQ(direct.code(), absl::StatusCode::kInvalidArgument) << c.body;
    EXPECT_EQ(direct.message(), c.message) << c.body;
  }
  absl::Status s =
      ParseCheckpointBody(absl::StrCat("example.com/caseledger\n1042\n", root64)).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "checkpoint: got no final newline, want every line to end in \"\\n\"");
}

TEST(CheckpointGoldenTest, WrongOrigin) {
  absl::Status s =
      OpenCheckpoint(kGoldenNote, MustVerifier(kGoldenVkey), "example.com/other").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.message(),
            "checkpoint origin: got \"example.com/caseledger\", want \"example.com/other\"");
}

TEST(CheckpointBodyTest, RoundTrips) {
  Checkpoint empty;
  empty.origin = "log";
  empty.size = 0;
  empty.root = EmptyRoot();
  Checkpoint max = GoldenCheckpoint();
  max.size = UINT64_MAX;
  max.extensions = {"ext one", "\xE2\x80\x94 not a signature"};
  for (const Checkpoint& c : {empty, max, GoldenCheckpoint()}) {
    std::string body = FormatCheckpointBody(c);
    absl::StatusOr<Checkpoint> back = ParseCheckpointBody(body);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, c);
    NoteSigner signer = GoldenSigner();
    absl::StatusOr<std::string> note = SignCheckpoint(c, signer);
    ASSERT_TRUE(note.ok()) << note.status();
    absl::StatusOr<Checkpoint> opened =
        OpenCheckpoint(*note, MustVerifier(signer.VerifierKey()), c.origin);
    ASSERT_TRUE(opened.ok()) << opened.status();
    EXPECT_EQ(*opened, c);
  }
  EXPECT_EQ(FormatCheckpointBody(empty), "log\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n");
  EXPECT_THAT(FormatCheckpointBody(max),
              StartsWith("example.com/caseledger\n18446744073709551615\n"));
}

// The unverified reading of a note: the body of the signed text, for a
// note signed by any key, and the note parser's errors for what is no note.
TEST(ParseCheckpointNoteTest, ReadsTheBodyWithoutVerifying) {
  absl::StatusOr<std::string> note = SignCheckpoint(GoldenCheckpoint(), GoldenSigner());
  ASSERT_TRUE(note.ok()) << note.status();
  absl::StatusOr<Checkpoint> c = ParseCheckpointNote(*note);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(*c, GoldenCheckpoint());
  // A cosigned note has more signature lines; the body is the same.
  absl::StatusOr<Checkpoint> cosigned =
      ParseCheckpointNote(absl::StrCat(*note, "\xE2\x80\x94 witness AAAAAAAA\n"));
  ASSERT_TRUE(cosigned.ok()) << cosigned.status();
  EXPECT_EQ(*cosigned, GoldenCheckpoint());

  absl::StatusOr<Checkpoint> bad = ParseCheckpointNote("example.test/log\n1234\n");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(),
            "note: got no blank line, want text, a blank line, then signature lines");
  std::string body_only = FormatCheckpointBody(GoldenCheckpoint());
  bad = ParseCheckpointNote(
      absl::StrCat("example.test/log\n01\n",
                   body_only.substr(body_only.find('\n', body_only.find('\n') + 1) + 1),
                   "\n\xE2\x80\x94 sig AAAAAAAA\n"));
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument) << bad.status();
  EXPECT_THAT(std::string(bad.status().message()), StartsWith("checkpoint"));
}

TEST(NoteSignerTest, RejectsBadInputs) {
  for (const std::string& name :
       {std::string(""), std::string("a b"), std::string("a+b"), std::string("a\tb"),
        std::string("a\xC2\xA0"
                    "b"),
        std::string("a\xE3\x80\x80"
                    "b"),
        std::string("a\x01"
                    "b"),
        std::string("a\xFF")}) {
    auto signer = Ed25519Signer::FromSeed(std::string(32, '\x01'));
    ASSERT_TRUE(signer.ok());
    absl::StatusOr<NoteSigner> ns = NoteSigner::New(name, *std::move(signer));
    EXPECT_EQ(ns.status().code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_THAT(std::string(ns.status().message()), StartsWith("note signer: key name: got "))
        << name;
  }
  absl::StatusOr<NoteSigner> null = NoteSigner::New("log", nullptr);
  EXPECT_EQ(null.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(null.status().message(), "note signer: got a null Signer, want an Ed25519 Signer");

  NoteSigner signer = GoldenSigner();
  absl::Status s = signer.Sign("no newline").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "note text: got \"no newline\", want non-empty text ending in \"\\n\"");
  s = signer.Sign("").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  s = signer.Sign("tab\there\n").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "note text: byte 3: got control character 0x09, want no control "
            "characters but newline");

  Checkpoint c = GoldenCheckpoint();
  c.origin = "a\nb";
  s = SignCheckpoint(c, signer).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  c = GoldenCheckpoint();
  c.extensions = {"x\n5"};
  s = SignCheckpoint(c, signer).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "checkpoint: origin \"example.com/caseledger\" or an extension holds a "
            "newline, want one line each");
}

// A Signer whose errors NoteSigner must pass on.
class FailingSigner : public Signer {
 public:
  absl::StatusOr<std::string> Sign(absl::string_view) const override {
    return absl::UnavailableError("hsm offline");
  }
  std::string PublicKey() const override { return std::string(32, '\x01'); }
};

TEST(NoteSignerTest, PassesOnSignerErrors) {
  absl::StatusOr<NoteSigner> ns = NoteSigner::New("log", std::make_unique<FailingSigner>());
  ASSERT_TRUE(ns.ok()) << ns.status();
  absl::Status s = ns->Sign("x\n").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(s.message(), "hsm offline");
}

TEST(NoteSignerTest, TextWithBlankLinesRoundTrips) {
  // The spec lets note text hold blank lines; the last blank line splits.
  NoteSigner signer = GoldenSigner();
  const std::string text = "a\n\nb\n\n";
  absl::StatusOr<std::string> note = signer.Sign(text);
  ASSERT_TRUE(note.ok()) << note.status();
  absl::StatusOr<std::string> opened = MustVerifier(signer.VerifierKey()).Open(*note);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(*opened, text);
}

// ledger/CHECKPOINT.md shows the golden key and note; keep them in step.
TEST(CheckpointGoldenTest, FormatDocShowsTheGoldenNote) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  ASSERT_NE(srcdir, nullptr);
  ASSERT_NE(workspace, nullptr);
  std::ifstream in(absl::StrCat(srcdir, "/", workspace, "/ledger/CHECKPOINT.md"));
  ASSERT_TRUE(in.good());
  std::stringstream doc;
  doc << in.rdbuf();
  EXPECT_THAT(doc.str(), HasSubstr(std::string(kGoldenNote)));
  EXPECT_THAT(doc.str(), HasSubstr(absl::StrCat(kGoldenVkey, "\n")));
  EXPECT_THAT(doc.str(), HasSubstr(std::string(kGoldenSeedHex)));
  EXPECT_THAT(doc.str(), HasSubstr(ToHex(GoldenCheckpoint().root)));
}

}  // namespace
}  // namespace caseledger
