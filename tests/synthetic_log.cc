#include "tests/synthetic_log.h"

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ledger/checkpoint.h"
#include "ledger/internal/status_macros.h"
#include "ledger/merkle_tree.h"
#include "ledger/record.h"
#include "ledger/subject_index.h"
#include "tests/test_util.h"

namespace caseledger::testing {

absl::Status WriteSyntheticBundle(const SyntheticLogOptions& options, uint64_t first_seq,
                                  BundlePayload mode, const BundleWriter::Sink& sink) {
  if (first_seq > options.records || (first_seq > 0 && !options.keep_nodes)) {
    return absl::InvalidArgumentError(
        "synthetic bundle: first_seq needs keep_nodes and <= records");
  }
  NoteSigner signer = TestNoteSigner();
  BundleHeader header;
  header.origin = kTestOrigin;
  header.verifier_key = signer.VerifierKey();
  header.first_seq = first_seq;
  header.end_seq = options.records;
  CL_ASSIGN_OR_RETURN(std::unique_ptr<BundleWriter> writer, BundleWriter::New(header, sink));

  std::vector<uint64_t> checkpoint_sizes;
  for (uint64_t s = options.checkpoint_every; s <= options.records; s += options.checkpoint_every) {
    checkpoint_sizes.push_back(s);
  }
  if (checkpoint_sizes.empty() || checkpoint_sizes.back() != options.records) {
    checkpoint_sizes.push_back(options.records);
  }
  std::vector<uint64_t> versions(options.streams, 0);
  // Record `seq` given the leaf hash before it: (leaf, payload).
  auto make = [&](uint64_t seq, const Hash& prev) {
    uint64_t stream = seq % options.streams;
    std::vector<PayloadField> fields = {
        {"note", std::string(options.payload_bytes, static_cast<char>('a' + seq % 26)), 0}};
    uint64_t salt_n = 0;
    CommittedPayload committed =
        CommitFields(fields, [&] { return Sha256Of(absl::StrCat("salt-", seq, "-", salt_n++)); });
    Record r;
    r.seq = seq;
    r.prev_hash = prev;
    r.commit_time_micros = 1767225600000000 + static_cast<int64_t>(seq) * 10;
    r.stream_id = absl::StrCat("case-", stream);
    r.version = versions[stream]++;
    r.event_id = absl::StrCat("ev-", seq);
    r.producer = "synthetic";
    r.event_type = "record_entry_written";
    r.occurred_at_micros = 1767225600000000 + static_cast<int64_t>(seq);
    r.subject_ids = {absl::StrCat("client-", stream)};
    r.payload_commitment = committed.commitment;
    return std::make_pair(EncodeRecord(r), EncodePayload(committed.payload));
  };

  // A range needs proofs from the whole tree first: build it once without
  // writing, then again while writing.
  InMemoryNodeStore nodes;
  if (first_seq > 0) {
    MerkleTree tree;
    std::vector<NodeWrite> writes;
    Hash prev{};
    for (uint64_t seq = 0; seq < options.records; ++seq) {
      prev = LeafHash(make(seq, prev).first);
      writes.clear();
      tree.Append(prev, &writes);
      nodes.PutAll(writes);
    }
    std::fill(versions.begin(), versions.end(), 0);
  }

  MerkleTree tree;
  SubjectIndexBuilder subjects;
  Hash prev{};
  size_t next_checkpoint = 0;
  for (uint64_t seq = 0; seq <= options.records; ++seq) {
    if (seq == first_seq && first_seq > 0) {
      BundleStart start;
      start.size = first_seq;
      start.prev_leaf_hash = prev;
      CL_ASSIGN_OR_RETURN(start.inclusion_proof, InclusionProof(first_seq - 1, first_seq, nodes));
      CL_RETURN_IF_ERROR(writer->AddStart(start));
      BundleConsistency c;
      c.from_size = first_seq;
      c.to_size = checkpoint_sizes.back();
      CL_ASSIGN_OR_RETURN(c.proof, ConsistencyProof(c.from_size, c.to_size, nodes));
      CL_RETURN_IF_ERROR(writer->AddConsistency(c));
    }
    // A checkpoint sits right after its last record (or after the start).
    while (next_checkpoint < checkpoint_sizes.size() && checkpoint_sizes[next_checkpoint] <= seq) {
      uint64_t size = checkpoint_sizes[next_checkpoint++];
      if (size < first_seq || size != seq) continue;
      Checkpoint cp;
      cp.origin = kTestOrigin;
      cp.size = size;
      cp.root = tree.Root();
      if (options.subjects_line) cp.extensions = {SubjectsExtensionLine(subjects.Root())};
      CL_ASSIGN_OR_RETURN(std::string note, SignCheckpoint(cp, signer));
      CL_RETURN_IF_ERROR(writer->AddCheckpoint(size, note));
    }
    if (seq == options.records) break;
    auto [leaf, payload] = make(seq, prev);
    prev = LeafHash(leaf);
    tree.Append(prev, nullptr);
    if (options.subjects_line) {
      CL_RETURN_IF_ERROR(subjects.Add(seq, prev, {absl::StrCat("client-", seq % options.streams)}));
    }
    if (seq >= first_seq) CL_RETURN_IF_ERROR(writer->AddRecord(seq, leaf, payload, mode));
  }
  return writer->Finish();
}

std::string SyntheticBundle(const SyntheticLogOptions& options, uint64_t first_seq,
                            BundlePayload mode) {
  std::string out;
  absl::Status s = WriteSyntheticBundle(options, first_seq, mode, [&](absl::string_view b) {
    out.append(b.data(), b.size());
    return absl::OkStatus();
  });
  if (!s.ok()) std::abort();
  return out;
}

uint64_t BigEndianAt(const std::string& bytes, size_t at, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n && at + i < bytes.size(); ++i) {
    v = (v << 8) | static_cast<uint8_t>(bytes[at + i]);
  }
  return v;
}

std::vector<BundleEntryAt> WalkBundle(const std::string& bundle) {
  std::vector<BundleEntryAt> out;
  size_t at = 10;  // magic and version
  while (at + 5 <= bundle.size()) {
    size_t len = BigEndianAt(bundle, at + 1, 4);
    out.push_back({static_cast<uint8_t>(bundle[at]), at, 5 + len});
    at += 5 + len;
  }
  return out;
}

BundleEntryAt NthBundleEntry(const std::string& bundle, uint8_t type, int n) {
  for (const BundleEntryAt& e : WalkBundle(bundle)) {
    if (e.type == type && n-- == 0) return e;
  }
  return {};
}

}  // namespace caseledger::testing
