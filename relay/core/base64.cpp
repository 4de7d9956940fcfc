// RFC 4648 base64 (section 4) and base64url (section 5). Decoding is strict because SASL peers
// (RFC 4954 section 4) must reject malformed input rather than guess: no whitespace, no missing or
// misplaced padding, no non-zero pad bits (RFC 4648 section 3.5 allows rejecting those).
#include "relay/core/base64.hpp"

#include <array>
#include <cstdint>

namespace relay::core {
namespace {

constexpr char kStandard[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr char kUrl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string encode(std::string_view bytes, const char* alphabet, bool pad) {
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 3 <= bytes.size(); i += 3) {
        std::uint32_t v = (std::uint8_t(bytes[i]) << 16) | (std::uint8_t(bytes[i + 1]) << 8) |
                          std::uint8_t(bytes[i + 2]);
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
        out += alphabet[(v >> 6) & 63];
        out += alphabet[v & 63];
    }
    std::size_t rest = bytes.size() - i;
    if (rest == 1) {
        std::uint32_t v = std::uint8_t(bytes[i]) << 16;
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
        if (pad) out += "==";
    } else if (rest == 2) {
        std::uint32_t v = (std::uint8_t(bytes[i]) << 16) | (std::uint8_t(bytes[i + 1]) << 8);
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
        out += alphabet[(v >> 6) & 63];
        if (pad) out += '=';
    }
    return out;
}

constexpr std::array<std::int8_t, 256> make_decode_table() {
    std::array<std::int8_t, 256> t{};
    for (auto& v : t) v = -1;
    for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(kStandard[i])] = static_cast<std::int8_t>(i);
    return t;
}
constexpr auto kDecode = make_decode_table();

}  // namespace

std::string base64_encode(std::string_view bytes) { return encode(bytes, kStandard, true); }
std::string base64url_encode(std::string_view bytes) { return encode(bytes, kUrl, false); }

std::optional<std::string> base64_decode(std::string_view text) {
    if (text.size() % 4 != 0) return std::nullopt;
    std::size_t padding = 0;
    if (!text.empty() && text.back() == '=') padding = (text[text.size() - 2] == '=') ? 2 : 1;
    std::string out;
    out.reserve(text.size() / 4 * 3);
    for (std::size_t i = 0; i < text.size(); i += 4) {
        bool last = i + 4 == text.size();
        std::size_t pads_here = last ? padding : 0;
        std::uint32_t v = 0;
        for (std::size_t j = 0; j < 4; ++j) {
            v <<= 6;
            if (j >= 4 - pads_here) continue;  // a '=' slot, checked by the padding count above
            std::int8_t d = kDecode[static_cast<unsigned char>(text[i + j])];
            if (d < 0) return std::nullopt;    // also catches '=' anywhere else
            v |= static_cast<std::uint32_t>(d);
        }
        out += static_cast<char>((v >> 16) & 0xff);
        if (pads_here == 2) {
            if (v & 0xffff) return std::nullopt;  // non-canonical: pad bits set
            break;
        }
        out += static_cast<char>((v >> 8) & 0xff);
        if (pads_here == 1) {
            if (v & 0xff) return std::nullopt;
            break;
        }
        out += static_cast<char>(v & 0xff);
    }
    return out;
}

}  // namespace relay::core
