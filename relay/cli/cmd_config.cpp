// `config --check`: loads the configuration exactly as `serve` would and prints the effective
// settings (every key, defaults filled in, secrets as ********), like Postfix's `postconf -n`.
// Errors are printed as "file:line:col: message" and exit 2, so it fits an ExecStartPre= or a CI job.
#include <cstdio>

#include "relay/cli/cli.hpp"

namespace relay::cli {
namespace {

constexpr const char* kConfigHelp = R"(usage: smtp-oauth2-relay config --check [--quiet] [--config FILE]

  config --check   validates the configuration file and prints the effective configuration:
                   every key with its default filled in, secrets shown as ********.
                   Exit 0 when valid, 2 with every error as file:line:col: message otherwise.
  --quiet          print only errors and warnings (ExecReload= uses it)
)";

}  // namespace

int run_config(const std::vector<std::string>& args) {
    auto options = parse_options("config", args, {{"--check", false}, {"--quiet", false}}, kConfigHelp);
    if (!options) return kUsageError;
    if (options->help) return kOk;
    if (!options->has("--check") || !options->positional.empty()) {
        std::fprintf(stderr, "smtp-oauth2-relay config: expected --check\n\n%s", kConfigHelp);
        return kUsageError;
    }
    auto config = load_config_or_report(*options);
    if (!config) return kUsageError;
    warn_about_default_passwords(*config);
    warn_about_refused_local_mail(*config);
    print_config_warnings(*config);
    if (!options->has("--quiet")) std::fputs(conf::print_config(*config).c_str(), stdout);
    return kOk;
}

}  // namespace relay::cli
