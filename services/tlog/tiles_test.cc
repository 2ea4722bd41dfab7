#include "services/tlog/tiles.h"

#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ledger/checkpoint.h"
#include "ledger/hash.h"
#include "ledger/memory_store.h"
#include "ledger/merkle_tree.h"
#include "ledger/merkle_verify.h"
#include "ledger/record.h"
#include "ledger/signer.h"

namespace caseledger {
namespace {

using ::testing::HasSubstr;

TEST(TilePathTest, GoldenPaths) {
  // The spec's example (c2sp.org/tlog-tiles: 1234067 -> x001/x234/067) and
  // the edges of the three-digit grouping.
  struct Case {
    TileId tile;
    const char* path;
  } cases[] = {
      {{false, 0, 1234067, 256}, "tile/0/x001/x234/067"},
      {{false, 0, 1234067, 8}, "tile/0/x001/x234/067.p/8"},
      {{true, 0, 1234067, 8}, "tile/entries/x001/x234/067.p/8"},
      {{true, 0, 1234067, 256}, "tile/entries/x001/x234/067"},
      {{false, 0, 0, 256}, "tile/0/000"},
      {{false, 1, 5, 1}, "tile/1/005.p/1"},
      {{false, 2, 999, 255}, "tile/2/999.p/255"},
      {{false, 3, 1000, 256}, "tile/3/x001/000"},
      {{false, 63, 1000000, 256}, "tile/63/x001/x000/000"},
      {{false, 0, UINT64_MAX, 256}, "tile/0/x018/x446/x744/x073/x709/x551/615"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(TilePath(c.tile), c.path);
    absl::StatusOr<TileId> parsed = ParseTilePath(c.path);
    ASSERT_TRUE(parsed.ok()) << c.path << ": " << parsed.status();
    EXPECT_TRUE(*parsed == c.tile) << c.path;
  }
}

TEST(TilePathTest, RefusesNonCanonicalPaths) {
  struct Case {
    const char* path;
    const char* rule;
  } cases[] = {
      {"tile/00/000", "level"},
      {"tile/64/000", "level"},
      {"tile/-1/000", "level"},
      {"tile/0/67", "three-digit"},
      {"tile/0/0067", "three-digit"},
      {"tile/0/001/234", "starts with x"},
      {"tile/0/x001/x234", "three-digit"},
      {"tile/0/x000/067", "leading x000"},
      {"tile/0/x001/", "three-digit"},
      {"tile/0/067.p/0", "width"},
      {"tile/0/067.p/256", "width"},
      {"tile/0/067.p/08", "width"},
      {"tile/0/067.p/", "width"},
      {"tile/0/x018/x446/x744/x073/x709/x551/616", "over 2^64"},
      {"tiles/0/000", "start with tile/"},
      {"tile/000", "want tile/<L>/<N>"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<TileId> parsed = ParseTilePath(c.path);
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << c.path;
    EXPECT_THAT(parsed.status().message(), HasSubstr(c.rule)) << c.path;
  }
}

TEST(TileExistsTest, SpecExampleTreeOf70000) {
  // "a tree of size 70,000 will be represented by 273 full level 0 tiles,
  // one partial level 0 tile of width 112, one full level 1 tile, one
  // partial level 1 tile of width 17, and one partial level 2 tile of
  // width 1."
  const uint64_t s = 70000;
  EXPECT_TRUE(TileExists({false, 0, 272, 256}, s));
  EXPECT_FALSE(TileExists({false, 0, 273, 256}, s));
  EXPECT_TRUE(TileExists({false, 0, 273, 112}, s));
  EXPECT_FALSE(TileExists({false, 0, 273, 113}, s));
  EXPECT_TRUE(TileExists({true, 0, 273, 112}, s));
  EXPECT_TRUE(TileExists({false, 1, 0, 256}, s));
  EXPECT_FALSE(TileExists({false, 1, 1, 256}, s));
  EXPECT_TRUE(TileExists({false, 1, 1, 17}, s));
  EXPECT_FALSE(TileExists({false, 1, 1, 18}, s));
  EXPECT_TRUE(TileExists({false, 2, 0, 1}, s));
  EXPECT_FALSE(TileExists({false, 2, 0, 2}, s));
  EXPECT_FALSE(TileExists({false, 3, 0, 1}, s));
  // "a tree of size 256 will be represented by a full level 0 tile and a
  // partial level 1 tile of width 1."
  EXPECT_TRUE(TileExists({false, 0, 0, 256}, 256));
  EXPECT_TRUE(TileExists({false, 1, 0, 1}, 256));
  EXPECT_FALSE(TileExists({false, 0, 1, 1}, 256));
  // No overflow at the top of the index range or levels.
  EXPECT_FALSE(TileExists({false, 0, UINT64_MAX, 256}, UINT64_MAX));
  EXPECT_FALSE(TileExists({false, 8, 0, 1}, UINT64_MAX));
  EXPECT_TRUE(TileExists({false, 7, 0, 255}, UINT64_MAX));
  EXPECT_FALSE(TileExists({false, 0, 0, 1}, 0));
}

// A ledger's store with `n` real records, their Merkle nodes, and one signed
// checkpoint at `checkpoint_size`.
class TiledLog {
 public:
  TiledLog(uint64_t n, uint64_t checkpoint_size) : store_(NewMemoryStore()) {
    auto signer = Ed25519Signer::FromSeed(std::string(32, '\x07'));
    auto note_signer = NoteSigner::New("tiles.test/log", *std::move(signer));
    vkey_ = note_signer->VerifierKey();
    MerkleTree tree;
    Hash prev{};
    CommitBatch batch;
    for (uint64_t seq = 0; seq < n; ++seq) {
      Record r;
      r.seq = seq;
      r.prev_hash = prev;
      r.commit_time_micros = 1700000000000000 + static_cast<int64_t>(seq);
      r.stream_id = absl::StrCat("case-", seq % 13);
      r.version = seq / 13;
      r.event_id = absl::StrCat("ev-", seq);
      r.producer = "intake";
      r.event_type = "note_added";
      r.occurred_at_micros = r.commit_time_micros;
      r.subject_ids = {absl::StrCat("client-", seq % 101)};
      r.payload_commitment = Sha256Of(absl::StrCat("payload ", seq));
      std::string leaf = EncodeRecord(r);
      prev = LeafHash(leaf);
      tree.Append(prev, &batch.nodes);
      batch.records.push_back({seq, leaf, "payload", r.stream_id, r.version, r.event_id});
      leaves_.push_back(std::move(leaf));
      if (tree.size() == checkpoint_size) {
        root_ = tree.Root();
        auto note = SignCheckpoint({"tiles.test/log", checkpoint_size, root_, {}}, *note_signer);
        batch.checkpoints.emplace_back(checkpoint_size, *note);
      }
      if (batch.records.size() == 4096 || seq + 1 == n) {
        batch.new_size = tree.size();
        EXPECT_TRUE(store_->Commit(batch).ok());
        batch = CommitBatch();
      }
    }
  }
  const LogStore& store() const { return *store_; }
  const std::vector<std::string>& leaves() const { return leaves_; }
  const Hash& root() const { return root_; }
  const std::string& vkey() const { return vkey_; }

 private:
  std::unique_ptr<LogStore> store_;
  std::vector<std::string> leaves_;
  Hash root_{};
  std::string vkey_;
};

HttpResponse Get(const TileServer& server, const std::string& path) {
  return server.Handle({"GET", path, ""});
}

// A tlog-tiles client written from the spec alone: it knows the checkpoint
// (size, root) and fetches tiles; nothing else of the log.
class TileClient {
 public:
  TileClient(const TileServer& server, uint64_t size) : server_(server), size_(size) {}

  // MTH(D[a:b]).
  Hash Range(uint64_t a, uint64_t b) {
    const uint64_t n = b - a;
    if ((n & (n - 1)) == 0 && a % n == 0) return Node(__builtin_ctzll(n), a / n);
    uint64_t k = 1;
    while (k * 2 < n) k *= 2;
    return NodeHash(Range(a, a + k), Range(a + k, b));
  }
  // PATH(m, D[a:b]) of RFC 9162 2.1.3.1.
  std::vector<Hash> Path(uint64_t m, uint64_t a, uint64_t b) {
    if (b - a == 1) return {};
    uint64_t k = 1;
    while (k * 2 < b - a) k *= 2;
    std::vector<Hash> out;
    if (m < a + k) {
      out = Path(m, a, a + k);
      out.push_back(Range(a + k, b));
    } else {
      out = Path(m, a + k, b);
      out.push_back(Range(a, a + k));
    }
    return out;
  }
  // Entry m, from its bundle.
  std::string Entry(uint64_t m) {
    const std::string bundle = Fetch(true, 0, m / 256);
    size_t pos = 0;
    for (uint64_t i = 0;; ++i) {
      EXPECT_LE(pos + 2, bundle.size());
      size_t len = (static_cast<uint8_t>(bundle[pos]) << 8) | static_cast<uint8_t>(bundle[pos + 1]);
      if (i == m % 256) return bundle.substr(pos + 2, len);
      pos += 2 + len;
    }
  }
  int fetches() const { return static_cast<int>(cache_.size()); }

 private:
  // The perfect subtree (level l, index i): 2^(l mod 8) hashes of the tile
  // at level l / 8, hashed up.
  Hash Node(uint32_t l, uint64_t i) {
    const uint32_t tile_level = l / 8, up = l % 8;
    const uint64_t first = i << up;  // index at level 8 * tile_level
    const std::string tile = Fetch(false, tile_level, first / 256);
    std::vector<Hash> row;
    for (uint64_t j = 0; j < (uint64_t{1} << up); ++j) {
      size_t at = ((first % 256) + j) * 32;
      EXPECT_LE(at + 32, tile.size()) << "tile too short";
      Hash h{};
      std::copy(tile.begin() + at, tile.begin() + at + 32, h.begin());
      row.push_back(h);
    }
    while (row.size() > 1) {
      std::vector<Hash> next;
      for (size_t j = 0; j < row.size(); j += 2) next.push_back(NodeHash(row[j], row[j + 1]));
      row = next;
    }
    return row[0];
  }
  // The tile (or bundle) at this level and index as the checkpoint's size
  // has it: full, or partial of the spec's width.
  std::string Fetch(bool entries, uint32_t level, uint64_t index) {
    const uint64_t at_level = size_ >> (8 * level);
    const uint64_t width = std::min<uint64_t>(256, at_level - index * 256);
    std::string path = "/tile/" + (entries ? std::string("entries") : std::to_string(level)) + "/";
    // Written apart from EncodeTileIndex: groups of three digits.
    std::string digits = std::to_string(index);
    while (digits.size() % 3 != 0) digits = "0" + digits;
    for (size_t g = 0; g < digits.size(); g += 3) {
      if (g + 3 < digits.size()) path += "x";
      path += digits.substr(g, 3);
      if (g + 3 < digits.size()) path += "/";
    }
    if (width < 256) path += ".p/" + std::to_string(width);
    auto it = cache_.find(path);
    if (it != cache_.end()) return it->second;
    HttpResponse r = Get(server_, path);
    EXPECT_EQ(r.status, 200) << path << ": " << r.body;
    EXPECT_EQ(r.content_type, "application/octet-stream");
    EXPECT_THAT(r.cache_control, HasSubstr("immutable"));
    return cache_[path] = r.body;
  }

  const TileServer& server_;
  const uint64_t size_;
  std::map<std::string, std::string> cache_;
};

TEST(TileServerTest, ClientRebuildsRootAndProvesInclusionFromTilesAlone) {
  // Three tile levels: 65536 + 300 leaves need a full level-1 tile and a
  // partial level-2 tile. Records past the checkpoint exist but are not
  // published.
  const uint64_t size = 65536 + 300;
  TiledLog log(size + 50, size);
  TileServer server(log.store(), log.store());

  HttpResponse cp = Get(server, "/checkpoint");
  ASSERT_EQ(cp.status, 200);
  EXPECT_EQ(cp.content_type, "text/plain; charset=utf-8");
  EXPECT_EQ(cp.cache_control, "no-cache");
  auto verifier = NoteVerifier::FromVerifierKey(log.vkey());
  ASSERT_TRUE(verifier.ok());
  absl::StatusOr<Checkpoint> checkpoint = OpenCheckpoint(cp.body, *verifier, "tiles.test/log");
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  ASSERT_EQ(checkpoint->size, size);

  TileClient client(server, checkpoint->size);
  EXPECT_EQ(client.Range(0, checkpoint->size), checkpoint->root);
  for (uint64_t m : {uint64_t{0}, uint64_t{255}, uint64_t{256}, uint64_t{40000}, size - 1}) {
    const std::string entry = client.Entry(m);
    EXPECT_EQ(entry, log.leaves()[m]) << "entry " << m << " is the stored record leaf";
    absl::StatusOr<Record> record = DecodeRecord(entry);
    ASSERT_TRUE(record.ok()) << record.status();
    EXPECT_EQ(record->seq, m);
    std::vector<Hash> proof = client.Path(m, 0, checkpoint->size);
    EXPECT_TRUE(VerifyInclusion(LeafHash(entry), m, checkpoint->size, proof, checkpoint->root).ok())
        << "record " << m;
  }
  // A flipped byte in an entry no longer proves inclusion.
  std::string forged = client.Entry(7);
  forged[20] ^= 1;
  EXPECT_FALSE(VerifyInclusion(LeafHash(forged), 7, checkpoint->size, client.Path(7, 0, size),
                               checkpoint->root)
                   .ok());
}

TEST(TileServerTest, ServesOnlyWhatTheLatestCheckpointCovers) {
  const uint64_t size = 600;  // two full level-0 tiles and a partial of 88
  TiledLog log(size + 300, size);
  TileServer server(log.store(), log.store());
  EXPECT_EQ(Get(server, "/tile/0/001").status, 200);
  EXPECT_EQ(Get(server, "/tile/0/002.p/88").status, 200);
  EXPECT_EQ(Get(server, "/tile/0/002.p/87").status, 200);  // an earlier size's partial
  EXPECT_EQ(Get(server, "/tile/entries/002.p/88").status, 200);
  // Records 600..899 are stored but not yet in a signed checkpoint.
  HttpResponse beyond = Get(server, "/tile/0/002.p/89");
  EXPECT_EQ(beyond.status, 404);
  EXPECT_EQ(beyond.cache_control, "no-store");
  EXPECT_THAT(beyond.body, HasSubstr("does not exist at the latest checkpoint's size 600"));
  EXPECT_EQ(Get(server, "/tile/0/002").status, 404);
  EXPECT_EQ(Get(server, "/tile/entries/002").status, 404);
  EXPECT_EQ(Get(server, "/tile/1/000.p/3").status, 404);
  EXPECT_EQ(Get(server, "/tile/1/000.p/2").status, 200);
  EXPECT_EQ(Get(server, "/tile/0/x000/001").status, 404);
  EXPECT_EQ(Get(server, "/tile/0/01").status, 404);
  EXPECT_EQ(Get(server, "/tile/").status, 404);
  EXPECT_EQ(Get(server, "/").status, 404);
  EXPECT_EQ(Get(server, "/add-checkpoint").status, 404);
  EXPECT_EQ(server.Handle({"POST", "/checkpoint", "x"}).status, 405);

  // Hash tile bytes are the stored level-0 nodes, i.e. the leaf hashes.
  HttpResponse t = Get(server, "/tile/0/002.p/88");
  ASSERT_EQ(t.body.size(), 88u * 32);
  EXPECT_EQ(t.body.substr(0, 32), AsBytes(LeafHash(log.leaves()[512])));
  EXPECT_EQ(t.body.substr(87 * 32), AsBytes(LeafHash(log.leaves()[599])));
  // Level 1, hash 1 is the subtree over leaves [256, 512).
  HttpResponse l1 = Get(server, "/tile/1/000.p/2");
  ASSERT_EQ(l1.body.size(), 64u);
  auto node = RootAt(256, log.store());  // the first subtree
  EXPECT_EQ(l1.body.substr(0, 32), AsBytes(*node));
  // Entry bundles: u16 big-endian length, then the leaf, for each record.
  HttpResponse b = Get(server, "/tile/entries/002.p/88");
  ASSERT_GE(b.body.size(), 2u);
  size_t len0 = (static_cast<uint8_t>(b.body[0]) << 8) | static_cast<uint8_t>(b.body[1]);
  EXPECT_EQ(b.body.substr(2, len0), log.leaves()[512]);
  size_t total = 0;
  for (uint64_t seq = 512; seq < 600; ++seq) total += 2 + log.leaves()[seq].size();
  EXPECT_EQ(b.body.size(), total);
}

TEST(TileServerTest, NoCheckpointYetIsNotFound) {
  TiledLog log(10, 0);
  TileServer server(log.store(), log.store());
  HttpResponse cp = Get(server, "/checkpoint");
  EXPECT_EQ(cp.status, 404);
  EXPECT_THAT(cp.body, HasSubstr("no checkpoint has been signed yet"));
  EXPECT_EQ(Get(server, "/tile/0/000.p/1").status, 404);
}

TEST(TileServerTest, GoldenBytes) {
  // TILES.md "Golden example".
  std::unique_ptr<LogStore> store = NewMemoryStore();
  auto signer = NoteSigner::New("tiles.test/log", *Ed25519Signer::FromSeed(std::string(32, 1)));
  MerkleTree tree;
  CommitBatch batch;
  for (uint64_t seq = 0; seq < 3; ++seq) {
    const std::string leaf = absl::StrCat("leaf-", seq);
    tree.Append(LeafHash(leaf), &batch.nodes);
    batch.records.push_back({seq, leaf, "", "s", seq, absl::StrCat("e", seq)});
  }
  batch.new_size = 3;
  batch.checkpoints.emplace_back(3,
                                 *SignCheckpoint({"tiles.test/log", 3, tree.Root(), {}}, *signer));
  ASSERT_TRUE(store->Commit(batch).ok());
  TileServer server(*store, *store);
  const std::string tile_hex =
      "305df59f9590c3c9ac63d2b2743c388e3792449078cebf7fb3dbe6471643b2b7\n"
      "3145c409f259b7c53e32036090ff76751025a2498ba9823ef718cac50b4e616f\n"
      "fca89f57c9f8c8eb4047a7ff9d333acf9e0f3384b20b255bceab0f216dcca267\n";
  const std::string bundle_hex = "00066c6561662d3000066c6561662d3100066c6561662d32";
  std::string want_tile;
  for (absl::string_view line : absl::StrSplit(tile_hex, '\n', absl::SkipEmpty())) {
    want_tile += absl::HexStringToBytes(line);
  }
  EXPECT_EQ(Get(server, "/tile/0/000.p/3").body, want_tile);
  EXPECT_EQ(Get(server, "/tile/entries/000.p/3").body, absl::HexStringToBytes(bundle_hex));
  EXPECT_EQ(Get(server, "/tile/0/000.p/4").status, 404);
  EXPECT_EQ(Get(server, "/tile/0/000").status, 404);
  EXPECT_EQ(Get(server, "/tile/1/000.p/1").status, 404);
  // The spec beside the code says the same bytes and paths.
  std::ifstream in("services/tlog/TILES.md");
  std::stringstream doc;
  doc << in.rdbuf();
  EXPECT_THAT(doc.str(), HasSubstr(tile_hex));
  EXPECT_THAT(doc.str(), HasSubstr(bundle_hex));
  for (const char* path : {"tile/0/x001/x234/067.p/8", "tile/entries/x001/x234/067.p/8",
                           "tile/3/x001/000", "tile/0/x018/x446/x744/x073/x709/x551/615"}) {
    EXPECT_THAT(doc.str(), HasSubstr(path));
  }
}

}  // namespace
}  // namespace caseledger
