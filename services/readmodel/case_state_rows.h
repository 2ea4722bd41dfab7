// A case's state as rows (PROJECTIONS.md "case"): a header row with the
// case's scalars and one row per item of each collection (each entry,
// consent, disclosure id, ...), so that an event rewrites only the rows it
// touched, not the whole state.
#ifndef CASELEDGER_SERVICES_READMODEL_CASE_STATE_ROWS_H_
#define CASELEDGER_SERVICES_READMODEL_CASE_STATE_ROWS_H_

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "proto/events.pb.h"
#include "services/readmodel/case_state.h"

namespace caseledger {

// A row's key after the case id: "" for the header, or
// 0x00 <kind> 0x00 <item id> for an item (ids hold no control bytes).
// Values: nullopt deletes the row.
using CaseRows = std::map<std::string, std::optional<std::string>>;

// Every id an event can key a collection item by: the body's singular
// string fields named *_id (each body names its items by such an id:
// consent_id, request_id, entry_id, ...; its other strings are text) and the
// event's subjects, each once.
std::vector<std::string> ItemKeysOf(const v1::Event& e);

// The items `e` may touch that `state` holds (taken before folding `e`):
// (collection, id) pairs; `keys` is ItemKeysOf(e).
using CaseItems = std::vector<std::pair<size_t, std::string>>;
CaseItems ItemsPresent(const std::vector<std::string>& keys, const CaseState& state);
// The size of each collection of `state`, and the items keyed by one of
// `keys` that `state` holds and `before` (ItemsPresent) does not, looking
// only at collections whose size is not `sizes_before` or that lost an item
// of `before` (an event changes only items keyed by its ids).
std::vector<size_t> CollectionSizes(const CaseState& state);
// The number of items in all collections of `state` (the sum of CollectionSizes).
size_t ItemCount(const CaseState& state);
CaseItems ItemsAdded(const std::vector<std::string>& keys, const CaseItems& before,
                     const std::vector<size_t>& sizes_before, const CaseState& state);
// The items a chunk of events touched, each with the row value stored for
// it when the chunk began (nullopt: no row), so that a row the chunk left
// as it was is not written again.
using TouchedItems = std::map<std::pair<size_t, std::string>, std::optional<std::string>>;
// Before folding an event into `state`: notes each item of `before`
// (ItemsPresent) the chunk has not touched yet, with its row value now (as
// stored).
void NoteBefore(const CaseItems& before, const CaseState& state, TouchedItems* touched);
// After folding `e`: notes each item of `added` (ItemsAdded) the chunk has
// not touched yet (it had no row), and the manager history's new last item.
void NoteAfter(const v1::Event& e, const CaseItems& added, const CaseState& state,
               TouchedItems* touched);
// The row value of item (c, id) as `state` holds it; nullopt when it does
// not hold it.
std::optional<std::string> ItemRow(size_t c, const std::string& id, const CaseState& state);
// Adds to *rows the header of `state` and the rows of the touched items
// whose value is not the one noted: a row for each item it holds, a
// deletion for one it no longer holds.
void AddTouchedRows(const TouchedItems& touched, const CaseState& state, CaseRows* rows);
// For CaseStateUndo: a function that puts back item `id` of collection `c`
// (one of ItemsPresent's pairs) as `state` holds it now, and the erasure of
// an item.
std::function<void(CaseState*)> ItemRestorer(size_t c, const std::string& id,
                                             const CaseState& state);
void EraseItem(size_t c, const std::string& id, CaseState* state);
// Adds every row of `state` (a deletion for none).
void AddAllRows(const CaseState& state, CaseRows* rows);

// Decodes one case's rows, header first, then items in any order.
class CaseRowsDecoder {
 public:
  // INVALID_ARGUMENT for a row that does not decode or comes before the header.
  absl::Status Add(absl::string_view row_key, absl::string_view value);
  // FAILED_PRECONDITION... NOT_FOUND when no header was added.
  absl::StatusOr<CaseState> Finish();

 private:
  std::optional<CaseState> state_;
};

}  // namespace caseledger

#endif  // CASELEDGER_SERVICES_READMODEL_CASE_STATE_ROWS_H_
