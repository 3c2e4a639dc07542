// agentload: runs the production load scenarios against a store and gates on the SLA.
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "cli.hpp"

extern char** environ;

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  std::map<std::string, std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string kv(*e);
    auto eq = kv.find('=');
    // Ours, and the seed suite's report directory variable.
    const bool ours = kv.rfind("AGENTSTATE_", 0) == 0 || kv.rfind("LOAD_TEST_REPORT_DIR=", 0) == 0;
    if (eq != std::string::npos && ours) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  try {
    return agentstate::agentload::AgentloadMain(args, env, std::cout, std::cerr);
  } catch (const std::exception& e) {
    // A bug, never an expected outcome: one line and the setup status, not an abort.
    std::cerr << "agentload: error: internal error (" << e.what()
              << "); please report it with the command line\n";
    return 2;
  }
}
