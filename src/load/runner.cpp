#include "load/runner.hpp"

#include <fmt/format.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <ostream>
#include <set>

#include "agentstate/registry.hpp"
#include "core/uri.hpp"
#include "load/report.hpp"
#include "load/scenarios.hpp"
#include "load/wait_group.hpp"

namespace agentstate::load {
namespace {

constexpr const char* kVersion = "0.1.0";

Awaitable<void> RunAll(std::vector<ScenarioSpec> specs, RunContext ctx, int parallel,
                       std::vector<ScenarioResult>& results) {
  auto ex = co_await asio::this_coro::executor;
  results.resize(specs.size());
  // Groups of `parallel` scenarios at once; each scenario has its own ids (scope and user),
  // so concurrent scenarios never touch each other's runs.
  const std::size_t width = static_cast<std::size_t>(std::max(1, parallel));
  for (std::size_t i = 0; i < specs.size(); i += width) {
    WaitGroup group(ex);
    const std::size_t end = std::min(specs.size(), i + width);
    group.Add(end - i);
    for (std::size_t j = i; j < end; ++j) {
      asio::co_spawn(
          ex,
          [&, j]() -> Awaitable<void> {
            results[j] = co_await RunScenario(std::move(specs[j]), ctx);
            group.Done();
          },
          asio::detached);
    }
    co_await group.Wait();
  }
}

}  // namespace

int RunLoad(const RunOptions& o, std::ostream& out, std::ostream& err) {
  auto fail = [&](const std::string& msg) {
    err << "agentload: error: " << msg << '\n';
    return kExitSetup;
  };

  // Everything that can be checked before touching the store or the disk, is.
  std::vector<const ScenarioEntry*> selected;
  if (o.tests.empty()) {
    for (const auto& e : Catalogue()) selected.push_back(&e);
  } else {
    std::set<std::string> seen;
    for (const auto& name : o.tests) {
      const ScenarioEntry* e = FindScenario(name);
      if (!e) {
        std::string known;
        for (const auto& c : Catalogue()) known += (known.empty() ? "" : ", ") + c.name;
        return fail(fmt::format("unknown scenario '{}'; known: {} (see agentload --list)", name, known));
      }
      if (seen.insert(name).second) selected.push_back(e);
    }
  }
  if (o.parallel < 1 || o.parallel > 64) return fail(fmt::format("--parallel {} is outside 1..64", o.parallel));
  if (o.agents && (*o.agents < 1 || *o.agents > 100000)) {
    return fail(fmt::format("--agents {} is outside 1..100000", *o.agents));
  }

  Profile profile{o.quick, o.agents};
  std::vector<ScenarioSpec> specs;
  std::set<std::string> used;
  for (const ScenarioEntry* e : selected) {
    ScenarioSpec spec = e->build(profile);
    spec.description = e->description;
    for (auto& n : ApplyOverrides(spec.gates, o.gate_overrides)) used.insert(std::move(n));
    if (Status s = ValidateScenario(spec); !s.ok()) return fail(s.message());
    specs.push_back(std::move(spec));
  }
  for (const auto& g : o.gate_overrides) {
    if (!used.count(g.name)) {
      std::set<std::string> names;
      for (const auto& s : specs) {
        for (const auto& gate : s.gates) names.insert(gate.name);
      }
      std::string known;
      for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
      return fail(fmt::format("--gate {}: no selected scenario has a gate of that name; gates: {}", g.name, known));
    }
  }

  if (Status s = CheckReportDir(o.report_dir); !s.ok()) return fail(s.message());

  StoreOptions store_options;
  auto store = OpenStore(o.store_uri, store_options);
  if (!store) return fail(store.error().message());

  asio::io_context io(1);
  const WorkloadGenerator generator(o.seed);
  std::vector<ScenarioResult> results;
  bool healthy = false;
  std::string health_detail;
  asio::co_spawn(
      io,
      [&]() -> Awaitable<void> {
        auto h = co_await (*store)->Health(DeadlineIn(std::chrono::seconds(5)));
        healthy = h && h->healthy();
        if (!h) {
          health_detail = h.error().ToString();
        } else {
          for (const auto& t : h->tiers) {
            if (!t.healthy) health_detail = fmt::format("{} ({})", t.backend, t.detail);
          }
        }
        if (!healthy) co_return;
        RunContext ctx{**store, generator, o.verbose, ::isatty(STDERR_FILENO) == 1,
                       static_cast<int>(::syscall(SYS_gettid))};
        co_await RunAll(std::move(specs), ctx, o.parallel, results);
      },
      asio::detached);
  io.run();
  if (!healthy) return fail(fmt::format("store {} is not healthy: {}", (*store)->Describe(), health_detail));

  RunInfo run{core::RedactUri(o.store_uri), o.quick ? "quick" : "full", o.seed, kVersion};
  const std::filesystem::path dir(o.report_dir);
  for (const auto& r : results) {
    const auto path = dir / fmt::format("{}_{}.json", r.spec.name, r.started_unix);
    if (Status s = WriteJsonFile(path, ScenarioReport(r, run)); !s.ok()) return fail(s.message());
  }
  if (Status s = WriteJsonFile(dir / "summary.json", RunSummary(results, run)); !s.ok()) return fail(s.message());
  if (Status s = WriteTextFile(dir / "junit.xml", JUnitXml(results)); !s.ok()) return fail(s.message());

  out << fmt::format("agentload {} on {} (profile {}, seed {})\n", kVersion, run.store, run.profile, o.seed);
  out << ConsoleSummary(results, /*all_gates=*/true);
  out << fmt::format("reports: {}\n", dir.string());
  // INVALID outranks a gate failure: numbers the generator limited prove nothing either way.
  if (std::any_of(results.begin(), results.end(), [](const ScenarioResult& r) { return r.invalid; })) {
    return kExitInvalid;
  }
  bool all = std::all_of(results.begin(), results.end(), [](const ScenarioResult& r) { return r.passed(); });
  return all ? kExitPass : kExitGateFailed;
}

}  // namespace agentstate::load
