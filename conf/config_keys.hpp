// The key tables of the configuration: every key of every table is one row (name, destination
// member, default, bounds). The loader (config_loader.cpp) reads a file through them and the printer
// (config_printer.cpp) prints the effective configuration from them, so the two cannot disagree.
// Internal to conf/.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "conf/config.hpp"
#include "conf/value_reader.hpp"

namespace relay::conf::detail {

inline constexpr std::int64_t kDay = 86400;
inline constexpr std::int64_t kGiB = 1024LL * 1024 * 1024;

// Where a key's value goes. The alternative's type picks the converter (and so the TOML type).
template <class T>
using Member = std::variant<std::string T::*, std::optional<std::string> T::*, std::filesystem::path T::*, bool T::*,
                            std::uint64_t T::*, unsigned T::*, std::chrono::seconds T::*, HostPort T::*,
                            std::vector<HostPort> T::*, std::vector<Network> T::*, LogLevel T::*, LogFormat T::*,
                            Provider T::*, UpstreamTls T::*, UpstreamAuth T::*, Secret T::*,
                            AuthMode T::*, Cloud T::*,
                            std::optional<std::chrono::seconds> T::*, std::vector<std::string> T::*,
                            DeliveryMode T::*, TransportKind T::*, RewriteSender T::*>;

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

inline const KeySpec<RelaySettings> relay_keys[] = {
    {.name = "listen", .member = &RelaySettings::listen, .default_toml = R"(["127.0.0.1:2525"])"},
    {.name = "allow_networks", .member = &RelaySettings::allow_networks, .default_toml = R"(["127.0.0.0/8", "::1/128"])"},
    {.name = "lenient_networks", .member = &RelaySettings::lenient_networks,
     .default_toml = R"(["127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"])"},
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
    {.name = "log_recipients", .member = &RelaySettings::log_recipients, .default_toml = "true"},
    {.name = "control_socket", .member = &RelaySettings::control_socket},  // default: state_dir/control.sock
    {.name = "metrics_listen", .member = &RelaySettings::metrics_listen},  // unset: no metrics endpoint
    {.name = "alias_file", .member = &RelaySettings::alias_file, .default_toml = R"("/etc/aliases")"},
    {.name = "add_received_header", .member = &RelaySettings::add_received_header, .default_toml = "true"},
};

inline const KeySpec<User> user_keys[] = {
    {.name = "name", .member = &User::name, .required = true},
    {.name = "password", .member = &User::password},        // exactly one of password / password_hash
    {.name = "password_hash", .member = &User::password_hash},
    {.name = "account", .member = &User::account, .required = true},
    {.name = "allowed_senders", .member = &User::allowed_senders},  // empty: any sender
};

inline const KeySpec<Account> account_keys[] = {
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
    // Known senders (email + send_as): refuse the others at MAIL FROM, or rewrite them (issue 11).
    {.name = "refuse_unknown_senders", .member = &Account::refuse_unknown_senders, .default_toml = "false"},
    {.name = "rewrite_sender", .member = &Account::rewrite_sender, .default_toml = R"("never")"},
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

}  // namespace relay::conf::detail
