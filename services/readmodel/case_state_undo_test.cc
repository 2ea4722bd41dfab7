#include "services/readmodel/case_state_undo.h"

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "services/readmodel/case_story.h"

namespace caseledger {
namespace {

using testing::Story;

absl::Time At(const v1::Event& e) { return absl::FromUnixSeconds(e.occurred_at().seconds()); }

// Events that reach the collections the story does not: conflicts, holds,
// amendment and accounting requests, suspensions, a removed participant.
std::vector<v1::Event> Extras(int c) {
  std::vector<v1::Event> out;
  auto base = [&](int i) {
    v1::Event e = Story(c, 19);
    e.set_event_id(absl::StrCat("extra-", i));
    e.mutable_occurred_at()->set_seconds(e.occurred_at().seconds() + i);
    return e;
  };
  v1::Event e = base(1);
  e.mutable_conflict_declared()->set_conflict_id("k-1");
  e.mutable_conflict_declared()->set_declared_by("cm-1");
  out.push_back(e);
  e = base(2);
  e.mutable_conflict_resolved()->set_conflict_id("k-1");
  e.mutable_conflict_resolved()->set_resolution("reassigned");
  out.push_back(e);
  e = base(3);
  e.mutable_legal_hold_placed()->set_hold_id("h-1");
  e.mutable_legal_hold_placed()->set_authority("court");
  out.push_back(e);
  e = base(4);
  e.mutable_amendment_requested()->set_request_id("am-1");
  e.mutable_amendment_requested()->set_entry_id(absl::StrCat("entry-", c, "-4"));
  out.push_back(e);
  e = base(5);
  e.mutable_accounting_requested()->set_request_id("ac-1");
  out.push_back(e);
  e = base(6);
  e.mutable_accounting_suspended()->set_suspension_id("s-1");
  e.mutable_accounting_suspended()->set_agency_id("agency");
  out.push_back(e);
  e = base(7);
  e.mutable_participant_removed()->set_participant_id(absl::StrCat("client-", c));
  out.push_back(e);
  e = base(8);
  e.mutable_case_reopened();
  out.push_back(e);
  return out;
}

// From every prefix of a case's history, applying the rest through the undo
// log and rolling back gives back the same state, byte for byte.
TEST(CaseStateUndoTest, RollBackRestoresEveryPrefixExactly) {
  std::vector<v1::Event> events;
  for (int v = 0; v < testing::kStoryLength; ++v) events.push_back(Story(4, v));
  for (v1::Event& e : Extras(4)) events.push_back(std::move(e));
  for (size_t prefix = 0; prefix < events.size(); ++prefix) {
    CaseState state;
    for (size_t i = 0; i < prefix; ++i) {
      ASSERT_EQ(ApplyEvent(events[i], i, At(events[i]), &state), absl::OkStatus());
    }
    const std::string before = EncodeCaseState(state);
    CaseStateUndo undo;
    for (size_t i = prefix; i < events.size(); ++i) {
      ASSERT_EQ(undo.Apply(events[i], i, At(events[i]), &state), absl::OkStatus());
    }
    if (prefix < events.size()) EXPECT_NE(EncodeCaseState(state), before);
    undo.RollBack(&state);
    EXPECT_EQ(EncodeCaseState(state), before) << "from prefix " << prefix;
    EXPECT_TRUE(undo.empty());
  }
}

// A fold that fails (here: a seq applied twice) records nothing.
TEST(CaseStateUndoTest, FailedApplyRecordsNothing) {
  CaseState state;
  ASSERT_EQ(ApplyEvent(Story(5, 0), 3, At(Story(5, 0)), &state), absl::OkStatus());
  const std::string before = EncodeCaseState(state);
  CaseStateUndo undo;
  EXPECT_EQ(undo.Apply(Story(5, 1), 3, At(Story(5, 1)), &state).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(undo.empty());
  EXPECT_EQ(EncodeCaseState(state), before);
}

}  // namespace
}  // namespace caseledger
