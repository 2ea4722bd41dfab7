#include "ledger/chain_verifier.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "ledger/record.h"

namespace caseledger {

ChainVerifier::ChainVerifier(ChainVerifierOptions options) : options_(std::move(options)) {
  if (options_.max_failures == 0) options_.max_failures = 1;
  if (options_.start.has_value()) {
    tree_ = options_.start->tree;
    next_seq_ = tree_.size();
    last_leaf_hash_ = options_.start->prev_leaf_hash;
  }
}

void ChainVerifier::ExpectCheckpoint(uint64_t stored_size, std::string note) {
  checkpoints_[stored_size] = std::move(note);
  if (stored_size == 0) CheckCheckpointsAt(0);
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
  ++checkpoints_checked_;
  std::string where = absl::StrCat("checkpoint at size ", size);
  // A checkpoint names the seq just past the records it covers; report the
  // last covered record so "first bad seq" stays a record.
  uint64_t seq = size == 0 ? 0 : size - 1;
  if (options_.note_verifier == nullptr) {
    Fail(seq, where + ": no verifier key to check its signature");
    return;
  }
  absl::StatusOr<Checkpoint> cp = OpenCheckpoint(it->second, *options_.note_verifier,
                                                 options_.origin);
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
  }
}

void ChainVerifier::AddRecord(uint64_t key_seq, absl::string_view leaf,
                              std::optional<absl::string_view> payload,
                              std::optional<Hash> stored_leaf_node) {
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
    auto stream = stream_next_.find(record->stream_id);
    if (stream == stream_next_.end()) {
      stream = stream_next_
                   .emplace(std::string(record->stream_id.data(), record->stream_id.size()),
                            // Mid-log, a stream's first record sets the baseline.
                            options_.start.has_value() ? record->version : 0)
                   .first;
    }
    uint64_t& next_version = stream->second;
    if (record->version != next_version) {
      Fail(key_seq, absl::StrCat("record ", key_seq, ": stream \"", record->stream_id,
                                 "\" version ", record->version, ", want ", next_version));
    }
    next_version = record->version + 1;
    if (!payload.has_value()) {
      Fail(key_seq, absl::StrCat("record ", key_seq, ": payload is missing"));
    } else {
      absl::StatusOr<PayloadView> p = DecodePayloadView(*payload);
      absl::Status s = p.ok() ? CheckPayloadCommitment(*p, record->payload_commitment)
                              : p.status();
      if (s.ok() && p->key_id.empty()) s = CheckPlaintextOpenings(*p);
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

absl::Status ChainVerifier::Finish(uint64_t claimed_size) {
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
