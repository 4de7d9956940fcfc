// rewrite_sender: the envelope sender and the From: header; see sender_rewrite.hpp.
#include "relay/delivery/sender_rewrite.hpp"

#include <algorithm>
#include <vector>

#include "relay/core/ascii.hpp"
#include "relay/delivery/graph_mail.hpp"

namespace relay {
namespace {

struct Field {
    std::string name;   // lower case
    std::string raw;    // the whole field: name, colon, value, folded lines, final CRLF
};

// A field name (RFC 5322 3.6.8): printable ASCII without ':' or space.
bool is_field_name(std::string_view name) {
    return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) { return c > 32 && c < 127 && c != ':'; });
}

// The value of a field, unfolded.
std::string value_of(const Field& f) {
    std::string value;
    for (char c : std::string_view(f.raw).substr(f.raw.find(':') + 1))
        if (c != '\r' && c != '\n') value += c;
    return std::string(core::trim(value));
}

bool wanted(const conf::Account& account, std::string_view address) {
    if (account.rewrite_sender == conf::RewriteSender::always) {
        const std::string a = core::lower(address), mailbox = core::lower(account.email);
        return a == mailbox;
    }
    return conf::is_known_sender(account, address);
}

bool sender_allowed(const conf::Account& account, std::string_view value) {
    const auto list = graph::parse_address_list(value);
    return list.size() == 1 && wanted(account, list.front().address);
}

// The display name of a From: value ("CronDaemon" <root@host> -> "CronDaemon"), "" when none.
std::string display_name(std::string_view value) {
    const auto list = graph::parse_address_list(value);
    if (list.empty()) return {};
    std::string_view text = list.front().text;
    const auto open = text.rfind('<');
    if (open == std::string_view::npos) return {};
    return std::string(core::trim(text.substr(0, open)));
}

struct Header {
    std::vector<Field> fields;
    std::size_t length = 0;    // bytes of the fields
    bool separated = false;    // an empty line follows them
};

// The header's fields, up to the empty line, or up to the first line that is no field (a message
// without header or without the empty line: the body starts there). nullopt when the header goes
// on beyond `start` (not `complete`) or ends in an unterminated line.
std::optional<Header> parse_header(std::string_view start, bool complete) {
    Header h;
    std::size_t at = 0;
    for (;;) {
        const std::size_t eol = start.find("\r\n", at);
        if (eol == std::string_view::npos) {
            if (!complete || at < start.size()) return std::nullopt;
            break;
        }
        std::string_view line = start.substr(at, eol + 2 - at);
        if (line == "\r\n") {
            h.separated = true;
            break;
        }
        if ((line.front() == ' ' || line.front() == '\t') && !h.fields.empty()) {
            h.fields.back().raw += line;
        } else {
            const auto colon = line.find(':');
            if (colon == std::string_view::npos || !is_field_name(line.substr(0, colon))) break;
            h.fields.push_back({core::lower(line.substr(0, colon)), std::string(line)});
        }
        at = eol + 2;
    }
    h.length = at;
    return h;
}

}  // namespace

std::string header_from_address(std::string_view start, bool complete) {
    auto header = parse_header(start, complete);
    if (!header) return {};
    for (const auto& f : header->fields)
        if (f.name == "from") {
            const auto list = graph::parse_address_list(value_of(f));
            return list.empty() ? std::string() : core::lower(list.front().address);
        }
    return {};
}

std::string upstream_sender(const conf::Account& account, std::string_view mail_from) {
    switch (account.rewrite_sender) {
    case conf::RewriteSender::never: return std::string(mail_from);
    case conf::RewriteSender::always: return account.email;
    case conf::RewriteSender::unallowed: break;
    }
    return conf::is_known_sender(account, mail_from) ? std::string(mail_from) : account.email;
}

std::optional<HeaderRewrite> rewrite_from_header(const conf::Account& account, std::string_view start, bool complete) {
    if (!rewrites_header(account)) return std::nullopt;
    auto header = parse_header(start, complete);
    if (!header) return std::nullopt;   // too large a header is left alone rather than cut
    const std::vector<Field>& fields = header->fields;
    const auto from = std::find_if(fields.begin(), fields.end(), [](const Field& f) { return f.name == "from"; });
    HeaderRewrite out;
    std::string display;
    if (from != fields.end()) {
        out.original_from = value_of(*from);
        const auto list = graph::parse_address_list(out.original_from);
        const bool fine = !list.empty() &&
                          std::all_of(list.begin(), list.end(), [&](const auto& m) { return wanted(account, m.address); });
        if (fine) return std::nullopt;
        display = display_name(out.original_from);
    }
    const std::string new_from = "From: " + (display.empty() ? account.email : display + " <" + account.email + ">") + "\r\n";
    const bool has_reply_to = std::any_of(fields.begin(), fields.end(), [](const Field& f) { return f.name == "reply-to"; });
    const Field* original = from == fields.end() ? nullptr : &*from;
    for (const auto& f : fields) {
        // A Sender: the mailbox may not use goes with the old From: (Postfix's generic maps rewrite it
        // too). Left, it tells Exchange the message is sent on behalf of the From: by that address;
        // after the rewrite the From: is the one sender, and RFC 5322 3.6.2 needs no Sender: then.
        if (f.name == "sender" && !sender_allowed(account, value_of(f))) continue;
        if (&f != original) {
            out.header += f.raw;
            continue;
        }
        out.header += new_from;
        // Replies still reach whoever wrote it; the original text, folding and all.
        if (!has_reply_to && !out.original_from.empty()) out.header += "Reply-To:" + f.raw.substr(f.raw.find(':') + 1);
    }
    if (!original) out.header += new_from;
    out.replaced = header->length;
    // A message whose body followed its header without the empty line gets one.
    if (!header->separated && header->length < start.size()) out.header += "\r\n";
    return out;
}

}  // namespace relay
