// Scenarios are declared, not hand-written: a ScenarioSpec lists phases (closed waves of
// agents with a size and pattern mix, and a pause after each), the per-call deadline, the
// whole-scenario time bound and the gates. RunScenario executes any such declaration
// against a store and measures it; the catalogue (scenarios.hpp) holds the declarations.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "agentstate/state_store.hpp"
#include "load/engine/gates.hpp"
#include "load/engine/ledger.hpp"
#include "load/measure/histogram.hpp"
#include "load/measure/sampler.hpp"
#include "load/measure/timeseries.hpp"
#include "load/workload/schedule.hpp"
#include "load/workload/workload.hpp"

namespace agentstate::load {

// What the analytics tier holds after a scenario, as ClickHouse itself answers.
struct AnalyticsCheck {
  bool reachable = false;  // the flush and the count query succeeded
  uint64_t recorded = 0;   // events the store handed to the sink (this run, so far)
  uint64_t dropped = 0;    // of those, dropped and counted
  uint64_t on_server = 0;  // events the server has for this run's session
  uint64_t in_doubt =
      0;  // events sent in inserts that failed after being sent: may be there anyway
  std::map<std::string, double> server_p99_ms,
      server_ops_per_min;  // per op, as the server computes them
};

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

// What one agent does; each is a "unit" with one latency and one outcome.
enum class Work {
  kAgent,           // the original unit: save an auto state, load it, verify it
  kRead,            // load a run another phase wrote and verify it against the ledger
  kSaveLoadUpdate,  // save, load + verify, save again with step_count + 1 at the expected version
  kCriticalCheckpoint,  // save a critical recovery point; verify it is in the checkpoint history
  kLargeSaves,  // saves_per_agent saves of distinct runs, save_interval apart; each save a unit
  kSaveDelete,  // save, load + verify, delete, then load: the run must be gone (and stay gone: the
                // ledger)
};
std::string_view Name(Work w);

// One fault in a phase: which of the run's faults (by name), when, and for how long.
struct FaultEvent {
  std::string fault;
  std::chrono::milliseconds at{0};    // after the phase starts
  std::chrono::milliseconds hold{0};  // from when it is in force until it is healed
};

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

  Work work = Work::kAgent;
  // kWave: this many extra agents do Work::kRead on runs that phase `read_from` wrote
  // (sampled without replacement, deterministic per seed), shuffled among the writers.
  int reads = 0;
  std::string read_from;
  int saves_per_agent = 1;                     // Work::kLargeSaves
  std::chrono::milliseconds save_interval{0};  // Work::kLargeSaves: pause between one agent's saves
  int extra_strings = 0;                       // Work::kLargeSaves: strings in `large_dataset`
  // A unit that fails with kTimeout, kUnavailable or kPoolExhausted is retried up to this
  // many times, after retry_backoff x attempt; its latency includes the retries.
  int max_retries = 0;
  std::chrono::milliseconds retry_backoff{100};
  std::chrono::milliseconds op_timeout{0};  // this phase's per-call deadline; 0 = the scenario's
  // Faults injected during this phase, in order, at offsets from its start; the phase then
  // runs until `observe` after the last one was healed (kConstant), so that recovery is
  // measured. An event starts at its time, but never sooner than `observe` after the
  // previous one was healed: each fault's recovery is watched on its own.
  std::vector<FaultEvent> fault_events;
  std::chrono::milliseconds observe{1000};
  // > 0: every critical_every-th agent (i % n == n - 1) does Work::kCriticalCheckpoint
  // instead of `work`, so the phase writes both durability classes.
  int critical_every = 0;
  // > 0: every delete_every-th agent (i % n == 0) does Work::kSaveDelete instead, so the
  // ledger also checks that deleted runs stay deleted.
  int delete_every = 0;
  // > 0: at most this many store calls in flight, as a client connection pool would allow,
  // for stores without a pool of their own. A call waits up to pool_wait for a slot, then
  // fails with kPoolExhausted; with pool_max_waiters callers already waiting it is rejected
  // at once.
  int pool_slots = 0;
  std::chrono::milliseconds pool_wait{1000};
  std::size_t pool_max_waiters = 1000;
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
  // Called after phase `index` ends; a non-empty reason stops the scenario there.
  std::function<std::string(const ScenarioResult&, std::size_t index)> stop_early;
  std::chrono::milliseconds sample_interval{1000};  // resource sampling
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
  Histogram latency;       // whole agent unit of work: save + load + verify, µs; for open
                           // phases measured from the intended start (corrected)
  Histogram uncorrected;   // open phases: from the actual start (what a naive tool reports)
  Histogram save;          // per operation, µs
  Histogram load;
  Histogram start_lag;          // open phases: how late the generator woke for each arrival, µs
  uint64_t late_starts = 0;     // open phases: started > 10 ms after they were due
  uint64_t dropped_starts = 0;  // open phases: never started before the duration ended
  std::map<std::string, uint64_t> errors;  // by status code name
  Histogram ok_latency;                    // successful units only, µs
  uint64_t retries = 0;
  // Saves retried with their idempotency key that the store answered with the first
  // acknowledgement: the attempt in doubt had landed, and no second version was made.
  uint64_t replayed_saves = 0;
  // Per kind of unit ("agent", "read", ...): executed, succeeded, latency.
  struct Kind {
    uint64_t executed = 0;
    uint64_t succeeded = 0;
    Histogram latency;
  };
  std::map<std::string, Kind, std::less<>> kinds;
  // The harness pool (pool_slots > 0): calls that waited, waited too long, were turned away.
  uint64_t pool_waits = 0, pool_timeouts = 0, pool_rejections = 0;
  Histogram pool_wait;  // µs, calls that waited
};

// One fault as it happened, and what the store did about it. Times are offsets from the
// scenario start, in seconds.
struct FaultWindow {
  std::string phase;
  std::string fault;              // what ran, e.g. "sqlite write lock held 400 ms on / 400 ms off"
  double start_s = 0, end_s = 0;  // injection began .. healing returned
  double until_s = 0;  // the figures below cover start_s .. until_s (next fault or phase end)
  bool injected = false;
  std::string error;                  // why it could not be injected (or healed), when not
  std::string name;                   // the run's name for it: redis_kill, postgres_restart, ...
  double inject_ms = 0, heal_ms = 0;  // how long injecting (kill) and healing (restart) took
  // From injection to the first sign the store saw it: a failed unit of work, or its
  // Health() reporting a tier down. NaN: nothing ever showed (the fault was absorbed).
  std::optional<double> detect_ms;
  // From healing to the last sign of it (a failed unit, an unhealthy tier); 0 when none
  // remained. `recovered` is false when signs lasted to the end of the phase.
  double recover_ms = 0;
  bool recovered = false;
  // Units of work that ended between injection and the end of the phase, and those that
  // failed; budget_spent_percent is the failed share against the phase's error budget
  // (the 40 % a during phase may fail: its success gate is 60 %).
  uint64_t units = 0, failed_units = 0;
  double budget_spent_percent = 0;
  // Acknowledged writes of this phase the ledger found missing, per durability class.
  uint64_t lost_auto = 0, lost_critical = 0;
};

struct ScenarioResult {
  ScenarioSpec spec;
  std::vector<PhaseResult> phases;
  Histogram latency;  // all phases merged
  LedgerVerdict ledger;
  // On a tiered store: the same ledger checked against the durable tier alone, after the
  // write-behind queue was flushed (every acknowledged write must be there).
  std::optional<LedgerVerdict> durable_ledger;
  // Tiered store: write-behind records the durable tier refused for good during the
  // scenario (dropped after their retries, never written there).
  std::optional<uint64_t> write_behind_dropped;
  // With an analytics tier: its events against the operations performed.
  std::optional<AnalyticsCheck> analytics;
  std::vector<ResourceSample> resources;
  double peak_rss_mb = 0;
  double avg_cpu_percent = 0;
  double wall_s = 0;
  int64_t started_unix = 0;
  bool truncated = false;    // max_duration cut the scenario short
  bool interrupted = false;  // the run was stopped (SIGINT, SIGTERM) before the scenario ended
  std::vector<IntervalRow> series;  // 1 s rows over the whole scenario
  // A run shorter than 10 s also has finer rows for its charts (1, 10 or 100 ms); empty else.
  std::vector<IntervalRow> fine_series;
  std::chrono::milliseconds fine_width{0};
  WindowRows windows;  // rows per interval-gate window width
  // The windows' histograms, for interval-gate widths only, so shards merge exactly.
  std::map<int64_t, std::vector<HistogramSnapshot>> window_histograms;
  double harness_thread_cpu_percent = 0;
  double harness_thread_busy_percent = 0;  // run + run-queue wait: never idle = 100
  bool invalid = false;  // the generator was the bottleneck: do not trust the numbers
  std::string invalid_reason;
  std::vector<FaultWindow> faults;
  std::string stopped_early;  // why the scenario stopped before its last phase, if it did
  // --confirm-failures: the gates a first attempt missed (performance gates only) when this
  // result is the confirming rerun; empty when the scenario ran once.
  std::vector<std::string> first_attempt_failed;
  Metrics metrics;
  std::vector<GateResult> gates;
  nlohmann::json tables = nlohmann::json::object();  // scenario-specific report tables
  bool passed() const { return AllPassed(gates); }
};

// A real fault in the path to a store, switched on and off at a phase's fault events.
class Fault {
 public:
  virtual ~Fault() = default;
  virtual std::string Describe() const = 0;
  // Injects the fault; returns once it is in force (for a kill: once the process is gone).
  virtual Status Begin() = 0;
  // Heals it; returns once it is over (for a kill: once the restarted process runs).
  virtual Status End() = 0;
};

// One of the run's faults, by the name phases use for it.
struct NamedFault {
  std::string name;
  Fault* fault = nullptr;
};

// Checks only the composition of the run's store can answer (a tiered store's durable tier
// and analytics), supplied by the code that opened the store: the engine names no store.
// Shared by scenarios that run in parallel, so it keeps no per-scenario state: what a
// scenario needs from its start is returned by Baseline and passed back to Verify.
class StoreChecks {
 public:
  virtual ~StoreChecks() = default;
  // At the scenario's start: the store's cumulative counters the checks take differences of.
  virtual std::map<std::string, double> Baseline() = 0;
  // After the load, once the ledger was verified through the store: checks what lies
  // behind it, fills the result's fields it answers (durable_ledger, write_behind_dropped,
  // analytics) and adds the gates that judge them to `spec`.
  virtual Awaitable<void> Verify(const Ledger& ledger,
                                 const std::map<std::string, double>& baseline, ScenarioSpec& spec,
                                 ScenarioResult& result) = 0;
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
  std::vector<NamedFault> faults;  // empty: the store has no fault the harness can inject
  // Set when the store has more to check than its API answers (the tiered store's tiers).
  StoreChecks* checks = nullptr;
  // Set (on the executor's thread) when the run is to stop early (SIGINT, SIGTERM): the
  // load stops, faults in force are healed, the ledger is verified and the result says
  // `interrupted`. Null: never.
  const bool* interrupted = nullptr;
  // AGENTSTATE_DEBUG=1: a line on stderr as each phase starts and at each retry.
  bool debug = false;
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
