// Payload encryption end to end on a real data directory: the golden vectors
// of ENCRYPTION.md, sealing on append and opening on read, tampering, the
// wrong master key, crypto-shredding proven on the directory's raw bytes,
// and master key rotation.
#include "ledger/key_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <thread>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "ledger/crypto.h"
#include "ledger/internal/status_macros.h"
#include "ledger/ledger.h"
#include "ledger/rocks_store.h"
#include "ledger/store_verifier.h"
#include "tests/test_util.h"

namespace caseledger {
namespace {

using ::caseledger::testing::RawGet;
using ::caseledger::testing::RawPut;
using ::caseledger::testing::SeqKey;

std::string Hex(absl::string_view b) { return absl::BytesToHexString(b); }
std::string Bytes(absl::string_view hex) { return absl::HexStringToBytes(hex); }
std::string Range(int from, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s.push_back(static_cast<char>(from + i));
  return s;
}
AeadKey KeyOf(const std::string& bytes) {
  auto k = AeadKey::FromBytes(bytes);
  EXPECT_TRUE(k.ok());
  return k.ok() ? *k : AeadKey();
}
GcmNonce NonceOf(const std::string& bytes) {
  GcmNonce n;
  std::copy(bytes.begin(), bytes.end(), n.begin());
  return n;
}

// --- Golden vectors: tests/testdata/encryption_golden.py derives these from
// ENCRYPTION.md with Python's `cryptography` package. ---

const std::string kMaster = Range(0x00, 32);
const std::string kK1 = Range(0x20, 32);
const std::string kK2 = Range(0x40, 32);
const std::string kId1 = Range(0xa0, 16);
const std::string kId2 = Range(0xb0, 16);
const std::string kWrapNonce = Range(0x10, 12);
const std::string kOpeningsNonce = Range(0x20, 12);

constexpr char kGoldenMasterKeyId[] = "4eb8f8345d4e9985";
constexpr char kGoldenWrapAad[] =
    "01636173656c65646765722f76312064617461206b6579a0a1a2a3a4a5a6a7a8a9aaabacadaeaf0008636c69656e"
    "742d310006636173652d31";
constexpr char kGoldenWrappedEntry[] =
    "010010346562386638333435643465393938350008636c69656e742d310006636173652d31101112131415161718"
    "191a1b5ddfba356dec1c94e25c22362354477ce7617c3d2ff76186dfc0d85c62696ae42b1a6eb26566fe01ef6b84"
    "97b7b5c111";
constexpr char kGoldenCommitment[] =
    "94e711ba0430e1270e76485827c34326f244305cf1f1eb69d4ad97032adc3a4a";
struct OpeningsVector {
  const char* key_id;
  const char* openings_key;
  const char* aad;
  const char* sealed;
};
const OpeningsVector kOneKey = {
    "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf",
    "b441bfd34549e6a63274cbcda6e3373ab8b7b1089050c52ea6ae3baabb8d6aa7",
    "010020613061316132613361346135613661376138613961616162616361646165616694e711ba0430e1270e7648"
    "5827c34326f244305cf1f1eb69d4ad97032adc3a4a",
    "202122232425262728292a2b61aa525cd20dc696323df50e68c63955e245cd0a96a2d4f15437afefd46e7a279cad"
    "69475b37440f91df508b325d577324c095269e2ff145bb36e5b7ce07288b"};
const OpeningsVector kTwoKeys = {
    "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf+b0b1b2b3b4b5b6b7b8b9babbbcbdbebf",
    "294a78e29b1bb7c4d8575d2a3441de4c24e62c1789508738db4a7e7b4882de03",
    "01004161306131613261336134613561366137613861396161616261636164616561662b62306231623262336234"
    "6235623662376238623962616262626362646265626694e711ba0430e1270e76485827c34326f244305cf1f1eb69"
    "d4ad97032adc3a4a",
    "202122232425262728292a2be1e3e24819d9d8a32aebbef9ff9ef745f77b47808b641bce58a673e7d76f2c0fe8d2"
    "65d4e82f0532aa3c46f2ac1c2adbf97577e68044fa434b7994581d247708"};

CommittedPayload GoldenPayload() {
  return CommitFields({{"text", "hello MARKER", 0}}, [] {
    Hash h;
    h.fill(0x55);
    return h;
  });
}

TEST(KeyStoreGoldenTest, ProjectionsKeyMatchesEncryptionMd) {
  auto key = ProjectionsKey(KeyOf(kMaster));
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(Hex(key->bytes()),
            "4f37aa28fed8fca475813456b9bf872bc2996aa35b4c1a42966b03d80c80d824");
}

TEST(KeyStoreGoldenTest, FormatsMatchEncryptionMd) {
  AeadKey master = KeyOf(kMaster);
  EXPECT_EQ(MasterKeyId(master), kGoldenMasterKeyId);
  std::string aad = WrapAad(kId1, "client-1", "case-1");
  EXPECT_EQ(Hex(aad), kGoldenWrapAad);
  auto body = SealWithNonce(master, NonceOf(kWrapNonce), kK1, aad);
  ASSERT_TRUE(body.ok());
  WrappedKey w{kGoldenMasterKeyId, "client-1", "case-1", kWrapNonce + *body};
  EXPECT_EQ(Hex(EncodeWrappedKey(w)), kGoldenWrappedEntry);
  auto decoded = DecodeWrappedKey(Bytes(kGoldenWrappedEntry));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->subject_id, "client-1");
  EXPECT_EQ(decoded->stream_id, "case-1");

  CommittedPayload p = GoldenPayload();
  EXPECT_EQ(ToHex(p.commitment), kGoldenCommitment);
  for (const auto& [v, keys] : {std::make_pair(kOneKey, std::vector<std::string>{kK1}),
                                std::make_pair(kTwoKeys, std::vector<std::string>{kK1, kK2})}) {
    SCOPED_TRACE(v.key_id);
    std::vector<AeadKey> data_keys;
    for (const std::string& k : keys) data_keys.push_back(KeyOf(k));
    auto okey = OpeningsKey(data_keys, v.key_id);
    ASSERT_TRUE(okey.ok());
    EXPECT_EQ(Hex(okey->bytes()), v.openings_key);
    EXPECT_EQ(Hex(OpeningsAad(v.key_id, p.commitment)), v.aad);
    auto sealed = SealWithNonce(*okey, NonceOf(kOpeningsNonce), p.payload.sealed_openings,
                                OpeningsAad(v.key_id, p.commitment));
    ASSERT_TRUE(sealed.ok());
    EXPECT_EQ(Hex(kOpeningsNonce + *sealed), v.sealed);
  }
}

// The key store reads golden bytes placed in a real key table.
TEST(KeyStoreGoldenTest, KeyStoreOpensGoldenBytes) {
  std::string dir = testing::NewTempDir("golden");
  auto store = OpenRocksStore({dir});
  ASSERT_TRUE(store.ok()) << store.status();
  KeyTable* table = (*store)->keys();
  ASSERT_NE(table, nullptr);
  AeadKey master = KeyOf(kMaster);
  std::string aad2 = WrapAad(kId2, "client-2", "case-1");
  auto body2 = SealWithNonce(master, NonceOf(kWrapNonce), kK2, aad2);
  ASSERT_TRUE(body2.ok());
  ASSERT_TRUE(
      table
          ->WriteKeys({{kMasterKeyIdKey, kGoldenMasterKeyId},
                       {DataKeyEntryKey(kId1), Bytes(kGoldenWrappedEntry)},
                       {DataKeyEntryKey(kId2), EncodeWrappedKey({kGoldenMasterKeyId, "client-2",
                                                                 "case-1", kWrapNonce + *body2})}})
          .ok());
  auto keys = KeyStore::Open(table, master);
  ASSERT_TRUE(keys.ok()) << keys.status();
  CommittedPayload p = GoldenPayload();
  for (const OpeningsVector& v : {kOneKey, kTwoKeys}) {
    auto openings = (*keys)->OpenOpenings(v.key_id, Bytes(v.sealed), p.commitment);
    ASSERT_TRUE(openings.ok()) << openings.status();
    EXPECT_EQ(*openings, p.payload.sealed_openings);
  }
  // Bound to its record: the same bytes under another commitment fail.
  Hash other = p.commitment;
  other[0] ^= 1;
  EXPECT_EQ((*keys)->OpenOpenings(kOneKey.key_id, Bytes(kOneKey.sealed), other).status().code(),
            absl::StatusCode::kDataLoss);
}

TEST(LoadMasterKeyTest, FileOrEnvironment) {
  const std::string hex = Hex(kMaster);
  std::string path = testing::NewTempDir("master-key") + "/master.key";
  std::ofstream(path) << hex << "\n";
  ASSERT_EQ(chmod(path.c_str(), 0600), 0);
  auto from_file = LoadMasterKey(path, nullptr);
  ASSERT_TRUE(from_file.ok()) << from_file.status();
  EXPECT_EQ(MasterKeyId(*from_file), kGoldenMasterKeyId);

  ASSERT_EQ(chmod(path.c_str(), 0640), 0);
  auto readable = LoadMasterKey(path, nullptr);
  EXPECT_EQ(readable.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(readable.status().message(), absl::StrCat("master key file ", path,
                                                      ": mode 640 lets others read it; want 600 or "
                                                      "400"));

  setenv("CASELEDGER_TEST_MASTER_KEY", hex.c_str(), 1);
  auto from_env = LoadMasterKey("", "CASELEDGER_TEST_MASTER_KEY");
  ASSERT_TRUE(from_env.ok()) << from_env.status();
  EXPECT_EQ(*from_env, *from_file);
  setenv("CASELEDGER_TEST_MASTER_KEY", "not a key", 1);
  auto bad = LoadMasterKey("", "CASELEDGER_TEST_MASTER_KEY");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(),
            "$CASELEDGER_TEST_MASTER_KEY: key: got 9 characters, want 64 hex digits");
  unsetenv("CASELEDGER_TEST_MASTER_KEY");
  EXPECT_EQ(LoadMasterKey("", "CASELEDGER_TEST_MASTER_KEY").status().code(),
            absl::StatusCode::kNotFound);
}

// --- The ledger with encryption on a data directory. ---

using testing::FilesContaining;

// How many files under `dir` end with `suffix` (".log" is a WAL, ".sst" a table).
size_t FilesEndingWith(const std::string& dir, const std::string& suffix) {
  size_t n = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    std::string name = entry.path().filename().string();
    n += entry.is_regular_file() && name.size() >= suffix.size() &&
         name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  }
  return n;
}

size_t FileCount(const std::string& dir) {
  size_t n = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    n += entry.is_regular_file();
  }
  return n;
}

Event Entry(const std::string& id, const std::string& stream, std::vector<std::string> subjects,
            const std::string& text) {
  Event e;
  e.event_id = id;
  e.stream_id = stream;
  e.producer = "test";
  e.event_type = "record_entry_written";
  e.occurred_at_micros = 1767225600000000;
  e.subject_ids = std::move(subjects);
  e.fields = {{"entry_id", id, 0}, {"text", text, 0}};
  return e;
}

Event Disposal(const std::string& id, const std::string& stream) {
  Event e = Entry(id, stream, {"client-1"}, "");
  e.event_type = "records_disposed";
  e.fields = {{"method", "crypto-shred", 0}, {"authority", "retention-7y", 0}};
  return e;
}

// The text field's value of a record read through the ledger.
absl::StatusOr<std::string> TextOf(const RecordView& view) {
  CL_ASSIGN_OR_RETURN(Payload p, DecodePayload(view.payload));
  std::string openings = p.key_id.empty() ? p.sealed_openings : view.openings.value_or("");
  CL_ASSIGN_OR_RETURN(std::vector<FieldOpening> o, DecodeOpenings(openings, p.fields.size()));
  CL_RETURN_IF_ERROR(CheckOpenings(p, o));
  return o.back().value;
}

// A key table that runs a hook once, right after the first scan of the
// wrapped keys ('d' entries) returns (inside a rotation, between its reads
// and its write), or right after the first read of one wrapped key returns
// (inside a read, before it copies the master key).
class HookedKeyTable : public KeyTable {
 public:
  explicit HookedKeyTable(KeyTable* inner) : inner_(*inner) {}
  void AfterDataKeyScan(std::function<void()> hook) { scan_hook_ = std::move(hook); }
  void AfterDataKeyGet(std::function<void()> hook) { get_hook_ = std::move(hook); }

  absl::StatusOr<std::optional<std::string>> GetKey(absl::string_view key) const override {
    auto got = inner_.GetKey(key);
    if (absl::StartsWith(key, "d") && get_hook_) std::exchange(get_hook_, nullptr)();
    return got;
  }
  absl::Status ScanKeys(
      absl::string_view prefix,
      const std::function<bool(absl::string_view, absl::string_view)>& fn) const override {
    absl::Status s = inner_.ScanKeys(prefix, fn);
    if (prefix == "d" && scan_hook_) std::exchange(scan_hook_, nullptr)();
    return s;
  }
  absl::Status WriteKeys(const std::vector<KeyWrite>& writes, bool purge) override {
    return inner_.WriteKeys(writes, purge);
  }
  absl::Status UpdateKeys(
      const std::function<absl::StatusOr<std::vector<KeyWrite>>()>& plan) override {
    return inner_.UpdateKeys(plan);
  }
  absl::Status Purge() override { return inner_.Purge(); }

 private:
  KeyTable& inner_;
  mutable std::function<void()> scan_hook_;
  mutable std::function<void()> get_hook_;
};

class EncryptedLedgerTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::NewTempDir("crypto"); }

  // Opens the ledger with a key store under `master` (or plaintext if null),
  // on a HookedKeyTable (hooked_) when `hooked`.
  // With `blinded`, the key store also blinds identifiers (record format 2).
  absl::Status Open(const AeadKey* master, bool hooked = false, bool blinded = false) {
    RocksStoreOptions so;
    so.path = dir_;
    CL_ASSIGN_OR_RETURN(std::unique_ptr<LogStore> store, OpenRocksStore(so));
    LedgerOptions options;
    options.signer = &signer_;
    options.origin = testing::kTestOrigin;
    if (master != nullptr) {
      KeyTable* table = store->keys();
      if (hooked) {
        hooked_ = std::make_unique<HookedKeyTable>(table);
        table = hooked_.get();
      }
      CL_ASSIGN_OR_RETURN(keys_, KeyStore::Open(table, *master, 
                                                  {"records_disposed", "subject_erased"}));
      options.cipher = keys_.get();
      if (blinded) options.blinder = keys_.get();
    }
    CL_ASSIGN_OR_RETURN(ledger_, Ledger::Open(options, std::move(store)));
    return absl::OkStatus();
  }
  void Close() {
    ledger_.reset();
    keys_.reset();
    hooked_.reset();
  }
  void TearDown() override { Close(); }

  uint64_t Append(Event e) {
    auto r = ledger_->Append({std::move(e)});
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->seq : ~0ull;
  }

  StoreVerifyReport Verify() {
    RocksStoreOptions o;
    o.path = dir_;
    o.read_only = true;
    auto store = OpenRocksStore(o);
    EXPECT_TRUE(store.ok()) << store.status();
    if (!store.ok()) return {};
    StoreVerifyOptions options;
    options.note_verifier = &verifier_;
    options.origin = testing::kTestOrigin;
    return VerifyStore(**store, options);
  }

  // The wrapped-key entry (value under 'd' || id) of every data key of `stream`.
  std::vector<WrappedKey> KeysOfStream(const std::string& stream) {
    std::vector<WrappedKey> out;
    KeyTable* table = const_cast<LogStore&>(ledger_->store()).keys();
    EXPECT_TRUE(table
                    ->ScanKeys(StreamIndexKey(stream, ""),
                               [&](absl::string_view, absl::string_view id) {
                                 auto entry = table->GetKey(DataKeyEntryKey(id));
                                 EXPECT_TRUE(entry.ok() && entry->has_value());
                                 auto w = DecodeWrappedKey(**entry);
                                 EXPECT_TRUE(w.ok());
                                 out.push_back(*w);
                                 return true;
                               })
                    .ok());
    return out;
  }

  KeyTable* Table() { return const_cast<LogStore&>(ledger_->store()).keys(); }

  // Every key-table entry, key -> value.
  std::map<std::string, std::string> TableContents() {
    auto contents = testing::KeyTableContents(*Table());
    EXPECT_TRUE(contents.ok()) << contents.status();
    return contents.value_or(std::map<std::string, std::string>());
  }

  // The decoded wrapped entry of every data key.
  std::vector<WrappedKey> AllWrappedKeys() {
    std::vector<WrappedKey> out;
    for (const auto& [k, v] : TableContents()) {
      if (k[0] != 'd') continue;
      auto w = DecodeWrappedKey(v);
      EXPECT_TRUE(w.ok()) << w.status();
      if (w.ok()) out.push_back(*w);
    }
    return out;
  }

  // Expects every record below `size` to read as "text-<its event id>"
  // (the events of RotationEntry).
  void ExpectAllReadable(uint64_t size) {
    for (uint64_t seq = 0; seq < size; ++seq) {
      auto view = ledger_->Read(seq);
      ASSERT_TRUE(view.ok()) << seq << ": " << view.status();
      EXPECT_EQ(TextOf(*view).value_or("?"), absl::StrCat("text-", view->record.event_id)) << seq;
    }
  }

  std::string dir_;
  NoteSigner signer_ = testing::TestNoteSigner();
  NoteVerifier verifier_ = testing::TestNoteVerifier();
  std::unique_ptr<HookedKeyTable> hooked_;
  std::unique_ptr<KeyStore> keys_;
  std::unique_ptr<Ledger> ledger_;
  AeadKey master_ = KeyOf(kMaster);
  AeadKey other_master_ = KeyOf(Range(0x60, 32));
};

TEST_F(EncryptedLedgerTest, RoundTripAndNoPlaintextOnDisk) {
  ASSERT_TRUE(Open(&master_).ok());
  for (int i = 0; i < 20; ++i) {
    Append(Entry(absl::StrCat("e", i), absl::StrCat("case-", i % 2), {"client-1"},
                 absl::StrCat("PLAINTEXT-MARKER-", i)));
  }
  for (uint64_t seq = 0; seq < 20; ++seq) {
    auto view = ledger_->Read(seq);
    ASSERT_TRUE(view.ok()) << view.status();
    EXPECT_FALSE(view->erased);
    auto p = DecodePayload(view->payload);
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(p->key_id.size(), 32u);
    EXPECT_EQ(view->payload.find("PLAINTEXT-MARKER"), std::string::npos);
    EXPECT_EQ(TextOf(*view).value_or("?"), absl::StrCat("PLAINTEXT-MARKER-", seq));
  }
  ASSERT_TRUE(ledger_->Checkpoint().ok());
  Close();
  EXPECT_EQ(Verify().status, absl::OkStatus());
  EXPECT_GT(FileCount(dir_), 3u);
  EXPECT_EQ(FilesContaining(dir_, "PLAINTEXT-MARKER"), std::vector<std::string>{});
}

// The control for every raw-bytes check below: without a master key the
// same search finds the plaintext, so the search can fail.
TEST_F(EncryptedLedgerTest, PlaintextModeLeavesPlaintextOnDisk) {
  ASSERT_TRUE(Open(nullptr).ok());
  Append(Entry("e0", "case-0", {"client-1"}, "PLAINTEXT-MARKER-0"));
  Close();
  EXPECT_FALSE(FilesContaining(dir_, "PLAINTEXT-MARKER-0").empty());
}

TEST_F(EncryptedLedgerTest, AlteredCiphertextFailsTheRead) {
  ASSERT_TRUE(Open(&master_).ok());
  Append(Entry("e0", "case-0", {"client-1"}, "secret"));
  Close();
  auto payload = RawGet(dir_, "payloads", SeqKey(0));
  ASSERT_TRUE(payload.ok());
  std::string bad = *payload;
  bad.back() ^= 0x01;  // the last byte of the GCM tag
  ASSERT_TRUE(RawPut(dir_, "payloads", SeqKey(0), bad).ok());
  ASSERT_TRUE(Open(&master_).ok());
  auto view = ledger_->Read(0);
  EXPECT_EQ(view.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(view.status().message(),
            "record 0: sealed openings: AES-256-GCM tag does not verify: wrong key, wrong "
            "associated data, or altered bytes");
}

TEST_F(EncryptedLedgerTest, WrongMasterKeyIsRefused) {
  ASSERT_TRUE(Open(&master_).ok());
  Append(Entry("e0", "case-0", {"client-1"}, "secret"));
  Close();
  absl::Status s = Open(&other_master_);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.message(),
            absl::StrCat("master key: got key id ", MasterKeyId(other_master_),
                         ", but the data keys are wrapped under key id ", kGoldenMasterKeyId,
                         " (wrong key file, or a rotation not applied?)"));
}

TEST_F(EncryptedLedgerTest, DisposalShredsTheCaseOnRawBytesAndTheLedgerStillVerifies) {
  ASSERT_TRUE(Open(&master_).ok());
  for (int i = 0; i < 10; ++i) {
    Append(Entry(absl::StrCat("a", i), "case-A", {"client-1"}, absl::StrCat("ERASE-ME-", i)));
    Append(Entry(absl::StrCat("b", i), "case-B", {"client-1"}, absl::StrCat("KEEP-ME-", i)));
  }
  std::vector<WrappedKey> doomed = KeysOfStream("case-A");
  ASSERT_EQ(doomed.size(), 1u);
  // The unwrapped data key, to search for it too (it must never be on disk).
  std::string aad = "";
  {
    KeyTable* table = const_cast<LogStore&>(ledger_->store()).keys();
    std::string id;
    ASSERT_TRUE(table
                    ->ScanKeys(StreamIndexKey("case-A", ""),
                               [&](absl::string_view, absl::string_view v) {
                                 id = std::string(v);
                                 return false;
                               })
                    .ok());
    aad = WrapAad(id, "client-1", "case-A");
  }
  auto data_key = caseledger::Open(master_, doomed[0].sealed, aad);
  ASSERT_TRUE(data_key.ok()) << data_key.status();
  // Control: before the disposal the wrapped key is in the files (the WAL).
  ledger_.reset();
  keys_.reset();
  EXPECT_FALSE(FilesContaining(dir_, doomed[0].sealed).empty());
  ASSERT_TRUE(Open(&master_).ok());

  uint64_t disposed_seq = Append(Disposal("dispose-A", "case-A"));
  for (uint64_t seq = 0; seq < 20; ++seq) {
    auto view = ledger_->Read(seq);
    ASSERT_TRUE(view.ok()) << view.status();
    bool in_a = view->record.stream_id == "case-A";
    EXPECT_EQ(view->erased, in_a) << seq;
    EXPECT_EQ(view->openings.has_value(), !in_a) << seq;
    if (!in_a) EXPECT_EQ(TextOf(*view).value_or("?"), absl::StrCat("KEEP-ME-", seq / 2));
  }
  // The disposal itself stays readable: it documents what was done.
  auto disposal = ledger_->Read(disposed_seq);
  ASSERT_TRUE(disposal.ok());
  EXPECT_EQ(DecodePayload(disposal->payload)->key_id, "");
  // A later event of the case gets a new key and is readable.
  uint64_t later = Append(Entry("a-late", "case-A", {"client-1"}, "after disposal"));
  EXPECT_EQ(TextOf(*ledger_->Read(later)).value_or("?"), "after disposal");
  ASSERT_TRUE(ledger_->Checkpoint().ok());
  Close();

  // Every file is searched: WAL, SST, MANIFEST, OPTIONS, LOG.
  EXPECT_GE(FilesEndingWith(dir_, ".log"), 1u);
  EXPECT_GE(FilesEndingWith(dir_, ".sst"), 1u);
  EXPECT_EQ(FilesContaining(dir_, doomed[0].sealed), std::vector<std::string>{});
  EXPECT_EQ(FilesContaining(dir_, *data_key), std::vector<std::string>{});
  EXPECT_EQ(FilesContaining(dir_, "ERASE-ME-"), std::vector<std::string>{});
  StoreVerifyReport report = Verify();
  EXPECT_EQ(report.status, absl::OkStatus());
  EXPECT_EQ(report.records_checked, 22u);

  // Restarting (WAL replay included) does not bring the key back.
  ASSERT_TRUE(Open(&master_).ok());
  EXPECT_TRUE(ledger_->Read(0)->erased);
  EXPECT_FALSE(ledger_->Read(1)->erased);
}

TEST_F(EncryptedLedgerTest, ErasingOneSubjectShredsEveryRecordNamingIt) {
  ASSERT_TRUE(Open(&master_).ok());
  uint64_t both = Append(Entry("c0", "case-C", {"client-1", "client-2"}, "about both"));
  uint64_t two = Append(Entry("c1", "case-C", {"client-2"}, "about client-2"));
  uint64_t one_elsewhere = Append(Entry("d0", "case-D", {"client-1"}, "client-1 elsewhere"));
  auto p = DecodePayload(ledger_->Read(both)->payload);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->key_id.size(), 65u);  // two key ids joined by '+'
  EXPECT_EQ(TextOf(*ledger_->Read(both)).value_or("?"), "about both");

  auto erased = keys_->EraseSubject("client-1");
  ASSERT_TRUE(erased.ok()) << erased.status();
  EXPECT_EQ(*erased, 2u);  // its keys in case-C and case-D
  EXPECT_TRUE(ledger_->Read(both)->erased);
  EXPECT_TRUE(ledger_->Read(one_elsewhere)->erased);
  EXPECT_EQ(TextOf(*ledger_->Read(two)).value_or("?"), "about client-2");
  EXPECT_EQ(*keys_->EraseSubject("client-1"), 0u);
  Close();
  EXPECT_EQ(Verify().status, absl::OkStatus());
}

// Record format 2 (FORMAT.md, BLINDING.md): no identifier on disk in a
// leaf, reads open them, the subject index is keyed by tags, and erasing a
// subject destroys its salt so that nothing left in the data directory names
// it while every proof still verifies.
TEST_F(EncryptedLedgerTest, BlindedRecordsHoldNoIdsAndErasureUnlinksTheSubject) {
  ASSERT_TRUE(Open(&master_, false, /*blinded=*/true).ok());
  uint64_t both = Append(Entry("evt-c0", "case-C", {"client-1", "client-2"}, "about both"));
  uint64_t two = Append(Entry("evt-c1", "case-C", {"client-2"}, "about client-2"));
  uint64_t one = Append(Entry("evt-d0", "case-D", {"client-1"}, "client-1 elsewhere"));
  ASSERT_TRUE(ledger_->Checkpoint().ok());
  for (uint64_t seq : {both, two, one}) {
    auto view = ledger_->Read(seq);
    ASSERT_TRUE(view.ok()) << view.status();
    EXPECT_EQ(view->leaf[0], kRecordFormatBlinded);
    for (const char* id : {"case-", "client-", "evt-", "test"}) {
      EXPECT_FALSE(absl::StrContains(view->leaf, id)) << seq << " " << id;
    }
  }
  auto read = ledger_->Read(both);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->record.stream_id, "case-C");
  EXPECT_EQ(read->record.event_id, "evt-c0");
  EXPECT_EQ(read->record.producer, "test");
  EXPECT_EQ(read->record.subject_ids, (std::vector<std::string>{"client-1", "client-2"}));
  EXPECT_EQ(TextOf(*read).value_or("?"), "about both");
  // A retry is still recognised by its event id.
  auto retry = ledger_->Append({Entry("evt-c0", "case-C", {"client-1", "client-2"}, "x")});
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_TRUE(retry->duplicate);
  EXPECT_EQ(retry->seq, both);

  auto h1 = ledger_->History("client-1");
  ASSERT_TRUE(h1.ok()) << h1.status();
  EXPECT_EQ(h1->seqs, (std::vector<uint64_t>{both, one}));
  ASSERT_TRUE(h1->blinding_salt.has_value());
  EXPECT_EQ(h1->subject_key, BlindTag(BlindKind::kSubject, *h1->blinding_salt, "client-1"));
  EXPECT_NE(h1->subject_key, SubjectKey("client-1"));
  const Hash tag1 = h1->subject_key;
  // Control for the search after the erasure: the key table names client-1.
  ledger_.reset();
  keys_.reset();
  EXPECT_FALSE(FilesContaining(dir_, "client-1").empty());
  ASSERT_TRUE(Open(&master_, false, true).ok());

  auto erased = keys_->EraseSubject("client-1");
  ASSERT_TRUE(erased.ok()) << erased.status();
  EXPECT_EQ(*erased, 2u);  // its data keys in case-C and case-D; the salt is not counted
  read = ledger_->Read(both);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_TRUE(read->erased);
  EXPECT_EQ(read->record.stream_id, "case-C");
  EXPECT_EQ(read->record.event_id, "evt-c0");
  EXPECT_EQ(read->record.subject_ids,
            (std::vector<std::string>{UnlinkedSubjectId(tag1), "client-2"}));
  EXPECT_EQ(TextOf(*ledger_->Read(two)).value_or("?"), "about client-2");
  EXPECT_EQ(keys_->FindSalt(BlindKind::kSubject, "client-1").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(keys_->OpenTag(BlindKind::kSubject, tag1).status().code(),
            absl::StatusCode::kNotFound);
  Append(Entry("evt-c2", "case-C", {"client-2"}, "later"));
  ASSERT_TRUE(ledger_->Checkpoint().ok());
  auto gone = ledger_->History("client-1");
  ASSERT_TRUE(gone.ok()) << gone.status();
  EXPECT_EQ(gone->state.count, 0u);
  EXPECT_FALSE(gone->blinding_salt.has_value());
  EXPECT_EQ(ledger_->History("client-2")->seqs.size(), 3u);
  Close();
  // The proofs (chain, tree, subject map) all still verify.
  EXPECT_EQ(Verify().status, absl::OkStatus());

  // After a restart the tag stays unlinkable, and nothing in the data
  // directory names the erased client any more (RocksDB rewrites its
  // MANIFEST, which named the purged key-table files' boundary keys, at open).
  ASSERT_TRUE(Open(&master_, false, true).ok());
  EXPECT_EQ(ledger_->Read(one)->record.subject_ids,
            std::vector<std::string>{UnlinkedSubjectId(tag1)});
  Close();
  EXPECT_EQ(FilesContaining(dir_, "client-1"), std::vector<std::string>{});
  EXPECT_FALSE(FilesContaining(dir_, "client-2").empty());
  ASSERT_TRUE(Open(&master_, false, true).ok());
  // A later event for the same id gets a fresh salt: a new, unlinked pseudonym.
  uint64_t again = Append(Entry("evt-d1", "case-D", {"client-1"}, "new"));
  EXPECT_NE(DecodeRecord(ledger_->Read(again)->leaf)->subject_tags[0], tag1);
}

TEST_F(EncryptedLedgerTest, ADataDirectoryKeepsOneRecordFormat) {
  ASSERT_TRUE(Open(&master_).ok());
  Append(Entry("e0", "case-0", {"client-1"}, "format 1"));
  Close();
  absl::Status s = Open(&master_, false, /*blinded=*/true);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(
      s.message(), "data directory holds record format 1 (identifiers in clear); this ledger "
                   "writes format 2"))
      << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "--record_format=1")) << s;
  // Nothing changed: the format-1 ledger opens and reads as before.
  ASSERT_TRUE(Open(&master_).ok());
  EXPECT_EQ(ledger_->Read(0)->record.stream_id, "case-0");
}

TEST_F(EncryptedLedgerTest, BlindingSaltsSurviveRotationAndDisposal) {
  ASSERT_TRUE(Open(&master_, false, true).ok());
  Append(Entry("e0", "case-A", {"client-1"}, "one"));
  auto stream_salt = keys_->FindSalt(BlindKind::kStream, "case-A");
  ASSERT_TRUE(stream_salt.ok()) << stream_salt.status();
  auto rotated = keys_->RotateMasterKey(other_master_);
  ASSERT_TRUE(rotated.ok()) << rotated.status();
  EXPECT_EQ(*keys_->FindSalt(BlindKind::kStream, "case-A"), *stream_salt);
  EXPECT_EQ(ledger_->Read(0)->record.subject_ids, std::vector<std::string>{"client-1"});
  // A disposal shreds the case's data keys but keeps its stream salt: its
  // records still read as the case's, with their content erased.
  Append(Disposal("dispose-A", "case-A"));
  EXPECT_EQ(*keys_->FindSalt(BlindKind::kStream, "case-A"), *stream_salt);
  auto view = ledger_->Read(0);
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_TRUE(view->erased);
  EXPECT_EQ(view->record.stream_id, "case-A");
  EXPECT_EQ(view->record.subject_ids, std::vector<std::string>{"client-1"});
}

TEST_F(EncryptedLedgerTest, TheErasureEventIsStoredUnsealedAndCreatesNoKey) {
  ASSERT_TRUE(Open(&master_).ok());
  Event erasure = Entry("erase-1", "@keys", {"client-1"}, "");
  erasure.event_type = "subject_erased";
  erasure.fields = {{"erased_by", "admin-1", 0}, {"authority", "gdpr-17-req-9", 0}};
  uint64_t seq = Append(erasure);
  auto view = ledger_->Read(seq);
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_EQ(DecodePayload(view->payload)->key_id, "");
  EXPECT_FALSE(view->erased);
  // Sealing it would have made a key for (client-1, @keys).
  EXPECT_EQ(KeysOfStream("@keys").size(), 0u);
  // The same event under another type is sealed: the control.
  Event other = erasure;
  other.event_id = "erase-2";
  other.event_type = "record_accessed";
  EXPECT_NE(DecodePayload(ledger_->Read(Append(other))->payload)->key_id, "");
  EXPECT_EQ(KeysOfStream("@keys").size(), 1u);
}

TEST_F(EncryptedLedgerTest, RotationRewrapsKeysAndLeavesRecordsAlone) {
  ASSERT_TRUE(Open(&master_).ok());
  for (int i = 0; i < 12; ++i) {
    Append(Entry(absl::StrCat("e", i), absl::StrCat("case-", i % 4), {"client-1"},
                 absl::StrCat("text-", i)));
  }
  Hash root = ledger_->Root();
  std::vector<WrappedKey> before = KeysOfStream("case-0");
  ASSERT_EQ(before.size(), 1u);
  Close();

  {
    auto store = OpenRocksStore({dir_});
    ASSERT_TRUE(store.ok());
    // The wrong current key changes nothing.
    auto wrong = RotateMasterKey((*store)->keys(), other_master_, master_);
    EXPECT_EQ(wrong.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_EQ(wrong.status().message(),
              absl::StrCat("--old: got master key id ", MasterKeyId(other_master_),
                           ", but the data keys are wrapped under key id ", kGoldenMasterKeyId));
    auto n = RotateMasterKey((*store)->keys(), master_, other_master_);
    ASSERT_TRUE(n.ok()) << n.status();
    EXPECT_EQ(*n, 4u);
  }
  // The old master key no longer opens the store, nor any wrapped key.
  EXPECT_EQ(Open(&master_).code(), absl::StatusCode::kFailedPrecondition);
  Close();
  ASSERT_TRUE(Open(&other_master_).ok());
  EXPECT_EQ(ledger_->Root(), root);
  for (uint64_t seq = 0; seq < 12; ++seq) {
    EXPECT_EQ(TextOf(*ledger_->Read(seq)).value_or("?"), absl::StrCat("text-", seq));
  }
  std::vector<WrappedKey> after = KeysOfStream("case-0");
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].master_key_id, MasterKeyId(other_master_));
  std::string id;
  KeyTable* table = const_cast<LogStore&>(ledger_->store()).keys();
  ASSERT_TRUE(table
                  ->ScanKeys(StreamIndexKey("case-0", ""),
                             [&](absl::string_view, absl::string_view v) {
                               id = std::string(v);
                               return false;
                             })
                  .ok());
  EXPECT_EQ(
      caseledger::Open(master_, after[0].sealed, WrapAad(id, "client-1", "case-0")).status().code(),
      absl::StatusCode::kDataLoss);
  Close();
  // The old wrapping is purged from the files.
  EXPECT_EQ(FilesContaining(dir_, before[0].sealed), std::vector<std::string>{});
  EXPECT_EQ(Verify().status, absl::OkStatus());
}

// --- Online master key rotation (KeyStore::RotateMasterKey). ---

Event RotationEntry(const std::string& id, const std::string& stream,
                    std::vector<std::string> subjects = {"client-1"}) {
  return Entry(id, stream, std::move(subjects), "text-" + id);
}

TEST_F(EncryptedLedgerTest, OnlineRotationRewrapsInPlaceAndPurgesTheOldWrappings) {
  ASSERT_TRUE(Open(&master_).ok());
  for (int i = 0; i < 12; ++i) {
    Append(RotationEntry(absl::StrCat("e", i), absl::StrCat("case-", i % 4)));
  }
  Append(RotationEntry("two", "case-0", {"client-1", "client-2"}));
  // Cases 0 and 1 are read (their keys cached) before the rotation; 2 and 3
  // only after it, so those are unwrapped with the new key.
  for (uint64_t seq : {0, 1, 4, 5, 12}) ASSERT_TRUE(ledger_->Read(seq).ok());
  Hash root = ledger_->Root();
  std::vector<WrappedKey> old_keys = AllWrappedKeys();
  ASSERT_EQ(old_keys.size(), 5u);  // client-1 in four cases, client-2 in one
  // Control for the raw-bytes search below: the old wrappings are in the
  // files now (the WAL).
  for (const WrappedKey& w : old_keys) EXPECT_FALSE(FilesContaining(dir_, w.sealed).empty());

  auto rotated = keys_->RotateMasterKey(other_master_);
  ASSERT_TRUE(rotated.ok()) << rotated.status();
  EXPECT_EQ(rotated->old_master_key_id, kGoldenMasterKeyId);
  EXPECT_EQ(rotated->new_master_key_id, MasterKeyId(other_master_));
  EXPECT_EQ(rotated->keys_rewrapped, 5u);
  EXPECT_EQ(keys_->master_key_id(), MasterKeyId(other_master_));
  EXPECT_EQ(*Table()->GetKey(kMasterKeyIdKey), MasterKeyId(other_master_));
  for (const WrappedKey& w : AllWrappedKeys()) {
    EXPECT_EQ(w.master_key_id, MasterKeyId(other_master_)) << w.subject_id << " " << w.stream_id;
  }
  EXPECT_EQ(ledger_->Root(), root);  // records untouched
  ExpectAllReadable(13);

  // New appends: an existing pair (cached key), a new pair (a new key,
  // wrapped under the new master key).
  Append(RotationEntry("after-1", "case-3"));
  Append(RotationEntry("after-2", "case-new"));
  std::vector<WrappedKey> new_case = KeysOfStream("case-new");
  ASSERT_EQ(new_case.size(), 1u);
  EXPECT_EQ(new_case[0].master_key_id, MasterKeyId(other_master_));
  auto view = ledger_->Read(14);
  ASSERT_TRUE(view.ok());
  auto p = DecodePayload(view->payload);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->key_id.size(), 32u);  // sealed
  ExpectAllReadable(15);
  Close();

  // The old wrappings are gone from every file (WAL, SST, MANIFEST, LOG).
  for (const WrappedKey& w : old_keys) {
    EXPECT_EQ(FilesContaining(dir_, w.sealed), std::vector<std::string>{});
  }
  // The old key no longer opens the store; the new one does, and reads all.
  absl::Status old_key = Open(&master_);
  EXPECT_EQ(old_key.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(old_key.message(), absl::StrCat("master key: got key id ", kGoldenMasterKeyId,
                                            ", but the data keys are wrapped under key id ",
                                            MasterKeyId(other_master_),
                                            " (wrong key file, or a rotation not applied?)"));
  Close();
  ASSERT_TRUE(Open(&other_master_).ok());
  ExpectAllReadable(15);
  Close();
  EXPECT_EQ(Verify().status, absl::OkStatus());
}

TEST_F(EncryptedLedgerTest, OnlineRotationThatFailsChangesNothing) {
  ASSERT_TRUE(Open(&master_).ok());
  Append(RotationEntry("e0", "case-0"));
  std::map<std::string, std::string> before = TableContents();

  // The current key again.
  auto same = keys_->RotateMasterKey(master_);
  EXPECT_EQ(same.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(same.status().message(),
            absl::StrCat("got the current master key (id ", kGoldenMasterKeyId,
                         ") as the new one, want another key"));
  EXPECT_EQ(TableContents(), before);

  // One entry that does not unwrap: no key is re-wrapped, the old key stays.
  const std::string bad_id(kDataKeyIdSize, 'x');
  WrappedKey bad{kGoldenMasterKeyId, "client-9", "case-9", std::string(60, '\0')};
  ASSERT_TRUE(Table()->WriteKeys({{DataKeyEntryKey(bad_id), EncodeWrappedKey(bad)}}).ok());
  before = TableContents();
  auto broken = keys_->RotateMasterKey(other_master_);
  EXPECT_EQ(broken.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(
      absl::StartsWith(broken.status().message(), absl::StrCat("data key ", Hex(bad_id), ": ")))
      << broken.status();
  EXPECT_EQ(TableContents(), before);
  EXPECT_EQ(keys_->master_key_id(), kGoldenMasterKeyId);
  Append(RotationEntry("e1", "case-1"));  // a new key, under the old master key
  EXPECT_EQ(KeysOfStream("case-1").at(0).master_key_id, kGoldenMasterKeyId);
  ExpectAllReadable(2);
  Close();
  ASSERT_TRUE(Open(&master_).ok());
  ExpectAllReadable(2);
}

// A thread appends to new and existing cases (creating and using keys) while
// the rotation runs: every record stays readable, before and after restart.
TEST_F(EncryptedLedgerTest, AppendsDuringOnlineRotationStayReadable) {
  ASSERT_TRUE(Open(&master_).ok());
  for (int i = 0; i < 20; ++i) Append(RotationEntry(absl::StrCat("pre-", i), absl::StrCat("c", i)));
  absl::Notification started;
  std::atomic<bool> rotated{false};
  std::atomic<int> appended{0};
  std::thread appender([&] {
    int after = 0;  // new keys created once the rotation has returned
    for (int i = 0; after < 10; ++i) {
      bool was_rotated = rotated;
      // Every other event opens a new case (a new key); the rest reuse one.
      bool new_case = i % 2 == 0;
      std::string stream = new_case ? absl::StrCat("during-", i) : absl::StrCat("c", i % 20);
      auto r = ledger_->Append({RotationEntry(absl::StrCat("during-", i), stream)});
      if (!r.ok()) {
        ADD_FAILURE() << r.status();
        break;
      }
      ++appended;
      if (i == 4) started.Notify();
      if (was_rotated && new_case) ++after;
    }
    if (!started.HasBeenNotified()) started.Notify();
  });
  started.WaitForNotification();
  auto r = keys_->RotateMasterKey(other_master_);
  rotated = true;
  appender.join();
  ASSERT_TRUE(r.ok()) << r.status();
  uint64_t size = 20 + appended;
  ExpectAllReadable(size);
  for (const WrappedKey& w : AllWrappedKeys()) {
    EXPECT_EQ(w.master_key_id, MasterKeyId(other_master_)) << w.stream_id;
  }
  Close();
  ASSERT_TRUE(Open(&other_master_).ok());
  ExpectAllReadable(size);
}

// Deterministic versions of the two races that matter, each run between the
// rotation's scan and its write.

// A read that fetched a wrapped key just before the rotation's write and
// copies the master key just after its switch must still open the record.
TEST_F(EncryptedLedgerTest, AReadAcrossOnlineRotationStillOpens) {
  ASSERT_TRUE(Open(&master_).ok());
  Append(RotationEntry("e0", "case-0"));
  Close();
  ASSERT_TRUE(Open(&master_, /*hooked=*/true).ok());  // nothing cached
  absl::StatusOr<MasterKeyRotation> rotated;
  hooked_->AfterDataKeyGet([&] { rotated = keys_->RotateMasterKey(other_master_); });
  auto view = ledger_->Read(0);
  ASSERT_TRUE(rotated.ok()) << rotated.status();
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_FALSE(view->erased);
  EXPECT_EQ(TextOf(*view).value_or("?"), "text-e0");
}

// A key created then would be wrapped under the old master key and missed by
// the re-wrap: the append must wait for the rotation.
TEST_F(EncryptedLedgerTest, AKeyCreatedDuringOnlineRotationIsWrappedUnderTheNewKey) {
  ASSERT_TRUE(Open(&master_, /*hooked=*/true).ok());
  Append(RotationEntry("e0", "case-0"));
  absl::Notification appended;
  bool appended_during_scan = true;
  std::thread appender;
  hooked_->AfterDataKeyScan([&] {
    appender = std::thread([&] {
      Append(RotationEntry("e1", "case-new"));
      appended.Notify();
    });
    appended_during_scan = appended.WaitForNotificationWithTimeout(absl::Milliseconds(300));
  });
  auto r = keys_->RotateMasterKey(other_master_);
  appender.join();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(appended_during_scan);
  EXPECT_EQ(KeysOfStream("case-new").at(0).master_key_id, MasterKeyId(other_master_));
  ExpectAllReadable(2);
  Close();
  ASSERT_TRUE(Open(&other_master_).ok());
  ExpectAllReadable(2);
}

// A case disposal committed then would delete the keys the rotation read,
// and the rotation's write would bring them back (re-wrapped): the disposal's
// commit must wait for the rotation's write.
TEST_F(EncryptedLedgerTest, ADisposalCommittedDuringOnlineRotationStaysShredded) {
  ASSERT_TRUE(Open(&master_, /*hooked=*/true).ok());
  Append(RotationEntry("a0", "case-A"));
  Append(RotationEntry("b0", "case-B"));
  // What the ledger commits with a records_disposed event of case-A (Seal
  // computes it before the record is queued).
  auto deletions = keys_->StreamKeyDeletions("case-A");
  ASSERT_TRUE(deletions.ok());
  ASSERT_EQ(deletions->size(), 3u);
  absl::Notification committed;
  bool committed_during_scan = true;
  std::thread committer;
  hooked_->AfterDataKeyScan([&] {
    committer = std::thread([&] {
      CommitBatch batch;
      batch.new_size = ledger_->Size();
      batch.key_writes = *deletions;
      EXPECT_EQ(const_cast<LogStore&>(ledger_->store()).Commit(batch), absl::OkStatus());
      committed.Notify();
    });
    committed_during_scan = committed.WaitForNotificationWithTimeout(absl::Milliseconds(300));
  });
  auto r = keys_->RotateMasterKey(other_master_);
  committer.join();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->keys_rewrapped, 2u);
  EXPECT_FALSE(committed_during_scan);
  EXPECT_EQ(KeysOfStream("case-A").size(), 0u);
  EXPECT_EQ(AllWrappedKeys().size(), 1u);  // case-B's only: none came back
  EXPECT_TRUE(ledger_->Read(0)->erased);
  EXPECT_EQ(TextOf(*ledger_->Read(1)).value_or("?"), "text-b0");
}

}  // namespace
}  // namespace caseledger
