// The checkpoint model (agentstate/checkpoint_store.hpp) on PostgreSQL: schema 4's lg_*
// tables in the store's schema, each write one call of a function of ours (one round trip,
// one transaction), each read one statement (one snapshot). Owned by PgStore, on its client.
#pragma once

#include "agentstate/checkpoint_store.hpp"
#include "agentstate/options.hpp"
#include "backends/postgres/pg_client.hpp"

namespace agentstate::backends::postgres {

class PgCheckpoints final : public CheckpointStore {
 public:
  PgCheckpoints(PgClient& client, const StoreOptions& options)
      : client_(client), options_(options) {}

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

 private:
  // The tuples of the checkpoints the CTE `cps` selects (its columns: thread_id, ns,
  // checkpoint_id, parent_id, checkpoint, metadata), values and writes joined, in one
  // statement.
  Awaitable<Result<std::vector<CheckpointTuple>>> Tuples(std::string cps, std::vector<Param> params,
                                                         Deadline deadline);

  PgClient& client_;
  const StoreOptions& options_;
};

}  // namespace agentstate::backends::postgres
