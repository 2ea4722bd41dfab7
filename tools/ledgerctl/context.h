// What ledgerctl's commands share: the connection and the RPCs several
// commands make (Client), the one conversion of grpc::Status, the flags that
// mean the same in every command that takes them (--key/--origin,
// --witness_keys/--quorum), and small file helpers.
//
// Thread-safety: a Client is used from one thread, except that its stub and
// channel may be shared with threads the command starts (gRPC's are safe).
#ifndef CASELEDGER_TOOLS_LEDGERCTL_CONTEXT_H_
#define CASELEDGER_TOOLS_LEDGERCTL_CONTEXT_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "ledger/checkpoint.h"
#include "ledger/cosignature.h"
#include "proto/ledger.grpc.pb.h"
#include "tools/channel.h"
#include "tools/ledgerctl/cli.h"

namespace caseledger::ledgerctl {

// The global flags, checked.
struct Options {
  std::string server = "127.0.0.1:7070";
  bool json = false;
  absl::Duration timeout = absl::Seconds(10);
  ChannelOptions channel;  // target: `server`; TLS from --ca, --cert, --key_file
};

// Options from the parsed global flags. INVALID_ARGUMENT naming --timeout
// unless it is a positive duration.
absl::StatusOr<Options> OptionsOf(const GlobalFlags& flags);

// The one place where grpc::Status becomes absl::Status (same codes). The
// message starts with `rpc`; UNAVAILABLE adds a hint naming the server.
absl::Status FromGrpc(const grpc::Status& s, absl::string_view rpc, const Options& o);

// Prints "ledgerctl COMMAND: STATUS" on stderr; returns kExitFailure.
int Fail(absl::string_view command, const absl::Status& s);

// The RPCs that several commands share. Unary calls carry --timeout as their
// deadline; streams carry none (they are bounded by Connect instead).
class Client {
 public:
  // `channel` comes from NewChannel(o.channel).
  Client(const Options& o, std::shared_ptr<grpc::Channel> channel);

  const Options& options() const { return options_; }
  v1::LedgerService::Stub& stub() { return *stub_; }
  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }

  // UNAVAILABLE if the server cannot be reached within --timeout.
  absl::Status Connect();
  void SetDeadline(grpc::ClientContext* ctx) const;

  absl::StatusOr<v1::Checkpoint> GetCheckpoint(uint64_t size);
  absl::StatusOr<v1::PublicKey> GetPublicKey();
  // The record at `seq`, or nullopt when seq == tree size. OUT_OF_RANGE
  // beyond it.
  absl::StatusOr<std::optional<v1::Record>> ReadOne(uint64_t seq);
  // The current tree size. The API has no call for it, so this probes
  // ReadLog (one record per probe, O(log n) probes) upward from `at_least`,
  // which must not exceed it.
  absl::StatusOr<uint64_t> TreeSize(uint64_t at_least);
  // grpc.health.v1.Health/Check of `service` ("" = the whole server):
  // "SERVING", etc.; NOT_FOUND for a service the server does not report.
  absl::StatusOr<std::string> Health(absl::string_view service = "");

 private:
  Options options_;
  std::shared_ptr<grpc::Channel> channel_;  // shared: gRPC's stubs take it so
  std::unique_ptr<v1::LedgerService::Stub> stub_;
};

// ---- --key and --origin -------------------------------------------------------

struct KeyFlags {
  std::optional<std::string> key;
  std::optional<std::string> origin;
};

// Adds --key and --origin. `key_help` says what --key does in this command
// (default: trusted if given, the server's own key with a warning if not).
void AddKeyFlags(CLI::App* app, KeyFlags* flags, const std::string& key_help = "");

struct TrustedKey {
  NoteVerifier verifier;
  std::string origin;
};

// --key (trusted, preferred) or the server's own key (with a warning on
// stderr). The origin is --origin, else the key's name (the server's origin
// without --key).
absl::StatusOr<TrustedKey> ResolveKey(Client& c, const KeyFlags& flags);

// ---- --witness_keys and --quorum ----------------------------------------------

struct WitnessFlags {
  std::optional<std::string> keys;
  std::optional<uint64_t> quorum;
};

// Adds --witness_keys and --quorum.
void AddWitnessFlags(CLI::App* app, WitnessFlags* flags);

// The witnesses a client trusts (--witness_keys=K1,K2 or a file of keys, one
// per line) and how many must have cosigned (--quorum, default all); no
// witnesses and quorum 0 without --witness_keys.
struct WitnessPolicy {
  std::vector<CosignatureVerifier> witnesses;
  size_t quorum = 0;
};

// INVALID_ARGUMENT naming the flag: a malformed key, a quorum outside
// 1..witnesses, or --quorum without --witness_keys.
absl::StatusOr<WitnessPolicy> WitnessPolicyOf(const WitnessFlags& flags);

// ---- Files --------------------------------------------------------------------

// NOT_FOUND "PATH: cannot open".
absl::StatusOr<std::string> ReadFileBytes(const std::string& path);
// UNAVAILABLE "PATH: cannot write".
absl::Status WriteFileBytes(const std::string& path, const std::string& bytes);

}  // namespace caseledger::ledgerctl

#endif  // CASELEDGER_TOOLS_LEDGERCTL_CONTEXT_H_
