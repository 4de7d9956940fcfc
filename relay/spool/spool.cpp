// Spool files, recovery after a crash, and the group-commit worker. See spool.hpp for the format.
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

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include "relay/core/blocking.hpp"
#include "relay/core/durable_file.hpp"
#include "relay/core/log.hpp"
#include "relay/core/spawn.hpp"
#include "relay/spool/queue_state.hpp"

namespace relay {
namespace {

namespace fs = std::filesystem;
namespace asio = boost::asio;

constexpr std::string_view kMagic = "smtp-oauth2-relay-spool 1\n";
constexpr int kSizeDigits = 20;
// Enough recycled files to cover the messages in flight between intake and delivery in a burst;
// larger files are deleted rather than kept (their blocks would sit idle until reused).
constexpr std::size_t kMaxRecycled = 256;
constexpr std::uint64_t kMaxRecycledSize = 1024 * 1024;
// Parallel fdatasyncs per commit batch; the daemon's blocking pool has 4 threads (cmd_serve.cpp).
constexpr std::size_t kSyncLanes = 4;

[[noreturn]] void throw_errno(int err, const std::string& what) {
    throw std::system_error(err, std::generic_category(), what);
}

void write_all(int fd, std::string_view bytes, const fs::path& path) {
    while (!bytes.empty()) {
        ssize_t n = ::write(fd, bytes.data(), bytes.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            throw_errno(errno, "write " + path.string());
        }
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
}

std::int64_t to_unix_ms(SystemClock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// Values are single-line by construction (the SMTP parser refuses CR/LF in paths and EHLO names);
// this guard keeps a bug elsewhere from corrupting the header.
std::string record_value(std::string_view v) {
    std::string out(v);
    std::replace_if(out.begin(), out.end(), [](char c) { return c == '\r' || c == '\n'; }, ' ');
    return out;
}

}  // namespace

std::string make_queue_id() {
    static std::atomic<std::uint32_t> sequence{[] {
        std::random_device rd;
        return static_cast<std::uint32_t>(rd());
    }()};
    auto ms = static_cast<std::uint64_t>(to_unix_ms(SystemClock::now()));
    std::uint32_t seq = sequence.fetch_add(1) & 0xFFFFFF;
    return fmt::format("{:010X}{:06X}", ms & 0xFFFFFFFFFFull, seq);
}

// ---------------------------------------------------------------------------------------------
// Spool

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
    fs::path path = incoming_dir() / id;
    std::string reuse;
    {
        std::lock_guard lock(recycled_mutex_);
        if (!recycled_.empty()) {
            reuse = std::move(recycled_.back());
            recycled_.pop_back();
        }
    }
    if (!reuse.empty() && ::rename((recycled_dir() / reuse).c_str(), path.c_str()) == 0) {
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
    if (!head.starts_with(kMagic)) throw std::runtime_error("not a spool file");
    auto end = head.find("\n\n");
    if (end == std::string::npos) throw std::runtime_error("header not terminated");

    QueuedMessage m;
    m.path = file;
    m.body_offset = end + 2;
    bool have_size = false;
    std::string_view rest(head.data() + kMagic.size(), end + 1 - kMagic.size());
    while (!rest.empty()) {
        auto nl = rest.find('\n');
        std::string_view line = rest.substr(0, nl);
        rest.remove_prefix(nl + 1);
        auto sp = line.find(' ');
        std::string_view key = line.substr(0, sp);
        std::string value(sp == std::string_view::npos ? std::string_view{} : line.substr(sp + 1));
        if (key == "size") {
            m.size = std::stoull(value);
            have_size = true;
        } else if (key == "id") {
            m.id = value;
        } else if (key == "account") {
            m.envelope.account = value;
        } else if (key == "from") {
            m.envelope.mail_from = value;
        } else if (key == "rcpt") {
            m.envelope.rcpt_to.push_back(value);
        } else if (key == "user") {
            m.envelope.user = value;
        } else if (key == "client") {
            m.envelope.client_address = value;
        } else if (key == "helo") {
            m.envelope.helo = value;
        } else if (key == "received") {
            m.received = SystemClock::time_point(std::chrono::milliseconds(std::stoll(value)));
        } else if (key == "8bit") {
            m.envelope.eight_bit = value == "1";
        } else if (key == "dsn") {
            m.envelope.dsn = value == "1";
        }
        // Unknown records are skipped: a newer version may add some.
    }
    if (!have_size || m.id.empty() || m.envelope.rcpt_to.empty() || m.envelope.account.empty())
        throw std::runtime_error("header incomplete");
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
            if (::rename(message.path.c_str(), (recycled_dir() / message.id).c_str()) == 0) {
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
    fs::path target = failed_dir() / message.id;
    write_file_durably(failed_dir() / (message.id + ".reason"), std::string(reason) + "\n", 0600);
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
    fs::path from = incoming_dir() / pending.id;
    if (err == 0 && ::rename(from.c_str(), message.path.c_str()) != 0) err = errno;
    if (err != 0) {
        ::unlink(from.c_str());
        throw_errno(err, "commit " + pending.id);
    }
    fsync_directory(queue_dir());
    return message;
}

std::string read_header_block(const QueuedMessage& message) {
    constexpr std::size_t kLimit = 65536;
    SpoolBodyReader body(message);
    std::string header;
    char buffer[8192];
    while (header.size() < kLimit) {
        std::size_t n = body.read(buffer, sizeof buffer);
        if (n == 0) break;
        header.append(buffer, n);
        if (auto end = header.find("\r\n\r\n"); end != std::string::npos) return header.substr(0, end + 2);
    }
    return header.substr(0, std::min(header.size(), kLimit));
}

// ---------------------------------------------------------------------------------------------
// SpoolBodyReader

SpoolBodyReader::SpoolBodyReader(const QueuedMessage& message)
    : offset_(message.body_offset), end_(message.body_offset + message.size), position_(offset_) {
    fd_ = ::open(message.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) throw_errno(errno, "open " + message.path.string());
    ::posix_fadvise(fd_, 0, 0, POSIX_FADV_SEQUENTIAL);
}

SpoolBodyReader::~SpoolBodyReader() {
    if (fd_ >= 0) ::close(fd_);
}

std::size_t SpoolBodyReader::read(char* buffer, std::size_t size) {
    std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(size, end_ - position_));
    while (want > 0) {
        ssize_t n = ::pread(fd_, buffer, want, static_cast<off_t>(position_));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw_errno(errno, "read spool body");
        if (n == 0) throw std::system_error(EIO, std::generic_category(), "spool body truncated");
        position_ += static_cast<std::uint64_t>(n);
        return static_cast<std::size_t>(n);
    }
    return 0;
}

void SpoolBodyReader::rewind() { position_ = offset_; }

// ---------------------------------------------------------------------------------------------
// SpoolCommitter

struct SpoolCommitter::Impl : std::enable_shared_from_this<Impl> {
    struct Entry {
        explicit Entry(asio::any_io_executor io) : wake(io, asio::steady_timer::time_point::max()) {}
        Pending pending;
        asio::steady_timer wake;
        int error = 0;
        std::string what;
        bool done = false;
    };

    Spool& spool;
    asio::any_io_executor io;
    asio::thread_pool& pool;
    std::vector<std::shared_ptr<Entry>> waiting;   // written, not yet synced
    std::vector<std::shared_ptr<Entry>> synced;    // data synced, not yet renamed into queue/
    bool syncing = false;
    bool publishing = false;
    std::uint64_t batches = 0;

    Impl(Spool& s, asio::any_io_executor e, asio::thread_pool& p) : spool(s), io(std::move(e)), pool(p) {}

    // Two stages, each one batch at a time, overlapping: while one batch is renamed and its
    // directory synced, the next batch's data is synced. Each stage waits on a device flush, so a
    // pipeline of two keeps the disk busy twice as often under concurrent sessions.
    // A stage should never throw (its blocking work reports through the entries); if one does, the
    // exception is logged (core::spawn), its batch is answered as failed so no client waits
    // forever (their incoming files are swept at the next start), and the stage starts again.
    void kick() {
        if (!syncing && !waiting.empty()) {
            syncing = true;
            ++batches;
            auto batch = std::exchange(waiting, {});
            core::spawn(io, sync_stage(batch, shared_from_this()), "spool_sync_stage", "",
                        stage_failed(batch, &Impl::syncing));
        }
        if (!publishing && !synced.empty()) {
            publishing = true;
            auto batch = std::exchange(synced, {});
            core::spawn(io, publish_stage(batch, shared_from_this()), "spool_publish_stage", "",
                        stage_failed(batch, &Impl::publishing));
        }
    }

    core::OnFailure stage_failed(std::vector<std::shared_ptr<Entry>> batch, bool Impl::*running) {
        std::weak_ptr<Impl> weak = weak_from_this();
        return [weak, batch, running](std::exception_ptr) mutable {
            mark_failed(batch);
            for (auto& entry : batch) {
                entry->done = true;
                entry->wake.cancel();
            }
            if (auto self = weak.lock()) {
                (*self).*running = false;
                self->kick();
            }
        };
    }

    // fdatasync of every file in the batch, on this pool thread and up to kSyncLanes - 1 others:
    // syncs issued together share the device's cache flushes, while one after another each waits
    // for a flush of its own and a batch costs as much as its messages one by one. Helpers take
    // files from a shared counter, so a busy (or one-thread) pool only means this thread does more;
    // it waits just for files a helper has already taken.
    struct SyncWork {
        std::vector<std::shared_ptr<Entry>> files;
        std::atomic<std::size_t> next{0};
        std::atomic<std::size_t> finished{0};
        void run() {
            for (std::size_t i; (i = next.fetch_add(1)) < files.size();) {
                Entry& e = *files[i];
                if (::fdatasync(e.pending.fd) != 0) {
                    e.error = errno;
                    e.what = "fdatasync";
                }
                ::close(e.pending.fd);
                e.pending.fd = -1;
                if (finished.fetch_add(1) + 1 == files.size()) finished.notify_all();
            }
        }
    };

    void sync_files(const std::vector<std::shared_ptr<Entry>>& batch) {
        auto work = std::make_shared<SyncWork>();
        work->files = batch;
        for (std::size_t helper = 1; helper < std::min(batch.size(), kSyncLanes); ++helper)
            asio::post(pool, [work] { work->run(); });
        work->run();
        for (std::size_t seen; (seen = work->finished.load()) < batch.size();) work->finished.wait(seen);
    }

    // Runs on the pool, after sync_files: the renames, then one directory sync.
    void publish(std::vector<std::shared_ptr<Entry>>& batch) {
        bool renamed_any = false;
        for (auto& e : batch) {
            if (e->error) {
                ::unlink((spool.incoming_dir() / e->pending.id).c_str());
                continue;
            }
            fs::path from = spool.incoming_dir() / e->pending.id;
            fs::path to = spool.queue_dir() / e->pending.id;
            if (::rename(from.c_str(), to.c_str()) != 0) {
                e->error = errno;
                e->what = "rename";
                ::unlink(from.c_str());
            } else {
                renamed_any = true;
            }
        }
        if (!renamed_any) return;
        try {
            fsync_directory(spool.queue_dir());
        } catch (const std::system_error& err) {
            for (auto& e : batch)
                if (!e->error) {
                    // The rename may not be durable: take the file back so the client retries.
                    ::unlink((spool.queue_dir() / e->pending.id).c_str());
                    e->error = err.code().value();
                    e->what = "fsync queue directory";
                }
        }
    }

    static void mark_failed(std::vector<std::shared_ptr<Entry>>& batch) {
        for (auto& entry : batch)
            if (!entry->error) {
                entry->error = EIO;
                entry->what = "spool sync failed";
            }
    }

    // Runs one stage's blocking work on the pool; if it throws, every entry not yet failed fails.
    template <class Job>
    static asio::awaitable<void> on_pool(std::shared_ptr<Impl> self, std::vector<std::shared_ptr<Entry>>& batch, Job job) {
        bool failed = false;
        try {
            co_await run_blocking(self->pool, std::move(job));
        } catch (...) {
            failed = true;
        }
        if (failed) mark_failed(batch);
    }

    static asio::awaitable<void> sync_stage(std::vector<std::shared_ptr<Entry>> batch, std::shared_ptr<Impl> self) {
        // Named before the co_await: a lambda built inside it trips a GCC 12 coroutine bug.
        auto job = [self, &batch] { self->sync_files(batch); };
        co_await on_pool(self, batch, std::move(job));
        // Failed entries go on too: publishing removes their incoming files and answers them.
        self->synced.insert(self->synced.end(), batch.begin(), batch.end());
        self->syncing = false;
        self->kick();
    }

    static asio::awaitable<void> publish_stage(std::vector<std::shared_ptr<Entry>> batch, std::shared_ptr<Impl> self) {
        auto job = [self, &batch] { self->publish(batch); };
        co_await on_pool(self, batch, std::move(job));
        for (auto& entry : batch) {
            entry->done = true;
            entry->wake.cancel();
        }
        self->publishing = false;
        self->kick();
    }
};

SpoolCommitter::SpoolCommitter(Spool& spool, asio::any_io_executor io, asio::thread_pool& blocking)
    : impl_(std::make_shared<Impl>(spool, std::move(io), blocking)) {}

SpoolCommitter::~SpoolCommitter() = default;

asio::awaitable<void> SpoolCommitter::commit(Pending pending) {
    auto entry = std::make_shared<Impl::Entry>(impl_->io);
    entry->pending = std::move(pending);
    impl_->waiting.push_back(entry);
    impl_->kick();
    while (!entry->done) co_await entry->wake.async_wait(asio::as_tuple(asio::use_awaitable));
    if (entry->error)
        throw std::system_error(entry->error, std::generic_category(),
                                "spool commit of " + entry->pending.id + ": " + entry->what);
}

std::uint64_t SpoolCommitter::batches() const { return impl_->batches; }

// ---------------------------------------------------------------------------------------------
// SpoolWriter

SpoolWriter::SpoolWriter(Spool& spool) : spool_(spool) {}

SpoolWriter::~SpoolWriter() { message_abort(); }

void SpoolWriter::message_begin(const Envelope& envelope) {
    message_abort();
    message_ = QueuedMessage{};
    message_.id = make_queue_id();
    message_.envelope = envelope;
    message_.received = SystemClock::now();
    message_.path = spool_.queue_dir() / message_.id;
    write_failed_ = false;
    saved_errno_ = 0;

    fs::path path = spool_.incoming_dir() / message_.id;
    fd_ = spool_.open_incoming(message_.id);
    written_ = 0;
    if (fd_ < 0) {
        write_failed_ = true;
        saved_errno_ = errno;
        log::error("spool_open_failed", {{"file", path.string()}, {"error", std::strerror(errno)}});
        return;
    }
    buffer_.clear();
    buffer_ += kMagic;
    size_offset_ = buffer_.size() + 5;  // after "size "
    buffer_ += "size " + std::string(kSizeDigits, '0') + "\n";
    buffer_ += "id " + message_.id + "\n";
    buffer_ += "account " + record_value(envelope.account) + "\n";
    buffer_ += "from " + record_value(envelope.mail_from) + "\n";
    for (const auto& rcpt : envelope.rcpt_to) buffer_ += "rcpt " + record_value(rcpt) + "\n";
    if (!envelope.user.empty()) buffer_ += "user " + record_value(envelope.user) + "\n";
    buffer_ += "client " + record_value(envelope.client_address) + "\n";
    if (!envelope.helo.empty()) buffer_ += "helo " + record_value(envelope.helo) + "\n";
    buffer_ += fmt::format("received {}\n", to_unix_ms(message_.received));
    buffer_ += envelope.eight_bit ? "8bit 1\n" : "8bit 0\n";
    if (envelope.dsn) buffer_ += "dsn 1\n";
    buffer_ += "\n";
    message_.body_offset = buffer_.size();
}

void SpoolWriter::message_data(std::string_view bytes) {
    if (fd_ < 0 || write_failed_) return;
    message_.size += bytes.size();
    if (buffer_.size() + bytes.size() < 256 * 1024) {
        buffer_.append(bytes);
        return;
    }
    flush();
    if (bytes.size() >= 256 * 1024) {
        try {
            write_all(fd_, bytes, spool_.incoming_dir() / message_.id);
            written_ += bytes.size();
        } catch (const std::system_error& e) {
            write_failed_ = true;
            saved_errno_ = e.code().value();
        }
    } else {
        buffer_.append(bytes);
    }
}

void SpoolWriter::flush() {
    if (buffer_.empty() || write_failed_) return;
    try {
        write_all(fd_, buffer_, spool_.incoming_dir() / message_.id);
        written_ += buffer_.size();
    } catch (const std::system_error& e) {
        write_failed_ = true;
        saved_errno_ = e.code().value();
    }
    buffer_.clear();
}

void SpoolWriter::message_abort() {
    if (fd_ < 0) return;
    ::close(fd_);
    fd_ = -1;
    ::unlink((spool_.incoming_dir() / message_.id).c_str());
    buffer_.clear();
    buffer_.shrink_to_fit();
}

std::pair<SpoolCommitter::Pending, QueuedMessage> SpoolWriter::finish() {
    if (fd_ >= 0 && !write_failed_) {
        flush();
        std::string digits = fmt::format("{:0{}}", message_.size, kSizeDigits);
        if (!write_failed_ &&
            ::pwrite(fd_, digits.data(), digits.size(), static_cast<off_t>(size_offset_)) !=
                static_cast<ssize_t>(digits.size())) {
            write_failed_ = true;
            saved_errno_ = errno ? errno : EIO;
        }
        // A recycled file may be longer than this message: cut it, or the reader sees a torn file.
        if (!write_failed_ && ::ftruncate(fd_, static_cast<off_t>(written_)) != 0) {
            write_failed_ = true;
            saved_errno_ = errno ? errno : EIO;
        }
    }
    if (fd_ < 0 || write_failed_) {
        int err = saved_errno_ ? saved_errno_ : EIO;
        std::string id = message_.id;
        message_abort();
        throw std::system_error(err, std::generic_category(), "spool write of " + id);
    }
    SpoolCommitter::Pending pending{std::exchange(fd_, -1), message_.id};
    buffer_.shrink_to_fit();
    return {pending, message_};
}

}  // namespace relay
