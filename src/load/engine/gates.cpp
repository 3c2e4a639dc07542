#include "load/engine/gates.hpp"

#include <fmt/format.h>

#include <cmath>
#include <cstdlib>

namespace agentstate::load {

std::string GateResult::Describe() const {
  const char* op = spec.compare == Compare::kAtMost ? "<=" : ">=";
  std::string unit = spec.unit.empty() ? "" : " " + spec.unit;
  if (spec.interval) {
    std::string rule =
        fmt::format("{} {} {:.6g}{} in >= {:.6g}% of {}s intervals", spec.metric, op, spec.limit,
                    unit, spec.interval->min_percent, spec.interval->window.count());
    if (!measured_present)
      return fmt::format("{}: no interval saw operations ({})", spec.name, rule);
    return fmt::format("{}: {:.4g}% of intervals complied ({})", spec.name, measured, rule);
  }
  if (!measured_present)
    return fmt::format("{}: not measured (limit {} {}{})", spec.name, op, spec.limit, unit);
  return fmt::format("{}: {:.6g}{} {} {:.6g}{}", spec.name, measured, unit, op, spec.limit, unit);
}

namespace {

bool Holds(Compare c, double measured, double limit) {
  return c == Compare::kAtMost ? measured <= limit : measured >= limit;
}

GateResult EvaluateInterval(const GateSpec& g, const WindowRows& windows) {
  GateResult r;
  r.spec = g;
  auto it = windows.find(
      std::chrono::duration_cast<std::chrono::milliseconds>(g.interval->window).count());
  if (it == windows.end()) return r;
  const double width_s = static_cast<double>(g.interval->window.count());
  std::size_t judged = 0, complied = 0;
  for (const auto& row : it->second) {
    if (row.count == 0) continue;  // idle (a pause between waves): nothing to judge
    double v = row.Metric(g.metric, width_s);
    if (!std::isfinite(v)) return r;
    ++judged;
    complied += Holds(g.compare, v, g.limit) ? 1 : 0;
  }
  if (judged == 0) return r;
  r.measured_present = true;
  r.measured = 100.0 * static_cast<double>(complied) / static_cast<double>(judged);
  r.passed = r.measured >= g.interval->min_percent;
  return r;
}

}  // namespace

GateSpec DataGate(std::string name) {
  GateSpec g{name, std::move(name), Compare::kAtMost, 0, ""};
  g.integrity = true;
  return g;
}

std::vector<GateResult> EvaluateGates(const std::vector<GateSpec>& gates, const Metrics& metrics,
                                      const WindowRows& windows) {
  std::vector<GateResult> out;
  for (const auto& g : gates) {
    if (g.interval) {
      out.push_back(EvaluateInterval(g, windows));
      continue;
    }
    GateResult r;
    r.spec = g;
    auto it = metrics.find(g.metric);
    if (it != metrics.end() && std::isfinite(it->second)) {
      r.measured_present = true;
      r.measured = it->second;
      r.passed = Holds(g.compare, r.measured, g.limit);
    }
    out.push_back(std::move(r));
  }
  return out;
}

bool AllPassed(const std::vector<GateResult>& results) {
  for (const auto& r : results) {
    if (!r.passed) return false;
  }
  return true;
}

Result<GateOverride> ParseGateOverride(const std::string& text) {
  auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == text.size()) {
    return Error(StatusCode::kInvalidArgument,
                 fmt::format("bad --gate '{}': use NAME=LIMIT, e.g. --gate p99_ms=150", text));
  }
  std::string value = text.substr(eq + 1);
  char* end = nullptr;
  double v = std::strtod(value.c_str(), &end);
  if (end != value.c_str() + value.size() || !std::isfinite(v) || v < 0) {
    return Error(StatusCode::kInvalidArgument,
                 fmt::format("bad --gate '{}': the limit must be a non-negative number", text));
  }
  return GateOverride{text.substr(0, eq), v};
}

std::vector<std::string> ApplyOverrides(std::vector<GateSpec>& gates,
                                        const std::vector<GateOverride>& overrides) {
  std::vector<std::string> used;
  for (const auto& o : overrides) {
    for (auto& g : gates) {
      if (g.name == o.name) {
        g.limit = o.limit;
        used.push_back(o.name);
      }
    }
  }
  return used;
}

}  // namespace agentstate::load
