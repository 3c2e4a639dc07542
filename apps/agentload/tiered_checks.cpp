#include "tiered_checks.hpp"

namespace agentstate::agentload {

using load::Compare;

namespace {
constexpr const char* kDropped = "write_behind_dropped";

double Value(const StoreStats& stats, const char* key) {
  auto it = stats.values.find(key);
  return it == stats.values.end() ? 0 : it->second;
}
}  // namespace

std::map<std::string, double> TieredChecks::Baseline() {
  return {{kDropped, Value(store_.Stats(), kDropped)}};
}

Awaitable<void> TieredChecks::Verify(const load::Ledger& ledger,
                                     const std::map<std::string, double>& baseline,
                                     load::ScenarioSpec& spec, load::ScenarioResult& result) {
  // The durable tier on its own, once the write-behind queue is empty: every acknowledged
  // write must be there (a flush failure shows as lost writes, not as a skipped check).
  (void)co_await store_.Flush(DeadlineIn(spec.op_timeout * 10));
  const auto before = baseline.find(kDropped);
  result.write_behind_dropped = static_cast<uint64_t>(
      Value(store_.Stats(), kDropped) - (before == baseline.end() ? 0 : before->second));
  spec.gates.push_back(load::DataGate(kDropped));
  result.durable_ledger = co_await ledger.Verify(store_.durable(), spec.op_timeout, 64);
  spec.gates.push_back(load::DataGate("durable_lost_writes"));
  spec.gates.push_back(load::DataGate("durable_resurrected_runs"));
  Analytics* sink = store_.analytics();
  if (!sink) co_return;
  // Every operation the store performed is an event on the server, or a counted drop.
  // (The session's figures are cumulative over the run's scenarios.)
  Status flushed = sink->Flush();
  auto counts = sink->EventsByOp();
  const auto a = sink->stats();
  load::AnalyticsCheck check;
  check.recorded = a.recorded;
  check.dropped = a.dropped_events;
  check.in_doubt = a.in_doubt_events;
  if (counts) {
    for (const auto& [op, n] : *counts) check.on_server += n;
  }
  check.reachable = flushed.ok() && counts.has_value();
  if (auto p99 = sink->P99MsByOp()) check.server_p99_ms = *p99;
  if (auto rate = sink->OpsPerMinuteByOp()) check.server_ops_per_min = *rate;
  result.analytics = check;
  spec.gates.push_back(load::DataGate("analytics_missing_events"));
  spec.gates.push_back(load::DataGate("analytics_unexplained_events"));
}

}  // namespace agentstate::agentload
