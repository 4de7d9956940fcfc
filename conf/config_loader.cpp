// Loads the TOML configuration into the typed structs of config.hpp. Every key of every table is one
// row in the key tables (config_keys.hpp: name, destination member, default, bounds), so adding a
// setting is one line; the member's C++ type decides which TOML type is expected and how it is
// checked (value_reader.hpp). Rules that span several keys (presets, secrets, loopback-only plain
// text, cross references) are the checks below. All problems are collected with their
// "file:line:col" and thrown together, sorted by position.
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
#include "conf/presets.hpp"
#include "conf/redirect_uri.hpp"
#include "conf/value_reader.hpp"

namespace relay::conf {
namespace {

namespace fs = std::filesystem;

using detail::kUnbounded;
using detail::did_you_mean;
using detail::quote_value;
using detail::read_whole_file;

using detail::account_keys;
using detail::find_preset;
using detail::is_acceptable_token_url;
using detail::KeySpec;
using detail::microsoft_cloud;
using detail::MicrosoftCloud;
using detail::Preset;
using detail::preset_url;
using detail::relay_keys;
using detail::user_keys;

class Loader {
public:
    Loader(std::string file, fs::path base_dir) : file_(file), values_(std::move(file), std::move(base_dir)) {}

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
    void check_sizes(const toml::table& relay_table, Config& config);

    std::string file_;
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

void Loader::check_account(const toml::table& table, const std::string& label, Account& account) {
    if (table.contains("client_secret") && table.contains("client_secret_file"))
        fail(position_of(table, "client_secret_file"), label + ": set client_secret or client_secret_file, not both");
    if (!account.tenant.empty() && !detail::is_host_name(account.tenant))
        fail(position_of(table, "tenant"), fmt::format("{}.tenant: {} is not a tenant name or id", label, quote_value(account.tenant)));
    if (!account.email.empty() && account.email.find('@') == std::string::npos)
        fail(position_of(table, "email"), label + ".email: expected a mailbox address such as user@example.com");
    // Refused at MAIL FROM, an unknown sender never reaches delivery, so "unallowed" would never apply.
    if (account.refuse_unknown_senders && account.rewrite_sender == RewriteSender::unallowed)
        fail(position_of(table, "rewrite_sender"),
             label + ": rewrite_sender = \"unallowed\" never applies with refuse_unknown_senders = true "
                     "(unknown senders are refused at MAIL FROM); choose one");

    const Preset* preset = find_preset(account.provider);
    const bool has_preset = preset != nullptr;
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
    check_sign_in_endpoints(table, label, account, preset);
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
