#include "ledger/checkpoint.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace caseledger {
namespace {

// U+2014 EM DASH, then a space: the start of every signature line.
constexpr absl::string_view kSigPrefix = "\xE2\x80\x94 ";

// `s` C-escaped and quoted, cut to 64 bytes, for error messages.
std::string Quote(absl::string_view s) {
  constexpr size_t kMax = 64;
  if (s.size() <= kMax) return absl::StrCat("\"", absl::CHexEscape(s), "\"");
  return absl::StrCat("\"", absl::CHexEscape(s.substr(0, kMax)), "\"... (", s.size(), " bytes)");
}

std::string HexKeyHash(uint32_t h) { return absl::StrFormat("%08x", h); }

// What a signature-type byte means, for error messages.
const char* AlgName(uint8_t alg) {
  switch (alg) {
    case 0x01:
      return "Ed25519";
    case 0x04:
      return "Ed25519 cosignature/v1";
    default:
      return "unknown";
  }
}

// Decodes one UTF-8 sequence at s[i]: its length, or 0 if it is not well-formed
// (overlong forms, surrogates and code points above U+10FFFF are not).
size_t DecodeRune(absl::string_view s, size_t i, uint32_t* rune) {
  auto byte = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  uint8_t b0 = byte(i);
  if (b0 < 0x80) {
    *rune = b0;
    return 1;
  }
  size_t n;
  uint8_t lo = 0x80, hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    n = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    n = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    n = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  uint32_t r = b0 & (0x7F >> n);
  for (size_t k = 1; k < n; ++k) {
    uint8_t b = byte(i + k);
    if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return 0;
    r = (r << 6) | (b & 0x3F);
  }
  *rune = r;
  return n;
}

// Go's unicode.IsSpace: the Unicode White_Space code points.
bool IsUnicodeSpace(uint32_t r) {
  switch (r) {
    case '\t':
    case '\n':
    case '\v':
    case '\f':
    case '\r':
    case ' ':
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
      return true;
    default:
      return r >= 0x2000 && r <= 0x200A;
  }
}

// OK if `text` is UTF-8 with no control character (below U+0020) but newline.
absl::Status ValidateText(absl::string_view text, absl::string_view what) {
  for (size_t i = 0; i < text.size();) {
    uint32_t r;
    size_t n = DecodeRune(text, i, &r);
    if (n == 0) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: byte %d: got invalid UTF-8 (0x%02x), want UTF-8 text", what, i,
                          static_cast<uint8_t>(text[i])));
    }
    if (r < 0x20 && r != '\n') {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: byte %d: got control character 0x%02x, want no control characters but newline", what,
          i, r));
    }
    i += n;
  }
  return absl::OkStatus();
}

// OK if `name` is a valid key name: non-empty UTF-8 with no Unicode space,
// '+' or control character.
absl::Status ValidateKeyName(absl::string_view name, absl::string_view what) {
  absl::Status bad = absl::InvalidArgumentError(
      absl::StrCat(what, ": got ", Quote(name),
                   ", want a non-empty name without spaces, '+' or control characters"));
  if (name.empty()) return bad;
  for (size_t i = 0; i < name.size();) {
    uint32_t r;
    size_t n = DecodeRune(name, i, &r);
    if (n == 0 || r < 0x20 || r == 0x7F || r == '+' || IsUnicodeSpace(r)) return bad;
    i += n;
  }
  return absl::OkStatus();
}

// Standard base64 with padding, canonical only (re-encoding gives `in` back).
bool StrictBase64Decode(absl::string_view in, std::string* out) {
  return absl::Base64Unescape(in, out) && absl::Base64Escape(*out) == in;
}

uint32_t ComputeKeyHash(absl::string_view name, uint8_t alg, absl::string_view public_key) {
  Sha256 h;
  h.Update(name);
  h.Update(static_cast<uint8_t>('\n'));
  h.Update(alg);
  h.Update(public_key);
  Hash sum = h.Finish();
  return (uint32_t{sum[0]} << 24) | (uint32_t{sum[1]} << 16) | (uint32_t{sum[2]} << 8) |
         uint32_t{sum[3]};
}

std::string FormatVerifierKey(absl::string_view name, uint8_t alg, uint32_t key_hash,
                              absl::string_view public_key) {
  std::string key(1, static_cast<char>(alg));
  key.append(public_key.data(), public_key.size());
  return absl::StrCat(name, "+", HexKeyHash(key_hash), "+", absl::Base64Escape(key));
}

struct SigLine {
  absl::string_view line;  // Without its newline.
  absl::string_view name;
  uint32_t key_hash;
  std::string signature;  // Without the key hash.
};

struct ParsedNote {
  absl::string_view text;  // Up to and including the newline before the blank line.
  std::vector<SigLine> signatures;
};

// Checks the syntax of a signed note; verifies no signature.
absl::StatusOr<ParsedNote> ParseNote(absl::string_view note) {
  if (note.size() > kMaxNoteSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("note: got ", note.size(), " bytes, want at most ", kMaxNoteSize));
  }
  absl::Status status = ValidateText(note, "note");
  if (!status.ok()) return status;
  size_t split = note.rfind("\n\n");
  if (split == absl::string_view::npos) {
    return absl::InvalidArgumentError(
        "note: got no blank line, want text, a blank line, then signature lines");
  }
  ParsedNote parsed;
  parsed.text = note.substr(0, split + 1);
  absl::string_view sigs = note.substr(split + 2);
  if (sigs.empty()) {
    return absl::InvalidArgumentError(
        "note: got no signature lines after the last blank line, want at least one");
  }
  if (sigs.back() != '\n') {
    return absl::InvalidArgumentError("note: last signature line got no final newline, want one");
  }
  sigs.remove_suffix(1);
  std::vector<absl::string_view> lines = absl::StrSplit(sigs, '\n');
  if (lines.size() > kMaxNoteSignatures) {
    return absl::InvalidArgumentError(absl::StrCat(
        "note: got ", lines.size(), " signature lines, want at most ", kMaxNoteSignatures));
  }
  for (size_t i = 0; i < lines.size(); ++i) {
    absl::string_view line = lines[i];
    std::string where = absl::StrCat("note: signature line ", i + 1);
    if (!absl::StartsWith(line, kSigPrefix)) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": got ", Quote(line), ", want \"\xE2\x80\x94 <key name> <base64 signature>\""));
    }
    absl::string_view rest = line.substr(kSigPrefix.size());
    size_t space = rest.find(' ');
    absl::string_view name = rest.substr(0, space);
    absl::string_view b64 =
        space == absl::string_view::npos ? absl::string_view() : rest.substr(space + 1);
    status = ValidateKeyName(name, absl::StrCat(where, ": key name"));
    if (!status.ok()) return status;
    std::string raw;
    if (b64.empty() || !StrictBase64Decode(b64, &raw)) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": signature got ", Quote(b64),
                                                     ", want standard base64 with padding"));
    }
    if (raw.size() < 5) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": signature got ", raw.size(),
                                                     " bytes, want a 4-byte key hash and more"));
    }
    SigLine sig;
    sig.line = line;
    sig.name = name;
    sig.key_hash = (uint32_t{static_cast<uint8_t>(raw[0])} << 24) |
                   (uint32_t{static_cast<uint8_t>(raw[1])} << 16) |
                   (uint32_t{static_cast<uint8_t>(raw[2])} << 8) |
                   uint32_t{static_cast<uint8_t>(raw[3])};
    sig.signature = raw.substr(4);
    parsed.signatures.push_back(std::move(sig));
  }
  return parsed;
}

}  // namespace

std::string FormatCheckpointBody(const Checkpoint& c) {
  std::string body =
      absl::StrCat(c.origin, "\n", c.size, "\n", absl::Base64Escape(AsBytes(c.root)), "\n");
  for (const std::string& ext : c.extensions) absl::StrAppend(&body, ext, "\n");
  return body;
}

absl::StatusOr<Checkpoint> ParseCheckpointBody(absl::string_view body) {
  absl::Status status = ValidateText(body, "checkpoint");
  if (!status.ok()) return status;
  if (body.empty() || body.back() != '\n') {
    return absl::InvalidArgumentError(
        "checkpoint: got no final newline, want every line to end in \"\\n\"");
  }
  body.remove_suffix(1);
  std::vector<absl::string_view> lines = absl::StrSplit(body, '\n');
  if (lines.size() < 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("checkpoint: got ", lines.size(),
                     " lines, want at least 3 (origin, tree size, root hash)"));
  }
  Checkpoint c;
  if (lines[0].empty()) {
    return absl::InvalidArgumentError(
        "checkpoint line 1 (origin): got an empty line, want a non-empty origin");
  }
  c.origin = std::string(lines[0]);

  absl::string_view size = lines[1];
  bool digits = !size.empty() && std::all_of(size.begin(), size.end(), [](char ch) {
    return absl::ascii_isdigit(static_cast<unsigned char>(ch));
  });
  if (!digits || (size.size() > 1 && size[0] == '0')) {
    return absl::InvalidArgumentError(absl::StrCat("checkpoint line 2 (tree size): got ",
                                                   Quote(size),
                                                   ", want decimal digits without leading zeros"));
  }
  if (!absl::SimpleAtoi(size, &c.size)) {
    return absl::InvalidArgumentError(
        absl::StrCat("checkpoint line 2 (tree size): got ", Quote(size), ", want at most 2^64-1"));
  }

  std::string root;
  if (!StrictBase64Decode(lines[2], &root)) {
    return absl::InvalidArgumentError(absl::StrCat("checkpoint line 3 (root hash): got ",
                                                   Quote(lines[2]),
                                                   ", want standard base64 of 32 bytes"));
  }
  if (root.size() != kHashSize) {
    return absl::InvalidArgumentError(absl::StrCat("checkpoint line 3 (root hash): got ",
                                                   root.size(), " bytes, want ", kHashSize));
  }
  std::copy(root.begin(), root.end(), c.root.begin());

  for (size_t i = 3; i < lines.size(); ++i) {
    if (lines[i].empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "checkpoint line ", i + 1, " (extension): got an empty line, want non-empty"));
    }
    c.extensions.emplace_back(lines[i]);
  }
  return c;
}

NoteSigner::NoteSigner(std::string name, std::unique_ptr<const Signer> signer,
                       std::string public_key, uint32_t key_hash)
    : name_(std::move(name)),
      signer_(std::move(signer)),
      public_key_(std::move(public_key)),
      key_hash_(key_hash) {}

absl::StatusOr<NoteSigner> NoteSigner::New(std::string name, std::unique_ptr<const Signer> signer) {
  absl::Status status = ValidateKeyName(name, "note signer: key name");
  if (!status.ok()) return status;
  if (signer == nullptr) {
    return absl::InvalidArgumentError("note signer: got a null Signer, want an Ed25519 Signer");
  }
  std::string public_key = signer->PublicKey();
  if (public_key.size() != kEd25519PublicKeySize) {
    return absl::InvalidArgumentError(absl::StrCat("note signer: public key got ",
                                                   public_key.size(), " bytes, want ",
                                                   kEd25519PublicKeySize, " (Ed25519)"));
  }
  uint32_t key_hash = ComputeKeyHash(name, kNoteAlgEd25519, public_key);
  return NoteSigner(std::move(name), std::move(signer), std::move(public_key), key_hash);
}

std::string NoteSigner::VerifierKey() const {
  return FormatVerifierKey(name_, kNoteAlgEd25519, key_hash_, public_key_);
}

absl::StatusOr<std::string> NoteSigner::SignatureLine(absl::string_view text) const {
  absl::StatusOr<std::string> sig = signer_->Sign(text);
  if (!sig.ok()) return sig.status();
  std::string raw(4, '\0');
  raw[0] = static_cast<char>(key_hash_ >> 24);
  raw[1] = static_cast<char>(key_hash_ >> 16);
  raw[2] = static_cast<char>(key_hash_ >> 8);
  raw[3] = static_cast<char>(key_hash_);
  raw += *sig;
  return absl::StrCat(kSigPrefix, name_, " ", absl::Base64Escape(raw), "\n");
}

absl::StatusOr<std::string> NoteSigner::Sign(absl::string_view text) const {
  if (text.empty() || text.back() != '\n') {
    return absl::InvalidArgumentError(
        absl::StrCat("note text: got ", Quote(text), ", want non-empty text ending in \"\\n\""));
  }
  absl::Status status = ValidateText(text, "note text");
  if (!status.ok()) return status;
  absl::StatusOr<std::string> line = SignatureLine(text);
  if (!line.ok()) return line.status();
  std::string note = absl::StrCat(text, "\n", *line);
  if (note.size() > kMaxNoteSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("note: signed note got ", note.size(), " bytes, want at most ", kMaxNoteSize));
  }
  return note;
}

absl::StatusOr<std::string> NoteSigner::Cosign(absl::string_view note) const {
  absl::StatusOr<SignedNote> parsed = ParseSignedNote(note);
  if (!parsed.ok()) return parsed.status();
  absl::StatusOr<std::string> line = SignatureLine(parsed->text);
  if (!line.ok()) return line.status();
  return AddNoteSignatureLine(*parsed, name_, key_hash_, *line);
}

NoteVerifier::NoteVerifier(std::string name, uint32_t key_hash,
                           std::unique_ptr<Ed25519Verifier> verifier)
    : name_(std::move(name)), key_hash_(key_hash), verifier_(std::move(verifier)) {}

absl::StatusOr<NoteVerifier> NoteVerifier::FromVerifierKey(absl::string_view vkey) {
  absl::StatusOr<NoteVerifierKey> parts = ParseNoteVerifierKey(vkey, kNoteAlgEd25519);
  if (!parts.ok()) return parts.status();
  absl::StatusOr<std::unique_ptr<Ed25519Verifier>> verifier =
      Ed25519Verifier::New(parts->public_key);
  if (!verifier.ok()) return verifier.status();
  return NoteVerifier(std::move(parts->name), parts->key_hash, *std::move(verifier));
}

std::string NoteVerifier::VerifierKey() const {
  return FormatVerifierKey(name_, kNoteAlgEd25519, key_hash_, verifier_->PublicKey());
}

absl::StatusOr<std::string> NoteVerifier::Open(absl::string_view note) const {
  absl::StatusOr<ParsedNote> parsed = ParseNote(note);
  if (!parsed.ok()) return parsed.status();
  std::string key_id = absl::StrCat(name_, "+", HexKeyHash(key_hash_));
  bool verified = false;
  absl::flat_hash_set<absl::string_view> verified_lines;  // Identical repeats verify once.
  for (size_t i = 0; i < parsed->signatures.size(); ++i) {
    const SigLine& sig = parsed->signatures[i];
    if (sig.name != name_ || sig.key_hash != key_hash_) continue;  // Another key: ignored.
    if (verified_lines.contains(sig.line)) continue;
    absl::Status status = verifier_->Verify(parsed->text, sig.signature);
    if (!status.ok()) {
      return absl::DataLossError(absl::StrCat("note: signature line ", i + 1, " by ", key_id,
                                              " does not verify: ", status.message()));
    }
    verified_lines.insert(sig.line);
    verified = true;
  }
  if (!verified) {
    return absl::DataLossError(absl::StrCat("note has no signature by ", key_id));
  }
  return std::string(parsed->text);
}

absl::StatusOr<std::string> SignCheckpoint(const Checkpoint& c, const NoteSigner& signer) {
  std::string body = FormatCheckpointBody(c);
  absl::StatusOr<Checkpoint> reparsed = ParseCheckpointBody(body);
  if (!reparsed.ok()) return reparsed.status();
  if (*reparsed != c) {
    return absl::InvalidArgumentError(
        absl::StrCat("checkpoint: origin ", Quote(c.origin),
                     " or an extension holds a newline, want one line each"));
  }
  return signer.Sign(body);
}

absl::StatusOr<Checkpoint> OpenCheckpoint(absl::string_view note, const NoteVerifier& verifier,
                                          absl::string_view want_origin) {
  absl::StatusOr<std::string> body = verifier.Open(note);
  if (!body.ok()) return body.status();
  absl::StatusOr<Checkpoint> c = ParseCheckpointBody(*body);
  if (!c.ok()) return c.status();
  if (c->origin != want_origin) {
    return absl::FailedPreconditionError(
        absl::StrCat("checkpoint origin: got ", Quote(c->origin), ", want ", Quote(want_origin)));
  }
  return c;
}

absl::StatusOr<SignedNote> ParseSignedNote(absl::string_view note) {
  absl::StatusOr<ParsedNote> parsed = ParseNote(note);
  if (!parsed.ok()) return parsed.status();
  SignedNote out;
  out.text = std::string(parsed->text);
  for (SigLine& sig : parsed->signatures) {
    out.signatures.push_back(
        {std::string(sig.name), sig.key_hash, std::move(sig.signature), std::string(sig.line)});
  }
  return out;
}

absl::StatusOr<Checkpoint> ParseCheckpointNote(absl::string_view note) {
  absl::StatusOr<SignedNote> parsed = ParseSignedNote(note);
  if (!parsed.ok()) return parsed.status();
  return ParseCheckpointBody(parsed->text);
}

absl::StatusOr<std::string> AddNoteSignatureLine(const SignedNote& note, absl::string_view name,
                                                 uint32_t key_hash, absl::string_view line) {
  std::string out = absl::StrCat(note.text, "\n");
  size_t count = 1;
  for (const NoteSignature& sig : note.signatures) {
    if (sig.name == name && sig.key_hash == key_hash) continue;  // replaced below
    absl::StrAppend(&out, sig.line, "\n");
    ++count;
  }
  out.append(line.data(), line.size());
  if (count > kMaxNoteSignatures) {
    return absl::InvalidArgumentError(absl::StrCat(
        "note: cosigned note got ", count, " signature lines, want at most ", kMaxNoteSignatures));
  }
  if (out.size() > kMaxNoteSize) {
    return absl::InvalidArgumentError(absl::StrCat("note: cosigned note got ", out.size(),
                                                   " bytes, want at most ", kMaxNoteSize));
  }
  return out;
}

absl::Status ValidateNoteKeyName(absl::string_view name, absl::string_view what) {
  return ValidateKeyName(name, what);
}

uint32_t NoteKeyHash(absl::string_view name, uint8_t alg, absl::string_view public_key) {
  return ComputeKeyHash(name, alg, public_key);
}

std::string FormatNoteVerifierKey(absl::string_view name, uint8_t alg,
                                  absl::string_view public_key) {
  return FormatVerifierKey(name, alg, ComputeKeyHash(name, alg, public_key), public_key);
}

absl::StatusOr<NoteVerifierKey> ParseNoteVerifierKey(absl::string_view vkey, uint8_t want_alg) {
  constexpr absl::string_view kWant = "want <name>+<8 hex digits>+<base64 key>";
  std::vector<absl::string_view> parts = absl::StrSplit(vkey, absl::MaxSplits('+', 2));
  if (parts.size() != 3) {
    return absl::InvalidArgumentError(absl::StrCat("verifier key: got ", Quote(vkey), ", ", kWant));
  }
  absl::string_view name = parts[0], hash16 = parts[1], key64 = parts[2];
  absl::Status status = ValidateKeyName(name, "verifier key: name");
  if (!status.ok()) return status;
  bool hex = hash16.size() == 8 && std::all_of(hash16.begin(), hash16.end(), [](char ch) {
               return absl::ascii_isxdigit(static_cast<unsigned char>(ch));
             });
  if (!hex) {
    return absl::InvalidArgumentError(
        absl::StrCat("verifier key: key hash got ", Quote(hash16), ", want 8 hex digits"));
  }
  uint32_t key_hash = 0;
  for (char ch : hash16) {
    int digit = absl::ascii_isdigit(static_cast<unsigned char>(ch))
                    ? ch - '0'
                    : absl::ascii_tolower(static_cast<unsigned char>(ch)) - 'a' + 10;
    key_hash = (key_hash << 4) | static_cast<uint32_t>(digit);
  }
  std::string key;
  if (key64.empty() || !StrictBase64Decode(key64, &key)) {
    return absl::InvalidArgumentError(absl::StrCat("verifier key: key got ", Quote(key64),
                                                   ", want standard base64 with padding"));
  }
  if (static_cast<uint8_t>(key[0]) != want_alg) {
    return absl::InvalidArgumentError(
        absl::StrFormat("verifier key: algorithm got 0x%02x, want 0x%02x (%s)",
                        static_cast<uint8_t>(key[0]), want_alg, AlgName(want_alg)));
  }
  absl::string_view public_key = absl::string_view(key).substr(1);
  if (public_key.size() != kEd25519PublicKeySize) {
    return absl::InvalidArgumentError(absl::StrCat("verifier key: Ed25519 key got ",
                                                   public_key.size(), " bytes, want ",
                                                   kEd25519PublicKeySize));
  }
  uint32_t want_hash = ComputeKeyHash(name, want_alg, public_key);
  if (key_hash != want_hash) {
    return absl::InvalidArgumentError(
        absl::StrCat("verifier key: key hash got ", hash16, ", want ", HexKeyHash(want_hash)));
  }
  return NoteVerifierKey{std::string(name), key_hash, std::string(public_key)};
}

}  // namespace caseledger
