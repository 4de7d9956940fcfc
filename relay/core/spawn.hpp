// Starting a coroutine that may never vanish without a trace. Every detached coroutine of the relay
// starts here: when it ends with an exception, the exception is logged with the task's name and the
// context fields given at the spawn, and `on_failure` decides what happens next (restart the
// component, or stop the process cleanly). Cancellation (operation_aborted at shutdown) is an
// ordinary end, not a failure, and is logged at debug level only.
#pragma once

#include <utility>  // GCC 12 + Boost 1.81: must precede asio/awaitable.hpp

#include <exception>
#include <functional>
#include <string>
#include <system_error>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/system/system_error.hpp>

#include "relay/core/log.hpp"

namespace relay::core {

// What a failed task asks of its owner; called on the task's executor after the error line.
using OnFailure = std::function<void(std::exception_ptr)>;

// True for the exceptions that mean "cancelled", which end a task without an error line.
inline bool is_cancellation(std::exception_ptr error) {
    try {
        std::rethrow_exception(error);
    } catch (const boost::system::system_error& e) {
        return e.code() == boost::asio::error::operation_aborted;
    } catch (...) {
        return false;
    }
}

inline std::string describe(std::exception_ptr error) {
    try {
        std::rethrow_exception(error);
    } catch (const std::exception& e) {
        return e.what();
    } catch (...) {
        return "unknown exception";
    }
}

// co_spawn with a completion handler that reports. `task` names the coroutine in the log
// (e.g. "delivery_worker"); `context` adds who it belonged to (e.g. the account).
template <class Executor, class T>
void spawn(Executor executor, boost::asio::awaitable<T> coroutine, std::string task, std::string context = {},
           OnFailure on_failure = {}) {
    boost::asio::co_spawn(std::move(executor), std::move(coroutine),
                          [task = std::move(task), context = std::move(context),
                           on_failure = std::move(on_failure)](std::exception_ptr error, auto&&...) {
                              if (!error) return;
                              if (is_cancellation(error)) {
                                  log::debug("task_cancelled", {{"task", task}, {"context", context}});
                                  return;
                              }
                              log::error("task_failed",
                                         {{"task", task}, {"context", context}, {"error", describe(error)}});
                              if (on_failure) on_failure(error);
                          });
}

}  // namespace relay::core
