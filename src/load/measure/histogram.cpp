#include "load/measure/histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <string>

#include <fmt/format.h>

#include "load/report/json_read.hpp"

namespace agentstate::load {
namespace {

constexpr int kSubBucketMagnitude = 11;  // 2048 sub-buckets
constexpr int64_t kSubBucketCount = 1LL << kSubBucketMagnitude;
constexpr int64_t kSubBucketHalf = kSubBucketCount / 2;  // 1024
constexpr int kSubBucketHalfMagnitude = kSubBucketMagnitude - 1;
constexpr int64_t kSubBucketMask = kSubBucketCount - 1;

constexpr int BucketCount() {
  int buckets = 1;
  int64_t smallest_untrackable = kSubBucketCount;
  while (smallest_untrackable <= Histogram::kHighest) {
    smallest_untrackable <<= 1;
    ++buckets;
  }
  return buckets;
}
constexpr std::size_t kLength = static_cast<std::size_t>((BucketCount() + 1) * kSubBucketHalf);

void UpdateMin(std::atomic<int64_t>& a, int64_t v) {
  int64_t cur = a.load(std::memory_order_relaxed);
  while (v < cur && !a.compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
  }
}
void UpdateMax(std::atomic<int64_t>& a, int64_t v) {
  int64_t cur = a.load(std::memory_order_relaxed);
  while (v > cur && !a.compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
  }
}

}  // namespace

std::size_t Histogram::Length() { return kLength; }

std::size_t Histogram::IndexOf(int64_t value) {
  const auto v = static_cast<uint64_t>(value);
  const int bucket =
      (64 - std::countl_zero(v | static_cast<uint64_t>(kSubBucketMask))) - kSubBucketMagnitude;
  const int64_t sub = value >> bucket;
  return static_cast<std::size_t>(((static_cast<int64_t>(bucket) + 1) << kSubBucketHalfMagnitude) +
                                  (sub - kSubBucketHalf));
}

int64_t Histogram::LowestAt(std::size_t index) {
  int64_t bucket = static_cast<int64_t>(index >> kSubBucketHalfMagnitude) - 1;
  int64_t sub = static_cast<int64_t>(index & (kSubBucketHalf - 1)) + kSubBucketHalf;
  if (bucket < 0) {
    sub -= kSubBucketHalf;
    bucket = 0;
  }
  return sub << bucket;
}

int64_t Histogram::WidthAt(std::size_t index) {
  int64_t bucket = std::max<int64_t>(0, static_cast<int64_t>(index >> kSubBucketHalfMagnitude) - 1);
  return 1LL << bucket;
}

Histogram::Histogram() : counts_(new std::atomic<uint64_t>[kLength]) { Reset(); }

Histogram::Histogram(const Histogram& other) : Histogram() { Merge(other); }

Histogram& Histogram::operator=(const Histogram& other) {
  if (this != &other) {
    Reset();
    Merge(other);
  }
  return *this;
}

void Histogram::Reset() {
  for (std::size_t i = 0; i < kLength; ++i) counts_[i].store(0, std::memory_order_relaxed);
  total_ = 0;
  sum_ = 0;
  min_ = INT64_MAX;
  max_ = 0;
  clamped_ = 0;
}

void Histogram::Record(int64_t value) {
  if (value < kLowest || value > kHighest) {
    clamped_.fetch_add(1, std::memory_order_relaxed);
    value = std::clamp(value, kLowest, kHighest);
  }
  counts_[IndexOf(value)].fetch_add(1, std::memory_order_relaxed);
  total_.fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(static_cast<uint64_t>(value), std::memory_order_relaxed);
  UpdateMin(min_, value);
  UpdateMax(max_, value);
}

void Histogram::Merge(const Histogram& other) {
  for (std::size_t i = 0; i < kLength; ++i) {
    uint64_t c = other.counts_[i].load(std::memory_order_relaxed);
    if (c) counts_[i].fetch_add(c, std::memory_order_relaxed);
  }
  total_.fetch_add(other.total_.load(std::memory_order_relaxed), std::memory_order_relaxed);
  sum_.fetch_add(other.sum_.load(std::memory_order_relaxed), std::memory_order_relaxed);
  clamped_.fetch_add(other.clamped_.load(std::memory_order_relaxed), std::memory_order_relaxed);
  if (other.Count()) {
    UpdateMin(min_, other.min_.load(std::memory_order_relaxed));
    UpdateMax(max_, other.max_.load(std::memory_order_relaxed));
  }
}

int64_t Histogram::Min() const { return Count() ? min_.load(std::memory_order_relaxed) : 0; }
int64_t Histogram::Max() const { return max_.load(std::memory_order_relaxed); }
double Histogram::Mean() const {
  uint64_t n = Count();
  return n ? static_cast<double>(sum_.load(std::memory_order_relaxed)) / static_cast<double>(n)
           : 0.0;
}

int64_t Histogram::ValueAtPercentile(double p) const {
  const uint64_t n = Count();
  if (n == 0) return 0;
  p = std::clamp(p, 0.0, 100.0);
  // The rank of the sample at p, 1-based, as the nearest-rank method defines it.
  uint64_t rank = static_cast<uint64_t>(std::ceil(p / 100.0 * static_cast<double>(n)));
  rank = std::clamp<uint64_t>(rank, 1, n);
  uint64_t seen = 0;
  for (std::size_t i = 0; i < kLength; ++i) {
    seen += counts_[i].load(std::memory_order_relaxed);
    if (seen >= rank) {
      // The bucket's midpoint, kept inside the observed range so p0/p100 are exact.
      int64_t mid = LowestAt(i) + (WidthAt(i) - 1) / 2;
      return std::clamp(mid, Min(), Max());
    }
  }
  return Max();
}

uint64_t Histogram::CountAbove(int64_t value_us) const {
  if (value_us >= kHighest) return 0;
  uint64_t above = 0;
  // Buckets wholly above the value count fully; the bucket holding it counts none of its
  // own (values in it are indistinguishable at this resolution, within 0.1 %).
  for (std::size_t i = IndexOf(std::max(value_us, kLowest)) + 1; i < kLength; ++i) {
    above += counts_[i].load(std::memory_order_relaxed);
  }
  return above;
}

nlohmann::json Histogram::Summary() const {
  nlohmann::json pct = nlohmann::json::object();
  for (double p : {50.0, 75.0, 90.0, 95.0, 99.0, 99.9, 99.99, 100.0}) {
    pct[fmt::format("{:g}", p)] = ValueAtPercentile(p);  // "50", "99.9", "99.99"
  }
  return {{"count", Count()},
          {"min_us", Min()},
          {"max_us", Max()},
          {"mean_us", Mean()},
          {"percentiles_us", pct}};
}

HistogramSnapshot Histogram::Snapshot() const {
  HistogramSnapshot s;
  for (std::size_t i = 0; i < kLength; ++i) {
    uint64_t c = counts_[i].load(std::memory_order_relaxed);
    if (c) s.buckets.emplace_back(static_cast<uint32_t>(i), c);
  }
  s.sum = sum_.load(std::memory_order_relaxed);
  s.clamped = Clamped();
  s.min = Min();
  s.max = Max();
  return s;
}

Histogram Histogram::FromSnapshot(const HistogramSnapshot& s) {
  Histogram h;
  uint64_t total = 0;
  for (auto [i, c] : s.buckets) {
    if (i >= kLength) continue;
    h.counts_[i].store(c, std::memory_order_relaxed);
    total += c;
  }
  h.total_ = total;
  h.sum_ = s.sum;
  h.clamped_ = s.clamped;
  if (total) {
    h.min_ = s.min;
    h.max_ = s.max;
  }
  return h;
}

nlohmann::json Histogram::ToJson() const { return ToJson(Snapshot()); }

nlohmann::json Histogram::ToJson(const HistogramSnapshot& s) {
  nlohmann::json buckets = nlohmann::json::array();
  for (auto [i, c] : s.buckets) buckets.push_back({i, c});
  return {{"layout", "log-linear-2048-us"},
          {"buckets", std::move(buckets)},
          {"sum", s.sum},
          {"min", s.min},
          {"max", s.max},
          {"clamped", s.clamped}};
}

Result<HistogramSnapshot> Histogram::SnapshotFromJson(const nlohmann::json& j) {
  HistogramSnapshot s;
  try {
    if (j.at("layout").get<std::string>() != "log-linear-2048-us") {
      return Error(StatusCode::kInvalidArgument, "histogram has another bucket layout");
    }
    for (const auto& b : j.at("buckets")) {
      auto i = b.at(0).get<uint32_t>();
      if (i >= kLength)
        return Error(StatusCode::kInvalidArgument, "histogram bucket index out of range");
      s.buckets.emplace_back(i, b.at(1).get<uint64_t>());
    }
    s.sum = j.at("sum").get<uint64_t>();
    s.clamped = j.at("clamped").get<uint64_t>();
    s.min = j.at("min").get<int64_t>();
    s.max = j.at("max").get<int64_t>();
  } catch (const nlohmann::json::exception& e) {
    return Error(StatusCode::kInvalidArgument, "malformed histogram: " + json_read::Plain(e));
  }
  return s;
}

}  // namespace agentstate::load
