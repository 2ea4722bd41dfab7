#include "ledger/pg_partitions.h"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "ledger/internal/pg.h"
#include "ledger/internal/status_macros.h"
#include "ledger/merkle_tree.h"
#include "ledger/pg_store.h"
#include "ledger/record.h"
#include "ledger/rocks_store.h"

namespace caseledger {
namespace {

using pg::Conn;
using pg::Exec;
using pg::ExecText;
using pg::GetBytes;
using pg::GetInt4;
using pg::GetInt8;
using pg::Params;
using pg::Result;

// The global log (ledger/CLUSTER.md "The global log"). Idempotent; under the
// same advisory lock as pg_store's schema.
constexpr char kGlobalSchema[] = R"sql(
SELECT pg_advisory_xact_lock(7223113460716306432);
CREATE TABLE IF NOT EXISTS cl_global (
  seq bigint PRIMARY KEY,
  part int NOT NULL,
  size bigint NOT NULL,
  leaf bytea NOT NULL,
  epoch bigint NOT NULL,
  CONSTRAINT cl_global_part_size UNIQUE (part, size)
);
CREATE TABLE IF NOT EXISTS cl_global_checkpoints (
  size bigint PRIMARY KEY,
  note bytea NOT NULL
);
CREATE TABLE IF NOT EXISTS cl_cosignatures (
  origin text NOT NULL,
  size bigint NOT NULL,
  witness text NOT NULL,
  line bytea NOT NULL,
  PRIMARY KEY (origin, size, witness)
);
)sql";

// The global leaves below `size` (all when size is UINT64_MAX), in order.
absl::StatusOr<std::vector<std::string>> GlobalLeaves(PGconn* c, uint64_t size) {
  Params p;
  p.Int8(size > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(size));
  CL_ASSIGN_OR_RETURN(Result r, Exec(c, "SELECT seq, leaf FROM cl_global WHERE seq < $1 ORDER BY seq",
                                     &p, "read global leaves"));
  std::vector<std::string> out;
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    if (GetInt8(r.get(), i, 0) != i) {
      return absl::DataLossError(absl::StrCat("global log: no leaf ", i));
    }
    out.push_back(GetBytes(r.get(), i, 1));
  }
  return out;
}

void BuildTree(const std::vector<std::string>& leaves, MerkleTree* tree, InMemoryNodeStore* nodes) {
  std::vector<NodeWrite> writes;
  for (const std::string& leaf : leaves) tree->Append(LeafHash(leaf), &writes);
  nodes->PutAll(writes);
}

absl::StatusOr<std::optional<std::string>> GlobalNoteAt(PGconn* c, uint64_t size) {
  Params p;
  p.Int8(static_cast<int64_t>(size));
  CL_ASSIGN_OR_RETURN(Result r, Exec(c, "SELECT note FROM cl_global_checkpoints WHERE size = $1",
                                     &p, "read global checkpoint"));
  if (PQntuples(r.get()) == 0) return std::optional<std::string>();
  return std::optional<std::string>(GetBytes(r.get(), 0, 0));
}

absl::StatusOr<std::optional<GlobalCheckpoint>> ReadLatestGlobal(PGconn* c) {
  CL_ASSIGN_OR_RETURN(Result r, Exec(c,
                                     "SELECT size, note FROM cl_global_checkpoints ORDER BY size "
                                     "DESC LIMIT 1",
                                     nullptr, "read global checkpoint"));
  if (PQntuples(r.get()) == 0) return std::optional<GlobalCheckpoint>();
  return std::optional<GlobalCheckpoint>(
      GlobalCheckpoint{static_cast<uint64_t>(GetInt8(r.get(), 0, 0)), GetBytes(r.get(), 0, 1)});
}

}  // namespace

struct PartitionedNode::Part {
  int32_t part = 0;
  int64_t epoch = 0;
  std::shared_ptr<std::atomic<bool>> fenced;
  std::shared_ptr<Ledger> ledger;
};

PartitionedNode::PartitionedNode(PartitionedNodeOptions options) : options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<PartitionedNode>> PartitionedNode::Start(
    PartitionedNodeOptions options) {
  CL_RETURN_IF_ERROR(ValidatePartitionCount(options.partitions, "partitions"));
  if (options.dir.empty()) return absl::InvalidArgumentError("dir: must not be empty");
  if (options.ledger.signer == nullptr) {
    return absl::InvalidArgumentError("ledger.signer: must not be null");
  }
  if (options.global_signer == nullptr ||
      options.global_signer->name() != GlobalOrigin(options.ledger.origin)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "global_signer: got key name \"",
        options.global_signer == nullptr ? "(none)" : options.global_signer->name(),
        "\", want \"", GlobalOrigin(options.ledger.origin),
        "\" (witnesses take the global log's origin to be its key's name)"));
  }
  if (options.ledger.cipher != nullptr || options.ledger.blinder != nullptr) {
    return absl::InvalidArgumentError(
        "ledger.cipher, ledger.blinder: must be null; set master_key and the node wires its "
        "key store into every partition");
  }
  std::vector<CosignatureVerifier> witnesses;
  for (size_t i = 0; i < options.witness_keys.size(); ++i) {
    absl::StatusOr<CosignatureVerifier> w =
        CosignatureVerifier::FromVerifierKey(options.witness_keys[i]);
    if (!w.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("witness_keys[", i, "]: ", w.status().message()));
    }
    witnesses.push_back(*std::move(w));
  }
  if (options.acquire_interval <= absl::ZeroDuration()) {
    options.acquire_interval = options.lease_ttl / 4;
  }
  std::error_code ec;
  std::filesystem::create_directories(options.dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(absl::StrCat("dir: cannot create ", options.dir, ": ",
                                                      ec.message()));
  }
  std::unique_ptr<PartitionedNode> node(new PartitionedNode(std::move(options)));
  node->witnesses_ = std::move(witnesses);
  {
    CL_ASSIGN_OR_RETURN(Conn c, pg::Connect(node->options_.conninfo, nullptr));
    CL_RETURN_IF_ERROR(ExecText(c.get(), kGlobalSchema, "create global log tables"));
  }
  CL_RETURN_IF_ERROR(node->OpenKeys());
  CL_RETURN_IF_ERROR(node->Acquire());
  node->acquirer_ = std::thread([n = node.get()] { n->AcquireLoop(); });
  return node;
}

absl::Status PartitionedNode::OpenKeys() {
  CL_ASSIGN_OR_RETURN(key_table_, OpenPgKeyTable(options_.conninfo, options_.reconnect_timeout));
  if (!options_.master_key.has_value()) {
    CL_ASSIGN_OR_RETURN(std::optional<std::string> wrapped_under, key_table_->GetKey(kMasterKeyIdKey));
    if (wrapped_under.has_value()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "master_key: not given, but cl_keys holds data keys wrapped under master key id ",
          *wrapped_under, "; pass the master key"));
    }
    return absl::OkStatus();
  }
  KeyStoreOptions ko = options_.key_options;
  ko.shared_table = true;  // other nodes create and destroy keys in cl_keys too
  CL_ASSIGN_OR_RETURN(key_store_, KeyStore::Open(key_table_.get(), *options_.master_key, ko));
  options_.ledger.cipher = key_store_.get();
  if (options_.blind_ids) options_.ledger.blinder = key_store_.get();
  return absl::OkStatus();
}

PartitionedNode::~PartitionedNode() {
  {
    absl::MutexLock lock(&stop_mu_);
    stopping_ = true;
  }
  if (acquirer_.joinable()) acquirer_.join();
}

void PartitionedNode::AcquireLoop() {
  auto stop = [this]() ABSL_SHARED_LOCKS_REQUIRED(stop_mu_) { return stopping_; };
  absl::Time next_global = absl::Now();
  for (;;) {
    {
      absl::MutexLock lock(&stop_mu_);
      absl::Duration wait = options_.acquire_interval;
      if (options_.global_interval > absl::ZeroDuration()) {
        wait = std::min(wait, options_.global_interval);
      }
      if (stop_mu_.AwaitWithTimeout(absl::Condition(&stop), wait)) return;
    }
    absl::Status s = Acquire();
    if (!s.ok() && options_.log) options_.log(absl::StrCat("taking partitions: ", s.message()));
    if (options_.global_interval > absl::ZeroDuration() && absl::Now() >= next_global) {
      next_global = absl::Now() + options_.global_interval;
      s = PublishRound();
      if (!s.ok() && options_.log) options_.log(absl::StrCat("global log: ", s.message()));
    }
  }
}

absl::Status PartitionedNode::Acquire() {
  absl::MutexLock acquiring(&acquire_mu_);
  absl::Status first_error;
  for (int32_t p = 0; p < options_.partitions; ++p) {
    std::shared_ptr<Part> dropped;  // destroyed outside mu_
    size_t owned = 0;
    {
      absl::MutexLock lock(&mu_);
      auto it = parts_.find(p);
      if (it != parts_.end()) {
        if (!it->second->fenced->load()) continue;
        dropped = std::move(it->second);
        parts_.erase(it);
      }
      owned = parts_.size();
    }
    if (dropped != nullptr && options_.log) {
      options_.log(absl::StrCat("partition ", p, ": fenced, dropped"));
    }
    dropped.reset();
    absl::StatusOr<PgPartitionHead> head = ReadPgPartitionHead(options_.conninfo, p);
    const bool had_owner = head.ok() && head->epoch > 0;
    if (head.ok() && head->lease_live && head->owner != options_.node_id) continue;
    if (!had_owner && options_.max_new_partitions > 0 &&
        owned >= static_cast<size_t>(options_.max_new_partitions)) {
      continue;
    }
    absl::Status s = TryTake(p);
    if (!s.ok() && first_error.ok()) {
      first_error = absl::Status(s.code(), absl::StrCat("partition ", p, ": ", s.message()));
    }
  }
  // One partition that cannot be taken now does not keep the others.
  return first_error;
}

absl::Status PartitionedNode::TryTake(int32_t part) {
  RocksStoreOptions local;
  local.path = absl::StrCat(options_.dir, "/p", part);
  local.block_cache_bytes = 8 << 20;
  local.write_buffer_bytes = 4 << 20;
  CL_ASSIGN_OR_RETURN(std::unique_ptr<LogStore> local_store, OpenRocksStore(local));
  auto fenced = std::make_shared<std::atomic<bool>>(false);
  PgStoreOptions o;
  o.conninfo = options_.conninfo;
  o.partition = part;
  o.partitions = options_.partitions;
  o.node_id = options_.node_id;
  o.address = options_.address;
  o.lease_ttl = options_.lease_ttl;
  o.reconnect_timeout = options_.reconnect_timeout;
  o.wait_for_lease = false;
  o.local = std::move(local_store);
  o.log = options_.log;
  o.on_fenced = [fenced, log = options_.log](const absl::Status& s) {
    fenced->store(true);
    if (log) log(absl::StrCat("lost a partition lease: ", s.message()));
  };
  absl::StatusOr<std::unique_ptr<LogStore>> store = OpenPgStore(std::move(o));
  if (absl::IsFailedPrecondition(store.status()) &&
      !absl::StrContains(store.status().message(), "--pg_partitions")) {
    return absl::OkStatus();  // another node holds the lease
  }
  if (!store.ok()) return store.status();
  auto entry = std::make_shared<Part>();
  entry->part = part;
  entry->epoch = PgStoreEpoch(**store);
  entry->fenced = fenced;
  LedgerOptions lo = options_.ledger;
  lo.origin = PartitionOrigin(options_.ledger.origin, part, options_.partitions);
  CL_ASSIGN_OR_RETURN(std::unique_ptr<Ledger> ledger, Ledger::Open(std::move(lo), *std::move(store)));
  entry->ledger = std::move(ledger);
  absl::MutexLock lock(&mu_);
  parts_[part] = std::move(entry);
  return absl::OkStatus();
}

std::vector<int32_t> PartitionedNode::Owned() const {
  absl::MutexLock lock(&mu_);
  std::vector<int32_t> out;
  for (const auto& [p, part] : parts_) {
    if (!part->fenced->load()) out.push_back(p);
  }
  return out;
}

absl::StatusOr<std::shared_ptr<Ledger>> PartitionedNode::Partition(int32_t part) const {
  absl::MutexLock lock(&mu_);
  auto it = parts_.find(part);
  if (it == parts_.end() || it->second->fenced->load()) {
    return absl::NotFoundError(absl::StrCat("partition ", part, ": not owned by this node"));
  }
  return it->second->ledger;
}

absl::StatusOr<std::shared_ptr<Ledger>> PartitionedNode::Route(
    const std::vector<AppendRequest>& requests) {
  if (requests.empty()) return absl::InvalidArgumentError("events: must not be empty");
  const auto partition_of = [this](const AppendRequest& r) {
    return static_cast<int32_t>(
        PartitionOf(r.event.stream_id, static_cast<uint32_t>(options_.partitions)));
  };
  const int32_t p = partition_of(requests.front());
  for (size_t i = 0; i < requests.size(); ++i) {
    CL_RETURN_IF_ERROR(ValidateEvent(requests[i].event));
    if (partition_of(requests[i]) != p) {
      return absl::InvalidArgumentError(absl::StrCat(
          "events[", i, "].stream_id: its case is in partition ", partition_of(requests[i]),
          ", events[0]'s in partition ", p, "; a batch must stay within one partition"));
    }
  }
  absl::StatusOr<std::shared_ptr<Ledger>> ledger = Partition(p);
  if (ledger.ok()) return ledger;
  absl::StatusOr<PgPartitionHead> head = ReadPgPartitionHead(options_.conninfo, p);
  if (head.ok() && head->lease_live && head->owner != options_.node_id) {
    return absl::FailedPreconditionError(absl::StrCat(
        "stream_id: the case is in partition ", p, ", owned by node \"", head->owner, "\" at ",
        head->owner_address.empty() ? "(no address)" : head->owner_address,
        "; send the append there"));
  }
  return absl::UnavailableError(absl::StrCat(
      "stream_id: the case is in partition ", p,
      ", which has no live owner now; retry with the same event id"));
}

absl::StatusOr<AppendResult> PartitionedNode::Append(AppendRequest request) {
  std::vector<AppendRequest> one;
  one.push_back(std::move(request));
  CL_ASSIGN_OR_RETURN(std::shared_ptr<Ledger> ledger, Route(one));
  return ledger->Append(std::move(one.front()));
}

absl::StatusOr<std::vector<AppendResult>> PartitionedNode::AppendBatch(
    std::vector<AppendRequest> requests) {
  CL_ASSIGN_OR_RETURN(std::shared_ptr<Ledger> ledger, Route(requests));
  return ledger->AppendBatch(std::move(requests));
}

absl::Status PartitionedNode::PublishRound() {
  if (!Partition(0).ok()) return absl::OkStatus();  // the owner of partition 0 publishes
  for (int32_t p : Owned()) {
    absl::StatusOr<std::shared_ptr<Ledger>> ledger = Partition(p);
    if (ledger.ok() && (*ledger)->Size() > 0) CL_RETURN_IF_ERROR((*ledger)->Checkpoint().status());
  }
  absl::StatusOr<GlobalCheckpoint> g = PublishGlobal();
  if (absl::IsFailedPrecondition(g.status()) &&
      absl::StrContains(g.status().message(), "no partition has a checkpoint")) {
    return absl::OkStatus();
  }
  return g.status();
}

absl::StatusOr<GlobalCheckpoint> PartitionedNode::PublishGlobal() {
  std::shared_ptr<Part> zero;
  {
    absl::MutexLock lock(&mu_);
    auto it = parts_.find(0);
    if (it != parts_.end() && !it->second->fenced->load()) zero = it->second;
  }
  if (zero == nullptr) {
    return absl::FailedPreconditionError(
        "global log: sequenced by the owner of partition 0; this node does not own it");
  }
  bool warned = false;
  CL_ASSIGN_OR_RETURN(Conn conn, pg::Connect(options_.conninfo, &warned));
  PGconn* c = conn.get();
  CL_RETURN_IF_ERROR(ExecText(c, "BEGIN", "begin"));
  absl::StatusOr<GlobalCheckpoint> out = [&]() -> absl::StatusOr<GlobalCheckpoint> {
    // The fence: partition 0's row, locked against a takeover until COMMIT.
    CL_ASSIGN_OR_RETURN(Result e, Exec(c,
                                       "SELECT epoch FROM cl_partitions WHERE part = 0 FOR UPDATE",
                                       nullptr, "lock partition 0"));
    if (PQntuples(e.get()) != 1 || GetInt8(e.get(), 0, 0) != zero->epoch) {
      zero->fenced->store(true);
      return absl::FailedPreconditionError(absl::StrCat(
          "global log: partition 0 was taken over (epoch ",
          PQntuples(e.get()) == 1 ? GetInt8(e.get(), 0, 0) : -1, "), ours is ", zero->epoch,
          "; nothing written"));
    }
    CL_ASSIGN_OR_RETURN(std::vector<std::string> leaves, GlobalLeaves(c, UINT64_MAX));
    CL_ASSIGN_OR_RETURN(Result last, Exec(c,
                                          "SELECT part, max(size) FROM cl_global GROUP BY part",
                                          nullptr, "read global heads"));
    absl::flat_hash_map<int32_t, int64_t> covered;
    for (int i = 0; i < PQntuples(last.get()); ++i) {
      int32_t part = GetInt4(last.get(), i, 0);
      covered[part] = GetInt8(last.get(), i, 1);
    }
    CL_ASSIGN_OR_RETURN(Result newest, Exec(c,
                                            "SELECT DISTINCT ON (part) part, size, note FROM "
                                            "cl_checkpoints WHERE part >= 0 ORDER BY part, size DESC",
                                            nullptr, "read partition checkpoints"));
    for (int i = 0; i < PQntuples(newest.get()); ++i) {
      int32_t part = GetInt4(newest.get(), i, 0);
      int64_t size = GetInt8(newest.get(), i, 1);
      auto it = covered.find(part);
      if (it != covered.end() && it->second >= size) continue;
      CL_ASSIGN_OR_RETURN(std::string leaf, GlobalLeafOf(GetBytes(newest.get(), i, 2)));
      Params ins;
      ins.Int8(static_cast<int64_t>(leaves.size())).Int4(part).Int8(size).Bytes(leaf).Int8(zero->epoch);
      CL_RETURN_IF_ERROR(Exec(c,
                              "INSERT INTO cl_global (seq, part, size, leaf, epoch) VALUES ($1, "
                              "$2, $3, $4, $5)",
                              &ins, "append global leaf")
                             .status());
      leaves.push_back(std::move(leaf));
    }
    CL_ASSIGN_OR_RETURN(std::optional<GlobalCheckpoint> latest, ReadLatestGlobal(c));
    if (latest.has_value() && latest->size == leaves.size()) return *latest;
    if (leaves.empty()) {
      return absl::FailedPreconditionError("global log: no partition has a checkpoint yet");
    }
    MerkleTree tree;
    InMemoryNodeStore nodes;
    BuildTree(leaves, &tree, &nodes);
    Checkpoint cp;
    cp.origin = GlobalOrigin(options_.ledger.origin);
    cp.size = tree.size();
    cp.root = tree.Root();
    CL_ASSIGN_OR_RETURN(std::string note, SignCheckpoint(cp, *options_.global_signer));
    Params ins;
    ins.Int8(static_cast<int64_t>(cp.size)).Bytes(note);
    CL_RETURN_IF_ERROR(Exec(c, "INSERT INTO cl_global_checkpoints (size, note) VALUES ($1, $2)",
                            &ins, "store global checkpoint")
                           .status());
    return GlobalCheckpoint{cp.size, note};
  }();
  if (!out.ok()) {
    if (!pg::ConnectionLost(c)) (void)ExecText(c, "ROLLBACK", "rollback");
    return out.status();
  }
  CL_RETURN_IF_ERROR(ExecText(c, "COMMIT", "commit"));
  if (warned) {
    return absl::UnavailableError(
        "postgresql: global commit not confirmed by a synchronous standby (wait cancelled)");
  }
  return out;
}

absl::StatusOr<std::pair<PartitionedProof, GlobalCheckpoint>> PartitionedNode::Prove(int32_t part,
                                                                                    uint64_t seq) {
  if (part < 0 || part >= options_.partitions) {
    return absl::InvalidArgumentError(absl::StrCat("partition: got ", part, ", want 0 to ",
                                                   options_.partitions - 1));
  }
  absl::StatusOr<std::shared_ptr<Ledger>> ledger = Partition(part);
  CL_ASSIGN_OR_RETURN(Conn conn, pg::Connect(options_.conninfo, nullptr));
  PGconn* c = conn.get();
  CL_ASSIGN_OR_RETURN(std::optional<GlobalCheckpoint> global, ReadLatestGlobal(c));
  if (!global.has_value()) {
    return absl::FailedPreconditionError("global log: no global checkpoint yet");
  }
  Params q;
  q.Int4(part).Int8(static_cast<int64_t>(seq)).Int8(static_cast<int64_t>(global->size));
  CL_ASSIGN_OR_RETURN(Result r, Exec(c,
                                     "SELECT seq, size, leaf FROM cl_global WHERE part = $1 AND "
                                     "size > $2 AND seq < $3 ORDER BY seq LIMIT 1",
                                     &q, "find global leaf"));
  if (PQntuples(r.get()) != 1) {
    return absl::FailedPreconditionError(absl::StrCat(
        "global log: no global checkpoint covers record ", seq, " of partition ", part,
        " yet; publish one"));
  }
  PartitionedProof proof;
  proof.partition = static_cast<uint32_t>(part);
  proof.seq = seq;
  proof.global_index = static_cast<uint64_t>(GetInt8(r.get(), 0, 0));
  const uint64_t part_size = static_cast<uint64_t>(GetInt8(r.get(), 0, 1));
  proof.partition_body = GetBytes(r.get(), 0, 2);
  if (ledger.ok()) {
    CL_ASSIGN_OR_RETURN(RecordView record, (*ledger)->Read(seq));
    proof.record_leaf = std::move(record.leaf);
    CL_ASSIGN_OR_RETURN(proof.partition_proof, (*ledger)->InclusionProof(seq, part_size));
  } else {
    // Not ours: the partition's leaves from the log of record.
    Params lq;
    lq.Int4(part).Int8(static_cast<int64_t>(part_size));
    CL_ASSIGN_OR_RETURN(Result rows, Exec(c,
                                          "SELECT leaf FROM cl_records WHERE part = $1 AND seq < "
                                          "$2 ORDER BY seq",
                                          &lq, "read partition leaves"));
    if (static_cast<uint64_t>(PQntuples(rows.get())) != part_size) {
      return absl::DataLossError(absl::StrCat("partition ", part, ": ", PQntuples(rows.get()),
                                              " records below its checkpoint's size ", part_size));
    }
    std::vector<std::string> leaves;
    for (int i = 0; i < PQntuples(rows.get()); ++i) leaves.push_back(GetBytes(rows.get(), i, 0));
    proof.record_leaf = leaves[seq];
    MerkleTree ptree;
    InMemoryNodeStore pnodes;
    BuildTree(leaves, &ptree, &pnodes);
    CL_ASSIGN_OR_RETURN(proof.partition_proof, InclusionProof(seq, part_size, pnodes));
  }
  CL_ASSIGN_OR_RETURN(std::vector<std::string> leaves, GlobalLeaves(c, global->size));
  MerkleTree tree;
  InMemoryNodeStore nodes;
  BuildTree(leaves, &tree, &nodes);
  CL_ASSIGN_OR_RETURN(proof.global_proof, InclusionProof(proof.global_index, global->size, nodes));
  return std::make_pair(std::move(proof), *std::move(global));
}

absl::StatusOr<std::optional<GlobalCheckpoint>> PartitionedNode::LatestGlobal() const {
  CL_ASSIGN_OR_RETURN(Conn conn, pg::Connect(options_.conninfo, nullptr));
  return ReadLatestGlobal(conn.get());
}

absl::Status PartitionedNode::AddGlobalCosignatures(absl::string_view cosigned_note) {
  CL_ASSIGN_OR_RETURN(SignedNote note, ParseSignedNote(cosigned_note));
  absl::StatusOr<Checkpoint> cp = ParseCheckpointBody(note.text);
  if (!cp.ok()) return absl::InvalidArgumentError(absl::StrCat("note: ", cp.status().message()));
  const std::string origin = GlobalOrigin(options_.ledger.origin);
  if (cp->origin != origin) {
    return absl::InvalidArgumentError(
        absl::StrCat("note: origin got \"", cp->origin, "\", want \"", origin, "\""));
  }
  CL_ASSIGN_OR_RETURN(Conn conn, pg::Connect(options_.conninfo, nullptr));
  PGconn* c = conn.get();
  CL_ASSIGN_OR_RETURN(std::optional<std::string> ours, GlobalNoteAt(c, cp->size));
  if (!ours.has_value()) {
    return absl::InvalidArgumentError(
        absl::StrCat("note: this ledger signed no global checkpoint at size ", cp->size));
  }
  CL_ASSIGN_OR_RETURN(SignedNote signed_note, ParseSignedNote(*ours));
  if (signed_note.text != note.text) {
    return absl::InvalidArgumentError(absl::StrCat(
        "note: text is not the global checkpoint this ledger signed at size ", cp->size));
  }
  absl::Status why = absl::FailedPreconditionError("no witness_keys configured");
  size_t stored = 0;
  for (const CosignatureVerifier& w : witnesses_) {
    absl::StatusOr<Cosignature> cs = w.Verify(cosigned_note);
    if (!cs.ok()) {
      why = absl::Status(cs.status().code(), absl::StrCat(w.name(), ": ", cs.status().message()));
      continue;
    }
    Params p;
    p.Bytes(origin).Int8(static_cast<int64_t>(cp->size)).Bytes(w.name()).Bytes(cs->line);
    CL_RETURN_IF_ERROR(Exec(c,
                            "INSERT INTO cl_cosignatures (origin, size, witness, line) VALUES "
                            "(convert_from($1, 'UTF8'), $2, convert_from($3, 'UTF8'), $4) "
                            "ON CONFLICT (origin, size, witness) DO NOTHING",
                            &p, "store cosignature")
                           .status());
    ++stored;
  }
  if (stored == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "note: no configured witness cosigned global checkpoint ", cp->size, " (", why.message(),
        ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> PartitionedNode::CosignedGlobal(uint64_t size) const {
  CL_ASSIGN_OR_RETURN(Conn conn, pg::Connect(options_.conninfo, nullptr));
  PGconn* c = conn.get();
  CL_ASSIGN_OR_RETURN(std::optional<std::string> note, GlobalNoteAt(c, size));
  if (!note.has_value()) {
    return absl::NotFoundError(absl::StrCat("global log: no checkpoint at size ", size));
  }
  Params p;
  p.Bytes(GlobalOrigin(options_.ledger.origin)).Int8(static_cast<int64_t>(size));
  CL_ASSIGN_OR_RETURN(Result r, Exec(c,
                                     "SELECT line FROM cl_cosignatures WHERE origin = "
                                     "convert_from($1, 'UTF8') AND size = $2 ORDER BY witness",
                                     &p, "read cosignatures"));
  std::string out = *std::move(note);
  for (int i = 0; i < PQntuples(r.get()); ++i) absl::StrAppend(&out, GetBytes(r.get(), i, 0), "\n");
  return out;
}

absl::StatusOr<std::vector<Hash>> PartitionedNode::GlobalConsistency(uint64_t size1,
                                                                     uint64_t size2) const {
  CL_ASSIGN_OR_RETURN(Conn conn, pg::Connect(options_.conninfo, nullptr));
  CL_ASSIGN_OR_RETURN(std::vector<std::string> leaves, GlobalLeaves(conn.get(), size2));
  if (leaves.size() < size2) {
    return absl::InvalidArgumentError(absl::StrCat("size2: got ", size2, ", the global log has ",
                                                   leaves.size()));
  }
  MerkleTree tree;
  InMemoryNodeStore nodes;
  BuildTree(leaves, &tree, &nodes);
  return ConsistencyProof(size1, size2, nodes);
}

}  // namespace caseledger
