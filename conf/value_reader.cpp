// Converters from TOML values to the typed configuration values; see value_reader.hpp.
#include <cstdlib>
#include "conf/value_reader.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <tuple>

#include <fmt/format.h>

namespace relay::conf::detail {

namespace fs = std::filesystem;

std::string quote_value(std::string_view text) {
    std::string out = "\"";
    for (unsigned char c : text) {
        if (c < 0x20 || c == 0x7f) out += fmt::format("\\x{:02x}", c);
        else out += static_cast<char>(c);
    }
    return out + "\"";
}

std::string did_you_mean(std::string_view word, const std::vector<std::string_view>& candidates) {
    std::string_view best;
    std::size_t best_distance = 3;  // suggest only within an edit distance of 2
    for (auto candidate : candidates) {
        const auto d = edit_distance(word, candidate);
        if (d < best_distance) best_distance = d, best = candidate;
    }
    return best.empty() ? "" : fmt::format("; did you mean '{}'?", best);
}

FileContent read_whole_file(const fs::path& path) {
    std::FILE* file = std::fopen(path.c_str(), "rb");
    if (!file) return {std::nullopt, std::strerror(errno)};
    std::string data;
    char buffer[4096];
    std::size_t n;
    while ((n = std::fread(buffer, 1, sizeof buffer, file)) > 0) data.append(buffer, n);
    const bool failed = std::ferror(file);  // e.g. EISDIR: fopen succeeds on a directory
    const int saved_errno = errno;
    std::fclose(file);
    if (failed) return {std::nullopt, std::strerror(saved_errno)};
    return {std::move(data), {}};
}

ValueReader::ValueReader(std::string file, fs::path base_dir) : file_(std::move(file)), base_dir_(std::move(base_dir)) {}

bool ValueReader::fail(const toml::source_region& where, std::string message) {
    const bool known = where.begin.line > 0;
    problems_.push_back({known ? where.begin.line : 1, known ? where.begin.column : 1, std::move(message)});
    return false;
}

std::vector<std::string> ValueReader::errors() const {
    auto sorted = problems_;
    std::stable_sort(sorted.begin(), sorted.end(), [](const Problem& a, const Problem& b) {
        return std::tie(a.line, a.column) < std::tie(b.line, b.column);
    });
    std::vector<std::string> out;
    for (const auto& p : sorted) out.push_back(fmt::format("{}:{}:{}: {}", file_, p.line, p.column, p.text));
    return out;
}

bool ValueReader::convert(const toml::node& node, const Field& f, std::string& out) {
    const auto* text = node.as_string();
    if (!text) return fail(node, f.label + ": expected a string");
    if (text->get().empty()) return fail(node, f.label + ": must not be empty");
    out = text->get();
    return true;
}

bool ValueReader::convert(const toml::node& node, const Field& f, std::optional<std::string>& out) {
    std::string text;
    if (!convert(node, f, text)) return false;
    out = std::move(text);
    return true;
}

bool ValueReader::convert(const toml::node& node, const Field& f, fs::path& out) {
    std::string text;
    if (!convert(node, f, text)) return false;
    // systemd's LoadCredential= puts secrets in a per-start directory named by $CREDENTIALS_DIRECTORY
    // (systemd.exec(5)), so the path can only be written with the variable.
    for (std::string_view variable : {"${CREDENTIALS_DIRECTORY}", "$CREDENTIALS_DIRECTORY"}) {
        if (!text.starts_with(variable)) continue;
        const char* directory = std::getenv("CREDENTIALS_DIRECTORY");
        if (!directory || !*directory)
            return fail(node, fmt::format("{}: {} is not set (it is set by systemd when the unit has "
                                          "LoadCredential=)", f.label, variable));
        text = directory + text.substr(variable.size());
        break;
    }
    fs::path path = fs::path(text).is_relative() ? base_dir_ / text : fs::path(text);
    if (f.read_file) {
        if (auto content = read_whole_file(path); !content.data)
            return fail(node, fmt::format("{}: cannot read {}: {}", f.label, path.string(), content.error));
    }
    out = std::move(path);
    return true;
}

bool ValueReader::convert(const toml::node& node, const Field& f, bool& out) {
    const auto* value = node.as_boolean();
    if (!value) return fail(node, f.label + ": expected true or false");
    out = value->get();
    return true;
}

bool ValueReader::convert_integer(const toml::node& node, const Field& f, std::int64_t& out) {
    const auto* value = node.as_integer();
    if (!value) return fail(node, f.label + ": expected an integer");
    if (value->get() < f.min || value->get() > f.max)
        return fail(node, fmt::format("{}: {} is out of range {}..{}", f.label, value->get(), f.min, f.max));
    out = value->get();
    return true;
}

bool ValueReader::convert(const toml::node& node, const Field& f, std::uint64_t& out) {
    std::int64_t value;
    if (!convert_integer(node, f, value)) return false;
    out = static_cast<std::uint64_t>(value);
    return true;
}

bool ValueReader::convert(const toml::node& node, const Field& f, unsigned& out) {
    std::int64_t value;
    if (!convert_integer(node, f, value)) return false;
    out = static_cast<unsigned>(value);
    return true;
}

bool ValueReader::convert(const toml::node& node, const Field& f, std::chrono::seconds& out) {
    std::optional<std::chrono::seconds> value;
    if (const auto* integer = node.as_integer(); integer && integer->get() >= 0) value = std::chrono::seconds(integer->get());
    else if (const auto* text = node.as_string()) value = parse_duration(text->get());
    if (!value)
        return fail(node, f.label + ": expected a duration: seconds as an integer, or a string like \"300s\", "
                                    "\"5m\", \"1h\", \"2d\"");
    if (value->count() < f.min || value->count() > f.max)
        return fail(node, fmt::format("{}: {}s is out of range {}s..{}s", f.label, value->count(), f.min, f.max));
    out = *value;
    return true;
}

bool ValueReader::convert(const toml::node& node, const Field& f, HostPort& out) {
    const auto* text = node.as_string();
    auto parsed = text ? parse_host_port(text->get()) : std::nullopt;
    if (!parsed)
        return fail(node, fmt::format("{}: {}expected \"host:port\" with port 1-65535 (IPv6 as \"[::1]:port\")",
                                      f.label, text ? quote_value(text->get()) + " is not host:port; " : ""));
    out = std::move(*parsed);
    return true;
}

bool ValueReader::convert(const toml::node& node, const Field& f, std::vector<HostPort>& out) {
    const auto* array = node.as_array();
    if (!array) return fail(node, f.label + ": expected an array of \"host:port\" strings");
    if (array->empty()) return fail(node, f.label + ": needs at least one address");
    bool ok = true;
    for (const toml::node& element : *array) {
        HostPort address;
        if (!convert(element, f, address)) {
            ok = false;
        } else if (std::any_of(out.begin(), out.end(), [&](const HostPort& seen) { return seen.to_string() == address.to_string(); })) {
            ok = fail(element, fmt::format("{}: {} is listed twice", f.label, address.to_string()));
        } else {
            out.push_back(std::move(address));
        }
    }
    return ok;
}

bool ValueReader::convert(const toml::node& node, const Field& f, std::vector<Network>& out) {
    const auto* array = node.as_array();
    if (!array) return fail(node, f.label + ": expected an array of address or CIDR strings");
    bool ok = true;
    for (const toml::node& element : *array) {
        const auto* text = element.as_string();
        auto network = text ? parse_network(text->get()) : std::nullopt;
        if (!network) {
            ok = fail(element, fmt::format("{}: {}expected an address or CIDR block such as \"192.0.2.0/24\" or "
                                           "\"2001:db8::/32\"", f.label, text ? quote_value(text->get()) + " is not valid; " : ""));
            continue;
        }
        out.push_back(*network);
    }
    return ok;
}

bool ValueReader::convert(const toml::node& node, const Field& f, Secret& out) {
    // Secret values never appear in messages: only the key name and, for files, the path.
    std::string text;
    if (!f.read_file) {
        if (!convert(node, f, text)) return false;
        out = Secret(std::move(text));
        return true;
    }
    fs::path path;
    if (!convert(node, Field{f.label, f.min, f.max, false}, path)) return false;
    auto content = read_whole_file(path);
    if (!content.data) return fail(node, fmt::format("{}: cannot read {}: {}", f.label, path.string(), content.error));
    // Files written by `echo` or an editor end with a newline that is not part of the secret.
    while (!content.data->empty() && (content.data->back() == '\n' || content.data->back() == '\r'))
        content.data->pop_back();
    if (content.data->empty()) return fail(node, fmt::format("{}: {} is empty", f.label, path.string()));
    out = Secret(std::move(*content.data));
    return true;
}

}  // namespace relay::conf::detail

namespace relay::conf::detail {

bool ValueReader::convert(const toml::node& node, const Field& f, std::optional<std::chrono::seconds>& out) {
    std::chrono::seconds value{};
    if (!convert(node, f, value)) return false;
    out = value;
    return true;
}

// Mail addresses (send_as, allowed_senders): matched case-insensitively, so stored as written.
bool ValueReader::convert(const toml::node& node, const Field& f, std::vector<std::string>& out) {
    const auto* array = node.as_array();
    if (!array) return fail(node, f.label + ": expected an array of mail addresses such as [\"user@example.com\"]");
    bool ok = true;
    for (const toml::node& element : *array) {
        const auto* text = element.as_string();
        const bool valid = text && text->get().find('@') != std::string::npos &&
                           text->get().find_first_of(" \t\r\n<>") == std::string::npos;
        if (!valid) {
            ok = fail(element, fmt::format("{}: {}expected a mail address such as \"user@example.com\"", f.label,
                                           text ? quote_value(text->get()) + " is not one; " : ""));
            continue;
        }
        out.push_back(text->get());
    }
    return ok;
}

}  // namespace relay::conf::detail
