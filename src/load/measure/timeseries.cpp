#include "load/measure/timeseries.hpp"

#include <cmath>

namespace agentstate::load {

double IntervalRow::Metric(const std::string& name, double width_s) const {
  if (name == "p50_ms") return p50_ms;
  if (name == "p95_ms") return p95_ms;
  if (name == "p99_ms") return p99_ms;
  if (name == "mean_ms") return mean_ms;
  if (name == "max_ms") return max_ms;
  if (name == "ops") return static_cast<double>(count);
  if (name == "ops_per_s") return width_s > 0 ? static_cast<double>(count) / width_s : 0;
  if (name == "error_rate_percent")
    return count ? 100.0 * static_cast<double>(errors) / static_cast<double>(count) : 0;
  if (name == "availability_percent") {
    return count ? 100.0 * static_cast<double>(count - errors) / static_cast<double>(count) : 100;
  }
  return std::nan("");
}

IntervalRow MakeRow(double t_s, const Histogram& h, uint64_t errors) {
  IntervalRow r;
  r.t_s = t_s;
  r.count = h.Count();
  r.errors = errors;
  if (r.count) {
    r.mean_ms = h.Mean() / 1000.0;
    r.p50_ms = static_cast<double>(h.ValueAtPercentile(50)) / 1000.0;
    r.p95_ms = static_cast<double>(h.ValueAtPercentile(95)) / 1000.0;
    r.p99_ms = static_cast<double>(h.ValueAtPercentile(99)) / 1000.0;
    r.max_ms = static_cast<double>(h.Max()) / 1000.0;
  }
  return r;
}

void IntervalRecorder::Close(double t_s) {
  if (full()) return;
  rows_.push_back(MakeRow(t_s, current_, errors_));
  if (keep_) histograms_.push_back(current_.Snapshot());
  current_.Reset();
  errors_ = 0;
}

nlohmann::json SeriesJson(const std::vector<IntervalRow>& rows, std::chrono::milliseconds width) {
  nlohmann::json data = nlohmann::json::array();
  for (const auto& r : rows) {
    data.push_back({r.t_s, r.count, r.errors, r.mean_ms, r.p50_ms, r.p95_ms, r.p99_ms, r.max_ms});
  }
  return {
      {"interval_s", static_cast<double>(width.count()) / 1000.0},
      {"columns", {"t_s", "count", "errors", "mean_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms"}},
      {"rows", std::move(data)}};
}

}  // namespace agentstate::load
