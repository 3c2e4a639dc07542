// What the public API needs of Boost.Asio: the coroutine type its calls return. To call
// them, a program also needs an executor to run on (boost/asio/io_context.hpp) and a way to
// start a coroutine (boost/asio/co_spawn.hpp); examples/embed.cpp shows both.
//
// Under g++ 12, <boost/asio/awaitable.hpp> (Boost 1.74 = Asio 1.18) uses std::exchange
// without including <utility>; including it first here keeps every translation unit
// correct regardless of include order.
#pragma once

#include <utility>

#include <boost/asio/awaitable.hpp>

namespace agentstate {

namespace asio = boost::asio;

template <typename T>
using Awaitable = asio::awaitable<T>;

}  // namespace agentstate
