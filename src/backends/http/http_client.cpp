#include "backends/http/http_client.hpp"

#include <fmt/format.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/asio.hpp"
#include "core/tcp_connect.hpp"
#include "core/uri.hpp"

namespace agentstate::backends::http {

namespace beast = boost::beast;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

namespace {

// The client side of TLS for https://: 1.2 or later, the peer verified against `ca_file`
// (PEM), or the system's CAs when it is empty.
Result<std::shared_ptr<ssl::context>> ClientTls(const std::string& ca_file,
                                                std::string_view endpoint) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                   ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  boost::system::error_code ec;
  if (ca_file.empty()) {
    ctx->set_default_verify_paths(ec);
  } else if (std::FILE* f = std::fopen(ca_file.c_str(), "r")) {
    std::fclose(f);
    ctx->load_verify_file(ca_file, ec);
  } else {
    return Error(StatusCode::kInvalidArgument,
                 fmt::format("{}: cannot read ca={}: {}", endpoint, ca_file, std::strerror(errno)));
  }
  if (ec) {
    return Error(StatusCode::kInvalidArgument,
                 ca_file.empty()
                     ? fmt::format("{}: cannot load the system's CA certificates: {}; give "
                                   "?ca=PATH, a PEM file of the certificates to trust",
                                   endpoint, ec.message())
                     : fmt::format("{}: ca={} is not a readable PEM file of certificates: {}",
                                   endpoint, ca_file, ec.message()));
  }
  ctx->set_verify_mode(ssl::verify_peer);
  return ctx;
}

}  // namespace

Result<HttpOptions> ParseHttpUri(const core::ParsedUri& uri) {
  HttpOptions o;
  o.redacted_uri = core::RedactUri(uri);
  auto bad = [&](const std::string& why) {
    return Error(StatusCode::kInvalidArgument,
                 fmt::format("malformed http URI '{}': {}", o.redacted_uri, why));
  };
  if (uri.scheme != "http" && uri.scheme != "https")
    return bad("the scheme must be http:// or https://");
  const bool tls = uri.scheme == "https";
  if (Status s = core::CheckKnownParams(
          uri, {"connect_timeout", "timeout", "connections", "max_in_flight", "pool_wait", "ca"});
      !s.ok())
    return Error(s);
  const std::string ca = uri.params.count("ca") ? uri.params.at("ca") : "";
  if (!tls && !ca.empty()) return bad("ca= is for https://; http:// does not use TLS");
  auto authority = core::ParseAuthority(uri.body);
  if (!authority) return bad(authority.error().message());
  if (!authority->path.empty()) return bad("give HOST:PORT alone; the API's paths are its own");
  // http://TOKEN@host and http://:TOKEN@host both name the token.
  o.token = authority->password.empty() ? authority->user : authority->password;
  if (o.token.empty()) {
    if (const char* env = std::getenv("AGENTSTATE_TOKEN")) o.token = env;
  }
  // The token goes into a header: printable ASCII without spaces, or a request could be
  // split by it.
  for (unsigned char c : o.token) {
    if (c <= 0x20 || c >= 0x7f) return bad("the token must be printable ASCII without spaces");
  }
  o.host = authority->host;
  if (authority->port) o.port = *authority->port;
  auto connect_timeout = core::DurationParam(uri, "connect_timeout", o.connect_timeout, true);
  if (!connect_timeout) return bad(connect_timeout.error().message());
  o.connect_timeout = *connect_timeout;
  auto timeout = core::DurationParam(uri, "timeout", o.request_timeout, false);
  if (!timeout) return bad(timeout.error().message());
  o.request_timeout = *timeout;
  auto pool_wait = core::DurationParam(uri, "pool_wait", o.pool_wait, false);
  if (!pool_wait) return bad(pool_wait.error().message());
  o.pool_wait = *pool_wait;
  auto n = core::UintParam(uri, "connections", static_cast<uint64_t>(o.connections), 1, 256);
  if (!n) return Error(n.error());
  o.connections = static_cast<int>(*n);
  auto limit = core::UintParam(uri, "max_in_flight", o.max_in_flight, 1, 1000000);
  if (!limit) return Error(limit.error());
  o.max_in_flight = static_cast<std::size_t>(*limit);
  if (tls) {
    auto ctx = ClientTls(ca, o.redacted_uri);
    if (!ctx) return Error(ctx.error());
    o.tls = std::move(*ctx);
  }
  return o;
}

// One keep-alive TCP connection speaking HTTP/1.1 on the pipelined-connection core, over TLS
// for https://. Everything here runs on the client's one thread, where one read and one write
// may be outstanding on a TLS stream at once.
class HttpConnection final : public core::Connection<std::string, HttpAnswer> {
 public:
  HttpConnection(asio::io_context& io, const HttpOptions& o)
      : Connection(io, {.endpoint = o.redacted_uri,
                        .request = "agentstated request",
                        .answer = "response",
                        .dead_after_timeouts = kDeadAfterTimeouts}),
        o_(o),
        socket_(io) {}

 private:
  // Requests timed out in a row, with no response in between, that presume the connection
  // dead (a server that vanished without FIN or RST).
  static constexpr int kDeadAfterTimeouts = 3;

  using TlsStream = ssl::stream<tcp::socket>;

  tcp::socket& Socket() { return tls_ ? tls_->next_layer() : socket_; }

  void Interrupt() override {
    boost::system::error_code ignored;
    Socket().close(ignored);
  }

  Awaitable<Status> Connect() override {
    buffer_.clear();
    if (!o_.tls)
      co_return co_await core::ConnectTcp(io_, socket_, o_.host, o_.port, o_.connect_timeout,
                                          o_.redacted_uri);
    // A fresh TLS stream per connection: a session does not outlive its socket.
    tls_ = std::make_unique<TlsStream>(io_, *o_.tls);
    if (Status s = co_await core::ConnectTcp(io_, tls_->next_layer(), o_.host, o_.port,
                                             o_.connect_timeout, o_.redacted_uri);
        !s.ok())
      co_return s;
    boost::system::error_code ec;
    // SNI names a host, never an address (RFC 6066); the certificate is checked against either.
    asio::ip::make_address(o_.host, ec);
    if (ec) SSL_set_tlsext_host_name(tls_->native_handle(), o_.host.c_str());
    tls_->set_verify_callback(ssl::host_name_verification(o_.host));
    asio::steady_timer watchdog(io_, o_.connect_timeout);
    bool timed_out = false;
    watchdog.async_wait([&](boost::system::error_code e) {
      if (e) return;
      timed_out = true;
      Interrupt();
    });
    co_await tls_->async_handshake(ssl::stream_base::client,
                                   asio::redirect_error(asio::use_awaitable, ec));
    watchdog.cancel();
    if (timed_out) {
      co_return Status(StatusCode::kUnavailable,
                       fmt::format("TLS handshake with {} failed: no answer within {} ms",
                                   o_.redacted_uri, o_.connect_timeout.count()));
    }
    if (ec) {
      // A certificate that does not verify is the usual cause: say what would make it.
      const bool unverified = ec.category() == asio::error::get_ssl_category() &&
                              ERR_GET_REASON(ec.value()) == SSL_R_CERTIFICATE_VERIFY_FAILED;
      co_return Status(
          StatusCode::kUnavailable,
          fmt::format("TLS handshake with {} failed: {}{}", o_.redacted_uri, ec.message(),
                      unverified ? fmt::format(" (the server's certificate must be signed by "
                                               "ca= or a system CA and name {}; give "
                                               "?ca=PATH of the certificate that signs it)",
                                               o_.host)
                                 : ""));
    }
    co_return Status();
  }

  Awaitable<Status> Writer() override {
    if (tls_) co_return co_await WriteQueuedBytes(*tls_);
    co_return co_await WriteQueuedBytes(socket_);
  }

  Awaitable<Status> Reader() override {
    if (tls_) co_return co_await ReadResponses(*tls_);
    co_return co_await ReadResponses(socket_);
  }

  template <typename Stream>
  Awaitable<Status> ReadResponses(Stream& stream) {
    while (true) {
      beast::http::response_parser<beast::http::string_body> parser;
      parser.body_limit(o_.max_response_bytes);
      boost::system::error_code ec;
      co_await beast::http::async_read(stream, buffer_, parser,
                                       asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        // Beast's own category is a parse error, but for a server that closed between responses.
        const bool garbled =
            ec.category() == make_error_code(beast::http::error::bad_version).category() &&
            ec != beast::http::error::end_of_stream;
        co_return Status(
            garbled ? StatusCode::kInternal : StatusCode::kUnavailable,
            fmt::format("{}: {}: {}", o_.redacted_uri,
                        garbled ? "not an HTTP/1.1 response" : "connection lost", ec.message()));
      }
      if (!Front()) {
        co_return Status(
            StatusCode::kInternal,
            fmt::format("{}: a response arrived with no request waiting for it", o_.redacted_uri));
      }
      auto& res = parser.get();
      const bool keep_alive = res.keep_alive();
      HttpAnswer answer;
      answer.status = res.result_int();
      answer.content_type = std::string(res[beast::http::field::content_type]);
      answer.body = std::move(res.body());
      Answered(std::move(answer));
      // The server closes after this response (it is draining, or the request broke the
      // connection): whatever else was sent on it was not answered.
      if (!keep_alive)
        co_return Status(StatusCode::kUnavailable,
                         fmt::format("{} closed the connection", o_.redacted_uri));
    }
  }

  const HttpOptions& o_;
  tcp::socket socket_;              // http://
  std::unique_ptr<TlsStream> tls_;  // https://: the connection's TLS stream over its socket
  beast::flat_buffer buffer_;
};

HttpClient::HttpClient(HttpOptions options)
    : options_(std::move(options)),
      pipeline_(options_.redacted_uri, "requests", options_.max_in_flight, options_.pool_wait,
                options_.request_timeout) {
  std::vector<std::shared_ptr<core::Connection<std::string, HttpAnswer>>> connections;
  for (int i = 0; i < options_.connections; ++i)
    connections.push_back(std::make_shared<HttpConnection>(pipeline_.io(), options_));
  pipeline_.Start(std::move(connections));
}

HttpClient::~HttpClient() = default;

Awaitable<Result<HttpAnswer>> HttpClient::Send(std::string_view method, std::string_view target,
                                               std::string_view body, std::vector<Header> headers,
                                               Deadline deadline) {
  std::string bytes;
  bytes.reserve(256 + body.size());
  bytes.append(method).append(" ").append(target).append(" HTTP/1.1\r\nHost: ");
  bytes.append(options_.host).append(":").append(std::to_string(options_.port)).append("\r\n");
  if (!options_.token.empty()) bytes.append("Authorization: Bearer ").append(options_.token);
  if (!options_.token.empty()) bytes.append("\r\n");
  for (const auto& h : headers) bytes.append(h.name).append(": ").append(h.value).append("\r\n");
  if (!body.empty() || method == "POST" || method == "PUT") {
    bytes.append("Content-Type: application/json\r\nContent-Length: ");
    bytes.append(std::to_string(body.size())).append("\r\n");
  }
  bytes.append("\r\n").append(body);
  return pipeline_.Submit(std::move(bytes), deadline);
}

}  // namespace agentstate::backends::http
