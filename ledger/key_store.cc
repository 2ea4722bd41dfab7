#include "ledger/key_store.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <sys/stat.h>

#include <cstdlib>
#include <optional>
#include <fstream>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "ledger/internal/bytes.h"
#include "ledger/internal/status_macros.h"

namespace caseledger {
namespace {

using internal::ByteReader;
using internal::ByteWriter;

constexpr char kDataKeyPrefix = 'd';
constexpr char kSubjectPrefix = 's';
constexpr char kStreamPrefix = 'c';
constexpr char kKeyIdSeparator = '+';
constexpr size_t kMaxCachedKeys = 1 << 16;

std::string IndexKey(char prefix, absl::string_view a, absl::string_view b) {
  std::string key(1, prefix);
  key.append(a.data(), a.size());
  key.push_back('\0');  // ids hold no control bytes, so this ends the first
  key.append(b.data(), b.size());
  return key;
}

// The raw data key ids named by a payload's key_id text.
absl::StatusOr<std::vector<std::string>> ParsePayloadKeyId(absl::string_view key_id) {
  std::vector<std::string> ids;
  for (absl::string_view hex : absl::StrSplit(key_id, kKeyIdSeparator)) {
    bool ok = hex.size() == 2 * kDataKeyIdSize;
    for (char c : hex) ok = ok && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
    if (!ok) {
      return absl::DataLossError(absl::StrCat("payload key_id \"", absl::CEscape(key_id),
                                              "\": want ", 2 * kDataKeyIdSize,
                                              " lowercase hex digits per key, joined by '+'"));
    }
    ids.push_back(absl::HexStringToBytes(hex));
  }
  return ids;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    return absl::FailedPreconditionError(absl::StrCat("master key file ", path, ": cannot stat"));
  }
  if ((st.st_mode & 077) != 0) {
    return absl::FailedPreconditionError(
        absl::StrFormat("master key file %s: mode %o lets others read it; want 600 or 400", path,
                        st.st_mode & 0777));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::FailedPreconditionError(absl::StrCat("master key file ", path, ": cannot open"));
  }
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

// The raw data key `id` in its wrapped entry `bytes`, unwrapped with
// `master` (whose id is `master_id`). DATA_LOSS naming the key when the entry
// is malformed, wrapped under another master key, or does not open.
absl::StatusOr<std::string> OpenWrapped(const AeadKey& master, absl::string_view master_id,
                                        absl::string_view id, absl::string_view bytes,
                                        WrappedKey* w) {
  auto fail = [&](absl::string_view why) {
    return absl::DataLossError(absl::StrCat("data key ", absl::BytesToHexString(id), ": ", why));
  };
  absl::StatusOr<WrappedKey> decoded = DecodeWrappedKey(bytes);
  if (!decoded.ok()) return fail(decoded.status().message());
  *w = *std::move(decoded);
  if (w->master_key_id != master_id) {
    return fail(
        absl::StrCat("wrapped under master key id ", w->master_key_id, ", want ", master_id));
  }
  absl::StatusOr<std::string> raw =
      Open(master, w->sealed, WrapAad(id, w->subject_id, w->stream_id));
  if (!raw.ok()) return fail(raw.status().message());
  return raw;
}

// Reads `table` and returns the writes that re-wrap every data key from
// `current` to `next` and record `next`'s id, for one atomic write;
// `*rewrapped` is how many keys they re-wrap. `current_name` names where
// `current` came from in the FAILED_PRECONDITION when the table's keys are
// wrapped under another key.
absl::StatusOr<std::vector<KeyWrite>> RewrapWrites(const KeyTable& table, const AeadKey& current,
                                                   const AeadKey& next,
                                                   absl::string_view current_name,
                                                   size_t* rewrapped) {
  const std::string current_id = MasterKeyId(current);
  const std::string next_id = MasterKeyId(next);
  CL_ASSIGN_OR_RETURN(std::optional<std::string> stored, table.GetKey(kMasterKeyIdKey));
  if (!stored.has_value() || *stored != current_id) {
    return absl::FailedPreconditionError(absl::StrCat(
        current_name, ": got master key id ", current_id, ", but the data keys are wrapped under ",
        stored.has_value() ? absl::StrCat("key id ", absl::CEscape(*stored)) : "no key"));
  }
  std::vector<KeyWrite> writes;
  absl::Status failed;
  const std::string prefix(1, kDataKeyPrefix);
  CL_RETURN_IF_ERROR(table.ScanKeys(prefix, [&](absl::string_view key, absl::string_view entry) {
    absl::string_view id = key.substr(1);
    WrappedKey w;
    absl::StatusOr<std::string> raw = OpenWrapped(current, current_id, id, entry, &w);
    if (!raw.ok()) {
      failed = raw.status();
      return false;
    }
    absl::StatusOr<std::string> resealed = Seal(next, *raw, WrapAad(id, w.subject_id, w.stream_id));
    OPENSSL_cleanse(raw->data(), raw->size());
    if (!resealed.ok()) {
      failed = absl::DataLossError(
          absl::StrCat("data key ", absl::BytesToHexString(id), ": ", resealed.status().message()));
      return false;
    }
    w.master_key_id = next_id;
    w.sealed = *std::move(resealed);
    writes.push_back({std::string(key), EncodeWrappedKey(w)});
    return true;
  }));
  CL_RETURN_IF_ERROR(failed);
  *rewrapped = writes.size();
  writes.push_back({kMasterKeyIdKey, next_id});
  return writes;
}

}  // namespace

std::string MasterKeyId(const AeadKey& master) {
  Sha256 h;
  h.Update("caseledger/v1 master key id");
  h.Update(master.bytes());
  Hash full = h.Finish();
  return absl::BytesToHexString(AsBytes(full).substr(0, 8));
}

absl::StatusOr<AeadKey> ProjectionsKey(const AeadKey& master) {
  CL_ASSIGN_OR_RETURN(std::string bytes,
                      HkdfSha256(master.bytes(), "", "caseledger/v1 projections key", kAeadKeySize));
  absl::StatusOr<AeadKey> key = AeadKey::FromBytes(bytes);
  OPENSSL_cleanse(bytes.data(), bytes.size());
  return key;
}

absl::StatusOr<AeadKey> LoadMasterKey(const std::string& path, const char* env) {
  if (!path.empty()) {
    CL_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
    absl::StatusOr<AeadKey> key = AeadKey::FromHex(text);
    if (!key.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("master key file ", path, ": ", key.status().message()));
    }
    return key;
  }
  const char* value = env == nullptr ? nullptr : std::getenv(env);
  if (value == nullptr || *value == '\0') {
    return absl::NotFoundError("no master key file and no master key in the environment");
  }
  absl::StatusOr<AeadKey> key = AeadKey::FromHex(value);
  if (!key.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("$", env, ": ", key.status().message()));
  }
  return key;
}

std::string DataKeyEntryKey(absl::string_view key_id) {
  std::string key(1, kDataKeyPrefix);
  key.append(key_id.data(), key_id.size());
  return key;
}

std::string SubjectIndexKey(absl::string_view subject_id, absl::string_view stream_id) {
  return IndexKey(kSubjectPrefix, subject_id, stream_id);
}

std::string StreamIndexKey(absl::string_view stream_id, absl::string_view subject_id) {
  return IndexKey(kStreamPrefix, stream_id, subject_id);
}

std::string EncodeWrappedKey(const WrappedKey& w) {
  std::string out;
  ByteWriter b(&out);
  b.U8(kWrappedKeyFormatVersion);
  b.Str16(w.master_key_id);
  b.Str16(w.subject_id);
  b.Str16(w.stream_id);
  b.Raw(w.sealed);
  return out;
}

absl::StatusOr<WrappedKey> DecodeWrappedKey(absl::string_view bytes) {
  ByteReader in(bytes, "wrapped key");
  uint8_t version;
  CL_RETURN_IF_ERROR(in.U8("format_version", &version));
  if (version != kWrappedKeyFormatVersion) {
    return absl::InvalidArgumentError(
        absl::StrCat("wrapped key: format_version ", version, ", want ", kWrappedKeyFormatVersion));
  }
  WrappedKey w;
  CL_RETURN_IF_ERROR(in.Str16("master_key_id", &w.master_key_id));
  CL_RETURN_IF_ERROR(in.Str16("subject_id", &w.subject_id));
  CL_RETURN_IF_ERROR(in.Str16("stream_id", &w.stream_id));
  absl::string_view sealed;
  CL_RETURN_IF_ERROR(in.Raw("sealed", kAeadKeySize + kSealOverhead, &sealed));
  w.sealed.assign(sealed.data(), sealed.size());
  CL_RETURN_IF_ERROR(in.Done());
  return w;
}

std::string WrapAad(absl::string_view key_id, absl::string_view subject_id,
                    absl::string_view stream_id) {
  std::string out;
  ByteWriter b(&out);
  b.U8(kWrappedKeyFormatVersion);
  b.Raw("caseledger/v1 data key");
  b.Raw(key_id);
  b.Str16(subject_id);
  b.Str16(stream_id);
  return out;
}

absl::StatusOr<AeadKey> OpeningsKey(const std::vector<AeadKey>& data_keys,
                                    absl::string_view payload_key_id) {
  std::string ikm;
  for (const AeadKey& k : data_keys) ikm.append(k.bytes().data(), k.bytes().size());
  absl::StatusOr<std::string> okm = HkdfSha256(
      ikm, "", absl::StrCat("caseledger/v1 openings key ", payload_key_id), kAeadKeySize);
  OPENSSL_cleanse(ikm.data(), ikm.size());
  if (!okm.ok()) return okm.status();
  absl::StatusOr<AeadKey> key = AeadKey::FromBytes(*okm);
  OPENSSL_cleanse(okm->data(), okm->size());
  return key;
}

std::string OpeningsAad(absl::string_view payload_key_id, const Hash& payload_commitment) {
  std::string out;
  ByteWriter b(&out);
  b.U8(kOpeningsAadVersion);
  b.Str16(payload_key_id);
  b.HashValue(payload_commitment);
  return out;
}

KeyStore::KeyStore(KeyTable* table, const AeadKey& master, KeyStoreOptions options)
    : table_(*table), options_(std::move(options)), master_{master, MasterKeyId(master), 0} {}

std::string KeyStore::master_key_id() const {
  absl::MutexLock lock(&mu_);
  return master_.id;
}

absl::StatusOr<std::unique_ptr<KeyStore>> KeyStore::Open(KeyTable* table, const AeadKey& master,
                                                         KeyStoreOptions options) {
  if (table == nullptr) {
    return absl::InvalidArgumentError("key table: the store keeps no keys");
  }
  std::unique_ptr<KeyStore> store(new KeyStore(table, master, std::move(options)));
  const std::string id = MasterKeyId(master);
  CL_ASSIGN_OR_RETURN(std::optional<std::string> stored, table->GetKey(kMasterKeyIdKey));
  if (!stored.has_value()) {
    absl::Status written = table->WriteKeys({{kMasterKeyIdKey, id}});
    // A shared table keeps the first writer's id (ABORTED for a later
    // different one): compare with the winner.
    if (absl::IsAborted(written)) {
      CL_ASSIGN_OR_RETURN(stored, table->GetKey(kMasterKeyIdKey));
    } else {
      CL_RETURN_IF_ERROR(written);
    }
  }
  if (stored.has_value() && *stored != id) {
    return absl::FailedPreconditionError(
        absl::StrCat("master key: got key id ", id, ", but the data keys are wrapped under key id ",
                     absl::CEscape(*stored), " (wrong key file, or a rotation not applied?)"));
  }
  return store;
}

absl::StatusOr<AeadKey> KeyStore::Unwrap(const Master& master, absl::string_view id,
                                         absl::string_view entry) {
  WrappedKey w;
  CL_ASSIGN_OR_RETURN(std::string raw, OpenWrapped(master.key, master.id, id, entry, &w));
  absl::StatusOr<AeadKey> key = AeadKey::FromBytes(raw);
  OPENSSL_cleanse(raw.data(), raw.size());
  return key;
}

absl::StatusOr<KeyStore::DataKey> KeyStore::KeyFor(
    const std::string& subject_id, const std::string& stream_id,
    const std::function<KeyWrite(const AeadKey&)>& extra) {
  auto index = std::make_pair(subject_id, stream_id);
  std::optional<DataKey> cached;
  {
    absl::MutexLock lock(&mu_);
    if (auto it = by_subject_.find(index); it != by_subject_.end()) cached = it->second;
  }
  // Checked outside the lock: with a shared table it is a round trip.
  if (cached.has_value()) {
    CL_ASSIGN_OR_RETURN(bool live, CachedKeyLive(subject_id, cached->id));
    if (live) return *cached;
  }
  absl::MutexLock lock(&mu_);
  if (auto it = by_subject_.find(index); it != by_subject_.end()) {
    // Destroyed elsewhere: look up or create anew, unless another appender
    // already did.
    if (!cached.has_value() || it->second.id != cached->id) return it->second;
    by_subject_.erase(it);
  }
  // Held across the lookup and the creation, so two appenders never create
  // two keys for one pair.
  DataKey out;
  for (int attempt = 0;; ++attempt) {
    CL_ASSIGN_OR_RETURN(std::optional<std::string> id,
                        table_.GetKey(SubjectIndexKey(subject_id, stream_id)));
    if (id.has_value()) {
      CL_ASSIGN_OR_RETURN(std::optional<std::string> entry, table_.GetKey(DataKeyEntryKey(*id)));
      if (!entry.has_value()) {
        return absl::DataLossError(absl::StrCat("key index for subject \"", subject_id,
                                                "\" in stream \"", stream_id,
                                                "\" names a missing data key"));
      }
      CL_ASSIGN_OR_RETURN(out.key, Unwrap(master_, *id, *entry));
      out.id = *std::move(id);
    } else {
      out.id.resize(kDataKeyIdSize);
      if (RAND_bytes(reinterpret_cast<unsigned char*>(out.id.data()), kDataKeyIdSize) != 1) {
        return absl::InternalError("RAND_bytes failed: no randomness for a data key id");
      }
      CL_ASSIGN_OR_RETURN(out.key, AeadKey::Generate());
      WrappedKey w{master_.id, subject_id, stream_id, ""};
      CL_ASSIGN_OR_RETURN(w.sealed, caseledger::Seal(master_.key, out.key.bytes(),
                                                     WrapAad(out.id, subject_id, stream_id)));
      std::vector<KeyWrite> writes = {{DataKeyEntryKey(out.id), EncodeWrappedKey(w)},
                                      {SubjectIndexKey(subject_id, stream_id), out.id},
                                      {StreamIndexKey(stream_id, subject_id), out.id}};
      if (extra) writes.push_back(extra(out.key));
      absl::Status written = table_.WriteKeys(writes);
      // A table shared by several writers (PgStore) keeps the first creation
      // and refuses a later one with ABORTED: read the winner back and use it.
      if (absl::IsAborted(written) && attempt == 0) continue;
      CL_RETURN_IF_ERROR(written);
    }
    break;
  }
  if (by_subject_.size() >= kMaxCachedKeys) by_subject_.clear();
  by_subject_[index] = out;
  return out;
}

namespace {

std::pair<std::string, std::string> SaltPairOf(BlindKind kind, absl::string_view id) {
  if (kind == BlindKind::kSubject) return {std::string(id), kSaltPair};
  return {kSaltPair, std::string(id)};
}

Hash SaltOf(const AeadKey& key) {
  Hash salt;
  std::copy(key.bytes().begin(), key.bytes().end(), salt.begin());
  return salt;
}

absl::Status CheckBlindKind(BlindKind kind) {
  if (kind == BlindKind::kSubject || kind == BlindKind::kStream) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("blind kind: got 0x",
                                                 absl::Hex(static_cast<uint8_t>(kind)),
                                                 ", want a subject (0x20) or stream (0x21)"));
}

}  // namespace

std::string TagIndexKey(BlindKind kind, const Hash& tag) {
  std::string key = "t";
  key.push_back(static_cast<char>(kind));
  key.append(AsBytes(tag).data(), kHashSize);
  return key;
}

absl::StatusOr<Hash> KeyStore::SaltFor(BlindKind kind, absl::string_view id) {
  CL_RETURN_IF_ERROR(CheckBlindKind(kind));
  CL_RETURN_IF_ERROR(CheckText("blinded id", id, kMaxIdBytes));
  auto [subject, stream] = SaltPairOf(kind, id);
  CL_ASSIGN_OR_RETURN(DataKey k, KeyFor(subject, stream, [&](const AeadKey& key) {
                        return KeyWrite{TagIndexKey(kind, BlindTag(kind, SaltOf(key), id)),
                                        std::string(id)};
                      }));
  return SaltOf(k.key);
}

absl::StatusOr<Hash> KeyStore::FindSalt(BlindKind kind, absl::string_view id) const {
  CL_RETURN_IF_ERROR(CheckBlindKind(kind));
  auto pair = SaltPairOf(kind, id);
  std::optional<DataKey> cached;
  {
    absl::MutexLock lock(&mu_);
    if (auto it = by_subject_.find(pair); it != by_subject_.end()) cached = it->second;
  }
  if (cached.has_value()) {
    CL_ASSIGN_OR_RETURN(bool live, CachedKeyLive(pair.first, cached->id));
    if (live) return SaltOf(cached->key);
  }
  CL_ASSIGN_OR_RETURN(std::optional<std::string> key_id,
                      table_.GetKey(SubjectIndexKey(pair.first, pair.second)));
  if (!key_id.has_value()) return absl::NotFoundError("no blinding salt for this id");
  CL_ASSIGN_OR_RETURN(AeadKey key, KeyById(*key_id));
  return SaltOf(key);
}

absl::StatusOr<Blinder::Opening> KeyStore::OpenTag(BlindKind kind, const Hash& tag) const {
  CL_RETURN_IF_ERROR(CheckBlindKind(kind));
  CL_ASSIGN_OR_RETURN(std::optional<std::string> id, table_.GetKey(TagIndexKey(kind, tag)));
  if (!id.has_value()) {
    return absl::NotFoundError(absl::StrCat("tag ", ShortHex(tag), " is unknown or erased"));
  }
  Opening out;
  CL_ASSIGN_OR_RETURN(out.salt, FindSalt(kind, *id));
  out.id = *std::move(id);
  return out;
}

absl::StatusOr<bool> KeyStore::CachedKeyLive(absl::string_view subject_id,
                                             absl::string_view id) const {
  if (!options_.shared_table || subject_id == kSaltPair) return true;
  CL_ASSIGN_OR_RETURN(std::optional<std::string> entry, table_.GetKey(DataKeyEntryKey(id)));
  return entry.has_value();
}

absl::StatusOr<AeadKey> KeyStore::KeyById(absl::string_view id) const {
  // A rotation may switch the master key between this thread's read of the
  // wrapped key (under the old one) and its copy of the master key (the new
  // one): then the unwrap fails and is tried again with a fresh read, which
  // sees the re-wrapped key, since a rotation writes the table before it
  // switches. A failure with no rotation between the two tries is real.
  std::optional<uint64_t> failed_generation;
  for (;;) {
    // Checked on every read, so a key destroyed by a commit is never used
    // from the cache.
    CL_ASSIGN_OR_RETURN(std::optional<std::string> entry, table_.GetKey(DataKeyEntryKey(id)));
    if (!entry.has_value()) {
      return absl::NotFoundError(
          absl::StrCat("data key ", absl::BytesToHexString(id), " was destroyed"));
    }
    Master master;
    {
      absl::MutexLock lock(&mu_);
      if (auto it = unwrapped_.find(id); it != unwrapped_.end()) return it->second;
      master = master_;
    }
    absl::StatusOr<AeadKey> key = Unwrap(master, id, *entry);
    if (!key.ok()) {
      if (failed_generation == master.generation) return key.status();
      failed_generation = master.generation;
      continue;
    }
    absl::MutexLock lock(&mu_);
    if (unwrapped_.size() >= kMaxCachedKeys) unwrapped_.clear();
    unwrapped_.emplace(std::string(id), *key);
    return key;
  }
}

absl::Status KeyStore::Seal(const Event& event, CommittedPayload* payload,
                            std::vector<KeyWrite>* commit_with) {
  if (!options_.shred_event_type.empty() && event.event_type == options_.shred_event_type) {
    CL_ASSIGN_OR_RETURN(*commit_with, StreamKeyDeletions(event.stream_id));
    return absl::OkStatus();
  }
  if (event.subject_ids.empty()) return absl::OkStatus();
  if (!options_.erase_event_type.empty() && event.event_type == options_.erase_event_type) {
    return absl::OkStatus();
  }
  std::vector<AeadKey> keys;
  std::string key_id;
  for (const std::string& subject : event.subject_ids) {
    CL_ASSIGN_OR_RETURN(DataKey k, KeyFor(subject, event.stream_id));
    if (!key_id.empty()) key_id.push_back(kKeyIdSeparator);
    key_id += absl::BytesToHexString(k.id);
    keys.push_back(std::move(k.key));
  }
  CL_ASSIGN_OR_RETURN(AeadKey openings_key, CachedOpeningsKey(keys, key_id));
  Payload& p = payload->payload;
  CL_ASSIGN_OR_RETURN(
      std::string sealed,
      caseledger::Seal(openings_key, p.sealed_openings, OpeningsAad(key_id, payload->commitment)));
  OPENSSL_cleanse(p.sealed_openings.data(), p.sealed_openings.size());
  p.sealed_openings = std::move(sealed);
  p.key_id = std::move(key_id);
  return absl::OkStatus();
}

absl::StatusOr<std::string> KeyStore::OpenOpenings(absl::string_view key_id,
                                                   absl::string_view sealed_openings,
                                                   const Hash& payload_commitment) const {
  CL_ASSIGN_OR_RETURN(std::vector<std::string> ids, ParsePayloadKeyId(key_id));
  std::vector<AeadKey> keys;
  for (const std::string& id : ids) {
    CL_ASSIGN_OR_RETURN(AeadKey k, KeyById(id));
    keys.push_back(std::move(k));
  }
  CL_ASSIGN_OR_RETURN(AeadKey openings_key, CachedOpeningsKey(keys, std::string(key_id)));
  absl::StatusOr<std::string> openings =
      caseledger::Open(openings_key, sealed_openings, OpeningsAad(key_id, payload_commitment));
  if (!openings.ok()) {
    return absl::DataLossError(absl::StrCat("sealed openings: ", openings.status().message()));
  }
  return openings;
}

absl::StatusOr<AeadKey> KeyStore::CachedOpeningsKey(const std::vector<AeadKey>& data_keys,
                                                    const std::string& payload_key_id) const {
  {
    absl::MutexLock lock(&mu_);
    if (auto it = openings_keys_.find(payload_key_id); it != openings_keys_.end()) {
      return it->second;
    }
  }
  CL_ASSIGN_OR_RETURN(AeadKey key, OpeningsKey(data_keys, payload_key_id));
  absl::MutexLock lock(&mu_);
  if (openings_keys_.size() >= kMaxCachedKeys) openings_keys_.clear();
  openings_keys_.emplace(payload_key_id, key);
  return key;
}

void KeyStore::Forget(absl::string_view stream_id) {
  absl::MutexLock lock(&mu_);
  if (stream_id.empty()) {
    by_subject_.clear();
  } else {
    absl::erase_if(by_subject_, [&](const auto& entry) { return entry.first.second == stream_id; });
  }
  unwrapped_.clear();
  openings_keys_.clear();
}

absl::StatusOr<std::vector<KeyWrite>> KeyStore::StreamKeyDeletions(absl::string_view stream_id) {
  std::vector<KeyWrite> writes;
  std::string prefix = StreamIndexKey(stream_id, "");
  CL_RETURN_IF_ERROR(table_.ScanKeys(prefix, [&](absl::string_view key, absl::string_view id) {
    absl::string_view subject = key.substr(prefix.size());
    if (subject == kSaltPair) return true;  // the stream's blinding salt stays
    writes.push_back({std::string(key), std::nullopt});
    writes.push_back({SubjectIndexKey(subject, stream_id), std::nullopt});
    writes.push_back({DataKeyEntryKey(id), std::nullopt});
    return true;
  }));
  Forget(stream_id);
  return writes;
}

void KeyStore::Committed(const std::vector<KeyWrite>& writes) {
  bool deletes = false;
  for (const KeyWrite& w : writes) deletes |= !w.value.has_value();
  if (deletes) Forget("");
}

absl::StatusOr<size_t> KeyStore::EraseSubject(absl::string_view subject_id) {
  // An id with a control byte could name the reserved salt pairs.
  CL_RETURN_IF_ERROR(CheckText("subject_id", subject_id, kMaxIdBytes));
  size_t destroyed = 0;
  {
    // Held from the scan to the durable delete: KeyFor holds it too while it
    // reads the index, so no seal can pick up (and cache) a key being
    // destroyed, nor create one the scan misses.
    absl::MutexLock lock(&mu_);
    // Before anything is destroyed: from here on the ledger's commit feed
    // stops vouching for plaintext openings sealed earlier.
    erasures_.fetch_add(1, std::memory_order_acq_rel);
    std::vector<KeyWrite> writes;
    std::string prefix = SubjectIndexKey(subject_id, "");
    absl::Status failed;
    CL_RETURN_IF_ERROR(table_.ScanKeys(prefix, [&](absl::string_view key, absl::string_view id) {
      absl::string_view stream = key.substr(prefix.size());
      writes.push_back({std::string(key), std::nullopt});
      writes.push_back({StreamIndexKey(stream, subject_id), std::nullopt});
      writes.push_back({DataKeyEntryKey(id), std::nullopt});
      by_subject_.erase(std::make_pair(std::string(subject_id), std::string(stream)));
      if (stream != kSaltPair) {
        ++destroyed;
        return true;
      }
      // The blinding salt: its tag's way back to the id goes too.
      absl::StatusOr<std::optional<std::string>> entry = table_.GetKey(DataKeyEntryKey(id));
      absl::StatusOr<AeadKey> salt =
          !entry.ok() ? entry.status()
          : !entry->has_value()
              ? absl::DataLossError(absl::StrCat("subject's blinding salt ",
                                                 absl::BytesToHexString(id), " is missing"))
              : Unwrap(master_, id, **entry);
      if (!salt.ok()) {
        failed = salt.status();
        return false;
      }
      writes.push_back(
          {TagIndexKey(BlindKind::kSubject, BlindTag(BlindKind::kSubject, SaltOf(*salt), subject_id)),
           std::nullopt});
      return true;
    }));
    CL_RETURN_IF_ERROR(failed);
    unwrapped_.clear();
    openings_keys_.clear();
    if (!writes.empty()) CL_RETURN_IF_ERROR(table_.WriteKeys(writes, /*purge=*/false));
  }
  // Outside the lock (it flushes and compacts). Purges even when nothing was
  // found: a retried erasure after a crash between the delete and the purge
  // still cleans the files.
  CL_RETURN_IF_ERROR(table_.Purge());
  return destroyed;
}

absl::StatusOr<MasterKeyRotation> KeyStore::RotateMasterKey(const AeadKey& next) {
  MasterKeyRotation done;
  done.new_master_key_id = MasterKeyId(next);
  {
    // Held from the scan to the switch: KeyFor holds it while it looks up or
    // creates a key, so no key is created under the old master key after
    // the scan, and none is unwrapped with it after the switch.
    absl::MutexLock lock(&mu_);
    done.old_master_key_id = master_.id;
    if (next == master_.key) {
      return absl::InvalidArgumentError(absl::StrCat("got the current master key (id ", master_.id,
                                                     ") as the new one, want another key"));
    }
    CL_RETURN_IF_ERROR(table_.UpdateKeys([&]() {
      return RewrapWrites(table_, master_.key, next, "current master key", &done.keys_rewrapped);
    }));
    master_ = Master{next, done.new_master_key_id, master_.generation + 1};
  }
  // Outside the lock (it flushes and compacts), as EraseSubject does.
  absl::Status purged = table_.Purge();
  if (!purged.ok()) {
    return absl::Status(purged.code(),
                        absl::StrCat("rotated to master key id ", done.new_master_key_id,
                                     " (in use now), but the old wrappings are not purged yet: ",
                                     purged.message()));
  }
  return done;
}

absl::StatusOr<size_t> RotateMasterKey(KeyTable* table, const AeadKey& current,
                                       const AeadKey& next) {
  size_t rewrapped = 0;
  // One write: after a crash every key is wrapped under the old master key
  // or every key under the new one. Purged so the old wrappings leave the
  // files.
  CL_RETURN_IF_ERROR(table->UpdateKeys(
      [&]() { return RewrapWrites(*table, current, next, "--old", &rewrapped); }));
  CL_RETURN_IF_ERROR(table->Purge());
  return rewrapped;
}

}  // namespace caseledger
