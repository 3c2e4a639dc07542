// The agentload run: select scenarios, open the store, run, write reports, decide the exit
// status (0 all gates held, 1 a gate failed, 2 the run could not be carried out, 3 the run
// is INVALID because the generator itself was the bottleneck).
#pragma once

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agentstate/status.hpp"
#include "agentstate/tiered.hpp"
#include "load/engine/gates.hpp"
#include "load/engine/scenario.hpp"

namespace agentstate::agentload {

using load::GateOverride;

inline constexpr int kExitPass = 0;
inline constexpr int kExitGateFailed = 1;
inline constexpr int kExitSetup = 2;
inline constexpr int kExitInvalid = 3;  // the generator itself was the bottleneck
// SIGINT or SIGTERM stopped the run; its reports hold what ran.
inline constexpr int kExitInterrupted = 130;

// The stores a run opens, decided once from the flags and the environment (cli.cpp).
struct StorePlan {
  std::string uri;  // one store; empty when the run is on the tiered store
  struct Tiered {
    std::string hot, durable;  // redis:// (or memory://) in front of postgresql:// (or sqlite://)
    std::string analytics;     // optional: clickhouse:// behind them
    TieredOptions options;     // --flush-window sets options.flush_window
  };
  std::optional<Tiered> tiered;
};

struct RunOptions {
  std::vector<std::string> tests;  // empty = every scenario in the catalogue
  // --tag: only scenarios with one of these tags; --exclude-tag: none with one of these.
  std::vector<std::string> tags, exclude_tags;
  bool debug = false;  // AGENTSTATE_DEBUG=1: each phase and each retry on stderr
  bool quick = false;
  // --check: everything but the load (options, report directory, the store's health).
  bool check = false;
  bool verbose = false;
  std::string report_dir = "test_reports/load";
  int parallel = 1;  // scenarios run at once
  // --confirm-failures: a scenario that misses only performance gates (latency, throughput,
  // ratios, success rates) runs once more, and its result is that rerun's. A scenario that
  // fails a gate on the data itself (GateSpec::integrity) is never rerun.
  bool confirm_failures = false;
  uint64_t seed = 1;
  std::optional<int> agents;
  std::optional<std::chrono::seconds> duration;  // --duration: the sustained scenario's real soak
  StorePlan store;  // resolved once by the CLI: --store, tier flags, environment, default
  std::vector<GateOverride> gate_overrides;
  // `agentload chaos`: the chaos scenario alone (seed = the schedule's, duration = its length).
  bool chaos = false;
  // `agentload chaos --faults a,b`: inject only these of the faults the store offers (empty:
  // all of them).
  std::vector<std::string> chaos_faults;
  int shard_index = 0;  // --shard i/N: run the agents whose index % N == i
  int shard_count = 1;
};

// What --confirm-failures may rerun a scenario past: its failed gates, described, when all
// are performance gates; empty when one is on the data itself (GateSpec::integrity), or the
// scenario was invalid, interrupted or truncated, or it passed.
std::vector<std::string> RerunnableFailures(const load::ScenarioResult& result);

// Prints the one-line "agentload: error: ..." and returns kExitSetup.
int SetupError(std::ostream& err, std::string_view message);

// --shard "i/N" -> {i, N}; kInvalidArgument unless 0 <= i < N <= 1024.
Result<std::pair<int, int>> ParseShard(const std::string& text);

// Runs and reports; writes the summary to `out` and errors (one line each) to `err`.
int RunLoad(const RunOptions& options, std::ostream& out, std::ostream& err);

// `agentload merge DIR...`: each DIR holds one shard's reports of the same run (same seed,
// profile and scenario versions). Writes the merged reports to `report_dir` and returns
// the exit status the unsharded run would have had.
// `agentload report DIR`: regenerates DIR/index.html from the JSON reports in DIR.
int ReportLoad(const std::string& dir, std::ostream& out, std::ostream& err);

int MergeLoad(const std::vector<std::string>& dirs, const std::string& report_dir,
              std::ostream& out, std::ostream& err);

}  // namespace agentstate::agentload
