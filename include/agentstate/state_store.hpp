// StateStore: the one asynchronous interface every backend implements (DESIGN §4).
//
// Calls are Boost.Asio C++20 coroutines: `co_await store.Save(req, DeadlineIn(200ms))`.
// Every call takes an absolute deadline; when it passes the call completes with kTimeout.
// A timed-out write may or may not have landed (callers must treat it as unknown).
//
// Errors (any call): kTimeout, kUnavailable (the store cannot serve the call),
// kPoolExhausted (admission control), kInternal. Per-call codes are listed below.
//
// Thread-safety: a StateStore may be called from any number of threads and coroutines at
// once. Completions resume on the caller's executor.
// Lifetime: the store must outlive every call it has started; destroying it with calls
// in flight is a bug. Arguments are taken by value, so callers need keep nothing alive.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "agentstate/asio.hpp"
#include "agentstate/model.hpp"
#include "agentstate/status.hpp"

namespace agentstate {

class CheckpointStore;  // agentstate/checkpoint_store.hpp

class StateStore {
 public:
  virtual ~StateStore() = default;

  // The store's URI with any password removed, for logs and reports.
  virtual std::string Describe() const = 0;

  // Writes a new latest version of a run and points its thread's context at it.
  // The store assigns version = previous + 1 (1 for a new run). Saves that keep a checkpoint
  // (see KeepsCheckpoint) also append one to the run's history in the same commit.
  // Errors: kInvalidArgument (bad id, payload not JSON or too large), kConflict (the run is
  // not at request.expected_version, or it is completed). Nothing is written on error.
  virtual Awaitable<Result<SaveAck>> Save(SaveRequest request, Deadline deadline) = 0;

  // --- Replication: Put, PutMany, Generation ---------------------------------------------
  // Public API, documented as replication: what one store needs from another to stand in
  // front of it. They stay on StateStore, not on a second interface, because the tiered
  // store composes any two stores opened by URI: every backend must be usable as either
  // tier, and a separate interface would mean a cast to reach it on each of them. An
  // application saves with Save; Put is for a store (or a tool) that copies what another
  // store acknowledged, such as a migration from one backend to another.
  //
  // Writes `record`, an active run's state as another tier
  // acknowledged it, at exactly record.version and stamped record.saved_at, when that is
  // newer than the run's current version. An older or equal version is ignored and returns
  // false, so replays and reordered write-behind are harmless. A save kind that keeps a
  // checkpoint (KeepsCheckpoint of the record's type) appends one, as Save would. The
  // thread context moves with it. The payload is verified against record.checksum first.
  // Errors: kInvalidArgument (bad ids), kCorruption (payload does not match its checksum).
  virtual Awaitable<Result<bool>> Put(StateRecord record, Deadline deadline) = 0;

  // Put for many records (the tiered store's write-behind). Returns how many were applied.
  // The default is one Put after another; a backend may write them in one transaction (all
  // or none). On error some may have been applied: Put is idempotent, so retrying is safe.
  virtual Awaitable<Result<std::size_t>> PutMany(std::vector<StateRecord> records,
                                                 Deadline deadline);

  // The latest record of a run, or nullopt when there is none (or it expired).
  // Errors: kCorruption when the stored payload fails its checksum or cannot be decoded.
  virtual Awaitable<Result<std::optional<StateRecord>>> Load(std::string run_id,
                                                             Deadline deadline) = 0;

  // Removes a run, its checkpoints, and its thread's context if that points at it.
  // Returns whether the run existed.
  virtual Awaitable<Result<bool>> Delete(std::string run_id, Deadline deadline) = 0;

  // Marks a run completed: it leaves ActiveRuns, takes the completed TTL, and accepts no
  // further saves (kConflict) until restored. Completing a completed run is a no-op.
  // Errors: kNotFound.
  virtual Awaitable<Done> Complete(std::string run_id, Deadline deadline) = 0;

  // Snapshots the run's latest version into its checkpoint history. Idempotent per
  // version: checkpointing an unchanged run returns the existing checkpoint.
  // Errors: kNotFound, kCorruption.
  virtual Awaitable<Result<CheckpointInfo>> Checkpoint(std::string run_id, CheckpointType type,
                                                       Deadline deadline) = 0;

  // The run's checkpoints, oldest first. Empty when the run has none.
  virtual Awaitable<Result<std::vector<CheckpointInfo>>> ListCheckpoints(std::string run_id,
                                                                         Deadline deadline) = 0;

  // Makes a checkpoint (the newest when checkpoint_id is nullopt) the run's latest state
  // again, as a new version; the run becomes active. Returns the new latest record.
  // Errors: kNotFound (no such run or checkpoint), kCorruption.
  virtual Awaitable<Result<StateRecord>> Restore(std::string run_id,
                                                 std::optional<std::string> checkpoint_id,
                                                 Deadline deadline) = 0;

  // The thread's current run, or nullopt.
  virtual Awaitable<Result<std::optional<ThreadContextRecord>>> ThreadContext(
      std::string thread_id, Deadline deadline) = 0;

  // Active (not completed, not expired) runs ordered by run_id, one page at a time.
  // Errors: kInvalidArgument for a malformed cursor or a limit outside 1..10000.
  virtual Awaitable<Result<ActiveRunsPage>> ActiveRuns(ActiveRunsQuery query,
                                                       Deadline deadline) = 0;

  // Removes every run whose id starts with `prefix` (active, completed, or with only
  // checkpoints left), its checkpoints, and every thread context whose thread id starts with
  // it: how agentstated drops a tenant, whose ids it stores as "<tenant>/<id>". Returns how
  // many run records it removed. Not one transaction on every backend, but idempotent: a
  // call cut short is finished by calling again. Errors: kInvalidArgument for an empty
  // prefix; kUnavailable where the store cannot (the http:// client: use the server's admin
  // route).
  virtual Awaitable<Result<uint64_t>> DeletePrefix(std::string prefix, Deadline deadline) = 0;

  // Whether each tier answers, with its latency. Never fails for an unhealthy tier: that is
  // reported in the result. Errors only for kTimeout of the call itself.
  virtual Awaitable<Result<HealthReport>> Health(Deadline deadline) = 0;

  // A snapshot of counters; cheap, non-blocking, callable from any thread.
  virtual StoreStats Stats() const = 0;

  // A number that changes whenever the store may have lost writes it acknowledged: for a
  // client of a server, each dropped connection (the server may have restarted with less
  // than it acknowledged). 0 for stores that keep what they acknowledge. Cheap, callable
  // from any thread. The tiered store re-checks a run's hot version when it changes.
  virtual uint64_t Generation() const { return 0; }

  // LangGraph's checkpoint model (agentstate/checkpoint_store.hpp) in the same database,
  // owned by this store; nullptr where the backend does not offer it yet.
  virtual CheckpointStore* Checkpoints() { return nullptr; }
};

}  // namespace agentstate
