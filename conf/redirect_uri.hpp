// The loopback redirect URI of the authorization code flow (RFC 8252 section 7.3): where the
// browser is sent back with `code` after the user signs in. Only loopback addresses are allowed, so
// the code never leaves the machine that runs `authorize`; Microsoft and Google ignore the port of a
// loopback redirect when they match it against the registered one, so the port may be left out and
// `authorize` picks a free one. Pure parsing; config.cpp validates the key with it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace relay::conf {

struct LoopbackRedirect {
    std::string host;        // "localhost", "127.0.0.1" or "::1" (no brackets)
    std::uint16_t port = 0;  // 0: none given, pick a free one
    std::string path;        // "" or "/..." exactly as written (it must match the registration)

    // The URI as sent to the provider, with `port` (0: without a port).
    std::string with_port(std::uint16_t port) const;
};

// "http://localhost", "http://localhost:8400/", "http://127.0.0.1/cb"; nullopt for anything that is
// not http://, not a loopback host, or carries userinfo, a query or a fragment.
std::optional<LoopbackRedirect> parse_loopback_redirect(std::string_view uri);

}  // namespace relay::conf
