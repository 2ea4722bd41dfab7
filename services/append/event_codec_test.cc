#include "services/append/event_codec.h"

#include <gtest/gtest.h>

#include <google/protobuf/util/message_differencer.h>

#include "absl/strings/match.h"

namespace caseledger {
namespace {

v1::Event EntryEvent() {
  v1::Event e;
  e.set_event_id("evt-1");
  e.set_stream_id("case-1");
  e.add_subject_ids("client-1");
  e.set_producer("notes-svc");
  e.mutable_occurred_at()->set_seconds(1767225600);
  e.mutable_occurred_at()->set_nanos(123456000);
  auto* w = e.mutable_record_entry_written();
  w->set_entry_id("entry-1");
  w->set_data_category("housing");
  w->set_text("Client found an apartment with help from a neighbour.");
  w->add_third_party_mentions("Neighbour: Rosa Delgado, 12 Elm St");
  w->set_author_id("cm-7");
  return e;
}

RecordView Store(const Event& e) {
  CommittedPayload p = CommitFields(e.fields);
  Record r;
  r.seq = 4;
  r.stream_id = e.stream_id;
  r.version = 0;
  r.event_id = e.event_id;
  r.producer = e.producer;
  r.event_type = e.event_type;
  r.occurred_at_micros = e.occurred_at_micros;
  r.subject_ids = e.subject_ids;
  r.payload_commitment = p.commitment;
  RecordView v;
  v.leaf = EncodeRecord(r);
  v.record = r;
  v.leaf_hash = LeafHash(v.leaf);
  v.payload = EncodePayload(p.payload);
  return v;
}

TEST(EventCodecTest, OneCommittedFieldPerBodyFieldWithProtectedFlag) {
  auto e = ToLedgerEvent(EntryEvent());
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->event_type, "record_entry_written");
  EXPECT_EQ(e->occurred_at_micros, 1767225600123456);
  ASSERT_EQ(e->fields.size(), 5u);
  std::vector<std::string> names;
  for (const auto& f : e->fields) names.push_back(f.name);
  EXPECT_EQ(names, (std::vector<std::string>{"entry_id", "data_category", "text",
                                             "third_party_mentions", "author_id"}));
  EXPECT_EQ(e->fields[3].flags, kFieldProtected);
  EXPECT_EQ(e->fields[2].flags, 0);
}

TEST(EventCodecTest, FullViewRoundTripsTheEvent) {
  v1::Event in = EntryEvent();
  auto e = ToLedgerEvent(in);
  ASSERT_TRUE(e.ok());
  auto rec = ToWireRecord(Store(*e));
  ASSERT_TRUE(rec.ok()) << rec.status();
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(rec->event(), in))
      << rec->event().DebugString();
  EXPECT_EQ(rec->seq(), 4u);
  EXPECT_TRUE(rec->withheld_fields().empty());
}

TEST(EventCodecTest, ClientViewWithholdsProtectedFieldsEverywhere) {
  auto e = ToLedgerEvent(EntryEvent());
  ASSERT_TRUE(e.ok());
  auto rec = ToWireRecord(Store(*e), View::kClientView);
  ASSERT_TRUE(rec.ok()) << rec.status();
  EXPECT_EQ(rec->withheld_fields_size(), 1);
  EXPECT_EQ(rec->withheld_fields(0), "third_party_mentions");
  EXPECT_EQ(rec->event().record_entry_written().third_party_mentions_size(), 0);
  EXPECT_EQ(rec->event().record_entry_written().author_id(), "cm-7");
  // The name appears nowhere in what the client receives.
  EXPECT_FALSE(absl::StrContains(rec->SerializeAsString(), "Rosa"));
  // And the record's commitment still recomputes from what was sent.
  auto payload = DecodePayload(rec->payload());
  ASSERT_TRUE(payload.ok());
  auto leaf = DecodeRecord(rec->leaf());
  ASSERT_TRUE(leaf.ok());
  EXPECT_EQ(CheckPayloadCommitment(*payload, leaf->payload_commitment), absl::OkStatus());
}

TEST(EventCodecTest, TamperedPayloadIsDataLoss) {
  auto e = ToLedgerEvent(EntryEvent());
  ASSERT_TRUE(e.ok());
  RecordView v = Store(*e);
  v.payload[v.payload.size() - 3] ^= 1;
  auto rec = ToWireRecord(v);
  EXPECT_EQ(rec.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StartsWith(rec.status().message(), "record 4: field \"author_id\": "))
      << rec.status();
}

std::string ErrorOf(const v1::Event& e) {
  auto r = ToLedgerEvent(e);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(r.status().message());
}

TEST(EventCodecTest, BadEventsNameTheField) {
  v1::Event no_body = EntryEvent();
  no_body.clear_body();
  EXPECT_EQ(ErrorOf(no_body), "event.body: must be set to one of the event types");

  v1::Event future = EntryEvent();
  future.clear_body();
  // Field 99 of Event: an event type this server does not know.
  future.MergeFromString(std::string("\x9a\x06\x00", 3));
  EXPECT_EQ(ErrorOf(future),
            "event.body: unknown event type (field number 99; is the client newer than the "
            "server?)");

  v1::Event bad_enum = EntryEvent();
  bad_enum.mutable_case_opened()->set_record_class(static_cast<v1::RecordClass>(42));
  EXPECT_EQ(ErrorOf(bad_enum), "event.case_opened.record_class: unknown RecordClass value 42");

  v1::Event unknown_inner = EntryEvent();
  // Field 15 inside record_entry_written.
  unknown_inner.mutable_record_entry_written()->MergeFromString(std::string("\x78\x01", 2));
  EXPECT_EQ(ErrorOf(unknown_inner),
            "event.record_entry_written: unknown field number 15 (is the client newer than the "
            "server?)");

  v1::Event no_time = EntryEvent();
  no_time.clear_occurred_at();
  EXPECT_EQ(ErrorOf(no_time), "event.occurred_at: must be set");

  v1::Event bad_time = EntryEvent();
  bad_time.mutable_occurred_at()->set_nanos(-1);
  EXPECT_EQ(ErrorOf(bad_time),
            "event.occurred_at: got 1767225600s -1ns, want a time in years 1 to 9999");

  // A 2 MiB text: the message names the field the producer set, not the
  // ledger's "fields".
  v1::Event huge = EntryEvent();
  huge.mutable_record_entry_written()->set_text(std::string(2 << 20, 'x'));
  const std::string huge_error = ErrorOf(huge);
  EXPECT_TRUE(absl::StartsWith(huge_error,
                               "event.record_entry_written.text: got 2097157 bytes "
                               "encoded, and the body's fields total "))
      << huge_error;
  EXPECT_TRUE(absl::EndsWith(huge_error, " bytes; want at most 1048576 bytes in all"))
      << huge_error;

  v1::Event no_id = EntryEvent();
  no_id.clear_event_id();
  EXPECT_EQ(ErrorOf(no_id), "event.event_id: must not be empty");

  v1::Event dup_subject = EntryEvent();
  dup_subject.add_subject_ids("client-1");
  EXPECT_EQ(ErrorOf(dup_subject), "event.subject_ids[1]: duplicate id \"client-1\"");
}

// A record whose openings are sealed (ledger/ENCRYPTION.md), as Ledger::Read
// returns it: with the decrypted openings, or erased.
RecordView Sealed(const Event& e, bool erased) {
  RecordView v = Store(e);
  Payload p = *DecodePayload(v.payload);
  std::string plaintext = p.sealed_openings;
  p.key_id = std::string(32, 'a');
  p.sealed_openings = "ciphertext that only a key store opens";
  v.payload = EncodePayload(p);
  if (erased) {
    v.erased = true;
  } else {
    v.openings = plaintext;
  }
  return v;
}

TEST(EventCodecTest, SealedRecordIsServedOpenedWithAPlaintextPayload) {
  auto e = ToLedgerEvent(EntryEvent());
  ASSERT_TRUE(e.ok());
  RecordView stored = Sealed(*e, false);
  auto r = ToWireRecord(stored);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(r->event(), EntryEvent()));
  EXPECT_EQ(r->withheld_reason(), "");
  auto p = DecodePayload(r->payload());
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->key_id, "");
  auto openings = DecodeOpenings(p->sealed_openings, p->fields.size());
  ASSERT_TRUE(openings.ok());
  EXPECT_TRUE(CheckOpenings(*p, *openings).ok());
  EXPECT_TRUE(CheckPayloadCommitment(*p, stored.record.payload_commitment).ok());

  auto client = ToWireRecord(stored, View::kClientView);
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_EQ(client->withheld_fields_size(), 1);
  EXPECT_EQ(client->event().record_entry_written().third_party_mentions_size(), 0);
  EXPECT_EQ(DecodePayload(client->payload())->sealed_openings, "");
}

TEST(EventCodecTest, ErasedRecordWithholdsEveryFieldAndSaysWhy) {
  auto e = ToLedgerEvent(EntryEvent());
  ASSERT_TRUE(e.ok());
  RecordView stored = Sealed(*e, true);
  auto r = ToWireRecord(stored);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->withheld_reason(), "erased");
  EXPECT_EQ(std::vector<std::string>(r->withheld_fields().begin(), r->withheld_fields().end()),
            (std::vector<std::string>{"entry_id", "data_category", "text",
                                      "third_party_mentions", "author_id"}));
  EXPECT_TRUE(r->event().has_record_entry_written());
  EXPECT_EQ(r->event().record_entry_written().text(), "");
  EXPECT_EQ(r->event().subject_ids(0), "client-1");
  // Commitments only, and they still match the leaf.
  auto p = DecodePayload(r->payload());
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->sealed_openings, "");
  EXPECT_TRUE(CheckPayloadCommitment(*p, stored.record.payload_commitment).ok());

  stored.erased = false;  // no key store at all
  EXPECT_EQ(ToWireRecord(stored)->withheld_reason(), "sealed");
}

}  // namespace
}  // namespace caseledger
