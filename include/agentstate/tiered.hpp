// The tiered store: a hot store (redis://, memory://) in front of a durable one
// (postgresql://, sqlite://), with an optional analytics tier (clickhouse://) behind.
//
//   - `auto` saves are acknowledged once the hot tier has them and written behind to the
//     durable tier within the flush window, coalesced per run (the window is the stated
//     recovery point objective of auto saves);
//   - saves that keep a checkpoint (manual, critical, recovery points) are acknowledged only
//     after the durable commit;
//   - reads go to the hot tier and, on a miss, to the newest of the write-behind queue and
//     the durable tier, re-hydrating the hot tier;
//   - a hot tier that is down is bypassed: reads and writes go to the durable tier;
//   - the analytics tier gets one event per operation (never waited for) and the archive of
//     completed runs.
//
// Opened by OpenTieredStore (agentstate/registry.hpp). The TieredStore interface below is
// what a caller may do beyond StateStore: flush the write-behind, reach each tier on its own
// (to check it, or to report it), and read what the analytics tier recorded.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "agentstate/asio.hpp"
#include "agentstate/model.hpp"
#include "agentstate/state_store.hpp"
#include "agentstate/status.hpp"

namespace agentstate {

struct TieredOptions {
  // The write-behind flush window for auto saves. Must be > 0.
  std::chrono::milliseconds flush_window{100};
  // Dirty runs the write-behind queue holds at most; beyond, saves write through to the
  // durable tier before they are acknowledged.
  std::size_t max_pending_runs = 100000;
  // Deadline of one write-behind Put.
  std::chrono::milliseconds put_timeout{5000};
};

// The analytics tier as its server has recorded it, for this process's session only.
class Analytics {
 public:
  virtual ~Analytics() = default;

  // The tier's URI without its password.
  virtual std::string Describe() const = 0;
  // Sends everything buffered now; kUnavailable when the server would not take it.
  virtual Status Flush() = 0;
  // Events per operation, operations per minute per operation, P99 latency per operation
  // in ms, and completed runs archived, as the server has them.
  virtual Result<std::map<std::string, uint64_t>> EventsByOp() = 0;
  virtual Result<std::map<std::string, double>> OpsPerMinuteByOp() = 0;
  virtual Result<std::map<std::string, double>> P99MsByOp() = 0;
  virtual Result<uint64_t> ArchivedRuns() = 0;

  struct Counters {
    uint64_t recorded = 0;        // events handed to the tier
    uint64_t sent = 0;            // events the server accepted
    uint64_t dropped_events = 0;  // events dropped (buffer full, or a batch refused after retries)
    // Events sent in tries that failed after the whole INSERT was sent (one count per such
    // try): the server may hold them although dropped, or twice after a retry.
    uint64_t in_doubt_events = 0;
    uint64_t dropped = 0;  // all rows dropped, archive rows included
    uint64_t buffered = 0, batches = 0, retries = 0, failed_batches = 0, archived = 0;
    bool failing = false;  // the last batch was refused after its retries (until one succeeds)
  };
  // Callable from any thread.
  virtual Counters stats() const = 0;
};

class TieredStore : public StateStore {
 public:
  // Writes every pending run to the durable tier now; kUnavailable naming how many are left
  // when the durable tier refuses.
  virtual Awaitable<Status> Flush(Deadline deadline) = 0;

  // Each tier on its own. Writing to a tier directly bypasses the tiered store's policy:
  // read, check and describe them; write through the tiered store.
  virtual StateStore& hot() = 0;
  virtual StateStore& durable() = 0;
  // Null without an analytics tier.
  virtual Analytics* analytics() = 0;
  virtual const TieredOptions& tiered_options() const = 0;
};

}  // namespace agentstate
