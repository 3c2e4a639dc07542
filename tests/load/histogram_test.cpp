#include "load/measure/histogram.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <thread>

namespace agentstate::load {
namespace {

int64_t Exact(std::vector<int64_t> v, double p) {
  std::sort(v.begin(), v.end());
  auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
  return v[std::clamp<std::size_t>(rank, 1, v.size()) - 1];
}

TEST(Histogram, BucketsTileTheRangeWithoutGaps) {
  for (std::size_t i = 1; i + 1 < Histogram::Length(); ++i) {
    if (Histogram::LowestAt(i) >= Histogram::kHighest) break;
    ASSERT_EQ(Histogram::LowestAt(i) + Histogram::WidthAt(i), Histogram::LowestAt(i + 1)) << i;
    ASSERT_EQ(Histogram::IndexOf(Histogram::LowestAt(i)), i);
  }
  EXPECT_LT(Histogram::IndexOf(Histogram::kHighest), Histogram::Length());
}

TEST(Histogram, PercentilesAreWithinATenthOfAPercentOfSortedSamples) {
  std::mt19937_64 rng(7);
  // Log-normal latencies spanning µs to minutes, the shape real stores produce.
  std::lognormal_distribution<double> dist(8.0, 2.5);
  std::vector<int64_t> samples;
  Histogram h;
  for (int i = 0; i < 200000; ++i) {
    auto v = std::clamp<int64_t>(static_cast<int64_t>(dist(rng)), 1, Histogram::kHighest);
    samples.push_back(v);
    h.Record(v);
  }
  for (double p : {0.0, 1.0, 25.0, 50.0, 90.0, 95.0, 99.0, 99.9, 99.99, 100.0}) {
    const double exact = static_cast<double>(Exact(samples, p));
    const double got = static_cast<double>(h.ValueAtPercentile(p));
    EXPECT_LE(std::abs(got - exact), 0.001 * exact + 0.5)
        << "p" << p << " exact " << exact << " got " << got;
  }
  EXPECT_EQ(h.Count(), samples.size());
  EXPECT_EQ(h.Min(), *std::min_element(samples.begin(), samples.end()));
  EXPECT_EQ(h.Max(), *std::max_element(samples.begin(), samples.end()));
  double mean = 0;
  for (auto v : samples) mean += static_cast<double>(v);
  EXPECT_NEAR(h.Mean(), mean / static_cast<double>(samples.size()), 1e-6 * mean);
}

TEST(Histogram, MergedPercentilesEqualThoseOfTheUnion) {
  std::mt19937_64 rng(11);
  std::uniform_int_distribution<int64_t> fast(100, 5000), slow(50000, 900000);
  Histogram a, b, all;
  for (int i = 0; i < 50000; ++i) {
    int64_t x = fast(rng), y = slow(rng);
    a.Record(x);
    b.Record(y);
    all.Record(x);
    all.Record(y);
  }
  Histogram merged;
  merged.Merge(a);
  merged.Merge(b);
  for (double p : {10.0, 50.0, 75.0, 99.0, 99.9}) {
    EXPECT_EQ(merged.ValueAtPercentile(p), all.ValueAtPercentile(p)) << p;
  }
  EXPECT_EQ(merged.Count(), all.Count());
  EXPECT_EQ(merged.Max(), all.Max());
}

TEST(Histogram, ConcurrentRecordingLosesNothing) {
  Histogram h;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&h, t] {
      for (int i = 0; i < 100000; ++i) h.Record(1 + (i * (t + 1)) % 100000);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(h.Count(), 400000u);
}

TEST(Histogram, OutOfRangeValuesAreClampedAndCounted) {
  Histogram h;
  h.Record(0);
  h.Record(Histogram::kHighest * 2);
  EXPECT_EQ(h.Count(), 2u);
  EXPECT_EQ(h.Clamped(), 2u);
  EXPECT_EQ(h.Min(), 1);
  EXPECT_EQ(h.Max(), Histogram::kHighest);
  EXPECT_EQ(Histogram().ValueAtPercentile(99), 0) << "empty histogram";
}

TEST(Histogram, CountAboveFindsSlaViolations) {
  Histogram h;
  for (int i = 1; i <= 1000; ++i) h.Record(i * 1000);  // 1 ms .. 1000 ms
  EXPECT_NEAR(static_cast<double>(h.CountAbove(200000)), 800.0, 2.0);
}

}  // namespace
}  // namespace agentstate::load
