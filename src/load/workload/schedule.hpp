// When open-model arrivals are due: a pure function of rate, shape and seed, with no
// clock, so it is tested without sockets or time. The executor sleeps until each offset.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

namespace agentstate::load {

enum class Arrival { kUniform, kPoisson };

class ArrivalSchedule {
 public:
  // Rate ramps linearly from `start_per_s` to `end_per_s` over `duration` (equal for a
  // constant rate). Rates must be > 0 somewhere; `max_arrivals` bounds the count.
  ArrivalSchedule(double start_per_s, double end_per_s, std::chrono::microseconds duration,
                  Arrival kind, uint64_t seed, uint64_t max_arrivals);

  // Offset of the next arrival from the phase start, or nullopt once past the duration or
  // the count bound.
  std::optional<std::chrono::microseconds> Next();

  // The rate in force at offset t.
  double RateAt(double t_s) const;

 private:
  double start_, end_, duration_s_;
  Arrival kind_;
  uint64_t state_;
  uint64_t left_;
  double t_s_ = 0;
};

}  // namespace agentstate::load
