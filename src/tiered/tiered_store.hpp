// TieredStoreImpl, behind agentstate::TieredStore (include/agentstate/tiered.hpp): a hot tier
// (redis://, memory://) in front of a durable tier (postgresql://, sqlite://), composed by the
// policy of DESIGN §5.
//
// Versions are assigned once, by the hot tier; the durable tier takes them as given (Put).
//   - `auto` saves are acknowledged once the hot tier has them, then written behind to the
//     durable tier, coalesced per run: only the newest version of a run inside the flush
//     window is written. The queue of dirty runs is bounded; when it is full a save writes
//     through to the durable tier itself before it is acknowledged.
//   - saves that keep a checkpoint (manual, critical, recovery points) are acknowledged only
//     after the durable commit. While the durable tier is failing they fail fast with
//     kUnavailable, without touching the hot tier.
//   - reads go to the hot tier; on a miss they take the newest of the write-behind queue's
//     record and the durable tier's, and re-hydrate the hot tier (replacing a hot copy that
//     holds an unacknowledged write at that version).
//   - history (Checkpoint, ListCheckpoints, Restore) lives in the durable tier; the run's
//     pending write is flushed first so that it works on the latest version.
//   - hot tier down (kUnavailable): reads and writes go to the durable tier, after flushing
//     the run's pending write; the run's hot copy is then stale and is bypassed until a read
//     re-hydrates it.
//   - a hot tier that lost a run (FLUSHALL, eviction, a restart without AOF) answers a save
//     with version 1: the store then checks the durable tier and, if it knows the run,
//     re-bases the save onto the durable version instead of going back to 1.
//   - a hot tier that may have lost its last writes (its Generation() changed: a dropped
//     Redis connection) has each run's version checked once more, on the run's next read
//     or save, against the queue and the durable tier; a hot copy behind them is replaced
//     and a save is re-based.
//
// Analytics (optional, clickhouse://): one event per operation, sent in the background; a
// completed run is archived.
//
// Stats(): the tiers' figures prefixed hot_ and durable_, the analytics sink's analytics_, the
// queue depth, the lag from hot acknowledgement to durable commit (P50/P99/max), flushes, failures,
// write-throughs, fallbacks.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "agentstate/options.hpp"
#include "agentstate/state_store.hpp"
#include "agentstate/tiered.hpp"
#include "backends/clickhouse/ch_sink.hpp"
#include "core/asio.hpp"

namespace agentstate::tiered {

class TieredStoreImpl final : public TieredStore {
 public:
  // `analytics` may be null: no analytics tier. With one, every operation records an event
  // (never waiting for ClickHouse) and Complete archives the run.
  TieredStoreImpl(std::unique_ptr<StateStore> hot, std::unique_ptr<StateStore> durable,
                  std::unique_ptr<backends::clickhouse::AnalyticsSink> analytics,
                  TieredOptions tiered, StoreOptions options);
  // Flushes what is pending (bounded by put_timeout), then stops the flusher.
  ~TieredStoreImpl() override;

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
  // The checkpoint model is the durable tier's, served as it is (no hot copy yet).
  CheckpointStore* Checkpoints() override { return durable_->Checkpoints(); }

  Awaitable<Status> Flush(Deadline deadline) override;
  StateStore& hot() override { return *hot_; }
  StateStore& durable() override { return *durable_; }
  Analytics* analytics() override { return analytics_.get(); }
  const TieredOptions& tiered_options() const override { return tiered_; }

 private:
  // Shared, not copied: the queue, the flusher's in-flight map and a flush in progress all
  // hold the same record (agent states are kilobytes, and each copy showed in profiles).
  using RecordPtr = std::shared_ptr<const StateRecord>;
  struct Pending {
    RecordPtr record;
    std::chrono::steady_clock::time_point since;  // when the run became dirty
    int failures = 0;                             // refusals other than outages, so far
  };
  struct Inflight {
    RecordPtr record;  // the newest record being written
    int writers = 0;   // durable writes of the run under way
  };
  class Lag;

  Awaitable<Result<SaveAck>> SaveImpl(SaveRequest request, Deadline deadline);
  Awaitable<Result<std::optional<StateRecord>>> LoadImpl(std::string run_id, Deadline deadline);
  Awaitable<Done> CompleteImpl(std::string run_id, Deadline deadline);
  void Enqueue(StateRecord record);
  // Every durable write of a queued record is bracketed by a Take* (which counts a writer
  // of the run in inflight_) and Finished (which counts it out), so that a Delete can wait
  // until no write of the run that it must outlive is still on its way.
  // Everything pending, moved to inflight_ in the same step.
  std::vector<Pending> TakeAll();
  // The run's pending write, or else the record the flusher is writing now (nullopt when
  // there is neither).
  std::optional<Pending> TakeRun(const std::string& run_id);
  void Finished(const std::string& run_id);
  // Puts it durable; on failure puts it back unless a newer version arrived meanwhile, or
  // drops it (counted) when the durable tier refused it for good or too often.
  Awaitable<Status> FlushOne(Pending p, Deadline deadline);
  Awaitable<Status> FlushRun(const std::string& run_id, Deadline deadline);
  Awaitable<bool> DropQueuedWrites(const std::string& key, bool prefix, Deadline deadline);
  // One PutMany for the chunk; on failure, the runs one by one (FlushOne re-queues).
  Awaitable<void> FlushChunk(std::vector<Pending> chunk, Deadline deadline);
  Awaitable<void> FlushLoop();
  bool DurableFailing() const;
  void NoteDurable(const Status& s);
  bool IsStale(const std::string& run_id) const;
  void SetStale(const std::string& run_id, bool stale);
  // Whether the run's hot version was checked in the hot tier's current generation (which
  // it stores in *generation, for MarkChecked).
  bool Checked(const std::string& run_id, uint64_t* generation);
  void MarkChecked(const std::string& run_id, uint64_t generation);
  // What the store knows of a run behind the hot tier.
  struct Behind {
    std::optional<StateRecord>
        newest;      // the newest of the queue's, the flusher's and the durable tier's
    Status durable;  // the durable read's error, if it failed (newest is then memory's)
  };
  Awaitable<Behind> NewestBehindHot(const std::string& run_id, Deadline deadline);

  // One analytics event for an operation that started at `t0`.
  void Note(std::string_view op, const std::string& run_id, const std::string& user_id,
            uint64_t bytes, std::chrono::steady_clock::time_point t0, const Status& outcome);

  std::unique_ptr<StateStore> hot_, durable_;
  std::unique_ptr<backends::clickhouse::AnalyticsSink> analytics_;
  TieredOptions tiered_;
  StoreOptions options_;
  mutable std::mutex mu_;
  std::map<std::string, Pending> pending_;  // guarded by mu_
  // Runs being written now (taken off pending_, Put not yet done): a FlushRun meanwhile
  // writes the same record itself rather than return before the durable tier has it, and a
  // Delete waits until no writer is left.
  std::map<std::string, Inflight> inflight_;  // guarded by mu_
  std::set<std::string> stale_;               // guarded by mu_: runs whose hot copy is behind
  // Guarded by mu_: runs whose hot version was checked against the queue and the durable
  // tier since the hot tier's Generation() last changed; at most max_pending_runs.
  std::unordered_set<std::string> checked_;
  std::optional<uint64_t> checked_generation_;
  std::chrono::steady_clock::time_point durable_failing_until_{};  // guarded by mu_
  std::unique_ptr<Lag> lag_;
  std::atomic<uint64_t> batches_{0};
  std::atomic<uint64_t> flushed_{0}, flush_failures_{0}, write_throughs_{0}, hot_fallbacks_{0},
      rebased_{0}, rehydrated_{0}, coalesced_{0}, write_behind_dropped_{0};
  // Deletes started: a read that re-hydrates the hot tier while one runs takes its write back.
  std::atomic<uint64_t> deletes_started_{0};
  asio::io_context io_;
  asio::steady_timer wake_;
  bool stopping_ = false;  // io_ thread only
  std::thread thread_;
};

}  // namespace agentstate::tiered
