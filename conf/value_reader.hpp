// Turns single TOML values into typed configuration values and collects every problem with its
// "file:line:col". The converter is picked by the destination's C++ type, which is what lets
// config.cpp describe its keys as plain tables. Secret values are never put into a message; other
// values are quoted with control bytes escaped, so one problem is always one line.
#pragma once

#include <cstdint>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <toml++/toml.h>

#include "conf/config.hpp"
#include "conf/config_detail.hpp"

namespace relay::conf::detail {

inline constexpr std::int64_t kUnbounded = std::numeric_limits<std::int64_t>::max();

// What a converter needs to know about the key it is reading.
struct Field {
    std::string label;  // "relay.listen", "accounts.office.scope", "users[0].name"
    std::int64_t min = 0;          // bounds for integers and durations (in seconds)
    std::int64_t max = kUnbounded;
    bool read_file = false;        // a path read at load: a secret's content, or a must-be-readable file
};

// `"text"` with control bytes as \xNN.
std::string quote_value(std::string_view text);
// "; did you mean 'x'?" for the closest candidate within edit distance 2, else "".
std::string did_you_mean(std::string_view word, const std::vector<std::string_view>& candidates);

// The whole content of a small file, or why it could not be read (never the content).
struct FileContent {
    std::optional<std::string> data;
    std::string error;
};
FileContent read_whole_file(const std::filesystem::path& path);

class ValueReader {
public:
    // `base_dir` anchors relative paths: the config file's directory.
    ValueReader(std::string file, std::filesystem::path base_dir);

    // Records a problem at `where` (the start of the file when the position is unknown); returns false.
    bool fail(const toml::source_region& where, std::string message);
    bool fail(const toml::node& node, std::string message) { return fail(node.source(), std::move(message)); }
    // Every recorded problem as "file:line:col: message", in file order.
    std::vector<std::string> errors() const;

    // Each returns false (with a problem recorded at the value) when the value does not fit.
    bool convert(const toml::node& node, const Field& f, std::string& out);  // non-empty
    bool convert(const toml::node& node, const Field& f, std::optional<std::string>& out);
    bool convert(const toml::node& node, const Field& f, std::filesystem::path& out);
    bool convert(const toml::node& node, const Field& f, bool& out);
    bool convert(const toml::node& node, const Field& f, std::uint64_t& out);
    bool convert(const toml::node& node, const Field& f, unsigned& out);
    bool convert(const toml::node& node, const Field& f, std::chrono::seconds& out);
    bool convert(const toml::node& node, const Field& f, HostPort& out);
    bool convert(const toml::node& node, const Field& f, std::vector<HostPort>& out);  // non-empty, no duplicates
    bool convert(const toml::node& node, const Field& f, std::vector<Network>& out);
    bool convert(const toml::node& node, const Field& f, Secret& out);
    bool convert(const toml::node& node, const Field& f, std::optional<std::chrono::seconds>& out);
    bool convert(const toml::node& node, const Field& f, std::vector<std::string>& out);  // addresses
    template <class E>
        requires std::is_enum_v<E>
    bool convert(const toml::node& node, const Field& f, E& out);

private:
    struct Problem {
        std::uint32_t line, column;
        std::string text;
    };
    bool convert_integer(const toml::node& node, const Field& f, std::int64_t& out);

    std::string file_;
    std::filesystem::path base_dir_;
    std::vector<Problem> problems_;
};

template <class E>
    requires std::is_enum_v<E>
bool ValueReader::convert(const toml::node& node, const Field& f, E& out) {
    const auto* text = node.as_string();
    std::string choices;
    std::vector<std::string_view> names;
    for (const auto& [name, value] : names_of(E{})) {
        if (text && text->get() == name) {
            out = value;
            return true;
        }
        choices += (choices.empty() ? "" : ", ") + std::string(name);
        names.push_back(name);
    }
    return fail(node, f.label + ": expected one of " + choices +
                          (text ? " (got " + quote_value(text->get()) + ")" + did_you_mean(text->get(), names) : ""));
}

}  // namespace relay::conf::detail
