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
#include "load/schedule.hpp"
#include "load/timeseries.hpp"
#include "load/workload.hpp"

namespace agentstate::load {

// How a phase drives agents. Every agent does the original unit of work (save, load,
// verify); agent i gets sizes[i % sizes.size()] and patterns[i % patterns.size()].
enum class Executor {
  // Closed wave: `agents` agents start together; the phase ends when all have finished.
  kWave,
  // Closed, constant concurrency: `agents` agents each repeat the unit of work on their
  // own run until `duration` has passed.
  kConstant,
  // Open: new agents arrive at `rate_per_s` (ramping to `rate_end_per_s` when > 0) for
  // `duration`, whatever the store does. At most `agents` in flight (0 = 10000); an arrival
  // that finds no slot waits, and latency counts from when it was due (coordinated-omission
  // corrected). Arrivals still waiting when the duration ends are dropped and counted.
  kArrivals,
};
std::string_view Name(Executor e);

struct PhaseSpec {
  std::string name;
  int agents = 0;
  std::vector<StateSize> sizes{StateSize::kSmall};
  std::vector<ExecutionPattern> patterns{ExecutionPattern::kQuick};
  std::chrono::milliseconds pause_after{0};
  Executor executor = Executor::kWave;
  std::chrono::milliseconds duration{0};  // kConstant, kArrivals
  double rate_per_s = 0;                  // kArrivals
  double rate_end_per_s = 0;              // kArrivals: 0 = constant rate
  Arrival arrival = Arrival::kPoisson;    // kArrivals
  uint64_t max_operations = 10'000'000;   // bound on units of work in kConstant / kArrivals
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
  // Schedule lag (open phases) beyond this makes the run INVALID: the generator, not the
  // store, was the bottleneck.
  std::chrono::milliseconds max_generator_lag{50};
  // Adds scenario-specific metrics (and report tables) after the base metrics exist.
  std::function<void(ScenarioResult&)> derive;
};

// Checks a declaration before anything runs: kInvalidArgument naming the scenario, phase
// and field for nonsensical counts, durations or rates.
Status ValidateScenario(const ScenarioSpec& spec);

// What one phase measured.
struct PhaseResult {
  std::string name;
  Executor executor = Executor::kWave;
  double start_s = 0, end_s = 0;  // offsets from the scenario start
  uint64_t executed = 0;
  uint64_t succeeded = 0;
  uint64_t failed = 0;
  uint64_t corrupted = 0;  // the read-back did not return what was acknowledged
  double wall_s = 0;
  Histogram latency;      // whole agent unit of work: save + load + verify, µs; for open
                          // phases measured from the intended start (corrected)
  Histogram uncorrected;  // open phases: from the actual start (what a naive tool reports)
  Histogram save;         // per operation, µs
  Histogram load;
  Histogram start_lag;    // open phases: how late the generator woke for each arrival, µs
  uint64_t late_starts = 0;     // open phases: started > 10 ms after they were due
  uint64_t dropped_starts = 0;  // open phases: never started before the duration ended
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
  std::vector<IntervalRow> series;  // 1 s rows over the whole scenario
  WindowRows windows;               // rows per interval-gate window width
  // The windows' histograms, for interval-gate widths only, so shards merge exactly.
  std::map<int64_t, std::vector<HistogramSnapshot>> window_histograms;
  double harness_thread_cpu_percent = 0;
  bool invalid = false;             // the generator was the bottleneck: do not trust the numbers
  std::string invalid_reason;
  Metrics metrics;
  std::vector<GateResult> gates;
  nlohmann::json tables = nlohmann::json::object();  // scenario-specific report tables
  bool passed() const { return AllPassed(gates); }
};

struct RunContext {
  StateStore& store;
  const WorkloadGenerator& generator;
  bool verbose = false;
  bool progress = false;  // live one-line progress on stderr (a TTY)
  int harness_tid = 0;    // the thread running the executor, for its CPU share; 0 = the caller
  // This process runs agents whose index % shard_count == shard_index (--shard i/N); the
  // shards' reports merge into the report of the whole run (agentload merge).
  int shard_index = 0;
  int shard_count = 1;
};

// Runs every phase in order, verifies the ledger, computes metrics and evaluates gates.
// Must be awaited on a single-threaded executor.
Awaitable<ScenarioResult> RunScenario(ScenarioSpec spec, RunContext ctx);

// The metrics every scenario has (see docs/architecture.md for the list); used by
// RunScenario and exposed for tests.
Metrics BaseMetrics(const ScenarioResult& result);

// From measurements to verdicts: metrics, the INVALID check, the scenario's derive hook,
// gates. RunScenario ends with it; merging shards runs it on the merged measurements.
void FinishScenario(ScenarioResult& result);

// A stable fingerprint of a declaration's shape (phases, executors, mixes, gate names and
// metrics; not gate limits). Shards' reports must agree on it to be merged.
std::string ScenarioVersion(const ScenarioSpec& spec);

}  // namespace agentstate::load
