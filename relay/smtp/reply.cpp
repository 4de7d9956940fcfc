// The pure half of the SMTP client: ReplyParser turns the bytes an upstream server sends into
// (possibly multi-line) replies per RFC 5321 4.2, and DotStuffer turns a stored CRLF message into
// the transparent DATA form of RFC 5321 4.5.2. No I/O here, so both are tested with tables and
// every possible chunk split.
#include "relay/smtp/reply.hpp"

#include <cstring>
#include <stdexcept>

namespace relay::smtp {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

char ascii_upper(char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c; }

// Length of a "d.ddd.ddd" prefix (RFC 3463 section 2: class "." subject "." detail, subject and
// detail 1-3 digits, class 2, 4 or 5), or 0 when `text` does not start with one.
std::size_t enhanced_code_length(std::string_view text) {
    if (text.size() < 5 || (text[0] != '2' && text[0] != '4' && text[0] != '5') || text[1] != '.')
        return 0;
    std::size_t pos = 2;
    for (int part = 0; part < 2; ++part) {
        std::size_t digits = 0;
        while (pos < text.size() && is_digit(text[pos]) && digits < 4) { ++pos; ++digits; }
        if (digits == 0 || digits > 3) return 0;
        if (part == 0) {
            if (pos >= text.size() || text[pos] != '.') return 0;
            ++pos;
        }
    }
    if (pos < text.size() && text[pos] != ' ') return 0;
    return pos;
}

}  // namespace

std::string Reply::enhanced() const {
    if (lines.empty()) return {};
    return lines.front().substr(0, enhanced_code_length(lines.front()));
}

std::string Reply::text() const {
    std::string out = std::to_string(code);
    for (std::size_t i = 0; i < lines.size(); ++i) {
        out += (i == 0) ? " " : " / ";
        out += lines[i];
    }
    return out;
}

bool Reply::has_line_starting(std::string_view keyword) const {
    for (const std::string& line : lines) {
        if (line.size() < keyword.size()) continue;
        bool same = true;
        for (std::size_t i = 0; i < keyword.size() && same; ++i)
            same = ascii_upper(line[i]) == ascii_upper(keyword[i]);
        // A keyword ends at a space (RFC 5321 4.1.1.1 ehlo-line) or, from pre-RFC 4954 servers
        // that wrote "AUTH=LOGIN", at "=".
        if (same && (line.size() == keyword.size() || line[keyword.size()] == ' ' ||
                     line[keyword.size()] == '='))
            return true;
    }
    return false;
}

ReplyParser::ReplyParser(std::size_t max_reply_bytes) : max_(max_reply_bytes) {}

void ReplyParser::feed(std::string_view bytes) { buffer_.append(bytes); }

std::optional<Reply> ReplyParser::next() {
    Reply reply;
    std::size_t pos = 0;
    while (true) {
        std::size_t lf = buffer_.find('\n', pos);
        if (lf == std::string::npos ? buffer_.size() > max_ : lf + 1 > max_)
            throw std::runtime_error("upstream reply longer than " + std::to_string(max_) + " bytes");
        if (lf == std::string::npos) return std::nullopt;
        // RFC 5321 4.2 wants CRLF; a bare LF from a sloppy server is harmless on the client side.
        std::size_t end = (lf > pos && buffer_[lf - 1] == '\r') ? lf - 1 : lf;
        std::string_view line(buffer_.data() + pos, end - pos);
        // Reply-code = %x32-35 %x30-35 %x30-39 (RFC 5321 4.2); the first digit 1 is tolerated.
        if (line.size() < 3 || line[0] < '1' || line[0] > '5' || line[1] < '0' || line[1] > '5' ||
            !is_digit(line[2]))
            throw std::runtime_error("malformed upstream reply line (no reply code)");
        int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
        if (line.size() > 3 && line[3] != ' ' && line[3] != '-')
            throw std::runtime_error("malformed upstream reply line (bad separator after code)");
        if (reply.code != 0 && code != reply.code)
            throw std::runtime_error("upstream multi-line reply changes its code from " +
                                     std::to_string(reply.code) + " to " + std::to_string(code));
        reply.code = code;
        reply.lines.emplace_back(line.size() > 4 ? line.substr(4) : std::string_view{});
        pos = lf + 1;
        if (line.size() == 3 || line[3] == ' ') {  // "250" alone is the last line too
            buffer_.erase(0, pos);
            return reply;
        }
    }
}

void DotStuffer::stuff(std::string_view chunk, std::string& out) {
    std::size_t pos = 0;
    while (pos < chunk.size()) {
        if (at_line_start_ && chunk[pos] == '.') out.push_back('.');
        const void* found = std::memchr(chunk.data() + pos, '\n', chunk.size() - pos);
        std::size_t end = found ? static_cast<std::size_t>(static_cast<const char*>(found) - chunk.data()) + 1
                                : chunk.size();
        out.append(chunk.data() + pos, end - pos);
        // A line starts after every LF, bare or not: with CRLF text (all the spool holds) this is
        // exactly RFC 5321 4.5.2, and a stray "<LF>.<CR><LF>" can never end the data early at a
        // receiver that accepts bare LF (the "SMTP smuggling" family of bugs).
        if (found) {
            bool cr_before = end - pos >= 2 ? chunk[end - 2] == '\r' : last_was_cr_;
            ended_with_crlf_ = cr_before;
            at_line_start_ = true;
        } else {
            ended_with_crlf_ = false;
            at_line_start_ = false;
        }
        last_was_cr_ = chunk[end - 1] == '\r';
        pos = end;
    }
}

std::string_view DotStuffer::finish() const { return ended_with_crlf_ ? ".\r\n" : "\r\n.\r\n"; }

}  // namespace relay::smtp
