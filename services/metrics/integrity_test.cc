#include "services/metrics/integrity.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace caseledger {
namespace {

using ::testing::HasSubstr;

TEST(IntegrityMonitorTest, AllowsAppendsUntilDamageIsReported) {
  std::vector<std::string> log;
  IntegrityMonitor monitor({[&](const std::string& line) { log.push_back(line); }});
  std::vector<bool> health;
  monitor.SetHealthSink([&](bool serving) { health.push_back(serving); });
  EXPECT_TRUE(monitor.CheckAppendsAllowed().ok());
  EXPECT_FALSE(monitor.state().damaged);
  EXPECT_EQ(health, std::vector<bool>{true});
  EXPECT_TRUE(log.empty());

  monitor.ReportDamage("background verifier", 7, "record 7: leaf hash: got 01, want 02");
  ASSERT_EQ(log.size(), 1u);
  EXPECT_THAT(log[0], HasSubstr("INTEGRITY ALARM: background verifier found a damaged record "
                                "at seq 7: record 7: leaf hash: got 01, want 02"));
  EXPECT_EQ(health, (std::vector<bool>{true, false}));
  absl::Status s = monitor.CheckAppendsAllowed();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr("the ledger is damaged at seq 7 "));
  // The refusal carries only the seq, not the check's details.
  EXPECT_THAT(std::string(s.message()), ::testing::Not(HasSubstr("leaf hash")));
  IntegrityMonitor::State st = monitor.state();
  EXPECT_TRUE(st.damaged);
  EXPECT_EQ(st.first_bad_seq, 7u);
  EXPECT_EQ(st.reports, 1u);
}

TEST(IntegrityMonitorTest, KeepsTheLowestSeqAndAlarmsOnEveryReport) {
  std::vector<std::string> log;
  IntegrityMonitor monitor({[&](const std::string& line) { log.push_back(line); }});
  monitor.ReportDamage("background verifier", 9, "x");
  monitor.ReportDamage("VerifyRange", 12, "y");
  EXPECT_EQ(monitor.state().first_bad_seq, 9u);
  monitor.ReportDamage("VerifyRange", 3, "z");
  EXPECT_EQ(monitor.state().first_bad_seq, 3u);
  EXPECT_EQ(monitor.state().reports, 3u);
  EXPECT_EQ(log.size(), 3u);
  EXPECT_THAT(monitor.CheckAppendsAllowed().message(), HasSubstr("damaged at seq 3 "));
}

TEST(IntegrityMonitorTest, ASinkSetAfterTheDamageHearsItAtOnce) {
  IntegrityMonitor monitor({[](const std::string&) {}});
  monitor.ReportDamage("open check", 0, "x");
  std::vector<bool> health;
  monitor.SetHealthSink([&](bool serving) { health.push_back(serving); });
  EXPECT_EQ(health, std::vector<bool>{false});
}

}  // namespace
}  // namespace caseledger
