// Writing queue files: SpoolWriter (one SMTP session's message, header then body through a buffer)
// and reading them back: SpoolBodyReader (the body again, for the upstream session) and
// read_header_block (the message's own header lines, for DSNs and `queue show`). See spool.hpp.
#include "relay/spool/spool.hpp"

#include <utility>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <system_error>
#include <unistd.h>

#include "relay/core/durable_file.hpp"
#include "relay/core/log.hpp"
#include "relay/spool/queue_file.hpp"
#include "relay/spool/received_header.hpp"

namespace relay {
namespace {

namespace fs = std::filesystem;

}  // namespace

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
    if (message.header_override) {
        // size counts the override; the file holds `header_replaced` bytes in its place.
        prefix_ = *message.header_override;
        offset_ += message.header_replaced;
        end_ = end_ - prefix_.size() + message.header_replaced;
        position_ = offset_;
    }
    fd_ = ::open(message.path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
    if (fd_ < 0) throw_errno(errno, "open " + message.path.string());
    ::posix_fadvise(fd_, 0, 0, POSIX_FADV_SEQUENTIAL);
}

SpoolBodyReader::~SpoolBodyReader() {
    if (fd_ >= 0) ::close(fd_);
}

std::size_t SpoolBodyReader::read(char* buffer, std::size_t size) {
    if (prefix_at_ < prefix_.size()) {
        const std::size_t n = std::min(size, prefix_.size() - prefix_at_);
        std::copy_n(prefix_.data() + prefix_at_, n, buffer);
        prefix_at_ += n;
        return n;
    }
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

void SpoolBodyReader::rewind() {
    position_ = offset_;
    prefix_at_ = 0;
}

// ---------------------------------------------------------------------------------------------
// SpoolWriter

SpoolWriter::SpoolWriter(Spool& spool, TraceOptions trace) : spool_(spool), trace_(std::move(trace)) {}

SpoolWriter::~SpoolWriter() { message_abort(); }

void SpoolWriter::message_begin(const Envelope& envelope) {
    message_abort();
    message_ = QueuedMessage{};
    first_bytes_.clear();
    header_pending_ = false;
    message_.id = make_queue_id();
    message_.envelope = envelope;
    message_.received = SystemClock::now();
    message_.path = spool_.queue_path(message_.id);
    write_failed_ = false;
    saved_errno_ = 0;

    fs::path path = spool_.incoming_path(message_.id);
    fd_ = spool_.open_incoming(message_.id);
    written_ = 0;
    if (fd_ < 0) {
        write_failed_ = true;
        saved_errno_ = errno;
        log::error("spool_open_failed", {{"file", path.string()}, {"error", std::strerror(errno)}});
        return;
    }
    buffer_ = queue_file::format_header(message_, size_offset_);
    message_.body_offset = buffer_.size();
    scan_ = BodyScan{};
    // Written here, before the client's first byte, as Postfix's cleanup does: the queue file then
    // holds the message exactly as it leaves (queue show, DSNs, both transports).
    if (trace_.add_received) {
        const std::string received = received_header(envelope, trace_.hostname, message_.id, message_.received);
        message_.size += received.size();
        buffer_ += received;
        header_pending_ = true;
    }
}

void SpoolWriter::message_data(std::string_view bytes) {
    if (fd_ < 0 || write_failed_) return;
    if (!header_pending_) return append_data(bytes);
    first_bytes_.append(bytes);
    if (const auto header = starts_with_header(first_bytes_)) release_first_bytes(*header);
}

void SpoolWriter::release_first_bytes(bool header) {
    header_pending_ = false;
    // A message that is all body (a script's bare text): the empty line ends the Received field's
    // header, so the first line stays text and is not read as a broken header field.
    if (!header) {
        buffer_ += "\r\n";
        message_.size += 2;
    }
    const std::string held = std::exchange(first_bytes_, {});
    append_data(held);
}

void SpoolWriter::append_data(std::string_view bytes) {
    message_.size += bytes.size();
    scan_.feed(bytes);
    if (buffer_.size() + bytes.size() < 256 * 1024) {
        buffer_.append(bytes);
        return;
    }
    flush();
    if (bytes.size() >= 256 * 1024) {
        try {
            write_all(fd_, bytes, spool_.incoming_path(message_.id));
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
        write_all(fd_, buffer_, spool_.incoming_path(message_.id));
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
    ::unlink((spool_.incoming_path(message_.id)).c_str());
    buffer_.clear();
    buffer_.shrink_to_fit();
}

std::pair<SpoolCommitter::Pending, QueuedMessage> SpoolWriter::finish() {
    if (fd_ >= 0 && !write_failed_) {
        if (header_pending_ && !first_bytes_.empty()) release_first_bytes(false);   // no ':' came: text
        header_pending_ = false;
        flush();
        message_.eight_bit_data = scan_.eight_bit;
        message_.long_lines = scan_.long_line;
        // The size digits and, right after them, the body record: both fixed width, filled in now.
        const std::string digits = queue_file::format_size(message_.size);
        const std::string traits = queue_file::format_body_traits(message_);
        for (auto [text, at] : {std::pair{&digits, size_offset_}, std::pair{&traits, queue_file::body_traits_offset(size_offset_)}}) {
            if (!write_failed_ &&
                ::pwrite(fd_, text->data(), text->size(), static_cast<off_t>(at)) != static_cast<ssize_t>(text->size())) {
                write_failed_ = true;
                saved_errno_ = errno ? errno : EIO;
            }
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
