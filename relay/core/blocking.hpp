// Runs a blocking function (fsync, libcurl, file writes) on the blocking thread pool and resumes the
// awaiting coroutine on its own executor with the result or the exception, so the I/O thread never
// stalls. A plain post there and a dispatch back: no coroutine frame on the pool (a lambda coroutine
// built inside co_await trips a GCC 12 double free).
#pragma once

#include <utility>  // GCC 12 + Boost 1.81: must precede asio/awaitable.hpp

#include <exception>
#include <optional>
#include <type_traits>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace relay {

template <class F>
boost::asio::awaitable<std::invoke_result_t<F&>> run_blocking(boost::asio::thread_pool& pool, F function) {
    namespace asio = boost::asio;
    using R = std::invoke_result_t<F&>;
    auto initiation = [&pool](auto handler, F work) {
        auto back = asio::make_work_guard(asio::get_associated_executor(handler));
        asio::post(pool, [handler = std::move(handler), work = std::move(work), back = std::move(back)]() mutable {
            std::exception_ptr error;
            if constexpr (std::is_void_v<R>) {
                try {
                    work();
                } catch (...) {
                    error = std::current_exception();
                }
                asio::dispatch(back.get_executor(), [handler = std::move(handler), error]() mutable {
                    std::move(handler)(error);
                });
            } else {
                std::optional<R> result;
                try {
                    result.emplace(work());
                } catch (...) {
                    error = std::current_exception();
                }
                asio::dispatch(back.get_executor(), [handler = std::move(handler), error,
                                                     result = std::move(result)]() mutable {
                    std::move(handler)(error, result ? std::move(*result) : R{});
                });
            }
        });
    };
    if constexpr (std::is_void_v<R>) {
        co_return co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(std::exception_ptr)>(
            initiation, asio::use_awaitable, std::move(function));
    } else {
        co_return co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(std::exception_ptr, R)>(
            initiation, asio::use_awaitable, std::move(function));
    }
}

}  // namespace relay
