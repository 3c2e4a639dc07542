// A log-linear (HDR-style) latency histogram with fixed memory.
//
// Range 1 µs .. 1 h in microseconds, 2048 sub-buckets per power of two: every recorded value
// lands in a bucket no wider than 1/1024 of it, so any percentile is within 0.1 % of the
// exact sample (reported as the bucket's midpoint: within 0.05 %). Memory is fixed at
// construction (~188 KB). Record() is lock-free (relaxed atomics) and safe from any thread;
// Merge() and the readers may run concurrently with Record() and see a consistent-enough
// snapshot (each counter is read once).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include <nlohmann/json.hpp>

#include "agentstate/status.hpp"

namespace agentstate::load {

// A histogram's exact contents in compact form: its non-empty buckets and its extremes.
// What shards' reports carry, and what interval windows keep when gates need them merged.
struct HistogramSnapshot {
  std::vector<std::pair<uint32_t, uint64_t>> buckets;  // (bucket index, count), ascending
  uint64_t sum = 0;
  uint64_t clamped = 0;
  int64_t min = 0;
  int64_t max = 0;
};

class Histogram {
 public:
  static constexpr int64_t kLowest = 1;                 // µs
  static constexpr int64_t kHighest = 3'600'000'000LL;  // 1 h in µs

  Histogram();
  Histogram(const Histogram& other);
  Histogram& operator=(const Histogram& other);

  // Values outside [kLowest, kHighest] are clamped to it (and counted as such).
  void Record(int64_t value_us);
  void Merge(const Histogram& other);
  void Reset();

  uint64_t Count() const { return total_.load(std::memory_order_relaxed); }
  int64_t Min() const;
  int64_t Max() const;
  double Mean() const;
  // The value at percentile p (0..100) of the recorded values; 0 when empty.
  int64_t ValueAtPercentile(double p) const;
  // Fraction of recorded values strictly above `value_us` (e.g. SLA violations).
  uint64_t CountAbove(int64_t value_us) const;
  uint64_t Clamped() const { return clamped_.load(std::memory_order_relaxed); }

  // {count, min_us, max_us, mean_us, percentiles: {"50": us, ...}} for reports.
  nlohmann::json Summary() const;

  HistogramSnapshot Snapshot() const;
  static Histogram FromSnapshot(const HistogramSnapshot& s);

  // A snapshot as JSON: {"layout", "buckets": [[index, count], ...], "sum", "min", "max",
  // "clamped"}. Merging histograms rebuilt from these gives the percentiles of the union.
  nlohmann::json ToJson() const;
  static nlohmann::json ToJson(const HistogramSnapshot& s);
  // kInvalidArgument when the JSON is not a histogram of this layout.
  static Result<HistogramSnapshot> SnapshotFromJson(const nlohmann::json& j);

  // Bucket arithmetic, exposed for tests.
  static std::size_t IndexOf(int64_t value);
  static int64_t LowestAt(std::size_t index);
  static int64_t WidthAt(std::size_t index);
  static std::size_t Length();

 private:
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  std::atomic<uint64_t> total_{0};
  std::atomic<uint64_t> sum_{0};
  std::atomic<int64_t> min_{INT64_MAX};
  std::atomic<int64_t> max_{0};
  std::atomic<uint64_t> clamped_{0};
};

}  // namespace agentstate::load
