// A fixed-memory histogram of durations for store-side stats: 40 atomic counters, bucket i
// holding values in [2^(i-1), 2^i) µs. Percentiles are reported as their bucket's upper
// bound, so they are within 2x; the harness's HDR histogram is the precise one. Record is
// lock-free and callable from any thread.
#pragma once

#include <array>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstdint>

namespace agentstate::core {

class Log2Histogram {
 public:
  void Record(uint64_t us) {
    buckets_[std::min<std::size_t>(static_cast<std::size_t>(std::bit_width(us)), kBuckets - 1)]
        .fetch_add(1, std::memory_order_relaxed);
    uint64_t seen = max_.load(std::memory_order_relaxed);
    while (us > seen && !max_.compare_exchange_weak(seen, us, std::memory_order_relaxed)) {
    }
  }
  uint64_t Count() const {
    uint64_t n = 0;
    for (const auto& b : buckets_) n += b.load(std::memory_order_relaxed);
    return n;
  }
  // The value at quantile q (0..1), in µs: the upper bound of its bucket; 0 when empty.
  uint64_t Percentile(double q) const {
    std::array<uint64_t, kBuckets> counts{};
    uint64_t total = 0;
    for (std::size_t i = 0; i < kBuckets; ++i)
      total += counts[i] = buckets_[i].load(std::memory_order_relaxed);
    if (total == 0) return 0;
    const auto rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(total)));
    uint64_t seen = 0;
    for (std::size_t i = 0; i < kBuckets; ++i) {
      if ((seen += counts[i]) >= rank) return i == 0 ? 0 : std::min((uint64_t{1} << i) - 1, Max());
    }
    return Max();
  }
  uint64_t Max() const { return max_.load(std::memory_order_relaxed); }

 private:
  static constexpr std::size_t kBuckets = 40;
  std::array<std::atomic<uint64_t>, kBuckets> buckets_{};
  std::atomic<uint64_t> max_{0};
};

}  // namespace agentstate::core
