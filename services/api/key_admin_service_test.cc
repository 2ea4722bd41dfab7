// KeyAdminService.RotateMasterKey on a real key table, without a network:
// every refused request names new_master_key_file and changes nothing; a
// good one re-wraps every key and logs the new key id.
#include "services/api/key_admin_service.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "ledger/crypto.h"
#include "ledger/key_store.h"
#include "ledger/record.h"
#include "ledger/rocks_store.h"
#include "services/authz/authz_verdict.h"
#include "tests/test_util.h"

namespace caseledger {
namespace {

constexpr char kCurrentHex[] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
constexpr char kCurrentId[] = "4eb8f8345d4e9985";  // ENCRYPTION.md's golden master key id
constexpr char kNextHex[] = "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f";

std::string WriteFile(const std::string& path, const std::string& text, mode_t mode) {
  std::ofstream(path) << text;
  EXPECT_EQ(chmod(path.c_str(), mode), 0);
  return path;
}

class KeyAdminServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    key_dir_ = testing::NewTempDir("key-admin-keys");
    RocksStoreOptions o;
    o.path = testing::NewTempDir("key-admin");
    auto store = OpenRocksStore(o);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    auto master = AeadKey::FromHex(kCurrentHex);
    ASSERT_TRUE(master.ok());
    auto keys = KeyStore::Open(store_->keys(), *master);
    ASSERT_TRUE(keys.ok()) << keys.status();
    keys_ = *std::move(keys);
    // Three data keys: client-1 in two cases, client-2 in one.
    for (const char* stream : {"case-1", "case-2"}) {
      Event e = testing::TestEvent(absl::StrCat("e-", stream), stream);
      e.subject_ids = {"client-1"};
      if (std::string(stream) == "case-2") e.subject_ids.push_back("client-2");
      CommittedPayload p = CommitFields(e.fields);
      std::string plain = p.payload.sealed_openings;
      std::vector<KeyWrite> unused;
      ASSERT_TRUE(keys_->Seal(e, &p, &unused).ok());
      sealed_.push_back({p, plain});
    }
    KeyAdminServiceOptions options;
    options.log = [this](const std::string& line) { log_.push_back(line); };
    service_ = std::make_unique<KeyAdminServiceImpl>(keys_.get(), nullptr, nullptr, options);
  }

  grpc::Status Rotate(const std::string& path, v1::RotateMasterKeyResponse* resp) {
    grpc::ServerContext ctx;
    internal::VerdictSlot admitted(&ctx);  // what the AuthzInterceptor decides
    admitted.Decide(Admitted());
    v1::RotateMasterKeyRequest req;
    req.set_new_master_key_file(path);
    return service_->RotateMasterKey(&ctx, &req, resp);
  }

  std::map<std::string, std::string> Table() {
    auto contents = testing::KeyTableContents(*store_->keys());
    EXPECT_TRUE(contents.ok()) << contents.status();
    return contents.value_or(std::map<std::string, std::string>());
  }

  // Every sealed payload still opens to its plaintext openings.
  void ExpectSealedOpen() {
    for (const auto& [p, plain] : sealed_) {
      auto openings =
          keys_->OpenOpenings(p.payload.key_id, p.payload.sealed_openings, p.commitment);
      ASSERT_TRUE(openings.ok()) << openings.status();
      EXPECT_EQ(*openings, plain);
    }
  }

  std::string key_dir_;
  std::unique_ptr<LogStore> store_;
  std::unique_ptr<KeyStore> keys_;
  std::vector<std::pair<CommittedPayload, std::string>> sealed_;
  std::vector<std::string> log_;
  std::unique_ptr<KeyAdminServiceImpl> service_;
};

TEST_F(KeyAdminServiceTest, BadRequestsNameTheFieldAndChangeNothing) {
  const std::string missing = key_dir_ + "/missing.key";
  const std::string readable = WriteFile(key_dir_ + "/readable.key", kNextHex, 0644);
  const std::string malformed = WriteFile(key_dir_ + "/malformed.key", "not a key\n", 0600);
  const std::string current =
      WriteFile(key_dir_ + "/current.key", absl::StrCat(kCurrentHex, "\n"), 0600);
  struct Case {
    std::string path;
    grpc::StatusCode code;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"", grpc::StatusCode::INVALID_ARGUMENT,
       "new_master_key_file: must not be empty, want the absolute path of a key file on the "
       "server's host"},
      {"new.key", grpc::StatusCode::INVALID_ARGUMENT,
       "new_master_key_file: got relative path \"new.key\", want an absolute path on the "
       "server's host"},
      {missing, grpc::StatusCode::FAILED_PRECONDITION,
       absl::StrCat("new_master_key_file: master key file ", missing, ": cannot stat")},
      {readable, grpc::StatusCode::FAILED_PRECONDITION,
       absl::StrCat("new_master_key_file: master key file ", readable,
                    ": mode 644 lets others read it; want 600 or 400")},
      {malformed, grpc::StatusCode::INVALID_ARGUMENT,
       absl::StrCat("new_master_key_file: master key file ", malformed,
                    ": key: got 9 characters, want 64 hex digits")},
      {current, grpc::StatusCode::INVALID_ARGUMENT,
       absl::StrCat("new_master_key_file: got the current master key (id ", kCurrentId,
                    ") as the new one, want another key")},
  };
  const std::map<std::string, std::string> before = Table();
  ASSERT_EQ(before.at(kMasterKeyIdKey), kCurrentId);
  for (const Case& c : cases) {
    SCOPED_TRACE(c.path);
    v1::RotateMasterKeyResponse resp;
    grpc::Status s = Rotate(c.path, &resp);
    EXPECT_EQ(s.error_code(), c.code);
    EXPECT_EQ(s.error_message(), c.message);
    EXPECT_EQ(resp.new_master_key_id(), "");
    EXPECT_EQ(Table(), before);
    EXPECT_EQ(keys_->master_key_id(), kCurrentId);
  }
  EXPECT_EQ(log_, std::vector<std::string>{});
  ExpectSealedOpen();
}

TEST_F(KeyAdminServiceTest, WithoutEncryptionThereIsNothingToRotate) {
  KeyAdminServiceImpl plaintext(nullptr, nullptr, nullptr);
  grpc::ServerContext ctx;
  internal::VerdictSlot admitted(&ctx);
  admitted.Decide(Admitted());
  v1::RotateMasterKeyRequest req;
  req.set_new_master_key_file(WriteFile(key_dir_ + "/next.key", kNextHex, 0600));
  v1::RotateMasterKeyResponse resp;
  grpc::Status s = plaintext.RotateMasterKey(&ctx, &req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(s.error_message(),
            "payload encryption is off (the server has no --master_key_file): there is no "
            "master key to rotate");
}

TEST_F(KeyAdminServiceTest, RotatesEveryKeyAndLogsTheNewId) {
  const std::string next_file = WriteFile(key_dir_ + "/next.key", kNextHex, 0400);
  auto next = AeadKey::FromHex(kNextHex);
  ASSERT_TRUE(next.ok());
  const std::string next_id = MasterKeyId(*next);
  v1::RotateMasterKeyResponse resp;
  grpc::Status s = Rotate(next_file, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.old_master_key_id(), kCurrentId);
  EXPECT_EQ(resp.new_master_key_id(), next_id);
  EXPECT_EQ(resp.keys_rewrapped(), 3u);
  EXPECT_EQ(keys_->master_key_id(), next_id);
  std::map<std::string, std::string> table = Table();
  EXPECT_EQ(table.at(kMasterKeyIdKey), next_id);
  for (const auto& [k, v] : table) {
    if (k[0] != 'd') continue;
    auto w = DecodeWrappedKey(v);
    ASSERT_TRUE(w.ok());
    EXPECT_EQ(w->master_key_id, next_id);
  }
  ExpectSealedOpen();
  ASSERT_EQ(log_.size(), 1u);
  EXPECT_EQ(log_[0], absl::StrCat("master key rotated from id ", kCurrentId, " to id ", next_id,
                                  " (3 data keys re-wrapped); restart with --master_key_file=",
                                  next_file, ": the old key no longer opens the data directory"));
  EXPECT_FALSE(absl::StrContains(log_[0], kNextHex));

  // Again with the same file: it is the current key now.
  s = Rotate(next_file, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(log_.size(), 1u);
}

// services/policy/RULES.md W12: a legal hold refuses the erasure before anything is
// recorded or destroyed (the hook is asked first; the server wires it to
// CaseStateProjection::CheckErasure).
TEST_F(KeyAdminServiceTest, ALegalHoldRefusesTheErasureAndDestroysNothing) {
  KeyAdminServiceOptions options;
  std::vector<std::string> asked;
  options.erasure_allowed = [&](const std::string& subject_id) {
    asked.push_back(subject_id);
    return absl::FailedPreconditionError(
        "subject \"client-1\": case \"case-1\" is under legal hold \"h-1\" "
        "(LEGAL_HOLD_GROUND_LITIGATION, \"notice 17\", placed 2026-01-04T00:00:00Z): erasure is "
        "not allowed until it is released");
  };
  KeyAdminServiceImpl held(keys_.get(), nullptr, nullptr, options);
  const std::map<std::string, std::string> before = Table();
  grpc::ServerContext ctx;
  internal::VerdictSlot admitted(&ctx);
  admitted.Decide(Admitted());
  v1::EraseSubjectRequest req;
  req.set_subject_id("client-1");
  req.set_authority("GDPR Art. 17 request R-5");
  v1::EraseSubjectResponse resp;
  grpc::Status s = held.EraseSubject(&ctx, &req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(
      s.error_message(),
      "subject \"client-1\": case \"case-1\" is under legal hold \"h-1\" "
      "(LEGAL_HOLD_GROUND_LITIGATION, \"notice 17\", placed 2026-01-04T00:00:00Z): erasure is "
      "not allowed until it is released");
  EXPECT_EQ(asked, std::vector<std::string>{"client-1"});
  EXPECT_EQ(resp.keys_destroyed(), 0u);
  EXPECT_EQ(Table(), before);
  ExpectSealedOpen();
}

}  // namespace
}  // namespace caseledger
