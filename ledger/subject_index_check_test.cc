#include "ledger/subject_index_check.h"

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "ledger/rocks_store.h"
#include "ledger/store_verifier.h"
#include "tests/test_util.h"

namespace caseledger {
namespace {

// A closed data directory of 40 records over 3 cases (subjects
// client-case-0..2), checkpoints every 16 records and at the end.
std::string WriteLedger() {
  std::string dir = testing::NewTempDir("subject-check");
  LedgerOptions options;
  options.checkpoint_every_records = 16;
  auto t = testing::OpenTestLedger(dir, options);
  EXPECT_TRUE(t.ok()) << t.status();
  for (int i = 0; i < 40 && t.ok(); ++i) {
    EXPECT_TRUE(
        (*t)->Append({testing::TestEvent(absl::StrCat("e", i), absl::StrCat("case-", i % 3))})
            .ok());
  }
  if (t.ok()) {
    EXPECT_TRUE((*t)->Checkpoint().ok());
  }
  return dir;
}

StoreVerifyReport VerifyWith(const std::string& dir, RecordObserver* observer,
                             std::optional<TrustedCheckpoint> since = std::nullopt) {
  RocksStoreOptions o;
  o.path = dir;
  o.read_only = true;
  auto store = OpenRocksStore(o);
  EXPECT_TRUE(store.ok()) << store.status();
  if (!store.ok()) return {};
  static const NoteVerifier verifier = testing::TestNoteVerifier();
  StoreVerifyOptions options;
  options.note_verifier = &verifier;
  options.origin = testing::kTestOrigin;
  options.observer = observer;
  options.since = since;
  return VerifyStore(**store, options);
}

TEST(SubjectIndexCheckTest, EveryCheckpointOfARealLedgerMatchesItsRecords) {
  std::string dir = WriteLedger();
  SubjectIndexCheck check;
  StoreVerifyReport r = VerifyWith(dir, &check);
  EXPECT_EQ(r.status, absl::OkStatus());
  EXPECT_FALSE(check.idle());
  // 16, 32 and 40 at least (the ledger may also sign on its timer).
  EXPECT_GE(check.checked(), 3u);
}

// Feeds records straight to the observer, as the chain verifier does.
class FedCheck : public ::testing::Test {
 protected:
  void Feed(SubjectIndexCheck& check, SubjectIndexBuilder* reference, uint64_t from,
            uint64_t to) {
    for (uint64_t seq = from; seq < to; ++seq) {
      Record r;
      r.seq = seq;
      r.stream_id = "case-1";
      r.version = seq;
      r.event_id = absl::StrCat("e", seq);
      r.producer = "p";
      r.event_type = "record_entry_written";
      r.subject_ids = {seq % 2 == 0 ? "client-a" : "client-b"};
      leaves_.push_back(EncodeRecord(r));
      absl::StatusOr<LeafView> view = DecodeLeafView(leaves_.back());
      ASSERT_TRUE(view.ok()) << view.status();
      const Hash leaf_hash = LeafHash(leaves_.back());
      ASSERT_EQ(check.OnRecord(seq, *view, leaf_hash), absl::OkStatus());
      if (reference != nullptr) {
        ASSERT_EQ(reference->Add(seq, leaf_hash, r.subject_ids), absl::OkStatus());
      }
    }
  }
  static Checkpoint At(uint64_t size, std::vector<std::string> extensions) {
    Checkpoint cp;
    cp.origin = "o";
    cp.size = size;
    cp.extensions = std::move(extensions);
    return cp;
  }
  std::vector<std::string> leaves_;
};

TEST_F(FedCheck, MatchingRootPassesAndAnyOtherFails) {
  SubjectIndexCheck check;
  SubjectIndexBuilder reference;
  Feed(check, &reference, 0, 5);
  const Hash right = reference.Root();
  EXPECT_EQ(check.OnCheckpoint(At(5, {SubjectsExtensionLine(right)})), absl::OkStatus());

  // A server hiding record 5 (client-b's) would sign the map without it,
  // which is the map at size 5: it does not match the records.
  Feed(check, &reference, 5, 6);
  ASSERT_NE(reference.Root(), right);
  absl::Status s = check.OnCheckpoint(At(6, {SubjectsExtensionLine(right)}));
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StartsWith(s.message(), "subjects root: signed ")) << s;
  EXPECT_EQ(check.checked(), 2u);
}

TEST_F(FedCheck, MissingOrMalformedSubjectsLineFails) {
  SubjectIndexCheck check;
  SubjectIndexBuilder reference;
  Feed(check, &reference, 0, 3);
  absl::Status missing = check.OnCheckpoint(At(3, {}));
  EXPECT_EQ(missing.code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StartsWith(missing.message(), "subjects line: missing")) << missing;
  absl::Status malformed = check.OnCheckpoint(At(3, {"subjects !!!"}));
  EXPECT_EQ(malformed.code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StartsWith(malformed.message(), "subjects line: ")) << malformed;
}

TEST_F(FedCheck, StartingMidLogChecksNothing) {
  SubjectIndexCheck check;
  Feed(check, nullptr, 4, 6);
  EXPECT_TRUE(check.idle());
  EXPECT_EQ(check.OnCheckpoint(At(6, {"subjects AAAA"})), absl::OkStatus());
  EXPECT_EQ(check.checked(), 0u);
}

}  // namespace
}  // namespace caseledger
