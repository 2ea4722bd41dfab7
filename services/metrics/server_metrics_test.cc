#include "services/metrics/server_metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "tests/test_util.h"

namespace caseledger {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(ServerMetricsTest, RendersWhatWasObserved) {
  ServerMetrics metrics;
  metrics.ObserveAppend("Append", absl::StatusCode::kOk, absl::Milliseconds(3));
  metrics.ObserveAppend("AppendBatch", absl::StatusCode::kDataLoss, absl::Milliseconds(1));
  metrics.ObserveGroupCommit(GroupCommitStats{5, true, absl::Milliseconds(4), absl::Milliseconds(2)});
  metrics.CountRefusal("producer");
  metrics.CountRefusal("producer");
  CommittedBatch batch;
  batch.records.resize(3);
  batch.records[0].record.event_type = "subject_erased";
  batch.records[1].record.event_type = "case_opened";
  batch.records[2].record.event_type = "records_disposed";
  metrics.ObserveCommitted(batch);
  const std::string text = metrics.Render();
  EXPECT_THAT(text, HasSubstr("caseledger_append_duration_seconds_count{method=\"Append\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("caseledger_append_duration_seconds_sum{method=\"Append\"} 0.003"));
  EXPECT_THAT(text, HasSubstr("caseledger_append_errors_total{code=\"DATA_LOSS\",method=\"AppendBatch\"} 1"));
  EXPECT_THAT(text, HasSubstr("caseledger_group_commit_records_sum 5\n"));
  EXPECT_THAT(text, HasSubstr("caseledger_group_commit_duration_seconds_count 1\n"));
  EXPECT_THAT(text, HasSubstr("caseledger_fsync_duration_seconds_sum 0.002"));
  EXPECT_THAT(text, HasSubstr("caseledger_checkpoints_signed_total 1\n"));
  EXPECT_THAT(text, HasSubstr("caseledger_refusals_total{role=\"producer\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("caseledger_erasures_total{kind=\"subject_erased\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("caseledger_erasures_total{kind=\"records_disposed\"} 1\n"));
  // No live source yet: no gauges.
  EXPECT_THAT(text, Not(HasSubstr("caseledger_tree_size")));
}

TEST(ServerMetricsTest, AnUnknownMethodIsOther) {
  ServerMetrics metrics;
  metrics.ObserveAppend("client-1's case", absl::StatusCode::kAborted, absl::Milliseconds(1));
  const std::string text = metrics.Render();
  EXPECT_THAT(text, HasSubstr("caseledger_append_duration_seconds_count{method=\"other\"} 1\n"));
  EXPECT_THAT(text, Not(HasSubstr("client-1")));
}

TEST(ServerMetricsTest, LiveGaugesAreReadAtEachScrape) {
  ServerMetrics metrics;
  LiveFigures f;
  f.tree_size = 10;
  metrics.SetLiveSource([&]() -> absl::StatusOr<LiveFigures> { return f; });
  EXPECT_THAT(metrics.Render(), HasSubstr("caseledger_tree_size 10\n"));
  EXPECT_THAT(metrics.Render(), HasSubstr("caseledger_integrity_ok 1\n"));
  EXPECT_THAT(metrics.Render(), HasSubstr("caseledger_integrity_first_bad_seq -1\n"));
  f.tree_size = 12;
  f.damaged = true;
  f.first_bad_seq = 4;
  f.damage_reports = 1;
  f.projector_lag_records = 2;
  const std::string text = metrics.Render();
  EXPECT_THAT(text, HasSubstr("caseledger_tree_size 12\n"));
  EXPECT_THAT(text, HasSubstr("caseledger_integrity_ok 0\n"));
  EXPECT_THAT(text, HasSubstr("caseledger_integrity_first_bad_seq 4\n"));
  EXPECT_THAT(text, HasSubstr("caseledger_integrity_failures_total 1\n"));
  EXPECT_THAT(text, HasSubstr("caseledger_projector_lag_records 2\n"));
}

TEST(ServerMetricsTest, ServesOnlyOnLoopback) {
  ServerMetrics metrics;
  absl::Status s = metrics.Serve("0.0.0.0:0");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("--metrics_listen: got \"0.0.0.0:0\", want a loopback"));
  EXPECT_EQ(metrics.port(), 0);
  EXPECT_EQ(metrics.Serve("10.0.0.1:9090").code(), absl::StatusCode::kInvalidArgument);
}

TEST(ServerMetricsTest, ServesTheTextFormatOverHttp) {
  ServerMetrics metrics;
  ASSERT_TRUE(metrics.Serve("127.0.0.1:0").ok());
  ASSERT_GT(metrics.port(), 0);
  metrics.CountRefusal("client");
  std::string got = testing::HttpGet(metrics.port(), "/metrics");
  EXPECT_THAT(got, HasSubstr("200 OK"));
  EXPECT_THAT(got, HasSubstr("caseledger_refusals_total{role=\"client\"} 1\n"));
}

}  // namespace
}  // namespace caseledger
