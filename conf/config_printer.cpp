// The effective configuration (`config print`), printed from the same key tables the loader reads
// (config_keys.hpp); secrets show only whether they are set.
#include <fmt/format.h>

#include "conf/known_keys.hpp"
#include "conf/config.hpp"
#include "conf/config_detail.hpp"
#include "conf/config_keys.hpp"

namespace relay::conf {
namespace {

namespace fs = std::filesystem;
using detail::account_keys;
using detail::KeySpec;
using detail::relay_keys;
using detail::user_keys;

std::string toml_string(std::string_view text) {
    std::string out = "\"";
    for (unsigned char c : text) {
        if (c == '"' || c == '\\') out += '\\', out += static_cast<char>(c);
        else if (c < 0x20 || c == 0x7f) out += fmt::format("\\u{:04x}", c);
        else out += static_cast<char>(c);
    }
    return out + "\"";
}

// Each returns the TOML value, or nullopt when the key is unset (printed as a comment).
std::optional<std::string> toml_of(const std::string& v) {
    return v.empty() ? std::nullopt : std::optional(toml_string(v));
}
std::optional<std::string> toml_of(const std::optional<std::string>& v) {
    return v ? std::optional(toml_string(*v)) : std::nullopt;
}
std::optional<std::string> toml_of(const fs::path& v) {
    return v.empty() ? std::nullopt : std::optional(toml_string(v.string()));
}
std::optional<std::string> toml_of(bool v) { return v ? "true" : "false"; }
std::optional<std::string> toml_of(std::uint64_t v) { return std::to_string(v); }
std::optional<std::string> toml_of(unsigned v) { return std::to_string(v); }
std::optional<std::string> toml_of(std::chrono::seconds v) { return toml_string(std::to_string(v.count()) + "s"); }
std::optional<std::string> toml_of(const std::optional<std::chrono::seconds>& v) {
    return v ? toml_of(*v) : std::nullopt;
}
std::string toml_item(const std::string& item) { return toml_string(item); }
template <class T>
std::string toml_item(const T& item) { return toml_string(item.to_string()); }
std::optional<std::string> toml_of(const HostPort& v) {
    return v.port == 0 ? std::nullopt : std::optional(toml_string(v.to_string()));
}
template <class T>
std::optional<std::string> toml_of(const std::vector<T>& items) {
    if (items.empty()) return std::nullopt;  // an empty list and an absent key mean the same here
    std::string out = "[";
    for (const auto& item : items) out += (out.size() > 1 ? ", " : "") + toml_item(item);
    return out + "]";
}
template <class E, class = std::enable_if_t<std::is_enum_v<E>>>
std::optional<std::string> toml_of(E v) { return toml_string(to_string(v)); }
// Secrets are never printed, only whether one is set.
std::optional<std::string> toml_of(const Secret& v) {
    return v.empty() ? std::nullopt : std::optional(toml_string(v.masked()));
}

template <class T, std::size_t N>
void print_table(std::string& out, const KeySpec<T> (&specs)[N], const T& source) {
    for (const auto& spec : specs) {
        // client_secret_file fills client_secret: that row already printed the (masked) value.
        if (spec.read_file && std::holds_alternative<Secret T::*>(spec.member)) continue;
        std::optional<std::string> value = std::visit([&](auto member) { return toml_of(source.*member); }, spec.member);
        if (value) out += fmt::format("{} = {}\n", spec.name, *value);
        else out += fmt::format("# {} is not set\n", spec.name);
    }
}

}  // namespace

std::vector<KnownKey> known_keys() {
    std::vector<KnownKey> out;
    for (const auto& k : relay_keys) out.push_back({"relay", std::string(k.name), std::string(k.default_toml)});
    for (const auto& k : user_keys) out.push_back({"users", std::string(k.name), std::string(k.default_toml)});
    for (const auto& k : account_keys) out.push_back({"accounts", std::string(k.name), std::string(k.default_toml)});
    return out;
}

std::string print_config(const Config& config) {
    std::string out = fmt::format("# effective configuration of {}\n[relay]\n", config.source.string());
    print_table(out, relay_keys, config.relay);
    for (const auto& user : config.users) {
        out += "\n[[users]]\n";
        User shown = user;
        // A password hash is not the password, but it is still material for an offline guess.
        if (!shown.password_hash.empty()) shown.password_hash = "********";
        print_table(out, user_keys, shown);
    }
    if (!config.aliases.empty()) {
        out += "\n[aliases]\n";
        for (const auto& [name, targets] : config.aliases) {
            out += toml_string(name) + " = [";
            for (std::size_t i = 0; i < targets.size(); ++i) out += (i ? ", " : "") + toml_string(targets[i]);
            out += "]\n";
        }
    }
    for (const auto& [name, account] : config.accounts) {
        out += fmt::format("\n[accounts.{}]\n", name);
        Account shown = account;
        // upstream_user defaults to email but is only valid (and only meaningful) for basic upstream auth.
        if (account.upstream_auth != UpstreamAuth::plain && account.upstream_auth != UpstreamAuth::login)
            shown.upstream_user.clear();
        print_table(out, account_keys, shown);
    }
    return out;
}

}  // namespace relay::conf
