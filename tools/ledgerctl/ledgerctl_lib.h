// The testable pieces of ledgerctl: event JSON parsing,
// record formatting and the client-side checks of checkpoints and proofs.
// No network here; the command files in tools/ledgerctl/ do the RPCs.
//
// Thread-safety: every function here is safe to call from any thread.
#ifndef CASELEDGER_TOOLS_LEDGERCTL_LEDGERCTL_LIB_H_
#define CASELEDGER_TOOLS_LEDGERCTL_LEDGERCTL_LIB_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "ledger/checkpoint.h"
#include "ledger/hash.h"
#include "ledger/internal/json.h"  // JsonQuote, for the output helpers below
#include "proto/ledger.pb.h"

namespace caseledger::ledgerctl {

// ---- Events ---------------------------------------------------------------

// Parses one event in the protobuf JSON mapping, either of a
// caseledger.v1.AppendRequest ({"event": {...}, "expected_version": 3}) or of
// a bare caseledger.v1.Event. Fills event.occurred_at with `now` and
// event.producer with "ledgerctl" when absent. INVALID_ARGUMENT with the JSON
// parser's message (which names an unknown field) when it does not parse.
// The server validates the rest (ids, body), so that the rules live once.
absl::StatusOr<v1::AppendRequest> ParseEventJson(absl::string_view json, absl::Time now);

// occurred_at = `now` and producer = "ledgerctl" where the event has none.
void FillEventDefaults(absl::Time now, v1::Event* e);

// "2026-01-31" (UTC midnight) or RFC 3339; INVALID_ARGUMENT naming --flag.
absl::StatusOr<absl::Time> ParseWhen(absl::string_view flag, const std::string& value);

// The envelope of an event the workflow commands build (workflows.cc).
struct WorkflowEnvelope {
  std::string event_id;  // empty: "ledgerctl-BODY-<now in microseconds>"
  std::string stream_id;
  std::vector<std::string> subject_ids;  // empty: the body's client_id, if any
  std::string occurred_at;               // empty: now; else as ParseWhen
  std::string late;                      // late_documentation.reason, if any
};
using FlagValue = std::pair<std::string, std::string>;  // (proto field name, value)

// The event with body `body` (an Event oneof field name, e.g.
// "legal_hold_placed") whose fields are set from `fields`: strings as given,
// enums by full name or by what follows their common prefix in any case
// ("case" for LEGAL_HOLD_SCOPE_CASE), timestamps as ParseWhen. No rule is
// checked here beyond the field's type: the server's policy decides the rest.
// INVALID_ARGUMENT naming --FIELD for a field the body lacks or a bad value.
absl::StatusOr<v1::AppendRequest> WorkflowEvent(const WorkflowEnvelope& envelope,
                                                absl::string_view body,
                                                const std::vector<FlagValue>& fields,
                                                absl::Time now);

// True for a line that holds no event: empty or only whitespace.
bool IsBlankLine(absl::string_view line);

// ---- Output ---------------------------------------------------------------

// The protobuf JSON mapping of `m` on one line, with proto field names. With
// `all_fields`, scalar fields at their default (seq 0, version 0, "") are
// printed too, so that scripts always find them.
std::string ToJson(const google::protobuf::Message& m, bool all_fields = false);

// Builds one JSON object with keys in the order added.
class JsonObject {
 public:
  JsonObject& Add(absl::string_view key, absl::string_view value);
  JsonObject& Add(absl::string_view key, const char* value) {
    return Add(key, absl::string_view(value));
  }
  JsonObject& Add(absl::string_view key, const std::string& value) {
    return Add(key, absl::string_view(value));
  }
  JsonObject& Add(absl::string_view key, uint64_t value);
  JsonObject& Add(absl::string_view key, bool value);
  // Adds `json`, which must already be valid JSON, as the value.
  JsonObject& AddRaw(absl::string_view key, absl::string_view json);
  std::string str() const { return "{" + body_ + "}"; }

 private:
  std::string body_;
};

// A human-readable block for one record, ending in "\n":
//   seq 17  case-1@3  record_entry_written
//     event_id   a17
//     committed  2026-01-01T00:00:00.000000Z
//     leaf_hash  3f9a01b2…
//     body       {"entry_id":"e1","text":"..."}
// plus lines for subjects, producer, occurred_at and withheld fields.
std::string FormatRecordText(const v1::Record& r);

// RFC 3339 UTC with microseconds, e.g. "2026-01-01T00:00:00.000000Z".
std::string FormatTimestamp(int64_t seconds, int32_t nanos);

// "4s", "3m12s", "2h5m", "3d4h": a coarse age for people.
std::string FormatAge(absl::Duration d);

// "[#####.....]  5000/10000  50%  8123 events/s" (total 0: unknown, no bar).
std::string ProgressLine(uint64_t done, uint64_t total, absl::Duration elapsed);

// ---- Verification ---------------------------------------------------------

// A verifier key given directly ("name+hash+base64") or the path of a file
// holding one (surrounding whitespace ignored). INVALID_ARGUMENT from
// NoteVerifier::FromVerifierKey, or NOT_FOUND if it looks like neither.
absl::StatusOr<NoteVerifier> LoadVerifier(const std::string& key_or_file);

// Verifies the signed note of `cp` with `verifier` for `origin`, then checks
// that the unsigned size and root_hash fields say what the note signs.
// Codes as OpenCheckpoint; DATA_LOSS when the fields disagree with the note.
absl::StatusOr<Checkpoint> VerifyCheckpoint(const v1::Checkpoint& cp, const NoteVerifier& verifier,
                                            absl::string_view origin);

// Checks that `record` is the leaf `proof` speaks of: record.seq == proof.seq,
// SHA-256(0x00 || record.leaf) equals proof.leaf_hash and record.leaf_hash,
// the leaf decodes to the record's seq, stream, version and event id, and
// record.payload opens the leaf's payload commitment. DATA_LOSS naming what
// differs (got, want).
absl::Status CheckRecordMatchesProof(const v1::Record& record, const v1::InclusionProof& proof);

// Verifies `proof` for the record against the signed `cp`. Codes as
// VerifyInclusion, plus DATA_LOSS for a malformed hash.
absl::Status CheckInclusion(const v1::InclusionProof& proof, const Checkpoint& cp);

// Verifies that `to` extends `from` by `proof`. Codes as VerifyConsistency.
absl::Status CheckConsistency(const v1::ConsistencyProof& proof, const Checkpoint& from,
                              const Checkpoint& to);

}  // namespace caseledger::ledgerctl

#endif  // CASELEDGER_TOOLS_LEDGERCTL_LEDGERCTL_LIB_H_
