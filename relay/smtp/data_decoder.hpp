// The one DATA framing function (RFC 5321 4.1.1.4, 4.5.2). It turns the dot-stuffed wire form into
// the message as stored: CRLF is the only line end and the end of data is exactly CRLF "." CRLF.
// A bare CR or bare LF anywhere is an error (or, by opt-in, normalized to CRLF), so a crafted body
// can never carry a second, smuggled end of data (CVE-2023-51764 and friends). Errors are sticky:
// the decoder keeps consuming to the real end of data, then the session answers once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace relay::smtp {

// The longest text line (CRLF included) a lenient client may send: ERP systems and Microsoft's own
// tools write whole HTML documents on one line, and Postfix accepts any length (it splits long
// lines into records). 1 MiB is the most max_line_length allows; beyond it a "line" is a binary
// blob sent without encoding, not text. Delivery re-encodes lines over 998 (RFC 5321 4.5.3.1.6).
inline constexpr std::size_t kLenientMaxLineLength = 1048576;

struct DataLimits {
    std::uint64_t max_message_size = 36700160;   // decoded bytes; beyond it: too_big
    std::size_t max_line_length = 1000;          // including CRLF (RFC 5321 4.5.3.1.6)
    bool normalize_bare_newlines = false;        // true: bare CR / bare LF become CRLF
};

enum class DataError {
    none,
    too_big,          // 552 5.3.4
    line_too_long,    // 500 5.5.2 (sticky, answered at end of data)
    bare_newline,     // 550 5.5.2 bare CR or LF
    nul_byte,         // 554 5.6.0 a NUL anywhere in the message, in every mode
};

// Receives decoded body bytes. Slices point into the input passed to feed() where possible.
class DataOutput {
public:
    virtual ~DataOutput() = default;
    virtual void write(std::string_view bytes) = 0;
};

class DataDecoder {
public:
    explicit DataDecoder(DataLimits limits);

    // Consumes bytes of the DATA phase. Returns how many bytes were used: all of `in` unless the
    // end of data was reached, in which case the count stops right after the final CRLF.CRLF and
    // finished() becomes true. Decoded bytes (at most max_message_size, and none once an error is
    // set) go to `out`. The terminating ".\r\n" is not part of the message; the CRLF before it is.
    std::size_t feed(std::string_view in, DataOutput& out);

    bool finished() const { return finished_; }
    DataError error() const { return error_; }
    std::uint64_t size() const { return size_; }       // decoded bytes seen so far (counted past the limit)
    bool saw_8bit() const { return saw_8bit_; }

    // Reply line (without CRLF) for error(), e.g. "552 5.3.4 Message size exceeds fixed maximum message size".
    static std::string_view reply_for(DataError error);

private:
    DataLimits limits_;
    // Decoder state lives here; the implementation defines what it needs.
    int state_ = 0;
    std::size_t line_length_ = 0;
    std::uint64_t size_ = 0;
    DataError error_ = DataError::none;
    bool finished_ = false;
    bool saw_8bit_ = false;
    bool cr_held_ = false;   // a CR ended the previous feed() and was not written yet

    void account(std::string_view bytes, DataOutput& out);
    void fail(DataError error);
};

}  // namespace relay::smtp
