// DATA framing (RFC 5321 4.1.1.4, 4.5.2): a byte-driven state machine that survives feed() splits at
// any position. Only CR LF "." CR LF ends the data; a bare CR or LF never starts a line that could
// end it, which is what keeps SMTP smuggling (CVE-2023-51764, CVE-2023-51766) out. Content is passed
// on as slices of the caller's buffer; only the few bytes that change (the removed stuffing dot, a CR
// held back across feeds, normalized newlines) break a slice. A NUL is an error in every mode: it is
// never valid in mail (RFC 5322 3.5), and removing it would change the content unseen. Every error is recorded at the byte that
// causes it, after flushing what precedes it, so the result does not depend on how input was split.
#include "relay/smtp/data_decoder.hpp"

#include "relay/smtp/replies.hpp"

namespace relay::smtp {
namespace {

enum State : int {
    line_start = 0,   // after a real CRLF (or the DATA line's CRLF): a "." here may end the data
    soft_line_start,  // after a bare CR/LF: a "." is unstuffed but can never end the data
    dot,              // line_start then "."
    dot_cr,           // line_start "." CR: an LF now ends the data
    text,             // inside a line
    cr,               // text then CR: an LF now ends the line
};

}  // namespace

DataDecoder::DataDecoder(DataLimits limits) : limits_(limits) {}

void DataDecoder::fail(DataError error) {
    if (error_ == DataError::none) error_ = error;
}

// Counts decoded bytes and writes them while no error is set, never past max_message_size.
void DataDecoder::account(std::string_view bytes, DataOutput& out) {
    if (bytes.empty()) return;
    const std::uint64_t before = size_;
    size_ += bytes.size();
    if (error_ != DataError::none) return;
    if (size_ > limits_.max_message_size) {
        const std::uint64_t room = limits_.max_message_size - before;
        if (room > 0) out.write(bytes.substr(0, static_cast<std::size_t>(room)));
        error_ = DataError::too_big;
        return;
    }
    out.write(bytes);
}

std::size_t DataDecoder::feed(std::string_view in, DataOutput& out) {
    if (finished_) return 0;
    const std::size_t n = in.size();
    const std::size_t max_content = limits_.max_line_length > 2 ? limits_.max_line_length - 2 : 0;
    const bool normalize = limits_.normalize_bare_newlines;
    std::size_t i = 0;
    std::size_t slice = 0;   // start of the pending, not yet written slice of `in`
    unsigned char high = 0;
    auto flush = [&](std::size_t end) {
        if (end > slice) account(in.substr(slice, end - slice), out);
        slice = end;
    };
    // The CR before `i` had no LF after it (RFC 5321 2.3.8: CR and LF only as a pair).
    auto bare_cr = [&] {
        if (normalize) {
            if (cr_held_) {
                account("\r\n", out);
            } else {
                flush(i);
                account("\n", out);
            }
        } else {
            if (!cr_held_ && i > 0) flush(i - 1);
            fail(DataError::bare_newline);
        }
        slice = i;
        cr_held_ = false;
        line_length_ = 0;
        state_ = soft_line_start;
    };
    auto bare_lf = [&] {
        flush(i);
        if (normalize)
            account("\r\n", out);
        else
            fail(DataError::bare_newline);
        slice = i + 1;
        line_length_ = 0;
        state_ = soft_line_start;
    };

    while (i < n) {
        const char c = in[i];
        switch (state_) {
        case line_start:
            if (c == '.') {
                flush(i);   // the stuffing dot (or the terminator's dot) is not content
                slice = i + 1;
                state_ = dot;
                ++i;
            } else {
                state_ = text;
            }
            break;
        case soft_line_start:
            if (c == '.') {
                flush(i);
                slice = i + 1;
                ++i;
            }
            state_ = text;
            break;
        case dot:
            if (c == '\r') {
                state_ = dot_cr;
                ++i;
            } else {
                state_ = text;
            }
            break;
        case text: {
            std::size_t j = i;
            bool nul = false;
            while (j < n && in[j] != '\r' && in[j] != '\n') {
                high |= static_cast<unsigned char>(in[j]);
                nul |= in[j++] == '\0';
            }
            if (error_ == DataError::none) {
                // The earlier of the two offending bytes decides, wherever the input was split.
                constexpr std::size_t none = std::string_view::npos;
                const std::size_t nul_at = nul ? i + in.substr(i, j - i).find('\0') : none;
                const std::size_t long_at = line_length_ + (j - i) > max_content ? i + (max_content - line_length_) : none;
                if (nul_at != none && nul_at <= long_at) {
                    flush(nul_at);
                    fail(DataError::nul_byte);
                } else if (long_at != none) {
                    flush(long_at);   // up to, not including, the first byte too many
                    fail(DataError::line_too_long);
                }
            }
            line_length_ += j - i;
            i = j;
            if (i == n) break;
            if (in[i] == '\r') {
                state_ = cr;
                ++i;
            } else {
                bare_lf();
                ++i;
            }
            break;
        }
        case cr:
        case dot_cr:
            if (c == '\n') {
                if (state_ == dot_cr) {
                    // CRLF "." CRLF: the end of data. The ".\r\n" is not part of the message.
                    finished_ = true;
                    cr_held_ = false;
                    if (high & 0x80) saw_8bit_ = true;
                    return i + 1;
                }
                if (cr_held_) {
                    account("\r", out);
                    cr_held_ = false;
                }
                line_length_ = 0;
                state_ = line_start;
                ++i;
            } else {
                bare_cr();   // re-examines this byte in soft_line_start
            }
            break;
        }
    }
    if (high & 0x80) saw_8bit_ = true;
    // A CR at the very end may still become half of a CRLF (or of CRLF.CRLF): hold it back.
    if ((state_ == cr || state_ == dot_cr) && !cr_held_ && n > 0) {
        flush(n - 1);
        cr_held_ = true;
    } else {
        flush(n);
    }
    return n;
}

std::string_view DataDecoder::reply_for(DataError error) {
    switch (error) {
    case DataError::none: return {};
    case DataError::too_big: return replies::kMessageTooBig;
    case DataError::line_too_long: return replies::kDataLineTooLong;
    case DataError::bare_newline: return replies::kBareNewline;
    case DataError::nul_byte: return replies::kNulInData;
    }
    return {};
}

}  // namespace relay::smtp
