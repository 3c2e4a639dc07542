#include "load/workload.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

namespace agentstate::load {

std::string_view Name(StateSize size) {
  switch (size) {
    case StateSize::kSmall: return "small";
    case StateSize::kMedium: return "medium";
    case StateSize::kLarge: return "large";
    case StateSize::kEnterprise: return "enterprise";
  }
  return "small";
}

std::string_view Name(ExecutionPattern pattern) {
  switch (pattern) {
    case ExecutionPattern::kQuick: return "quick";
    case ExecutionPattern::kSustained: return "sustained";
    case ExecutionPattern::kBurst: return "burst";
  }
  return "quick";
}

uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t HashScope(uint64_t seed, std::string_view scope, uint64_t index) {
  uint64_t h = Mix(seed);
  for (char c : scope) h = Mix(h ^ static_cast<unsigned char>(c));
  return Mix(h ^ Mix(index));
}

namespace {

// A small deterministic stream for one document.
class Stream {
 public:
  explicit Stream(uint64_t s) : s_(s) {}
  uint64_t Next() { return s_ = Mix(s_); }
  uint64_t Below(uint64_t n) { return Next() % n; }
  std::string Hex(int digits) { return fmt::format("{:0{}x}", Next() >> (64 - 4 * digits), digits); }

 private:
  uint64_t s_;
};

// Timestamps are logical (a fixed epoch plus the agent's offset) so documents are
// reproducible; the store stamps real wall-clock times of its own.
std::string LogicalTime(uint64_t seconds) {
  constexpr uint64_t kEpoch = 1767225600;  // 2026-01-01T00:00:00Z
  std::time_t t = static_cast<std::time_t>(kEpoch + seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec);
}

constexpr std::string_view kRequests[] = {
    "Summarise yesterday's failed deployments and propose fixes",
    "Find the cheapest instance type that meets our latency budget",
    "Triage the open incidents by customer impact",
    "Analyse churn drivers in the enterprise segment for Q3",
    "Optimise the nightly ETL schedule to finish before 06:00 UTC",
};

}  // namespace

AgentSpec WorkloadGenerator::Agent(std::string_view scope, int index, std::string_view user_id,
                                   StateSize size, ExecutionPattern pattern) const {
  AgentSpec a;
  a.index = index;
  a.seed = HashScope(seed_, scope, static_cast<uint64_t>(index));
  Stream s(a.seed);
  a.agent_id = fmt::format("agent_{}_{}", index, s.Hex(8));
  a.run_id = "run_" + a.agent_id;
  a.thread_id = "thread_" + a.agent_id;
  a.user_id = std::string(user_id);
  a.agent_type = std::string(kAgentTypes[static_cast<std::size_t>(index) % std::size(kAgentTypes)]);
  a.size = size;
  a.pattern = pattern;
  a.step_count = 1 + static_cast<int>(s.Below(50));
  return a;
}

std::string WorkloadGenerator::StateDocument(const AgentSpec& a, int extra_strings) const {
  Stream s(Mix(a.seed ^ 0x5eedULL));
  using nlohmann::json;
  json meta;
  auto results = [&](int n) {
    json arr = json::array();
    for (int i = 0; i < n; ++i) {
      arr.push_back(fmt::format("result_{}: {} rows scanned, {} matched, checksum {}", i, s.Below(100000),
                                s.Below(1000), s.Hex(16)));
    }
    return arr;
  };
  auto history = [&](int n) {
    json arr = json::array();
    for (int i = 0; i < n; ++i) arr.push_back({{"step", i}, {"duration", static_cast<double>(s.Below(5000)) / 1000.0}});
    return arr;
  };
  auto strings = [&](std::string_view prefix, int n) {
    json obj = json::object();
    for (int i = 0; i < n; ++i) obj[fmt::format("{}_{}", prefix, i)] = fmt::format("cached value {} {}", i, s.Hex(16));
    return obj;
  };
  switch (a.size) {
    case StateSize::kSmall:
      meta = {{"simple", true}, {"data_points", 100}};
      break;
    case StateSize::kMedium:
      meta = {{"results", results(50)}, {"history", history(10)}, {"data_points", 1000}};
      break;
    case StateSize::kLarge:
      meta = {{"results", results(200)}, {"history", history(50)}, {"cache", strings("key", 100)},
              {"data_points", 10000}};
      break;
    case StateSize::kEnterprise: {
      json metrics = json::array();
      for (int i = 0; i < 200; ++i) {
        metrics.push_back({{"metric", fmt::format("metric_{}", i)}, {"value", static_cast<double>(s.Below(1000000)) / 100.0}});
      }
      meta = {{"results", results(500)}, {"history", history(100)}, {"cache", strings("key", 300)},
              {"metrics", metrics},      {"data_points", 50000}};
      break;
    }
  }
  meta["execution_pattern"] = Name(a.pattern);
  meta["state_size"] = Name(a.size);
  json doc = {
      {"user_request", kRequests[s.Below(std::size(kRequests))]},
      {"chat_thread_id", a.thread_id},
      {"user_id", a.user_id},
      {"run_id", a.run_id},
      {"step_count", a.step_count},
      {"agent_type", a.agent_type},
      {"created_at", LogicalTime(static_cast<uint64_t>(a.index))},
      {"updated_at", LogicalTime(static_cast<uint64_t>(a.index) + static_cast<uint64_t>(a.step_count))},
      {"metadata", std::move(meta)},
  };
  if (extra_strings > 0) {
    json big = json::array();
    for (int i = 0; i < extra_strings; ++i) big.push_back(fmt::format("dataset row {} {}", i, s.Hex(16)));
    doc["large_dataset"] = std::move(big);
  }
  return doc.dump();
}

SaveRequest WorkloadGenerator::Request(const AgentSpec& a, std::string payload) const {
  SaveRequest r;
  r.run_id = a.run_id;
  r.thread_id = a.thread_id;
  r.user_id = a.user_id;
  r.agent_type = a.agent_type;
  r.step_count = a.step_count;
  r.phase = "execution";
  r.checkpoint_type = CheckpointType::kAuto;
  r.is_recovery_point = false;
  r.payload = std::move(payload);
  return r;
}

}  // namespace agentstate::load
