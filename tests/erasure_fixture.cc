#include "tests/erasure_fixture.h"

#include <rocksdb/db.h>

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ledger/crypto.h"
#include "ledger/internal/status_macros.h"
#include "services/readmodel/projections.h"

namespace caseledger::testing {

absl::StatusOr<std::unique_ptr<ErasureFixture>> OpenErasureFixture(const std::string& dir) {
  CL_ASSIGN_OR_RETURN(AeadKey master, AeadKey::FromHex(kErasureMasterHex));
  auto f = std::make_unique<ErasureFixture>();
  CL_ASSIGN_OR_RETURN(f->db, OpenBlindedTestLedger(dir + "/ledger", master));
  std::vector<std::unique_ptr<Projection>> projections;
  projections.push_back(std::make_unique<CaseStateProjection>());
  projections.push_back(std::make_unique<AccountingProjection>());
  ProjectorOptions options;
  options.path = dir + "/projections";
  options.shred_event_type = "records_disposed";
  CL_ASSIGN_OR_RETURN(f->projector,
                      Projector::Open(options, f->db.ledger.get(), std::move(projections)));
  return f;
}

absl::StatusOr<std::map<std::string, std::string>> DumpProjections(const std::string& dir) {
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s =
      rocksdb::DB::OpenForReadOnly(rocksdb::Options(), dir + "/projections", &raw);
  if (!s.ok()) return absl::InternalError(absl::StrCat("open projections: ", s.ToString()));
  std::unique_ptr<rocksdb::DB> db(raw);
  std::map<std::string, std::string> out;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
  for (it->SeekToFirst(); it->Valid(); it->Next()) out[it->key().ToString()] = it->value().ToString();
  if (!it->status().ok()) return absl::InternalError(it->status().ToString());
  return out;
}

}  // namespace caseledger::testing
