// See directory_watch.hpp.
#include "relay/core/directory_watch.hpp"

#include <cerrno>
#include <cstring>
#include <system_error>

#include <sys/inotify.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "relay/core/restart.hpp"
#include "relay/core/spawn.hpp"

namespace relay::core {

namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {

// A plain function: an inotify_event (a flexible array member) cannot live in a coroutine frame,
// and it is copied out with memcpy because the buffer in that frame is not aligned for it.
void scan_events(const char* buffer, std::size_t n, std::set<std::string>& names, bool& overflow) {
    for (std::size_t at = 0; at + sizeof(inotify_event) <= n;) {
        inotify_event event;
        std::memcpy(&event, buffer + at, sizeof event);
        if (event.mask & IN_Q_OVERFLOW) overflow = true;
        if (event.len > 0 && at + sizeof(inotify_event) + event.len <= n)
            names.emplace(buffer + at + sizeof(inotify_event), ::strnlen(buffer + at + sizeof(inotify_event), event.len));
        at += sizeof(inotify_event) + event.len;
    }
}

}  // namespace

struct DirectoryWatch::Impl : std::enable_shared_from_this<Impl> {
    asio::posix::stream_descriptor stream;
    fs::path dir;
    std::uint32_t mask;
    std::string what;
    Handler on_events;
    bool stopped = false;

    Impl(asio::any_io_executor io, fs::path d, std::uint32_t m, std::string w, Handler h)
        : stream(io), dir(std::move(d)), mask(m), what(std::move(w)), on_events(std::move(h)) {}

    // A watch whose handler threw is logged (core::spawn) and started again a second later: the
    // relay must keep noticing token files and queue requests.
    static void spawn_watch(const std::shared_ptr<Impl>& self) {
        std::weak_ptr<Impl> weak = self;
        core::spawn(self->stream.get_executor(), watch(self), self->what, self->dir.string(),
                    [weak](std::exception_ptr) {
                        auto self = weak.lock();
                        if (!self) return;
                        core::restart_later(self->stream.get_executor(), [weak] {
                            if (auto self = weak.lock(); self && !self->stopped) spawn_watch(self);
                        });
                    });
    }

    static asio::awaitable<void> watch(std::shared_ptr<Impl> self) {
        char buffer[8192];
        while (!self->stopped) {
            auto [ec, n] = co_await self->stream.async_read_some(asio::buffer(buffer), asio::as_tuple(asio::use_awaitable));
            // Stopped while a read had completed: the owner (and what the handler refers to) may be gone.
            if (ec || self->stopped) break;
            std::set<std::string> names;
            bool overflow = false;
            scan_events(buffer, n, names, overflow);
            if (!names.empty() || overflow) self->on_events(names, overflow);
        }
    }
};

DirectoryWatch::DirectoryWatch(asio::any_io_executor io, fs::path dir, std::uint32_t mask, std::string what,
                               Handler on_events)
    : impl_(std::make_shared<Impl>(std::move(io), std::move(dir), mask, std::move(what), std::move(on_events))) {}

DirectoryWatch::~DirectoryWatch() { stop(); }

const fs::path& DirectoryWatch::dir() const { return impl_->dir; }

void DirectoryWatch::start() {
    int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "inotify_init1");
    if (::inotify_add_watch(fd, impl_->dir.c_str(), impl_->mask) < 0) {
        int err = errno;
        ::close(fd);
        throw std::system_error(err, std::generic_category(), "watch " + impl_->dir.string());
    }
    impl_->stream.assign(fd);
    Impl::spawn_watch(impl_);
}

void DirectoryWatch::stop() {
    impl_->stopped = true;
    boost::system::error_code ignored;
    impl_->stream.close(ignored);
}

}  // namespace relay::core
