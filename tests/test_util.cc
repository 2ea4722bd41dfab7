#include "tests/test_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <rocksdb/db.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "ledger/internal/bytes.h"
#include "ledger/rocks_store.h"
#include "ledger/signer.h"

namespace caseledger::testing {

std::string NewTempDir(const std::string& name) {
  static std::atomic<int> counter{0};
  const char* base = std::getenv("TEST_TMPDIR");
  std::string dir = absl::StrCat(base != nullptr ? base : "/tmp", "/", name, "-", getpid(), "-",
                                 counter++);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

Event TestEvent(const std::string& event_id, const std::string& stream_id,
                size_t payload_bytes) {
  Event e;
  e.event_id = event_id;
  e.stream_id = stream_id;
  e.producer = "test-producer";
  e.event_type = "record_entry_written";
  e.occurred_at_micros = 1767225600000000;
  e.subject_ids = {"client-" + stream_id};
  e.fields = {{"note", std::string(payload_bytes, 'n'), 0}};
  return e;
}

NoteSigner TestNoteSigner() {
  auto signer = Ed25519Signer::FromSeed(std::string(32, '\x42'));
  if (!signer.ok()) std::abort();
  auto note = NoteSigner::New("caseledger.test", std::move(*signer));
  if (!note.ok()) std::abort();
  return *std::move(note);
}

NoteVerifier TestNoteVerifier() {
  auto v = NoteVerifier::FromVerifierKey(TestNoteSigner().VerifierKey());
  if (!v.ok()) std::abort();
  return *std::move(v);
}

namespace {

absl::StatusOr<TestLedger> OpenWith(const std::string& dir, const AeadKey* master,
                                    KeyStoreOptions key_options, LedgerOptions options,
                                    bool blinded = false) {
  TestLedger t;
  t.signer = std::make_unique<NoteSigner>(TestNoteSigner());
  options.origin = kTestOrigin;
  options.signer = t.signer.get();
  RocksStoreOptions store_options;
  store_options.path = dir;
  store_options.block_cache_bytes = 8 << 20;
  store_options.write_buffer_bytes = 4 << 20;
  auto store = OpenRocksStore(store_options);
  if (!store.ok()) return store.status();
  if (master != nullptr) {
    auto keys = KeyStore::Open((*store)->keys(), *master, std::move(key_options));
    if (!keys.ok()) return keys.status();
    t.keys = *std::move(keys);
    options.cipher = t.keys.get();
    if (blinded) options.blinder = t.keys.get();
  }
  auto ledger = Ledger::Open(std::move(options), *std::move(store));
  if (!ledger.ok()) return ledger.status();
  t.ledger = *std::move(ledger);
  return t;
}

}  // namespace

absl::StatusOr<TestLedger> OpenTestLedger(const std::string& dir, LedgerOptions options) {
  return OpenWith(dir, nullptr, {}, std::move(options));
}

absl::StatusOr<TestLedger> OpenEncryptedTestLedger(const std::string& dir, const AeadKey& master,
                                                   KeyStoreOptions key_options,
                                                   LedgerOptions options) {
  return OpenWith(dir, &master, std::move(key_options), std::move(options));
}

absl::StatusOr<TestLedger> OpenBlindedTestLedger(const std::string& dir, const AeadKey& master,
                                                 LedgerOptions options) {
  return OpenWith(dir, &master, {"records_disposed", "subject_erased"}, std::move(options),
                  /*blinded=*/true);
}

Child StartChild(const std::vector<std::string>& argv) {
  int fds[2];
  if (pipe(fds) != 0) return Child{};
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(fds[1]);
  if (pid < 0) {
    close(fds[0]);
    return Child{};
  }
  return Child{pid, fds[0]};
}

std::vector<std::string> StreamsAndTypesFrom(Ledger& ledger, uint64_t from) {
  std::vector<std::string> out;
  for (uint64_t seq = from; seq < ledger.Size(); ++seq) {
    absl::StatusOr<RecordView> view = ledger.Read(seq);
    out.push_back(view.ok() ? view->record.stream_id + " " + view->record.event_type
                            : absl::StrCat("unreadable record ", seq, ": ", view.status().ToString()));
  }
  return out;
}

KilledChild RunThenKill(const std::vector<std::string>& argv, const std::string& ready_prefix,
                        absl::Duration run_for, absl::Duration ready_within) {
  KilledChild result;
  Child child = StartChild(argv);
  if (child.pid <= 0) return result;
  char buf[1 << 16];
  // Reads what the child writes until `deadline`, or until `done` holds.
  auto read_until = [&](absl::Time deadline, auto done) {
    while (!done() && absl::Now() < deadline) {
      pollfd p{child.out, POLLIN, 0};
      if (poll(&p, 1, 5) > 0) {
        ssize_t n = read(child.out, buf, sizeof(buf));
        if (n <= 0) return;
        result.out.append(buf, n);
      }
    }
  };
  auto is_ready = [&] {
    return absl::StartsWith(result.out, ready_prefix) &&
           result.out.find('\n') != std::string::npos;
  };
  read_until(absl::Now() + ready_within, is_ready);
  result.ready = is_ready();
  if (result.ready) read_until(absl::Now() + run_for, [] { return false; });
  kill(child.pid, SIGKILL);
  for (ssize_t n; (n = read(child.out, buf, sizeof(buf))) > 0;) result.out.append(buf, n);
  close(child.out);
  int status = 0;
  waitpid(child.pid, &status, 0);
  result.killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
  return result;
}

StoreVerifyReport VerifyTestDataDir(const std::string& dir) {
  RocksStoreOptions o;
  o.path = dir;
  o.read_only = true;
  absl::StatusOr<std::unique_ptr<LogStore>> store = OpenRocksStore(o);
  if (!store.ok()) {
    StoreVerifyReport failed;
    failed.status = store.status();
    return failed;
  }
  NoteVerifier verifier = TestNoteVerifier();
  StoreVerifyOptions vo;
  vo.note_verifier = &verifier;
  vo.origin = kTestOrigin;
  return VerifyStore(**store, vo);
}

namespace {

// Opens `dir` with every column family it has; calls fn(db, handle of family).
template <typename Fn>
absl::Status WithFamily(const std::string& dir, const std::string& family, Fn fn) {
  std::vector<std::string> names;
  rocksdb::Status s = rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir, &names);
  if (!s.ok()) return absl::InternalError(s.ToString());
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (const std::string& n : names) families.emplace_back(n, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  s = rocksdb::DB::Open(rocksdb::DBOptions(), dir, families, &handles, &db);
  if (!s.ok()) return absl::InternalError(s.ToString());
  absl::Status result = absl::NotFoundError("no column family " + family);
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == family) result = fn(db, handles[i]);
  }
  for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  delete db;
  return result;
}

absl::Status Convert(const rocksdb::Status& s) {
  if (s.ok()) return absl::OkStatus();
  if (s.IsNotFound()) return absl::NotFoundError(s.ToString());
  return absl::InternalError(s.ToString());
}

}  // namespace

absl::Status RawPut(const std::string& dir, const std::string& family, const std::string& key,
                    const std::string& value) {
  return WithFamily(dir, family, [&](rocksdb::DB* db, rocksdb::ColumnFamilyHandle* h) {
    rocksdb::WriteOptions wo;
    wo.sync = true;
    return Convert(db->Put(wo, h, key, value));
  });
}

absl::Status RawDelete(const std::string& dir, const std::string& family,
                       const std::string& key) {
  return WithFamily(dir, family, [&](rocksdb::DB* db, rocksdb::ColumnFamilyHandle* h) {
    rocksdb::WriteOptions wo;
    wo.sync = true;
    return Convert(db->Delete(wo, h, key));
  });
}

absl::StatusOr<std::string> RawGet(const std::string& dir, const std::string& family,
                                   const std::string& key) {
  std::string value;
  absl::Status s = WithFamily(dir, family, [&](rocksdb::DB* db, rocksdb::ColumnFamilyHandle* h) {
    return Convert(db->Get(rocksdb::ReadOptions(), h, key, &value));
  });
  if (!s.ok()) return s;
  return value;
}

std::string SeqKey(uint64_t seq) { return internal::U64Key(seq); }

absl::StatusOr<std::map<std::string, std::string>> KeyTableContents(const KeyTable& table) {
  std::map<std::string, std::string> out;
  absl::Status s = table.ScanKeys("", [&](absl::string_view k, absl::string_view v) {
    out.emplace(std::string(k), std::string(v));
    return true;
  });
  if (!s.ok()) return s;
  return out;
}

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

std::vector<std::string> FilesContaining(const std::string& dir, const std::string& needle) {
  std::vector<std::string> hits;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    if (ReadFileOrEmpty(entry.path().string()).find(needle) != std::string::npos) {
      hits.push_back(entry.path().string());
    }
  }
  return hits;
}

std::string HttpGet(int port, const std::string& path) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return "";
  }
  const std::string req = absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
  if (write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
    close(fd);
    return "";
  }
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;) out.append(buf, static_cast<size_t>(n));
  close(fd);
  return out;
}

std::function<void(const std::string&)> LogLines::Sink() {
  return [this](const std::string& line) {
    absl::MutexLock lock(&mu_);
    lines_.push_back(line);
  };
}

std::string LogLines::Find(absl::string_view text) {
  absl::MutexLock lock(&mu_);
  for (const std::string& l : lines_) {
    if (absl::StrContains(l, text)) return l;
  }
  return "";
}

bool LogLines::WaitFor(absl::string_view text, absl::Duration timeout) {
  const absl::Time until = absl::Now() + timeout;
  for (;;) {
    if (!Find(text).empty()) return true;
    if (absl::Now() > until) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
}

std::string LogLines::All() {
  absl::MutexLock lock(&mu_);
  std::string out;
  for (const std::string& l : lines_) absl::StrAppend(&out, l, "\n");
  return out;
}

}  // namespace caseledger::testing
