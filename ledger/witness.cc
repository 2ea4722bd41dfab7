#include "ledger/witness.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "ledger/internal/file.h"
#include "ledger/merkle_verify.h"
#include "ledger/subject_index.h"

namespace caseledger {
namespace {

constexpr absl::string_view kHeader = "caseledger-witness-state/v1\n";
constexpr absl::string_view kEntry = "checkpoint ";

absl::Status IoError(const std::string& path, absl::string_view op, int err) {
  return absl::InternalError(
      absl::StrCat("witness state ", path, ": ", op, ": ", std::strerror(err)));
}

std::string Describe(const Checkpoint& c) {
  return absl::StrCat("size ", c.size, " root ", ToHex(c.root));
}

}  // namespace

std::string WitnessState::Encode() const {
  std::string out(kHeader);
  for (const auto& [origin, note] : notes_) {
    absl::StrAppend(&out, kEntry, note.size(), "\n", note);
  }
  return out;
}

absl::StatusOr<WitnessState> WitnessState::Decode(absl::string_view text) {
  auto bad = [&](size_t at, absl::string_view what) {
    return absl::DataLossError(absl::StrCat("witness state: byte ", at, ": ", what));
  };
  if (text.substr(0, kHeader.size()) != kHeader) {
    return bad(0, absl::StrCat("want the header \"caseledger-witness-state/v1\\n\""));
  }
  WitnessState state;
  size_t pos = kHeader.size();
  while (pos < text.size()) {
    if (text.substr(pos, kEntry.size()) != kEntry)
      return bad(pos, "want \"checkpoint <length>\\n\"");
    size_t nl = text.find('\n', pos);
    if (nl == absl::string_view::npos) return bad(pos, "entry header has no newline");
    absl::string_view digits = text.substr(pos + kEntry.size(), nl - pos - kEntry.size());
    uint64_t len = 0;
    if (digits.empty() || !absl::SimpleAtoi(digits, &len) || len > kMaxNoteSize) {
      return bad(pos, absl::StrCat("note length got \"", digits, "\", want 1..", kMaxNoteSize));
    }
    pos = nl + 1;
    if (text.size() - pos < len) {
      return bad(pos, absl::StrCat("note of ", len, " bytes is cut short at ", text.size() - pos));
    }
    std::string note(text.substr(pos, len));
    absl::StatusOr<Checkpoint> c = ParseCheckpointNote(note);
    if (!c.ok()) return bad(pos, c.status().message());
    if (state.notes_.count(c->origin) != 0) {
      return bad(pos, absl::StrCat("second checkpoint for origin \"", c->origin, "\""));
    }
    state.notes_[c->origin] = std::move(note);
    pos += len;
  }
  return state;
}

absl::StatusOr<WitnessState> WitnessState::Load(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return WitnessState();
    return IoError(path, "open", errno);
  }
  std::string text;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      close(fd);
      return IoError(path, "read", err);
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  absl::StatusOr<WitnessState> state = Decode(text);
  if (!state.ok()) {
    return absl::Status(state.status().code(), absl::StrCat(path, ": ", state.status().message()));
  }
  return state;
}

absl::Status WitnessState::Save(const std::string& path) const {
  absl::Status s = internal::WriteFileDurably(path, Encode());
  if (!s.ok()) return absl::InternalError(absl::StrCat("witness state ", s.message()));
  return absl::OkStatus();
}

std::optional<std::string> WitnessState::Note(absl::string_view origin) const {
  auto it = notes_.find(std::string(origin));
  if (it == notes_.end()) return std::nullopt;
  return it->second;
}

void WitnessState::Set(const std::string& origin, std::string note) {
  notes_[origin] = std::move(note);
}

absl::StatusOr<WitnessResult> WitnessCheckpoint(const NoteVerifier& log, absl::string_view note,
                                                const ConsistencyProofSource& proofs,
                                                const SubjectTransitionSource& transitions,
                                                const Cosigner& cosigner, uint64_t timestamp,
                                                WitnessState* state) {
  const std::string& origin = log.name();
  absl::StatusOr<Checkpoint> next = OpenCheckpoint(note, log, origin);
  if (!next.ok()) {
    return absl::Status(next.status().code(),
                        absl::StrCat("checkpoint from the log: ", next.status().message()));
  }
  WitnessResult result;
  result.checkpoint = *next;
  if (std::optional<std::string> old_note = state->Note(origin)) {
    // Re-verified so that a damaged or swapped state file cannot vouch.
    absl::StatusOr<Checkpoint> prev = OpenCheckpoint(*old_note, log, origin);
    if (!prev.ok()) {
      return absl::DataLossError(absl::StrCat("witness state for ", origin,
                                              ": the remembered checkpoint does not open with the "
                                              "log key: ",
                                              prev.status().message()));
    }
    result.previous = *prev;
    if (next->size < prev->size) {
      return absl::DataLossError(absl::StrCat(
          "rollback: log ", origin, " now shows a smaller tree (", Describe(*next),
          ") than this witness already verified (", Describe(*prev), "); refusing to cosign"));
    }
    if (next->size == prev->size && next->root != prev->root) {
      return absl::DataLossError(absl::StrCat("fork: log ", origin, " shows two roots at size ",
                                              next->size, ": witnessed ", ToHex(prev->root),
                                              ", now ", ToHex(next->root), "; refusing to cosign"));
    }
    if (next->size > prev->size) {
      absl::StatusOr<std::vector<Hash>> proof = proofs(prev->size, next->size);
      if (!proof.ok()) {
        return absl::Status(proof.status().code(),
                            absl::StrCat("consistency proof ", prev->size, " -> ", next->size, ": ",
                                         proof.status().message()));
      }
      absl::Status consistent =
          VerifyConsistency(prev->size, next->size, *proof, prev->root, next->root);
      if (!consistent.ok()) {
        return absl::DataLossError(
            absl::StrCat("fork: log ", origin, " checkpoint ", Describe(*next),
                         " is not consistent with the witnessed ", Describe(*prev), ": ",
                         consistent.message(), "; refusing to cosign"));
      }
    }
  }
  // The subjects root must follow from the records since the last
  // checkpoint this witness verified (or from nothing).
  absl::StatusOr<std::optional<Hash>> next_subjects = SubjectRootFromExtensions(next->extensions);
  if (!next_subjects.ok() || !next_subjects->has_value()) {
    return absl::DataLossError(
        absl::StrCat("subjects: log ", origin, " checkpoint ", Describe(*next),
                     next_subjects.ok() ? std::string(" has no subjects line")
                                        : absl::StrCat(": ", next_subjects.status().message()),
                     "; refusing to cosign"));
  }
  SubjectTransitionEnd from{0, EmptyRoot(), EmptySubjectMapRoot()};
  if (result.previous.has_value()) {
    absl::StatusOr<std::optional<Hash>> prev_subjects =
        SubjectRootFromExtensions(result.previous->extensions);
    if (prev_subjects.ok() && prev_subjects->has_value()) {
      from = {result.previous->size, result.previous->root, **prev_subjects};
    }
  }
  const SubjectTransitionEnd to{next->size, next->root, **next_subjects};
  absl::StatusOr<SubjectTransition> transition = transitions(from.size, to.size);
  if (!transition.ok()) {
    return absl::Status(transition.status().code(),
                        absl::StrCat("subjects transition ", from.size, " -> ", to.size, ": ",
                                     transition.status().message()));
  }
  absl::StatusOr<SubjectTransitionStats> stats = VerifySubjectTransition(from, to, *transition);
  if (!stats.ok()) {
    return absl::DataLossError(absl::StrCat(
        "subjects: log ", origin, " checkpoint ", Describe(*next), " does not follow from size ",
        from.size, ": ", stats.status().message(), "; refusing to cosign"));
  }
  result.subjects = *stats;
  absl::StatusOr<std::string> cosigned = cosigner.Cosign(note, timestamp);
  if (!cosigned.ok()) return cosigned.status();
  result.cosigned_note = *std::move(cosigned);
  state->Set(origin, std::string(note));
  return result;
}

std::string FormatAddCheckpointRequest(const AddCheckpointRequest& request) {
  std::string out = absl::StrCat("old ", request.old_size, "\n");
  for (const Hash& h : request.proof) absl::StrAppend(&out, absl::Base64Escape(AsBytes(h)), "\n");
  absl::StrAppend(&out, "\n", request.note);
  return out;
}

absl::StatusOr<AddCheckpointRequest> ParseAddCheckpointRequest(absl::string_view body) {
  AddCheckpointRequest req;
  size_t pos = 0;
  auto next_line = [&](absl::string_view* line) {
    size_t nl = body.find('\n', pos);
    if (nl == absl::string_view::npos) return false;
    *line = body.substr(pos, nl - pos);
    pos = nl + 1;
    return true;
  };
  absl::string_view line;
  if (!next_line(&line) || !absl::ConsumePrefix(&line, "old ") || line.empty() ||
      (line.size() > 1 && line[0] == '0') ||
      line.find_first_not_of("0123456789") != absl::string_view::npos ||
      !absl::SimpleAtoi(line, &req.old_size)) {
    return absl::InvalidArgumentError(
        "add-checkpoint line 1: want \"old <size>\" with the size in decimal without leading "
        "zeros");
  }
  for (size_t n = 2;; ++n) {
    if (!next_line(&line)) {
      return absl::InvalidArgumentError(absl::StrCat("add-checkpoint line ", n,
                                                     ": want a proof hash or the empty line before "
                                                     "the checkpoint, got the end of the body"));
    }
    if (line.empty()) break;
    if (req.proof.size() == kMaxAddCheckpointProof) {
      return absl::InvalidArgumentError(
          absl::StrCat("add-checkpoint: more than ", kMaxAddCheckpointProof, " proof lines"));
    }
    std::string raw;
    if (!absl::Base64Unescape(line, &raw) || absl::Base64Escape(raw) != line ||
        raw.size() != kHashSize) {
      return absl::InvalidArgumentError(absl::StrCat(
          "add-checkpoint line ", n, ": want a proof hash in standard base64 of 32 bytes"));
    }
    Hash h{};
    std::copy(raw.begin(), raw.end(), h.begin());
    req.proof.push_back(h);
  }
  req.note = std::string(body.substr(pos));
  if (req.note.empty())
    return absl::InvalidArgumentError("add-checkpoint: the checkpoint is empty");
  return req;
}

absl::StatusOr<AddCheckpointResult> WitnessAddCheckpoint(const std::vector<NoteVerifier>& logs,
                                                         const AddCheckpointRequest& request,
                                                         const Cosigner& cosigner,
                                                         uint64_t timestamp, WitnessState* state,
                                                         uint64_t* known_size) {
  *known_size = 0;
  absl::StatusOr<SignedNote> parsed = ParseSignedNote(request.note);
  if (!parsed.ok()) return parsed.status();
  absl::StatusOr<Checkpoint> unverified = ParseCheckpointBody(parsed->text);
  if (!unverified.ok()) return unverified.status();
  const NoteVerifier* log = nullptr;
  for (const NoteVerifier& v : logs) {
    if (v.name() == unverified->origin) log = &v;
  }
  if (log == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("this witness does not know the log \"", unverified->origin, "\""));
  }
  // Remembered first, so a refusal below can name the size.
  std::optional<Checkpoint> prev;
  if (std::optional<std::string> old_note = state->Note(log->name())) {
    absl::StatusOr<Checkpoint> p = OpenCheckpoint(*old_note, *log, log->name());
    if (!p.ok()) {
      return absl::DataLossError(absl::StrCat("witness state for ", log->name(),
                                              ": the remembered checkpoint does not open with the "
                                              "log key: ",
                                              p.status().message()));
    }
    prev = *p;
    *known_size = p->size;
  }
  absl::StatusOr<Checkpoint> next = OpenCheckpoint(request.note, *log, log->name());
  if (!next.ok()) {
    if (next.status().code() == absl::StatusCode::kDataLoss) {
      return absl::PermissionDeniedError(absl::StrCat("checkpoint: ", next.status().message()));
    }
    return next.status();
  }
  if (request.old_size > next->size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "old size got ", request.old_size, ", want at most the checkpoint's size ", next->size));
  }
  if (request.old_size != *known_size) {
    return absl::AbortedError(absl::StrCat("old size got ", request.old_size,
                                           ", want the size this witness last cosigned for ",
                                           log->name(), ": ", *known_size));
  }
  const Hash old_root = prev.has_value() ? prev->root : EmptyRoot();
  if (prev.has_value() && next->size == prev->size && next->root != prev->root) {
    return absl::AbortedError(absl::StrCat("fork: log ", log->name(), " shows two roots at size ",
                                           next->size, ": cosigned ", ToHex(prev->root), ", now ",
                                           ToHex(next->root)));
  }
  absl::Status consistent =
      request.old_size == 0
          ? (request.proof.empty()
                 ? absl::OkStatus()
                 : absl::InvalidArgumentError("the proof from old size 0 must be empty"))
          : VerifyConsistency(request.old_size, next->size, request.proof, old_root, next->root);
  if (!consistent.ok()) {
    return absl::DataLossError(absl::StrCat("consistency proof ", request.old_size, " -> ",
                                            next->size,
                                            " does not verify: ", consistent.message()));
  }
  AddCheckpointResult result;
  result.checkpoint = *next;
  absl::StatusOr<std::string> line = cosigner.SignatureLine(parsed->text, timestamp);
  if (!line.ok()) return line.status();
  result.signature_lines = *std::move(line);
  state->Set(log->name(), request.note);
  return result;
}

}  // namespace caseledger
