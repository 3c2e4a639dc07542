// Scenarios are declared, not hand-written: a ScenarioSpec lists phases (closed waves of
// agents with a size and pattern mix, and a pause after each), the per-call deadline, the
// whole-scenario time bound and the gates. RunScenario executes any such declaration
// against a store and measures it; the catalogue (scenarios.hpp) holds the declarations.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "agentstate/state_store.hpp"
#include "load/gates.hpp"
#include "load/histogram.hpp"
#include "load/ledger.hpp"
#include "load/sampler.hpp"
#include "load/workload.hpp"

namespace agentstate::load {

// One closed wave: `agents` agents start together; the phase ends when all have finished.
// Agent i gets sizes[i % sizes.size()] and patterns[i % patterns.size()].
struct PhaseSpec {
  std::string name;
  int agents = 0;
  std::vector<StateSize> sizes{StateSize::kSmall};
  std::vector<ExecutionPattern> patterns{ExecutionPattern::kQuick};
  std::chrono::milliseconds pause_after{0};
};

struct ScenarioResult;

struct ScenarioSpec {
  std::string name;
  std::string description;
  std::string user_id;  // the tenant this scenario's agents belong to
  std::vector<PhaseSpec> phases;
  std::vector<GateSpec> gates;
  std::chrono::milliseconds op_timeout{5000};  // deadline of every store call
  std::chrono::seconds max_duration{600};      // phases not started by then are skipped
  // Adds scenario-specific metrics (and report tables) after the base metrics exist.
  std::function<void(ScenarioResult&)> derive;
};

// What one phase measured.
struct PhaseResult {
  std::string name;
  uint64_t executed = 0;
  uint64_t succeeded = 0;
  uint64_t failed = 0;
  uint64_t corrupted = 0;  // the read-back did not return what was acknowledged
  double wall_s = 0;
  Histogram latency;  // whole agent unit of work: save + load + verify, µs
  Histogram save;     // per operation, µs
  Histogram load;
  std::map<std::string, uint64_t> errors;  // by status code name
};

struct ScenarioResult {
  ScenarioSpec spec;
  std::vector<PhaseResult> phases;
  Histogram latency;  // all phases merged
  LedgerVerdict ledger;
  std::vector<ResourceSample> resources;
  double peak_rss_mb = 0;
  double avg_cpu_percent = 0;
  double wall_s = 0;
  int64_t started_unix = 0;
  bool truncated = false;  // max_duration cut the scenario short
  Metrics metrics;
  std::vector<GateResult> gates;
  nlohmann::json tables = nlohmann::json::object();  // scenario-specific report tables
  bool passed() const { return AllPassed(gates); }
};

struct RunContext {
  StateStore& store;
  const WorkloadGenerator& generator;
  bool verbose = false;
};

// Runs every phase in order, verifies the ledger, computes metrics and evaluates gates.
// Must be awaited on a single-threaded executor.
Awaitable<ScenarioResult> RunScenario(ScenarioSpec spec, RunContext ctx);

// The metrics every scenario has (see docs/architecture.md for the list); used by
// RunScenario and exposed for tests.
Metrics BaseMetrics(const ScenarioResult& result);

}  // namespace agentstate::load
