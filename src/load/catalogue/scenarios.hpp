// The scenario catalogue: each production scenario of SCENARIOS.md declared on the engine,
// in a full profile (the original parameters) and a quick one (same shape, smaller).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "load/engine/scenario.hpp"

namespace agentstate::load {

struct Profile {
  bool quick = false;
  std::optional<int> agents;  // --agents: overrides the per-wave agent count
  // --duration: a real soak for sustained_load_24h_simulation (its 24 "hours" then last
  // duration / 24 each, under constant load); other scenarios ignore it.
  std::optional<std::chrono::seconds> duration;
  // The faults the run can inject, by name (RunContext::faults): failure_recovery_under_load
  // has one during phase per fault; none gives one during phase that reports no fault.
  std::vector<std::string> faults;
};

struct ScenarioEntry {
  std::string name;
  std::string description;  // one line, for --list
  std::function<ScenarioSpec(const Profile&)> build;
  bool injects_faults = false;  // needs the run's faults (Profile::faults)
  // For --tag / --exclude-tag: "slow" (long in the full profile: leave it out of quick CI
  // runs as the seed suite's `-m "load and not slow"` did), "faults" (kills and restarts the
  // services it is given).
  std::vector<std::string> tags;
};

// Every tag some scenario carries, sorted.
std::vector<std::string> KnownTags();

// The ten scenarios, in the order SCENARIOS.md lists them.
const std::vector<ScenarioEntry>& Catalogue();
const ScenarioEntry* FindScenario(const std::string& name);

// `agentload chaos`: one phase of mixed load (save, read back, update; every fifth agent
// critical checkpoints) for profile.duration (default 60 s), with the run's faults injected
// on ChaosSchedule(profile.faults, duration, seed); it ends with the full ledger check.
ScenarioSpec ChaosScenario(const Profile& profile, uint64_t seed);
// The same seed and faults give the same schedule: which fault, when, held how long.
std::vector<FaultEvent> ChaosSchedule(const std::vector<std::string>& faults,
                                      std::chrono::milliseconds duration, uint64_t seed);

}  // namespace agentstate::load
