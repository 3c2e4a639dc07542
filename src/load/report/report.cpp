#include "load/report/report.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <fstream>

#include "load/report/durability.hpp"
#include "load/report/merge.hpp"

namespace agentstate::load {
namespace {

using nlohmann::json;

std::string IsoUtc(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

double Get(const Metrics& m, const std::string& k) {
  auto it = m.find(k);
  return it == m.end() ? 0.0 : it->second;
}

json Gates(const std::vector<GateResult>& gates) {
  json arr = json::array();
  for (const auto& g : gates) {
    arr.push_back({{"name", g.spec.name},
                   {"metric", g.spec.metric},
                   {"comparison", g.spec.compare == Compare::kAtMost ? "<=" : ">="},
                   {"limit", g.spec.limit},
                   {"unit", g.spec.unit},
                   {"measured", g.measured_present ? json(g.measured) : json(nullptr)},
                   {"passed", g.passed}});
  }
  return arr;
}

}  // namespace

json ScenarioReport(const ScenarioResult& r, const RunInfo& run) {
  const Metrics& m = r.metrics;
  json phases = json::array();
  for (const auto& p : r.phases) {
    nlohmann::json kinds = nlohmann::json::object();
    for (const auto& [kname, k] : p.kinds) {
      kinds[kname] = {
          {"executed", k.executed}, {"succeeded", k.succeeded}, {"latency", k.latency.Summary()}};
    }
    nlohmann::json phase = {{"name", p.name},
                            {"executor", Name(p.executor)},
                            {"kinds", kinds},
                            {"retries", p.retries},
                            {"replayed_saves", p.replayed_saves},
                            {"ok_latency", p.ok_latency.Summary()},
                            {"start_s", p.start_s},
                            {"end_s", p.end_s},
                            {"executed", p.executed},
                            {"succeeded", p.succeeded},
                            {"failed", p.failed},
                            {"corrupted", p.corrupted},
                            {"wall_s", p.end_s - p.start_s},
                            {"errors", p.errors},
                            {"latency", p.latency.Summary()},
                            {"save", p.save.Summary()},
                            {"load", p.load.Summary()}};
    if (p.pool_waits + p.pool_timeouts + p.pool_rejections > 0) {
      phase["pool"] = {{"waits", p.pool_waits},
                       {"timeouts", p.pool_timeouts},
                       {"rejections", p.pool_rejections},
                       {"wait", p.pool_wait.Summary()}};
    }
    if (p.executor == Executor::kArrivals) {
      phase["uncorrected_latency"] = p.uncorrected.Summary();
      phase["start_lag"] = p.start_lag.Summary();
      phase["late_starts"] = p.late_starts;
      phase["dropped_starts"] = p.dropped_starts;
    }
    phases.push_back(std::move(phase));
  }
  json series = json::array();
  json store_series = json::object();  // one column per store figure, aligned with `samples`
  for (std::size_t i = 0; i < r.resources.size(); ++i) {
    const auto& s = r.resources[i];
    series.push_back({s.t_s, s.rss_mb, s.cpu_percent, s.thread_cpu_percent});
    for (const auto& [k, v] : s.store) {
      if (!store_series.contains(k)) store_series[k] = json::array();
      while (store_series[k].size() < i) store_series[k].push_back(nullptr);
      store_series[k].push_back(v);
    }
  }
  const Trend trend = RssTrend(r.resources);
  return {
      {"test_name", r.spec.name},
      {"description", r.spec.description},
      {"timestamp", r.started_unix},
      {"generated_at", IsoUtc(std::time(nullptr))},
      {"passed", r.passed() && !r.invalid},
      {"invalid", r.invalid},
      {"invalid_reason", r.invalid_reason},
      {"metrics",
       {{"agents",
         {{"executed", Get(m, "executed")},
          {"succeeded", Get(m, "succeeded")},
          {"failed", Get(m, "failed")},
          {"success_rate", Get(m, "success_rate_percent")}}},
        {"performance",
         {{"avg_latency_ms", Get(m, "mean_ms")},
          {"p50_latency_ms", Get(m, "p50_ms")},
          {"p95_latency_ms", Get(m, "p95_ms")},
          {"p99_latency_ms", Get(m, "p99_ms")},
          {"max_latency_ms", Get(m, "max_ms")},
          {"throughput_agents_per_s", Get(m, "throughput_agents_per_s")}}},
        {"resources",
         {{"peak_memory_mb", Get(m, "peak_memory_mb")},
          {"avg_cpu_percent", Get(m, "avg_cpu_percent")},
          // The embedded store has no client connections; the tiered store fills these.
          {"redis_connections", nullptr},
          {"postgres_connections", nullptr}}},
        {"sla_compliance",
         {{"availability_percent", Get(m, "availability_percent")},
          {"error_rate_percent", Get(m, "error_rate_percent")},
          {"sla_violations", Get(m, "sla_violations")},
          {"data_integrity_issues", Get(m, "data_integrity_issues")}}}}},
      {"raw_metrics", m},
      {"gates", Gates(r.gates)},
      {"raw", RawJson(r)},
      {"additional_data",
       {{"store", run.store},
        {"durability", run.durability.empty() ? DurabilityContract(run.store) : run.durability},
        {"profile", run.profile},
        {"seed", run.seed},
        {"agents_override", run.agents},
        {"duration_s", run.duration_s},
        {"shard", fmt::format("{}/{}", run.shard_index, run.shard_count)},
        {"merged_shards", run.merged_shards},
        {"agentstate_version", run.version},
        {"wall_s", r.wall_s},
        {"truncated", r.truncated},
        {"interrupted", r.interrupted},
        {"phases", phases},
        {"latency_histogram", r.latency.Summary()},
        {"time_series", SeriesJson(r.series, std::chrono::seconds(1))},
        // A run shorter than 10 s: its finer rows (1, 10 or 100 ms), which index.html charts.
        {"fine_series",
         r.fine_series.empty() ? json(nullptr) : SeriesJson(r.fine_series, r.fine_width)},
        {"ledger", LedgerJson(r.ledger)},
        {"ledger_durable_tier",
         r.durable_ledger ? LedgerJson(*r.durable_ledger) : nlohmann::json(nullptr)},
        {"resources",
         {{"columns", {"t_s", "rss_mb", "cpu_percent", "harness_thread_cpu_percent"}},
          {"samples", series},
          {"store", store_series},
          {"rss_trend_mb_per_hour", trend.mb_per_hour},
          {"rss_trend_stderr_mb_per_hour", trend.stderr_mb_per_hour}}},
        {"faults", Faults(r.faults)},
        {"stopped_early", r.stopped_early},
        {"first_attempt_failed_gates", r.first_attempt_failed},
        {"tables", r.tables}}},
  };
}

json RunSummary(const std::vector<ScenarioResult>& results, const RunInfo& run) {
  json scenarios = json::array();
  bool all = true;
  for (const auto& r : results) {
    all = all && r.passed() && !r.invalid;
    json failed = json::array();
    for (const auto& g : r.gates) {
      if (!g.passed) failed.push_back(g.Describe());
    }
    scenarios.push_back({{"test_name", r.spec.name},
                         {"passed", r.passed() && !r.invalid},
                         {"invalid", r.invalid},
                         {"invalid_reason", r.invalid_reason},
                         {"report", fmt::format("{}_{}.json", r.spec.name, r.started_unix)},
                         {"wall_s", r.wall_s},
                         {"failed_gates", failed},
                         {"first_attempt_failed_gates", r.first_attempt_failed},
                         {"gates", Gates(r.gates)}});
  }
  return {{"generated_at", IsoUtc(std::time(nullptr))},
          {"store", run.store},
          {"durability", run.durability.empty() ? DurabilityContract(run.store) : run.durability},
          {"shard", fmt::format("{}/{}", run.shard_index, run.shard_count)},
          {"merged_shards", run.merged_shards},
          {"interrupted", run.interrupted},
          {"profile", run.profile},
          {"seed", run.seed},
          {"agentstate_version", run.version},
          {"passed", all},
          {"scenarios", scenarios}};
}

std::string JUnitXml(const std::vector<ScenarioResult>& results) {
  std::size_t tests = 0, failures = 0;
  std::string suites;
  for (const auto& r : results) {
    std::size_t suite_failures = 0;
    std::string cases;
    for (const auto& g : r.gates) {
      ++tests;
      cases += fmt::format("    <testcase classname=\"agentload.{}\" name=\"{}\">",
                           EscapeMarkup(r.spec.name), EscapeMarkup(g.spec.name));
      if (!g.passed) {
        ++suite_failures;
        cases += fmt::format("<failure message=\"{}\"/>", EscapeMarkup(g.Describe()));
      }
      cases += "</testcase>\n";
    }
    if (r.invalid) {
      ++tests;
      ++suite_failures;
      cases += fmt::format(
          "    <testcase classname=\"agentload.{}\" name=\"valid_measurement\"><failure "
          "message=\"INVALID: {}\"/></testcase>\n",
          EscapeMarkup(r.spec.name), EscapeMarkup(r.invalid_reason));
    }
    failures += suite_failures;
    suites += fmt::format(
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" time=\"{:.3f}\">\n{}  "
        "</testsuite>\n",
        EscapeMarkup(r.spec.name), r.gates.size() + (r.invalid ? 1 : 0), suite_failures, r.wall_s,
        cases);
  }
  return fmt::format(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"agentload\" tests=\"{}\" "
      "failures=\"{}\">\n{}</testsuites>\n",
      tests, failures, suites);
}

std::string FaultTableText(const std::vector<FaultWindow>& faults) {
  if (faults.empty()) return "";
  std::string out = fmt::format(
      "       {:<20} {:>8} {:>8} {:>9} {:>10} {:>9} {:>7} {:>7} {:>7}  {}\n", "fault", "inject",
      "heal", "detect", "recover", "recovered", "units", "failed", "budget", "lost auto/critical");
  auto ms = [](double v) { return fmt::format("{:.0f} ms", v); };
  for (const auto& f : faults) {
    const std::string name = f.name.empty() ? f.fault : f.name;
    if (!f.injected) {
      out += fmt::format("       {:<20} not injected: {}\n", name, f.error);
      continue;
    }
    out += fmt::format(
        "       {:<20} {:>8} {:>8} {:>9} {:>10} {:>9} {:>7} {:>7} {:>6.0f}%  {}/{}{}\n", name,
        ms(f.inject_ms), ms(f.heal_ms), f.detect_ms ? ms(*f.detect_ms) : "unseen", ms(f.recover_ms),
        f.recovered ? "yes" : "NO", f.units, f.failed_units, f.budget_spent_percent, f.lost_auto,
        f.lost_critical, f.error.empty() ? "" : "  " + f.error);
  }
  return out;
}

std::string ConsoleSummary(const std::vector<ScenarioResult>& results, bool all_gates) {
  std::string out;
  std::size_t passed = 0;
  for (const auto& r : results) {
    const Metrics& m = r.metrics;
    passed += r.passed() && !r.invalid ? 1 : 0;
    std::size_t failed = 0;
    for (const auto& g : r.gates) failed += g.passed ? 0 : 1;
    out += fmt::format(
        "{:<4} {:<36} {:>5.0f}/{:<5.0f} ok  p50 {:>7.2f} ms  p99 {:>7.2f} ms  {:>8.1f} agents/s  "
        "{:>5.1f}s  {}\n",
        r.invalid    ? "INV"
        : r.passed() ? "PASS"
                     : "FAIL",
        r.spec.name, Get(m, "succeeded"), Get(m, "executed"), Get(m, "p50_ms"), Get(m, "p99_ms"),
        Get(m, "throughput_agents_per_s"), r.wall_s,
        failed ? fmt::format("{} of {} gates failed", failed, r.gates.size())
               : fmt::format("{} gates held", r.gates.size()));
    if (r.invalid)
      out +=
          fmt::format("       INVALID {}: the numbers above measure the generator, not the store\n",
                      r.invalid_reason);
    if (r.interrupted)
      out +=
          "       interrupted: stopped before its end; the figures are what it measured until "
          "then\n";
    if (!r.first_attempt_failed.empty()) {
      out += fmt::format(
          "       rerun: the first attempt missed {}; the figures are the confirming run's\n",
          fmt::join(r.first_attempt_failed, "; "));
    }
    for (const auto& g : r.gates) {
      if (all_gates || !g.passed)
        out += fmt::format("       {} {}\n", g.passed ? "ok  " : "FAIL", g.Describe());
    }
    out += FaultTableText(r.faults);
  }
  out += fmt::format("{} of {} scenarios passed\n", passed, results.size());
  return out;
}

}  // namespace agentstate::load
