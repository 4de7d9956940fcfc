// Loads the TOML configuration into the typed structs of config.hpp. Every key of every table is one
// row in the key tables below (name, destination member, default, bounds), so adding a setting is one
// line; the member's C++ type decides which TOML type is expected and how it is checked. Rules that
// span several keys (presets, secrets, loopback-only plain text, cross references) follow the tables.
// All problems are collected with their "file:line:col" and thrown together, sorted by position.
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <tuple>
#include <variant>

#include <fmt/format.h>
#include <toml++/toml.h>
#include <unistd.h>

#include "conf/config.hpp"
#include "conf/config_detail.hpp"

namespace relay::conf {
namespace {

namespace fs = std::filesystem;

constexpr std::int64_t kUnbounded = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t kDay = 86400;
constexpr std::int64_t kGiB = 1024LL * 1024 * 1024;

// Where a key's value goes. The alternative's type picks the converter (and so the TOML type).
template <class T>
using Member = std::variant<std::string T::*, std::optional<std::string> T::*, fs::path T::*, bool T::*,
                            std::uint64_t T::*, unsigned T::*, std::chrono::seconds T::*, HostPort T::*,
                            std::vector<HostPort> T::*, std::vector<Network> T::*, LogLevel T::*,
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

// What a converter needs to know about the key it is reading.
struct Field {
    std::string label;  // "relay.listen", "accounts.office.scope", "users[0].name"
    std::int64_t min = 0;
    std::int64_t max = kUnbounded;
    bool read_file = false;
};

// A value quoted for an error message, control bytes escaped so one error stays one line.
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
        const auto d = detail::edit_distance(word, candidate);
        if (d < best_distance) best_distance = d, best = candidate;
    }
    return best.empty() ? "" : fmt::format("; did you mean '{}'?", best);
}

// The whole content of a small file, or why it could not be read (never the content).
struct FileContent {
    std::optional<std::string> data;
    std::string error;
};

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
    Loader(std::string file, fs::path base_dir) : file_(std::move(file)), base_dir_(std::move(base_dir)) {}

    Config load(const toml::table& root);
    std::vector<std::string> errors() const;

private:
    struct Problem {
        std::uint32_t line, column;
        std::string text;
    };

    bool fail(const toml::source_region& where, std::string message) {
        const bool known = where.begin.line > 0;
        problems_.push_back({known ? where.begin.line : 1, known ? where.begin.column : 1, std::move(message)});
        return false;
    }
    bool fail(const toml::node& node, std::string message) { return fail(node.source(), std::move(message)); }

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

    bool convert(const toml::node& node, const Field& f, std::string& out);
    bool convert(const toml::node& node, const Field& f, std::optional<std::string>& out);
    bool convert(const toml::node& node, const Field& f, fs::path& out);
    bool convert(const toml::node& node, const Field& f, bool& out);
    bool convert(const toml::node& node, const Field& f, std::uint64_t& out);
    bool convert(const toml::node& node, const Field& f, unsigned& out);
    bool convert(const toml::node& node, const Field& f, std::chrono::seconds& out);
    bool convert(const toml::node& node, const Field& f, HostPort& out);
    bool convert(const toml::node& node, const Field& f, std::vector<HostPort>& out);
    bool convert(const toml::node& node, const Field& f, std::vector<Network>& out);
    bool convert(const toml::node& node, const Field& f, Secret& out);
    template <class E>
        requires std::is_enum_v<E>
    bool convert(const toml::node& node, const Field& f, E& out);
    bool convert_integer(const toml::node& node, const Field& f, std::int64_t& out);

    std::string file_;
    fs::path base_dir_;  // relative paths in the file are relative to the file's directory
    std::vector<Problem> problems_;
};

std::vector<std::string> Loader::errors() const {
    auto sorted = problems_;
    std::stable_sort(sorted.begin(), sorted.end(), [](const Problem& a, const Problem& b) {
        return std::tie(a.line, a.column) < std::tie(b.line, b.column);
    });
    std::vector<std::string> out;
    for (const auto& p : sorted) out.push_back(fmt::format("{}:{}:{}: {}", file_, p.line, p.column, p.text));
    return out;
}

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
        const Field field{label + "." + std::string(spec.name), spec.min, spec.max, spec.read_file};
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
            if (convert(*node, field, value)) target.*member = std::move(value);
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
    if (table.contains("tenant") && !detail::is_host_name(account.tenant) && !account.tenant.empty())
        fail(position_of(table, "tenant"), fmt::format("{}.tenant: {} is not a tenant name or id", label, quote_value(account.tenant)));
    if (table.contains("email") && account.email.find('@') == std::string::npos)
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
    if (relay.require_auth && config.users.empty())
        fail(position_of(table, "require_auth"), "relay.require_auth: true, but no [[users]] are defined to log in");
}

bool Loader::convert(const toml::node& node, const Field& f, std::string& out) {
    const auto* text = node.as_string();
    if (!text) return fail(node, f.label + ": expected a string");
    if (text->get().empty()) return fail(node, f.label + ": must not be empty");
    out = text->get();
    return true;
}

bool Loader::convert(const toml::node& node, const Field& f, std::optional<std::string>& out) {
    std::string text;
    if (!convert(node, f, text)) return false;
    out = std::move(text);
    return true;
}

bool Loader::convert(const toml::node& node, const Field& f, fs::path& out) {
    std::string text;
    if (!convert(node, f, text)) return false;
    fs::path path = fs::path(text).is_relative() ? base_dir_ / text : fs::path(text);
    if (f.read_file) {
        if (auto content = read_whole_file(path); !content.data)
            return fail(node, fmt::format("{}: cannot read {}: {}", f.label, path.string(), content.error));
    }
    out = std::move(path);
    return true;
}

bool Loader::convert(const toml::node& node, const Field& f, bool& out) {
    const auto* value = node.as_boolean();
    if (!value) return fail(node, f.label + ": expected true or false");
    out = value->get();
    return true;
}

bool Loader::convert_integer(const toml::node& node, const Field& f, std::int64_t& out) {
    const auto* value = node.as_integer();
    if (!value) return fail(node, f.label + ": expected an integer");
    if (value->get() < f.min || value->get() > f.max)
        return fail(node, fmt::format("{}: {} is out of range {}..{}", f.label, value->get(), f.min, f.max));
    out = value->get();
    return true;
}

bool Loader::convert(const toml::node& node, const Field& f, std::uint64_t& out) {
    std::int64_t value;
    if (!convert_integer(node, f, value)) return false;
    out = static_cast<std::uint64_t>(value);
    return true;
}

bool Loader::convert(const toml::node& node, const Field& f, unsigned& out) {
    std::int64_t value;
    if (!convert_integer(node, f, value)) return false;
    out = static_cast<unsigned>(value);
    return true;
}

bool Loader::convert(const toml::node& node, const Field& f, std::chrono::seconds& out) {
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

bool Loader::convert(const toml::node& node, const Field& f, HostPort& out) {
    const auto* text = node.as_string();
    auto parsed = text ? parse_host_port(text->get()) : std::nullopt;
    if (!parsed)
        return fail(node, fmt::format("{}: {}expected \"host:port\" with port 1-65535 (IPv6 as \"[::1]:port\")",
                                      f.label, text ? quote_value(text->get()) + " is not host:port; " : ""));
    out = std::move(*parsed);
    return true;
}

bool Loader::convert(const toml::node& node, const Field& f, std::vector<HostPort>& out) {
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

bool Loader::convert(const toml::node& node, const Field& f, std::vector<Network>& out) {
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

bool Loader::convert(const toml::node& node, const Field& f, Secret& out) {
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

template <class E>
    requires std::is_enum_v<E>
bool Loader::convert(const toml::node& node, const Field& f, E& out) {
    const auto* text = node.as_string();
    std::string choices;
    for (const auto& [name, value] : detail::names_of(E{})) {
        if (text && text->get() == name) {
            out = value;
            return true;
        }
        choices += (choices.empty() ? "" : ", ") + std::string(name);
    }
    return fail(node, fmt::format("{}: expected one of {}{}", f.label, choices,
                                  text ? " (got " + quote_value(text->get()) + ")" : ""));
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
