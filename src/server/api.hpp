// API v1 of agentstated (docs/http-api.md): routes to StateStore calls, independent of the
// HTTP framing (server/http_server.cpp reads and writes the bytes). State payloads pass
// through as raw JSON: the store validates a saved document once, and a loaded one is
// spliced into the response as stored, never parsed into a tree.
//
// Errors are RFC 9457 problem documents (application/problem+json) carrying the engine's
// stable code name: {"type","title","status","detail","code"}.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "agentstate/state_store.hpp"
#include "core/log2_histogram.hpp"
#include "server/tokens.hpp"

namespace agentstate::server {

struct ApiRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and query, as sent
  std::string content_type;
  std::string authorization;  // the Authorization header, as sent
  std::string if_match, if_none_match;
  std::optional<std::string> idempotency_key;  // the Idempotency-Key header, as sent
  std::string body;
};

struct ApiResponse {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// A problem document for `status` with the engine's code name and a one-line detail.
ApiResponse Problem(unsigned status, std::string_view code, std::string_view detail);
// The HTTP status of a store error (docs/http-api.md has the table).
unsigned HttpStatus(StatusCode code);

class Api {
 public:
  struct Options {
    std::chrono::milliseconds request_timeout{5000};  // the deadline of each store call
    // The longest id a tenant may give; the store is opened with room for the tenant's
    // prefix on top (kTenantPrefixBytes, server/tenant_store.hpp).
    std::size_t max_id_bytes = 256;
    // When set, called with one JSON line per request (docs/http-api.md, "Access log"): its
    // time, method, route pattern, status, duration, tenant and sizes; never a header's
    // value, a body or an id. Called on the request's I/O thread.
    std::function<void(const std::string& line)> access_log;
    // Requests per second per tenant, a token bucket holding one second's worth; beyond it
    // a request is 429 rate_limited with Retry-After. 0: no limit.
    double rate_limit_per_s = 0;
    // The token file the admin routes change (/v1/admin/tenants); null: they answer 409.
    TokenFile* token_file = nullptr;
  };
  // `tokens` returns the tokens in force (they are reloaded on SIGHUP); null: no token file,
  // every request is the tenant "default" with every role (loopback only).
  Api(StateStore& store, std::function<std::shared_ptr<const Tokens>()> tokens, Options options);

  Awaitable<ApiResponse> Handle(ApiRequest request);

  // Prometheus text: requests by route and status, latency per route, in-flight requests,
  // the store's Stats(), plus the server's own gauges in `extra`.
  std::string Metrics(const std::map<std::string, double>& extra) const;
  uint64_t in_flight() const { return in_flight_; }

 private:
  struct Call;
  Awaitable<ApiResponse> Route(Call& call);
  // The checkpoint model's routes (LangGraph), on the tenant's view of the store.
  Awaitable<ApiResponse> CheckpointRoute(Call& call, StateStore& store, Deadline deadline);
  void Count(const std::string& route, unsigned status, std::chrono::microseconds took);

  // Whether `tenant` may make a request now (the rate limit); else the seconds to wait.
  std::optional<int> Throttle(const std::string& tenant);

  StateStore& store_;
  std::function<std::shared_ptr<const Tokens>()> tokens_;
  Options options_;
  struct Bucket {
    double tokens = 0;
    std::chrono::steady_clock::time_point at;
  };
  // One per tenant seen: tenants come from the token file, so it is bounded by it.
  std::mutex buckets_mu_;
  std::map<std::string, Bucket, std::less<>> buckets_;  // guarded by buckets_mu_
  std::atomic<uint64_t> in_flight_{0};
  mutable std::mutex mu_;
  std::map<std::pair<std::string, unsigned>, uint64_t> counts_;          // guarded by mu_
  std::map<std::string, std::unique_ptr<core::Log2Histogram>> latency_;  // guarded by mu_
};

}  // namespace agentstate::server
