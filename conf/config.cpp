// Loads the TOML configuration into the typed structs of config.hpp. Every key of every table is one
// row in the key tables below (name, destination member, default, bounds), so adding a setting is one
// line; the member's C++ type decides which TOML type is expected and how it is checked. Rules that
// span several keys (presets, secrets, loopback-only plain text, cross references) follow the tables.
// All problems are collected with their "file:line:col" and thrown together, sorted by position.
#include <algorithm>
#include <type_traits>
#include <map>
#include <variant>

#include <fmt/format.h>
#include <toml++/toml.h>
#include <unistd.h>

#include "conf/config.hpp"
#include "conf/config_detail.hpp"
#include "conf/value_reader.hpp"

namespace relay::conf {
namespace {

namespace fs = std::filesystem;

using detail::kUnbounded;
using detail::did_you_mean;
using detail::quote_value;
using detail::read_whole_file;

constexpr std::int64_t kDay = 86400;
constexpr std::int64_t kGiB = 1024LL * 1024 * 1024;

// Where a key's value goes. The alternative's type picks the converter (and so the TOML type).
template <class T>
using Member = std::variant<std::string T::*, std::optional<std::string> T::*, fs::path T::*, bool T::*,
                            std::uint64_t T::*, unsigned T::*, std::chrono::seconds T::*, HostPort T::*,
                            std::vector<HostPort> T::*, std::vector<Network> T::*, LogLevel T::*, LogFormat T::*,
                            Provider T::*, UpstreamTls T::*, UpstreamAuth T::*, Secret T::*>;

template <class T>
struct KeySpec {
    std::string_view name;
    Member<T> member;
    std::string_view default_toml{};  // the default as it would be written in the file; empty: none
    bool required = false;
    std::int64_t min = 0;             // bounds for integers and durations (in seconds)
    std::int64_t max = kUnbounded;
    bool read_file = false;           // a path read at load: a secret's content, or a must-be-readable file
};

const KeySpec<RelaySettings> relay_keys[] = {
    {.name = "listen", .member = &RelaySettings::listen, .default_toml = R"(["127.0.0.1:2525"])"},
    {.name = "allow_networks", .member = &RelaySettings::allow_networks, .default_toml = R"(["127.0.0.0/8", "::1/128"])"},
    {.name = "spool_dir", .member = &RelaySettings::spool_dir, .default_toml = R"("/var/spool/smtp-oauth2-relay")"},
    {.name = "state_dir", .member = &RelaySettings::state_dir, .default_toml = R"("/var/lib/smtp-oauth2-relay")"},
    // 35 MiB is Exchange Online's default per-message limit; 2 GiB keeps sizes within 31 bits.
    {.name = "max_message_size", .member = &RelaySettings::max_message_size, .default_toml = "36700160",
     .min = 1024, .max = 2 * kGiB},
    {.name = "default_account", .member = &RelaySettings::default_account},
    {.name = "require_auth", .member = &RelaySettings::require_auth, .default_toml = "false"},
    {.name = "hostname", .member = &RelaySettings::hostname},  // default: gethostname(), see check_relay
    {.name = "min_backoff", .member = &RelaySettings::min_backoff, .default_toml = R"("300s")", .min = 1, .max = kDay},
    {.name = "max_backoff", .member = &RelaySettings::max_backoff, .default_toml = R"("4000s")", .min = 1, .max = 7 * kDay},
    {.name = "max_queue_lifetime", .member = &RelaySettings::max_queue_lifetime, .default_toml = R"("5d")",
     .min = 1, .max = 100 * kDay},
    {.name = "log_level", .member = &RelaySettings::log_level, .default_toml = R"("info")"},
    // Service (issue 5): log sink, the local status socket, optional Prometheus endpoint.
    {.name = "log_format", .member = &RelaySettings::log_format, .default_toml = R"("auto")"},
    {.name = "control_socket", .member = &RelaySettings::control_socket},  // default: state_dir/control.sock
    {.name = "metrics_listen", .member = &RelaySettings::metrics_listen},  // unset: no metrics endpoint
};

const KeySpec<User> user_keys[] = {
    {.name = "name", .member = &User::name, .required = true},
    {.name = "password", .member = &User::password},        // exactly one of password / password_hash
    {.name = "password_hash", .member = &User::password_hash},
    {.name = "account", .member = &User::account, .required = true},
};

const KeySpec<Account> account_keys[] = {
    {.name = "provider", .member = &Account::provider, .default_toml = R"("microsoft")"},
    {.name = "tenant", .member = &Account::tenant},  // microsoft: required unless token_url is set
    {.name = "client_id", .member = &Account::client_id, .required = true},
    {.name = "client_secret", .member = &Account::client_secret},  // optional: public clients have none
    {.name = "client_secret_file", .member = &Account::client_secret, .read_file = true},
    {.name = "email", .member = &Account::email, .required = true},
    {.name = "token_url", .member = &Account::token_url},  // token_url, scope, upstream: provider preset
    {.name = "scope", .member = &Account::scope},
    {.name = "upstream", .member = &Account::upstream},
    {.name = "upstream_tls", .member = &Account::upstream_tls, .default_toml = R"("starttls")"},
    {.name = "upstream_ca_file", .member = &Account::upstream_ca_file, .read_file = true},
    {.name = "upstream_auth", .member = &Account::upstream_auth, .default_toml = R"("xoauth2")"},
    // Exchange Online allows 3 concurrent SMTP AUTH sessions per mailbox (a 4th gets 432 4.3.2).
    {.name = "max_connections", .member = &Account::max_connections, .default_toml = "3", .min = 1, .max = 100},
};

struct Preset {
    Provider provider;
    std::string_view token_url;  // "{tenant}" is replaced by the account's tenant
    std::string_view scope;
    std::string_view upstream;
};

const Preset presets[] = {
    {Provider::microsoft, "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",
     "https://outlook.office.com/SMTP.Send offline_access", "smtp.office365.com:587"},
    {Provider::google, "https://oauth2.googleapis.com/token", "https://mail.google.com/", "smtp.gmail.com:587"},
};

// http:// is acceptable only when the request cannot leave the machine.
bool is_acceptable_token_url(std::string_view url) {
    if (url.starts_with("https://")) return url.size() > 8;
    if (!url.starts_with("http://")) return false;
    std::string_view authority = url.substr(7);
    authority = authority.substr(0, authority.find_first_of("/?#"));
    if (authority.find('@') != std::string_view::npos) return false;
    std::string_view host = authority;
    if (host.starts_with('[')) host = host.substr(1, host.find(']') - 1);
    else host = host.substr(0, host.find(':'));
    return detail::is_loopback_host(host);
}

class Loader {
public:
    Loader(std::string file, fs::path base_dir) : values_(std::move(file), std::move(base_dir)) {}

    Config load(const toml::table& root);
    std::vector<std::string> errors() const { return values_.errors(); }

private:
    template <class Where>
    void fail(const Where& where, std::string message) { values_.fail(where, std::move(message)); }

    // The key's value when present, else the table itself (for "missing" and cross-key problems).
    static const toml::source_region& position_of(const toml::table& table, std::string_view key) {
        const toml::node* node = table.get(key);
        return node ? node->source() : table.source();
    }

    template <class T, std::size_t N>
    void read_table(const toml::table& table, const KeySpec<T> (&specs)[N], const std::string& label,
                    std::string_view shown_as, T& target);
    void read_accounts(const toml::table& root, Config& config);
    void read_users(const toml::table& root, Config& config);
    void check_account(const toml::table& table, const std::string& label, Account& account);
    void check_relay(const toml::table& table, Config& config);

    detail::ValueReader values_;
};

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
    const std::vector<std::string_view> top_level{"relay", "users", "accounts"};
    for (auto&& [key, node] : root) {
        if (std::find(top_level.begin(), top_level.end(), key.str()) == top_level.end())
            fail(key.source(), fmt::format("unknown key '{}' at the top level (expected [relay], [[users]] or "
                                           "[accounts.NAME]){}", key.str(), did_you_mean(key.str(), top_level)));
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
    check_relay(*relay, config);
    return config;
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

void Loader::check_account(const toml::table& table, const std::string& label, Account& account) {
    if (table.contains("client_secret") && table.contains("client_secret_file"))
        fail(position_of(table, "client_secret_file"), label + ": set client_secret or client_secret_file, not both");
    if (!account.tenant.empty() && !detail::is_host_name(account.tenant))
        fail(position_of(table, "tenant"), fmt::format("{}.tenant: {} is not a tenant name or id", label, quote_value(account.tenant)));
    if (!account.email.empty() && account.email.find('@') == std::string::npos)
        fail(position_of(table, "email"), label + ".email: expected a mailbox address such as user@example.com");

    const auto preset = std::find_if(std::begin(presets), std::end(presets),
                                     [&](const Preset& p) { return p.provider == account.provider; });
    const bool has_preset = preset != std::end(presets);
    const auto missing = [&](std::string_view key) {
        fail(table.source(), fmt::format("{}: missing required key '{}' in [{}] (provider \"custom\" has no preset)",
                                         label, key, label));
    };
    if (table.contains("token_url")) {
        if (!account.token_url.empty() && !is_acceptable_token_url(account.token_url))
            fail(position_of(table, "token_url"),
                 label + ".token_url: must be an https:// URL (http:// only for a loopback host)");
    } else if (!has_preset) {
        missing("token_url");
    } else if (account.provider == Provider::microsoft && !table.contains("tenant")) {
        fail(table.source(), fmt::format("{}: missing required key 'tenant' in [{}] (the Microsoft token URL "
                                         "needs it, e.g. \"contoso.onmicrosoft.com\"; or set token_url)", label, label));
    } else {
        std::string url(preset->token_url);
        if (auto at = url.find("{tenant}"); at != std::string::npos) url.replace(at, 8, account.tenant);
        account.token_url = url;
    }
    if (!table.contains("scope")) {
        if (has_preset) account.scope = preset->scope;
        else missing("scope");
    }
    if (!table.contains("upstream")) {
        if (has_preset) account.upstream = *parse_host_port(preset->upstream);
        else missing("upstream");
    }
    // Without TLS the access token and the mail cross the network in clear text (RFC 7628 section 5).
    if (account.upstream_tls == UpstreamTls::none && !account.upstream.host.empty() &&
        !detail::is_loopback_host(account.upstream.host))
        fail(position_of(table, "upstream_tls"),
             fmt::format("{}.upstream_tls: \"none\" would send the access token and mail unencrypted; it is allowed "
                         "only for a loopback upstream (127.0.0.0/8, ::1, localhost), not {}",
                         label, account.upstream.host));
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
    if (relay.control_socket.empty()) relay.control_socket = relay.state_dir / "control.sock";
    // sockaddr_un.sun_path holds 108 bytes including the terminating NUL.
    if (relay.control_socket.string().size() > 107)
        fail(position_of(table, table.contains("control_socket") ? "control_socket" : "state_dir"),
             fmt::format("relay.control_socket: {} is longer than a unix socket path may be (107 bytes); "
                         "set control_socket to a shorter path", relay.control_socket.string()));
    if (relay.require_auth && config.users.empty())
        fail(position_of(table, "require_auth"), "relay.require_auth: true, but no [[users]] are defined to log in");
}

}  // namespace

Config parse_config(std::string_view toml_text, const std::filesystem::path& source_name) {
    const std::string file = source_name.string();
    toml::table root;
    try {
        root = toml::parse(toml_text, file);
    } catch (const toml::parse_error& e) {
        const auto& at = e.source().begin;
        throw ConfigError({fmt::format("{}:{}:{}: {}", file, at.line, at.column, e.description())});
    }
    Loader loader(file, source_name.parent_path());
    Config config = loader.load(root);
    config.source = source_name;
    if (auto errors = loader.errors(); !errors.empty()) throw ConfigError(std::move(errors));
    return config;
}

Config load_config(const std::filesystem::path& file) {
    auto content = read_whole_file(file);
    if (!content.data) throw ConfigError({fmt::format("{}: cannot read: {}", file.string(), content.error)});
    return parse_config(*content.data, file);
}

}  // namespace relay::conf

// ---- The effective configuration, printed from the same key tables the loader reads. ----
namespace relay::conf {
namespace {

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
std::optional<std::string> toml_of(const HostPort& v) {
    return v.port == 0 ? std::nullopt : std::optional(toml_string(v.to_string()));
}
template <class T>
std::optional<std::string> toml_of(const std::vector<T>& items) {
    std::string out = "[";
    for (const auto& item : items) out += (out.size() > 1 ? ", " : "") + toml_string(item.to_string());
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
    for (const auto& [name, account] : config.accounts) {
        out += fmt::format("\n[accounts.{}]\n", name);
        print_table(out, account_keys, account);
    }
    return out;
}

}  // namespace relay::conf
