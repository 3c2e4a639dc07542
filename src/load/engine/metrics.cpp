// From measurements to verdicts: the metrics every scenario has, and FinishScenario.
#include <fmt/format.h>

#include <numeric>

#include "load/engine/run_state.hpp"

namespace agentstate::load {
namespace {

using detail::Ms;

void AddLatencyMetrics(Metrics& m, const std::string& prefix, const Histogram& h) {
  m[prefix + "mean_ms"] = h.Mean() / 1000.0;
  m[prefix + "p50_ms"] = Ms(h.ValueAtPercentile(50));
  m[prefix + "p95_ms"] = Ms(h.ValueAtPercentile(95));
  m[prefix + "p99_ms"] = Ms(h.ValueAtPercentile(99));
  m[prefix + "max_ms"] = Ms(h.Max());
}

void AddCounts(Metrics& m, const std::string& prefix, uint64_t executed, uint64_t succeeded,
               uint64_t failed, double wall_s) {
  const double n = static_cast<double>(executed);
  m[prefix + "executed"] = n;
  m[prefix + "succeeded"] = static_cast<double>(succeeded);
  m[prefix + "failed"] = static_cast<double>(failed);
  m[prefix + "success_rate_percent"] = executed ? 100.0 * static_cast<double>(succeeded) / n : 0;
  m[prefix + "availability_percent"] = m[prefix + "success_rate_percent"];
  m[prefix + "error_rate_percent"] = executed ? 100.0 * static_cast<double>(failed) / n : 0;
  m[prefix + "throughput_agents_per_s"] = wall_s > 0 ? n / wall_s : 0;
}

}  // namespace

Metrics BaseMetrics(const ScenarioResult& r) {
  Metrics m;
  uint64_t executed = 0, succeeded = 0, failed = 0, corrupted = 0, late = 0, dropped = 0;
  uint64_t retries = 0, pool_waits = 0, pool_timeouts = 0, pool_rejections = 0;
  std::map<std::string, uint64_t> errors;
  double wall = 0;
  Histogram lag, ok;
  for (const auto& p : r.phases) {
    executed += p.executed;
    succeeded += p.succeeded;
    failed += p.failed;
    corrupted += p.corrupted;
    late += p.late_starts;
    dropped += p.dropped_starts;
    wall += p.end_s - p.start_s;
    lag.Merge(p.start_lag);
    // Per phase, for gates such as "phase.spike.p95_ms".
    const std::string prefix = "phase." + p.name + ".";
    AddCounts(m, prefix, p.executed, p.succeeded, p.failed, p.end_s - p.start_s);
    AddLatencyMetrics(m, prefix, p.latency);
    AddLatencyMetrics(m, prefix + "ok_", p.ok_latency);
    m[prefix + "retries"] = static_cast<double>(p.retries);
    m[prefix + "mean_retries"] =
        p.executed ? static_cast<double>(p.retries) / static_cast<double>(p.executed) : 0;
    if (p.retries > 0) m[prefix + "replayed_saves"] = static_cast<double>(p.replayed_saves);
    for (const auto& [kind, k] : p.kinds) {
      const std::string kp = prefix + kind + ".";
      m[kp + "executed"] = static_cast<double>(k.executed);
      m[kp + "succeeded"] = static_cast<double>(k.succeeded);
      AddLatencyMetrics(m, kp, k.latency);
    }
    ok.Merge(p.ok_latency);
    retries += p.retries;
    pool_waits += p.pool_waits;
    pool_timeouts += p.pool_timeouts;
    pool_rejections += p.pool_rejections;
    for (const auto& [code, n] : p.errors) errors[code] += n;
    if (p.executor == Executor::kArrivals)
      AddLatencyMetrics(m, prefix + "uncorrected_", p.uncorrected);
  }
  AddCounts(m, "", executed, succeeded, failed, wall);
  AddLatencyMetrics(m, "", r.latency);
  AddLatencyMetrics(m, "ok_", ok);
  m["retries"] = static_cast<double>(retries);
  m["mean_retries"] = executed ? static_cast<double>(retries) / static_cast<double>(executed) : 0;
  m["pool_waits"] = static_cast<double>(pool_waits);
  m["pool_timeouts"] = static_cast<double>(pool_timeouts);
  m["pool_rejections"] = static_cast<double>(pool_rejections);
  for (const auto& [code, n] : errors) m["errors." + code] = static_cast<double>(n);
  double injected = 0, unrecovered = 0;
  for (const auto& f : r.faults) {
    injected += f.injected ? 1 : 0;
    unrecovered += f.injected && !f.recovered ? 1 : 0;
  }
  m["faults_injected"] = injected;
  m["faults_unrecovered"] = unrecovered;
  // Lost acknowledged writes per durability class (through the store; a tiered store's
  // durable tier is gated on its own as durable_lost_writes).
  m["lost_auto_writes"] = static_cast<double>(r.ledger.lost_auto);
  m["lost_critical_writes"] = static_cast<double>(r.ledger.lost_durable_class);

  m["sla_violations"] = static_cast<double>(r.latency.CountAbove(200000));
  m["peak_memory_mb"] = r.peak_rss_mb;
  m["avg_cpu_percent"] = r.avg_cpu_percent;
  m["corruption"] = static_cast<double>(corrupted + r.ledger.corrupted);
  m["lost_writes"] = static_cast<double>(r.ledger.lost);
  m["phantom_writes"] = static_cast<double>(r.ledger.phantom);
  m["out_of_order_writes"] = static_cast<double>(r.ledger.out_of_order);
  m["resurrected_runs"] = static_cast<double>(r.ledger.resurrected);
  m["data_integrity_issues"] =
      m["corruption"] + static_cast<double>(r.ledger.lost + r.ledger.phantom +
                                            r.ledger.out_of_order + r.ledger.resurrected);
  m["late_starts"] = static_cast<double>(late);
  m["dropped_starts"] = static_cast<double>(dropped);
  m["generator_lag_p99_ms"] = Ms(lag.ValueAtPercentile(99));
  const Trend trend = RssTrend(r.resources);
  m["memory_slope_mb_per_hour"] = trend.mb_per_hour;
  return m;
}

void FinishScenario(ScenarioResult& result) {
  result.metrics = BaseMetrics(result);
  if (result.write_behind_dropped) {
    result.metrics["write_behind_dropped"] = static_cast<double>(*result.write_behind_dropped);
  }
  if (result.durable_ledger) {
    result.metrics["durable_lost_writes"] = static_cast<double>(result.durable_ledger->lost);
    result.metrics["durable_corrupted"] = static_cast<double>(result.durable_ledger->corrupted);
    result.metrics["durable_resurrected_runs"] =
        static_cast<double>(result.durable_ledger->resurrected);
    // Every acknowledged critical write must be in the durable tier, whatever the hot one says.
    result.metrics["lost_critical_writes"] =
        std::max(result.metrics["lost_critical_writes"],
                 static_cast<double>(result.durable_ledger->lost_durable_class));
  }
  if (result.analytics && result.analytics->reachable) {
    const auto& a = *result.analytics;
    // Events neither on the server nor counted as dropped; and events on the server beyond
    // the recorded minus the dropped that no insert in doubt explains (a duplicate, or a
    // drop that in fact landed, needs one).
    const double expected = static_cast<double>(a.recorded) - static_cast<double>(a.dropped);
    const double on_server = static_cast<double>(a.on_server);
    result.metrics["analytics_missing_events"] = expected - on_server;
    result.metrics["analytics_unexplained_events"] =
        std::max(0.0, on_server - expected - static_cast<double>(a.in_doubt));
    result.metrics["analytics_in_doubt_events"] = static_cast<double>(a.in_doubt);
    result.metrics["analytics_dropped_events"] = static_cast<double>(a.dropped);
    for (const auto& [op, v] : a.server_p99_ms) result.metrics["analytics_server_p99_ms_" + op] = v;
    for (const auto& [op, v] : a.server_ops_per_min)
      result.metrics["analytics_server_ops_per_min_" + op] = v;
  }
  result.metrics["wall_s"] = result.wall_s;
  result.metrics["harness_thread_cpu_percent"] = result.harness_thread_cpu_percent;
  result.metrics["harness_thread_busy_percent"] = result.harness_thread_busy_percent;
  // INVALID: the generator, not the store, set the pace.
  const double lag = result.metrics["generator_lag_p99_ms"];
  const double max_lag = static_cast<double>(result.spec.max_generator_lag.count());
  if (lag > max_lag) {
    result.invalid = true;
    result.invalid_reason =
        fmt::format("generator schedule lag p99 {:.1f} ms > {:.0f} ms", lag, max_lag);
  } else if (result.resources.size() >= 3 && std::max(result.harness_thread_cpu_percent,
                                                      result.harness_thread_busy_percent) >= 95) {
    // Busy, not CPU alone: beside a compile the never-idle harness thread got 60 % of a core
    // and looked healthy; its run time plus run-queue wait is what shows it never rested.
    result.invalid = true;
    result.invalid_reason =
        fmt::format("the harness thread was saturated ({:.0f} % busy, {:.0f} % of a core)",
                    result.harness_thread_busy_percent, result.harness_thread_cpu_percent);
  }
  if (result.spec.derive) result.spec.derive(result);
  result.gates = EvaluateGates(result.spec.gates, result.metrics, result.windows);
}

}  // namespace agentstate::load
