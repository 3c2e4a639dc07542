// The one way agentstate's own code includes Boost.Asio: the public API's part
// (agentstate/asio.hpp, which includes <utility> first for g++ 12), and what the
// implementation uses beyond it.
#pragma once

// First: <utility>, then awaitable.hpp.
#include "agentstate/asio.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
