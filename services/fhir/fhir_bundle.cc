#include "services/fhir/fhir_bundle.h"

#include <map>
#include <optional>
#include <set>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "proto/events.pb.h"

namespace caseledger {
namespace {

using json = nlohmann::ordered_json;

// Code systems (FHIR.md "Codes").
constexpr char kDcm[] = "http://dicom.nema.org/resources/ontology/DCM";
constexpr char kSct[] = "http://snomed.info/sct";
constexpr char kLifecycle[] = "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle";
constexpr char kRestful[] = "http://hl7.org/fhir/restful-interaction";
constexpr char kAuditEventType[] = "http://terminology.hl7.org/CodeSystem/audit-event-type";
constexpr char kEntityType[] = "http://terminology.hl7.org/CodeSystem/audit-entity-type";
constexpr char kObjectRole[] = "http://terminology.hl7.org/CodeSystem/object-role";
constexpr char kSourceType[] = "http://terminology.hl7.org/CodeSystem/security-source-type";
constexpr char kParticipation[] = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType";
constexpr char kActReason[] = "http://terminology.hl7.org/CodeSystem/v3-ActReason";
constexpr char kActCode[] = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
constexpr char kConsentScope[] = "http://terminology.hl7.org/CodeSystem/consentscope";
constexpr char kConsentCategory[] = "http://terminology.hl7.org/CodeSystem/consentcategorycodes";
constexpr char kConsentAction[] = "http://terminology.hl7.org/CodeSystem/consentaction";
constexpr char kResourceTypes[] = "http://hl7.org/fhir/resource-types";
// caseledger's own identifier and code systems.
constexpr char kClientIds[] = "urn:caseledger:client";
constexpr char kActorIds[] = "urn:caseledger:actor";
constexpr char kRecipientIds[] = "urn:caseledger:recipient";
constexpr char kLogIds[] = "urn:caseledger:log";
constexpr char kSeqIds[] = "urn:caseledger:seq";
constexpr char kDisclosureIds[] = "urn:caseledger:disclosure";
constexpr char kConsentIds[] = "urn:caseledger:consent";
constexpr char kLegalBasis[] = "https://caseledger.dev/fhir/CodeSystem/legal-basis";
constexpr char kPurposes[] = "https://caseledger.dev/fhir/CodeSystem/purpose";
constexpr char kDataCategories[] = "https://caseledger.dev/fhir/CodeSystem/data-category";
constexpr char kDetail[] = "https://caseledger.dev/fhir/CodeSystem/detail";

// The event types with a FHIR form, and without one (FHIR.md "Mapping").
const std::vector<std::string>& WithForm() {
  static const auto* v = new std::vector<std::string>{
      "disclosure_made", "consent_granted", "consent_revoked", "record_accessed",
      "access_refused",  "access_fulfilled"};
  return *v;
}

const std::vector<std::string>& WithoutForm() {
  static const auto* v = new std::vector<std::string>{
      "case_opened",          "participant_added",
      "participant_removed",  "case_manager_assigned",
      "conflict_declared",    "conflict_resolved",
      "referral_made",        "case_transferred",
      "services_interrupted", "services_resumed",
      "case_closed",          "case_reopened",
      "records_disposed",     "record_entry_written",
      "record_amended",       "client_informed",
      "access_requested",     "access_denied",
      "access_extended",      "subject_erased",
      "master_key_rotated",   "accounting_requested",
      "accounting_fulfilled", "accounting_extended",
      "accounting_suspended", "amendment_requested",
      "amendment_accepted",   "amendment_denied",
      "amendment_extended",   "disagreement_filed",
      "disagreement_rebutted", "legal_hold_placed",
      "legal_hold_released",  "access_review_requested",
      "access_reviewed",      "client_informed_of_conflict",
      "part2_list_requested", "part2_list_provided"};
  return *v;
}

json Coding(absl::string_view system, absl::string_view code, absl::string_view display = "") {
  json c = {{"system", system}, {"code", code}};
  if (!display.empty()) c["display"] = display;
  return c;
}

json Concept(json coding) { return {{"coding", json::array({std::move(coding)})}}; }

json IdRef(absl::string_view system, absl::string_view value, absl::string_view display = "") {
  json r = {{"identifier", {{"system", system}, {"value", value}}}};
  if (!display.empty()) r["display"] = display;
  return r;
}

// FHIR instant (and dateTime): UTC, to the microsecond the ledger stores.
std::string Instant(int64_t seconds, int32_t nanos) {
  const absl::Time t = absl::FromUnixSeconds(seconds) + absl::Nanoseconds(nanos);
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E*SZ", t, absl::UTCTimeZone());
}

std::string Instant(const google::protobuf::Timestamp& t) { return Instant(t.seconds(), t.nanos()); }

absl::Time Occurred(const v1::Record& r) {
  const google::protobuf::Timestamp& t = r.event().occurred_at();
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

std::string EventType(const v1::Event& e) {
  if (e.body_case() == v1::Event::BODY_NOT_SET) return "";
  return e.GetDescriptor()->FindFieldByNumber(e.body_case())->name();
}

// The ledger-record extension: where the resource comes from.
json LedgerRecordExtension(const v1::Record& r, absl::string_view role = "") {
  json ext = {{"url", kFhirLedgerRecordExtension},
              {"extension",
               json::array({{{"url", "seq"}, {"valueString", absl::StrCat(r.seq())}},
                            {{"url", "leafHash"},
                             {"valueString", absl::BytesToHexString(r.leaf_hash())}},
                            {{"url", "eventType"}, {"valueCode", EventType(r.event())}},
                            {{"url", "case"}, {"valueString", r.stream_id()}}})}};
  if (!role.empty()) ext["extension"].push_back({{"url", "role"}, {"valueCode", role}});
  return ext;
}

json Detail(absl::string_view type, absl::string_view value) {
  return {{"type", type}, {"valueString", value}};
}

// The ledger as audit source, observer and source agent.
json Source(const FhirBundleOptions& o) {
  return {{"site", o.origin},
          {"observer", IdRef(kLogIds, o.origin, o.origin)},
          {"type", json::array({Coding(kSourceType, "4", "Application Server")})}};
}

json SourceAgent(const FhirBundleOptions& o) {
  return {{"type", Concept(Coding(kDcm, "110153", "Source Role ID"))},
          {"who", IdRef(kLogIds, o.origin, o.origin)},
          {"requestor", false},
          {"network", {{"address", o.origin}, {"type", "5"}}}};
}

json PatientEntity(absl::string_view client_id) {
  return {{"what", IdRef(kClientIds, client_id)},
          {"type", Coding(kEntityType, "1", "Person")},
          {"role", Coding(kObjectRole, "1", "Patient")}};
}

json RecordEntity(uint64_t seq) {
  return {{"what", IdRef(kSeqIds, absl::StrCat(seq))},
          {"type", Coding(kEntityType, "2", "System Object")},
          {"role", Coding(kObjectRole, "4", "Domain Resource")}};
}

std::string LegalBasisCode(v1::LegalBasis b) {
  std::string name = v1::LegalBasis_Name(b);
  constexpr absl::string_view kPrefix = "LEGAL_BASIS_";
  if (absl::StartsWith(name, kPrefix)) name = name.substr(kPrefix.size());
  for (char& ch : name) ch = ch == '_' ? '-' : static_cast<char>(std::tolower(ch));
  return name;
}

// The HL7 purpose of use that a legal basis amounts to, where one fits
// (FHIR.md "purposeOfEvent").
std::optional<json> ActReasonOf(v1::LegalBasis b) {
  switch (b) {
    case v1::LEGAL_BASIS_TREATMENT:
      return Coding(kActReason, "TREAT", "treatment");
    case v1::LEGAL_BASIS_PAYMENT:
      return Coding(kActReason, "HPAYMT", "healthcare payment");
    case v1::LEGAL_BASIS_OPERATIONS:
      return Coding(kActReason, "HOPERAT", "healthcare operations");
    case v1::LEGAL_BASIS_REQUIRED_BY_LAW:
    case v1::LEGAL_BASIS_PART2_COURT_ORDER:
      return Coding(kActReason, "HLEGAL", "legal");
    case v1::LEGAL_BASIS_PART2_MEDICAL_EMERGENCY:
      return Coding(kActReason, "ETREAT", "emergency treatment");
    case v1::LEGAL_BASIS_PART2_RESEARCH:
      return Coding(kActReason, "HRESCH", "healthcare research");
    case v1::LEGAL_BASIS_PART2_AUDIT:
      return Coding(kActReason, "HSYSADMIN", "health system administration");
    case v1::LEGAL_BASIS_TO_CLIENT:
      return Coding(kActReason, "PATRQT", "patient requested");
    default:
      return std::nullopt;
  }
}

struct Consents {
  // (case, consent_id) -> the consent_granted record's event and resource id.
  struct Granted {
    const v1::Record* record;
    std::string resource_id;
  };
  std::map<std::pair<std::string, std::string>, Granted> granted;
  std::map<std::pair<std::string, std::string>, const v1::Record*> revoked;
};

std::string AuditEventId(uint64_t seq) { return absl::StrCat("seq-", seq); }
std::string ConsentId(uint64_t seq) { return absl::StrCat("consent-seq-", seq); }

json NewAuditEvent(const v1::Record& r) {
  const std::string at = Instant(r.event().occurred_at());
  return {{"resourceType", "AuditEvent"},
          {"id", AuditEventId(r.seq())},
          {"extension", json::array({LedgerRecordExtension(r)})},
          {"period", {{"start", at}, {"end", at}}},
          {"recorded", Instant(r.commit_time())}};
}

json Disclosure(const v1::Record& r, const Consents& consents, const FhirBundleOptions& o) {
  const v1::DisclosureMade& d = r.event().disclosure_made();
  json ae = NewAuditEvent(r);
  ae["type"] = Coding(kDcm, "110106", "Export");
  ae["subtype"] = json::array({Coding(kLifecycle, "disclose", "Disclose Record Lifecycle Event")});
  ae["action"] = "R";
  ae["outcome"] = "0";
  json purpose = {{"coding", json::array()}};
  if (std::optional<json> reason = ActReasonOf(d.legal_basis())) {
    purpose["coding"].push_back(*reason);
  }
  purpose["coding"].push_back(Coding(kLegalBasis, LegalBasisCode(d.legal_basis())));
  if (!d.purpose().empty()) {
    purpose["coding"].push_back(Coding(kPurposes, d.purpose()));
    purpose["text"] = d.purpose();
  }
  ae["purposeOfEvent"] = json::array({purpose});

  json agents = json::array({SourceAgent(o)});
  json recipient = {{"type", Concept(Coding(kDcm, "110152", "Destination Role ID"))},
                    {"who", IdRef(kRecipientIds, d.recipient().recipient_id(),
                                  d.recipient().name())},
                    {"requestor", false}};
  // A network address only when it is one (a URI); a postal address goes
  // in the data entity's details.
  const bool uri_address = absl::StrContains(d.recipient().address(), "://");
  if (uri_address) recipient["network"] = {{"address", d.recipient().address()}, {"type", "5"}};
  agents.push_back(recipient);
  // The custodian that released the data: the producing service of the
  // record, which keeps the case.
  agents.push_back({{"type", Concept(Coding(kSct, "159541003", "Record keeping/library clerk"))},
                    {"who", IdRef(kActorIds, r.event().producer())},
                    {"requestor", false}});
  // The authorizer who represented the patient: the consent's grantor (the
  // client or their representative), or the client for a disclosure to the
  // client.
  std::string authorizer;
  if (d.legal_basis() == v1::LEGAL_BASIS_CONSENT) {
    auto it = consents.granted.find({r.stream_id(), d.consent_id()});
    authorizer = it != consents.granted.end()
                     ? it->second.record->event().consent_granted().grantor_id()
                     : d.client_id();
  } else if (d.legal_basis() == v1::LEGAL_BASIS_TO_CLIENT) {
    authorizer = d.client_id();
  }
  if (!authorizer.empty()) {
    agents.push_back({{"type", Concept(Coding(kSct, "429577009", "Patient Advocate"))},
                      {"who", IdRef(kActorIds, authorizer)},
                      {"requestor", false}});
  }
  if (!d.disclosed_by().empty()) {
    agents.push_back({{"type", Concept(Coding(kParticipation, "RESP", "responsible party"))},
                      {"who", IdRef(kActorIds, d.disclosed_by())},
                      {"requestor", true}});
  }
  ae["agent"] = std::move(agents);
  ae["source"] = Source(o);

  json entities = json::array({PatientEntity(d.client_id())});
  json data = {{"what", IdRef(kDisclosureIds, d.disclosure_id())},
               {"type", Coding(kEntityType, "2", "System Object")},
               {"role", Coding(kObjectRole, "4", "Domain Resource")}};
  if (!d.description().empty()) data["description"] = d.description();
  json details = json::array();
  for (const std::string& c : d.data_categories()) details.push_back(Detail("data_category", c));
  if (!d.minimum_necessary().empty()) {
    details.push_back(Detail("minimum_necessary", d.minimum_necessary()));
  }
  if (!d.recipient().address().empty() && !uri_address) {
    details.push_back(Detail("recipient_address", d.recipient().address()));
  }
  if (!d.legal_citation().empty()) details.push_back(Detail("legal_citation", d.legal_citation()));
  if (!d.justification().empty()) details.push_back(Detail("justification", d.justification()));
  // Protected: present only in a full view.
  if (!d.person_at_risk().empty()) details.push_back(Detail("person_at_risk", d.person_at_risk()));
  details.push_back(Detail("client_informed", d.client_informed() ? "true" : "false"));
  if (d.has_client_informed_at()) {
    details.push_back(Detail("client_informed_at", Instant(d.client_informed_at())));
  }
  data["detail"] = std::move(details);
  entities.push_back(std::move(data));
  if (d.legal_basis() == v1::LEGAL_BASIS_CONSENT && !d.consent_id().empty()) {
    json consent = {{"type", Coding(kResourceTypes, "Consent", "Consent")},
                    {"what", IdRef(kConsentIds, d.consent_id())}};
    auto it = consents.granted.find({r.stream_id(), d.consent_id()});
    if (it != consents.granted.end()) {
      consent["what"]["reference"] = absl::StrCat("Consent/", it->second.resource_id);
    }
    entities.push_back(std::move(consent));
  }
  ae["entity"] = std::move(entities);
  return ae;
}

// access_fulfilled: the record history given to the client (right of
// access), a disclosure to the client.
json AccessFulfilled(const v1::Record& r, const FhirBundleOptions& o) {
  const v1::AccessFulfilled& f = r.event().access_fulfilled();
  json ae = NewAuditEvent(r);
  ae["type"] = Coding(kDcm, "110106", "Export");
  ae["subtype"] = json::array({Coding(kLifecycle, "disclose", "Disclose Record Lifecycle Event")});
  ae["action"] = "R";
  ae["outcome"] = "0";
  ae["purposeOfEvent"] = json::array(
      {{{"coding", json::array({Coding(kActReason, "PATRQT", "patient requested"),
                                Coding(kLegalBasis, LegalBasisCode(v1::LEGAL_BASIS_TO_CLIENT))})},
        {"text", "right of access"}}});
  json agents = json::array({SourceAgent(o)});
  for (const std::string& s : r.event().subject_ids()) {
    agents.push_back({{"type", Concept(Coding(kDcm, "110152", "Destination Role ID"))},
                      {"who", IdRef(kClientIds, s)},
                      {"requestor", true}});
  }
  ae["agent"] = std::move(agents);
  ae["source"] = Source(o);
  json entities = json::array();
  for (const std::string& s : r.event().subject_ids()) entities.push_back(PatientEntity(s));
  json data = {{"what", IdRef("urn:caseledger:access-request", f.request_id())},
               {"type", Coding(kEntityType, "2", "System Object")},
               {"role", Coding(kObjectRole, "20", "Job")}};
  if (!f.bundle_sha256().empty()) {
    data["detail"] = json::array({Detail("bundle_sha256", f.bundle_sha256())});
  }
  entities.push_back(std::move(data));
  ae["entity"] = std::move(entities);
  return ae;
}

// record_accessed: BALP read (one record) or query (several).
json RecordAccessed(const v1::Record& r, const FhirBundleOptions& o) {
  const v1::RecordAccessed& a = r.event().record_accessed();
  const bool one = a.seqs_size() == 1;
  json ae = NewAuditEvent(r);
  ae["type"] = Coding(kAuditEventType, "rest", "Restful Operation");
  ae["subtype"] = json::array({one ? Coding(kRestful, "read", "read")
                                   : Coding(kRestful, "search-type", "search type")});
  ae["action"] = one ? "R" : "E";
  ae["outcome"] = "0";
  if (!a.purpose().empty()) ae["purposeOfEvent"] = json::array({{{"text", a.purpose()}}});
  json user = {{"type", Concept(Coding(kParticipation, "IRCP", "information recipient"))},
               {"who", IdRef(kActorIds, a.accessor_id())},
               {"requestor", true}};
  if (!a.accessor_role().empty()) user["role"] = json::array({{{"text", a.accessor_role()}}});
  if (!a.purpose().empty()) user["purposeOfUse"] = json::array({{{"text", a.purpose()}}});
  ae["agent"] = json::array({SourceAgent(o), user});
  ae["source"] = Source(o);
  json entities = json::array();
  for (const std::string& s : r.event().subject_ids()) entities.push_back(PatientEntity(s));
  for (uint64_t seq : a.seqs()) entities.push_back(RecordEntity(seq));
  ae["entity"] = std::move(entities);
  return ae;
}

// access_refused: the refused call, outcome "minor failure" with the
// refusal's message.
json AccessRefused(const v1::Record& r, const FhirBundleOptions& o) {
  const v1::AccessRefused& a = r.event().access_refused();
  const bool write = absl::StrContains(a.method(), "/Append");
  json ae = NewAuditEvent(r);
  ae["type"] = Coding(kAuditEventType, "rest", "Restful Operation");
  ae["subtype"] = json::array(
      {write ? Coding(kRestful, "create", "create") : Coding(kRestful, "read", "read")});
  ae["action"] = write ? "C" : "R";
  ae["outcome"] = "4";
  ae["outcomeDesc"] = a.reason();
  json user = {{"type", Concept(Coding(kParticipation, "IRCP", "information recipient"))},
               {"who", IdRef(kActorIds, a.accessor_id())},
               {"requestor", true}};
  if (!a.accessor_role().empty()) user["role"] = json::array({{{"text", a.accessor_role()}}});
  ae["agent"] = json::array({SourceAgent(o), user});
  ae["source"] = Source(o);
  json entities = json::array();
  for (const std::string& s : r.event().subject_ids()) entities.push_back(PatientEntity(s));
  json call = {{"type", Coding(kEntityType, "2", "System Object")},
               {"role", Coding(kObjectRole, "24", "Query")},
               {"what", IdRef("urn:caseledger:method", a.method())}};
  if (!a.resource().empty()) call["detail"] = json::array({Detail("resource", a.resource())});
  entities.push_back(std::move(call));
  ae["entity"] = std::move(entities);
  return ae;
}

json Consent(const v1::Record& r, const v1::Record* revoked) {
  const v1::ConsentGranted& c = r.event().consent_granted();
  json res = {{"resourceType", "Consent"}, {"id", ConsentId(r.seq())}};
  json ext = json::array({LedgerRecordExtension(r, "granted")});
  if (revoked != nullptr) ext.push_back(LedgerRecordExtension(*revoked, "revoked"));
  res["extension"] = std::move(ext);
  res["identifier"] = json::array({{{"system", kConsentIds}, {"value", c.consent_id()}},
                                   {{"system", kSeqIds}, {"value", absl::StrCat(r.seq())}}});
  res["status"] = revoked != nullptr ? "inactive" : "active";
  res["scope"] = Concept(Coding(kConsentScope, "patient-privacy", "Privacy Consent"));
  res["category"] = json::array({Concept(Coding(kConsentCategory, "npp",
                                                "Notice of Privacy Practices"))});
  res["patient"] = IdRef(kClientIds, c.client_id());
  res["dateTime"] = Instant(r.event().occurred_at());
  if (!c.grantor_id().empty()) res["performer"] = json::array({IdRef(kActorIds, c.grantor_id())});
  res["policyRule"] = Concept(Coding(kActCode, "OPTIN", "opt-in"));
  json provision = {{"type", "permit"}};
  json period = json::object();
  if (c.has_starts_at()) period["start"] = Instant(c.starts_at());
  if (c.has_expires_at()) period["end"] = Instant(c.expires_at());
  if (!period.empty()) provision["period"] = std::move(period);
  json actors = json::array();
  for (const std::string& to : c.recipients()) {
    actors.push_back({{"role", Concept(Coding(kParticipation, "IRCP", "information recipient"))},
                      {"reference", IdRef(kRecipientIds, to)}});
  }
  if (!actors.empty()) provision["actor"] = std::move(actors);
  provision["action"] = json::array({Concept(Coding(kConsentAction, "disclose", "Disclose"))});
  json purposes = json::array();
  for (const std::string& p : c.purposes()) purposes.push_back(Coding(kPurposes, p));
  if (!purposes.empty()) provision["purpose"] = std::move(purposes);
  json classes = json::array();
  for (const std::string& d : c.data_categories()) classes.push_back(Coding(kDataCategories, d));
  if (!classes.empty()) provision["class"] = std::move(classes);
  res["provision"] = std::move(provision);
  return res;
}

}  // namespace

bool HasFhirForm(absl::string_view event_type) {
  for (const std::string& t : WithForm()) {
    if (t == event_type) return true;
  }
  return false;
}

const std::vector<std::string>& EventTypesWithFhirForm() { return WithForm(); }
const std::vector<std::string>& EventTypesWithoutFhirForm() { return WithoutForm(); }

absl::StatusOr<nlohmann::ordered_json> FhirBundle(const std::vector<v1::Record>& records,
                                          const FhirBundleOptions& options) {
  Consents consents;
  for (size_t i = 0; i < records.size(); ++i) {
    const v1::Record& r = records[i];
    if (!r.has_event()) {
      return absl::InvalidArgumentError(absl::StrCat("records[", i, "] (seq ", r.seq(),
                                                     "): no event"));
    }
    if (i > 0 && r.seq() <= records[i - 1].seq()) {
      return absl::InvalidArgumentError(absl::StrCat("records[", i, "]: seq ", r.seq(),
                                                     ", want more than ", records[i - 1].seq()));
    }
    if (!r.withheld_reason().empty()) continue;
    if (r.event().has_consent_granted()) {
      consents.granted.emplace(
          std::make_pair(r.stream_id(), r.event().consent_granted().consent_id()),
          Consents::Granted{&r, ConsentId(r.seq())});
    } else if (r.event().has_consent_revoked()) {
      consents.revoked.emplace(
          std::make_pair(r.stream_id(), r.event().consent_revoked().consent_id()), &r);
    }
  }
  json bundle = {{"resourceType", "Bundle"},
                 {"type", options.searchset ? "searchset" : "collection"},
                 {"timestamp", absl::FormatTime("%Y-%m-%dT%H:%M:%E*SZ", options.produced_at,
                                                absl::UTCTimeZone())}};
  json entries = json::array();
  for (const v1::Record& r : records) {
    if (!r.withheld_reason().empty()) continue;
    json resource;
    const v1::Event& e = r.event();
    if (Occurred(r) < options.emit_from) {
      // A consent revoked inside the window still shows, inactive.
      bool revoked_in_window = false;
      if (e.has_consent_granted()) {
        auto it = consents.revoked.find({r.stream_id(), e.consent_granted().consent_id()});
        revoked_in_window = it != consents.revoked.end() && Occurred(*it->second) >= options.emit_from;
      }
      if (!revoked_in_window) continue;
    }
    switch (e.body_case()) {
      case v1::Event::kDisclosureMade:
        resource = Disclosure(r, consents, options);
        break;
      case v1::Event::kAccessFulfilled:
        resource = AccessFulfilled(r, options);
        break;
      case v1::Event::kRecordAccessed:
        resource = RecordAccessed(r, options);
        break;
      case v1::Event::kAccessRefused:
        resource = AccessRefused(r, options);
        break;
      case v1::Event::kConsentGranted: {
        auto it = consents.revoked.find({r.stream_id(), e.consent_granted().consent_id()});
        resource = Consent(r, it != consents.revoked.end() ? it->second : nullptr);
        break;
      }
      default:
        // consent_revoked is part of its Consent; the rest have no FHIR form.
        continue;
    }
    json entry = {{"fullUrl", absl::StrCat("urn:caseledger:", options.origin, ":",
                                           resource["resourceType"].get<std::string>(), "/",
                                           resource["id"].get<std::string>())},
                  {"resource", std::move(resource)}};
    if (options.searchset) entry["search"] = {{"mode", "match"}};
    entries.push_back(std::move(entry));
  }
  if (options.searchset) bundle["total"] = entries.size();
  bundle["entry"] = std::move(entries);
  return bundle;
}

}  // namespace caseledger
