// The one way agentstate includes Boost.Asio.
//
// Under g++ 12, <boost/asio/awaitable.hpp> (Boost 1.74 = Asio 1.18) uses std::exchange
// without including <utility>; including it first here keeps every translation unit
// correct regardless of include order.
#pragma once

#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

namespace agentstate {

namespace asio = boost::asio;

template <typename T>
using Awaitable = asio::awaitable<T>;

}  // namespace agentstate
