#include "ledger/pg_verify.h"

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "ledger/internal/pg.h"
#include "ledger/internal/status_macros.h"
#include "ledger/merkle_tree.h"
#include "ledger/partition.h"
#include "ledger/pg_store.h"
#include "ledger/record.h"

namespace caseledger {

using pg::Conn;
using pg::Exec;
using pg::GetBytes;
using pg::GetInt4;
using pg::GetInt8;
using pg::Params;
using pg::Result;

absl::StatusOr<PgLedgerSummary> VerifyPgLedger(const std::string& conninfo,
                                               const std::string& origin,
                                               const NoteVerifier& verifier,
                                               const NoteVerifier& global_verifier) {
  CL_ASSIGN_OR_RETURN(Conn conn, pg::Connect(conninfo, nullptr));
  PGconn* c = conn.get();
  CL_ASSIGN_OR_RETURN(Result pr, Exec(c,
                                      "SELECT max(partitions)::int8, count(*)::int8 FROM "
                                      "cl_partitions WHERE part >= 0",
                                      nullptr, "read partitions"));
  const int64_t partitions = GetInt8(pr.get(), 0, 0);
  if (partitions != GetInt8(pr.get(), 0, 1)) {
    return absl::DataLossError(absl::StrCat("cl_partitions: ", GetInt8(pr.get(), 0, 1),
                                            " rows, P is ", partitions));
  }
  PgLedgerSummary summary;
  // (partition, size) -> checkpoint body, for the global leaves.
  absl::flat_hash_map<std::pair<int32_t, uint64_t>, std::string> bodies;
  for (int32_t p = 0; p < partitions; ++p) {
    const std::string want_origin =
        PartitionOrigin(origin, static_cast<uint32_t>(p), static_cast<uint32_t>(partitions));
    Params q;
    q.Int4(p);
    CL_ASSIGN_OR_RETURN(Result cps, Exec(c,
                                         "SELECT size, note FROM cl_checkpoints WHERE part = $1 "
                                         "ORDER BY size",
                                         &q, "read checkpoints"));
    CL_ASSIGN_OR_RETURN(Result recs, Exec(c,
                                          "SELECT seq, leaf FROM cl_records WHERE part = $1 "
                                          "ORDER BY seq",
                                          &q, "read records"));
    CL_ASSIGN_OR_RETURN(PgPartitionHead head, ReadPgPartitionHead(conninfo, p));
    MerkleTree tree;
    Hash prev{};
    int next_cp = 0;
    auto check_checkpoints = [&]() -> absl::Status {
      while (next_cp < PQntuples(cps.get()) &&
             static_cast<uint64_t>(GetInt8(cps.get(), next_cp, 0)) == tree.size()) {
        const std::string note = GetBytes(cps.get(), next_cp, 1);
        absl::StatusOr<Checkpoint> cp = OpenCheckpoint(note, verifier, want_origin);
        if (!cp.ok()) {
          return absl::DataLossError(absl::StrCat("partition ", p, " checkpoint at ", tree.size(),
                                                  ": ", cp.status().message()));
        }
        if (cp->root != tree.Root()) {
          return absl::DataLossError(absl::StrCat("partition ", p, " checkpoint at ", tree.size(),
                                                  ": root differs from the records'"));
        }
        CL_ASSIGN_OR_RETURN(std::string body, GlobalLeafOf(note));
        bodies[{p, tree.size()}] = std::move(body);
        ++next_cp;
      }
      return absl::OkStatus();
    };
    CL_RETURN_IF_ERROR(check_checkpoints());
    for (int i = 0; i < PQntuples(recs.get()); ++i) {
      const uint64_t seq = static_cast<uint64_t>(GetInt8(recs.get(), i, 0));
      const std::string leaf = GetBytes(recs.get(), i, 1);
      absl::StatusOr<LeafView> v = DecodeLeafView(leaf);
      if (seq != tree.size() || !v.ok() || v->seq != seq || v->prev_hash != prev) {
        return absl::DataLossError(absl::StrCat("partition ", p, " record ", seq,
                                                ": does not chain (want seq ", tree.size(),
                                                " after ", ShortHex(prev), ")"));
      }
      prev = LeafHash(leaf);
      tree.Append(prev, nullptr);
      CL_RETURN_IF_ERROR(check_checkpoints());
    }
    if (next_cp != PQntuples(cps.get())) {
      return absl::DataLossError(absl::StrCat("partition ", p, ": a checkpoint beyond its ",
                                              tree.size(), " records"));
    }
    if (head.head_seq != tree.size()) {
      return absl::DataLossError(absl::StrCat("partition ", p, ": head ", head.head_seq, ", ",
                                              tree.size(), " records"));
    }
    summary.partition_sizes.push_back(tree.size());
  }
  // The global log: leaves are stored partition checkpoint bodies, newer per
  // partition; each global checkpoint signs the root of a prefix of them
  // (so successive ones are consistent).
  // A ledger whose nodes never ran a global log (P = 1 servers) has none.
  CL_ASSIGN_OR_RETURN(Result has, Exec(c, "SELECT (to_regclass('cl_global') IS NOT NULL)::int4",
                                       nullptr, "look for the global log"));
  if (GetInt4(has.get(), 0, 0) == 0) return summary;
  CL_ASSIGN_OR_RETURN(Result gl, Exec(c, "SELECT seq, part, size, leaf FROM cl_global ORDER BY seq",
                                      nullptr, "read global log"));
  CL_ASSIGN_OR_RETURN(Result gcs, Exec(c,
                                       "SELECT size, note FROM cl_global_checkpoints ORDER BY size",
                                       nullptr, "read global checkpoints"));
  MerkleTree global;
  absl::flat_hash_map<int32_t, uint64_t> last_size;
  int next_gc = 0;
  auto check_global = [&]() -> absl::Status {
    while (next_gc < PQntuples(gcs.get()) &&
           static_cast<uint64_t>(GetInt8(gcs.get(), next_gc, 0)) == global.size()) {
      absl::StatusOr<Checkpoint> cp =
          OpenCheckpoint(GetBytes(gcs.get(), next_gc, 1), global_verifier, GlobalOrigin(origin));
      if (!cp.ok() || cp->root != global.Root()) {
        return absl::DataLossError(absl::StrCat(
            "global checkpoint at ", global.size(), ": ",
            cp.ok() ? "root differs from the global leaves'" : cp.status().message()));
      }
      ++next_gc;
      ++summary.global_checkpoints;
    }
    return absl::OkStatus();
  };
  CL_RETURN_IF_ERROR(check_global());
  for (int i = 0; i < PQntuples(gl.get()); ++i) {
    const int32_t part = GetInt4(gl.get(), i, 1);
    const uint64_t size = static_cast<uint64_t>(GetInt8(gl.get(), i, 2));
    const std::string leaf = GetBytes(gl.get(), i, 3);
    auto body = bodies.find({part, size});
    if (GetInt8(gl.get(), i, 0) != i || body == bodies.end() || body->second != leaf) {
      return absl::DataLossError(absl::StrCat("global leaf ", i, ": not partition ", part,
                                              "'s checkpoint body at size ", size));
    }
    auto last = last_size.find(part);
    if (last != last_size.end() && last->second >= size) {
      return absl::DataLossError(absl::StrCat("global leaf ", i, ": partition ", part,
                                              " goes back from ", last->second, " to ", size));
    }
    last_size[part] = size;
    global.Append(LeafHash(leaf), nullptr);
    CL_RETURN_IF_ERROR(check_global());
  }
  if (next_gc != PQntuples(gcs.get())) {
    return absl::DataLossError(absl::StrCat("a global checkpoint beyond the global log's ",
                                            global.size(), " leaves"));
  }
  summary.global_size = global.size();
  return summary;
}

}  // namespace caseledger
