// caseledger_keys: offline key management for payload encryption
// (ledger/ENCRYPTION.md). Run it with the server stopped: it opens the data
// directory for writing.
//
//   caseledger_keys generate-master-key --out=FILE
//   caseledger_keys rotate-master-key --data_dir=DIR --old=FILE --new=FILE
//   caseledger_keys erase-subject --data_dir=DIR --master_key_file=FILE --subject=ID
//
// Exit status: 0 on success, 1 when the operation fails (nothing changed),
// 2 for bad usage.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "ledger/crypto.h"
#include "ledger/key_store.h"
#include "ledger/rocks_store.h"
#include "services/readmodel/projector.h"

ABSL_FLAG(std::string, data_dir, "./data", "The server's --data_dir (its ledger/ is opened).");
ABSL_FLAG(std::string, old, "", "rotate-master-key: the current master key file.");
ABSL_FLAG(std::string, new, "", "rotate-master-key: the new master key file.");
ABSL_FLAG(std::string, out, "", "generate-master-key: the file to create (mode 0600).");
ABSL_FLAG(std::string, master_key_file, "", "erase-subject: the master key file.");
ABSL_FLAG(std::string, subject, "", "erase-subject: the subject (client) id to erase.");

namespace caseledger {
namespace {

int Usage(const std::string& why) {
  std::fprintf(stderr, "caseledger_keys: %s\n%s", why.c_str(), absl::ProgramUsageMessage().data());
  return 2;
}

int Failed(absl::string_view what, const absl::Status& s) {
  std::fprintf(stderr, "caseledger_keys: %s: %s\n", std::string(what).c_str(),
               s.ToString().c_str());
  return 1;
}

absl::StatusOr<std::unique_ptr<LogStore>> OpenStore() {
  RocksStoreOptions o;
  o.path = absl::GetFlag(FLAGS_data_dir) + "/ledger";
  return OpenRocksStore(o);
}

int GenerateMasterKey() {
  std::string out = absl::GetFlag(FLAGS_out);
  if (out.empty()) return Usage("generate-master-key needs --out=FILE");
  absl::StatusOr<AeadKey> key = AeadKey::Generate();
  if (!key.ok()) return Failed("generate", key.status());
  // O_EXCL: never overwrite a key that may still wrap data keys.
  int fd = open(out.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) {
    return Failed("generate", absl::FailedPreconditionError(absl::StrCat(
                                  "--out: cannot create ", out, " (does it exist already?)")));
  }
  std::string text = absl::StrCat(absl::BytesToHexString(key->bytes()), "\n");
  bool ok =
      write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && fsync(fd) == 0;
  close(fd);
  if (!ok) return Failed("generate", absl::InternalError(absl::StrCat("cannot write ", out)));
  std::printf("master key id %s written to %s\n", MasterKeyId(*key).c_str(), out.c_str());
  return 0;
}

int RotateMasterKeyCommand() {
  if (absl::GetFlag(FLAGS_old).empty() || absl::GetFlag(FLAGS_new).empty()) {
    return Usage("rotate-master-key needs --old=FILE and --new=FILE");
  }
  absl::StatusOr<AeadKey> current = LoadMasterKey(absl::GetFlag(FLAGS_old), nullptr);
  if (!current.ok()) return Failed("--old", current.status());
  absl::StatusOr<AeadKey> next = LoadMasterKey(absl::GetFlag(FLAGS_new), nullptr);
  if (!next.ok()) return Failed("--new", next.status());
  if (*current == *next) {
    return Failed("rotate", absl::InvalidArgumentError("--new: is the same key as --old"));
  }
  auto store = OpenStore();
  if (!store.ok()) return Failed("open", store.status());
  absl::StatusOr<size_t> n = RotateMasterKey((*store)->keys(), *current, *next);
  if (!n.ok()) return Failed("rotate", n.status());
  std::printf("re-wrapped %zu data keys from master key id %s to %s; records untouched\n", *n,
              MasterKeyId(*current).c_str(), MasterKeyId(*next).c_str());
  return 0;
}

int EraseSubjectCommand() {
  std::string subject = absl::GetFlag(FLAGS_subject);
  if (subject.empty()) return Usage("erase-subject needs --subject=ID");
  absl::StatusOr<AeadKey> master = LoadMasterKey(absl::GetFlag(FLAGS_master_key_file), nullptr);
  if (!master.ok()) return Failed("--master_key_file", master.status());
  auto store = OpenStore();
  if (!store.ok()) return Failed("open", store.status());
  auto keys = KeyStore::Open((*store)->keys(), *master);
  if (!keys.ok()) return Failed("key store", keys.status());
  // The read models hold plaintext projected from the subject's records:
  // the marker makes the server rebuild them when it next starts, before it
  // serves a read (services/readmodel/projector.h).
  absl::Status marked =
      Projector::WriteStaleMarker(absl::GetFlag(FLAGS_data_dir) + "/projections");
  if (!marked.ok()) return Failed("mark the read models for rebuilding", marked);
  absl::StatusOr<size_t> n = (*keys)->EraseSubject(subject);
  if (!n.ok()) return Failed("erase", n.status());
  std::printf(
      "destroyed %zu data keys of subject \"%s\" and purged them from the files; the server "
      "rebuilds its read models when it next starts. This offline erasure is not recorded in "
      "the ledger: KeyAdminService.EraseSubject on a running server records it.\n",
      *n, absl::CEscape(subject).c_str());
  return 0;
}

}  // namespace
}  // namespace caseledger

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Offline key management for payload encryption (server stopped):\n"
      "  caseledger_keys generate-master-key --out=FILE\n"
      "  caseledger_keys rotate-master-key --data_dir=DIR --old=FILE --new=FILE\n"
      "  caseledger_keys erase-subject --data_dir=DIR --master_key_file=FILE --subject=ID\n");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() != 2) return caseledger::Usage("want exactly one command");
  std::string command = args[1];
  if (command == "generate-master-key") return caseledger::GenerateMasterKey();
  if (command == "rotate-master-key") return caseledger::RotateMasterKeyCommand();
  if (command == "erase-subject") return caseledger::EraseSubjectCommand();
  return caseledger::Usage(absl::StrCat("unknown command \"", command, "\""));
}
