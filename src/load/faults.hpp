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
// All three are one mechanism: another client takes a lock on the store's write path and
// gives it back on a schedule.
// The TCP fault proxy and chaos mode are issue 7's.
#pragma once

#include <chrono>
#include <memory>
#include <string_view>

#include "agentstate/status.hpp"
#include "load/scenario.hpp"

namespace agentstate::load {

// Null when the store offers no fault (the scenario then reports that none ran).
Result<std::unique_ptr<Fault>> MakeFault(std::string_view store_uri);

// The sqlite write-lock fault, with its rhythm: hold `on`, release for `off`, repeat.
std::unique_ptr<Fault> SqliteWriteLockFault(std::string path, std::chrono::milliseconds on,
                                            std::chrono::milliseconds off);

}  // namespace agentstate::load
