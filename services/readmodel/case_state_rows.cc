#include "services/readmodel/case_state_rows.h"

#include <functional>
#include <memory>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "ledger/internal/status_macros.h"
#include "services/readmodel/case_state.pb.h"

namespace caseledger {
namespace {

namespace pv1 = ::caseledger::projection::v1;

// One keyed collection of CaseState: its row kind and the repeated field of
// CaseStateRecord its items are encoded as.
class Collection {
 public:
  Collection(const char* kind, const char* field) : kind_(kind), field_(field) {}
  virtual ~Collection() = default;
  const char* kind() const { return kind_; }
  const char* field() const { return field_; }
  virtual bool Has(const CaseState& s, const std::string& id) const = 0;
  // Puts the item (present) into the empty state *one.
  virtual void CopyItem(const CaseState& s, const std::string& id, CaseState* one) const = 0;
  virtual void ForEachId(const CaseState& s,
                         const std::function<void(const std::string&)>& fn) const = 0;
  // Moves the items of *one (a decoded single-item state) into *s.
  virtual void Merge(CaseState* one, const std::string& id, CaseState* s) const = 0;
  // Puts the item back as *s holds it now; erases it.
  virtual std::function<void(CaseState*)> Restorer(const CaseState& s,
                                                   const std::string& id) const = 0;
  virtual void Erase(const std::string& id, CaseState* s) const = 0;

 private:
  const char* kind_;
  const char* field_;
};

template <typename Map>
class MapCollection : public Collection {
 public:
  MapCollection(const char* kind, const char* field, Map CaseState::*member)
      : Collection(kind, field), member_(member) {}
  bool Has(const CaseState& s, const std::string& id) const override {
    return (s.*member_).count(id) > 0;
  }
  void CopyItem(const CaseState& s, const std::string& id, CaseState* one) const override {
    (one->*member_).emplace(id, (s.*member_).at(id));
  }
  void ForEachId(const CaseState& s,
                 const std::function<void(const std::string&)>& fn) const override {
    for (const auto& [id, item] : s.*member_) fn(id);
  }
  void Merge(CaseState* one, const std::string&, CaseState* s) const override {
    for (auto& [id, item] : one->*member_) (s->*member_)[id] = std::move(item);
  }
  std::function<void(CaseState*)> Restorer(const CaseState& s,
                                           const std::string& id) const override {
    return [member = member_, id, old = (s.*member_).at(id)](CaseState* t) {
      (t->*member)[id] = old;
    };
  }
  void Erase(const std::string& id, CaseState* s) const override { (s->*member_).erase(id); }

 private:
  Map CaseState::*member_;
};

class SetCollection : public Collection {
 public:
  SetCollection(const char* kind, std::set<std::string> CaseState::*member)
      : Collection(kind, nullptr), member_(member) {}
  bool Has(const CaseState& s, const std::string& id) const override {
    return (s.*member_).count(id) > 0;
  }
  void CopyItem(const CaseState&, const std::string&, CaseState*) const override {}
  void ForEachId(const CaseState& s,
                 const std::function<void(const std::string&)>& fn) const override {
    for (const std::string& id : s.*member_) fn(id);
  }
  void Merge(CaseState*, const std::string& id, CaseState* s) const override {
    (s->*member_).insert(id);
  }
  std::function<void(CaseState*)> Restorer(const CaseState&,
                                           const std::string& id) const override {
    return [member = member_, id](CaseState* t) { (t->*member).insert(id); };
  }
  void Erase(const std::string& id, CaseState* s) const override { (s->*member_).erase(id); }

 private:
  std::set<std::string> CaseState::*member_;
};

// The manager history, oldest first: item ids are the index as 16 hex digits.
class HistoryCollection : public Collection {
 public:
  HistoryCollection() : Collection("manager", "manager_history") {}
  static std::string Id(size_t i) { return absl::StrFormat("%016x", i); }
  static bool Index(const std::string& id, size_t* i) {
    uint64_t v;
    if (id.size() != 16 || !absl::SimpleHexAtoi(id, &v)) return false;
    *i = v;
    return true;
  }
  bool Has(const CaseState& s, const std::string& id) const override {
    size_t i;
    return Index(id, &i) && i < s.manager_history.size();
  }
  void CopyItem(const CaseState& s, const std::string& id, CaseState* one) const override {
    size_t i = 0;
    Index(id, &i);
    one->manager_history.push_back(s.manager_history[i]);
  }
  void ForEachId(const CaseState& s,
                 const std::function<void(const std::string&)>& fn) const override {
    for (size_t i = 0; i < s.manager_history.size(); ++i) fn(Id(i));
  }
  void Merge(CaseState* one, const std::string& id, CaseState* s) const override {
    size_t i = 0;
    Index(id, &i);
    if (s->manager_history.size() <= i) s->manager_history.resize(i + 1);
    s->manager_history[i] = std::move(one->manager_history[0]);
  }
  // The history only grows: CaseStateUndo restores its length.
  std::function<void(CaseState*)> Restorer(const CaseState&, const std::string&) const override {
    return [](CaseState*) {};
  }
  void Erase(const std::string&, CaseState*) const override {}
};

const std::vector<std::unique_ptr<Collection>>& Collections() {
  static const auto* all = [] {
    auto* v = new std::vector<std::unique_ptr<Collection>>;
    v->push_back(std::make_unique<MapCollection<decltype(CaseState::participants)>>(
        "participant", "participants", &CaseState::participants));
    v->push_back(std::make_unique<MapCollection<decltype(CaseState::consents)>>(
        "consent", "consents", &CaseState::consents));
    v->push_back(std::make_unique<MapCollection<decltype(CaseState::conflicts)>>(
        "conflict", "conflicts", &CaseState::conflicts));
    v->push_back(std::make_unique<MapCollection<decltype(CaseState::entries)>>(
        "entry", "entries", &CaseState::entries));
    v->push_back(std::make_unique<MapCollection<decltype(CaseState::access_requests)>>(
        "access", "access_requests", &CaseState::access_requests));
    v->push_back(std::make_unique<MapCollection<decltype(CaseState::pending_notices)>>(
        "notice", "pending_notices", &CaseState::pending_notices));
    v->push_back(std::make_unique<MapCollection<decltype(CaseState::accounting_requests)>>(
        "accounting", "accounting_requests", &CaseState::accounting_requests));
    v->push_back(std::make_unique<MapCollection<decltype(CaseState::amendment_requests)>>(
        "amendment", "amendment_requests", &CaseState::amendment_requests));
    v->push_back(std::make_unique<MapCollection<decltype(CaseState::legal_holds)>>(
        "hold", "legal_holds", &CaseState::legal_holds));
    v->push_back(std::make_unique<MapCollection<decltype(CaseState::accounting_suspensions)>>(
        "suspension", "accounting_suspensions", &CaseState::accounting_suspensions));
    v->push_back(std::make_unique<MapCollection<decltype(CaseState::part2_list_requests)>>(
        "part2list", "part2_list_requests", &CaseState::part2_list_requests));
    v->push_back(std::make_unique<SetCollection>("disclosure", &CaseState::disclosure_ids));
    v->push_back(std::make_unique<SetCollection>("subject", &CaseState::subject_ids));
    v->push_back(std::make_unique<HistoryCollection>());
    return v;
  }();
  return *all;
}

std::string ItemRowKey(const Collection& c, const std::string& id) {
  return absl::StrCat(std::string(1, '\0'), c.kind(), std::string(1, '\0'), id);
}

// The case's scalars (a state with every collection empty).
CaseState Header(const CaseState& s) {
  CaseState h;
  h.case_id = s.case_id;
  h.status = s.status;
  h.program = s.program;
  h.jurisdiction = s.jurisdiction;
  h.record_class = s.record_class;
  h.opened_at = s.opened_at;
  h.closed_at = s.closed_at;
  h.disposed_at = s.disposed_at;
  h.manager_id = s.manager_id;
  h.version = s.version;
  h.last_seq = s.last_seq;
  h.last_occurred_at = s.last_occurred_at;
  h.last_committed_at = s.last_committed_at;
  return h;
}

// The item's row value: its element of CaseStateRecord's repeated field
// (empty for a set's member, which is all in the key).
std::string EncodeItem(const Collection& c, const CaseState& s, const std::string& id) {
  if (c.field() == nullptr) return "";
  CaseState one;
  c.CopyItem(s, id, &one);
  pv1::CaseStateRecord r;
  r.ParseFromString(EncodeCaseState(one));
  const google::protobuf::FieldDescriptor* f = r.GetDescriptor()->FindFieldByName(c.field());
  return DeterministicBytes(r.GetReflection()->GetRepeatedMessage(r, f, 0));
}

void AddItemRow(const Collection& c, const CaseState& s, const std::string& id, CaseRows* rows) {
  if (c.Has(s, id)) {
    (*rows)[ItemRowKey(c, id)] = EncodeItem(c, s, id);
  } else {
    (*rows)[ItemRowKey(c, id)] = std::nullopt;
  }
}

}  // namespace

std::vector<std::string> ItemKeysOf(const v1::Event& e) {
  std::vector<std::string> keys(e.subject_ids().begin(), e.subject_ids().end());
  const google::protobuf::Reflection* r = e.GetReflection();
  const google::protobuf::OneofDescriptor* body = e.GetDescriptor()->FindOneofByName("body");
  const google::protobuf::FieldDescriptor* set = body ? r->GetOneofFieldDescriptor(e, body) : nullptr;
  if (set == nullptr || set->type() != google::protobuf::FieldDescriptor::TYPE_MESSAGE) return keys;
  const google::protobuf::Message& m = r->GetMessage(e, set);
  const google::protobuf::Reflection* mr = m.GetReflection();
  for (int i = 0; i < m.GetDescriptor()->field_count(); ++i) {
    const google::protobuf::FieldDescriptor* f = m.GetDescriptor()->field(i);
    if (f->is_repeated() || f->cpp_type() != google::protobuf::FieldDescriptor::CPPTYPE_STRING) {
      continue;
    }
    keys.push_back(mr->GetString(m, f));
  }
  return keys;
}

CaseItems ItemsPresent(const v1::Event& e, const CaseState& state) {
  CaseItems out;
  const std::vector<std::string> keys = ItemKeysOf(e);
  const auto& all = Collections();
  for (size_t c = 0; c < all.size(); ++c) {
    for (const std::string& id : keys) {
      if (all[c]->Has(state, id)) out.emplace_back(c, id);
    }
  }
  return out;
}

void NoteTouched(const v1::Event& e, const CaseItems& before, const CaseState& state,
                 TouchedItems* touched) {
  const auto& all = Collections();
  const std::vector<std::string> keys = ItemKeysOf(e);
  for (const auto& item : before) (*touched)[item] = true;
  for (size_t c = 0; c < all.size(); ++c) {
    if (std::string(all[c]->kind()) == "manager") {
      // Only an assignment or a transfer appends to the history.
      if ((e.has_case_manager_assigned() || e.has_case_transferred()) &&
          !state.manager_history.empty()) {
        (*touched)[{c, HistoryCollection::Id(state.manager_history.size() - 1)}] = true;
      }
      continue;
    }
    for (const std::string& id : keys) {
      if (all[c]->Has(state, id)) (*touched)[{c, id}] = true;
    }
  }
}

void AddTouchedRows(const TouchedItems& touched, const CaseState& state, CaseRows* rows) {
  (*rows)[""] = EncodeCaseState(Header(state));
  const auto& all = Collections();
  for (const auto& [item, stored] : touched) {
    const auto& [c, id] = item;
    if (all[c]->Has(state, id)) {
      AddItemRow(*all[c], state, id, rows);
    } else if (stored) {
      (*rows)[ItemRowKey(*all[c], id)] = std::nullopt;
    }
  }
}

std::function<void(CaseState*)> ItemRestorer(size_t c, const std::string& id,
                                             const CaseState& state) {
  return Collections()[c]->Restorer(state, id);
}

void EraseItem(size_t c, const std::string& id, CaseState* state) {
  Collections()[c]->Erase(id, state);
}

void AddAllRows(const CaseState& state, CaseRows* rows) {
  (*rows)[""] = EncodeCaseState(Header(state));
  for (const auto& c : Collections()) {
    c->ForEachId(state, [&](const std::string& id) { AddItemRow(*c, state, id, rows); });
  }
}

absl::Status CaseRowsDecoder::Add(absl::string_view row_key, absl::string_view value) {
  if (row_key.empty()) {
    CL_ASSIGN_OR_RETURN(CaseState header, DecodeCaseState(value));
    state_ = std::move(header);
    return absl::OkStatus();
  }
  if (!state_.has_value()) {
    return absl::InvalidArgumentError("case state: an item row before the case's header row");
  }
  // row_key: 0x00 kind 0x00 id
  size_t sep = row_key.find('\0', 1);
  if (row_key[0] != '\0' || sep == absl::string_view::npos) {
    return absl::InvalidArgumentError("case state: a row key that names no collection");
  }
  absl::string_view kind = row_key.substr(1, sep - 1);
  std::string id(row_key.substr(sep + 1));
  for (const auto& c : Collections()) {
    if (kind != c->kind()) continue;
    CaseState one;
    if (c->field() != nullptr) {
      pv1::CaseStateRecord r;
      r.set_format_version(1);
      const google::protobuf::FieldDescriptor* f = r.GetDescriptor()->FindFieldByName(c->field());
      google::protobuf::Message* item = r.GetReflection()->AddMessage(&r, f);
      if (!item->ParseFromArray(value.data(), static_cast<int>(value.size()))) {
        return absl::InvalidArgumentError(
            absl::StrCat("case state: ", kind, " row \"", id, "\" does not parse"));
      }
      CL_ASSIGN_OR_RETURN(one, DecodeCaseState(DeterministicBytes(r)));
    }
    c->Merge(&one, id, &*state_);
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat("case state: unknown row kind \"", kind, "\""));
}

absl::StatusOr<CaseState> CaseRowsDecoder::Finish() {
  if (!state_.has_value()) return absl::NotFoundError("case state: no header row");
  return *std::move(state_);
}

}  // namespace caseledger
