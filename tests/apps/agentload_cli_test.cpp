// agentload as a user meets it: flags in, exit status and one-line errors out.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "apps/agentload_fixture.hpp"
#include "runner.hpp"

namespace agentstate::agentload {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

TEST_F(AgentloadCli, ListAndHelp) {
  auto list = Run({"--list"});
  EXPECT_EQ(list.code, 0);
  EXPECT_THAT(list.out, HasSubstr("100_concurrent_agents_baseline"));
  EXPECT_EQ(std::count(list.out.begin(), list.out.end(), '\n'), 10) << list.out;
  EXPECT_THAT(list.out, HasSubstr("failure_recovery_under_load"));
  auto help = Run({"--help"});
  EXPECT_EQ(help.code, 0);
  EXPECT_THAT(help.out, HasSubstr("--report-dir"));
  EXPECT_THAT(help.out, HasSubstr("--seed"));
}

TEST_F(AgentloadCli, UsageErrorsExitTwoWithOneLine) {
  ExpectSetupError(Run({"--bogus"}), "--bogus");
  ExpectSetupError(Run({"--test", "no_such_scenario"}), "unknown scenario 'no_such_scenario'");
  ExpectSetupError(Run({"--seed", "abc"}), "--seed 'abc'");
  ExpectSetupError(Run({"--parallel", "0", "--store", "memory://"}), "--parallel 0");
  ExpectSetupError(Run({"--agents", "0", "--store", "memory://"}), "--agents 0");
  ExpectSetupError(Run({"--gate", "p99_ms"}), "use NAME=LIMIT");
  ExpectSetupError(Run({"--gate", "p99_ms=-3"}), "non-negative");
  ExpectSetupError(
      Run({"--gate", "no_such_gate=1", "--store", "memory://", "--report-dir", Reports()}),
      "no selected scenario has a gate of that name");
  ExpectSetupError(Run({"--shard", "3/2"}), "bad --shard '3/2'");
  ExpectSetupError(Run({"--shard", "1"}), "bad --shard '1'");
  ExpectSetupError(Run({"merge"}), "dirs is required");
  ExpectSetupError(Run({"--duration", "5x"}), "bad duration '5x'");
  ExpectSetupError(Run({"--duration", "2d"}), "outside 24s..24h");
  // chaos --faults names faults the store offers; the error lists them.
  ExpectSetupError(Run({"chaos", "--faults", "sqlite_write_lock,agentstated_kill", "--store",
                        "sqlite://" + (dir_ / "c.db").string(), "--report-dir", Reports()}),
                   "--faults: this store offers no fault 'agentstated_kill'; it offers: "
                   "sqlite_write_lock");
  EXPECT_TRUE(NoReports());
}

TEST_F(AgentloadCli, BadStoresExitTwoNamingTheUri) {
  ExpectSetupError(Run({"--store", "state.db", "--report-dir", Reports()}), "expected scheme://");
  ExpectSetupError(Run({"--store", "mongodb://x", "--report-dir", Reports()}),
                   "known schemes: http://, https://, memory://, postgresql://, redis://, "
                   "redis+cluster://, sqlite://");
  ExpectSetupError(Run({"--store", "sqlite:///proc/agentstate/x.db", "--report-dir", Reports()}),
                   "/proc/agentstate");
  ExpectSetupError(
      Run({"--clickhouse", "clickhouse://127.0.0.1:1/default", "--report-dir", Reports()}),
      "sits behind the tiered store");
  ExpectSetupError(Run({"--flush-window", "5x", "--report-dir", Reports()}),
                   "bad --flush-window '5x'");
  ExpectSetupError(
      Run({"--flush-window", "50ms", "--store", "memory://", "--report-dir", Reports()}),
      "applies to the tiered store");
  // --redis with --postgres is the tiered store: its tiers are checked when it opens.
  auto tiers_down = Run({"--redis", "redis://:pw@127.0.0.1:1/0?connect_timeout=200ms", "--postgres",
                         "postgresql://x@127.0.0.1:1/x", "--report-dir", Reports()});
  ExpectSetupError(tiers_down, "scripts/services.sh up");
  EXPECT_THAT(tiers_down.err, ::testing::Not(HasSubstr(":pw@"))) << "password leaked";
  // --redis alone is the Redis store: nothing listens on port 1.
  auto down = Run(
      {"--redis", "redis://:pw@127.0.0.1:1/0?connect_timeout=200ms", "--report-dir", Reports()});
  ExpectSetupError(down, "scripts/services.sh up");
  EXPECT_THAT(down.err, ::testing::Not(HasSubstr(":pw@"))) << "password leaked";
  auto pg_down = Run({"--postgres", "postgresql://u:pw@127.0.0.1:1/x?connect_timeout=1s",
                      "--report-dir", Reports()});
  ExpectSetupError(pg_down, "scripts/services.sh up");
  EXPECT_THAT(pg_down.err, ::testing::Not(HasSubstr(":pw@"))) << "password leaked";
  auto env =
      Run({"--report-dir", Reports()}, {{"AGENTSTATE_REDIS_URL", "redis://:pw@127.0.0.1:1/0"}});
  ExpectSetupError(env, "redis://:***@127.0.0.1:1/0");
  EXPECT_THAT(env.err, ::testing::Not(HasSubstr(":pw@"))) << "password leaked";
  EXPECT_TRUE(NoReports());
}

// --check: the preflight the pytest plugin runs before it collects a scenario.
TEST_F(AgentloadCli, CheckOpensTheStoreAndRunsNoLoad) {
  auto ready = Run({"--check", "--quick", "--test", "burst_traffic_handling", "--store",
                    "memory://", "--report-dir", Reports()});
  EXPECT_EQ(ready.code, 0) << ready.err;
  EXPECT_THAT(ready.out, HasSubstr("ready: 1 scenario(s) on memory://"));
  EXPECT_TRUE(NoReports()) << "a check ran load";
  ExpectSetupError(Run({"--check", "--store", "mongodb://x", "--report-dir", Reports()}),
                   "known schemes");
  ExpectSetupError(Run({"--check", "--store", "redis://127.0.0.1:1", "--report-dir", Reports()}),
                   "127.0.0.1:1");
}

TEST_F(AgentloadCli, ALockedDatabaseFileExitsTwo) {
  const fs::path db = dir_ / "locked.db";
  sqlite3* holder = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &holder), SQLITE_OK);
  ASSERT_EQ(
      sqlite3_exec(
          holder,
          "PRAGMA journal_mode=WAL; CREATE TABLE t(x); BEGIN IMMEDIATE; INSERT INTO t VALUES(1);",
          nullptr, nullptr, nullptr),
      SQLITE_OK);
  auto o = Run({"--store", "sqlite://" + db.string(), "--report-dir", Reports()});
  ExpectSetupError(o, "another process holds its write lock");
  sqlite3_exec(holder, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(holder);
  EXPECT_TRUE(NoReports());
}

TEST_F(AgentloadCli, AnUnwritableReportDirectoryExitsTwo) {
  ExpectSetupError(Run({"--store", "memory://", "--report-dir", "/proc/agentload-reports"}),
                   "/proc/agentload-reports");
  std::ofstream(dir_ / "a_file") << "x";
  ExpectSetupError(
      Run({"--store", "memory://", "--report-dir", (dir_ / "a_file" / "sub").string()}), "a_file");
}

TEST_F(AgentloadCli, ARunWritesReportsAndPrintsEveryGate) {
  // Latency is the benchmarks' business, not this test's: the latency gates are opened wide
  // so the test asserts the reports whatever the build (sanitizers, debug) or machine load.
  auto o = Run({"--test", "100_concurrent_agents_baseline", "--store",
                "sqlite://" + (dir_ / "s.db").string(), "--report-dir", Reports(), "--seed", "7",
                "--gate", "p50_ms=1e6", "--gate", "p99_ms=1e6", "--verbose"});
  ASSERT_EQ(o.code, 0) << o.out << o.err;
  EXPECT_THAT(o.out, HasSubstr("PASS 100_concurrent_agents_baseline"));
  for (const char* gate :
       {"succeeded", "availability_percent", "p50_ms", "p99_ms", "peak_memory_mb", "corruption",
        "throughput_agents_per_s", "lost_writes"}) {
    EXPECT_THAT(o.out, HasSubstr(std::string(gate) + ": ")) << gate;
  }
  fs::path report;
  for (const auto& e : fs::directory_iterator(Reports())) {
    if (e.path().filename().string().rfind("100_concurrent_agents_baseline_", 0) == 0)
      report = e.path();
  }
  ASSERT_FALSE(report.empty());
  auto j = nlohmann::json::parse(std::ifstream(report));
  EXPECT_EQ(j["test_name"], "100_concurrent_agents_baseline");
  EXPECT_TRUE(j["timestamp"].is_number_integer());
  EXPECT_THAT(j["generated_at"].get<std::string>(),
              ::testing::MatchesRegex("....-..-..T..:..:..Z"));
  EXPECT_EQ(j["metrics"]["agents"]["executed"], 100);
  EXPECT_EQ(j["metrics"]["agents"]["succeeded"], 100);
  for (const char* k : {"avg_latency_ms", "p50_latency_ms", "p95_latency_ms", "p99_latency_ms"}) {
    EXPECT_GT(j["metrics"]["performance"][k].get<double>(), 0) << k;
  }
  EXPECT_GT(j["metrics"]["resources"]["peak_memory_mb"].get<double>(), 0);
  EXPECT_EQ(j["metrics"]["sla_compliance"]["data_integrity_issues"], 0);
  EXPECT_EQ(j["additional_data"]["ledger"]["acked_writes"], 100);
  EXPECT_EQ(j["additional_data"]["seed"], 7);
  EXPECT_TRUE(j.contains("raw_metrics"));
  EXPECT_EQ(j["additional_data"]["time_series"]["columns"][6], "p99_ms");
  EXPECT_GE(j["additional_data"]["time_series"]["rows"].size(), 1u);
  EXPECT_EQ(j["raw"]["phases"][0]["executed"], 100);
  std::ifstream junit(fs::path(Reports()) / "junit.xml");
  std::string xml((std::istreambuf_iterator<char>(junit)), std::istreambuf_iterator<char>());
  EXPECT_THAT(
      xml,
      HasSubstr("<testsuite name=\"100_concurrent_agents_baseline\" tests=\"11\" failures=\"0\""));
  EXPECT_THAT(xml, HasSubstr("name=\"lost_writes\""));
  auto summary = nlohmann::json::parse(std::ifstream(fs::path(Reports()) / "summary.json"));
  EXPECT_EQ(summary["passed"], true);
  for (const auto& e : fs::directory_iterator(Reports())) {
    EXPECT_EQ(e.path().string().find(".tmp"), std::string::npos)
        << "temporary file left: " << e.path();
  }
}

TEST_F(AgentloadCli, WithoutVerboseOnlyFailedGatesAreListed) {
  auto o = Run({"--test", "100_concurrent_agents_baseline", "--store", "memory://", "--report-dir",
                Reports(), "--gate", "corruption=0", "--gate", "p99_ms=0"});
  EXPECT_EQ(o.code, 1);
  EXPECT_THAT(o.out, HasSubstr("FAIL p99_ms:"));
  EXPECT_THAT(o.out, ::testing::Not(HasSubstr("corruption:")));
  EXPECT_EQ(std::count(o.out.begin(), o.out.end(), '\n'), 5)
      << o.out;  // header, scenario, gate, total, reports
}

TEST_F(AgentloadCli, AStricterGateFailsTheRunWithExitOne) {
  auto o = Run({"--test", "100_concurrent_agents_baseline", "--store", "memory://", "--report-dir",
                Reports(), "--gate", "throughput_agents_per_s=1e12"});
  EXPECT_EQ(o.code, 1) << o.out << o.err;
  EXPECT_THAT(o.out, HasSubstr("FAIL 100_concurrent_agents_baseline"));
  EXPECT_THAT(o.out, HasSubstr("FAIL throughput_agents_per_s:"));
  EXPECT_THAT(o.out, HasSubstr(">= 1e+12 agents/s"));
}

TEST_F(AgentloadCli, ConfirmFailuresRerunsAScenarioThatMissedOnlyAPerformanceGate) {
  auto o = Run({"--test", "100_concurrent_agents_baseline", "--store", "memory://", "--report-dir",
                Reports(), "--gate", "p50_ms=0", "--confirm-failures"});
  EXPECT_EQ(o.code, 1) << o.out << o.err;  // the rerun misses it too
  EXPECT_THAT(o.out, HasSubstr("rerun: the first attempt missed p50_ms:"));
  std::ifstream in(fs::path(Reports()) / "summary.json");
  const auto summary = nlohmann::json::parse(in);
  const auto& first = summary.at("scenarios").at(0).at("first_attempt_failed_gates");
  ASSERT_EQ(first.size(), 1u) << summary.dump();
  EXPECT_THAT(first.at(0).get<std::string>(), HasSubstr("p50_ms"));
  // Without the flag the scenario runs once.
  auto once = Run({"--test", "100_concurrent_agents_baseline", "--store", "memory://",
                   "--report-dir", Reports(), "--gate", "p50_ms=0"});
  EXPECT_EQ(once.code, 1);
  EXPECT_THAT(once.out, ::testing::Not(HasSubstr("rerun:")));
}

TEST(ConfirmFailures, NeverRerunsPastAGateOnTheData) {
  load::ScenarioResult r;
  load::GateResult latency;
  latency.spec = {"p99_ms", "p99_ms", load::Compare::kAtMost, 200, "ms"};
  latency.measured = 250;
  latency.measured_present = true;
  r.gates = {latency};
  EXPECT_THAT(RerunnableFailures(r), ::testing::ElementsAre(HasSubstr("p99_ms")));
  load::GateResult lost;
  lost.spec = load::DataGate("lost_writes");
  lost.measured = 1;
  lost.measured_present = true;
  r.gates.push_back(lost);
  EXPECT_TRUE(RerunnableFailures(r).empty());
  r.gates = {latency};
  r.invalid = true;  // the generator was the bottleneck: a rerun would not be a confirmation
  EXPECT_TRUE(RerunnableFailures(r).empty());
  r.invalid = false;
  r.gates[0].passed = true;
  EXPECT_TRUE(RerunnableFailures(r).empty());
}

TEST_F(AgentloadCli, ShardsMergeIntoTheVerdictOfTheWholeRun) {
  const std::string s0 = (dir_ / "s0").string(), s1 = (dir_ / "s1").string(),
                    merged = (dir_ / "m").string();
  const std::string t = "--test=100_concurrent_agents_baseline";
  auto a = Run({t, "--store", "memory://", "--seed", "4", "--shard", "0/2", "--report-dir", s0});
  auto b = Run({t, "--store", "memory://", "--seed", "4", "--shard", "1/2", "--report-dir", s1});
  ASSERT_EQ(a.code, 0) << a.out << a.err;  // a shard's own gates are not the verdict
  ASSERT_EQ(b.code, 0) << b.out << b.err;
  EXPECT_THAT(a.out, HasSubstr("50/50"));
  auto m = Run({"merge", s0, s1, "--report-dir", merged});
  ASSERT_EQ(m.code, 0) << m.out << m.err;
  EXPECT_THAT(m.out, HasSubstr("2 shards merged"));
  EXPECT_THAT(m.out, HasSubstr("100/100"));
  ExpectSetupError(Run({"merge", s0, "--report-dir", merged}), "1 of 2 shards given");
  ExpectSetupError(Run({"merge", s0, s0, "--report-dir", merged}), "given twice");
  // A shard written by another version of the scenario cannot be merged.
  for (const auto& e : fs::directory_iterator(s1)) {
    if (e.path().filename().string().rfind("100_", 0) != 0) continue;
    auto j = nlohmann::json::parse(std::ifstream(e.path()));
    j["raw"]["scenario_version"] = "0000000000000000";
    std::ofstream(e.path()) << j.dump();
  }
  ExpectSetupError(Run({"merge", s0, s1, "--report-dir", merged}),
                   "another version of the scenario");
}

// Every store error left an empty report directory behind: it was made before the store
// was opened.
TEST_F(AgentloadCli, AStoreThatCannotBeOpenedLeavesNoReportDirectory) {
  const fs::path reports = dir_ / "deep" / "reports";
  ExpectSetupError(
      Run({"--store", "sqlite:///proc/agentstate/x.db", "--report-dir", reports.string()}),
      "/proc/agentstate");
  EXPECT_FALSE(fs::exists(dir_ / "deep")) << "the failed run left " << reports << " behind";
}

// A store URI with invalid UTF-8 ran to the end, then dump() threw and no report was
// written: the whole run was lost. It is now refused before anything runs.
TEST_F(AgentloadCli, AStoreUriThatIsNotUtf8IsASetupError) {
  ExpectSetupError(
      Run({"--store", "sqlite://" + (dir_ / "bad\xff.db").string(), "--report-dir", Reports()}),
      "not valid UTF-8");
  EXPECT_FALSE(fs::exists(Reports()));
}

// A run whose report directory held a foreign *.json wrote its JSON and JUnit, then aborted
// (SIGABRT) while building index.html, leaving a half-written report directory.
TEST_F(AgentloadCli, AForeignJsonBesideTheReportsNeverCostsTheRunItsReports) {
  fs::create_directories(Reports());
  const std::vector<std::string> foreign = {
      R"([1, 2, 3])", R"({"test_name": 7, "raw": {}})",
      R"({"test_name": "100_concurrent_agents_baseline", "raw": {}, "timestamp": "tomorrow"})",
      R"({"test_name": "100_concurrent_agents_baseline", "raw": {}, "timestamp": 99999999999, "gates": 5,
          "metrics": [], "additional_data": {"phases": 3, "time_series": {"rows": [[1], "x"]}}})",
      "{\"truncated\": "};
  for (std::size_t i = 0; i < foreign.size(); ++i)
    std::ofstream(Reports() + "/foreign" + std::to_string(i) + ".json") << foreign[i];
  auto o = Run({"--test", "100_concurrent_agents_baseline", "--store", "memory://", "--report-dir",
                Reports(), "--gate", "p50_ms=1e6", "--gate", "p99_ms=1e6"});
  ASSERT_EQ(o.code, 0) << o.out << o.err;
  ASSERT_TRUE(fs::exists(Reports() + "/index.html"));
  std::ifstream html(Reports() + "/index.html");
  const std::string page((std::istreambuf_iterator<char>(html)), std::istreambuf_iterator<char>());
  EXPECT_THAT(page, HasSubstr("100 / 100"))
      << "index.html shows the foreign file, not the run's report";
  auto again = Run({"report", Reports()});
  EXPECT_EQ(again.code, 0) << again.err;
}

namespace {

// The JSON pointers of a document, in document order: every member and the first elements of every
// array, down to `depth` levels: the fields the program itself reads. What lies deeper (the raw
// measurements) is fuzz_report's.
void Pointers(const nlohmann::json& j, const nlohmann::json::json_pointer& at,
              std::vector<nlohmann::json::json_pointer>& out, int depth) {
  if (depth == 0) return;
  if (j.is_object()) {
    for (const auto& [k, v] : j.items()) {
      out.push_back(at / k);
      Pointers(v, at / k, out, depth - 1);
    }
  } else if (j.is_array()) {
    for (std::size_t i = 0; i < j.size() && i < 3; ++i) {
      out.push_back(at / i);
      Pointers(j[i], at / i, out, depth - 1);
    }
  }
}

}  // namespace

// `agentload merge` read out of bounds (ASan: heap-buffer-overflow) on a report with
// "additional_data": {}, and merge and report aborted on foreign or odd JSON. A sweep over
// truncated files and over every field of the top two levels deleted, nulled or retyped:
// each run ends with an exit status and, when it is 2, one line that names the problem; none
// aborts. (Built with sanitizers, an out-of-bounds read here fails the test.) The reader of
// the raw measurements below them is fuzzed in-process by fuzz/fuzz_report.cpp: a process
// per variant costs 0.13 s under ASan, and 1,700 of them were most of that stage.
TEST_F(AgentloadCli, MergeAndReportNeverAbortOnTruncatedOrForeignReports) {
  const std::string s0 = (dir_ / "s0").string(), s1 = (dir_ / "s1").string();
  const std::string t = "--test=100_concurrent_agents_baseline";
  ASSERT_EQ(
      Run({t, "--store", "memory://", "--seed", "4", "--shard", "0/2", "--report-dir", s0}).code,
      0);
  ASSERT_EQ(
      Run({t, "--store", "memory://", "--seed", "4", "--shard", "1/2", "--report-dir", s1}).code,
      0);
  fs::path scenario;
  for (const auto& e : fs::directory_iterator(s1)) {
    if (e.path().filename().string().rfind("100_", 0) == 0) scenario = e.path();
  }
  ASSERT_FALSE(scenario.empty());
  std::string text;
  {
    std::ifstream in(scenario);
    text.assign((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  const nlohmann::json doc = nlohmann::json::parse(text);
  std::vector<std::string> variants;
  for (std::size_t cut = 0; cut < text.size(); cut += std::max<std::size_t>(1, text.size() / 12)) {
    variants.push_back(text.substr(0, cut));
  }
  std::vector<nlohmann::json::json_pointer> pointers;
  Pointers(doc, nlohmann::json::json_pointer(), pointers, 2);
  const nlohmann::json odd[] = {
      nullptr, -1, 1e300, "x", nlohmann::json::array(), nlohmann::json::object()};
  for (std::size_t i = 0; i < pointers.size(); ++i) {
    nlohmann::json deleted = doc;
    nlohmann::json& parent = deleted.at(pointers[i].parent_pointer());
    if (parent.is_object()) {
      parent.erase(pointers[i].back());
    } else {
      parent.erase(static_cast<std::size_t>(std::stoul(pointers[i].back())));
    }
    variants.push_back(deleted.dump());
    nlohmann::json retyped = doc;
    retyped.at(pointers[i]) = odd[i % std::size(odd)];
    variants.push_back(retyped.dump());
  }
  const std::string merged = (dir_ / "m").string();
  int exits[4] = {0, 0, 0, 0};
  for (const auto& v : variants) {
    std::ofstream(scenario, std::ios::trunc) << v;
    for (const auto& o : {Run({"merge", s0, s1, "--report-dir", merged}), Run({"report", s1})}) {
      ASSERT_GE(o.code, 0);
      ASSERT_LE(o.code, 3) << o.err;
      ++exits[o.code];
      if (o.code == 2) {
        EXPECT_THAT(o.err, HasSubstr("agentload: error: "));
        EXPECT_THAT(o.err, ::testing::Not(HasSubstr("[json.exception")))
            << "raw library text: " << o.err;
      }
    }
  }
  EXPECT_GT(exits[2], 0) << "no variant was refused: the sweep did not reach the readers";
  EXPECT_GT(exits[0] + exits[1], 0)
      << "every variant was refused: the sweep only tested the first check";
}

// The seed suite read its report directory from LOAD_TEST_REPORT_DIR; so do we, when
// --report-dir is not given.
TEST_F(AgentloadCli, TheReportDirectoryComesFromLoadTestReportDirWhenNotGiven) {
  const std::string from_env = (dir_ / "from_env").string();
  auto o = Run({"--test", "100_concurrent_agents_baseline", "--store", "memory://", "--gate",
                "p50_ms=1e6", "--gate", "p99_ms=1e6"},
               {{"LOAD_TEST_REPORT_DIR", from_env}});
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_TRUE(fs::exists(from_env + "/summary.json"));
  auto flag = Run({"--test", "100_concurrent_agents_baseline", "--store", "memory://",
                   "--report-dir", Reports(), "--gate", "p50_ms=1e6", "--gate", "p99_ms=1e6"},
                  {{"LOAD_TEST_REPORT_DIR", from_env + "2"}});
  ASSERT_EQ(flag.code, 0) << flag.err;
  EXPECT_TRUE(fs::exists(Reports() + "/summary.json")) << "--report-dir wins over the variable";
  EXPECT_FALSE(fs::exists(from_env + "2"));
}

// The seed suite left out long tests with -m "load and not slow"; --tag and --exclude-tag
// select scenarios by tag the same way, and AGENTSTATE_DEBUG=1 logs each phase.
TEST_F(AgentloadCli, TagsSelectScenariosAndDebugLogsEachPhase) {
  auto list = Run({"--list"});
  EXPECT_THAT(list.out, HasSubstr("sustained_load_24h_simulation"));
  EXPECT_THAT(list.out, HasSubstr("[slow]"));
  ExpectSetupError(Run({"--tag", "nosuch", "--report-dir", Reports()}),
                   "unknown tag 'nosuch'; known: faults, slow");
  ExpectSetupError(
      Run({"--test", "100_concurrent_agents_baseline", "--tag", "slow", "--report-dir", Reports()}),
      "no scenario is left");
  // The engine's debug lines go to the process's stderr, not to the `err` stream.
  ::testing::internal::CaptureStderr();
  auto o = Run({"--quick", "--tag", "slow", "--store", "memory://", "--report-dir", Reports(),
                "--gate", "mean_hourly_mean_ms=1e6"},
               {{"AGENTSTATE_DEBUG", "1"}});
  const std::string logged = ::testing::internal::GetCapturedStderr();
  ASSERT_LE(o.code, 1) << o.err;
  EXPECT_THAT(o.out, HasSubstr("sustained_load_24h_simulation"));
  EXPECT_THAT(o.out, ::testing::AnyOf(HasSubstr("1 of 1 scenarios passed"),
                                      HasSubstr("0 of 1 scenarios passed")));
  EXPECT_THAT(logged, HasSubstr("agentload: debug: "));
  EXPECT_THAT(logged, HasSubstr("phase hour_01 starts"));
}

}  // namespace
}  // namespace agentstate::agentload
