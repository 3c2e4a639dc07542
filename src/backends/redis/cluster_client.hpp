// The Redis Cluster client: one RedisClient (multiplexed, pipelined connections on the
// shared core) per primary, and the slot map that routes each command to the primary of
// its key's slot.
//
// The map comes from CLUSTER SHARDS, asked of the seeds and then of any node known. A reply
// of MOVED sends the command on to the node it names and refreshes the map (once for any
// number of MOVEDs at the same time); ASK sends it on once, after ASKING, without touching
// the map; TRYAGAIN (a multi-key command during a migration) and CLUSTERDOWN (a failover
// under way) wait, with jittered backoff, and try again; so does a primary that does not
// answer, whose slots a replica takes over. All of it within the caller's deadline, and at
// most kMaxAttempts sends per command.
//
// Thread-safety: as RedisClient's. The map is swapped whole under a mutex; readers copy a
// shared pointer to it.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "backends/redis/client.hpp"
#include "backends/redis/cluster.hpp"

namespace agentstate::backends::redis {

// redis+cluster://[:PASSWORD@]HOST:PORT[,HOST:PORT...][?connect_timeout=..&timeout=..&
// connections=N&max_in_flight=N&pool_wait=..]: the seeds, and what each node's client uses
// (as redis://; a cluster has no databases but 0, so no /DB).
struct RedisClusterOptions {
  std::vector<std::string> seeds;  // "host:port"
  RedisOptions node;               // host and port are each node's own
  std::string redacted_uri;
};
Result<RedisClusterOptions> ParseRedisClusterUri(
    std::string_view uri, std::initializer_list<std::string_view> extra = {});
Result<RedisClusterOptions> ParseRedisClusterUri(
    const core::ParsedUri& uri, std::initializer_list<std::string_view> extra = {});

class RedisClusterClient {
 public:
  static constexpr int kMaxAttempts = 16;

  explicit RedisClusterClient(RedisClusterOptions options);
  ~RedisClusterClient();
  RedisClusterClient(const RedisClusterClient&) = delete;
  RedisClusterClient& operator=(const RedisClusterClient&) = delete;

  // Asks the seeds, then the nodes known, for the slot map, and takes the first complete one.
  // kInvalidArgument: a seed is not a cluster node (use redis://), or answers for another
  // cluster than the one known. kUnavailable: no node answered (each named with why), or
  // the cluster leaves slots without a primary (named).
  Awaitable<Status> Refresh(Deadline deadline);

  // Sends the command to the primary of `key`'s slot (every key of a command must share the
  // slot: give them one hash tag), following redirections. Errors as RedisClient's; a
  // Redis error reply other than a redirection is a successful round trip, as there.
  Awaitable<Result<Reply>> Command(std::string_view key, const std::vector<std::string_view>& args,
                                   Deadline deadline);
  // The commands as one MULTI ... EXEC on the primary of `key`'s slot (every key of every
  // command in that slot), as RedisClient::Transaction. A redirection refuses the whole
  // transaction, which is then sent again where it points.
  Awaitable<Result<Reply>> Transaction(std::string_view key,
                                       const std::vector<std::vector<std::string_view>>& commands,
                                       Deadline deadline);

  // The primaries as the map has them now ("host:port"), for commands every one must run.
  std::vector<std::string> Primaries() const;
  // A command to one node by address, no redirection followed (SCRIPT LOAD, INFO, SCAN).
  Awaitable<Result<Reply>> CommandOn(std::string_view address,
                                     const std::vector<std::string_view>& args, Deadline deadline);

  // The client of one node ("host:port"), made on first use and kept while this lives.
  RedisClient& NodeClient(const std::string& address);
  // The first seed's client's executor, for background work bound to this client's life.
  asio::io_context::executor_type executor() {
    return NodeClient(options_.seeds.front()).executor();
  }

  struct Stats {
    uint64_t moved = 0, asked = 0, retried = 0, refreshes = 0;
    uint64_t reconnects = 0;  // every node client's, summed
  };
  Stats stats() const;
  const RedisClusterOptions& options() const { return options_; }

 private:
  std::shared_ptr<const SlotMap> Map() const;
  Awaitable<void> RefreshSoon();
  // Sends an encoded request to the primary of `key`'s slot, following redirections.
  Awaitable<Result<Reply>> Route(std::string_view key, RedisRequest request, Deadline deadline);

  RedisClusterOptions options_;
  mutable std::mutex mu_;
  std::shared_ptr<const SlotMap> map_;
  std::map<std::string, std::unique_ptr<RedisClient>> nodes_;
  std::atomic<bool> refreshing_{false};
  std::atomic<uint64_t> moved_{0}, asked_{0}, retried_{0}, refreshes_{0};
};

}  // namespace agentstate::backends::redis
