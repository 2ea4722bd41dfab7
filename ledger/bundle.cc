#include "ledger/bundle.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "ledger/internal/bytes.h"
#include "ledger/internal/status_macros.h"
#include "ledger/merkle_verify.h"
#include "ledger/record.h"

namespace caseledger {

using internal::ByteReader;
using internal::ByteWriter;

namespace {

constexpr size_t kEntryFrameBytes = 5;  // u8 type || u32 body length
constexpr size_t kPreambleBytes = 10;   // magic || u16 version
constexpr size_t kMaxProofHashes = 255;

std::string EntryName(uint8_t type) {
  switch (static_cast<BundleEntryType>(type)) {
    case BundleEntryType::kHeader:
      return "header";
    case BundleEntryType::kStart:
      return "start";
    case BundleEntryType::kConsistency:
      return "consistency";
    case BundleEntryType::kRecord:
      return "record";
    case BundleEntryType::kCheckpoint:
      return "checkpoint";
    case BundleEntryType::kTrailer:
      return "trailer";
  }
  return absl::StrCat("unknown (0x", absl::Hex(type, absl::kZeroPad2), ")");
}

void WriteHashes(ByteWriter& w, const std::vector<Hash>& hashes) {
  w.U8(static_cast<uint8_t>(hashes.size()));
  for (const Hash& h : hashes) w.HashValue(h);
}

absl::Status ReadHashes(ByteReader& r, std::vector<Hash>* out) {
  uint8_t n;
  CL_RETURN_IF_ERROR(r.U8("proof length", &n));
  out->resize(n);
  for (Hash& h : *out) CL_RETURN_IF_ERROR(r.HashValue("proof hash", &h));
  return absl::OkStatus();
}

}  // namespace

// ---- Writer ----------------------------------------------------------------

BundleWriter::BundleWriter(const BundleHeader& header, Sink sink)
    : header_(header), sink_(std::move(sink)) {}

absl::StatusOr<std::unique_ptr<BundleWriter>> BundleWriter::New(const BundleHeader& header,
                                                                Sink sink) {
  if (header.origin.empty() || header.origin.size() > 0xffff) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bundle header origin: got ", header.origin.size(), " bytes, want 1 to 65535"));
  }
  if (header.verifier_key.size() > 0xffff) {
    return absl::InvalidArgumentError("bundle header verifier_key: over 65535 bytes");
  }
  if (header.end_seq < header.first_seq) {
    return absl::InvalidArgumentError(absl::StrCat("bundle header: end_seq ", header.end_seq,
                                                   " is below first_seq ", header.first_seq));
  }
  if (!sink) return absl::InvalidArgumentError("bundle writer: no sink");
  std::unique_ptr<BundleWriter> w(new BundleWriter(header, std::move(sink)));
  std::string preamble(kBundleMagic);
  ByteWriter(&preamble).U16(kBundleFormatVersion);
  CL_RETURN_IF_ERROR(w->Write(preamble));
  std::string body;
  ByteWriter b(&body);
  b.Str16(header.origin);
  b.Str16(header.verifier_key);
  b.U64(header.first_seq);
  b.U64(header.end_seq);
  CL_RETURN_IF_ERROR(w->WriteEntry(BundleEntryType::kHeader, body));
  return w;
}

absl::Status BundleWriter::Write(absl::string_view bytes) {
  bytes_ += bytes.size();
  return sink_(bytes);
}

absl::Status BundleWriter::WriteEntry(BundleEntryType type, absl::string_view body) {
  if (finished_) return absl::FailedPreconditionError("bundle writer: already finished");
  if (body.size() > kMaxBundleEntryBytes) {
    return absl::InvalidArgumentError(absl::StrCat("bundle ", EntryName(static_cast<uint8_t>(type)),
                                                   " entry: ", body.size(), " bytes, limit ",
                                                   kMaxBundleEntryBytes));
  }
  scratch_.clear();
  ByteWriter w(&scratch_);
  w.U8(static_cast<uint8_t>(type));
  w.U32(static_cast<uint32_t>(body.size()));
  w.Raw(body);
  return Write(scratch_);
}

absl::Status BundleWriter::AddStart(const BundleStart& start) {
  if (header_.first_seq == 0) {
    return absl::FailedPreconditionError("bundle start: only for a range with first_seq > 0");
  }
  if (started_ || consistency_ || records_ > 0 || any_checkpoint_) {
    return absl::FailedPreconditionError("bundle start: must directly follow the header");
  }
  if (start.size != header_.first_seq) {
    return absl::InvalidArgumentError(absl::StrCat("bundle start size: got ", start.size,
                                                   ", want first_seq ", header_.first_seq));
  }
  if (start.inclusion_proof.size() > kMaxProofHashes) {
    return absl::InvalidArgumentError("bundle start: proof over 255 hashes");
  }
  std::string body;
  ByteWriter w(&body);
  w.U64(start.size);
  w.HashValue(start.prev_leaf_hash);
  WriteHashes(w, start.inclusion_proof);
  started_ = true;
  chain_head_ = start.prev_leaf_hash;
  return WriteEntry(BundleEntryType::kStart, body);
}

absl::Status BundleWriter::AddConsistency(const BundleConsistency& c) {
  if (header_.first_seq > 0 && !started_) {
    return absl::FailedPreconditionError("bundle consistency: the start entry comes first");
  }
  if (consistency_ || records_ > 0) {
    return absl::FailedPreconditionError(
        "bundle consistency: at most one, before the first record");
  }
  if (c.proof.size() > kMaxProofHashes) {
    return absl::InvalidArgumentError("bundle consistency: proof over 255 hashes");
  }
  std::string body;
  ByteWriter w(&body);
  w.U64(c.from_size);
  w.U64(c.to_size);
  WriteHashes(w, c.proof);
  consistency_ = true;
  return WriteEntry(BundleEntryType::kConsistency, body);
}

absl::Status BundleWriter::AddRecord(uint64_t seq, absl::string_view leaf,
                                     absl::string_view payload, BundlePayload mode) {
  if (header_.first_seq > 0 && !started_) {
    return absl::FailedPreconditionError("bundle record: the start entry comes first");
  }
  uint64_t want = header_.first_seq + records_;
  if (seq != want) {
    return absl::FailedPreconditionError(
        absl::StrCat("bundle record: got seq ", seq, ", want ", want));
  }
  if (want >= header_.end_seq) {
    return absl::FailedPreconditionError(
        absl::StrCat("bundle record: seq ", seq, " is past end_seq ", header_.end_seq));
  }
  std::string stripped;
  if (mode == BundlePayload::kCommitmentsOnly) {
    absl::StatusOr<std::string> s = StripOpenings(payload);
    if (!s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("bundle record ", seq, ": payload: ", s.status().message()));
    }
    stripped = *std::move(s);
    payload = stripped;
  }
  std::string body;
  body.reserve(8 + 1 + 8 + leaf.size() + payload.size());
  ByteWriter w(&body);
  w.U64(seq);
  w.U8(static_cast<uint8_t>(mode));
  w.Str32(leaf);
  w.Str32(payload);
  ++records_;
  chain_head_ = LeafHash(leaf);
  return WriteEntry(BundleEntryType::kRecord, body);
}

absl::Status BundleWriter::AddCheckpoint(uint64_t size, absl::string_view note) {
  if (header_.first_seq > 0 && !started_) {
    return absl::FailedPreconditionError("bundle checkpoint: the start entry comes first");
  }
  uint64_t at = header_.first_seq + records_;
  if (size != at) {
    return absl::FailedPreconditionError(absl::StrCat(
        "bundle checkpoint: size ", size, " must equal the records written so far (", at, ")"));
  }
  if (any_checkpoint_ && size <= last_checkpoint_size_) {
    return absl::FailedPreconditionError(absl::StrCat(
        "bundle checkpoint: size ", size, " after a checkpoint at ", last_checkpoint_size_));
  }
  std::string body;
  ByteWriter w(&body);
  w.U64(size);
  w.Str32(note);
  any_checkpoint_ = true;
  last_checkpoint_size_ = size;
  ++checkpoints_;
  return WriteEntry(BundleEntryType::kCheckpoint, body);
}

absl::Status BundleWriter::Finish() {
  uint64_t want = header_.end_seq - header_.first_seq;
  if (records_ != want) {
    return absl::FailedPreconditionError(
        absl::StrCat("bundle finish: ", records_, " records written, the header announces ", want));
  }
  if (header_.first_seq > 0 && !started_) {
    return absl::FailedPreconditionError("bundle finish: no start entry");
  }
  std::string body;
  ByteWriter w(&body);
  w.U64(records_);
  w.U64(checkpoints_);
  w.HashValue(chain_head_);
  CL_RETURN_IF_ERROR(WriteEntry(BundleEntryType::kTrailer, body));
  finished_ = true;
  return absl::OkStatus();
}

// ---- Sources ---------------------------------------------------------------

namespace {

class FdSource : public ByteSource {
 public:
  FdSource(int fd, std::string path, bool owned) : fd_(fd), path_(std::move(path)), owned_(owned) {}
  ~FdSource() override {
    if (owned_) close(fd_);
  }
  absl::StatusOr<size_t> Read(char* buf, size_t n) override {
    for (;;) {
      ssize_t got = read(fd_, buf, n);
      if (got >= 0) return static_cast<size_t>(got);
      if (errno == EINTR) continue;
      return absl::InternalError(absl::StrCat("reading ", path_, ": ", std::strerror(errno)));
    }
  }

 private:
  int fd_;
  std::string path_;
  bool owned_;
};

class StringByteSource : public ByteSource {
 public:
  explicit StringByteSource(absl::string_view bytes) : rest_(bytes) {}
  absl::StatusOr<size_t> Read(char* buf, size_t n) override {
    n = std::min(n, rest_.size());
    std::memcpy(buf, rest_.data(), n);
    rest_.remove_prefix(n);
    return n;
  }

 private:
  absl::string_view rest_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<ByteSource>> OpenFileSource(const std::string& path) {
  if (path == "-") return std::make_unique<FdSource>(STDIN_FILENO, "stdin", false);
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    std::string why = std::strerror(errno);
    if (errno == ENOENT) return absl::NotFoundError(absl::StrCat(path, ": ", why));
    return absl::InternalError(absl::StrCat("opening ", path, ": ", why));
  }
  posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  return std::make_unique<FdSource>(fd, path, true);
}

std::unique_ptr<ByteSource> StringSource(absl::string_view bytes) {
  return std::make_unique<StringByteSource>(bytes);
}

// ---- Reader ----------------------------------------------------------------

namespace {

// Splits a ByteSource into entries through one reusable buffer.
class EntryReader {
 public:
  struct Entry {
    uint8_t type = 0;
    absl::string_view body;  // valid until the next call
    uint64_t offset = 0;     // of the type byte
  };

  explicit EntryReader(ByteSource& source) : source_(source), buf_(kChunk, '\0') {}

  // Reads and checks the magic and version.
  absl::Status ReadPreamble() {
    CL_ASSIGN_OR_RETURN(bool have, Ensure(kPreambleBytes));
    if (!have) {
      return absl::DataLossError(absl::StrCat("not a caseledger bundle: ", end_ - pos_,
                                              " bytes, shorter than the 10-byte preamble"));
    }
    absl::string_view magic(buf_.data() + pos_, kBundleMagic.size());
    if (magic != kBundleMagic) {
      return absl::DataLossError(absl::StrCat("not a caseledger bundle: magic got \"",
                                              absl::CHexEscape(magic), "\", want \"", kBundleMagic,
                                              "\""));
    }
    uint16_t version =
        (static_cast<uint8_t>(buf_[pos_ + 8]) << 8) | static_cast<uint8_t>(buf_[pos_ + 9]);
    if (version != kBundleFormatVersion) {
      return absl::DataLossError(
          absl::StrCat("bundle format version: got ", version, ", want ", kBundleFormatVersion));
    }
    pos_ += kPreambleBytes;
    return absl::OkStatus();
  }

  // The next entry; false at a clean end (no byte left). DATA_LOSS for an
  // entry cut short or over the size limit.
  absl::StatusOr<bool> Next(Entry* e) {
    CL_ASSIGN_OR_RETURN(bool have, Ensure(kEntryFrameBytes));
    if (!have) {
      if (end_ == pos_) return false;
      return absl::DataLossError(
          absl::StrCat("bundle truncated: ", end_ - pos_, " stray bytes at offset ", Offset()));
    }
    const char* p = buf_.data() + pos_;
    uint8_t type = static_cast<uint8_t>(p[0]);
    uint32_t len = (static_cast<uint32_t>(static_cast<uint8_t>(p[1])) << 24) |
                   (static_cast<uint32_t>(static_cast<uint8_t>(p[2])) << 16) |
                   (static_cast<uint32_t>(static_cast<uint8_t>(p[3])) << 8) |
                   static_cast<uint32_t>(static_cast<uint8_t>(p[4]));
    if (len > kMaxBundleEntryBytes) {
      return absl::DataLossError(absl::StrCat("bundle ", EntryName(type), " entry at offset ",
                                              Offset(), ": length ", len, " exceeds limit ",
                                              kMaxBundleEntryBytes));
    }
    uint64_t offset = Offset();
    CL_ASSIGN_OR_RETURN(have, Ensure(kEntryFrameBytes + len));
    if (!have) {
      return absl::DataLossError(
          absl::StrCat("bundle truncated: ", EntryName(type), " entry at offset ", offset,
                       " needs ", kEntryFrameBytes + len, " bytes, ", end_ - pos_, " remain"));
    }
    e->type = type;
    e->offset = offset;
    e->body = absl::string_view(buf_.data() + pos_ + kEntryFrameBytes, len);
    pos_ += kEntryFrameBytes + len;
    return true;
  }

  uint64_t Offset() const { return base_ + pos_; }

 private:
  static constexpr size_t kChunk = 1 << 20;

  // Makes n bytes available at pos_; false if the source ends first.
  absl::StatusOr<bool> Ensure(size_t n) {
    if (end_ - pos_ >= n) return true;
    // Move the unread rest to the front, then fill up behind it.
    std::memmove(buf_.data(), buf_.data() + pos_, end_ - pos_);
    base_ += pos_;
    end_ -= pos_;
    pos_ = 0;
    if (buf_.size() < n) buf_.resize(std::max(n, 2 * buf_.size()));
    while (end_ < n) {
      CL_ASSIGN_OR_RETURN(size_t got, source_.Read(buf_.data() + end_, buf_.size() - end_));
      if (got == 0) return false;
      end_ += got;
    }
    return true;
  }

  ByteSource& source_;
  std::string buf_;
  size_t pos_ = 0;     // next unread byte
  size_t end_ = 0;     // end of valid bytes
  uint64_t base_ = 0;  // offset of buf_[0] in the bundle
};

// The last record a tree of `size` leaves covers (0 for the empty tree), so
// that failures about a size still name a record.
uint64_t LastCovered(uint64_t size) { return size == 0 ? 0 : size - 1; }

absl::Status Malformed(absl::string_view what, uint64_t offset, const absl::Status& s) {
  return absl::DataLossError(
      absl::StrCat("bundle ", what, " entry at offset ", offset, ": ", s.message()));
}

// The tree of `size` leaves whose last leaf hash is `leaf` and whose path is
// `proof` (PATH(size - 1, D[size]), leaf side first). For the last leaf the
// path is exactly: the left siblings inside the smallest perfect subtree on
// the right edge, then the other right-edge subtrees from low to high; so
// the path gives the whole right edge, which is all MerkleTree keeps.
absl::StatusOr<MerkleTree> TreeFromLastLeaf(uint64_t size, const Hash& leaf,
                                            const std::vector<Hash>& proof) {
  if (proof.size() != InclusionProofLength(size - 1, size)) {
    return absl::DataLossError(absl::StrCat("start proof: got ", proof.size(), " hashes, want ",
                                            InclusionProofLength(size - 1, size)));
  }
  InMemoryNodeStore edge;
  uint32_t low = 0;
  while (((size >> low) & 1) == 0) ++low;
  Hash h = leaf;
  size_t i = 0;
  for (; i < low; ++i) h = NodeHash(proof[i], h);
  edge.Put({low, (size >> low) - 1, h});
  for (uint32_t level = low + 1; level < 64; ++level) {
    if (((size >> level) & 1) == 0) continue;
    edge.Put({level, (size >> level) - 1, proof[i++]});
  }
  return MerkleTree::Load(size, edge);
}

// One pass over the entries of a bundle.
class BundleVerification {
 public:
  explicit BundleVerification(const BundleVerifyOptions& options)
      : options_(options),
        verifier_({options.note_verifier, options.origin, options.max_failures,
                   options.check_event_ids, options.observer}) {}

  BundleVerifyReport Run(ByteSource& source) {
    EntryReader reader(source);
    absl::Status s = ReadAll(reader);
    if (!s.ok()) verifier_.AddFailure(NextSeq(), std::string(s.message()));
    report_.bytes_read = reader.Offset();
    return Finish();
  }

 private:
  uint64_t NextSeq() const {
    return report_.header_read ? std::max(verifier_.tree().size(), report_.header.first_seq) : 0;
  }

  absl::Status ReadAll(EntryReader& reader) {
    if (options_.note_verifier == nullptr) {
      return absl::FailedPreconditionError("no verifier key: the auditor's key is required");
    }
    CL_RETURN_IF_ERROR(reader.ReadPreamble());
    EntryReader::Entry e;
    CL_ASSIGN_OR_RETURN(bool more, reader.Next(&e));
    if (!more || e.type != static_cast<uint8_t>(BundleEntryType::kHeader)) {
      return absl::DataLossError(absl::StrCat("bundle: the first entry must be the header, got ",
                                              more ? EntryName(e.type) : "the end"));
    }
    CL_RETURN_IF_ERROR(Header(e));
    for (;;) {
      CL_ASSIGN_OR_RETURN(more, reader.Next(&e));
      if (!more) {
        return absl::DataLossError(absl::StrCat("bundle truncated after ", report_.records_checked,
                                                " records: it ends without a trailer"));
      }
      switch (static_cast<BundleEntryType>(e.type)) {
        case BundleEntryType::kRecord:
          CL_RETURN_IF_ERROR(RecordEntry(e));
          break;
        case BundleEntryType::kCheckpoint:
          CL_RETURN_IF_ERROR(CheckpointEntry(e));
          break;
        case BundleEntryType::kStart:
          CL_RETURN_IF_ERROR(StartEntry(e));
          break;
        case BundleEntryType::kConsistency:
          CL_RETURN_IF_ERROR(ConsistencyEntry(e));
          break;
        case BundleEntryType::kTrailer:
          return Trailer(reader, e);
        default:
          return absl::DataLossError(
              absl::StrCat("bundle: ", EntryName(e.type), " entry type at offset ", e.offset));
      }
    }
  }

  absl::Status Header(const EntryReader::Entry& e) {
    ByteReader r(e.body, "bundle header");
    BundleHeader& h = report_.header;
    absl::Status s = r.Str16("origin", &h.origin);
    if (s.ok()) s = r.Str16("verifier_key", &h.verifier_key);
    if (s.ok()) s = r.U64("first_seq", &h.first_seq);
    if (s.ok()) s = r.U64("end_seq", &h.end_seq);
    if (s.ok()) s = r.Done();
    if (!s.ok()) return Malformed("header", e.offset, s);
    if (h.end_seq < h.first_seq) {
      return absl::DataLossError(
          absl::StrCat("bundle header: end_seq ", h.end_seq, " is below first_seq ", h.first_seq));
    }
    report_.header_read = true;
    verifier_.ExpectRecords(h.end_seq - h.first_seq);
    report_.header_key_matches = h.verifier_key == options_.note_verifier->VerifierKey();
    if (h.origin != options_.origin) {
      verifier_.AddFailure(h.first_seq, absl::StrCat("bundle header origin: got \"", h.origin,
                                                     "\", want \"", options_.origin, "\""));
    }
    if (h.first_seq == 0) {
      started_ = true;
      CheckSince();
    } else {
      report_.start_anchored = false;
    }
    return absl::OkStatus();
  }

  absl::Status StartEntry(const EntryReader::Entry& e) {
    if (started_ || report_.header.first_seq == 0) {
      return absl::DataLossError(absl::StrCat(
          "bundle start entry at offset ", e.offset,
          report_.header.first_seq == 0 ? ": the bundle starts at seq 0" : ": a second one"));
    }
    ByteReader r(e.body, "bundle start");
    BundleStart start;
    absl::Status s = r.U64("size", &start.size);
    if (s.ok()) s = r.HashValue("prev_leaf_hash", &start.prev_leaf_hash);
    if (s.ok()) s = ReadHashes(r, &start.inclusion_proof);
    if (s.ok()) s = r.Done();
    if (!s.ok()) return Malformed("start", e.offset, s);
    uint64_t first = report_.header.first_seq;
    if (start.size != first) {
      return absl::DataLossError(
          absl::StrCat("bundle start: size ", start.size, ", want the header's first_seq ", first));
    }
    CL_ASSIGN_OR_RETURN(MerkleTree tree,
                        TreeFromLastLeaf(start.size, start.prev_leaf_hash, start.inclusion_proof));
    verifier_.StartAt(tree, start.prev_leaf_hash);
    started_ = true;
    CheckSince();
    return absl::OkStatus();
  }

  absl::Status ConsistencyEntry(const EntryReader::Entry& e) {
    if (!started_ || consistency_.has_value() || report_.records_checked > 0) {
      return absl::DataLossError(absl::StrCat("bundle consistency entry at offset ", e.offset,
                                              ": at most one, after the start and before "
                                              "the records"));
    }
    ByteReader r(e.body, "bundle consistency");
    BundleConsistency c;
    absl::Status s = r.U64("from_size", &c.from_size);
    if (s.ok()) s = r.U64("to_size", &c.to_size);
    if (s.ok()) s = ReadHashes(r, &c.proof);
    if (s.ok()) s = r.Done();
    if (!s.ok()) return Malformed("consistency", e.offset, s);
    if (c.from_size != verifier_.tree().size() || c.to_size < c.from_size) {
      return absl::DataLossError(absl::StrCat("bundle consistency: from ", c.from_size, " to ",
                                              c.to_size, ", want from the start size ",
                                              verifier_.tree().size()));
    }
    consistency_ = std::move(c);
    consistency_from_root_ = verifier_.tree().Root();
    return absl::OkStatus();
  }

  absl::Status RecordEntry(const EntryReader::Entry& e) {
    if (!started_) {
      return absl::DataLossError(
          absl::StrCat("bundle record entry at offset ", e.offset, ": before the start entry"));
    }
    // Parsed in place: the views point into the reader's buffer.
    ByteReader r(e.body, "bundle record");
    uint64_t seq;
    uint8_t mode;
    uint32_t leaf_len;
    absl::string_view leaf, payload;
    absl::Status s = r.U64("seq", &seq);
    if (s.ok()) s = r.U8("payload mode", &mode);
    if (s.ok()) s = r.U32("leaf length", &leaf_len);
    if (s.ok()) s = r.Raw("leaf", leaf_len, &leaf);
    uint32_t payload_len;
    if (s.ok()) s = r.U32("payload length", &payload_len);
    if (s.ok()) s = r.Raw("payload", payload_len, &payload);
    if (s.ok()) s = r.Done();
    if (!s.ok()) return Malformed("record", e.offset, s);
    if (mode > static_cast<uint8_t>(BundlePayload::kCommitmentsOnly)) {
      verifier_.AddFailure(seq,
                           absl::StrCat("record ", seq, ": payload mode ", mode, ", want 0 or 1"));
    }
    if (seq >= report_.header.end_seq) {
      verifier_.AddFailure(seq, absl::StrCat("record ", seq, ": past the header's end_seq ",
                                             report_.header.end_seq));
    }
    if (mode == static_cast<uint8_t>(BundlePayload::kCommitmentsOnly)) {
      // Openings left out must really be absent: otherwise a flipped mode
      // byte would switch their check off unnoticed.
      absl::StatusOr<PayloadView> view = DecodePayloadView(payload);
      if (view.ok() && !view->sealed_openings.empty()) {
        verifier_.AddFailure(
            seq, absl::StrCat("record ", seq,
                              ": payload mode 1 (openings left "
                              "out) but ",
                              view->sealed_openings.size(), " bytes of openings are present"));
      }
    }
    verifier_.AddRecord(seq, leaf, payload, std::nullopt,
                        mode == static_cast<uint8_t>(BundlePayload::kFull)
                            ? PayloadCheck::kFull
                            : PayloadCheck::kCommitmentsOnly);
    ++report_.records_checked;
    if (since_pending_) CheckSince();
    if (options_.progress && report_.records_checked % options_.progress_every == 0) {
      options_.progress(report_.records_checked, report_.header.end_seq - report_.header.first_seq);
    }
    return absl::OkStatus();
  }

  absl::Status CheckpointEntry(const EntryReader::Entry& e) {
    if (!started_) {
      return absl::DataLossError(
          absl::StrCat("bundle checkpoint entry at offset ", e.offset, ": before the start entry"));
    }
    ByteReader r(e.body, "bundle checkpoint");
    uint64_t size;
    uint32_t note_len;
    absl::string_view note;
    absl::Status s = r.U64("size", &size);
    if (s.ok()) s = r.U32("note length", &note_len);
    if (s.ok()) s = r.Raw("note", note_len, &note);
    if (s.ok()) s = r.Done();
    if (!s.ok()) return Malformed("checkpoint", e.offset, s);
    ++checkpoint_entries_;
    last_checkpoint_size_ = size;
    uint64_t at = verifier_.tree().size();
    if (size != at) {
      // Checkpoints sit right after their last record; one elsewhere was
      // moved (or its size edited).
      verifier_.AddFailure(LastCovered(std::min(size, at)),
                           absl::StrCat("checkpoint at size ", size, ": found after record ",
                                        at == 0 ? std::string("none") : absl::StrCat(at - 1),
                                        ", want it right after record ",
                                        size == 0 ? std::string("none") : absl::StrCat(size - 1)));
      return absl::OkStatus();
    }
    uint64_t before = verifier_.checkpoints_checked();
    verifier_.ExpectCheckpoint(size, std::string(note));
    if (verifier_.checkpoints_checked() > before && verifier_.latest_checkpoint().has_value() &&
        verifier_.latest_checkpoint()->size == size) {
      if (size == report_.header.first_seq) report_.start_anchored = true;
      if (consistency_.has_value() && consistency_->to_size == size) CheckConsistency();
    }
    return absl::OkStatus();
  }

  absl::Status Trailer(EntryReader& reader, const EntryReader::Entry& e) {
    ByteReader r(e.body, "bundle trailer");
    uint64_t records, checkpoints;
    Hash head;
    absl::Status s = r.U64("record_count", &records);
    if (s.ok()) s = r.U64("checkpoint_count", &checkpoints);
    if (s.ok()) s = r.HashValue("chain_head", &head);
    if (s.ok()) s = r.Done();
    if (!s.ok()) return Malformed("trailer", e.offset, s);
    uint64_t at = NextSeq();
    if (records != report_.records_checked) {
      verifier_.AddFailure(at, absl::StrCat("bundle trailer: record_count ", records,
                                            ", the bundle holds ", report_.records_checked));
    }
    if (checkpoints != checkpoint_entries_) {
      verifier_.AddFailure(at, absl::StrCat("bundle trailer: checkpoint_count ", checkpoints,
                                            ", the bundle holds ", checkpoint_entries_));
    }
    if (head != verifier_.last_leaf_hash()) {
      verifier_.AddFailure(
          LastCovered(at),
          absl::StrCat("bundle trailer: chain_head ", ShortHex(head),
                       ", the records end in leaf hash ", ShortHex(verifier_.last_leaf_hash())));
    }
    EntryReader::Entry extra;
    CL_ASSIGN_OR_RETURN(bool more, reader.Next(&extra));
    if (more) {
      return absl::DataLossError(absl::StrCat("bundle: ", EntryName(extra.type),
                                              " entry at offset ", extra.offset,
                                              " after the trailer"));
    }
    trailer_seen_ = true;
    return absl::OkStatus();
  }

  // The auditor's checkpoint must be reproduced where the records reach it.
  void CheckSince() {
    if (!options_.since.has_value()) return;
    const TrustedCheckpoint& since = *options_.since;
    uint64_t size = verifier_.tree().size();
    if (size < since.size) {
      since_pending_ = true;
      return;
    }
    since_pending_ = false;
    if (size > since.size) {
      verifier_.AddFailure(
          LastCovered(size),
          absl::StrCat("your checkpoint at size ", since.size, " is before this bundle's start at ",
                       size, ": export from --from=", since.size));
      return;
    }
    Hash root = verifier_.tree().Root();
    if (root != since.root) {
      verifier_.AddFailure(LastCovered(since.size),
                           absl::StrCat("the bundle's tree at your checkpoint's size ", since.size,
                                        " has root ", ShortHex(root), ", your checkpoint says ",
                                        ShortHex(since.root), ": the log was forked or rewritten"));
      return;
    }
    report_.since_checked = true;
    if (size == report_.header.first_seq) report_.start_anchored = true;
  }

  void CheckConsistency() {
    const BundleConsistency& c = *consistency_;
    absl::Status s = VerifyConsistency(c.from_size, c.to_size, c.proof, consistency_from_root_,
                                       verifier_.latest_checkpoint()->root);
    consistency_checked_ = true;
    if (!s.ok()) {
      verifier_.AddFailure(LastCovered(c.to_size),
                           absl::StrCat("consistency proof from ", c.from_size, " to ", c.to_size,
                                        ": ", s.message()));
    }
  }

  BundleVerifyReport Finish() {
    if (report_.header_read && trailer_seen_) {
      if (since_pending_) {
        uint64_t size = verifier_.tree().size();
        verifier_.AddFailure(
            size,
            absl::StrCat("the bundle ends at size ", size, ", before your checkpoint at size ",
                         options_.since->size, ": the log was rolled back or cut short"));
      }
      if (consistency_.has_value() && !consistency_checked_) {
        verifier_.AddFailure(LastCovered(consistency_->to_size),
                             absl::StrCat("consistency proof to size ", consistency_->to_size,
                                          ": no verified checkpoint at that size"));
      } else if (consistency_.has_value() && checkpoint_entries_ > 0 &&
                 consistency_->to_size != last_checkpoint_size_) {
        // BUNDLE.md: the proof ends at the bundle's last checkpoint, so that
        // it ties the auditor's size to the newest signed root.
        verifier_.AddFailure(
            LastCovered(consistency_->to_size),
            absl::StrCat("consistency proof to size ", consistency_->to_size,
                         ", want the bundle's last checkpoint at size ", last_checkpoint_size_));
      }
    }
    uint64_t end = report_.header_read ? report_.header.end_seq : 0;
    report_.status = verifier_.Finish(end);
    report_.checkpoints_checked = verifier_.checkpoints_checked();
    report_.tree_size = verifier_.tree().size();
    report_.root = verifier_.Root();
    report_.failures = verifier_.failures();
    report_.failures_seen = verifier_.failures_seen();
    if (verifier_.latest_checkpoint().has_value()) {
      report_.latest_size = verifier_.latest_checkpoint()->size;
      report_.latest_note = verifier_.latest_note();
    }
    report_.unsigned_records =
        report_.tree_size > report_.latest_size && report_.header_read
            ? report_.tree_size - std::max(report_.latest_size, report_.header.first_seq)
            : 0;
    if (options_.progress) {
      options_.progress(report_.records_checked, report_.header.end_seq - report_.header.first_seq);
    }
    return std::move(report_);
  }

  const BundleVerifyOptions& options_;
  ChainVerifier verifier_;
  BundleVerifyReport report_;
  uint64_t checkpoint_entries_ = 0;
  uint64_t last_checkpoint_size_ = 0;  // of the last checkpoint entry read
  bool started_ = false;
  bool trailer_seen_ = false;
  bool since_pending_ = false;
  std::optional<BundleConsistency> consistency_;
  Hash consistency_from_root_{};
  bool consistency_checked_ = false;
};

}  // namespace

BundleVerifyReport VerifyBundle(ByteSource& source, const BundleVerifyOptions& options) {
  return BundleVerification(options).Run(source);
}

}  // namespace caseledger
