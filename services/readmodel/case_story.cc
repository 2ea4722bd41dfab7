#include "services/readmodel/case_story.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace caseledger::testing {

namespace {

v1::Event Base(int c, int v) {
  v1::Event e;
  e.set_event_id(absl::StrCat("case-", c, "-v", v));
  e.set_stream_id(absl::StrCat("case-", c));
  e.add_subject_ids(absl::StrCat("client-", c));
  e.set_producer("generator");
  e.mutable_occurred_at()->set_seconds(kStoryStart + c * 10 + v * 86400);
  return e;
}

}  // namespace

v1::Event Story(int c, int v) {
  v1::Event e = Base(c, v);
  std::string client = absl::StrCat("client-", c);
  switch (v) {
    case 0: {
      auto* o = e.mutable_case_opened();
      o->set_program(c % 2 ? "housing" : "recovery");
      o->set_jurisdiction("US-CA");
      o->set_record_class(v1::RECORD_CLASS_GENERAL);
      break;
    }
    case 1: {
      auto* p = e.mutable_participant_added();
      p->set_participant_id(client);
      p->set_role(v1::PARTICIPANT_ROLE_CLIENT);
      break;
    }
    case 2: {
      auto* m = e.mutable_case_manager_assigned();
      m->set_manager_id(absl::StrCat("cm-", c % 7));
      m->set_reason("intake");
      break;
    }
    case 3: {
      auto* g = e.mutable_consent_granted();
      g->set_consent_id(absl::StrCat("consent-", c));
      g->set_client_id(client);
      g->set_grantor_kind(v1::GRANTOR_KIND_CLIENT);
      g->set_grantor_id(client);
      g->add_recipients("clinic-1");
      g->add_purposes("care-coordination");
      g->add_data_categories("housing");
      g->mutable_starts_at()->set_seconds(kStoryStart);
      g->mutable_expires_at()->set_seconds(kStoryStart + 400 * 86400);
      g->set_revocable(true);
      {
        // What the client was told (services/policy/RULES.md I1-I2).
        v1::InformedConsent* i = g->mutable_informed();
        i->set_told_right_to_revoke(true);
        i->set_told_consequences_of_refusing(true);
        i->set_told_redisclosure_risk(true);
        i->set_told_limits_of_confidentiality(true);
        i->set_language("en");
        i->set_comprehension_aid(v1::COMPREHENSION_AID_PLAIN_LANGUAGE);
        i->set_capacity(v1::CONSENT_CAPACITY_CLIENT_CAPABLE);
      }
      break;
    }
    case 8: {
      auto* d = e.mutable_disclosure_made();
      d->set_disclosure_id(absl::StrCat("d-", c, "-1"));
      d->set_client_id(client);
      d->mutable_recipient()->set_recipient_id("clinic-1");
      d->mutable_recipient()->set_name("Eastside Clinic");
      d->mutable_recipient()->set_address("1 Main St, Oakland CA");
      d->set_purpose("care-coordination");
      d->add_data_categories("housing");
      d->set_description("housing status summary");
      d->set_legal_basis(v1::LEGAL_BASIS_CONSENT);
      d->set_consent_id(absl::StrCat("consent-", c));
      d->set_disclosed_by(absl::StrCat("cm-", c % 7));
      d->set_minimum_necessary("status only, no notes");
      break;
    }
    case 9: {
      auto* i = e.mutable_client_informed();
      i->set_disclosure_id(absl::StrCat("d-", c, "-1"));
      i->set_method("letter");
      break;
    }
    case 12: {
      auto* d = e.mutable_disclosure_made();
      d->set_disclosure_id(absl::StrCat("d-", c, "-2"));
      d->set_client_id(client);
      d->mutable_recipient()->set_recipient_id("court-7");
      d->mutable_recipient()->set_name("County Court");
      d->mutable_recipient()->set_address("5 Court Sq");
      d->set_purpose("subpoena");
      d->add_data_categories("housing");
      d->set_description("attendance records");
      d->set_legal_basis(v1::LEGAL_BASIS_REQUIRED_BY_LAW);
      d->set_legal_citation("Cal. Evid. Code 1560");
      d->set_disclosed_by(absl::StrCat("cm-", c % 7));
      d->set_minimum_necessary("dates only");
      break;
    }
    case 13: {
      auto* d = e.mutable_disclosure_made();
      d->set_disclosure_id(absl::StrCat("d-", c, "-3"));
      d->set_client_id(client);
      d->mutable_recipient()->set_recipient_id("clinic-2");
      d->mutable_recipient()->set_name("Westside Clinic");
      d->mutable_recipient()->set_address("9 Side St");
      d->set_purpose("treatment");
      d->add_data_categories("housing");
      d->set_description("referral letter");
      d->set_legal_basis(v1::LEGAL_BASIS_TREATMENT);
      d->set_disclosed_by(absl::StrCat("cm-", c % 7));
      break;
    }
    case 16: {
      auto* a = e.mutable_access_requested();
      a->set_request_id(absl::StrCat("r-", c));
      a->set_client_id(client);
      a->set_requested_by(client);
      a->set_scope("all records");
      break;
    }
    case 17:
      if (c % 3 == 0) {  // a third of the requests stay open
        auto* x = e.mutable_access_extended();
        x->set_request_id(absl::StrCat("r-", c));
        x->set_reason("records in storage");
        // The story is replayed long after its dates; an extension is judged
        // at receipt unless marked late (services/policy/RULES.md T7).
        x->mutable_late_documentation()->set_reason("story replayed after its dates");
      } else {
        auto* f = e.mutable_access_fulfilled();
        f->set_request_id(absl::StrCat("r-", c));
        f->set_bundle_sha256("00");
      }
      break;
    case 19:
      if (c % 3 != 0) {
        auto* x = e.mutable_case_closed();
        x->set_reason("goals met");
        x->set_referral("community program");
        break;
      }
      [[fallthrough]];
    default: {
      auto* w = e.mutable_record_entry_written();
      w->set_entry_id(absl::StrCat("entry-", c, "-", v));
      w->set_data_category("housing");
      w->set_text(absl::StrCat("visit note ", v));
      w->add_third_party_mentions("landlord: J. Smith");
      w->set_author_id(absl::StrCat("cm-", c % 7));
      break;
    }
  }
  return e;
}

}  // namespace caseledger::testing
