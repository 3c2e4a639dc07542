// agentload's command line: flags to RunOptions, with every error a one-line message and
// exit status 2. Kept apart from main() so tests can drive it.
#pragma once

#include <iosfwd>
#include <map>
#include <string>
#include <vector>

#include "runner.hpp"

namespace agentstate::agentload {

// Parses argv and runs: --help, --list or the load run. Environment lookups go through
// `env` (AGENTSTATE_STORE_URL, AGENTSTATE_REDIS_URL, AGENTSTATE_POSTGRES_URL,
// AGENTSTATE_CLICKHOUSE_URL) so tests can control them. Returns the exit status.
int AgentloadMain(const std::vector<std::string>& args,
                  const std::map<std::string, std::string>& env, std::ostream& out,
                  std::ostream& err);

// The embedded default store, relative to the working directory.
inline constexpr const char* kDefaultStore = "sqlite://agentstate-data/agentstate.db";

}  // namespace agentstate::agentload
