// Strict UTF-8 walking and terminal-safe escaping. See untrusted_text.hpp.
#include "relay/core/untrusted_text.hpp"

#include <fmt/format.h>

namespace relay::core {

std::size_t utf8_sequence(std::string_view text, std::size_t at, char32_t* code_point) {
    const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
    const unsigned char lead = byte(at);
    std::size_t length;
    char32_t value;
    char32_t minimum;
    if (lead < 0x80) {
        if (code_point) *code_point = lead;
        return 1;
    } else if (lead >= 0xC2 && lead <= 0xDF) {
        length = 2, value = lead & 0x1F, minimum = 0x80;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        length = 3, value = lead & 0x0F, minimum = 0x800;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        length = 4, value = lead & 0x07, minimum = 0x10000;
    } else {
        return 0;   // a continuation byte, C0/C1 (overlong two-byte leads) or F5..FF
    }
    if (text.size() - at < length) return 0;
    for (std::size_t i = 1; i < length; ++i) {
        const unsigned char c = byte(at + i);
        if ((c & 0xC0) != 0x80) return 0;
        value = (value << 6) | (c & 0x3F);
    }
    if (value < minimum || value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF)) return 0;
    if (code_point) *code_point = value;
    return length;
}

bool is_control(char32_t c) { return c < 0x20 || (c >= 0x7F && c <= 0x9F); }

std::string escape_for_terminal(std::string_view bytes, bool keep_tab) {
    std::string out;
    out.reserve(bytes.size());
    for (std::size_t i = 0; i < bytes.size();) {
        char32_t cp = 0;
        const std::size_t n = utf8_sequence(bytes, i, &cp);
        if (n > 0 && (!is_control(cp) || (keep_tab && cp == '\t'))) {
            out.append(bytes.substr(i, n));
            i += n;
            continue;
        }
        // Not shown as it is: every byte of it (one byte when malformed, two for a C1 control).
        const std::size_t take = n == 0 ? 1 : n;
        for (std::size_t k = 0; k < take; ++k) out += fmt::format("\\x{:02x}", static_cast<unsigned char>(bytes[i + k]));
        i += take;
    }
    return out;
}

}  // namespace relay::core
