#include "services/policy/policy.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/text_format.h"
#include "services/readmodel/case_state.h"

namespace caseledger {
namespace {

constexpr int64_t kT0 = 1767225600;  // 2026-01-01T00:00:00Z
constexpr int64_t kDay = 86400;

// One event as text format plus the day (after kT0) it occurs; kLatest: the
// day of the latest step before it (0 for the first). Unless the text says
// otherwise the event is in stream "case-1" and concerns client "cl-1".
constexpr int kLatest = -1;
struct Step {
  std::string text;
  int day = kLatest;
};

v1::Event Parse(const Step& step, int latest_day = 0) {
  const int day = step.day == kLatest ? latest_day : step.day;
  v1::Event e;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(step.text, &e)) << step.text;
  if (e.stream_id().empty()) e.set_stream_id("case-1");
  if (e.subject_ids().empty()) e.add_subject_ids("cl-1");
  if (e.event_id().empty()) e.set_event_id(absl::StrCat("ev-", day, "-", step.text.size()));
  if (!e.has_occurred_at()) e.mutable_occurred_at()->set_seconds(kT0 + day * kDay);
  return e;
}

// The server received (and committed) the event when it occurred.
CheckContext ReceivedWhenItOccurred(const v1::Event& e) {
  return CheckContext{TimeFromProto(e.occurred_at())};
}

// Checks and applies each step; every one must be accepted. Returns the
// latest day of the steps through *latest_day.
void RunSteps(const std::vector<Step>& steps, CaseState* state, int* latest_day) {
  for (const Step& step : steps) {
    v1::Event e = Parse(step, *latest_day);
    if (step.day != kLatest) *latest_day = std::max(*latest_day, step.day);
    const CheckContext context = ReceivedWhenItOccurred(e);
    absl::Status s = CheckEvent(*state, e, context);
    ASSERT_TRUE(s.ok()) << s << "\nin setup step: " << step.text;
    ASSERT_EQ(ApplyEvent(e, state->version + 1, context.received_at, state), absl::OkStatus());
  }
}

// 42 CFR 2.32: the hash of the notice sent with a consent-based disclosure.
const char kPart2Notice[] = "part2_notice_sha256: \"fedcba9876543210fedcba9876543210\"";
// A signed Part 2 consent form (42 CFR 2.31(a): signed, patient named, dated).
const char kSignedForm[] =
    "signed_form_sha256: \"0123456789abcdef0123456789abcdef\" patient_name: \"Ana Client\" "
    "signed_at { seconds: 1767225600 }";
const char kSignedFormOnly[] = "signed_form_sha256: \"0123456789abcdef0123456789abcdef\"";
// 42 CFR 2.31(a): a Part 2 consent says when it expires.
const char kExpiresAtDischarge[] = "expiry_event: \"discharge from the program\" ";

// What a consent says the client was told (services/policy/RULES.md I1-I2), as text
// format fields, for the client deciding and for a representative.
#define INFORMED_FIELDS                                                                 \
  "told_right_to_revoke: true told_consequences_of_refusing: true "                     \
  "told_redisclosure_risk: true told_limits_of_confidentiality: true language: \"en\" " \
  "comprehension_aid: COMPREHENSION_AID_NONE "
#define INFORMED_BY_CLIENT \
  "informed { " INFORMED_FIELDS "capacity: CONSENT_CAPACITY_CLIENT_CAPABLE } "
#define INFORMED_BY_REPRESENTATIVE                  \
  "informed { " INFORMED_FIELDS                     \
  "capacity: CONSENT_CAPACITY_REPRESENTATIVE_ACTS " \
  "capacity_note: \"client has advanced dementia\" } "

// A representative's authority over every matter (services/policy/RULES.md R1).
const char kGuardian[] =
    "authority { document_sha256: \"0123456789abcdef0123456789abcdef\" "
    "scope: REPRESENTATIVE_SCOPE_ALL document_kind: \"guardianship order\" }";
// Representative rep-2 with the given authority fields (the document hash set).
std::string Representative2(absl::string_view authority) {
  return absl::StrCat(
      "participant_added { participant_id: \"rep-2\" "
      "role: PARTICIPANT_ROLE_AUTHORIZED_REPRESENTATIVE authority { "
      "document_sha256: \"0123456789abcdef0123456789abcdef\" ",
      authority, " } }");
}
// Consent c-9 of cl-1 by the client with the given informed consent fields
// (and extra fields of the consent).
std::string InformedConsent(absl::string_view informed, absl::string_view extra = "") {
  return absl::StrCat(
      "consent_granted { consent_id: \"c-9\" client_id: \"cl-1\" grantor_kind: "
      "GRANTOR_KIND_CLIENT grantor_id: \"cl-1\" recipients: \"r-1\" purposes: \"p\" "
      "data_categories: \"h\" informed { ",
      informed, " } ", extra, " }");
}
// Consent c-9 of cl-1 by representative rep-1 with the given informed fields.
std::string InformedConsentByRep(absl::string_view informed) {
  return absl::StrCat(
      "consent_granted { consent_id: \"c-9\" client_id: \"cl-1\" grantor_kind: "
      "GRANTOR_KIND_AUTHORIZED_REPRESENTATIVE grantor_id: \"rep-1\" recipients: \"r-1\" "
      "purposes: \"p\" data_categories: \"h\" informed { ",
      informed, " } }");
}
const char kToldAll[] =
    "told_right_to_revoke: true told_consequences_of_refusing: true "
    "told_redisclosure_risk: true told_limits_of_confidentiality: true ";
const char kCapable[] = "capacity: CONSENT_CAPACITY_CLIENT_CAPABLE ";

// A consent of cl-1 granted by rep-2.
const char kConsentByRep2[] =
    "consent_granted { " INFORMED_BY_REPRESENTATIVE
    "consent_id: \"c-9\" client_id: \"cl-1\" grantor_kind: "
    "GRANTOR_KIND_AUTHORIZED_REPRESENTATIVE grantor_id: \"rep-2\" recipients: \"r-1\" "
    "purposes: \"p\" data_categories: \"h\" }";

enum class Base { kNone, kBehavioralHealth, kSubstanceUse };

// A case with a client, a representative, a third party and a manager; an
// entry e-1; consents c-1 (cl-1, expires day 60), c-2 (revoked day 2), c-3
// (client cl-2), c-4 (starts day 20); conflict k-1; access request ar-1 (day
// 1, due day 31); disclosure d-1 whose client notice is pending. Conflict k-1
// is staff member s-1's, unresolved, the client not yet told.
std::vector<Step> BaseHistory(Base base) {
  if (base == Base::kNone) return {};
  const std::string record_class =
      base == Base::kSubstanceUse ? "RECORD_CLASS_SUBSTANCE_USE" : "RECORD_CLASS_BEHAVIORAL_HEALTH";
  const std::string c1_categories =
      base == Base::kSubstanceUse
          ? "data_categories: \"housing\" data_categories: \"substance_use_treatment\""
          : "data_categories: \"housing\" data_categories: \"mental_health_notes\"";
  return {
      {absl::StrCat("case_opened { program: \"housing-first\" jurisdiction: \"US-CA\" "
                    "record_class: ",
                    record_class, " reason: \"intake\" }")},
      {"participant_added { participant_id: \"cl-1\" role: PARTICIPANT_ROLE_CLIENT }"},
      {absl::StrCat("participant_added { participant_id: \"rep-1\" "
                    "role: PARTICIPANT_ROLE_AUTHORIZED_REPRESENTATIVE ",
                    kGuardian, " }")},
      {"participant_added { participant_id: \"tp-1\" role: PARTICIPANT_ROLE_THIRD_PARTY }"},
      {"case_manager_assigned { manager_id: \"m-1\" reason: \"intake\" }"},
      {"record_entry_written { entry_id: \"e-1\" data_category: \"housing\" text: \"t\" }"},
      {absl::StrCat("consent_granted { " INFORMED_BY_CLIENT
                    "consent_id: \"c-1\" client_id: \"cl-1\" "
                    "grantor_kind: GRANTOR_KIND_CLIENT grantor_id: \"cl-1\" "
                    "recipients: \"r-1\" recipients: \"Dr. Ada\" purposes: \"care_coordination\" ",
                    c1_categories, " expires_at { seconds: ", kT0 + 60 * kDay, " } ", kSignedForm,
                    " revocable: true }")},
      {absl::StrCat("consent_granted { " INFORMED_BY_CLIENT
                    "consent_id: \"c-2\" client_id: \"cl-1\" "
                    "grantor_kind: GRANTOR_KIND_CLIENT grantor_id: \"cl-1\" recipients: \"r-1\" "
                    "purposes: \"care_coordination\" data_categories: \"housing\" ",
                    kExpiresAtDischarge, kSignedForm, " }")},
      {absl::StrCat("subject_ids: \"cl-2\" consent_granted { " INFORMED_BY_CLIENT
                    "consent_id: \"c-3\" "
                    "client_id: \"cl-2\" grantor_kind: GRANTOR_KIND_CLIENT grantor_id: \"cl-2\" "
                    "recipients: \"r-1\" purposes: \"care_coordination\" "
                    "data_categories: \"housing\" ",
                    kExpiresAtDischarge, kSignedForm, " }")},
      {absl::StrCat("consent_granted { " INFORMED_BY_CLIENT
                    "consent_id: \"c-4\" client_id: \"cl-1\" "
                    "grantor_kind: GRANTOR_KIND_CLIENT grantor_id: \"cl-1\" recipients: \"r-1\" "
                    "purposes: \"care_coordination\" data_categories: \"housing\" "
                    "starts_at { seconds: ",
                    kT0 + 20 * kDay, " } ", kExpiresAtDischarge, kSignedForm, " }")},
      {"conflict_declared { conflict_id: \"k-1\" declared_by: \"s-1\" description: \"x\" }"},
      {"access_requested { request_id: \"ar-1\" client_id: \"cl-1\" requested_by: \"cl-1\" }", 1},
      {"disclosure_made { disclosure_id: \"d-1\" client_id: \"cl-1\" "
       "recipient { recipient_id: \"r-1\" name: \"Dr. Ada\" } purpose: \"care_coordination\" "
       "data_categories: \"housing\" description: \"housing plan\" "
       "legal_basis: LEGAL_BASIS_CONSENT consent_id: \"c-1\" minimum_necessary: \"the plan\" "
       "part2_notice_sha256: \"fedcba9876543210fedcba9876543210\" }",
       1},
      {"consent_revoked { consent_id: \"c-2\" revoked_by: \"cl-1\" }", 2},
  };
}

struct PolicyCase {
  std::string name;
  Base base;
  std::vector<Step> setup;  // after the base history
  Step event;
  absl::StatusCode code;
  std::string message;  // empty when OK
  std::function<void(v1::Event*)> mutate = nullptr;
  // When the server received the event; unset: when it occurred.
  std::optional<absl::Time> received_at = std::nullopt;
};

std::ostream& operator<<(std::ostream& os, const PolicyCase& c) { return os << c.name; }

constexpr auto kOk = absl::StatusCode::kOk;
constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;
constexpr auto kRefused = absl::StatusCode::kFailedPrecondition;
constexpr Base kBH = Base::kBehavioralHealth;
constexpr Base kSU = Base::kSubstanceUse;

// A disclosure of d-9 with the given extra fields.
std::string Disclosure(absl::string_view fields) {
  return absl::StrCat(
      "disclosure_made { disclosure_id: \"d-9\" client_id: \"cl-1\" "
      "purpose: \"care_coordination\" description: \"housing plan\" disclosed_by: \"m-1\" ",
      fields, " }");
}
// A consent-based disclosure to r-1 "Dr. Ada".
std::string ConsentDisclosure(absl::string_view consent, absl::string_view categories) {
  return Disclosure(absl::StrCat("recipient { recipient_id: \"r-1\" name: \"Dr. Ada\" } ",
                                 "legal_basis: LEGAL_BASIS_CONSENT consent_id: \"", consent, "\" ",
                                 categories, " minimum_necessary: \"the housing plan only\" ",
                                 kPart2Notice));
}
const char kHousing[] = "data_categories: \"housing\"";
const char kToAda[] = "recipient { recipient_id: \"r-1\" name: \"Dr. Ada\" } ";
const char kToCourt[] =
    "recipient { recipient_id: \"court-1\" name: \"County Court\" address: \"1 Main St\" } ";

const Step kFulfillAr1{"access_fulfilled { request_id: \"ar-1\" }", 3};
const Step kClose{"case_closed { reason: \"goals met\" }", 4};
const Step kDispose{"records_disposed { method: \"crypto-shred\" authority: \"retention-7y\" }", 5};

// Client workflows.
const Step kAccountingRequest{
    "accounting_requested { request_id: \"acr-1\" client_id: \"cl-1\" requested_by: \"cl-1\" }", 3};
const Step kAmendmentRequest{
    "amendment_requested { request_id: \"am-1\" client_id: \"cl-1\" entry_id: \"e-1\" "
    "requested_change: \"I moved out in March, not May\" }",
    3};
const Step kDenyAmendment{
    "amendment_denied { request_id: \"am-1\" basis: AMENDMENT_DENIAL_BASIS_ACCURATE_AND_COMPLETE "
    "explanation: \"the lease shows May\" }",
    4};
const Step kDisagreement{
    "disagreement_filed { request_id: \"am-1\" statement: \"the lease was signed late\" }", 5};
const Step kHold{
    "legal_hold_placed { hold_id: \"h-1\" scope: LEGAL_HOLD_SCOPE_CASE "
    "ground: LEGAL_HOLD_GROUND_LITIGATION authority: \"notice 2026-17\" matter: \"A v. B\" }",
    3};
const Step kReleaseHold{
    "legal_hold_released { hold_id: \"h-1\" released_by: \"counsel-1\" reason: \"settled\" }", 4};
const Step kReviewableDenial{
    "access_denied { request_id: \"ar-1\" reason: \"may endanger you\" "
    "ground: ACCESS_DENIAL_GROUND_ENDANGERS_LIFE_OR_SAFETY denied_by: \"dr-1\" "
    "reviewable_by: \"the review officer\" }",
    3};
const Step kAskReview{"access_review_requested { request_id: \"ar-1\" requested_by: \"cl-1\" }", 4};
const Step kOverturn{
    "access_reviewed { request_id: \"ar-1\" reviewer_id: \"dr-2\" reviewer_license: \"L1\" "
    "outcome: ACCESS_REVIEW_OUTCOME_OVERTURNED explanation: \"no risk found\" }",
    5};

// An oral suspension by the State Police ending `end_day`, stated by
// `official`.
std::string OralSuspension(int end_day, absl::string_view official) {
  return absl::StrCat(
      "accounting_suspended { suspension_id: \"s-1\" client_id: \"cl-1\" "
      "agency_id: \"sp-1\" agency_name: \"State Police\" form: SUSPENSION_FORM_ORAL "
      "statement: \"would impede an investigation\" "
      "agency_kind: SUSPENDING_AGENCY_LAW_ENFORCEMENT official: \"",
      official, "\" ends_at { seconds: ", kT0 + end_day * kDay, " } }");
}

// 42 CFR 2.24 (RULES.md W14): consent c-g of cl-1 names hie-1, and through
// it (the intermediary) a general designation.
std::string DesignationConsent(absl::string_view designation) {
  return absl::StrCat("consent_granted { " INFORMED_BY_CLIENT
                      "consent_id: \"c-g\" client_id: \"cl-1\" grantor_kind: GRANTOR_KIND_CLIENT "
                      "grantor_id: \"cl-1\" recipients: \"hie-1\" purposes: \"care_coordination\" "
                      "data_categories: \"substance_use_treatment\" ",
                      kExpiresAtDischarge, kSignedForm, " ", designation, " }");
}
const char kTreatingProviders[] =
    "general_designation: \"my treating providers\" intermediary: \"hie-1\"";
const Step kDesignationConsent{DesignationConsent(kTreatingProviders), 3};
// A disclosure under consent c-g to clinic-7, which c-g does not name.
std::string DesignationDisclosure(absl::string_view disclosed_by) {
  return absl::StrCat(
      "disclosure_made { disclosure_id: \"d-g\" client_id: \"cl-1\" "
      "recipient { recipient_id: \"clinic-7\" name: \"Eastside Clinic\" } "
      "purpose: \"care_coordination\" data_categories: \"substance_use_treatment\" "
      "description: \"medication list\" legal_basis: LEGAL_BASIS_CONSENT consent_id: \"c-g\" "
      "minimum_necessary: \"the medication list only\" disclosed_by: \"",
      disclosed_by, "\" ", kPart2Notice, " }");
}
// A written request for the 2.24 list under `consent`, with `extra` fields.
std::string Part2ListRequest(absl::string_view consent, absl::string_view extra =
                                 "written_request_sha256: \"0123456789abcdef0123456789abcdef\"") {
  return absl::StrCat(
      "part2_list_requested { request_id: \"pl-1\" client_id: \"cl-1\" requested_by: \"cl-1\" "
      "consent_id: \"",
      consent, "\" ", extra, " }");
}
const Step kPart2ListRequest{Part2ListRequest("c-g"), 4};
const Step kPart2ListProvided{"part2_list_provided { request_id: \"pl-1\" }", 10};

std::vector<PolicyCase> Cases() {
  return {
      // ---- Structure ----
      {"NoBody", kBH, {}, {""}, kInvalid, "event.body: must be set to one of the event types"},
      {"NoOccurredAt",
       kBH,
       {},
       {"services_resumed {}"},
       kInvalid,
       "event.occurred_at: must be set",
       [](v1::Event* e) { e->clear_occurred_at(); }},
      {"OtherStream",
       kBH,
       {},
       {"stream_id: \"case-2\" referral_made { referred_to: \"x\" }"},
       kInvalid,
       "event.stream_id: got \"case-2\", want \"case-1\" (the case checked)"},
      {"OpenedWithoutProgram",
       Base::kNone,
       {},
       {"case_opened { record_class: RECORD_CLASS_GENERAL }"},
       kInvalid,
       "case_opened.program: must not be empty"},
      {"OpenedWithUnspecifiedClass",
       Base::kNone,
       {},
       {"case_opened { program: \"p\" }"},
       kInvalid,
       "case_opened.record_class: got RECORD_CLASS_UNSPECIFIED, want one of "
       "RECORD_CLASS_GENERAL, RECORD_CLASS_BEHAVIORAL_HEALTH, RECORD_CLASS_SUBSTANCE_USE"},
      {"OpenedWithUnknownClass",
       Base::kNone,
       {},
       {"case_opened { program: \"p\" }"},
       kInvalid,
       "case_opened.record_class: got 99, want one of RECORD_CLASS_GENERAL, "
       "RECORD_CLASS_BEHAVIORAL_HEALTH, RECORD_CLASS_SUBSTANCE_USE",
       [](v1::Event* e) {
         e->mutable_case_opened()->set_record_class(static_cast<v1::RecordClass>(99));
       }},
      {"ParticipantWithoutRole",
       kBH,
       {},
       {"participant_added { participant_id: \"p-5\" }"},
       kInvalid,
       "participant_added.role: got PARTICIPANT_ROLE_UNSPECIFIED, want one of "
       "PARTICIPANT_ROLE_CLIENT, PARTICIPANT_ROLE_AUTHORIZED_REPRESENTATIVE, "
       "PARTICIPANT_ROLE_FAMILY_MEMBER, PARTICIPANT_ROLE_THIRD_PARTY"},
      {"RemovedWithoutId",
       kBH,
       {},
       {"participant_removed { reason: \"r\" }"},
       kInvalid,
       "participant_removed.participant_id: must not be empty"},
      {"ManagerWithoutId",
       kBH,
       {},
       {"case_manager_assigned { previous_manager_id: \"m-1\" }"},
       kInvalid,
       "case_manager_assigned.manager_id: must not be empty"},
      {"ConflictWithoutDeclarer",
       kBH,
       {},
       {"conflict_declared { conflict_id: \"k-2\" }"},
       kInvalid,
       "conflict_declared.declared_by: must not be empty"},
      {"ConflictResolvedWithoutResolution",
       kBH,
       {},
       {"conflict_resolved { conflict_id: \"k-1\" }"},
       kInvalid,
       "conflict_resolved.resolution: must not be empty"},
      {"ReferralWithoutTarget",
       kBH,
       {},
       {"referral_made { reason: \"r\" }"},
       kInvalid,
       "referral_made.referred_to: must not be empty"},
      {"ReferralAccepted", kBH, {}, {"referral_made { referred_to: \"food bank\" }"}, kOk, ""},
      {"TransferNamesNobody",
       kBH,
       {},
       {"case_transferred { reason: \"move\" }"},
       kInvalid,
       "case_transferred.to_manager_id: must not be empty when to_program is empty (a transfer "
       "names the receiving manager or program)"},
      {"TransferToProgram", kBH, {}, {"case_transferred { to_program: \"rural\" }"}, kOk, ""},
      {"TransferToManager", kBH, {}, {"case_transferred { to_manager_id: \"m-2\" }"}, kOk, ""},
      {"InterruptedWithoutReason",
       kBH,
       {},
       {"services_interrupted {}"},
       kInvalid,
       "services_interrupted.reason: must not be empty"},
      {"ClosedWithoutReason",
       kBH,
       {kFulfillAr1},
       {"case_closed {}"},
       kInvalid,
       "case_closed.reason: must not be empty"},
      {"ReopenedWithoutReason",
       kBH,
       {kFulfillAr1, kClose},
       {"case_reopened {}"},
       kInvalid,
       "case_reopened.reason: must not be empty"},
      {"DisposedWithoutAuthority",
       kBH,
       {kFulfillAr1, kClose},
       {"records_disposed { method: \"crypto-shred\" }"},
       kInvalid,
       "records_disposed.authority: must not be empty"},
      {"EntryWithoutCategory",
       kBH,
       {},
       {"record_entry_written { entry_id: \"e-2\" }"},
       kInvalid,
       "record_entry_written.data_category: must not be empty"},
      {"AmendmentWithoutReason",
       kBH,
       {},
       {"record_amended { entry_id: \"e-2\" amends_entry_id: \"e-1\" }"},
       kInvalid,
       "record_amended.reason: must not be empty"},
      {"AmendmentReusesTheOriginalId",
       kBH,
       {},
       {"record_amended { entry_id: \"e-1\" amends_entry_id: \"e-1\" reason: \"typo\" }"},
       kInvalid,
       "record_amended.entry_id: got \"e-1\", the same as amends_entry_id; want a new entry id"},
      {"ConsentWithoutClient",
       kBH,
       {},
       {"consent_granted { " INFORMED_BY_CLIENT "consent_id: \"c-9\" }"},
       kInvalid,
       "consent_granted.client_id: must not be empty"},
      {"ConsentWithoutGrantorKind",
       kBH,
       {},
       {"consent_granted { " INFORMED_BY_CLIENT "consent_id: \"c-9\" client_id: \"cl-1\" }"},
       kInvalid,
       "consent_granted.grantor_kind: got GRANTOR_KIND_UNSPECIFIED, want one of "
       "GRANTOR_KIND_CLIENT, GRANTOR_KIND_AUTHORIZED_REPRESENTATIVE"},
      {"ConsentWithoutRecipients",
       kBH,
       {},
       {"consent_granted { " INFORMED_BY_CLIENT
        "consent_id: \"c-9\" client_id: \"cl-1\" grantor_kind: "
        "GRANTOR_KIND_CLIENT grantor_id: \"cl-1\" purposes: \"p\" data_categories: \"h\" }"},
       kInvalid,
       "consent_granted.recipients: must list at least one value"},
      {"ConsentWithEmptyRecipient",
       kBH,
       {},
       {"consent_granted { " INFORMED_BY_CLIENT
        "consent_id: \"c-9\" client_id: \"cl-1\" grantor_kind: "
        "GRANTOR_KIND_CLIENT grantor_id: \"cl-1\" recipients: \"r-1\" recipients: \"\" "
        "purposes: \"p\" data_categories: \"h\" }"},
       kInvalid,
       "consent_granted.recipients[1]: must not be empty"},
      {"ConsentWithoutPurposes",
       kBH,
       {},
       {"consent_granted { " INFORMED_BY_CLIENT
        "consent_id: \"c-9\" client_id: \"cl-1\" grantor_kind: "
        "GRANTOR_KIND_CLIENT grantor_id: \"cl-1\" recipients: \"r-1\" data_categories: \"h\" }"},
       kInvalid,
       "consent_granted.purposes: must list at least one value"},
      {"ConsentWithoutCategories",
       kBH,
       {},
       {"consent_granted { " INFORMED_BY_CLIENT
        "consent_id: \"c-9\" client_id: \"cl-1\" grantor_kind: "
        "GRANTOR_KIND_CLIENT grantor_id: \"cl-1\" recipients: \"r-1\" purposes: \"p\" }"},
       kInvalid,
       "consent_granted.data_categories: must list at least one value"},
      {"ConsentWithShortFormHash",
       kBH,
       {},
       {"consent_granted { " INFORMED_BY_CLIENT
        "consent_id: \"c-9\" client_id: \"cl-1\" grantor_kind: "
        "GRANTOR_KIND_CLIENT grantor_id: \"cl-1\" recipients: \"r-1\" purposes: \"p\" "
        "data_categories: \"h\" signed_form_sha256: \"abcde\" }"},
       kInvalid,
       "consent_granted.signed_form_sha256: got 5 bytes, want 32 (a SHA-256) or none"},
      {"ConsentExpiringBeforeItStarts",
       kBH,
       {},
       {absl::StrCat("consent_granted { " INFORMED_BY_CLIENT
                     "consent_id: \"c-9\" client_id: \"cl-1\" grantor_kind: "
                     "GRANTOR_KIND_CLIENT grantor_id: \"cl-1\" recipients: \"r-1\" purposes: "
                     "\"p\" data_categories: \"h\" starts_at { seconds: ",
                     kT0 + 10 * kDay, " } expires_at { seconds: ", kT0 + 5 * kDay, " } }")},
       kInvalid,
       "consent_granted.expires_at: got 2026-01-06T00:00:00Z, want after starts_at "
       "2026-01-11T00:00:00Z"},
      {"ConsentNotInClientsHistory",
       kBH,
       {},
       {"subject_ids: \"cl-9\" consent_granted { " INFORMED_BY_CLIENT
        "consent_id: \"c-9\" client_id: \"cl-1\" "
        "grantor_kind: GRANTOR_KIND_CLIENT grantor_id: \"cl-1\" recipients: \"r-1\" "
        "purposes: \"p\" data_categories: \"h\" }"},
       kInvalid,
       "event.subject_ids: must include consent_granted.client_id \"cl-1\" so that the event "
       "is in the client's history; got [cl-9]"},
      {"RevocationWithoutRevoker",
       kBH,
       {},
       {"consent_revoked { consent_id: \"c-1\" }"},
       kInvalid,
       "consent_revoked.revoked_by: must not be empty"},
      {"DisclosureWithoutRecipientName",
       kBH,
       {},
       {Disclosure("recipient { recipient_id: \"r-1\" } legal_basis: LEGAL_BASIS_TREATMENT "
                   "data_categories: \"housing\"")},
       kInvalid,
       "disclosure_made.recipient.name: must not be empty"},
      {"DisclosureWithoutCategories",
       kBH,
       {},
       {Disclosure(absl::StrCat(kToAda, "legal_basis: LEGAL_BASIS_TREATMENT"))},
       kInvalid,
       "disclosure_made.data_categories: must list at least one value"},
      {"DisclosureWithRepeatedCategory",
       kBH,
       {},
       {Disclosure(
           absl::StrCat(kToAda, "legal_basis: LEGAL_BASIS_TREATMENT ", kHousing, " ", kHousing))},
       kInvalid,
       "disclosure_made.data_categories[1]: got \"housing\" twice, want each value once"},
      {"DisclosureWithoutDescription",
       kBH,
       {},
       {Disclosure(absl::StrCat(kToAda, "legal_basis: LEGAL_BASIS_TREATMENT ", kHousing))},
       kInvalid,
       "disclosure_made.description: must not be empty",
       [](v1::Event* e) { e->mutable_disclosure_made()->clear_description(); }},
      {"DisclosureWithoutBasis",
       kBH,
       {},
       {Disclosure(absl::StrCat(kToAda, kHousing))},
       kInvalid,
       "disclosure_made.legal_basis: got LEGAL_BASIS_UNSPECIFIED, want one of "
       "LEGAL_BASIS_CONSENT, LEGAL_BASIS_REQUIRED_BY_LAW, LEGAL_BASIS_IMMINENT_HARM, "
       "LEGAL_BASIS_TREATMENT, LEGAL_BASIS_PAYMENT, LEGAL_BASIS_OPERATIONS, "
       "LEGAL_BASIS_PART2_MEDICAL_EMERGENCY, LEGAL_BASIS_PART2_COURT_ORDER, "
       "LEGAL_BASIS_PART2_RESEARCH, LEGAL_BASIS_PART2_AUDIT, LEGAL_BASIS_TO_CLIENT"},
      {"ConsentBasisWithoutConsentId",
       kBH,
       {},
       {Disclosure(absl::StrCat(kToAda, "legal_basis: LEGAL_BASIS_CONSENT ", kHousing))},
       kInvalid,
       "disclosure_made.consent_id: must not be empty when legal_basis is LEGAL_BASIS_CONSENT"},
      {"RequiredByLawWithoutCitation",
       kBH,
       {},
       {Disclosure(absl::StrCat(kToCourt, "legal_basis: LEGAL_BASIS_REQUIRED_BY_LAW ", kHousing))},
       kInvalid,
       "disclosure_made.legal_citation: must not be empty when legal_basis is "
       "LEGAL_BASIS_REQUIRED_BY_LAW"},
      {"RequiredByLawAccepted",
       kBH,
       {},
       {Disclosure(absl::StrCat(kToCourt, "legal_basis: LEGAL_BASIS_REQUIRED_BY_LAW ", kHousing,
                                " legal_citation: \"Cal. WIC 15630\" minimum_necessary: \"the "
                                "items WIC 15630 lists\""))},
       kOk,
       ""},
      {"ImminentHarmWithoutJustification",
       kBH,
       {},
       {Disclosure(absl::StrCat(kToCourt, "legal_basis: LEGAL_BASIS_IMMINENT_HARM ", kHousing,
                                " person_at_risk: \"neighbor\""))},
       kInvalid,
       "disclosure_made.justification: must not be empty when legal_basis is "
       "LEGAL_BASIS_IMMINENT_HARM"},
      {"ImminentHarmWithoutPersonAtRisk",
       kBH,
       {},
       {Disclosure(absl::StrCat(kToCourt, "legal_basis: LEGAL_BASIS_IMMINENT_HARM ", kHousing,
                                " justification: \"stated plan\""))},
       kInvalid,
       "disclosure_made.person_at_risk: must not be empty when legal_basis is "
       "LEGAL_BASIS_IMMINENT_HARM"},
      {"ImminentHarmAccepted",
       kBH,
       {},
       {Disclosure(absl::StrCat(kToCourt, "legal_basis: LEGAL_BASIS_IMMINENT_HARM ", kHousing,
                                " justification: \"stated plan\" person_at_risk: \"neighbor\" "
                                "minimum_necessary: \"the threat and the address\""))},
       kOk,
       ""},
      {"TreatmentAccepted",
       kBH,
       {},
       {Disclosure(absl::StrCat(kToAda, "legal_basis: LEGAL_BASIS_TREATMENT ", kHousing))},
       kOk,
       ""},
      {"PaymentWithoutMinimumNecessary",
       kBH,
       {},
       {Disclosure(absl::StrCat(kToAda, "legal_basis: LEGAL_BASIS_PAYMENT ", kHousing))},
       kInvalid,
       "disclosure_made.minimum_necessary: must not be empty when legal_basis is "
       "LEGAL_BASIS_PAYMENT"},
      {"PaymentAccepted",
       kBH,
       {},
       {Disclosure(absl::StrCat(kToAda, "legal_basis: LEGAL_BASIS_PAYMENT ", kHousing,
                                " minimum_necessary: \"dates of service only\""))},
       kOk,
       ""},
      {"OperationsWithoutMinimumNecessary",
       kBH,
       {},
       {Disclosure(absl::StrCat(kToAda, "legal_basis: LEGAL_BASIS_OPERATIONS ", kHousing))},
       kInvalid,
       "disclosure_made.minimum_necessary: must not be empty when legal_basis is "
       "LEGAL_BASIS_OPERATIONS"},
      {"OperationsAccepted",
       kBH,
       {},
       {Disclosure(absl::StrCat(kToAda, "legal_basis: LEGAL_BASIS_OPERATIONS ", kHousing,
                                " minimum_necessary: \"counts only\""))},
       kOk,
       ""},
      // 45 CFR 164.502(b) for 164.512 disclosures; required by law too (the
      // statement names what the law requires), the stricter reading.
      {"RequiredByLawWithoutMinimumNecessary",
       kBH,
       {},
       {Disclosure(absl::StrCat(kToCourt, "legal_basis: LEGAL_BASIS_REQUIRED_BY_LAW ", kHousing,
                                " legal_citation: \"Cal. WIC 15630\""))},
       kInvalid,
       "disclosure_made.minimum_necessary: must not be empty when legal_basis is "
       "LEGAL_BASIS_REQUIRED_BY_LAW"},
      {"ImminentHarmWithoutMinimumNecessary",
       kBH,
       {},
       {Disclosure(absl::StrCat(kToCourt, "legal_basis: LEGAL_BASIS_IMMINENT_HARM ", kHousing,
                                " justification: \"stated plan\" person_at_risk: \"neighbor\""))},
       kInvalid,
       "disclosure_made.minimum_necessary: must not be empty when legal_basis is "
       "LEGAL_BASIS_IMMINENT_HARM"},
      {"ConsentWithoutMinimumNecessaryOutsidePart2",
       kBH,
       {},
       {Disclosure(absl::StrCat(kToAda, "legal_basis: LEGAL_BASIS_CONSENT consent_id: \"c-1\" ",
                                kHousing)),
        10},
       kOk,
       ""},
      {"DisclosureNotInClientsHistory",
       kBH,
       {},
       {absl::StrCat(
           "subject_ids: \"cl-9\" ",
           Disclosure(absl::StrCat(kToAda, "legal_basis: LEGAL_BASIS_TREATMENT ", kHousing)))},
       kInvalid,
       "event.subject_ids: must include disclosure_made.client_id \"cl-1\" so that the event "
       "is in the client's history; got [cl-9]"},
      {"InformedWithoutDisclosureId",
       kBH,
       {},
       {"client_informed { method: \"letter\" }"},
       kInvalid,
       "client_informed.disclosure_id: must not be empty"},
      {"AccessRequestWithoutClient",
       kBH,
       {},
       {"access_requested { request_id: \"ar-2\" }"},
       kInvalid,
       "access_requested.client_id: must not be empty"},
      {"AccessRequestNotInClientsHistory",
       kBH,
       {},
       {"subject_ids: \"cl-9\" access_requested { request_id: \"ar-2\" client_id: \"cl-1\" }"},
       kInvalid,
       "event.subject_ids: must include access_requested.client_id \"cl-1\" so that the event "
       "is in the client's history; got [cl-9]"},
      {"DenialWithoutReason",
       kBH,
       {},
       {"access_denied { request_id: \"ar-1\" }"},
       kInvalid,
       "access_denied.reason: must not be empty"},
      {"ExtensionWithoutReason",
       kBH,
       {},
       {"access_extended { request_id: \"ar-1\" }"},
       kInvalid,
       "access_extended.reason: must not be empty"},
      {"RecordAccessedWithoutPurpose",
       kBH,
       {},
       {"record_accessed { accessor_id: \"m-1\" }"},
       kInvalid,
       "record_accessed.purpose: must not be empty"},
      {"AccessRefusedIsTheServersOnly",
       kBH,
       {},
       {"access_refused { accessor_id: \"m-1\" method: \"/x/Y\" reason: \"r\" }"},
       kInvalid,
       "event.access_refused: is written by the server only"},
      {"SubjectErasedIsTheServersOnly",
       kBH,
       {},
       {"subject_erased { erased_by: \"admin-1\" authority: \"gdpr-17\" }"},
       kInvalid,
       "event.subject_erased: is written by the server only"},
      {"MasterKeyRotatedIsTheServersOnly",
       kBH,
       {},
       {"master_key_rotated { rotated_by: \"admin-1\" }"},
       kInvalid,
       "event.master_key_rotated: is written by the server only"},

      // ---- Lifecycle ----
      {"FirstEventMustOpen",
       Base::kNone,
       {},
       {"consent_granted { " INFORMED_BY_CLIENT
        "consent_id: \"c-9\" client_id: \"cl-1\" grantor_kind: "
        "GRANTOR_KIND_CLIENT grantor_id: \"cl-1\" recipients: \"r-1\" purposes: \"p\" "
        "data_categories: \"h\" }"},
       kRefused,
       "case \"case-1\" has not been opened: consent_granted is not allowed before case_opened"},
      {"OpenAccepted",
       Base::kNone,
       {},
       {"case_opened { program: \"p\" record_class: RECORD_CLASS_GENERAL }"},
       kOk,
       ""},
      {"OpenTwice",
       kBH,
       {},
       {"case_opened { program: \"p\" record_class: RECORD_CLASS_GENERAL }"},
       kRefused,
       "case \"case-1\" is open: case_opened is not allowed (case_opened must be the case's "
       "first event)"},
      {"ClosedCaseTakesNoEntry",
       kBH,
       {kFulfillAr1, kClose},
       {"record_entry_written { entry_id: \"e-2\" data_category: \"housing\" }", 5},
       kRefused,
       "case \"case-1\" is closed: record_entry_written is not allowed"},
      {"ClosedCaseTakesNoDisclosure",
       kBH,
       {kFulfillAr1, kClose},
       {Disclosure(absl::StrCat(kToAda, "legal_basis: LEGAL_BASIS_TREATMENT ", kHousing)), 5},
       kRefused,
       "case \"case-1\" is closed: disclosure_made is not allowed"},
      {"ClosedCaseTakesAccessRequest",
       kBH,
       {kFulfillAr1, kClose},
       {"access_requested { request_id: \"ar-2\" client_id: \"cl-1\" }", 5},
       kOk,
       ""},
      {"ClosedCaseTakesRecordAccessed",
       kBH,
       {kFulfillAr1, kClose},
       {"record_accessed { accessor_id: \"auditor\" purpose: \"audit\" seqs: 1 }", 5},
       kOk,
       ""},
      {"ClosedCaseTakesClientNotice",
       kBH,
       {kFulfillAr1, kClose},
       {"client_informed { disclosure_id: \"d-1\" method: \"letter\" }", 5},
       kOk,
       ""},
      {"ClosedCaseTakesRevocation",
       kBH,
       {kFulfillAr1, kClose},
       {"consent_revoked { consent_id: \"c-1\" revoked_by: \"cl-1\" }", 5},
       kOk,
       ""},
      {"ClosedCaseReopens",
       kBH,
       {kFulfillAr1, kClose},
       {"case_reopened { reason: \"relapse\" }", 5},
       kOk,
       ""},
      {"ClosedCaseDisposed", kBH, {kFulfillAr1, kClose}, kDispose, kOk, ""},
      {"DisposedCaseDoesNotReopen",
       kBH,
       {kFulfillAr1, kClose, kDispose},
       {"case_reopened { reason: \"relapse\" }", 6},
       kRefused,
       "case \"case-1\" is disposed: case_reopened is not allowed"},
      {"DisposedCaseTakesRecordAccessed",
       kBH,
       {kFulfillAr1, kClose, kDispose},
       {"record_accessed { accessor_id: \"auditor\" purpose: \"audit\" }", 6},
       kOk,
       ""},
      {"ReopenNeedsClosedCase",
       kBH,
       {},
       {"case_reopened { reason: \"r\" }"},
       kRefused,
       "case \"case-1\" is open: case_reopened is not allowed (it needs a closed case)"},
      {"DisposalNeedsClosedCase",
       kBH,
       {},
       kDispose,
       kRefused,
       "case \"case-1\" is open: records_disposed is not allowed (it needs a closed case)"},
      {"ResumeNeedsInterruption",
       kBH,
       {},
       {"services_resumed {}"},
       kRefused,
       "case \"case-1\" is open: services_resumed is not allowed (it needs an interrupted case)"},
      {"ResumeAfterInterruption",
       kBH,
       {{"services_interrupted { reason: \"hospital\" }", 3}},
       {"services_resumed { note: \"back\" }", 4},
       kOk,
       ""},
      {"InterruptTwice",
       kBH,
       {{"services_interrupted { reason: \"hospital\" }", 3}},
       {"services_interrupted { reason: \"again\" }", 4},
       kRefused,
       "case \"case-1\" is interrupted: services_interrupted is not allowed (services are "
       "already interrupted)"},
      {"InterruptedCaseTakesEntries",
       kBH,
       {{"services_interrupted { reason: \"hospital\" }", 3}},
       {"record_entry_written { entry_id: \"e-2\" data_category: \"housing\" }", 4},
       kOk,
       ""},
      {"CloseWithOpenAccessRequest",
       kBH,
       {},
       kClose,
       kRefused,
       "case \"case-1\" cannot be closed: access request \"ar-1\" (requested "
       "2026-01-02T00:00:00Z, due 2026-02-01T00:00:00Z) has no decision"},
      {"CloseAfterAccessDecision",
       kBH,
       {{"access_denied { request_id: \"ar-1\" reason: \"r\" "
         "ground: ACCESS_DENIAL_GROUND_PSYCHOTHERAPY_NOTES }"}},
       kClose,
       kOk,
       ""},

      // ---- Participants, manager, conflicts ----
      {"ParticipantTwice",
       kBH,
       {},
       {"participant_added { participant_id: \"tp-1\" role: PARTICIPANT_ROLE_FAMILY_MEMBER }"},
       kRefused,
       "participant \"tp-1\" is already in case \"case-1\" (role PARTICIPANT_ROLE_THIRD_PARTY)"},
      {"ParticipantAccepted",
       kBH,
       {},
       {"participant_added { participant_id: \"fm-1\" role: PARTICIPANT_ROLE_FAMILY_MEMBER }"},
       kOk,
       ""},
      {"RemoveUnknownParticipant",
       kBH,
       {},
       {"participant_removed { participant_id: \"x\" }"},
       kRefused,
       "participant \"x\" is not in case \"case-1\""},
      {"RemoveParticipant", kBH, {}, {"participant_removed { participant_id: \"tp-1\" }"}, kOk, ""},
      {"AssignWithStalePrevious",
       kBH,
       {},
       {"case_manager_assigned { manager_id: \"m-3\" previous_manager_id: \"m-2\" }"},
       kRefused,
       "case_manager_assigned.previous_manager_id is \"m-2\", but case \"case-1\"'s manager is "
       "\"m-1\""},
      {"AssignFirstWithPrevious",
       Base::kNone,
       {{"case_opened { program: \"p\" record_class: RECORD_CLASS_GENERAL }"}},
       {"case_manager_assigned { manager_id: \"m-3\" previous_manager_id: \"m-2\" }"},
       kRefused,
       "case_manager_assigned.previous_manager_id is \"m-2\", but case \"case-1\" has no "
       "manager"},
      {"AssignAccepted",
       kBH,
       {},
       {"case_manager_assigned { manager_id: \"m-3\" previous_manager_id: \"m-1\" }"},
       kOk,
       ""},
      {"ConflictTwice",
       kBH,
       {},
       {"conflict_declared { conflict_id: \"k-1\" declared_by: \"m-1\" }"},
       kRefused,
       "conflict \"k-1\" was already declared in case \"case-1\""},
      {"ResolveUnknownConflict",
       kBH,
       {},
       {"conflict_resolved { conflict_id: \"k-9\" resolution: \"r\" resolved_by: \"sup-1\" }"},
       kRefused,
       "conflict \"k-9\" was not declared in case \"case-1\""},
      {"ResolveConflictTwice",
       kBH,
       {{"conflict_resolved { conflict_id: \"k-1\" resolution: \"reassigned\" "
         "resolved_by: \"sup-1\" }",
         3}},
       {"conflict_resolved { conflict_id: \"k-1\" resolution: \"r\" resolved_by: \"sup-1\" }", 4},
       kRefused,
       "conflict \"k-1\" was already resolved at 2026-01-04T00:00:00Z"},
      {"ResolveConflict",
       kBH,
       {},
       {"conflict_resolved { conflict_id: \"k-1\" resolution: \"reassigned\" "
        "resolved_by: \"sup-1\" }"},
       kOk,
       ""},

      // ---- Documentation ----
      {"EntryRewritten",
       kBH,
       {},
       {"record_entry_written { entry_id: \"e-1\" data_category: \"housing\" }"},
       kRefused,
       "entry \"e-1\" already exists in case \"case-1\" (seq 6); entries are corrected by "
       "record_amended, never rewritten"},
      {"EntryAccepted",
       kBH,
       {},
       {"record_entry_written { entry_id: \"e-2\" data_category: \"housing\" }"},
       kOk,
       ""},
      {"AmendUnknownEntry",
       kBH,
       {},
       {"record_amended { entry_id: \"e-2\" amends_entry_id: \"e-7\" reason: \"typo\" }"},
       kRefused,
       "record_amended.amends_entry_id \"e-7\" is not an entry of case \"case-1\""},
      {"AmendWithExistingId",
       kBH,
       {{"record_entry_written { entry_id: \"e-2\" data_category: \"housing\" }"}},
       {"record_amended { entry_id: \"e-2\" amends_entry_id: \"e-1\" reason: \"typo\" }"},
       kRefused,
       "entry \"e-2\" already exists in case \"case-1\" (seq 15); entries are corrected by "
       "record_amended, never rewritten"},
      {"AmendAccepted",
       kBH,
       {},
       {"record_amended { entry_id: \"e-2\" amends_entry_id: \"e-1\" reason: \"typo\" }"},
       kOk,
       ""},

      // ---- Consent ----
      {"ConsentIdReused",
       kBH,
       {},
       {"consent_granted { " INFORMED_BY_CLIENT
        "consent_id: \"c-1\" client_id: \"cl-1\" grantor_kind: "
        "GRANTOR_KIND_CLIENT grantor_id: \"cl-1\" recipients: \"r-1\" purposes: \"p\" "
        "data_categories: \"h\" }"},
       kRefused,
       "consent \"c-1\" already exists in case \"case-1\""},
      {"ConsentGrantedBySomeoneElse",
       kBH,
       {},
       {"consent_granted { " INFORMED_BY_CLIENT
        "consent_id: \"c-9\" client_id: \"cl-1\" grantor_kind: "
        "GRANTOR_KIND_CLIENT grantor_id: \"m-1\" recipients: \"r-1\" purposes: \"p\" "
        "data_categories: \"h\" }"},
       kRefused,
       "consent \"c-9\" is granted by the client, but grantor_id \"m-1\" is not client_id "
       "\"cl-1\""},
      {"ConsentByNonRepresentative",
       kBH,
       {},
       {"consent_granted { " INFORMED_BY_REPRESENTATIVE
        "consent_id: \"c-9\" client_id: \"cl-1\" grantor_kind: "
        "GRANTOR_KIND_AUTHORIZED_REPRESENTATIVE grantor_id: \"tp-1\" recipients: \"r-1\" "
        "purposes: \"p\" data_categories: \"h\" }"},
       kRefused,
       "consent \"c-9\" is granted by an authorized representative, but \"tp-1\" is not an "
       "authorized representative in case \"case-1\""},
      {"ConsentByRepresentative",
       kBH,
       {},
       {"consent_granted { " INFORMED_BY_REPRESENTATIVE
        "consent_id: \"c-9\" client_id: \"cl-1\" grantor_kind: "
        "GRANTOR_KIND_AUTHORIZED_REPRESENTATIVE grantor_id: \"rep-1\" recipients: \"r-1\" "
        "purposes: \"p\" data_categories: \"h\" }"},
       kOk,
       ""},
      {"Part2ConsentWithoutSignedForm",
       kSU,
       {},
       {"consent_granted { " INFORMED_BY_CLIENT
        "consent_id: \"c-9\" client_id: \"cl-1\" grantor_kind: "
        "GRANTOR_KIND_CLIENT grantor_id: \"cl-1\" recipients: \"r-1\" purposes: \"p\" "
        "data_categories: \"h\" }"},
       kRefused,
       "consent \"c-9\" covers substance-use records (42 CFR Part 2), which need a signed "
       "written consent: signed_form_sha256 is empty"},
      {"Part2ConsentWithSignedForm",
       kSU,
       {},
       {absl::StrCat("consent_granted { " INFORMED_BY_CLIENT
                     "consent_id: \"c-9\" client_id: \"cl-1\" grantor_kind: "
                     "GRANTOR_KIND_CLIENT grantor_id: \"cl-1\" recipients: \"r-1\" purposes: "
                     "\"p\" data_categories: \"h\" ",
                     kExpiresAtDischarge, kSignedForm, " }")},
       kOk,
       ""},
      // 42 CFR 2.31(a): a Part 2 consent names the patient and the date of
      // signature (B7).
      {"Part2ConsentWithoutPatientName",
       kSU,
       {},
       {absl::StrCat("consent_granted { " INFORMED_BY_CLIENT
                     "consent_id: \"c-9\" client_id: \"cl-1\" grantor_kind: "
                     "GRANTOR_KIND_CLIENT grantor_id: \"cl-1\" recipients: \"r-1\" purposes: "
                     "\"p\" data_categories: \"h\" ",
                     kExpiresAtDischarge, kSignedFormOnly, " signed_at { seconds: ", kT0, " } }")},
       kRefused,
       "consent \"c-9\" covers substance-use records: 42 CFR 2.31(a) requires the patient's "
       "name and the date of signature, but patient_name is empty"},
      {"Part2ConsentWithoutSignatureDate",
       kSU,
       {},
       {absl::StrCat("consent_granted { " INFORMED_BY_CLIENT
                     "consent_id: \"c-9\" client_id: \"cl-1\" grantor_kind: "
                     "GRANTOR_KIND_CLIENT grantor_id: \"cl-1\" recipients: \"r-1\" purposes: "
                     "\"p\" data_categories: \"h\" ",
                     kExpiresAtDischarge, kSignedFormOnly, " patient_name: \"Ana Client\" }")},
       kRefused,
       "consent \"c-9\" covers substance-use records: 42 CFR 2.31(a) requires the patient's "
       "name and the date of signature, but signed_at is empty"},
      {"ConsentSignedAfterItWasRecorded",
       kBH,
       {},
       {absl::StrCat("consent_granted { " INFORMED_BY_CLIENT
                     "consent_id: \"c-9\" client_id: \"cl-1\" grantor_kind: "
                     "GRANTOR_KIND_CLIENT grantor_id: \"cl-1\" recipients: \"r-1\" purposes: "
                     "\"p\" data_categories: \"h\" signed_at { seconds: ",
                     kT0 + 400 * kDay, " } }")},
       kInvalid,
       "consent_granted.signed_at: got 2027-02-05T00:00:00Z, want at or before the consent's "
       "occurred_at 2026-01-03T00:00:00Z"},
      // 42 CFR 2.31(a): a Part 2 consent states when it expires (date, event
      // or condition).
      {"Part2ConsentWithoutExpiry",
       kSU,
       {},
       {absl::StrCat("consent_granted { " INFORMED_BY_CLIENT
                     "consent_id: \"c-9\" client_id: \"cl-1\" grantor_kind: "
                     "GRANTOR_KIND_CLIENT grantor_id: \"cl-1\" recipients: \"r-1\" purposes: "
                     "\"p\" data_categories: \"h\" ",
                     kSignedForm, " }")},
       kRefused,
       "consent \"c-9\" covers substance-use records: 42 CFR 2.31(a) requires the date, event "
       "or condition on which it expires, but expires_at and expiry_event are empty"},
      {"Part2ConsentWithExpiryDate",
       kSU,
       {},
       {absl::StrCat("consent_granted { " INFORMED_BY_CLIENT
                     "consent_id: \"c-9\" client_id: \"cl-1\" grantor_kind: "
                     "GRANTOR_KIND_CLIENT grantor_id: \"cl-1\" recipients: \"r-1\" purposes: "
                     "\"p\" data_categories: \"h\" expires_at { seconds: ",
                     kT0 + 90 * kDay, " } ", kSignedForm, " }")},
       kOk,
       ""},
      {"ConsentWithoutExpiryOutsidePart2",
       kBH,
       {},
       {"consent_granted { " INFORMED_BY_CLIENT
        "consent_id: \"c-9\" client_id: \"cl-1\" grantor_kind: "
        "GRANTOR_KIND_CLIENT grantor_id: \"cl-1\" recipients: \"r-1\" purposes: \"p\" "
        "data_categories: \"h\" }"},
       kOk,
       ""},
      {"RevokeUnknownConsent",
       kBH,
       {},
       {"consent_revoked { consent_id: \"c-9\" revoked_by: \"cl-1\" }"},
       kRefused,
       "consent \"c-9\" does not exist in case \"case-1\""},
      {"RevokeTwice",
       kBH,
       {},
       {"consent_revoked { consent_id: \"c-2\" revoked_by: \"cl-1\" }", 3},
       kRefused,
       "consent \"c-2\" was already revoked at 2026-01-03T00:00:00Z"},
      {"RevokeAccepted",
       kBH,
       {},
       {"consent_revoked { consent_id: \"c-1\" revoked_by: \"cl-1\" }", 3},
       kOk,
       ""},

      // ---- Disclosure basis ----
      {"DisclosureIdReused",
       kBH,
       {},
       {absl::StrCat("disclosure_made { disclosure_id: \"d-1\" client_id: \"cl-1\" ", kToAda,
                     "purpose: \"care_coordination\" description: \"x\" ", kHousing,
                     " legal_basis: LEGAL_BASIS_TREATMENT }"),
        10},
       kRefused,
       "disclosure \"d-1\" already exists in case \"case-1\""},
      {"ConsentCovers", kBH, {}, {ConsentDisclosure("c-1", kHousing), 10}, kOk, ""},
      // A consent covers nothing before it was granted, even without
      // starts_at (c-5 is granted on day 5; the disclosure, recorded late, on
      // day 4).
      {"ConsentBeforeItWasGranted",
       kBH,
       {{absl::StrCat("consent_granted { " INFORMED_BY_CLIENT
                      "consent_id: \"c-5\" client_id: \"cl-1\" "
                      "grantor_kind: GRANTOR_KIND_CLIENT grantor_id: \"cl-1\" recipients: \"r-1\" "
                      "purposes: \"care_coordination\" data_categories: \"housing\" }"),
         5}},
       {ConsentDisclosure("c-5", kHousing), 4},
       kRefused,
       "consent \"c-5\" was granted at 2026-01-06T00:00:00Z, after the disclosure at "
       "2026-01-05T00:00:00Z",
       [](v1::Event* e) {
         e->mutable_disclosure_made()->mutable_late_documentation()->set_reason("entered late");
       }},
      {"ConsentFromTheMomentItWasGranted",
       kBH,
       {{absl::StrCat("consent_granted { " INFORMED_BY_CLIENT
                      "consent_id: \"c-5\" client_id: \"cl-1\" "
                      "grantor_kind: GRANTOR_KIND_CLIENT grantor_id: \"cl-1\" recipients: \"r-1\" "
                      "purposes: \"care_coordination\" data_categories: \"housing\" }"),
         5}},
       {ConsentDisclosure("c-5", kHousing), 5},
       kOk,
       ""},
      {"ConsentCoversRecipientByName",
       kBH,
       {},
       {Disclosure("recipient { name: \"Dr. Ada\" } legal_basis: LEGAL_BASIS_CONSENT "
                   "consent_id: \"c-1\" data_categories: \"housing\" "
                   "data_categories: \"mental_health_notes\""),
        10},
       kOk,
       ""},
      {"ConsentMissing",
       kBH,
       {},
       {ConsentDisclosure("c-9", kHousing), 10},
       kRefused,
       "consent \"c-9\" does not exist in case \"case-1\""},
      {"ConsentOfAnotherClient",
       kBH,
       {},
       {ConsentDisclosure("c-3", kHousing), 10},
       kRefused,
       "consent \"c-3\" is for client \"cl-2\", not client \"cl-1\" of the disclosure"},
      {"ConsentNotYetStarted",
       kBH,
       {},
       {ConsentDisclosure("c-4", kHousing), 10},
       kRefused,
       "consent \"c-4\" starts at 2026-01-21T00:00:00Z, after the disclosure at "
       "2026-01-11T00:00:00Z"},
      {"ConsentStarted", kBH, {}, {ConsentDisclosure("c-4", kHousing), 20}, kOk, ""},
      {"ConsentExpired",
       kBH,
       {},
       {ConsentDisclosure("c-1", kHousing), 60},
       kRefused,
       "consent \"c-1\" expired at 2026-03-02T00:00:00Z, before the disclosure at "
       "2026-03-02T00:00:00Z"},
      {"ConsentRevoked",
       kBH,
       {},
       {ConsentDisclosure("c-2", kHousing), 10},
       kRefused,
       "consent \"c-2\" was revoked at 2026-01-03T00:00:00Z, before the disclosure at "
       "2026-01-11T00:00:00Z"},
      {"DisclosureRecordedLateBeforeRevocation",
       kBH,
       {},
       {ConsentDisclosure("c-2", kHousing), 1},
       kOk,
       "",
       [](v1::Event* e) {
         e->mutable_disclosure_made()->mutable_late_documentation()->set_reason(
             "phone disclosure written up the next day");
       }},
      {"ConsentDoesNotCoverRecipient",
       kBH,
       {},
       {Disclosure("recipient { recipient_id: \"r-2\" name: \"Landlord\" } "
                   "legal_basis: LEGAL_BASIS_CONSENT consent_id: \"c-1\" "
                   "data_categories: \"housing\""),
        10},
       kRefused,
       "consent \"c-1\" does not cover recipient \"r-2\" (\"Landlord\")"},
      {"ConsentDoesNotCoverPurpose",
       kBH,
       {},
       {absl::StrCat("disclosure_made { disclosure_id: \"d-9\" client_id: \"cl-1\" purpose: "
                     "\"marketing\" description: \"x\" ",
                     kToAda, kHousing, " legal_basis: LEGAL_BASIS_CONSENT consent_id: \"c-1\" }"),
        10},
       kRefused,
       "consent \"c-1\" does not cover purpose \"marketing\""},
      {"MinimumNecessaryOneCategory",
       kBH,
       {},
       {ConsentDisclosure("c-1",
                          "data_categories: \"housing\" "
                          "data_categories: \"substance_use_treatment\""),
        10},
       kRefused,
       "consent \"c-1\" does not cover data category \"substance_use_treatment\""},
      {"MinimumNecessaryTwoCategories",
       kBH,
       {},
       {ConsentDisclosure("c-1",
                          "data_categories: \"hiv_status\" "
                          "data_categories: \"substance_use_treatment\""),
        10},
       kRefused,
       "consent \"c-1\" does not cover data categories \"hiv_status\", "
       "\"substance_use_treatment\""},
      {"ToClientAccepted",
       kBH,
       {},
       {Disclosure("recipient { recipient_id: \"cl-1\" name: \"Client\" } legal_basis: "
                   "LEGAL_BASIS_TO_CLIENT data_categories: \"housing\""),
        10},
       kOk,
       ""},
      {"ToClientButSomeoneElse",
       kBH,
       {},
       {Disclosure(absl::StrCat(kToAda, "legal_basis: LEGAL_BASIS_TO_CLIENT ", kHousing)), 10},
       kRefused,
       "legal_basis LEGAL_BASIS_TO_CLIENT needs the client as recipient: recipient_id \"r-1\" "
       "is not client_id \"cl-1\""},
      {"Part2ExceptionOnGeneralRecords",
       kBH,
       {},
       {Disclosure(absl::StrCat(kToCourt, "legal_basis: LEGAL_BASIS_PART2_COURT_ORDER ", kHousing,
                                " legal_citation: \"order 12\" minimum_necessary: \"m\"")),
        10},
       kRefused,
       "legal_basis LEGAL_BASIS_PART2_COURT_ORDER applies only to substance-use records; case "
       "\"case-1\" has record_class RECORD_CLASS_BEHAVIORAL_HEALTH"},
      {"Part2TreatmentRefused",
       kSU,
       {},
       {Disclosure(absl::StrCat(kToAda, "legal_basis: LEGAL_BASIS_TREATMENT ", kHousing)), 10},
       kRefused,
       "case \"case-1\" holds substance-use records (42 CFR Part 2): legal_basis "
       "LEGAL_BASIS_TREATMENT is not allowed; use consent or a Part 2 exception"},
      {"Part2RequiredByLawRefused",
       kSU,
       {},
       {Disclosure(absl::StrCat(kToCourt, "legal_basis: LEGAL_BASIS_REQUIRED_BY_LAW ", kHousing,
                                " legal_citation: \"subpoena\" minimum_necessary: \"m\"")),
        10},
       kRefused,
       "case \"case-1\" holds substance-use records (42 CFR Part 2): legal_basis "
       "LEGAL_BASIS_REQUIRED_BY_LAW is not allowed; use consent or a Part 2 exception"},
      {"Part2ImminentHarmRefused",
       kSU,
       {},
       {Disclosure(absl::StrCat(kToCourt, "legal_basis: LEGAL_BASIS_IMMINENT_HARM ", kHousing,
                                " justification: \"j\" person_at_risk: \"p\" "
                                "minimum_necessary: \"m\"")),
        10},
       kRefused,
       "case \"case-1\" holds substance-use records (42 CFR Part 2): legal_basis "
       "LEGAL_BASIS_IMMINENT_HARM is not allowed; use consent or a Part 2 exception"},
      {"Part2CourtOrderAccepted",
       kSU,
       {},
       {Disclosure(absl::StrCat(kToCourt, "legal_basis: LEGAL_BASIS_PART2_COURT_ORDER ",
                                "data_categories: \"substance_use_treatment\" "
                                "legal_citation: \"42 CFR 2.64 order 12\" "
                                "minimum_necessary: \"what the order names\"")),
        10},
       kOk,
       ""},
      {"Part2CourtOrderWithoutCitation",
       kSU,
       {},
       {Disclosure(absl::StrCat(kToCourt, "legal_basis: LEGAL_BASIS_PART2_COURT_ORDER ", kHousing)),
        10},
       kInvalid,
       "disclosure_made.legal_citation: must not be empty when legal_basis is "
       "LEGAL_BASIS_PART2_COURT_ORDER"},
      {"Part2EmergencyWithoutJustification",
       kSU,
       {},
       {Disclosure(
            absl::StrCat(kToAda, "legal_basis: LEGAL_BASIS_PART2_MEDICAL_EMERGENCY ", kHousing)),
        10},
       kInvalid,
       "disclosure_made.justification: must not be empty when legal_basis is "
       "LEGAL_BASIS_PART2_MEDICAL_EMERGENCY"},
      {"Part2EmergencyAccepted",
       kSU,
       {},
       {Disclosure(absl::StrCat(kToAda, "legal_basis: LEGAL_BASIS_PART2_MEDICAL_EMERGENCY ",
                                kHousing, " justification: \"overdose\" ",
                                "minimum_necessary: \"current medications\"")),
        10},
       kOk,
       ""},
      // 42 CFR 2.13(a): every Part 2 disclosure, medical emergencies included.
      {"Part2EmergencyWithoutMinimumNecessary",
       kSU,
       {},
       {Disclosure(absl::StrCat(kToAda, "legal_basis: LEGAL_BASIS_PART2_MEDICAL_EMERGENCY ",
                                kHousing, " justification: \"overdose\"")),
        10},
       kInvalid,
       "disclosure_made.minimum_necessary: must not be empty when legal_basis is "
       "LEGAL_BASIS_PART2_MEDICAL_EMERGENCY"},
      {"Part2CourtOrderWithoutMinimumNecessary",
       kSU,
       {},
       {Disclosure(absl::StrCat(kToCourt, "legal_basis: LEGAL_BASIS_PART2_COURT_ORDER ", kHousing,
                                " legal_citation: \"42 CFR 2.64 order 12\"")),
        10},
       kInvalid,
       "disclosure_made.minimum_necessary: must not be empty when legal_basis is "
       "LEGAL_BASIS_PART2_COURT_ORDER"},
      {"Part2ConsentWithoutMinimumNecessary",
       kSU,
       {},
       {Disclosure(absl::StrCat(kToAda, "legal_basis: LEGAL_BASIS_CONSENT consent_id: \"c-1\" ",
                                "data_categories: \"substance_use_treatment\"")),
        10},
       kRefused,
       "case \"case-1\" holds substance-use records: 42 CFR 2.13(a) limits every disclosure to "
       "the information necessary for its purpose, but disclosure_made.minimum_necessary is "
       "empty"},
      {"Part2ConsentCovers",
       kSU,
       {},
       {ConsentDisclosure("c-1", "data_categories: \"substance_use_treatment\""), 10},
       kOk,
       ""},
      {"Part2ConsentDoesNotCover",
       kSU,
       {},
       {ConsentDisclosure("c-1", "data_categories: \"mental_health_notes\""), 10},
       kRefused,
       "consent \"c-1\" does not cover data category \"mental_health_notes\""},
      {"Part2ToClientAccepted",
       kSU,
       {},
       {Disclosure("recipient { recipient_id: \"cl-1\" name: \"Client\" } legal_basis: "
                   "LEGAL_BASIS_TO_CLIENT data_categories: \"housing\""),
        10},
       kOk,
       ""},

      // ---- Time ----
      // occurred_at at most 5 minutes (CheckContext::max_ahead) after receipt:
      // a request dated a year ahead cannot move its due date out.
      {"OccurredAYearAhead",
       kBH,
       {},
       {"access_requested { request_id: \"ar-9\" client_id: \"cl-1\" }", 367},
       kInvalid,
       "event.occurred_at: got 2027-01-03T00:00:00Z, more than 5m after the server received the "
       "event at 2026-01-03T00:00:00Z (--max_occurred_ahead)",
       nullptr,
       absl::FromUnixSeconds(kT0 + 2 * kDay)},
      {"OccurredJustOverTheSkew",
       kBH,
       {},
       {"referral_made { referred_to: \"food bank\" }", 3},
       kInvalid,
       "event.occurred_at: got 2026-01-04T00:00:00Z, more than 5m after the server received the "
       "event at 2026-01-03T23:54:59Z (--max_occurred_ahead)",
       nullptr,
       absl::FromUnixSeconds(kT0 + 3 * kDay - 301)},
      {"OccurredWithinTheSkew",
       kBH,
       {},
       {"referral_made { referred_to: \"food bank\" }", 3},
       kOk,
       "",
       nullptr,
       absl::FromUnixSeconds(kT0 + 3 * kDay - 300)},
      // No earlier than the case's latest event (day 2) unless marked late.
      {"OccurredBeforeTheLatestEvent",
       kBH,
       {},
       {"referral_made { referred_to: \"food bank\" }", 1},
       kRefused,
       "referral_made occurred_at 2026-01-02T00:00:00Z is before the latest event of case "
       "\"case-1\" at 2026-01-03T00:00:00Z by more than 1m (--max_occurred_behind); an event "
       "recorded after the fact needs "
       "referral_made.late_documentation with a reason"},
      // Producers' clocks differ: up to CheckContext::max_behind (1 minute by
      // default) before the latest event is not late.
      {"OccurredWithinTheProducersSkew",
       kBH,
       {},
       {"referral_made { referred_to: \"food bank\" }", 2},
       kOk,
       "",
       [](v1::Event* e) { e->mutable_occurred_at()->set_seconds(kT0 + 2 * kDay - 60); }},
      {"OccurredJustBeyondTheProducersSkew",
       kBH,
       {},
       {"referral_made { referred_to: \"food bank\" }", 2},
       kRefused,
       "referral_made occurred_at 2026-01-02T23:58:59Z is before the latest event of case "
       "\"case-1\" at 2026-01-03T00:00:00Z by more than 1m (--max_occurred_behind); an event "
       "recorded after the fact needs referral_made.late_documentation with a reason",
       [](v1::Event* e) { e->mutable_occurred_at()->set_seconds(kT0 + 2 * kDay - 61); }},
      {"LateDocumentationAccepted",
       kBH,
       {},
       {"referral_made { referred_to: \"food bank\" late_documentation { reason: \"phone call "
        "written up the next day\" } }",
        1},
       kOk,
       ""},
      {"LateDocumentationWithoutReason",
       kBH,
       {},
       {"referral_made { referred_to: \"food bank\" late_documentation {} }", 1},
       kInvalid,
       "referral_made.late_documentation.reason: must not be empty (say why the event is "
       "recorded after the fact)"},
      // A late-documented event still cannot predate its case.
      {"DisclosureBeforeTheCaseWasOpened",
       kBH,
       {},
       {Disclosure(absl::StrCat(kToAda, "legal_basis: LEGAL_BASIS_TREATMENT ", kHousing,
                                " late_documentation { reason: \"found in a paper file\" }")),
        -300},
       kRefused,
       "disclosure_made occurred_at 2025-03-07T00:00:00Z is before case \"case-1\" was opened "
       "at 2026-01-01T00:00:00Z"},
      // A later event moves the latest time; one recorded late does not move
      // it back.
      // A read recorded (by the server) between the case's events does not
      // make the next event late.
      {"ReadsDoNotSetTheCaseClock",
       kBH,
       {{"record_accessed { accessor_id: \"cl-1\" purpose: \"own history\" }", 9}},
       {"referral_made { referred_to: \"food bank\" }", 3},
       kOk,
       ""},
      {"LateDocumentationDoesNotMoveTheClockBack",
       kBH,
       {{"referral_made { referred_to: \"x\" late_documentation { reason: \"r\" } }", 1}},
       {"referral_made { referred_to: \"food bank\" }", 1},
       kRefused,
       "referral_made occurred_at 2026-01-02T00:00:00Z is before the latest event of case "
       "\"case-1\" at 2026-01-03T00:00:00Z by more than 1m (--max_occurred_behind); an event "
       "recorded after the fact needs "
       "referral_made.late_documentation with a reason"},

      // ---- Client notice ----
      {"InformOfUnknownDisclosure",
       kBH,
       {},
       {"client_informed { disclosure_id: \"d-9\" method: \"letter\" }", 3},
       kRefused,
       "disclosure \"d-9\" does not exist in case \"case-1\""},
      {"InformTwice",
       kBH,
       {{"client_informed { disclosure_id: \"d-1\" method: \"letter\" }", 3}},
       {"client_informed { disclosure_id: \"d-1\" method: \"call\" }", 4},
       kRefused,
       "disclosure \"d-1\": the client was already informed"},
      {"InformAccepted",
       kBH,
       {},
       {"client_informed { disclosure_id: \"d-1\" method: \"letter\" }", 3},
       kOk,
       ""},

      // ---- Access ----
      {"AccessRequestIdReused",
       kBH,
       {},
       {"access_requested { request_id: \"ar-1\" client_id: \"cl-1\" }", 3},
       kRefused,
       "access request \"ar-1\" already exists in case \"case-1\""},
      {"FulfillUnknownRequest",
       kBH,
       {},
       {"access_fulfilled { request_id: \"ar-9\" }", 3},
       kRefused,
       "access request \"ar-9\" does not exist in case \"case-1\""},
      {"FulfillDeniedRequest",
       kBH,
       {{"access_denied { request_id: \"ar-1\" reason: \"psychotherapy notes\" "
         "ground: ACCESS_DENIAL_GROUND_PSYCHOTHERAPY_NOTES }",
         3}},
       {"access_fulfilled { request_id: \"ar-1\" }", 4},
       kRefused,
       "access request \"ar-1\" was already denied at 2026-01-04T00:00:00Z"},
      {"DenyFulfilledRequest",
       kBH,
       {kFulfillAr1},
       {"access_denied { request_id: \"ar-1\" reason: \"r\" "
        "ground: ACCESS_DENIAL_GROUND_PSYCHOTHERAPY_NOTES }",
        4},
       kRefused,
       "access request \"ar-1\" was already fulfilled at 2026-01-04T00:00:00Z"},
      {"FulfillAccepted", kBH, {}, kFulfillAr1, kOk, ""},
      {"ExtendAccepted",
       kBH,
       {},
       {"access_extended { request_id: \"ar-1\" reason: \"records off-site\" }", 31},
       kOk,
       ""},
      {"ExtendTwice",
       kBH,
       {{"access_extended { request_id: \"ar-1\" reason: \"records off-site\" }", 20}},
       {"access_extended { request_id: \"ar-1\" reason: \"again\" }", 25},
       kRefused,
       "access request \"ar-1\" was already extended once; 45 CFR 164.524(b)(2) allows one "
       "30-day extension"},
      {"ExtendAfterDue",
       kBH,
       {},
       {"access_extended { request_id: \"ar-1\" reason: \"late\" }", 32},
       kRefused,
       "access request \"ar-1\" was due at 2026-02-01T00:00:00Z; an extension must be given by "
       "then, got 2026-02-02T00:00:00Z"},
      // An extension dated before the due date but received after it is late.
      {"ExtendReceivedAfterDue",
       kBH,
       {},
       {"access_extended { request_id: \"ar-1\" reason: \"records off-site\" }", 30},
       kRefused,
       "access request \"ar-1\" was due at 2026-02-01T00:00:00Z; an extension must be given by "
       "then, got 2026-02-03T00:00:00Z",
       nullptr,
       absl::FromUnixSeconds(kT0 + 33 * kDay)},
      {"ExtendRecordedLateWithAReason",
       kBH,
       {},
       {"access_extended { request_id: \"ar-1\" reason: \"records off-site\" "
        "late_documentation { reason: \"letter sent day 30, entered on return\" } }",
        30},
       kOk,
       "",
       nullptr,
       absl::FromUnixSeconds(kT0 + 33 * kDay)},
      {"ExtendDecidedRequest",
       kBH,
       {kFulfillAr1},
       {"access_extended { request_id: \"ar-1\" reason: \"r\" }", 4},
       kRefused,
       "access request \"ar-1\" was already fulfilled at 2026-01-04T00:00:00Z"},

      // ---- Client workflows: accounting requests (W5) ----
      {"AccountingRequestWithoutClient",
       kBH,
       {},
       {"accounting_requested { request_id: \"acr-1\" }", 3},
       kInvalid,
       "accounting_requested.client_id: must not be empty"},
      {"AccountingRequestAccepted", kBH, {}, kAccountingRequest, kOk, ""},
      {"AccountingRequestIdReused",
       kBH,
       {kAccountingRequest},
       kAccountingRequest,
       kRefused,
       "accounting request \"acr-1\" already exists in case \"case-1\""},
      // 164.528(c)(2): the first request in any 12 months is free.
      {"FirstAccountingInTwelveMonthsIsFree",
       kBH,
       {},
       {"accounting_requested { request_id: \"acr-2\" client_id: \"cl-1\" "
        "fee_notice: \"$20, told by phone\" }",
        3},
       kRefused,
       "accounting request \"acr-2\" carries a fee notice, but client \"cl-1\" made no other "
       "accounting request in case \"case-1\" since 2025-01-04T00:00:00Z; 45 CFR 164.528(c)(2) "
       "makes the first in any 12 months free"},
      {"AccountingFeeWithinTwelveMonths",
       kBH,
       {kAccountingRequest},
       {"accounting_requested { request_id: \"acr-2\" client_id: \"cl-1\" "
        "fee_notice: \"$20, told by phone\" }",
        300},
       kOk,
       ""},
      {"AccountingFeeAfterTwelveMonths",
       kBH,
       {kAccountingRequest},
       {"accounting_requested { request_id: \"acr-2\" client_id: \"cl-1\" "
        "fee_notice: \"$20, told by phone\" }",
        369},
       kRefused,
       "accounting request \"acr-2\" carries a fee notice, but client \"cl-1\" made no other "
       "accounting request in case \"case-1\" since 2026-01-05T00:00:00Z; 45 CFR 164.528(c)(2) "
       "makes the first in any 12 months free"},
      {"AccountingExtensionWithoutReason",
       kBH,
       {kAccountingRequest},
       {"accounting_extended { request_id: \"acr-1\" }", 10},
       kInvalid,
       "accounting_extended.reason: must not be empty"},
      {"AccountingExtendAccepted",
       kBH,
       {kAccountingRequest},
       {"accounting_extended { request_id: \"acr-1\" reason: \"records off-site\" }", 63},
       kOk,
       ""},
      {"AccountingExtendAfterDue",
       kBH,
       {kAccountingRequest},
       {"accounting_extended { request_id: \"acr-1\" reason: \"records off-site\" }", 64},
       kRefused,
       "accounting request \"acr-1\" was due at 2026-03-05T00:00:00Z; an extension must be given "
       "by then, got 2026-03-06T00:00:00Z"},
      {"AccountingExtendTwice",
       kBH,
       {kAccountingRequest, {"accounting_extended { request_id: \"acr-1\" reason: \"r\" }", 10}},
       {"accounting_extended { request_id: \"acr-1\" reason: \"again\" }", 11},
       kRefused,
       "accounting request \"acr-1\" was already extended once; 45 CFR 164.528(c)(1)(ii) allows "
       "one 30-day extension"},
      {"FulfillAccountingTwice",
       kBH,
       {kAccountingRequest, {"accounting_fulfilled { request_id: \"acr-1\" }", 10}},
       {"accounting_fulfilled { request_id: \"acr-1\" }", 11},
       kRefused,
       "accounting request \"acr-1\" was already fulfilled at 2026-01-11T00:00:00Z"},
      {"FulfillUnknownAccountingRequest",
       kBH,
       {},
       {"accounting_fulfilled { request_id: \"acr-9\" }", 10},
       kRefused,
       "accounting request \"acr-9\" does not exist in case \"case-1\""},
      {"CloseWithOpenAccountingRequest",
       kBH,
       {kFulfillAr1, kAccountingRequest},
       {"case_closed { reason: \"goals met\" }", 4},
       kRefused,
       "case \"case-1\" cannot be closed: accounting request \"acr-1\" (requested "
       "2026-01-04T00:00:00Z, due 2026-03-05T00:00:00Z) has no decision"},
      {"DisposedCaseTakesAccountingRequest",
       kBH,
       {kFulfillAr1, kClose, kDispose},
       {"accounting_requested { request_id: \"acr-1\" client_id: \"cl-1\" }", 6},
       kOk,
       ""},

      // ---- Client workflows: suspension of accounting (W6) ----
      {"SuspensionWithoutEnd",
       kBH,
       {},
       {"accounting_suspended { suspension_id: \"s-1\" client_id: \"cl-1\" "
        "agency_name: \"State Police\" form: SUSPENSION_FORM_WRITTEN statement: \"letter 7\" "
        "agency_kind: SUSPENDING_AGENCY_LAW_ENFORCEMENT }",
        3},
       kInvalid,
       "accounting_suspended.ends_at: must be set (45 CFR 164.528(a)(2): a suspension is for a "
       "stated time)"},
      {"OralSuspensionWithoutOfficial",
       kBH,
       {},
       {OralSuspension(33, ""), 3},
       kInvalid,
       "accounting_suspended.official: must not be empty"},
      {"OralSuspensionOverThirtyDays",
       kBH,
       {},
       {OralSuspension(34, "Det. Ruiz"), 3},
       kInvalid,
       "accounting_suspended.ends_at: got 2026-02-04T00:00:00Z, more than 30 days after the oral "
       "statement at 2026-01-04T00:00:00Z (45 CFR 164.528(a)(2)(ii); a longer suspension needs a "
       "written statement)"},
      {"OralSuspensionAccepted", kBH, {}, {OralSuspension(33, "Det. Ruiz"), 3}, kOk, ""},
      {"WrittenSuspensionForAYear",
       kBH,
       {},
       {absl::StrCat("accounting_suspended { suspension_id: \"s-1\" client_id: \"cl-1\" "
                     "agency_id: \"court-1\" agency_name: \"County Court\" "
                     "form: SUSPENSION_FORM_WRITTEN statement: \"letter 7\" "
                     "agency_kind: SUSPENDING_AGENCY_HEALTH_OVERSIGHT ends_at { seconds: ",
                     kT0 + 368 * kDay, " } }"),
        3},
       kOk,
       ""},
      {"SuspensionWithoutAgencyKind",
       kBH,
       {},
       {absl::StrCat("accounting_suspended { suspension_id: \"s-1\" client_id: \"cl-1\" "
                     "agency_name: \"County Court\" form: SUSPENSION_FORM_WRITTEN "
                     "statement: \"letter 7\" ends_at { seconds: ",
                     kT0 + 368 * kDay, " } }"),
        3},
       kInvalid,
       "accounting_suspended.agency_kind: got SUSPENDING_AGENCY_UNSPECIFIED, want one of "
       "SUSPENDING_AGENCY_HEALTH_OVERSIGHT, SUSPENDING_AGENCY_LAW_ENFORCEMENT"},
      {"SuspensionIdReused",
       kBH,
       {{OralSuspension(33, "Det. Ruiz"), 3}},
       {OralSuspension(33, "Det. Ruiz"), 3},
       kRefused,
       "accounting suspension \"s-1\" already exists in case \"case-1\""},

      // ---- Client workflows: amendment requests (W7) ----
      {"AmendmentRequestWithoutChange",
       kBH,
       {},
       {"amendment_requested { request_id: \"am-1\" client_id: \"cl-1\" entry_id: \"e-1\" }", 3},
       kInvalid,
       "amendment_requested.requested_change: must not be empty"},
      {"AmendmentRequestOfUnknownEntry",
       kBH,
       {},
       {"amendment_requested { request_id: \"am-1\" client_id: \"cl-1\" entry_id: \"e-9\" "
        "requested_change: \"c\" }",
        3},
       kRefused,
       "amendment_requested.entry_id \"e-9\" is not an entry of case \"case-1\""},
      {"AmendmentRequestAccepted", kBH, {}, kAmendmentRequest, kOk, ""},
      {"AcceptAmendmentNotRecorded",
       kBH,
       {kAmendmentRequest},
       {"amendment_accepted { request_id: \"am-1\" amendment_entry_id: \"e-7\" }", 4},
       kRefused,
       "amendment request \"am-1\" asks to amend entry \"e-1\", but amendment_entry_id \"e-7\" is "
       "not an entry in case \"case-1\"; record the record_amended first"},
      {"AcceptAmendmentOfAnotherEntry",
       kBH,
       {{"record_entry_written { entry_id: \"e-2\" data_category: \"housing\" }", 3},
        {"record_amended { entry_id: \"e-3\" amends_entry_id: \"e-2\" reason: \"r\" }", 3},
        kAmendmentRequest},
       {"amendment_accepted { request_id: \"am-1\" amendment_entry_id: \"e-3\" }", 4},
       kRefused,
       "amendment request \"am-1\" asks to amend entry \"e-1\", but amendment_entry_id \"e-3\" "
       "does not amend it in case \"case-1\"; record the record_amended first"},
      {"AcceptAmendment",
       kBH,
       {kAmendmentRequest,
        {"record_amended { entry_id: \"e-3\" amends_entry_id: \"e-1\" reason: \"client\" }", 4}},
       {"amendment_accepted { request_id: \"am-1\" amendment_entry_id: \"e-3\" }", 4},
       kOk,
       ""},
      {"DenyAmendmentWithoutBasis",
       kBH,
       {kAmendmentRequest},
       {"amendment_denied { request_id: \"am-1\" explanation: \"x\" }", 4},
       kInvalid,
       "amendment_denied.basis: got AMENDMENT_DENIAL_BASIS_UNSPECIFIED, want one of "
       "AMENDMENT_DENIAL_BASIS_NOT_CREATED_HERE, AMENDMENT_DENIAL_BASIS_NOT_IN_RECORD_SET, "
       "AMENDMENT_DENIAL_BASIS_NOT_AVAILABLE_FOR_ACCESS, "
       "AMENDMENT_DENIAL_BASIS_ACCURATE_AND_COMPLETE"},
      {"DenyAmendmentTwice",
       kBH,
       {kAmendmentRequest, kDenyAmendment},
       {"amendment_denied { request_id: \"am-1\" basis: AMENDMENT_DENIAL_BASIS_NOT_CREATED_HERE "
        "explanation: \"x\" }",
        5},
       kRefused,
       "amendment request \"am-1\" was already denied at 2026-01-05T00:00:00Z"},
      {"AmendmentExtendAfterDue",
       kBH,
       {kAmendmentRequest},
       {"amendment_extended { request_id: \"am-1\" reason: \"author away\" }", 64},
       kRefused,
       "amendment request \"am-1\" was due at 2026-03-05T00:00:00Z; an extension must be given "
       "by then, got 2026-03-06T00:00:00Z"},
      {"AmendmentExtendTwice",
       kBH,
       {kAmendmentRequest, {"amendment_extended { request_id: \"am-1\" reason: \"r\" }", 10}},
       {"amendment_extended { request_id: \"am-1\" reason: \"again\" }", 11},
       kRefused,
       "amendment request \"am-1\" was already extended once; 45 CFR 164.526(b)(2)(ii) allows "
       "one 30-day extension"},
      {"AmendmentExtendAccepted",
       kBH,
       {kAmendmentRequest},
       {"amendment_extended { request_id: \"am-1\" reason: \"author away\" }", 63},
       kOk,
       ""},
      {"CloseWithOpenAmendmentRequest",
       kBH,
       {kFulfillAr1, kAmendmentRequest},
       {"case_closed { reason: \"goals met\" }", 4},
       kRefused,
       "case \"case-1\" cannot be closed: amendment request \"am-1\" (requested "
       "2026-01-04T00:00:00Z, due 2026-03-05T00:00:00Z) has no decision"},
      {"DisagreementWithoutDenial",
       kBH,
       {kAmendmentRequest},
       kDisagreement,
       kRefused,
       "amendment request \"am-1\" was not denied: a statement of disagreement answers a denial "
       "(45 CFR 164.526(d)(1)(ii))"},
      {"DisagreementNotInClientsHistory",
       kBH,
       {kAmendmentRequest, kDenyAmendment},
       {"subject_ids: \"cl-2\" disagreement_filed { request_id: \"am-1\" statement: \"s\" }", 5},
       kRefused,
       "disagreement_filed: the statement of disagreement goes to client \"cl-1\", so "
       "event.subject_ids must include them (got [cl-2])"},
      {"DisagreementAccepted", kBH, {kAmendmentRequest, kDenyAmendment}, kDisagreement, kOk, ""},
      {"DisagreementTwice",
       kBH,
       {kAmendmentRequest, kDenyAmendment, kDisagreement},
       kDisagreement,
       kRefused,
       "amendment request \"am-1\": a statement of disagreement was already filed at "
       "2026-01-06T00:00:00Z"},
      {"RebutWithoutDisagreement",
       kBH,
       {kAmendmentRequest, kDenyAmendment},
       {"disagreement_rebutted { request_id: \"am-1\" rebuttal: \"r\" }", 6},
       kRefused,
       "amendment request \"am-1\" has no statement of disagreement to rebut in case \"case-1\""},
      {"RebuttalAccepted",
       kBH,
       {kAmendmentRequest, kDenyAmendment, kDisagreement},
       {"disagreement_rebutted { request_id: \"am-1\" rebuttal: \"r\" author_id: \"m-1\" }", 6},
       kOk,
       ""},
      // 164.526(d)(5): the statement travels with every later disclosure.
      {"DisclosureWithoutTheDisagreement",
       kBH,
       {kAmendmentRequest, kDenyAmendment, kDisagreement},
       {Disclosure(absl::StrCat(kToAda, "legal_basis: LEGAL_BASIS_TREATMENT ", kHousing)), 7},
       kRefused,
       "disclosure \"d-9\" shares data category \"housing\" of entry \"e-1\", which carries "
       "client \"cl-1\"'s statement of disagreement (amendment request \"am-1\"); 45 CFR "
       "164.526(d)(5) sends it with every later disclosure: list \"am-1\" in "
       "disclosure_made.disagreements_included"},
      {"DisclosureCarriesTheDisagreement",
       kBH,
       {kAmendmentRequest, kDenyAmendment, kDisagreement},
       {Disclosure(absl::StrCat(kToAda, "legal_basis: LEGAL_BASIS_TREATMENT ", kHousing,
                                " disagreements_included: \"am-1\"")),
        7},
       kOk,
       ""},
      {"DisclosureNamesNoDisagreement",
       kBH,
       {},
       {Disclosure(absl::StrCat(kToAda, "legal_basis: LEGAL_BASIS_TREATMENT ", kHousing,
                                " disagreements_included: \"am-1\"")),
        7},
       kRefused,
       "disclosure_made.disagreements_included names amendment request \"am-1\", which has no "
       "statement of disagreement in case \"case-1\""},

      // ---- Client workflows: legal holds (W12) ----
      {"HoldWithoutAuthority",
       kBH,
       {},
       {"legal_hold_placed { hold_id: \"h-1\" scope: LEGAL_HOLD_SCOPE_CASE "
        "ground: LEGAL_HOLD_GROUND_LITIGATION }",
        3},
       kInvalid,
       "legal_hold_placed.authority: must not be empty"},
      {"ClientHoldWithoutClient",
       kBH,
       {},
       {"legal_hold_placed { hold_id: \"h-1\" scope: LEGAL_HOLD_SCOPE_CLIENT "
        "ground: LEGAL_HOLD_GROUND_LEGAL_CLAIMS authority: \"claim 4\" }",
        3},
       kInvalid,
       "legal_hold_placed.client_id: must not be empty when scope is LEGAL_HOLD_SCOPE_CLIENT"},
      {"DisposalUnderHold",
       kBH,
       {kHold, kFulfillAr1, kClose},
       kDispose,
       kRefused,
       "case \"case-1\" is under legal hold \"h-1\" (LEGAL_HOLD_GROUND_LITIGATION, \"notice "
       "2026-17\", placed 2026-01-04T00:00:00Z): records_disposed is not allowed until it is "
       "released"},
      {"DisposalAfterRelease", kBH, {kHold, kFulfillAr1, kClose, kReleaseHold}, kDispose, kOk, ""},
      {"ClosedCaseTakesHold", kBH, {kFulfillAr1, kClose}, {kHold.text, 5}, kOk, ""},
      {"HoldIdReused",
       kBH,
       {kHold, kReleaseHold},
       {kHold.text, 5},
       kRefused,
       "legal hold \"h-1\" already exists in case \"case-1\" (released; place a new one)"},
      {"ReleaseUnknownHold",
       kBH,
       {},
       kReleaseHold,
       kRefused,
       "legal hold \"h-1\" does not exist in case \"case-1\""},
      {"ReleaseTwice",
       kBH,
       {kHold, kReleaseHold},
       {kReleaseHold.text, 5},
       kRefused,
       "legal hold \"h-1\" was already released at 2026-01-05T00:00:00Z"},

      // ---- Client workflows: denials of access and their review (W13) ----
      {"DenialWithoutGround",
       kBH,
       {},
       {"access_denied { request_id: \"ar-1\" reason: \"r\" }", 3},
       kInvalid,
       "access_denied.ground: got ACCESS_DENIAL_GROUND_UNSPECIFIED, want one of "
       "ACCESS_DENIAL_GROUND_PSYCHOTHERAPY_NOTES, ACCESS_DENIAL_GROUND_LITIGATION_MATERIAL, "
       "ACCESS_DENIAL_GROUND_CORRECTIONAL_INSTITUTION, ACCESS_DENIAL_GROUND_RESEARCH_IN_PROGRESS, "
       "ACCESS_DENIAL_GROUND_PRIVACY_ACT, ACCESS_DENIAL_GROUND_CONFIDENTIAL_SOURCE, "
       "ACCESS_DENIAL_GROUND_ENDANGERS_LIFE_OR_SAFETY, "
       "ACCESS_DENIAL_GROUND_HARM_TO_PERSON_REFERENCED, "
       "ACCESS_DENIAL_GROUND_HARM_VIA_REPRESENTATIVE"},
      {"ReviewableDenialWithoutDenier",
       kBH,
       {},
       {"access_denied { request_id: \"ar-1\" reason: \"r\" "
        "ground: ACCESS_DENIAL_GROUND_ENDANGERS_LIFE_OR_SAFETY }",
        3},
       kInvalid,
       "access_denied.denied_by: must not be empty when ground is "
       "ACCESS_DENIAL_GROUND_ENDANGERS_LIFE_OR_SAFETY (45 CFR 164.524(a)(3): a licensed health "
       "care professional's determination)"},
      {"DenialNotInClientsHistory",
       kBH,
       {},
       {"subject_ids: \"cl-2\" access_denied { request_id: \"ar-1\" reason: \"r\" "
        "ground: ACCESS_DENIAL_GROUND_PSYCHOTHERAPY_NOTES }",
        3},
       kRefused,
       "access_denied: the denial goes to client \"cl-1\", so event.subject_ids must include "
       "them (got [cl-2])"},
      // S8: every answer to a client's request goes to that client's history.
      {"AccessFulfilledNotInClientsHistory",
       kBH,
       {},
       {"subject_ids: \"cl-2\" access_fulfilled { request_id: \"ar-1\" }", 3},
       kRefused,
       "access_fulfilled: the answer to their access request goes to client \"cl-1\", so "
       "event.subject_ids must include them (got [cl-2])"},
      {"AccessExtendedNotInClientsHistory",
       kBH,
       {},
       {"subject_ids: \"cl-2\" access_extended { request_id: \"ar-1\" reason: \"records "
        "off-site\" }",
        20},
       kRefused,
       "access_extended: the extension and its reason goes to client \"cl-1\", so "
       "event.subject_ids must include them (got [cl-2])"},
      {"AccountingFulfilledNotInClientsHistory",
       kBH,
       {kAccountingRequest},
       {"subject_ids: \"cl-2\" accounting_fulfilled { request_id: \"acr-1\" }", 10},
       kRefused,
       "accounting_fulfilled: the accounting goes to client \"cl-1\", so event.subject_ids "
       "must include them (got [cl-2])"},
      {"AccountingExtendedNotInClientsHistory",
       kBH,
       {kAccountingRequest},
       {"subject_ids: \"cl-2\" accounting_extended { request_id: \"acr-1\" reason: \"r\" }", 10},
       kRefused,
       "accounting_extended: the extension and its reason goes to client \"cl-1\", so "
       "event.subject_ids must include them (got [cl-2])"},
      {"AmendmentDeniedNotInClientsHistory",
       kBH,
       {kAmendmentRequest},
       {absl::StrCat("subject_ids: \"cl-2\" ", kDenyAmendment.text), 4},
       kRefused,
       "amendment_denied: the denial and its basis goes to client \"cl-1\", so "
       "event.subject_ids must include them (got [cl-2])"},
      {"Part2ListProvidedNotInClientsHistory",
       kSU,
       {kDesignationConsent, kPart2ListRequest},
       {"subject_ids: \"cl-2\" part2_list_provided { request_id: \"pl-1\" }", 10},
       kRefused,
       "part2_list_provided: the list goes to client \"cl-1\", so event.subject_ids must "
       "include them (got [cl-2])"},
      {"ReviewUnreviewableDenial",
       kBH,
       {{"access_denied { request_id: \"ar-1\" reason: \"r\" "
         "ground: ACCESS_DENIAL_GROUND_PSYCHOTHERAPY_NOTES }",
         3}},
       kAskReview,
       kRefused,
       "access request \"ar-1\" was denied on ground ACCESS_DENIAL_GROUND_PSYCHOTHERAPY_NOTES, "
       "which 45 CFR 164.524(a)(1)-(2) makes unreviewable; only (a)(3) grounds are reviewed"},
      {"ReviewOfARequestNotDenied",
       kBH,
       {},
       kAskReview,
       kRefused,
       "access request \"ar-1\" was not denied: only a denial can be reviewed"},
      {"ReviewRequestAccepted", kBH, {kReviewableDenial}, kAskReview, kOk, ""},
      {"ReviewByTheDenier",
       kBH,
       {kReviewableDenial, kAskReview},
       {"access_reviewed { request_id: \"ar-1\" reviewer_id: \"dr-1\" reviewer_license: \"L1\" "
        "outcome: ACCESS_REVIEW_OUTCOME_UPHELD }",
        5},
       kRefused,
       "reviewer \"dr-1\" made the denial of access request \"ar-1\"; 45 CFR 164.524(a)(4) needs "
       "a reviewer who did not take part in it"},
      {"ReviewWithoutLicense",
       kBH,
       {kReviewableDenial, kAskReview},
       {"access_reviewed { request_id: \"ar-1\" reviewer_id: \"dr-2\" "
        "outcome: ACCESS_REVIEW_OUTCOME_UPHELD }",
        5},
       kInvalid,
       "access_reviewed.reviewer_license: must not be empty"},
      {"ReviewNotAsked",
       kBH,
       {kReviewableDenial},
       kOverturn,
       kRefused,
       "the denial of access request \"ar-1\" was not sent for review in case \"case-1\""},
      {"ReviewAccepted", kBH, {kReviewableDenial, kAskReview}, kOverturn, kOk, ""},
      {"ReviewTwice",
       kBH,
       {kReviewableDenial, kAskReview, kOverturn},
       {kOverturn.text, 6},
       kRefused,
       "the denial of access request \"ar-1\" was already reviewed at 2026-01-06T00:00:00Z by "
       "\"dr-2\"; the decision is binding"},
      // 164.524(d)(4): the reviewing official's determination binds.
      {"DenyAfterOverturned",
       kBH,
       {kReviewableDenial, kAskReview, kOverturn},
       {"access_denied { request_id: \"ar-1\" reason: \"r\" "
        "ground: ACCESS_DENIAL_GROUND_PSYCHOTHERAPY_NOTES }",
        6},
       kRefused,
       "access request \"ar-1\": reviewer \"dr-2\" overturned its denial at "
       "2026-01-06T00:00:00Z; the review is binding, so access must be given"},
      {"FulfillAfterOverturned",
       kBH,
       {kReviewableDenial, kAskReview, kOverturn},
       {kFulfillAr1.text, 6},
       kOk,
       ""},
      {"FulfillAfterUpheld",
       kBH,
       {kReviewableDenial,
        kAskReview,
        {"access_reviewed { request_id: \"ar-1\" reviewer_id: \"dr-2\" reviewer_license: \"L1\" "
         "outcome: ACCESS_REVIEW_OUTCOME_UPHELD }",
         5}},
       {kFulfillAr1.text, 6},
       kRefused,
       "access request \"ar-1\" was already denied at 2026-01-04T00:00:00Z"},
      {"CloseWithPendingReview",
       kBH,
       {kReviewableDenial, kAskReview},
       {"case_closed { reason: \"goals met\" }", 5},
       kRefused,
       "case \"case-1\" cannot be closed: the review of the denial of access request \"ar-1\" "
       "(asked 2026-01-05T00:00:00Z) has no decision"},
      // ---- Conflicts of interest told to the client (C1-C4) ----
      {"ConflictResolvedWithoutResolver",
       kBH,
       {},
       {"conflict_resolved { conflict_id: \"k-1\" resolution: \"reassigned\" }"},
       kInvalid,
       "conflict_resolved.resolved_by: must not be empty"},
      {"ConflictNoticeWithoutMethod",
       kBH,
       {},
       {"client_informed_of_conflict { conflict_id: \"k-1\" }"},
       kInvalid,
       "client_informed_of_conflict.method: must not be empty"},
      {"ConflictNoticeOfUnknownConflict",
       kBH,
       {},
       {"client_informed_of_conflict { conflict_id: \"k-9\" method: \"letter\" }"},
       kRefused,
       "conflict \"k-9\" was not declared in case \"case-1\""},
      {"ConflictNoticeAccepted",
       kBH,
       {},
       {"client_informed_of_conflict { conflict_id: \"k-1\" method: \"in person\" "
        "informed_by: \"s-1\" }"},
       kOk,
       ""},
      {"ConflictNoticeTwice",
       kBH,
       {{"client_informed_of_conflict { conflict_id: \"k-1\" method: \"in person\" }", 3}},
       {"client_informed_of_conflict { conflict_id: \"k-1\" method: \"letter\" }", 4},
       kRefused,
       "conflict \"k-1\": the client was already informed at 2026-01-04T00:00:00Z"},
      // A resolution does not discharge the duty to tell the client.
      {"ConflictNoticeAfterResolution",
       kBH,
       {{"conflict_resolved { conflict_id: \"k-1\" resolution: \"s-1 recused\" "
         "resolved_by: \"sup-1\" }",
         3}},
       {"client_informed_of_conflict { conflict_id: \"k-1\" method: \"letter\" }", 4},
       kOk,
       ""},
      {"ClosedCaseTakesConflictNotice",
       kBH,
       {kFulfillAr1, kClose},
       {"client_informed_of_conflict { conflict_id: \"k-1\" method: \"letter\" }", 5},
       kOk,
       ""},
      {"ResolveOwnConflict",
       kBH,
       {},
       {"conflict_resolved { conflict_id: \"k-1\" resolution: \"it is fine\" "
        "resolved_by: \"s-1\" }"},
       kRefused,
       "conflict \"k-1\" is \"s-1\"'s own: conflict_resolved.resolved_by must be someone else "
       "(NASW 2.06(a))"},
      {"DisclosedByConflictedPerson",
       kBH,
       {},
       {absl::StrCat("disclosure_made { disclosure_id: \"d-9\" client_id: \"cl-1\" ", kToAda,
                     "purpose: \"care_coordination\" description: \"housing plan\" ", kHousing,
                     " legal_basis: LEGAL_BASIS_TREATMENT disclosed_by: \"s-1\" }"),
        10},
       kRefused,
       "disclosure_made.disclosed_by \"s-1\" has an unresolved conflict of interest in case "
       "\"case-1\" (conflict \"k-1\"); NASW 2.06(a): someone else must act until it is resolved"},
      {"DisclosedByPersonWhoseConflictIsResolved",
       kBH,
       {{"conflict_resolved { conflict_id: \"k-1\" resolution: \"interest divested\" "
         "resolved_by: \"sup-1\" }",
         3}},
       {absl::StrCat("disclosure_made { disclosure_id: \"d-9\" client_id: \"cl-1\" ", kToAda,
                     "purpose: \"care_coordination\" description: \"housing plan\" ", kHousing,
                     " legal_basis: LEGAL_BASIS_TREATMENT disclosed_by: \"s-1\" }"),
        10},
       kOk,
       ""},
      {"AssignConflictedManager",
       kBH,
       {},
       {"case_manager_assigned { manager_id: \"s-1\" previous_manager_id: \"m-1\" }"},
       kRefused,
       "case_manager_assigned.manager_id \"s-1\" has an unresolved conflict of interest in case "
       "\"case-1\" (conflict \"k-1\"); NASW 2.06(a): someone else must act until it is resolved"},
      {"TransferToConflictedManager",
       kBH,
       {},
       {"case_transferred { to_manager_id: \"s-1\" reason: \"caseload\" }"},
       kRefused,
       "case_transferred.to_manager_id \"s-1\" has an unresolved conflict of interest in case "
       "\"case-1\" (conflict \"k-1\"); NASW 2.06(a): someone else must act until it is resolved"},

      // ---- Authorized representatives with scope (R1-R2) ----
      {"RepresentativeWithoutAuthority",
       kBH,
       {},
       {"participant_added { participant_id: \"rep-2\" "
        "role: PARTICIPANT_ROLE_AUTHORIZED_REPRESENTATIVE }"},
       kInvalid,
       "participant_added.authority: must be set for PARTICIPANT_ROLE_AUTHORIZED_REPRESENTATIVE "
       "(the document they act under, its scope and dates; 45 CFR 164.502(g))"},
      {"RepresentativeWithShortDocumentHash",
       kBH,
       {},
       {"participant_added { participant_id: \"rep-2\" "
        "role: PARTICIPANT_ROLE_AUTHORIZED_REPRESENTATIVE authority { document_sha256: \"ab\" "
        "scope: REPRESENTATIVE_SCOPE_ALL } }"},
       kInvalid,
       "participant_added.authority.document_sha256: got 2 bytes, want 32 (the SHA-256 of the "
       "authority document)"},
      {"RepresentativeWithoutScope",
       kBH,
       {},
       {Representative2("")},
       kInvalid,
       "participant_added.authority.scope: got REPRESENTATIVE_SCOPE_UNSPECIFIED, want one of "
       "REPRESENTATIVE_SCOPE_ALL, REPRESENTATIVE_SCOPE_HEALTH_DECISIONS, "
       "REPRESENTATIVE_SCOPE_PROGRAM"},
      {"RepresentativeForAProgramWithoutProgram",
       kBH,
       {},
       {Representative2("scope: REPRESENTATIVE_SCOPE_PROGRAM")},
       kInvalid,
       "participant_added.authority.program: must not be empty when scope is "
       "REPRESENTATIVE_SCOPE_PROGRAM"},
      {"RepresentativeAuthorityEndingBeforeItStarts",
       kBH,
       {},
       {Representative2(absl::StrCat("scope: REPRESENTATIVE_SCOPE_ALL starts_at { seconds: ",
                                     kT0 + 10 * kDay, " } ends_at { seconds: ", kT0 + 5 * kDay,
                                     " }"))},
       kInvalid,
       "participant_added.authority.ends_at: got 2026-01-06T00:00:00Z, want after starts_at "
       "2026-01-11T00:00:00Z"},
      {"AuthorityOnANonRepresentative",
       kBH,
       {},
       {absl::StrCat("participant_added { participant_id: \"fm-1\" "
                     "role: PARTICIPANT_ROLE_FAMILY_MEMBER ",
                     kGuardian, " }")},
       kInvalid,
       "participant_added.authority: only PARTICIPANT_ROLE_AUTHORIZED_REPRESENTATIVE acts under "
       "an authority, got role PARTICIPANT_ROLE_FAMILY_MEMBER"},
      {"ConsentByRepresentativeAfterTheirEnd",
       kBH,
       {{Representative2(absl::StrCat("scope: REPRESENTATIVE_SCOPE_ALL ends_at { seconds: ",
                                      kT0 + 5 * kDay, " }")),
         3}},
       {kConsentByRep2, 6},
       kRefused,
       "consent_granted.grantor_id \"rep-2\", an authorized representative, had authority until "
       "2026-01-06T00:00:00Z, before consent_granted at 2026-01-07T00:00:00Z"},
      {"ConsentByRepresentativeBeforeTheirStart",
       kBH,
       {{Representative2(absl::StrCat("scope: REPRESENTATIVE_SCOPE_ALL starts_at { seconds: ",
                                      kT0 + 20 * kDay, " }")),
         3}},
       {kConsentByRep2, 6},
       kRefused,
       "consent_granted.grantor_id \"rep-2\", an authorized representative, has authority from "
       "2026-01-21T00:00:00Z, after consent_granted at 2026-01-07T00:00:00Z"},
      {"ConsentByRepresentativeWithinTheirDates",
       kBH,
       {{Representative2(absl::StrCat("scope: REPRESENTATIVE_SCOPE_ALL starts_at { seconds: ",
                                      kT0 + 4 * kDay, " } ends_at { seconds: ", kT0 + 7 * kDay,
                                      " }")),
         3}},
       {kConsentByRep2, 6},
       kOk,
       ""},
      {"ConsentByRepresentativeOfAnotherProgram",
       kBH,
       {{Representative2("scope: REPRESENTATIVE_SCOPE_PROGRAM program: \"youth-services\""), 3}},
       {kConsentByRep2, 6},
       kRefused,
       "consent_granted.grantor_id \"rep-2\", an authorized representative, acts for program "
       "\"youth-services\" only, but case \"case-1\" is in program \"housing-first\""},
      {"ConsentByRepresentativeOfThisProgram",
       kBH,
       {{Representative2("scope: REPRESENTATIVE_SCOPE_PROGRAM program: \"housing-first\""), 3}},
       {kConsentByRep2, 6},
       kOk,
       ""},
      {"ConsentByHealthRepresentativeInAGeneralCase",
       Base::kNone,
       {{"case_opened { program: \"legal-aid\" record_class: RECORD_CLASS_GENERAL }"},
        {Representative2("scope: REPRESENTATIVE_SCOPE_HEALTH_DECISIONS")}},
       {kConsentByRep2, 1},
       kRefused,
       "consent_granted.grantor_id \"rep-2\", an authorized representative, may make health "
       "care decisions only, but case \"case-1\" has record_class RECORD_CLASS_GENERAL"},
      {"ConsentByHealthRepresentativeInAHealthCase",
       kBH,
       {{Representative2("scope: REPRESENTATIVE_SCOPE_HEALTH_DECISIONS"), 3}},
       {kConsentByRep2, 6},
       kOk,
       ""},
      {"RevocationByRepresentativeAfterTheirEnd",
       kBH,
       {{Representative2(absl::StrCat("scope: REPRESENTATIVE_SCOPE_ALL ends_at { seconds: ",
                                      kT0 + 5 * kDay, " }")),
         3}},
       {"consent_revoked { consent_id: \"c-1\" revoked_by: \"rep-2\" }", 6},
       kRefused,
       "consent_revoked.revoked_by \"rep-2\", an authorized representative, had authority until "
       "2026-01-06T00:00:00Z, before consent_revoked at 2026-01-07T00:00:00Z"},
      {"AccessRequestByRepresentativeAfterTheirEnd",
       kBH,
       {{Representative2(absl::StrCat("scope: REPRESENTATIVE_SCOPE_ALL ends_at { seconds: ",
                                      kT0 + 5 * kDay, " }")),
         3}},
       {"access_requested { request_id: \"ar-9\" client_id: \"cl-1\" requested_by: \"rep-2\" }",
        6},
       kRefused,
       "access_requested.requested_by \"rep-2\", an authorized representative, had authority "
       "until 2026-01-06T00:00:00Z, before access_requested at 2026-01-07T00:00:00Z"},

      // ---- 42 CFR Part 2 notice (P1) ----
      {"Part2ConsentDisclosureWithoutNotice",
       kSU,
       {},
       {Disclosure(absl::StrCat(kToAda, "legal_basis: LEGAL_BASIS_CONSENT consent_id: \"c-1\" ",
                                "data_categories: \"substance_use_treatment\" "
                                "minimum_necessary: \"the dates only\"")),
        10},
       kRefused,
       "case \"case-1\" holds substance-use records: 42 CFR 2.32 requires the notice on "
       "re-disclosure with each disclosure made with consent, but "
       "disclosure_made.part2_notice_sha256 is empty"},
      {"Part2NoticeWithShortHash",
       kSU,
       {},
       {Disclosure(absl::StrCat(kToAda, "legal_basis: LEGAL_BASIS_CONSENT consent_id: \"c-1\" ",
                                "data_categories: \"substance_use_treatment\" "
                                "minimum_necessary: \"the dates only\" "
                                "part2_notice_sha256: \"abc\"")),
        10},
       kInvalid,
       "disclosure_made.part2_notice_sha256: got 3 bytes, want 32 (a SHA-256) or none"},
      {"ConsentDisclosureWithoutNoticeOutsidePart2",
       kBH,
       {},
       {Disclosure(absl::StrCat(kToAda, "legal_basis: LEGAL_BASIS_CONSENT consent_id: \"c-1\" ",
                                kHousing)),
        10},
       kOk,
       ""},

      // ---- Informed consent (I1-I2) ----
      {"ConsentWithoutInformed",
       kBH,
       {},
       {"consent_granted { consent_id: \"c-9\" client_id: \"cl-1\" grantor_kind: "
        "GRANTOR_KIND_CLIENT grantor_id: \"cl-1\" recipients: \"r-1\" purposes: \"p\" "
        "data_categories: \"h\" }"},
       kInvalid,
       "consent_granted.informed: must be set (what the client was told, in which language, "
       "with what help, and who decided; NASW-derived 2.03)"},
      {"ConsentNotToldOfRevocation",
       kBH,
       {},
       {InformedConsent(absl::StrCat("told_consequences_of_refusing: true told_redisclosure_risk: "
                                     "true told_limits_of_confidentiality: true ",
                                     "language: \"en\" comprehension_aid: COMPREHENSION_AID_NONE ",
                                     kCapable))},
       kInvalid,
       "consent_granted.informed.told_right_to_revoke: must be true: a consent is informed only "
       "when the "
       "client was told of the right to revoke it and how (NASW-derived 2.03)"},
      {"ConsentNotToldWhatRefusingMeans",
       kBH,
       {},
       {InformedConsent(absl::StrCat("told_right_to_revoke: true told_redisclosure_risk: true "
                                     "told_limits_of_confidentiality: true ",
                                     "language: \"en\" comprehension_aid: COMPREHENSION_AID_NONE ",
                                     kCapable))},
       kInvalid,
       "consent_granted.informed.told_consequences_of_refusing: must be true: a consent is "
       "informed only when the "
       "client was told what follows from refusing (NASW-derived 2.03)"},
      {"ConsentNotToldOfRedisclosure",
       kBH,
       {},
       {InformedConsent(absl::StrCat("told_right_to_revoke: true told_consequences_of_refusing: "
                                     "true told_limits_of_confidentiality: true ",
                                     "language: \"en\" comprehension_aid: COMPREHENSION_AID_NONE ",
                                     kCapable))},
       kInvalid,
       "consent_granted.informed.told_redisclosure_risk: must be true: a consent is informed only "
       "when the "
       "client was told that the recipient may disclose it again (NASW-derived 2.03)"},
      {"ConsentNotToldTheLimitsOfConfidentiality",
       kBH,
       {},
       {InformedConsent(absl::StrCat("told_right_to_revoke: true told_consequences_of_refusing: "
                                     "true told_redisclosure_risk: true ",
                                     "language: \"en\" comprehension_aid: COMPREHENSION_AID_NONE ",
                                     kCapable))},
       kInvalid,
       "consent_granted.informed.told_limits_of_confidentiality: must be true: a consent is "
       "informed only when the "
       "client was told what cannot be kept confidential (serious harm to self or others, abuse; "
       "Longmont \"Confidentiality\" 2) (NASW-derived 2.03)"},
      {"ConsentWithoutLanguage",
       kBH,
       {},
       {InformedConsent(
           absl::StrCat(kToldAll, "comprehension_aid: COMPREHENSION_AID_NONE ", kCapable))},
       kInvalid,
       "consent_granted.informed.language: must not be empty"},
      {"ConsentWithoutComprehensionAid",
       kBH,
       {},
       {InformedConsent(absl::StrCat(kToldAll, "language: \"es\" ", kCapable))},
       kInvalid,
       "consent_granted.informed.comprehension_aid: got COMPREHENSION_AID_UNSPECIFIED, want one "
       "of COMPREHENSION_AID_NONE, COMPREHENSION_AID_INTERPRETER, "
       "COMPREHENSION_AID_TRANSLATED_FORM, COMPREHENSION_AID_PLAIN_LANGUAGE, "
       "COMPREHENSION_AID_OTHER"},
      {"ConsentWithAnUnnamedInterpreter",
       kBH,
       {},
       {InformedConsent(absl::StrCat(kToldAll,
                                     "language: \"es\" comprehension_aid: "
                                     "COMPREHENSION_AID_INTERPRETER ",
                                     kCapable))},
       kInvalid,
       "consent_granted.interpreter_name: must not be empty when informed.comprehension_aid is "
       "COMPREHENSION_AID_INTERPRETER"},
      {"ConsentWithANamedInterpreter",
       kBH,
       {},
       {InformedConsent(absl::StrCat(kToldAll,
                                     "language: \"es\" comprehension_aid: "
                                     "COMPREHENSION_AID_INTERPRETER ",
                                     kCapable),
                        "interpreter_name: \"Lucía Pérez (county language line)\"")},
       kOk,
       ""},
      {"ConsentWithoutCapacity",
       kBH,
       {},
       {InformedConsent(
           absl::StrCat(kToldAll, "language: \"en\" comprehension_aid: COMPREHENSION_AID_NONE"))},
       kInvalid,
       "consent_granted.informed.capacity: got CONSENT_CAPACITY_UNSPECIFIED, want one of "
       "CONSENT_CAPACITY_CLIENT_CAPABLE, CONSENT_CAPACITY_REPRESENTATIVE_ACTS"},
      {"ConsentByClientWhoCannotDecide",
       kBH,
       {},
       {InformedConsent(absl::StrCat(kToldAll,
                                     "language: \"en\" comprehension_aid: COMPREHENSION_AID_NONE "
                                     "capacity: CONSENT_CAPACITY_REPRESENTATIVE_ACTS"))},
       kInvalid,
       "consent_granted.informed.capacity: got CONSENT_CAPACITY_REPRESENTATIVE_ACTS, want "
       "CONSENT_CAPACITY_CLIENT_CAPABLE for grantor_kind GRANTOR_KIND_CLIENT (a client who cannot "
       "decide consents through an authorized representative)"},
      {"ConsentByRepresentativeForACapableClient",
       kBH,
       {},
       {InformedConsentByRep(absl::StrCat(
           kToldAll, "language: \"en\" comprehension_aid: COMPREHENSION_AID_NONE ", kCapable))},
       kInvalid,
       "consent_granted.informed.capacity: got CONSENT_CAPACITY_CLIENT_CAPABLE, want "
       "CONSENT_CAPACITY_REPRESENTATIVE_ACTS for grantor_kind "
       "GRANTOR_KIND_AUTHORIZED_REPRESENTATIVE (a client who cannot decide consents through an "
       "authorized representative)"},
      {"ConsentByRepresentativeWithoutCapacityNote",
       kBH,
       {},
       {InformedConsentByRep(
           absl::StrCat(kToldAll,
                        "language: \"en\" comprehension_aid: COMPREHENSION_AID_PLAIN_LANGUAGE "
                        "capacity: CONSENT_CAPACITY_REPRESENTATIVE_ACTS"))},
       kInvalid,
       "consent_granted.informed.capacity_note: must not be empty when a representative consents "
       "(say why the client does not decide themself)"},
      // ---- 42 CFR 2.24 list of disclosures (W14) ----
      {"GeneralDesignationWithoutIntermediary",
       kSU,
       {},
       {DesignationConsent("general_designation: \"my treating providers\""), 3},
       kInvalid,
       "consent_granted.intermediary: must not be empty when general_designation is set (42 CFR "
       "2.31(a)(4)(ii)(B): the consent names the intermediary)"},
      {"IntermediaryWithoutGeneralDesignation",
       kSU,
       {},
       {DesignationConsent("intermediary: \"hie-1\""), 3},
       kInvalid,
       "consent_granted.general_designation: must not be empty when intermediary is set"},
      {"GeneralDesignationOutsidePart2",
       kBH,
       {},
       {DesignationConsent(kTreatingProviders), 3},
       kRefused,
       "consent \"c-g\" names a general designation, which 42 CFR 2.31(a)(4)(ii)(B) provides for "
       "substance-use records only; case \"case-1\" holds RECORD_CLASS_BEHAVIORAL_HEALTH records"},
      {"GeneralDesignationAccepted", kSU, {}, kDesignationConsent, kOk, ""},
      {"DesignationDisclosureByTheIntermediary",
       kSU,
       {kDesignationConsent},
       {DesignationDisclosure("hie-1"), 4},
       kOk,
       ""},
      {"DesignationDisclosureBySomeoneElse",
       kSU,
       {kDesignationConsent},
       {DesignationDisclosure("m-1"), 4},
       kRefused,
       "consent \"c-g\" does not name recipient \"clinic-7\" (\"Eastside Clinic\"); under its "
       "general designation \"my treating providers\" only its intermediary \"hie-1\" "
       "discloses, but disclosed_by is \"m-1\""},
      {"Part2ListRequestWithoutWrittenRequest",
       kSU,
       {kDesignationConsent},
       {Part2ListRequest("c-g", ""), 4},
       kInvalid,
       "part2_list_requested.written_request_sha256: got 0 bytes, want 32 (a SHA-256 of the "
       "written request; 42 CFR 2.24(a)(1))"},
      {"Part2ListRequestOutsidePart2",
       kBH,
       {},
       {Part2ListRequest("c-1"), 4},
       kRefused,
       "42 CFR 2.24 list request \"pl-1\": case \"case-1\" holds RECORD_CLASS_BEHAVIORAL_HEALTH "
       "records; the 42 CFR 2.24 list is for substance-use records"},
      {"Part2ListRequestOfAnotherClientsConsent",
       kSU,
       {},
       {Part2ListRequest("c-3"), 4},
       kRefused,
       "42 CFR 2.24 list request \"pl-1\": client \"cl-1\" has no consent \"c-3\" in case "
       "\"case-1\""},
      {"Part2ListRequestWithoutGeneralDesignation",
       kSU,
       {},
       {Part2ListRequest("c-1"), 4},
       kRefused,
       "42 CFR 2.24 list request \"pl-1\": consent \"c-1\" names no general designation (42 CFR "
       "2.24 lists only disclosures under one)"},
      {"Part2ListRequestAccepted", kSU, {kDesignationConsent}, kPart2ListRequest, kOk, ""},
      {"Part2ListRequestIdReused",
       kSU,
       {kDesignationConsent, kPart2ListRequest},
       {Part2ListRequest("c-g"), 5},
       kRefused,
       "42 CFR 2.24 list request \"pl-1\" already exists in case \"case-1\""},
      {"Part2ListProvidedAfterItWasDue",
       kSU,
       {kDesignationConsent, kPart2ListRequest},
       {"part2_list_provided { request_id: \"pl-1\" }", 40},
       kOk,
       ""},
      {"Part2ListProvidedTwice",
       kSU,
       {kDesignationConsent, kPart2ListRequest, kPart2ListProvided},
       {"part2_list_provided { request_id: \"pl-1\" }", 11},
       kRefused,
       "42 CFR 2.24 list request \"pl-1\" was already fulfilled at 2026-01-11T00:00:00Z"},
      {"Part2ListProvidedUnknown",
       kSU,
       {},
       {"part2_list_provided { request_id: \"pl-9\" }", 10},
       kRefused,
       "42 CFR 2.24 list request \"pl-9\" does not exist in case \"case-1\""},
      {"CloseWithOpenPart2ListRequest",
       kSU,
       {kFulfillAr1, kDesignationConsent, kPart2ListRequest},
       {"case_closed { reason: \"goals met\" }", 5},
       kRefused,
       "case \"case-1\" cannot be closed: 42 CFR 2.24 list request \"pl-1\" (requested "
       "2026-01-05T00:00:00Z, due 2026-02-04T00:00:00Z) has not been answered"},
      {"CloseAfterPart2ListProvided",
       kSU,
       {kFulfillAr1, kDesignationConsent, kPart2ListRequest, kPart2ListProvided},
       {"case_closed { reason: \"goals met\" }", 11},
       kOk,
       ""},
      {"DisposedCaseTakesPart2ListRequest",
       kSU,
       {kFulfillAr1, kDesignationConsent, {"case_closed { reason: \"goals met\" }", 4}, kDispose},
       {Part2ListRequest("c-g"), 6},
       kOk,
       ""},
  };
}

class PolicyTest : public ::testing::TestWithParam<PolicyCase> {};

TEST_P(PolicyTest, GivesTheExactOutcome) {
  const PolicyCase& c = GetParam();
  CaseState state;
  std::vector<Step> setup = BaseHistory(c.base);
  setup.insert(setup.end(), c.setup.begin(), c.setup.end());
  int latest_day = 0;
  ASSERT_NO_FATAL_FAILURE(RunSteps(setup, &state, &latest_day));
  v1::Event e = Parse(c.event, latest_day);
  if (c.mutate) c.mutate(&e);
  CheckContext context = ReceivedWhenItOccurred(e);
  if (c.received_at.has_value()) context.received_at = *c.received_at;
  absl::Status s = CheckEvent(state, e, context);
  EXPECT_EQ(s.code(), c.code) << s;
  EXPECT_EQ(std::string(s.message()), c.message);
}

INSTANTIATE_TEST_SUITE_P(AllRules, PolicyTest, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<PolicyCase>& info) {
                           return info.param.name;
                         });

// events.proto: every body a producer writes can say it is recorded late.
TEST(PolicyTest, EveryProducerBodyCarriesLateDocumentation) {
  const auto* oneof = v1::Event::descriptor()->FindOneofByName("body");
  const std::set<std::string> server_only = {"access_refused", "subject_erased",
                                             "master_key_rotated"};
  for (int i = 0; i < oneof->field_count(); ++i) {
    const auto* body = oneof->field(i);
    if (server_only.count(body->name())) continue;
    const auto* late = body->message_type()->FindFieldByNumber(100);
    ASSERT_NE(late, nullptr) << body->name();
    EXPECT_EQ(late->name(), "late_documentation") << body->name();
    EXPECT_EQ(late->message_type(), v1::LateDocumentation::descriptor()) << body->name();
  }
}

// W12: a hold on the case keeps every subject it names from erasure; a hold
// on a client keeps that client only; a released hold keeps no one.
TEST(PolicyTest, LegalHoldsBlockErasure) {
  CaseState state;
  int latest_day = 0;
  std::vector<Step> steps = BaseHistory(kBH);
  ASSERT_NO_FATAL_FAILURE(RunSteps(steps, &state, &latest_day));
  EXPECT_EQ(CheckErasure(state, "cl-1"), absl::OkStatus());
  ASSERT_NO_FATAL_FAILURE(RunSteps({kHold}, &state, &latest_day));
  absl::Status held = CheckErasure(state, "cl-2");  // named by consent c-3
  EXPECT_EQ(held.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(held.message(),
            "subject \"cl-2\": case \"case-1\" is under legal hold \"h-1\" "
            "(LEGAL_HOLD_GROUND_LITIGATION, \"notice 2026-17\", placed 2026-01-04T00:00:00Z): "
            "erasure is not allowed until it is released");
  EXPECT_EQ(CheckErasure(state, "someone-else"), absl::OkStatus());
  ASSERT_NO_FATAL_FAILURE(RunSteps(
      {kReleaseHold,
       {"legal_hold_placed { hold_id: \"h-2\" scope: LEGAL_HOLD_SCOPE_CLIENT client_id: \"cl-1\" "
        "ground: LEGAL_HOLD_GROUND_LEGAL_CLAIMS authority: \"claim 4\" }",
        5}},
      &state, &latest_day));
  EXPECT_EQ(CheckErasure(state, "cl-2"), absl::OkStatus());
  held = CheckErasure(state, "cl-1");
  EXPECT_EQ(held.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(held.message(),
            "subject \"cl-1\": case \"case-1\" is under legal hold \"h-2\" "
            "(LEGAL_HOLD_GROUND_LEGAL_CLAIMS, \"claim 4\", on client \"cl-1\", placed "
            "2026-01-06T00:00:00Z): erasure is not allowed until it is released");
  // The hold survives the state's encoding.
  absl::StatusOr<CaseState> decoded = DecodeCaseState(EncodeCaseState(state));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(CheckErasure(*decoded, "cl-1").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(CheckErasure(*decoded, "cl-2"), absl::OkStatus());
}

TEST(PolicyTest, EveryEventTypeIsCoveredByTheTable) {
  std::set<int> covered;
  for (const PolicyCase& c : Cases()) {
    v1::Event e = Parse(c.event);
    if (e.body_case() != v1::Event::BODY_NOT_SET) covered.insert(e.body_case());
  }
  const auto* oneof = v1::Event::descriptor()->FindOneofByName("body");
  for (int i = 0; i < oneof->field_count(); ++i) {
    EXPECT_TRUE(covered.count(oneof->field(i)->number())) << oneof->field(i)->name();
  }
}

}  // namespace
}  // namespace caseledger
