#include "backends/redis/client.hpp"

#include <fmt/format.h>

#include "core/backoff.hpp"

#include <algorithm>
#include <bit>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <charconv>
#include <cmath>
#include <deque>
#include <functional>
#include <random>

#include "core/uri.hpp"
#include "core/wait_group.hpp"

namespace agentstate::redis {

using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;

Result<RedisOptions> ParseRedisUri(std::string_view text,
                                   std::initializer_list<std::string_view> extra) {
  auto uri = core::ParseUri(text);
  if (!uri) return Error(uri.error());
  return ParseRedisUri(*uri, extra);
}

Result<RedisOptions> ParseRedisUri(const core::ParsedUri& parsed,
                                   std::initializer_list<std::string_view> extra) {
  const core::ParsedUri* uri = &parsed;
  RedisOptions o;
  o.redacted_uri = core::RedactUri(parsed);
  auto bad = [&](const std::string& why) {
    return Error(StatusCode::kInvalidArgument,
                 fmt::format("malformed redis URI '{}': {}", o.redacted_uri, why));
  };
  if (uri->scheme != "redis") return bad("the scheme must be redis://");
  std::vector<std::string_view> known = {"connect_timeout", "timeout", "connections",
                                         "max_in_flight", "pool_wait"};
  known.insert(known.end(), extra.begin(), extra.end());
  if (Status s = core::CheckKnownParams(*uri, known); !s.ok()) return Error(s);
  auto authority = core::ParseAuthority(uri->body);
  if (!authority) return bad(authority.error().message());
  // redis://PASSWORD@host and redis://:PASSWORD@host both name the password.
  o.password = authority->password.empty() ? authority->user : authority->password;
  o.host = authority->host;
  if (authority->port) o.port = *authority->port;
  if (const std::string& db = authority->path; !db.empty()) {
    auto [end, ec] = std::from_chars(db.data(), db.data() + db.size(), o.db);
    if (ec != std::errc() || end != db.data() + db.size() || o.db < 0 || o.db > 1000)
      return bad("database must be 0..1000");
  }
  auto connect_timeout = core::DurationParam(*uri, "connect_timeout", o.connect_timeout, true);
  if (!connect_timeout) return bad(connect_timeout.error().message());
  o.connect_timeout = *connect_timeout;
  auto timeout = core::DurationParam(*uri, "timeout", o.command_timeout, true);
  if (!timeout) return bad(timeout.error().message());
  o.command_timeout = *timeout;
  auto pool_wait = core::DurationParam(*uri, "pool_wait", o.pool_wait, false);
  if (!pool_wait) return bad(pool_wait.error().message());
  o.pool_wait = *pool_wait;
  auto n = core::UintParam(*uri, "connections", 2, 1, 64);
  if (!n) return Error(n.error());
  o.connections = static_cast<int>(*n);
  auto limit = core::UintParam(*uri, "max_in_flight", o.max_in_flight, 1, 1000000);
  if (!limit) return Error(limit.error());
  o.max_in_flight = static_cast<std::size_t>(*limit);
  return o;
}

// A command waiting for its reply. Complete runs once, on the client's thread.
struct Pending {
  explicit Pending(std::string b, Deadline d) : bytes(std::move(b)), deadline(d) {}
  virtual ~Pending() = default;
  virtual void Deliver(Result<Reply> r) = 0;
  void Complete(Result<Reply> r) {
    if (done) return;
    done = true;
    if (timer) timer->cancel();
    if (on_done) on_done(r);  // gives its admission slot back; tells the breaker
    Deliver(std::move(r));
  }
  std::string bytes;
  Deadline deadline;
  bool done = false;
  // A dropped connection fails everything in flight on it at once: that is one failure for
  // the circuit breaker, not one per command (400 commands would otherwise trip it).
  bool counts_for_breaker = true;
  std::unique_ptr<asio::steady_timer> timer;
  std::function<void(const Result<Reply>&)> on_done;
};

namespace {

template <typename Handler>
struct TypedPending final : Pending {
  TypedPending(std::string b, Deadline d, Handler h)
      : Pending(std::move(b), d), handler(std::move(h)) {}
  void Deliver(Result<Reply> r) override {
    auto ex = asio::get_associated_executor(handler);
    asio::post(ex, [h = std::move(handler), r = std::move(r)]() mutable { h(std::move(r)); });
  }
  Handler handler;
};

}  // namespace

// One TCP connection and its pipeline. Everything here runs on the client's one thread.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  bool connected() const { return connected_; }                                   // I/O thread only
  std::size_t outstanding() const { return queued_.size() + in_flight_.size(); }  // I/O thread only
  Connection(asio::io_context& io, const RedisOptions& o)
      : io_(io), o_(o), socket_(io), wake_(io) {}

  void Start() {
    asio::co_spawn(
        io_, [self = shared_from_this()]() -> Awaitable<void> { co_await self->Run(); },
        asio::detached);
  }
  void Stop() {
    stopped_ = true;
    boost::system::error_code ec;
    socket_.close(ec);
    wake_.cancel();
  }

  void Enqueue(std::shared_ptr<Pending> p) {
    if (SteadyClock::now() >= p->deadline) {
      p->Complete(Error(StatusCode::kTimeout, "redis command: deadline passed before it was sent"));
      return;
    }
    // Known down (refused credentials, or two connects failed in a row): fail now, naming
    // why, rather than at the deadline. A single drop just queues for the reconnect.
    if (!connected_ && !last_error_.empty() && (fail_fast_ || attempts_ >= 2)) {
      p->Complete(Error(StatusCode::kUnavailable, last_error_));
      return;
    }
    p->timer = std::make_unique<asio::steady_timer>(io_, p->deadline);
    p->timer->async_wait(
        [w = std::weak_ptr<Pending>(p), self = weak_from_this()](boost::system::error_code ec) {
          if (ec) return;
          auto q = w.lock();
          if (!q || q->done) return;
          q->Complete(
              Error(StatusCode::kTimeout, "redis command: deadline passed waiting for the reply"));
          if (auto c = self.lock()) c->OnTimeout();
        });
    queued_.push_back(std::move(p));
    wake_.cancel();
  }

  uint64_t reconnects() const { return reconnects_; }

  // A command timed out. Several in a row with no reply at all in between: the connection is
  // presumed dead (a half-open TCP connection, whose peer vanished without a FIN or RST,
  // never fails by itself) and is dropped, so the next commands go to a fresh one.
  void OnTimeout() {
    if (!connected_ || ++silent_timeouts_ < kDeadAfterTimeouts) return;
    silent_timeouts_ = 0;
    last_error_ = fmt::format("{}: no reply to {} commands in a row; connection presumed dead",
                              o_.redacted_uri, kDeadAfterTimeouts);
    boost::system::error_code ignored;
    socket_.close(ignored);
    wake_.cancel();
  }

 private:
  static constexpr int kDeadAfterTimeouts = 3;
  Awaitable<void> Run() {
    std::mt19937_64 rng(std::random_device{}());
    while (!stopped_) {
      Status s = co_await Connect();
      if (s.ok()) {
        connected_ = true;
        attempts_ = 0;
        backoff_.Reset();
        last_error_.clear();
        s = co_await Serve();
        connected_ = false;
        ++reconnects_;
      }
      // Everything sent on the dropped connection failed; the rest waits for the next one.
      last_error_ = s.message();
      Drop(s);
      if (stopped_) break;
      ++attempts_;
      const auto wait = backoff_.Next(rng);
      asio::steady_timer t(io_, wait);
      boost::system::error_code ec;
      co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    Drop(Status(StatusCode::kUnavailable, fmt::format("{}: client stopped", o_.redacted_uri)));
  }

  Awaitable<Status> Connect() {
    boost::system::error_code ec;
    socket_ = tcp::socket(io_);
    tcp::resolver resolver(io_);
    auto endpoints = co_await resolver.async_resolve(o_.host, std::to_string(o_.port),
                                                     asio::redirect_error(asio::use_awaitable, ec));
    if (ec)
      co_return Status(StatusCode::kUnavailable,
                       fmt::format("cannot resolve {}: {}", o_.redacted_uri, ec.message()));
    // A watchdog closes the socket at the connect deadline: Asio 1.18 has no per-op cancellation.
    asio::steady_timer watchdog(io_, o_.connect_timeout);
    bool timed_out = false;
    watchdog.async_wait([&](boost::system::error_code e) {
      if (!e) {
        timed_out = true;
        boost::system::error_code ignored;
        socket_.close(ignored);
      }
    });
    co_await asio::async_connect(socket_, endpoints, asio::redirect_error(asio::use_awaitable, ec));
    watchdog.cancel();
    if (ec || timed_out) {
      co_return Status(
          StatusCode::kUnavailable,
          fmt::format("cannot connect to {}: {}", o_.redacted_uri,
                      timed_out ? fmt::format("no answer within {} ms", o_.connect_timeout.count())
                                : ec.message()));
    }
    socket_.set_option(tcp::no_delay(true), ec);
    // AUTH and SELECT before anything else goes out on this connection.
    std::vector<std::vector<std::string_view>> hello;
    if (!o_.password.empty()) hello.push_back({"AUTH", o_.password});
    if (o_.db > 0) hello.push_back({"SELECT", db_text_ = std::to_string(o_.db)});
    parser_ = std::make_unique<ReplyParser>();
    for (const auto& cmd : hello) {
      std::string out;
      EncodeCommand(out, cmd);
      co_await asio::async_write(socket_, asio::buffer(out),
                                 asio::redirect_error(asio::use_awaitable, ec));
      if (ec)
        co_return Status(StatusCode::kUnavailable,
                         fmt::format("{}: {}", o_.redacted_uri, ec.message()));
      auto reply = co_await ReadReply(ec);
      if (!reply) co_return reply.error();
      if (reply->is_error()) {
        fail_fast_ = true;  // a wrong password or database will not fix itself on retry
        co_return Status(StatusCode::kUnavailable,
                         fmt::format("{} refused {}: {}", o_.redacted_uri, cmd[0], reply->str));
      }
    }
    fail_fast_ = false;
    co_return Status();
  }

  Awaitable<Result<Reply>> ReadReply(boost::system::error_code& ec) {
    while (true) {
      auto r = parser_->Next();
      if (!r) co_return Error(r.error());
      if (*r) co_return std::move(**r);
      std::size_t n = co_await socket_.async_read_some(
          asio::buffer(buf_), asio::redirect_error(asio::use_awaitable, ec));
      if (ec)
        co_return Error(StatusCode::kUnavailable,
                        fmt::format("{}: connection lost: {}", o_.redacted_uri, ec.message()));
      parser_->Feed(std::string_view(buf_.data(), n));
    }
  }

  // Reader and writer side by side until either fails; returns why the connection ended.
  Awaitable<Status> Serve() {
    Status reason;
    core::WaitGroup group(io_.get_executor());
    group.Add(2);
    auto self = shared_from_this();
    auto end = [&](Status s) {
      if (reason.ok()) reason = std::move(s);
      boost::system::error_code ignored;
      socket_.close(ignored);
      wake_.cancel();
    };
    asio::co_spawn(
        io_,
        [&, self]() -> Awaitable<void> {
          end(co_await Writer());
          group.Done();
        },
        asio::detached);
    asio::co_spawn(
        io_,
        [&, self]() -> Awaitable<void> {
          end(co_await Reader());
          group.Done();
        },
        asio::detached);
    co_await group.Wait();
    co_return reason;
  }

  Awaitable<Status> Writer() {
    std::string out;
    while (!stopped_ && socket_.is_open()) {
      if (queued_.empty()) {
        wake_.expires_at(asio::steady_timer::time_point::max());
        boost::system::error_code ec;
        co_await wake_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        continue;
      }
      // Everything queued goes out in one write: the pipeline coalesces under load.
      out.clear();
      while (!queued_.empty()) {
        auto p = std::move(queued_.front());
        queued_.pop_front();
        if (p->done) continue;  // timed out before it was sent: never send it
        out += p->bytes;
        in_flight_.push_back(std::move(p));
      }
      if (out.empty()) continue;
      boost::system::error_code ec;
      co_await asio::async_write(socket_, asio::buffer(out),
                                 asio::redirect_error(asio::use_awaitable, ec));
      if (ec)
        co_return Status(StatusCode::kUnavailable,
                         fmt::format("{}: write failed: {}", o_.redacted_uri, ec.message()));
    }
    co_return Status(StatusCode::kUnavailable,
                     fmt::format("{}: connection closed", o_.redacted_uri));
  }

  Awaitable<Status> Reader() {
    while (true) {
      boost::system::error_code ec;
      auto reply = co_await ReadReply(ec);
      if (!reply) co_return reply.error();
      if (in_flight_.empty()) {
        co_return Status(
            StatusCode::kInternal,
            fmt::format("{}: a reply arrived with no command waiting for it", o_.redacted_uri));
      }
      auto p = std::move(in_flight_.front());
      in_flight_.pop_front();
      if (reply->is_error() && reply->str.rfind("LOADING", 0) == 0) {
        // A restarted server answers before its data is back: not an answer, an outage.
        p->Complete(Error(StatusCode::kUnavailable, fmt::format("{} is loading its dataset: {}",
                                                                o_.redacted_uri, reply->str)));
        continue;
      }
      silent_timeouts_ = 0;            // the server answers on this connection
      p->Complete(std::move(*reply));  // a no-op for a command that already timed out
    }
  }

  void Drop(const Status& why) {
    const Status unavailable(StatusCode::kUnavailable,
                             why.code() == StatusCode::kUnavailable
                                 ? why.message()
                                 : fmt::format("{} (connection dropped)", why.ToString()));
    bool first = true;
    for (auto& p : in_flight_) {
      p->counts_for_breaker = std::exchange(first, false);
      p->Complete(Error(unavailable));
    }
    in_flight_.clear();
    if (fail_fast_ || stopped_ || attempts_ >= 1) {
      for (auto& p : queued_) p->Complete(Error(unavailable));
      queued_.clear();
    }
  }

  asio::io_context& io_;
  const RedisOptions& o_;
  tcp::socket socket_;
  asio::steady_timer wake_;
  std::unique_ptr<ReplyParser> parser_;
  std::array<char, 64 * 1024> buf_{};
  std::deque<std::shared_ptr<Pending>> queued_, in_flight_;
  std::string db_text_;
  std::string last_error_;
  bool connected_ = false, stopped_ = false, fail_fast_ = false;
  int attempts_ = 0;  // failed connects in a row
  core::ReconnectBackoff backoff_;
  int silent_timeouts_ = 0;              // commands timed out since the last reply
  std::atomic<uint64_t> reconnects_{0};  // read from any thread (RedisClient::reconnects)
};

RedisClient::RedisClient(RedisOptions options)
    : options_(std::move(options)),
      io_(1),
      work_(asio::make_work_guard(io_)),
      gate_(io_, options_.max_in_flight, options_.pool_wait, options_.redacted_uri, "commands") {
  for (int i = 0; i < options_.connections; ++i)
    connections_.push_back(std::make_shared<Connection>(io_, options_));
  for (auto& c : connections_) c->Start();
  thread_ = std::thread([this] { io_.run(); });
}

RedisClient::~RedisClient() {
  asio::post(io_, [this] {
    for (auto& c : connections_) c->Stop();
  });
  work_.reset();
  thread_.join();
}

std::shared_ptr<Connection> RedisClient::Pick() { return core::PickConnected(connections_, next_); }

void RedisClient::Dispatch(std::shared_ptr<Connection> conn, std::shared_ptr<Pending> p) {
  p->on_done = [this, raw = p.get()](const Result<Reply>& r) {
    // Any reply, error replies included, proves the server answers; no reply does not.
    gate_.Finished(r.has_value(), !r && raw->counts_for_breaker);
  };
  conn->Enqueue(std::move(p));
}

RedisClient::Stats RedisClient::stats() const {
  Stats s;
  static_cast<core::Admission::Counters&>(s) = gate_.counters();
  s.connections = static_cast<uint64_t>(options_.connections);
  s.reconnects = reconnects();
  return s;
}

uint64_t RedisClient::reconnects() const {
  uint64_t n = 0;
  for (const auto& c : connections_) n += c->reconnects();
  return n;
}

Awaitable<Result<Reply>> RedisClient::Command(std::vector<std::string> args, Deadline deadline) {
  std::vector<std::string_view> views(args.begin(), args.end());
  return Command(views, deadline);
}

Awaitable<Result<Reply>> RedisClient::Command(const std::vector<std::string_view>& args,
                                              Deadline deadline) {
  std::string bytes;
  EncodeCommand(bytes, args);
  if (options_.command_timeout.count() > 0)
    deadline = std::min(deadline, SteadyClock::now() + options_.command_timeout);
  return Submit(std::move(bytes), deadline);
}

Awaitable<Result<Reply>> RedisClient::Submit(std::string bytes, Deadline deadline) {
  auto initiate = [this, bytes = std::move(bytes), deadline](auto handler) mutable {
    using Handler = decltype(handler);
    auto p =
        std::make_shared<TypedPending<Handler>>(std::move(bytes), deadline, std::move(handler));
    asio::post(io_, [this, p]() mutable {
      gate_.Admit(
          p->deadline, [this, p] { Dispatch(Pick(), p); },
          [p](Status why) { p->Complete(Error(why)); });
    });
  };
  return asio::async_initiate<decltype(asio::use_awaitable), void(Result<Reply>)>(
      std::move(initiate), asio::use_awaitable);
}

}  // namespace agentstate::redis
