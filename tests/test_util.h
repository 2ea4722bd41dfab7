// Shared helpers for tests: temporary directories, events, a fixed signing
// key, and raw access to a data directory for corruption tests.
#ifndef CASELEDGER_TESTS_TEST_UTIL_H_
#define CASELEDGER_TESTS_TEST_UTIL_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "ledger/checkpoint.h"
#include "ledger/crypto.h"
#include "ledger/key_store.h"
#include "ledger/ledger.h"
#include "ledger/log_store.h"
#include "ledger/record.h"
#include "ledger/store_verifier.h"

namespace caseledger::testing {

// A fresh empty directory under $TEST_TMPDIR (or /tmp).
std::string NewTempDir(const std::string& name);

// A valid event with a payload of `payload_bytes` bytes.
Event TestEvent(const std::string& event_id, const std::string& stream_id,
                size_t payload_bytes = 64);

// The origin and note signer every test uses (Ed25519 key from a fixed seed).
inline constexpr char kTestOrigin[] = "caseledger.test/log";
NoteSigner TestNoteSigner();
NoteVerifier TestNoteVerifier();

// A ledger on a RocksDB data directory, with the test signer. The signer
// (and the key store of an encrypted one) is owned here so that it outlives
// the ledger.
struct TestLedger {
  std::unique_ptr<NoteSigner> signer;
  std::unique_ptr<KeyStore> keys;  // null unless encrypted
  std::unique_ptr<Ledger> ledger;
  Ledger* operator->() { return ledger.get(); }
};
absl::StatusOr<TestLedger> OpenTestLedger(const std::string& dir,
                                          LedgerOptions options = LedgerOptions());
// The same with payloads sealed under data keys wrapped by `master`, and by
// default the event types the server gives its key store (disposal, erasure).
absl::StatusOr<TestLedger> OpenEncryptedTestLedger(
    const std::string& dir, const AeadKey& master,
    KeyStoreOptions key_options = {"records_disposed", "subject_erased"},
    LedgerOptions options = LedgerOptions());

// The same, with identifiers blinded too (record format 2, ledger/BLINDING.md):
// the key store is also the ledger's blinder.
absl::StatusOr<TestLedger> OpenBlindedTestLedger(const std::string& dir, const AeadKey& master,
                                                 LedgerOptions options = LedgerOptions());

// A child process running `argv` (argv[0]: a path under the test's runfiles,
// e.g. "tests/crash_writer") with its stdout on a pipe: `pid`, and `out`, the
// pipe's read end, which the caller closes. pid is -1 when fork failed.
struct Child {
  int pid = -1;
  int out = -1;
};
Child StartChild(const std::vector<std::string>& argv);

// "stream_id event_type" of each record of `ledger` from `from` on (for tests
// that check what a call stored); a record that cannot be read is listed as
// "unreadable record <seq>: <status>", so a comparison with it fails.
std::vector<std::string> StreamsAndTypesFrom(Ledger& ledger, uint64_t from);

// What a child run by RunThenKill printed, and how it ended.
struct KilledChild {
  std::string out;       // everything it wrote to stdout, the ready line included
  bool ready = false;    // `out` started with the ready prefix in time
  bool killed = false;   // it ended by our SIGKILL, not on its own
};
// The kill -9 drill: starts argv (StartChild), waits up to `ready_within` for
// its output to start with `ready_prefix` and hold a whole line, lets it run
// `run_for` more, kills it with SIGKILL and drains what it had written (what
// it acknowledged before the kill is in the pipe).
KilledChild RunThenKill(const std::vector<std::string>& argv, const std::string& ready_prefix,
                        absl::Duration run_for, absl::Duration ready_within = absl::Seconds(60));

// VerifyStore over a closed data directory, opened read-only, with the test
// signer's key and origin; a failed open is the report's status.
StoreVerifyReport VerifyTestDataDir(const std::string& dir);

// Raw access to a closed data directory's column families ("records",
// "payloads", "nodes", "checkpoints", "meta", ...), bypassing the ledger.
absl::Status RawPut(const std::string& dir, const std::string& family, const std::string& key,
                    const std::string& value);
absl::Status RawDelete(const std::string& dir, const std::string& family, const std::string& key);
absl::StatusOr<std::string> RawGet(const std::string& dir, const std::string& family,
                                   const std::string& key);
// Big-endian u64 key, as the ledger's column families use.
std::string SeqKey(uint64_t seq);

// Every entry of a key table (ledger/ENCRYPTION.md "Storage"), key -> value:
// a snapshot to compare before and after an operation that must change nothing.
absl::StatusOr<std::map<std::string, std::string>> KeyTableContents(const KeyTable& table);

// The bytes of the file at `path`; empty when it cannot be read.
std::string ReadFileOrEmpty(const std::string& path);

// Every regular file under `dir` (recursively) whose bytes contain `needle`:
// the raw-bytes search behind the erasure and rotation tests.
std::vector<std::string> FilesContaining(const std::string& dir, const std::string& needle);

// GET http://127.0.0.1:`port``path` (HTTP/1.0, no TLS): the whole response,
// status line and headers included; "" when it cannot connect.
std::string HttpGet(int port, const std::string& path);

// Lines a component logged (its log option), for a test that follows its progress.
class LogLines {
 public:
  std::function<void(const std::string&)> Sink();
  // Whether a line containing `text` was logged, waiting up to `timeout`.
  bool WaitFor(absl::string_view text, absl::Duration timeout);
  // The first such line, or "" (no wait).
  std::string Find(absl::string_view text);
  std::string All();

 private:
  absl::Mutex mu_;
  std::vector<std::string> lines_ ABSL_GUARDED_BY(mu_);
};

}  // namespace caseledger::testing

#endif  // CASELEDGER_TESTS_TEST_UTIL_H_
