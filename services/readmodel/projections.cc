#include "services/readmodel/projections.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "services/readmodel/case_state_rows.h"
#include "ledger/internal/status_macros.h"
#include "services/policy/policy.h"

namespace caseledger {
namespace {

constexpr char kClientPrefix[] = "client/";
constexpr char kDisclosurePrefix[] = "disclosure/";

std::string DisclosureKey(const std::string& case_id, const std::string& disclosure_id) {
  // Ids hold no control bytes, so 0x00 separates them unambiguously.
  return absl::StrCat(kDisclosurePrefix, case_id, std::string(1, '\0'), disclosure_id);
}

// The prefix of a client's rows (PROJECTIONS.md "Accounting rows").
std::string ClientRowsPrefix(const std::string& client_id) {
  return absl::StrCat(kClientPrefix, client_id, std::string(1, '\0'));
}

absl::Time CommitTime(const v1::Record& r) {
  return absl::FromUnixSeconds(r.commit_time().seconds()) +
         absl::Nanoseconds(r.commit_time().nanos());
}

}  // namespace

// True when `key` (within the projection) is a row of case `case_id`: its
// header (the id itself) or one of its items (the id, 0x00, ...).
bool IsRowOf(absl::string_view key, absl::string_view case_id) {
  return absl::StartsWith(key, case_id) &&
         (key.size() == case_id.size() || key[case_id.size()] == '\0');
}

absl::StatusOr<CaseStateProjection::Dirty*> CaseStateProjection::State(const std::string& case_id,
                                                                      ProjectionTxn& txn) {
  auto it = dirty_.find(case_id);
  if (it != dirty_.end()) return &it->second;
  auto [cached, added] = cache_.try_emplace(case_id);
  bool fresh = false;
  if (!added) {
    // In memory (a case forgotten by this chunk is not: Forget drops it).
  } else if (forgotten_.count(case_id) > 0) {
    // Its stored rows are deleted by this chunk (the store still has them).
    fresh = true;
  } else if (cache_complete_) {
    // The store holds no case the cache does not: a new case.
    fresh = true;
  } else {
    // Not in memory: its rows as stored (a chunk's own writes are all in
    // dirty_, so the store is current for a case not in it).
    CaseRowsDecoder decoder;
    absl::Status bad;
    absl::Status scanned =
        txn.ScanStored(case_id, [&](absl::string_view key, absl::string_view value) {
          if (!IsRowOf(key, case_id)) return false;
          bad = decoder.Add(key.substr(case_id.size()), value);
          return bad.ok();
        });
    if (scanned.ok()) scanned = bad;
    absl::StatusOr<CaseState> stored = decoder.Finish();
    if (scanned.ok() && !stored.ok() && stored.status().code() != absl::StatusCode::kNotFound) {
      scanned = stored.status();
    }
    if (!scanned.ok()) {
      cache_.erase(cached);
      return scanned;
    }
    if (stored.ok()) {
      cached->second = *std::move(stored);
    } else {
      fresh = true;  // no rows
    }
  }
  return &dirty_.emplace(case_id, Dirty{&cached->second, {}, fresh}).first->second;
}

absl::Status CaseStateProjection::Apply(const v1::Record& record, ProjectionTxn& txn) {
  // Streams named "@..." are the server's own (the access log), not cases.
  if (!record.stream_id().empty() && record.stream_id()[0] == '@') return absl::OkStatus();
  CL_ASSIGN_OR_RETURN(Dirty * d, State(record.stream_id(), txn));
  if (d->fresh) {
    // Every row is written at Flush: nothing to note.
    return ApplyEvent(record.event(), record.seq(), CommitTime(record), d->state);
  }
  const std::vector<std::string> keys = ItemKeysOf(record.event());
  CaseState& state = *d->state;
  const CaseItems before = ItemsPresent(keys, state);
  const std::vector<size_t> sizes = CollectionSizes(state);
  NoteBefore(before, state, &d->touched);
  CL_RETURN_IF_ERROR(ApplyEvent(record.event(), record.seq(), CommitTime(record), &state));
  NoteAfter(record.event(), ItemsAdded(keys, before, sizes, state), state, &d->touched);
  return absl::OkStatus();
}

absl::Status CaseStateProjection::Forget(const std::set<std::string>& streams,
                                         ProjectionTxn& txn) {
  for (const std::string& case_id : streams) {
    dirty_.erase(case_id);
    cache_.erase(case_id);
    forgotten_.insert(case_id);
    CL_RETURN_IF_ERROR(txn.ScanStored(case_id, [&](absl::string_view key, absl::string_view) {
      if (!IsRowOf(key, case_id)) return false;
      txn.Delete(std::string(key));
      return true;
    }));
  }
  return absl::OkStatus();
}

absl::Status CaseStateProjection::Flush(ProjectionTxn& txn) {
  for (auto& [case_id, d] : dirty_) {
    CaseRows rows;
    if (d.fresh) {
      AddAllRows(*d.state, &rows);
    } else {
      AddTouchedRows(d.touched, *d.state, &rows);
    }
    for (auto& [row, value] : rows) {
      if (value.has_value()) {
        txn.Put(case_id + row, *std::move(value));
      } else {
        txn.Delete(case_id + row);
      }
    }
  }
  // Kept in memory for the next chunks, up to kMaxCachedCases (the ones
  // this chunk changed first).
  if (cache_.size() > kMaxCachedCases) {
    for (auto i = cache_.begin(); i != cache_.end();) {
      if (dirty_.contains(i->first)) {
        ++i;
      } else {
        cache_.erase(i++);
      }
    }
    cache_complete_ = false;
  }
  dirty_.clear();
  forgotten_.clear();
  return absl::OkStatus();
}

void CaseStateProjection::Clear() {
  dirty_.clear();
  forgotten_.clear();
  cache_complete_ = true;  // the store is empty
  cache_.clear();
}

absl::Status CaseStateProjection::ScanCases(
    const Projector& projector, const CaseStateProjection& projection, const std::string& from,
    const std::function<bool(const CaseState&)>& fn) {
  std::optional<CaseRowsDecoder> decoder;
  std::string current;
  absl::Status bad;
  bool more = true;
  auto finish = [&]() -> bool {
    if (!decoder.has_value()) return true;
    absl::StatusOr<CaseState> state = decoder->Finish();
    decoder.reset();
    if (!state.ok()) {
      bad = state.status();
      return false;
    }
    more = fn(*state);
    return more;
  };
  CL_RETURN_IF_ERROR(projector.Scan(
      projection, "",
      [&](absl::string_view key, absl::string_view value) {
        size_t sep = key.find('\0');
        if (sep == absl::string_view::npos) {  // a header: the next case
          if (!finish()) return false;
          current = std::string(key);
          decoder.emplace();
          bad = decoder->Add("", value);
          return bad.ok();
        }
        if (!decoder.has_value() || key.substr(0, sep) != current) return true;  // before `from`
        bad = decoder->Add(key.substr(sep), value);
        return bad.ok();
      },
      from));
  CL_RETURN_IF_ERROR(bad);
  if (more) finish();
  return bad;
}

absl::StatusOr<CaseState> CaseStateProjection::Load(const Projector& projector,
                                                    const CaseStateProjection& projection,
                                                    const std::string& case_id) {
  auto not_found = [&] {
    return absl::NotFoundError(absl::StrCat("case_id: no case \"", case_id, "\" (as of seq ",
                                            projector.position(), ")"));
  };
  // A point read of the header first: a case without rows (a new one, as
  // the append gate often asks) costs no iterator. The rows, header
  // included, are then read in one scan, which sees one version of them.
  absl::StatusOr<std::string> header = projector.Get(projection, case_id);
  if (header.status().code() == absl::StatusCode::kNotFound) return not_found();
  if (!header.ok()) return header.status();
  CaseRowsDecoder decoder;
  absl::Status bad;
  CL_RETURN_IF_ERROR(
      projector.Scan(projection, case_id, [&](absl::string_view key, absl::string_view value) {
        if (!IsRowOf(key, case_id)) return false;
        bad = decoder.Add(key.substr(case_id.size()), value);
        return bad.ok();
      }));
  CL_RETURN_IF_ERROR(bad);
  absl::StatusOr<CaseState> state = decoder.Finish();
  if (state.status().code() == absl::StatusCode::kNotFound) return not_found();
  return state;
}

absl::StatusOr<CaseState> ProjectedCaseStates::Committed(const std::string& case_id) const {
  CaseState state;
  CL_RETURN_IF_ERROR(projector_->ReadWithUnapplied(
      case_id, wait_,
      [&]() -> absl::Status {
        absl::StatusOr<CaseState> stored = CaseStateProjection::Load(*projector_, *cases_, case_id);
        if (stored.status().code() == absl::StatusCode::kNotFound) {
          state = CaseState();
          return absl::OkStatus();
        }
        if (!stored.ok()) return stored.status();
        state = *std::move(stored);
        return absl::OkStatus();
      },
      [&](const v1::Record& record) -> absl::Status {
        if (state.version > 0 && record.seq() <= state.last_seq) return absl::OkStatus();
        return ApplyEvent(record.event(), record.seq(), CommitTime(record), &state);
      }));
  return state;
}

absl::Status CaseStateProjection::CheckErasure(const Projector& projector,
                                               const CaseStateProjection& projection,
                                               const std::string& subject_id) {
  absl::Status held;
  CL_RETURN_IF_ERROR(ScanCases(projector, projection, "", [&](const CaseState& state) {
    held = caseledger::CheckErasure(state, subject_id);
    return held.ok();
  }));
  return held;
}

absl::StatusOr<AccountingProjection::Dirty*> AccountingProjection::Client(
    const std::string& client_id, ProjectionTxn& txn) {
  auto it = dirty_.find(client_id);
  if (it != dirty_.end()) return &it->second;
  Dirty d;
  if (auto cached = cache_.find(client_id); cached != cache_.end()) {
    d.accounting = std::move(cached->second);
    cache_.erase(cached);
  } else if (!cache_complete_) {
    // Its rows as stored (a chunk's own writes are all in dirty_).
    const std::string prefix = ClientRowsPrefix(client_id);
    absl::Status bad;
    CL_RETURN_IF_ERROR(txn.ScanStored(prefix, [&](absl::string_view key, absl::string_view value) {
      bad = d.accounting.AddRow(client_id, key.substr(prefix.size()), value);
      return bad.ok();
    }));
    CL_RETURN_IF_ERROR(bad);
  }
  return &dirty_.emplace(client_id, std::move(d)).first->second;
}

void AccountingProjection::Touch(const std::string& client_id,
                                 const std::vector<std::string>& rows, Dirty* d) {
  for (const std::string& row : rows) {
    auto [it, added] = d->touched.try_emplace(row);
    if (added) it->second = d->accounting.Row(client_id, row);
  }
}

absl::Status AccountingProjection::Apply(const v1::Record& record, ProjectionTxn& txn) {
  const v1::Event& e = record.event();
  std::string client_id;
  if (e.has_disclosure_made()) {
    client_id = e.disclosure_made().client_id();
    txn.Put(DisclosureKey(e.stream_id(), e.disclosure_made().disclosure_id()), client_id);
  } else if (e.has_client_informed()) {
    absl::StatusOr<std::string> owner =
        txn.Get(DisclosureKey(e.stream_id(), e.client_informed().disclosure_id()));
    if (owner.status().code() == absl::StatusCode::kNotFound) return absl::OkStatus();
    if (!owner.ok()) return owner.status();
    client_id = *owner;
  } else if (e.has_accounting_suspended()) {
    client_id = e.accounting_suspended().client_id();
  } else {
    return absl::OkStatus();
  }
  CL_ASSIGN_OR_RETURN(Dirty * d, Client(client_id, txn));
  Touch(client_id, d->accounting.RowsTouchedBy(e, record.seq(), client_id), d);
  return d->accounting.Apply(e, record.seq());
}

absl::Status AccountingProjection::Forget(const std::set<std::string>& streams,
                                          ProjectionTxn& txn) {
  // The clients are read from the index, which was derived while the
  // records still opened: an erased disclosure_made no longer names its
  // client, and one whose client was erased projects under client "".
  std::set<std::string> clients{""};
  for (const std::string& case_id : streams) {
    const std::string prefix = DisclosureKey(case_id, "");
    CL_RETURN_IF_ERROR(txn.ScanStored(prefix, [&](absl::string_view key, absl::string_view client) {
      txn.Delete(std::string(key));
      clients.insert(std::string(client));
      return true;
    }));
  }
  for (const std::string& client_id : clients) {
    CL_ASSIGN_OR_RETURN(Dirty * d, Client(client_id, txn));
    Touch(client_id, d->accounting.RowsOfCases(client_id, streams), d);
    d->accounting.ForgetCases(streams);
  }
  return absl::OkStatus();
}

absl::Status AccountingProjection::Flush(ProjectionTxn& txn) {
  for (auto& [client_id, d] : dirty_) {
    const std::string prefix = ClientRowsPrefix(client_id);
    for (auto& [row, stored] : d.touched) {
      std::optional<std::string> now = d.accounting.Row(client_id, row);
      if (now == stored) continue;
      if (now.has_value()) {
        txn.Put(prefix + row, *std::move(now));
      } else {
        txn.Delete(prefix + row);
      }
    }
  }
  // Kept in memory for the next chunks, up to kMaxCachedClients.
  if (cache_.size() + dirty_.size() > kMaxCachedClients) {
    cache_.clear();
    cache_complete_ = false;
  }
  for (auto& [client_id, d] : dirty_) {
    // An empty client has no rows: a client not cached is read as empty.
    if (!d.accounting.empty()) cache_[client_id] = std::move(d.accounting);
  }
  dirty_.clear();
  return absl::OkStatus();
}

void AccountingProjection::Clear() {
  dirty_.clear();
  cache_.clear();
  cache_complete_ = true;  // the store is empty
}

absl::StatusOr<DisclosureAccounting> AccountingProjection::Load(
    const Projector& projector, const AccountingProjection& projection,
    const std::string& client_id) {
  const std::string prefix = ClientRowsPrefix(client_id);
  DisclosureAccounting accounting;
  absl::Status bad;
  CL_RETURN_IF_ERROR(
      projector.Scan(projection, prefix, [&](absl::string_view key, absl::string_view value) {
        bad = accounting.AddRow(client_id, key.substr(prefix.size()), value);
        return bad.ok();
      }));
  CL_RETURN_IF_ERROR(bad);
  return accounting;
}

}  // namespace caseledger
