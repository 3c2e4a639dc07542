// Waits for a group of coroutines spawned on one single-threaded executor (the harness
// runs each io_context on one thread; the clients and the tiered store's flusher each on
// their own). Not thread-safe: Add, Done and Wait run on that executor.
#pragma once

#include <cstddef>

#include "core/asio.hpp"

namespace agentstate::core {

class WaitGroup {
 public:
  explicit WaitGroup(asio::any_io_executor ex)
      : timer_(ex, asio::steady_timer::time_point::max()) {}
  void Add(std::size_t n) { pending_ += n; }
  void Done() {
    if (--pending_ == 0) timer_.cancel();
  }
  // Returns once every Add()ed member has called Done().
  Awaitable<void> Wait() {
    while (pending_ > 0) {
      boost::system::error_code ec;
      co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }

 private:
  asio::steady_timer timer_;
  std::size_t pending_ = 0;
};

}  // namespace agentstate::core
