#include "load/measure/timeseries.hpp"

#include <gtest/gtest.h>

namespace agentstate::load {
namespace {

TEST(IntervalRecorder, EachCloseMakesARowEvenWithoutOperations) {
  IntervalRecorder r(std::chrono::seconds(1));
  r.Record(1000, true);
  r.Record(3000, false);
  r.Close(1.0);
  r.Close(2.0);
  ASSERT_EQ(r.rows().size(), 2u);
  EXPECT_EQ(r.rows()[0].count, 2u);
  EXPECT_EQ(r.rows()[0].errors, 1u);
  EXPECT_EQ(r.rows()[1].count, 0u) << "an idle interval is a row of 0, not a gap";
  EXPECT_FALSE(r.full());
  EXPECT_EQ(r.horizon(), std::chrono::milliseconds::max());
}

TEST(IntervalRecorder, ABoundedOneStopsAtItsHorizon) {
  IntervalRecorder r(std::chrono::milliseconds(5), false, 3);
  EXPECT_EQ(r.horizon(), std::chrono::milliseconds(15));
  for (int i = 1; i <= 10; ++i) {
    r.Record(100, true);
    r.Close(0.005 * i);
  }
  EXPECT_TRUE(r.full());
  ASSERT_EQ(r.rows().size(), 3u) << "memory is bounded by max_rows";
  EXPECT_DOUBLE_EQ(r.rows().back().t_s, 0.015);
  EXPECT_EQ(r.current().Count(), 0u) << "nothing is recorded past the horizon";
}

}  // namespace
}  // namespace agentstate::load
