// The message catalog of the client's page (history_render.h): every
// user-facing text, keyed by message id, in every supported language.
//
// A translator edits history_messages.cc only. Texts are plain UTF-8 (no
// markup; the renderer escapes them) with named placeholders such as {date}
// and {recipient}; every language of a message has the same placeholders
// (history_render_test checks this).
//
// Ids: "page.*", "verdict.*", "events.*", "title.<event type>" and
// "event.<event type>[.variant]" for each Event.body field of
// proto/events.proto, "withheld.*", "accounting.*", "access.*", "checks.*",
// "month.<1..12>", "role.<accessor role>", and "enum.<lower-case enum value
// name>" for every value of the enums shown to the client (LegalBasis,
// RecordClass, ParticipantRole, GrantorKind).
//
// Thread-safe: the catalog is immutable.
#ifndef CASELEDGER_SERVICES_HISTORY_MESSAGES_H_
#define CASELEDGER_SERVICES_HISTORY_MESSAGES_H_

#include <string>
#include <vector>

namespace caseledger {

struct MessageText {
  const char* lang;  // a language tag, e.g. "en"
  const char* text;
};

struct Message {
  const char* id;
  std::vector<MessageText> texts;  // one per language
};

// The languages of the catalog, in order; the first is the default.
const std::vector<std::string>& CatalogLanguages();

// Every message; ids are unique.
const std::vector<Message>& MessageCatalog();

}  // namespace caseledger

#endif  // CASELEDGER_SERVICES_HISTORY_MESSAGES_H_
