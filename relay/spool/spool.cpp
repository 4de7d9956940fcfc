// The spool's directories and files: paths, recovery after a crash, recycling, failed/. The queue
// file format is queue_file.cpp; writing one is spool_writer.cpp; the group commit is
// spool_committer.cpp. See spool.hpp.
#include "relay/spool/spool.hpp"

#include <utility>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <fcntl.h>
#include <random>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>

#include <fmt/format.h>

#include "relay/core/durable_file.hpp"
#include "relay/core/log.hpp"
#include "relay/spool/queue_file.hpp"
#include "relay/spool/queue_state.hpp"

namespace relay {
namespace {

namespace fs = std::filesystem;

// Enough recycled files to cover the messages in flight between intake and delivery in a burst;
// larger files are deleted rather than kept (their blocks would sit idle until reused).
constexpr std::size_t kMaxRecycled = 256;
constexpr std::uint64_t kMaxRecycledSize = 1024 * 1024;

}  // namespace

std::string make_queue_id() {
    static std::atomic<std::uint32_t> sequence{[] {
        std::random_device rd;
        return static_cast<std::uint32_t>(rd());
    }()};
    auto ms = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(SystemClock::now().time_since_epoch()).count());
    std::uint32_t seq = sequence.fetch_add(1) & 0xFFFFFF;
    return fmt::format("{:010X}{:06X}", ms & 0xFFFFFFFFFFull, seq);
}

// ---------------------------------------------------------------------------------------------
// Spool

// ---- paths: the only place that joins a spool directory and a queue id ------------------------

fs::path Spool::incoming_path(const std::string& id) const { return incoming_dir() / id; }
fs::path Spool::queue_path(const std::string& id) const { return queue_dir() / id; }
fs::path Spool::failed_path(const std::string& id) const { return failed_dir() / id; }
fs::path Spool::failed_reason_path(const std::string& id) const { return failed_dir() / (id + ".reason"); }
fs::path Spool::recycled_path(const std::string& name) const { return recycled_dir() / name; }

void Spool::unfail(const std::string& id) const {
    fs::path from = failed_path(id), to = queue_path(id);
    fs::rename(from, to);
    fsync_directory(queue_dir());
    std::error_code ec;
    fs::remove(failed_reason_path(id), ec);
    fsync_directory(failed_dir());
}

void Spool::remove_failed(const std::string& id) const {
    fs::remove(failed_path(id));
    fs::remove(failed_reason_path(id));
}

Spool::Spool(fs::path spool_dir) : dir_(std::move(spool_dir)) {
    ensure_directory(dir_, 0700);
    ensure_directory(incoming_dir(), 0700);
    ensure_directory(queue_dir(), 0700);
    ensure_directory(failed_dir(), 0700);
    ensure_directory(control_dir(), 0700);
    ensure_directory(recycled_dir(), 0700);
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(recycled_dir(), ec)) {
        if (recycled_.size() < kMaxRecycled)
            recycled_.push_back(entry.path().filename().string());
        else
            fs::remove(entry.path(), ec);
    }
}

int Spool::open_incoming(const std::string& id) {
    fs::path path = incoming_path(id);
    std::string reuse;
    {
        std::lock_guard lock(recycled_mutex_);
        if (!recycled_.empty()) {
            reuse = std::move(recycled_.back());
            recycled_.pop_back();
        }
    }
    if (!reuse.empty() && ::rename(recycled_path(reuse).c_str(), path.c_str()) == 0) {
        int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
        if (fd >= 0) return fd;
        ::unlink(path.c_str());
    }
    return ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
}

std::vector<QueuedMessage> Spool::recover() {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(incoming_dir(), ec)) {
        // Never acknowledged with 250: the client still has it and will send it again.
        log::info("spool_discard_incomplete", {{"file", entry.path().filename().string()}});
        fs::remove(entry.path(), ec);
    }
    std::vector<QueuedMessage> messages;
    for (const auto& entry : fs::directory_iterator(queue_dir())) {
        if (!entry.is_regular_file() || is_sidecar_name(entry.path().filename().string())) continue;
        try {
            messages.push_back(read(entry.path()));
        } catch (const std::exception& e) {
            QueuedMessage broken;
            broken.id = entry.path().filename().string();
            broken.path = entry.path();
            log::error("spool_corrupt", {{"queue_id", broken.id}, {"error", e.what()}});
            move_to_failed(broken, std::string("unreadable queue file: ") + e.what());
        }
    }
    std::sort(messages.begin(), messages.end(),
              [](const QueuedMessage& a, const QueuedMessage& b) { return a.id < b.id; });
    return messages;
}

QueuedMessage Spool::read(const fs::path& file) {
    int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw_errno(errno, "open " + file.string());
    std::string head(65536, '\0');
    ssize_t n = ::pread(fd, head.data(), head.size(), 0);
    struct stat st {};
    int stat_rc = ::fstat(fd, &st);
    ::close(fd);
    if (n < 0 || stat_rc != 0) throw_errno(errno, "read " + file.string());
    head.resize(static_cast<std::size_t>(n));
    QueuedMessage m = queue_file::parse_header(head);
    m.path = file;
    if (static_cast<std::uint64_t>(st.st_size) != m.body_offset + m.size)
        throw std::runtime_error(fmt::format("torn file: {} bytes, header says {}", st.st_size,
                                             m.body_offset + m.size));
    return m;
}

void Spool::remove(const QueuedMessage& message) {
    if (message.size <= kMaxRecycledSize) {
        std::unique_lock lock(recycled_mutex_);
        if (recycled_.size() < kMaxRecycled) {
            // Not synced: after a crash the file may be back in queue/ and be delivered again,
            // exactly as with an unlink that did not reach the disk.
            if (::rename(message.path.c_str(), recycled_path(message.id).c_str()) == 0) {
                recycled_.push_back(message.id);
                return;
            }
        }
    }
    std::error_code ec;
    fs::remove(message.path, ec);
    if (ec) log::error("spool_remove_failed", {{"queue_id", message.id}, {"error", ec.message()}});
    remove_sidecars(message.path);
}

void Spool::move_to_failed(const QueuedMessage& message, std::string_view reason) {
    fs::path target = failed_path(message.id);
    write_file_durably(failed_reason_path(message.id), std::string(reason) + "\n", 0600);
    if (::rename(message.path.c_str(), target.c_str()) != 0)
        throw_errno(errno, "rename " + message.path.string() + " to " + target.string());
    fsync_directory(failed_dir());
    remove_sidecars(message.path);
    fsync_directory(queue_dir());
}

QueuedMessage Spool::inject(const Envelope& envelope, std::string_view body) {
    SpoolWriter writer(*this);
    writer.message_begin(envelope);
    writer.message_data(body);
    auto [pending, message] = writer.finish();
    int err = ::fdatasync(pending.fd) == 0 ? 0 : errno;
    ::close(pending.fd);
    fs::path from = incoming_path(pending.id);
    if (err == 0 && ::rename(from.c_str(), message.path.c_str()) != 0) err = errno;
    if (err != 0) {
        ::unlink(from.c_str());
        throw_errno(err, "commit " + pending.id);
    }
    fsync_directory(queue_dir());
    return message;
}

}  // namespace relay
