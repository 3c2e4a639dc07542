// memory://: the whole StateStore contract in process memory. For unit tests, benchmarks
// and as the hot tier in hermetic tests; never a stand-in for a real service in tests that
// claim one. Thread-safe: one mutex guards all state; every call completes inline.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "agentstate/options.hpp"
#include "agentstate/state_store.hpp"
#include "backends/memory/memory_checkpoints.hpp"
#include "core/codec.hpp"
#include "core/uri.hpp"

namespace agentstate::backends::memory {

class MemoryStore final : public StateStore {
 public:
  explicit MemoryStore(StoreOptions options);

  static Result<std::unique_ptr<StateStore>> Open(const core::ParsedUri& uri,
                                                  const StoreOptions& options);

  std::string Describe() const override { return "memory://"; }
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
  CheckpointStore* Checkpoints() override { return &langgraph_; }

  // Test hook: flips one bit of the stored bytes of a run's latest state, as damage at rest
  // would. Returns false when the run does not exist.
  bool CorruptForTest(const std::string& run_id);

 private:
  struct Stored {
    StateRecord meta;  // every field but payload
    core::Encoded body;
    uint64_t payload_bytes = 0;
    int64_t expires_ms = 0;
  };
  struct StoredCheckpoint {
    CheckpointInfo info;
    Stored snapshot;  // the whole record at info.version, so a run can be restored after it expired
    int64_t expires_ms = 0;
  };
  struct StoredThread {
    ThreadContextRecord ctx;
    int64_t expires_ms = 0;
  };

  // All below run with mu_ held.
  Stored* FindLive(const std::string& run_id, int64_t now_ms);
  // Drops expired checkpoints; returns the run's live history (possibly empty).
  std::vector<StoredCheckpoint>& LiveHistory(const std::string& run_id, int64_t now_ms);
  // The run's current version: its live record's, else its newest live checkpoint's, else 0.
  // Versions stay monotonic even when the latest record expires before its recovery points.
  int64_t CurrentVersion(const std::string& run_id, int64_t now_ms);
  Result<StateRecord> Decode(const Stored& s) const;
  void AppendCheckpoint(const Stored& s, CheckpointType type, int64_t now_ms);
  SaveAck Write(Stored next, bool keep_checkpoint, CheckpointType type, SystemTime now);

  const StoreOptions options_;
  MemoryCheckpoints langgraph_{options_};
  mutable std::mutex mu_;
  std::map<std::string, Stored> runs_;  // ordered: ActiveRuns pages by run_id
  std::map<std::string, std::vector<StoredCheckpoint>> checkpoints_;
  std::map<std::string, StoredThread> threads_;

  std::atomic<uint64_t> saves_{0}, loads_{0}, conflicts_{0}, corruptions_{0};
};

}  // namespace agentstate::backends::memory
