// A node waiting for the partition lease (cluster mode, P = 1) keeps its read
// models warm: after each step of PgStore's tailing (PgStoreOptions::
// while_waiting) it opens a Ledger over a read-only view of its local store
// and a Projector over its projections directory, applies what the read
// models lack, and closes both. At lease time the server opens them again as
// usual, and the projector has only the last moments left to apply
// (ledger/CLUSTER.md "A waiting node keeps warm").
//
// Nothing is written to PostgreSQL: the key table is a read-only copy of
// cl_keys (OpenPgKeyView). The read models hold plaintext opened with keys
// that the owner may destroy while this node waits (a disposal, an erasure),
// and this node's copy of the key table does not see the deletion; so at lease
// time Finish() compares the copy with cl_keys and, when a key it held is
// gone, marks the read models stale, and the server's Projector::Open then
// rebuilds them from the log (in which those records no longer open).
#ifndef CASELEDGER_SERVICES_API_WARM_READ_MODELS_H_
#define CASELEDGER_SERVICES_API_WARM_READ_MODELS_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "ledger/crypto.h"
#include "ledger/key_store.h"
#include "ledger/ledger.h"
#include "ledger/log_store.h"
#include "ledger/pg_store.h"
#include "services/readmodel/projector.h"

namespace caseledger {

struct WarmReadModelsOptions {
  std::string conninfo;  // PostgreSQL (cl_keys)
  // As the server opens them at lease time: origin, signer, record format
  // (`blind_ids` with a master key), the projector's path, shredding event
  // type and sealing key.
  std::string origin;
  const NoteSigner* signer = nullptr;  // borrowed; never signs here
  std::optional<AeadKey> master_key;
  KeyStoreOptions key_options;
  bool blind_ids = true;
  ProjectorOptions projector;
  std::function<std::vector<std::unique_ptr<Projection>>()> projections;
  // Applies at most this often (the tailing steps come every few hundred ms).
  absl::Duration min_interval = absl::Seconds(1);
  std::function<void(const std::string&)> log;
};

// Not thread-safe: PgStore calls Step on its waiting thread, then the server
// calls Finish once OpenPgStore has returned.
class WarmReadModels {
 public:
  explicit WarmReadModels(WarmReadModelsOptions options) : options_(std::move(options)) {}

  // PgStoreOptions::while_waiting. A failure is logged and warming pauses
  // for kRetryAfter (the read models catch up at lease time in any case).
  void Step(LogStore& local);
  // At lease time, before the server opens its projector. Marks the read
  // models stale when a key they may have been projected with is gone.
  absl::Status Finish();

  uint64_t position() const { return position_; }  // what the read models reflect

 private:
  absl::Status Apply(LogStore& local);
  void Log(const std::string& line) const {
    if (options_.log) options_.log(line);
  }

  WarmReadModelsOptions options_;
  std::unique_ptr<PgKeyView> keys_;       // opened at the first step
  std::unique_ptr<KeyStore> key_store_;
  static constexpr absl::Duration kRetryAfter = absl::Seconds(30);
  absl::Time retry_at_ = absl::InfinitePast();
  absl::Time last_ = absl::InfinitePast();    // the last Apply
  absl::Time logged_ = absl::InfinitePast();
  uint64_t position_ = 0;
};

}  // namespace caseledger

#endif  // CASELEDGER_SERVICES_API_WARM_READ_MODELS_H_
