// Runs a blocking function (fsync, libcurl, file writes) on the blocking thread pool and resumes the
// awaiting coroutine on its own executor, so the I/O thread never stalls.
#pragma once

#include <utility>  // GCC 12 + Boost 1.81: must precede asio/awaitable.hpp

#include <type_traits>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace relay {

template <class F>
auto run_blocking(boost::asio::thread_pool& pool, F function)
    -> boost::asio::awaitable<std::invoke_result_t<F&>> {
    using Result = std::invoke_result_t<F&>;
    co_return co_await boost::asio::co_spawn(
        pool.get_executor(),
        [fn = std::move(function)]() mutable -> boost::asio::awaitable<Result> { co_return fn(); },
        boost::asio::use_awaitable);
}

}  // namespace relay
