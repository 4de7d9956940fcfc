// Recipient reconciliation, request URL and answer classification for Graph sendMail; see
// graph_mail.hpp for the rules and why.
#include "relay/delivery/graph_mail.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <set>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "auth/http_client.hpp"

namespace relay::graph {
namespace {

using namespace std::chrono_literals;

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
    return out;
}

std::string trim(std::string_view s) {
    const auto first = s.find_first_not_of(" \t\r\n");
    if (first == std::string_view::npos) return {};
    const auto last = s.find_last_not_of(" \t\r\n");
    return std::string(s.substr(first, last - first + 1));
}

// Removes comments "( ... )" outside quoted strings and returns the bare addr-spec of a mailbox:
// the part in <...> when there is one, else the whole text.
std::string address_of(std::string_view mailbox) {
    std::string plain;
    bool quoted = false;
    int depth = 0;
    for (std::size_t i = 0; i < mailbox.size(); ++i) {
        const char c = mailbox[i];
        if (quoted) {
            if (c == '\\' && i + 1 < mailbox.size()) plain += mailbox[++i];
            else if (c == '"') quoted = false, plain += c;
            else plain += c;
        } else if (depth > 0) {
            if (c == '\\') ++i;
            else if (c == '(') ++depth;
            else if (c == ')') --depth;
        } else if (c == '(') {
            ++depth;
        } else {
            if (c == '"') quoted = true;
            plain += c;
        }
    }
    const auto open = plain.rfind('<');
    if (open != std::string::npos) {
        const auto close = plain.find('>', open);
        return trim(std::string_view(plain).substr(open + 1, close == std::string::npos ? std::string::npos : close - open - 1));
    }
    std::string out;
    for (char c : plain)
        if (c != ' ' && c != '\t' && c != '\r' && c != '\n') out += c;
    return out;
}

struct Field {
    std::string name;     // as written
    std::string raw;      // the whole field, folded lines and final CRLF included
    std::string value() const {
        std::string v = raw.substr(name.size() + 1);
        std::string unfolded;
        for (char c : v)
            if (c != '\r' && c != '\n') unfolded += c;
        return unfolded;
    }
};

// The header's fields and where the body starts (after the empty line; the end when there is none).
std::vector<Field> split_header(std::string_view message, std::size_t& body_offset) {
    std::vector<Field> fields;
    std::size_t at = 0;
    body_offset = message.size();
    while (at < message.size()) {
        std::size_t eol = message.find("\r\n", at);
        const std::size_t line_end = eol == std::string_view::npos ? message.size() : eol + 2;
        std::string_view line = message.substr(at, line_end - at);
        if (line == "\r\n") {
            body_offset = line_end;
            break;
        }
        if ((line.front() == ' ' || line.front() == '\t') && !fields.empty()) {
            fields.back().raw += line;  // a folded continuation (RFC 5322 2.2.3)
        } else {
            const auto colon = line.find(':');
            std::string name = colon == std::string_view::npos ? std::string() : trim(line.substr(0, colon));
            Field f{name, std::string(line)};
            if (colon != std::string_view::npos) f.name = std::string(line.substr(0, colon));
            fields.push_back(std::move(f));
        }
        at = line_end;
    }
    return fields;
}

// "Name: a, b" folded so that no line passes 78 characters where an address allows a break.
std::string make_field(std::string_view name, const std::vector<std::string>& items) {
    std::string out(name);
    out += ':';
    std::size_t line = out.size();
    for (std::size_t i = 0; i < items.size(); ++i) {
        std::string piece = items[i] + (i + 1 < items.size() ? "," : "");
        if (line + 1 + piece.size() > 78 && i > 0) {
            out += "\r\n";
            line = 0;
        }
        out += ' ';
        out += piece;
        line += 1 + piece.size();
    }
    return out + "\r\n";
}

std::string clean_text(std::string_view text, std::size_t limit) {
    std::string out;
    for (unsigned char c : text) {
        if (out.size() >= limit) break;
        out += (c < 0x20 || c == 0x7f) ? ' ' : static_cast<char>(c);
    }
    return out;
}

std::optional<long long> parse_http_date(std::string_view value) {
    // IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT" (the form RFC 9110 requires senders to use).
    std::string text(value);
    std::tm tm{};
    const char* end = strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end || *end) return std::nullopt;
    return static_cast<long long>(timegm(&tm));
}

}  // namespace

std::vector<Mailbox> parse_address_list(std::string_view value) {
    // Split at top-level commas; a group "name: a, b;" contributes its members.
    std::vector<Mailbox> out;
    std::string current;
    bool quoted = false, in_angle = false;
    int depth = 0;
    auto flush = [&] {
        std::string text = trim(current);
        current.clear();
        if (text.empty()) return;
        std::string address = address_of(text);
        if (address.find('@') == std::string::npos) return;
        out.push_back({std::move(text), std::move(address)});
    };
    for (std::size_t i = 0; i < value.size(); ++i) {
        const char c = value[i];
        if (quoted) {
            current += c;
            if (c == '\\' && i + 1 < value.size()) current += value[++i];
            else if (c == '"') quoted = false;
            continue;
        }
        if (depth > 0) {
            current += c;
            if (c == '\\' && i + 1 < value.size()) current += value[++i];
            else if (c == '(') ++depth;
            else if (c == ')') --depth;
            continue;
        }
        if (c == '"') quoted = true;
        else if (c == '(') ++depth;
        else if (c == '<') in_angle = true;
        else if (c == '>') in_angle = false;
        if (!in_angle && c == ':') {
            current.clear();  // a group's display name: drop it, keep the members
            continue;
        }
        if (!in_angle && (c == ',' || c == ';')) {
            flush();
            continue;
        }
        if (c == '\r' || c == '\n') continue;
        current += c;
    }
    flush();
    return out;
}

Reconciled reconcile_recipients(std::string_view message, const std::vector<std::string>& envelope) {
    Reconciled result;
    std::vector<Field> fields = split_header(message, result.body_offset);
    std::set<std::string> wanted;
    for (const auto& rcpt : envelope) wanted.insert(lower(rcpt));
    std::set<std::string> named;  // envelope recipients already in a To or Cc field
    std::string header;
    for (const Field& field : fields) {
        const std::string name = lower(trim(field.name));
        if (name == "bcc" || name == "resent-bcc") {
            result.changed = true;  // may name people outside this envelope; never shown to readers
            continue;
        }
        if (name != "to" && name != "cc") {
            header += field.raw;
            continue;
        }
        std::vector<std::string> kept;
        bool dropped = false;
        for (const auto& mailbox : parse_address_list(field.value())) {
            const std::string key = lower(mailbox.address);
            if (wanted.count(key) && named.insert(key).second) kept.push_back(mailbox.text);
            else dropped = true;
        }
        if (!dropped) {
            header += field.raw;
            continue;
        }
        // Readers still see who the message was written to; Graph does not deliver to X-Original-*.
        result.changed = true;
        header += "X-Original-" + std::string(name == "to" ? "To" : "Cc") + ":" + field.raw.substr(field.name.size() + 1);
        if (!kept.empty()) header += make_field(trim(field.name), kept);
    }
    std::vector<std::string> blind;
    for (const auto& rcpt : envelope) {
        const std::string key = lower(rcpt);
        if (named.count(key)) continue;
        if (std::any_of(blind.begin(), blind.end(), [&](const std::string& b) { return lower(b) == key; })) continue;
        blind.push_back(rcpt);
    }
    if (!blind.empty()) {
        result.changed = true;
        header += make_field("Bcc", blind);
    }
    header += "\r\n";
    result.header = result.changed ? std::move(header) : std::string(message.substr(0, result.body_offset));
    // Who Graph delivers to: each envelope recipient once (named in To/Cc, or blind).
    for (const auto& rcpt : envelope) {
        const std::string key = lower(rcpt);
        if (std::none_of(result.recipients.begin(), result.recipients.end(),
                         [&](const std::string& r) { return lower(r) == key; }))
            result.recipients.push_back(rcpt);
    }
    return result;
}

std::string send_mail_url(std::string_view graph_url, std::string_view mailbox) {
    return fmt::format("{}/v1.0/users/{}/sendMail", graph_url, auth::url_encode(mailbox));
}

GraphError parse_error(std::string_view body) {
    GraphError e;
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(body, ec);
    if (ec || !v.is_object()) return {"", clean_text(body, 300)};
    const auto* error = v.as_object().if_contains("error");
    if (!error || !error->is_object()) return {"", clean_text(body, 300)};
    if (const auto* code = error->as_object().if_contains("code"); code && code->is_string())
        e.code = clean_text(code->as_string(), 100);
    if (const auto* message = error->as_object().if_contains("message"); message && message->is_string())
        e.message = clean_text(message->as_string(), 300);
    return e;
}

std::chrono::seconds parse_retry_after(std::string_view value, std::chrono::seconds fallback, long long now) {
    const std::string text = trim(value);
    std::optional<long long> seconds;
    if (!text.empty() && std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c); })) {
        seconds = text.size() > 6 ? 3600 : std::stoll(text);
    } else if (auto at = parse_http_date(text)) {
        seconds = *at - now;
    }
    if (!seconds) return fallback;
    return std::chrono::seconds(std::clamp<long long>(*seconds, 1, 3600));
}

namespace {

smtp::Reply reply_of(int code, const std::string& text) {
    smtp::Reply r;
    r.code = code;
    r.lines.push_back(text);
    return r;
}

// "ErrorSendAsDenied: message" or the HTTP status when Graph gave no JSON error.
std::string describe(long status, const GraphError& e) {
    std::string what = e.code.empty() ? fmt::format("HTTP {}", status) : e.code;
    if (!e.message.empty()) what += ": " + e.message;
    return fmt::format("Microsoft Graph {} ({})", status, what);
}

}  // namespace

Answer classify(long status, std::string_view body, std::string_view retry_after, long long now) {
    Answer a;
    if (status == 202) {
        a.verdict = Verdict::accepted;
        a.reply = reply_of(250, "2.0.0 Accepted by Microsoft Graph sendMail (202)");
        return a;
    }
    const GraphError e = parse_error(body);
    const std::string text = describe(status, e);
    if (status == 429 || status == 503 || status == 504) {
        // Outlook throttling or a busy service: the whole mailbox waits as long as Graph asked.
        a.verdict = Verdict::back_off;
        a.retry_after = parse_retry_after(retry_after, status == 429 ? 30s : 10s, now);
        a.reply = reply_of(451, fmt::format("4.7.0 {}; retry after {} s", text, a.retry_after.count()));
        return a;
    }
    if (status == 401) {
        a.verdict = Verdict::refresh_token;
        a.reply = reply_of(454, "4.7.0 " + text);
        return a;
    }
    if (status == 403 && e.code == "ErrorSendAsDenied") {
        // Same rule as SMTP's 5.7.60 (account_hold.hpp): about this message's sender, not the
        // mailbox. The message fails and the sender is remembered; the mailbox's own mail goes on.
        a.verdict = Verdict::fail;
        a.reply = reply_of(550, "5.7.60 " + text);
        return a;
    }
    if (status == 403 || status == 404) {
        // Mail.Send not granted, an application access policy without this mailbox, or no such
        // mailbox: every message of the account would fail the same way.
        a.verdict = Verdict::hold;
        a.reply = reply_of(550, "5.7.1 " + text);
        a.hold_action = status == 404
            ? "check the account's email: Graph knows no such mailbox; then: smtp-oauth2-relay queue retry --all"
            : "grant the app Mail.Send (delegated, or application with an application access policy / RBAC "
              "for Applications that includes this mailbox) and admin consent; then: smtp-oauth2-relay queue retry --all";
        return a;
    }
    if (status == 413 || e.code == "ErrorRequestEntityTooLarge" || e.code == "ErrorMessageSizeExceeded") {
        a.verdict = Verdict::fail;
        a.reply = reply_of(552, "5.3.4 " + text);
        return a;
    }
    if (status == 400 || status == 422) {
        a.verdict = Verdict::fail;
        a.reply = reply_of(554, "5.6.0 " + text);
        return a;
    }
    if (status >= 500 || status == 408 || status == 409) {
        a.verdict = Verdict::retry;
        a.reply = reply_of(451, "4.3.0 " + text);
        return a;
    }
    a.verdict = Verdict::fail;
    a.reply = reply_of(554, "5.0.0 " + text);
    return a;
}

Answer transport_failure(std::string_view what) {
    Answer a;
    a.verdict = Verdict::retry;
    a.reply = reply_of(451, "4.4.1 Microsoft Graph not reachable: " + clean_text(what, 300));
    return a;
}

}  // namespace relay::graph
