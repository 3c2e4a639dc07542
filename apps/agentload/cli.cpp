#include "cli.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <CLI/CLI.hpp>
#include <ostream>

#include "core/uri.hpp"
#include "load/catalogue/scenarios.hpp"

namespace agentstate::agentload {
namespace {

// CLI11 reports some errors over several lines; ours are always one.
std::string OneLine(std::string s) {
  for (char& c : s) {
    if (c == '\n') c = ' ';
  }
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

std::string Lookup(const std::map<std::string, std::string>& env, const std::string& key) {
  auto it = env.find(key);
  return it == env.end() ? std::string() : it->second;
}

}  // namespace

int AgentloadMain(const std::vector<std::string>& args,
                  const std::map<std::string, std::string>& env, std::ostream& out,
                  std::ostream& err) {
  auto fail = [&](const std::string& msg) { return SetupError(err, OneLine(msg)); };

  RunOptions o;
  bool list = false;
  std::string store, redis, postgres, clickhouse, flush_window_text, seed_text = "1";
  std::vector<std::string> gates;
  int agents = 0;
  std::string shard, duration;
  std::vector<std::string> merge_dirs;
  std::string merge_out = "test_reports/merged";

  CLI::App app{"agentload: production load scenarios for agentstate, gated on the SLA",
               "agentload"};
  app.set_help_flag("-h,--help", "print this help and exit");
  app.add_flag("--list", list, "list the scenarios, one line each, and exit");
  app.add_option("--test", o.tests, "run only this scenario (repeatable)")->type_name("NAME");
  app.add_option("--tag", o.tags, "run only scenarios with this tag (repeatable; see --list)")
      ->type_name("TAG");
  app.add_option("--exclude-tag", o.exclude_tags,
                 "leave out scenarios with this tag (repeatable), e.g. --exclude-tag slow")
      ->type_name("TAG");
  app.add_flag("--quick", o.quick, "the quick profile: same shape, smaller counts and durations");
  app.add_flag("--check", o.check,
               "check the options, the report directory and the store's health, run no load, "
               "and exit (0: ready; 2: the problem, on one line)");
  app.add_flag("-v,--verbose", o.verbose, "print each phase as it ends, and every gate");
  app.add_option("--report-dir", o.report_dir,
                 "where reports go (env LOAD_TEST_REPORT_DIR, as the seed suite had it; default "
                 "test_reports/load)")
      ->type_name("DIR");
  app.add_option("--parallel", o.parallel, "scenarios run at once (default 1)")->type_name("N");
  app.add_flag("--confirm-failures", o.confirm_failures,
               "run a scenario once more when it misses only performance gates, and keep the "
               "rerun's result (never past a gate on the data itself); for noisy machines");
  app.add_option("--seed", seed_text,
                 "workload seed; the same seed gives the same workloads (default 1)")
      ->type_name("N");
  app.add_option("--agents", agents, "agents per wave, instead of the profile's")->type_name("N");
  app.add_option("--gate", gates, "override a gate's limit, e.g. --gate p99_ms=150 (repeatable)")
      ->type_name("NAME=LIMIT");
  app.add_option(
         "--store", store,
         fmt::format(
             "one store for everything, by URI: sqlite://PATH, redis://HOST:PORT[/DB], "
             "postgresql://USER@HOST:PORT/DB, http[s]://[TOKEN@]HOST:PORT[?ca=PEM] (a running "
             "agentstated) or memory:// "
             "(env AGENTSTATE_STORE_URL; default {})",
             kDefaultStore))
      ->type_name("URI");
  app.add_option("--redis", redis,
                 "hot tier URI; with --postgres the run uses the tiered store, alone Redis alone "
                 "(env AGENTSTATE_REDIS_URL)")
      ->type_name("URI");
  app.add_option(
         "--postgres", postgres,
         "durable tier URI; alone, the run uses PostgreSQL alone (env AGENTSTATE_POSTGRES_URL)")
      ->type_name("URI");
  app.add_option("--flush-window", flush_window_text,
                 "the tiered store's write-behind window for auto saves (default 100ms)")
      ->type_name("D");
  app.add_option("--clickhouse", clickhouse, "analytics tier URI (env AGENTSTATE_CLICKHOUSE_URL)")
      ->type_name("URI");
  app.add_option("--duration", duration,
                 "a real soak for sustained_load_24h_simulation: 24 hours of duration/24 each, "
                 "e.g. 10m or 24h")
      ->type_name("D");
  app.add_option("--shard", shard,
                 "run this shard's share of every scenario's agents, e.g. 0/2; "
                 "combine the shards with agentload merge")
      ->type_name("I/N");
  std::string report_dir_arg;
  CLI::App* report =
      app.add_subcommand("report", "regenerate DIR/index.html from the JSON reports in DIR");
  report->add_option("dir", report_dir_arg, "a report directory")->required()->type_name("DIR");
  CLI::App* merge = app.add_subcommand(
      "merge", "combine the report directories of a sharded run into one report");
  merge->add_option("dirs", merge_dirs, "each shard's report directory")
      ->required()
      ->type_name("DIR...");
  merge
      ->add_option("--report-dir", merge_out,
                   "where the merged reports go (default test_reports/merged)")
      ->type_name("DIR");

  CLI::App* chaos =
      app.add_subcommand("chaos",
                         "inject the run's faults on a random schedule (the same --seed, the same "
                         "schedule) under mixed load "
                         "for --duration (default 60s), then verify every acknowledged write");
  chaos->fallthrough();  // the store flags, --seed and --duration are the main command's
  chaos
      ->add_option("--faults", o.chaos_faults,
                   "inject only these of the faults the store offers, e.g. agentstated_kill "
                   "(comma-separated; default all; the run's notes name those it offers)")
      ->delimiter(',')
      ->type_name("NAME,...");

  std::vector<std::string> argv_rev(args.rbegin(), args.rend());
  try {
    app.parse(argv_rev);
  } catch (const CLI::CallForHelp&) {
    out << app.help();
    return kExitPass;
  } catch (const CLI::ParseError& e) {
    return fail(fmt::format("{}; see agentload --help", e.what()));
  }

  if (merge->parsed()) return MergeLoad(merge_dirs, merge_out, out, err);
  if (report->parsed()) return ReportLoad(report_dir_arg, out, err);

  if (list) {
    for (const auto& e : load::Catalogue()) {
      out << fmt::format("{:<36} {}{}\n", e.name, e.description,
                         e.tags.empty() ? "" : fmt::format(" [{}]", fmt::join(e.tags, ", ")));
    }
    return kExitPass;
  }
  o.debug = Lookup(env, "AGENTSTATE_DEBUG") == "1";

  try {
    std::size_t used = 0;
    o.seed = std::stoull(seed_text, &used);
    if (used != seed_text.size() || seed_text[0] == '-') throw std::invalid_argument("seed");
  } catch (const std::exception&) {
    return fail(fmt::format("--seed '{}' is not a non-negative whole number", seed_text));
  }
  if (app.count("--agents")) o.agents = agents;
  o.chaos = chaos->parsed();
  if (!duration.empty()) {
    auto d = core::ParseDuration(duration);
    if (!d) return fail(fmt::format("--duration: {}", d.error().message()));
    if (o.chaos && (*d < std::chrono::seconds(10) || *d > std::chrono::hours(24))) {
      return fail(fmt::format(
          "--duration {} is outside 10s..24h (chaos needs time for a fault and its recovery)",
          duration));
    }
    if (!o.chaos && (*d < std::chrono::seconds(24) || *d > std::chrono::hours(24))) {
      return fail(fmt::format(
          "--duration {} is outside 24s..24h (the soak's 24 hours need a second each at least)",
          duration));
    }
    o.duration = std::chrono::duration_cast<std::chrono::seconds>(*d);
  }
  if (!shard.empty()) {
    auto parsed = ParseShard(shard);
    if (!parsed) return fail(parsed.error().message());
    std::tie(o.shard_index, o.shard_count) = *parsed;
  }
  for (const auto& g : gates) {
    auto parsed = load::ParseGateOverride(g);
    if (!parsed) return fail(parsed.error().message());
    o.gate_overrides.push_back(*parsed);
  }

  if (!app.count("--report-dir")) {
    if (std::string dir = Lookup(env, "LOAD_TEST_REPORT_DIR"); !dir.empty()) o.report_dir = dir;
  }
  // Which store: --store, then tier flags, then the environment, then the embedded default.
  if (redis.empty()) redis = Lookup(env, "AGENTSTATE_REDIS_URL");
  if (postgres.empty()) postgres = Lookup(env, "AGENTSTATE_POSTGRES_URL");
  if (clickhouse.empty()) clickhouse = Lookup(env, "AGENTSTATE_CLICKHOUSE_URL");
  if (store.empty() && !app.count("--redis") && !app.count("--postgres") &&
      !app.count("--clickhouse")) {
    store = Lookup(env, "AGENTSTATE_STORE_URL");
  }
  if (store.empty()) {
    // One tier URI alone runs on that store alone; --redis with --postgres is the tiered
    // store, with --clickhouse as its analytics tier.
    for (const auto& [flag, uri] : {std::pair<std::string, std::string>{"--redis", redis},
                                    {"--postgres", postgres},
                                    {"--clickhouse", clickhouse}}) {
      if (uri.empty()) continue;
      if (auto p = core::ParseUri(uri); !p)
        return fail(fmt::format("{}: {}", flag, p.error().message()));
    }
    if (!clickhouse.empty() && (redis.empty() || postgres.empty())) {
      return fail(
          fmt::format("--clickhouse {}: the analytics tier sits behind the tiered store; give "
                      "--redis and --postgres too",
                      core::RedactUri(clickhouse)));
    }
    if (!redis.empty() && !postgres.empty()) {
      o.store.tiered = StorePlan::Tiered{redis, postgres, clickhouse, {}};
    } else {
      store = !redis.empty() ? redis : !postgres.empty() ? postgres : std::string(kDefaultStore);
    }
  }
  if (!flush_window_text.empty()) {
    auto d = core::ParseDuration(flush_window_text);
    if (!d || d->count() <= 0 || *d > std::chrono::minutes(10)) {
      return fail(fmt::format("bad --flush-window '{}': a duration in 1ms..10m, e.g. 100ms",
                              flush_window_text));
    }
    if (!o.store.tiered)
      return fail("--flush-window applies to the tiered store: give --redis and --postgres");
    o.store.tiered->options.flush_window =
        std::chrono::duration_cast<std::chrono::milliseconds>(*d);
  }
  if (!o.store.tiered) o.store.uri = store;
  return RunLoad(o, out, err);
}

}  // namespace agentstate::agentload
