// Typed configuration. The TOML file is parsed once, at startup (and on reload), into these structs;
// every error in the file is collected and reported together as "file:line:col: message", and no
// other module ever looks at TOML. Defaults and bounds live in config.cpp, in one place.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/ip/address.hpp>

#include "conf/aliases.hpp"
#include "relay/core/log.hpp"

namespace relay::conf {

// A secret value (client secret, password). It never converts to a string implicitly and prints
// as "********" through masked(), so it cannot slip into a log line by accident.
class Secret {
public:
    Secret() = default;
    explicit Secret(std::string value) : value_(std::move(value)) {}
    const std::string& reveal() const { return value_; }
    bool empty() const { return value_.empty(); }
    std::string masked() const { return value_.empty() ? "" : "********"; }

private:
    std::string value_;
};

struct HostPort {
    std::string host;   // without brackets for IPv6
    std::uint16_t port = 0;
    std::string to_string() const;  // "host:port" or "[v6]:port"
};

// A CIDR block from allow_networks or lenient_networks.
struct Network {
    boost::asio::ip::address base;
    unsigned prefix = 0;
    bool contains(const boost::asio::ip::address& a) const;  // v4-mapped v6 addresses match v4 blocks
    std::string to_string() const;
};

enum class Provider { microsoft, google, custom };
enum class UpstreamTls { starttls, implicit, none };
enum class UpstreamAuth { xoauth2, oauthbearer, plain, login, none };
using LogLevel = log::Level;
// delegated: a user signed in once and the relay keeps the refresh token; client_credentials: the
// app itself gets tokens (RFC 6749 4.4) with a secret or a certificate, no refresh token to keep.
enum class AuthMode { delegated, client_credentials };
// Microsoft's national clouds differ from the global one in host names only.
enum class Cloud { global, usgov, china };
enum class DeliveryMode { queue, direct };
// How an account's mail leaves: SMTP submission, or Microsoft Graph sendMail for tenants that
// switched SMTP AUTH off (issue 14).
enum class TransportKind { smtp, graph };
// When delivery puts the account's own address in place of the sender (issue 11 item 3): never,
// only for senders the mailbox may not send as (not email, not in send_as), or always.
enum class RewriteSender { never, unallowed, always };
using LogFormat = log::Format;

struct RelaySettings {
    std::vector<HostPort> listen;                   // default ["127.0.0.1:2525"]
    std::vector<Network> allow_networks;            // default ["127.0.0.0/8", "::1/128"]
    // Clients forgiven RFC 5321 slips old devices make (bare LF, unbracketed paths, long lines);
    // default loopback and the private ranges (RFC 1918, RFC 4193), as Postfix exempts $mynetworks.
    std::vector<Network> lenient_networks;
    std::filesystem::path spool_dir;                // default /var/spool/smtp-oauth2-relay
    std::filesystem::path state_dir;                // default /var/lib/smtp-oauth2-relay
    std::uint64_t max_message_size = 36700160;      // bytes, advertised in EHLO SIZE
    std::optional<std::string> default_account;     // must name an [accounts.X]
    bool require_auth = false;
    std::string hostname;                           // greeting/EHLO name; default: gethostname()
    std::chrono::seconds min_backoff{300};          // retry schedule (Postfix-like defaults)
    std::chrono::seconds max_backoff{4000};
    std::chrono::seconds max_queue_lifetime{5 * 24 * 3600};
    LogLevel log_level = LogLevel::info;
    // Hostile-client limits and local TLS (issue 6); defaults and bounds in config.cpp.
    std::string bare_newlines = "reject";           // "reject" (550 5.5.2) or "normalize" (to CRLF)
    unsigned max_command_line = 512;                // bytes incl. CRLF (RFC 5321 4.5.3.1.4); AUTH lines get 12288
    unsigned max_line_length = 1000;                // body text line incl. CRLF (RFC 5321 4.5.3.1.6)
    unsigned max_recipients = 1000;                 // then 452 4.5.3
    unsigned soft_error_limit = 10;                 // errors before each reply is delayed by error_delay
    std::chrono::seconds error_delay{1};
    unsigned max_errors = 20;                       // then 421 4.7.0 and close
    std::chrono::seconds command_timeout{300};      // RFC 5321 4.5.3.2.7
    std::chrono::seconds session_timeout{3600};
    std::uint64_t min_data_rate = 500;              // bytes/s during DATA, measured over min_data_rate_window
    std::chrono::seconds min_data_rate_window{30};
    std::chrono::seconds greet_pause{0};            // wait before the 220; a client talking first gets 554 5.5.0
    unsigned max_clients = 4096;
    unsigned max_clients_per_ip = 1024;             // loopback counts too
    std::chrono::seconds auth_failure_delay{2};     // after each failed AUTH
    unsigned auth_max_failures = 10;                // per client IP, then lockout
    std::chrono::seconds auth_lockout{900};
    std::vector<HostPort> listen_tls;               // implicit-TLS listeners (e.g. port 465)
    std::filesystem::path tls_cert;                 // PEM; empty: self-signed pair in state_dir/tls/
    std::filesystem::path tls_key;
    std::string min_tls_version = "1.2";            // "1.2" or "1.3"; "1.0"/"1.1" need allow_legacy_tls
    bool allow_legacy_tls = false;
    bool allow_plaintext_auth = false;              // AUTH without TLS from non-loopback peers
    // Running it as a service (issue 5).
    LogFormat log_format = LogFormat::automatic;
    bool log_recipients = true;                     // to=<a>,<b> on received/deferred/delivered/failed lines
    std::filesystem::path control_socket;           // `status` asks here; default state_dir/control.sock
    HostPort metrics_listen;                        // Prometheus /metrics; port 0: off (the default)
    std::filesystem::path alias_file;               // aliases(5) for sendmail's bare names, after [aliases]
    bool add_received_header = true;                // RFC 5321 4.4 trace header at spool time
};

struct User {
    std::string name;
    Secret password;        // plain form; empty when password_hash is used
    std::string password_hash;  // reserved for the hashed form (hash-password command)
    std::string account;    // must name an [accounts.X]
    std::vector<std::string> allowed_senders;  // MAIL FROM addresses this user may use; empty: any
};

struct Account {
    std::string name;                 // the X in [accounts.X]
    Provider provider = Provider::microsoft;
    std::string tenant;               // microsoft: required unless every endpoint is overridden
    std::string client_id;
    Secret client_secret;             // from client_secret or client_secret_file (file is read at load)
    std::string email;                // XOAUTH2 user=
    std::string token_url;            // filled from the provider preset unless overridden
    std::string scope;                // filled from the provider preset unless overridden
    HostPort upstream;                // filled from the preset: smtp.office365.com:587
    UpstreamTls upstream_tls = UpstreamTls::starttls;
    std::filesystem::path upstream_ca_file;  // extra trust anchor, optional
    UpstreamAuth upstream_auth = UpstreamAuth::xoauth2;
    unsigned max_connections = 3;     // concurrent upstream sessions for this account
    // `authorize` (issue 3): the loopback redirect and the endpoints a person signs in through.
    std::string redirect_uri = "http://localhost";  // loopback only; no port: authorize picks one
    std::string authorize_url;        // filled from the provider preset unless overridden
    std::string devicecode_url;       // preset (microsoft); empty: no device flow (google)
    // App-only accounts, national clouds, basic upstream auth, refresh token upkeep (issue 3).
    AuthMode auth = AuthMode::delegated;
    Cloud cloud = Cloud::global;      // microsoft only: picks login and SMTP hosts
    std::filesystem::path client_certificate_file;  // client_credentials with a certificate (PEM)
    std::filesystem::path client_key_file;          // its private key (PEM, unencrypted)
    std::string upstream_user;        // upstream_auth plain/login: defaults to email
    Secret upstream_password;         // from upstream_password or upstream_password_file
    unsigned refresh_token_warn_days = 60;          // warn when no successful refresh for this long
    std::chrono::seconds keepalive_refresh{7 * 86400};  // refresh idle accounts this often
    // Delivery policy (issue 4): pacing, retry overrides, bounces, pass-through.
    std::vector<std::string> send_as;             // other sender addresses routed to this account
    // Known senders are email plus send_as (issue 11 item 3).
    bool refuse_unknown_senders = false;          // 553 5.7.1 at MAIL FROM for any other sender
    RewriteSender rewrite_sender = RewriteSender::never;  // envelope and From: become email
    unsigned rate_per_minute = 30;                // upstream transactions per minute; 0 = unlimited
    unsigned max_recipients_per_message = 500;    // larger envelopes are split into several transactions
    std::optional<std::chrono::seconds> min_backoff;         // overrides [relay] when set
    std::optional<std::chrono::seconds> max_backoff;
    std::optional<std::chrono::seconds> max_queue_lifetime;
    bool bounce = false;                          // RFC 3464 DSN to the envelope sender on permanent failure
    DeliveryMode delivery = DeliveryMode::queue;  // direct: the client's end-of-data waits for the upstream
    // Microsoft Graph sendMail (issue 14): transport = "graph" posts each message as MIME to
    // {graph_url}/v1.0/users/{email}/sendMail instead of SMTP; scope and graph_url come from the preset.
    TransportKind transport = TransportKind::smtp;
    std::string graph_url;                        // preset per cloud, e.g. https://graph.microsoft.com
    bool save_to_sent_items = true;               // like SMTP AUTH submission, a copy in Sent Items
    unsigned graph_concurrent_requests = 4;       // Graph allows 4 concurrent requests per mailbox
};

// Graph caps one request at 4 MB and the MIME travels base64-encoded: 3 MiB of MIME, less room for
// the Bcc line the relay may add to reconcile header and envelope recipients (see README).
inline constexpr std::uint64_t kGraphMaxMessageSize = 3 * 1024 * 1024 - 64 * 1024;

// The largest message this account can carry: max_message_size, or less for a Graph account.
std::uint64_t message_size_limit(const RelaySettings& relay, const Account& account);

// Exchange Online's default per-mailbox send limit for SMTP submission (35 MB; a tenant admin may
// raise MaxSendSize up to 150 MB, which is why its EHLO advertises 150 MB).
inline constexpr std::uint64_t kExchangeDefaultMaxSendSize = 36700160;
// Gmail's SIZE as its EHLO advertises it.
inline constexpr std::uint64_t kGmailMaxMessageSize = 35882577;

// What the account's provider is known to accept for one message, with why; 0 when unknown (a
// custom upstream). Graph: the request cap (kGraphMaxMessageSize), since the relay posts the whole
// MIME message in one request and does not use upload sessions.
struct ProviderSizeLimit {
    std::uint64_t bytes = 0;
    std::string_view why;
};
ProviderSizeLimit provider_size_limit(const Account& account);

// A known sender of `account`: its email or an address in send_as (case-insensitive, as Exchange
// compares). The null sender (empty) is never known.
bool is_known_sender(const Account& account, std::string_view address);

struct Config {
    std::filesystem::path source;     // the file it came from
    RelaySettings relay;
    std::vector<User> users;
    std::map<std::string, Account> accounts;
    AliasTable aliases;               // [aliases]: local name (lower case) -> addresses or names
    // Settings that load but will not work as the admin may expect, each "file:line:col: warning: ...";
    // config --check and serve print them (the relay runs anyway).
    std::vector<std::string> warnings;

    const Account* find_account(const std::string& name) const;
    const User* find_user(const std::string& name) const;
};

// Every problem found in the file, each already formatted as "file:line:col: message".
class ConfigError : public std::runtime_error {
public:
    explicit ConfigError(std::vector<std::string> errors);
    const std::vector<std::string>& errors() const { return errors_; }

private:
    std::vector<std::string> errors_;
};

// Parses and validates; throws ConfigError listing every error at once.
Config load_config(const std::filesystem::path& file);
Config parse_config(std::string_view toml_text, const std::filesystem::path& source_name);

// "300", "300s", "5m", "1h", "2d" -> seconds; nullopt when malformed.
std::optional<std::chrono::seconds> parse_duration(std::string_view text);
// "host:port", "[v6]:port" -> HostPort; nullopt when malformed.
std::optional<HostPort> parse_host_port(std::string_view text);
std::optional<Network> parse_network(std::string_view text);

std::string_view to_string(Provider);
std::string_view to_string(UpstreamTls);
std::string_view to_string(UpstreamAuth);
std::string_view to_string(AuthMode);
std::string_view to_string(Cloud);
std::string_view to_string(DeliveryMode);
std::string_view to_string(TransportKind);
std::string_view to_string(RewriteSender);
std::string_view to_string(LogLevel);
std::string_view to_string(LogFormat);

// The effective configuration as TOML, every key with defaults filled in and secrets as "********"
// (`config --check`, like `postconf -n`).
std::string print_config(const Config& config);

}  // namespace relay::conf
