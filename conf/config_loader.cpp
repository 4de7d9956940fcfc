// Loads the TOML configuration into the typed structs of config.hpp. Every key of every table is one
// row in the key tables (config_keys.hpp: name, destination member, default, bounds), so adding a
// setting is one line; the member's C++ type decides which TOML type is expected and how it is
// checked (value_reader.hpp). Rules that span several keys (presets, secrets, loopback-only plain
// text, cross references) are the checks below and, for an account's table, in account_checks.cpp.
// All problems are collected with their "file:line:col" and thrown together, sorted by position.
#include "conf/loader.hpp"

#include <algorithm>
#include <cctype>
#include <type_traits>
#include <map>
#include <variant>

#include <fmt/format.h>
#include <unistd.h>

#include "conf/config.hpp"
#include "conf/config_detail.hpp"
#include "conf/password_hash_format.hpp"

namespace relay::conf::detail {

template <class T, std::size_t N>
void Loader::read_table(const toml::table& table, const KeySpec<T> (&specs)[N], const std::string& label,
                        std::string_view shown_as, T& target) {
    std::vector<std::string_view> known;
    for (const auto& spec : specs) known.push_back(spec.name);
    for (auto&& [key, node] : table) {
        if (std::find(known.begin(), known.end(), key.str()) == known.end())
            fail(key.source(), fmt::format("unknown key '{}' in {}{}", key.str(), shown_as, did_you_mean(key.str(), known)));
    }
    for (const auto& spec : specs) {
        const detail::Field field{label + "." + std::string(spec.name), spec.min, spec.max, spec.read_file};
        const toml::node* node = table.get(spec.name);
        toml::table default_holder;
        if (!node && !spec.default_toml.empty()) {
            default_holder = toml::parse("v = " + std::string(spec.default_toml));
            node = default_holder.get("v");
        }
        if (!node) {
            if (spec.required) fail(table.source(), fmt::format("{}: missing required key '{}' in {}", label, spec.name, shown_as));
            continue;
        }
        std::visit([&](auto member) {
            std::remove_cvref_t<decltype(target.*member)> value{};
            if (values_.convert(*node, field, value)) target.*member = std::move(value);
        }, spec.member);
    }
}

Config Loader::load(const toml::table& root) {
    Config config;
    const std::vector<std::string_view> top_level{"relay", "users", "accounts", "aliases"};
    for (auto&& [key, node] : root) {
        if (std::find(top_level.begin(), top_level.end(), key.str()) == top_level.end())
            fail(key.source(), fmt::format("unknown key '{}' at the top level (expected [relay], [[users]], "
                                           "[accounts.NAME] or [aliases]){}", key.str(), did_you_mean(key.str(), top_level)));
    }
    const toml::table no_relay_table;
    const toml::table* relay = &no_relay_table;
    if (const toml::node* node = root.get("relay")) {
        if (node->as_table()) relay = node->as_table();
        else fail(*node, "relay: expected a table [relay]");
    }
    read_table(*relay, relay_keys, "relay", "[relay]", config.relay);
    read_accounts(root, config);
    read_users(root, config);
    read_aliases(root, config);
    check_relay(*relay, config);
    check_sizes(*relay, config);
    return config;
}

// Issue 11 item 6: a max_message_size the provider will not take means mail accepted with 250 and
// refused upstream later. Only an explicitly set value is questioned: the default is Exchange's own
// limit, and for a Graph account the relay already advertises and enforces the smaller one.
void Loader::check_sizes(const toml::table& relay_table, Config& config) {
    const toml::node* key = relay_table.get("max_message_size");
    if (!key) return;
    const auto& at = key->source().begin;
    for (const auto& [name, account] : config.accounts) {
        const ProviderSizeLimit limit = provider_size_limit(account);
        if (limit.bytes == 0 || config.relay.max_message_size <= limit.bytes) continue;
        const bool graph = account.transport == TransportKind::graph;
        config.warnings.push_back(fmt::format(
            "{}:{}:{}: warning: relay.max_message_size ({} bytes) exceeds what account {} can deliver ({} bytes: "
            "{}); {}", file_, at.line, at.column, config.relay.max_message_size, name, limit.bytes, limit.why,
            graph ? "its clients are offered and held to the smaller limit (EHLO SIZE)"
                  : "larger messages are accepted here but refused by the provider, unless the tenant raised "
                    "the mailbox's MaxSendSize"));
    }
}

void Loader::read_accounts(const toml::table& root, Config& config) {
    const toml::node* node = root.get("accounts");
    const toml::table* accounts = node ? node->as_table() : nullptr;
    if (node && !accounts) {
        fail(*node, "accounts: expected [accounts.NAME] tables");
        return;
    }
    if (!accounts || accounts->empty()) {
        fail(node ? node->source() : root.source(),
             "no account configured: add an [accounts.NAME] table (at least one is needed)");
        return;
    }
    for (auto&& [key, value] : *accounts) {
        const std::string name(key.str());
        const std::string label = "accounts." + name;
        // The name becomes a file name under state_dir/tokens/, so it must be a plain word.
        const bool plain = !name.empty() && name.front() != '.' && detail::is_host_name(name);
        if (!plain) fail(key.source(), fmt::format("{}: account names may use only letters, digits, '-', '_' and '.'", quote_value(name)));
        const toml::table* table = value.as_table();
        if (!table) {
            fail(value, fmt::format("{}: expected a table [{}]", label, label));
            continue;
        }
        Account account;
        account.name = name;
        read_table(*table, account_keys, label, "[" + label + "]", account);
        check_account(*table, label, account);
        config.accounts.emplace(name, std::move(account));
    }
}

void Loader::read_users(const toml::table& root, Config& config) {
    const toml::node* node = root.get("users");
    if (!node) return;
    const toml::array* users = node->as_array();
    if (!users) {
        fail(*node, "users: expected [[users]] tables");
        return;
    }
    std::vector<std::string_view> account_names;
    for (const auto& [name, account] : config.accounts) account_names.push_back(name);
    std::map<std::string, std::uint32_t> first_line;
    for (std::size_t i = 0; i < users->size(); ++i) {
        const std::string label = fmt::format("users[{}]", i);
        const toml::table* table = (*users)[i].as_table();
        if (!table) {
            fail((*users)[i], label + ": expected a table [[users]]");
            continue;
        }
        User user;
        read_table(*table, user_keys, label, "[[users]]", user);
        const bool password = table->contains("password"), hash = table->contains("password_hash");
        if (password && hash)
            fail(position_of(*table, "password_hash"), label + ": set password or password_hash, not both");
        else if (!password && !hash)
            fail(table->source(), label + ": missing required key 'password' (or 'password_hash') in [[users]]");
        std::string why;
        if (hash && !password && !user.password_hash.empty() && !parse_password_hash(user.password_hash, &why))
            fail(position_of(*table, "password_hash"), fmt::format("{}.password_hash: {}", label, why));
        if (!user.name.empty()) {
            const auto line = position_of(*table, "name").begin.line;
            if (auto [it, inserted] = first_line.emplace(user.name, line); !inserted)
                fail(position_of(*table, "name"), fmt::format("{}.name: duplicate user {} (first defined on line {})",
                                                              label, quote_value(user.name), it->second));
        }
        if (!user.account.empty() && !config.accounts.empty() && !config.find_account(user.account))
            fail(position_of(*table, "account"), fmt::format("{}.account: no account {} in [accounts]{}", label,
                                                             quote_value(user.account), did_you_mean(user.account, account_names)));
        config.users.push_back(std::move(user));
    }
}

// [aliases]: root = "it@contoso.com" or www-data = ["web@contoso.com", "root"]. A target is an address
// or another local name; sendmail resolves them (conf/aliases.hpp).
void Loader::read_aliases(const toml::table& root, Config& config) {
    const toml::node* node = root.get("aliases");
    if (!node) return;
    const toml::table* table = node->as_table();
    if (!table) {
        fail(*node, "aliases: expected a table [aliases] of name = \"address\" or [\"address\", ...]");
        return;
    }
    for (auto&& [key, value] : *table) {
        const std::string name(key.str());
        std::vector<std::string> targets;
        auto add = [&](const toml::node& item) {
            const auto* text = item.as_string();
            std::string target = text ? text->get() : std::string();
            const bool clean = !target.empty() && std::none_of(target.begin(), target.end(), [](char c) {
                return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f || c == '<' || c == '>' || c == ',';
            });
            if (!clean) fail(item, fmt::format("aliases.{}: expected an address or a local name, without spaces, "
                                               "commas or <>", name));
            else targets.push_back(target);
        };
        if (const toml::array* list = value.as_array()) {
            if (list->empty()) fail(value, fmt::format("aliases.{}: an empty list sends the mail nowhere", name));
            for (const auto& item : *list) add(item);
        } else {
            add(value);
        }
        std::string lowered = name;
        for (auto& c : lowered) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (name.find('@') != std::string::npos || name.empty())
            fail(key.source(), fmt::format("aliases.{}: an alias is a local name such as root, without @", name));
        config.aliases[lowered] = std::move(targets);
    }
}

void Loader::check_relay(const toml::table& table, Config& config) {
    RelaySettings& relay = config.relay;
    if (relay.default_account && !config.accounts.empty() && !config.find_account(*relay.default_account)) {
        std::vector<std::string_view> names;
        for (const auto& [name, account] : config.accounts) names.push_back(name);
        fail(position_of(table, "default_account"),
             fmt::format("relay.default_account: no account {} in [accounts]{}", quote_value(*relay.default_account),
                         did_you_mean(*relay.default_account, names)));
    }
    if (table.contains("hostname") && !relay.hostname.empty() && !detail::is_host_name(relay.hostname))
        fail(position_of(table, "hostname"), fmt::format("relay.hostname: {} is not a host name", quote_value(relay.hostname)));
    if (relay.hostname.empty()) {
        char name[256] = {};
        relay.hostname = ::gethostname(name, sizeof name - 1) == 0 && name[0] ? name : "localhost";
    }
    if (relay.max_backoff < relay.min_backoff)
        fail(position_of(table, table.contains("max_backoff") ? "max_backoff" : "min_backoff"),
             fmt::format("relay.max_backoff ({}s) must not be less than relay.min_backoff ({}s)",
                         relay.max_backoff.count(), relay.min_backoff.count()));
    check_hostile_limits(table, relay);
    if (relay.control_socket.empty()) relay.control_socket = relay.state_dir / "control.sock";
    // sockaddr_un.sun_path holds 108 bytes including the terminating NUL.
    if (relay.control_socket.string().size() > 107)
        fail(position_of(table, table.contains("control_socket") ? "control_socket" : "state_dir"),
             fmt::format("relay.control_socket: {} is longer than a unix socket path may be (107 bytes); "
                         "set control_socket to a shorter path", relay.control_socket.string()));
    if (relay.require_auth && config.users.empty())
        fail(position_of(table, "require_auth"), "relay.require_auth: true, but no [[users]] are defined to log in");
}

void Loader::check_hostile_limits(const toml::table& table, RelaySettings& relay) {
    if (relay.bare_newlines != "reject" && relay.bare_newlines != "normalize")
        fail(position_of(table, "bare_newlines"),
             fmt::format("relay.bare_newlines: expected \"reject\" or \"normalize\", not {}", quote_value(relay.bare_newlines)));
    const std::vector<std::string_view> versions{"1.0", "1.1", "1.2", "1.3"};
    if (std::find(versions.begin(), versions.end(), relay.min_tls_version) == versions.end())
        fail(position_of(table, "min_tls_version"),
             fmt::format("relay.min_tls_version: expected \"1.2\" or \"1.3\", not {}", quote_value(relay.min_tls_version)));
    else if (relay.min_tls_version < "1.2" && !relay.allow_legacy_tls)
        fail(position_of(table, "min_tls_version"),
             fmt::format("relay.min_tls_version: TLS {} is obsolete (RFC 8996); set allow_legacy_tls = true to accept it anyway",
                         relay.min_tls_version));
    if (table.contains("tls_cert") != table.contains("tls_key"))
        fail(position_of(table, table.contains("tls_cert") ? "tls_cert" : "tls_key"),
             "relay.tls_cert and relay.tls_key: set both or neither (neither: a self-signed pair is generated)");
    if (relay.max_errors < relay.soft_error_limit) relay.soft_error_limit = relay.max_errors;
}

}  // namespace relay::conf::detail

namespace relay::conf {

Config parse_config(std::string_view toml_text, const std::filesystem::path& source_name) {
    const std::string file = source_name.string();
    toml::table root;
    try {
        root = toml::parse(toml_text, file);
    } catch (const toml::parse_error& e) {
        const auto& at = e.source().begin;
        throw ConfigError({fmt::format("{}:{}:{}: {}", file, at.line, at.column, e.description())});
    }
    detail::Loader loader(file, source_name.parent_path());
    Config config = loader.load(root);
    config.source = source_name;
    if (auto errors = loader.errors(); !errors.empty()) throw ConfigError(std::move(errors));
    return config;
}

Config load_config(const std::filesystem::path& file) {
    auto content = detail::read_whole_file(file);
    if (!content.data) throw ConfigError({fmt::format("{}: cannot read: {}", file.string(), content.error)});
    return parse_config(*content.data, file);
}

}  // namespace relay::conf