// SMTP command-line parsing (RFC 5321 4.1): the verb/argument split and the MAIL/RCPT path grammar
// of RFC 5321 4.1.2 (Path, Mailbox, Local-part, Domain, address-literal, Mail-parameters). Strict
// where laxness would let odd bytes reach the spool or the upstream server (controls, spaces outside
// quotes); lenient only where real clients differ harmlessly (a space after the colon, case of
// keywords, several spaces between parameters) and, for trusted clients only, missing angle
// brackets: the address must still be a whole Mailbox, so what is stored is the same either way.
#include "relay/smtp/command.hpp"

#include <cstring>

#include "relay/smtp/replies.hpp"

namespace relay::smtp {
namespace {

using replies::kParameterSyntax;
using replies::kRecipientSyntax;
using replies::kSenderSyntax;

char upper(char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alnum(char c) { return is_alpha(c) || is_digit(c); }
bool is_hex(char c) { return is_digit(c) || (upper(c) >= 'A' && upper(c) <= 'F'); }

// RFC 5322 3.2.3 atext.
bool is_atext(char c) { return is_alnum(c) || (c != 0 && std::strchr("!#$%&'*+-/=?^_`{|}~", c) != nullptr); }

bool starts_with_nocase(std::string_view s, std::string_view prefix) {
    if (s.size() < prefix.size()) return false;
    for (std::size_t i = 0; i < prefix.size(); ++i)
        if (upper(s[i]) != upper(prefix[i])) return false;
    return true;
}

// Cursor over the argument; every parse_* advances it only on success.
struct Cursor {
    std::string_view s;
    std::size_t pos = 0;
    bool at_end() const { return pos >= s.size(); }
    char peek() const { return at_end() ? '\0' : s[pos]; }
    bool eat(char c) {
        if (peek() != c || at_end()) return false;
        ++pos;
        return true;
    }
};

// Domain = sub-domain *("." sub-domain); sub-domain = Let-dig [Ldh-str]. Underscores are
// tolerated because internal host names carry them; hyphen rules are not checked.
bool parse_domain_name(Cursor& c) {
    std::size_t labels = 0;
    for (;;) {
        const std::size_t start = c.pos;
        while (!c.at_end() && (is_alnum(c.peek()) || c.peek() == '-' || c.peek() == '_')) ++c.pos;
        if (c.pos == start) return false;
        ++labels;
        if (!c.eat('.')) return labels > 0;
    }
}

// address-literal = "[" ( IPv4 / "IPv6:" IPv6 / General ) "]" (RFC 5321 4.1.3); dcontent is %d33-90 / %d94-126.
bool parse_address_literal(Cursor& c) {
    if (!c.eat('[')) return false;
    const std::size_t start = c.pos;
    while (!c.at_end() && c.peek() != ']') {
        const unsigned char ch = static_cast<unsigned char>(c.peek());
        if (ch < 33 || ch > 126 || ch == '[' || ch == '\\') return false;
        ++c.pos;
    }
    const std::string_view content = c.s.substr(start, c.pos - start);
    if (content.empty() || !c.eat(']')) return false;
    if (starts_with_nocase(content, "IPv6:")) {
        const std::string_view v6 = content.substr(5);
        if (v6.empty() || v6.find(':') == std::string_view::npos) return false;
        for (char ch : v6)
            if (!is_hex(ch) && ch != ':' && ch != '.') return false;
        return true;
    }
    if (is_digit(content.front())) {   // IPv4: four dot-separated numbers 0..255
        Cursor v4{content};
        for (int part = 0; part < 4; ++part) {
            if (part > 0 && !v4.eat('.')) return false;
            int value = 0, digits = 0;
            while (is_digit(v4.peek()) && !v4.at_end()) {
                value = value * 10 + (v4.peek() - '0');
                ++v4.pos;
                if (++digits > 3 || value > 255) return false;
            }
            if (digits == 0) return false;
        }
        return v4.at_end();
    }
    // General-address-literal = Standardized-tag ":" 1*dcontent
    const std::size_t colon = content.find(':');
    return colon != std::string_view::npos && colon > 0 && colon + 1 < content.size();
}

bool parse_domain(Cursor& c) { return c.peek() == '[' ? parse_address_literal(c) : parse_domain_name(c); }

// Local-part = Dot-string / Quoted-string (RFC 5321 4.1.2). Dots are not checked for position:
// real senders have "first..last" addresses and the upstream server judges them.
bool parse_local_part(Cursor& c) {
    if (c.eat('"')) {
        while (!c.at_end()) {
            const unsigned char ch = static_cast<unsigned char>(c.peek());
            if (ch == '"') {
                ++c.pos;
                return true;
            }
            if (ch == '\\') {   // quoted-pairSMTP = "\" %d32-126
                ++c.pos;
                const unsigned char next = static_cast<unsigned char>(c.peek());
                if (c.at_end() || next < 32 || next > 126) return false;
            } else if (ch < 32 || ch > 126) {
                return false;
            }
            ++c.pos;
        }
        return false;
    }
    const std::size_t start = c.pos;
    while (!c.at_end() && (is_atext(c.peek()) || c.peek() == '.')) ++c.pos;
    return c.pos > start;
}

// Mailbox = Local-part "@" domain; RCPT alone may name "Postmaster" without a domain
// (RFC 5321 4.1.1.3), which `null_allowed` (MAIL) excludes.
bool parse_mailbox(Cursor& c, bool null_allowed, std::string& address) {
    const std::size_t start = c.pos;
    if (!parse_local_part(c)) return false;
    if (c.eat('@')) {
        if (!parse_domain(c)) return false;
    } else {
        const std::string_view local = c.s.substr(start, c.pos - start);
        if (null_allowed || local.size() != 10 || !starts_with_nocase(local, "postmaster")) return false;
    }
    address.assign(c.s.substr(start, c.pos - start));
    return true;
}

// Path = "<" [ A-d-l ":" ] Mailbox ">"; the source route (A-d-l) is dropped (RFC 5321 4.1.2, C).
// Reverse-path may be "<>"; RCPT may name "<Postmaster>" without a domain (RFC 5321 4.1.1.3).
bool parse_path(Cursor& c, bool null_allowed, std::string& address) {
    if (!c.eat('<')) return false;
    if (c.peek() == '>') {
        ++c.pos;
        address.clear();
        return null_allowed;
    }
    if (c.peek() == '@') {
        do {
            if (!c.eat('@') || !parse_domain(c)) return false;
        } while (c.eat(','));
        if (!c.eat(':')) return false;
    }
    return parse_mailbox(c, null_allowed, address) && c.eat('>');
}

// A Mailbox without angle brackets ("MAIL FROM:user@host", sloppy firmware; Postfix accepts it
// unless strict_rfc821_envelopes). It ends at the first space, so "a@b SIZE=10" keeps its SIZE as
// Postfix does; no source route, no null path, nothing RFC 822-ish ("Name <a@b>", comments).
bool parse_bare_mailbox(Cursor& c, bool null_allowed, std::string& address) {
    return parse_mailbox(c, null_allowed, address) && (c.at_end() || c.peek() == ' ');
}

// Mail-parameters = esmtp-param *(SP esmtp-param); esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-");
// esmtp-value = 1*(%d33-60 / %d62-126).
bool parse_params(Cursor& c, std::vector<std::pair<std::string, std::string>>& params) {
    while (!c.at_end()) {
        if (!c.eat(' ')) return false;
        while (c.eat(' ')) {
        }
        if (c.at_end()) break;
        const std::size_t key_start = c.pos;
        if (!is_alnum(c.peek())) return false;
        while (!c.at_end() && (is_alnum(c.peek()) || c.peek() == '-')) ++c.pos;
        std::string key(c.s.substr(key_start, c.pos - key_start));
        for (char& ch : key) ch = upper(ch);
        std::string value;
        if (c.eat('=')) {
            const std::size_t value_start = c.pos;
            while (!c.at_end()) {
                const unsigned char ch = static_cast<unsigned char>(c.peek());
                if (ch < 33 || ch > 126 || ch == '=') break;
                ++c.pos;
            }
            if (c.pos == value_start) return false;
            value.assign(c.s.substr(value_start, c.pos - value_start));
        }
        if (!c.at_end() && c.peek() != ' ') return false;
        params.emplace_back(std::move(key), std::move(value));
    }
    return true;
}

struct PathReplies {
    std::string_view path_error;     // the path does not parse
    std::string_view needs_brackets; // a strict client left out the angle brackets
    std::string_view usage;          // not "FROM:" / "TO:" at all
};

std::optional<PathArgument> parse_path_argument(std::string_view argument, std::string_view keyword,
                                                bool null_allowed, const PathReplies& replies,
                                                bool unbracketed, PathError& error) {
    Cursor c{argument, keyword.size()};
    if (starts_with_nocase(argument, keyword))
        while (c.eat(' ')) {   // "MAIL FROM: <a@b>" is common enough to accept from anyone
        }
    if (!starts_with_nocase(argument, keyword) || c.at_end()) {
        error.reply = replies.usage;
        return std::nullopt;
    }
    PathArgument result;
    const bool bracketed = c.peek() == '<';
    const bool parsed = bracketed ? parse_path(c, null_allowed, result.address)
                                  : unbracketed && parse_bare_mailbox(c, null_allowed, result.address);
    if (!parsed) {
        error.reply = bracketed || unbracketed ? replies.path_error : replies.needs_brackets;
        return std::nullopt;
    }
    if (!parse_params(c, result.params)) {
        error.reply = kParameterSyntax;
        return std::nullopt;
    }
    return result;
}

}  // namespace

Command parse_command(std::string_view line) {
    if (line.ends_with("\r\n")) line.remove_suffix(2);
    const std::size_t space = line.find(' ');
    std::string_view verb = line.substr(0, space);
    std::string_view argument = space == std::string_view::npos ? std::string_view{} : line.substr(space + 1);
    while (!argument.empty() && (argument.back() == ' ' || argument.back() == '\t')) argument.remove_suffix(1);
    Command command;
    command.verb.assign(verb);
    for (char& ch : command.verb) ch = upper(ch);
    command.argument.assign(argument);
    return command;
}

std::optional<PathArgument> parse_mail_from(std::string_view argument, PathError& error, bool unbracketed) {
    static constexpr PathReplies kReplies{kSenderSyntax, replies::kSenderNeedsBrackets, replies::kMailSyntax};
    return parse_path_argument(argument, "FROM:", true, kReplies, unbracketed, error);
}

std::optional<PathArgument> parse_rcpt_to(std::string_view argument, PathError& error, bool unbracketed) {
    static constexpr PathReplies kReplies{kRecipientSyntax, replies::kRecipientNeedsBrackets, replies::kRcptSyntax};
    return parse_path_argument(argument, "TO:", false, kReplies, unbracketed, error);
}

}  // namespace relay::smtp
