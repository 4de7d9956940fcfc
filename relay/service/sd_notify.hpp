// The systemd notify protocol (sd_notify(3)), spoken directly: one datagram of "KEY=value\n" lines to
// the unix socket named by $NOTIFY_SOCKET ('@' at the start means the abstract namespace). Used for
// READY=1 once the listeners are bound, STATUS=..., RELOADING=1/READY=1 around SIGHUP, STOPPING=1
// and WATCHDOG=1 keep-alives. Without NOTIFY_SOCKET (not run by systemd, Type=exec) every call is a
// no-op, so the relay runs the same in a terminal, a container or under systemd.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>

namespace relay {

class SdNotifier {
public:
    // Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID from the environment.
    SdNotifier();
    ~SdNotifier();
    SdNotifier(const SdNotifier&) = delete;
    SdNotifier& operator=(const SdNotifier&) = delete;

    bool enabled() const { return fd_ >= 0; }
    // Sends `state` (one or more "KEY=value" lines) as one datagram; false when it could not be sent.
    // A non-blocking sendto on a datagram socket: safe on the I/O thread.
    bool notify(std::string_view state);

    // WatchdogSec= set for this process: ping at half this interval (sd_watchdog_enabled(3)).
    std::optional<std::chrono::microseconds> watchdog_interval() const { return watchdog_; }

    // "RELOADING=1\nMONOTONIC_USEC=<CLOCK_MONOTONIC now>" (systemd 253's Type=notify-reload wants
    // the timestamp; 252 ignores it).
    static std::string reloading_message();

private:
    int fd_ = -1;
    std::string address_;           // sun_path bytes; a leading NUL for the abstract namespace
    std::optional<std::chrono::microseconds> watchdog_;
};

// On the I/O thread: WATCHDOG=1 at half the watchdog interval (so a stalled event loop is what
// systemd notices) and STATUS=<summary()> whenever it changes, checked every few seconds.
class NotifyHeartbeat {
public:
    NotifyHeartbeat(boost::asio::any_io_executor io, SdNotifier& notifier, std::function<std::string()> summary);
    ~NotifyHeartbeat();
    void start();
    void stop();

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

}  // namespace relay
