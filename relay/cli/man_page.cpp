// See man_page.hpp.
#include "relay/cli/man_page.hpp"

#include <cstdio>
#include <fstream>
#include <functional>
#include <regex>
#include <sstream>
#include <unistd.h>

#include <fmt/format.h>

#include "conf/known_keys.hpp"
#include "relay/core/states.hpp"
#include "relay/cli/cli.hpp"

namespace relay::cli {
namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    return s;
}

std::string table_of(std::string_view header) {
    if (header == "[relay]") return "relay";
    if (header == "[[users]]") return "users";
    if (header.starts_with("[accounts.")) return "accounts";
    if (header == "[aliases]") return "aliases";
    return {};
}

// Runs a command's --help and returns what it printed (the very text users see).
std::string help_of(const std::function<int(const std::vector<std::string>&)>& run) {
    std::fflush(stdout);
    std::FILE* capture = std::tmpfile();
    if (!capture) return {};
    int saved = ::dup(STDOUT_FILENO);
    ::dup2(::fileno(capture), STDOUT_FILENO);
    run({"--help"});
    std::fflush(stdout);
    ::dup2(saved, STDOUT_FILENO);
    ::close(saved);
    std::string out;
    std::rewind(capture);
    char buffer[4096];
    for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, capture)) > 0;) out.append(buffer, n);
    std::fclose(capture);
    return out;
}

// Replaces the line that is exactly `marker` (a comment may mention the marker too).
std::string replace_marker(std::string_view page, std::string_view marker, const std::string& with) {
    std::string out(page);
    const std::string line = "\n" + std::string(marker) + "\n";
    auto at = out.find(line);
    if (at == std::string::npos) return out;
    out.replace(at + 1, marker.size() + 1, with);
    return out;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

}  // namespace

std::vector<DocumentedKey> documented_keys(std::string_view example) {
    static const std::regex key_line(R"(^(# )?([a-z][a-z0-9_]*) = (.+)$)");
    static const std::regex mention(R"(\b([a-z][a-z0-9_]*) = )");
    std::vector<DocumentedKey> out;
    std::string table, comment, last_comment;
    auto known = conf::known_keys();
    auto is_key = [&](const std::string& t, const std::string& name) {
        for (const auto& k : known)
            if (k.table == t && k.name == name) return true;
        return false;
    };
    auto add = [&](const std::string& name, const std::string& text, const std::string& example_line) {
        for (auto& d : out) {
            if (d.table == table && d.name == name) return;
        }
        out.push_back({table, name, text, example_line});
    };
    std::istringstream lines{std::string(example)};
    for (std::string raw; std::getline(lines, raw);) {
        std::string line(trim(raw));
        std::string uncommented = line.starts_with("# ") ? line.substr(2) : line;
        if (auto t = table_of(uncommented); !t.empty()) {
            table = t;
            last_comment.clear();
            if (t == "aliases") out.push_back({table, "NAME", comment, "root = \"it@contoso.com\""});
            comment.clear();
            continue;
        }
        std::smatch m;
        if (!table.empty() && table != "aliases" && std::regex_match(line, m, key_line) && is_key(table, m[2].str())) {
            const std::string& text = comment.empty() ? last_comment : comment;
            add(m[2].str(), text, m[2].str() + " = " + m[3].str());
            // Keys only named in the comment ("or client_secret = ...") are documented by it too.
            for (auto it = std::sregex_iterator(text.begin(), text.end(), mention); it != std::sregex_iterator(); ++it)
                if (is_key(table, (*it)[1].str())) add((*it)[1].str(), text, "");
            if (!comment.empty()) last_comment = comment;
            comment.clear();
            continue;
        }
        if (line.starts_with("#")) {
            std::string text(trim(std::string_view(line).substr(1)));
            if (text.starts_with("---")) continue;   // a heading of the example, not a description
            comment += (comment.empty() ? "" : " ") + text;
        } else if (line.empty()) {
            comment.clear();
        }
    }
    return out;
}

std::vector<std::string> undocumented_keys(const std::vector<DocumentedKey>& documented) {
    std::vector<std::string> missing;
    for (const auto& k : conf::known_keys()) {
        bool found = false;
        for (const auto& d : documented) found = found || (d.table == k.table && d.name == k.name && !d.text.empty());
        if (!found) missing.push_back(k.table + "." + k.name);
    }
    return missing;
}

std::string roff_escape(std::string_view text) {
    std::string out;
    for (char c : text) {
        if (c == '\\') out += "\\e";
        else if (c == '-') out += "\\-";
        else out += c;
    }
    // A line starting with . or ' would be a request.
    if (!out.empty() && (out.front() == '.' || out.front() == '\'')) out.insert(0, "\\&");
    return out;
}

std::string render_config_page(std::string_view page_template, std::string_view example) {
    std::string keys;
    std::string table;
    for (const auto& d : documented_keys(example)) {
        if (d.table != table) {
            table = d.table;
            keys += table == "relay" ? ".SH [relay]\n" : table == "users" ? ".SH [[users]]\n"
                  : table == "accounts" ? ".SH [accounts.NAME]\n" : ".SH [aliases]\n";
        }
        keys += ".TP\n.B " + roff_escape(d.name) + "\n" + roff_escape(d.text) + "\n";
        std::string default_toml;
        for (const auto& k : conf::known_keys())
            if (k.table == d.table && k.name == d.name) default_toml = k.default_toml;
        if (!default_toml.empty()) keys += "Default: " + roff_escape(default_toml) + ".\n";
        if (!d.example.empty()) keys += ".br\nExample: \\fB" + roff_escape(d.example) + "\\fR\n";
    }
    return replace_marker(page_template, "@KEYS@", keys);
}

std::string render_command_page(std::string_view page_template,
                                const std::vector<std::pair<std::string, std::string>>& helps) {
    std::string text;
    for (const auto& [name, help] : helps) {
        text += ".SS " + roff_escape(name) + "\n.nf\n";
        std::istringstream lines(help);
        for (std::string line; std::getline(lines, line);) text += roff_escape(line) + "\n";
        text += ".fi\n";
    }
    return replace_marker(replace_marker(page_template, "@COMMANDS@", text), "@STATES@", states_section());
}

// The one vocabulary (relay/core/states.hpp) as the STATES section: the words status, queue list,
// metrics and logs use, each with its meaning.
std::string states_section() {
    std::string out = "Messages:\n";
    for (const auto& s : state::kMessageStates)
        out += ".TP\n.B " + roff_escape(s.name) + "\n" + roff_escape(s.meaning) + "\n";
    out += ".PP\nAccounts:\n";
    for (const auto& s : state::kAccountStates)
        out += ".TP\n.B " + roff_escape(s.name) + "\n" + roff_escape(s.meaning) + "\n";
    return out;
}

int run_man(const std::vector<std::string>& args) {
    if (args.size() != 2 || (args[0] != "5" && args[0] != "8")) {
        std::fputs("usage: smtp-oauth2-relay man 5|8 TEMPLATE   (prints the generated man page)\n", stderr);
        return kUsageError;
    }
    const std::string page_template = read_file(args[1]);
    if (page_template.empty()) {
        std::fprintf(stderr, "smtp-oauth2-relay man: cannot read %s\n", args[1].c_str());
        return kRuntimeError;
    }
    if (args[0] == "5") {
        if (auto missing = undocumented_keys(documented_keys(kExampleConfig)); !missing.empty()) {
            for (const auto& k : missing)
                std::fprintf(stderr, "smtp-oauth2-relay man: key %s has no comment in conf/config.example.toml\n", k.c_str());
            return kRuntimeError;
        }
        std::fputs(render_config_page(page_template, kExampleConfig).c_str(), stdout);
        return kOk;
    }
    std::vector<std::pair<std::string, std::string>> helps;
    for (const auto& c : commands()) helps.emplace_back(c.name, help_of(c.run));
    std::fputs(render_command_page(page_template, helps).c_str(), stdout);
    return kOk;
}

}  // namespace relay::cli
