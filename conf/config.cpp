// Loads the TOML configuration into the typed structs of config.hpp. Every key of every table is one
// row in the key tables below (name, destination member, default, bounds), so adding a setting is one
// line; the member's C++ type decides which TOML type is expected and how it is checked. Rules that
// span several keys (presets, secrets, loopback-only plain text, cross references) follow the tables.
// All problems are collected with their "file:line:col" and thrown together, sorted by position.
#include <algorithm>
#include <cctype>
#include <type_traits>
#include <map>
#include <tuple>
#include <variant>

#include <fmt/format.h>
#include <toml++/toml.h>
#include <unistd.h>

#include "conf/config.hpp"
#include "conf/config_detail.hpp"
#include "conf/config_keys.hpp"
#include "conf/password_hash_format.hpp"
#include "conf/redirect_uri.hpp"
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
                            Provider T::*, UpstreamTls T::*, UpstreamAuth T::*, Secret T::*,
                            AuthMode T::*, Cloud T::*,
                            std::optional<std::chrono::seconds> T::*, std::vector<std::string> T::*,
                            DeliveryMode T::*, TransportKind T::*>;

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
    // Hostile-client limits and local TLS (issue 6). Values are checked in check_relay.
    {.name = "bare_newlines", .member = &RelaySettings::bare_newlines, .default_toml = R"("reject")"},
    {.name = "max_command_line", .member = &RelaySettings::max_command_line, .default_toml = "512", .min = 512, .max = 65536},
    {.name = "max_line_length", .member = &RelaySettings::max_line_length, .default_toml = "1000", .min = 1000, .max = 1048576},
    {.name = "max_recipients", .member = &RelaySettings::max_recipients, .default_toml = "1000", .min = 100, .max = 100000},
    {.name = "soft_error_limit", .member = &RelaySettings::soft_error_limit, .default_toml = "10", .min = 1, .max = 1000},
    {.name = "error_delay", .member = &RelaySettings::error_delay, .default_toml = R"("1s")", .min = 0, .max = 60},
    {.name = "max_errors", .member = &RelaySettings::max_errors, .default_toml = "20", .min = 1, .max = 1000},
    {.name = "command_timeout", .member = &RelaySettings::command_timeout, .default_toml = R"("300s")", .min = 1, .max = kDay},
    {.name = "session_timeout", .member = &RelaySettings::session_timeout, .default_toml = R"("3600s")", .min = 1, .max = kDay},
    {.name = "min_data_rate", .member = &RelaySettings::min_data_rate, .default_toml = "500", .min = 0, .max = kGiB},
    {.name = "min_data_rate_window", .member = &RelaySettings::min_data_rate_window, .default_toml = R"("30s")", .min = 1, .max = 30},
    {.name = "greet_pause", .member = &RelaySettings::greet_pause, .default_toml = R"("0s")", .min = 0, .max = 30},
    {.name = "max_clients", .member = &RelaySettings::max_clients, .default_toml = "4096", .min = 1, .max = 1000000},
    {.name = "max_clients_per_ip", .member = &RelaySettings::max_clients_per_ip, .default_toml = "1024", .min = 1, .max = 1000000},
    {.name = "auth_failure_delay", .member = &RelaySettings::auth_failure_delay, .default_toml = R"("2s")", .min = 0, .max = 60},
    {.name = "auth_max_failures", .member = &RelaySettings::auth_max_failures, .default_toml = "10", .min = 1, .max = 10000},
    {.name = "auth_lockout", .member = &RelaySettings::auth_lockout, .default_toml = R"("900s")", .min = 1, .max = kDay},
    {.name = "listen_tls", .member = &RelaySettings::listen_tls},  // absent: no implicit-TLS listener
    {.name = "tls_cert", .member = &RelaySettings::tls_cert, .read_file = true},
    {.name = "tls_key", .member = &RelaySettings::tls_key, .read_file = true},
    {.name = "min_tls_version", .member = &RelaySettings::min_tls_version, .default_toml = R"("1.2")"},
    {.name = "allow_legacy_tls", .member = &RelaySettings::allow_legacy_tls, .default_toml = "false"},
    {.name = "allow_plaintext_auth", .member = &RelaySettings::allow_plaintext_auth, .default_toml = "false"},
    // Service (issue 5): log sink, the local status socket, optional Prometheus endpoint.
    {.name = "log_format", .member = &RelaySettings::log_format, .default_toml = R"("auto")"},
    {.name = "control_socket", .member = &RelaySettings::control_socket},  // default: state_dir/control.sock
    {.name = "metrics_listen", .member = &RelaySettings::metrics_listen},  // unset: no metrics endpoint
    {.name = "alias_file", .member = &RelaySettings::alias_file, .default_toml = R"("/etc/aliases")"},
};

const KeySpec<User> user_keys[] = {
    {.name = "name", .member = &User::name, .required = true},
    {.name = "password", .member = &User::password},        // exactly one of password / password_hash
    {.name = "password_hash", .member = &User::password_hash},
    {.name = "account", .member = &User::account, .required = true},
    {.name = "allowed_senders", .member = &User::allowed_senders},  // empty: any sender
};

const KeySpec<Account> account_keys[] = {
    {.name = "provider", .member = &Account::provider, .default_toml = R"("microsoft")"},
    {.name = "tenant", .member = &Account::tenant},  // microsoft: required unless token_url is set
    {.name = "client_id", .member = &Account::client_id},  // required unless upstream_auth needs no token
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
    // authorize: loopback redirect (RFC 8252 7.3) and the sign-in endpoints (provider preset).
    {.name = "redirect_uri", .member = &Account::redirect_uri, .default_toml = R"("http://localhost")"},
    {.name = "authorize_url", .member = &Account::authorize_url},
    {.name = "devicecode_url", .member = &Account::devicecode_url},
    // App-only accounts, national clouds, basic upstream auth, refresh token upkeep: see check_account.
    {.name = "auth", .member = &Account::auth, .default_toml = R"("delegated")"},
    {.name = "cloud", .member = &Account::cloud, .default_toml = R"("global")"},
    {.name = "client_certificate_file", .member = &Account::client_certificate_file, .read_file = true},
    {.name = "client_key_file", .member = &Account::client_key_file, .read_file = true},
    {.name = "upstream_user", .member = &Account::upstream_user},
    {.name = "upstream_password", .member = &Account::upstream_password},
    {.name = "upstream_password_file", .member = &Account::upstream_password, .read_file = true},
    // Microsoft drops refresh tokens unused for 90 days: warn well before, refresh idle ones weekly.
    {.name = "refresh_token_warn_days", .member = &Account::refresh_token_warn_days, .default_toml = "60",
     .min = 1, .max = 3650},
    {.name = "keepalive_refresh", .member = &Account::keepalive_refresh, .default_toml = R"("7d")",
     .min = 1, .max = 365 * kDay},
    // Delivery policy. Exchange Online: about 30 messages a minute and 500 recipients per message.
    {.name = "send_as", .member = &Account::send_as},
    {.name = "rate_per_minute", .member = &Account::rate_per_minute, .default_toml = "30", .min = 0, .max = 100000},
    {.name = "max_recipients_per_message", .member = &Account::max_recipients_per_message, .default_toml = "500",
     .min = 1, .max = 100000},
    {.name = "min_backoff", .member = &Account::min_backoff, .min = 1, .max = kDay},
    {.name = "max_backoff", .member = &Account::max_backoff, .min = 1, .max = 7 * kDay},
    {.name = "max_queue_lifetime", .member = &Account::max_queue_lifetime, .min = 1, .max = 100 * kDay},
    {.name = "bounce", .member = &Account::bounce, .default_toml = "false"},
    {.name = "delivery", .member = &Account::delivery, .default_toml = R"("queue")"},
    // Microsoft Graph sendMail (issue 14); graph_url and the Graph scopes come from the cloud preset.
    {.name = "transport", .member = &Account::transport, .default_toml = R"("smtp")"},
    {.name = "graph_url", .member = &Account::graph_url},
    {.name = "save_to_sent_items", .member = &Account::save_to_sent_items, .default_toml = "true"},
    // Graph's Outlook throttling allows 4 concurrent requests per mailbox; more get 429.
    {.name = "graph_concurrent_requests", .member = &Account::graph_concurrent_requests, .default_toml = "4",
     .min = 1, .max = 4},
};

struct Preset {
    Provider provider;
    std::string_view token_url;  // "{login}" is replaced by login_host(), "{tenant}" by the account's tenant
    std::string_view scope;
    std::string_view upstream;
    std::string_view authorize_url = {};
    std::string_view devicecode_url = {};  // empty: the provider offers no device flow for mail scopes
};

const Preset presets[] = {
    {Provider::microsoft, "https://{login}/{tenant}/oauth2/v2.0/token",
     "https://outlook.office.com/SMTP.Send offline_access", "smtp.office365.com:587",
     "https://{login}/{tenant}/oauth2/v2.0/authorize", "https://{login}/{tenant}/oauth2/v2.0/devicecode"},
    // Google refuses the device flow for https://mail.google.com/, so it has no devicecode_url.
    {Provider::google, "https://oauth2.googleapis.com/token", "https://mail.google.com/", "smtp.gmail.com:587",
     "https://accounts.google.com/o/oauth2/auth"},
};

// Microsoft's national clouds (PROVIDERS.md): same paths, other login and SMTP hosts, and the
// cloud's own Exchange resource in the scopes.
struct MicrosoftCloud {
    Cloud cloud;
    std::string_view login_host;       // the {login} host in the preset URLs
    std::string_view delegated_scope;
    std::string_view app_scope;        // client_credentials: the resource's .default (SMTP.SendAsApp)
    std::string_view upstream;
    // transport = "graph": the cloud's Graph host; its token audience differs from SMTP's, so the
    // scopes differ too (delegated Mail.Send, app-only the Graph resource's .default).
    std::string_view graph_url;
    std::string_view graph_delegated_scope;
    std::string_view graph_app_scope;
};

const MicrosoftCloud microsoft_clouds[] = {
    {Cloud::global, "login.microsoftonline.com", "https://outlook.office.com/SMTP.Send offline_access",
     "https://outlook.office365.com/.default", "smtp.office365.com:587", "https://graph.microsoft.com",
     "https://graph.microsoft.com/Mail.Send offline_access", "https://graph.microsoft.com/.default"},
    {Cloud::usgov, "login.microsoftonline.us", "https://outlook.office365.us/SMTP.Send offline_access",
     "https://outlook.office365.us/.default", "smtp.office365.us:587", "https://graph.microsoft.us",
     "https://graph.microsoft.us/Mail.Send offline_access", "https://graph.microsoft.us/.default"},
    {Cloud::china, "login.partner.microsoftonline.cn", "https://partner.outlook.cn/SMTP.Send offline_access",
     "https://partner.outlook.cn/.default", "smtp.partner.outlook.cn:587", "https://microsoftgraph.chinacloudapi.cn",
     "https://microsoftgraph.chinacloudapi.cn/Mail.Send offline_access",
     "https://microsoftgraph.chinacloudapi.cn/.default"},
};

const MicrosoftCloud& microsoft_cloud(Cloud cloud) {
    for (const auto& c : microsoft_clouds)
        if (c.cloud == cloud) return c;
    return microsoft_clouds[0];
}

// The Microsoft identity platform host of the account's cloud: the one place that picks it.
std::string login_host(const Account& account) {
    return std::string(microsoft_cloud(account.cloud).login_host);
}

// A preset URL for this account: "{login}" and "{tenant}" filled in.
std::string preset_url(std::string_view pattern, const Account& account) {
    std::string url(pattern);
    if (auto at = url.find("{login}"); at != std::string::npos) url.replace(at, 7, login_host(account));
    if (auto at = url.find("{tenant}"); at != std::string::npos) url.replace(at, 8, account.tenant);
    return url;
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
    void read_aliases(const toml::table& root, Config& config);
    void check_account(const toml::table& table, const std::string& label, Account& account);
    void check_sign_in_endpoints(const toml::table& table, const std::string& label, Account& account,
                                 const Preset* preset);
    void check_account_auth(const toml::table& table, const std::string& label, Account& account);
    void check_graph(const toml::table& table, const std::string& label, Account& account);
    void check_relay(const toml::table& table, Config& config);
    void check_hostile_limits(const toml::table& table, RelaySettings& relay);

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
    const bool app = account.auth == AuthMode::client_credentials;
    const MicrosoftCloud* cloud = account.provider == Provider::microsoft ? &microsoft_cloud(account.cloud) : nullptr;
    // Basic or no upstream auth needs no token, so none of the OAuth endpoints or ids.
    const bool graph = account.transport == TransportKind::graph;
    const bool needs_token = graph || account.upstream_auth == UpstreamAuth::xoauth2 ||
                             account.upstream_auth == UpstreamAuth::oauthbearer;
    if (needs_token && !table.contains("client_id"))
        fail(table.source(), fmt::format("{}: missing required key 'client_id' in [{}]", label, label));
    // The shipped config's all-zero id would only fail later, at the provider, as AADSTS700016.
    if (needs_token && !account.client_id.empty() &&
        account.client_id.find_first_not_of("0-") == std::string::npos)
        fail(position_of(table, "client_id"),
             fmt::format("{}.client_id: {} is the example's placeholder; use the Application (client) ID of "
                         "your app registration (Entra ID > App registrations > Overview)", label, account.client_id));
    if (table.contains("token_url")) {
        if (!account.token_url.empty() && !is_acceptable_token_url(account.token_url))
            fail(position_of(table, "token_url"),
                 label + ".token_url: must be an https:// URL (http:// only for a loopback host)");
    } else if (!needs_token) {
        // nothing to fill: this account never asks for a token
    } else if (!has_preset) {
        missing("token_url");
    } else if (account.provider == Provider::microsoft && !table.contains("tenant")) {
        fail(table.source(), fmt::format("{}: missing required key 'tenant' in [{}] (the Microsoft token URL "
                                         "needs it, e.g. \"contoso.onmicrosoft.com\"; or set token_url)", label, label));
    } else {
        account.token_url = preset_url(preset->token_url, account);
    }
    check_sign_in_endpoints(table, label, account, has_preset ? &*preset : nullptr);
    if (!table.contains("scope") && needs_token) {
        if (cloud && graph) account.scope = app ? cloud->graph_app_scope : cloud->graph_delegated_scope;
        else if (graph) missing("scope");
        else if (cloud) account.scope = app ? cloud->app_scope : cloud->delegated_scope;
        else if (has_preset && !app) account.scope = preset->scope;
        else if (!has_preset) missing("scope");
    }
    if (!table.contains("upstream")) {
        if (cloud) account.upstream = *parse_host_port(cloud->upstream);
        else if (has_preset) account.upstream = *parse_host_port(preset->upstream);
        else if (!graph) missing("upstream");
    }
    if (table.contains("cloud") && account.provider != Provider::microsoft)
        fail(position_of(table, "cloud"), label + ".cloud: only provider \"microsoft\" has national clouds");
    check_account_auth(table, label, account);
    check_graph(table, label, account);
    // Without TLS the access token and the mail cross the network in clear text (RFC 7628 section 5).
    if (account.upstream_tls == UpstreamTls::none && !account.upstream.host.empty() &&
        !detail::is_loopback_host(account.upstream.host))
        fail(position_of(table, "upstream_tls"),
             fmt::format("{}.upstream_tls: \"none\" would send the access token and mail unencrypted; it is allowed "
                         "only for a loopback upstream (127.0.0.0/8, ::1, localhost), not {}",
                         label, account.upstream.host));
}

// redirect_uri, authorize_url, devicecode_url: what `authorize` needs. A missing endpoint is not an
// error here (the relay itself never uses them); `authorize` says what to set.
void Loader::check_sign_in_endpoints(const toml::table& table, const std::string& label, Account& account,
                                     const Preset* preset) {
    if (!parse_loopback_redirect(account.redirect_uri))
        fail(position_of(table, "redirect_uri"),
             fmt::format("{}.redirect_uri: {} must be an http:// URL on a loopback host (localhost, 127.0.0.1 or "
                         "[::1]) with an optional port and path, e.g. \"http://localhost\"",
                         label, quote_value(account.redirect_uri)));
    const bool tenant_known = account.provider != Provider::microsoft || table.contains("tenant");
    for (auto [key, member, pattern] : {std::tuple{"authorize_url", &Account::authorize_url,
                                                   preset ? preset->authorize_url : std::string_view{}},
                                        std::tuple{"devicecode_url", &Account::devicecode_url,
                                                   preset ? preset->devicecode_url : std::string_view{}}}) {
        if (table.contains(key)) {
            if (!is_acceptable_token_url(account.*member))
                fail(position_of(table, key),
                     fmt::format("{}.{}: must be an https:// URL (http:// only for a loopback host)", label, key));
        } else if (!pattern.empty() && tenant_known) {
            account.*member = preset_url(pattern, account);
        }
    }
}

// The credentials each auth mode needs: exactly one client credential for app-only accounts, a
// password for basic upstream auth, and nothing that would be silently ignored.
void Loader::check_account_auth(const toml::table& table, const std::string& label, Account& account) {
    const bool app = account.auth == AuthMode::client_credentials;
    const bool has_secret = table.contains("client_secret") || table.contains("client_secret_file");
    const bool has_cert = table.contains("client_certificate_file"), has_key = table.contains("client_key_file");
    if (has_cert != has_key)
        fail(position_of(table, has_cert ? "client_certificate_file" : "client_key_file"),
             label + ": client_certificate_file and client_key_file go together (the certificate and its private key)");
    if ((has_cert || has_key) && !app)
        fail(position_of(table, has_cert ? "client_certificate_file" : "client_key_file"),
             label + ": a client certificate is used only with auth = \"client_credentials\"");
    if (app && has_secret && (has_cert || has_key))
        fail(position_of(table, has_cert ? "client_certificate_file" : "client_key_file"),
             label + ": set client_secret or a client certificate, not both");
    if (app && account.provider == Provider::google)
        fail(position_of(table, "auth"), label + ".auth: Google offers no client credentials grant for Gmail; "
                                                 "use auth = \"delegated\"");
    else if (app && !has_secret && !has_cert && !has_key && account.upstream_auth != UpstreamAuth::none)
        fail(position_of(table, "auth"), label + ": auth = \"client_credentials\" needs client_secret (or "
                                                 "client_secret_file) or client_certificate_file + client_key_file");

    const bool basic = account.upstream_auth == UpstreamAuth::plain || account.upstream_auth == UpstreamAuth::login;
    const bool has_password = table.contains("upstream_password") || table.contains("upstream_password_file");
    if (table.contains("upstream_password") && table.contains("upstream_password_file"))
        fail(position_of(table, "upstream_password_file"), label + ": set upstream_password or upstream_password_file, not both");
    if (basic && !has_password)
        fail(position_of(table, "upstream_auth"), fmt::format("{}: upstream_auth = \"{}\" needs upstream_password or "
                                                              "upstream_password_file", label, to_string(account.upstream_auth)));
    if (!basic && (has_password || table.contains("upstream_user"))) {
        const char* key = table.contains("upstream_user")       ? "upstream_user"
                          : table.contains("upstream_password") ? "upstream_password"
                                                                : "upstream_password_file";
        fail(position_of(table, key),
             label + ": upstream_user and upstream_password are used only with upstream_auth \"plain\" or \"login\"");
    }
    if (account.upstream_user.empty()) account.upstream_user = account.email;
}

// transport = "graph": Graph needs a Microsoft token and an https endpoint; SMTP-only settings would
// be silently ignored, so they are errors.
void Loader::check_graph(const toml::table& table, const std::string& label, Account& account) {
    const bool graph = account.transport == TransportKind::graph;
    if (!graph) {
        if (table.contains("graph_url"))
            fail(position_of(table, "graph_url"), label + ".graph_url: used only with transport = \"graph\"");
        return;
    }
    if (account.provider == Provider::google)
        fail(position_of(table, "transport"), label + ".transport: \"graph\" is Microsoft Graph; Google accounts use SMTP");
    for (const char* key : {"upstream_auth", "upstream_user", "upstream_password", "upstream_password_file"})
        if (table.contains(key))
            fail(position_of(table, key), fmt::format("{}.{}: not used with transport = \"graph\" (Graph takes "
                                                      "the OAuth token as a bearer token)", label, key));
    // Graph's sendMail takes saveToSentItems only in its JSON form; the MIME form the relay must use
    // (the client's bytes, signatures intact) always keeps a copy (learn.microsoft.com user-sendmail).
    if (!account.save_to_sent_items)
        fail(position_of(table, "save_to_sent_items"),
             label + ".save_to_sent_items: Graph's MIME sendMail always saves a copy in Sent Items; false cannot "
                     "be honoured (delete the key, or use transport = \"smtp\")");
    if (table.contains("graph_url")) {
        if (!is_acceptable_token_url(account.graph_url))
            fail(position_of(table, "graph_url"),
                 label + ".graph_url: must be an https:// URL (http:// only for a loopback host)");
        while (account.graph_url.ends_with('/')) account.graph_url.pop_back();
    } else if (account.provider == Provider::microsoft) {
        account.graph_url = std::string(microsoft_cloud(account.cloud).graph_url);
    } else {
        fail(table.source(), fmt::format("{}: missing required key 'graph_url' in [{}] (provider \"custom\" has "
                                         "no preset)", label, label));
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
