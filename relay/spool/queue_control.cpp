// Control requests of the queue tools and their inotify watcher; see queue_control.hpp.
#include "relay/spool/queue_control.hpp"

#include <utility>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <fcntl.h>
#include <fstream>
#include <cstring>
#include <sys/inotify.h>
#include <system_error>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

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
    int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
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
        std::ifstream in(file);
        std::string line;
        std::getline(in, line);
        fs::remove(file, ec);
        if (auto request = parse_request(line)) requests.push_back(std::move(*request));
        else log::warning("control_request_ignored", {{"file", file.filename().string()}});
    }
    return requests;
}

// ---------------------------------------------------------------------------------------------

struct ControlWatcher::Impl : std::enable_shared_from_this<Impl> {
    asio::posix::stream_descriptor stream;
    fs::path control_dir, tokens_dir;
    RequestHandler on_requests;
    TokensHandler on_tokens;
    int control_wd = -1, tokens_wd = -1;
    bool stopped = false;

    Impl(asio::any_io_executor io, fs::path c, fs::path t, RequestHandler r, TokensHandler k)
        : stream(io), control_dir(std::move(c)), tokens_dir(std::move(t)), on_requests(std::move(r)),
          on_tokens(std::move(k)) {}

    void deliver_requests() {
        auto requests = take_requests(control_dir);
        if (!requests.empty()) on_requests(std::move(requests));
    }

    // Which watched directories the events in `buffer` concern. A plain function: an inotify_event
    // (a flexible array member) cannot live in a coroutine frame, and it is copied out with memcpy
    // because the buffer in that frame is not aligned for it.
    static std::pair<bool, bool> scan_events(const char* buffer, std::size_t n, int control_wd, int tokens_wd) {
        bool control = false, tokens = false;
        for (std::size_t at = 0; at + sizeof(inotify_event) <= n;) {
            inotify_event event;
            std::memcpy(&event, buffer + at, sizeof event);
            if (event.wd == control_wd) control = true;
            if (event.wd == tokens_wd) tokens = true;
            if (event.mask & IN_Q_OVERFLOW) control = tokens = true;
            at += sizeof(inotify_event) + event.len;
        }
        return {control, tokens};
    }

    static asio::awaitable<void> watch(std::shared_ptr<Impl> self) {
        char buffer[8192];
        while (!self->stopped) {
            auto [ec, n] = co_await self->stream.async_read_some(asio::buffer(buffer), asio::as_tuple(asio::use_awaitable));
            if (ec) break;
            auto [control, tokens] = scan_events(buffer, n, self->control_wd, self->tokens_wd);
            if (control) self->deliver_requests();
            if (tokens) self->on_tokens();
        }
    }
};

ControlWatcher::ControlWatcher(asio::any_io_executor io, fs::path control_dir, fs::path tokens_dir,
                               RequestHandler on_requests, TokensHandler on_tokens)
    : impl_(std::make_shared<Impl>(std::move(io), std::move(control_dir), std::move(tokens_dir),
                                   std::move(on_requests), std::move(on_tokens))) {}

ControlWatcher::~ControlWatcher() { stop(); }

void ControlWatcher::start() {
    int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "inotify_init1");
    impl_->stream.assign(fd);
    impl_->control_wd = ::inotify_add_watch(fd, impl_->control_dir.c_str(), IN_MOVED_TO | IN_CLOSE_WRITE);
    if (impl_->control_wd < 0) throw std::system_error(errno, std::generic_category(), "watch " + impl_->control_dir.string());
    // The token store renames a new file into place (token import, or our own refresh).
    impl_->tokens_wd = ::inotify_add_watch(fd, impl_->tokens_dir.c_str(), IN_MOVED_TO | IN_CLOSE_WRITE | IN_ATTRIB);
    if (impl_->tokens_wd < 0)
        log::warning("token_watch_unavailable", {{"dir", impl_->tokens_dir.string()}, {"error", std::strerror(errno)}});
    impl_->deliver_requests();
    asio::co_spawn(impl_->stream.get_executor(), Impl::watch(impl_), asio::detached);
}

void ControlWatcher::stop() {
    impl_->stopped = true;
    boost::system::error_code ignored;
    impl_->stream.close(ignored);
}

}  // namespace relay
