// The fixture of agentload's CLI tests: run AgentloadMain with flags, capture exit status
// and output, and check setup errors are one line.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli.hpp"

namespace agentstate::agentload {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

struct Outcome {
  int code;
  std::string out, err;
};

class AgentloadCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("agentload-cli-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  Outcome Run(std::vector<std::string> args, std::map<std::string, std::string> env = {}) {
    std::ostringstream out, err;
    int code = AgentloadMain(args, env, out, err);
    return {code, out.str(), err.str()};
  }
  // Setup errors are exactly one line on stderr, naming the problem.
  void ExpectSetupError(const Outcome& o, const std::string& needle) {
    EXPECT_EQ(o.code, 2) << o.err;
    EXPECT_THAT(o.err, HasSubstr(needle));
    EXPECT_EQ(std::count(o.err.begin(), o.err.end(), '\n'), 1) << o.err;
    EXPECT_THAT(o.err, ::testing::StartsWith("agentload: error: "));
  }
  std::string Reports() { return (dir_ / "reports").string(); }
  bool NoReports() { return !fs::exists(dir_ / "reports") || fs::is_empty(dir_ / "reports"); }

  fs::path dir_;
};

}  // namespace agentstate::agentload
