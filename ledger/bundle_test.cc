// The bundle format (BUNDLE.md) pinned by a golden vector, and the bundle
// verifier against every kind of damage an exported bundle can suffer.
#include "ledger/bundle.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "ledger/record.h"
#include "tests/synthetic_log.h"
#include "tests/test_util.h"

namespace caseledger {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

using EntryAt = testing::BundleEntryAt;
using testing::kCheckpointEntry;
using testing::kRecordEntry;

uint64_t BigEndian(const std::string& b, size_t at, int n) {
  return testing::BigEndianAt(b, at, n);
}
std::vector<EntryAt> Walk(const std::string& b) { return testing::WalkBundle(b); }
EntryAt Nth(const std::string& b, uint8_t type, int n) {
  EntryAt e = testing::NthBundleEntry(b, type, n);
  EXPECT_GT(e.size, 0u) << "no entry of type " << int{type} << " #" << n;
  return e;
}
constexpr uint8_t kRecordType = kRecordEntry;
constexpr uint8_t kCheckpointType = kCheckpointEntry;

testing::SyntheticLogOptions Small() {
  testing::SyntheticLogOptions o;
  o.records = 10;
  o.checkpoint_every = 4;  // checkpoints at 4, 8 and 10
  o.payload_bytes = 8;
  o.streams = 3;
  return o;
}

class BundleTest : public ::testing::Test {
 protected:
  BundleVerifyReport Verify(const std::string& bundle, size_t max_failures = 1,
                            std::optional<TrustedCheckpoint> since = std::nullopt) {
    BundleVerifyOptions o;
    o.note_verifier = &verifier_;
    o.origin = testing::kTestOrigin;
    o.max_failures = max_failures;
    o.since = since;
    std::unique_ptr<ByteSource> source = StringSource(bundle);
    return VerifyBundle(*source, o);
  }

  // The root of the synthetic log at `size`, from a bundle that ends there.
  TrustedCheckpoint RootAt(uint64_t size, size_t payload_bytes = 8) {
    testing::SyntheticLogOptions o = Small();
    o.records = size;
    o.payload_bytes = payload_bytes;
    BundleVerifyReport r = Verify(testing::SyntheticBundle(o));
    EXPECT_TRUE(r.status.ok()) << r.status;
    return {size, r.root};
  }

  NoteVerifier verifier_ = testing::TestNoteVerifier();
};

std::string Msg(const absl::Status& s) { return std::string(s.message()); }

// ---- The format --------------------------------------------------------------

TEST_F(BundleTest, GoldenVector) {
  testing::SyntheticLogOptions o;
  o.records = 3;
  o.checkpoint_every = 2;
  o.payload_bytes = 4;
  o.streams = 2;
  std::string got = absl::BytesToHexString(testing::SyntheticBundle(o));
  std::ifstream file("tests/testdata/bundle_golden.hex");
  ASSERT_TRUE(file.good()) << "missing tests/testdata/bundle_golden.hex";
  std::stringstream ss;
  ss << file.rdbuf();
  std::string want = absl::StrReplaceAll(ss.str(), {{"\n", ""}, {" ", ""}});
  EXPECT_EQ(got, want)
      << "if BUNDLE.md changed on purpose, write the hex above to tests/testdata/bundle_golden.hex";
}

TEST_F(BundleTest, LayoutIsTheOneBundleMdDescribes) {
  testing::SyntheticLogOptions o = Small();
  std::string b = testing::SyntheticBundle(o);
  EXPECT_EQ(b.substr(0, 8), "CLBUNDLE");
  EXPECT_EQ(BigEndian(b, 8, 2), 1u);  // format version
  std::vector<EntryAt> entries = Walk(b);
  ASSERT_FALSE(entries.empty());
  EXPECT_EQ(entries.back().offset + entries.back().size, b.size()) << "framing covers the file";

  // Header: str16 origin, str16 verifier key, u64 first_seq, u64 end_seq.
  const EntryAt& h = entries.front();
  EXPECT_EQ(h.type, 0x01);
  size_t at = h.offset + 5;
  size_t origin_len = BigEndian(b, at, 2);
  EXPECT_EQ(b.substr(at + 2, origin_len), testing::kTestOrigin);
  at += 2 + origin_len;
  size_t key_len = BigEndian(b, at, 2);
  EXPECT_EQ(b.substr(at + 2, key_len), testing::TestNoteSigner().VerifierKey());
  at += 2 + key_len;
  EXPECT_EQ(BigEndian(b, at, 8), 0u);
  EXPECT_EQ(BigEndian(b, at + 8, 8), 10u);

  // Records and checkpoints in log order: 4 records, cp 4, 4 records, cp 8,
  // 2 records, cp 10, trailer.
  std::string order;
  for (size_t i = 1; i < entries.size(); ++i) {
    order += entries[i].type == kRecordType       ? 'r'
             : entries[i].type == kCheckpointType ? 'C'
             : entries[i].type == 0x7f            ? 'T'
                                                  : '?';
  }
  EXPECT_EQ(order, "rrrrCrrrrCrrCT");

  // Record: u64 seq, u8 payload mode, str32 leaf (which holds the seq at
  // offset 1), str32 payload.
  EntryAt r3 = Nth(b, kRecordType, 3);
  EXPECT_EQ(BigEndian(b, r3.offset + 5, 8), 3u);
  EXPECT_EQ(b[r3.offset + 13], 0x00);
  size_t leaf_len = BigEndian(b, r3.offset + 14, 4);
  EXPECT_EQ(b[r3.offset + 18], 0x01);              // record format version
  EXPECT_EQ(BigEndian(b, r3.offset + 19, 8), 3u);  // the leaf's own seq
  size_t payload_len = BigEndian(b, r3.offset + 18 + leaf_len, 4);
  EXPECT_EQ(r3.size, 5 + 8 + 1 + 4 + leaf_len + 4 + payload_len);

  // Checkpoint: u64 size, str32 note.
  EntryAt c = Nth(b, kCheckpointType, 1);
  EXPECT_EQ(BigEndian(b, c.offset + 5, 8), 8u);
  EXPECT_THAT(b.substr(c.offset + 17, BigEndian(b, c.offset + 13, 4)),
              StartsWith(absl::StrCat(testing::kTestOrigin, "\n8\n")));

  // Trailer: u64 record count, u64 checkpoint count, H chain head.
  const EntryAt& t = entries.back();
  EXPECT_EQ(t.size, 5u + 8 + 8 + 32);
  EXPECT_EQ(BigEndian(b, t.offset + 5, 8), 10u);
  EXPECT_EQ(BigEndian(b, t.offset + 13, 8), 3u);
}

TEST_F(BundleTest, WriterRefusesEntriesOutOfOrder) {
  std::string out;
  auto sink = [&](absl::string_view b) {
    out.append(b.data(), b.size());
    return absl::OkStatus();
  };
  BundleHeader h{testing::kTestOrigin, "", 5, 7};
  auto w = BundleWriter::New(h, sink);
  ASSERT_TRUE(w.ok());
  absl::Status s = (*w)->AddRecord(5, "leaf", "payload", BundlePayload::kFull);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Msg(s), "bundle record: the start entry comes first");
  BundleStart start;
  start.size = 4;
  s = (*w)->AddStart(start);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Msg(s), "bundle start size: got 4, want first_seq 5");
  start.size = 5;
  ASSERT_TRUE((*w)->AddStart(start).ok());
  s = (*w)->AddCheckpoint(6, "note");
  EXPECT_EQ(Msg(s), "bundle checkpoint: size 6 must equal the records written so far (5)");
  s = (*w)->Finish();
  EXPECT_EQ(Msg(s), "bundle finish: 0 records written, the header announces 2");

  h.origin = "";
  EXPECT_EQ(BundleWriter::New(h, sink).status().code(), absl::StatusCode::kInvalidArgument);
}

// ---- Verification ----------------------------------------------------------

TEST_F(BundleTest, IntactBundleVerifies) {
  BundleVerifyReport r = Verify(testing::SyntheticBundle(Small()));
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.records_checked, 10u);
  EXPECT_EQ(r.checkpoints_checked, 3u);
  EXPECT_EQ(r.latest_size, 10u);
  EXPECT_EQ(r.unsigned_records, 0u);
  EXPECT_TRUE(r.header_key_matches);
  EXPECT_TRUE(r.start_anchored);
  EXPECT_THAT(r.latest_note, StartsWith(absl::StrCat(testing::kTestOrigin, "\n10\n")));
}

TEST_F(BundleTest, CommitmentsOnlyBundleVerifiesAndIsSmaller) {
  std::string full = testing::SyntheticBundle(Small());
  std::string lean = testing::SyntheticBundle(Small(), 0, BundlePayload::kCommitmentsOnly);
  EXPECT_LT(lean.size(), full.size());
  BundleVerifyReport r = Verify(lean);
  EXPECT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.root, Verify(full).root);
}

TEST_F(BundleTest, WrongKeyFailsAtTheFirstCheckpoint) {
  auto other = NoteVerifier::FromVerifierKey(
      NoteSigner::New("caseledger.test", *Ed25519Signer::FromSeed(std::string(32, '\x07')))
          ->VerifierKey());
  ASSERT_TRUE(other.ok());
  BundleVerifyOptions o;
  o.note_verifier = &*other;
  o.origin = testing::kTestOrigin;
  std::string b = testing::SyntheticBundle(Small());
  auto source = StringSource(b);
  BundleVerifyReport r = VerifyBundle(*source, o);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(Msg(r.status), StartsWith("checkpoint at size 4: note has no signature by"));
  EXPECT_FALSE(r.header_key_matches);
}

TEST_F(BundleTest, RangeBundleContinuesFromTheAuditorsCheckpoint) {
  std::string range = testing::SyntheticBundle(Small(), 4);
  // On its own: anchored by the signed checkpoint at its start.
  BundleVerifyReport r = Verify(range);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.records_checked, 6u);
  EXPECT_EQ(r.checkpoints_checked, 3u);  // 4, 8, 10
  EXPECT_TRUE(r.start_anchored);
  EXPECT_EQ(r.root, Verify(testing::SyntheticBundle(Small())).root);

  // From the auditor's own earlier checkpoint.
  r = Verify(range, 1, RootAt(4));
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_TRUE(r.since_checked);

  // A range that starts past a checkpoint is anchored by the note alone.
  std::string mid = testing::SyntheticBundle(Small(), 6);
  r = Verify(mid);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_FALSE(r.start_anchored);
  EXPECT_EQ(r.checkpoints_checked, 2u);
}

TEST_F(BundleTest, ForkedHistoryIsDetectedAgainstTheAuditorsCheckpoint) {
  // The same key signs a different history (other payloads): every
  // checkpoint in it verifies, but not against what the auditor saw.
  testing::SyntheticLogOptions forked = Small();
  forked.payload_bytes = 9;
  std::string b = testing::SyntheticBundle(forked);
  EXPECT_TRUE(Verify(b).status.ok());
  BundleVerifyReport r = Verify(b, 1, RootAt(4));
  EXPECT_EQ(r.status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(Msg(r.status), StartsWith("the bundle's tree at your checkpoint's size 4 has root "));
  EXPECT_THAT(Msg(r.status), HasSubstr("the log was forked or rewritten"));
  ASSERT_FALSE(r.failures.empty());
  EXPECT_EQ(r.failures[0].seq, 3u);

  // As a range starting at the auditor's size.
  r = Verify(testing::SyntheticBundle(forked, 4), 1, RootAt(4));
  EXPECT_THAT(Msg(r.status), HasSubstr("the log was forked or rewritten"));
}

TEST_F(BundleTest, RolledBackLogIsDetectedAgainstTheAuditorsCheckpoint) {
  testing::SyntheticLogOptions older = Small();
  older.records = 8;
  BundleVerifyReport r = Verify(testing::SyntheticBundle(older), 1, RootAt(10));
  EXPECT_EQ(r.status.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(Msg(r.status),
            "the bundle ends at size 8, before your checkpoint at size 10: the log was rolled "
            "back or cut short");
  EXPECT_EQ(r.failures[0].seq, 8u);
}

TEST_F(BundleTest, FlippedByteInARecordNamesIt) {
  std::string b = testing::SyntheticBundle(Small());
  EntryAt r5 = Nth(b, kRecordType, 5);
  b[r5.offset + 18 + 60] ^= 0x01;  // inside the leaf, past seq and prev_hash
  BundleVerifyReport r = Verify(b, 100);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kDataLoss);
  ASSERT_FALSE(r.failures.empty());
  EXPECT_EQ(r.failures[0].seq, 5u);
  EXPECT_THAT(Msg(r.failures[0].status), StartsWith("record 5: "));
  // The next record's prev_hash and the checkpoint at 8 both notice.
  EXPECT_THAT(Msg(r.status), StartsWith("record 5: "));
  bool checkpoint_noticed = false;
  for (const VerifyFailure& f : r.failures) {
    if (absl::StartsWith(f.status.message(), "checkpoint at size 8: signed root")) {
      checkpoint_noticed = true;
    }
  }
  EXPECT_TRUE(checkpoint_noticed);
}

TEST_F(BundleTest, FlippedByteInAPayloadNamesTheRecord) {
  std::string b = testing::SyntheticBundle(Small());
  EntryAt r2 = Nth(b, kRecordType, 2);
  b[r2.offset + r2.size - 2] ^= 0x01;  // inside the opening's value
  BundleVerifyReport r = Verify(b);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(Msg(r.status), StartsWith("record 2: "));
  EXPECT_EQ(r.failures[0].seq, 2u);
}

TEST_F(BundleTest, FlippedByteInACheckpointNamesIt) {
  std::string b = testing::SyntheticBundle(Small());
  EntryAt c = Nth(b, kCheckpointType, 1);
  b[c.offset + c.size - 10] ^= 0x01;  // inside the signature
  BundleVerifyReport r = Verify(b);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(Msg(r.status), StartsWith("checkpoint at size 8: "));
  EXPECT_EQ(r.failures[0].seq, 7u);
}

TEST_F(BundleTest, FlippedHashInTheStartOrConsistencyProofIsDetected) {
  // A range from 6: the start proof carries the tree's right edge (the
  // bundle's only Merkle nodes), the consistency proof ties 6 to 10.
  std::string good = testing::SyntheticBundle(Small(), 6);
  EntryAt start = Nth(good, 0x02, 0);
  std::string b = good;
  b[start.offset + start.size - 1] ^= 0x01;  // the last hash of the path
  BundleVerifyReport r = Verify(b, 10);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(Msg(r.status), StartsWith("checkpoint at size 8: signed root "));
  EXPECT_EQ(r.failures[0].seq, 7u);

  EntryAt consistency = Nth(good, 0x03, 0);
  b = good;
  b[consistency.offset + consistency.size - 1] ^= 0x01;
  r = Verify(b);
  EXPECT_THAT(Msg(r.status), StartsWith("consistency proof from 6 to 10: "));
  EXPECT_EQ(r.failures[0].seq, 9u);
}

TEST_F(BundleTest, ConsistencyProofMustEndAtTheLastCheckpoint) {
  // A valid proof from 2 to 8 (an earlier checkpoint in the bundle) in place
  // of the one to 10: every hash checks, but it does not tie the start to the
  // newest signed root, which is what BUNDLE.md says the entry is for.
  std::string good = testing::SyntheticBundle(Small(), 2);
  testing::SyntheticLogOptions eight = Small();
  eight.records = 8;
  std::string to_eight = testing::SyntheticBundle(eight, 2);
  EntryAt c10 = Nth(good, 0x03, 0);
  EntryAt c8 = Nth(to_eight, 0x03, 0);
  std::string b = good;
  b.replace(c10.offset, c10.size, to_eight.substr(c8.offset, c8.size));
  BundleVerifyReport r = Verify(b);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(Msg(r.status),
            "consistency proof to size 8, want the bundle's last checkpoint at size 10");
  ASSERT_FALSE(r.failures.empty());
  EXPECT_EQ(r.failures[0].seq, 7u);
  EXPECT_TRUE(Verify(good).status.ok());
}

TEST_F(BundleTest, FlippedPayloadModeIsDetected) {
  std::string b = testing::SyntheticBundle(Small());
  EntryAt r1 = Nth(b, kRecordType, 1);
  b[r1.offset + 13] = 0x01;  // claims the openings were left out
  BundleVerifyReport r = Verify(b);
  EXPECT_THAT(Msg(r.status), StartsWith("record 1: payload mode 1 (openings left out) but "));
}

TEST_F(BundleTest, DeletedRecordIsNamed) {
  std::string b = testing::SyntheticBundle(Small());
  EntryAt r6 = Nth(b, kRecordType, 6);
  b.erase(r6.offset, r6.size);
  BundleVerifyReport r = Verify(b);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(Msg(r.status), StartsWith("record 6 is missing (next stored record is 7)"));
}

TEST_F(BundleTest, SwappedRecordsAreNamed) {
  std::string b = testing::SyntheticBundle(Small());
  EntryAt r2 = Nth(b, kRecordType, 2);
  EntryAt r3 = Nth(b, kRecordType, 3);
  std::string swapped = b.substr(0, r2.offset) + b.substr(r3.offset, r3.size) +
                        b.substr(r2.offset, r2.size) + b.substr(r3.offset + r3.size);
  BundleVerifyReport r = Verify(swapped);
  EXPECT_THAT(Msg(r.status), StartsWith("record 2 is missing (next stored record is 3)"));
  EXPECT_EQ(r.failures[0].seq, 2u);
}

TEST_F(BundleTest, TruncatedBundleIsDetected) {
  std::string b = testing::SyntheticBundle(Small());
  EntryAt r7 = Nth(b, kRecordType, 7);
  // Cut inside record 7.
  BundleVerifyReport r = Verify(b.substr(0, r7.offset + 20));
  EXPECT_EQ(r.status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(Msg(r.status), StartsWith("bundle truncated: record entry at offset "));
  EXPECT_EQ(r.failures[0].seq, 7u);
  // Cut between entries: no trailer.
  r = Verify(b.substr(0, r7.offset));
  EXPECT_THAT(Msg(r.status), StartsWith("bundle truncated after 7 records: it ends without a "
                                        "trailer"));
  // Cut and given a forged trailer: the header's end_seq still counts.
  EntryAt t = Walk(b).back();
  std::string forged = b.substr(0, r7.offset) + b.substr(t.offset);
  r = Verify(forged, 10);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(Msg(r.status), StartsWith("bundle trailer: record_count 10, the bundle holds 7"));
}

TEST_F(BundleTest, GarbageIsNotABundle) {
  BundleVerifyReport r = Verify("PK\x03\x04 this is a zip file");
  EXPECT_EQ(r.status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(Msg(r.status), StartsWith("not a caseledger bundle: magic got "));
  std::string b = testing::SyntheticBundle(Small());
  b[9] = 0x02;
  r = Verify(b);
  EXPECT_EQ(Msg(r.status), "bundle format version: got 2, want 1");
}

// The hook the per-subject index will use: sees every record and every
// verified checkpoint, and its complaints become failures at their seq.
class CountingObserver : public RecordObserver {
 public:
  absl::Status OnRecord(uint64_t seq, const LeafView& record, const Hash&) override {
    ++records;
    if (seq == 6)
      return absl::DataLossError(
          absl::StrCat("subject index root for \"", record.stream_id, "\" differs"));
    return absl::OkStatus();
  }
  absl::Status OnCheckpoint(const Checkpoint& cp) override {
    sizes.push_back(cp.size);
    return absl::OkStatus();
  }
  int records = 0;
  std::vector<uint64_t> sizes;
};

TEST_F(BundleTest, ObserverSeesRecordsAndCheckpointsAndItsFailuresCount) {
  CountingObserver observer;
  BundleVerifyOptions o;
  o.note_verifier = &verifier_;
  o.origin = testing::kTestOrigin;
  o.observer = &observer;
  std::string b = testing::SyntheticBundle(Small());
  auto source = StringSource(b);
  BundleVerifyReport r = VerifyBundle(*source, o);
  EXPECT_EQ(observer.records, 10);
  EXPECT_EQ(observer.sizes, (std::vector<uint64_t>{4, 8, 10}));
  EXPECT_EQ(Msg(r.status), "record 6: subject index root for \"case-0\" differs");
  EXPECT_EQ(r.failures[0].seq, 6u);
}

TEST_F(BundleTest, DuplicateEventIdIsNamed) {
  // Two records that claim one event id (a writer would refuse the second).
  ChainVerifier v({&verifier_, testing::kTestOrigin, 1});
  Record rec;
  rec.seq = 0;
  rec.stream_id = "s";
  rec.event_id = "dup";
  rec.producer = "p";
  rec.event_type = "t";
  CommittedPayload p = CommitFields({{"f", "v", 0}});
  rec.payload_commitment = p.commitment;
  std::string leaf0 = EncodeRecord(rec);
  rec.seq = 1;
  rec.version = 1;
  rec.prev_hash = LeafHash(leaf0);
  std::string leaf1 = EncodeRecord(rec);
  std::string payload = EncodePayload(p.payload);
  v.AddRecord(0, leaf0, payload, std::nullopt);
  v.AddRecord(1, leaf1, payload, std::nullopt);
  absl::Status s = v.Finish(2);
  EXPECT_EQ(Msg(s), "record 1: its event id was already used by record 0");
}

}  // namespace
}  // namespace caseledger
