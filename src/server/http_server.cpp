#include "server/http_server.hpp"

#include <fmt/format.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <type_traits>

namespace agentstate::server {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

http::response<http::string_body> ToHttp(const ApiResponse& r, unsigned version, bool keep_alive) {
  http::response<http::string_body> res{static_cast<http::status>(r.status), version};
  res.set(http::field::server, "agentstated");
  res.set(http::field::content_type, r.content_type);
  for (const auto& [k, v] : r.headers) res.set(k, v);
  res.keep_alive(keep_alive);
  res.body() = r.body;
  res.prepare_payload();
  return res;
}

}  // namespace

HttpServer::HttpServer(ServerOptions options, Api& api)
    : options_(std::move(options)), api_(api), io_(), acceptor_(asio::make_strand(io_)) {}

HttpServer::~HttpServer() {
  io_.stop();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

Status HttpServer::Listen() {
  boost::system::error_code ec;
  if (!options_.tls_cert.empty() || !options_.tls_key.empty()) {
    if (options_.tls_cert.empty() || options_.tls_key.empty())
      return Status(StatusCode::kInvalidArgument,
                    "TLS needs both --tls-cert (a PEM certificate chain) and --tls-key (its key)");
    // TLS 1.2 and 1.3 only; the certificate chain and its key, checked against each other.
    tls_ = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
    tls_->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                      asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                      asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use);
    tls_->use_certificate_chain_file(options_.tls_cert, ec);
    if (ec)
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("--tls-cert {}: cannot load a PEM certificate chain: {}",
                                options_.tls_cert, ec.message()));
    tls_->use_private_key_file(options_.tls_key, asio::ssl::context::pem, ec);
    if (ec)
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("--tls-key {}: cannot load a PEM private key that matches "
                                "--tls-cert: {}",
                                options_.tls_key, ec.message()));
  }
  const auto address = asio::ip::make_address(options_.address, ec);
  if (ec) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("--listen: '{}' is not an IP address", options_.address));
  }
  const tcp::endpoint endpoint(address, options_.port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status(
        StatusCode::kUnavailable,
        fmt::format("cannot listen on {}:{}: {}", options_.address, options_.port, ec.message()));
  }
  port_ = acceptor_.local_endpoint().port();
  return Status();
}

void HttpServer::Run() {
  asio::co_spawn(acceptor_.get_executor(), Accept(), asio::detached);
  const int n = options_.threads > 0
                    ? options_.threads
                    : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 1; i < n; ++i) threads_.emplace_back([this] { io_.run(); });
  io_.run();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void HttpServer::Drain() {
  // On the acceptor's strand: closing it must not race the accept loop starting its next
  // accept on another I/O thread (TSan found it).
  asio::co_spawn(
      acceptor_.get_executor(),
      [this]() -> Awaitable<void> {
        if (draining_.exchange(true)) co_return;
        boost::system::error_code ignored;
        acceptor_.close(ignored);
        // Requests being served (read whole, response not yet written) finish; idle
        // connections are dropped with the process.
        const auto until = std::chrono::steady_clock::now() + options_.drain_timeout;
        asio::steady_timer t(io_);
        while (busy_ > 0 && std::chrono::steady_clock::now() < until) {
          t.expires_after(std::chrono::milliseconds(10));
          co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
        }
        io_.stop();
      },
      asio::detached);
}

Awaitable<void> HttpServer::Accept() {
  while (acceptor_.is_open()) {
    boost::system::error_code ec;
    tcp::socket socket = co_await acceptor_.async_accept(
        asio::make_strand(io_), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (!acceptor_.is_open()) co_return;
      continue;  // EMFILE and friends: the next accept may succeed
    }
    // A response goes out as header and body: without TCP_NODELAY, Nagle holds the body
    // until the client's delayed ACK, 40 ms later (agentload through the server showed a P99
    // of 50 ms for 5 ms of work before this).
    socket.set_option(tcp::no_delay(true), ec);
    auto ex = socket.get_executor();
    asio::co_spawn(ex, Serve(std::move(socket)), asio::detached);
  }
}

Awaitable<void> HttpServer::Serve(tcp::socket socket) {
  if (!tls_) {
    beast::tcp_stream stream(std::move(socket));
    co_await Session(stream);
    co_return;
  }
  // TLS: the handshake within the read timeout, then the same session over it. A client
  // that does not complete one is closed without an answer (it speaks no TLS to answer in).
  beast::ssl_stream<beast::tcp_stream> stream(std::move(socket), *tls_);
  beast::get_lowest_layer(stream).expires_after(options_.read_timeout);
  boost::system::error_code ec;
  co_await stream.async_handshake(asio::ssl::stream_base::server,
                                  asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    ++tls_handshake_failures_;
    co_return;
  }
  co_await Session(stream);
}

template <typename Stream>
Awaitable<void> HttpServer::Session(Stream& stream) {
  auto& tcp_layer = beast::get_lowest_layer(stream);
  boost::system::error_code ec;
  if (open_.fetch_add(1) >= options_.max_connections) {
    // Over the connection limit: one answer, then the door.
    tcp_layer.expires_after(std::chrono::seconds(1));
    auto res = ToHttp(Problem(503, "unavailable",
                              fmt::format("the server holds its limit of {} connections; retry "
                                          "later or reuse a keep-alive connection",
                                          options_.max_connections)),
                      11, false);
    res.set(http::field::retry_after, "1");
    co_await http::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
    co_await Close(stream);
    --open_;
    co_return;
  }
  beast::flat_buffer buffer;
  while (!draining_) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(options_.max_body_bytes);
    parser.header_limit(static_cast<std::uint32_t>(options_.max_header_bytes));
    tcp_layer.expires_after(options_.read_timeout);
    co_await http::async_read(stream, buffer, parser,
                              asio::redirect_error(asio::use_awaitable, ec));
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::connection_reset || ec == asio::error::operation_aborted ||
        ec == asio::error::eof) {
      break;
    }
    if (ec) {
      // A request we cannot read whole: say why, then close (the stream's framing is lost).
      ApiResponse problem =
          ec == http::error::body_limit
              ? Problem(413, "content_too_large",
                        fmt::format("the body is over the server's limit of {} bytes",
                                    options_.max_body_bytes))
          : ec == http::error::header_limit
              ? Problem(431, "header_too_large",
                        fmt::format("the request's headers are over the server's limit of {} "
                                    "bytes",
                                    options_.max_header_bytes))
              : Problem(400, "bad_request",
                        fmt::format("the request is not valid HTTP/1.1: {}", ec.message()));
      tcp_layer.expires_after(std::chrono::seconds(5));
      auto res = ToHttp(problem, 11, false);
      co_await http::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
      break;
    }
    ++busy_;
    auto& req = parser.get();
    ApiRequest call;
    call.method = std::string(req.method_string());
    call.target = std::string(req.target());
    call.content_type = std::string(req[http::field::content_type]);
    call.authorization = std::string(req[http::field::authorization]);
    call.if_match = std::string(req[http::field::if_match]);
    call.if_none_match = std::string(req[http::field::if_none_match]);
    call.idempotency_key = std::string(req["Idempotency-Key"]);
    call.body = std::move(req.body());
    const bool keep_alive = req.keep_alive() && !draining_;
    const unsigned version = req.version();
    ApiResponse answer = co_await api_.Handle(std::move(call));
    auto res = ToHttp(answer, version, keep_alive);
    tcp_layer.expires_after(options_.read_timeout);
    co_await http::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
    --busy_;
    if (ec || !keep_alive) break;
  }
  co_await Close(stream);
  --open_;
}

// The end of a session: TLS's close_notify (within a second), then TCP's FIN.
template <typename Stream>
Awaitable<void> HttpServer::Close(Stream& stream) {
  boost::system::error_code ec;
  if constexpr (!std::is_same_v<Stream, beast::tcp_stream>) {
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(1));
    co_await stream.async_shutdown(asio::redirect_error(asio::use_awaitable, ec));
  }
  beast::get_lowest_layer(stream).socket().shutdown(tcp::socket::shutdown_send, ec);
}

}  // namespace agentstate::server
