// Converts between the wire contract's typed events (proto/events.proto) and
// the ledger's committed fields (ledger/FORMAT.md).
//
// Each top-level field of an event body becomes one committed payload field:
// its name is the proto field name, its value the field's records in the
// body's deterministic wire encoding, and it is flagged protected when the
// proto field carries (caseledger.v1.protected_detail). Concatenating the
// values of any subset of fields is a valid encoding of the body with just
// those fields, so a record can be rebuilt with some fields withheld.
#ifndef CASELEDGER_SERVICES_API_EVENT_CODEC_H_
#define CASELEDGER_SERVICES_API_EVENT_CODEC_H_

#include "absl/status/statusor.h"
#include "ledger/ledger.h"
#include "ledger/record.h"
#include "proto/events.pb.h"
#include "proto/ledger.pb.h"

namespace caseledger {

// INVALID_ARGUMENT naming the field (as "event.<path>") for an event the
// ledger cannot store: no body, unknown fields or enum values, a missing or
// out-of-range occurred_at, or anything ValidateEvent refuses.
absl::StatusOr<Event> ToLedgerEvent(const v1::Event& event);

// What a reader may see of a record.
enum class View {
  kFull,        // every field's opening
  kClientView,  // fields flagged protected are withheld
};

// Whether ToWireRecord checks the payload against its commitments.
enum class Origin {
  kStore,          // read back from the store: check every commitment
  kJustCommitted,  // from the ledger's commit feed (CommittedBatch), or its
                   // store read back by the projector: the bytes are the
                   // ones the ledger committed to; not re-hashed
};

// Rebuilds the wire Record from a stored one. DATA_LOSS when the stored bytes
// do not decode or (kStore) do not match their commitments.
absl::StatusOr<v1::Record> ToWireRecord(const RecordView& stored, View view = View::kFull,
                                        Origin origin = Origin::kStore);

// Cuts a wire Record down to what a reader without a grant gets (an auditor
// with commitments only, AUTHZ.md): the payload's commitments without
// openings, and no case id, event id, event or withheld-field names (the
// leaf keeps them blinded, ledger/BLINDING.md). DATA_LOSS when the stored
// payload does not decode.
absl::Status ToCommitmentsOnly(v1::Record* record);

}  // namespace caseledger

#endif  // CASELEDGER_SERVICES_API_EVENT_CODEC_H_
