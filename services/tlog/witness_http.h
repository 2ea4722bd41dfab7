// Both ends of c2sp.org/tlog-witness over HTTP (services/tlog/WITNESS_HTTP.md):
//  * WitnessHttpHandler, the witness's POST <prefix>/add-checkpoint, which
//    tools/ledger_witness serves with --listen;
//  * WitnessPusher, the log's client: it submits each new signed checkpoint
//    to configured witnesses (libcurl) and hands their cosignatures to the
//    server's cosignature store.
#ifndef CASELEDGER_SERVICES_TLOG_WITNESS_HTTP_H_
#define CASELEDGER_SERVICES_TLOG_WITNESS_HTTP_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "ledger/checkpoint.h"
#include "ledger/cosignature.h"
#include "ledger/hash.h"
#include "ledger/log_store.h"
#include "ledger/witness.h"
#include "services/tlog/http_client.h"
#include "services/tlog/http_server.h"

namespace caseledger {

// The HTTP status tlog-witness gives each refusal of WitnessAddCheckpoint:
// NOT_FOUND 404, PERMISSION_DENIED 403, INVALID_ARGUMENT 400, ABORTED 409,
// DATA_LOSS 422 (a damaged state file is 500, never 422).
int AddCheckpointHttpStatus(const absl::Status& status);

// Thread-safe: add-checkpoint calls are serialized, so the check of the old
// size and the durable update of the state are one atomic step.
class WitnessHttpHandler {
 public:
  // `logs`: the logs this witness cosigns (origin = each verifier's name).
  // `cosigner` is borrowed and must outlive the handler. The state lives in
  // the file at `state_path` (WitnessState::Save after each cosignature,
  // before the answer). `now` gives POSIX seconds.
  WitnessHttpHandler(std::vector<NoteVerifier> logs, const Cosigner* cosigner,
                     std::string state_path, WitnessState state, std::function<uint64_t()> now);

  // POST /add-checkpoint; anything else is 404 (or 405 for another method).
  HttpResponse Handle(const HttpRequest& request);

 private:
  const std::vector<NoteVerifier> logs_;
  const Cosigner* const cosigner_;
  const std::string state_path_;
  const std::function<uint64_t()> now_;
  absl::Mutex mu_;
  WitnessState state_ ABSL_GUARDED_BY(mu_);
};

// A witness the log pushes to: its submission prefix (e.g.
// "http://127.0.0.1:8081") and its cosignature verifier key.
struct PushWitness {
  std::string url;
  std::string vkey;
};

// "<vkey>@<url>" (a verifier key holds no '@'). INVALID_ARGUMENT naming the
// rule for anything else, or for a key CosignatureVerifier refuses.
absl::StatusOr<PushWitness> ParseWitnessUrl(absl::string_view flag);

struct WitnessPusherOptions {
  std::vector<PushWitness> witnesses;
  // The newest signed checkpoint (nullopt before the first).
  std::function<absl::StatusOr<std::optional<StoredCheckpoint>>()> latest;
  // PROOF(from, to) of the log.
  std::function<absl::StatusOr<std::vector<Hash>>(uint64_t from, uint64_t to)> proof;
  // Stores the checkpoint note with a witness's lines appended; checks them
  // (the server's WitnessService::Add).
  std::function<absl::Status(absl::string_view cosigned_note)> store;
  // Start() pushes this often (each time only checkpoints a witness has not
  // cosigned yet).
  absl::Duration interval = absl::Seconds(1);
  absl::Duration timeout = absl::Seconds(10);
  // Where failures are reported: once per witness until the failure changes
  // or the witness cosigns again; may be empty.
  std::function<void(const std::string&)> log;
};

// Thread-safe.
class WitnessPusher {
 public:
  explicit WitnessPusher(WitnessPusherOptions options);
  ~WitnessPusher();  // Stop()s.

  // One round: each witness that has not cosigned the latest checkpoint gets
  // it, with a proof from the size it last cosigned (learned from its 409
  // answer: one retry); its lines are stored. The first error, naming the
  // witness's URL: UNAVAILABLE for a transport failure, the status its HTTP
  // answer maps to otherwise, or the store's error.
  absl::Status PushOnce();

  void Start();
  void Stop();

 private:
  absl::Status Push(size_t i, const StoredCheckpoint& latest);

  const WitnessPusherOptions options_;
  absl::Mutex push_mu_;  // one round at a time
  // What each witness last cosigned, as far as we know.
  std::vector<uint64_t> known_ ABSL_GUARDED_BY(push_mu_);
  std::vector<std::optional<uint64_t>> cosigned_ ABSL_GUARDED_BY(push_mu_);
  // The last failure reported per witness ("" after a success).
  std::vector<std::string> last_error_ ABSL_GUARDED_BY(push_mu_);
  absl::Mutex stop_mu_;
  bool stop_ ABSL_GUARDED_BY(stop_mu_) = false;
  std::thread thread_;
};

}  // namespace caseledger

#endif  // CASELEDGER_SERVICES_TLOG_WITNESS_HTTP_H_
