// The workload generator: agents and their state documents as SCENARIOS.md defines them.
//
// Deterministic: an agent is a pure function of (seed, scope, index), where scope names the
// scenario and phase. Two runs with the same seed build byte-identical documents, whatever
// the order or concurrency in which agents are built. Thread-safe (no shared state).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "agentstate/model.hpp"

namespace agentstate::load {

enum class StateSize { kSmall, kMedium, kLarge, kEnterprise };
enum class ExecutionPattern { kQuick, kSustained, kBurst };

std::string_view Name(StateSize size);
std::string_view Name(ExecutionPattern pattern);

// The four agent types agents cycle through, in order.
inline constexpr std::string_view kAgentTypes[] = {"triage_agent", "supervisor_agent",
                                                   "data_analyst", "optimization_agent"};

struct AgentSpec {
  int index = 0;
  std::string agent_id;   // agent_<index>_<8 hex>
  std::string run_id;     // run_<agent_id>
  std::string thread_id;  // thread_<agent_id>
  std::string user_id;
  std::string agent_type;
  StateSize size = StateSize::kSmall;
  ExecutionPattern pattern = ExecutionPattern::kQuick;
  int step_count = 1;  // 1..50
  uint64_t seed = 0;   // this agent's own stream
};

class WorkloadGenerator {
 public:
  explicit WorkloadGenerator(uint64_t seed) : seed_(seed) {}

  // Agent `index` of `scope`; size and pattern are chosen by the caller's mix.
  AgentSpec Agent(std::string_view scope, int index, std::string_view user_id, StateSize size,
                  ExecutionPattern pattern) const;

  // The agent's state document (JSON). `extra_strings` > 0 adds a `large_dataset` array of
  // that many strings (the memory scenario's extra load).
  std::string StateDocument(const AgentSpec& agent, int extra_strings = 0) const;

  // The SaveRequest of the original unit of work: an `auto` checkpoint, not a recovery point.
  SaveRequest Request(const AgentSpec& agent, std::string payload) const;

  uint64_t seed() const { return seed_; }

 private:
  uint64_t seed_;
};

// SplitMix64: the generator's stream function, exposed so scenarios derive sub-streams.
uint64_t Mix(uint64_t x);
uint64_t HashScope(uint64_t seed, std::string_view scope, uint64_t index);

}  // namespace agentstate::load
