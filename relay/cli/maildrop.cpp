// See maildrop.hpp.
#include "relay/cli/maildrop.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>

#include <fmt/format.h>

#include "relay/cli/sendmail_message.hpp"
#include "relay/cli/sendmail_submit.hpp"
#include "relay/core/log.hpp"

namespace relay::maildrop {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kMagic = "smtp-oauth2-relay maildrop 1\n";

std::string percent_encode(std::string_view s) {
    std::string out;
    for (unsigned char c : s) {
        if (c == '%' || c < 0x20 || c == 0x7f) out += fmt::format("%{:02X}", c);
        else out += static_cast<char>(c);
    }
    return out;
}

std::optional<std::string> percent_decode(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') {
            out += s[i];
            continue;
        }
        if (i + 2 >= s.size()) return std::nullopt;
        unsigned value = 0;
        for (char c : s.substr(i + 1, 2)) {
            value <<= 4;
            if (c >= '0' && c <= '9') value |= static_cast<unsigned>(c - '0');
            else if (c >= 'A' && c <= 'F') value |= static_cast<unsigned>(c - 'A' + 10);
            else return std::nullopt;
        }
        out += static_cast<char>(value);
        i += 2;
    }
    return out;
}

std::string random_name() {
    unsigned char bytes[16];
    std::size_t got = 0;
    while (got < sizeof bytes) {
        ssize_t n = ::getrandom(bytes + got, sizeof bytes - got, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw std::system_error(errno, std::generic_category(), "getrandom");
        got += static_cast<std::size_t>(n);
    }
    std::string out;
    for (unsigned char b : bytes) out += fmt::format("{:02x}", b);
    return out;
}

std::string user_name(uid_t uid) {
    if (const passwd* pw = ::getpwuid(uid)) return pw->pw_name;
    return std::to_string(uid);
}

}  // namespace

std::string encode(const std::vector<std::string>& args, std::string_view message) {
    std::string out(kMagic);
    for (const auto& a : args) out += "arg " + percent_encode(a) + "\n";
    out += "\n";
    out += message;
    return out;
}

std::optional<std::pair<std::vector<std::string>, std::string>> decode(std::string_view content) {
    if (!content.starts_with(kMagic)) return std::nullopt;
    content.remove_prefix(kMagic.size());
    std::vector<std::string> args;
    for (;;) {
        auto nl = content.find('\n');
        if (nl == std::string_view::npos) return std::nullopt;
        std::string_view line = content.substr(0, nl);
        content.remove_prefix(nl + 1);
        if (line.empty()) break;
        if (!line.starts_with("arg ")) return std::nullopt;
        auto arg = percent_decode(line.substr(4));
        if (!arg) return std::nullopt;
        args.push_back(std::move(*arg));
    }
    return std::pair{std::move(args), std::string(content)};
}

fs::path directory(const fs::path& spool_dir) { return spool_dir / "maildrop"; }

fs::path default_spool_dir() {
    const char* env = std::getenv("SMTP_OAUTH2_RELAY_SPOOL");
    return env && *env ? fs::path(env) : fs::path("/var/spool/smtp-oauth2-relay");
}

std::string drop(const fs::path& dir, std::string_view content) {
    std::string name;
    try {
        name = random_name();
    } catch (const std::exception& e) {
        return e.what();
    }
    const fs::path temp = dir / ("." + name + ".tmp"), target = dir / name;
    int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
    if (fd < 0) return fmt::format("{}: {}", dir.string(), std::strerror(errno));
    std::string_view rest = content;
    bool ok = true;
    while (ok && !rest.empty()) {
        ssize_t n = ::write(fd, rest.data(), rest.size());
        if (n < 0 && errno == EINTR) continue;
        ok = n > 0;
        if (ok) rest.remove_prefix(static_cast<std::size_t>(n));
    }
    // Readable by the relay (another user); the 1733 directory keeps other users from finding it.
    ok = ok && ::fchmod(fd, 0644) == 0 && ::fsync(fd) == 0;
    int err = errno;
    ::close(fd);
    if (!ok || ::rename(temp.c_str(), target.c_str()) != 0) {
        if (ok) err = errno;
        ::unlink(temp.c_str());
        return fmt::format("{}: {}", temp.string(), std::strerror(err));
    }
    return {};
}

// ---------------------------------------------------------------------------------------------

Pickup::Pickup(std::shared_ptr<const conf::Config> config) : config_(std::move(config)) {
    dir_ = directory(config_->relay.spool_dir);
}

Pickup::~Pickup() { stop(); }

std::shared_ptr<const conf::Config> Pickup::config() const {
    std::lock_guard lock(mutex_);
    return config_;
}

void Pickup::update_config(std::shared_ptr<const conf::Config> config) {
    std::lock_guard lock(mutex_);
    config_ = std::move(config);
}

void Pickup::start() {
    std::error_code ec;
    fs::create_directories(dir_, ec);
    if (ec) throw std::system_error(ec, "create " + dir_.string());
    // World-writable, not listable, sticky: see maildrop.hpp. Set explicitly (umask would drop it).
    if (::chmod(dir_.c_str(), 01733) != 0) throw std::system_error(errno, std::generic_category(), "chmod " + dir_.string());
    // Users reach the maildrop through spool_dir: it needs search (x) for them, never read (r), so
    // the queue's names stay hidden; 0711 as the package's tmpfiles.d entry makes it.
    struct stat spool{};
    const fs::path spool_dir = dir_.parent_path();
    if (::stat(spool_dir.c_str(), &spool) == 0 && spool.st_uid == ::geteuid() && (spool.st_mode & 011) != 011)
        ::chmod(spool_dir.c_str(), (spool.st_mode & 07777) | 011);
    inotify_fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (inotify_fd_ >= 0) ::inotify_add_watch(inotify_fd_, dir_.c_str(), IN_MOVED_TO | IN_CLOSE_WRITE);
    wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
    thread_ = std::thread([this] { run(); });
}

void Pickup::request_stop() {
    stopping_ = true;
    if (wake_fd_ >= 0) {
        std::uint64_t one = 1;
        [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
    }
}

void Pickup::stop() {
    request_stop();
    if (thread_.joinable()) thread_.join();
    if (inotify_fd_ >= 0) ::close(inotify_fd_);
    if (wake_fd_ >= 0) ::close(wake_fd_);
    inotify_fd_ = wake_fd_ = -1;
}

void Pickup::run() {
    while (!stopping_) {
        scan();
        pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {inotify_fd_, POLLIN, 0}};
        int n = ::poll(fds, inotify_fd_ >= 0 ? 2 : 1, 10000);   // files the relay could not take yet: every 10 s
        if (n > 0 && (fds[1].revents & POLLIN)) {
            char buffer[4096];
            while (::read(inotify_fd_, buffer, sizeof buffer) > 0) {
            }
        }
    }
}

void Pickup::scan() {
    std::error_code ec;
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(dir_, ec)) {
        const std::string name = entry.path().filename().string();
        if (name.starts_with('.')) {
            // A sendmail that died while writing leaves its temp file: gone after a day.
            struct stat st{};
            if (::lstat(entry.path().c_str(), &st) == 0 && st.st_mtime < ::time(nullptr) - 86400) ::unlink(entry.path().c_str());
            continue;
        }
        files.push_back(entry.path());
    }
    for (const auto& file : files) {
        if (stopping_) return;
        const auto config = this->config();
        // O_NOFOLLOW and O_NONBLOCK: a user may plant a symlink or a FIFO here; neither is read.
        int fd = ::open(file.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        struct stat st{};
        const std::string name = file.filename().string();
        if (fd < 0 || ::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1 ||
            static_cast<std::uint64_t>(st.st_size) > config->relay.max_message_size + (1u << 20)) {
            log::warning("maildrop_rejected", {{"file", name}, {"uid", static_cast<std::uint64_t>(st.st_uid)},
                                               {"detail", "not a plain file of a sane size"}});
            if (fd >= 0) ::close(fd);
            ::unlink(file.c_str());
            continue;
        }
        std::string content(static_cast<std::size_t>(st.st_size), '\0');
        std::size_t got = 0;
        while (got < content.size()) {
            ssize_t n = ::read(fd, content.data() + got, content.size() - got);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            got += static_cast<std::size_t>(n);
        }
        ::close(fd);
        content.resize(got);
        const std::string user = user_name(st.st_uid);
        auto decoded = decode(content);
        sendmail::Options options;
        std::string ignored_config, problem = decoded ? std::string() : std::string("not a maildrop file");
        if (decoded) problem = sendmail::parse_arguments(decoded->first, options, ignored_config);
        if (problem.empty()) {
            auto result = sendmail::submit_message(*config, options, decoded->second, user);
            if (result.exit_code == sendmail::EX_TEMPFAIL_) {
                log::debug("maildrop_deferred", {{"file", name}, {"user", user}, {"detail", result.problem}});
                continue;   // the next scan tries again
            }
            if (result.exit_code == 0) {
                std::string rcpts;
                for (const auto& r : result.recipients) rcpts += (rcpts.empty() ? "" : ",") + r;
                log::info("maildrop_submitted", {{"file", name}, {"user", user}, {"rcpt", rcpts}});
                ::unlink(file.c_str());
                continue;
            }
            problem = result.problem;
        }
        // Refused for good (bad arguments, no recipient, refused by the relay): the sender's program
        // has long exited, so the log is where the admin learns of it.
        log::error("maildrop_refused", {{"file", name}, {"user", user}, {"detail", problem}});
        ::unlink(file.c_str());
    }
}

}  // namespace relay::maildrop
