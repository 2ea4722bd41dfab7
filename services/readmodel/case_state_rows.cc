#include "services/readmodel/case_state_rows.h"

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <memory>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/wire_format_lite.h"
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
  Collection(const char* kind, const char* field)
      : kind_(kind),
        field_(field),
        number_(field == nullptr ? 0
                                 : pv1::CaseStateRecord::descriptor()->FindFieldByName(field)->number()) {}
  virtual ~Collection() = default;
  const char* kind() const { return kind_; }
  const char* field() const { return field_; }
  // The field's number in CaseStateRecord (0 for a set).
  int number() const { return number_; }
  virtual bool Has(const CaseState& s, const std::string& id) const = 0;
  virtual size_t Size(const CaseState& s) const = 0;
  // The item's (present) row value (EncodeCaseItem; "" for a set's member).
  virtual std::string Encode(const CaseState& s, const std::string& id) const = 0;
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
  int number_;
};

template <typename Map>
class MapCollection : public Collection {
 public:
  MapCollection(const char* kind, const char* field, Map CaseState::*member)
      : Collection(kind, field), member_(member) {}
  bool Has(const CaseState& s, const std::string& id) const override {
    return (s.*member_).count(id) > 0;
  }
  size_t Size(const CaseState& s) const override { return (s.*member_).size(); }
  std::string Encode(const CaseState& s, const std::string& id) const override {
    return EncodeCaseItem((s.*member_).at(id));
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
  size_t Size(const CaseState& s) const override { return (s.*member_).size(); }
  std::string Encode(const CaseState&, const std::string&) const override { return ""; }
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
  size_t Size(const CaseState& s) const override { return s.manager_history.size(); }
  std::string Encode(const CaseState& s, const std::string& id) const override {
    size_t i = 0;
    Index(id, &i);
    return EncodeCaseItem(s.manager_history[i]);
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
    v->push_back(std::make_unique<HistoryCollection>());  // last (NoteAfter)
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
// (empty for a set's member, which is all in the key), as EncodeCaseState
// writes it (EncodeCaseItem).
std::string EncodeItem(const Collection& c, const CaseState& s, const std::string& id) {
  return c.Encode(s, id);
}

void AppendVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

// The encoding of a CaseStateRecord holding one item row's element (what
// EncodeItem cut out), for DecodeCaseState.
std::string WrapItem(const Collection& c, absl::string_view value) {
  using Wire = google::protobuf::internal::WireFormatLite;
  std::string out;
  out.reserve(value.size() + 16);
  AppendVarint(Wire::MakeTag(1, Wire::WIRETYPE_VARINT), &out);  // format_version
  AppendVarint(1, &out);
  AppendVarint(Wire::MakeTag(c.number(), Wire::WIRETYPE_LENGTH_DELIMITED), &out);
  AppendVarint(value.size(), &out);
  out.append(value.data(), value.size());
  return out;
}

}  // namespace

namespace {

// For each body of v1::Event (by field number): the field and the singular
// string fields of its message named *_id, looked up once.
struct BodyKeyFields {
  const google::protobuf::FieldDescriptor* body = nullptr;
  std::vector<const google::protobuf::FieldDescriptor*> strings;
};

const BodyKeyFields* KeyFieldsOf(int body_number) {
  static const auto* all = [] {
    auto* m = new std::map<int, BodyKeyFields>;
    const google::protobuf::OneofDescriptor* body =
        v1::Event::descriptor()->FindOneofByName("body");
    for (int i = 0; body != nullptr && i < body->field_count(); ++i) {
      const google::protobuf::FieldDescriptor* f = body->field(i);
      if (f->type() != google::protobuf::FieldDescriptor::TYPE_MESSAGE) continue;
      BodyKeyFields& k = (*m)[f->number()];
      k.body = f;
      const google::protobuf::Descriptor* d = f->message_type();
      for (int j = 0; j < d->field_count(); ++j) {
        const google::protobuf::FieldDescriptor* g = d->field(j);
        if (g->is_repeated() || g->cpp_type() != google::protobuf::FieldDescriptor::CPPTYPE_STRING ||
            !absl::EndsWith(g->name(), "_id")) {
          continue;
        }
        k.strings.push_back(g);
      }
    }
    return m;
  }();
  auto it = all->find(body_number);
  return it == all->end() ? nullptr : &it->second;
}

void AddKey(const std::string& key, std::vector<std::string>* keys) {
  if (std::find(keys->begin(), keys->end(), key) == keys->end()) keys->push_back(key);
}

}  // namespace

std::vector<std::string> ItemKeysOf(const v1::Event& e) {
  std::vector<std::string> keys;
  for (const std::string& s : e.subject_ids()) AddKey(s, &keys);
  const BodyKeyFields* fields = KeyFieldsOf(static_cast<int>(e.body_case()));
  if (fields == nullptr) return keys;
  const google::protobuf::Message& m = e.GetReflection()->GetMessage(e, fields->body);
  const google::protobuf::Reflection* mr = m.GetReflection();
  std::string scratch;
  for (const google::protobuf::FieldDescriptor* f : fields->strings) {
    AddKey(mr->GetStringReference(m, f, &scratch), &keys);
  }
  return keys;
}

CaseItems ItemsPresent(const std::vector<std::string>& keys, const CaseState& state) {
  CaseItems out;
  const auto& all = Collections();
  for (size_t c = 0; c < all.size(); ++c) {
    if (all[c]->Size(state) == 0) continue;  // most of a case's collections are empty
    for (const std::string& id : keys) {
      if (all[c]->Has(state, id)) out.emplace_back(c, id);
    }
  }
  return out;
}

std::vector<size_t> CollectionSizes(const CaseState& state) {
  std::vector<size_t> sizes;
  for (const auto& c : Collections()) sizes.push_back(c->Size(state));
  return sizes;
}

size_t ItemCount(const CaseState& state) {
  size_t n = 0;
  for (const auto& c : Collections()) n += c->Size(state);
  return n;
}

CaseItems ItemsAdded(const std::vector<std::string>& keys, const CaseItems& before,
                     const std::vector<size_t>& sizes_before, const CaseState& state) {
  const auto& all = Collections();
  std::vector<bool> look(all.size(), false);
  for (size_t c = 0; c < all.size(); ++c) look[c] = all[c]->Size(state) != sizes_before[c];
  for (const auto& [c, id] : before) {
    if (!all[c]->Has(state, id)) look[c] = true;  // one went: another may have come
  }
  CaseItems out;
  for (size_t c = 0; c < all.size(); ++c) {
    if (!look[c]) continue;
    for (const std::string& id : keys) {
      if (all[c]->Has(state, id) &&
          std::find(before.begin(), before.end(), std::make_pair(c, id)) == before.end()) {
        out.emplace_back(c, id);
      }
    }
  }
  return out;
}

std::optional<std::string> ItemRow(size_t c, const std::string& id, const CaseState& state) {
  const Collection& coll = *Collections()[c];
  if (!coll.Has(state, id)) return std::nullopt;
  return EncodeItem(coll, state, id);
}

void NoteBefore(const CaseItems& before, const CaseState& state, TouchedItems* touched) {
  for (const auto& item : before) {
    auto [it, added] = touched->try_emplace(item);
    if (added) it->second = EncodeItem(*Collections()[item.first], state, item.second);
  }
}

void NoteAfter(const v1::Event& e, const CaseItems& added, const CaseState& state,
               TouchedItems* touched) {
  for (const auto& item : added) touched->try_emplace(item);  // nullopt: no row before
  // Only an assignment or a transfer appends to the manager history.
  if ((e.has_case_manager_assigned() || e.has_case_transferred()) &&
      !state.manager_history.empty()) {
    touched->try_emplace(
        {Collections().size() - 1, HistoryCollection::Id(state.manager_history.size() - 1)});
  }
}

void AddTouchedRows(const TouchedItems& touched, const CaseState& state, CaseRows* rows) {
  (*rows)[""] = EncodeCaseState(Header(state));
  for (const auto& [item, stored] : touched) {
    const auto& [c, id] = item;
    std::optional<std::string> now = ItemRow(c, id, state);
    if (now != stored) (*rows)[ItemRowKey(*Collections()[c], id)] = std::move(now);
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
    c->ForEachId(state, [&](const std::string& id) {
      (*rows)[ItemRowKey(*c, id)] = EncodeItem(*c, state, id);
    });
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
      absl::StatusOr<CaseState> decoded = DecodeCaseState(WrapItem(*c, value));
      if (!decoded.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("case state: ", kind, " row \"", id,
                                                       "\" does not parse: ",
                                                       decoded.status().message()));
      }
      one = *std::move(decoded);
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
