// How the queue tools talk to a running relay without a socket: each command drops a one-line
// request file ("retry ID", "retry --all", "hold ID", "release ID", "delete ID") into
// spool_dir/control/ (temp name, then rename, so a reader never sees half a request). The relay
// watches that directory with inotify and handles requests as they appear, and at startup handles
// any left while it was stopped. Token files are watched elsewhere (auth::TokenFileWatcher); both
// watches are a core::DirectoryWatch.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

namespace relay {

struct ControlRequest {
    enum class Verb { retry, retry_all, hold, release, remove };
    Verb verb = Verb::retry;
    std::string id;   // empty for retry_all

    bool operator==(const ControlRequest&) const = default;
};

std::string format_request(const ControlRequest& request);
std::optional<ControlRequest> parse_request(std::string_view line);

// Writes one request file into `control_dir`. Throws std::system_error.
void submit_request(const std::filesystem::path& control_dir, const ControlRequest& request);
// Reads and removes every request file, oldest first; unreadable ones are dropped.
std::vector<ControlRequest> take_requests(const std::filesystem::path& control_dir);

class ControlWatcher {
public:
    using RequestHandler = std::function<void(std::vector<ControlRequest>)>;

    ControlWatcher(boost::asio::any_io_executor io, std::filesystem::path control_dir, RequestHandler on_requests);
    ~ControlWatcher();

    // Handles requests already waiting, then watches. Throws std::system_error when inotify fails.
    void start();
    void stop();

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

}  // namespace relay
