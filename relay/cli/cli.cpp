// Option parsing, config loading with error reporting, and the command table.
#include "relay/cli/cli.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <unistd.h>

#include <boost/asio/ip/address.hpp>

#include "relay/cli/sendmail_submit.hpp"

namespace relay::cli {

const char* const kTokenHelp = R"(usage: smtp-oauth2-relay token import --account NAME [--config FILE]

  token import   reads a refresh token on stdin, redeems it once at the account's token endpoint
                 (proving it works) and stores the result in state_dir/tokens/NAME.json (mode 0600).
                 A running relay picks the new token up within seconds, even while it backs off.
)";

std::string ParsedOptions::get(const std::string& name, std::string fallback) const {
    auto it = values.find(name);
    return it == values.end() ? fallback : it->second;
}

std::optional<ParsedOptions> parse_options(const std::string& command, const std::vector<std::string>& args,
                                           const std::vector<OptionSpec>& specs, const char* help) {
    std::vector<OptionSpec> all = specs;
    all.push_back({"--config", true});
    ParsedOptions parsed;
    auto usage = [&](const std::string& problem) -> std::optional<ParsedOptions> {
        std::fprintf(stderr, "smtp-oauth2-relay %s: %s\n\n%s", command.c_str(), problem.c_str(), help);
        return std::nullopt;
    };
    for (std::size_t i = 0; i < args.size(); ++i) {
        std::string arg = args[i];
        if (arg == "--help" || arg == "-h") {
            parsed.help = true;
            continue;
        }
        if (!arg.starts_with("--")) {
            parsed.positional.push_back(arg);
            continue;
        }
        std::string value;
        bool inline_value = false;
        if (auto eq = arg.find('='); eq != std::string::npos) {
            value = arg.substr(eq + 1);
            arg = arg.substr(0, eq);
            inline_value = true;
        }
        const OptionSpec* spec = nullptr;
        for (const auto& s : all)
            if (s.name == arg) spec = &s;
        if (!spec) return usage("unknown option " + arg);
        if (spec->takes_value && !inline_value) {
            if (i + 1 >= args.size()) return usage("option " + arg + " needs a value");
            value = args[++i];
        } else if (!spec->takes_value && inline_value) {
            return usage("option " + arg + " takes no value");
        }
        parsed.values[arg] = value;
    }
    if (parsed.help) {
        std::fputs(help, stdout);
    }
    return parsed;
}

std::optional<conf::Config> load_config_or_report(const ParsedOptions& options) {
    std::string path = options.get("--config", kDefaultConfig);
    try {
        return conf::load_config(path);
    } catch (const conf::ConfigError& e) {
        for (const auto& line : e.errors()) std::fprintf(stderr, "%s\n", line.c_str());
        // An admin who forgot sudo (`mailq`, `smtp-oauth2-relay status`) has no configuration error:
        // the file holds secrets and is 0640 root:smtp-oauth2-relay on purpose. Say what to do.
        if (::geteuid() != 0 && ::access(path.c_str(), R_OK) != 0 && errno == EACCES) {
            std::fprintf(stderr, "smtp-oauth2-relay: %s may be read only by root and the relay's group (it holds "
                         "secrets): run the command with sudo\n", path.c_str());
            return std::nullopt;
        }
        std::fprintf(stderr, "smtp-oauth2-relay: configuration has %zu error%s\n", e.errors().size(),
                     e.errors().size() == 1 ? "" : "s");
        return std::nullopt;
    }
}

std::size_t warn_about_default_passwords(const conf::Config& config) {
    // The passwords sample configs and guides show; a relay reachable on the LAN with one of them
    // sends mail as the account for anyone who reads the same guide.
    static constexpr const char* kDefaults[] = {"change-me", "changeme", "password", "secret", "admin", "123456",
                                                "scanner", "test", "demo-password"};
    std::size_t found = 0;
    for (const auto& user : config.users) {
        for (const char* d : kDefaults) {
            if (user.password.reveal() == d) {
                std::fprintf(stderr, "smtp-oauth2-relay: warning: user %s has a well-known example password; set "
                             "another (smtp-oauth2-relay hash-password)\n", user.name.c_str());
                ++found;
            }
        }
    }
    return found;
}

std::size_t warn_about_refused_local_mail(const conf::Config& config) {
    if (config.relay.listen.empty()) return 0;
    std::size_t found = 0;
    const conf::HostPort target = sendmail::relay_address(config);
    if (config.relay.require_auth) {
        std::fprintf(stderr, "smtp-oauth2-relay: warning: require_auth = true: sendmail and the maildrop (cron, "
                     "bsd-mailx, PHP) submit to %s without logging in, so this host's own mail is refused\n",
                     target.to_string().c_str());
        ++found;
    }
    boost::system::error_code ec;
    const auto address = boost::asio::ip::make_address(target.host, ec);
    const auto& nets = config.relay.allow_networks;
    if (!ec && std::none_of(nets.begin(), nets.end(), [&](const conf::Network& n) { return n.contains(address); })) {
        std::fprintf(stderr, "smtp-oauth2-relay: warning: allow_networks does not include %s, from which sendmail "
                     "and the maildrop (cron, bsd-mailx, PHP) reach the relay at %s: this host's own mail is "
                     "refused; add \"%s\"\n", target.host.c_str(), target.to_string().c_str(),
                     address.is_v4() ? "127.0.0.0/8" : "::1/128");
        ++found;
    }
    return found;
}

std::size_t print_config_warnings(const conf::Config& config) {
    for (const auto& warning : config.warnings) std::fprintf(stderr, "%s\n", warning.c_str());
    return config.warnings.size();
}

const std::vector<Command>& commands() {
    static const std::vector<Command> table = {
        {"serve", run_serve},
        {"token import", run_token_import},
        {"authorize", run_authorize},
        {"check", run_check},
        {"hash-password", run_hash_password},
        {"queue", run_queue},
        {"config", run_config},
        {"status", run_status},
        {"sendmail", run_sendmail},
    };
    return table;
}

}  // namespace relay::cli
