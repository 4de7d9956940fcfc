// See sendmail_message.hpp.
#include "relay/cli/sendmail_message.hpp"

#include <algorithm>
#include <cctype>

namespace relay::sendmail {
namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return s;
}

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

std::string parse_arguments(const std::vector<std::string>& args, Options& options, std::string& config) {
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
        if (arg == "-t") options.recipients_from_headers = true;
        else if (arg == "-i" || arg == "-oi") options.ignore_dots = true;
        else if (flag == 'f' || flag == 'r') {
            if (!value(options.from)) return "option -f needs an address";
        } else if (flag == 'F') {
            if (!value(options.full_name)) return "option -F needs a name";
        } else if (arg == "-bm" || arg == "-v" || arg == "-U" || arg == "-odi" || arg == "-odb" || arg == "-oem" ||
                   arg == "-oee" || arg == "-om" || arg == "-Am" || arg == "-Ac") {
            // Delivery-mode and error-mode options: the relay always queues, and reports by exit code.
        } else {
            return "unsupported option " + arg + " (this sendmail only submits messages: -t -i -f -F)";
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
    return {};
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
        if (part.find('@') != std::string_view::npos) out.emplace_back(part);
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
    // The header is everything before the first empty line (RFC 5322 section 2.1).
    std::size_t body_start = lines.size();
    for (std::size_t i = 0; i < lines.size(); ++i) {
        if (lines[i].empty()) {
            body_start = i;
            break;
        }
    }
    Prepared out;
    out.recipients = options.recipients;
    std::vector<std::string_view> kept;
    bool have_from = false, have_date = false;
    for (std::size_t i = 0; i < body_start;) {
        std::size_t end = i + 1;   // continuation lines start with white space (folding, 2.2.3)
        while (end < body_start && !lines[end].empty() && (lines[end][0] == ' ' || lines[end][0] == '\t')) ++end;
        std::string_view first = lines[i];
        auto colon = first.find(':');
        std::string name = lower(trim(first.substr(0, colon)));
        if (name == "from") have_from = true;
        if (name == "date") have_date = true;
        bool drop = false;
        if (options.recipients_from_headers && colon != std::string_view::npos &&
            (name == "to" || name == "cc" || name == "bcc")) {
            std::string value(first.substr(colon + 1));
            for (std::size_t j = i + 1; j < end; ++j) value += " " + std::string(lines[j]);
            for (auto& a : addresses_in(value)) out.recipients.push_back(std::move(a));
            drop = name == "bcc";   // Bcc recipients stay invisible to the others
        }
        if (!drop) kept.insert(kept.end(), lines.begin() + static_cast<long>(i), lines.begin() + static_cast<long>(end));
        i = end;
    }
    std::string& m = out.message;
    if (!have_from) {
        m += "From: ";
        m += options.full_name.empty() ? std::string(default_from)
                                       : "\"" + options.full_name + "\" <" + std::string(default_from) + ">";
        m += "\r\n";
    }
    if (!have_date) m += "Date: " + std::string(date) + "\r\n";
    for (auto line : kept) m += std::string(line) + "\r\n";
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
