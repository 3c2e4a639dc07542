// SLA gates: declarative thresholds evaluated against a scenario's measured metrics.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "agentstate/status.hpp"

namespace agentstate::load {

enum class Compare { kAtMost, kAtLeast };

// "p99_ms must be at most 200". `name` is unique within a scenario and is what
// `--gate name=value` overrides; `metric` names the measured value it reads.
struct GateSpec {
  std::string name;
  std::string metric;
  Compare compare = Compare::kAtMost;
  double limit = 0;
  std::string unit;  // "ms", "%", "MB", "agents/s", "" for counts
};

struct GateResult {
  GateSpec spec;
  double measured = 0;
  bool measured_present = false;  // a gate whose metric was never produced fails
  bool passed = false;
  // "p99_ms 12.41 ms <= 200 ms"
  std::string Describe() const;
};

using Metrics = std::map<std::string, double>;

std::vector<GateResult> EvaluateGates(const std::vector<GateSpec>& gates, const Metrics& metrics);
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
