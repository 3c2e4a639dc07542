// The checkpoint model (agentstate/checkpoint_store.hpp) in process memory: for unit tests
// and as memory://'s own. One mutex guards everything; every call completes inline.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <tuple>

#include "agentstate/checkpoint_store.hpp"
#include "agentstate/options.hpp"
#include "core/checkpoint_rules.hpp"

namespace agentstate::backends::memory {

class MemoryCheckpoints final : public CheckpointStore {
 public:
  explicit MemoryCheckpoints(StoreOptions options) : options_(std::move(options)) {}

  Awaitable<Status> PutCheckpoint(CheckpointPut put, Deadline deadline) override;
  Awaitable<Status> PutWrites(std::string thread_id, std::string ns, std::string checkpoint_id,
                              std::string task_id, std::string task_path,
                              std::vector<std::pair<std::string, TypedValue>> writes,
                              Deadline deadline) override;
  Awaitable<Result<std::optional<CheckpointTuple>>> GetCheckpoint(std::string thread_id,
                                                                  std::string ns,
                                                                  std::string checkpoint_id,
                                                                  Deadline deadline) override;
  Awaitable<Result<std::vector<CheckpointTuple>>> ListCheckpoints(CheckpointListQuery query,
                                                                  Deadline deadline) override;
  Awaitable<Result<uint64_t>> DeleteThread(std::string thread_id, Deadline deadline) override;
  Awaitable<Result<uint64_t>> CopyThread(std::string from, std::string to,
                                         Deadline deadline) override;
  Awaitable<Result<PurgeReport>> Prune(std::string thread_id, std::string thread_prefix,
                                       RetentionPolicy policy, Deadline deadline) override;
  Awaitable<Result<PurgeReport>> DeleteForRuns(std::vector<std::string> run_ids,
                                               std::string thread_prefix,
                                               Deadline deadline) override;

  // Test hook: flips one bit of a stored channel value. False when there is none.
  bool CorruptValueForTest(const std::string& thread_id, const std::string& ns,
                           const std::string& channel, const std::string& version);

 private:
  using CheckpointKey = std::tuple<std::string, std::string, std::string>;  // thread, ns, id
  using ValueKey =
      std::tuple<std::string, std::string, std::string, std::string>;  // + channel, version
  using WriteKey = std::tuple<std::string, std::string, std::string, std::string, int64_t>;
  struct Stored {
    std::string parent_id, checkpoint, metadata;
    std::vector<std::pair<std::string, std::string>> versions;  // channel_versions, by channel
  };
  struct StoredWrite {
    std::string task_path, channel;
    core::StoredValue value;
  };

  // All below with mu_ held.
  using CheckpointIt = std::map<CheckpointKey, Stored>::iterator;
  // The thread's checkpoints, [first, last), in key order.
  std::pair<CheckpointIt, CheckpointIt> ThreadCheckpoints(const std::string& thread_id);
  Result<CheckpointTuple> Tuple(const CheckpointKey& key, const Stored& s) const;
  // After removals from a thread: purges its unused values, and forgets it when empty.
  void Settle(const std::string& thread_id, PurgeReport& report);
  // The newest checkpoint of (thread, ns), or end().
  std::map<CheckpointKey, Stored>::const_iterator Head(const std::string& thread_id,
                                                       const std::string& ns) const;
  // Drops one checkpoint and its writes; counts into `report`.
  void Erase(std::map<CheckpointKey, Stored>::iterator it, PurgeReport& report);
  // Drops values no checkpoint of their (thread, ns) joins.
  uint64_t PurgeValues(const std::string& thread_id);

  const StoreOptions options_;
  mutable std::mutex mu_;
  std::map<CheckpointKey, Stored> checkpoints_;
  std::map<ValueKey, core::StoredValue> values_;
  std::map<WriteKey, StoredWrite> writes_;
  std::map<std::string, int64_t> touched_ms_;  // thread -> last put or write
};

}  // namespace agentstate::backends::memory
