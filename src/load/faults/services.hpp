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

// Whether `pid` still runs: a zombie (exited, not yet reaped) counts as gone once it is the
// last of its threads (the others may still hold its sockets while a big heap unmaps).
bool ProcessAlive(int pid);

struct LocalService {
  std::string name;  // "redis" | "postgres" | "clickhouse"
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
  // Kills the service as a crash would and waits until it is gone: SIGKILL for redis and
  // clickhouse; for postgres SIGQUIT, its immediate shutdown (the postmaster kills every
  // backend at once, without a checkpoint; the next start runs crash recovery). A SIGKILLed
  // postmaster would leave its backends holding the shared memory, and no new one could start.
  Result<std::chrono::microseconds> Kill(std::string_view name, std::chrono::seconds timeout);
  // Runs the recorded start command of a service that is not running and waits until a new
  // process runs; kInvalidArgument when it is still running.
  Result<std::chrono::microseconds> Restart(std::string_view name, std::chrono::seconds timeout);
  // Kill, then Restart; returns the whole outage as the harness caused it.
  Result<std::chrono::microseconds> KillAndRestart(std::string_view name,
                                                   std::chrono::seconds timeout);
  // Whether `authority` ("host:port") is the address of the service scripts/services.sh
  // started (its env file names it): faults are injected only into the service a store uses.
  bool Serves(std::string_view name, std::string_view authority) const;
  // The "host:port" its env file names for the service (for redis-cluster-N, its recorded
  // start command's --bind and --port); empty when it names none.
  std::string Authority(std::string_view name) const;

 private:
  std::filesystem::path dir_;
};

}  // namespace agentstate::load
