// ledgerctl checkpoint and prove: signed checkpoints and the Merkle proofs
// that tie the server's log to them, checked on this machine.
#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "ledger/checkpoint.h"
#include "ledger/hash.h"
#include "ledger/internal/status_macros.h"
#include "proto/ledger.grpc.pb.h"
#include "tools/ledgerctl/cli.h"
#include "tools/ledgerctl/commands.h"
#include "tools/ledgerctl/context.h"
#include "tools/ledgerctl/ledgerctl_lib.h"

namespace caseledger::ledgerctl {
namespace {

absl::StatusOr<Checkpoint> FetchVerifiedCheckpoint(Client& c, const TrustedKey& key,
                                                   uint64_t size) {
  CL_ASSIGN_OR_RETURN(v1::Checkpoint cp, c.GetCheckpoint(size));
  absl::StatusOr<Checkpoint> opened = VerifyCheckpoint(cp, key.verifier, key.origin);
  if (!opened.ok()) {
    return absl::Status(opened.status().code(), absl::StrCat("checkpoint at size ", cp.size(), ": ",
                                                             opened.status().message()));
  }
  if (size != 0 && opened->size != size) {
    return absl::DataLossError(
        absl::StrCat("checkpoint size: got ", opened->size, ", asked for ", size));
  }
  return opened;
}

struct CheckpointFlags {
  std::optional<uint64_t> size;
  KeyFlags key;
};

int RunCheckpoint(Client& c, const Command& cmd, const CheckpointFlags& f) {
  if (f.key.origin && !f.key.key) return Usage(cmd, "--origin needs --key");
  if (absl::Status s = c.Connect(); !s.ok()) return Fail("checkpoint", s);
  absl::StatusOr<v1::Checkpoint> cp = c.GetCheckpoint(f.size.value_or(0));
  if (!cp.ok()) return Fail("checkpoint", cp.status());
  absl::StatusOr<Hash> root = HashFromBytes(cp->root_hash());
  std::string root_hex = root.ok() ? ToHex(*root) : "(malformed)";
  std::optional<TrustedKey> key;
  absl::Status verified = absl::OkStatus();
  if (f.key.key) {
    absl::StatusOr<TrustedKey> k = ResolveKey(c, f.key);
    if (!k.ok()) return Fail("checkpoint", k.status());
    verified = VerifyCheckpoint(*cp, k->verifier, k->origin).status();
    key = std::move(*k);
  }
  if (c.options().json) {
    JsonObject o;
    o.Add("size", static_cast<uint64_t>(cp->size()))
        .Add("root_hash", root_hex)
        .Add("note", cp->note());
    if (key) o.Add("verified", verified.ok());
    std::printf("%s\n", o.str().c_str());
  } else {
    std::printf("size  %llu\nroot  %s\nnote:\n%s", static_cast<unsigned long long>(cp->size()),
                root_hex.c_str(), cp->note().c_str());
    if (key && verified.ok()) {
      std::printf("signature OK: key %s, origin %s\n", key->verifier.VerifierKey().c_str(),
                  key->origin.c_str());
    }
  }
  if (!verified.ok()) return Fail("checkpoint", verified);
  return kExitOk;
}

struct ProveFlags {
  std::optional<uint64_t> seq;
  std::optional<uint64_t> size;
  std::optional<uint64_t> from_size;
  std::optional<uint64_t> to_size;
  KeyFlags key;
};

absl::Status ProveInclusion(Client& c, const ProveFlags& f, std::string* ok_line) {
  const uint64_t seq = f.seq.value_or(0);
  const uint64_t size = f.size.value_or(0);
  CL_ASSIGN_OR_RETURN(TrustedKey key, ResolveKey(c, f.key));
  CL_ASSIGN_OR_RETURN(Checkpoint cp, FetchVerifiedCheckpoint(c, key, size));
  if (seq >= cp.size) {
    return absl::OutOfRangeError(
        absl::StrCat("record ", seq, " is not in the tree of size ", cp.size,
                     size == 0 ? " (the latest checkpoint); wait for the next checkpoint" : ""));
  }
  grpc::ClientContext ctx;
  c.SetDeadline(&ctx);
  v1::InclusionProofRequest req;
  req.set_seq(seq);
  req.set_tree_size(cp.size);
  v1::InclusionProof proof;
  CL_RETURN_IF_ERROR(
      FromGrpc(c.stub().GetInclusionProof(&ctx, req, &proof), "GetInclusionProof", c.options()));
  if (proof.seq() != seq) {
    return absl::DataLossError(absl::StrCat("proof seq: got ", proof.seq(), ", want ", seq));
  }
  CL_ASSIGN_OR_RETURN(std::optional<v1::Record> record, c.ReadOne(seq));
  if (!record) return absl::DataLossError(absl::StrCat("ReadLog: no record at seq ", seq));
  CL_RETURN_IF_ERROR(CheckRecordMatchesProof(*record, proof));
  CL_RETURN_IF_ERROR(CheckInclusion(proof, cp));
  *ok_line = c.options().json ? JsonObject()
                                    .Add("ok", true)
                                    .Add("seq", seq)
                                    .Add("tree_size", cp.size)
                                    .Add("root_hash", ToHex(cp.root))
                                    .Add("leaf_hash", ToHex(LeafHash(record->leaf())))
                                    .str()
                              : absl::StrCat("OK: record ", seq, " is in the tree of size ",
                                             cp.size, " with root ", ToHex(cp.root));
  return absl::OkStatus();
}

absl::Status ProveConsistency(Client& c, const ProveFlags& f, std::string* ok_line) {
  CL_ASSIGN_OR_RETURN(TrustedKey key, ResolveKey(c, f.key));
  CL_ASSIGN_OR_RETURN(Checkpoint old_cp, FetchVerifiedCheckpoint(c, key, f.from_size.value_or(0)));
  CL_ASSIGN_OR_RETURN(Checkpoint new_cp, FetchVerifiedCheckpoint(c, key, f.to_size.value_or(0)));
  if (old_cp.size > new_cp.size) {
    return absl::InvalidArgumentError(absl::StrCat("--from_size: got ", old_cp.size,
                                                   ", want at most the later size ", new_cp.size));
  }
  grpc::ClientContext ctx;
  c.SetDeadline(&ctx);
  v1::ConsistencyProofRequest req;
  req.set_from_size(old_cp.size);
  req.set_to_size(new_cp.size);
  v1::ConsistencyProof proof;
  CL_RETURN_IF_ERROR(FromGrpc(c.stub().GetConsistencyProof(&ctx, req, &proof),
                              "GetConsistencyProof", c.options()));
  CL_RETURN_IF_ERROR(CheckConsistency(proof, old_cp, new_cp));
  *ok_line = c.options().json ? JsonObject()
                                    .Add("ok", true)
                                    .Add("from_size", old_cp.size)
                                    .Add("from_root_hash", ToHex(old_cp.root))
                                    .Add("to_size", new_cp.size)
                                    .Add("to_root_hash", ToHex(new_cp.root))
                                    .str()
                              : absl::StrCat("OK: the tree of size ", new_cp.size, " with root ",
                                             ToHex(new_cp.root), " extends the tree of size ",
                                             old_cp.size, " with root ", ToHex(old_cp.root));
  return absl::OkStatus();
}

int RunProve(Client& c, const Command& cmd, const ProveFlags& f) {
  const bool inclusion = f.seq.has_value();
  const bool consistency = f.from_size || f.to_size;
  if (inclusion == consistency) {
    return Usage(cmd, "give either --seq=N [--size=M] or --from_size=A [--to_size=B]");
  }
  if (consistency && f.size) return Usage(cmd, "--size goes with --seq");
  if (consistency && f.from_size.value_or(0) == 0) {
    return Usage(cmd, "--from_size: must be at least 1");
  }
  if (absl::Status s = c.Connect(); !s.ok()) return Fail("prove", s);
  std::string ok_line;
  absl::Status s = inclusion ? ProveInclusion(c, f, &ok_line) : ProveConsistency(c, f, &ok_line);
  if (!s.ok()) {
    if (c.options().json) {
      std::printf("%s\n", JsonObject().Add("ok", false).Add("error", s.ToString()).str().c_str());
    }
    std::fprintf(stderr, "FAILED: %s\n", s.ToString().c_str());
    return kExitFailure;
  }
  std::printf("%s\n", ok_line.c_str());
  return kExitOk;
}

}  // namespace

void AddProofCommands(Registry& registry) {
  {
    Command& cmd = registry.Add(
        "checkpoint",
        "usage: ledgerctl checkpoint [--size=N] [--key=VERIFIER_KEY_OR_FILE [--origin=O]]\n",
        "Prints a signed checkpoint: its size, root hash (hex) and signed note.\n");
    auto& f = registry.Own<CheckpointFlags>();
    AddUint(cmd.app, "--size", &f.size, "N",
            "the checkpoint signed at size N (default: the latest)");
    AddKeyFlags(cmd.app, &f.key,
                "verify the note with this verifier key (name+hash+base64), or\n"
                "the key in file K; prints \"signature OK\" or fails");
    cmd.run = [&f](Client& c, const Command& cmd) { return RunCheckpoint(c, cmd, f); };
  }
  {
    Command& cmd = registry.Add(
        "prove",
        "usage: ledgerctl prove --seq=N [--size=M] [--key=K] [--origin=O]\n"
        "       ledgerctl prove --from_size=A [--to_size=B] [--key=K] [--origin=O]\n",
        "Verifies, on this machine, that the server's log is what its checkpoints say.\n",
        "Prints \"OK: ...\" and exits 0, or \"FAILED: reason\" on stderr and exits 1.\n");
    auto& f = registry.Own<ProveFlags>();
    AddUint(cmd.app, "--seq", &f.seq, "N",
            "record N is in the tree of the checkpoint (latest, or at --size):\n"
            "verifies the checkpoint's signature, fetches the record and checks\n"
            "SHA-256(0x00 || leaf) is the proof's leaf hash (and the leaf\n"
            "matches the record and its payload), then checks the inclusion\n"
            "proof against the signed root");
    AddUint(cmd.app, "--size", &f.size, "M", "use the checkpoint signed at size M");
    AddUint(cmd.app, "--from_size", &f.from_size, "A",
            "the checkpoint at B (default: the latest) extends the one at A:\n"
            "verifies both signatures and the consistency proof");
    AddUint(cmd.app, "--to_size", &f.to_size, "B", "the later checkpoint (default: the latest)");
    AddKeyFlags(cmd.app, &f.key);
    cmd.run = [&f](Client& c, const Command& cmd) { return RunProve(c, cmd, f); };
  }
}

}  // namespace caseledger::ledgerctl
