// Notices token files changed from outside the token manager's own calls: `token import`,
// `authorize` run while the relay serves, an admin's chown/chmod (fixing the permissions the store
// refuses), a deleted file, and the relay's own refresh writes. One inotify watch on
// state_dir/tokens/, the only place in the relay that watches token files (it replaced a one-second
// stat loop in delivery and a second inotify watch in the queue-control watcher). Runs on the I/O
// thread; the handler gets the names of the accounts whose file changed.
#pragma once

#include <utility>  // GCC 12 + Boost 1.81: must precede asio/awaitable.hpp

#include <filesystem>
#include <functional>
#include <memory>
#include <set>
#include <string>

#include <boost/asio/any_io_executor.hpp>

namespace relay::auth {

class TokenFileWatcher {
public:
    // `all` is true when the kernel's event queue overflowed: every account may have changed.
    using Handler = std::function<void(const std::set<std::string>& accounts, bool all)>;

    TokenFileWatcher(boost::asio::any_io_executor io, std::filesystem::path tokens_dir, Handler on_change);
    ~TokenFileWatcher();

    // Starts watching (the directory must exist). When inotify is unavailable the relay still runs:
    // a warning is logged, and token files are picked up at the next use instead.
    void start();
    void stop();

    // The account a file in tokens/ belongs to ("office.json" -> "office"); empty for other files
    // (the store's temporary files while it writes).
    static std::string account_of(const std::string& file_name);

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

}  // namespace relay::auth
