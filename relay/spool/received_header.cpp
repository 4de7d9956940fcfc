// The Received header; see received_header.hpp.
#include "relay/spool/received_header.hpp"

#include <algorithm>
#include <ctime>

#include <fmt/format.h>

namespace relay {
namespace {

constexpr std::size_t kMaxHelo = 64;
constexpr std::size_t kMaxAddress = 320;   // RFC 5321 4.5.3.1: 64 + @ + 255

bool printable(char c) { return c > 0x20 && c < 0x7f; }

// Characters a structured field cannot carry as they are: comment and literal delimiters, and ';',
// which would end the clause list before the date.
bool structural(char c) { return c == '(' || c == ')' || c == ';' || c == '\\' || c == '[' || c == ']'; }

std::string clean(std::string_view text, std::size_t limit, bool allow_structural) {
    std::string out;
    for (char c : text) {
        if (out.size() >= limit) break;
        if (!printable(c)) out += '?';
        else if (!allow_structural && structural(c)) out += '_';
        else out += c;
    }
    return out;
}

// [192.0.2.1] or [IPv6:2001:db8::1] (RFC 5321 4.1.3 address literals).
std::string address_literal(std::string_view address) {
    std::string a = clean(address, 64, false);
    if (a.empty()) return "[unknown]";
    return a.find(':') != std::string::npos ? "[IPv6:" + a + "]" : "[" + a + "]";
}

// An RFC 5321 4.1.3 address literal: "[192.0.2.1]" or "[IPv6:2001:db8::1]". Many devices say
// EHLO with one (smtplib, Thunderbird and printers without a host name do); it is kept as it is,
// as Postfix writes it, rather than shown as "_192.0.2.1_".
bool is_address_literal(std::string_view helo) {
    if (helo.size() < 3 || helo.size() > kMaxHelo || helo.front() != '[' || helo.back() != ']') return false;
    const std::string_view inner = helo.substr(1, helo.size() - 2);
    return std::all_of(inner.begin(), inner.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == '.' || c == ':' ||
               c == 'I' || c == 'P' || c == 'v';
    });
}

}  // namespace

std::string sanitize_helo(std::string_view helo) {
    if (is_address_literal(helo)) return std::string(helo);
    std::string out = clean(helo, kMaxHelo, false);
    return out.empty() ? "unknown" : out;
}

std::optional<bool> starts_with_header(std::string_view data) {
    if (data.empty()) return std::nullopt;
    if (data.front() == '\r') return data.size() < 2 ? std::nullopt : std::optional<bool>(data[1] == '\n');
    // A field name (RFC 5322 3.6.8: printable ASCII but ':') of at most a line's length, then ':'.
    for (std::size_t i = 0; i < data.size() && i <= 998; ++i) {
        const char c = data[i];
        if (c == ':') return i > 0;
        if (!printable(c)) return false;
    }
    return data.size() > 998 ? std::optional<bool>(false) : std::nullopt;
}

std::string rfc5322_date(std::chrono::system_clock::time_point when) {
    static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    const std::time_t t = std::chrono::system_clock::to_time_t(when);
    std::tm tm{};
    gmtime_r(&t, &tm);
    return fmt::format("{}, {:02} {} {} {:02}:{:02}:{:02} +0000", kDays[tm.tm_wday], tm.tm_mday, kMonths[tm.tm_mon],
                       tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

std::string received_header(const Envelope& envelope, std::string_view by_host, std::string_view queue_id,
                            std::chrono::system_clock::time_point when) {
    std::string out = "Received: ";
    if (envelope.protocol.empty())
        out += fmt::format("from local (user {})", sanitize_helo(envelope.helo));
    else
        out += fmt::format("from {} ({})", sanitize_helo(envelope.helo), address_literal(envelope.client_address));
    out += fmt::format("\r\n\tby {} (smtp-oauth2-relay) with {}", clean(by_host, 255, false),
                       envelope.protocol.empty() ? std::string("local") : clean(envelope.protocol, 16, false));
    if (!queue_id.empty()) out += " id " + clean(queue_id, 64, false);
    if (envelope.rcpt_to.size() == 1) out += fmt::format("\r\n\tfor <{}>", clean(envelope.rcpt_to.front(), kMaxAddress, true));
    // RFC 5322 2.1.1: lines of at most 78 characters where possible; the date folds onto its own line.
    const std::string date = rfc5322_date(when);
    const std::size_t last_line = out.size() - (out.rfind('\n') == std::string::npos ? 0 : out.rfind('\n') + 1);
    out += last_line + 2 + date.size() <= 78 ? "; " + date + "\r\n" : ";\r\n\t" + date + "\r\n";
    return out;
}

}  // namespace relay
