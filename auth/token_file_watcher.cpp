// One inotify watch on the token directory; see token_file_watcher.hpp.
#include "auth/token_file_watcher.hpp"

#include <system_error>

#include <sys/inotify.h>

#include "relay/core/directory_watch.hpp"
#include "relay/core/log.hpp"

namespace relay::auth {

namespace fs = std::filesystem;

namespace {

// New contents (a rename into place by the store's durable write, or a plain write by hand), a
// deleted or moved-away file, and attribute changes: an admin's chown/chmod can make an unreadable
// file usable again (or the reverse), which the accounts must notice as much as new contents.
constexpr std::uint32_t kEvents = IN_MOVED_TO | IN_CLOSE_WRITE | IN_ATTRIB | IN_DELETE | IN_MOVED_FROM;

}  // namespace

struct TokenFileWatcher::Impl {
    core::DirectoryWatch watch;

    Impl(boost::asio::any_io_executor io, fs::path dir, Handler on_change)
        : watch(std::move(io), std::move(dir), kEvents, "token_file_watch",
                [on_change = std::move(on_change)](const std::set<std::string>& names, bool overflow) {
                    std::set<std::string> accounts;
                    for (const auto& name : names)
                        if (auto account = TokenFileWatcher::account_of(name); !account.empty()) accounts.insert(account);
                    if (!accounts.empty() || overflow) on_change(accounts, overflow);
                }) {}
};

TokenFileWatcher::TokenFileWatcher(boost::asio::any_io_executor io, fs::path tokens_dir, Handler on_change)
    : impl_(std::make_shared<Impl>(std::move(io), std::move(tokens_dir), std::move(on_change))) {}

TokenFileWatcher::~TokenFileWatcher() { stop(); }

std::string TokenFileWatcher::account_of(const std::string& file_name) {
    constexpr std::string_view suffix = ".json";
    if (file_name.size() <= suffix.size() || file_name.front() == '.') return {};
    if (file_name.compare(file_name.size() - suffix.size(), suffix.size(), suffix) != 0) return {};
    return file_name.substr(0, file_name.size() - suffix.size());
}

void TokenFileWatcher::start() {
    try {
        impl_->watch.start();
    } catch (const std::system_error& e) {
        log::warning("token_watch_unavailable", {{"dir", impl_->watch.dir().string()}, {"error", e.what()}});
    }
}

void TokenFileWatcher::stop() { impl_->watch.stop(); }

}  // namespace relay::auth
