// SLA gates: declarative thresholds evaluated against a scenario's measured metrics.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <chrono>
#include <optional>

#include "agentstate/status.hpp"
#include "load/measure/timeseries.hpp"

namespace agentstate::load {

enum class Compare { kAtMost, kAtLeast };

// A gate over time windows: the metric is judged in each window of `window` that saw
// operations, and the gate holds when at least `min_percent` of those windows comply
// ("P99 <= 200 ms in >= 90 % of 10 s intervals").
struct IntervalRule {
  std::chrono::seconds window{10};
  double min_percent = 90;
};

// "p99_ms must be at most 200". `name` is unique within a scenario and is what
// `--gate name=value` overrides; `metric` names the measured value it reads: a scenario
// metric ("p99_ms"), a phase's ("phase.spike.p95_ms"), or with `interval` set, a
// per-window metric (IntervalRow::Metric).
struct GateSpec {
  std::string name;
  std::string metric;
  Compare compare = Compare::kAtMost;
  double limit = 0;
  std::string unit;  // "ms", "%", "MB", "agents/s", "" for counts
  std::optional<IntervalRule> interval;
  // A gate on the data itself (lost, phantom, out-of-order, resurrected or corrupt writes).
  // Its failure is a defect, never noise: `--confirm-failures` never reruns past one.
  bool integrity = false;
};

struct GateResult {
  GateSpec spec;
  double measured = 0;            // for interval gates: the percentage of complying windows
  bool measured_present = false;  // a gate whose metric was never produced fails
  bool passed = false;
  // "p99_ms 12.41 ms <= 200 ms"
  std::string Describe() const;
};

using Metrics = std::map<std::string, double>;

// A gate on the data itself: the metric `name` (a count of damaged or missing writes) must
// be 0. Its `integrity` is set.
GateSpec DataGate(std::string name);

// Rows of closed windows by window width in milliseconds, for interval gates.
using WindowRows = std::map<int64_t, std::vector<IntervalRow>>;

std::vector<GateResult> EvaluateGates(const std::vector<GateSpec>& gates, const Metrics& metrics,
                                      const WindowRows& windows = {});
bool AllPassed(const std::vector<GateResult>& results);

// A parsed `--gate name=value`. kInvalidArgument for a missing '=', an empty name or a value
// that is not a finite number.
struct GateOverride {
  std::string name;
  double limit = 0;
};
Result<GateOverride> ParseGateOverride(const std::string& text);

// Replaces the limit of every gate named in `overrides`. Returns the names it used so the
// caller can reject names no selected scenario declares.
std::vector<std::string> ApplyOverrides(std::vector<GateSpec>& gates,
                                        const std::vector<GateOverride>& overrides);

}  // namespace agentstate::load
