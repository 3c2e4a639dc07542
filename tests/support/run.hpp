// Runs a coroutine to completion on a fresh io_context: the GoogleTest side of Asio.
#pragma once

#include <thread>
#include <vector>

#include "core/asio.hpp"

namespace agentstate::testing {

// RunSync([&]() -> Awaitable<T> { ... }) returns the coroutine's result; `threads` > 1 runs
// the io_context on that many threads.
template <typename F>
auto RunSync(F&& make, int threads = 1) {
  asio::io_context io(threads);
  auto fut = asio::co_spawn(io, make(), asio::use_future);
  std::vector<std::thread> extra;
  for (int i = 1; i < threads; ++i) extra.emplace_back([&] { io.run(); });
  io.run();
  for (auto& t : extra) t.join();
  return fut.get();
}

}  // namespace agentstate::testing
