#include "services/tlog/tiles.h"

#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace caseledger {
namespace {

// Decimal without leading zeros (except "0" itself) within [lo, hi].
bool ParseCanonicalDecimal(absl::string_view s, uint32_t lo, uint32_t hi, uint32_t* out) {
  if (s.empty() || s.size() > 3) return false;
  if (s.size() > 1 && s[0] == '0') return false;
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  uint32_t v = 0;
  if (!absl::SimpleAtoi(s, &v) || v < lo || v > hi) return false;
  *out = v;
  return true;
}

bool ThreeDigits(absl::string_view s) {
  return s.size() == 3 && absl::ascii_isdigit(static_cast<unsigned char>(s[0])) &&
         absl::ascii_isdigit(static_cast<unsigned char>(s[1])) &&
         absl::ascii_isdigit(static_cast<unsigned char>(s[2]));
}

HttpResponse NotFound(std::string what) { return TextResponse(404, std::move(what)); }

// Tiles never change once they exist; a partial tile lists hashes that are
// final too (only full subtrees are in a tile), so both may be cached.
constexpr char kImmutable[] = "public, max-age=31536000, immutable";

}  // namespace

std::string EncodeTileIndex(uint64_t index) {
  std::vector<std::string> groups;
  do {
    groups.push_back(absl::StrFormat("%03d", static_cast<int>(index % 1000)));
    index /= 1000;
  } while (index > 0);
  std::string out;
  for (size_t i = groups.size(); i-- > 0;) {
    if (i > 0) {
      absl::StrAppend(&out, "x", groups[i], "/");
    } else {
      absl::StrAppend(&out, groups[i]);
    }
  }
  return out;
}

std::string TilePath(const TileId& tile) {
  std::string out =
      tile.entries ? std::string("tile/entries/") : absl::StrCat("tile/", tile.level, "/");
  absl::StrAppend(&out, EncodeTileIndex(tile.index));
  if (tile.width < kTileWidth) absl::StrAppend(&out, ".p/", tile.width);
  return out;
}

absl::StatusOr<TileId> ParseTilePath(absl::string_view path) {
  auto bad = [&](absl::string_view rule) {
    return absl::InvalidArgumentError(absl::StrCat("tile path \"", path, "\": ", rule));
  };
  if (!absl::ConsumePrefix(&path, "tile/")) return bad("want it to start with tile/");
  TileId tile;
  size_t slash = path.find('/');
  if (slash == absl::string_view::npos) return bad("want tile/<L>/<N> or tile/entries/<N>");
  absl::string_view level = path.substr(0, slash);
  path.remove_prefix(slash + 1);
  if (level == "entries") {
    tile.entries = true;
  } else if (!ParseCanonicalDecimal(level, 0, kMaxTileLevel, &tile.level)) {
    return bad("level: want a decimal 0..63 without leading zeros");
  }
  // The width suffix.
  size_t partial = path.find(".p/");
  if (partial != absl::string_view::npos) {
    if (!ParseCanonicalDecimal(path.substr(partial + 3), 1, kTileWidth - 1, &tile.width)) {
      return bad("width: want .p/<W> with W a decimal 1..255 without leading zeros");
    }
    path = path.substr(0, partial);
  }
  std::vector<absl::string_view> elems = absl::StrSplit(path, '/');
  uint64_t index = 0;
  for (size_t i = 0; i < elems.size(); ++i) {
    absl::string_view e = elems[i];
    const bool last = i + 1 == elems.size();
    if (!last && !absl::ConsumePrefix(&e, "x")) {
      return bad("index: every element but the last starts with x");
    }
    if (!ThreeDigits(e)) return bad("index: want three-digit elements (x001/x234/067)");
    if (i == 0 && !last && e == "000") return bad("index: a leading x000 element is not canonical");
    uint32_t group = 0;
    absl::SimpleAtoi(e, &group);
    if (index > (UINT64_MAX - group) / 1000) return bad("index: over 2^64 - 1");
    index = index * 1000 + group;
  }
  tile.index = index;
  return tile;
}

bool TileExists(const TileId& tile, uint64_t tree_size) {
  // Hashes of a level-L tile are nodes of tree level 8L, one per 2^(8L)
  // leaves; at levels >= 8 a node would cover >= 2^64 leaves.
  const uint32_t node_level = tile.level * kTileHeight;
  if (node_level >= 64) return false;
  const uint64_t hashes_at_level = tree_size >> node_level;  // complete nodes at that level
  if (tile.index > hashes_at_level / kTileWidth) return false;
  const unsigned __int128 needed =
      static_cast<unsigned __int128>(tile.index) * kTileWidth + tile.width;
  return needed <= hashes_at_level;
}

absl::StatusOr<std::string> ReadHashTile(const TileId& tile, uint64_t tree_size,
                                         const NodeReader& nodes) {
  if (tile.entries || !TileExists(tile, tree_size)) {
    return absl::NotFoundError(
        absl::StrCat(TilePath(tile), " does not exist at tree size ", tree_size));
  }
  std::vector<NodePosition> positions(tile.width);
  for (uint32_t i = 0; i < tile.width; ++i) {
    positions[i] = {tile.level * kTileHeight, tile.index * kTileWidth + i};
  }
  std::vector<Hash> hashes(tile.width);
  absl::Status s = nodes.GetNodes(positions, hashes.data());
  if (!s.ok()) return s;
  std::string out;
  out.reserve(tile.width * kHashSize);
  for (const Hash& h : hashes) out.append(reinterpret_cast<const char*>(h.data()), h.size());
  return out;
}

absl::StatusOr<std::string> ReadEntryBundle(const TileId& tile, uint64_t tree_size,
                                            const RecordLog& log) {
  if (!tile.entries || !TileExists(tile, tree_size)) {
    return absl::NotFoundError(
        absl::StrCat(TilePath(tile), " does not exist at tree size ", tree_size));
  }
  const uint64_t first = tile.index * kTileWidth;
  const uint64_t end = first + tile.width;
  std::string out;
  uint64_t next = first;
  absl::Status bad;
  absl::Status s = log.ScanRecords(first, [&](const RecordLog::ScannedRecord& r) {
    if (r.key_seq != next) {
      bad = absl::DataLossError(absl::StrCat("entry bundle ", TilePath(tile), ": record ", next,
                                             " is missing (next stored is ", r.key_seq, ")"));
      return false;
    }
    if (r.leaf.size() > 0xffff) {
      bad = absl::DataLossError(absl::StrCat("entry bundle ", TilePath(tile), ": record ", next,
                                             " is ", r.leaf.size(),
                                             " bytes, want at most 65535 (u16 length prefix)"));
      return false;
    }
    out.push_back(static_cast<char>(r.leaf.size() >> 8));
    out.push_back(static_cast<char>(r.leaf.size() & 0xff));
    out.append(r.leaf.data(), r.leaf.size());
    return ++next < end;
  });
  if (!s.ok()) return s;
  if (!bad.ok()) return bad;
  if (next != end) {
    return absl::DataLossError(
        absl::StrCat("entry bundle ", TilePath(tile), ": record ", next, " is missing"));
  }
  return out;
}

HttpResponse TileServer::Handle(const HttpRequest& request) const {
  if (request.method != "GET") {
    HttpResponse r = TextResponse(405, absl::StrCat("method got ", request.method,
                                                    ", want GET (this log's tiles are read-only)"));
    return r;
  }
  absl::StatusOr<std::optional<StoredCheckpoint>> latest = log_.LatestCheckpoint();
  if (!latest.ok()) return TextResponse(500, "the checkpoint could not be read");
  if (request.path == "/checkpoint") {
    if (!latest->has_value()) return NotFound("no checkpoint has been signed yet");
    HttpResponse r;
    r.body = (*latest)->note;
    r.content_type = "text/plain; charset=utf-8";
    // Mutable: a client must see a newer checkpoint within seconds.
    r.cache_control = "no-cache";
    return r;
  }
  absl::string_view path = request.path;
  if (!absl::ConsumePrefix(&path, "/tile/")) {
    return NotFound(absl::StrCat("no resource at ", request.path,
                                 "; this log serves /checkpoint, /tile/<L>/<N>[.p/<W>] and "
                                 "/tile/entries/<N>[.p/<W>]"));
  }
  absl::StatusOr<TileId> tile = ParseTilePath(absl::StrCat("tile/", path));
  if (!tile.ok()) return NotFound(std::string(tile.status().message()));
  const uint64_t size = latest->has_value() ? (*latest)->size : 0;
  if (!TileExists(*tile, size)) {
    return NotFound(
        absl::StrCat(TilePath(*tile), " does not exist at the latest checkpoint's size ", size));
  }
  absl::StatusOr<std::string> body =
      tile->entries ? ReadEntryBundle(*tile, size, log_) : ReadHashTile(*tile, size, nodes_);
  if (!body.ok()) return TextResponse(500, absl::StrCat(TilePath(*tile), " could not be read"));
  HttpResponse r;
  r.body = *std::move(body);
  r.content_type = "application/octet-stream";
  r.cache_control = kImmutable;
  return r;
}

}  // namespace caseledger
