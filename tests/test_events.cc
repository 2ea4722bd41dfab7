#include "tests/test_events.h"

namespace caseledger::testing {

v1::AppendRequest EventRequest(const std::string& id, const std::string& case_id,
                               const std::string& client, const std::string& producer,
                               int64_t at) {
  v1::AppendRequest r;
  v1::Event* e = r.mutable_event();
  e->set_event_id(id);
  e->set_stream_id(case_id);
  e->add_subject_ids(client);
  e->set_producer(producer);
  e->mutable_occurred_at()->set_seconds(at);
  return r;
}

void SetCaseOpened(v1::Event* e, const std::string& program) {
  v1::CaseOpened* o = e->mutable_case_opened();
  o->set_program(program);
  o->set_jurisdiction("US-CA");
  o->set_record_class(v1::RECORD_CLASS_GENERAL);
}

void SetNote(v1::Event* e) {
  v1::RecordEntryWritten* w = e->mutable_record_entry_written();
  w->set_entry_id("entry-" + e->event_id());
  w->set_data_category("housing");
  w->set_text("note " + e->event_id());
}

v1::AppendRequest OpenCaseRequest(const std::string& id, const std::string& case_id,
                                  const std::string& client, const std::string& producer) {
  v1::AppendRequest r = EventRequest(id, case_id, client, producer, kCaseOpenedAt);
  SetCaseOpened(r.mutable_event());
  return r;
}

v1::AppendRequest NoteRequest(const std::string& id, const std::string& case_id,
                              const std::string& client, const std::string& producer) {
  v1::AppendRequest r = EventRequest(id, case_id, client, producer, kNoteAt);
  SetNote(r.mutable_event());
  return r;
}

}  // namespace caseledger::testing
