// See sendmail_message.hpp.
#include "relay/cli/sendmail_message.hpp"

#include <algorithm>
#include <cctype>

#include "relay/core/ascii.hpp"

namespace relay::sendmail {
namespace {

using core::lower;
using core::trim;

// Splits `input` into lines without their line end; "\r\n" and bare "\n" both end a line.
std::vector<std::string_view> split_lines(std::string_view input) {
    std::vector<std::string_view> lines;
    while (!input.empty()) {
        auto nl = input.find('\n');
        std::string_view line = input.substr(0, nl);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        lines.push_back(line);
        if (nl == std::string_view::npos) break;
        input.remove_prefix(nl + 1);
    }
    return lines;
}

}  // namespace

static bool has_control(std::string_view s) {
    return std::any_of(s.begin(), s.end(), [](char c) {
        auto u = static_cast<unsigned char>(c);
        return u < 0x20 || u == 0x7f;
    });
}

// Postfix's sendmail parses its options with getopt(3), so flags without a value may be grouped:
// "-ti" is "-t -i", "-it" is "-i -t", "-tfme@x" is "-t -f me@x". Taken one letter at a time, "-it"
// would be only -i and the message would have no recipients. Splits such groups; stops at "--".
static std::vector<std::string> split_grouped_flags(const std::vector<std::string>& args) {
    static constexpr std::string_view kNoValue = "tivUGnmI";
    std::vector<std::string> out;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& arg = args[i];
        if (arg == "--") {
            out.insert(out.end(), args.begin() + static_cast<long>(i), args.end());
            break;
        }
        if (arg.size() <= 2 || arg[0] != '-' || kNoValue.find(arg[1]) == std::string_view::npos) {
            out.push_back(arg);
            continue;
        }
        for (std::size_t j = 1; j < arg.size(); ++j) {
            if (kNoValue.find(arg[j]) == std::string_view::npos) {   // the rest is one option with its value
                out.push_back("-" + arg.substr(j));
                break;
            }
            out.push_back(std::string("-") + arg[j]);
        }
    }
    return out;
}

std::string parse_arguments(const std::vector<std::string>& given, Options& options, std::string& config) {
    const std::vector<std::string> args = split_grouped_flags(given);
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& arg = args[i];
        if (arg == "--") {
            options.recipients.insert(options.recipients.end(), args.begin() + static_cast<long>(i) + 1, args.end());
            break;
        }
        if (arg == "--config" || arg.starts_with("--config=")) {
            if (arg.size() > 8) config = arg.substr(9);
            else if (i + 1 < args.size()) config = args[++i];
            else return "option --config needs a value";
            continue;
        }
        if (arg.size() < 2 || arg[0] != '-') {
            options.recipients.push_back(arg);
            continue;
        }
        char flag = arg[1];
        auto value = [&](std::string& out) -> bool {
            if (arg.size() > 2) out = arg.substr(2);
            else if (i + 1 < args.size()) out = args[++i];
            else return false;
            return true;
        };
        std::string ignored;
        switch (flag) {
        case 't': options.recipients_from_headers = true; break;
        case 'i': options.ignore_dots = true; break;
        case 'f':
        case 'r':
            if (!value(options.from)) return "option -f needs an address";
            break;
        case 'F':
            if (!value(options.full_name)) return "option -F needs a name";
            break;
        case 'o':
            // -oi is -i; -oA takes a value; the rest (-odi, -oem, -oee, -om, -o7, -o8, -oQ...) set
            // delivery and error modes: the relay always queues and reports by exit code.
            if (arg == "-oi" || arg == "-oI") options.ignore_dots = true;
            else if (arg == "-oA" && i + 1 < args.size()) ++i;
            break;
        case 'b':
            if (arg == "-bm" || arg == "-b") options.mode = Mode::submit;
            else if (arg == "-bs") options.mode = Mode::smtp_on_stdin;
            else if (arg == "-bp") options.mode = Mode::list_queue;
            else if (arg == "-bi") options.mode = Mode::rebuild_aliases;
            else if (arg == "-bv") options.mode = Mode::verify;
            else return "unsupported mode " + arg + " (this sendmail submits mail: -bm, -bs, -bp, -bi, -bv)";
            break;
        case 'I': options.mode = Mode::rebuild_aliases; break;
        // Options with a value that mean nothing to a relay that only submits: body type (-B 8BITMIME),
        // config dir (-C), DSN notify/return/envid (-N, -R, -V), log file (-X), syslog label (-L),
        // hop count (-h). Their values are never used.
        case 'B': case 'C': case 'N': case 'R': case 'V': case 'X': case 'L': case 'h':
            if (!value(ignored)) return std::string("option -") + flag + " needs a value";
            break;
        // Flags without a value: verbose, UTF-8 submission, gateway, no aliasing, me too, queue run.
        case 'v': case 'U': case 'G': case 'n': case 'm': case 'q': case 'A': case 'S': case 'O': case 'd':
            break;
        default:
            return "unsupported option " + arg + " (see --help)";
        }
    }
    // "<a@b>" and "a@b" alike in the envelope.
    auto strip = [](std::string& a) {
        std::string_view v = trim(a);
        if (v.size() >= 2 && v.front() == '<' && v.back() == '>') v = v.substr(1, v.size() - 2);
        a = std::string(v);
    };
    strip(options.from);
    for (auto& r : options.recipients) strip(r);
    // -f becomes "MAIL FROM:<...>" and -F a header line: a CR or LF in either would let the caller
    // add SMTP commands or header fields of its own choosing (issue 13 item 5).
    if (has_control(options.full_name)) return "option -F: control characters (CR, LF, ...) are not allowed in a name";
    if (has_control(options.from) || options.from.find_first_of(" <>") != std::string::npos)
        return "option -f: not an address: control characters, spaces and <> are not allowed";
    for (const auto& r : options.recipients) {
        if (has_control(r) || r.find_first_of(" <>") != std::string::npos)
            return "malformed recipient address (control characters, spaces or <>)";
    }
    return {};
}

std::string display_name(std::string_view name) {
    bool ascii = std::all_of(name.begin(), name.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
    if (ascii) {
        std::string out = "\"";
        for (char c : name) {
            if (c == '"' || c == '\\') out += '\\';
            out += c;
        }
        return out + "\"";
    }
    // RFC 2047 section 4.1: "B" encoding of UTF-8; one encoded-word is enough for a person's name
    // (the 75-character limit is a folding hint, and a longer name still decodes).
    static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string b64;
    std::size_t i = 0;
    for (; i + 2 < name.size(); i += 3) {
        unsigned v = (static_cast<unsigned char>(name[i]) << 16) | (static_cast<unsigned char>(name[i + 1]) << 8) |
                     static_cast<unsigned char>(name[i + 2]);
        for (int shift : {18, 12, 6, 0}) b64 += kAlphabet[(v >> shift) & 63];
    }
    if (i < name.size()) {
        unsigned v = static_cast<unsigned char>(name[i]) << 16;
        if (i + 1 < name.size()) v |= static_cast<unsigned char>(name[i + 1]) << 8;
        b64 += kAlphabet[(v >> 18) & 63];
        b64 += kAlphabet[(v >> 12) & 63];
        b64 += i + 1 < name.size() ? kAlphabet[(v >> 6) & 63] : '=';
        b64 += '=';
    }
    return "=?UTF-8?B?" + b64 + "?=";
}

std::vector<std::string> addresses_in(std::string_view value) {
    std::vector<std::string> out;
    std::string current;
    bool quoted = false;
    int comment = 0;
    auto flush = [&] {
        std::string_view part = trim(current);
        // Group syntax "name: a@x, b@y;" - drop the display name and the ';'.
        if (auto colon = part.find(':'); colon != std::string_view::npos && part.find('<') == std::string_view::npos)
            part = trim(part.substr(colon + 1));
        if (!part.empty() && part.back() == ';') part = trim(part.substr(0, part.size() - 1));
        if (auto lt = part.rfind('<'); lt != std::string_view::npos) {
            auto gt = part.find('>', lt);
            part = part.substr(lt + 1, gt == std::string_view::npos ? std::string_view::npos : gt - lt - 1);
        }
        part = trim(part);
        // A bare local name ("To: root", as cron and scripts write it) is kept: the caller resolves it.
        const bool local_name = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' || c == '+';
        });
        if (part.find('@') != std::string_view::npos || local_name) out.emplace_back(part);
        current.clear();
    };
    for (char c : value) {
        if (quoted) {
            if (c == '"') quoted = false;
            continue;  // a display name's quoted text never holds the address
        }
        if (comment > 0) {
            if (c == '(') ++comment;
            else if (c == ')') --comment;
            continue;
        }
        if (c == '"') quoted = true;
        else if (c == '(') ++comment;
        else if (c == ',' || c == ';') {
            if (c == ';') current += c;
            flush();
        } else current += c;
    }
    flush();
    return out;
}

Prepared prepare(std::string_view input, const Options& options, std::string_view default_from, std::string_view date) {
    std::vector<std::string_view> lines = split_lines(input);
    if (!options.ignore_dots) {
        auto dot = std::find(lines.begin(), lines.end(), std::string_view("."));
        lines.erase(dot, lines.end());
    }
    // A leading mbox "From sender date" line is no header field: Postfix's sendmail drops it too.
    if (!lines.empty() && lines.front().starts_with("From ")) lines.erase(lines.begin());
    // The header is everything before the first empty line (RFC 5322 section 2.1), or before the
    // first line that is neither a field nor a field's continuation: `echo hello | sendmail root`
    // is all body, and Postfix's cleanup starts the body there too (an empty line is put before it).
    const auto is_field = [](std::string_view line) {
        const auto colon = line.find(':');
        return colon != std::string_view::npos && colon > 0 &&
               std::all_of(line.begin(), line.begin() + static_cast<long>(colon), [](char c) { return c > 32 && c < 127; });
    };
    std::size_t body_start = lines.size();
    for (std::size_t i = 0; i < lines.size(); ++i) {
        const bool continuation = i > 0 && (lines[i][0] == ' ' || lines[i][0] == '\t');
        if (lines[i].empty() || (!continuation && !is_field(lines[i]))) {
            body_start = i;
            break;
        }
    }
    Prepared out;
    out.recipients = options.recipients;
    // With -t, a message carrying Resent- headers is being resent: its recipients are the Resent-
    // ones (RFC 5322 3.6.6), as Postfix's cleanup takes them.
    bool resent = false;
    for (std::size_t i = 0; i < body_start; ++i) {
        std::string start = lower(lines[i].substr(0, lines[i].find(':')));
        if (start == "resent-to" || start == "resent-cc" || start == "resent-bcc") resent = true;
    }
    std::vector<std::string_view> kept;
    bool have_from = false, have_date = false;
    std::string local_from_name;   // "From: Logwatch", "From: root": a local name, not an address
    for (std::size_t i = 0; i < body_start;) {
        std::size_t end = i + 1;   // continuation lines start with white space (folding, 2.2.3)
        while (end < body_start && !lines[end].empty() && (lines[end][0] == ' ' || lines[end][0] == '\t')) ++end;
        std::string_view first = lines[i];
        auto colon = first.find(':');
        std::string name = lower(trim(first.substr(0, colon)));
        if (name == "date") have_date = true;
        // logwatch writes "From: Logwatch", unattended-upgrades "From: root": local names that Postfix
        // would qualify with $myorigin and Exchange then refuses (SendAsDenied: the mailbox may not send
        // as root@host). Such a From: becomes the sender's address with the name shown, as cron's
        // -FCronDaemon does; a From: holding an address is the program's choice and is kept.
        if (name == "from" && colon != std::string_view::npos && local_from_name.empty()) {
            std::string value(first.substr(colon + 1));
            for (std::size_t j = i + 1; j < end; ++j) value += " " + std::string(lines[j]);
            if (value.find('@') == std::string::npos && !trim(value).empty()) {
                local_from_name = std::string(trim(value));
                i = end;
                continue;
            }
        }
        if (name == "from") have_from = true;
        const bool names_recipients = resent ? (name == "resent-to" || name == "resent-cc" || name == "resent-bcc")
                                             : (name == "to" || name == "cc" || name == "bcc");
        if (options.recipients_from_headers && colon != std::string_view::npos && names_recipients) {
            std::string value(first.substr(colon + 1));
            for (std::size_t j = i + 1; j < end; ++j) value += " " + std::string(lines[j]);
            for (auto& a : addresses_in(value)) out.recipients.push_back(std::move(a));
        }
        // Bcc recipients stay invisible to the others, with or without -t (RFC 5322 3.6.3): a program
        // that names them on the command line and leaves the header in must not reveal them.
        const bool drop = name == "bcc" || name == "resent-bcc";
        if (!drop) kept.insert(kept.end(), lines.begin() + static_cast<long>(i), lines.begin() + static_cast<long>(end));
        i = end;
    }
    std::string& m = out.message;
    if (!have_from) {
        const std::string& shown = options.full_name.empty() ? local_from_name : options.full_name;
        m += "From: ";
        m += shown.empty() ? std::string(default_from) : display_name(shown) + " <" + std::string(default_from) + ">";
        m += "\r\n";
    }
    if (!have_date) m += "Date: " + std::string(date) + "\r\n";
    for (auto line : kept) m += std::string(line) + "\r\n";
    if (body_start < lines.size() && !lines[body_start].empty()) m += "\r\n";   // the body began without one
    for (std::size_t i = body_start; i < lines.size(); ++i) m += std::string(lines[i]) + "\r\n";
    if (body_start == lines.size()) m += "\r\n";  // header only: keep the header/body separator
    // Deduplicate, first occurrence wins (case-insensitively: one mailbox, one RCPT).
    std::vector<std::string> unique;
    for (auto& r : out.recipients) {
        if (std::none_of(unique.begin(), unique.end(), [&](const std::string& u) { return lower(u) == lower(r); }))
            unique.push_back(r);
    }
    out.recipients = std::move(unique);
    return out;
}

std::string dot_stuff(std::string_view message) {
    std::string out;
    out.reserve(message.size() + 64);
    bool line_start = true;
    for (char c : message) {
        if (line_start && c == '.') out += '.';
        out += c;
        line_start = c == '\n';
    }
    if (!out.ends_with("\r\n")) out += "\r\n";
    out += ".\r\n";
    return out;
}

}  // namespace relay::sendmail
