// Big-endian, length-prefixed byte encoding shared by every format in ledger/.
#ifndef CASELEDGER_LEDGER_INTERNAL_BYTES_H_
#define CASELEDGER_LEDGER_INTERNAL_BYTES_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "ledger/hash.h"

namespace caseledger::internal {

// Appends to a string it borrows; `out` must outlive the writer.
class ByteWriter {
 public:
  explicit ByteWriter(std::string* out) : out_(out) {}
  void U8(uint8_t v) { out_->push_back(static_cast<char>(v)); }
  void U16(uint16_t v) { Fixed(v, 2); }
  void U32(uint32_t v) { Fixed(v, 4); }
  void U64(uint64_t v) { Fixed(v, 8); }
  void I64(int64_t v) { Fixed(static_cast<uint64_t>(v), 8); }
  void Raw(absl::string_view s) { out_->append(s.data(), s.size()); }
  void HashValue(const Hash& h) { Raw(AsBytes(h)); }
  // Callers have checked the length fits the prefix.
  void Str16(absl::string_view s) {
    U16(static_cast<uint16_t>(s.size()));
    Raw(s);
  }
  void Str32(absl::string_view s) {
    U32(static_cast<uint32_t>(s.size()));
    Raw(s);
  }

 private:
  void Fixed(uint64_t v, int n) {
    for (int i = n - 1; i >= 0; --i) out_->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  std::string* out_;
};

// Reads from bytes it borrows; `in` must outlive the reader. Every read names
// `what` in its error so that messages say which part was bad.
class ByteReader {
 public:
  ByteReader(absl::string_view in, absl::string_view format) : in_(in), format_(format) {}

  absl::Status U8(const char* what, uint8_t* v) {
    uint64_t x;
    absl::Status s = Fixed(what, 1, &x);
    *v = static_cast<uint8_t>(x);
    return s;
  }
  absl::Status U16(const char* what, uint16_t* v) {
    uint64_t x;
    absl::Status s = Fixed(what, 2, &x);
    *v = static_cast<uint16_t>(x);
    return s;
  }
  absl::Status U32(const char* what, uint32_t* v) {
    uint64_t x;
    absl::Status s = Fixed(what, 4, &x);
    *v = static_cast<uint32_t>(x);
    return s;
  }
  absl::Status U64(const char* what, uint64_t* v) { return Fixed(what, 8, v); }
  absl::Status I64(const char* what, int64_t* v) {
    uint64_t x;
    absl::Status s = Fixed(what, 8, &x);
    *v = static_cast<int64_t>(x);
    return s;
  }
  absl::Status Raw(const char* what, size_t n, absl::string_view* v) {
    if (in_.size() - pos_ < n) return Short(what, n);
    *v = in_.substr(pos_, n);
    pos_ += n;
    return absl::OkStatus();
  }
  absl::Status HashValue(const char* what, Hash* h) {
    absl::string_view v;
    absl::Status s = Raw(what, kHashSize, &v);
    if (s.ok()) std::copy(v.begin(), v.end(), h->begin());
    return s;
  }
  absl::Status Str16(const char* what, std::string* v) {
    uint16_t n;
    absl::Status s = U16(what, &n);
    if (!s.ok()) return s;
    absl::string_view raw;
    s = Raw(what, n, &raw);
    if (s.ok()) v->assign(raw.data(), raw.size());
    return s;
  }
  absl::Status Str32(const char* what, size_t max, std::string* v) {
    uint32_t n;
    absl::Status s = U32(what, &n);
    if (!s.ok()) return s;
    if (n > max) {
      return absl::InvalidArgumentError(
          absl::StrCat(format_, ": ", what, " length ", n, " exceeds limit ", max));
    }
    absl::string_view raw;
    s = Raw(what, n, &raw);
    if (s.ok()) v->assign(raw.data(), raw.size());
    return s;
  }
  // INVALID_ARGUMENT unless every byte was consumed.
  absl::Status Done() const {
    if (pos_ == in_.size()) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat(format_, ": ", in_.size() - pos_,
                                                   " trailing bytes after offset ", pos_));
  }
  size_t pos() const { return pos_; }

 private:
  absl::Status Fixed(const char* what, size_t n, uint64_t* v) {
    *v = 0;
    if (in_.size() - pos_ < n) return Short(what, n);
    for (size_t i = 0; i < n; ++i) *v = (*v << 8) | static_cast<uint8_t>(in_[pos_ + i]);
    pos_ += n;
    return absl::OkStatus();
  }
  absl::Status Short(const char* what, size_t n) const {
    return absl::InvalidArgumentError(absl::StrCat(format_, ": truncated at ", what, " (offset ",
                                                   pos_, "): need ", n, " bytes, have ",
                                                   in_.size() - pos_));
  }

  absl::string_view in_;
  absl::string_view format_;
  size_t pos_ = 0;
};

// Big-endian u64, for RocksDB keys that sort by number.
inline std::string U64Key(uint64_t v) {
  std::string out;
  ByteWriter(&out).U64(v);
  return out;
}

inline uint64_t DecodeU64(absl::string_view b) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8 && i < b.size(); ++i) v = (v << 8) | static_cast<uint8_t>(b[i]);
  return v;
}

}  // namespace caseledger::internal

#endif  // CASELEDGER_LEDGER_INTERNAL_BYTES_H_
