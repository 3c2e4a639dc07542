#include "load/catalogue/scenarios.hpp"

#include "load/report/merge.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>

namespace agentstate::load {
namespace {

using namespace std::chrono_literals;
using Size = StateSize;
using Pattern = ExecutionPattern;
constexpr auto S = Size::kSmall;
constexpr auto M = Size::kMedium;
constexpr auto L = Size::kLarge;
constexpr auto E = Size::kEnterprise;

GateSpec AtMost(std::string name, std::string metric, double limit, std::string unit = "") {
  return {std::move(name), std::move(metric), Compare::kAtMost, limit, std::move(unit)};
}
GateSpec AtLeast(std::string name, std::string metric, double limit, std::string unit = "") {
  return {std::move(name), std::move(metric), Compare::kAtLeast, limit, std::move(unit)};
}

// Ours, on every scenario: no read may return damaged data, the ledger must find nothing
// lost, phantom or reordered, and the generator process stays under 2 GB.
void AddIntegrityGates(std::vector<GateSpec>& gates) {
  auto has = [&](const char* name) {
    return std::any_of(gates.begin(), gates.end(),
                       [&](const GateSpec& g) { return g.name == name; });
  };
  if (!has("peak_memory_mb"))
    gates.push_back(AtMost("peak_memory_mb", "peak_memory_mb", 2048, "MB"));
  for (const char* name :
       {"corruption", "lost_writes", "phantom_writes", "out_of_order_writes", "resurrected_runs"}) {
    auto g =
        std::find_if(gates.begin(), gates.end(), [&](const GateSpec& x) { return x.name == name; });
    if (g == gates.end()) {
      gates.push_back(DataGate(name));
    } else {
      g->integrity = true;
    }
  }
}

PhaseSpec Wave(std::string name, int agents, std::vector<Size> sizes,
               std::vector<Pattern> patterns = {Pattern::kQuick},
               std::chrono::milliseconds pause = 0ms) {
  PhaseSpec p;
  p.name = std::move(name);
  p.agents = agents;
  p.sizes = std::move(sizes);
  p.patterns = std::move(patterns);
  p.pause_after = pause;
  return p;
}

// The agent count of a wave: the profile's, or --agents.
int Agents(const Profile& profile, int full, int quick) {
  return profile.agents.value_or(profile.quick ? quick : full);
}

double Get(const Metrics& m, const std::string& k) {
  auto it = m.find(k);
  return it == m.end() ? std::nan("") : it->second;
}
double Ratio(double a, double b) { return b > 0 ? a / b : std::nan(""); }

// The seed suite's degradation gates compare two latencies (spike vs baseline, post vs pre
// failure...). Against a store it measured at tens of milliseconds that was sound. Against
// one answering in under a millisecond, the ratio measures scheduler and VM wake-up jitter:
// the same wave, repeated after a 2 s idle pause, varied 0.46..0.92 ms here. So time
// ratios are taken over latencies with a floor of kRatioFloorMs, a tenth of the P50 SLA:
// differences below it are not degradation at the SLA's scale, and a real one (20 ms after
// 1 ms) still fails. The raw ratio is reported beside each gated one.
constexpr double kRatioFloorMs = 5.0;
double TimeRatio(Metrics& m, const std::string& name, double a_ms, double b_ms) {
  m[name + "_raw"] = Ratio(a_ms, b_ms);
  return Ratio(a_ms + kRatioFloorMs, b_ms + kRatioFloorMs);
}

double Median(std::vector<double> v) {
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}
double Stdev(const std::vector<double>& v) {
  if (v.size() < 2) return 0;
  const double mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
  double ss = 0;
  for (double x : v) ss += (x - mean) * (x - mean);
  return std::sqrt(ss / static_cast<double>(v.size() - 1));
}

// A table row per phase: the scenario-specific tables of SCENARIOS.md (per size, per hour...).
nlohmann::json PhaseTable(const ScenarioResult& r, const std::string& key_name) {
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& p : r.phases) {
    const std::string pre = "phase." + p.name + ".";
    rows.push_back({{key_name, p.name},
                    {"agents", p.executed},
                    {"succeeded", p.succeeded},
                    {"success_rate_percent", Get(r.metrics, pre + "success_rate_percent")},
                    {"mean_ms", Get(r.metrics, pre + "mean_ms")},
                    {"p50_ms", Get(r.metrics, pre + "p50_ms")},
                    {"p95_ms", Get(r.metrics, pre + "p95_ms")},
                    {"p99_ms", Get(r.metrics, pre + "p99_ms")},
                    {"throughput_agents_per_s", Get(r.metrics, pre + "throughput_agents_per_s")},
                    {"retries", p.retries},
                    {"errors", p.errors}});
  }
  return rows;
}

// 1. 100 agents at once, each save -> load -> verify.
ScenarioSpec Baseline(const Profile& profile) {
  ScenarioSpec s;
  s.name = "100_concurrent_agents_baseline";
  s.user_id = "load_user_baseline";
  const int agents = Agents(profile, 100, 100);
  s.phases = {Wave("concurrent", agents, {S, M, L}, {Pattern::kQuick, Pattern::kSustained})};
  s.max_duration = profile.quick ? 120s : 600s;
  // The original required >= 95 of its 100 agents; with --agents the same share.
  s.gates = {
      AtLeast("succeeded", "succeeded", std::ceil(0.95 * agents)),
      AtLeast("availability_percent", "availability_percent", 95, "%"),
      AtMost("p50_ms", "p50_ms", 50, "ms"),
      AtMost("p99_ms", "p99_ms", 200, "ms"),
      AtMost("peak_memory_mb", "peak_memory_mb", 2048, "MB"),
      AtMost("corruption", "corruption", 0),
      AtLeast("throughput_agents_per_s", "throughput_agents_per_s", 10, "agents/s"),
  };
  AddIntegrityGates(s.gates);
  return s;
}

// 2. Prepopulated states, then shuffled concurrent reads (60 %) and full agent writes (40 %).
ScenarioSpec MixedWorkload(const Profile& profile) {
  ScenarioSpec s;
  s.name = "mixed_workload_read_write_patterns";
  s.user_id = "load_user_mixed";
  const int writes = Agents(profile, 20, 10);
  const int reads = writes * 3 / 2;
  const int prepopulated = std::max(reads, Agents(profile, 50, 25));
  PhaseSpec pre = Wave("prepopulate", prepopulated, {M, L});
  PhaseSpec mixed = Wave("mixed", writes, {S, M, L});
  mixed.reads = reads;
  mixed.read_from = "prepopulate";
  s.phases = {pre, mixed};
  s.gates = {
      AtLeast("availability_percent", "phase.mixed.availability_percent", 90, "%"),
      AtLeast("reads_succeeded", "phase.mixed.read.succeeded", std::ceil(reads * 25.0 / 30.0)),
      AtLeast("writes_succeeded", "phase.mixed.agent.succeeded", std::ceil(writes * 16.0 / 20.0)),
      AtMost("p95_ms", "phase.mixed.p95_ms", 150, "ms"),
      AtMost("read_write_mean_ratio", "read_write_mean_ratio", 1.5),
  };
  s.derive = [](ScenarioResult& r) {
    r.metrics["read_write_mean_ratio"] =
        TimeRatio(r.metrics, "read_write_mean_ratio", Get(r.metrics, "phase.mixed.read.mean_ms"),
                  Get(r.metrics, "phase.mixed.agent.mean_ms"));
    r.tables["operations"] = {{{"kind", "read"},
                               {"executed", Get(r.metrics, "phase.mixed.read.executed")},
                               {"succeeded", Get(r.metrics, "phase.mixed.read.succeeded")},
                               {"mean_ms", Get(r.metrics, "phase.mixed.read.mean_ms")},
                               {"p95_ms", Get(r.metrics, "phase.mixed.read.p95_ms")}},
                              {{"kind", "write"},
                               {"executed", Get(r.metrics, "phase.mixed.agent.executed")},
                               {"succeeded", Get(r.metrics, "phase.mixed.agent.succeeded")},
                               {"mean_ms", Get(r.metrics, "phase.mixed.agent.mean_ms")},
                               {"p95_ms", Get(r.metrics, "phase.mixed.agent.p95_ms")}}};
  };
  AddIntegrityGates(s.gates);
  return s;
}

// 3. Each state size in turn, 25 agents at once.
ScenarioSpec StateSizes(const Profile& profile) {
  ScenarioSpec s;
  s.name = "state_size_scalability";
  s.user_id = "load_user_sizes";
  const int agents = Agents(profile, 25, 10);
  const std::pair<Size, double> sizes[] = {{S, 30}, {M, 60}, {L, 120}, {E, 200}};
  for (auto [size, p95] : sizes) {
    const std::string name(Name(size));
    s.phases.push_back(Wave(name, agents, {size}));
    s.gates.push_back(
        AtLeast(name + "_success_percent", "phase." + name + ".success_rate_percent", 95, "%"));
    s.gates.push_back(AtMost(name + "_p95_ms", "phase." + name + ".p95_ms", p95, "ms"));
  }
  s.gates.push_back(AtLeast("availability_percent", "availability_percent", 95, "%"));
  s.gates.push_back(AtMost("enterprise_small_p95_ratio", "enterprise_small_p95_ratio", 10));
  s.gates.push_back(
      AtMost("small_enterprise_throughput_ratio", "small_enterprise_throughput_ratio", 5));
  s.derive = [](ScenarioResult& r) {
    r.metrics["enterprise_small_p95_ratio"] =
        TimeRatio(r.metrics, "enterprise_small_p95_ratio",
                  Get(r.metrics, "phase.enterprise.p95_ms"), Get(r.metrics, "phase.small.p95_ms"));
    // Throughput of equal waves is agents / wall time: its ratio is a ratio of wall times.
    double wall_ms[2] = {0, 0};
    for (const auto& p : r.phases) {
      if (p.name == "small") wall_ms[0] = 1000 * (p.end_s - p.start_s);
      if (p.name == "enterprise") wall_ms[1] = 1000 * (p.end_s - p.start_s);
    }
    r.metrics["small_enterprise_throughput_ratio"] =
        TimeRatio(r.metrics, "small_enterprise_throughput_ratio", wall_ms[1], wall_ms[0]);
    r.tables["per_size"] = PhaseTable(r, "size");
  };
  AddIntegrityGates(s.gates);
  return s;
}

// 4. 24 "hours" of checkpoints: compressed, or a real soak with --duration.
ScenarioSpec Sustained(const Profile& profile) {
  ScenarioSpec s;
  s.name = "sustained_load_24h_simulation";
  s.user_id = "load_user_sustained";
  const int hours = profile.quick && !profile.duration ? 12 : 24;
  const int agents = Agents(profile, 10, 5);
  for (int h = 1; h <= hours; ++h) {
    // Every 4th hour carries medium/large states, the others small/medium.
    PhaseSpec p = Wave(fmt::format("hour_{:02}", h), agents,
                       h % 4 == 0 ? std::vector<Size>{M, L} : std::vector<Size>{S, M},
                       {Pattern::kSustained}, profile.quick ? 200ms : 1000ms);
    if (profile.duration) {
      // A real soak: each hour is duration / 24 of constant load by `agents` agents.
      p.executor = Executor::kConstant;
      p.duration = std::chrono::duration_cast<std::chrono::milliseconds>(*profile.duration) / hours;
      p.pause_after = 0ms;
    }
    s.phases.push_back(p);
  }
  s.max_duration = profile.duration ? *profile.duration + 600s : 3600s;
  s.stop_early = [](const ScenarioResult& r, std::size_t index) -> std::string {
    if (index < 2) return "";  // judged from hour 3 on
    const PhaseResult& last = r.phases[index];
    const double success = last.executed ? 100.0 * static_cast<double>(last.succeeded) /
                                               static_cast<double>(last.executed)
                                         : 0;
    if (success < 80)
      return fmt::format("{} succeeded {:.1f} % < 80 % after hour 3", last.name, success);
    return "";
  };
  s.gates = {
      AtLeast("mean_hourly_success_percent", "mean_hourly_success_percent", 90, "%"),
      AtLeast("availability_percent", "availability_percent", 90, "%"),
      AtMost("success_degradation_percent", "success_degradation_percent", 20, "%"),
      AtMost("mean_hourly_mean_ms", "mean_hourly_mean_ms", 100, "ms"),
      AtMost("throughput_degradation_percent", "throughput_degradation_percent", 30, "%"),
      // Ours: RSS must not keep growing once warm. Over the compressed run (~25 s) a slope
      // cannot tell a leak from caches filling, so it gates the second half's growth; a real
      // soak (--duration) also gates the slope's lower 95 % bound, in MB per hour.
      AtMost("memory_growth_second_half_mb", "memory_growth_second_half_mb", 50, "MB"),
  };
  if (profile.duration)
    s.gates.push_back(AtMost("memory_leak_mb_per_hour", "memory_leak_mb_per_hour", 50, "MB/h"));
  s.derive = [](ScenarioResult& r) {
    std::vector<double> success, mean, tput;
    for (const auto& p : r.phases) {
      const std::string pre = "phase." + p.name + ".";
      success.push_back(Get(r.metrics, pre + "success_rate_percent"));
      mean.push_back(Get(r.metrics, pre + "mean_ms"));
      // A compressed hour's wave takes under a millisecond, so its throughput is taken over
      // its wall time plus the same floor as the time ratios (see kRatioFloorMs).
      tput.push_back(static_cast<double>(p.executed) /
                     (p.end_s - p.start_s + kRatioFloorMs / 1000.0));
    }
    auto avg = [](const std::vector<double>& v, std::size_t from, std::size_t n) {
      double sum = 0;
      for (std::size_t i = from; i < from + n; ++i) sum += v[i];
      return n ? sum / static_cast<double>(n) : std::nan("");
    };
    const std::size_t n = success.size();
    r.metrics["hours_run"] = static_cast<double>(n);
    r.metrics["mean_hourly_success_percent"] = avg(success, 0, n);
    r.metrics["mean_hourly_mean_ms"] = avg(mean, 0, n);
    r.metrics["success_degradation_percent"] =
        n ? std::max(0.0, success.front() - success.back()) : std::nan("");
    const std::size_t k = std::min<std::size_t>(3, n / 2);
    const double first = avg(tput, 0, k), last = avg(tput, n - k, k);
    r.metrics["throughput_degradation_percent"] =
        k && first > 0 ? std::max(0.0, 100.0 * (first - last) / first) : std::nan("");
    {
      // The same without the floor, for the record.
      double f = 0, l = 0;
      for (std::size_t i = 0; i < k; ++i) {
        f += Get(r.metrics, "phase." + r.phases[i].name + ".throughput_agents_per_s");
        l += Get(r.metrics, "phase." + r.phases[n - 1 - i].name + ".throughput_agents_per_s");
      }
      r.metrics["throughput_degradation_percent_raw"] =
          k && f > 0 ? std::max(0.0, 100.0 * (f - l) / f) : std::nan("");
    }
    std::vector<ResourceSample> later(
        r.resources.begin() + static_cast<std::ptrdiff_t>(r.resources.size() / 2),
        r.resources.end());
    const Trend t = RssTrend(later);
    r.metrics["memory_leak_mb_per_hour"] =
        t.samples >= 3 ? std::max(0.0, t.mb_per_hour - 2 * t.stderr_mb_per_hour) : 0;
    r.metrics["memory_growth_second_half_mb"] =
        later.size() >= 2 ? later.back().rss_mb - later.front().rss_mb : 0;
    r.tables["per_hour"] = PhaseTable(r, "hour");
  };
  AddIntegrityGates(s.gates);
  return s;
}

// 5. Baseline -> spike (4x) -> recovery.
ScenarioSpec Burst(const Profile& profile) {
  ScenarioSpec s;
  s.name = "burst_traffic_handling";
  s.user_id = "load_user_burst";
  const int base = Agents(profile, 20, 10);
  const auto pause = profile.quick ? 500ms : 2000ms;
  s.phases = {Wave("baseline", base, {S, M}, {Pattern::kQuick}, pause),
              Wave("spike", base * 4, {S, M, L}, {Pattern::kBurst}, pause),
              Wave("recovery", base * 3 / 2, {S, M}, {Pattern::kQuick})};
  s.gates = {
      AtLeast("baseline_success_percent", "phase.baseline.success_rate_percent", 95, "%"),
      AtLeast("spike_success_percent", "phase.spike.success_rate_percent", 80, "%"),
      AtLeast("recovery_success_percent", "phase.recovery.success_rate_percent", 90, "%"),
      AtMost("spike_baseline_mean_ratio", "spike_baseline_mean_ratio", 4),
      AtMost("recovery_baseline_mean_ratio", "recovery_baseline_mean_ratio", 1.5),
      AtMost("spike_p95_ms", "phase.spike.p95_ms", 500, "ms"),
  };
  s.derive = [](ScenarioResult& r) {
    const double base = Get(r.metrics, "phase.baseline.mean_ms");
    r.metrics["spike_baseline_mean_ratio"] = TimeRatio(r.metrics, "spike_baseline_mean_ratio",
                                                       Get(r.metrics, "phase.spike.mean_ms"), base);
    r.metrics["recovery_baseline_mean_ratio"] = TimeRatio(
        r.metrics, "recovery_baseline_mean_ratio", Get(r.metrics, "phase.recovery.mean_ms"), base);
    r.tables["per_phase"] = PhaseTable(r, "phase");
  };
  AddIntegrityGates(s.gates);
  return s;
}

// 6. 200 agents against a bounded pool: save, load, update.
ScenarioSpec PoolExhaustion(const Profile& profile) {
  ScenarioSpec s;
  s.name = "redis_connection_pool_exhaustion";
  s.user_id = "load_user_pool";
  PhaseSpec p = Wave("exhaustion", Agents(profile, 200, 100), {M});
  p.work = Work::kSaveLoadUpdate;
  // A pool a tenth the size of the crowd, as a client library's default pool would be.
  p.pool_slots = std::max(1, p.agents / 10);
  p.pool_wait = 1000ms;
  s.phases = {p};
  s.max_duration = 120s;
  s.gates = {
      AtMost("connection_timeout_error_percent", "connection_timeout_error_percent", 30, "%"),
      AtLeast("success_percent", "success_rate_percent", 70, "%"),
      AtLeast("success_percent_floor", "success_rate_percent", 50, "%"),
      AtMost("success_p95_ms", "ok_p95_ms", 1000, "ms"),
      AtMost("wall_s", "wall_s", 120, "s"),
  };
  s.derive = [](ScenarioResult& r) {
    // Outcomes as the original classified them.
    const double n = Get(r.metrics, "executed");
    auto e = [&](const char* code) {
      double v = Get(r.metrics, std::string("errors.") + code);
      return std::isnan(v) ? 0.0 : v;
    };
    const double timeouts = e("timeout"), connection = e("unavailable") + e("pool_exhausted");
    const double exception = e("internal");
    const double failed = Get(r.metrics, "failed") - timeouts - connection - exception;
    r.metrics["connection_timeout_error_percent"] = n > 0 ? 100.0 * (timeouts + connection) / n : 0;
    r.tables["outcomes"] = {{"success", Get(r.metrics, "succeeded")},
                            {"operation_failed", failed},
                            {"timeout", timeouts},
                            {"connection_error", connection},
                            {"exception", exception}};
    r.tables["pool"] = {{"slots", r.spec.phases[0].pool_slots},
                        {"wait_limit_ms", r.spec.phases[0].pool_wait.count()},
                        {"waits", Get(r.metrics, "pool_waits")},
                        {"timeouts", Get(r.metrics, "pool_timeouts")},
                        {"rejections", Get(r.metrics, "pool_rejections")}};
  };
  AddIntegrityGates(s.gates);
  return s;
}

// 7. Waves of critical recovery-point checkpoints, written to the durable tier for real.
ScenarioSpec Checkpoints(const Profile& profile) {
  ScenarioSpec s;
  s.name = "postgres_checkpoint_under_load";
  s.user_id = "load_user_checkpoint";
  const int waves = profile.quick ? 5 : 15;
  const int agents = Agents(profile, 50, 20);
  for (int w = 1; w <= waves; ++w) {
    PhaseSpec p = Wave(fmt::format("wave_{:02}", w), agents, {L}, {Pattern::kSustained},
                       profile.quick ? 500ms : 2000ms);
    p.work = Work::kCriticalCheckpoint;
    s.phases.push_back(p);
  }
  s.gates = {
      AtLeast("success_percent", "success_rate_percent", 90, "%"),
      AtLeast("succeeded", "succeeded", std::ceil(0.9 * waves * agents)),
      AtMost("mean_ms", "mean_ms", 500, "ms"),
      AtMost("p95_ms", "p95_ms", 1000, "ms"),
      AtMost("corruption", "corruption", 0),
  };
  s.derive = [](ScenarioResult& r) { r.tables["per_wave"] = PhaseTable(r, "wave"); };
  AddIntegrityGates(s.gates);
  return s;
}

// 8. Large saves with an extra dataset, RSS watched for growth.
ScenarioSpec Memory(const Profile& profile) {
  ScenarioSpec s;
  s.name = "memory_usage_under_load";
  s.user_id = "load_user_memory";
  PhaseSpec p = Wave("large_saves", Agents(profile, 75, 25), {L});
  p.work = Work::kLargeSaves;
  p.saves_per_agent = 5;
  p.save_interval = profile.quick ? 200ms : 500ms;
  p.extra_strings = 1000;
  s.phases = {p};
  // The original sampled every 2 s, which gives two samples in a 3 s run; "last 3 vs first 3"
  // needs at least six, so we sample at the save interval.
  s.sample_interval = p.save_interval;
  s.gates = {
      AtMost("peak_memory_mb", "peak_memory_mb", 2048, "MB"),
      AtMost("memory_growth_percent", "memory_growth_percent", 100, "%"),
      AtMost("memory_leak_growth_percent", "memory_growth_percent", 50, "%"),
      AtLeast("success_percent", "success_rate_percent", 85, "%"),
  };
  s.derive = [](ScenarioResult& r) {
    const auto& v = r.resources;
    const std::size_t k = std::min<std::size_t>(3, v.size() / 2);
    double first = 0, last = 0;
    for (std::size_t i = 0; i < k; ++i) {
      first += v[i].rss_mb;
      last += v[v.size() - 1 - i].rss_mb;
    }
    // The seed measured a Python process that started at hundreds of MB. Ours starts near
    // 20 MB, where SQLite's page cache filling with this scenario's 7.5 MB of payloads reads
    // as +60 %. So growth is taken against the starting RSS floored at kMemoryFloorMb, a
    // lean agent host's baseline; the raw percentage is reported beside it.
    constexpr double kMemoryFloorMb = 100;
    first /= static_cast<double>(std::max<std::size_t>(k, 1));
    last /= static_cast<double>(std::max<std::size_t>(k, 1));
    r.metrics["memory_growth_mb"] = last - first;
    r.metrics["memory_growth_percent_raw"] =
        k && first > 0 ? 100.0 * (last - first) / first : std::nan("");
    r.metrics["memory_growth_percent"] =
        k ? 100.0 * (last - first) / std::max(first, kMemoryFloorMb) : std::nan("");
    r.metrics["rss_samples"] = static_cast<double>(v.size());
  };
  AddIntegrityGates(s.gates);
  return s;
}

// 9. Six measurements of 60 agents; the SLA per measurement and across them.
ScenarioSpec LatencySla(const Profile& profile) {
  ScenarioSpec s;
  s.name = "latency_sla_compliance";
  s.user_id = "load_user_sla";
  const int agents = Agents(profile, 60, 30);
  for (int i = 1; i <= 6; ++i) {
    s.phases.push_back(Wave(fmt::format("measurement_{}", i), agents, {S, S, M, L},
                            {Pattern::kQuick}, profile.quick ? 500ms : 2000ms));
  }
  s.gates = {
      AtLeast("compliant_measurements_percent", "compliant_measurements_percent", 90, "%"),
      AtLeast("mean_availability_percent", "mean_availability_percent", 99.9, "%"),
      AtMost("median_p50_ms", "median_p50_ms", 50, "ms"),
      AtMost("median_p95_ms", "median_p95_ms", 150, "ms"),
      AtMost("median_p99_ms", "median_p99_ms", 200, "ms"),
      AtMost("p50_stdev_to_median", "p50_stdev_to_median", 0.5),
      AtMost("p95_stdev_to_median", "p95_stdev_to_median", 0.5),
  };
  s.derive = [](ScenarioResult& r) {
    std::vector<double> p50, p95, p99, avail;
    double compliant = 0;
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& p : r.phases) {
      const std::string pre = "phase." + p.name + ".";
      p50.push_back(Get(r.metrics, pre + "p50_ms"));
      p95.push_back(Get(r.metrics, pre + "p95_ms"));
      p99.push_back(Get(r.metrics, pre + "p99_ms"));
      avail.push_back(Get(r.metrics, pre + "availability_percent"));
      const bool ok =
          p50.back() <= 50 && p95.back() <= 150 && p99.back() <= 200 && avail.back() >= 99.9;
      compliant += ok ? 1 : 0;
      rows.push_back({{"measurement", p.name},
                      {"p50_ms", p50.back()},
                      {"p95_ms", p95.back()},
                      {"p99_ms", p99.back()},
                      {"availability_percent", avail.back()},
                      {"compliant", ok}});
    }
    const double n = static_cast<double>(r.phases.size());
    r.metrics["compliant_measurements_percent"] = n ? 100.0 * compliant / n : 0;
    r.metrics["mean_availability_percent"] =
        n ? std::accumulate(avail.begin(), avail.end(), 0.0) / n : 0;
    r.metrics["median_p50_ms"] = Median(p50);
    r.metrics["median_p95_ms"] = Median(p95);
    r.metrics["median_p99_ms"] = Median(p99);
    r.metrics["p50_stdev_to_median_raw"] = Ratio(Stdev(p50), Median(p50));
    r.metrics["p95_stdev_to_median_raw"] = Ratio(Stdev(p95), Median(p95));
    r.metrics["p50_stdev_to_median"] = Ratio(Stdev(p50), Median(p50) + kRatioFloorMs);
    r.metrics["p95_stdev_to_median"] = Ratio(Stdev(p95), Median(p95) + kRatioFloorMs);
    r.tables["per_measurement"] = rows;
  };
  AddIntegrityGates(s.gates);
  return s;
}

PhaseSpec Constant(std::string name, int agents, std::vector<Size> sizes,
                   std::chrono::milliseconds duration) {
  PhaseSpec p = Wave(std::move(name), agents, std::move(sizes));
  p.executor = Executor::kConstant;
  p.duration = duration;
  return p;
}

// How long a fault phase goes on after the fault is healed, for recovery to show: a
// client's longest reconnect wait (1 s), its breaker's cooldown (1 s), and a restarted
// redis-server loading its AOF (2.2 s for 560 MB here) fit with room to spare.
constexpr auto kObserveRecovery = 5000ms;

// A phase that runs faults: every fifth agent writes critical checkpoints, so both
// durability classes are written through them; a call has a short deadline while the fault
// is on, so a blocked one fails and is retried rather than waiting the fault out.
void UnderFaults(PhaseSpec& p, std::vector<FaultEvent> events) {
  p.fault_events = std::move(events);
  p.critical_every = 5;
  p.max_retries = 3;
  p.retry_backoff = 100ms;
  p.op_timeout = 250ms;
}

// 10. Before, during and after real faults in the path to the store: one during phase per
// fault the run can inject (on the tiered store: a reset storm through the proxy, Redis
// killed, PostgreSQL restarted, ClickHouse down), each with the same 30 agents.
ScenarioSpec FailureRecovery(const Profile& profile) {
  ScenarioSpec s;
  s.name = "failure_recovery_under_load";
  s.user_id = "load_user_failure";
  const int agents = Agents(profile, 30, 20);
  const auto steady =
      profile.quick ? 1000ms : 2000ms;  // pre and post: enough units for a stable mean
  const auto pause = profile.quick ? 1000ms : 3000ms;
  const auto lead = 300ms;                           // load before the fault
  const auto hold = profile.quick ? 500ms : 1000ms;  // the fault in force
  PhaseSpec pre = Constant("pre_failure", agents, {M}, steady);
  pre.pause_after = pause;
  s.phases = {pre};
  std::vector<std::string> faults = profile.faults;
  if (faults.empty()) faults.push_back("");  // reported as "no fault"
  for (std::size_t i = 0; i < faults.size(); ++i) {
    PhaseSpec during = Constant(faults[i].empty() ? "during_failure" : "during_" + faults[i],
                                agents, {M}, lead + hold);
    UnderFaults(during, {{faults[i], lead, hold}});
    during.observe = kObserveRecovery;
    during.pause_after = i + 1 == faults.size() ? pause : pause / 2;
    s.phases.push_back(std::move(during));
  }
  s.phases.push_back(Constant("post_recovery", agents, {M}, steady));
  s.gates = {
      AtLeast("faults_injected", "faults_injected", 1),
      AtMost("faults_unrecovered", "faults_unrecovered", 0),
      AtLeast("pre_success_percent", "phase.pre_failure.success_rate_percent", 95, "%"),
      AtLeast("during_success_percent", "during_min_success_percent", 60, "%"),
      AtLeast("post_success_percent", "phase.post_recovery.success_rate_percent", 90, "%"),
      AtMost("post_pre_mean_ratio", "post_pre_mean_ratio", 1.3),
      AtMost("mean_retries", "during_max_mean_retries", 2),
      DataGate("lost_critical_writes"),
  };
  s.derive = [](ScenarioResult& r) {
    r.metrics["post_pre_mean_ratio"] =
        TimeRatio(r.metrics, "post_pre_mean_ratio", Get(r.metrics, "phase.post_recovery.mean_ms"),
                  Get(r.metrics, "phase.pre_failure.mean_ms"));
    // The worst during phase holds the gate.
    double success = INFINITY, retries = 0;
    for (const auto& p : r.phases) {
      if (p.name.rfind("during_", 0) != 0) continue;
      success = std::min(success, Get(r.metrics, "phase." + p.name + ".success_rate_percent"));
      retries = std::max(retries, Get(r.metrics, "phase." + p.name + ".mean_retries"));
    }
    r.metrics["during_min_success_percent"] = std::isfinite(success) ? success : 0;
    r.metrics["during_max_mean_retries"] = retries;
    r.tables["per_phase"] = PhaseTable(r, "phase");
    r.tables["faults"] = Faults(r.faults);  // the rows the report keeps for merging, one per fault
  };
  AddIntegrityGates(s.gates);
  return s;
}

}  // namespace

std::vector<FaultEvent> ChaosSchedule(const std::vector<std::string>& faults,
                                      std::chrono::milliseconds duration, uint64_t seed) {
  std::vector<FaultEvent> events;
  if (faults.empty()) return events;
  // splitmix64: the same seed gives the same schedule on every machine and compiler.
  uint64_t state = seed ^ 0x6368616f73ull;  // "chaos"
  auto next = [&state] {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  };
  auto between = [&next](int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(next() % static_cast<uint64_t>(hi - lo + 1));
  };
  // Load alone first; then fault after fault, each held 0.5..2.5 s, then 12..20 s of load
  // (a kill and a restart take 2 to 7 s here, and each recovery is watched 10 s); the last
  // one healed at least 6 s before the end.
  int64_t at = 2000;
  while (true) {
    const int64_t hold = between(500, 2500);
    if (at + hold > duration.count() - 6000) break;
    events.push_back({faults[next() % faults.size()], std::chrono::milliseconds(at),
                      std::chrono::milliseconds(hold)});
    at += hold + between(12000, 20000);
  }
  return events;
}

ScenarioSpec ChaosScenario(const Profile& profile, uint64_t seed) {
  ScenarioSpec s;
  s.name = "chaos";
  s.description =
      "a seeded random schedule of the run's faults under mixed load, then a full ledger check";
  s.user_id = "load_user_chaos";
  const auto duration =
      std::chrono::duration_cast<std::chrono::milliseconds>(profile.duration.value_or(60s));
  PhaseSpec p = Constant("chaos", Agents(profile, 30, 20), {S, M, L}, duration);
  p.work = Work::kSaveLoadUpdate;  // save, read back, update at the expected version
  p.delete_every = 5;              // and every fifth agent deletes its run: it must stay deleted
  UnderFaults(p, ChaosSchedule(profile.faults, duration, seed));
  // Chaos keeps agents writing through back-to-back faults: a PostgreSQL restarted after an
  // immediate shutdown once kept failing saves for 6.5 s under this load, so each recovery
  // gets 10 s here.
  p.observe = 10s;
  s.phases = {p};
  s.max_duration = std::chrono::duration_cast<std::chrono::seconds>(duration) +
                   15min;  // the faults' own healing time on top
  s.gates = {
      AtLeast("faults_injected", "faults_injected", 1),
      AtMost("faults_unrecovered", "faults_unrecovered", 0),
      AtLeast("success_percent", "success_rate_percent", 60, "%"),
      DataGate("lost_critical_writes"),
  };
  s.derive = [](ScenarioResult& r) { r.tables["faults"] = Faults(r.faults); };
  AddIntegrityGates(s.gates);
  return s;
}

const std::vector<ScenarioEntry>& Catalogue() {
  static const std::vector<ScenarioEntry> catalogue = {
      {"100_concurrent_agents_baseline",
       "100 agents at once, each save -> load -> verify; P50/P99, throughput, memory", Baseline},
      {"mixed_workload_read_write_patterns",
       "50 prepopulated states, then 30 reads and 20 writes shuffled together", MixedWorkload},
      {"state_size_scalability",
       "small, medium, large, enterprise states, 25 agents each; P95 per size and ratios",
       StateSizes},
      {"sustained_load_24h_simulation",
       "24 compressed hours of 10-agent waves (--duration for a real soak); drift, leaks",
       Sustained,
       false,
       {"slow"}},
      {"burst_traffic_handling",
       "baseline 20 -> spike 80 -> recovery 30 agents; degradation and recovery", Burst},
      {"redis_connection_pool_exhaustion",
       "200 agents save/load/update through a bounded pool; waits, timeouts, rejections",
       PoolExhaustion},
      {"postgres_checkpoint_under_load",
       "15 waves of 50 critical recovery-point checkpoints to the durable tier", Checkpoints},
      {"memory_usage_under_load",
       "75 agents x 5 large saves with a 1000-string dataset; RSS peak and growth", Memory},
      {"latency_sla_compliance",
       "6 measurements of 60 agents; P50/P95/P99 and availability per measurement", LatencySla},
      {"failure_recovery_under_load",
       "30 agents before, during (real faults, retries) and after a failure",
       FailureRecovery,
       /*injects_faults=*/true,
       {"faults"}},
  };
  return catalogue;
}

std::vector<std::string> KnownTags() {
  std::set<std::string> tags;
  for (const auto& e : Catalogue()) tags.insert(e.tags.begin(), e.tags.end());
  return {tags.begin(), tags.end()};
}

const ScenarioEntry* FindScenario(const std::string& name) {
  for (const auto& e : Catalogue()) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

}  // namespace agentstate::load
