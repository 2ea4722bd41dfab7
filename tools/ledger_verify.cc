// ledger_verify: checks a caseledger data directory, opened read-only, from
// its raw bytes: the global hash chain, every leaf and payload commitment,
// stream versions, and the Merkle root and signature of every checkpoint.
//
//   ledger_verify --data_dir=./data --key=VERIFIER_KEY_OR_FILE [--keep_going] [--json]
//
// Exit status: 0 when everything holds, 1 when anything does not, 2 for bad
// usage. The server may keep running: the directory is opened read-only.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "ledger/checkpoint.h"
#include "ledger/rocks_store.h"
#include "ledger/store_verifier.h"

ABSL_FLAG(std::string, data_dir, "./data", "The server's --data_dir (its ledger/ is read).");
ABSL_FLAG(std::string, key, "",
          "The checkpoint verifier key (name+keyhash+base64), or a file holding it. Required: "
          "use the key you trust, not one read from the directory being checked.");
ABSL_FLAG(std::string, origin, "", "Expected checkpoint origin; default: the key's name.");
ABSL_FLAG(bool, keep_going, false, "Count every failure instead of stopping at the first.");
ABSL_FLAG(bool, json, false, "Print the summary as one JSON object.");
ABSL_FLAG(bool, progress, true, "Show progress on stderr when it is a terminal.");

namespace caseledger {
namespace {

std::string JsonString(absl::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += absl::StrFormat("\\u%04x", c);
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

int Run() {
  std::string key = absl::GetFlag(FLAGS_key);
  if (key.empty()) {
    std::fprintf(stderr, "ledger_verify: --key is required (the verifier key the server printed "
                         "at start, or a file holding it)\n");
    return 2;
  }
  if (std::ifstream file(key); file.good() && key.find('+') == std::string::npos) {
    std::stringstream ss;
    ss << file.rdbuf();
    key = std::string(absl::StripAsciiWhitespace(ss.str()));
  }
  auto verifier = NoteVerifier::FromVerifierKey(key);
  if (!verifier.ok()) {
    std::fprintf(stderr, "ledger_verify: --key: %s\n", verifier.status().ToString().c_str());
    return 2;
  }
  RocksStoreOptions store_options;
  store_options.path = absl::GetFlag(FLAGS_data_dir) + "/ledger";
  store_options.read_only = true;
  auto store = OpenRocksStore(store_options);
  if (!store.ok()) {
    std::fprintf(stderr, "ledger_verify: %s\n", store.status().ToString().c_str());
    return 1;
  }

  StoreVerifyOptions options;
  options.note_verifier = &*verifier;
  options.origin = absl::GetFlag(FLAGS_origin).empty() ? verifier->name()
                                                       : absl::GetFlag(FLAGS_origin);
  options.max_failures = absl::GetFlag(FLAGS_keep_going) ? 1000 : 1;
  absl::Time start = absl::Now();
  if (absl::GetFlag(FLAGS_progress) && isatty(STDERR_FILENO)) {
    options.progress_every = 1 << 18;
    options.progress = [start](uint64_t done, uint64_t total) {
      double secs = absl::ToDoubleSeconds(absl::Now() - start);
      std::fprintf(stderr, "\r%llu / %llu records (%.0f%%), %.0f records/s   ",
                   static_cast<unsigned long long>(done), static_cast<unsigned long long>(total),
                   total ? 100.0 * done / total : 100.0, secs > 0 ? done / secs : 0.0);
      if (done >= total) std::fprintf(stderr, "\n");
    };
  }
  StoreVerifyReport report = VerifyStore(**store, options);
  double secs = absl::ToDoubleSeconds(absl::Now() - start);
  double rate = secs > 0 ? report.records_checked / secs : 0;

  if (absl::GetFlag(FLAGS_json)) {
    std::string failures = "[";
    for (size_t i = 0; i < report.failures.size(); ++i) {
      absl::StrAppend(&failures, i ? "," : "", "{\"seq\":", report.failures[i].seq,
                      ",\"error\":", JsonString(report.failures[i].status.message()), "}");
    }
    failures += "]";
    std::printf(
        "{\"ok\":%s,\"tree_size\":%llu,\"records_checked\":%llu,\"checkpoints_checked\":%llu,"
        "\"root\":\"%s\",\"seconds\":%.3f,\"records_per_second\":%.0f,\"failures\":%s}\n",
        report.status.ok() ? "true" : "false",
        static_cast<unsigned long long>(report.tree_size),
        static_cast<unsigned long long>(report.records_checked),
        static_cast<unsigned long long>(report.checkpoints_checked), ToHex(report.root).c_str(),
        secs, rate, failures.c_str());
  } else {
    std::printf("tree size:     %llu\nrecords:       %llu checked in %.2f s (%.0f records/s)\n"
                "checkpoints:   %llu checked\nroot:          %s\n",
                static_cast<unsigned long long>(report.tree_size),
                static_cast<unsigned long long>(report.records_checked), secs, rate,
                static_cast<unsigned long long>(report.checkpoints_checked),
                ToHex(report.root).c_str());
    for (const VerifyFailure& f : report.failures) {
      std::printf("FAIL at seq %llu: %s\n", static_cast<unsigned long long>(f.seq),
                  std::string(f.status.message()).c_str());
    }
    std::printf("%s\n", report.status.ok() ? "OK: the ledger verifies"
                                           : ("FAILED: " + report.status.ToString()).c_str());
  }
  return report.status.ok() ? 0 : 1;
}

}  // namespace
}  // namespace caseledger

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Verifies a caseledger data directory read-only.\n"
      "  ledger_verify --data_dir=./data --key=NAME+HASH+KEY [--keep_going] [--json]");
  absl::ParseCommandLine(argc, argv);
  return caseledger::Run();
}
