// The seam between a queued message and the bytes a transport sends: (queue file, its metadata) ->
// upstream bytes. Today it decides two things: whether the stored bytes can go as they are (a message
// whose spool scan saw a line over 998 octets is re-encoded, long_lines.hpp), and whether the body
// must be declared BODY=8BITMIME (an 8-bit body sent without the declaration, RFC 6152: a strict
// server refuses it). Every other message is streamed from the queue file untouched.
// Other rewrites at delivery belong here too, so both transports get them the same way.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "relay/core/body_reader.hpp"
#include "relay/spool/spool.hpp"

namespace relay {

struct UpstreamMessage {
    std::optional<std::string> bytes;       // set: send these bytes, not a stream of the queue file
    bool rewritten = false;                 // `bytes` differ from the queue file's
    std::uint64_t size = 0;                 // the bytes that will be sent (SMTP's SIZE=)
    bool eight_bit = false;                 // declare BODY=8BITMIME
    int parts_reencoded = 0;                // for the log line (log_rewrite)
    bool headers_folded = false;
    std::string note;                       // for the log: what could not be done as wished
};

// The stored message (after a header_override), whole or its first `limit` bytes. Blocking.
std::string read_stored(const QueuedMessage& message, std::uint64_t limit = UINT64_MAX);

// True when prepare_upstream_message has real (blocking, CPU) work to do for `message`.
bool needs_rewrite(const QueuedMessage& message);

// The message as stored, when !needs_rewrite(): no I/O, nothing to wait for.
UpstreamMessage upstream_as_stored(const QueuedMessage& message);

// Reads the queue file and rewrites it only when needs_rewrite(); otherwise no I/O at all. Blocking
// when it reads: run it on the blocking pool. Throws std::system_error when the file cannot be read.
UpstreamMessage prepare_upstream_message(const QueuedMessage& message);

// One log line for a rewritten message (none otherwise); on the I/O thread, where logging happens.
void log_rewrite(const QueuedMessage& message, const UpstreamMessage& prepared);

// The bytes to send: the rewritten text, or the queue file itself (streamed, never whole in memory).
std::unique_ptr<BodyReader> upstream_body(const QueuedMessage& message, const UpstreamMessage& prepared);

// prepare_upstream_message with the bytes always in memory (Graph sends them in one request). Blocking.
UpstreamMessage read_upstream_message(const QueuedMessage& message);

}  // namespace relay
