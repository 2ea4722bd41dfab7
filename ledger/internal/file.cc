#include "ledger/internal/file.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace caseledger::internal {
namespace {

absl::Status IoError(const std::string& path, absl::string_view op, int err) {
  return absl::InternalError(absl::StrCat(path, ": ", op, ": ", std::strerror(err)));
}

std::string DirOf(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

absl::Status WriteAll(int fd, const std::string& path, absl::string_view data) {
  while (!data.empty()) {
    ssize_t n = write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return IoError(path, "write", errno);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::Status SyncDirOf(const std::string& path) {
  std::string dir = DirOf(path);
  int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return IoError(dir, "open directory", errno);
  int rc = fsync(dfd);
  int err = errno;
  close(dfd);
  if (rc != 0) return IoError(dir, "fsync directory", err);
  return absl::OkStatus();
}

}  // namespace

absl::Status WriteFileDurably(const std::string& path, absl::string_view text) {
  std::string tmp = absl::StrFormat("%s.tmp.%d", path, getpid());
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return IoError(tmp, "create", errno);
  absl::Status status = WriteAll(fd, tmp, text);
  if (status.ok() && fsync(fd) != 0) status = IoError(tmp, "fsync", errno);
  if (close(fd) != 0 && status.ok()) status = IoError(tmp, "close", errno);
  if (status.ok() && std::rename(tmp.c_str(), path.c_str()) != 0) {
    status = IoError(path, "rename", errno);
  }
  if (!status.ok()) {
    unlink(tmp.c_str());
    return status;
  }
  // The rename is durable only once the directory is.
  return SyncDirOf(path);
}

absl::Status RemoveFileDurably(const std::string& path) {
  if (unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return IoError(path, "unlink", errno);
  }
  return SyncDirOf(path);
}

}  // namespace caseledger::internal
