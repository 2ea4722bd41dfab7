// Witness cosignatures of checkpoints (c2sp.org/tlog-cosignature, the Ed25519
// "cosignature/v1" type). A cosignature is one more signature line on a
// checkpoint note; its signed message binds a timestamp to the checkpoint
// body. The byte format is in ledger/COSIGNATURE.md.
//
// Thread-safety: Cosigner and CosignatureVerifier are immutable after New /
// FromVerifierKey; their const methods may be called from any thread.
#ifndef CASELEDGER_LEDGER_COSIGNATURE_H_
#define CASELEDGER_LEDGER_COSIGNATURE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ledger/checkpoint.h"
#include "ledger/signer.h"

namespace caseledger {

// The signature-type byte of Ed25519 cosignature/v1 in key hashes and
// verifier keys.
inline constexpr uint8_t kNoteAlgCosignatureV1 = 0x04;
// The spec caps timestamps at 2^63 - 1.
inline constexpr uint64_t kMaxCosignatureTimestamp = (uint64_t{1} << 63) - 1;
// Bytes after the key hash in a cosignature/v1 line: timestamp + signature.
inline constexpr size_t kCosignatureV1Size = 8 + kEd25519SignatureSize;

// The message a cosignature/v1 signs: "cosignature/v1\ntime <timestamp>\n"
// followed by the checkpoint note text `body` (ending in "\n", no signature
// lines).
std::string CosignatureV1Message(absl::string_view body, uint64_t timestamp);

// Cosigns checkpoint notes with one Ed25519 witness key.
class Cosigner {
 public:
  // `name` is the witness's key name (valid note key name); `signer` must be
  // Ed25519. INVALID_ARGUMENT otherwise or if `signer` is null.
  static absl::StatusOr<Cosigner> New(std::string name, std::unique_ptr<const Signer> signer);

  Cosigner(Cosigner&&) = default;
  Cosigner& operator=(Cosigner&&) = default;

  const std::string& name() const { return name_; }
  // First 4 bytes, big-endian, of SHA-256(name || "\n" || 0x04 || public key).
  uint32_t KeyHash() const { return key_hash_; }
  // "<name>+<8 hex digits>+<base64(0x04 || public key)>".
  std::string VerifierKey() const;

  // The signature line "— <name> <base64(key hash || u64 timestamp ||
  // signature)>\n" over CosignatureV1Message(body, timestamp).
  // INVALID_ARGUMENT if `body` is empty or does not end in "\n", or if
  // timestamp > kMaxCosignatureTimestamp. Passes on the Signer's error.
  absl::StatusOr<std::string> SignatureLine(absl::string_view body, uint64_t timestamp) const;

  // `note` with this witness's line appended; a line already there under this
  // witness's name and key hash is dropped first. Checks the note's syntax
  // only: a witness must open it with the log's verifier and check
  // consistency before cosigning. INVALID_ARGUMENT as for SignatureLine, for
  // a malformed note, or a result over kMaxNoteSignatures / kMaxNoteSize.
  absl::StatusOr<std::string> Cosign(absl::string_view note, uint64_t timestamp) const;

 private:
  Cosigner(std::string name, std::unique_ptr<const Signer> signer, std::string public_key,
           uint32_t key_hash);

  std::string name_;
  std::unique_ptr<const Signer> signer_;
  std::string public_key_;
  uint32_t key_hash_;
};

// A verified cosignature.
struct Cosignature {
  uint64_t timestamp = 0;  // POSIX seconds, as the witness signed it.
  std::string line;        // The signature line, without its newline.
  std::string name;        // The witness's name (its key's name).
};

// Verifies one witness's cosignatures.
class CosignatureVerifier {
 public:
  // Parses "<name>+<8 hex digits>+<base64(0x04 || 32-byte key)>".
  // INVALID_ARGUMENT as ParseNoteVerifierKey says.
  static absl::StatusOr<CosignatureVerifier> FromVerifierKey(absl::string_view vkey);

  CosignatureVerifier(CosignatureVerifier&&) = default;
  CosignatureVerifier& operator=(CosignatureVerifier&&) = default;

  const std::string& name() const { return name_; }
  uint32_t KeyHash() const { return key_hash_; }
  std::string VerifierKey() const;

  // This witness's cosignature in `note`. Lines of other keys are ignored;
  // every line of this witness must verify and the newest is returned.
  //  INVALID_ARGUMENT: malformed note (as NoteVerifier::Open).
  //  DATA_LOSS: a line of this witness is not 76 bytes, has a timestamp over
  //    2^63 - 1, or does not verify; or no line of this witness is there.
  absl::StatusOr<Cosignature> Verify(absl::string_view note) const;

 private:
  CosignatureVerifier(std::string name, uint32_t key_hash,
                      std::unique_ptr<Ed25519Verifier> verifier);

  std::string name_;
  uint32_t key_hash_;
  std::unique_ptr<Ed25519Verifier> verifier_;
};

// A client's trust policy: `note` must carry valid cosignatures by at least
// `quorum` of `witnesses` (each counted once). Returns the verified ones, in
// the order of `witnesses`.
//  INVALID_ARGUMENT: malformed note, or quorum is 0 or more than the witnesses.
//  DATA_LOSS: a line of one of `witnesses` does not verify.
//  FAILED_PRECONDITION: fewer than `quorum` trusted witnesses cosigned,
//    naming how many did and which are missing.
absl::StatusOr<std::vector<Cosignature>> VerifyCosignatureQuorum(
    absl::string_view note, const std::vector<CosignatureVerifier>& witnesses, size_t quorum);

}  // namespace caseledger

#endif  // CASELEDGER_LEDGER_COSIGNATURE_H_
