#include "load/faults/fault_proxy.hpp"
#include "core/asio.hpp"

#include <fmt/format.h>

#include <array>

namespace agentstate::load {

using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

bool IsLoopback(const std::string& host) {
  if (host == "localhost") return true;
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  return !ec && addr.is_loopback();
}

// One proxied connection: the client's socket and ours to the target, a pump each way.
class FaultProxy::Link : public std::enable_shared_from_this<Link> {
 public:
  Link(FaultProxy& proxy, tcp::socket client)
      : proxy_(proxy), client_(std::move(client)), server_(proxy.io_) {}

  void Start() {
    asio::co_spawn(
        proxy_.io_, [self = shared_from_this()]() -> Awaitable<void> { co_await self->Run(); },
        asio::detached);
  }

  // Both sides get an RST: linger on with a zero timeout, then close.
  void Reset() {
    for (tcp::socket* s : {&client_, &server_}) {
      boost::system::error_code ec;
      if (!s->is_open()) continue;
      s->set_option(asio::socket_base::linger(true, 0), ec);
      s->close(ec);
    }
  }

 private:
  Awaitable<void> Run() {
    ++proxy_.open_;
    FaultSpec spec = proxy_.spec();
    bool reset = false;
    {
      std::lock_guard lock(proxy_.mu_);
      reset = spec.reset_probability > 0 &&
              std::uniform_real_distribution<>(0, 1)(proxy_.rng_) < spec.reset_probability;
    }
    if (reset) {
      ++proxy_.resets_;
      Reset();
    } else if (!spec.half_open) {
      boost::system::error_code ec;
      co_await server_.async_connect(proxy_.target_, asio::redirect_error(asio::use_awaitable, ec));
      if (!ec) {
        server_.set_option(tcp::no_delay(true), ec);
        auto self = shared_from_this();
        asio::co_spawn(
            proxy_.io_,
            [self]() -> Awaitable<void> { co_await self->Pump(self->server_, self->client_); },
            asio::detached);
        co_await Pump(client_, server_);
      }
    } else {
      co_await Silent();
    }
    Close();
    proxy_.links_.erase(shared_from_this());
    --proxy_.open_;
  }

  // Half-open: the target side is gone; the client's bytes are read and never answered.
  Awaitable<void> Silent() {
    std::array<char, 16 * 1024> buf{};
    while (true) {
      boost::system::error_code ec;
      co_await client_.async_read_some(asio::buffer(buf),
                                       asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
    }
  }

  Awaitable<void> Pump(tcp::socket& from, tcp::socket& to) {
    std::array<char, 16 * 1024> buf{};
    asio::steady_timer wait(proxy_.io_);
    while (true) {
      boost::system::error_code ec;
      const std::size_t n = co_await from.async_read_some(
          asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
      FaultSpec spec = proxy_.spec();
      // Blackhole: the bytes are held, not lost (as in a partition that heals before TCP
      // gives up); half-open: the target side closes and the client is left hanging.
      const auto held_since = std::chrono::steady_clock::now();
      while (spec.blackhole && !spec.half_open) {
        wait.expires_after(10ms);
        co_await wait.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        if (!from.is_open() || !to.is_open()) co_return;
        spec = proxy_.spec();
      }
      if (spec.half_open) {
        half_open_ = true;  // the other pump must not close the client when the target side goes
        boost::system::error_code ignored;
        server_.close(ignored);
        if (&from == &client_) co_await Silent();
        co_return;
      }
      std::chrono::milliseconds delay = spec.latency;
      if (spec.jitter.count() > 0) {
        std::lock_guard lock(proxy_.mu_);
        delay += std::chrono::milliseconds(std::uniform_int_distribution<int64_t>(
            -spec.jitter.count(), spec.jitter.count())(proxy_.rng_));
      }
      if (spec.bandwidth_bytes_per_s > 0) {
        delay += std::chrono::milliseconds(static_cast<int64_t>(
            1000.0 * static_cast<double>(n) / static_cast<double>(spec.bandwidth_bytes_per_s)));
      }
      if (delay.count() > 0) {
        wait.expires_after(delay);
        co_await wait.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      }
      proxy_.held_ms_ +=
          static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::steady_clock::now() - held_since)
                                    .count());
      // A cut: the bytes within the budget go on, then this connection is reset.
      std::size_t send = n;
      bool cut = false;
      if (&from == &client_) {
        std::lock_guard lock(proxy_.mu_);
        if (proxy_.cut_budget_ >= 0) {
          if (static_cast<int64_t>(n) > proxy_.cut_budget_) {
            send = static_cast<std::size_t>(proxy_.cut_budget_);
            cut = true;
            proxy_.cut_budget_ = -1;
          } else {
            proxy_.cut_budget_ -= static_cast<int64_t>(n);
          }
        }
      }
      if (send > 0) {
        co_await asio::async_write(to, asio::buffer(buf.data(), send),
                                   asio::redirect_error(asio::use_awaitable, ec));
        if (ec) break;
        proxy_.bytes_ += send;
        if (&from == &client_) proxy_.upstream_ += send;
      }
      if (cut) {
        ++proxy_.cuts_;
        Reset();
        co_return;
      }
    }
    if (half_open_) {
      // Only the client side ends a half-open link (when the client gives up on it).
      if (&from == &client_) Close();
      co_return;
    }
    Close();
  }

  void Close() {
    boost::system::error_code ec;
    client_.close(ec);
    server_.close(ec);
  }

  FaultProxy& proxy_;
  tcp::socket client_, server_;
  bool half_open_ = false;
};

FaultProxy::FaultProxy(tcp::endpoint target, uint64_t seed)
    : acceptor_(io_), target_(target), rng_(seed) {}

Result<std::unique_ptr<FaultProxy>> FaultProxy::Start(const std::string& listen_host,
                                                      const std::string& target_host,
                                                      uint16_t target_port, uint64_t seed) {
  for (const auto& h : {listen_host, target_host}) {
    if (!IsLoopback(h)) {
      return Error(
          StatusCode::kInvalidArgument,
          fmt::format(
              "fault proxy: {} is not a loopback address; faults only go to 127.0.0.0/8 or ::1",
              h));
    }
  }
  boost::system::error_code ec;
  const auto target_addr =
      asio::ip::make_address(target_host == "localhost" ? "127.0.0.1" : target_host, ec);
  auto proxy =
      std::unique_ptr<FaultProxy>(new FaultProxy(tcp::endpoint(target_addr, target_port), seed));
  const auto listen_addr =
      asio::ip::make_address(listen_host == "localhost" ? "127.0.0.1" : listen_host, ec);
  tcp::endpoint listen(listen_addr, 0);
  proxy->acceptor_.open(listen.protocol(), ec);
  if (!ec) proxy->acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) proxy->acceptor_.bind(listen, ec);
  if (!ec) proxy->acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    return Error(StatusCode::kUnavailable,
                 fmt::format("fault proxy: cannot listen on {}: {}", listen_host, ec.message()));
  proxy->port_ = proxy->acceptor_.local_endpoint().port();
  asio::co_spawn(proxy->io_, proxy->Accept(), asio::detached);
  proxy->thread_ = std::thread([p = proxy.get()] { p->io_.run(); });
  return proxy;
}

FaultProxy::~FaultProxy() {
  asio::post(io_, [this] {
    boost::system::error_code ec;
    acceptor_.close(ec);
    for (const auto& l : links_) l->Reset();
  });
  thread_.join();
}

Awaitable<void> FaultProxy::Accept() {
  while (true) {
    boost::system::error_code ec;
    tcp::socket client =
        co_await acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;  // closed: the proxy is stopping
    client.set_option(tcp::no_delay(true), ec);
    ++accepted_;
    auto link = std::make_shared<Link>(*this, std::move(client));
    links_.insert(link);
    link->Start();
  }
}

void FaultProxy::set(FaultSpec spec) {
  std::lock_guard lock(mu_);
  spec_ = spec;
}

FaultSpec FaultProxy::spec() const {
  std::lock_guard lock(mu_);
  return spec_;
}

void FaultProxy::reset_now() {
  asio::post(io_, [this] {
    for (const auto& l : links_) {
      ++resets_;
      l->Reset();
    }
  });
}

void FaultProxy::cut_after(int64_t bytes) {
  std::lock_guard lock(mu_);
  cut_budget_ = bytes < 0 ? -1 : bytes;
}

FaultProxy::Stats FaultProxy::stats() const {
  return {accepted_.load(), open_.load(), resets_.load(),  bytes_.load(),
          held_ms_.load(),  cuts_.load(), upstream_.load()};
}

}  // namespace agentstate::load
