#include "load/report/merge.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

#include "load/report/json_read.hpp"

namespace agentstate::load {
namespace {

using nlohmann::json;

json Kinds(const PhaseResult& p) {
  json kinds = json::object();
  for (const auto& [name, k] : p.kinds) {
    kinds[name] = {
        {"executed", k.executed}, {"succeeded", k.succeeded}, {"latency", k.latency.ToJson()}};
  }
  return kinds;
}

json PhaseRaw(const PhaseResult& p) {
  return {{"name", p.name},
          {"executor", Name(p.executor)},
          {"start_s", p.start_s},
          {"end_s", p.end_s},
          {"executed", p.executed},
          {"succeeded", p.succeeded},
          {"failed", p.failed},
          {"corrupted", p.corrupted},
          {"late_starts", p.late_starts},
          {"dropped_starts", p.dropped_starts},
          {"errors", p.errors},
          {"latency", p.latency.ToJson()},
          {"uncorrected", p.uncorrected.ToJson()},
          {"save", p.save.ToJson()},
          {"load", p.load.ToJson()},
          {"start_lag", p.start_lag.ToJson()},
          {"ok_latency", p.ok_latency.ToJson()},
          {"retries", p.retries},
          {"replayed_saves", p.replayed_saves},
          {"pool_waits", p.pool_waits},
          {"pool_timeouts", p.pool_timeouts},
          {"pool_rejections", p.pool_rejections},
          {"pool_wait", p.pool_wait.ToJson()},
          {"kinds", Kinds(p)}};
}

Result<Histogram> Hist(const json& j) {
  auto s = Histogram::SnapshotFromJson(j);
  if (!s) return Error(s.error());
  return Histogram::FromSnapshot(*s);
}

IntervalRow RowFromJson(const json& r) {
  IntervalRow row;
  row.t_s = r.at(0).get<double>();
  row.count = r.at(1).get<uint64_t>();
  row.errors = r.at(2).get<uint64_t>();
  row.mean_ms = r.at(3).get<double>();
  row.p50_ms = r.at(4).get<double>();
  row.p95_ms = r.at(5).get<double>();
  row.p99_ms = r.at(6).get<double>();
  row.max_ms = r.at(7).get<double>();
  return row;
}

}  // namespace

json Faults(const std::vector<FaultWindow>& faults) {
  json out = json::array();
  for (const auto& f : faults) {
    out.push_back({{"phase", f.phase},
                   {"name", f.name},
                   {"fault", f.fault},
                   {"start_s", f.start_s},
                   {"end_s", f.end_s},
                   {"until_s", f.until_s},
                   {"injected", f.injected},
                   {"error", f.error},
                   {"inject_ms", f.inject_ms},
                   {"heal_ms", f.heal_ms},
                   {"detect_ms", f.detect_ms ? json(*f.detect_ms) : json(nullptr)},
                   {"recover_ms", f.recover_ms},
                   {"recovered", f.recovered},
                   {"units", f.units},
                   {"failed_units", f.failed_units},
                   {"error_budget_spent_percent", f.budget_spent_percent},
                   {"lost_auto_writes", f.lost_auto},
                   {"lost_critical_writes", f.lost_critical}});
  }
  return out;
}

json LedgerJson(const LedgerVerdict& v) {
  return {{"runs_checked", v.runs_checked},     {"acked_writes", v.acked_writes},
          {"unknown_writes", v.unknown_writes}, {"lost", v.lost},
          {"corrupted", v.corrupted},           {"phantom", v.phantom},
          {"out_of_order", v.out_of_order},     {"unverifiable", v.unverifiable},
          {"resurrected", v.resurrected}};
}

json RawJson(const ScenarioResult& r) {
  json phases = json::array();
  for (const auto& p : r.phases) phases.push_back(PhaseRaw(p));
  json windows = json::object();
  for (const auto& [ms, hists] : r.window_histograms) {
    json hs = json::array();
    for (const auto& h : hists) hs.push_back(Histogram::ToJson(h));
    json errors = json::array();
    for (const auto& row : r.windows.at(ms)) errors.push_back(row.errors);
    windows[std::to_string(ms)] = {{"histograms", std::move(hs)}, {"errors", std::move(errors)}};
  }
  json limits = json::object();
  for (const auto& g : r.spec.gates) limits[g.name] = g.limit;
  return {{"format", 1},
          {"scenario_version", ScenarioVersion(r.spec)},
          {"started_unix", r.started_unix},
          {"wall_s", r.wall_s},
          {"truncated", r.truncated},
          {"invalid", r.invalid},
          {"invalid_reason", r.invalid_reason},
          {"peak_rss_mb", r.peak_rss_mb},
          {"avg_cpu_percent", r.avg_cpu_percent},
          {"harness_thread_cpu_percent", r.harness_thread_cpu_percent},
          {"harness_thread_busy_percent", r.harness_thread_busy_percent},
          {"ledger", LedgerJson(r.ledger)},
          {"phases", std::move(phases)},
          {"windows", std::move(windows)},
          {"faults", Faults(r.faults)},
          {"stopped_early", r.stopped_early},
          {"gate_limits", std::move(limits)}};
}

Result<ScenarioResult> ResultFromReport(const json& report, const ScenarioSpec& spec) {
  ScenarioResult r;
  r.spec = spec;
  try {
    const json& raw = report.at("raw");
    if (raw.at("format").get<int>() != 1)
      return Error(StatusCode::kInvalidArgument, "unknown report format");
    const std::string version = raw.at("scenario_version").get<std::string>();
    if (version != ScenarioVersion(spec)) {
      return Error(
          StatusCode::kInvalidArgument,
          fmt::format(
              "report of {} was written by another version of the scenario ({} here, {} in the "
              "report); merge reports of one agentload version and profile",
              spec.name, ScenarioVersion(spec), version));
    }
    for (auto& g : r.spec.gates) {
      if (raw.at("gate_limits").contains(g.name))
        g.limit = raw.at("gate_limits").at(g.name).get<double>();
    }
    r.started_unix = raw.at("started_unix").get<int64_t>();
    r.wall_s = raw.at("wall_s").get<double>();
    r.truncated = raw.at("truncated").get<bool>();
    r.invalid = raw.at("invalid").get<bool>();
    r.invalid_reason = raw.at("invalid_reason").get<std::string>();
    r.peak_rss_mb = raw.at("peak_rss_mb").get<double>();
    r.avg_cpu_percent = raw.at("avg_cpu_percent").get<double>();
    r.harness_thread_cpu_percent = raw.at("harness_thread_cpu_percent").get<double>();
    r.harness_thread_busy_percent =
        raw.value("harness_thread_busy_percent", r.harness_thread_cpu_percent);
    const json& l = raw.at("ledger");
    r.ledger = {l.at("runs_checked"), l.at("acked_writes"), l.at("unknown_writes"),
                l.at("lost"),         l.at("corrupted"),    l.at("phantom"),
                l.at("out_of_order"), l.at("unverifiable"), l.value("resurrected", uint64_t{0})};
    for (const json& pj : raw.at("phases")) {
      PhaseResult& p = r.phases.emplace_back();
      p.name = pj.at("name").get<std::string>();
      const std::string ex = pj.at("executor").get<std::string>();
      p.executor = ex == "arrivals"   ? Executor::kArrivals
                   : ex == "constant" ? Executor::kConstant
                                      : Executor::kWave;
      p.start_s = pj.at("start_s").get<double>();
      p.end_s = pj.at("end_s").get<double>();
      p.executed = pj.at("executed").get<uint64_t>();
      p.succeeded = pj.at("succeeded").get<uint64_t>();
      p.failed = pj.at("failed").get<uint64_t>();
      p.corrupted = pj.at("corrupted").get<uint64_t>();
      p.late_starts = pj.at("late_starts").get<uint64_t>();
      p.dropped_starts = pj.at("dropped_starts").get<uint64_t>();
      p.errors = pj.at("errors").get<std::map<std::string, uint64_t>>();
      p.retries = pj.at("retries").get<uint64_t>();
      p.replayed_saves = pj.value("replayed_saves", uint64_t{0});
      p.pool_waits = pj.at("pool_waits").get<uint64_t>();
      p.pool_timeouts = pj.at("pool_timeouts").get<uint64_t>();
      p.pool_rejections = pj.at("pool_rejections").get<uint64_t>();
      for (const auto& [kname, kj] : pj.at("kinds").items()) {
        auto& k = p.kinds[kname];
        k.executed = kj.at("executed").get<uint64_t>();
        k.succeeded = kj.at("succeeded").get<uint64_t>();
        auto h = Hist(kj.at("latency"));
        if (!h) return Error(h.error());
        k.latency = *h;
      }
      for (auto [field, hist] : {std::pair<const char*, Histogram*>{"latency", &p.latency},
                                 {"uncorrected", &p.uncorrected},
                                 {"save", &p.save},
                                 {"load", &p.load},
                                 {"start_lag", &p.start_lag},
                                 {"ok_latency", &p.ok_latency},
                                 {"pool_wait", &p.pool_wait}}) {
        auto h = Hist(pj.at(field));
        if (!h) return Error(h.error());
        *hist = *h;
      }
      r.latency.Merge(p.latency);
    }
    // The phases a report may hold are the scenario's, in its order (fewer when it was cut
    // short): what follows indexes the spec by them.
    if (r.phases.size() > spec.phases.size()) {
      return Error(StatusCode::kInvalidArgument,
                   fmt::format("malformed report of {}: {} phases, the scenario has {}", spec.name,
                               r.phases.size(), spec.phases.size()));
    }
    for (std::size_t i = 0; i < r.phases.size(); ++i) {
      if (r.phases[i].name != spec.phases[i].name) {
        return Error(StatusCode::kInvalidArgument,
                     fmt::format("malformed report of {}: phase {} is '{}', the scenario's is '{}'",
                                 spec.name, i, r.phases[i].name, spec.phases[i].name));
      }
    }
    for (const auto& [key, w] : raw.at("windows").items()) {
      int64_t ms = 0;
      const auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), ms);
      if (ec != std::errc() || end != key.data() + key.size() || ms <= 0 || ms > 86'400'000) {
        return Error(
            StatusCode::kInvalidArgument,
            fmt::format("malformed report of {}: window '{}' is not a width in milliseconds",
                        spec.name, key));
      }
      auto& hists = r.window_histograms[ms];
      auto& rows = r.windows[ms];
      const json& errors = w.at("errors");
      for (std::size_t i = 0; i < w.at("histograms").size(); ++i) {
        auto s = Histogram::SnapshotFromJson(w.at("histograms").at(i));
        if (!s) return Error(s.error());
        hists.push_back(*s);
        rows.push_back(MakeRow(static_cast<double>(ms) * static_cast<double>(i + 1) / 1000.0,
                               Histogram::FromSnapshot(*s), errors.at(i).get<uint64_t>()));
      }
    }
    for (const json& f : raw.at("faults")) {
      FaultWindow w;
      w.phase = f.at("phase");
      w.name = f.value("name", "");
      w.fault = f.at("fault");
      w.start_s = f.at("start_s");
      w.end_s = f.at("end_s");
      w.until_s = f.value("until_s", w.end_s);
      w.injected = f.at("injected");
      w.error = f.at("error");
      w.inject_ms = f.value("inject_ms", 0.0);
      w.heal_ms = f.value("heal_ms", 0.0);
      if (f.contains("detect_ms") && f["detect_ms"].is_number())
        w.detect_ms = f["detect_ms"].get<double>();
      w.recover_ms = f.value("recover_ms", 0.0);
      w.recovered = f.value("recovered", false);
      w.units = f.value("units", uint64_t{0});
      w.failed_units = f.value("failed_units", uint64_t{0});
      w.budget_spent_percent = f.value("error_budget_spent_percent", 0.0);
      w.lost_auto = f.value("lost_auto_writes", uint64_t{0});
      w.lost_critical = f.value("lost_critical_writes", uint64_t{0});
      r.faults.push_back(std::move(w));
    }
    r.stopped_early = raw.at("stopped_early").get<std::string>();
    for (const json& row : report.at("additional_data").at("time_series").at("rows")) {
      r.series.push_back(RowFromJson(row));
    }
    for (const json& s : report.at("additional_data").at("resources").at("samples")) {
      r.resources.push_back({s.at(0).get<double>(), s.at(1).get<double>(), s.at(2).get<double>(),
                             s.size() > 3 ? s.at(3).get<double>() : 0.0});
    }
  } catch (const nlohmann::json::exception& e) {
    return Error(StatusCode::kInvalidArgument,
                 fmt::format("malformed report of {} ({}); merge only reports agentload wrote",
                             spec.name, json_read::Plain(e)));
  }
  return r;
}

Result<ScenarioResult> MergeResults(std::vector<ScenarioResult> shards) {
  if (shards.empty()) return Error(StatusCode::kInvalidArgument, "nothing to merge");
  ScenarioResult m = std::move(shards[0]);
  const std::string name = m.spec.name;
  for (std::size_t s = 1; s < shards.size(); ++s) {
    ScenarioResult& o = shards[s];
    for (std::size_t g = 0; g < m.spec.gates.size(); ++g) {
      if (m.spec.gates[g].limit != o.spec.gates[g].limit) {
        return Error(
            StatusCode::kInvalidArgument,
            fmt::format("shards of {} ran with different limits for gate {} ({} and {})", name,
                        m.spec.gates[g].name, m.spec.gates[g].limit, o.spec.gates[g].limit));
      }
    }
    if (o.phases.size() != m.phases.size()) {
      return Error(StatusCode::kInvalidArgument,
                   fmt::format("shards of {} ran different phases ({} and {}); was one cut short?",
                               name, m.phases.size(), o.phases.size()));
    }
    for (std::size_t i = 0; i < m.phases.size(); ++i) {
      PhaseResult& a = m.phases[i];
      const PhaseResult& b = o.phases[i];
      if (a.name != b.name) {
        return Error(StatusCode::kInvalidArgument,
                     fmt::format("shards of {} disagree on phase {}", name, i));
      }
      // Shards run side by side: a phase spans the earliest start to the latest end.
      a.start_s = std::min(a.start_s, b.start_s);
      a.end_s = std::max(a.end_s, b.end_s);
      a.executed += b.executed;
      a.succeeded += b.succeeded;
      a.failed += b.failed;
      a.corrupted += b.corrupted;
      a.late_starts += b.late_starts;
      a.dropped_starts += b.dropped_starts;
      for (const auto& [code, n] : b.errors) a.errors[code] += n;
      a.latency.Merge(b.latency);
      a.uncorrected.Merge(b.uncorrected);
      a.save.Merge(b.save);
      a.load.Merge(b.load);
      a.start_lag.Merge(b.start_lag);
      a.ok_latency.Merge(b.ok_latency);
      a.pool_wait.Merge(b.pool_wait);
      a.retries += b.retries;
      a.replayed_saves += b.replayed_saves;
      a.pool_waits += b.pool_waits;
      a.pool_timeouts += b.pool_timeouts;
      a.pool_rejections += b.pool_rejections;
      for (const auto& [kname, k] : b.kinds) {
        auto& mine = a.kinds[kname];
        mine.executed += k.executed;
        mine.succeeded += k.succeeded;
        mine.latency.Merge(k.latency);
      }
    }
    if (m.stopped_early.empty()) m.stopped_early = o.stopped_early;
    if (o.faults.size() == m.faults.size()) {
      for (std::size_t f = 0; f < o.faults.size(); ++f)
        m.faults[f].injected = m.faults[f].injected && o.faults[f].injected;
    }
    LedgerVerdict& l = m.ledger;
    const LedgerVerdict& k = o.ledger;
    l.runs_checked += k.runs_checked;
    l.acked_writes += k.acked_writes;
    l.unknown_writes += k.unknown_writes;
    l.lost += k.lost;
    l.corrupted += k.corrupted;
    l.phantom += k.phantom;
    l.out_of_order += k.out_of_order;
    l.unverifiable += k.unverifiable;
    l.resurrected += k.resurrected;
    // Windows by position: window i of every shard covers the same offset from its start.
    for (auto& [ms, hists] : m.window_histograms) {
      const auto& other = o.window_histograms[ms];
      std::vector<IntervalRow>& rows = m.windows[ms];
      const std::vector<IntervalRow>& other_rows = o.windows[ms];
      for (std::size_t i = 0; i < other.size(); ++i) {
        if (i >= hists.size()) {
          hists.push_back(other[i]);
          rows.push_back(other_rows[i]);
          continue;
        }
        Histogram h = Histogram::FromSnapshot(hists[i]);
        h.Merge(Histogram::FromSnapshot(other[i]));
        hists[i] = h.Snapshot();
        rows[i] = MakeRow(rows[i].t_s, h, rows[i].errors + other_rows[i].errors);
      }
    }
    // The 1 s series for charts: counts add exactly; percentiles are the worst shard's (an
    // upper bound), unless the 1 s window is a gate window and merged exactly above.
    for (std::size_t i = 0; i < o.series.size(); ++i) {
      if (i >= m.series.size()) {
        m.series.push_back(o.series[i]);
        continue;
      }
      IntervalRow& a = m.series[i];
      const IntervalRow& b = o.series[i];
      const uint64_t n = a.count + b.count;
      a.mean_ms = n ? (a.mean_ms * static_cast<double>(a.count) +
                       b.mean_ms * static_cast<double>(b.count)) /
                          static_cast<double>(n)
                    : 0;
      a.count = n;
      a.errors += b.errors;
      a.p50_ms = std::max(a.p50_ms, b.p50_ms);
      a.p95_ms = std::max(a.p95_ms, b.p95_ms);
      a.p99_ms = std::max(a.p99_ms, b.p99_ms);
      a.max_ms = std::max(a.max_ms, b.max_ms);
    }
    m.started_unix = std::min(m.started_unix, o.started_unix);
    m.wall_s = std::max(m.wall_s, o.wall_s);
    m.truncated = m.truncated || o.truncated;
    m.peak_rss_mb = std::max(m.peak_rss_mb, o.peak_rss_mb);  // per generator process: the worst
    m.avg_cpu_percent = (m.avg_cpu_percent * static_cast<double>(s) + o.avg_cpu_percent) /
                        static_cast<double>(s + 1);
    m.harness_thread_cpu_percent =
        std::max(m.harness_thread_cpu_percent, o.harness_thread_cpu_percent);
    m.harness_thread_busy_percent =
        std::max(m.harness_thread_busy_percent, o.harness_thread_busy_percent);
    if (o.invalid && !m.invalid) {
      m.invalid = true;
      m.invalid_reason = fmt::format("a shard: {}", o.invalid_reason);
    }
  }
  if (auto it = m.window_histograms.find(1000); it != m.window_histograms.end())
    m.series = m.windows[1000];
  m.latency.Reset();
  for (const auto& p : m.phases) m.latency.Merge(p.latency);
  // Verdicts come from the union; a shard's own INVALID stands (its numbers are suspect).
  const bool invalid = m.invalid;
  const std::string reason = m.invalid_reason;
  m.invalid = false;
  m.invalid_reason.clear();
  FinishScenario(m);
  if (invalid && !m.invalid) {
    m.invalid = true;
    m.invalid_reason = reason;
  }
  return m;
}

}  // namespace agentstate::load
