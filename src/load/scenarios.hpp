// The scenario catalogue: each production scenario of SCENARIOS.md declared on the engine,
// in a full profile (the original parameters) and a quick one (same shape, smaller).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "load/scenario.hpp"

namespace agentstate::load {

struct Profile {
  bool quick = false;
  std::optional<int> agents;  // --agents: overrides the per-wave agent count
  // --duration: a real soak for sustained_load_24h_simulation (its 24 "hours" then last
  // duration / 24 each, under constant load); other scenarios ignore it.
  std::optional<std::chrono::seconds> duration;
};

struct ScenarioEntry {
  std::string name;
  std::string description;  // one line, for --list
  std::function<ScenarioSpec(const Profile&)> build;
};

// The ten scenarios, in the order SCENARIOS.md lists them.
const std::vector<ScenarioEntry>& Catalogue();
const ScenarioEntry* FindScenario(const std::string& name);

}  // namespace agentstate::load
