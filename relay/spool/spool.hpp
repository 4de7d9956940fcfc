// The durable queue on disk. A message is written to spool_dir/incoming/<id> while the client sends
// it, then committed: fdatasync, rename into spool_dir/queue/<id>, fsync of queue/. Only after that
// does the client get its 250, so nothing acknowledged is ever lost. Commits from concurrent
// sessions are batched (group commit): one worker syncs every file that is waiting, renames them
// all and syncs the directory once, so intake is not bounded by one directory fsync per message.
//
// File format (queue_file.hpp): a text header of typed records, an empty line, then the body exactly
// as received (dot-unstuffed, CRLF line ends). The "size" record is written last (pwrite before the sync), and a
// reader accepts a file only when header + size equals the file length, so a torn file is
// recognisable (the role of Postfix's END record).
//
// Delivered files are recycled: renamed into spool_dir/recycled/ and later renamed back into
// incoming/ for a new message, overwritten and cut to length. Creating and deleting one inode per
// message was the costliest step of intake under load (the benchmark's profile, issue 7: the ext4
// inode allocator scanning past recently deleted inodes); a rename is cheap.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>

#include "relay/core/envelope.hpp"
#include "relay/smtp/server_session.hpp"
#include "relay/core/body_reader.hpp"

namespace relay {

using SystemClock = std::chrono::system_clock;

// A committed message as the queue knows it.
struct QueuedMessage {
    std::string id;
    Envelope envelope;
    std::uint64_t size = 0;             // body bytes
    std::uint64_t body_offset = 0;      // where the body starts in the file
    SystemClock::time_point received{};
    std::filesystem::path path;
    // What SpoolWriter saw in the body (BodyScan), so delivery needs no second pass over the file:
    bool eight_bit_data = false;        // a byte >= 0x80: declared BODY=8BITMIME upstream
    bool long_lines = false;            // a line over 998 octets: re-encoded for delivery (upstream_message.hpp)
    // For one delivery attempt only, never stored (rewrite_sender): these bytes are read in place
    // of the first `header_replaced` bytes of the stored body; `size` counts them.
    std::optional<std::string> header_override;
    std::uint64_t header_replaced = 0;
};

// Watches a body go by, chunk after chunk: 8-bit bytes and lines longer than RFC 5321 4.5.3.1.6
// allows (998 octets before the CRLF). One pass over bytes the writer touches anyway.
struct BodyScan {
    bool eight_bit = false;
    bool long_line = false;
    std::size_t line = 0;               // octets since the last LF, the CR included
    void feed(std::string_view bytes) {
        for (char c : bytes) {
            if (c == '\n') {
                line = 0;
                continue;
            }
            eight_bit |= static_cast<unsigned char>(c) >= 0x80;
            long_line |= ++line > 999;  // 998 octets of text, then the CR
        }
    }
};

// SpoolWriter's trace header (received_header.hpp): off for messages the relay makes itself.
struct TraceOptions {
    bool add_received = false;
    std::string hostname;               // [relay] hostname, the "by" of the header
};

// Sortable, unique queue id: 16 upper-case hex digits (time in ms, then a per-process sequence).
std::string make_queue_id();

class Spool {
public:
    explicit Spool(std::filesystem::path spool_dir);   // creates incoming/, queue/, failed/ (0700)

    // The spool's layout. Only relay/spool builds paths inside it: everyone else asks here.
    const std::filesystem::path& dir() const { return dir_; }
    std::filesystem::path incoming_dir() const { return dir_ / "incoming"; }
    std::filesystem::path queue_dir() const { return dir_ / "queue"; }
    std::filesystem::path failed_dir() const { return dir_ / "failed"; }
    std::filesystem::path control_dir() const { return dir_ / "control"; }   // queue tool requests
    std::filesystem::path recycled_dir() const { return dir_ / "recycled"; }
    std::filesystem::path incoming_path(const std::string& id) const;    // being received
    std::filesystem::path queue_path(const std::string& id) const;       // committed
    std::filesystem::path failed_path(const std::string& id) const;      // failed for good
    std::filesystem::path failed_reason_path(const std::string& id) const;
    std::filesystem::path recycled_path(const std::string& name) const;

    // `queue retry` of a failed message: failed/<id> back into queue/<id>, its reason dropped.
    // Throws std::filesystem::filesystem_error / std::system_error.
    void unfail(const std::string& id) const;
    // `queue delete` of a failed message: failed/<id> and its reason go. Throws on failure.
    void remove_failed(const std::string& id) const;

    // Every committed message, oldest first; unreadable files are moved to failed/ with a reason.
    // Leftovers in incoming/ (never acknowledged) are removed.
    std::vector<QueuedMessage> recover();

    // Reads and checks one queue file.
    static QueuedMessage read(const std::filesystem::path& file);

    // Delivered: the queue file goes away (into recycled/ when small and there is room).
    void remove(const QueuedMessage& message);
    // Opens incoming/<id> for writing, reusing a recycled file when there is one. The file may hold
    // old bytes past what is written: the writer cuts it to length. Returns -1 with errno set on failure.
    int open_incoming(const std::string& id);
    // Permanent failure: the file moves to failed/<id> with failed/<id>.reason holding `reason`.
    void move_to_failed(const QueuedMessage& message, std::string_view reason);

    // Writes a message made by the relay itself (a DSN) and commits it durably to queue/ (fsyncs:
    // call on the blocking pool). Throws std::system_error.
    QueuedMessage inject(const Envelope& envelope, std::string_view body);

private:
    std::filesystem::path dir_;
    std::mutex recycled_mutex_;
    std::vector<std::string> recycled_;   // file names in recycled/, ready for reuse
};

// Reads the body of a queued message in chunks for the upstream session.
class SpoolBodyReader : public BodyReader {
public:
    explicit SpoolBodyReader(const QueuedMessage& message);
    ~SpoolBodyReader() override;
    std::size_t read(char* buffer, std::size_t size) override;
    void rewind() override;

private:
    int fd_ = -1;
    std::uint64_t offset_;
    std::uint64_t end_;
    std::uint64_t position_;
    std::string prefix_;              // header_override
    std::size_t prefix_at_ = 0;       // how much of prefix_ was read
};

// The message's header block (up to and including the CRLF before the blank line), at most 64 KiB:
// for a DSN's text/rfc822-headers part and for `queue show`. The spool owns the file format, so
// this is the one reader of it. Throws std::system_error when the file cannot be read.
std::string read_header_block(const QueuedMessage& message);

// Batches commits (see file comment). Lives on the I/O executor; syncing runs on the blocking pool.
class SpoolCommitter {
public:
    SpoolCommitter(Spool& spool, boost::asio::any_io_executor io, boost::asio::thread_pool& blocking);
    ~SpoolCommitter();

    struct Pending {
        int fd = -1;                        // ownership passes to the committer
        std::string id;
    };
    // Makes the message durable in queue/. Throws std::system_error when it could not be.
    boost::asio::awaitable<void> commit(Pending pending);

    std::uint64_t batches() const;          // for the benchmark: commits per batch = messages / batches

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

// The sink for one SMTP session: writes the header at message_begin, the body as it arrives (through
// a buffer, so a 35 MB message never sits in memory), and hands the file to the committer.
class SpoolWriter : public smtp::MessageSink {
public:
    explicit SpoolWriter(Spool& spool, TraceOptions trace = {});
    ~SpoolWriter() override;

    void message_begin(const Envelope& envelope) override;
    void message_data(std::string_view bytes) override;
    void message_abort() override;

    // After the session asked to commit: finishes the file; returns what the committer needs and the
    // message as it will sit in the queue. Throws std::system_error on a write failure.
    std::pair<SpoolCommitter::Pending, QueuedMessage> finish();

    bool active() const { return fd_ >= 0; }

private:
    void append_data(std::string_view bytes);
    void release_first_bytes(bool header);
    void flush();

    Spool& spool_;
    int fd_ = -1;
    QueuedMessage message_;
    std::string buffer_;
    TraceOptions trace_;
    BodyScan scan_;
    // The client's first bytes, held while a Received field waits to learn whether the message
    // starts with a header (else an empty line goes between them: starts_with_header).
    std::string first_bytes_;
    bool header_pending_ = false;
    std::uint64_t size_offset_ = 0;     // where the size record's digits sit
    std::uint64_t written_ = 0;         // bytes written so far (the file's final length at finish)
    bool write_failed_ = false;
    int saved_errno_ = 0;
};

}  // namespace relay
