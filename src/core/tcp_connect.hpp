// A TCP connection with a deadline, for the clients on the pipelined-connection core: resolve,
// connect within `timeout`, TCP_NODELAY. Asio 1.18 has no per-operation cancellation, so a
// watchdog closes the socket when the deadline passes.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include <fmt/format.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "agentstate/status.hpp"
#include "core/asio.hpp"

namespace agentstate::core {

// Opens `socket` (replaced by a fresh one) to host:port. kUnavailable naming `endpoint` (the
// URI without secrets) and why: the name did not resolve, the connect failed, or no answer
// came within `timeout`.
inline Awaitable<Status> ConnectTcp(asio::io_context& io, asio::ip::tcp::socket& socket,
                                    const std::string& host, uint16_t port,
                                    std::chrono::milliseconds timeout, std::string_view endpoint) {
  using tcp = asio::ip::tcp;
  boost::system::error_code ec;
  socket = tcp::socket(io);
  tcp::resolver resolver(io);
  auto endpoints = co_await resolver.async_resolve(host, std::to_string(port),
                                                   asio::redirect_error(asio::use_awaitable, ec));
  if (ec)
    co_return Status(StatusCode::kUnavailable,
                     fmt::format("cannot resolve {}: {}", endpoint, ec.message()));
  asio::steady_timer watchdog(io, timeout);
  bool timed_out = false;
  watchdog.async_wait([&](boost::system::error_code e) {
    if (e) return;
    timed_out = true;
    boost::system::error_code ignored;
    socket.close(ignored);
  });
  co_await asio::async_connect(socket, endpoints, asio::redirect_error(asio::use_awaitable, ec));
  watchdog.cancel();
  if (ec || timed_out) {
    co_return Status(StatusCode::kUnavailable,
                     fmt::format("cannot connect to {}: {}", endpoint,
                                 timed_out ? fmt::format("no answer within {} ms", timeout.count())
                                           : ec.message()));
  }
  socket.set_option(tcp::no_delay(true), ec);
  co_return Status();
}

}  // namespace agentstate::core
