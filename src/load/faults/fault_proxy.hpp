// A TCP fault proxy on Asio, built into the harness (issue 7). It listens on a loopback
// port and forwards each accepted connection to a loopback target, injecting what its
// current FaultSpec says, per connection and per chunk of bytes:
//   - latency and jitter: each chunk is held latency ± jitter before it is forwarded;
//   - a bandwidth cap: bytes per second per direction, per connection;
//   - resets: a new connection is reset (RST) with probability reset_probability, and
//     reset_now() resets every open one (a reset storm is calling it on a schedule);
//   - blackhole: connections are accepted, and nothing is forwarded either way;
//   - half-open: the target side is closed, the client side is left open and silent.
//   - a cut mid-request: cut_after(n) forwards the next n bytes clients send, then resets the
//     connection that sends more (the request it was sending arrives as a prefix).
// The spec can be changed at any time (set()), so a scenario switches faults on and off at
// its timestamps. Listening and targets are loopback only (127.0.0.0/8, ::1): anything else
// is refused when the proxy is created.
//
// Thread-safety: the proxy runs on its own thread; set(), reset_now() and stats() may be
// called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>

#include "core/asio.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include "agentstate/status.hpp"

namespace agentstate::load {

struct FaultSpec {
  std::chrono::milliseconds latency{0};
  std::chrono::milliseconds jitter{0};
  uint64_t bandwidth_bytes_per_s = 0;  // 0 = no cap
  double reset_probability = 0;        // per new connection, 0..1
  bool blackhole = false;
  bool half_open = false;
};

class FaultProxy {
 public:
  // Listens on listen_host:0 (an ephemeral port) and forwards to target_host:target_port.
  // kInvalidArgument when either address is not loopback.
  static Result<std::unique_ptr<FaultProxy>> Start(const std::string& listen_host,
                                                   const std::string& target_host,
                                                   uint16_t target_port, uint64_t seed = 1);
  ~FaultProxy();

  uint16_t port() const { return port_; }
  void set(FaultSpec spec);
  FaultSpec spec() const;
  // Resets every open connection now (both sides get an RST).
  void reset_now();
  // Forwards `bytes` more bytes from clients to the target, then resets the connection whose
  // next byte would pass that, and disarms. Negative: disarmed (the default).
  void cut_after(int64_t bytes);

  struct Stats {
    uint64_t accepted = 0, open = 0, resets = 0, bytes_forwarded = 0, held_back_ms = 0, cuts = 0;
    uint64_t bytes_from_clients = 0;  // of bytes_forwarded, those toward the target
  };
  Stats stats() const;

  class Link;

 private:
  FaultProxy(asio::ip::tcp::endpoint target, uint64_t seed);
  Awaitable<void> Accept();
  friend class Link;

  asio::io_context io_;
  asio::ip::tcp::acceptor acceptor_;
  asio::ip::tcp::endpoint target_;
  uint16_t port_ = 0;
  mutable std::mutex mu_;
  FaultSpec spec_;
  std::mt19937_64 rng_;                    // guarded by mu_
  std::set<std::shared_ptr<Link>> links_;  // io thread only
  std::atomic<uint64_t> accepted_{0}, resets_{0}, bytes_{0}, held_ms_{0}, open_{0}, cuts_{0},
      upstream_{0};
  int64_t cut_budget_ = -1;  // guarded by mu_
  std::thread thread_;
};

// Whether `host` is a loopback address (127.0.0.0/8, ::1, or "localhost").
bool IsLoopback(const std::string& host);

}  // namespace agentstate::load
