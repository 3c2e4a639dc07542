// The Redis client on Boost.Asio: a few multiplexed connections that many agents share.
//
// Each connection pipelines automatically: commands queued while a write is in progress go
// out together in the next write, and replies are matched to commands in order. Every
// command has a deadline; one that passes completes with kTimeout (its late reply is
// discarded). A dropped connection fails every command in flight on it with kUnavailable,
// never with another command's reply, and reconnects with jittered exponential backoff.
//
// A circuit breaker guards the endpoint: after 5 consecutive transport failures (no reply:
// timeout, unavailable) spanning at least 500 ms, calls fail fast with kUnavailable for 1 s,
// then one probe decides.
//
// Thread-safety: Command() may be called from any thread; completions resume on the
// caller's executor. The client owns one I/O thread; it must outlive the calls it started.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "agentstate/model.hpp"
#include "agentstate/status.hpp"
#include "backends/redis/resp.hpp"
#include "core/asio.hpp"
#include "core/pipeline.hpp"
#include "core/uri.hpp"

namespace agentstate::backends::redis {

// redis://[:PASSWORD@]HOST[:PORT][/DB][?connect_timeout=1s&timeout=200ms&connections=4&max_in_flight=N&pool_wait=1s]
// Parameters a layer above the client reads (the store's key prefix) are passed in `extra`.
struct RedisOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 6379;
  std::string password;  // empty: no AUTH
  int db = 0;            // SELECT after connecting when > 0
  std::chrono::milliseconds connect_timeout{1000};
  // Upper bound on any one command's wait for its reply, on top of the caller's deadline.
  // URI: timeout=200ms. 0 (default) = the caller's deadline alone.
  std::chrono::milliseconds command_timeout{0};
  int connections = 2;  // multiplexed connections, 1..64
  // Admission control: at most this many commands in flight (sent or queued on a
  // connection); beyond it a command waits up to pool_wait for a slot, then fails with
  // kPoolExhausted. URI: max_in_flight=N (default 10000), pool_wait=100ms (default 1s).
  std::size_t max_in_flight = 10000;
  std::chrono::milliseconds pool_wait{1000};
  std::string redacted_uri;  // for messages: the URI with the password replaced by ***
};
Result<RedisOptions> ParseRedisUri(std::string_view uri,
                                   std::initializer_list<std::string_view> extra = {});
Result<RedisOptions> ParseRedisUri(const core::ParsedUri& uri,
                                   std::initializer_list<std::string_view> extra = {});

class RedisConnection;

// What goes out on a connection as one request: the bytes of one command, or of several sent
// back to back whose last reply answers them all (ASKING and a command; MULTI, commands,
// EXEC). `replies` counts every reply the bytes draw. The answer is the last reply, unless
// one before it was an error: then the first such error is the answer (a command refused as
// MULTI queued it says more than EXEC's EXECABORT).
struct RedisRequest {
  std::string bytes;
  uint32_t replies = 1;
};
inline std::string_view RequestBytes(const RedisRequest& r) { return r.bytes; }

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
  // The same with borrowed arguments: they are encoded before this returns, so they need
  // only outlive the call expression (name the vector; never a braced temporary in co_await).
  Awaitable<Result<Reply>> Command(const std::vector<std::string_view>& args, Deadline deadline);
  // The commands as one MULTI ... EXEC transaction, sent back to back on one connection (no
  // other command can come between them there). The answer is EXEC's array of the commands'
  // replies, or the first error before it (a command refused when queued: the transaction
  // was discarded whole, as it is when the connection drops before EXEC).
  Awaitable<Result<Reply>> Transaction(const std::vector<std::vector<std::string_view>>& commands,
                                       Deadline deadline);
  static RedisRequest TransactionRequest(
      const std::vector<std::vector<std::string_view>>& commands);
  // A request already encoded. A cluster node takes a command for a slot it is importing only
  // right after ASKING on the same connection: WithAsking puts it in front.
  Awaitable<Result<Reply>> Send(RedisRequest request, Deadline deadline);
  static RedisRequest WithAsking(const RedisRequest& request);

  // The client's own executor (its I/O thread), for background work bound to its lifetime.
  asio::io_context::executor_type executor() { return pipeline_.io().get_executor(); }

  const RedisOptions& options() const { return options_; }
  uint64_t reconnects() const { return pipeline_.stats().reconnects; }

  // A snapshot of the counters (admission, the breaker, connections, reconnects); callable
  // from any thread.
  using Stats = core::PipelineClient<RedisRequest, Reply>::Stats;
  Stats stats() const { return pipeline_.stats(); }

 private:
  RedisOptions options_;
  // Declared after options_: its thread, which the connections' use of options_ runs on,
  // stops first.
  core::PipelineClient<RedisRequest, Reply> pipeline_;
};

}  // namespace agentstate::backends::redis
