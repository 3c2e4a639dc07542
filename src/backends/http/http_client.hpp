// The HTTP/1.1 client of agentstated on the pipelined-connection core: a few keep-alive
// connections that many agents share, each pipelining (requests queued while a write is in
// progress go out together; responses are matched to requests in order). Every request has
// a deadline; one that passes completes with kTimeout and its late response is discarded. A
// dropped connection, or a response with Connection: close, fails what was in flight on it
// with kUnavailable and reconnects with jittered backoff. Admission control and the breaker
// are the core's.
//
// Thread-safety: Send() may be called from any thread; completions resume on the caller's
// executor. The client owns one I/O thread; it must outlive the calls it started.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "agentstate/status.hpp"
#include "core/asio.hpp"
#include "core/pipeline.hpp"
#include "core/uri.hpp"

namespace agentstate::backends::http {

// http://[TOKEN@]HOST[:PORT][?connections=8&timeout=0&connect_timeout=1s&max_in_flight=N&pool_wait=1s]
// https://... the same over TLS 1.2 or later, the server's certificate verified against the
// system's CAs, or against ca=PATH (a PEM file) instead, and its name or IP against HOST.
// The bearer token comes from the URI's user info, else from AGENTSTATE_TOKEN.
struct HttpOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8787;
  std::string token;  // empty: no Authorization header
  std::chrono::milliseconds connect_timeout{1000};
  // Upper bound on any one request's wait, on top of the caller's deadline; 0 = none.
  std::chrono::milliseconds request_timeout{0};
  // agentstated serves up to its --pipeline-depth (64) requests of a connection at once;
  // more connections spread the client over its I/O threads. URI: connections=N (1..256).
  int connections = 16;
  std::size_t max_in_flight = 10000;
  std::chrono::milliseconds pool_wait{1000};
  std::size_t max_response_bytes = 64 * 1024 * 1024;
  // https://: the context that verifies the server; null for http://.
  std::shared_ptr<asio::ssl::context> tls;
  std::string redacted_uri;  // for messages: the URI with the token replaced by ***
};
Result<HttpOptions> ParseHttpUri(const core::ParsedUri& uri);

// One response: its status, content type and body.
struct HttpAnswer {
  unsigned status = 0;
  std::string content_type;
  std::string body;
};

class HttpClient {
 public:
  explicit HttpClient(HttpOptions options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  struct Header {
    std::string_view name, value;
  };
  // One request; a POST or PUT, or any request with a body, carries it as application/json.
  // The answer is any HTTP
  // status (an error status is a successful round trip). Errors: kTimeout, kUnavailable
  // (connection down or dropped with the request in flight), kPoolExhausted, kInternal (the
  // server's bytes were not an HTTP/1.1 response).
  Awaitable<Result<HttpAnswer>> Send(std::string_view method, std::string_view target,
                                     std::string_view body, std::vector<Header> headers,
                                     Deadline deadline);

  const HttpOptions& options() const { return options_; }
  using Stats = core::PipelineClient<std::string, HttpAnswer>::Stats;
  Stats stats() const { return pipeline_.stats(); }

 private:
  HttpOptions options_;
  // The request's bytes are the request. Declared after options_: its thread stops first.
  core::PipelineClient<std::string, HttpAnswer> pipeline_;
};

}  // namespace agentstate::backends::http
