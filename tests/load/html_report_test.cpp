#include "load/report/html_report.hpp"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "agentstate/registry.hpp"
#include "load/catalogue/scenarios.hpp"
#include "load/report/report.hpp"
#include "support/run.hpp"

namespace agentstate::load {
namespace {

using ::testing::HasSubstr;

std::pair<nlohmann::json, std::vector<nlohmann::json>> ReportsOf(
    std::vector<GateOverride> overrides) {
  auto store = std::move(*OpenStore("memory://", {}));
  ScenarioSpec spec = FindScenario("burst_traffic_handling")->build(Profile{true, 4, {}});
  ApplyOverrides(spec.gates, overrides);
  WorkloadGenerator gen(1);
  ScenarioResult r = testing::RunSync([&]() -> Awaitable<ScenarioResult> {
    co_return co_await RunScenario(spec, RunContext{*store, gen, false});
  });
  RunInfo run{.store = "memory://", .profile = "quick", .seed = 1, .version = "test"};
  std::vector<ScenarioResult> results{r};
  return {RunSummary(results, run), {ScenarioReport(r, run)}};
}

TEST(HtmlReport, IsOneSelfContainedPageWithFiveChartsPerScenario) {
  auto [summary, reports] = ReportsOf({});
  const std::string html = HtmlReport(summary, reports);
  EXPECT_THAT(html, ::testing::StartsWith("<!doctype html>"));
  EXPECT_THAT(html, HasSubstr("Every gate held."));
  std::size_t charts = 0;
  for (auto at = html.find("<svg class=\"chart\""); at != std::string::npos;
       at = html.find("<svg class=\"chart\"", at + 1)) {
    ++charts;
  }
  EXPECT_EQ(charts, 5u);
  for (const char* id : {"-latency", "-throughput", "-spectrum", "-memory", "-cpu"}) {
    EXPECT_THAT(html, HasSubstr(std::string("id=\"burst_traffic_handling") + id + "\""));
  }
  // Nothing fetched: no script, no stylesheet or image from elsewhere.
  for (const char* outside : {"<script", "http://", "https://", "<link", "<img"}) {
    EXPECT_EQ(html.find(outside), std::string::npos) << outside;
  }
  EXPECT_THAT(html, HasSubstr("per_phase"));
  EXPECT_THAT(html, HasSubstr("Ledger"));
  EXPECT_THAT(html, HasSubstr("in-process memory"));  // the durability contract in force
}

TEST(HtmlReport, AFailedGateIsRedAtTheTopWithItsMeasuredValueAndLimit) {
  auto [summary, reports] = ReportsOf({{"spike_p95_ms", 0}});
  const std::string html = HtmlReport(summary, reports);
  const auto top = html.find("<section id=\"failures\">");
  ASSERT_NE(top, std::string::npos);
  EXPECT_LT(top, html.find("Run overview"));
  const std::string failures = html.substr(top, html.find("</section>", top) - top);
  EXPECT_THAT(failures, HasSubstr("<tr class=\"bad\">"));
  EXPECT_THAT(failures, HasSubstr("spike_p95_ms"));
  EXPECT_THAT(failures, HasSubstr("&lt;= 0 ms"));
  EXPECT_THAT(failures, HasSubstr("FAILED"));
}

TEST(HtmlReport, LongSeriesAreDownsampledKeepingTheirPeaks) {
  auto [summary, reports] = ReportsOf({});
  // A 24 h soak's worth of 1 s rows, flat but for one spike.
  nlohmann::json rows = nlohmann::json::array();
  for (int t = 1; t <= 86400; ++t)
    rows.push_back({t, 100, 0, 1.0, 1.0, 2.0, t == 40000 ? 950.0 : 3.0, 4.0});
  reports[0]["additional_data"]["time_series"]["rows"] = rows;
  reports[0]["additional_data"]["fine_series"] = nullptr;  // a soak has no fine rows
  const std::string html = HtmlReport(summary, reports);
  EXPECT_LT(html.size(), 3u << 20) << "a soak's page must stay a few MB";
  EXPECT_THAT(html, HasSubstr("data-points=\"1500\""));
  EXPECT_THAT(html, HasSubstr(">997.5<")) << "the spike (950 ms, axis top 5 % above) was kept";
}

// A run of a fraction of a second charted per 1 s interval is a single dot: a short run
// charts its fine rows (1, 10 or 100 ms) instead, so its chart has a shape.
TEST(HtmlReport, AShortRunIsChartedInFineIntervals) {
  auto [summary, reports] = ReportsOf({});
  const auto& ad = reports[0]["additional_data"];
  const double wall = ad["wall_s"].get<double>();
  ASSERT_LT(wall, 10.0) << "the quick burst on memory:// is expected to be short";
  ASSERT_TRUE(ad["fine_series"].is_object());
  const double width = ad["fine_series"]["interval_s"].get<double>();
  EXPECT_TRUE(width == 0.001 || width == 0.01 || width == 0.1) << width;
  const auto rows = ad["fine_series"]["rows"].size();
  EXPECT_GE(rows, 2u);
  EXPECT_GE(static_cast<double>(rows), std::floor(wall / width));
  const std::string html = HtmlReport(summary, reports);
  EXPECT_THAT(html, HasSubstr(fmt::format("per {:g} ms interval", width * 1000)));
  const auto chart = html.find("id=\"burst_traffic_handling-throughput\"");
  ASSERT_NE(chart, std::string::npos);
  const auto points = html.find("data-points=\"", chart);
  ASSERT_NE(points, std::string::npos);
  EXPECT_GE(std::stoi(html.substr(points + 13)), 2) << "the throughput chart is a single point";
}

}  // namespace
}  // namespace agentstate::load
