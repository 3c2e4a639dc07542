// sqlite://PATH: the embedded default store. One file, nothing to install.
//
// WAL journal with synchronous=NORMAL (set explicitly: Debian's build defaults to FULL).
// One writer: every write runs on a single dedicated thread with its own connection, so
// version checks and commits are serialised without lock contention inside the process;
// BEGIN IMMEDIATE serialises against other processes. Reads run on a small pool of reader
// threads with their own connections and are never blocked by the writer (WAL snapshots).
// Deadlines: a call that waits in a queue past its deadline is not started; a statement
// that runs past it is interrupted by a progress handler; lock waits end at the deadline.
//
// URI parameters: readers=N (reader threads/connections, default 2, 1..64).
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "agentstate/checkpoint_store.hpp"
#include "agentstate/options.hpp"
#include "agentstate/state_store.hpp"
#include "core/uri.hpp"

namespace agentstate::backends::sqlite {

class SqliteStore final : public StateStore {
 public:
  static Result<std::unique_ptr<StateStore>> Open(const core::ParsedUri& uri,
                                                  const StoreOptions& options);
  ~SqliteStore() override;

  std::string Describe() const override;
  Awaitable<Result<SaveAck>> Save(SaveRequest request, Deadline deadline) override;
  Awaitable<Result<bool>> Put(StateRecord record, Deadline deadline) override;
  Awaitable<Result<std::optional<StateRecord>>> Load(std::string run_id,
                                                     Deadline deadline) override;
  Awaitable<Result<bool>> Delete(std::string run_id, Deadline deadline) override;
  Awaitable<Done> Complete(std::string run_id, Deadline deadline) override;
  Awaitable<Result<CheckpointInfo>> Checkpoint(std::string run_id, CheckpointType type,
                                               Deadline deadline) override;
  Awaitable<Result<std::vector<CheckpointInfo>>> ListCheckpoints(std::string run_id,
                                                                 Deadline deadline) override;
  Awaitable<Result<StateRecord>> Restore(std::string run_id,
                                         std::optional<std::string> checkpoint_id,
                                         Deadline deadline) override;
  Awaitable<Result<std::optional<ThreadContextRecord>>> ThreadContext(std::string thread_id,
                                                                      Deadline deadline) override;
  Awaitable<Result<ActiveRunsPage>> ActiveRuns(ActiveRunsQuery query, Deadline deadline) override;
  Awaitable<Result<uint64_t>> DeletePrefix(std::string prefix, Deadline deadline) override;
  Awaitable<Result<HealthReport>> Health(Deadline deadline) override;
  StoreStats Stats() const override;
  CheckpointStore* Checkpoints() override { return langgraph_.get(); }

  // The schema version this build writes; a file with a newer one is refused.
  static constexpr int kSchemaVersion = 4;

  struct Impl;  // connections, worker threads and SQL; defined in the .cpp

 private:
  // The checkpoint model in the same file (schema 4's lg_* tables), on the same writer and
  // readers.
  class LangGraph;
  explicit SqliteStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  std::unique_ptr<CheckpointStore> langgraph_;
};

}  // namespace agentstate::backends::sqlite
