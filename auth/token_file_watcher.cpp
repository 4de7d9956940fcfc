// One inotify watch on the token directory; see token_file_watcher.hpp.
#include "auth/token_file_watcher.hpp"

#include <cerrno>
#include <cstring>

#include <sys/inotify.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "relay/core/log.hpp"
#include "relay/core/restart.hpp"
#include "relay/core/spawn.hpp"

namespace relay::auth {

namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {

// New contents (a rename into place by the store's durable write, or a plain write by hand), a
// deleted or moved-away file, and attribute changes: an admin's chown/chmod can make an unreadable
// file usable again (or the reverse), which the accounts must notice as much as new contents.
constexpr std::uint32_t kEvents = IN_MOVED_TO | IN_CLOSE_WRITE | IN_ATTRIB | IN_DELETE | IN_MOVED_FROM;

// The accounts named by the events in `buffer`. A plain function: an inotify_event (a flexible
// array member) cannot live in a coroutine frame, and it is copied out with memcpy because the
// buffer in that frame is not aligned for it.
void scan_events(const char* buffer, std::size_t n, std::set<std::string>& accounts, bool& all) {
    for (std::size_t at = 0; at + sizeof(inotify_event) <= n;) {
        inotify_event event;
        std::memcpy(&event, buffer + at, sizeof event);
        if (event.mask & IN_Q_OVERFLOW) all = true;
        if (event.len > 0 && at + sizeof(inotify_event) + event.len <= n) {
            std::string name(buffer + at + sizeof(inotify_event), ::strnlen(buffer + at + sizeof(inotify_event), event.len));
            if (auto account = TokenFileWatcher::account_of(name); !account.empty()) accounts.insert(account);
        }
        at += sizeof(inotify_event) + event.len;
    }
}

}  // namespace

struct TokenFileWatcher::Impl : std::enable_shared_from_this<Impl> {
    asio::posix::stream_descriptor stream;
    fs::path dir;
    Handler on_change;
    bool stopped = false;

    Impl(asio::any_io_executor io, fs::path d, Handler h) : stream(io), dir(std::move(d)), on_change(std::move(h)) {}

    // The watch is one component: should it ever fail, it is logged and started again a second later.
    static void spawn_watch(const std::shared_ptr<Impl>& self) {
        std::weak_ptr<Impl> weak = self;
        core::spawn(self->stream.get_executor(), watch(self), "token_file_watch", self->dir.string(),
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
            if (ec) break;
            std::set<std::string> accounts;
            bool all = false;
            scan_events(buffer, n, accounts, all);
            if (!accounts.empty() || all) self->on_change(accounts, all);
        }
    }
};

TokenFileWatcher::TokenFileWatcher(asio::any_io_executor io, fs::path tokens_dir, Handler on_change)
    : impl_(std::make_shared<Impl>(std::move(io), std::move(tokens_dir), std::move(on_change))) {}

TokenFileWatcher::~TokenFileWatcher() { stop(); }

std::string TokenFileWatcher::account_of(const std::string& file_name) {
    constexpr std::string_view suffix = ".json";
    if (file_name.size() <= suffix.size() || file_name.front() == '.') return {};
    if (file_name.compare(file_name.size() - suffix.size(), suffix.size(), suffix) != 0) return {};
    return file_name.substr(0, file_name.size() - suffix.size());
}

void TokenFileWatcher::start() {
    int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0 || ::inotify_add_watch(fd, impl_->dir.c_str(), kEvents) < 0) {
        log::warning("token_watch_unavailable", {{"dir", impl_->dir.string()}, {"error", std::strerror(errno)}});
        if (fd >= 0) ::close(fd);
        return;
    }
    impl_->stream.assign(fd);
    Impl::spawn_watch(impl_);
}

void TokenFileWatcher::stop() {
    impl_->stopped = true;
    boost::system::error_code ignored;
    impl_->stream.close(ignored);
}

}  // namespace relay::auth
