// Checkpoints (c2sp.org/tlog-checkpoint) inside signed notes
// (c2sp.org/signed-note) with Ed25519 keys, byte-compatible with Go's
// golang.org/x/mod/sumdb/note. The byte format is in ledger/CHECKPOINT.md.
//
// Thread-safety: NoteSigner and NoteVerifier are immutable after New /
// FromVerifierKey; their const methods may be called from any thread as long
// as the wrapped Signer's Sign is thread-safe (Ed25519Signer's is).
#ifndef CASELEDGER_LEDGER_CHECKPOINT_H_
#define CASELEDGER_LEDGER_CHECKPOINT_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ledger/hash.h"
#include "ledger/signer.h"

namespace caseledger {

// Notes larger than this are refused by NoteVerifier::Open and never produced
// by NoteSigner.
inline constexpr size_t kMaxNoteSize = 1 << 20;
// The most signature lines a note may carry (Go's sumdb/note limit).
inline constexpr size_t kMaxNoteSignatures = 100;
// The signature-type byte of Ed25519 in key hashes and verifier keys.
inline constexpr uint8_t kNoteAlgEd25519 = 0x01;

// A tree head: the body of a checkpoint note.
struct Checkpoint {
  std::string origin;                   // The log's identity, e.g. "example.com/log".
  uint64_t size = 0;                    // Number of leaves.
  Hash root{};                          // RFC 9162 root at `size`.
  std::vector<std::string> extensions;  // Opaque, non-empty lines; usually none.

  friend bool operator==(const Checkpoint& a, const Checkpoint& b) {
    return a.origin == b.origin && a.size == b.size && a.root == b.root &&
           a.extensions == b.extensions;
  }
  friend bool operator!=(const Checkpoint& a, const Checkpoint& b) { return !(a == b); }
};

// "<origin>\n<size>\n<base64 root>\n" followed by "<extension>\n" for each
// extension. Garbage in, garbage out: an origin or extension that is empty or
// holds a newline gives a body that does not parse back to `c` (SignCheckpoint
// checks this).
std::string FormatCheckpointBody(const Checkpoint& c);

// The inverse of FormatCheckpointBody, strict: INVALID_ARGUMENT naming the line
// and what was got and wanted unless `body` is valid UTF-8 without control
// characters other than newline, ends in "\n", and has a non-empty origin, a
// decimal size without leading zeros ("0" for the empty tree) that fits in 64
// bits, a root of canonical standard base64 of exactly 32 bytes, and only
// non-empty extension lines.
absl::StatusOr<Checkpoint> ParseCheckpointBody(absl::string_view body);

// Signs note texts with one Ed25519 key under one key name.
class NoteSigner {
 public:
  // `signer` must produce Ed25519 signatures (its PublicKey is 32 bytes). `name`
  // is the key name: non-empty UTF-8 with no Unicode spaces, '+' or control
  // characters; for a log it should be the checkpoint origin.
  // INVALID_ARGUMENT otherwise, or if `signer` is null.
  static absl::StatusOr<NoteSigner> New(std::string name, std::unique_ptr<const Signer> signer);

  NoteSigner(NoteSigner&&) = default;
  NoteSigner& operator=(NoteSigner&&) = default;

  const std::string& name() const { return name_; }
  // First 4 bytes, big-endian, of SHA-256(name || "\n" || 0x01 || public key).
  uint32_t KeyHash() const { return key_hash_; }
  // "<name>+<8 hex digits of KeyHash>+<base64(0x01 || public key)>", the
  // string a verifier is configured with (NoteVerifier::FromVerifierKey).
  std::string VerifierKey() const;

  // The signed note: `text`, a blank line, and this key's signature line.
  // INVALID_ARGUMENT unless `text` is non-empty, ends in "\n", is valid UTF-8
  // without control characters other than newline, and the note fits in
  // kMaxNoteSize. Passes on the Signer's error.
  absl::StatusOr<std::string> Sign(absl::string_view text) const;

  // `note` with this key's signature line appended (any line already there
  // under this key's name and key hash is dropped first). Checks only the
  // note's syntax, not its signatures: a witness must Open it with the log's
  // verifier first. INVALID_ARGUMENT for a malformed note, or if the result
  // would exceed kMaxNoteSignatures lines or kMaxNoteSize bytes.
  absl::StatusOr<std::string> Cosign(absl::string_view note) const;

 private:
  NoteSigner(std::string name, std::unique_ptr<const Signer> signer, std::string public_key,
             uint32_t key_hash);
  absl::StatusOr<std::string> SignatureLine(absl::string_view text) const;

  std::string name_;
  std::unique_ptr<const Signer> signer_;
  std::string public_key_;
  uint32_t key_hash_;
};

// Opens notes signed by one Ed25519 key.
class NoteVerifier {
 public:
  // Parses "<name>+<8 hex digits>+<base64(0x01 || 32-byte public key)>".
  // INVALID_ARGUMENT for a malformed string, an algorithm byte other than
  // 0x01, a key that is not 32 bytes, or a key hash that does not match the
  // name and key.
  static absl::StatusOr<NoteVerifier> FromVerifierKey(absl::string_view vkey);

  NoteVerifier(NoteVerifier&&) = default;
  NoteVerifier& operator=(NoteVerifier&&) = default;

  const std::string& name() const { return name_; }
  uint32_t KeyHash() const { return key_hash_; }
  std::string VerifierKey() const;

  // The note's text (everything up to and including the newline before the
  // last blank line) if the note carries a valid signature by this key.
  // Signature lines of other keys (another name or key hash) are ignored, as
  // the spec requires; every line of this key must verify.
  //  INVALID_ARGUMENT: malformed note (over kMaxNoteSize, not UTF-8, a control
  //    character, no blank line, a malformed signature line, more than
  //    kMaxNoteSignatures lines).
  //  DATA_LOSS: a signature line of this key does not verify, or there is no
  //    signature line of this key.
  absl::StatusOr<std::string> Open(absl::string_view note) const;

 private:
  NoteVerifier(std::string name, uint32_t key_hash, std::unique_ptr<Ed25519Verifier> verifier);

  std::string name_;
  uint32_t key_hash_;
  std::unique_ptr<Ed25519Verifier> verifier_;
};

// ---------------------------------------------------------------------------
// Lower-level pieces of the signed-note format, shared with other signature
// types that live in notes (ledger/cosignature.h).

// One signature line of a note, parsed but not verified.
struct NoteSignature {
  std::string name;
  uint32_t key_hash = 0;
  std::string signature;  // The bytes after the 4-byte key hash.
  std::string line;       // The whole line, without its newline.
};

// A signed note split into its text and signature lines.
struct SignedNote {
  std::string text;  // Up to and including the newline before the last blank line.
  std::vector<NoteSignature> signatures;
};

// Checks a note's syntax exactly as NoteVerifier::Open does (same
// INVALID_ARGUMENT messages) and splits it; verifies no signature.
absl::StatusOr<SignedNote> ParseSignedNote(absl::string_view note);

// The checkpoint a signed note states, with no signature verified:
// ParseSignedNote, then ParseCheckpointBody of its text. The one way to read
// a note's size or root before (or without) OpenCheckpoint; trust only what
// OpenCheckpoint returns. INVALID_ARGUMENT from either step.
absl::StatusOr<Checkpoint> ParseCheckpointNote(absl::string_view note);

// The note with `line` (a signature line of key `name` / `key_hash`, ending
// in a newline) after its signature lines, replacing an earlier line of the
// same key. INVALID_ARGUMENT if the result exceeds the note limits.
absl::StatusOr<std::string> AddNoteSignatureLine(const SignedNote& note, absl::string_view name,
                                                 uint32_t key_hash, absl::string_view line);

// OK if `name` is a valid key name (non-empty UTF-8 with no Unicode space,
// '+' or control character); otherwise INVALID_ARGUMENT starting with `what`.
absl::Status ValidateNoteKeyName(absl::string_view name, absl::string_view what);

// The first 4 bytes, big-endian, of SHA-256(name || "\n" || alg || public_key).
uint32_t NoteKeyHash(absl::string_view name, uint8_t alg, absl::string_view public_key);

// "<name>+<8 hex digits>+<base64(alg || public_key)>".
std::string FormatNoteVerifierKey(absl::string_view name, uint8_t alg,
                                  absl::string_view public_key);

// A verifier key split into its parts, with its key hash checked.
struct NoteVerifierKey {
  std::string name;
  uint32_t key_hash = 0;
  std::string public_key;  // 32 bytes: only Ed25519-based types are parsed.
};

// Parses "<name>+<8 hex digits>+<base64(alg || 32-byte key)>" whose algorithm
// byte must be `want_alg`. INVALID_ARGUMENT for a malformed string, another
// algorithm byte, a key that is not 32 bytes, or a key hash that does not
// match the name, `want_alg` and key.
absl::StatusOr<NoteVerifierKey> ParseNoteVerifierKey(absl::string_view vkey, uint8_t want_alg);

// FormatCheckpointBody + NoteSigner::Sign. INVALID_ARGUMENT if `c` does not
// survive ParseCheckpointBody(FormatCheckpointBody(c)) unchanged.
absl::StatusOr<std::string> SignCheckpoint(const Checkpoint& c, const NoteSigner& signer);

// NoteVerifier::Open + ParseCheckpointBody + an origin check. Codes as there;
// FAILED_PRECONDITION "checkpoint origin: got X, want Y" if the signed
// checkpoint is for another log (the signature is fine, but this checkpoint is
// no basis for statements about `want_origin`).
absl::StatusOr<Checkpoint> OpenCheckpoint(absl::string_view note, const NoteVerifier& verifier,
                                          absl::string_view want_origin);

}  // namespace caseledger

#endif  // CASELEDGER_LEDGER_CHECKPOINT_H_
