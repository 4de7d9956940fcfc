// Starting a failed component again, later. core::spawn logs a task's exception and calls its
// on_failure; a component that should keep running (a watcher, a timer loop, an accept loop)
// restarts from there through restart_later, so a failure that repeats on every start costs one
// log line a second instead of a hot loop.
#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include <boost/asio/steady_timer.hpp>

namespace relay::core {

inline constexpr std::chrono::seconds kRestartDelay{1};

template <class Executor>
void restart_later(Executor executor, std::function<void()> restart) {
    auto timer = std::make_shared<boost::asio::steady_timer>(executor, kRestartDelay);
    timer->async_wait([timer, restart = std::move(restart)](const boost::system::error_code& ec) {
        if (!ec) restart();
    });
}

}  // namespace relay::core
