// postgresql://: the durable tier (DESIGN §5) on a real PostgreSQL, through PgClient.
//
// Tables (in the URI's schema, default public): runs (the latest record per run), checkpoints
// (history, one row per run and version) and threads (each thread's current run). Payloads
// are bytea with STORAGE EXTERNAL: the client compresses large ones with zstd, the server
// never compresses them again. Ids are text COLLATE "C", so ActiveRuns pages in byte order.
//
// Every write is one call of a PL/pgSQL function (agentstate_save, _complete, _checkpoint,
// _restore, _delete): it takes a transaction-scoped advisory lock on the run, checks the
// expected version and writes the record, the checkpoint and the thread context in one
// implicit transaction and one round trip. Reads are single parameterized SELECTs. Every
// statement has parameters; nothing is spliced into SQL text.
//
// Schema versions: migrations run at open on a connection of their own, under a session
// advisory lock, so concurrent opens are safe and a second run is a no-op. A schema newer
// than this build knows makes the open fail; it is never downgraded.
//
// TTLs: rows carry their expiry in Unix ms on the store's Clock; reads filter on it, and a
// save at most once a minute purges up to 1000 expired rows per table.
// Retention: ?keep_checkpoints=N keeps each run's newest N checkpoints (0 = all, the
// default); pruning by age is the TTL policy (recovery points 7 d, others 24 h).
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "agentstate/options.hpp"
#include "agentstate/state_store.hpp"
#include "backends/postgres/pg_checkpoints.hpp"
#include "backends/postgres/pg_client.hpp"
#include "core/uri.hpp"

namespace agentstate::backends::postgres {

// The schema version this build creates and understands.
inline constexpr int kSchemaVersion = 6;

// Creates or upgrades the store's schema in `o.schema`, on a blocking connection of its own.
// kUnavailable when the server cannot be reached; kFailedPrecondition-like kInvalidArgument
// when the schema is newer than this build.
Status Migrate(const PgOptions& o);

// The server's synchronous_commit ("on", "off", "local", ...), for the durability contract a
// report states; kUnavailable when the server cannot be asked.
Result<std::string> SynchronousCommit(const PgOptions& o);

class PgStore final : public StateStore {
 public:
  static Result<std::unique_ptr<StateStore>> Open(const core::ParsedUri& uri,
                                                  const StoreOptions& options);

  PgStore(PgOptions client_options, StoreOptions options);

  std::string Describe() const override { return client_->options().redacted_uri; }
  Awaitable<Result<SaveAck>> Save(SaveRequest request, Deadline deadline) override;
  Awaitable<Result<bool>> Put(StateRecord record, Deadline deadline) override;
  // All of them in one transaction: one pipeline sync, one commit.
  Awaitable<Result<std::size_t>> PutMany(std::vector<StateRecord> records,
                                         Deadline deadline) override;
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

  PgClient& client() { return *client_; }

 private:
  PgClient::Statement WriteStatement(const StateRecord& m, std::string_view payload,
                                     std::optional<int64_t> expected, bool put) const;
  std::vector<PgClient::Statement> PutStatements(const std::vector<StateRecord>& records) const;
  std::vector<PgClient::Statement> WarmupStatements();
  Awaitable<Result<PgResult>> WriteRecord(const StateRecord& m, std::string_view payload,
                                          std::optional<int64_t> expected, bool put,
                                          Deadline deadline);

  Awaitable<void> MaybePurge(Deadline deadline);

  std::string synchronous_commit_;  // as the server had it at Open
  StoreOptions options_;
  mutable std::atomic<uint64_t> saves_{0}, loads_{0}, conflicts_{0}, corruptions_{0}, purged_{0};
  std::atomic<int64_t> next_purge_ms_{0};  // store clock
  std::atomic<uint64_t> warmup_runs_{0};
  // Last, so destroyed first: its thread builds warm-ups from options_ until it is joined.
  std::unique_ptr<PgClient> client_;
  // LangGraph's checkpoint model on client_ (schema 4's lg_* tables); destroyed before it.
  std::unique_ptr<PgCheckpoints> langgraph_;
};

}  // namespace agentstate::backends::postgres
