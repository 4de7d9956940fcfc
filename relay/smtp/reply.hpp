// Client-side view of SMTP replies (RFC 5321 4.2) and outbound dot-stuffing. Pure: the upstream
// session feeds received bytes into ReplyParser and stuffs body chunks through DotStuffer.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace relay::smtp {

struct Reply {
    int code = 0;                       // 250, 535, ...
    std::vector<std::string> lines;     // text of each line after "250-" / "250 "
    std::string enhanced() const;       // "2.0.0" when the first line starts with one, else ""
    std::string text() const;           // "250 2.0.0 Ok ..." : one line for logs, lines joined by " / "
    bool positive() const { return code >= 200 && code < 400; }
    bool transient() const { return code >= 400 && code < 500; }
    bool permanent() const { return code >= 500; }
    bool has_line_starting(std::string_view keyword) const;  // EHLO keyword check, case-insensitive
};

// Accumulates bytes and yields complete (possibly multi-line) replies.
class ReplyParser {
public:
    explicit ReplyParser(std::size_t max_reply_bytes = 65536);
    void feed(std::string_view bytes);
    // The next complete reply, if one is buffered. Throws std::runtime_error on malformed replies
    // or when a reply grows past the limit.
    std::optional<Reply> next();
    bool has_buffered_bytes() const { return !buffer_.empty(); }
    void clear() { buffer_.clear(); }

private:
    std::size_t max_;
    std::string buffer_;
};

// Dot-stuffs a stored message (CRLF lines) for DATA: a "." at the start of a line gets another "."
// (RFC 5321 4.5.2). Keeps state across chunks. finish() returns the terminator: "\r\n.\r\n" when the
// message did not end with CRLF, else ".\r\n".
class DotStuffer {
public:
    // Appends the stuffed form of `chunk` to `out`.
    void stuff(std::string_view chunk, std::string& out);
    std::string_view finish() const;

private:
    bool at_line_start_ = true;
    bool last_was_cr_ = false;
    bool ended_with_crlf_ = true;   // an empty body needs only ".\r\n" after "DATA\r\n"
};

}  // namespace relay::smtp
