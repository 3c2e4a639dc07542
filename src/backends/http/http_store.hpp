// http://: the StateStore of a running agentstated, over its API v1 (docs/http-api.md), on
// HttpClient's pipelined keep-alive connections. Each call is one request; the server's
// problem documents become the engine's codes again (their `code` field is CodeName's).
//
// What is checked here, not only on the server: every loaded or restored state against its
// checksum, after the trip (a damaged byte on the way is kCorruption, never data).
// Put is the server's replication route (PUT /v1/runs/{run_id}). Generation() counts the
// client's dropped connections: after one, the server may have restarted with less than it
// had acknowledged (a hot tier without AOF, say).
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "agentstate/options.hpp"
#include "agentstate/state_store.hpp"
#include "backends/http/http_client.hpp"
#include "core/uri.hpp"

namespace agentstate::backends::http {

class HttpStore final : public StateStore {
 public:
  // Connects and asks the server's /v1/health with the token: kUnavailable, naming the URI
  // without its token, when agentstated does not answer or refuses the token.
  static Result<std::unique_ptr<StateStore>> Open(const core::ParsedUri& uri,
                                                  const StoreOptions& options);

  explicit HttpStore(HttpOptions options);
  ~HttpStore() override;

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
  // The server's /v1/health, each of its tiers; a server that cannot be reached, or that
  // refuses the token, is one unhealthy tier "server" naming why.
  Awaitable<Result<HealthReport>> Health(Deadline deadline) override;
  // The client's counters: requests by outcome, connections, reconnects, admission and the
  // breaker. (The server's own are GET /v1/stats, for an admin token.)
  StoreStats Stats() const override;
  uint64_t Generation() const override;

 private:
  // One request: the answer when its status is 2xx, else the problem it carried, as the
  // engine's code (a 404 is kNotFound, which Load and ThreadContext read as absent).
  Awaitable<Result<HttpAnswer>> Call(std::string_view method, std::string target,
                                     std::string_view body, std::vector<HttpClient::Header> headers,
                                     Deadline deadline);

  std::unique_ptr<HttpClient> client_;
  std::atomic<uint64_t> requests_{0}, problems_{0}, corruptions_{0}, saves_{0}, loads_{0};
};

}  // namespace agentstate::backends::http
