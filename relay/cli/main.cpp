// Command-line entry point. Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error.
#include <utility>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "relay/cli/cli.hpp"
#include "relay/cli/man_page.hpp"

namespace {

constexpr const char* kTopHelp = R"(usage: smtp-oauth2-relay COMMAND [OPTIONS]

Accepts plain SMTP from legacy applications and devices, spools each message durably and delivers it
to Office 365 (or another OAuth2 mail provider) with SASL XOAUTH2.

commands:
  serve          run the relay in the foreground (logs to stderr; SIGTERM stops gracefully)
  token import   store a refresh token read from stdin, after redeeming it once
  authorize      sign in at the provider (browser, --paste or --device) and store the refresh token
  check          test each account step by step (token, TLS, AUTH, optional test mail) with diagnoses
  hash-password  print a salted hash for [[users]] password_hash
  queue          list, show, retry, delete, hold or release queued mail (queue --help)
  status         ask the running relay for its queue, accounts and tokens
  config --check validate the configuration and print it with defaults filled in, secrets masked
  sendmail       submit a message from stdin to the relay (sendmail(8) options -t -i -f -F)

Every command takes --config FILE (default /etc/smtp-oauth2-relay/config.toml) and --help.
exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error
)";

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    // Installed as /usr/sbin/sendmail, /usr/bin/mailq and /usr/sbin/newaliases (symlinks): behave as
    // those do, as every Debian MTA package provides them.
    const std::string invoked = argc > 0 ? std::filesystem::path(argv[0]).filename().string() : std::string();
    if (invoked == "sendmail") return relay::cli::run_sendmail(args);
    if (invoked == "mailq") {
        args.insert(args.begin(), "-bp");
        return relay::cli::run_sendmail(args);
    }
    if (invoked == "newaliases") {
        args.insert(args.begin(), "-bi");
        return relay::cli::run_sendmail(args);
    }
    if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
        std::fputs(kTopHelp, args.empty() ? stderr : stdout);
        return args.empty() ? relay::cli::kUsageError : 0;
    }
    if (args[0] == "--version") {
        std::printf("smtp-oauth2-relay %s\n", RELAY_VERSION);
        return 0;
    }
    std::string command = args[0];
    args.erase(args.begin());
    if (command == "token") {
        if (args.empty() || args[0] == "--help" || args[0] == "-h") {
            std::fputs(relay::cli::kTokenHelp, args.empty() ? stderr : stdout);
            return args.empty() ? relay::cli::kUsageError : 0;
        }
        command += " " + args[0];
        args.erase(args.begin());
    }
    // Hidden: the build generates the man pages with it (relay/cli/man_page.hpp).
    if (command == "man") return relay::cli::run_man(args);
    for (const auto& c : relay::cli::commands()) {
        if (command == c.name) return c.run(args);
    }
    std::fprintf(stderr, "smtp-oauth2-relay: unknown command '%s'\n\n%s", command.c_str(), kTopHelp);
    return relay::cli::kUsageError;
}
