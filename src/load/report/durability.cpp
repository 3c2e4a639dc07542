#include "load/report/durability.hpp"

#include <fmt/format.h>

namespace agentstate::load {

std::string DurabilityContract(const std::string& store_uri) {
  if (store_uri.rfind("sqlite://", 0) == 0) {
    return "embedded SQLite: WAL, synchronous=NORMAL, one writer with group commit. A save is "
           "acknowledged "
           "after its transaction commits to the WAL: a process crash loses nothing acknowledged; "
           "an OS crash or "
           "power loss can lose commits the OS had not yet written. Critical saves write their "
           "checkpoint in the "
           "same transaction.";
  }
  if (store_uri.rfind("memory://", 0) == 0)
    return "in-process memory: nothing survives the process.";
  if (store_uri.rfind("redis://", 0) == 0) {
    return "Redis alone: a save is acknowledged when the server has applied it in memory; what "
           "survives a server "
           "crash depends on its persistence (scripts/services.sh runs AOF with appendfsync "
           "everysec: up to 1 s).";
  }
  if (store_uri.rfind("postgresql://", 0) == 0) {
    return "PostgreSQL alone: a save is acknowledged after its transaction commits, with the "
           "server's "
           "synchronous_commit (on in scripts/services.sh: nothing acknowledged is lost in a "
           "crash).";
  }
  return "unknown";
}

std::string DurabilityContract(const std::string& hot, const std::string& durable,
                               std::chrono::milliseconds window, std::optional<bool> aof,
                               std::optional<bool> synchronous_commit) {
  return fmt::format(
      "tiered: hot {} in front of durable {}. auto saves are acknowledged by the hot tier and "
      "written behind by this "
      "process within a {} ms flush window (coalesced per run): PostgreSQL lags by at most {} ms "
      "of them, and a crash "
      "of this process loses at most that much from PostgreSQL. Redis keeps them {}; a run Redis "
      "lost entirely is "
      "read back from the queue or PostgreSQL. manual, critical and recovery saves are "
      "acknowledged only after the "
      "PostgreSQL commit, {}.",
      hot, durable, window.count(), window.count(),
      aof ? (*aof ? "in its AOF (appendfsync everysec: a killed redis-server loses nothing the "
                    "kernel has; an OS crash "
                    "up to 1 s)"
                  : "in memory only (AOF off: a Redis restart drops them)")
          : "as far as its persistence allows (AOF state unknown)",
      synchronous_commit
          ? (*synchronous_commit
                 ? "with synchronous_commit on: none is lost in a crash"
                 : "but synchronous_commit is off: an OS crash can lose the last ones")
          : "synchronous_commit unknown");
}

}  // namespace agentstate::load
