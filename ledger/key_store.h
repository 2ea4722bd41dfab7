// Per-subject data keys, wrapped by a master key, in the store's key table;
// the PayloadCipher that seals payload openings under them; erasure by key
// destruction (crypto-shredding); master key rotation. The formats are in
// ledger/ENCRYPTION.md, which the golden tests in key_store_test.cc pin.
//
//   auto keys = KeyStore::Open(store->keys(), master, {});
//   options.cipher = keys->get();   // LedgerOptions
#ifndef CASELEDGER_LEDGER_KEY_STORE_H_
#define CASELEDGER_LEDGER_KEY_STORE_H_

#include <cstddef>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "ledger/blinder.h"
#include "ledger/crypto.h"
#include "ledger/hash.h"
#include "ledger/log_store.h"
#include "ledger/payload_cipher.h"
#include "ledger/record.h"

namespace caseledger {

inline constexpr size_t kDataKeyIdSize = 16;
inline constexpr uint8_t kWrappedKeyFormatVersion = 1;
inline constexpr uint8_t kOpeningsAadVersion = 1;

// The master key id: the first 8 bytes of
// SHA-256("caseledger/v1 master key id" || key), as 16 lowercase hex digits.
// Names a master key without revealing it.
std::string MasterKeyId(const AeadKey& master);

// Reads a master key: 64 hex digits (a trailing newline is fine) from the file
// at `path` when it is not empty, else from the environment variable `env`.
// NOT_FOUND when neither is given; INVALID_ARGUMENT naming the source for a
// malformed key; FAILED_PRECONDITION for an unreadable file or one that
// others may read (mode must not grant group or other access).
absl::StatusOr<AeadKey> LoadMasterKey(const std::string& path, const char* env);

// The key that seals the read models' values (services/readmodel/projector.h):
// HKDF-SHA256 with ikm = the master key, empty salt, info =
// "caseledger/v1 projections key". A new master key gives a new one.
absl::StatusOr<AeadKey> ProjectionsKey(const AeadKey& master);

// --- Formats (ENCRYPTION.md), exposed for golden tests and tools. ---

// Key-table keys.
std::string DataKeyEntryKey(absl::string_view key_id);  // 'd' || key_id
std::string SubjectIndexKey(absl::string_view subject_id, absl::string_view stream_id);
std::string StreamIndexKey(absl::string_view stream_id, absl::string_view subject_id);
inline constexpr char kMasterKeyIdKey[] = "m";
// Blinding salts (BLINDING.md "Key store"): the salt of subject S is the data
// key of the pair (S, kSaltPair); the salt of stream C that of (kSaltPair,
// C). Ids hold no control bytes, so no real pair collides with these.
inline constexpr char kSaltPair[] = "\x01";
// 't' || u8 kind || tag -> the id the tag blinds (the server's way back).
std::string TagIndexKey(BlindKind kind, const Hash& tag);

// A data key wrapped under a master key: the value stored under 'd' || key_id.
struct WrappedKey {
  std::string master_key_id;
  std::string subject_id;
  std::string stream_id;
  std::string sealed;  // nonce || AES-256-GCM(master, data key) || tag
};
std::string EncodeWrappedKey(const WrappedKey& w);
absl::StatusOr<WrappedKey> DecodeWrappedKey(absl::string_view bytes);
// u8 1 || "caseledger/v1 data key" || key_id || str16(subject) || str16(stream)
std::string WrapAad(absl::string_view key_id, absl::string_view subject_id,
                    absl::string_view stream_id);

// The key that seals a payload's openings: HKDF-SHA256 with ikm = the data
// keys in key_id order, empty salt, info = "caseledger/v1 openings key " ||
// key_id.
absl::StatusOr<AeadKey> OpeningsKey(const std::vector<AeadKey>& data_keys,
                                    absl::string_view payload_key_id);
// u8 1 || str16(key_id) || payload_commitment
std::string OpeningsAad(absl::string_view payload_key_id, const Hash& payload_commitment);

// What an online master key rotation did (KeyStore::RotateMasterKey).
struct MasterKeyRotation {
  std::string old_master_key_id;
  std::string new_master_key_id;
  size_t keys_rewrapped = 0;
};

struct KeyStoreOptions {
  // Events of this type are stored unsealed (they document the disposal
  // itself) and destroy every data key of their stream (case) in the commit
  // that stores them. Empty: no event type destroys keys.
  std::string shred_event_type;
  // Events of this type record a subject's erasure (EraseSubject is called
  // right after they commit). They are stored unsealed: sealing one would
  // create a fresh data key for the subject being erased. Empty: none.
  std::string erase_event_type;
  // The table is shared with KeyStores of other processes that may destroy
  // keys in it (the nodes of a partitioned ledger, CLUSTER.md "Data keys in
  // a partitioned ledger"): a cached data key or subject salt is used only
  // after the table shows it still exists (one read), so that an erasure on
  // another node is not undone by this node's cache. Stream salts, never
  // destroyed, stay cached.
  bool shared_table = false;
};

// Thread-safe.
class KeyStore : public PayloadCipher, public Blinder {
 public:
  // Borrows `table`, which must outlive the KeyStore. FAILED_PRECONDITION,
  // naming both ids, when the table's keys are wrapped under another master
  // key; a table with no master key yet records this one's id.
  static absl::StatusOr<std::unique_ptr<KeyStore>> Open(KeyTable* table, const AeadKey& master,
                                                        KeyStoreOptions options = {});

  // PayloadCipher. Seal uses one data key per (subject, stream) pair of the
  // event, creating missing ones (a synced key-table write, before the
  // record is queued: an unused key is harmless, a record without its key is
  // not). Events without subjects stay plaintext.
  absl::Status Seal(const Event& event, CommittedPayload* payload,
                    std::vector<KeyWrite>* commit_with) override;
  absl::StatusOr<std::string> OpenOpenings(absl::string_view key_id,
                                           absl::string_view sealed_openings,
                                           const Hash& payload_commitment) const override;
  // Drops every cached key once a disposal's deletions are durable, so that
  // a seal racing with the disposal cannot keep using a destroyed key.
  void Committed(const std::vector<KeyWrite>& writes) override;
  // Counts EraseSubject calls; each bumps it before destroying anything.
  uint64_t erasures() const override { return erasures_.load(std::memory_order_acquire); }

  // Blinder. A salt is a data key of a reserved pair (kSaltPair): wrapped,
  // rotated and purged like one. EraseSubject destroys the subject's salt and
  // its tag index entry; a case's disposal keeps the stream's salt (its
  // records stay readable as erased, and its id stays the case's).
  absl::StatusOr<Hash> SaltFor(BlindKind kind, absl::string_view id) override;
  absl::StatusOr<Hash> FindSalt(BlindKind kind, absl::string_view id) const override;
  absl::StatusOr<Opening> OpenTag(BlindKind kind, const Hash& tag) const override;

  // The writes that destroy every data key of `stream_id`.
  absl::StatusOr<std::vector<KeyWrite>> StreamKeyDeletions(absl::string_view stream_id);
  // Destroys every data key of `subject_id` (in every stream) in one write,
  // then purges them from the data directory's files. Returns how many keys
  // were destroyed (0 for an unknown subject).
  absl::StatusOr<size_t> EraseSubject(absl::string_view subject_id);

  // Rotates the master key while the ledger runs: re-wraps every data key
  // from the current master key to `next` in one atomic key-table write
  // (records are not touched), records `next`'s id, and from then on wraps
  // and unwraps with `next`; then purges the old wrappings from the files.
  // INVALID_ARGUMENT when `next` is the current key; FAILED_PRECONDITION or
  // DATA_LOSS, naming the ids or the key, when the table does not match the
  // current key. On those and any other error before the write, nothing
  // changes and the current key stays in use. An error from the purge after
  // the write is returned too, but the rotation stands (the message says
  // so); the old wrappings leave the files at the next purge.
  //
  // Concurrency: seals and reads of sealed payloads wait while the key
  // table is re-wrapped (one unwrap and one wrap per data key, one synced
  // write), not during the purge; a commit that destroys keys waits for the
  // write (KeyTable::UpdateKeys), so no destroyed key comes back.
  // After a restart the key store must be opened with `next`.
  absl::StatusOr<MasterKeyRotation> RotateMasterKey(const AeadKey& next);

  std::string master_key_id() const;

 private:
  KeyStore(KeyTable* table, const AeadKey& master, KeyStoreOptions options);

  // The master key in use and its id; `generation` counts rotations.
  struct Master {
    AeadKey key;
    std::string id;
    uint64_t generation = 0;
  };

  struct DataKey {
    std::string id;  // kDataKeyIdSize raw bytes
    AeadKey key;
  };
  // The data key of (subject, stream), created when missing.
  // `extra`, when set, gives one more write for the creation's batch.
  absl::StatusOr<DataKey> KeyFor(const std::string& subject_id, const std::string& stream_id,
                                 const std::function<KeyWrite(const AeadKey&)>& extra = nullptr);
  // Whether a cached key of `subject_id` with raw id `id` may be used: always
  // for a table of our own; for a shared one, while it still exists there.
  absl::StatusOr<bool> CachedKeyLive(absl::string_view subject_id, absl::string_view id) const;
  // The data key with this raw id; NOT_FOUND when destroyed.
  absl::StatusOr<AeadKey> KeyById(absl::string_view id) const;
  static absl::StatusOr<AeadKey> Unwrap(const Master& master, absl::string_view id,
                                        absl::string_view entry);
  // The openings key of a payload key_id from its data keys, cached.
  absl::StatusOr<AeadKey> CachedOpeningsKey(const std::vector<AeadKey>& data_keys,
                                            const std::string& payload_key_id) const;
  // Drops cached keys of `stream_id` (all when empty) and every cached
  // openings key: called when keys are destroyed.
  void Forget(absl::string_view stream_id);

  KeyTable& table_;
  const KeyStoreOptions options_;
  std::atomic<uint64_t> erasures_{0};

  mutable absl::Mutex mu_;
  // Switched by RotateMasterKey while it holds mu_, after the re-wrapped keys
  // are durable. KeyFor wraps and unwraps with it under mu_; reads copy it
  // under mu_ (KeyById) and retry when a rotation came between their copy
  // and their read of the wrapped key.
  Master master_ ABSL_GUARDED_BY(mu_);
  // (subject, stream) -> its data key: the append path's cache. Entries of a
  // stream are dropped when its keys are queued for destruction.
  absl::flat_hash_map<std::pair<std::string, std::string>, DataKey> by_subject_
      ABSL_GUARDED_BY(mu_);
  // Raw key id -> unwrapped key: saves the unwrap on reads. A read still
  // checks that the wrapped key exists, so a destroyed key is never used.
  mutable absl::flat_hash_map<std::string, AeadKey> unwrapped_ ABSL_GUARDED_BY(mu_);
  // Payload key_id -> openings key: the HKDF is most of sealing's cost. Only
  // reached after the data keys it derives from were found (seal: the
  // append cache; open: the table), so a destroyed key's entry is never used;
  // cleared on every destruction so it does not linger in memory either.
  mutable absl::flat_hash_map<std::string, AeadKey> openings_keys_ ABSL_GUARDED_BY(mu_);
};

// Re-wraps every data key in `table` from `current` to `next` in one atomic
// write (records are not touched), records `next`'s id, then purges the old
// wrappings from the files. Returns how many keys were re-wrapped.
// FAILED_PRECONDITION naming the ids when `current` is not the table's master
// key; DATA_LOSS naming the key when an entry does not unwrap. On any error
// nothing changes. For a stopped ledger (caseledger_keys rotate-master-key):
// a running one rotates with KeyStore::RotateMasterKey, since its KeyStore
// would go on wrapping new keys with `current`.
absl::StatusOr<size_t> RotateMasterKey(KeyTable* table, const AeadKey& current,
                                       const AeadKey& next);

}  // namespace caseledger

#endif  // CASELEDGER_LEDGER_KEY_STORE_H_
