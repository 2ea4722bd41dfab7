// ledger_verify: the auditor's verifier. Checks a caseledger export bundle,
// or a data directory opened read-only, from raw bytes and the auditor's own
// key: the global hash chain, every leaf and payload commitment, stream
// versions, event-id uniqueness, the Merkle root and signature of every
// checkpoint (and, for a directory, every stored Merkle node).
//
//   ledger_verify --bundle=FILE|- --key=KEY [--since=NOTE] [--save_note=NOTE]
//   ledger_verify --data_dir=./data --key=KEY [--since=NOTE] [--save_note=NOTE]
//                 [--keep_going] [--json] [--progress]
//   ledger_verify --pg_conninfo=CONNINFO --key=KEY --global_key=KEY
//                 (a ledger whose log of record is PostgreSQL, any partition count)
//
// Incremental audit: --since is the checkpoint note verified last time
// (--save_note wrote it); the ledger must still hold that exact tree, and
// only what came after is read.
//
// The bundle path links only the verification libraries (ledger/bundle,
// chain_verifier, checkpoint, merkle); the data-directory path adds the
// read-only RocksDB store.
//
// Exit status: 0 when everything holds, 1 when anything does not, 2 for bad
// usage. The server may keep running: the directory is opened read-only.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "ledger/bundle.h"
#include "ledger/checkpoint.h"
#include "ledger/internal/file.h"
#include "ledger/internal/json.h"
#include "ledger/pg_verify.h"
#include "ledger/rocks_store.h"
#include "ledger/store_verifier.h"
#include "ledger/subject_index_check.h"

ABSL_FLAG(std::string, data_dir, "",
          "The server's --data_dir (its ledger/ is read). Default ./data when --bundle is not "
          "given.");
ABSL_FLAG(std::string, bundle, "", "An export bundle (ledgerctl export) to verify; - for stdin.");
ABSL_FLAG(std::string, key, "",
          "The checkpoint verifier key (name+keyhash+base64), or a file holding it. Required: "
          "use the key you trust, not one read from what is being checked.");
ABSL_FLAG(std::string, origin, "", "Expected checkpoint origin; default: the key's name.");
ABSL_FLAG(std::string, since, "",
          "Incremental audit: a file holding the checkpoint note you verified last time. The "
          "ledger must reproduce its root (else it was rolled back or forked); only what came "
          "after is read.");
ABSL_FLAG(std::string, save_note, "",
          "When everything verifies, write the newest verified checkpoint note to this file "
          "(for the next --since).");
ABSL_FLAG(bool, keep_going, false, "Count every failure instead of stopping at the first.");
ABSL_FLAG(bool, json, false, "Print the summary as one JSON object.");
ABSL_FLAG(bool, progress, true, "Show progress on stderr when it is a terminal.");
ABSL_FLAG(bool, check_event_ids, true,
          "Check that no event id repeats (keeps 16 bytes per record in memory).");
ABSL_FLAG(std::string, pg_conninfo, "",
          "Cluster mode (ledger/CLUSTER.md): verify the ledger in this PostgreSQL database "
          "from its tables: every partition's chain and checkpoints (--key), the global log "
          "and its checkpoints (--global_key).");
ABSL_FLAG(std::string, global_key, "",
          "With --pg_conninfo: the global log's verifier key (key name <origin>/global), or a "
          "file holding it. Default: --key.");
ABSL_FLAG(bool, check_nodes, true,
          "Data directory only: check every stored Merkle node against its children.");

namespace caseledger {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file.good()) return absl::NotFoundError(absl::StrCat(path, ": cannot be read"));
  std::stringstream ss;
  ss << file.rdbuf();
  return ss.str();
}

// What both modes report, for one way of printing it.
struct Summary {
  std::string mode;  // "bundle" or "data_dir"
  uint64_t tree_size = 0;
  uint64_t first_seq = 0;
  uint64_t records_checked = 0;
  uint64_t checkpoints_checked = 0;
  std::optional<uint64_t> nodes_checked;
  // Checkpoints whose subjects root was recomputed (nullopt: the records
  // did not start at seq 0, so the subject map could not be rebuilt).
  std::optional<uint64_t> subject_roots_checked;
  Hash root{};
  uint64_t latest_size = 0;
  std::string latest_note;
  std::optional<uint64_t> since_size;
  bool since_checked = false;
  // Bundles only.
  std::optional<bool> start_anchored;
  std::optional<bool> header_key_matches;
  std::optional<uint64_t> unsigned_records;
  std::vector<VerifyFailure> failures;
  size_t failures_seen = 0;
  absl::Status status;
};

void Print(const Summary& s, double secs) {
  double rate = secs > 0 ? s.records_checked / secs : 0;
  auto u = [](uint64_t v) { return static_cast<unsigned long long>(v); };
  if (absl::GetFlag(FLAGS_json)) {
    std::string failures = "[";
    for (size_t i = 0; i < s.failures.size(); ++i) {
      absl::StrAppend(&failures, i ? "," : "", "{\"seq\":", s.failures[i].seq,
                      ",\"error\":", JsonQuote(s.failures[i].status.message()), "}");
    }
    failures += "]";
    std::string extra;
    if (s.nodes_checked) absl::StrAppend(&extra, ",\"nodes_checked\":", *s.nodes_checked);
    if (s.subject_roots_checked) {
      absl::StrAppend(&extra, ",\"subject_roots_checked\":", *s.subject_roots_checked);
    }
    if (s.since_size) {
      absl::StrAppend(&extra, ",\"since_size\":", *s.since_size,
                      ",\"since_checked\":", s.since_checked ? "true" : "false");
    }
    if (s.start_anchored) {
      absl::StrAppend(&extra, ",\"start_anchored\":", *s.start_anchored ? "true" : "false");
    }
    if (s.header_key_matches) {
      absl::StrAppend(&extra, ",\"bundle_key_matches\":", *s.header_key_matches ? "true" : "false");
    }
    if (s.unsigned_records) absl::StrAppend(&extra, ",\"unsigned_records\":", *s.unsigned_records);
    std::printf(
        "{\"ok\":%s,\"tree_size\":%llu,\"records_checked\":%llu,\"checkpoints_checked\":%llu,"
        "\"root\":\"%s\",\"seconds\":%.3f,\"records_per_second\":%.0f,\"mode\":\"%s\","
        "\"first_seq\":%llu,\"latest_checkpoint\":%llu%s,\"failures_total\":%llu,"
        "\"failures\":%s}\n",
        s.status.ok() ? "true" : "false", u(s.tree_size), u(s.records_checked),
        u(s.checkpoints_checked), ToHex(s.root).c_str(), secs, rate, s.mode.c_str(),
        u(s.first_seq), u(s.latest_size), extra.c_str(), u(s.failures_seen), failures.c_str());
    return;
  }
  std::printf("tree size:     %llu\n", u(s.tree_size));
  if (s.first_seq > 0) {
    std::printf("range:         records %llu..%llu\n", u(s.first_seq),
                u(s.tree_size > 0 ? s.tree_size - 1 : 0));
  }
  std::printf("records:       %llu checked in %.2f s (%.0f records/s)\n", u(s.records_checked),
              secs, rate);
  std::printf("checkpoints:   %llu checked (newest verified at size %llu)\n",
              u(s.checkpoints_checked), u(s.latest_size));
  if (s.nodes_checked) std::printf("merkle nodes:  %llu checked\n", u(*s.nodes_checked));
  if (s.subject_roots_checked) {
    std::printf("subject index: %llu checkpoint roots recomputed from the records\n",
                u(*s.subject_roots_checked));
  } else {
    std::printf("subject index: not checked (needs the records from seq 0)\n");
  }
  std::printf("root:          %s\n", ToHex(s.root).c_str());
  if (s.since_size) {
    std::printf("since:         your checkpoint at size %llu %s\n", u(*s.since_size),
                s.since_checked ? "holds" : "does NOT hold");
  }
  if (s.start_anchored && !*s.start_anchored) {
    std::printf("note:          the range's start is not tied to a checkpoint you hold or one "
                "signed at its start (pass --since)\n");
  }
  if (s.header_key_matches && !*s.header_key_matches) {
    std::printf("note:          the key inside the bundle differs from --key (only --key is "
                "used)\n");
  }
  if (s.unsigned_records && *s.unsigned_records > 0) {
    std::printf("note:          the last %llu records are chained but no checkpoint covers "
                "them yet\n", u(*s.unsigned_records));
  }
  for (const VerifyFailure& f : s.failures) {
    std::printf("FAIL at seq %llu: %s\n", u(f.seq), std::string(f.status.message()).c_str());
  }
  if (s.failures_seen > s.failures.size()) {
    std::printf("(%llu more failures not shown)\n", u(s.failures_seen - s.failures.size()));
  }
  std::printf("%s\n", s.status.ok() ? "OK: the ledger verifies"
                                     : ("FAILED: " + s.status.ToString()).c_str());
}

// A verifier key given inline or in a file.
absl::StatusOr<NoteVerifier> LoadVerifierKey(std::string key) {
  if (std::ifstream file(key); file.good() && key.find('+') == std::string::npos) {
    std::stringstream ss;
    ss << file.rdbuf();
    key = std::string(absl::StripAsciiWhitespace(ss.str()));
  }
  return NoteVerifier::FromVerifierKey(key);
}

int RunPostgres(const NoteVerifier& verifier, const std::string& origin) {
  std::string global_key = absl::GetFlag(FLAGS_global_key);
  if (global_key.empty()) global_key = absl::GetFlag(FLAGS_key);
  absl::StatusOr<NoteVerifier> global = LoadVerifierKey(global_key);
  if (!global.ok()) {
    std::fprintf(stderr, "ledger_verify: --global_key: %s\n", global.status().ToString().c_str());
    return kExitUsage;
  }
  absl::StatusOr<PgLedgerSummary> s =
      VerifyPgLedger(absl::GetFlag(FLAGS_pg_conninfo), origin, verifier, *global);
  if (!s.ok()) {
    std::printf("FAILED: %s\n", s.status().ToString().c_str());
    return kExitFailed;
  }
  std::string sizes;
  for (uint64_t n : s->partition_sizes) absl::StrAppend(&sizes, sizes.empty() ? "" : " ", n);
  std::printf("partitions: %zu (records: %s)\nglobal log: %llu leaves, %llu checkpoints\n"
              "OK: the ledger in PostgreSQL verifies\n",
              s->partition_sizes.size(), sizes.c_str(),
              static_cast<unsigned long long>(s->global_size),
              static_cast<unsigned long long>(s->global_checkpoints));
  return kExitOk;
}

int Run() {
  std::string key = absl::GetFlag(FLAGS_key);
  if (key.empty()) {
    std::fprintf(stderr, "ledger_verify: --key is required (the verifier key the server printed "
                         "at start, or a file holding it)\n");
    return kExitUsage;
  }
  auto verifier = LoadVerifierKey(key);
  if (!verifier.ok()) {
    std::fprintf(stderr, "ledger_verify: --key: %s\n", verifier.status().ToString().c_str());
    return kExitUsage;
  }
  std::string origin =
      absl::GetFlag(FLAGS_origin).empty() ? verifier->name() : absl::GetFlag(FLAGS_origin);
  if (!absl::GetFlag(FLAGS_pg_conninfo).empty()) return RunPostgres(*verifier, origin);
  std::string bundle = absl::GetFlag(FLAGS_bundle);
  std::string data_dir = absl::GetFlag(FLAGS_data_dir);
  if (!bundle.empty() && !data_dir.empty()) {
    std::fprintf(stderr, "ledger_verify: give --bundle or --data_dir, not both\n");
    return kExitUsage;
  }
  if (bundle.empty() && data_dir.empty()) data_dir = "./data";

  std::optional<TrustedCheckpoint> since;
  if (!absl::GetFlag(FLAGS_since).empty()) {
    absl::StatusOr<std::string> note = ReadFile(absl::GetFlag(FLAGS_since));
    absl::StatusOr<Checkpoint> cp =
        note.ok() ? OpenCheckpoint(*note, *verifier, origin) : note.status();
    if (!cp.ok()) {
      std::fprintf(stderr, "ledger_verify: --since: %s\n", cp.status().ToString().c_str());
      return kExitUsage;
    }
    since = TrustedCheckpoint{cp->size, cp->root};
  }

  size_t max_failures = absl::GetFlag(FLAGS_keep_going) ? 1000 : 1;
  absl::Time start = absl::Now();
  std::function<void(uint64_t, uint64_t)> progress;
  if (absl::GetFlag(FLAGS_progress) && isatty(STDERR_FILENO)) {
    progress = [start](uint64_t done, uint64_t total) {
      double secs = absl::ToDoubleSeconds(absl::Now() - start);
      std::fprintf(stderr, "\r%llu / %llu records (%.0f%%), %.0f records/s   ",
                   static_cast<unsigned long long>(done), static_cast<unsigned long long>(total),
                   total ? 100.0 * done / total : 100.0, secs > 0 ? done / secs : 0.0);
      if (done >= total) std::fprintf(stderr, "\n");
    };
  }

  // Recomputes every checkpoint's subjects root when the records start at 0.
  SubjectIndexCheck subject_check;
  Summary s;
  s.since_size = since ? std::optional<uint64_t>(since->size) : std::nullopt;
  if (!bundle.empty()) {
    absl::StatusOr<std::unique_ptr<ByteSource>> source = OpenFileSource(bundle);
    if (!source.ok()) {
      std::fprintf(stderr, "ledger_verify: --bundle: %s\n", source.status().ToString().c_str());
      return kExitFailed;
    }
    BundleVerifyOptions options;
    options.note_verifier = &*verifier;
    options.origin = origin;
    options.max_failures = max_failures;
    options.check_event_ids = absl::GetFlag(FLAGS_check_event_ids);
    options.since = since;
    options.observer = &subject_check;
    options.progress = progress;
    options.progress_every = 1 << 18;
    BundleVerifyReport r = VerifyBundle(**source, options);
    s.mode = "bundle";
    s.tree_size = r.tree_size;
    s.first_seq = r.header.first_seq;
    s.records_checked = r.records_checked;
    s.checkpoints_checked = r.checkpoints_checked;
    s.root = r.root;
    s.latest_size = r.latest_size;
    s.latest_note = r.latest_note;
    s.since_checked = r.since_checked;
    s.start_anchored = r.start_anchored;
    s.header_key_matches = r.header_read ? std::optional<bool>(r.header_key_matches)
                                         : std::nullopt;
    s.unsigned_records = r.unsigned_records;
    s.failures = r.failures;
    s.failures_seen = r.failures_seen;
    s.status = r.status;
  } else {
    RocksStoreOptions store_options;
    store_options.path = data_dir + "/ledger";
    store_options.read_only = true;
    auto store = OpenRocksStore(store_options);
    if (!store.ok()) {
      std::fprintf(stderr, "ledger_verify: %s\n", store.status().ToString().c_str());
      return kExitFailed;
    }
    StoreVerifyOptions options;
    options.note_verifier = &*verifier;
    options.origin = origin;
    options.max_failures = max_failures;
    options.check_event_ids = absl::GetFlag(FLAGS_check_event_ids);
    options.check_nodes = absl::GetFlag(FLAGS_check_nodes);
    options.since = since;
    options.observer = &subject_check;
    options.progress = progress;
    options.progress_every = 1 << 18;
    StoreVerifyReport r = VerifyStore(**store, options);
    s.mode = "data_dir";
    s.tree_size = r.tree_size;
    s.first_seq = r.first_seq;
    s.records_checked = r.records_checked;
    s.checkpoints_checked = r.checkpoints_checked;
    if (options.check_nodes) s.nodes_checked = r.nodes_checked;
    s.root = r.root;
    s.latest_size = r.latest_size;
    s.latest_note = r.latest_note;
    s.since_checked = r.since_checked;
    s.failures = r.failures;
    s.failures_seen = r.failures_seen;
    s.status = r.status;
  }
  if (!subject_check.idle() && s.records_checked > 0) {
    s.subject_roots_checked = subject_check.checked();
  }
  Print(s, absl::ToDoubleSeconds(absl::Now() - start));
  if (!s.status.ok()) return kExitFailed;
  if (!absl::GetFlag(FLAGS_save_note).empty()) {
    if (s.latest_note.empty()) {
      std::fprintf(stderr, "ledger_verify: --save_note: no checkpoint was verified\n");
      return kExitFailed;
    }
    absl::Status w = internal::WriteFileDurably(absl::GetFlag(FLAGS_save_note), s.latest_note);
    if (!w.ok()) {
      std::fprintf(stderr, "ledger_verify: --save_note: %s\n", w.ToString().c_str());
      return kExitFailed;
    }
  }
  return kExitOk;
}

}  // namespace
}  // namespace caseledger

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Verifies a caseledger export bundle or data directory (read-only).\n"
      "  ledger_verify --bundle=FILE --key=NAME+HASH+KEY [--since=NOTE] [--save_note=NOTE]\n"
      "  ledger_verify --data_dir=./data --key=NAME+HASH+KEY [--keep_going] [--json]\n"
      "  ledger_verify --pg_conninfo=CONNINFO --key=NAME+HASH+KEY [--global_key=KEY]");
  absl::ParseCommandLine(argc, argv);
  return caseledger::Run();
}
