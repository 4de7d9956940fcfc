// See sd_notify.hpp; the wire format is that of systemd's sd_notify(3) and sd_watchdog_enabled(3).
#include "relay/service/sd_notify.hpp"

#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstdlib>
#include <cstring>
#include <ctime>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <fmt/format.h>

#include "relay/core/spawn.hpp"
#include "relay/core/restart.hpp"

namespace relay {

SdNotifier::SdNotifier() {
    const char* socket_name = std::getenv("NOTIFY_SOCKET");
    if (!socket_name || (socket_name[0] != '/' && socket_name[0] != '@')) return;
    address_ = socket_name;
    if (address_.size() >= sizeof(sockaddr_un::sun_path)) return;
    if (address_[0] == '@') address_[0] = '\0';
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

    // The watchdog is meant for this process only when WATCHDOG_PID is unset or names us.
    const char* usec = std::getenv("WATCHDOG_USEC");
    const char* pid = std::getenv("WATCHDOG_PID");
    if (usec && (!pid || std::strtoll(pid, nullptr, 10) == ::getpid())) {
        long long value = std::strtoll(usec, nullptr, 10);
        if (value > 0) watchdog_ = std::chrono::microseconds(value);
    }
}

SdNotifier::~SdNotifier() {
    if (fd_ >= 0) ::close(fd_);
}

bool SdNotifier::notify(std::string_view state) {
    if (fd_ < 0) return false;
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, address_.data(), address_.size());
    // An abstract address is exactly as long as its name: no terminating NUL counts.
    socklen_t length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address_.size() +
                                              (address_[0] == '\0' ? 0 : 1));
    ssize_t n = ::sendto(fd_, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&address), length);
    return n == static_cast<ssize_t>(state.size());
}

std::string SdNotifier::reloading_message() {
    timespec now{};
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    long long usec = static_cast<long long>(now.tv_sec) * 1000000 + now.tv_nsec / 1000;
    return fmt::format("RELOADING=1\nMONOTONIC_USEC={}", usec);
}

namespace {
namespace asio = boost::asio;
constexpr std::chrono::milliseconds kStatusPeriod{2000};
}  // namespace

struct NotifyHeartbeat::Impl {
    // The heartbeat is not worth stopping the relay for: a failure is logged and it starts again
    // a second later.
    static void spawn_run(const std::shared_ptr<Impl>& self) {
        std::weak_ptr<Impl> weak = self;
        core::spawn(self->timer.get_executor(), run(self), "sd_notify_heartbeat", "", [weak](std::exception_ptr) {
            auto self = weak.lock();
            if (!self) return;
            core::restart_later(self->timer.get_executor(), [weak] {
                if (auto self = weak.lock(); self && !self->stopped) spawn_run(self);
            });
        });
    }

    Impl(asio::any_io_executor io, SdNotifier& n, std::function<std::string()> s)
        : timer(io), notifier(n), summary(std::move(s)) {}
    asio::steady_timer timer;
    SdNotifier& notifier;
    std::function<std::string()> summary;
    std::string last_status;
    bool stopped = false;

    static asio::awaitable<void> run(std::shared_ptr<Impl> self) {
        auto period = kStatusPeriod;
        if (auto watchdog = self->notifier.watchdog_interval())
            period = std::min(period, std::chrono::duration_cast<std::chrono::milliseconds>(*watchdog / 2));
        period = std::max(period, std::chrono::milliseconds(1));
        while (!self->stopped) {
            if (self->notifier.watchdog_interval()) self->notifier.notify("WATCHDOG=1");
            std::string status = self->summary();
            if (status != self->last_status && self->notifier.notify("STATUS=" + status)) self->last_status = status;
            self->timer.expires_after(period);
            co_await self->timer.async_wait(asio::as_tuple(asio::use_awaitable));
        }
    }
};

NotifyHeartbeat::NotifyHeartbeat(asio::any_io_executor io, SdNotifier& notifier, std::function<std::string()> summary)
    : impl_(std::make_shared<Impl>(std::move(io), notifier, std::move(summary))) {}

NotifyHeartbeat::~NotifyHeartbeat() { stop(); }

void NotifyHeartbeat::start() {
    if (!impl_->notifier.enabled()) return;
    Impl::spawn_run(impl_);
}

void NotifyHeartbeat::stop() {
    impl_->stopped = true;
    impl_->timer.cancel();
}

}  // namespace relay
