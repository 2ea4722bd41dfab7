#include "services/policy/policy.h"

#include <algorithm>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"
#include "ledger/internal/status_macros.h"

namespace caseledger {
namespace {

using google::protobuf::EnumDescriptor;
using google::protobuf::RepeatedPtrField;

// events.proto: every producer body carries LateDocumentation as field 100.
constexpr int kLateDocumentationField = 100;

std::string Q(absl::string_view s) { return absl::StrCat("\"", s, "\""); }

absl::Status Invalid(absl::string_view path, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", what));
}

absl::Status Refused(absl::string_view message) { return absl::FailedPreconditionError(message); }

// ---- Structure ----

absl::Status NonEmpty(absl::string_view path, absl::string_view value) {
  if (value.empty()) return Invalid(path, "must not be empty");
  return absl::OkStatus();
}

// A non-empty list of non-empty strings; `unique` refuses repeats.
absl::Status NonEmptyList(absl::string_view path, const RepeatedPtrField<std::string>& values,
                          bool unique) {
  if (values.empty()) return Invalid(path, "must list at least one value");
  std::set<absl::string_view> seen;
  for (int i = 0; i < values.size(); ++i) {
    const std::string at = absl::StrCat(path, "[", i, "]");
    CL_RETURN_IF_ERROR(NonEmpty(at, values[i]));
    if (unique && !seen.insert(values[i]).second) {
      return Invalid(at, absl::StrCat("got ", Q(values[i]), " twice, want each value once"));
    }
  }
  return absl::OkStatus();
}

// A known, specified value of the enum.
absl::Status KnownEnum(absl::string_view path, const EnumDescriptor* type, int value) {
  const auto* v = type->FindValueByNumber(value);
  if (v != nullptr && value != 0) return absl::OkStatus();
  std::vector<std::string> want;
  for (int i = 0; i < type->value_count(); ++i) {
    if (type->value(i)->number() != 0) want.push_back(type->value(i)->name());
  }
  return Invalid(path, absl::StrCat("got ", v != nullptr ? v->name() : absl::StrCat(value),
                                    ", want one of ", absl::StrJoin(want, ", ")));
}

absl::Status InSubjects(const v1::Event& e, absl::string_view path, const std::string& client) {
  if (absl::c_linear_search(e.subject_ids(), client)) return absl::OkStatus();
  return Invalid("event.subject_ids",
                 absl::StrCat("must include ", path, " ", Q(client),
                              " so that the event is in the client's history; got [",
                              absl::StrJoin(e.subject_ids(), ", "), "]"));
}

absl::Status CheckBasisFields(const v1::DisclosureMade& d) {
  const std::string basis = v1::LegalBasis_Name(d.legal_basis());
  auto need = [&](absl::string_view field, const std::string& value) {
    if (!value.empty()) return absl::OkStatus();
    return Invalid(absl::StrCat("disclosure_made.", field),
                   absl::StrCat("must not be empty when legal_basis is ", basis));
  };
  // Minimum necessary: 45 CFR 164.502(b) applies it to every disclosure but
  // those 164.502(b)(2) exempts (treatment, to the individual, under an
  // authorization, required by law). Stricter readings chosen here:
  //  - imminent harm (164.512(j)) states it, as any 164.512 disclosure;
  //  - required by law states it too, although 164.502(b)(2)(v) exempts it:
  //    164.512(a)(1) still limits the disclosure to "the relevant
  //    requirements of such law", so where the law itself sets the content
  //    the statement says so and names what the law requires (e.g. "the
  //    items Cal. Penal Code 11167(a) lists");
  //  - every Part 2 exception states it: 42 CFR 2.13(a) limits any Part 2
  //    disclosure, medical emergencies included. Consent-based Part 2
  //    disclosures are checked in CheckDisclosure (it depends on the case).
  auto need_minimum = [&] { return need("minimum_necessary", d.minimum_necessary()); };
  switch (d.legal_basis()) {
    case v1::LEGAL_BASIS_CONSENT:
      return need("consent_id", d.consent_id());
    case v1::LEGAL_BASIS_REQUIRED_BY_LAW:
    case v1::LEGAL_BASIS_PART2_COURT_ORDER:
      CL_RETURN_IF_ERROR(need("legal_citation", d.legal_citation()));
      return need_minimum();
    case v1::LEGAL_BASIS_IMMINENT_HARM:
      CL_RETURN_IF_ERROR(need("justification", d.justification()));
      CL_RETURN_IF_ERROR(need("person_at_risk", d.person_at_risk()));
      return need_minimum();
    case v1::LEGAL_BASIS_PAYMENT:
    case v1::LEGAL_BASIS_OPERATIONS:
      return need_minimum();
    case v1::LEGAL_BASIS_PART2_MEDICAL_EMERGENCY:
    case v1::LEGAL_BASIS_PART2_RESEARCH:
    case v1::LEGAL_BASIS_PART2_AUDIT:
      CL_RETURN_IF_ERROR(need("justification", d.justification()));
      return need_minimum();
    default:
      return absl::OkStatus();
  }
}

const google::protobuf::Message* Body(const v1::Event& e) {
  const auto* r = e.GetReflection();
  const auto* field =
      r->GetOneofFieldDescriptor(e, v1::Event::descriptor()->FindOneofByName("body"));
  return field == nullptr ? nullptr : &r->GetMessage(e, field);
}

// The body's late_documentation marker (events.proto field 100), or null.
const v1::LateDocumentation* LateMarker(const v1::Event& e) {
  const google::protobuf::Message* body = Body(e);
  if (body == nullptr) return nullptr;
  const auto* f = body->GetDescriptor()->FindFieldByNumber(kLateDocumentationField);
  if (f == nullptr || !body->GetReflection()->HasField(*body, f)) return nullptr;
  return static_cast<const v1::LateDocumentation*>(&body->GetReflection()->GetMessage(*body, f));
}

// occurred_at is set and not beyond the allowed skew ahead of receipt; a
// late_documentation marker says why.
absl::Status CheckTimeFields(const v1::Event& e, const CheckContext& ctx) {
  if (!e.has_occurred_at()) return Invalid("event.occurred_at", "must be set");
  const absl::Time at = TimeFromProto(e.occurred_at());
  if (at > ctx.received_at + ctx.max_ahead) {
    return Invalid(
        "event.occurred_at",
        absl::StrCat("got ", FormatUtc(at), ", more than ", absl::FormatDuration(ctx.max_ahead),
                     " after the server received the event at ", FormatUtc(ctx.received_at),
                     " (--max_occurred_ahead)"));
  }
  const v1::LateDocumentation* late = LateMarker(e);
  if (late != nullptr && late->reason().empty()) {
    return Invalid(absl::StrCat(EventTypeName(e), ".late_documentation.reason"),
                   "must not be empty (say why the event is recorded after the fact)");
  }
  return absl::OkStatus();
}

// 164.528(a)(2): a written statement says how long; an oral one is
// documented with who made it and lasts at most 30 days from the statement
// (its occurred_at).
absl::Status CheckSuspensionFields(const v1::Event& e) {
  const auto& b = e.accounting_suspended();
  CL_RETURN_IF_ERROR(NonEmpty("accounting_suspended.suspension_id", b.suspension_id()));
  CL_RETURN_IF_ERROR(NonEmpty("accounting_suspended.client_id", b.client_id()));
  CL_RETURN_IF_ERROR(NonEmpty("accounting_suspended.agency_name", b.agency_name()));
  CL_RETURN_IF_ERROR(
      KnownEnum("accounting_suspended.form", v1::SuspensionForm_descriptor(), b.form()));
  CL_RETURN_IF_ERROR(NonEmpty("accounting_suspended.statement", b.statement()));
  CL_RETURN_IF_ERROR(KnownEnum("accounting_suspended.agency_kind",
                               v1::SuspendingAgency_descriptor(), b.agency_kind()));
  if (!b.has_ends_at()) {
    return Invalid("accounting_suspended.ends_at",
                   "must be set (45 CFR 164.528(a)(2): a suspension is for a stated time)");
  }
  const absl::Time at = TimeFromProto(e.occurred_at());
  const absl::Time ends = TimeFromProto(b.ends_at());
  if (ends <= at) {
    return Invalid(
        "accounting_suspended.ends_at",
        absl::StrCat("got ", FormatUtc(ends), ", want after the statement at ", FormatUtc(at)));
  }
  if (b.form() == v1::SUSPENSION_FORM_ORAL) {
    CL_RETURN_IF_ERROR(NonEmpty("accounting_suspended.official", b.official()));
    if (ends > at + kOralSuspensionLimit) {
      return Invalid("accounting_suspended.ends_at",
                     absl::StrCat("got ", FormatUtc(ends),
                                  ", more than 30 days after the oral "
                                  "statement at ",
                                  FormatUtc(at),
                                  " (45 CFR 164.528(a)(2)(ii); a longer suspension needs a "
                                  "written statement)"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckStructure(const v1::Event& e) {
  switch (e.body_case()) {
    case v1::Event::BODY_NOT_SET:
      return Invalid("event.body", "must be set to one of the event types");
    case v1::Event::kCaseOpened: {
      const auto& b = e.case_opened();
      CL_RETURN_IF_ERROR(NonEmpty("case_opened.program", b.program()));
      return KnownEnum("case_opened.record_class", v1::RecordClass_descriptor(), b.record_class());
    }
    case v1::Event::kParticipantAdded: {
      const auto& b = e.participant_added();
      CL_RETURN_IF_ERROR(NonEmpty("participant_added.participant_id", b.participant_id()));
      return KnownEnum("participant_added.role", v1::ParticipantRole_descriptor(), b.role());
    }
    case v1::Event::kParticipantRemoved:
      return NonEmpty("participant_removed.participant_id",
                      e.participant_removed().participant_id());
    case v1::Event::kCaseManagerAssigned:
      return NonEmpty("case_manager_assigned.manager_id", e.case_manager_assigned().manager_id());
    case v1::Event::kConflictDeclared:
      CL_RETURN_IF_ERROR(
          NonEmpty("conflict_declared.conflict_id", e.conflict_declared().conflict_id()));
      return NonEmpty("conflict_declared.declared_by", e.conflict_declared().declared_by());
    case v1::Event::kConflictResolved:
      CL_RETURN_IF_ERROR(
          NonEmpty("conflict_resolved.conflict_id", e.conflict_resolved().conflict_id()));
      CL_RETURN_IF_ERROR(
          NonEmpty("conflict_resolved.resolution", e.conflict_resolved().resolution()));
      return NonEmpty("conflict_resolved.resolved_by", e.conflict_resolved().resolved_by());
    case v1::Event::kClientInformedOfConflict:
      CL_RETURN_IF_ERROR(NonEmpty("client_informed_of_conflict.conflict_id",
                                  e.client_informed_of_conflict().conflict_id()));
      return NonEmpty("client_informed_of_conflict.method",
                      e.client_informed_of_conflict().method());
    case v1::Event::kReferralMade:
      return NonEmpty("referral_made.referred_to", e.referral_made().referred_to());
    case v1::Event::kCaseTransferred: {
      const auto& b = e.case_transferred();
      if (b.to_manager_id().empty() && b.to_program().empty()) {
        return Invalid("case_transferred.to_manager_id",
                       "must not be empty when to_program is empty (a transfer names the "
                       "receiving manager or program)");
      }
      return absl::OkStatus();
    }
    case v1::Event::kServicesInterrupted:
      return NonEmpty("services_interrupted.reason", e.services_interrupted().reason());
    case v1::Event::kServicesResumed:
      return absl::OkStatus();
    case v1::Event::kCaseClosed:
      return NonEmpty("case_closed.reason", e.case_closed().reason());
    case v1::Event::kCaseReopened:
      return NonEmpty("case_reopened.reason", e.case_reopened().reason());
    case v1::Event::kRecordsDisposed:
      CL_RETURN_IF_ERROR(NonEmpty("records_disposed.method", e.records_disposed().method()));
      return NonEmpty("records_disposed.authority", e.records_disposed().authority());
    case v1::Event::kRecordEntryWritten:
      CL_RETURN_IF_ERROR(
          NonEmpty("record_entry_written.entry_id", e.record_entry_written().entry_id()));
      return NonEmpty("record_entry_written.data_category",
                      e.record_entry_written().data_category());
    case v1::Event::kRecordAmended: {
      const auto& b = e.record_amended();
      CL_RETURN_IF_ERROR(NonEmpty("record_amended.entry_id", b.entry_id()));
      CL_RETURN_IF_ERROR(NonEmpty("record_amended.amends_entry_id", b.amends_entry_id()));
      CL_RETURN_IF_ERROR(NonEmpty("record_amended.reason", b.reason()));
      if (b.entry_id() == b.amends_entry_id()) {
        return Invalid("record_amended.entry_id",
                       absl::StrCat("got ", Q(b.entry_id()),
                                    ", the same as amends_entry_id; want a new entry id"));
      }
      return absl::OkStatus();
    }
    case v1::Event::kConsentGranted: {
      const auto& b = e.consent_granted();
      CL_RETURN_IF_ERROR(NonEmpty("consent_granted.consent_id", b.consent_id()));
      CL_RETURN_IF_ERROR(NonEmpty("consent_granted.client_id", b.client_id()));
      CL_RETURN_IF_ERROR(KnownEnum("consent_granted.grantor_kind", v1::GrantorKind_descriptor(),
                                   b.grantor_kind()));
      CL_RETURN_IF_ERROR(NonEmpty("consent_granted.grantor_id", b.grantor_id()));
      CL_RETURN_IF_ERROR(NonEmptyList("consent_granted.recipients", b.recipients(), false));
      CL_RETURN_IF_ERROR(NonEmptyList("consent_granted.purposes", b.purposes(), false));
      CL_RETURN_IF_ERROR(
          NonEmptyList("consent_granted.data_categories", b.data_categories(), false));
      if (!b.signed_form_sha256().empty() && b.signed_form_sha256().size() != 32) {
        return Invalid("consent_granted.signed_form_sha256",
                       absl::StrCat("got ", b.signed_form_sha256().size(),
                                    " bytes, want 32 (a SHA-256) or none"));
      }
      if (b.has_starts_at() && b.has_expires_at() &&
          TimeFromProto(b.expires_at()) <= TimeFromProto(b.starts_at())) {
        return Invalid(
            "consent_granted.expires_at",
            absl::StrCat("got ", FormatUtc(TimeFromProto(b.expires_at())),
                         ", want after starts_at ", FormatUtc(TimeFromProto(b.starts_at()))));
      }
      // A consent is recorded after it is signed, never before.
      if (b.has_signed_at() && TimeFromProto(b.signed_at()) > TimeFromProto(e.occurred_at())) {
        return Invalid("consent_granted.signed_at",
                       absl::StrCat("got ", FormatUtc(TimeFromProto(b.signed_at())),
                                    ", want at or before the consent's occurred_at ",
                                    FormatUtc(TimeFromProto(e.occurred_at()))));
      }
      // 42 CFR 2.31(a)(4)(ii)(B): a general designation is reached through
      // the intermediary the consent names (RULES.md W14.1).
      if (!b.general_designation().empty() && b.intermediary().empty()) {
        return Invalid("consent_granted.intermediary",
                       "must not be empty when general_designation is set (42 CFR "
                       "2.31(a)(4)(ii)(B): the consent names the intermediary)");
      }
      if (b.general_designation().empty() && !b.intermediary().empty()) {
        return Invalid("consent_granted.general_designation",
                       "must not be empty when intermediary is set");
      }
      return InSubjects(e, "consent_granted.client_id", b.client_id());
    }
    case v1::Event::kConsentRevoked:
      CL_RETURN_IF_ERROR(NonEmpty("consent_revoked.consent_id", e.consent_revoked().consent_id()));
      return NonEmpty("consent_revoked.revoked_by", e.consent_revoked().revoked_by());
    case v1::Event::kDisclosureMade: {
      const auto& b = e.disclosure_made();
      CL_RETURN_IF_ERROR(NonEmpty("disclosure_made.disclosure_id", b.disclosure_id()));
      CL_RETURN_IF_ERROR(NonEmpty("disclosure_made.client_id", b.client_id()));
      CL_RETURN_IF_ERROR(NonEmpty("disclosure_made.recipient.name", b.recipient().name()));
      CL_RETURN_IF_ERROR(NonEmpty("disclosure_made.purpose", b.purpose()));
      CL_RETURN_IF_ERROR(
          NonEmptyList("disclosure_made.data_categories", b.data_categories(), true));
      CL_RETURN_IF_ERROR(NonEmpty("disclosure_made.description", b.description()));
      CL_RETURN_IF_ERROR(
          KnownEnum("disclosure_made.legal_basis", v1::LegalBasis_descriptor(), b.legal_basis()));
      CL_RETURN_IF_ERROR(CheckBasisFields(b));
      return InSubjects(e, "disclosure_made.client_id", b.client_id());
    }
    case v1::Event::kClientInformed:
      return NonEmpty("client_informed.disclosure_id", e.client_informed().disclosure_id());
    case v1::Event::kAccessRequested:
      CL_RETURN_IF_ERROR(
          NonEmpty("access_requested.request_id", e.access_requested().request_id()));
      CL_RETURN_IF_ERROR(NonEmpty("access_requested.client_id", e.access_requested().client_id()));
      return InSubjects(e, "access_requested.client_id", e.access_requested().client_id());
    case v1::Event::kAccessFulfilled:
      return NonEmpty("access_fulfilled.request_id", e.access_fulfilled().request_id());
    case v1::Event::kAccessDenied: {
      const auto& b = e.access_denied();
      CL_RETURN_IF_ERROR(NonEmpty("access_denied.request_id", b.request_id()));
      CL_RETURN_IF_ERROR(NonEmpty("access_denied.reason", b.reason()));
      // 164.524(d)(2)(i): a denial states its basis; the ground decides
      // whether it can be reviewed.
      CL_RETURN_IF_ERROR(
          KnownEnum("access_denied.ground", v1::AccessDenialGround_descriptor(), b.ground()));
      if (IsReviewableDenial(b.ground()) && b.denied_by().empty()) {
        return Invalid("access_denied.denied_by",
                       absl::StrCat("must not be empty when ground is ",
                                    v1::AccessDenialGround_Name(b.ground()),
                                    " (45 CFR 164.524(a)(3): a licensed health care "
                                    "professional's determination)"));
      }
      return absl::OkStatus();
    }
    case v1::Event::kAccessReviewRequested:
      return NonEmpty("access_review_requested.request_id",
                      e.access_review_requested().request_id());
    case v1::Event::kAccessReviewed: {
      const auto& b = e.access_reviewed();
      CL_RETURN_IF_ERROR(NonEmpty("access_reviewed.request_id", b.request_id()));
      CL_RETURN_IF_ERROR(NonEmpty("access_reviewed.reviewer_id", b.reviewer_id()));
      // 164.524(a)(4): the reviewing official is a licensed health care
      // professional.
      CL_RETURN_IF_ERROR(NonEmpty("access_reviewed.reviewer_license", b.reviewer_license()));
      return KnownEnum("access_reviewed.outcome", v1::AccessReviewOutcome_descriptor(),
                       b.outcome());
    }
    case v1::Event::kAccountingRequested: {
      const auto& b = e.accounting_requested();
      CL_RETURN_IF_ERROR(NonEmpty("accounting_requested.request_id", b.request_id()));
      CL_RETURN_IF_ERROR(NonEmpty("accounting_requested.client_id", b.client_id()));
      return InSubjects(e, "accounting_requested.client_id", b.client_id());
    }
    case v1::Event::kAccountingFulfilled:
      return NonEmpty("accounting_fulfilled.request_id", e.accounting_fulfilled().request_id());
    case v1::Event::kAccountingExtended:
      CL_RETURN_IF_ERROR(
          NonEmpty("accounting_extended.request_id", e.accounting_extended().request_id()));
      // 164.528(c)(1)(ii)(A): a written statement of the reasons.
      return NonEmpty("accounting_extended.reason", e.accounting_extended().reason());
    case v1::Event::kAccountingSuspended:
      return CheckSuspensionFields(e);
    case v1::Event::kPart2ListRequested: {
      const auto& b = e.part2_list_requested();
      CL_RETURN_IF_ERROR(NonEmpty("part2_list_requested.request_id", b.request_id()));
      CL_RETURN_IF_ERROR(NonEmpty("part2_list_requested.client_id", b.client_id()));
      CL_RETURN_IF_ERROR(NonEmpty("part2_list_requested.consent_id", b.consent_id()));
      // 42 CFR 2.24(a)(1): the request is made in writing; the record keeps
      // which writing.
      if (b.written_request_sha256().size() != 32) {
        return Invalid("part2_list_requested.written_request_sha256",
                       absl::StrCat("got ", b.written_request_sha256().size(),
                                    " bytes, want 32 (a SHA-256 of the written request; "
                                    "42 CFR 2.24(a)(1))"));
      }
      return InSubjects(e, "part2_list_requested.client_id", b.client_id());
    }
    case v1::Event::kPart2ListProvided:
      return NonEmpty("part2_list_provided.request_id", e.part2_list_provided().request_id());
    case v1::Event::kAmendmentRequested: {
      const auto& b = e.amendment_requested();
      CL_RETURN_IF_ERROR(NonEmpty("amendment_requested.request_id", b.request_id()));
      CL_RETURN_IF_ERROR(NonEmpty("amendment_requested.client_id", b.client_id()));
      CL_RETURN_IF_ERROR(NonEmpty("amendment_requested.entry_id", b.entry_id()));
      CL_RETURN_IF_ERROR(NonEmpty("amendment_requested.requested_change", b.requested_change()));
      return InSubjects(e, "amendment_requested.client_id", b.client_id());
    }
    case v1::Event::kAmendmentAccepted:
      CL_RETURN_IF_ERROR(
          NonEmpty("amendment_accepted.request_id", e.amendment_accepted().request_id()));
      return NonEmpty("amendment_accepted.amendment_entry_id",
                      e.amendment_accepted().amendment_entry_id());
    case v1::Event::kAmendmentDenied: {
      const auto& b = e.amendment_denied();
      CL_RETURN_IF_ERROR(NonEmpty("amendment_denied.request_id", b.request_id()));
      // 164.526(a)(2) grounds only; 164.526(d)(1)(i) the basis in plain words.
      CL_RETURN_IF_ERROR(
          KnownEnum("amendment_denied.basis", v1::AmendmentDenialBasis_descriptor(), b.basis()));
      return NonEmpty("amendment_denied.explanation", b.explanation());
    }
    case v1::Event::kAmendmentExtended:
      CL_RETURN_IF_ERROR(
          NonEmpty("amendment_extended.request_id", e.amendment_extended().request_id()));
      // 164.526(b)(2)(ii): a written statement of the reasons.
      return NonEmpty("amendment_extended.reason", e.amendment_extended().reason());
    case v1::Event::kDisagreementFiled:
      CL_RETURN_IF_ERROR(
          NonEmpty("disagreement_filed.request_id", e.disagreement_filed().request_id()));
      return NonEmpty("disagreement_filed.statement", e.disagreement_filed().statement());
    case v1::Event::kDisagreementRebutted:
      CL_RETURN_IF_ERROR(
          NonEmpty("disagreement_rebutted.request_id", e.disagreement_rebutted().request_id()));
      return NonEmpty("disagreement_rebutted.rebuttal", e.disagreement_rebutted().rebuttal());
    case v1::Event::kLegalHoldPlaced: {
      const auto& b = e.legal_hold_placed();
      CL_RETURN_IF_ERROR(NonEmpty("legal_hold_placed.hold_id", b.hold_id()));
      CL_RETURN_IF_ERROR(
          KnownEnum("legal_hold_placed.scope", v1::LegalHoldScope_descriptor(), b.scope()));
      CL_RETURN_IF_ERROR(
          KnownEnum("legal_hold_placed.ground", v1::LegalHoldGround_descriptor(), b.ground()));
      CL_RETURN_IF_ERROR(NonEmpty("legal_hold_placed.authority", b.authority()));
      if (b.scope() == v1::LEGAL_HOLD_SCOPE_CLIENT && b.client_id().empty()) {
        return Invalid("legal_hold_placed.client_id",
                       "must not be empty when scope is LEGAL_HOLD_SCOPE_CLIENT");
      }
      return absl::OkStatus();
    }
    case v1::Event::kLegalHoldReleased:
      CL_RETURN_IF_ERROR(
          NonEmpty("legal_hold_released.hold_id", e.legal_hold_released().hold_id()));
      CL_RETURN_IF_ERROR(
          NonEmpty("legal_hold_released.released_by", e.legal_hold_released().released_by()));
      return NonEmpty("legal_hold_released.reason", e.legal_hold_released().reason());
    case v1::Event::kAccessExtended:
      CL_RETURN_IF_ERROR(NonEmpty("access_extended.request_id", e.access_extended().request_id()));
      return NonEmpty("access_extended.reason", e.access_extended().reason());
    case v1::Event::kRecordAccessed:
      CL_RETURN_IF_ERROR(
          NonEmpty("record_accessed.accessor_id", e.record_accessed().accessor_id()));
      return NonEmpty("record_accessed.purpose", e.record_accessed().purpose());
    case v1::Event::kAccessRefused:
      // The server records refused calls in its own stream (services/authz/AUTHZ.md).
      return Invalid("event.access_refused", "is written by the server only");
    case v1::Event::kSubjectErased:
      // KeyAdminService.EraseSubject records erasures (ledger/ENCRYPTION.md).
      return Invalid("event.subject_erased", "is written by the server only");
    case v1::Event::kMasterKeyRotated:
      return Invalid("event.master_key_rotated", "is written by the server only");
  }
  return Invalid("event.body", absl::StrCat("unknown event type ", e.body_case()));
}

// ---- Time order ----

// Events of a case are recorded in the order they happened: occurred_at is
// not before the latest occurred_at of the case (less the producers' clock
// skew, max_behind) unless the event is marked as late documentation, and
// even then not before the case was opened.
absl::Status CheckTimeOrder(const CaseState& s, const v1::Event& e, const CheckContext& ctx) {
  if (s.version == 0) return absl::OkStatus();
  const absl::Time at = TimeFromProto(e.occurred_at());
  const std::string type = EventTypeName(e);
  if (at < s.opened_at) {
    return Refused(absl::StrCat(type, " occurred_at ", FormatUtc(at), " is before case ",
                                Q(s.case_id), " was opened at ", FormatUtc(s.opened_at)));
  }
  if (at < s.last_occurred_at - ctx.max_behind && LateMarker(e) == nullptr) {
    return Refused(absl::StrCat(type, " occurred_at ", FormatUtc(at),
                                " is before the latest event of case ", Q(s.case_id), " at ",
                                FormatUtc(s.last_occurred_at), " by more than ",
                                absl::FormatDuration(ctx.max_behind),
                                " (--max_occurred_behind); an event recorded after the fact "
                                "needs ",
                                type, ".late_documentation with a reason"));
  }
  return absl::OkStatus();
}

// ---- Lifecycle ----

// Access to records, its review, and the accounting of disclosures: the
// client's rights outlive the case and its records (164.524, 164.528; the
// accounting is kept six years, 164.530(j)).
bool IsAccessEvent(v1::Event::BodyCase c) {
  return c == v1::Event::kAccessRequested || c == v1::Event::kAccessFulfilled ||
         c == v1::Event::kAccessDenied || c == v1::Event::kAccessExtended ||
         c == v1::Event::kRecordAccessed || c == v1::Event::kAccessReviewRequested ||
         c == v1::Event::kAccessReviewed || c == v1::Event::kAccountingRequested ||
         c == v1::Event::kAccountingFulfilled || c == v1::Event::kAccountingExtended ||
         c == v1::Event::kAccountingSuspended || c == v1::Event::kPart2ListRequested ||
         c == v1::Event::kPart2ListProvided;
}

// Taken by a closed case too: amendment requests and what follows them
// (164.526), and legal holds (a closed case is what a hold keeps from
// disposal).
bool IsClosedCaseWorkflow(v1::Event::BodyCase c) {
  return c == v1::Event::kAmendmentRequested || c == v1::Event::kAmendmentAccepted ||
         c == v1::Event::kAmendmentDenied || c == v1::Event::kAmendmentExtended ||
         c == v1::Event::kDisagreementFiled || c == v1::Event::kDisagreementRebutted ||
         c == v1::Event::kLegalHoldPlaced || c == v1::Event::kLegalHoldReleased;
}

absl::Status CheckLifecycle(const CaseState& s, const v1::Event& e) {
  const v1::Event::BodyCase c = e.body_case();
  const std::string type = EventTypeName(e);
  const std::string id = s.case_id.empty() ? e.stream_id() : s.case_id;
  auto not_allowed = [&](absl::string_view why) {
    return Refused(absl::StrCat("case ", Q(id), " is ", CaseStatusName(s.status), ": ", type,
                                " is not allowed", why));
  };
  switch (s.status) {
    case CaseStatus::kNotOpened:
      if (c == v1::Event::kCaseOpened) return absl::OkStatus();
      return Refused(absl::StrCat("case ", Q(id), " has not been opened: ", type,
                                  " is not allowed before case_opened"));
    case CaseStatus::kDisposed:
      if (IsAccessEvent(c)) return absl::OkStatus();
      return not_allowed("");
    case CaseStatus::kClosed:
      if (IsAccessEvent(c) || IsClosedCaseWorkflow(c) || c == v1::Event::kRecordsDisposed ||
          c == v1::Event::kCaseReopened || c == v1::Event::kClientInformed ||
          c == v1::Event::kConsentRevoked || c == v1::Event::kClientInformedOfConflict) {
        return absl::OkStatus();
      }
      return not_allowed("");
    case CaseStatus::kOpen:
    case CaseStatus::kInterrupted:
      break;
  }
  // Open or interrupted.
  switch (c) {
    case v1::Event::kCaseOpened:
      return not_allowed(" (case_opened must be the case's first event)");
    case v1::Event::kCaseReopened:
    case v1::Event::kRecordsDisposed:
      return not_allowed(" (it needs a closed case)");
    case v1::Event::kServicesResumed:
      if (s.status != CaseStatus::kInterrupted) {
        return not_allowed(" (it needs an interrupted case)");
      }
      return absl::OkStatus();
    case v1::Event::kServicesInterrupted:
      if (s.status == CaseStatus::kInterrupted) {
        return not_allowed(" (services are already interrupted)");
      }
      return absl::OkStatus();
    case v1::Event::kCaseClosed: {
      auto open = s.OpenAccessRequests();
      if (!open.empty()) {
        const AccessRequest& r = *open.front();
        return Refused(absl::StrCat("case ", Q(id), " cannot be closed: access request ",
                                    Q(r.request_id), " (requested ", FormatUtc(r.requested_at),
                                    ", due ", FormatUtc(r.due_at), ") has no decision"));
      }
      for (const auto& [rid, r] : s.access_requests) {
        if (r.review == AccessReview::kRequested) {
          return Refused(absl::StrCat("case ", Q(id), " cannot be closed: the review of the ",
                                      "denial of access request ", Q(rid), " (asked ",
                                      FormatUtc(r.review_requested_at), ") has no decision"));
        }
      }
      // The same holds for accounting (164.528(c)(1)) and amendment
      // (164.526(b)(2)) requests.
      if (auto a = s.OpenAccountingRequests(); !a.empty()) {
        return Refused(absl::StrCat("case ", Q(id), " cannot be closed: accounting request ",
                                    Q(a.front()->request_id), " (requested ",
                                    FormatUtc(a.front()->requested_at), ", due ",
                                    FormatUtc(a.front()->due_at), ") has no decision"));
      }
      if (auto a = s.OpenAmendmentRequests(); !a.empty()) {
        return Refused(absl::StrCat("case ", Q(id), " cannot be closed: amendment request ",
                                    Q(a.front()->request_id), " (requested ",
                                    FormatUtc(a.front()->requested_at), ", due ",
                                    FormatUtc(a.front()->due_at), ") has no decision"));
      }
      // And for the 42 CFR 2.24 list (2.24(b)(1)).
      if (auto a = s.OpenPart2ListRequests(); !a.empty()) {
        return Refused(absl::StrCat("case ", Q(id), " cannot be closed: 42 CFR 2.24 list request ",
                                    Q(a.front()->request_id), " (requested ",
                                    FormatUtc(a.front()->requested_at), ", due ",
                                    FormatUtc(a.front()->due_at), ") has not been answered"));
      }
      return absl::OkStatus();
    }
    default:
      return absl::OkStatus();
  }
}

// ---- Body rules ----

absl::Status CheckConsentBasis(const CaseState& s, const v1::DisclosureMade& d, absl::Time at) {
  auto it = s.consents.find(d.consent_id());
  if (it == s.consents.end()) {
    return Refused(
        absl::StrCat("consent ", Q(d.consent_id()), " does not exist in case ", Q(s.case_id)));
  }
  const Consent& c = it->second;
  const std::string name = absl::StrCat("consent ", Q(c.consent_id));
  if (c.client_id != d.client_id()) {
    return Refused(absl::StrCat(name, " is for client ", Q(c.client_id), ", not client ",
                                Q(d.client_id()), " of the disclosure"));
  }
  if (at < c.granted_at) {
    // A consent covers nothing before it was given, whatever its starts_at.
    return Refused(absl::StrCat(name, " was granted at ", FormatUtc(c.granted_at),
                                ", after the disclosure at ", FormatUtc(at)));
  }
  if (at < c.starts_at) {
    return Refused(absl::StrCat(name, " starts at ", FormatUtc(c.starts_at),
                                ", after the disclosure at ", FormatUtc(at)));
  }
  if (at >= c.expires_at) {
    return Refused(absl::StrCat(name, " expired at ", FormatUtc(c.expires_at),
                                ", before the disclosure at ", FormatUtc(at)));
  }
  if (at >= c.revoked_at) {
    return Refused(absl::StrCat(name, " was revoked at ", FormatUtc(c.revoked_at),
                                ", before the disclosure at ", FormatUtc(at)));
  }
  const auto& r = d.recipient();
  if (!c.NamesRecipient(r.recipient_id(), r.name())) {
    const std::string recipient =
        r.recipient_id().empty() ? Q(r.name())
                                 : absl::StrCat(Q(r.recipient_id()), " (", Q(r.name()), ")");
    if (c.general_designation.empty()) {
      return Refused(absl::StrCat(name, " does not cover recipient ", recipient));
    }
    // 42 CFR 2.31(a)(4)(ii)(B), RULES.md W14.2: a recipient the consent does
    // not name is reached only under its general designation, by its
    // intermediary.
    if (d.disclosed_by() != c.intermediary) {
      return Refused(absl::StrCat(
          name, " does not name recipient ", recipient, "; under its general designation ",
          Q(c.general_designation), " only its intermediary ", Q(c.intermediary),
          " discloses, but disclosed_by is ", Q(d.disclosed_by())));
    }
  }
  if (!c.purposes.count(d.purpose())) {
    return Refused(absl::StrCat(name, " does not cover purpose ", Q(d.purpose())));
  }
  std::vector<std::string> missing;
  for (const auto& cat : d.data_categories()) {
    if (!c.data_categories.count(cat)) missing.push_back(Q(cat));
  }
  if (!missing.empty()) {
    return Refused(absl::StrCat(name, " does not cover data ",
                                missing.size() == 1 ? "category " : "categories ",
                                absl::StrJoin(missing, ", ")));
  }
  return absl::OkStatus();
}

bool IsPart2Exception(v1::LegalBasis b) {
  return b == v1::LEGAL_BASIS_PART2_MEDICAL_EMERGENCY || b == v1::LEGAL_BASIS_PART2_COURT_ORDER ||
         b == v1::LEGAL_BASIS_PART2_RESEARCH || b == v1::LEGAL_BASIS_PART2_AUDIT;
}

// 164.526(d)(5): once a client has filed a statement of disagreement, every
// later disclosure of the information it relates to carries it (and any
// rebuttal). A disclosure names data categories, not entries, so the
// stricter reading: every disclosure of the entry's data category for that
// client carries it.
absl::Status CheckDisagreementsTravel(const CaseState& s, const v1::DisclosureMade& d,
                                      absl::Time at) {
  const std::set<std::string> included(d.disagreements_included().begin(),
                                       d.disagreements_included().end());
  for (const std::string& id : included) {
    auto it = s.amendment_requests.find(id);
    if (it == s.amendment_requests.end() || !it->second.disagreement_filed) {
      return Refused(
          absl::StrCat("disclosure_made.disagreements_included names amendment "
                       "request ",
                       Q(id), ", which has no statement of disagreement in case ", Q(s.case_id)));
    }
  }
  for (const auto& [id, r] : s.amendment_requests) {
    if (!r.disagreement_filed || r.client_id != d.client_id() || at < r.disagreement_at ||
        included.count(id)) {
      continue;
    }
    auto entry = s.entries.find(r.entry_id);
    if (entry == s.entries.end() ||
        !absl::c_linear_search(d.data_categories(), entry->second.data_category)) {
      continue;
    }
    return Refused(absl::StrCat(
        "disclosure ", Q(d.disclosure_id()), " shares data category ",
        Q(entry->second.data_category), " of entry ", Q(r.entry_id), ", which carries client ",
        Q(r.client_id), "'s statement of disagreement (amendment request ", Q(id),
        "); 45 CFR 164.526(d)(5) sends it with every later disclosure: list ", Q(id),
        " in disclosure_made.disagreements_included"));
  }
  return absl::OkStatus();
}

absl::Status CheckDisclosure(const CaseState& s, const v1::DisclosureMade& d, absl::Time at) {
  if (s.disclosure_ids.count(d.disclosure_id())) {
    return Refused(absl::StrCat("disclosure ", Q(d.disclosure_id()), " already exists in case ",
                                Q(s.case_id)));
  }
  const v1::LegalBasis basis = d.legal_basis();
  const std::string basis_name = v1::LegalBasis_Name(basis);
  if (s.record_class == v1::RECORD_CLASS_SUBSTANCE_USE) {
    if (basis != v1::LEGAL_BASIS_CONSENT && basis != v1::LEGAL_BASIS_TO_CLIENT &&
        !IsPart2Exception(basis)) {
      return Refused(absl::StrCat(
          "case ", Q(s.case_id), " holds substance-use records (42 CFR Part 2): legal_basis ",
          basis_name, " is not allowed; use consent or a Part 2 exception"));
    }
  } else if (IsPart2Exception(basis)) {
    return Refused(absl::StrCat("legal_basis ", basis_name,
                                " applies only to substance-use records; case ", Q(s.case_id),
                                " has record_class ", v1::RecordClass_Name(s.record_class)));
  }
  if (basis == v1::LEGAL_BASIS_TO_CLIENT && d.recipient().recipient_id() != d.client_id()) {
    return Refused(
        absl::StrCat("legal_basis LEGAL_BASIS_TO_CLIENT needs the client as recipient: "
                     "recipient_id ",
                     Q(d.recipient().recipient_id()), " is not client_id ", Q(d.client_id())));
  }
  if (s.record_class == v1::RECORD_CLASS_SUBSTANCE_USE && basis == v1::LEGAL_BASIS_CONSENT &&
      d.minimum_necessary().empty()) {
    // 42 CFR 2.13(a): any Part 2 disclosure is limited to the information
    // necessary for its purpose, a consent-based one too (HIPAA's exemption
    // for authorizations does not carry over).
    return Refused(absl::StrCat("case ", Q(s.case_id),
                                " holds substance-use records: 42 CFR 2.13(a) limits every "
                                "disclosure to the information necessary for its purpose, but "
                                "disclosure_made.minimum_necessary is empty"));
  }
  CL_RETURN_IF_ERROR(CheckDisagreementsTravel(s, d, at));
  if (basis == v1::LEGAL_BASIS_CONSENT) return CheckConsentBasis(s, d, at);
  return absl::OkStatus();
}

absl::Status CheckAccessDecisionTarget(const CaseState& s, const std::string& request_id,
                                       const AccessRequest** out) {
  auto it = s.access_requests.find(request_id);
  if (it == s.access_requests.end()) {
    return Refused(
        absl::StrCat("access request ", Q(request_id), " does not exist in case ", Q(s.case_id)));
  }
  const AccessRequest& r = it->second;
  if (r.decision != AccessDecision::kPending) {
    return Refused(absl::StrCat("access request ", Q(request_id), " was already ",
                                r.decision == AccessDecision::kFulfilled ? "fulfilled" : "denied",
                                " at ", FormatUtc(r.decided_at)));
  }
  *out = &r;
  return absl::OkStatus();
}

// An extension is given by the due date, counted at when it happened or
// when the ledger got it, whichever is later: an unmarked extension recorded
// after the due date cannot show it was on time. One marked
// late_documentation is taken at its occurred_at, the reason on the record
// for auditors and the client to see.
// Every client request (access, accounting, amendment) is extended at most
// once, by its due date (RULES.md T7, W5.3, W7.2); `rule` cites the section
// that allows the one extension.
template <typename Request>
absl::Status CheckExtension(absl::string_view what, absl::string_view rule, const Request& r,
                            const v1::Event& e, const CheckContext& ctx) {
  if (r.extended) {
    return Refused(absl::StrCat(what, " ", Q(r.request_id), " was already extended once; ", rule,
                                " allows one 30-day extension"));
  }
  const absl::Time due_at = r.due_at;
  const std::string& id = r.request_id;
  const absl::Time at = TimeFromProto(e.occurred_at());
  const absl::Time given = LateMarker(e) != nullptr ? at : std::max(at, ctx.received_at);
  if (given > due_at) {
    return Refused(absl::StrCat(what, " ", Q(id), " was due at ", FormatUtc(due_at),
                                "; an extension must be given by then, got ", FormatUtc(given)));
  }
  return absl::OkStatus();
}

// The request `id` of `requests` exists and has no decision.
template <typename Request>
absl::Status PendingRequest(const CaseState& s, const std::map<std::string, Request>& requests,
                            absl::string_view what, const std::string& id, const Request** out) {
  auto it = requests.find(id);
  if (it == requests.end()) {
    return Refused(absl::StrCat(what, " ", Q(id), " does not exist in case ", Q(s.case_id)));
  }
  const Request& r = it->second;
  if (r.decision != AccessDecision::kPending) {
    const char* done = r.decision == AccessDecision::kDenied       ? "denied"
                       : std::is_same_v<Request, AmendmentRequest> ? "accepted"
                                                                   : "fulfilled";
    return Refused(
        absl::StrCat(what, " ", Q(id), " was already ", done, " at ", FormatUtc(r.decided_at)));
  }
  *out = &r;
  return absl::OkStatus();
}

// An event the client must see lists them in event.subject_ids; which client
// comes from the case (the request), hence FAILED_PRECONDITION.
absl::Status InClientsHistory(const v1::Event& e, const std::string& client,
                              absl::string_view what) {
  if (client.empty() || absl::c_linear_search(e.subject_ids(), client)) return absl::OkStatus();
  return Refused(absl::StrCat(EventTypeName(e), ": ", what, " goes to client ", Q(client),
                              ", so event.subject_ids must include them (got [",
                              absl::StrJoin(e.subject_ids(), ", "), "])"));
}

// "case "x" is under legal hold "h" (...): <action> is not allowed until it
// is released".
std::string HeldMessage(const CaseState& s, const LegalHold& h, absl::string_view action) {
  return absl::StrCat(
      "case ", Q(s.case_id), " is under legal hold ", Q(h.hold_id), " (",
      v1::LegalHoldGround_Name(h.ground), ", ", Q(h.authority),
      h.scope == v1::LEGAL_HOLD_SCOPE_CLIENT ? absl::StrCat(", on client ", Q(h.client_id)) : "",
      ", placed ", FormatUtc(h.placed_at), "): ", action, " is not allowed until it is released");
}

// Twelve calendar months before t (UTC).
absl::Time TwelveMonthsBefore(absl::Time t) {
  const absl::TimeZone utc = absl::UTCTimeZone();
  const absl::CivilSecond c = absl::ToCivilSecond(t, utc);
  return absl::FromCivil(
             absl::CivilSecond(c.year() - 1, c.month(), c.day(), c.hour(), c.minute(), c.second()),
             utc) +
         (t - absl::FromCivil(c, utc));
}

absl::Status EntryIsNew(const CaseState& s, const std::string& entry_id) {
  auto it = s.entries.find(entry_id);
  if (it == s.entries.end()) return absl::OkStatus();
  return Refused(absl::StrCat("entry ", Q(entry_id), " already exists in case ", Q(s.case_id),
                              " (seq ", it->second.seq,
                              "); entries are corrected by record_amended, never rewritten"));
}

absl::Status CheckRules(const CaseState& s, const v1::Event& e, const CheckContext& ctx) {
  const absl::Time at = TimeFromProto(e.occurred_at());
  const std::string in_case = absl::StrCat(" in case ", Q(s.case_id));
  switch (e.body_case()) {
    case v1::Event::kParticipantAdded: {
      const auto& b = e.participant_added();
      auto it = s.participants.find(b.participant_id());
      if (it != s.participants.end()) {
        return Refused(absl::StrCat("participant ", Q(b.participant_id()), " is already", in_case,
                                    " (role ", v1::ParticipantRole_Name(it->second.role), ")"));
      }
      return absl::OkStatus();
    }
    case v1::Event::kParticipantRemoved: {
      const auto& id = e.participant_removed().participant_id();
      if (!s.participants.count(id)) {
        return Refused(absl::StrCat("participant ", Q(id), " is not", in_case));
      }
      return absl::OkStatus();
    }
    case v1::Event::kCaseManagerAssigned: {
      const auto& b = e.case_manager_assigned();
      if (b.previous_manager_id() != s.manager_id) {
        return Refused(absl::StrCat("case_manager_assigned.previous_manager_id is ",
                                    Q(b.previous_manager_id()), ", but case ", Q(s.case_id),
                                    s.manager_id.empty()
                                        ? " has no manager"
                                        : absl::StrCat("'s manager is ", Q(s.manager_id))));
      }
      return absl::OkStatus();
    }
    case v1::Event::kConflictDeclared: {
      const auto& id = e.conflict_declared().conflict_id();
      if (s.conflicts.count(id)) {
        return Refused(absl::StrCat("conflict ", Q(id), " was already declared", in_case));
      }
      return absl::OkStatus();
    }
    case v1::Event::kConflictResolved: {
      const auto& id = e.conflict_resolved().conflict_id();
      auto it = s.conflicts.find(id);
      if (it == s.conflicts.end()) {
        return Refused(absl::StrCat("conflict ", Q(id), " was not declared", in_case));
      }
      if (it->second.resolved) {
        return Refused(absl::StrCat("conflict ", Q(id), " was already resolved at ",
                                    FormatUtc(it->second.resolved_at)));
      }
      return absl::OkStatus();
    }
    case v1::Event::kRecordEntryWritten:
      return EntryIsNew(s, e.record_entry_written().entry_id());
    case v1::Event::kRecordAmended: {
      const auto& b = e.record_amended();
      if (!s.entries.count(b.amends_entry_id())) {
        return Refused(absl::StrCat("record_amended.amends_entry_id ", Q(b.amends_entry_id()),
                                    " is not an entry of case ", Q(s.case_id)));
      }
      return EntryIsNew(s, b.entry_id());
    }
    case v1::Event::kConsentGranted: {
      const auto& b = e.consent_granted();
      const std::string name = absl::StrCat("consent ", Q(b.consent_id()));
      if (s.consents.count(b.consent_id())) {
        return Refused(absl::StrCat(name, " already exists", in_case));
      }
      if (b.grantor_kind() == v1::GRANTOR_KIND_CLIENT && b.grantor_id() != b.client_id()) {
        return Refused(absl::StrCat(name, " is granted by the client, but grantor_id ",
                                    Q(b.grantor_id()), " is not client_id ", Q(b.client_id())));
      }
      if (b.grantor_kind() == v1::GRANTOR_KIND_AUTHORIZED_REPRESENTATIVE) {
        auto it = s.participants.find(b.grantor_id());
        if (it == s.participants.end() ||
            it->second.role != v1::PARTICIPANT_ROLE_AUTHORIZED_REPRESENTATIVE) {
          return Refused(absl::StrCat(name, " is granted by an authorized representative, but ",
                                      Q(b.grantor_id()), " is not an authorized representative",
                                      in_case));
        }
      }
      if (!b.general_designation().empty() && s.record_class != v1::RECORD_CLASS_SUBSTANCE_USE) {
        return Refused(absl::StrCat(
            name, " names a general designation, which 42 CFR 2.31(a)(4)(ii)(B) provides for "
                  "substance-use records only; case ",
            Q(s.case_id), " holds ", v1::RecordClass_Name(s.record_class), " records"));
      }
      if (s.record_class == v1::RECORD_CLASS_SUBSTANCE_USE && b.signed_form_sha256().empty()) {
        return Refused(absl::StrCat(name,
                                    " covers substance-use records (42 CFR Part 2), which need "
                                    "a signed written consent: signed_form_sha256 is empty"));
      }
      if (s.record_class == v1::RECORD_CLASS_SUBSTANCE_USE &&
          (b.patient_name().empty() || !b.has_signed_at())) {
        return Refused(absl::StrCat(
            name, " covers substance-use records: 42 CFR 2.31(a) requires the patient's name and "
                  "the date of signature, but ",
            b.patient_name().empty() ? "patient_name" : "signed_at", " is empty"));
      }
      if (s.record_class == v1::RECORD_CLASS_SUBSTANCE_USE && !b.has_expires_at() &&
          b.expiry_event().empty()) {
        return Refused(absl::StrCat(name,
                                    " covers substance-use records: 42 CFR 2.31(a) requires the "
                                    "date, event or condition on which it expires, but "
                                    "expires_at and expiry_event are empty"));
      }
      return absl::OkStatus();
    }
    case v1::Event::kConsentRevoked: {
      const auto& id = e.consent_revoked().consent_id();
      auto it = s.consents.find(id);
      if (it == s.consents.end()) {
        return Refused(absl::StrCat("consent ", Q(id), " does not exist", in_case));
      }
      if (it->second.revoked) {
        return Refused(absl::StrCat("consent ", Q(id), " was already revoked at ",
                                    FormatUtc(it->second.revoked_at)));
      }
      return absl::OkStatus();
    }
    case v1::Event::kDisclosureMade:
      return CheckDisclosure(s, e.disclosure_made(), at);
    case v1::Event::kClientInformed: {
      const auto& id = e.client_informed().disclosure_id();
      if (!s.disclosure_ids.count(id)) {
        return Refused(absl::StrCat("disclosure ", Q(id), " does not exist", in_case));
      }
      if (!s.pending_notices.count(id)) {
        return Refused(absl::StrCat("disclosure ", Q(id), ": the client was already informed"));
      }
      return absl::OkStatus();
    }
    case v1::Event::kAccessRequested: {
      const auto& id = e.access_requested().request_id();
      if (s.access_requests.count(id)) {
        return Refused(absl::StrCat("access request ", Q(id), " already exists", in_case));
      }
      return absl::OkStatus();
    }
    case v1::Event::kAccessFulfilled: {
      const AccessRequest* r;
      CL_RETURN_IF_ERROR(CheckAccessDecisionTarget(s, e.access_fulfilled().request_id(), &r));
      return InClientsHistory(e, r->client_id, "the answer to their access request");
    }
    case v1::Event::kAccessDenied: {
      const AccessRequest* r;
      CL_RETURN_IF_ERROR(CheckAccessDecisionTarget(s, e.access_denied().request_id(), &r));
      if (r->review == AccessReview::kOverturned) {
        // 164.524(d)(4): the reviewing official's determination binds.
        return Refused(absl::StrCat("access request ", Q(r->request_id), ": reviewer ",
                                    Q(r->reviewer_id), " overturned its denial at ",
                                    FormatUtc(r->reviewed_at),
                                    "; the review is binding, so access must be given"));
      }
      // The denied client's history shows the denial and the right to review.
      return InClientsHistory(e, r->client_id, "the denial");
    }
    case v1::Event::kAccessExtended: {
      const AccessRequest* r;
      CL_RETURN_IF_ERROR(CheckAccessDecisionTarget(s, e.access_extended().request_id(), &r));
      CL_RETURN_IF_ERROR(CheckExtension("access request", "45 CFR 164.524(b)(2)", *r, e, ctx));
      return InClientsHistory(e, r->client_id, "the extension and its reason");
    }
    case v1::Event::kAccessReviewRequested: {
      const auto& id = e.access_review_requested().request_id();
      auto it = s.access_requests.find(id);
      if (it == s.access_requests.end()) {
        return Refused(absl::StrCat("access request ", Q(id), " does not exist", in_case));
      }
      const AccessRequest& r = it->second;
      if (r.review != AccessReview::kNone) {
        return Refused(absl::StrCat("the denial of access request ", Q(id),
                                    " was already sent for review at ",
                                    FormatUtc(r.review_requested_at)));
      }
      if (r.decision != AccessDecision::kDenied) {
        return Refused(absl::StrCat("access request ", Q(id), " was not denied: only a denial ",
                                    "can be reviewed"));
      }
      if (!IsReviewableDenial(r.denial_ground)) {
        return Refused(absl::StrCat(
            "access request ", Q(id), " was denied on ground ",
            v1::AccessDenialGround_Name(r.denial_ground),
            ", which 45 CFR 164.524(a)(1)-(2) makes unreviewable; only (a)(3) grounds are "
            "reviewed"));
      }
      return absl::OkStatus();
    }
    case v1::Event::kAccessReviewed: {
      const auto& b = e.access_reviewed();
      auto it = s.access_requests.find(b.request_id());
      if (it == s.access_requests.end() || it->second.review == AccessReview::kNone) {
        return Refused(absl::StrCat("the denial of access request ", Q(b.request_id()),
                                    " was not sent for review", in_case));
      }
      const AccessRequest& r = it->second;
      if (r.review != AccessReview::kRequested) {
        return Refused(absl::StrCat("the denial of access request ", Q(b.request_id()),
                                    " was already reviewed at ", FormatUtc(r.reviewed_at), " by ",
                                    Q(r.reviewer_id), "; the decision is binding"));
      }
      // 164.524(a)(4): a reviewer "who did not participate in the original
      // decision to deny".
      if (b.reviewer_id() == r.denied_by) {
        return Refused(absl::StrCat("reviewer ", Q(b.reviewer_id()), " made the denial of access ",
                                    "request ", Q(b.request_id()),
                                    "; 45 CFR 164.524(a)(4) needs a reviewer who did not take "
                                    "part in it"));
      }
      return absl::OkStatus();
    }
    case v1::Event::kAccountingRequested: {
      const auto& b = e.accounting_requested();
      if (s.accounting_requests.count(b.request_id())) {
        return Refused(
            absl::StrCat("accounting request ", Q(b.request_id()), " already exists", in_case));
      }
      if (!b.fee_notice().empty()) {
        // 164.528(c)(2): the first accounting in any 12 months is free. Only
        // this case's requests are seen, so a fee needs one of them.
        const absl::Time received = std::min(at, ctx.received_at);
        const absl::Time since = TwelveMonthsBefore(received);
        bool earlier = false;
        for (const auto& [id, r] : s.accounting_requests) {
          if (r.client_id == b.client_id() && r.received_at > since && r.received_at <= received) {
            earlier = true;
          }
        }
        if (!earlier) {
          return Refused(absl::StrCat(
              "accounting request ", Q(b.request_id()), " carries a fee notice, but client ",
              Q(b.client_id()), " made no other accounting request", in_case, " since ",
              FormatUtc(since), "; 45 CFR 164.528(c)(2) makes the first in any 12 months free"));
        }
      }
      return absl::OkStatus();
    }
    case v1::Event::kAccountingFulfilled: {
      const AccountingRequest* r;
      CL_RETURN_IF_ERROR(PendingRequest(s, s.accounting_requests, "accounting request",
                                        e.accounting_fulfilled().request_id(), &r));
      return InClientsHistory(e, r->client_id, "the accounting");
    }
    case v1::Event::kAccountingExtended: {
      const AccountingRequest* r;
      CL_RETURN_IF_ERROR(PendingRequest(s, s.accounting_requests, "accounting request",
                                        e.accounting_extended().request_id(), &r));
      CL_RETURN_IF_ERROR(
          CheckExtension("accounting request", "45 CFR 164.528(c)(1)(ii)", *r, e, ctx));
      return InClientsHistory(e, r->client_id, "the extension and its reason");
    }
    case v1::Event::kPart2ListRequested: {
      const auto& b = e.part2_list_requested();
      const std::string name = absl::StrCat("42 CFR 2.24 list request ", Q(b.request_id()));
      if (s.part2_list_requests.count(b.request_id())) {
        return Refused(absl::StrCat(name, " already exists", in_case));
      }
      if (s.record_class != v1::RECORD_CLASS_SUBSTANCE_USE) {
        return Refused(absl::StrCat(name, ": case ", Q(s.case_id), " holds ",
                                    v1::RecordClass_Name(s.record_class),
                                    " records; the 42 CFR 2.24 list is for substance-use records"));
      }
      auto it = s.consents.find(b.consent_id());
      if (it == s.consents.end() || it->second.client_id != b.client_id()) {
        return Refused(absl::StrCat(name, ": client ", Q(b.client_id()), " has no consent ",
                                    Q(b.consent_id()), in_case));
      }
      if (it->second.general_designation.empty()) {
        return Refused(absl::StrCat(name, ": consent ", Q(b.consent_id()),
                                    " names no general designation (42 CFR 2.24 lists only "
                                    "disclosures under one)"));
      }
      return absl::OkStatus();
    }
    case v1::Event::kPart2ListProvided: {
      const Part2ListRequest* r;
      CL_RETURN_IF_ERROR(PendingRequest(s, s.part2_list_requests, "42 CFR 2.24 list request",
                                        e.part2_list_provided().request_id(), &r));
      return InClientsHistory(e, r->client_id, "the list");
    }
    case v1::Event::kAccountingSuspended: {
      const auto& id = e.accounting_suspended().suspension_id();
      if (s.accounting_suspensions.count(id)) {
        return Refused(absl::StrCat("accounting suspension ", Q(id), " already exists", in_case));
      }
      return absl::OkStatus();
    }
    case v1::Event::kAmendmentRequested: {
      const auto& b = e.amendment_requested();
      if (s.amendment_requests.count(b.request_id())) {
        return Refused(
            absl::StrCat("amendment request ", Q(b.request_id()), " already exists", in_case));
      }
      if (!s.entries.count(b.entry_id())) {
        return Refused(absl::StrCat("amendment_requested.entry_id ", Q(b.entry_id()),
                                    " is not an entry of case ", Q(s.case_id)));
      }
      return absl::OkStatus();
    }
    case v1::Event::kAmendmentAccepted: {
      const auto& b = e.amendment_accepted();
      const AmendmentRequest* r;
      CL_RETURN_IF_ERROR(
          PendingRequest(s, s.amendment_requests, "amendment request", b.request_id(), &r));
      // 164.526(c)(1): the amendment is made, by appending or linking to the
      // entry: a record_amended of that entry, already in the case.
      auto it = s.entries.find(b.amendment_entry_id());
      if (it == s.entries.end() || it->second.amends_entry_id != r->entry_id) {
        return Refused(
            absl::StrCat("amendment request ", Q(r->request_id), " asks to amend entry ",
                         Q(r->entry_id), ", but amendment_entry_id ", Q(b.amendment_entry_id()),
                         it == s.entries.end() ? " is not an entry" : " does not amend it", in_case,
                         "; record the record_amended first"));
      }
      return InClientsHistory(e, r->client_id, "the acceptance");
    }
    case v1::Event::kAmendmentDenied: {
      const AmendmentRequest* r;
      CL_RETURN_IF_ERROR(PendingRequest(s, s.amendment_requests, "amendment request",
                                        e.amendment_denied().request_id(), &r));
      return InClientsHistory(e, r->client_id, "the denial and its basis");
    }
    case v1::Event::kAmendmentExtended: {
      const AmendmentRequest* r;
      CL_RETURN_IF_ERROR(PendingRequest(s, s.amendment_requests, "amendment request",
                                        e.amendment_extended().request_id(), &r));
      CL_RETURN_IF_ERROR(
          CheckExtension("amendment request", "45 CFR 164.526(b)(2)(ii)", *r, e, ctx));
      return InClientsHistory(e, r->client_id, "the extension and its reason");
    }
    case v1::Event::kDisagreementFiled: {
      const auto& id = e.disagreement_filed().request_id();
      auto it = s.amendment_requests.find(id);
      if (it == s.amendment_requests.end()) {
        return Refused(absl::StrCat("amendment request ", Q(id), " does not exist", in_case));
      }
      const AmendmentRequest& r = it->second;
      if (r.decision != AccessDecision::kDenied) {
        return Refused(absl::StrCat("amendment request ", Q(id), " was not denied: a statement ",
                                    "of disagreement answers a denial (45 CFR "
                                    "164.526(d)(1)(ii))"));
      }
      if (r.disagreement_filed) {
        return Refused(absl::StrCat("amendment request ", Q(id),
                                    ": a statement of disagreement was already filed at ",
                                    FormatUtc(r.disagreement_at)));
      }
      return InClientsHistory(e, r.client_id, "the statement of disagreement");
    }
    case v1::Event::kDisagreementRebutted: {
      const auto& id = e.disagreement_rebutted().request_id();
      auto it = s.amendment_requests.find(id);
      if (it == s.amendment_requests.end() || !it->second.disagreement_filed) {
        return Refused(absl::StrCat("amendment request ", Q(id),
                                    " has no statement of disagreement to rebut", in_case));
      }
      if (it->second.rebutted) {
        return Refused(absl::StrCat("amendment request ", Q(id), ": the disagreement was ",
                                    "already rebutted at ", FormatUtc(it->second.rebutted_at)));
      }
      // 164.526(d)(3): a copy of the rebuttal goes to the client.
      return InClientsHistory(e, it->second.client_id, "the rebuttal");
    }
    case v1::Event::kLegalHoldPlaced: {
      const auto& id = e.legal_hold_placed().hold_id();
      auto it = s.legal_holds.find(id);
      if (it != s.legal_holds.end()) {
        return Refused(absl::StrCat("legal hold ", Q(id), " already exists", in_case,
                                    it->second.released ? " (released; place a new one)" : ""));
      }
      return absl::OkStatus();
    }
    case v1::Event::kLegalHoldReleased: {
      const auto& id = e.legal_hold_released().hold_id();
      auto it = s.legal_holds.find(id);
      if (it == s.legal_holds.end()) {
        return Refused(absl::StrCat("legal hold ", Q(id), " does not exist", in_case));
      }
      if (it->second.released) {
        return Refused(absl::StrCat("legal hold ", Q(id), " was already released at ",
                                    FormatUtc(it->second.released_at)));
      }
      return absl::OkStatus();
    }
    case v1::Event::kRecordsDisposed: {
      auto holds = s.ActiveLegalHolds();
      if (!holds.empty()) return Refused(HeldMessage(s, *holds.front(), "records_disposed"));
      return absl::OkStatus();
    }
    default:
      return absl::OkStatus();
  }
}

// ---- Conflicts of interest (services/policy/RULES.md C1-C4) ----

// NASW 2.06(a) ("inform clients when a real or potential conflict of interest
// arises ... take reasonable steps to resolve the issue in a manner that makes
// the clients' interests primary"); Jupitice code 2 (disclose at once). The
// person with the conflict is its declared_by. Stricter readings chosen: while
// the conflict is unresolved that person may not act for the client at all
// (disclose, be assigned, be transferred the case), whoever sends the event;
// a conflict is never resolved by the person who has it; and telling the
// client is a duty of its own that a resolution does not discharge.
absl::Status CheckConflictOfInterest(const CaseState& s, const v1::Event& e) {
  const std::string in_case = absl::StrCat(" in case ", Q(s.case_id));
  auto conflicted = [&](absl::string_view field, const std::string& person) {
    if (person.empty() || !s.HasOpenConflict(person)) return absl::OkStatus();
    std::string ids;
    for (const Conflict* c : s.OpenConflicts()) {
      if (c->declared_by == person) absl::StrAppend(&ids, ids.empty() ? "" : ", ", Q(c->conflict_id));
    }
    return Refused(absl::StrCat(field, " ", Q(person), " has an unresolved conflict of interest",
                                in_case, " (conflict ", ids,
                                "); NASW 2.06(a): someone else must act until it is resolved"));
  };
  switch (e.body_case()) {
    case v1::Event::kDisclosureMade:
      return conflicted("disclosure_made.disclosed_by", e.disclosure_made().disclosed_by());
    case v1::Event::kCaseManagerAssigned:
      return conflicted("case_manager_assigned.manager_id", e.case_manager_assigned().manager_id());
    case v1::Event::kCaseTransferred:
      return conflicted("case_transferred.to_manager_id", e.case_transferred().to_manager_id());
    case v1::Event::kConflictResolved: {
      const auto& b = e.conflict_resolved();
      auto it = s.conflicts.find(b.conflict_id());
      if (it != s.conflicts.end() && it->second.declared_by == b.resolved_by()) {
        return Refused(absl::StrCat("conflict ", Q(b.conflict_id()), " is ",
                                    Q(b.resolved_by()),
                                    "'s own: conflict_resolved.resolved_by must be someone else "
                                    "(NASW 2.06(a))"));
      }
      return absl::OkStatus();
    }
    case v1::Event::kClientInformedOfConflict: {
      const auto& id = e.client_informed_of_conflict().conflict_id();
      auto it = s.conflicts.find(id);
      if (it == s.conflicts.end()) {
        return Refused(absl::StrCat("conflict ", Q(id), " was not declared", in_case));
      }
      if (it->second.client_informed) {
        return Refused(absl::StrCat("conflict ", Q(id), ": the client was already informed at ",
                                    FormatUtc(it->second.client_informed_at)));
      }
      return absl::OkStatus();
    }
    default:
      return absl::OkStatus();
  }
}

// ---- Authorized representatives with scope (services/policy/RULES.md R1-R2) ----

// R1 (INVALID_ARGUMENT): a representative is added with the authority they
// act under; no other participant carries one.
absl::Status CheckRepresentativeAuthorityFields(const v1::Event& e) {
  if (e.body_case() != v1::Event::kParticipantAdded) return absl::OkStatus();
  const auto& b = e.participant_added();
  const bool representative = b.role() == v1::PARTICIPANT_ROLE_AUTHORIZED_REPRESENTATIVE;
  if (!representative) {
    if (!b.has_authority()) return absl::OkStatus();
    return Invalid("participant_added.authority",
                   absl::StrCat("only PARTICIPANT_ROLE_AUTHORIZED_REPRESENTATIVE acts under an "
                                "authority, got role ",
                                v1::ParticipantRole_Name(b.role())));
  }
  if (!b.has_authority()) {
    return Invalid("participant_added.authority",
                   "must be set for PARTICIPANT_ROLE_AUTHORIZED_REPRESENTATIVE (the document "
                   "they act under, its scope and dates; 45 CFR 164.502(g))");
  }
  const auto& a = b.authority();
  if (a.document_sha256().size() != 32) {
    return Invalid("participant_added.authority.document_sha256",
                   absl::StrCat("got ", a.document_sha256().size(),
                                " bytes, want 32 (the SHA-256 of the authority document)"));
  }
  CL_RETURN_IF_ERROR(KnownEnum("participant_added.authority.scope",
                               v1::RepresentativeScope_descriptor(), a.scope()));
  if (a.scope() == v1::REPRESENTATIVE_SCOPE_PROGRAM && a.program().empty()) {
    return Invalid("participant_added.authority.program",
                   "must not be empty when scope is REPRESENTATIVE_SCOPE_PROGRAM");
  }
  if (a.has_starts_at() && a.has_ends_at() &&
      TimeFromProto(a.ends_at()) <= TimeFromProto(a.starts_at())) {
    return Invalid("participant_added.authority.ends_at",
                   absl::StrCat("got ", FormatUtc(TimeFromProto(a.ends_at())),
                                ", want after starts_at ", FormatUtc(TimeFromProto(a.starts_at()))));
  }
  return absl::OkStatus();
}

// R2 (FAILED_PRECONDITION): a representative acts for the client only within
// the dates and scope of their authority: the consents they grant, the
// consents they revoke and the access they request. 45 CFR 164.502(g)(2)
// treats a personal representative as the individual only "with respect to
// ... protected health information relevant to such personal
// representation"; 42 CFR 2.15. Stricter readings chosen: a health care
// decisions authority covers health records only (behavioral health,
// substance use), not a general case; a program authority covers the case
// only while the case is in that program; a date outside the authority
// refuses even a revocation (an act by someone without authority changes
// nothing for the client, who may still revoke themself).
absl::Status CheckRepresentativeScope(const CaseState& s, const v1::Event& e) {
  std::string who;
  std::string field;
  switch (e.body_case()) {
    case v1::Event::kConsentGranted:
      if (e.consent_granted().grantor_kind() != v1::GRANTOR_KIND_AUTHORIZED_REPRESENTATIVE) {
        return absl::OkStatus();
      }
      who = e.consent_granted().grantor_id();
      field = "consent_granted.grantor_id";
      break;
    case v1::Event::kConsentRevoked:
      who = e.consent_revoked().revoked_by();
      field = "consent_revoked.revoked_by";
      break;
    case v1::Event::kAccessRequested:
      who = e.access_requested().requested_by();
      field = "access_requested.requested_by";
      break;
    default:
      return absl::OkStatus();
  }
  auto it = s.participants.find(who);
  if (it == s.participants.end() ||
      it->second.role != v1::PARTICIPANT_ROLE_AUTHORIZED_REPRESENTATIVE) {
    return absl::OkStatus();  // not a representative of the case (B4 checks grantors)
  }
  const RepresentativeAuthority& a = it->second.authority;
  const absl::Time at = TimeFromProto(e.occurred_at());
  const std::string rep = absl::StrCat(field, " ", Q(who), ", an authorized representative");
  if (a.scope == v1::REPRESENTATIVE_SCOPE_UNSPECIFIED) {
    return Refused(absl::StrCat(rep, ", was added without an authority document (45 CFR "
                                     "164.502(g)): nothing shows what they may decide"));
  }
  if (at < a.starts_at) {
    return Refused(absl::StrCat(rep, ", has authority from ", FormatUtc(a.starts_at),
                                ", after ", EventTypeName(e), " at ", FormatUtc(at)));
  }
  if (at >= a.ends_at) {
    return Refused(absl::StrCat(rep, ", had authority until ", FormatUtc(a.ends_at),
                                ", before ", EventTypeName(e), " at ", FormatUtc(at)));
  }
  if (a.scope == v1::REPRESENTATIVE_SCOPE_HEALTH_DECISIONS &&
      s.record_class != v1::RECORD_CLASS_BEHAVIORAL_HEALTH &&
      s.record_class != v1::RECORD_CLASS_SUBSTANCE_USE) {
    return Refused(absl::StrCat(rep, ", may make health care decisions only, but case ",
                                Q(s.case_id), " has record_class ",
                                v1::RecordClass_Name(s.record_class)));
  }
  if (a.scope == v1::REPRESENTATIVE_SCOPE_PROGRAM && a.program != s.program) {
    return Refused(absl::StrCat(rep, ", acts for program ", Q(a.program), " only, but case ",
                                Q(s.case_id), " is in program ", Q(s.program)));
  }
  return absl::OkStatus();
}

// ---- Informed consent (services/policy/RULES.md I1-I2) ----

// INVALID_ARGUMENT: a consent records what the client was told, in which
// language, with what help, and who could decide. NASW-derived 2.03 (informed
// consent: "clear and understandable language ... the purpose of the
// services, risks ..., limits to services ..., the right to refuse or
// withdraw consent"; an interpreter or translator when needed; when clients
// lack the capacity, permission from an appropriate third party); Longmont
// agreement "Confidentiality" 2 (the limits of confidentiality explained).
// Stricter reading chosen: every one of the four things told is required
// (none is left to the producer's judgment), the language and the
// comprehension aid are always stated (COMPREHENSION_AID_NONE says none was
// needed), an interpreter is named, and the capacity matches the grantor.
absl::Status CheckInformedConsentFields(const v1::Event& e) {
  if (e.body_case() != v1::Event::kConsentGranted) return absl::OkStatus();
  const auto& b = e.consent_granted();
  if (!b.has_informed()) {
    return Invalid("consent_granted.informed",
                   "must be set (what the client was told, in which language, with what help, "
                   "and who decided; NASW-derived 2.03)");
  }
  const auto& i = b.informed();
  auto told = [](absl::string_view field, bool value, absl::string_view what) {
    if (value) return absl::OkStatus();
    return Invalid(absl::StrCat("consent_granted.informed.", field),
                   absl::StrCat("must be true: a consent is informed only when the client was "
                                "told ",
                                what, " (NASW-derived 2.03)"));
  };
  CL_RETURN_IF_ERROR(
      told("told_right_to_revoke", i.told_right_to_revoke(), "of the right to revoke it and how"));
  CL_RETURN_IF_ERROR(told("told_consequences_of_refusing", i.told_consequences_of_refusing(),
                          "what follows from refusing"));
  CL_RETURN_IF_ERROR(told("told_redisclosure_risk", i.told_redisclosure_risk(),
                          "that the recipient may disclose it again"));
  CL_RETURN_IF_ERROR(told("told_limits_of_confidentiality", i.told_limits_of_confidentiality(),
                          "what cannot be kept confidential (serious harm to self or others, "
                          "abuse; Longmont \"Confidentiality\" 2)"));
  CL_RETURN_IF_ERROR(NonEmpty("consent_granted.informed.language", i.language()));
  CL_RETURN_IF_ERROR(KnownEnum("consent_granted.informed.comprehension_aid",
                               v1::ComprehensionAid_descriptor(), i.comprehension_aid()));
  if (i.comprehension_aid() == v1::COMPREHENSION_AID_INTERPRETER && b.interpreter_name().empty()) {
    return Invalid("consent_granted.interpreter_name",
                   "must not be empty when informed.comprehension_aid is "
                   "COMPREHENSION_AID_INTERPRETER");
  }
  CL_RETURN_IF_ERROR(KnownEnum("consent_granted.informed.capacity",
                               v1::ConsentCapacity_descriptor(), i.capacity()));
  const bool by_representative = b.grantor_kind() == v1::GRANTOR_KIND_AUTHORIZED_REPRESENTATIVE;
  const v1::ConsentCapacity want = by_representative ? v1::CONSENT_CAPACITY_REPRESENTATIVE_ACTS
                                                     : v1::CONSENT_CAPACITY_CLIENT_CAPABLE;
  if (i.capacity() != want) {
    return Invalid("consent_granted.informed.capacity",
                   absl::StrCat("got ", v1::ConsentCapacity_Name(i.capacity()), ", want ",
                                v1::ConsentCapacity_Name(want), " for grantor_kind ",
                                v1::GrantorKind_Name(b.grantor_kind()),
                                " (a client who cannot decide consents through an authorized "
                                "representative)"));
  }
  if (by_representative && i.capacity_note().empty()) {
    return Invalid("consent_granted.informed.capacity_note",
                   "must not be empty when a representative consents (say why the client does "
                   "not decide themself)");
  }
  return absl::OkStatus();
}

// ---- 42 CFR Part 2 notices (services/policy/RULES.md P1) ----

// INVALID_ARGUMENT for a notice hash that is not a SHA-256.
absl::Status CheckPart2NoticeFields(const v1::Event& e) {
  if (e.body_case() != v1::Event::kDisclosureMade) return absl::OkStatus();
  const std::string& h = e.disclosure_made().part2_notice_sha256();
  if (h.empty() || h.size() == 32) return absl::OkStatus();
  return Invalid("disclosure_made.part2_notice_sha256",
                 absl::StrCat("got ", h.size(), " bytes, want 32 (a SHA-256) or none"));
}

// FAILED_PRECONDITION: 42 CFR 2.32(a) requires each disclosure made with the
// patient's written consent to be accompanied by the written notice on
// re-disclosure; the disclosure records the hash of the notice sent.
// Stricter reading chosen: the record must show which notice went with it
// (a hash, not a flag).
absl::Status CheckPart2Notice(const CaseState& s, const v1::Event& e) {
  if (e.body_case() != v1::Event::kDisclosureMade) return absl::OkStatus();
  const auto& d = e.disclosure_made();
  if (s.record_class != v1::RECORD_CLASS_SUBSTANCE_USE ||
      d.legal_basis() != v1::LEGAL_BASIS_CONSENT || !d.part2_notice_sha256().empty()) {
    return absl::OkStatus();
  }
  return Refused(absl::StrCat("case ", Q(s.case_id),
                              " holds substance-use records: 42 CFR 2.32 requires the notice "
                              "on re-disclosure with each disclosure made with consent, but "
                              "disclosure_made.part2_notice_sha256 is empty"));
}

}  // namespace

absl::Status CheckErasure(const CaseState& state, absl::string_view subject_id) {
  const LegalHold* h = state.HoldOn(subject_id);
  if (h == nullptr) return absl::OkStatus();
  return Refused(absl::StrCat("subject ", Q(subject_id), ": ", HeldMessage(state, *h, "erasure")));
}

absl::Status CheckEvent(const CaseState& state, const v1::Event& e, const CheckContext& context) {
  CL_RETURN_IF_ERROR(CheckStructure(e));
  CL_RETURN_IF_ERROR(CheckRepresentativeAuthorityFields(e));
  CL_RETURN_IF_ERROR(CheckInformedConsentFields(e));
  CL_RETURN_IF_ERROR(CheckPart2NoticeFields(e));
  CL_RETURN_IF_ERROR(CheckTimeFields(e, context));
  if (!state.case_id.empty() && e.stream_id() != state.case_id) {
    return Invalid("event.stream_id", absl::StrCat("got ", Q(e.stream_id()), ", want ",
                                                   Q(state.case_id), " (the case checked)"));
  }
  CL_RETURN_IF_ERROR(CheckTimeOrder(state, e, context));
  CL_RETURN_IF_ERROR(CheckLifecycle(state, e));
  CL_RETURN_IF_ERROR(CheckRules(state, e, context));
  CL_RETURN_IF_ERROR(CheckConflictOfInterest(state, e));
  CL_RETURN_IF_ERROR(CheckRepresentativeScope(state, e));
  return CheckPart2Notice(state, e);
}

}  // namespace caseledger
