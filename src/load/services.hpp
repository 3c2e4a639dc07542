// Process faults on the local services scripts/services.sh started: pause (SIGSTOP, then
// SIGCONT) and kill -9 followed by a restart with the exact command the script recorded.
// Each is timed. Only processes the script started are touched: the PID must come from the
// service's own pid file (recorded in <dir>/<name>.pidfile) and be running the program the
// recorded start command names; anything else is refused.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>

#include "agentstate/status.hpp"

namespace agentstate::load {

struct LocalService {
  std::string name;     // "redis" | "postgres" | "clickhouse"
  int pid = 0;
  std::string program;  // "redis-server", "postgres", "clickhouse-server"
  std::string start_command;
  std::filesystem::path pidfile;
};

class ServiceControl {
 public:
  // `dir` is AGENTSTATE_SERVICES_DIR (default /tmp/agentstate-services).
  explicit ServiceControl(std::filesystem::path dir);
  static std::filesystem::path DefaultDir();

  // The running service `name`; kInvalidArgument for a name the script does not manage,
  // kUnavailable when it is not running, kInvalidArgument ("refused") when its PID runs
  // another program than the script started.
  Result<LocalService> Find(std::string_view name) const;

  // How long the signal took to take effect.
  Result<std::chrono::microseconds> Pause(std::string_view name);
  Result<std::chrono::microseconds> Resume(std::string_view name);
  // SIGKILL the process and its forked children (they hold its port), wait for them to go,
  // run the recorded start command, wait until a new process is running; returns the
  // whole outage as the harness caused it.
  Result<std::chrono::microseconds> KillAndRestart(std::string_view name, std::chrono::seconds timeout);

 private:
  std::filesystem::path dir_;
};

}  // namespace agentstate::load
