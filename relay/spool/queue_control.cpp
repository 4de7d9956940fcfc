// Control requests of the queue tools and their watcher; see queue_control.hpp.
#include "relay/spool/queue_control.hpp"

#include <utility>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <fcntl.h>
#include <fstream>
#include <cstring>
#include <set>
#include <sys/inotify.h>
#include <system_error>
#include <unistd.h>

#include <fmt/format.h>

#include "relay/core/directory_watch.hpp"
#include "relay/core/durable_file.hpp"
#include "relay/core/log.hpp"

namespace relay {
namespace {
namespace fs = std::filesystem;
namespace asio = boost::asio;

constexpr std::string_view kSuffix = ".req";

std::string_view verb_name(ControlRequest::Verb verb) {
    switch (verb) {
    case ControlRequest::Verb::retry: return "retry";
    case ControlRequest::Verb::retry_all: return "retry";
    case ControlRequest::Verb::hold: return "hold";
    case ControlRequest::Verb::release: return "release";
    case ControlRequest::Verb::remove: return "delete";
    }
    return "?";
}

// Queue ids are 16 upper-case hex digits; anything else could name a path outside queue/.
bool plain_id(std::string_view id) {
    return !id.empty() && id.size() <= 32 &&
           std::all_of(id.begin(), id.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
}

}  // namespace

std::string format_request(const ControlRequest& r) {
    if (r.verb == ControlRequest::Verb::retry_all) return "retry --all\n";
    return fmt::format("{} {}\n", verb_name(r.verb), r.id);
}

std::optional<ControlRequest> parse_request(std::string_view line) {
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
    auto sp = line.find(' ');
    if (sp == std::string_view::npos) return std::nullopt;
    std::string_view verb = line.substr(0, sp), arg = line.substr(sp + 1);
    if (verb == "retry" && arg == "--all") return ControlRequest{ControlRequest::Verb::retry_all, {}};
    if (!plain_id(arg)) return std::nullopt;
    if (verb == "retry") return ControlRequest{ControlRequest::Verb::retry, std::string(arg)};
    if (verb == "hold") return ControlRequest{ControlRequest::Verb::hold, std::string(arg)};
    if (verb == "release") return ControlRequest{ControlRequest::Verb::release, std::string(arg)};
    if (verb == "delete") return ControlRequest{ControlRequest::Verb::remove, std::string(arg)};
    return std::nullopt;
}

void submit_request(const fs::path& control_dir, const ControlRequest& request) {
    static std::atomic<unsigned> sequence{0};
    auto now = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::system_clock::now().time_since_epoch()).count();
    std::string name = fmt::format("{:020}-{}-{}", now, ::getpid(), sequence++);
    fs::path temp = control_dir / ("." + name + ".tmp");
    fs::path target = control_dir / (name + std::string(kSuffix));
    std::string text = format_request(request);
    int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "create " + temp.string());
    ssize_t n = ::write(fd, text.data(), text.size());
    ::close(fd);
    if (n != static_cast<ssize_t>(text.size()) || ::rename(temp.c_str(), target.c_str()) != 0) {
        int err = errno ? errno : EIO;
        ::unlink(temp.c_str());
        throw std::system_error(err, std::generic_category(), "write " + target.string());
    }
}

std::vector<ControlRequest> take_requests(const fs::path& control_dir) {
    std::vector<fs::path> files;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(control_dir, ec)) {
        const std::string name = entry.path().filename().string();
        if (name.ends_with(kSuffix) && !name.starts_with('.')) files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    std::vector<ControlRequest> requests;
    for (const auto& file : files) {
        std::string line = read_small_file(file, 4096).value_or("");
        line = line.substr(0, line.find('\n'));
        fs::remove(file, ec);
        if (auto request = parse_request(line)) requests.push_back(std::move(*request));
        else log::warning("control_request_ignored", {{"file", file.filename().string()}});
    }
    return requests;
}

// ---------------------------------------------------------------------------------------------

struct ControlWatcher::Impl {
    fs::path control_dir;
    RequestHandler on_requests;
    // Every event is about control_dir (the only watch); which file does not matter: take_requests
    // reads whatever is there, oldest first.
    core::DirectoryWatch watch;

    Impl(asio::any_io_executor io, fs::path c, RequestHandler r)
        : control_dir(c), on_requests(std::move(r)),
          watch(std::move(io), std::move(c), IN_MOVED_TO | IN_CLOSE_WRITE, "queue_control_watch",
                [this](const std::set<std::string>&, bool) { deliver_requests(); }) {}

    void deliver_requests() {
        auto requests = take_requests(control_dir);
        if (!requests.empty()) on_requests(std::move(requests));
    }
};

ControlWatcher::ControlWatcher(asio::any_io_executor io, fs::path control_dir, RequestHandler on_requests)
    : impl_(std::make_shared<Impl>(std::move(io), std::move(control_dir), std::move(on_requests))) {}

ControlWatcher::~ControlWatcher() { stop(); }

// The watch first, then the requests left while the relay was stopped: one written in between is
// seen either way.
void ControlWatcher::start() {
    impl_->watch.start();
    impl_->deliver_requests();
}

void ControlWatcher::stop() { impl_->watch.stop(); }

}  // namespace relay
