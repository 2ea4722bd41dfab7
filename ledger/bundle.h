// Export bundles: a self-describing, streamable copy of the ledger (or of a
// range of it) that an auditor verifies offline with nothing but the log's
// public key. The byte format is ledger/BUNDLE.md, which the golden test in
// bundle_test.cc pins.
//
//   Writing (ledgerctl export):
//     auto w = BundleWriter::New(header, sink);
//     w->AddStart(...);                 // only for a range that starts past 0
//     w->AddConsistency(...);           // optional
//     for (...) { w->AddRecord(...); w->AddCheckpoint(...) when one ends here; }
//     w->Finish();
//
//   Verifying (ledger_verify --bundle):
//     BundleVerifyReport r = VerifyBundle(source, options);
//
// Nothing here touches a store or the network: the auditor's verifier links
// only this and the verification code below it.
#ifndef CASELEDGER_LEDGER_BUNDLE_H_
#define CASELEDGER_LEDGER_BUNDLE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ledger/chain_verifier.h"
#include "ledger/checkpoint.h"
#include "ledger/hash.h"

namespace caseledger {

// "CLBUNDLE": the first 8 bytes of every bundle.
inline constexpr absl::string_view kBundleMagic = "CLBUNDLE";
inline constexpr uint16_t kBundleFormatVersion = 1;
// The largest entry body a reader accepts (a record with a 1 MiB payload is
// far below it).
inline constexpr uint32_t kMaxBundleEntryBytes = 16 << 20;

enum class BundleEntryType : uint8_t {
  kHeader = 0x01,
  kStart = 0x02,
  kConsistency = 0x03,
  kRecord = 0x04,
  kCheckpoint = 0x05,
  kTrailer = 0x7f,
};

// How much of a record's payload a bundle carries.
enum class BundlePayload : uint8_t {
  kFull = 0x00,             // the stored payload as it is (sealed openings stay sealed)
  kCommitmentsOnly = 0x01,  // openings left out: sealed_openings is empty
};

struct BundleHeader {
  std::string origin;        // the log's checkpoint origin
  std::string verifier_key;  // informational: the auditor brings their own
  uint64_t first_seq = 0;    // the bundle holds records [first_seq, end_seq)
  uint64_t end_seq = 0;
};

// Ties a range that starts past 0 to the tree before it: the leaf hash of
// record first_seq - 1 and its inclusion proof in the tree of first_seq
// leaves. Together they give that tree's root and right edge.
struct BundleStart {
  uint64_t size = 0;  // == first_seq
  Hash prev_leaf_hash{};
  std::vector<Hash> inclusion_proof;
};

// An RFC 9162 consistency proof between two tree sizes.
struct BundleConsistency {
  uint64_t from_size = 0;
  uint64_t to_size = 0;
  std::vector<Hash> proof;
};

// Writes bundle bytes through `sink` (called with consecutive pieces; an
// error from it is returned by the call that wrote). Checks that entries come
// in the order BUNDLE.md requires: FAILED_PRECONDITION naming what was out of
// order, INVALID_ARGUMENT for a value the format cannot hold. Not thread-safe.
class BundleWriter {
 public:
  using Sink = std::function<absl::Status(absl::string_view)>;

  // Writes the magic, version and header entry.
  static absl::StatusOr<std::unique_ptr<BundleWriter>> New(const BundleHeader& header, Sink sink);

  // Required before the first record when header.first_seq > 0; refused
  // otherwise.
  absl::Status AddStart(const BundleStart& start);
  // Optional, at most once, before the first record.
  absl::Status AddConsistency(const BundleConsistency& consistency);
  // The next record (seq = first_seq + records written). `payload` is the
  // stored payload bytes; with kCommitmentsOnly its openings are dropped.
  absl::Status AddRecord(uint64_t seq, absl::string_view leaf, absl::string_view payload,
                         BundlePayload mode);
  // A signed checkpoint whose size is the number of records so far (or
  // first_seq before any record). Sizes strictly increase.
  absl::Status AddCheckpoint(uint64_t size, absl::string_view note);
  // Writes the trailer. FAILED_PRECONDITION unless end_seq - first_seq
  // records were written.
  absl::Status Finish();

  uint64_t records_written() const { return records_; }
  uint64_t bytes_written() const { return bytes_; }

 private:
  BundleWriter(const BundleHeader& header, Sink sink);
  absl::Status WriteEntry(BundleEntryType type, absl::string_view body);
  absl::Status Write(absl::string_view bytes);

  BundleHeader header_;
  Sink sink_;
  Hash chain_head_{};  // leaf hash of the last record (or the start's)
  std::string scratch_;
  uint64_t records_ = 0;
  uint64_t checkpoints_ = 0;
  uint64_t last_checkpoint_size_ = 0;
  bool any_checkpoint_ = false;
  bool started_ = false;
  bool consistency_ = false;
  bool finished_ = false;
  uint64_t bytes_ = 0;
};

// Where bundle bytes come from.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Up to `n` bytes into `buf`; 0 only at the end. Errors are the source's.
  virtual absl::StatusOr<size_t> Read(char* buf, size_t n) = 0;
};

// Reads a file (or "-" for stdin). NOT_FOUND / INTERNAL naming the path.
absl::StatusOr<std::unique_ptr<ByteSource>> OpenFileSource(const std::string& path);
// Reads from a string the caller keeps alive.
std::unique_ptr<ByteSource> StringSource(absl::string_view bytes);

struct BundleVerifyOptions {
  const NoteVerifier* note_verifier = nullptr;  // borrowed for the call; required
  std::string origin;                           // expected checkpoint origin
  size_t max_failures = 1;
  bool check_event_ids = true;
  RecordObserver* observer = nullptr;  // borrowed; may be null
  // When set, the bundle must reproduce this root at this size: a bundle
  // that starts there (an incremental audit) or passes through it.
  std::optional<TrustedCheckpoint> since;
  // Called every `progress_every` records with (records checked, records
  // the header announces).
  std::function<void(uint64_t, uint64_t)> progress;
  uint64_t progress_every = 1 << 20;
};

struct BundleVerifyReport {
  BundleHeader header;
  bool header_read = false;
  // The header's key equals the auditor's (informational only).
  bool header_key_matches = false;
  // For a range: whether the tree before first_seq was tied to a trusted
  // checkpoint (options.since) or to a signed checkpoint at first_seq.
  bool start_anchored = true;
  // options.since was given and the records reproduced its root.
  bool since_checked = false;
  uint64_t records_checked = 0;
  uint64_t checkpoints_checked = 0;
  uint64_t tree_size = 0;  // the tree size the records reach
  Hash root{};             // recomputed from the records
  // Records after the last verified checkpoint: chained, but no signature
  // covers them yet.
  uint64_t unsigned_records = 0;
  // The newest checkpoint that verified, to keep for the next incremental
  // audit; empty when none did.
  std::string latest_note;
  uint64_t latest_size = 0;
  uint64_t bytes_read = 0;
  std::vector<VerifyFailure> failures;
  size_t failures_seen = 0;
  absl::Status status;  // OK, or the first failure (DATA_LOSS naming the seq)
};

// Reads the whole bundle once, in constant memory apart from the event-id
// fingerprints (16 bytes a record, see ChainVerifierOptions). Everything is checked with
// options.note_verifier; the key inside the bundle is never trusted.
BundleVerifyReport VerifyBundle(ByteSource& source, const BundleVerifyOptions& options);

}  // namespace caseledger

#endif  // CASELEDGER_LEDGER_BUNDLE_H_
