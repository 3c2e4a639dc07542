#include "load/workload/workload.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <iterator>
#include <vector>

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
  // The top `digits` nibbles of the next value, as lower-case hex.
  std::string Hex(int digits) {
    static constexpr char kDigits[] = "0123456789abcdef";
    const uint64_t v = Next();
    std::string out(static_cast<std::size_t>(digits), '0');
    for (int i = 0; i < digits; ++i)
      out[static_cast<std::size_t>(i)] = kDigits[(v >> (60 - 4 * i)) & 0xF];
    return out;
  }

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
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
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

namespace {

// Appends JSON straight to a string: the generator runs once per agent-op, and building a
// nlohmann tree and dumping it was over half of a Redis agent-op's client CPU. The output
// is byte for byte what nlohmann's dump() gives for the same document (keys in sorted
// order, shortest round-trip doubles with a ".0" for whole numbers), which the tests check.
class JsonOut {
 public:
  explicit JsonOut(std::string& out) : out_(out) {}
  JsonOut& Key(std::string_view k) {
    Comma();
    Quoted(k);
    out_ += ':';
    fresh_ = true;  // the value follows without a comma
    return *this;
  }
  void Open(char c) {
    Comma();
    out_ += c;
    fresh_ = true;
  }
  void Close(char c) {
    out_ += c;
    fresh_ = false;
  }
  void Str(std::string_view v) {
    Comma();
    Quoted(v);
  }
  void Int(int64_t v) {
    Comma();
    fmt::format_to(std::back_inserter(out_), "{}", v);
  }
  void Double(double v) {
    Comma();
    const std::size_t at = out_.size();
    fmt::format_to(std::back_inserter(out_), "{}", v);
    if (out_.find_first_of(".eE", at) == std::string::npos) out_ += ".0";
  }
  void Bool(bool v) {
    Comma();
    out_ += v ? "true" : "false";
  }

 private:
  void Comma() {
    if (!fresh_) out_ += ',';
    fresh_ = false;
  }
  // Runs that need no escape are appended whole; only the rare escaped byte is written alone.
  void Quoted(std::string_view v) {
    out_ += '"';
    std::size_t run = 0;
    for (std::size_t i = 0; i < v.size(); ++i) {
      const auto c = static_cast<unsigned char>(v[i]);
      if (c >= 0x20 && c != '"' && c != '\\') continue;
      out_.append(v.data() + run, i - run);
      run = i + 1;
      switch (c) {
        case '"': out_ += "\\\""; break;
        case '\\': out_ += "\\\\"; break;
        case '\b': out_ += "\\b"; break;
        case '\f': out_ += "\\f"; break;
        case '\n': out_ += "\\n"; break;
        case '\r': out_ += "\\r"; break;
        case '\t': out_ += "\\t"; break;
        default: fmt::format_to(std::back_inserter(out_), "\\u{:04x}", c);
      }
    }
    out_.append(v.data() + run, v.size() - run);
    out_ += '"';
  }

  std::string& out_;
  bool fresh_ = true;
};

}  // namespace

std::string WorkloadGenerator::StateDocument(const AgentSpec& a, int extra_strings) const {
  Stream s(Mix(a.seed ^ 0x5eedULL));
  // Values are drawn from the stream in the order the original generator drew them
  // (metrics, results, history, cache, then the request, then the extra dataset), then
  // written out with keys in sorted order.
  const int n_results = a.size == StateSize::kMedium       ? 50
                        : a.size == StateSize::kLarge      ? 200
                        : a.size == StateSize::kEnterprise ? 500
                                                           : 0;
  const int n_history = a.size == StateSize::kMedium       ? 10
                        : a.size == StateSize::kLarge      ? 50
                        : a.size == StateSize::kEnterprise ? 100
                                                           : 0;
  const int n_cache = a.size == StateSize::kLarge        ? 100
                      : a.size == StateSize::kEnterprise ? 300
                                                         : 0;
  const int n_metrics = a.size == StateSize::kEnterprise ? 200 : 0;
  std::vector<std::string> results, cache;
  std::vector<double> history, metrics;
  results.reserve(static_cast<std::size_t>(n_results));
  for (int i = 0; i < n_metrics; ++i)
    metrics.push_back(static_cast<double>(s.Below(1000000)) / 100.0);
  for (int i = 0; i < n_results; ++i) {
    // The original drew these as one call's arguments, which g++ evaluates right to left.
    const std::string hex = s.Hex(16);
    const uint64_t matched = s.Below(1000);
    const uint64_t rows = s.Below(100000);
    results.push_back(
        fmt::format("result_{}: {} rows scanned, {} matched, checksum {}", i, rows, matched, hex));
  }
  for (int i = 0; i < n_history; ++i)
    history.push_back(static_cast<double>(s.Below(5000)) / 1000.0);
  cache.reserve(static_cast<std::size_t>(n_cache));
  for (int i = 0; i < n_cache; ++i)
    cache.push_back(fmt::format("cached value {} {}", i, s.Hex(16)));
  const std::string_view request = kRequests[s.Below(std::size(kRequests))];

  std::string out;
  out.reserve(256 + results.size() * 72 + cache.size() * 52 + history.size() * 32 +
              metrics.size() * 40 + static_cast<std::size_t>(extra_strings) * 40);
  JsonOut j(out);
  j.Open('{');
  j.Key("agent_type").Str(a.agent_type);
  j.Key("chat_thread_id").Str(a.thread_id);
  j.Key("created_at").Str(LogicalTime(static_cast<uint64_t>(a.index)));
  if (extra_strings > 0) {
    j.Key("large_dataset").Open('[');
    for (int i = 0; i < extra_strings; ++i) j.Str(fmt::format("dataset row {} {}", i, s.Hex(16)));
    j.Close(']');
  }
  j.Key("metadata").Open('{');
  if (n_cache > 0) {
    // nlohmann orders object keys as strings: key_0, key_1, key_10, ..., key_2.
    std::vector<std::pair<std::string, int>> keys;
    for (int i = 0; i < n_cache; ++i) keys.emplace_back(fmt::format("key_{}", i), i);
    std::sort(keys.begin(), keys.end());
    j.Key("cache").Open('{');
    for (const auto& [k, i] : keys) j.Key(k).Str(cache[static_cast<std::size_t>(i)]);
    j.Close('}');
  }
  const int data_points = a.size == StateSize::kSmall    ? 100
                          : a.size == StateSize::kMedium ? 1000
                          : a.size == StateSize::kLarge  ? 10000
                                                         : 50000;
  j.Key("data_points").Int(data_points);
  j.Key("execution_pattern").Str(Name(a.pattern));
  if (n_history > 0) {
    j.Key("history").Open('[');
    for (int i = 0; i < n_history; ++i) {
      j.Open('{');
      j.Key("duration").Double(history[static_cast<std::size_t>(i)]);
      j.Key("step").Int(i);
      j.Close('}');
    }
    j.Close(']');
  }
  if (n_metrics > 0) {
    j.Key("metrics").Open('[');
    for (int i = 0; i < n_metrics; ++i) {
      j.Open('{');
      j.Key("metric").Str(fmt::format("metric_{}", i));
      j.Key("value").Double(metrics[static_cast<std::size_t>(i)]);
      j.Close('}');
    }
    j.Close(']');
  }
  if (n_results > 0) {
    j.Key("results").Open('[');
    for (const auto& r : results) j.Str(r);
    j.Close(']');
  }
  if (a.size == StateSize::kSmall) j.Key("simple").Bool(true);
  j.Key("state_size").Str(Name(a.size));
  j.Close('}');
  j.Key("run_id").Str(a.run_id);
  j.Key("step_count").Int(a.step_count);
  j.Key("updated_at")
      .Str(LogicalTime(static_cast<uint64_t>(a.index) + static_cast<uint64_t>(a.step_count)));
  j.Key("user_id").Str(a.user_id);
  j.Key("user_request").Str(request);
  j.Close('}');
  return out;
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
