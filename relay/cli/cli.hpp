// The command table and the small option parser every subcommand shares. Each command declares
// its options; anything else is a usage error (exit 2) with the command's help.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <filesystem>
#include <span>
#include <string_view>
#include <string>
#include <vector>

#include "conf/config.hpp"

namespace relay::cli {

constexpr int kOk = 0;
constexpr int kRuntimeError = 1;
constexpr int kUsageError = 2;

constexpr const char* kDefaultConfig = "/etc/smtp-oauth2-relay/config.toml";

extern const char* const kTokenHelp;

struct OptionSpec {
    std::string name;       // "--config"
    bool takes_value = true;
};

struct ParsedOptions {
    std::map<std::string, std::string> values;   // "--config" -> "file"; flags map to ""
    std::vector<std::string> positional;
    bool help = false;
    bool has(const std::string& name) const { return values.count(name) != 0; }
    std::string get(const std::string& name, std::string fallback = {}) const;
};

// Parses `args` against `specs` (plus --help and --config, which every command accepts).
// Returns nullopt after printing "smtp-oauth2-relay <command>: <problem>" and the help to stderr.
std::optional<ParsedOptions> parse_options(const std::string& command, const std::vector<std::string>& args,
                                           const std::vector<OptionSpec>& specs, const char* help);

// Loads --config (or the default); on error prints every problem to stderr and returns nullopt
// (the caller exits 2).
std::optional<conf::Config> load_config_or_report(const ParsedOptions& options);

// Run as root, becomes the owner of `dir` (spool_dir for the queue tools, state_dir for the token
// commands) so every file it creates is the relay's; run as another user who is not the owner,
// returns why that would leave files the relay cannot read. Empty on success. `what` names the
// command in the message. See run_as_owner.cpp.
std::string act_as_owner_of(const std::filesystem::path& dir, std::string_view what);

// Warns on stderr about [[users]] whose clear-text password is one that examples and guides use
// ("change-me", "password", ...): config --check and serve both say it. Returns how many.
std::size_t warn_about_default_passwords(const conf::Config& config);

// Warns on stderr when the relay would refuse its own host's mail: sendmail (cron, bsd-mailx, PHP)
// and the maildrop pickup submit over SMTP to the first listen address, without logging in, so
// require_auth = true or an allow_networks without that address refuses all of it. Postfix's local
// submission does not pass smtpd's checks; here the admin must know. Returns how many.
std::size_t warn_about_refused_local_mail(const conf::Config& config);

// Prints the loader's warnings (conf::Config::warnings, "file:line:col: warning: ...") on stderr:
// config --check and serve both say them. Returns how many.
std::size_t print_config_warnings(const conf::Config& config);

struct Command {
    std::string name;   // "serve", "token import"
    std::function<int(const std::vector<std::string>&)> run;
};
const std::vector<Command>& commands();

// The commands themselves, each in its own file.
int run_serve(const std::vector<std::string>& args);
int run_token_import(const std::vector<std::string>& args);
int run_authorize(const std::vector<std::string>& args);
int run_check(const std::vector<std::string>& args);
int run_hash_password(const std::vector<std::string>& args);
int run_queue(const std::vector<std::string>& args);
int run_config(const std::vector<std::string>& args);      // config --check
int run_status(const std::vector<std::string>& args);      // asks the running relay
int run_sendmail(const std::vector<std::string>& args);    // sendmail(8)-compatible submission

}  // namespace relay::cli
