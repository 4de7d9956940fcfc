// Parsing of the loopback redirect URI (see redirect_uri.hpp). RFC 8252 section 7.3 asks for plain
// http:// on a loopback IP literal or "localhost"; RFC 3986 section 3.2.2 brackets IPv6 literals.
#include "conf/redirect_uri.hpp"

#include <charconv>

#include "conf/config_detail.hpp"

namespace relay::conf {

std::string LoopbackRedirect::with_port(std::uint16_t p) const {
    const bool v6 = host.find(':') != std::string::npos;
    std::string uri = "http://" + (v6 ? "[" + host + "]" : host);
    if (p != 0) uri += ":" + std::to_string(p);
    return uri + path;
}

std::optional<LoopbackRedirect> parse_loopback_redirect(std::string_view uri) {
    constexpr std::string_view scheme = "http://";
    if (!uri.starts_with(scheme)) return std::nullopt;
    std::string_view rest = uri.substr(scheme.size());
    if (rest.find_first_of("?#@ \t\r\n") != std::string_view::npos) return std::nullopt;
    const auto slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    LoopbackRedirect result;
    result.path = slash == std::string_view::npos ? "" : std::string(rest.substr(slash));
    std::string_view port_text;
    if (authority.starts_with('[')) {
        const auto close = authority.find(']');
        if (close == std::string_view::npos) return std::nullopt;
        result.host = std::string(authority.substr(1, close - 1));
        std::string_view after = authority.substr(close + 1);
        if (!after.empty() && !after.starts_with(':')) return std::nullopt;
        port_text = after.empty() ? after : after.substr(1);
        if (result.host.find(':') == std::string::npos) return std::nullopt;
    } else {
        const auto colon = authority.find(':');
        result.host = std::string(authority.substr(0, colon));
        if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
        if (colon != std::string_view::npos && port_text.empty()) return std::nullopt;
    }
    if (result.host.empty() || !detail::is_loopback_host(result.host)) return std::nullopt;
    if (!port_text.empty()) {
        unsigned value = 0;
        auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
        if (ec != std::errc{} || end != port_text.data() + port_text.size() || value == 0 || value > 65535)
            return std::nullopt;
        result.port = static_cast<std::uint16_t>(value);
    }
    return result;
}

}  // namespace relay::conf
