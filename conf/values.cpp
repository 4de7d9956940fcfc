// The pure value grammar of the configuration: durations, host:port, CIDR blocks and enum names,
// plus the small methods of the config structs. No TOML and no I/O here, so every rule can be
// tested with plain strings; config.cpp decides where each value comes from and reports errors.
#include <algorithm>
#include <cctype>
#include <charconv>
#include <limits>
#include <numeric>
#include <vector>

#include "conf/config.hpp"
#include "conf/config_detail.hpp"

namespace relay::conf {
namespace {

namespace ip = boost::asio::ip;

// Digits only: no sign, no spaces, no "0x"; nullopt when empty or too large for T.
template <class T>
std::optional<T> parse_unsigned(std::string_view digits) {
    if (digits.empty() || !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return std::nullopt;
    T value{};
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (ec != std::errc{} || end != digits.data() + digits.size()) return std::nullopt;
    return value;
}

std::optional<ip::address> parse_address(std::string_view text) {
    boost::system::error_code ec;
    auto address = ip::make_address(std::string(text), ec);
    // A scope id ("fe80::1%eth0") names an interface, not an address: not meaningful in this file.
    if (ec || (address.is_v6() && address.to_v6().scope_id() != 0)) return std::nullopt;
    return address;
}

// Clears every bit after the first `prefix` bits of a big-endian byte string.
template <class Bytes>
Bytes mask_bytes(Bytes bytes, unsigned prefix) {
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        const unsigned kept = prefix > 8 * i ? std::min(8u, prefix - static_cast<unsigned>(8 * i)) : 0u;
        bytes[i] &= static_cast<unsigned char>(kept == 0 ? 0 : 0xFFu << (8 - kept));
    }
    return bytes;
}

ip::address masked(const ip::address& a, unsigned prefix) {
    if (a.is_v4()) return ip::address_v4(mask_bytes(a.to_v4().to_bytes(), prefix));
    return ip::address_v6(mask_bytes(a.to_v6().to_bytes(), prefix));
}

// Dual-stack sockets report IPv4 peers as ::ffff:a.b.c.d; treat them as the IPv4 address they are.
ip::address unmapped(const ip::address& a) {
    if (a.is_v6() && a.to_v6().is_v4_mapped()) return ip::make_address_v4(ip::v4_mapped, a.to_v6());
    return a;
}

}  // namespace

namespace detail {

bool is_host_name(std::string_view text) {
    if (text.empty() || text.size() > 253 || text.front() == '.' || text.front() == '-') return false;
    return std::all_of(text.begin(), text.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
               c == '.' || c == '_';
    });
}

bool is_loopback_host(std::string_view host) {
    std::string lower(host);
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
    if (lower == "localhost" || lower == "localhost.") return true;
    auto address = parse_address(host);
    return address && unmapped(*address).is_loopback();
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> row(b.size() + 1);
    std::iota(row.begin(), row.end(), std::size_t{0});
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diagonal = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t above = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
            diagonal = above;
        }
    }
    return row[b.size()];
}

}  // namespace detail

std::string HostPort::to_string() const {
    const bool v6 = host.find(':') != std::string::npos;
    return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

bool Network::contains(const boost::asio::ip::address& candidate) const {
    ip::address a = unmapped(candidate);
    if (base.is_v4() != a.is_v4()) {
        if (base.is_v4()) return false;  // an IPv6 peer never matches an IPv4 block
        a = ip::make_address_v6(ip::v4_mapped, a.to_v4());  // lets ::ffff:0:0/96 match IPv4 peers
    }
    return masked(a, prefix) == base;
}

std::string Network::to_string() const { return base.to_string() + "/" + std::to_string(prefix); }

const Account* Config::find_account(const std::string& name) const {
    auto it = accounts.find(name);
    return it == accounts.end() ? nullptr : &it->second;
}

const User* Config::find_user(const std::string& name) const {
    auto it = std::find_if(users.begin(), users.end(), [&](const User& u) { return u.name == name; });
    return it == users.end() ? nullptr : &*it;
}

static std::string join_lines(const std::vector<std::string>& lines) {
    std::string joined;
    for (const auto& line : lines) joined += (joined.empty() ? "" : "\n") + line;
    return joined;
}

ConfigError::ConfigError(std::vector<std::string> errors)
    : std::runtime_error(join_lines(errors)), errors_(std::move(errors)) {}

std::optional<std::chrono::seconds> parse_duration(std::string_view text) {
    std::int64_t unit = 1;
    if (!text.empty()) {
        switch (text.back()) {
        case 's': unit = 1; break;
        case 'm': unit = 60; break;
        case 'h': unit = 3600; break;
        case 'd': unit = 86400; break;
        default: unit = 0; break;  // no suffix: plain seconds
        }
        if (unit != 0) text.remove_suffix(1);
        else unit = 1;
    }
    auto count = parse_unsigned<std::int64_t>(text);
    if (!count || *count > std::numeric_limits<std::int64_t>::max() / unit) return std::nullopt;
    return std::chrono::seconds(*count * unit);
}

std::optional<HostPort> parse_host_port(std::string_view text) {
    std::string_view host, port_text;
    if (text.starts_with('[')) {
        // RFC 3986 3.2.2: an IPv6 literal is bracketed so its colons are not taken for the port's.
        const auto close = text.find(']');
        if (close == std::string_view::npos || text.substr(close + 1, 1) != ":") return std::nullopt;
        host = text.substr(1, close - 1);
        port_text = text.substr(close + 2);
        auto address = parse_address(host);
        if (!address || !address->is_v6()) return std::nullopt;
        auto port = parse_unsigned<std::uint16_t>(port_text);
        if (!port || *port == 0) return std::nullopt;
        return HostPort{address->to_string(), *port};
    }
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (!detail::is_host_name(host)) return std::nullopt;  // also refuses an unbracketed IPv6 address
    auto port = parse_unsigned<std::uint16_t>(port_text);
    if (!port || *port == 0) return std::nullopt;
    auto address = parse_address(host);
    return HostPort{address ? address->to_string() : std::string(host), *port};
}

std::optional<Network> parse_network(std::string_view text) {
    const auto slash = text.find('/');
    auto address = parse_address(text.substr(0, slash));
    if (!address) return std::nullopt;
    const unsigned bits = address->is_v4() ? 32 : 128;
    unsigned prefix = bits;  // a bare address is a block of one
    if (slash != std::string_view::npos) {
        auto parsed = parse_unsigned<unsigned>(text.substr(slash + 1));
        if (!parsed || *parsed > bits) return std::nullopt;
        prefix = *parsed;
    }
    // "10.1.2.3/8" is accepted as the 10.0.0.0/8 it must mean.
    return Network{masked(*address, prefix), prefix};
}

template <class E>
static std::string_view name_of(E value) {
    for (const auto& [name, enumerator] : detail::names_of(value))
        if (enumerator == value) return name;
    return "?";
}

std::string_view to_string(Provider p) { return name_of(p); }
std::string_view to_string(UpstreamTls t) { return name_of(t); }
std::string_view to_string(UpstreamAuth a) { return name_of(a); }
std::string_view to_string(AuthMode m) { return name_of(m); }
std::string_view to_string(Cloud c) { return name_of(c); }
std::string_view to_string(DeliveryMode m) { return name_of(m); }
std::string_view to_string(TransportKind t) { return name_of(t); }
std::string_view to_string(RewriteSender r) { return name_of(r); }

bool is_known_sender(const Account& account, std::string_view address) {
    const auto same = [address](std::string_view known) {
        return known.size() == address.size() &&
               std::equal(known.begin(), known.end(), address.begin(), [](char x, char y) {
                   return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
               });
    };
    if (address.empty()) return false;
    return same(account.email) || std::any_of(account.send_as.begin(), account.send_as.end(), same);
}

std::uint64_t message_size_limit(const RelaySettings& relay, const Account& account) {
    if (account.transport == TransportKind::graph) return std::min(relay.max_message_size, kGraphMaxMessageSize);
    return relay.max_message_size;
}

ProviderSizeLimit provider_size_limit(const Account& account) {
    if (account.transport == TransportKind::graph)
        return {kGraphMaxMessageSize, "Microsoft Graph caps a sendMail request at 4 MB of base64 text"};
    const std::string& host = account.upstream.host;
    const auto ends_with = [&](std::string_view suffix) {
        return host.size() >= suffix.size() &&
               std::equal(suffix.rbegin(), suffix.rend(), host.rbegin(),
                          [](char a, char b) { return a == std::tolower(static_cast<unsigned char>(b)); });
    };
    if (ends_with("office365.com") || ends_with("office365.us") || ends_with("outlook.com") ||
        ends_with("outlook.cn"))
        return {kExchangeDefaultMaxSendSize, "Exchange Online's default send limit (35 MB) for SMTP submission"};
    if (ends_with("gmail.com") || ends_with("googlemail.com"))
        return {kGmailMaxMessageSize, "Gmail's advertised SIZE"};
    return {};
}
std::string_view to_string(LogLevel l) { return name_of(l); }
std::string_view to_string(LogFormat f) { return name_of(f); }

}  // namespace relay::conf
