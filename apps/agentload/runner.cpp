#include "runner.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <signal.h>

#include <sys/syscall.h>
#include <unistd.h>
#include <boost/asio/signal_set.hpp>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <ostream>
#include <set>

#include "agentstate/registry.hpp"
#include "core/asio.hpp"
#include "core/uri.hpp"
#include "core/wait_group.hpp"
#include "load/catalogue/scenarios.hpp"
#include "load/faults/faults.hpp"
#include "load/faults/services.hpp"
#include "load/report/durability.hpp"
#include "load/report/html_report.hpp"
#include "load/report/json_read.hpp"
#include "load/report/merge.hpp"
#include "load/report/report.hpp"
#include "tiered_checks.hpp"

namespace agentstate::agentload {

using namespace load;
namespace {

// CMake's project version, defined once (CMakeLists.txt).
constexpr const char* kVersion = AGENTSTATE_VERSION;

// The fault scenarios' store (opened through the fault proxy) and its checks.
struct FaultStore {
  StateStore* store = nullptr;
  StoreChecks* checks = nullptr;
};

Awaitable<void> RunAll(std::vector<ScenarioSpec> specs, RunContext ctx, FaultStore fault_store,
                       int parallel, bool confirm_failures, std::vector<ScenarioResult>& results) {
  auto ex = co_await asio::this_coro::executor;
  results.resize(specs.size());
  std::size_t started = 0;
  // Groups of `parallel` scenarios at once; each scenario has its own ids (scope and user),
  // so concurrent scenarios never touch each other's runs.
  const std::size_t width = static_cast<std::size_t>(std::max(1, parallel));
  for (std::size_t i = 0; i < specs.size(); i += width) {
    if (ctx.interrupted && *ctx.interrupted) break;  // scenarios not started have no results
    core::WaitGroup group(ex);
    const std::size_t end = std::min(specs.size(), i + width);
    group.Add(end - i);
    started = end;
    for (std::size_t j = i; j < end; ++j) {
      asio::co_spawn(
          ex,
          [&, j]() -> Awaitable<void> {
            // Scenarios that inject faults run on the store opened through the fault proxy.
            const bool faults =
                std::any_of(specs[j].phases.begin(), specs[j].phases.end(),
                            [](const PhaseSpec& p) { return !p.fault_events.empty(); });
            RunContext c =
                faults && fault_store.store
                    ? RunContext{*fault_store.store, ctx.generator,   ctx.verbose,     ctx.progress,
                                 ctx.harness_tid,    ctx.shard_index, ctx.shard_count, ctx.faults,
                                 fault_store.checks, ctx.interrupted, ctx.debug}
                    : ctx;
            std::optional<ScenarioSpec> again;
            if (confirm_failures) again = specs[j];
            results[j] = co_await RunScenario(std::move(specs[j]), c);
            auto missed = again ? RerunnableFailures(results[j]) : std::vector<std::string>{};
            if (!missed.empty() && !(ctx.interrupted && *ctx.interrupted)) {
              results[j] = co_await RunScenario(std::move(*again), c);
              results[j].first_attempt_failed = std::move(missed);
            }
            group.Done();
          },
          asio::detached);
    }
    co_await group.Wait();
  }
  results.resize(started);
}

// Writes every report of a finished (or merged) run, prints the summary, and returns the
// exit status.
int Report(const std::vector<ScenarioResult>& results, const RunInfo& run,
           const std::string& report_dir, bool verbose, std::ostream& out, std::ostream& err) {
  const std::filesystem::path dir(report_dir);
  auto fail = [&](const std::string& msg) { return SetupError(err, msg); };
  if (Status s = MakeReportDir(dir); !s.ok()) return fail(s.message());
  for (const auto& r : results) {
    const auto path = dir / fmt::format("{}_{}.json", r.spec.name, r.started_unix);
    if (Status s = WriteJsonFile(path, ScenarioReport(r, run)); !s.ok()) return fail(s.message());
  }
  if (Status s = WriteJsonFile(dir / "summary.json", load::RunSummary(results, run)); !s.ok())
    return fail(s.message());
  if (Status s = WriteTextFile(dir / "junit.xml", JUnitXml(results)); !s.ok())
    return fail(s.message());
  // index.html is made from the files just written, exactly as `agentload report` makes it.
  if (Status s = WriteHtmlReport(dir); !s.ok()) return fail(s.message());

  std::string shard = run.shard_count > 1
                          ? fmt::format(", shard {}/{}", run.shard_index, run.shard_count)
                      : run.merged_shards ? fmt::format(", {} shards merged", run.merged_shards)
                                          : "";
  out << fmt::format("agentload {} on {} (profile {}, seed {}{})\n", kVersion, run.store,
                     run.profile, run.seed, shard);
  out << ConsoleSummary(results, /*all_gates=*/verbose);
  out << fmt::format(
      "reports: {} (every gate with its measured value: summary.json, or --verbose)\n",
      dir.string());
  if (run.interrupted) {
    out << "interrupted: the run was stopped before its end; the reports hold what ran\n";
    return kExitInterrupted;
  }
  // INVALID outranks a gate failure: numbers the generator limited prove nothing either way.
  if (std::any_of(results.begin(), results.end(),
                  [](const ScenarioResult& r) { return r.invalid; })) {
    return kExitInvalid;
  }
  if (run.shard_count > 1) {
    // A shard's gates judge its share only (e.g. 50 of 100 agents); the verdict is the merge's.
    out << "gates above judge this shard's share only; the verdict comes from agentload merge\n";
    return kExitPass;
  }
  bool all = std::all_of(results.begin(), results.end(),
                         [](const ScenarioResult& r) { return r.passed(); });
  return all ? kExitPass : kExitGateFailed;
}

}  // namespace

std::vector<std::string> RerunnableFailures(const ScenarioResult& r) {
  std::vector<std::string> failed;
  if (r.invalid || r.interrupted || r.truncated) return {};
  for (const auto& g : r.gates) {
    if (g.passed) continue;
    if (g.spec.integrity) return {};
    failed.push_back(g.Describe());
  }
  return failed;
}

int SetupError(std::ostream& err, std::string_view message) {
  err << "agentload: error: " << message << '\n';
  return kExitSetup;
}

Result<std::pair<int, int>> ParseShard(const std::string& text) {
  int i = -1, n = -1;
  char slash = 0, extra = 0;
  if (std::sscanf(text.c_str(), "%d%c%d%c", &i, &slash, &n, &extra) != 3 || slash != '/' || n < 1 ||
      n > 1024 || i < 0 || i >= n) {
    return Error(
        StatusCode::kInvalidArgument,
        fmt::format("bad --shard '{}': use I/N with 0 <= I < N <= 1024, e.g. --shard 0/2", text));
  }
  return std::pair<int, int>(i, n);
}

namespace {

// What merge needs of one shard's scenario report, checked before anything else reads it:
// a report is untrusted input (a crafted one read out of bounds here before).
struct ShardReport {
  std::string test;
  int64_t timestamp = 0;
  std::string store, profile;
  uint64_t seed = 0;
  int agents = 0;
  std::pair<int, int> shard{0, 1};
  nlohmann::json doc;
};
// A scenario report found in a shard's directory (NewestReports), with the fields a merge
// needs; an error for one that claims to be a report but is malformed.
Result<ShardReport> ReadShardReport(const std::filesystem::path& path, nlohmann::json j) {
  using namespace json_read;
  std::string missing;
  ShardReport r;
  r.test = Str(j, {"test_name"});
  auto timestamp = RequireInt(j, {"timestamp"}, &missing);
  auto store = RequireStr(j, {"additional_data", "store"}, &missing);
  auto profile = RequireStr(j, {"additional_data", "profile"}, &missing);
  auto seed = RequireInt(j, {"additional_data", "seed"}, &missing);
  auto agents = RequireInt(j, {"additional_data", "agents_override"}, &missing);
  auto shard = RequireStr(j, {"additional_data", "shard"}, &missing);
  if (!missing.empty()) {
    return Error(
        StatusCode::kInvalidArgument,
        fmt::format(
            "{} is not a complete agentload scenario report: {} is missing; merge the report "
            "directories agentload wrote",
            path.string(), missing));
  }
  auto parsed = ParseShard(*shard);
  if (!parsed || *agents < 0 || *agents > 100000) {
    return Error(
        StatusCode::kInvalidArgument,
        fmt::format("{}: the report's shard or agents field is out of range", path.string()));
  }
  r.timestamp = *timestamp;
  r.store = *store;
  r.profile = *profile;
  r.seed = static_cast<uint64_t>(*seed);
  r.agents = static_cast<int>(*agents);
  r.shard = *parsed;
  r.doc = std::move(j);
  return r;
}

}  // namespace

int MergeLoad(const std::vector<std::string>& dirs, const std::string& report_dir,
              std::ostream& out, std::ostream& err) {
  auto fail = [&](const std::string& msg) { return SetupError(err, msg); };
  if (dirs.empty())
    return fail("merge needs the report directories of the shards: agentload merge DIR...");
  // Per shard directory: the newest report of each scenario.
  struct Shard {
    std::string dir;
    std::map<std::string, ShardReport> reports;
  };
  std::vector<Shard> shards;
  for (const auto& d : dirs) {
    Shard sh{d, {}};
    std::error_code ec;
    if (!std::filesystem::is_directory(d, ec))
      return fail(fmt::format("{} is not a report directory", d));
    auto found = NewestReports(d, [&](const std::filesystem::path& path, std::string_view why) {
      err << fmt::format("agentload: note: {} skipped ({})\n", path.string(), why);
    });
    for (auto& [test, f] : found) {
      auto report = ReadShardReport(f.path, std::move(f.doc));
      if (!report) return fail(report.error().message());
      sh.reports[test] = std::move(*report);
    }
    if (sh.reports.empty()) return fail(fmt::format("{} holds no scenario reports", d));
    shards.push_back(std::move(sh));
  }
  // The shards must be the N parts of one run.
  const ShardReport& first = shards[0].reports.begin()->second;
  const uint64_t seed = first.seed;
  const std::string profile = first.profile;
  const int agents = first.agents;
  int count = 0;
  std::set<int> seen;
  for (const auto& sh : shards) {
    for (const auto& [test, r] : sh.reports) {
      if (r.seed != seed || r.profile != profile || r.agents != agents) {
        return fail(
            fmt::format("{}: report of {} is from another run (seed, profile or --agents differ)",
                        sh.dir, test));
      }
      if (count == 0) count = r.shard.second;
      if (r.shard.second != count) {
        return fail(fmt::format("{}: shard {}/{} does not belong to a run of {} shards", sh.dir,
                                r.shard.first, r.shard.second, count));
      }
    }
    const int index = sh.reports.begin()->second.shard.first;
    if (!seen.insert(index).second)
      return fail(fmt::format("shard {}/{} is given twice ({})", index, count, sh.dir));
  }
  if (static_cast<int>(seen.size()) != count) {
    return fail(fmt::format("{} of {} shards given; pass the report directory of every shard",
                            seen.size(), count));
  }
  if (Status s = CheckReportDir(report_dir); !s.ok()) return fail(s.message());

  const double first_duration = json_read::Num(first.doc, {"additional_data", "duration_s"}, 0);
  const int64_t duration_s =
      first_duration > 0 && first_duration < 1e9 ? static_cast<int64_t>(first_duration) : 0;
  std::vector<ScenarioResult> merged;
  for (const auto& [test, r0] : shards[0].reports) {
    const ScenarioEntry* entry = FindScenario(test);
    if (!entry) return fail(fmt::format("report of unknown scenario '{}'", test));
    const nlohmann::json& ad0 = json_read::Obj(r0.doc, {"additional_data"});
    std::optional<std::chrono::seconds> soak;
    const double soak_s = json_read::Num(ad0, {"duration_s"}, 0);
    if (soak_s > 0 && soak_s < 1e9) soak = std::chrono::seconds(static_cast<int64_t>(soak_s));
    std::vector<std::string> fault_names;
    for (const auto& f : json_read::Arr(ad0, {"faults"})) {
      if (std::string name = json_read::Str(f, {"name"}); !name.empty())
        fault_names.push_back(std::move(name));
    }
    ScenarioSpec spec = entry->build(Profile{
        profile == "quick", agents ? std::optional<int>(agents) : std::nullopt, soak, fault_names});
    spec.description = entry->description;
    std::vector<ScenarioResult> parts;
    for (const auto& sh : shards) {
      auto it = sh.reports.find(test);
      if (it == sh.reports.end()) return fail(fmt::format("{} has no report of {}", sh.dir, test));
      auto r = ResultFromReport(it->second.doc, spec);
      if (!r) return fail(fmt::format("{}: {}", sh.dir, r.error().message()));
      parts.push_back(std::move(*r));
    }
    auto m = MergeResults(std::move(parts));
    if (!m) return fail(m.error().message());
    merged.push_back(std::move(*m));
  }
  RunInfo run{.store = first.store,
              .profile = profile,
              .seed = seed,
              .version = kVersion,
              .agents = agents,
              .duration_s = duration_s,
              .merged_shards = count};
  return Report(merged, run, report_dir, /*verbose=*/true, out, err);
}

int ReportLoad(const std::string& dir, std::ostream& out, std::ostream& err) {
  if (Status s = WriteHtmlReport(dir); !s.ok()) return SetupError(err, s.message());
  out << fmt::format("wrote {}\n", (std::filesystem::path(dir) / "index.html").string());
  return kExitPass;
}

int RunLoad(const RunOptions& o, std::ostream& out, std::ostream& err) {
  auto fail = [&](const std::string& msg) { return SetupError(err, msg); };

  // Everything that can be checked before touching the store or the disk, is.
  std::vector<const ScenarioEntry*> selected;
  if (o.chaos) {
    if (!o.tests.empty()) return fail("chaos runs its own schedule: leave out --test");
  } else if (o.tests.empty()) {
    for (const auto& e : Catalogue()) selected.push_back(&e);
  } else {
    std::set<std::string> seen;
    for (const auto& name : o.tests) {
      const ScenarioEntry* e = FindScenario(name);
      if (!e) {
        std::string known;
        for (const auto& c : Catalogue()) known += (known.empty() ? "" : ", ") + c.name;
        return fail(
            fmt::format("unknown scenario '{}'; known: {} (see agentload --list)", name, known));
      }
      if (seen.insert(name).second) selected.push_back(e);
    }
  }
  // Tags narrow the selection, whether it came from --test or is the whole catalogue.
  if (!o.tags.empty() || !o.exclude_tags.empty()) {
    const std::vector<std::string> known = KnownTags();
    for (const auto* list : {&o.tags, &o.exclude_tags}) {
      for (const auto& t : *list) {
        if (std::find(known.begin(), known.end(), t) == known.end()) {
          return fail(fmt::format("unknown tag '{}'; known: {} (see agentload --list)", t,
                                  fmt::join(known, ", ")));
        }
      }
    }
    auto has_any = [](const ScenarioEntry* e, const std::vector<std::string>& tags) {
      return std::any_of(tags.begin(), tags.end(), [&](const std::string& t) {
        return std::find(e->tags.begin(), e->tags.end(), t) != e->tags.end();
      });
    };
    std::erase_if(selected, [&](const ScenarioEntry* e) {
      return (!o.tags.empty() && !has_any(e, o.tags)) || has_any(e, o.exclude_tags);
    });
    if (selected.empty() && !o.chaos) {
      return fail(
          "no scenario is left after --tag and --exclude-tag; see the tags in agentload --list");
    }
  }
  if (o.parallel < 1 || o.parallel > 64)
    return fail(fmt::format("--parallel {} is outside 1..64", o.parallel));
  if (o.agents && (*o.agents < 1 || *o.agents > 100000)) {
    return fail(fmt::format("--agents {} is outside 1..100000", *o.agents));
  }

  const StorePlan::Tiered* tiered = o.store.tiered ? &*o.store.tiered : nullptr;
  // The faults: only when a selected scenario injects them (the tiered set starts a proxy).
  RunFaults faults;
  if (o.chaos || std::any_of(selected.begin(), selected.end(),
                             [](const ScenarioEntry* e) { return e->injects_faults; })) {
    auto made = tiered ? MakeTieredFaults(tiered->hot, tiered->durable, tiered->analytics,
                                          ServiceControl::DefaultDir())
                       : MakeStoreFaults(o.store.uri);
    if (!made) return fail(made.error().message());
    faults = std::move(*made);
    if (o.shard_count > 1 && !faults.faults.empty()) {
      return fail(
          "--shard: the fault scenarios kill and restart shared services; run them without "
          "--shard, or leave "
          "them out with --test");
    }
  }

  if (!o.chaos_faults.empty()) {
    const std::vector<std::string> offered = faults.names();
    for (const auto& name : o.chaos_faults) {
      if (std::find(offered.begin(), offered.end(), name) == offered.end()) {
        return fail(
            fmt::format("--faults: this store offers no fault '{}'; it offers: {}", name,
                        offered.empty() ? "none" : fmt::format("{}", fmt::join(offered, ", "))));
      }
    }
    std::erase_if(faults.faults, [&](const auto& f) {
      return std::find(o.chaos_faults.begin(), o.chaos_faults.end(), f.first) ==
             o.chaos_faults.end();
    });
  }
  Profile profile{o.quick, o.agents, o.duration, faults.names()};
  std::vector<ScenarioSpec> specs;
  std::set<std::string> used;
  auto add = [&](ScenarioSpec spec) -> Status {
    for (auto& n : ApplyOverrides(spec.gates, o.gate_overrides)) used.insert(std::move(n));
    if (Status s = ValidateScenario(spec); !s.ok()) return s;
    specs.push_back(std::move(spec));
    return Status();
  };
  if (o.chaos) {
    if (faults.faults.empty()) {
      return fail(
          "chaos needs faults to inject, and this store offers none: run it on sqlite://, "
          "redis://, "
          "postgresql:// or the tiered store (start the local services with: scripts/services.sh "
          "up)");
    }
    if (Status s = add(ChaosScenario(profile, o.seed)); !s.ok()) return fail(s.message());
  }
  for (const ScenarioEntry* e : selected) {
    ScenarioSpec spec = e->build(profile);
    spec.description = e->description;
    if (Status s = add(std::move(spec)); !s.ok()) return fail(s.message());
  }
  for (const auto& g : o.gate_overrides) {
    if (!used.count(g.name)) {
      std::set<std::string> names;
      for (const auto& s : specs) {
        for (const auto& gate : s.gates) names.insert(gate.name);
      }
      std::string known;
      for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
      return fail(fmt::format("--gate {}: no selected scenario has a gate of that name; gates: {}",
                              g.name, known));
    }
  }

  if (Status s = CheckReportDir(o.report_dir); !s.ok()) return fail(s.message());

  StoreOptions store_options;
  // The store, and the checks a tiered store answers beyond the StateStore API.
  std::unique_ptr<StateStore> store;
  TieredStore* tiered_store = nullptr;
  std::unique_ptr<TieredChecks> checks;
  if (tiered) {
    auto opened = OpenTieredStore(tiered->hot, tiered->durable, tiered->options, store_options,
                                  tiered->analytics);
    if (!opened) return fail(opened.error().message());
    tiered_store = opened->get();
    checks = std::make_unique<TieredChecks>(**opened);
    store = std::move(*opened);
  } else {
    auto opened = OpenStore(o.store.uri, store_options);
    if (!opened) return fail(opened.error().message());
    store = std::move(*opened);
  }
  // The fault scenarios' own tiered store, whose hot tier is reached through the proxy.
  std::unique_ptr<TieredStore> fault_store;
  std::unique_ptr<TieredChecks> fault_checks;
  if (!faults.proxied_hot_uri.empty()) {
    auto opened = OpenTieredStore(faults.proxied_hot_uri, tiered->durable, tiered->options,
                                  store_options, tiered->analytics);
    if (!opened) return fail(opened.error().message());
    fault_store = std::move(*opened);
    fault_checks = std::make_unique<TieredChecks>(*fault_store);
  }
  for (const auto& why : faults.skipped) {
    err << "agentload: note: fault skipped: " << why << '\n';
  }
  asio::io_context io(1);
  const WorkloadGenerator generator(o.seed);
  std::vector<ScenarioResult> results;
  bool healthy = false;
  std::string health_detail;
  // SIGINT or SIGTERM: the load stops, faults in force are healed, the ledger is checked,
  // and the reports of what ran are written, marked interrupted. A second signal ends the
  // process at once (the handler is gone by then).
  bool interrupted = false;
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int signo) {
    if (ec) return;
    interrupted = true;
    err << fmt::format(
        "\nagentload: {}: stopping the load, then writing the reports of what ran (again to quit "
        "at "
        "once)\n",
        signo == SIGINT ? "interrupted (SIGINT)" : "terminated (SIGTERM)");
    boost::system::error_code ignored;
    signals.clear(ignored);
  });
  asio::co_spawn(
      io,
      [&]() -> Awaitable<void> {
        auto h = co_await store->Health(DeadlineIn(std::chrono::seconds(5)));
        healthy = h && h->healthy();
        if (!h) {
          health_detail = h.error().ToString();
        } else {
          for (const auto& t : h->tiers) {
            if (!t.healthy) health_detail = fmt::format("{} ({})", t.backend, t.detail);
          }
        }
        if (!healthy || o.check) co_return;
        RunContext ctx{*store,
                       generator,
                       o.verbose,
                       ::isatty(STDERR_FILENO) == 1,
                       static_cast<int>(::syscall(SYS_gettid)),
                       o.shard_index,
                       o.shard_count,
                       faults.view(),
                       checks.get(),
                       &interrupted,
                       o.debug};
        co_await RunAll(std::move(specs), ctx, {fault_store.get(), fault_checks.get()}, o.parallel,
                        o.confirm_failures, results);
      },
      [&](std::exception_ptr e) {
        boost::system::error_code ignored;
        signals.cancel(ignored);
        if (e) std::rethrow_exception(e);
      });
  io.run();
  if (!healthy)
    return fail(fmt::format("store {} is not healthy: {}", store->Describe(), health_detail));
  if (o.check) {
    out << fmt::format("agentload: ready: {} scenario(s) on {}\n", specs.size(), store->Describe());
    return kExitPass;
  }

  std::string durability;
  if (tiered_store) {
    const auto stats = tiered_store->Stats().values;
    auto flag = [&stats](const char* key) {
      auto it = stats.find(key);
      return it == stats.end() ? std::nullopt : std::optional<bool>(it->second > 0);
    };
    durability = DurabilityContract(
        tiered_store->hot().Describe(), tiered_store->durable().Describe(),
        tiered_store->tiered_options().flush_window, flag("hot_server_aof_enabled"),
        flag("durable_server_synchronous_commit_on"));
  }
  RunInfo run{.store = tiered ? store->Describe() : core::RedactUri(o.store.uri),
              .profile = o.quick ? "quick" : "full",
              .seed = o.seed,
              .version = kVersion,
              .agents = o.agents.value_or(0),
              .duration_s = o.duration ? o.duration->count() : 0,
              .shard_index = o.shard_index,
              .shard_count = o.shard_count,
              .durability = durability,
              .interrupted = interrupted};
  return Report(results, run, o.report_dir, o.verbose, out, err);
}

}  // namespace agentstate::agentload
