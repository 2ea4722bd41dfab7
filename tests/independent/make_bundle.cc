// Writes a synthetic export bundle (tests/synthetic_log.h) to a file, for the
// independent verifier's test:
//   make_bundle OUT RECORDS CHECKPOINT_EVERY FIRST_SEQ full|lean subjects|nosubjects
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "tests/synthetic_log.h"

int main(int argc, char** argv) {
  if (argc != 7) {
    std::fprintf(stderr,
                 "usage: make_bundle OUT RECORDS CHECKPOINT_EVERY FIRST_SEQ full|lean "
                 "subjects|nosubjects (got %d arguments, want 6)\n",
                 argc - 1);
    return 2;
  }
  caseledger::testing::SyntheticLogOptions o;
  o.records = std::strtoull(argv[2], nullptr, 10);
  o.checkpoint_every = std::strtoull(argv[3], nullptr, 10);
  o.payload_bytes = 12;
  o.streams = 5;
  o.subjects_line = std::string(argv[6]) == "subjects";
  uint64_t first = std::strtoull(argv[4], nullptr, 10);
  caseledger::BundlePayload mode = std::string(argv[5]) == "lean"
                                       ? caseledger::BundlePayload::kCommitmentsOnly
                                       : caseledger::BundlePayload::kFull;
  std::string bytes = caseledger::testing::SyntheticBundle(o, first, mode);
  std::ofstream out(argv[1], std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return out.good() ? 0 : 1;
}
