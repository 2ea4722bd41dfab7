// The log as c2sp.org/tlog-tiles: tile paths, hash tiles and entry bundles
// computed from the ledger's stored Merkle nodes and records, and the
// read-only HTTP handler that serves them with the signed checkpoint.
// services/tlog/TILES.md is the specification the tests check.
//
// Thread-safety: the free functions touch only their arguments; TileServer
// is immutable after construction and Handle may run on many threads (the
// stores it reads are thread-safe for reads, ledger/log_store.h).
#ifndef CASELEDGER_SERVICES_TLOG_TILES_H_
#define CASELEDGER_SERVICES_TLOG_TILES_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ledger/log_store.h"
#include "ledger/merkle_tree.h"
#include "services/tlog/http_server.h"

namespace caseledger {

// Tiles are 2^8 hashes wide and span 8 tree levels.
inline constexpr uint32_t kTileHeight = 8;
inline constexpr uint32_t kTileWidth = 1u << kTileHeight;
// The spec's largest level number.
inline constexpr uint32_t kMaxTileLevel = 63;

// A hash tile (entries = false) or an entry bundle (entries = true).
struct TileId {
  bool entries = false;
  uint32_t level = 0;           // 0 for entry bundles
  uint64_t index = 0;           // N
  uint32_t width = kTileWidth;  // 1..256; below 256 a partial tile

  bool operator==(const TileId& o) const {
    return entries == o.entries && level == o.level && index == o.index && width == o.width;
  }
};

// N as the spec's path elements: zero-padded 3-digit groups, all but the
// last prefixed with "x" (1234067 -> "x001/x234/067", 5 -> "005").
std::string EncodeTileIndex(uint64_t index);

// "tile/<L>/<N>[.p/<W>]" or "tile/entries/<N>[.p/<W>]", no leading slash.
std::string TilePath(const TileId& tile);

// The inverse of TilePath; only canonical paths parse (one path per
// resource). INVALID_ARGUMENT naming the rule broken: a level that is not
// 0..63 in decimal without leading zeros, an index element that is not
// three digits, "x" on the last element or missing on another, a leading
// "x000" element, a width that is not 1..255 without leading zeros.
absl::StatusOr<TileId> ParseTilePath(absl::string_view path);

// Whether `tile` exists in the tree of `tree_size` leaves: every hash (or
// entry) it lists is complete at that size.
bool TileExists(const TileId& tile, uint64_t tree_size);

// The hash tile's bytes: `width` hashes, node (8 * level, index * 256 + i)
// of ledger/MERKLE.md for i in [0, width), 32 bytes each.
// NOT_FOUND if !TileExists(tile, tree_size); store errors unchanged.
absl::StatusOr<std::string> ReadHashTile(const TileId& tile, uint64_t tree_size,
                                         const NodeReader& nodes);

// The entry bundle's bytes: for each of its `width` records, u16 big-endian
// length || the record (leaf) bytes as stored (ledger/FORMAT.md "Record").
// NOT_FOUND if !TileExists(tile, tree_size); DATA_LOSS for a missing record
// or one over 65535 bytes; store errors unchanged.
absl::StatusOr<std::string> ReadEntryBundle(const TileId& tile, uint64_t tree_size,
                                            const RecordLog& log);

// Serves GET /checkpoint, GET /tile/<L>/<N>[.p/<W>] and
// GET /tile/entries/<N>[.p/<W>] for the tree of the latest signed
// checkpoint (TILES.md "HTTP"). `log` and `nodes` are borrowed and must
// outlive the server.
class TileServer {
 public:
  TileServer(const RecordLog& log, const NodeReader& nodes) : log_(log), nodes_(nodes) {}
  HttpResponse Handle(const HttpRequest& request) const;

 private:
  const RecordLog& log_;
  const NodeReader& nodes_;
};

}  // namespace caseledger

#endif  // CASELEDGER_SERVICES_TLOG_TILES_H_
