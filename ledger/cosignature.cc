#include "ledger/cosignature.h"

#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace caseledger {
namespace {

// U+2014 EM DASH, then a space: the start of every signature line.
constexpr absl::string_view kSigPrefix = "\xE2\x80\x94 ";

void AppendU32(uint32_t v, std::string* out) {
  for (int shift = 24; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}

void AppendU64(uint64_t v, std::string* out) {
  for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}

uint64_t ReadU64(absl::string_view b) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(b[i]);
  return v;
}

std::string KeyId(absl::string_view name, uint32_t key_hash) {
  return absl::StrFormat("%s+%08x", name, key_hash);
}

absl::Status CheckBodyAndTime(absl::string_view body, uint64_t timestamp) {
  if (body.empty() || body.back() != '\n') {
    return absl::InvalidArgumentError(
        "cosignature: checkpoint text got no final newline, want text ending in \"\\n\"");
  }
  if (timestamp > kMaxCosignatureTimestamp) {
    return absl::InvalidArgumentError(
        absl::StrCat("cosignature: timestamp got ", timestamp, ", want at most 2^63-1"));
  }
  return absl::OkStatus();
}

}  // namespace

std::string CosignatureV1Message(absl::string_view body, uint64_t timestamp) {
  return absl::StrCat("cosignature/v1\ntime ", timestamp, "\n", body);
}

Cosigner::Cosigner(std::string name, std::unique_ptr<const Signer> signer, std::string public_key,
                   uint32_t key_hash)
    : name_(std::move(name)),
      signer_(std::move(signer)),
      public_key_(std::move(public_key)),
      key_hash_(key_hash) {}

absl::StatusOr<Cosigner> Cosigner::New(std::string name, std::unique_ptr<const Signer> signer) {
  absl::Status status = ValidateNoteKeyName(name, "cosigner: key name");
  if (!status.ok()) return status;
  if (signer == nullptr) {
    return absl::InvalidArgumentError("cosigner: got a null Signer, want an Ed25519 Signer");
  }
  std::string public_key = signer->PublicKey();
  if (public_key.size() != kEd25519PublicKeySize) {
    return absl::InvalidArgumentError(absl::StrCat("cosigner: public key got ", public_key.size(),
                                                   " bytes, want ", kEd25519PublicKeySize,
                                                   " (Ed25519)"));
  }
  uint32_t key_hash = NoteKeyHash(name, kNoteAlgCosignatureV1, public_key);
  return Cosigner(std::move(name), std::move(signer), std::move(public_key), key_hash);
}

std::string Cosigner::VerifierKey() const {
  return FormatNoteVerifierKey(name_, kNoteAlgCosignatureV1, public_key_);
}

absl::StatusOr<std::string> Cosigner::SignatureLine(absl::string_view body,
                                                    uint64_t timestamp) const {
  absl::Status status = CheckBodyAndTime(body, timestamp);
  if (!status.ok()) return status;
  absl::StatusOr<std::string> sig = signer_->Sign(CosignatureV1Message(body, timestamp));
  if (!sig.ok()) return sig.status();
  std::string raw;
  raw.reserve(4 + kCosignatureV1Size);
  AppendU32(key_hash_, &raw);
  AppendU64(timestamp, &raw);
  raw += *sig;
  return absl::StrCat(kSigPrefix, name_, " ", absl::Base64Escape(raw), "\n");
}

absl::StatusOr<std::string> Cosigner::Cosign(absl::string_view note, uint64_t timestamp) const {
  absl::StatusOr<SignedNote> parsed = ParseSignedNote(note);
  if (!parsed.ok()) return parsed.status();
  absl::StatusOr<std::string> line = SignatureLine(parsed->text, timestamp);
  if (!line.ok()) return line.status();
  return AddNoteSignatureLine(*parsed, name_, key_hash_, *line);
}

CosignatureVerifier::CosignatureVerifier(std::string name, uint32_t key_hash,
                                         std::unique_ptr<Ed25519Verifier> verifier)
    : name_(std::move(name)), key_hash_(key_hash), verifier_(std::move(verifier)) {}

absl::StatusOr<CosignatureVerifier> CosignatureVerifier::FromVerifierKey(absl::string_view vkey) {
  absl::StatusOr<NoteVerifierKey> parts = ParseNoteVerifierKey(vkey, kNoteAlgCosignatureV1);
  if (!parts.ok()) return parts.status();
  absl::StatusOr<std::unique_ptr<Ed25519Verifier>> verifier =
      Ed25519Verifier::New(parts->public_key);
  if (!verifier.ok()) return verifier.status();
  return CosignatureVerifier(std::move(parts->name), parts->key_hash, *std::move(verifier));
}

std::string CosignatureVerifier::VerifierKey() const {
  return FormatNoteVerifierKey(name_, kNoteAlgCosignatureV1, verifier_->PublicKey());
}

absl::StatusOr<Cosignature> CosignatureVerifier::Verify(absl::string_view note) const {
  absl::StatusOr<SignedNote> parsed = ParseSignedNote(note);
  if (!parsed.ok()) return parsed.status();
  std::string key_id = KeyId(name_, key_hash_);
  bool found = false;
  Cosignature newest;
  absl::flat_hash_set<std::string> verified;  // Identical repeats verify once.
  for (size_t i = 0; i < parsed->signatures.size(); ++i) {
    const NoteSignature& sig = parsed->signatures[i];
    if (sig.name != name_ || sig.key_hash != key_hash_) continue;  // Another key: ignored.
    if (verified.contains(sig.line)) continue;
    std::string where = absl::StrCat("note: cosignature line ", i + 1, " by ", key_id);
    if (sig.signature.size() != kCosignatureV1Size) {
      return absl::DataLossError(absl::StrCat(where, ": got ", sig.signature.size(),
                                              " bytes after the key hash, want ",
                                              kCosignatureV1Size, " (timestamp and signature)"));
    }
    uint64_t timestamp = ReadU64(sig.signature);
    if (timestamp > kMaxCosignatureTimestamp) {
      return absl::DataLossError(
          absl::StrCat(where, ": timestamp got ", timestamp, ", want at most 2^63-1"));
    }
    absl::Status status = verifier_->Verify(CosignatureV1Message(parsed->text, timestamp),
                                            absl::string_view(sig.signature).substr(8));
    if (!status.ok()) {
      return absl::DataLossError(
          absl::StrCat(where, " at time ", timestamp, " does not verify: ", status.message()));
    }
    verified.insert(sig.line);
    if (!found || timestamp > newest.timestamp) newest = Cosignature{timestamp, sig.line, name_};
    found = true;
  }
  if (!found) return absl::DataLossError(absl::StrCat("note has no cosignature by ", key_id));
  return newest;
}

absl::StatusOr<std::vector<Cosignature>> VerifyCosignatureQuorum(
    absl::string_view note, const std::vector<CosignatureVerifier>& witnesses, size_t quorum) {
  if (quorum == 0 || quorum > witnesses.size()) {
    return absl::InvalidArgumentError(absl::StrCat("quorum: got ", quorum, ", want 1..",
                                                   witnesses.size(), " (the trusted witnesses)"));
  }
  absl::StatusOr<SignedNote> parsed = ParseSignedNote(note);
  if (!parsed.ok()) return parsed.status();
  std::vector<Cosignature> good;
  std::vector<std::string> missing;
  for (const CosignatureVerifier& w : witnesses) {
    bool present = false;
    for (const NoteSignature& sig : parsed->signatures) {
      present = present || (sig.name == w.name() && sig.key_hash == w.KeyHash());
    }
    if (!present) {
      missing.push_back(KeyId(w.name(), w.KeyHash()));
      continue;
    }
    absl::StatusOr<Cosignature> c = w.Verify(note);
    if (!c.ok()) return c.status();
    good.push_back(*std::move(c));
  }
  if (good.size() < quorum) {
    return absl::FailedPreconditionError(
        absl::StrCat("cosignatures: got ", good.size(), " of the ", witnesses.size(),
                     " trusted witnesses, want at least ", quorum,
                     " (missing: ", absl::StrJoin(missing, ", "), ")"));
  }
  return good;
}

}  // namespace caseledger
