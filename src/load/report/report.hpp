// Reports: per-scenario JSON in the seed suite's shape (SCENARIOS.md "Reports") plus our
// histograms, ledger verdict and resource series; a run summary; the console summary.
// Files are written whole or not at all (temporary file, then rename).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agentstate/status.hpp"
#include "load/engine/scenario.hpp"
#include "load/report/files.hpp"

namespace agentstate::load {

// What the whole run was, stated in every report.
struct RunInfo {
  std::string store;    // the store URI, password removed
  std::string profile;  // "quick" | "full"
  uint64_t seed = 0;
  std::string version;     // agentstate version
  int agents = 0;          // --agents, 0 when the profile's counts were used
  int64_t duration_s = 0;  // --duration, 0 when not given
  int shard_index = 0;     // --shard i/N; a merged report says 0/1 and how many it merged
  int shard_count = 1;
  int merged_shards = 0;
  std::string durability;    // the durability contract in force; empty = from the store URI
  bool interrupted = false;  // SIGINT or SIGTERM stopped the run: its reports hold what ran
};

nlohmann::json ScenarioReport(const ScenarioResult& result, const RunInfo& run);
nlohmann::json RunSummary(const std::vector<ScenarioResult>& results, const RunInfo& run);

// JUnit XML: one testsuite per scenario, one testcase per gate (a failure carries the
// measured value against the limit), plus a failing `valid_measurement` case when INVALID.
std::string JUnitXml(const std::vector<ScenarioResult>& results);

// One line per scenario; under it one line per failed gate, measured against its limit
// (and an INVALID line); with `all_gates` (--verbose), every gate.
std::string ConsoleSummary(const std::vector<ScenarioResult>& results, bool all_gates);
// The fault table: per fault, the time to inject and heal it, to detect it and recover from
// it, the units and failures in its window, the error budget spent, and the lost
// acknowledged writes per durability class. Empty when no fault ran.
std::string FaultTableText(const std::vector<FaultWindow>& faults);

}  // namespace agentstate::load
