// The pipelined-connection core every network client is built on (Redis, PostgreSQL, and
// the clients to come). It owns what does not depend on the protocol:
//
//   - the queue of pending requests, each with a deadline: one that passes completes with
//     kTimeout and its late answer is discarded; one that timed out before it was sent is
//     never sent;
//   - the connection's life: connect, serve (a writer and a reader side by side until either
//     fails), fail what was in flight, reconnect with jittered exponential backoff
//     (core::ReconnectBackoff); a connection known to be down fails new requests at once,
//     naming why, instead of at their deadline;
//   - half-open detection: with `dead_after_timeouts` > 0, that many timeouts in a row with
//     no answer in between drop the connection (a peer that vanished without FIN or RST
//     never fails by itself);
//   - the client: one I/O thread, a few connections, the shortest queue chosen
//     (core::PickConnected), admission control and the breaker (core::Admission), and
//     counters safe to read from any thread.
//
// A protocol supplies a Connection subclass (Connect, Writer, Reader, Interrupt) and the
// Request it sends; answers are matched to requests in order. Everything of a connection runs
// on the client's one thread.
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <boost/asio/write.hpp>

#include "agentstate/model.hpp"
#include "agentstate/status.hpp"
#include "core/admission.hpp"
#include "core/asio.hpp"
#include "core/backoff.hpp"
#include "core/wait_group.hpp"

namespace agentstate::core {

// The bytes of a request that is its bytes; a protocol whose Request carries more defines
// RequestBytes for it in its own namespace.
inline std::string_view RequestBytes(const std::string& request) { return request; }

// A request waiting for its answer: the protocol's Request, and the core's bookkeeping.
// Complete runs once, on the client's thread.
template <typename Request, typename Answer>
struct Pending {
  Pending(Request r, Deadline d) : request(std::move(r)), deadline(d) {}
  virtual ~Pending() = default;
  Pending(const Pending&) = delete;
  Pending& operator=(const Pending&) = delete;

  void Complete(Result<Answer> r) {
    if (done) return;
    done = true;
    if (timer) timer->cancel();
    if (on_done) on_done(r.has_value(), !r && counts_for_breaker);
    Deliver(std::move(r));
  }

  Request request;
  Deadline deadline;
  bool done = false;
  // A dropped connection fails everything in flight on it at once: that is one failure for
  // the circuit breaker, not one per request (400 requests would otherwise trip it).
  bool counts_for_breaker = true;
  std::unique_ptr<asio::steady_timer> timer;
  // Set by the client for an admitted request: gives the slot back, tells the breaker.
  // Empty for a connection's own requests (a session's warm-up), which are nobody's.
  std::function<void(bool answered, bool failure)> on_done;

 private:
  virtual void Deliver(Result<Answer> r) = 0;
};

// What a connection is told about its peer and its requests, for messages and policy.
struct PipelineOptions {
  std::string endpoint;             // the URI without its password
  std::string request = "request";  // "redis command", "postgresql query"
  std::string answer = "answer";    // "reply", "result"
  int dead_after_timeouts = 0;      // 0: never presume the connection dead
};

template <typename Request, typename Answer>
class Connection : public std::enable_shared_from_this<Connection<Request, Answer>> {
 public:
  using PendingType = Pending<Request, Answer>;

  Connection(asio::io_context& io, PipelineOptions options)
      : io_(io), options_(std::move(options)), wake_(io) {}
  virtual ~Connection() = default;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void Start() {
    asio::co_spawn(
        io_, [self = this->shared_from_this()]() -> Awaitable<void> { co_await self->Run(); },
        asio::detached);
  }
  void Stop() {
    stopped_ = true;
    Interrupt();
    wake_.cancel();
  }

  bool connected() const { return connected_; }                                   // I/O thread
  std::size_t outstanding() const { return queued_.size() + in_flight_.size(); }  // I/O thread
  uint64_t reconnects() const { return reconnects_; }                             // any thread
  uint64_t sent() const { return sent_; }                                         // any thread

  void Enqueue(std::shared_ptr<PendingType> p) {
    if (std::chrono::steady_clock::now() >= p->deadline) {
      p->Complete(Error(StatusCode::kTimeout,
                        fmt::format("{}: deadline passed before it was sent", options_.request)));
      return;
    }
    // Known down (refused credentials, or two connects failed in a row): fail now, naming
    // why, rather than at the deadline. A single drop just queues for the reconnect.
    if (!connected_ && !last_error_.empty() && (refused_ || attempts_ >= 2)) {
      p->Complete(Error(StatusCode::kUnavailable, last_error_));
      return;
    }
    p->timer = std::make_unique<asio::steady_timer>(io_, p->deadline);
    p->timer->async_wait([w = std::weak_ptr<PendingType>(p),
                          self = this->weak_from_this()](boost::system::error_code ec) {
      if (ec) return;
      auto q = w.lock();
      if (!q || q->done) return;
      if (auto c = self.lock()) c->TimedOut(*q);
    });
    queued_.push_back(std::move(p));
    wake_.cancel();
  }

 protected:
  // Opens the connection and runs its handshake; kUnavailable (or any error) when it cannot.
  virtual Awaitable<Status> Connect() = 0;
  // Sends what is queued (TakeQueued), waiting for more (WaitForWork), until the connection
  // ends or fails; returns why. Every request sent goes to in_flight_, in order.
  virtual Awaitable<Status> Writer() = 0;
  // Reads answers and completes in_flight_'s front with each (Answered), until the
  // connection ends or fails; returns why.
  virtual Awaitable<Status> Reader() = 0;
  // Wakes the writer and reader blocked on the socket (close or cancel it).
  virtual void Interrupt() = 0;
  // After a session ends, before the backoff: release what the session held.
  virtual void Closed() {}
  // A session is up, before anything queued goes out: a protocol may put its own requests
  // at the front of queued_ (a warm-up).
  virtual void Opened() {}

  // The peer refused the connection for a reason a retry does not fix (wrong password):
  // requests fail at once until a connect succeeds.
  void Refused(bool refused) { refused_ = refused; }
  // The client is stopping; or, within a session, the session is ending.
  bool stopped() const { return stopped_; }
  bool ending() const { return stopped_ || ending_; }

  // Waits until something is queued or the connection ends.
  Awaitable<void> WaitForWork() {
    wake_.expires_at(asio::steady_timer::time_point::max());
    boost::system::error_code ec;
    co_await wake_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  // The next queued request to send (moved to in_flight_), or null when none is left.
  // Requests that timed out while queued are skipped: they are never sent.
  PendingType* TakeQueued() {
    while (!queued_.empty()) {
      auto p = std::move(queued_.front());
      queued_.pop_front();
      if (p->done) continue;
      in_flight_.push_back(std::move(p));
      return in_flight_.back().get();
    }
    return nullptr;
  }
  // `n` requests taken from the queue went out on the socket whole.
  void Sent(uint64_t n) { sent_ += n; }
  // A Writer for protocols whose Request is bytes (RESP, HTTP/1.1; RequestBytes gives them):
  // everything queued goes out in one write, so the pipeline coalesces under load; returns
  // why it stopped.
  template <typename Socket>
  Awaitable<Status> WriteQueuedBytes(Socket& socket) {
    std::string out;
    while (!ending() && socket.lowest_layer().is_open()) {
      out.clear();
      uint64_t n = 0;
      while (auto* p = TakeQueued()) {
        out += RequestBytes(p->request);
        ++n;
      }
      if (out.empty()) {
        co_await WaitForWork();
        continue;
      }
      boost::system::error_code ec;
      co_await asio::async_write(socket, asio::buffer(out),
                                 asio::redirect_error(asio::use_awaitable, ec));
      if (ec)
        co_return Status(StatusCode::kUnavailable,
                         fmt::format("{}: write failed: {}", options_.endpoint, ec.message()));
      Sent(n);
    }
    co_return Status(StatusCode::kUnavailable,
                     fmt::format("{}: connection closed", options_.endpoint));
  }
  // The oldest request in flight, whose answer comes next; null when none is.
  PendingType* Front() { return in_flight_.empty() ? nullptr : in_flight_.front().get(); }
  // The peer answered the oldest request in flight: completes it (a no-op for one that
  // timed out; its late answer is dropped).
  void Answered(Result<Answer> answer) {
    auto p = std::move(in_flight_.front());
    in_flight_.pop_front();
    silent_timeouts_ = 0;
    p->Complete(std::move(answer));
  }

  asio::io_context& io_;
  const PipelineOptions options_;
  std::deque<std::shared_ptr<PendingType>> queued_;

 private:
  Awaitable<void> Run() {
    std::mt19937_64 rng(std::random_device{}());
    while (!stopped_) {
      Status s = co_await Connect();
      if (s.ok()) {
        Opened();
        connected_ = true;
        attempts_ = 0;
        backoff_.Reset();
        last_error_.clear();
        refused_ = false;
        s = co_await Serve();
        connected_ = false;
        ++reconnects_;
      }
      // Everything sent on the dropped connection failed; the rest waits for the next one.
      last_error_ = s.message();
      Drop(s);
      Closed();
      if (stopped_) break;
      ++attempts_;
      asio::steady_timer t(io_, backoff_.Next(rng));
      boost::system::error_code ec;
      co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    Drop(Status(StatusCode::kUnavailable, fmt::format("{}: client stopped", options_.endpoint)));
    Closed();
  }

  // Writer and reader side by side until either fails; returns why the session ended.
  Awaitable<Status> Serve() {
    Status reason;
    WaitGroup group(io_.get_executor());
    group.Add(2);
    auto self = this->shared_from_this();
    auto end = [&](Status s) {
      if (reason.ok()) reason = std::move(s);
      ending_ = true;
      Interrupt();
      wake_.cancel();
    };
    ending_ = false;
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

  void TimedOut(PendingType& p) {
    p.Complete(Error(StatusCode::kTimeout, fmt::format("{}: deadline passed waiting for the {}",
                                                       options_.request, options_.answer)));
    // Several in a row with no answer at all in between: the connection is presumed dead,
    // and dropped, so the next requests go to a fresh one.
    if (options_.dead_after_timeouts <= 0 || !connected_ ||
        ++silent_timeouts_ < options_.dead_after_timeouts) {
      return;
    }
    silent_timeouts_ = 0;
    last_error_ =
        fmt::format("{}: no {} to {} {}s in a row; connection presumed dead", options_.endpoint,
                    options_.answer, options_.dead_after_timeouts, options_.request);
    Interrupt();
    wake_.cancel();
  }

  void Drop(const Status& why) {
    const Status unavailable(StatusCode::kUnavailable,
                             why.code() == StatusCode::kUnavailable
                                 ? why.message()
                                 : fmt::format("{} (connection dropped)", why.ToString()));
    bool first = true;
    for (auto& p : in_flight_) {
      p->counts_for_breaker = p->on_done && std::exchange(first, false);
      p->Complete(Error(unavailable));
    }
    in_flight_.clear();
    if (refused_ || stopped_ || attempts_ >= 1) {
      for (auto& p : queued_) p->Complete(Error(unavailable));
      queued_.clear();
    }
  }

  asio::steady_timer wake_;
  std::deque<std::shared_ptr<PendingType>> in_flight_;
  std::string last_error_;
  bool connected_ = false, stopped_ = false, ending_ = false, refused_ = false;
  int attempts_ = 0;  // failed connects in a row
  ReconnectBackoff backoff_;
  int silent_timeouts_ = 0;              // requests timed out since the last answer
  std::atomic<uint64_t> reconnects_{0};  // bumped on the I/O thread, read from any
  std::atomic<uint64_t> sent_{0};        // requests written to the socket, read from any
};

// The client: one I/O thread, its connections, admission control and the breaker.
// Submit may be called from any thread; completions resume on the caller's executor. The
// client must outlive the calls it started.
template <typename Request, typename Answer>
class PipelineClient {
 public:
  using ConnectionType = Connection<Request, Answer>;
  using PendingType = Pending<Request, Answer>;

  // `unit` names what is admitted in messages ("commands", "queries").
  PipelineClient(std::string endpoint, std::string unit, std::size_t max_in_flight,
                 std::chrono::milliseconds pool_wait, std::chrono::milliseconds request_timeout)
      : request_timeout_(request_timeout),
        io_(1),
        work_(asio::make_work_guard(io_)),
        gate_(io_, max_in_flight, pool_wait, std::move(endpoint), std::move(unit)) {}
  ~PipelineClient() {
    if (!thread_.joinable()) return;
    asio::post(io_, [this] {
      for (auto& c : connections_) c->Stop();
    });
    work_.reset();
    thread_.join();
  }
  PipelineClient(const PipelineClient&) = delete;
  PipelineClient& operator=(const PipelineClient&) = delete;

  // Starts the client's thread on these connections (made on io()). Once, before Submit.
  void Start(std::vector<std::shared_ptr<ConnectionType>> connections) {
    connections_ = std::move(connections);
    for (auto& c : connections_) c->Start();
    thread_ = std::thread([this] { io_.run(); });
  }

  // Sends one request; its answer, or kTimeout, kUnavailable, kPoolExhausted.
  Awaitable<Result<Answer>> Submit(Request request, Deadline deadline) {
    if (request_timeout_.count() > 0)
      deadline = std::min(deadline, std::chrono::steady_clock::now() + request_timeout_);
    auto initiate = [this, request = std::move(request), deadline](auto handler) mutable {
      auto p = std::make_shared<Typed<decltype(handler)>>(std::move(request), deadline,
                                                          std::move(handler));
      asio::post(io_, [this, p]() mutable {
        gate_.Admit(
            p->deadline,
            [this, p] {
              p->on_done = [this](bool answered, bool failure) {
                gate_.Finished(answered, failure);
              };
              core::PickConnected(connections_, next_)->Enqueue(p);
            },
            [p](Status why) { p->Complete(Error(why)); });
      });
    };
    return asio::async_initiate<decltype(asio::use_awaitable), void(Result<Answer>)>(
        std::move(initiate), asio::use_awaitable);
  }

  asio::io_context& io() { return io_; }

  // A snapshot of the counters; callable from any thread.
  // Admission control and the breaker (in_flight, waits, breaker_trips, ...), plus these.
  struct Stats : Admission::Counters {
    uint64_t connections = 0;
    uint64_t reconnects = 0;
    uint64_t sent = 0;  // requests written to a socket whole (not counting a protocol's own)
  };
  Stats stats() const {
    Stats s;
    static_cast<Admission::Counters&>(s) = gate_.counters();
    s.connections = connections_.size();
    for (const auto& c : connections_) {
      s.reconnects += c->reconnects();
      s.sent += c->sent();
    }
    return s;
  }

 private:
  template <typename Handler>
  struct Typed final : PendingType {
    Typed(Request r, Deadline d, Handler h) : PendingType(std::move(r), d), handler(std::move(h)) {}
    void Deliver(Result<Answer> r) override {
      auto ex = asio::get_associated_executor(handler);
      asio::post(ex, [h = std::move(handler), r = std::move(r)]() mutable { h(std::move(r)); });
    }
    Handler handler;
  };

  const std::chrono::milliseconds request_timeout_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  Admission gate_;  // admission control and the breaker, on io_
  std::vector<std::shared_ptr<ConnectionType>> connections_;
  uint64_t next_ = 0;  // round-robin position, I/O thread only
  std::thread thread_;
};

}  // namespace agentstate::core
