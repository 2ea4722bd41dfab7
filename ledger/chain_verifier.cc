#include "ledger/chain_verifier.h"

#include <algorithm>
#include <utility>

#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "ledger/record.h"

namespace caseledger {

ChainVerifier::ChainVerifier(ChainVerifierOptions options) : options_(std::move(options)) {
  if (options_.max_failures == 0) options_.max_failures = 1;
}

void ChainVerifier::StartAt(const MerkleTree& tree, const Hash& prev_leaf_hash) {
  tree_ = tree;
  next_seq_ = tree.size();
  last_leaf_hash_ = prev_leaf_hash;
  partial_history_ = true;
}

void ChainVerifier::ExpectRecords(uint64_t records) {
  // 2^25 entries are 512 MiB at most; beyond that the vector grows.
  constexpr uint64_t kMaxReserve = uint64_t{1} << 25;
  if (options_.check_event_ids) event_ids_.reserve(std::min(records, kMaxReserve));
}

void ChainVerifier::ExpectCheckpoint(uint64_t stored_size, std::string note) {
  checkpoints_[stored_size] = std::move(note);
  if (!chain_broken_ && stored_size == tree_.size()) CheckCheckpointsAt(stored_size);
}

void ChainVerifier::Fail(uint64_t seq, std::string message) {
  ++failures_seen_;
  if (failures_.size() < options_.max_failures) {
    failures_.push_back({seq, absl::DataLossError(std::move(message))});
  }
}

void ChainVerifier::CheckCheckpointsAt(uint64_t size) {
  auto it = checkpoints_.find(size);
  if (it == checkpoints_.end()) return;
  // Checked once; dropping it keeps memory flat for a long bundle.
  std::string note = std::move(it->second);
  checkpoints_.erase(it);
  ++checkpoints_checked_;
  std::string where = absl::StrCat("checkpoint at size ", size);
  // A checkpoint names the seq just past the records it covers; report the
  // last covered record so "first bad seq" stays a record.
  uint64_t seq = size == 0 ? 0 : size - 1;
  if (options_.note_verifier == nullptr) {
    Fail(seq, where + ": no verifier key to check its signature");
    return;
  }
  absl::StatusOr<Checkpoint> cp = OpenCheckpoint(note, *options_.note_verifier, options_.origin);
  if (!cp.ok()) {
    Fail(seq, absl::StrCat(where, ": ", cp.status().message()));
    return;
  }
  if (cp->size != size) {
    Fail(seq, absl::StrCat(where, ": note says size ", cp->size));
    return;
  }
  Hash root = tree_.Root();
  if (cp->root != root) {
    Fail(seq, absl::StrCat(where, ": signed root ", ShortHex(cp->root),
                           ", records give root ", ShortHex(root)));
    return;
  }
  if (options_.observer != nullptr) {
    absl::Status s = options_.observer->OnCheckpoint(*cp);
    if (!s.ok()) Fail(seq, absl::StrCat(where, ": ", s.message()));
  }
  latest_checkpoint_ = *std::move(cp);
  latest_note_ = std::move(note);
}

void ChainVerifier::AddRecord(uint64_t key_seq, absl::string_view leaf,
                              std::optional<absl::string_view> payload,
                              std::optional<Hash> stored_leaf_node,
                              PayloadCheck payload_check) {
  ++records_;
  if (key_seq != next_seq_) {
    if (key_seq > next_seq_) {
      Fail(next_seq_, absl::StrCat("record ", next_seq_, " is missing (next stored record is ",
                                   key_seq, ")"));
    } else {
      Fail(key_seq, absl::StrCat("record ", key_seq, " appears out of order after ",
                                 next_seq_ - 1));
    }
    chain_broken_ = true;
    // Checkpoints past the gap cannot match; they are reported at Finish.
    next_seq_ = key_seq;
  }
  Hash leaf_hash = LeafHash(leaf);
  // Views, not copies: nothing here allocates for a well-formed record.
  absl::StatusOr<LeafView> record = DecodeLeafView(leaf);
  if (!record.ok()) {
    Fail(key_seq, absl::StrCat("record ", key_seq, ": ", record.status().message()));
  } else {
    if (record->seq != key_seq) {
      Fail(key_seq, absl::StrCat("record ", key_seq, ": holds seq ", record->seq));
    }
    if (!chain_broken_ && record->prev_hash != last_leaf_hash_) {
      Fail(key_seq, absl::StrCat("record ", key_seq, ": prev_hash ", ShortHex(record->prev_hash),
                                 ", want ", ShortHex(last_leaf_hash_), " (leaf hash of record ",
                                 key_seq == 0 ? std::string("none") : absl::StrCat(key_seq - 1),
                                 ")"));
    }
    // A format-2 record names its stream by tag: the versions of one tag
    // must follow each other as those of one stream id do.
    const bool blinded = record->format_version == kRecordFormatBlinded;
    const absl::string_view stream_key = blinded ? AsBytes(record->stream_tag) : record->stream_id;
    auto stream = stream_next_.find(stream_key);
    if (stream == stream_next_.end()) {
      // After StartAt a stream may have begun before the start: its first
      // version here is taken as given, and the rest must follow it.
      stream = stream_next_
                   .emplace(std::string(stream_key.data(), stream_key.size()),
                            partial_history_ ? record->version : 0)
                   .first;
    }
    uint64_t& next_version = stream->second;
    if (record->version != next_version) {
      Fail(key_seq, absl::StrCat("record ", key_seq, ": stream ",
                                 blinded ? absl::StrCat("tag ", ShortHex(record->stream_tag))
                                         : absl::StrCat("\"", record->stream_id, "\""),
                                 " version ", record->version, ", want ", next_version));
    }
    next_version = record->version + 1;
    // Event ids are boxed in format 2: without the stream salts their
    // uniqueness cannot be checked (the ledger checks it at append).
    if (options_.check_event_ids && !blinded) {
      event_ids_.emplace_back(absl::Hash<absl::string_view>()(record->event_id), key_seq);
    }
    if (options_.observer != nullptr) {
      absl::Status s = options_.observer->OnRecord(key_seq, *record, leaf_hash);
      if (!s.ok()) Fail(key_seq, absl::StrCat("record ", key_seq, ": ", s.message()));
    }
    if (!payload.has_value()) {
      Fail(key_seq, absl::StrCat("record ", key_seq, ": payload is missing"));
    } else {
      absl::StatusOr<PayloadView> p = DecodePayloadView(*payload);
      absl::Status s = p.ok() ? CheckPayloadCommitment(*p, record->payload_commitment)
                              : p.status();
      if (s.ok() && p->key_id.empty() && payload_check == PayloadCheck::kFull) {
        s = CheckPlaintextOpenings(*p);
      }
      if (!s.ok()) Fail(key_seq, absl::StrCat("record ", key_seq, ": ", s.message()));
    }
  }
  if (stored_leaf_node.has_value() && *stored_leaf_node != leaf_hash) {
    Fail(key_seq, absl::StrCat("record ", key_seq, ": leaf hash ", ShortHex(leaf_hash),
                               ", stored Merkle node ", ShortHex(*stored_leaf_node)));
  }
  last_leaf_hash_ = leaf_hash;
  ++next_seq_;
  if (!chain_broken_) {
    tree_.Append(leaf_hash, nullptr);
    CheckCheckpointsAt(tree_.size());
  }
}

void ChainVerifier::CheckEventIds() {
  std::sort(event_ids_.begin(), event_ids_.end());
  // Each repeat names the first record that used the id; in seq order.
  std::vector<std::pair<uint64_t, uint64_t>> repeats;  // (seq, first seq)
  for (size_t i = 1; i < event_ids_.size(); ++i) {
    size_t first = i - 1;
    while (i < event_ids_.size() && event_ids_[i].first == event_ids_[first].first) {
      repeats.emplace_back(event_ids_[i].second, event_ids_[first].second);
      ++i;
    }
  }
  event_ids_.clear();
  event_ids_.shrink_to_fit();
  std::sort(repeats.begin(), repeats.end());
  for (const auto& [seq, first] : repeats) {
    Fail(seq, absl::StrCat("record ", seq, ": its event id was already used by record ", first));
  }
}

absl::Status ChainVerifier::Finish(uint64_t claimed_size) {
  if (options_.check_event_ids) CheckEventIds();
  if (next_seq_ < claimed_size) {
    Fail(next_seq_, absl::StrCat("records end at seq ", next_seq_, " but the tree size is ",
                                 claimed_size, " (records ", next_seq_, "..", claimed_size - 1,
                                 " are missing)"));
  }
  uint64_t verified = chain_broken_ ? 0 : tree_.size();
  for (const auto& [size, note] : checkpoints_) {
    if (size > verified && size > 0) {
      Fail(std::min(size - 1, verified),
           absl::StrCat("checkpoint at size ", size, ": only ", verified,
                        " records verify before it"));
    }
  }
  if (failures_.empty()) return absl::OkStatus();
  const VerifyFailure& first = failures_.front();
  if (failures_seen_ == 1) return first.status;
  return absl::DataLossError(absl::StrCat(first.status.message(), " (and ", failures_seen_ - 1,
                                          " more failures)"));
}

}  // namespace caseledger
