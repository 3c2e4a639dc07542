// Latency over time: operations are recorded into the current interval; every interval
// width a tick closes it into a compact row (count, errors, mean and percentiles) and
// starts the next. Rows are ~64 bytes, so a 24 h soak at 1 s is ~5.5 MB; the histogram
// behind them is one, reused.
//
// Not thread-safe: record and tick from the harness's single-threaded executor.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "load/measure/histogram.hpp"

namespace agentstate::load {

struct IntervalRow {
  double t_s = 0;  // end of the interval, seconds since the scenario started
  uint64_t count = 0;
  uint64_t errors = 0;
  double mean_ms = 0, p50_ms = 0, p95_ms = 0, p99_ms = 0, max_ms = 0;

  // The row's value of a per-interval metric ("p99_ms", "error_rate_percent", "ops_per_s",
  // ...); NaN for an unknown name.
  double Metric(const std::string& name, double width_s) const;
};

class IntervalRecorder {
 public:
  // With `keep_histograms`, each closed window also keeps its histogram's snapshot (~16
  // bytes per non-empty bucket), so windows of several shards can be merged exactly. With
  // `max_rows` > 0 the recorder covers only its first max_rows intervals: once full, it
  // records and closes nothing more (the fine rows of short runs).
  explicit IntervalRecorder(std::chrono::milliseconds width, bool keep_histograms = false,
                            std::size_t max_rows = 0)
      : width_(width), keep_(keep_histograms), max_rows_(max_rows) {}

  void Record(int64_t latency_us, bool ok) {
    if (full()) return;
    current_.Record(latency_us);
    if (!ok) ++errors_;
  }
  // Closes the current interval as ending at `t_s`. An interval with no operations still
  // makes a row (count 0): a stalled store must show up as a gap, not vanish.
  void Close(double t_s);

  std::chrono::milliseconds width() const { return width_; }
  bool full() const { return max_rows_ > 0 && rows_.size() >= max_rows_; }
  // The time it covers: unbounded (max) without max_rows.
  std::chrono::milliseconds horizon() const {
    return max_rows_ > 0 ? width_ * static_cast<int64_t>(max_rows_)
                         : std::chrono::milliseconds::max();
  }
  const std::vector<IntervalRow>& rows() const { return rows_; }
  const std::vector<HistogramSnapshot>& histograms() const { return histograms_; }
  // The row being filled, for live progress.
  const Histogram& current() const { return current_; }
  uint64_t current_errors() const { return errors_; }

 private:
  std::chrono::milliseconds width_;
  bool keep_ = false;
  std::size_t max_rows_ = 0;
  std::vector<HistogramSnapshot> histograms_;
  Histogram current_;
  uint64_t errors_ = 0;
  std::vector<IntervalRow> rows_;
};

// A row from a window's histogram and error count (what Close computes).
IntervalRow MakeRow(double t_s, const Histogram& h, uint64_t errors);

nlohmann::json SeriesJson(const std::vector<IntervalRow>& rows, std::chrono::milliseconds width);

}  // namespace agentstate::load
