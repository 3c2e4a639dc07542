// redis://: the hot tier (DESIGN §5) on a real redis-server, through RedisClient.
//
// Keys, one set per run, all carrying the run id as a hash tag so that a run's keys share a
// Redis Cluster slot (the original schema, with an optional prefix for namespacing):
//   <prefix>agent_state:{run}            HASH  the latest record (fields below)
//   <prefix>agent_state_version:{run}    STRING the last version assigned
//   <prefix>checkpoint:{run}             ZSET  checkpoint ids scored by their expiry (ms)
//   <prefix>checkpoint:{run}:<id>        HASH  a copy of the record at that version
//   <prefix>thread_context:{thread}      HASH  the thread's current run and version
// Every write is one Lua script (EVALSHA, with EVAL when the server answers NOSCRIPT), so a
// save checks the expected version, writes the record, bumps the version, sets the TTLs,
// appends the checkpoint and moves the thread context atomically, in one round trip.
//
// TTLs: each key gets its TTL from the store's TtlPolicy (server clock), and each record
// also carries its expiry in Unix ms on the store's Clock, checked on every read. The two
// agree on a real clock; the second lets tests drive expiry with a manual clock.
//
// ActiveRuns walks the keyspace with SCAN (never KEYS). Pages hold at most `limit` runs but
// come in SCAN's order, not by run_id, and SCAN's guarantee applies: a run that stays active
// for the whole listing is returned at least once (twice only if the keyspace shrinks
// mid-listing). The cursor is "<scan cursor>:<keys to skip in that batch>".
//
// redis+cluster:// (RedisClusterClient) runs the same scripts, each sent to the primary of
// its keys' slot. A run's keys share the run's hash tag, so a script on them has one slot;
// Eval checks that before sending, so CROSSSLOT cannot reach the server (an id that would
// break the tag is refused there, naming it). The thread's key is in the thread's slot, not
// the run's: on a cluster, save, restore and delete move or clear it in a second script on
// that key (kThread, "unless it points at a later save"; kThreadClear), after the run's
// script succeeded. So on a cluster the thread pointer may lag its run by that step (and
// stay behind if the client dies in between, until the next save of the thread or its TTL).
// SCAN runs on every primary; ActiveRuns' cursor then names the primary too ("N/scan:skip",
// N its index among the primaries in slot order; a failover mid-listing may repeat or skip
// a batch).
#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <string>

#include "agentstate/options.hpp"
#include "agentstate/state_store.hpp"
#include "backends/redis/client.hpp"
#include "backends/redis/cluster_client.hpp"
#include "core/codec.hpp"
#include "core/uri.hpp"

namespace agentstate::backends::redis {

class RedisStore final : public StateStore {
 public:
  // Connects, checks the server (reachable, credentials, database, version >= 6.2 for COPY)
  // and loads the scripts. kUnavailable names the URI without its password.
  // URI: the client's parameters (client.hpp) and prefix=NAME (keys start with NAME);
  // redis+cluster://SEEDS the same (cluster_client.hpp). Each refuses a server of the
  // other kind, naming the URI to use instead.
  // wait_replicas=N (0..16, default 0) and wait_timeout=DURATION (default 100ms): a
  // critical save (or a recovery point) is acknowledged only once N replicas have it
  // (WAIT on the connection that carried it); otherwise kUnavailable, the save in doubt
  // (on the primary, but a failover now may lose it). The client then keeps one
  // connection per server, so that the WAIT follows the save on its connection.
  static Result<std::unique_ptr<StateStore>> Open(const core::ParsedUri& uri,
                                                  const StoreOptions& options);

  RedisStore(RedisOptions client_options, std::string prefix, StoreOptions options);
  RedisStore(RedisClusterOptions cluster_options, std::string prefix, StoreOptions options);
  ~RedisStore() override;

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
  // Counters, the client's pool and breaker, and the server's INFO figures (used_memory,
  // connected_clients, instantaneous_ops_per_sec, RSS, CPU seconds, AOF), refreshed in the
  // background at most once a second.
  StoreStats Stats() const override;
  // The client's dropped connections: after one, the server may have restarted and lost
  // what AOF everysec had not written.
  uint64_t Generation() const override;

  // The key holding a run's latest record, for tests that damage it behind the store.
  std::string RecordKey(const std::string& run_id) const;
  RedisClient& client() { return *client_; }  // redis:// only

  struct Script;
  static constexpr std::size_t kScriptCount = 10;
  struct ServerInfo;

 private:
  Status Init();
  Awaitable<Result<Reply>> WriteRecord(const StateRecord& m, std::size_t payload_bytes,
                                       const core::Encoded& body, std::string expected, bool put,
                                       Deadline deadline);
  // Runs a script; with `before`, in one MULTI ... EXEC after those commands (whose keys
  // share the script's slot), and the answer is the script's reply or the first of theirs
  // that failed.
  Awaitable<Result<Reply>> Eval(const Script& script, const std::vector<std::string_view>& keys,
                                const std::vector<std::string_view>& args, Deadline deadline,
                                const std::vector<std::vector<std::string_view>>& before = {});
  // A command on `key` (its slot's primary on a cluster), or commands as one transaction.
  Awaitable<Result<Reply>> Call(std::string_view key, const std::vector<std::string_view>& args,
                                Deadline deadline);
  Awaitable<Result<Reply>> CallAll(std::string_view key,
                                   const std::vector<std::vector<std::string_view>>& commands,
                                   Deadline deadline);
  // The servers holding keys ("" for the one redis:// server; a cluster's primaries), and a
  // command to one of them (SCAN, PING, INFO).
  std::vector<std::string> Nodes() const;
  Awaitable<Result<Reply>> CallOn(const std::string& node,
                                  const std::vector<std::string_view>& args, Deadline deadline);
  // On a cluster, points the thread at the run (kThread) or forgets it (kThreadClear).
  Awaitable<Status> MoveThread(const std::string& thread_id, const std::string& run_id,
                               int64_t version, SystemTime at, Deadline deadline);
  Awaitable<Status> ClearThread(const std::string& thread_id, const std::string& run_id,
                                Deadline deadline);
  Status CheckServer(const std::string& where, const Reply& info) const;
  asio::io_context::executor_type Executor() const;
  std::string Key(std::string_view kind, std::string_view id) const;
  void RefreshInfo() const;

  // After a critical save: WAIT for replicas on its connection (wait_replicas=N).
  Awaitable<Status> WaitForReplicas(const std::string& key, const std::string& run_id,
                                    int64_t version, uint64_t generation, Deadline deadline);

  std::unique_ptr<RedisClient> client_;          // redis://, or
  std::unique_ptr<RedisClusterClient> cluster_;  // redis+cluster://
  std::string prefix_;
  StoreOptions options_;
  std::shared_ptr<ServerInfo> info_;
  std::array<std::string, kScriptCount> shas_;  // SCRIPT LOAD's answers, written once by Init
  mutable std::atomic<uint64_t> saves_{0}, loads_{0}, conflicts_{0}, corruptions_{0},
      noscript_reloads_{0}, thread_moves_failed_{0}, waits_{0}, waits_short_{0};
  uint64_t wait_replicas_ = 0;
  std::chrono::milliseconds wait_timeout_{100};
};

}  // namespace agentstate::backends::redis
