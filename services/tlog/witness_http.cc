#include "services/tlog/witness_http.h"

#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace caseledger {

int AddCheckpointHttpStatus(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kInvalidArgument:
      return 400;
    case absl::StatusCode::kAborted:
      return 409;
    case absl::StatusCode::kDataLoss:
      return 422;
    default:
      return 500;
  }
}

WitnessHttpHandler::WitnessHttpHandler(std::vector<NoteVerifier> logs, const Cosigner* cosigner,
                                       std::string state_path, WitnessState state,
                                       std::function<uint64_t()> now)
    : logs_(std::move(logs)),
      cosigner_(cosigner),
      state_path_(std::move(state_path)),
      now_(std::move(now)),
      state_(std::move(state)) {}

HttpResponse WitnessHttpHandler::Handle(const HttpRequest& request) {
  if (request.path != "/add-checkpoint") {
    return TextResponse(404, absl::StrCat("no resource at ", request.path,
                                          "; this witness serves POST /add-checkpoint"));
  }
  if (request.method != "POST") {
    return TextResponse(405, absl::StrCat("method got ", request.method, ", want POST"));
  }
  absl::StatusOr<AddCheckpointRequest> req = ParseAddCheckpointRequest(request.body);
  if (!req.ok()) return TextResponse(400, std::string(req.status().message()));
  absl::MutexLock lock(&mu_);
  WitnessState next = state_;
  uint64_t known = 0;
  absl::StatusOr<AddCheckpointResult> r =
      WitnessAddCheckpoint(logs_, *req, *cosigner_, now_(), &next, &known);
  if (!r.ok()) {
    const int status = AddCheckpointHttpStatus(r.status());
    if (status == 409) {
      HttpResponse conflict;
      conflict.status = 409;
      conflict.content_type = "text/x.tlog.size";
      conflict.body = absl::StrCat(known, "\n");
      return conflict;
    }
    // A damaged state file is the witness's problem, not the log's proof.
    if (r.status().code() == absl::StatusCode::kDataLoss &&
        absl::StartsWith(r.status().message(), "witness state")) {
      return TextResponse(500, "the witness's state could not be read");
    }
    return TextResponse(status, std::string(r.status().message()));
  }
  // Persisted before answering: a cosignature never claims more than the
  // state on disk holds.
  absl::Status saved = next.Save(state_path_);
  if (!saved.ok()) return TextResponse(500, "the witness could not save its state");
  state_ = std::move(next);
  HttpResponse ok;
  ok.body = r->signature_lines;
  return ok;
}

absl::StatusOr<PushWitness> ParseWitnessUrl(absl::string_view flag) {
  size_t at = flag.find('@');
  if (at == absl::string_view::npos || at == 0 || at + 1 == flag.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--witness_url got \"", flag, "\", want <witness verifier key>@<submission URL prefix>"));
  }
  PushWitness w{std::string(absl::StripSuffix(flag.substr(at + 1), "/")),
                std::string(flag.substr(0, at))};
  if (!absl::StartsWith(w.url, "http://") && !absl::StartsWith(w.url, "https://")) {
    return absl::InvalidArgumentError(
        absl::StrCat("--witness_url: URL got \"", w.url, "\", want http:// or https://"));
  }
  absl::StatusOr<CosignatureVerifier> v = CosignatureVerifier::FromVerifierKey(w.vkey);
  if (!v.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--witness_url: key: ", v.status().message()));
  }
  return w;
}

WitnessPusher::WitnessPusher(WitnessPusherOptions options)
    : options_(std::move(options)),
      known_(options_.witnesses.size(), 0),
      cosigned_(options_.witnesses.size()),
      last_error_(options_.witnesses.size()) {}

WitnessPusher::~WitnessPusher() { Stop(); }

absl::Status WitnessPusher::PushOnce() {
  absl::StatusOr<std::optional<StoredCheckpoint>> latest = options_.latest();
  if (!latest.ok()) return latest.status();
  if (!latest->has_value()) return absl::OkStatus();
  absl::MutexLock lock(&push_mu_);
  absl::Status first;
  for (size_t i = 0; i < options_.witnesses.size(); ++i) {
    if (cosigned_[i] == (*latest)->size) continue;
    absl::Status s = Push(i, **latest);
    if (!s.ok()) {
      s = absl::Status(s.code(),
                       absl::StrCat("witness ", options_.witnesses[i].url, ": ", s.message()));
      if (first.ok()) first = s;
    }
    // Said once per change, not every round while a witness stays down.
    const std::string said = s.ok() ? std::string() : s.ToString();
    if (said != last_error_[i] && options_.log) {
      options_.log(s.ok() ? absl::StrCat("witness ", options_.witnesses[i].url, ": cosigning again")
                          : said);
    }
    last_error_[i] = said;
  }
  return first;
}

absl::Status WitnessPusher::Push(size_t i, const StoredCheckpoint& latest) {
  const PushWitness& w = options_.witnesses[i];
  for (int attempt = 0; attempt < 2; ++attempt) {
    const uint64_t old_size = known_[i];
    if (old_size > latest.size) {
      return absl::FailedPreconditionError(absl::StrCat("it last cosigned size ", old_size,
                                                        ", beyond this log's latest checkpoint ",
                                                        latest.size));
    }
    AddCheckpointRequest req;
    req.old_size = old_size;
    req.note = latest.note;
    if (old_size > 0) {
      absl::StatusOr<std::vector<Hash>> proof = options_.proof(old_size, latest.size);
      if (!proof.ok()) return proof.status();
      req.proof = *std::move(proof);
    }
    absl::StatusOr<HttpAnswer> answer =
        HttpPost(w.url + "/add-checkpoint", FormatAddCheckpointRequest(req), options_.timeout);
    if (!answer.ok()) return answer.status();
    if (answer->status == 409) {
      uint64_t size = 0;
      absl::string_view body = answer->body;
      if (!absl::ConsumeSuffix(&body, "\n") || !absl::SimpleAtoi(body, &size)) {
        return absl::InvalidArgumentError(
            absl::StrCat("409 with body \"", answer->body, "\", want \"<size>\\n\""));
      }
      if (size == old_size) {
        return absl::AbortedError(absl::StrCat("it refused size ", latest.size,
                                               " at the size it holds (", size, "): a fork?"));
      }
      known_[i] = size;
      continue;
    }
    if (answer->status != 200) {
      return absl::Status(
          answer->status == 404   ? absl::StatusCode::kNotFound
          : answer->status == 403 ? absl::StatusCode::kPermissionDenied
          : answer->status == 422 ? absl::StatusCode::kDataLoss
                                  : absl::StatusCode::kUnavailable,
          absl::StrCat("HTTP ", answer->status, ": ", absl::StripAsciiWhitespace(answer->body)));
    }
    absl::Status stored = options_.store(latest.note + answer->body);
    if (!stored.ok()) return stored;
    known_[i] = latest.size;
    cosigned_[i] = latest.size;
    return absl::OkStatus();
  }
  return absl::AbortedError("its size kept changing; the next round tries again");
}

void WitnessPusher::Start() {
  thread_ = std::thread([this] {
    for (;;) {
      (void)PushOnce();  // reported through options_.log
      absl::MutexLock lock(&stop_mu_);
      if (stop_mu_.AwaitWithTimeout(absl::Condition(&stop_), options_.interval)) return;
    }
  });
}

void WitnessPusher::Stop() {
  {
    absl::MutexLock lock(&stop_mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

}  // namespace caseledger
