// The Redis client on Boost.Asio: a few multiplexed connections that many agents share.
//
// Each connection pipelines automatically: commands queued while a write is in progress go
// out together in the next write, and replies are matched to commands in order. Every
// command has a deadline; one that passes completes with kTimeout (its late reply is
// discarded). A dropped connection fails every command in flight on it with kUnavailable,
// never with another command's reply, and reconnects with jittered exponential backoff.
//
// Thread-safety: Command() may be called from any thread; completions resume on the
// caller's executor. The client owns one I/O thread; it must outlive the calls it started.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "agentstate/asio.hpp"
#include "agentstate/model.hpp"
#include "agentstate/status.hpp"
#include "backends/redis/resp.hpp"

namespace agentstate::redis {

// redis://[:PASSWORD@]HOST[:PORT][/DB][?connect_timeout=1s&connections=4]
struct RedisOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 6379;
  std::string password;  // empty: no AUTH
  int db = 0;            // SELECT after connecting when > 0
  std::chrono::milliseconds connect_timeout{1000};
  int connections = 2;   // multiplexed connections, 1..64
  std::string redacted_uri;  // for messages: the URI with the password replaced by ***
};
Result<RedisOptions> ParseRedisUri(std::string_view uri);

class Connection;

class RedisClient {
 public:
  explicit RedisClient(RedisOptions options);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // Sends one command; the reply may be a Redis error reply (Reply::is_error), which is a
  // successful round trip, except -LOADING (a restarted server still reading its data),
  // which is kUnavailable. Errors: kTimeout, kUnavailable (connection down or dropped with
  // the command in flight, or LOADING), kInternal (the server's bytes were not RESP2).
  Awaitable<Result<Reply>> Command(std::vector<std::string> args, Deadline deadline);

  const RedisOptions& options() const { return options_; }
  uint64_t reconnects() const;

 private:
  RedisOptions options_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::vector<std::shared_ptr<Connection>> connections_;
  std::atomic<uint64_t> next_{0};
  std::thread thread_;
};

}  // namespace agentstate::redis
