// ledgerctl cosigned: a checkpoint with the witnesses' cosignatures, checked
// on this machine against the witnesses the client trusts.
#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "ledger/checkpoint.h"
#include "ledger/cosignature.h"
#include "ledger/hash.h"
#include "proto/audit.grpc.pb.h"
#include "tools/ledgerctl/cli.h"
#include "tools/ledgerctl/commands.h"
#include "tools/ledgerctl/context.h"
#include "tools/ledgerctl/ledgerctl_lib.h"

namespace caseledger::ledgerctl {
namespace {

struct CosignedFlags {
  WitnessFlags witnesses;
  std::optional<uint64_t> size;
  KeyFlags key;
};

int RunCosigned(Client& c, const Command& cmd, const CosignedFlags& f) {
  if (!f.witnesses.keys) return Usage(cmd, "--witness_keys is required");
  absl::StatusOr<WitnessPolicy> policy = WitnessPolicyOf(f.witnesses);
  if (!policy.ok()) return Usage(cmd, policy.status().message());
  const std::vector<CosignatureVerifier>& witnesses = policy->witnesses;
  const size_t quorum = policy->quorum;
  const uint64_t size = f.size.value_or(0);
  if (absl::Status s = c.Connect(); !s.ok()) return Fail("cosigned", s);
  absl::StatusOr<TrustedKey> key = ResolveKey(c, f.key);
  if (!key.ok()) return Fail("cosigned", key.status());
  std::unique_ptr<v1::WitnessService::Stub> stub = v1::WitnessService::NewStub(c.channel());
  grpc::ClientContext ctx;
  c.SetDeadline(&ctx);
  v1::GetCosignedCheckpointRequest req;
  req.set_size(size);
  req.set_cosigned_only(size == 0);
  v1::CosignedCheckpoint resp;
  if (absl::Status s = FromGrpc(stub->GetCosignedCheckpoint(&ctx, req, &resp),
                                "GetCosignedCheckpoint", c.options());
      !s.ok()) {
    return Fail("cosigned", s);
  }
  absl::Status status;
  absl::StatusOr<Checkpoint> cp = VerifyCheckpoint(resp.checkpoint(), key->verifier, key->origin);
  absl::StatusOr<std::vector<Cosignature>> cosigs;
  if (!cp.ok()) {
    status = cp.status();
  } else {
    cosigs = VerifyCosignatureQuorum(resp.checkpoint().note(), witnesses, quorum);
    status = cosigs.status();
  }
  if (!status.ok()) {
    if (c.options().json) {
      std::printf("%s\n",
                  JsonObject().Add("ok", false).Add("error", status.ToString()).str().c_str());
    }
    std::fprintf(stderr, "FAILED: %s\n", status.ToString().c_str());
    return kExitFailure;
  }
  if (c.options().json) {
    JsonObject o;
    o.Add("ok", true).Add("size", cp->size).Add("root_hash", ToHex(cp->root));
    o.Add("cosignatures", static_cast<uint64_t>(cosigs->size()));
    o.Add("note", resp.checkpoint().note());
    std::printf("%s\n", o.str().c_str());
    return kExitOk;
  }
  std::printf(
      "OK: checkpoint size %llu root %s is signed by the log and cosigned by %zu of %zu "
      "trusted witnesses\n%s",
      static_cast<unsigned long long>(cp->size), ToHex(cp->root).c_str(), cosigs->size(),
      witnesses.size(), resp.checkpoint().note().c_str());
  return kExitOk;
}

}  // namespace

void AddWitnessCommands(Registry& registry) {
  Command& cmd = registry.Add(
      "cosigned",
      "usage: ledgerctl cosigned --witness_keys=K1,K2|FILE [--quorum=Q] [--size=N]\n"
      "                          [--key=K] [--origin=O]\n",
      "Fetches a checkpoint with the witness cosignatures the server collected\n"
      "(WitnessService.GetCosignedCheckpoint) and verifies, on this machine, the\n"
      "log's signature and cosignatures by at least Q of the trusted witnesses\n"
      "(ledger/COSIGNATURE.md). Prints \"OK: ...\" and the note, or \"FAILED: reason\".\n");
  auto& f = registry.Own<CosignedFlags>();
  AddWitnessFlags(cmd.app, &f.witnesses);
  AddUint(cmd.app, "--size", &f.size, "N",
          "the checkpoint signed at size N (default: the newest\n"
          "checkpoint that has a cosignature)");
  AddKeyFlags(cmd.app, &f.key);
  cmd.run = [&f](Client& c, const Command& cmd) { return RunCosigned(c, cmd, f); };
}

}  // namespace caseledger::ledgerctl
