// Fuzzes the DATA framer, fed in random chunks, and checks it differentially against the obvious
// definition: the data ends right after the first CRLF "." CRLF (the CRLF of the DATA command line
// counts as the first CRLF), and the message is the bytes before the final ".\r\n" with one leading
// dot removed from each line. Either bare-newline mode must give the same boundary (no smuggling),
// and the output must never hold a bare CR or LF.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <fuzzer/FuzzedDataProvider.h>

#include "relay/smtp/data_decoder.hpp"

namespace {

using namespace relay::smtp;

struct Collect final : DataOutput {
    std::string bytes;
    void write(std::string_view b) override { bytes.append(b); }
};

// The trivial splitter: where the data ends (bytes consumed), or npos.
std::size_t trivial_end(std::string_view input) {
    const std::string framed = "\r\n" + std::string(input);
    const std::size_t at = framed.find("\r\n.\r\n");
    return at == std::string::npos ? std::string::npos : at + 5 - 2;
}

std::string trivial_message(std::string_view input, std::size_t end) {
    const std::string_view body = input.substr(0, end - 3);   // drop ".\r\n"
    std::string out;
    std::size_t pos = 0;
    while (pos < body.size()) {
        std::size_t eol = body.find("\r\n", pos);
        eol = eol == std::string_view::npos ? body.size() : eol + 2;
        std::string_view line = body.substr(pos, eol - pos);
        if (!line.empty() && line[0] == '.') line.remove_prefix(1);
        out.append(line);
        pos = eol;
    }
    return out;
}

bool has_bare_newline(std::string_view s) {
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\r' && (i + 1 == s.size() || s[i + 1] != '\n')) return true;
        if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')) return true;
    }
    return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider provider(data, size);
    DataLimits limits;
    limits.normalize_bare_newlines = provider.ConsumeBool();
    limits.max_line_length = provider.ConsumeIntegralInRange<std::size_t>(3, 2000);
    limits.max_message_size = provider.ConsumeIntegralInRange<std::uint64_t>(0, 1 << 16);
    const std::string chunks_seed = provider.ConsumeBytesAsString(16);
    const std::string input = provider.ConsumeRemainingBytesAsString();

    DataDecoder decoder(limits);
    Collect out;
    std::size_t consumed = 0, chunk_index = 0;
    while (consumed < input.size() && !decoder.finished()) {
        std::size_t chunk = input.size() - consumed;
        if (chunk_index < chunks_seed.size())
            chunk = std::min<std::size_t>(chunk, 1 + static_cast<unsigned char>(chunks_seed[chunk_index++]) % 64);
        const std::size_t used = decoder.feed(std::string_view(input).substr(consumed, chunk), out);
        if (used > chunk) std::abort();
        if (used < chunk && !decoder.finished()) std::abort();   // only the end of data stops early
        consumed += used;
    }

    const std::size_t expected_end = trivial_end(input);
    if (decoder.finished() != (expected_end != std::string::npos)) std::abort();
    if (decoder.finished() && consumed != expected_end) std::abort();
    // The size limit may cut a CRLF in half; such a message is refused (552) and discarded anyway.
    if (decoder.error() != DataError::too_big && has_bare_newline(out.bytes)) std::abort();
    if (out.bytes.size() > limits.max_message_size) std::abort();
    if (decoder.finished() && decoder.error() == DataError::none && !limits.normalize_bare_newlines &&
        out.bytes != trivial_message(input, expected_end))
        std::abort();
    return 0;
}
