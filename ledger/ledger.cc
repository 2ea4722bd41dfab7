#include "ledger/ledger.h"

#include <openssl/rand.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "ledger/internal/status_macros.h"

namespace caseledger {

// One Append or AppendBatch call (or a forced checkpoint), waiting in the queue.
struct Ledger::Pending {
  std::vector<AppendRequest> requests;
  std::vector<CommittedPayload> payloads;  // prepared by the caller's thread
  // EncodePayload of each payload (sealed when the cipher is on), also by the
  // caller's thread; the committer moves them into the batch.
  std::vector<std::string> encoded_payloads;
  // Per request: key-table writes to commit with its record (PayloadCipher).
  std::vector<std::vector<KeyWrite>> key_writes;
  // SubjectKey of each request's subject ids, also hashed by the caller's
  // thread: the committer is the throughput bottleneck.
  std::vector<std::vector<Hash>> subject_keys;
  // Format 2 only, per request: the stream's salt and each subject's.
  std::vector<Hash> stream_salts;
  std::vector<std::vector<Hash>> subject_salts;
  // Per request, for the commit feed: the plaintext openings of a payload
  // the cipher sealed (empty otherwise), and PayloadCipher::erasures()
  // before sealing.
  std::vector<std::string> plain_openings;
  uint64_t erasures = 0;
  bool force_checkpoint = false;
  size_t events() const { return requests.size(); }
  // Set for asynchronous appends: called once done, then the Pending is freed.
  AppendCallback callback;

  // Written by the committer, read by the caller once `done`.
  std::vector<AppendResult> results;
  absl::Status status;
  bool done = false;  // guarded by Ledger::mu_
};

// The group commit being assembled by the committer thread.
struct Ledger::Group {
  CommitBatch batch;
  MerkleTree tree;
  Hash last_leaf_hash{};
  int64_t commit_time_micros = 0;
  // Keyed by views into the requests of the Pendings the group takes, which
  // stay put (their ids are never moved out) until the group is done: no
  // copies per event.
  // Next version of every stream this group appends to.
  absl::flat_hash_map<absl::string_view, uint64_t> stream_next;
  // Event ids appended by this group: id -> (stream, result).
  absl::flat_hash_map<absl::string_view, std::pair<absl::string_view, AppendResult>> event_ids;
  // State after this group of every subject it touches.
  absl::flat_hash_map<Hash, SubjectState> subjects;
  // For the commit feed (only when it has listeners): the records sequenced
  // so far, leaf and payload filled in from `batch` once durable.
  bool feeding = false;
  std::shared_ptr<CommittedBatch> feed;
};

namespace {

std::string Where(const std::vector<AppendRequest>& requests, size_t i) {
  return requests.size() > 1 ? absl::StrCat("requests[", i, "]: ") : std::string();
}

absl::Status Prefixed(const absl::Status& s, absl::string_view prefix) {
  if (s.ok() || prefix.empty()) return s;
  return absl::Status(s.code(), absl::StrCat(prefix, s.message()));
}

// The body (signed text) of a signed note: everything through the line
// before the first blank line.
absl::string_view NoteBody(absl::string_view note) {
  size_t pos = note.find("\n\n");
  return pos == absl::string_view::npos ? note : note.substr(0, pos + 1);
}

}  // namespace

Ledger::Ledger(LedgerOptions options, std::unique_ptr<LogStore> store)
    : options_(std::move(options)),
      clock_(options_.clock != nullptr ? *options_.clock : Clock::Real()),
      store_(std::move(store)) {}

absl::StatusOr<std::unique_ptr<Ledger>> Ledger::Open(LedgerOptions options,
                                                     std::unique_ptr<LogStore> store) {
  if (store == nullptr) return absl::InvalidArgumentError("store: must not be null");
  if (options.signer == nullptr) return absl::InvalidArgumentError("signer: must not be null");
  if (options.origin.empty()) return absl::InvalidArgumentError("origin: must not be empty");
  if (options.max_group_events == 0 || options.max_batch_events == 0) {
    return absl::InvalidArgumentError("max_group_events and max_batch_events: must be positive");
  }
  std::unique_ptr<Ledger> ledger(new Ledger(std::move(options), std::move(store)));
  CL_RETURN_IF_ERROR(ledger->Recover());
  ledger->committer_ = std::thread([l = ledger.get()] { l->CommitterLoop(); });
  return ledger;
}

absl::Status Ledger::Recover() {
  CL_ASSIGN_OR_RETURN(uint64_t size, store_->Size());
  CL_ASSIGN_OR_RETURN(MerkleTree tree, MerkleTree::Load(size, *store_));
  if (size > 0) {
    absl::StatusOr<std::string> leaf = store_->GetLeaf(size - 1);
    if (!leaf.ok()) {
      return absl::DataLossError(absl::StrCat("tree size is ", size, " but record ", size - 1,
                                              " cannot be read: ", leaf.status().message()));
    }
    CL_ASSIGN_OR_RETURN(Record last, DecodeRecord(*leaf));
    if (last.format_version != record_format()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "data directory holds record format ", last.format_version, " (",
          last.format_version == kRecordFormatBlinded ? "identifiers blinded" : "identifiers in clear",
          "); this ledger writes format ", record_format(),
          ". A data directory keeps one format (ledger/FORMAT.md \"Versions and migration\"): ",
          record_format() == kRecordFormatBlinded
              ? "start the server with --record_format=1 to keep serving it, or start a new "
                "data directory for blinded records"
              : "format 2 needs the key store (a master key) to open its identifiers"));
    }
    if (last.seq != size - 1) {
      return absl::DataLossError(absl::StrCat("record ", size - 1, ": holds seq ", last.seq));
    }
    last_leaf_hash_ = LeafHash(*leaf);
    CL_ASSIGN_OR_RETURN(Hash stored, store_->GetNode(0, size - 1));
    if (stored != last_leaf_hash_) {
      return absl::DataLossError(absl::StrCat("record ", size - 1, ": leaf hash ",
                                              ShortHex(last_leaf_hash_), ", stored node ",
                                              ShortHex(stored)));
    }
  }
  CL_ASSIGN_OR_RETURN(std::optional<StoredCheckpoint> latest, store_->LatestCheckpoint());
  if (latest.has_value()) {
    CL_ASSIGN_OR_RETURN(struct Checkpoint cp, ParseCheckpointBody(NoteBody(latest->note)));
    if (cp.size != latest->size || cp.size > size) {
      return absl::DataLossError(absl::StrCat("latest checkpoint is for size ", cp.size,
                                              " (stored under ", latest->size,
                                              ") but the tree has ", size, " records"));
    }
    CL_ASSIGN_OR_RETURN(Hash root, caseledger::RootAt(cp.size, *store_));
    if (root != cp.root) {
      return absl::DataLossError(absl::StrCat("checkpoint at size ", cp.size, ": root ",
                                              ShortHex(cp.root), ", stored tree gives ",
                                              ShortHex(root)));
    }
    last_checkpoint_size_ = cp.size;
  }
  CL_RETURN_IF_ERROR(RecoverSubjects(latest, size));
  last_checkpoint_time_ = clock_.Now();
  absl::MutexLock lock(&mu_);
  tree_ = std::move(tree);
  return absl::OkStatus();
}

absl::Status Ledger::RecoverSubjects(const std::optional<StoredCheckpoint>& latest,
                                     uint64_t size) {
  // Reads the root node only (after migrating a layout-1 store once).
  CL_ASSIGN_OR_RETURN(StoredSubjectMap map,
                      StoredSubjectMap::Open(store_.get(), SubjectMapStoreOptions{
                                                               options_.subject_map_cache_bytes}));
  const Hash root = map.Root();
  if (latest.has_value()) {
    CL_ASSIGN_OR_RETURN(struct Checkpoint cp, ParseCheckpointBody(NoteBody(latest->note)));
    CL_ASSIGN_OR_RETURN(std::optional<Hash> want, SubjectRootFromExtensions(cp.extensions));
    if (!want.has_value()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "checkpoint at size ", cp.size,
          " has no \"subjects\" line: the data directory predates the per-subject index "
          "(ledger/SUBJECT_INDEX.md)"));
    }
    if (*want != root) {
      return absl::DataLossError(absl::StrCat("checkpoint at size ", cp.size, ": subjects root ",
                                              ShortHex(*want), ", stored subject map gives ",
                                              ShortHex(root)));
    }
  } else if (root != EmptySubjectMapRoot()) {
    return absl::DataLossError(absl::StrCat("the stored subject map has root ", ShortHex(root),
                                            " but no checkpoint is stored"));
  }
  // The subjects of the records after the checkpoint (at most one
  // checkpoint interval of them) are due in the next map update.
  const uint64_t from = latest.has_value() ? latest->size : 0;
  absl::Status scanned;
  CL_RETURN_IF_ERROR(store_->ScanRecords(from, [&](const LogStore::ScannedRecord& r) {
    if (r.key_seq >= size) return false;
    absl::StatusOr<LeafView> leaf = DecodeLeafView(r.leaf);
    if (leaf.ok()) {
      scanned = ForEachSubjectKey(*leaf, [this](const Hash& key) { pending_subjects_.insert(key); });
    } else {
      scanned = leaf.status();
    }
    if (!scanned.ok()) {
      scanned = absl::DataLossError(absl::StrCat("record ", r.key_seq, ": ", scanned.message()));
    }
    return scanned.ok();
  }));
  CL_RETURN_IF_ERROR(scanned);
  absl::MutexLock lock(&map_mu_);
  map_ = std::move(map);
  published_ = latest;
  return absl::OkStatus();
}

Ledger::~Ledger() { Close(); }

void Ledger::Close() {
  {
    absl::MutexLock lock(&mu_);
    closing_ = true;
  }
  if (committer_.joinable()) committer_.join();
}

absl::StatusOr<AppendResult> Ledger::Append(AppendRequest request) {
  std::vector<AppendRequest> one;
  one.push_back(std::move(request));
  CL_ASSIGN_OR_RETURN(std::vector<AppendResult> results, AppendBatch(std::move(one)));
  return results[0];
}

absl::Status Ledger::Prepare(std::vector<AppendRequest> requests, Pending* pending) const {
  if (requests.empty()) return absl::InvalidArgumentError("requests: must not be empty");
  if (requests.size() > options_.max_batch_events) {
    return absl::InvalidArgumentError(absl::StrCat("requests: got ", requests.size(),
                                                   " events, want at most ",
                                                   options_.max_batch_events));
  }
  size_t fields = 0;
  for (size_t i = 0; i < requests.size(); ++i) {
    CL_RETURN_IF_ERROR(Prefixed(ValidateEvent(requests[i].event), Where(requests, i)));
    fields += requests[i].event.fields.size();
  }
  // All salts of the call from one RAND_bytes: per-call overhead dominates
  // for 32-byte requests.
  SaltSource salts = options_.salt_source;
  std::vector<Hash> random;
  if (!salts) {
    random.resize(fields);
    if (fields > 0 &&
        RAND_bytes(random[0].data(), static_cast<int>(fields * kHashSize)) != 1) {
      return absl::InternalError("RAND_bytes failed: no randomness for payload salts");
    }
    salts = [&random, next = size_t{0}]() mutable { return random[next++]; };
  }
  pending->payloads.reserve(requests.size());
  pending->subject_keys.reserve(requests.size());
  for (const AppendRequest& r : requests) {
    pending->payloads.push_back(CommitFields(r.event.fields, salts));
    std::vector<Hash>& keys = pending->subject_keys.emplace_back();
    keys.reserve(r.event.subject_ids.size());
    if (options_.blinder == nullptr) {
      for (const std::string& id : r.event.subject_ids) keys.push_back(SubjectKey(id));
      continue;
    }
    // Salts are created here, on the caller's thread, before the record is
    // queued (Blinder::SaltFor); the map key of a subject is its tag.
    CL_ASSIGN_OR_RETURN(Hash stream_salt,
                        options_.blinder->SaltFor(BlindKind::kStream, r.event.stream_id));
    pending->stream_salts.push_back(stream_salt);
    std::vector<Hash>& salts = pending->subject_salts.emplace_back();
    for (const std::string& id : r.event.subject_ids) {
      CL_ASSIGN_OR_RETURN(Hash salt, options_.blinder->SaltFor(BlindKind::kSubject, id));
      salts.push_back(salt);
      keys.push_back(BlindTag(BlindKind::kSubject, salt, id));
    }
  }
  if (options_.cipher != nullptr) {
    // Sealed here, on the caller's thread, so the committer never sees
    // plaintext openings and encryption runs in parallel across appenders.
    pending->key_writes.resize(requests.size());
    pending->plain_openings.resize(requests.size());
    pending->erasures = options_.cipher->erasures();
    for (size_t i = 0; i < requests.size(); ++i) {
      // Kept for the commit feed, whose consumers would otherwise decrypt
      // what was just encrypted. Never stored.
      std::string plain = pending->payloads[i].payload.sealed_openings;
      CL_RETURN_IF_ERROR(Prefixed(
          options_.cipher->Seal(requests[i].event, &pending->payloads[i], &pending->key_writes[i]),
          Where(requests, i)));
      if (!pending->payloads[i].payload.key_id.empty()) {
        pending->plain_openings[i] = std::move(plain);
      }
    }
  }
  pending->encoded_payloads.reserve(requests.size());
  for (const CommittedPayload& p : pending->payloads) {
    pending->encoded_payloads.push_back(EncodePayload(p.payload));
  }
  pending->requests = std::move(requests);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<AppendResult>> Ledger::AppendBatch(
    std::vector<AppendRequest> requests) {
  Pending pending;
  CL_RETURN_IF_ERROR(Prepare(std::move(requests), &pending));
  CL_RETURN_IF_ERROR(Submit(&pending));
  return std::move(pending.results);
}

void Ledger::AppendBatchAsync(std::vector<AppendRequest> requests, AppendCallback done) {
  auto pending = std::make_unique<Pending>();
  absl::Status s = Prepare(std::move(requests), pending.get());
  if (s.ok()) {
    pending->callback = std::move(done);
    s = Enqueue(pending.get());
    if (s.ok()) {
      pending.release();  // the committer owns it now
      return;
    }
    done = std::move(pending->callback);
  }
  done(s);
}

absl::StatusOr<StoredCheckpoint> Ledger::Checkpoint() {
  Pending pending;
  pending.force_checkpoint = true;
  CL_RETURN_IF_ERROR(Submit(&pending));
  CL_ASSIGN_OR_RETURN(std::optional<StoredCheckpoint> latest, store_->LatestCheckpoint());
  if (!latest.has_value()) {
    return absl::FailedPreconditionError("checkpoint: the ledger is empty");
  }
  return *std::move(latest);
}

absl::Status Ledger::Enqueue(Pending* pending) {
  absl::MutexLock lock(&mu_);
  if (closing_) return absl::UnavailableError("ledger is closing");
  if (!failed_.ok()) {
    return absl::UnavailableError(absl::StrCat("ledger stopped after a failed write: ",
                                               failed_.message()));
  }
  queue_.push_back(pending);
  return absl::OkStatus();
}

absl::Status Ledger::Submit(Pending* pending) {
  CL_RETURN_IF_ERROR(Enqueue(pending));
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(&pending->done));
  return pending->status;
}

uint64_t Ledger::Size() const {
  absl::MutexLock lock(&mu_);
  return tree_.size();
}

Hash Ledger::Root() const {
  absl::MutexLock lock(&mu_);
  return tree_.Root();
}

absl::StatusOr<Hash> Ledger::RootAt(uint64_t size) const {
  uint64_t committed = Size();
  if (size > committed) {
    return absl::InvalidArgumentError(
        absl::StrCat("tree_size: got ", size, ", want at most the tree size ", committed));
  }
  return caseledger::RootAt(size, *store_);
}

absl::StatusOr<RecordView> Ledger::Read(uint64_t seq) const {
  uint64_t committed = Size();
  if (seq >= committed) {
    return absl::NotFoundError(
        absl::StrCat("seq: got ", seq, ", want less than the tree size ", committed));
  }
  RecordView view;
  CL_ASSIGN_OR_RETURN(view.leaf, store_->GetLeaf(seq));
  CL_ASSIGN_OR_RETURN(view.record, DecodeStored(view.leaf));
  view.leaf_hash = LeafHash(view.leaf);
  CL_ASSIGN_OR_RETURN(view.payload, store_->GetPayload(seq));
  CL_RETURN_IF_ERROR(OpenPayload(&view));
  return view;
}

absl::StatusOr<std::vector<RecordView>> Ledger::ReadMany(absl::Span<const uint64_t> seqs) const {
  uint64_t committed = Size();
  for (size_t i = 0; i < seqs.size(); ++i) {
    if (seqs[i] >= committed) {
      return absl::NotFoundError(
          absl::StrCat("seq: got ", seqs[i], ", want less than the tree size ", committed));
    }
    if (i > 0 && seqs[i] <= seqs[i - 1]) {
      return absl::InvalidArgumentError(absl::StrCat(
          "seqs[", i, "]: got ", seqs[i], ", want more than seqs[", i - 1, "] ", seqs[i - 1]));
    }
  }
  std::vector<std::string> leaves, payloads;
  CL_RETURN_IF_ERROR(store_->GetRecords(seqs, &leaves, &payloads));
  std::vector<RecordView> views(seqs.size());
  for (size_t i = 0; i < seqs.size(); ++i) {
    RecordView& view = views[i];
    view.leaf = std::move(leaves[i]);
    CL_ASSIGN_OR_RETURN(view.record, DecodeStored(view.leaf));
    view.leaf_hash = LeafHash(view.leaf);
    view.payload = std::move(payloads[i]);
    CL_RETURN_IF_ERROR(OpenPayload(&view));
  }
  return views;
}

bool Ledger::OpeningsCurrent(const CommittedBatch& batch) const {
  return options_.cipher == nullptr || options_.cipher->erasures() == batch.erasures;
}

absl::Status Ledger::Reopen(RecordView* view) const {
  if (!view->openings.has_value()) return absl::OkStatus();  // plaintext payload
  view->openings.reset();
  view->erased = false;
  return OpenPayload(view);
}

absl::Status Ledger::OpenPayload(RecordView* view) const {
  if (options_.cipher == nullptr) return absl::OkStatus();
  // A payload that does not decode is returned as it is: readers report it
  // (DATA_LOSS) exactly as without encryption.
  absl::StatusOr<PayloadView> p = DecodePayloadView(view->payload);
  if (!p.ok() || p->key_id.empty()) return absl::OkStatus();
  absl::StatusOr<std::string> openings = options_.cipher->OpenOpenings(
      p->key_id, p->sealed_openings, view->record.payload_commitment);
  if (openings.ok()) {
    view->openings = *std::move(openings);
  } else if (absl::IsNotFound(openings.status())) {
    view->erased = true;
  } else {
    return absl::Status(openings.status().code(), absl::StrCat("record ", view->record.seq,
                                                               ": ", openings.status().message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::vector<Hash>>> Ledger::InclusionProofs(
    absl::Span<const uint64_t> seqs, uint64_t tree_size) const {
  uint64_t committed = Size();
  if (tree_size > committed) {
    return absl::InvalidArgumentError(
        absl::StrCat("tree_size: got ", tree_size, ", want at most the tree size ", committed));
  }
  return caseledger::InclusionProofs(seqs, tree_size, *store_);
}

absl::StatusOr<std::vector<Hash>> Ledger::InclusionProof(uint64_t seq, uint64_t tree_size) const {
  uint64_t committed = Size();
  if (tree_size > committed) {
    return absl::InvalidArgumentError(
        absl::StrCat("tree_size: got ", tree_size, ", want at most the tree size ", committed));
  }
  return caseledger::InclusionProof(seq, tree_size, *store_);
}

absl::StatusOr<std::vector<Hash>> Ledger::ConsistencyProof(uint64_t from_size,
                                                           uint64_t to_size) const {
  uint64_t committed = Size();
  if (to_size > committed) {
    return absl::InvalidArgumentError(
        absl::StrCat("to_size: got ", to_size, ", want at most the tree size ", committed));
  }
  return caseledger::ConsistencyProof(from_size, to_size, *store_);
}

uint64_t Ledger::AddCommitListener(CommitListener listener) {
  absl::MutexLock lock(&listeners_mu_);
  listeners_[next_listener_] = std::move(listener);
  return next_listener_++;
}

void Ledger::RemoveCommitListener(uint64_t handle) {
  absl::MutexLock lock(&listeners_mu_);
  listeners_.erase(handle);
}

absl::StatusOr<SubjectHistory> Ledger::History(absl::string_view subject_id) const {
  if (subject_id.empty() || subject_id.size() > kMaxIdBytes) {
    return absl::InvalidArgumentError(absl::StrCat("subject_id: got ", subject_id.size(),
                                                   " bytes, want 1 to ", kMaxIdBytes));
  }
  SubjectHistory h;
  absl::StatusOr<Hash> key = SubjectMapKey(subject_id);
  if (key.ok()) {
    h.subject_key = *key;
    if (options_.blinder != nullptr) {
      CL_ASSIGN_OR_RETURN(h.blinding_salt, BlindingSalt(BlindKind::kSubject, subject_id));
    }
  } else if (absl::IsNotFound(key.status())) {
    // No salt (never named, or erased): the map holds no tag of this id, and
    // the proof of absence is for the format-1 key (SUBJECT_INDEX.md).
    h.subject_key = SubjectKey(subject_id);
  } else {
    return key.status();
  }
  {
    absl::MutexLock lock(&map_mu_);
    if (!published_.has_value()) {
      return absl::FailedPreconditionError("history: no checkpoint has been signed yet");
    }
    h.checkpoint = *published_;
    CL_ASSIGN_OR_RETURN(h.proof, map_.Prove(h.subject_key));
    if (h.proof.leaf.has_value() && h.proof.leaf->key == h.subject_key) {
      h.state = h.proof.leaf->state;
    }
  }
  h.seqs.reserve(h.state.count);
  absl::Status bad;
  CL_RETURN_IF_ERROR(store_->ScanSubject(h.subject_key, 0, [&](uint64_t index, uint64_t seq) {
    if (h.seqs.size() == h.state.count) return false;
    if (index != h.seqs.size() || seq >= h.checkpoint.size ||
        (!h.seqs.empty() && seq <= h.seqs.back())) {
      bad = absl::DataLossError(absl::StrCat("subject index of ", ShortHex(h.subject_key),
                                             ": entry ", index, " -> seq ", seq,
                                             " is out of order or beyond checkpoint size ",
                                             h.checkpoint.size));
      return false;
    }
    h.seqs.push_back(seq);
    return true;
  }));
  CL_RETURN_IF_ERROR(bad);
  if (h.seqs.size() != h.state.count) {
    return absl::DataLossError(absl::StrCat("subject index of ", ShortHex(h.subject_key), ": ",
                                            h.seqs.size(), " entries stored, the map says ",
                                            h.state.count));
  }
  return h;
}

absl::StatusOr<PublishedTransition> Ledger::SubjectTransitionTo(uint64_t from_size) const {
  for (int attempt = 0; attempt < 3; ++attempt) {
    PublishedTransition out;
    {
      absl::MutexLock lock(&map_mu_);
      if (!published_.has_value()) {
        return absl::FailedPreconditionError(
            "subject transition: no checkpoint has been signed yet");
      }
      out.checkpoint = *published_;
    }
    const uint64_t to_size = out.checkpoint.size;
    if (from_size > to_size) {
      return absl::InvalidArgumentError(absl::StrCat(
          "from_size: got ", from_size, ", want at most the latest checkpoint's size ", to_size));
    }
    SubjectTransition& t = out.transition;
    t.from_size = from_size;
    t.records.reserve(to_size - from_size);
    absl::Status bad;
    if (to_size > from_size) {
      CL_RETURN_IF_ERROR(store_->ScanRecords(from_size, [&](const LogStore::ScannedRecord& r) {
        if (r.key_seq >= to_size) return false;
        if (r.key_seq != from_size + t.records.size()) {
          bad = absl::DataLossError(absl::StrCat("subject transition: record ",
                                                 from_size + t.records.size(),
                                                 " is missing from the store"));
          return false;
        }
        t.records.emplace_back(r.leaf);
        return true;
      }));
    }
    CL_RETURN_IF_ERROR(bad);
    if (t.records.size() != to_size - from_size) {
      return absl::DataLossError(absl::StrCat("subject transition: the store holds ",
                                              t.records.size(), " records in [", from_size, ", ",
                                              to_size, ")"));
    }
    CL_ASSIGN_OR_RETURN(MerkleTree old_tree, MerkleTree::Load(from_size, *store_));
    t.old_range = old_tree.Frontier();
    absl::StatusOr<absl::flat_hash_map<Hash, uint64_t>> steps = CountSubjectSteps(t.records);
    if (!steps.ok()) {
      return absl::DataLossError(
          absl::StrCat("subject transition: stored record: ", steps.status().message()));
    }
    absl::flat_hash_map<Hash, SubjectState> old_states;
    old_states.reserve(steps->size());
    std::vector<PrunedMapNode> pruned;
    {
      absl::MutexLock lock(&map_mu_);
      if (!published_.has_value() || published_->size != to_size) continue;  // a newer one
      t.claims.reserve(steps->size());
      for (const auto& [key, k] : *steps) {
        CL_ASSIGN_OR_RETURN(std::optional<SubjectState> now, map_.Get(key));
        if (!now.has_value() || now->count < k) {
          return absl::DataLossError(absl::StrCat("subject transition: subject ", ShortHex(key),
                                                  " is named by ", k, " records in [", from_size,
                                                  ", ", to_size, ") but has count ",
                                                  now.has_value() ? now->count : 0, " in the map"));
        }
        old_states[key] = SubjectState{now->count - k, Hash{}};
        t.claims.push_back({key, *now});
      }
      CL_ASSIGN_OR_RETURN(pruned, map_.PrunedOld(old_states));
    }
    std::sort(t.claims.begin(), t.claims.end(),
              [](const SubjectClaim& a, const SubjectClaim& b) { return a.key < b.key; });
    // The old heads: entry old_count - 1 of each subject that existed at
    // from_size. Entries never change, so no lock is needed.
    for (PrunedMapNode& node : pruned) {
      if (node.kind != PrunedMapNode::Kind::kLeaf) continue;
      auto it = old_states.find(node.key);
      if (it == old_states.end()) continue;
      CL_ASSIGN_OR_RETURN(LogStore::SubjectEntryValue e,
                          store_->GetSubjectEntry(node.key, it->second.count - 1));
      if (e.seq >= from_size) {
        return absl::DataLossError(absl::StrCat("subject transition: entry ", it->second.count - 1,
                                                " of subject ", ShortHex(node.key), " is record ",
                                                e.seq, ", want one below ", from_size));
      }
      node.state.head = e.head;
    }
    t.old_map = EncodePrunedMap(pruned);
    return out;
  }
  return absl::UnavailableError("subject transition: new checkpoints kept arriving; try again");
}

absl::Status Ledger::LoadSubjects(const std::vector<Hash>& keys) {
  for (const Hash& key : keys) {
    if (subject_cache_.contains(key)) continue;
    CL_ASSIGN_OR_RETURN(SubjectState state, store_->GetSubjectHead(key));
    subject_cache_.emplace(key, state);
  }
  return absl::OkStatus();
}

void Ledger::IndexSubjects(const std::vector<Hash>& keys, uint64_t seq, const Hash& leaf_hash,
                           Group& group) {
  for (const Hash& key : keys) {
    auto [it, inserted] = group.subjects.try_emplace(key);
    // LoadSubjects put every subject of a sequenced event in the cache.
    if (inserted) it->second = subject_cache_.at(key);
    it->second = SubjectChainAppend(it->second, seq, leaf_hash);
    group.batch.subject_entries.push_back({key, it->second.count - 1, seq, it->second.head});
  }
}

absl::StatusOr<Record> Ledger::DecodeStored(absl::string_view leaf) const {
  CL_ASSIGN_OR_RETURN(Record r, DecodeRecord(leaf));
  if (r.format_version == kRecordFormatBlinded) {
    if (options_.blinder == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat("record ", r.seq, ": format 2 (blinded) but this ledger has no blinder"));
    }
    CL_RETURN_IF_ERROR(OpenBlindedRecord(*options_.blinder, &r));
  }
  return r;
}

absl::StatusOr<Hash> Ledger::SubjectMapKey(absl::string_view subject_id) const {
  if (options_.blinder == nullptr) return SubjectKey(subject_id);
  CL_ASSIGN_OR_RETURN(Hash salt, options_.blinder->FindSalt(BlindKind::kSubject, subject_id));
  return BlindTag(BlindKind::kSubject, salt, subject_id);
}

absl::StatusOr<Hash> Ledger::BlindingSalt(BlindKind kind, absl::string_view id) const {
  if (options_.blinder == nullptr) {
    return absl::NotFoundError("record format 1: identifiers are not blinded");
  }
  return options_.blinder->FindSalt(kind, id);
}

absl::StatusOr<AppendResult> Ledger::ResultOf(uint64_t seq) const {
  CL_ASSIGN_OR_RETURN(std::string leaf, store_->GetLeaf(seq));
  CL_ASSIGN_OR_RETURN(Record r, DecodeRecord(leaf));
  return AppendResult{seq, r.version, LeafHash(leaf), true};
}

absl::StatusOr<uint64_t> Ledger::StreamLength(absl::string_view stream_id, const Group& group) {
  if (auto it = group.stream_next.find(stream_id); it != group.stream_next.end()) {
    return it->second;
  }
  if (auto it = stream_lengths_.find(stream_id); it != stream_lengths_.end()) return it->second;
  CL_ASSIGN_OR_RETURN(uint64_t n, store_->StreamLength(stream_id));
  if (stream_lengths_.size() >= (1u << 20)) stream_lengths_.clear();
  stream_lengths_.emplace(stream_id, n);
  return n;
}

absl::Status Ledger::Sequence(Pending& p, Group& group) {
  // First decide every request without touching `group`, so that a failure
  // leaves the group as it was (all or nothing per call).
  struct Planned {
    size_t index;
    uint64_t version;
  };
  std::vector<Planned> planned;
  planned.reserve(p.requests.size());
  // Keyed by views into p.requests, which outlive this call: no copies.
  absl::flat_hash_map<absl::string_view, uint64_t> local_next;
  absl::flat_hash_map<absl::string_view, size_t> local_ids;  // id -> request index
  local_ids.reserve(p.requests.size());
  p.results.assign(p.requests.size(), AppendResult{});
  std::vector<bool> is_new(p.requests.size(), false);
  std::vector<int64_t> duplicate_of_local(p.requests.size(), -1);

  for (size_t i = 0; i < p.requests.size(); ++i) {
    const Event& e = p.requests[i].event;
    // Built only for an error: the common path allocates nothing per event.
    auto where = [&] { return Where(p.requests, i); };
    // Names neither the other stream nor the position: a producer must not
    // learn of a case it may not see from an id it guessed.
    auto reused_in = [&] {
      return absl::AlreadyExistsError(
          absl::StrCat(where(), "event_id \"", e.event_id,
                       "\" is already taken by an event of another stream; a retry repeats its "
                       "stream_id, a new event needs a new event_id"));
    };
    if (auto it = local_ids.find(e.event_id); it != local_ids.end()) {
      if (p.requests[it->second].event.stream_id != e.stream_id) {
        return absl::InvalidArgumentError(absl::StrCat(where(), "event_id \"", e.event_id,
                                                       "\" repeats requests[", it->second,
                                                       "] with another stream_id"));
      }
      duplicate_of_local[i] = static_cast<int64_t>(it->second);
      continue;
    }
    if (auto it = group.event_ids.find(e.event_id); it != group.event_ids.end()) {
      if (it->second.first != e.stream_id) return reused_in();
      p.results[i] = it->second.second;
      p.results[i].duplicate = true;
      continue;
    }
    CL_ASSIGN_OR_RETURN(std::optional<uint64_t> seen, store_->FindEventId(e.event_id));
    if (seen.has_value()) {
      CL_ASSIGN_OR_RETURN(std::string leaf, store_->GetLeaf(*seen));
      CL_ASSIGN_OR_RETURN(Record r, DecodeStored(leaf));
      if (r.stream_id != e.stream_id) return reused_in();
      p.results[i] = AppendResult{*seen, r.version, LeafHash(leaf), true};
      continue;
    }
    uint64_t next;
    if (auto it = local_next.find(e.stream_id); it != local_next.end()) {
      next = it->second;
    } else {
      CL_ASSIGN_OR_RETURN(next, StreamLength(e.stream_id, group));
    }
    const std::optional<uint64_t>& want = p.requests[i].expected_version;
    if (want.has_value() && *want != next) {
      return absl::AbortedError(absl::StrCat(where(), "stream \"", e.stream_id,
                                             "\": expected_version ", *want,
                                             ", but the stream's next version is ", next));
    }
    CL_RETURN_IF_ERROR(LoadSubjects(p.subject_keys[i]));
    local_next[e.stream_id] = next + 1;
    local_ids[e.event_id] = i;
    is_new[i] = true;
    planned.push_back({i, next});
  }

  // Commit the plan into the group.
  for (const Planned& pl : planned) {
    const Event& e = p.requests[pl.index].event;
    const CommittedPayload& payload = p.payloads[pl.index];
    Record r;
    r.seq = group.tree.size();
    r.prev_hash = group.last_leaf_hash;
    r.commit_time_micros = group.commit_time_micros;
    r.stream_id = e.stream_id;
    r.version = pl.version;
    r.event_id = e.event_id;
    r.occurred_at_micros = e.occurred_at_micros;
    // The request is done with these (its ids stay: the group's maps below
    // and the stored record need them).
    r.producer = std::move(p.requests[pl.index].event.producer);
    r.event_type = std::move(p.requests[pl.index].event.event_type);
    r.subject_ids = std::move(p.requests[pl.index].event.subject_ids);
    r.payload_commitment = payload.commitment;
    if (options_.blinder != nullptr) {
      BlindRecord(p.stream_salts[pl.index], p.subject_salts[pl.index], &r);
    }
    CommitBatch::StoredRecord& stored = group.batch.records.emplace_back();
    stored.seq = r.seq;
    stored.leaf = EncodeRecord(r);
    stored.payload = std::move(p.encoded_payloads[pl.index]);
    stored.version = pl.version;
    if (group.feeding) {
      stored.stream_id = r.stream_id;
      stored.event_id = r.event_id;
    } else {  // r is done with once encoded
      stored.stream_id = std::move(r.stream_id);
      stored.event_id = std::move(r.event_id);
    }
    Hash leaf_hash = LeafHash(stored.leaf);
    group.tree.Append(leaf_hash, &group.batch.nodes);
    group.last_leaf_hash = leaf_hash;
    IndexSubjects(p.subject_keys[pl.index], r.seq, leaf_hash, group);
    AppendResult result{r.seq, pl.version, leaf_hash, false};
    p.results[pl.index] = result;
    group.event_ids[e.event_id] = {e.stream_id, result};
    group.stream_next[e.stream_id] = pl.version + 1;
    if (group.feeding) {
      RecordView& view = group.feed->records.emplace_back();
      view.leaf_hash = leaf_hash;
      if (!p.plain_openings.empty() && !payload.payload.key_id.empty()) {
        view.openings = std::move(p.plain_openings[pl.index]);
      }
      view.record = std::move(r);
      group.feed->erasures = std::min(group.feed->erasures, p.erasures);
    }
    if (!p.key_writes.empty()) {
      for (KeyWrite& w : p.key_writes[pl.index]) group.batch.key_writes.push_back(std::move(w));
    }
  }
  for (size_t i = 0; i < p.requests.size(); ++i) {
    if (duplicate_of_local[i] >= 0) {
      p.results[i] = p.results[duplicate_of_local[i]];
      p.results[i].duplicate = true;
    }
  }
  return absl::OkStatus();
}

absl::Status Ledger::UpdateSubjectMap(Group& group) {
  for (const auto& [key, state] : group.subjects) CL_RETURN_IF_ERROR(map_.Set(key, state));
  for (const Hash& key : pending_subjects_) {
    if (group.subjects.contains(key)) continue;
    if (auto it = subject_cache_.find(key); it != subject_cache_.end()) {
      CL_RETURN_IF_ERROR(map_.Set(key, it->second));
      continue;
    }
    // Touched before a restart and not read since.
    CL_ASSIGN_OR_RETURN(SubjectState state, store_->GetSubjectHead(key));
    CL_RETURN_IF_ERROR(map_.Set(key, state));
  }
  // Only the nodes on the changed paths.
  group.batch.subject_map_nodes = map_.TakeWrites();
  return absl::OkStatus();
}

bool Ledger::CheckpointDue(uint64_t size, absl::Time now) const {
  if (size <= last_checkpoint_size_) return false;
  return size - last_checkpoint_size_ >= options_.checkpoint_every_records ||
         now - last_checkpoint_time_ >= options_.checkpoint_interval;
}

absl::StatusOr<std::string> Ledger::SignCheckpoint(uint64_t size, const Hash& root,
                                                   const Hash& subjects_root) const {
  struct Checkpoint cp;
  cp.origin = options_.origin;
  cp.size = size;
  cp.root = root;
  cp.extensions.push_back(SubjectsExtensionLine(subjects_root));
  return caseledger::SignCheckpoint(cp, *options_.signer);
}

void Ledger::CommitterLoop() {
  for (;;) {
    std::vector<Pending*> taken;
    MerkleTree tree;
    size_t events = 0;  // in `taken`
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return !queue_.empty() || closing_;
      };
      // Without records to checkpoint, wake only for appends (or at worst
      // hourly); with some, also when the checkpoint interval ends.
      absl::Time deadline = clock_.Now() + absl::Hours(1);
      if (tree_.size() > last_checkpoint_size_) {
        deadline = last_checkpoint_time_ + options_.checkpoint_interval;
      }
      clock_.AwaitUntil(&mu_, absl::Condition(&ready), deadline);
      if (closing_ && queue_.empty()) return;
      events = 0;
      while (!queue_.empty() &&
             (taken.empty() || events + queue_.front()->events() <= options_.max_group_events)) {
        events += queue_.front()->events();
        taken.push_back(queue_.front());
        queue_.pop_front();
      }
      tree = tree_;
    }

    absl::Time now = clock_.Now();
    const absl::Time started = absl::Now();  // wall time, for on_group_commit
    // Only between groups: every Group relies on its subjects staying cached.
    if (subject_cache_.size() >= (1u << 18)) subject_cache_.clear();
    Group group;
    // Sized once for the events taken, instead of growing event by event.
    group.batch.records.reserve(events);
    group.batch.nodes.reserve(2 * events + 64);
    group.batch.subject_entries.reserve(events);
    group.event_ids.reserve(events);
    group.stream_next.reserve(events);
    group.subjects.reserve(events);
    group.tree = std::move(tree);
    group.last_leaf_hash = last_leaf_hash_;
    group.commit_time_micros = absl::ToUnixMicros(now);
    {
      absl::MutexLock lock(&listeners_mu_);
      group.feeding = !listeners_.empty();
    }
    if (group.feeding) {
      group.feed = std::make_shared<CommittedBatch>();
      group.feed->records.reserve(events);
      group.feed->first_seq = group.tree.size();
      group.feed->commit_time_micros = group.commit_time_micros;
      group.feed->erasures = options_.cipher != nullptr ? options_.cipher->erasures() : 0;
    }
    bool force = false;
    for (Pending* p : taken) {
      if (p->force_checkpoint) {
        force = true;
        continue;
      }
      p->status = Sequence(*p, group);
    }
    uint64_t size = group.tree.size();
    absl::Status status;
    bool checkpoint = size > last_checkpoint_size_ && (force || CheckpointDue(size, now));
    // Held from updating the map until the checkpoint that commits to it is
    // durable and published, so History never pairs a map with another
    // checkpoint. Readers wait at most one synced write.
    std::optional<absl::MutexLock> map_lock;
    if (checkpoint) {
      map_lock.emplace(&map_mu_);
      status = UpdateSubjectMap(group);
      if (status.ok()) {
        absl::StatusOr<std::string> note = SignCheckpoint(size, group.tree.Root(), map_.Root());
        if (note.ok()) {
          group.batch.checkpoints.emplace_back(size, *std::move(note));
        } else {
          status = note.status();
        }
      }
    }
    if (status.ok() && (!group.batch.records.empty() || !group.batch.checkpoints.empty())) {
      group.batch.new_size = size;
      const absl::Time write_start = absl::Now();
      status = store_->Commit(group.batch);
      const absl::Time write_end = absl::Now();
      if (status.ok() && options_.on_group_commit) {
        options_.on_group_commit(GroupCommitStats{group.batch.records.size(), checkpoint,
                                                  write_end - started, write_end - write_start});
      }
    }
    if (status.ok() && options_.cipher != nullptr && !group.batch.key_writes.empty()) {
      options_.cipher->Committed(group.batch.key_writes);
    }
    if (status.ok()) {
      last_leaf_hash_ = group.last_leaf_hash;
      for (const auto& [stream, next] : group.stream_next) {
        if (auto it = stream_lengths_.find(stream); it != stream_lengths_.end()) {
          it->second = next;
        } else {
          stream_lengths_.emplace(stream, next);
        }
      }
      for (auto& [key, state] : group.subjects) {
        subject_cache_[key] = state;
        if (!checkpoint) pending_subjects_.insert(key);
      }
      if (checkpoint) {
        last_checkpoint_size_ = size;
        last_checkpoint_time_ = now;
        pending_subjects_.clear();
        published_ = StoredCheckpoint{size, group.batch.checkpoints.back().second};
      }
    }
    map_lock.reset();
    {
      absl::MutexLock lock(&mu_);
      if (status.ok()) {
        tree_ = std::move(group.tree);
      } else {
        // The store's state is unknown after a failed synced write: stop, and
        // fail everything queued rather than guess.
        failed_ = status;
        taken.insert(taken.end(), queue_.begin(), queue_.end());
        queue_.clear();
      }
    }
    // Listeners hear of a commit before any append in it is acknowledged, so
    // a caller that saw its append succeed knows every listener saw it too.
    if (status.ok() && group.feeding && !group.batch.records.empty()) {
      // The stored bytes move into the feed: the batch is done with.
      for (size_t i = 0; i < group.feed->records.size(); ++i) {
        group.feed->records[i].leaf = std::move(group.batch.records[i].leaf);
        group.feed->records[i].payload = std::move(group.batch.records[i].payload);
      }
      group.feed->new_size = size;
      std::shared_ptr<const CommittedBatch> batch = std::move(group.feed);
      absl::MutexLock lock(&listeners_mu_);
      for (auto& [handle, listener] : listeners_) listener(batch);
    }
    // Asynchronous appends, finished after the lock is released. Synchronous
    // ones may be destroyed by their waiter as soon as `done` is set, so they
    // are not touched after that.
    std::vector<std::unique_ptr<Pending>> async;
    {
      absl::MutexLock lock(&mu_);
      for (Pending* p : taken) {
        if (p->status.ok() && !status.ok()) {
          p->status = absl::UnavailableError(absl::StrCat("write failed: ", status.message()));
        }
        if (p->callback) {
          async.emplace_back(p);
        } else {
          p->done = true;
        }
      }
    }
    for (std::unique_ptr<Pending>& p : async) {
      if (p->status.ok()) {
        p->callback(std::move(p->results));
      } else {
        p->callback(p->status);
      }
    }
  }
}

}  // namespace caseledger
