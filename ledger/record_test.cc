#include "ledger/record.h"

#include <gtest/gtest.h>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"

namespace caseledger {
namespace {

// Golden values from tests/testdata/record_golden.py, which derives them from
// ledger/FORMAT.md without sharing code with the encoder.
constexpr char kGoldenNoteCommitment[] =
    "90f7b62ddf9a15893eff93cee436867e0696e412a1e1dabf5679a11fca6496e2";
constexpr char kGoldenThirdPartyCommitment[] =
    "5cc5f6f62d32d12971b8c76fb4118b0166b2590fb0c8f5e219224bd0d9581580";
constexpr char kGoldenPayloadCommitment[] =
    "bec57837f985769e2050457a3535501accae5cec5898583473b94ee4d016280e";
constexpr char kGoldenLeaf[] =
    "01000000000000000711111111111111111111111111111111111111111111111111111111111111"
    "1100064748462040000007636173652d3432000000000000000300086576742d30303037000a696e"
    "74616b652d73766300147265636f72645f656e7472795f7772697474656e000647484610fdc00002"
    "0008636c69656e742d310008636c69656e742d32bec57837f985769e2050457a3535501accae5cec"
    "5898583473b94ee4d016280e";
constexpr char kGoldenLeafHash[] =
    "1f637667d61c66becfe2c522092be1a43097acb4f358c5d5ec4bda4f69efc3b6";
constexpr char kGoldenPayload[] =
    "010000000200046e6f74650090f7b62ddf9a15893eff93cee436867e0696e412a1e1dabf5679a11f"
    "ca6496e2001074686972645f70617274792e6e616d65015cc5f6f62d32d12971b8c76fb4118b0166"
    "b2590fb0c8f5e219224bd0d958158000000067a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"
    "a1a1a1a1a1a1a1a1a1a1a100000017436c69656e7420617474656e64656420696e74616b652eb2b2"
    "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2000000084a616e652052"
    "6f65";

// Format 2 (FORMAT.md "Record, format 2"): GoldenRecord blinded with stream
// salt C3.., client-1's salt D4.., client-2's E5...
constexpr char kGoldenStreamTag[] =
    "7ddeaa2622def8539add2aa0023551b3091fe4642472c48f1a99c078c0bf99dc";
constexpr char kGoldenClient1Tag[] =
    "c78a2bceed8faf64ad9f2558054e83d8f97c3c4dc432a7df09f41d7a1db7b7ce";
constexpr char kGoldenLeafV2[] =
    "02000000000000000711111111111111111111111111111111111111111111111111111111111111"
    "1100064748462040007ddeaa2622def8539add2aa0023551b3091fe4642472c48f1a99c078c0bf99"
    "dc0000000000000003000866ed0a472fd38d16000aa2234645afee15cee3ef00147265636f72645f"
    "656e7472795f7772697474656e000647484610fdc00002c78a2bceed8faf64ad9f2558054e83d8f9"
    "7c3c4dc432a7df09f41d7a1db7b7ce778dd812b7d92fceea108e1e819ea372bfbec5e33cb1859bbd"
    "d96afe8af26412bec57837f985769e2050457a3535501accae5cec5898583473b94ee4d016280e";
constexpr char kGoldenLeafHashV2[] =
    "2600a186f626169c093ae5fbfa0bc3e0fd075460e7f8067e5a9e528c8f773b4c";

Hash Filled(uint8_t b) {
  Hash h;
  h.fill(b);
  return h;
}

std::vector<PayloadField> GoldenFields() {
  return {{"note", "Client attended intake.", 0},
          {"third_party.name", "Jane Roe", kFieldProtected}};
}

CommittedPayload GoldenPayload() {
  int n = 0;
  return CommitFields(GoldenFields(), [&n] { return Filled(n++ == 0 ? 0xA1 : 0xB2); });
}

Record GoldenRecord() {
  Record r;
  r.seq = 7;
  r.prev_hash = Filled(0x11);
  r.commit_time_micros = 1767225600000000;
  r.stream_id = "case-42";
  r.version = 3;
  r.event_id = "evt-0007";
  r.producer = "intake-svc";
  r.event_type = "record_entry_written";
  r.occurred_at_micros = 1767225599000000;
  r.subject_ids = {"client-1", "client-2"};
  r.payload_commitment = GoldenPayload().commitment;
  return r;
}

TEST(RecordGoldenTest, FieldAndPayloadCommitments) {
  CommittedPayload p = GoldenPayload();
  ASSERT_EQ(p.payload.fields.size(), 2u);
  EXPECT_EQ(ToHex(p.payload.fields[0].commitment), kGoldenNoteCommitment);
  EXPECT_EQ(ToHex(p.payload.fields[1].commitment), kGoldenThirdPartyCommitment);
  EXPECT_EQ(p.payload.fields[1].flags, kFieldProtected);
  EXPECT_EQ(ToHex(p.commitment), kGoldenPayloadCommitment);
  EXPECT_EQ(absl::BytesToHexString(EncodePayload(p.payload)), kGoldenPayload);
}

TEST(RecordGoldenTest, LeafBytesAndHash) {
  std::string leaf = EncodeRecord(GoldenRecord());
  EXPECT_EQ(absl::BytesToHexString(leaf), kGoldenLeaf);
  EXPECT_EQ(ToHex(LeafHash(leaf)), kGoldenLeafHash);
}

TEST(RecordGoldenTest, DecodeGoldenRoundTrips) {
  auto r = DecodeRecord(absl::HexStringToBytes(kGoldenLeaf));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->seq, 7u);
  EXPECT_EQ(r->stream_id, "case-42");
  EXPECT_EQ(r->version, 3u);
  EXPECT_EQ(r->subject_ids, (std::vector<std::string>{"client-1", "client-2"}));
  EXPECT_EQ(EncodeRecord(*r), absl::HexStringToBytes(kGoldenLeaf));

  auto p = DecodePayload(absl::HexStringToBytes(kGoldenPayload));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(p->key_id.empty());
  EXPECT_EQ(CheckPayloadCommitment(*p, r->payload_commitment), absl::OkStatus());
  auto openings = DecodeOpenings(p->sealed_openings, p->fields.size());
  ASSERT_TRUE(openings.ok()) << openings.status();
  EXPECT_EQ((*openings)[1].value, "Jane Roe");
  EXPECT_EQ(CheckOpenings(*p, *openings), absl::OkStatus());
}

Record GoldenRecordV2() {
  Record r = GoldenRecord();
  r.format_version = kRecordFormatBlinded;
  const Hash stream_salt = Filled(0xC3);
  r.stream_tag = BlindTag(BlindKind::kStream, stream_salt, r.stream_id);
  r.event_id_box = BoxId(BlindKind::kEventId, stream_salt, r.version, r.event_id);
  r.producer_box = BoxId(BlindKind::kProducer, stream_salt, r.version, r.producer);
  r.subject_tags = {BlindTag(BlindKind::kSubject, Filled(0xD4), "client-1"),
                    BlindTag(BlindKind::kSubject, Filled(0xE5), "client-2")};
  return r;
}

TEST(RecordGoldenTest, BlindedLeafBytesAndHash) {
  Record r = GoldenRecordV2();
  EXPECT_EQ(ToHex(r.stream_tag), kGoldenStreamTag);
  EXPECT_EQ(ToHex(r.subject_tags[0]), kGoldenClient1Tag);
  std::string leaf = EncodeRecord(r);
  EXPECT_EQ(absl::BytesToHexString(leaf), kGoldenLeafV2);
  EXPECT_EQ(ToHex(LeafHash(leaf)), kGoldenLeafHashV2);
  // No identifier in clear; the event type is.
  for (const char* id : {"case-42", "evt-0007", "intake-svc", "client-1", "client-2"}) {
    EXPECT_FALSE(absl::StrContains(leaf, id)) << id;
  }
  EXPECT_TRUE(absl::StrContains(leaf, "record_entry_written"));
}

TEST(RecordGoldenTest, BlindedDecodeRoundTripsAndBoxesOpen) {
  auto r = DecodeRecord(absl::HexStringToBytes(kGoldenLeafV2));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->format_version, kRecordFormatBlinded);
  EXPECT_EQ(r->seq, 7u);
  EXPECT_TRUE(r->stream_id.empty());
  EXPECT_TRUE(r->subject_ids.empty());
  EXPECT_EQ(ToHex(r->stream_tag), kGoldenStreamTag);
  ASSERT_EQ(r->subject_tags.size(), 2u);
  EXPECT_EQ(ToHex(r->subject_tags[0]), kGoldenClient1Tag);
  EXPECT_EQ(BoxId(BlindKind::kEventId, Filled(0xC3), 3, r->event_id_box), "evt-0007");
  EXPECT_EQ(BoxId(BlindKind::kProducer, Filled(0xC3), 3, r->producer_box), "intake-svc");
  // Another version's keystream does not open it.
  EXPECT_NE(BoxId(BlindKind::kEventId, Filled(0xC3), 4, r->event_id_box), "evt-0007");
  EXPECT_EQ(EncodeRecord(*r), absl::HexStringToBytes(kGoldenLeafV2));
  auto v = DecodeLeafView(absl::HexStringToBytes(kGoldenLeafV2));
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->encoded_subject_ids.size(), 2 * kHashSize);
}

TEST(RecordDecodeTest, BlindedRejectsDamagedBytesAndUnknownVersions) {
  std::string leaf = absl::HexStringToBytes(kGoldenLeafV2);
  auto truncated = DecodeRecord(leaf.substr(0, leaf.size() - 33));
  EXPECT_EQ(truncated.status().code(), absl::StatusCode::kInvalidArgument);
  std::string v3 = leaf;
  v3[0] = 3;
  auto bad = DecodeRecord(v3);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(bad.status().message(), "format_version got 3, want 1 or 2"))
      << bad.status();
}

TEST(RecordDecodeTest, RejectsDamagedBytes) {
  std::string leaf = absl::HexStringToBytes(kGoldenLeaf);

  std::string wrong_version = leaf;
  wrong_version[0] = 9;
  EXPECT_EQ(std::string(DecodeRecord(wrong_version).status().message()),
            "record: format_version got 9, want 1 or 2");

  auto truncated = DecodeRecord(leaf.substr(0, leaf.size() - 1));
  EXPECT_EQ(truncated.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(truncated.status().message()),
            "record: truncated at payload_commitment (offset 140): need 32 bytes, have 31");

  EXPECT_EQ(std::string(DecodeRecord(leaf + "x").status().message()),
            "record: 1 trailing bytes after offset 172");
  EXPECT_EQ(std::string(DecodeRecord("").status().message()),
            "record: truncated at format_version (offset 0): need 1 bytes, have 0");
}

TEST(RecordCommitmentTest, RedactedPayloadStillVerifies) {
  CommittedPayload p = GoldenPayload();
  // A client's view keeps the public commitments and drops the protected
  // field's opening: the record's commitment still recomputes.
  Payload redacted = p.payload;
  redacted.sealed_openings.clear();
  EXPECT_EQ(CheckPayloadCommitment(redacted, p.commitment), absl::OkStatus());
}

TEST(RecordCommitmentTest, TamperingIsDetected) {
  CommittedPayload p = GoldenPayload();
  Payload flipped_flag = p.payload;
  flipped_flag.fields[1].flags = 0;  // trying to unprotect a third party's field
  absl::Status s = CheckPayloadCommitment(flipped_flag, p.commitment);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StrContains(s.message(), "want bec57837")) << s;

  auto openings = DecodeOpenings(p.payload.sealed_openings, 2);
  ASSERT_TRUE(openings.ok());
  (*openings)[0].value = "Client missed intake.";
  s = CheckOpenings(p.payload, *openings);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StartsWith(s.message(), "field \"note\": opening commits to ")) << s;
}

TEST(RecordCommitmentTest, FreshSaltsDiffer) {
  CommittedPayload a = CommitFields(GoldenFields());
  CommittedPayload b = CommitFields(GoldenFields());
  EXPECT_NE(a.commitment, b.commitment);
}

Event ValidEvent() {
  Event e;
  e.event_id = "e1";
  e.stream_id = "case-1";
  e.producer = "svc";
  e.event_type = "case_opened";
  e.subject_ids = {"client-1"};
  e.fields = {{"program", "housing", 0}};
  return e;
}

TEST(ValidateEventTest, AcceptsValid) { EXPECT_EQ(ValidateEvent(ValidEvent()), absl::OkStatus()); }

struct BadCase {
  const char* name;
  void (*mutate)(Event&);
  const char* message;
};

TEST(ValidateEventTest, RejectsEachRuleNamingTheField) {
  const BadCase cases[] = {
      {"empty event id", [](Event& e) { e.event_id.clear(); }, "event_id: must not be empty"},
      {"empty stream", [](Event& e) { e.stream_id.clear(); }, "stream_id: must not be empty"},
      {"huge producer", [](Event& e) { e.producer.assign(129, 'p'); },
       "producer: got 129 bytes, want at most 128"},
      {"control byte", [](Event& e) { e.stream_id = std::string("a\0b", 3); },
       "stream_id: contains control byte 0x00"},
      {"empty type", [](Event& e) { e.event_type.clear(); }, "event_type: must not be empty"},
      {"dup subject",
       [](Event& e) {
         e.subject_ids = {"c1", "c2", "c1"};
       },
       "subject_ids[2]: duplicate id \"c1\""},
      {"empty subject", [](Event& e) { e.subject_ids = {""}; },
       "subject_ids[0]: must not be empty"},
      {"too many subjects",
       [](Event& e) {
         e.subject_ids.clear();
         for (int i = 0; i < 65; ++i) e.subject_ids.push_back("c" + std::to_string(i));
       },
       "subject_ids: got 65 ids, want at most 64"},
      {"dup field",
       [](Event& e) {
         e.fields.push_back({"program", "x", 0});
       },
       "fields[1].name: duplicate name \"program\""},
      {"empty field name", [](Event& e) { e.fields[0].name.clear(); },
       "fields[0].name: must not be empty"},
      {"unknown flag", [](Event& e) { e.fields[0].flags = 0x80; },
       "fields[0].flags: unknown bits 0x80"},
      {"huge payload", [](Event& e) { e.fields[0].value.assign((1 << 20) + 1, 'x'); },
       "fields[0].value: field \"program\" got 1048577 bytes; the payload values total 1048577 "
       "bytes, want at most 1048576"},
  };
  for (const BadCase& c : cases) {
    Event e = ValidEvent();
    c.mutate(e);
    absl::Status s = ValidateEvent(e);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.name;
    EXPECT_EQ(std::string(s.message()), c.message) << c.name;
  }
}

}  // namespace
}  // namespace caseledger
