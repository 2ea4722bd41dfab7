// The subject map (SUBJECT_INDEX.md "The map") with its nodes in the store
// and a bounded cache of them in memory: the ledger's copy of the map. Opening
// reads the root node only; Set, Get, Prove and PrunedOld read the nodes on
// their keys' paths (about log2(subjects) each), through the cache. The node
// layout is in SUBJECT_INDEX.md "Storage".
//
// Roots and proofs are those of SubjectMap (subject_index.h), which stays the
// pure in-memory form verifiers use; subject_map_store_test checks the two
// against each other.
//
// Thread-safety: not thread-safe; the ledger serializes access (map_mu_).
// The store is read concurrently with its other users, as LogStore allows.
#ifndef CASELEDGER_LEDGER_SUBJECT_MAP_STORE_H_
#define CASELEDGER_LEDGER_SUBJECT_MAP_STORE_H_

#include <cstdint>
#include <functional>
#include <list>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "ledger/hash.h"
#include "ledger/log_store.h"
#include "ledger/subject_index.h"

namespace caseledger {

// The default bound on the node cache (SubjectMapStoreOptions::cache_bytes).
inline constexpr size_t kDefaultSubjectMapCacheBytes = size_t{32} << 20;

struct SubjectMapStoreOptions {
  // Memory the cache of clean nodes may hold, counted as a fixed cost per
  // node (kSubjectMapCachedNodeBytes). Nodes changed since the last
  // TakeWrites are held apart from it until then (at most about
  // log2(subjects) per subject touched in a checkpoint interval).
  size_t cache_bytes = kDefaultSubjectMapCacheBytes;
};

// What one cached node costs, as counted against cache_bytes: the node, its
// path key and the cache's bookkeeping.
inline constexpr size_t kSubjectMapCachedNodeBytes = 256;

// The store key suffix of the node at `depth` on `key`'s path: u16 depth ||
// the first ceil(depth / 8) bytes of `key`, bits from `depth` on cleared
// (SUBJECT_INDEX.md "Storage").
std::string SubjectMapNodePath(const Hash& key, size_t depth);

class StoredSubjectMap {
 public:
  // Opens the map held by `store` (borrowed; must outlive the map). A store
  // still in layout 1 (leaves only) is migrated first: its nodes are built
  // from the leaves, written, and the layout set to 2 (SUBJECT_INDEX.md
  // "Storage"). Then only the root node is read.
  static absl::StatusOr<StoredSubjectMap> Open(SubjectIndexStore* store,
                                               SubjectMapStoreOptions options = {});
  StoredSubjectMap() = default;
  StoredSubjectMap(StoredSubjectMap&&) noexcept = default;
  StoredSubjectMap& operator=(StoredSubjectMap&&) noexcept = default;

  // Sets `key`'s state. The nodes on its path are held, dirty, until
  // TakeWrites; their hashes are computed once, bottom-up, by the next
  // Root, Prove, PrunedOld or TakeWrites.
  absl::Status Set(const Hash& key, const SubjectState& state);
  // nullopt when the key is absent.
  absl::StatusOr<std::optional<SubjectState>> Get(const Hash& key);
  // The root over every Set so far.
  Hash Root();
  // Proof of `key` (present or absent) against Root().
  absl::StatusOr<SubjectMapProof> Prove(const Hash& key);
  // As SubjectMap::PrunedOld.
  absl::StatusOr<std::vector<PrunedMapNode>> PrunedOld(
      const absl::flat_hash_map<Hash, SubjectState>& old_states);

  // The nodes changed since the last call, as (path, value) pairs for
  // CommitBatch::subject_map_nodes; they join the cache.
  std::vector<std::pair<std::string, std::string>> TakeWrites();

  // Nodes in the cache, and how many reads missed it (for benchmarks).
  size_t cached_nodes() const { return lru_.size(); }
  size_t dirty_nodes() const { return dirty_.size(); }
  uint64_t store_reads() const { return store_reads_; }
  size_t cache_bytes() const { return options_.cache_bytes; }

  // A decoded node: a leaf, or an interior node with both children's hashes
  // (32 zero bytes for an empty child).
  struct Node {
    bool is_leaf = false;
    Hash key{};           // leaf
    SubjectState state;   // leaf
    Hash child[2] = {};   // interior
  };

 private:
  StoredSubjectMap(SubjectIndexStore* store, SubjectMapStoreOptions options)
      : store_(store), options_(options) {}

  // The node at `path`, or nullopt when none is stored there.
  absl::StatusOr<std::optional<Node>> Load(const std::string& path);
  void Put(const std::string& path, const Node& node);
  void Cache(const std::string& path, const Node& node);
  // Hashes the dirty nodes, deepest first, into their parents' slots and
  // the root.
  void Rehash();

  absl::Status Prune(const Hash& path_key, size_t depth, const std::optional<Node>& node,
                     absl::Span<const std::pair<Hash, SubjectState>> keys,
                     std::vector<PrunedMapNode>* out);

  SubjectIndexStore* store_ = nullptr;
  SubjectMapStoreOptions options_;
  Hash root_{};
  bool stale_ = false;  // dirty nodes not hashed since the last Set
  // Changed since the last TakeWrites; never evicted.
  absl::flat_hash_map<std::string, Node> dirty_;
  // Clean nodes, most recently used first.
  std::list<std::pair<std::string, Node>> lru_;
  absl::flat_hash_map<std::string, std::list<std::pair<std::string, Node>>::iterator> index_;
  uint64_t store_reads_ = 0;
};

// Node values (SUBJECT_INDEX.md "Storage"), and a node's hash in the map.
Hash SubjectMapNodeHashOf(const StoredSubjectMap::Node& node);
std::string EncodeSubjectMapNode(const StoredSubjectMap::Node& node);
absl::StatusOr<StoredSubjectMap::Node> DecodeSubjectMapNode(absl::string_view value);

// Every node of the compact map over `leaves` (sorted by key, distinct), as
// (path, value) pairs, handed to `emit` in batches of about `batch` nodes;
// returns the root. Used to migrate a layout-1 store and to build large maps
// quickly in benchmarks.
absl::StatusOr<Hash> BuildSubjectMapNodes(
    const std::vector<std::pair<Hash, SubjectState>>& leaves, size_t batch,
    const std::function<absl::Status(std::vector<std::pair<std::string, std::string>>)>& emit);

}  // namespace caseledger

#endif  // CASELEDGER_LEDGER_SUBJECT_MAP_STORE_H_
