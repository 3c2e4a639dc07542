// agentstated's HTTP/1.1 server on Boost.Beast: coroutine sessions, keep-alive, pipelined
// requests answered in order, several I/O threads. Each request goes to server::Api.
//
// Limits (ServerOptions): header and body sizes (431, 413), connections (beyond the limit a
// new connection gets 503 and is closed), and one read timeout that bounds both the wait for
// a request and the time to receive it whole, so a client sending a byte a second is cut off.
// A pipelining client's requests are served concurrently, up to pipeline_depth per
// connection: each is answered by its own coroutine, and the answers go out in the order
// the requests came, those ready together in one write. Requests on one run are carried
// out in order, those on different runs at once; a request about no single run (a list,
// health, admin) waits for those before it and holds back those after it. Past the depth,
// the next request waits in the socket.
//
// Drain (Drain()): stop accepting, answer what is in flight with Connection: close, wait
// for it up to the drain timeout, then stop.
//
// TLS (ServerOptions::tls_cert and tls_key): OpenSSL through Beast, TLS 1.2 and 1.3; the
// handshake must finish within the read timeout; the same sessions run over it.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include "core/asio.hpp"
#include "server/api.hpp"

namespace agentstate::server {

struct ServerOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 8787;  // 0: any free port (port() tells which)
  int threads = 0;       // 0: one per core
  std::size_t max_body_bytes = 16 * 1024 * 1024 + 64 * 1024;
  std::size_t max_header_bytes = 16 * 1024;
  std::size_t max_connections = 10000;
  std::size_t pipeline_depth = 64;  // requests of one connection in the server at once
  std::chrono::milliseconds read_timeout{10000};
  std::chrono::milliseconds drain_timeout{10000};
  // TLS (both or neither): PEM files of the certificate chain and its private key.
  std::string tls_cert, tls_key;
};

class HttpServer {
 public:
  HttpServer(ServerOptions options, Api& api);
  ~HttpServer();

  // Binds and listens; kUnavailable naming the address when it cannot.
  Status Listen();
  uint16_t port() const { return port_; }
  // Runs the I/O threads until Drain has finished. Blocks.
  void Run();
  // From any thread (a signal handler's strand): stop accepting, let in-flight requests
  // finish within the drain timeout, then let Run return.
  void Drain();

  uint64_t connections() const { return open_; }
  uint64_t tls_handshake_failures() const { return tls_handshake_failures_; }

 private:
  Awaitable<void> Accept();
  Awaitable<void> Serve(asio::ip::tcp::socket socket);
  // One connection's requests, over TCP or TLS; then Close.
  template <typename Stream>
  Awaitable<void> Session(Stream& stream);
  // A connection's requests in flight and the answers to them (http_server.cpp).
  struct Flight;
  struct Slot;
  Awaitable<void> Answer(ApiRequest call, unsigned version, bool keep_alive,
                         std::shared_ptr<Flight> flight, Slot* slot);
  template <typename Stream>
  Awaitable<void> Write(Stream& stream, std::shared_ptr<Flight> flight);
  template <typename Stream>
  Awaitable<void> Close(Stream& stream);

  ServerOptions options_;
  Api& api_;
  asio::io_context io_;
  asio::ip::tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::atomic<uint64_t> open_{0};
  std::atomic<uint64_t> busy_{0};  // requests read whole whose response is not yet written
  std::atomic<bool> draining_{false};
  std::unique_ptr<asio::ssl::context> tls_;  // set by Listen when TLS is on
  std::atomic<uint64_t> tls_handshake_failures_{0};
  std::vector<std::thread> threads_;
};

}  // namespace agentstate::server
