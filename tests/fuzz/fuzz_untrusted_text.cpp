// Fuzzes what the relay shows of untrusted bytes (issue 13, item 7): escape_for_terminal and every
// log format must give valid UTF-8 without a control character whatever comes in (JSON lines
// escape controls as \u00NN), the JSON line must parse, and its value must be the input itself
// when the input was well-formed UTF-8.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <boost/json/parse.hpp>

#include "relay/core/log.hpp"
#include "relay/core/untrusted_text.hpp"

namespace {

using relay::core::is_control;
using relay::core::utf8_sequence;

// Valid UTF-8; when `controls_allowed` is false, also free of C0/DEL/C1 (a tab too unless allowed).
bool clean(std::string_view s, bool allow_tab) {
    for (std::size_t i = 0; i < s.size();) {
        char32_t cp = 0;
        const std::size_t n = utf8_sequence(s, i, &cp);
        if (n == 0) return false;
        if (is_control(cp) && !(allow_tab && cp == '\t')) return false;
        i += n;
    }
    return true;
}

bool valid_utf8(std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        const std::size_t n = utf8_sequence(s, i);
        if (n == 0) return false;
        i += n;
    }
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    if (!clean(relay::core::escape_for_terminal(input), /*allow_tab=*/true)) std::abort();
    if (!clean(relay::core::escape_for_terminal(input, false), /*allow_tab=*/false)) std::abort();
    if (!clean(relay::log::format_line(relay::log::Level::info, "x", {{"v", input}}), false)) std::abort();
    const std::string json = relay::log::format_json("t", relay::log::Level::info, "x", {{"v", input}});
    if (!clean(json, false)) std::abort();
    boost::system::error_code ec;
    boost::json::value parsed = boost::json::parse(json, ec);
    if (ec || !parsed.is_object()) std::abort();
    if (valid_utf8(input) && parsed.as_object().at("v").as_string() != input) std::abort();
    return 0;
}
