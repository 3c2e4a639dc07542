// The agentload run: select scenarios, open the store, run, write reports, decide the exit
// status (0 all gates held, 1 a gate failed, 2 the run could not be carried out, 3 the run
// is INVALID because the generator itself was the bottleneck).
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "load/gates.hpp"

namespace agentstate::load {

inline constexpr int kExitPass = 0;
inline constexpr int kExitGateFailed = 1;
inline constexpr int kExitSetup = 2;
inline constexpr int kExitInvalid = 3;  // the generator itself was the bottleneck

struct RunOptions {
  std::vector<std::string> tests;  // empty = every scenario in the catalogue
  bool quick = false;
  bool verbose = false;
  std::string report_dir = "test_reports/load";
  int parallel = 1;  // scenarios run at once
  uint64_t seed = 1;
  std::optional<int> agents;
  std::string store_uri;  // resolved by the CLI: --store, flags, environment, default
  std::vector<GateOverride> gate_overrides;
};

// Runs and reports; writes the summary to `out` and errors (one line each) to `err`.
int RunLoad(const RunOptions& options, std::ostream& out, std::ostream& err);

}  // namespace agentstate::load
