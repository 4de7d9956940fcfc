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
#include <vector>

#include <boost/asio/ip/address.hpp>

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

// A CIDR block from allow_networks.
struct Network {
    boost::asio::ip::address base;
    unsigned prefix = 0;
    bool contains(const boost::asio::ip::address& a) const;  // v4-mapped v6 addresses match v4 blocks
    std::string to_string() const;
};

enum class Provider { microsoft, google, custom };
enum class UpstreamTls { starttls, implicit, none };
enum class UpstreamAuth { xoauth2, oauthbearer, plain, login, none };
enum class LogLevel { debug, info, warning, error };
// automatic: journal when stderr is journald's stream ($JOURNAL_STREAM), else text.
enum class LogFormat { automatic, text, json, journal };

struct RelaySettings {
    std::vector<HostPort> listen;                   // default ["127.0.0.1:2525"]
    std::vector<Network> allow_networks;            // default ["127.0.0.0/8", "::1/128"]
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
    // Running it as a service (issue 5).
    LogFormat log_format = LogFormat::automatic;
    std::filesystem::path control_socket;           // `status` asks here; default state_dir/control.sock
    HostPort metrics_listen;                        // Prometheus /metrics; port 0: off (the default)
};

struct User {
    std::string name;
    Secret password;        // plain form; empty when password_hash is used
    std::string password_hash;  // reserved for the hashed form (hash-password command)
    std::string account;    // must name an [accounts.X]
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
};

struct Config {
    std::filesystem::path source;     // the file it came from
    RelaySettings relay;
    std::vector<User> users;
    std::map<std::string, Account> accounts;

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
std::string_view to_string(LogLevel);
std::string_view to_string(LogFormat);

// The effective configuration as TOML, every key with defaults filled in and secrets as "********"
// (`config --check`, like `postconf -n`).
std::string print_config(const Config& config);

}  // namespace relay::conf
