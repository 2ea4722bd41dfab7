#include "services/fhir/fhir_bundle.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/text_format.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "proto/events.pb.h"

namespace caseledger {
namespace {

// One record of every event type with a FHIR form, in the client view
// except where the test says (FHIR.md "Golden exports").
constexpr char kRecords[] = R"pb(
  seq: 3 stream_id: "case-1" commit_time { seconds: 1764000010 nanos: 250000000 }
  leaf_hash: "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\x20"
  event {
    event_id: "e3" stream_id: "case-1" subject_ids: "client-1" producer: "intake"
    occurred_at { seconds: 1764000000 }
    consent_granted {
      consent_id: "c-1" client_id: "client-1" grantor_kind: GRANTOR_KIND_CLIENT
      grantor_id: "client-1" recipients: "clinic-9" purposes: "treatment"
      data_categories: "housing" data_categories: "mental_health_notes"
      starts_at { seconds: 1764000000 } expires_at { seconds: 1795536000 } revocable: true
    }
  }
)pb";

std::vector<v1::Record> Records() {
  std::vector<std::string> texts = {
      kRecords,
      // A disclosure under consent c-1.
      R"pb(seq: 4 stream_id: "case-1" commit_time { seconds: 1764000100 }
           leaf_hash: "\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa"
           event {
             event_id: "e4" stream_id: "case-1" subject_ids: "client-1" producer: "intake"
             occurred_at { seconds: 1764000090 nanos: 123456000 }
             disclosure_made {
               disclosure_id: "d-1" client_id: "client-1"
               recipient { recipient_id: "clinic-9" name: "Clinic Nine" address: "https://clinic9.example/fhir" }
               purpose: "treatment" data_categories: "housing" description: "housing plan"
               legal_basis: LEGAL_BASIS_CONSENT consent_id: "c-1" disclosed_by: "cm-1"
               client_informed: true client_informed_at { seconds: 1764000090 }
             }
           })pb",
      // Imminent harm, client view: person_at_risk withheld.
      R"pb(seq: 5 stream_id: "case-1" commit_time { seconds: 1764000200 }
           leaf_hash: "\xbb\xbb\xbb\xbb\xbb\xbb\xbb\xbb\xbb\xbb\xbb\xbb\xbb\xbb\xbb\xbb\xbb\xbb\xbb\xbb\xbb\xbb\xbb\xbb\xbb\xbb\xbb\xbb\xbb\xbb\xbb\xbb"
           withheld_fields: "person_at_risk"
           event {
             event_id: "e5" stream_id: "case-1" subject_ids: "client-1" producer: "intake"
             occurred_at { seconds: 1764000190 }
             disclosure_made {
               disclosure_id: "d-2" client_id: "client-1"
               recipient { recipient_id: "police-1" name: "City Police" address: "1 Main St, Oakland CA" }
               purpose: "prevent harm" data_categories: "housing"
               legal_basis: LEGAL_BASIS_IMMINENT_HARM justification: "threat made in session"
               minimum_necessary: "address only" disclosed_by: "cm-1"
             }
           })pb",
      R"pb(seq: 6 stream_id: "case-1" commit_time { seconds: 1764000300 }
           leaf_hash: "\xcc\xcc\xcc\xcc\xcc\xcc\xcc\xcc\xcc\xcc\xcc\xcc\xcc\xcc\xcc\xcc\xcc\xcc\xcc\xcc\xcc\xcc\xcc\xcc\xcc\xcc\xcc\xcc\xcc\xcc\xcc\xcc"
           event {
             event_id: "e6" stream_id: "case-1" subject_ids: "client-1"
             producer: "caseledger/access-service" occurred_at { seconds: 1764000300 }
             record_accessed { accessor_id: "cm-1" accessor_role: "case_manager" seqs: 4 purpose: "care coordination" }
           })pb",
      R"pb(seq: 7 stream_id: "case-1" commit_time { seconds: 1764000400 }
           leaf_hash: "\xdd\xdd\xdd\xdd\xdd\xdd\xdd\xdd\xdd\xdd\xdd\xdd\xdd\xdd\xdd\xdd\xdd\xdd\xdd\xdd\xdd\xdd\xdd\xdd\xdd\xdd\xdd\xdd\xdd\xdd\xdd\xdd"
           event {
             event_id: "e7" stream_id: "case-1" subject_ids: "client-1"
             producer: "caseledger/access-service" occurred_at { seconds: 1764000400 }
             record_accessed { accessor_id: "client-1" accessor_role: "client" seqs: 3 seqs: 4 seqs: 5 purpose: "right of access" }
           })pb",
      R"pb(seq: 8 stream_id: "@access" commit_time { seconds: 1764000500 }
           leaf_hash: "\xee\xee\xee\xee\xee\xee\xee\xee\xee\xee\xee\xee\xee\xee\xee\xee\xee\xee\xee\xee\xee\xee\xee\xee\xee\xee\xee\xee\xee\xee\xee\xee"
           event {
             event_id: "e8" stream_id: "@access" subject_ids: "client-1"
             producer: "caseledger/authz" occurred_at { seconds: 1764000500 }
             access_refused {
               accessor_id: "cm-2" accessor_role: "case_manager"
               method: "/caseledger.v1.AccessService/GetRecordHistory" resource: "client client-1"
               reason: "rule case_manager.deny: /caseledger.v1.AccessService/GetRecordHistory is not allowed for case_manager cm-2"
             }
           })pb",
      R"pb(seq: 9 stream_id: "case-1" commit_time { seconds: 1764000600 }
           leaf_hash: "\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11"
           event {
             event_id: "e9" stream_id: "case-1" subject_ids: "client-1"
             producer: "caseledger/access-service" occurred_at { seconds: 1764000600 }
             access_fulfilled { request_id: "ar-1" bundle_sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08" }
           })pb",
      R"pb(seq: 10 stream_id: "case-1" commit_time { seconds: 1764000700 }
           leaf_hash: "\x22\x22\x22\x22\x22\x22\x22\x22\x22\x22\x22\x22\x22\x22\x22\x22\x22\x22\x22\x22\x22\x22\x22\x22\x22\x22\x22\x22\x22\x22\x22\x22"
           event {
             event_id: "e10" stream_id: "case-1" subject_ids: "client-1" producer: "intake"
             occurred_at { seconds: 1764000700 }
             consent_revoked { consent_id: "c-1" revoked_by: "client-1" reason: "moved away" }
           })pb",
      // A record of an event type without a FHIR form: no resource.
      R"pb(seq: 11 stream_id: "case-1" commit_time { seconds: 1764000800 }
           leaf_hash: "\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33"
           event {
             event_id: "e11" stream_id: "case-1" subject_ids: "client-1" producer: "intake"
             occurred_at { seconds: 1764000800 }
             record_entry_written { entry_id: "n-1" data_category: "housing" text: "visited" author_id: "cm-1" }
           })pb",
      // An erased record: its content is withheld altogether, no resource.
      R"pb(seq: 12 stream_id: "case-1" commit_time { seconds: 1764000900 }
           leaf_hash: "\x44\x44\x44\x44\x44\x44\x44\x44\x44\x44\x44\x44\x44\x44\x44\x44\x44\x44\x44\x44\x44\x44\x44\x44\x44\x44\x44\x44\x44\x44\x44\x44"
           withheld_reason: "erased"
           event { event_id: "e12" stream_id: "case-1" occurred_at { seconds: 1764000900 } disclosure_made {} })pb",
  };
  std::vector<v1::Record> out;
  for (const std::string& t : texts) {
    v1::Record r;
    EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(t, &r)) << t;
    out.push_back(r);
  }
  return out;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

FhirBundleOptions Options() {
  FhirBundleOptions o;
  o.origin = "caseledger.local/log";
  o.produced_at = absl::FromUnixSeconds(1764001000);
  return o;
}

constexpr char kGolden[] = "services/fhir/testdata/golden_bundle.json";

// The golden export of every mapped event type (FHIR.md "Golden exports").
// Regenerate with CASELEDGER_UPDATE_GOLDEN=/abs/path/golden_bundle.json.
TEST(FhirBundleTest, GoldenExportOfEveryMappedEventType) {
  absl::StatusOr<nlohmann::ordered_json> b = FhirBundle(Records(), Options());
  ASSERT_TRUE(b.ok()) << b.status();
  const std::string got = b->dump(2) + "\n";
  if (const char* update = std::getenv("CASELEDGER_UPDATE_GOLDEN")) {
    std::ofstream(update) << got;
  }
  EXPECT_EQ(got, ReadFile(kGolden));
  // Every mapped event type produced its resource, and nothing else did.
  std::set<std::string> types;
  for (const auto& e : (*b)["entry"]) {
    for (const auto& ext : e["resource"]["extension"]) {
      for (const auto& sub : ext["extension"]) {
        if (sub["url"] == "eventType") types.insert(sub["valueCode"].get<std::string>());
      }
    }
  }
  EXPECT_EQ(types, std::set<std::string>(EventTypesWithFhirForm().begin(),
                                         EventTypesWithFhirForm().end()));
  EXPECT_EQ((*b)["entry"].size(), 7u);
}

TEST(FhirBundleTest, EachResourceNamesItsLedgerRecord) {
  absl::StatusOr<nlohmann::ordered_json> b = FhirBundle(Records(), Options());
  ASSERT_TRUE(b.ok()) << b.status();
  const nlohmann::ordered_json& consent = (*b)["entry"][0]["resource"];
  EXPECT_EQ(consent["resourceType"], "Consent");
  EXPECT_EQ(consent["status"], "inactive");  // revoked by seq 10
  const nlohmann::ordered_json& granted = consent["extension"][0]["extension"];
  EXPECT_EQ(granted[0]["valueString"], "3");
  EXPECT_EQ(granted[1]["valueString"],
            "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20");
  EXPECT_EQ(consent["extension"][1]["extension"][0]["valueString"], "10");
}

TEST(FhirBundleTest, ProtectedDetailOnlyWhenTheRecordCarriesIt) {
  std::vector<v1::Record> records = Records();
  absl::StatusOr<nlohmann::ordered_json> client = FhirBundle(records, Options());
  ASSERT_TRUE(client.ok());
  EXPECT_EQ(client->dump().find("person_at_risk"), std::string::npos);
  records[2].mutable_event()->mutable_disclosure_made()->set_person_at_risk("Jane Roe");
  records[2].clear_withheld_fields();
  absl::StatusOr<nlohmann::ordered_json> full = FhirBundle(records, Options());
  ASSERT_TRUE(full.ok());
  EXPECT_NE(full->dump().find("Jane Roe"), std::string::npos);
}

TEST(FhirBundleTest, ConsentActiveUntilRevokedAndEmitFromSkipsEarlierEvents) {
  std::vector<v1::Record> records = Records();
  records.erase(records.begin() + 7);  // the revocation
  FhirBundleOptions o = Options();
  absl::StatusOr<nlohmann::ordered_json> b = FhirBundle(records, o);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ((*b)["entry"][0]["resource"]["status"], "active");
  o.emit_from = absl::FromUnixSeconds(1764000300);
  b = FhirBundle(records, o);
  ASSERT_TRUE(b.ok());
  ASSERT_EQ((*b)["entry"].size(), 4u);  // reads at 300 and 400, refusal, fulfilment
  EXPECT_EQ((*b)["entry"][0]["resource"]["id"], "seq-6");
}

TEST(FhirBundleTest, SearchsetMarksEntriesAsMatches) {
  FhirBundleOptions o = Options();
  o.searchset = true;
  absl::StatusOr<nlohmann::ordered_json> b = FhirBundle(Records(), o);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ((*b)["type"], "searchset");
  EXPECT_EQ((*b)["total"], 7);
  for (const auto& e : (*b)["entry"]) EXPECT_EQ(e["search"]["mode"], "match");
}

TEST(FhirBundleTest, RefusesRecordsOutOfOrderOrWithoutEvent) {
  std::vector<v1::Record> records = Records();
  std::swap(records[0], records[1]);
  EXPECT_EQ(FhirBundle(records, Options()).status().message(),
            "records[1]: seq 3, want more than 4");
  records = Records();
  records[0].clear_event();
  EXPECT_EQ(FhirBundle(records, Options()).status().code(), absl::StatusCode::kInvalidArgument);
}

// Every event type of proto/events.proto is decided: mapped or listed as
// having no FHIR form (FHIR.md "Mapping"), never both.
TEST(FhirBundleTest, EveryEventTypeIsDecided) {
  const google::protobuf::OneofDescriptor* body =
      v1::Event::descriptor()->FindOneofByName("body");
  ASSERT_NE(body, nullptr);
  std::set<std::string> with(EventTypesWithFhirForm().begin(), EventTypesWithFhirForm().end());
  std::set<std::string> without(EventTypesWithoutFhirForm().begin(),
                                EventTypesWithoutFhirForm().end());
  for (int i = 0; i < body->field_count(); ++i) {
    const std::string name = body->field(i)->name();
    EXPECT_NE(with.count(name) + without.count(name), 0u) << name << " is not decided";
    EXPECT_FALSE(with.count(name) > 0 && without.count(name) > 0) << name;
    EXPECT_EQ(HasFhirForm(name), with.count(name) > 0) << name;
  }
  EXPECT_EQ(with.size() + without.size(), static_cast<size_t>(body->field_count()));
}

}  // namespace
}  // namespace caseledger
