#include "server/http_server.hpp"

#include <fmt/format.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <deque>
#include <iterator>
#include <type_traits>

#include "server/http_wire.hpp"

namespace agentstate::server {
namespace {

// How long a connection's reading waits after a 429 (Flight::hold_until); less than the
// Retry-After (at least a second) it was given.
constexpr auto kHoldAfter429 = std::chrono::milliseconds(100);

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

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

// A connection's requests in flight, in the order they were read. Each is answered by its
// own coroutine; the writer sends the answers from the front, in order, all that are ready
// in one write. Requests on one run keep their order (a load pipelined after a save sees
// it); requests on different runs run at once; any other request (a list, a thread, health,
// admin) waits for all before it, and all after it wait for it. Everything runs on the
// connection's strand, so the slots need no lock; `changed` is a wake-up, cancelled
// whenever a slot or a flag changes, and every waiter checks its own condition again.
struct HttpServer::Slot {
  std::string scope;  // the run the request is about, or "*": every other request
  std::string wire;   // the response's bytes, once answered
  bool answered = false;
  bool close = false;  // the connection ends after this response
};

struct HttpServer::Flight {
  explicit Flight(const asio::any_io_executor& ex) : changed(ex) {
    changed.expires_at(asio::steady_timer::time_point::max());
  }
  Awaitable<void> Changed() {
    boost::system::error_code ignored;
    co_await changed.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  }
  void Notify() { changed.cancel(); }
  bool FrontAnswered() const { return !slots.empty() && slots.front().answered; }
  // Whether an earlier request that is not answered yet must come first.
  bool MustWait(const Slot& slot) const {
    for (const auto& earlier : slots) {
      if (&earlier == &slot) return false;
      if (!earlier.answered &&
          (earlier.scope == "*" || slot.scope == "*" || earlier.scope == slot.scope))
        return true;
    }
    return false;
  }

  std::deque<Slot> slots;  // push_back and pop_front keep the others' addresses
  asio::steady_timer changed;
  // After a 429 (a tenant over its rate limit, or the store's admission full), the
  // connection's next request is not read before this: its client was told to wait
  // (Retry-After), and one that floods anyway gets one pipelined burst answered per hold,
  // not all it can send, so that the server's cores stay with the clients that wait.
  std::chrono::steady_clock::time_point hold_until{};
  bool reading_done = false;
  bool writer_done = false;
};

Awaitable<void> HttpServer::Answer(ApiRequest call, unsigned version, bool keep_alive,
                                   std::shared_ptr<Flight> flight, Slot* slot) {
  while (flight->MustWait(*slot)) co_await flight->Changed();
  ApiResponse answer = co_await api_.Handle(std::move(call));
  if (answer.status == 429) flight->hold_until = std::chrono::steady_clock::now() + kHoldAfter429;
  slot->wire = ToWire(answer, version, keep_alive);
  slot->close = !keep_alive;
  slot->answered = true;
  flight->Notify();
}

template <typename Stream>
Awaitable<void> HttpServer::Write(Stream& stream, std::shared_ptr<Flight> flight) {
  auto& tcp_layer = beast::get_lowest_layer(stream);
  boost::system::error_code ec;
  std::vector<asio::const_buffer> out;
  bool close = false;
  while (!close) {
    if (!flight->FrontAnswered()) {
      if (flight->slots.empty() && flight->reading_done) break;
      co_await flight->Changed();
      continue;
    }
    // Every answered response at the front, up to one that closes the connection.
    std::size_t n = 0;
    out.clear();
    for (auto& slot : flight->slots) {
      if (!slot.answered) break;
      out.emplace_back(asio::buffer(slot.wire));
      ++n;
      if (slot.close) {
        close = true;
        break;
      }
    }
    tcp_layer.expires_after(options_.read_timeout);
    co_await asio::async_write(stream, out, asio::redirect_error(asio::use_awaitable, ec));
    for (std::size_t i = 0; i < n; ++i) flight->slots.pop_front();
    busy_ -= n;
    flight->Notify();
    if (ec) break;
  }
  // Ending early (a write failed, or a response closed the connection): stop the reader, and
  // let the answers still being made finish before their slots go.
  if (!flight->reading_done) tcp_layer.socket().cancel(ec);
  while (!flight->slots.empty()) {
    while (!flight->slots.empty() && flight->slots.front().answered) {
      flight->slots.pop_front();
      --busy_;
    }
    if (!flight->slots.empty()) co_await flight->Changed();
  }
  flight->writer_done = true;
  flight->Notify();
}

template <typename Stream>
Awaitable<void> HttpServer::Session(Stream& stream) {
  auto& tcp_layer = beast::get_lowest_layer(stream);
  boost::system::error_code ec;
  if (open_.fetch_add(1) >= options_.max_connections) {
    // Over the connection limit: one answer, then the door.
    tcp_layer.expires_after(std::chrono::seconds(1));
    ApiResponse full = Problem(503, "unavailable",
                               fmt::format("the server holds its limit of {} connections; retry "
                                           "later or reuse a keep-alive connection",
                                           options_.max_connections));
    full.headers.emplace_back("Retry-After", "1");
    const std::string wire = ToWire(full, 11, false);
    co_await asio::async_write(stream, asio::buffer(wire),
                               asio::redirect_error(asio::use_awaitable, ec));
    co_await Close(stream);
    --open_;
    co_return;
  }
  const auto ex = stream.get_executor();
  auto flight = std::make_shared<Flight>(ex);
  asio::co_spawn(ex, Write(stream, flight), asio::detached);
  beast::flat_buffer buffer;
  while (!draining_) {
    while (flight->slots.size() >= options_.pipeline_depth && !flight->writer_done)
      co_await flight->Changed();
    if (flight->writer_done) break;
    if (std::chrono::steady_clock::now() < flight->hold_until) {
      asio::steady_timer hold(ex, flight->hold_until);
      co_await hold.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (draining_) break;
    }
    http::request_parser<http::string_body> parser;
    parser.body_limit(options_.max_body_bytes);
    parser.header_limit(static_cast<std::uint32_t>(options_.max_header_bytes));
    tcp_layer.expires_after(options_.read_timeout);
    co_await http::async_read(stream, buffer, parser,
                              asio::redirect_error(asio::use_awaitable, ec));
    if (flight->writer_done || ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::connection_reset || ec == asio::error::operation_aborted ||
        ec == asio::error::eof) {
      break;
    }
    ++busy_;
    auto& slot = flight->slots.emplace_back();
    if (ec) {
      // A request we cannot read whole: after the answers before it, say why, then close
      // (the stream's framing is lost).
      ApiResponse problem = ReadProblem(ec, options_.max_body_bytes, options_.max_header_bytes);
      slot.wire = ToWire(problem, 11, false);
      slot.scope = "*";
      slot.close = slot.answered = true;
      flight->Notify();
      break;
    }
    auto& req = parser.get();
    ApiRequest call = ToApiRequest(req);
    slot.scope = ScopeOf(call.target);
    const bool keep_alive = req.keep_alive() && !draining_;
    asio::co_spawn(ex, Answer(std::move(call), req.version(), keep_alive, flight, &slot),
                   asio::detached);
    if (!keep_alive) break;
  }
  // The writer sends what was read (or stops early) and ends; then the connection closes.
  flight->reading_done = true;
  flight->Notify();
  while (!flight->writer_done) co_await flight->Changed();
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
