// Real faults the harness can inject in the path to a store. Which one depends on the store:
//   sqlite://PATH  another connection takes the database's write lock in bursts, as a
//                  long-running writer in another process would: saves wait and time out,
//                  reads carry on (WAL).
//   redis://       the server holds every write for 400 ms, then lets writes through for
//                  400 ms (CLIENT PAUSE WRITE), repeated: saves wait and time out, reads
//                  carry on. It pauses every client of that server: use a server of your own.
//   postgresql://  another session holds LOCK TABLE runs IN EXCLUSIVE MODE for 400 ms, then
//                  lets go for 400 ms, repeated: saves wait and time out, reads carry on.
//   memory://      none: it runs in-process, and nothing real can stand between us and it.
//   http://        agentstated itself, killed (SIGKILL) and started again as it was
//                  (server_process.hpp), when it listens on loopback and is this user's.
// All three are one mechanism: another client takes a lock on the store's write path and
// gives it back on a schedule.
// The TCP fault proxy and chaos mode are issue 7's.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

#include "agentstate/status.hpp"
#include "load/engine/scenario.hpp"

namespace agentstate::load {

class FaultProxy;

// The faults one run can inject, owned, by name.
struct RunFaults {
  std::vector<std::pair<std::string, std::unique_ptr<Fault>>> faults;
  std::vector<std::string> skipped;  // "redis_kill: why", for faults this run cannot inject
  // Tiered: the proxy in front of the hot tier, and the hot URI that goes through it. The
  // scenarios that inject faults use a store opened on that URI.
  std::unique_ptr<FaultProxy> proxy;
  std::string proxied_hot_uri;

  RunFaults();
  RunFaults(RunFaults&&) noexcept;
  RunFaults& operator=(RunFaults&&) noexcept;
  ~RunFaults();
  std::vector<std::string> names() const;
  std::vector<NamedFault> view() const;
};

// A single store's fault (named "<scheme>_write_lock"); none for memory://.
Result<RunFaults> MakeStoreFaults(std::string_view store_uri);

// The tiered store's faults (see above). `services_dir` is where scripts/services.sh keeps
// its pid files and start commands.
Result<RunFaults> MakeTieredFaults(std::string_view hot_uri, std::string_view durable_uri,
                                   std::string_view analytics_uri,
                                   const std::filesystem::path& services_dir);

// Null when the store offers no fault (the scenario then reports that none ran).
Result<std::unique_ptr<Fault>> MakeFault(std::string_view store_uri);

// The sqlite write-lock fault, with its rhythm: hold `on`, release for `off`, repeat.
std::unique_ptr<Fault> SqliteWriteLockFault(std::string path, std::chrono::milliseconds on,
                                            std::chrono::milliseconds off);

}  // namespace agentstate::load
