// The body of a stored message as the upstream transports read it: in chunks, so a 35 MB message
// never sits in memory, and rewindable for a retry on the same session.
#pragma once

#include <cstddef>

namespace relay {

// Supplies the stored message body (CRLF lines, not dot-stuffed) in chunks.
class BodyReader {
public:
    virtual ~BodyReader() = default;
    // Fills up to `size` bytes; returns 0 at the end. Throws std::system_error on read failure.
    virtual std::size_t read(char* buffer, std::size_t size) = 0;
    // Start again from the beginning (a retry on the same session).
    virtual void rewind() = 0;
};

}  // namespace relay
