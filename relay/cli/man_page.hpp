// Man pages generated at build time from the sources admins already see, so they cannot drift:
// smtp-oauth2-relay(8) takes every command's --help text (the command table runs each one), and
// smtp-oauth2-relay.toml(5) takes every key's comment from the example config (conf/config.example.toml,
// the file the package installs), checked against the loader's key tables: a key the example does not
// document stops the build. The prose around them lives in the templates (systemd/man/*.in, marker
// lines @COMMANDS@ and @KEYS@). `smtp-oauth2-relay man SECTION TEMPLATE` prints a page (hidden command).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace relay::cli {

struct DocumentedKey {
    std::string table;     // relay, users, accounts, aliases
    std::string name;
    std::string text;      // the comment lines above it, joined
    std::string example;   // "listen = [\"127.0.0.1:2525\"]" as in the example
};

// The keys of an example config with their comments, in file order.
std::vector<DocumentedKey> documented_keys(std::string_view example_toml);

// "relay.listen"-style names of loader keys the example does not document; empty when in step.
std::vector<std::string> undocumented_keys(const std::vector<DocumentedKey>& documented);

// roff text: a string made safe for a man page line (backslashes, leading dots, hyphens).
std::string roff_escape(std::string_view text);

std::string render_config_page(std::string_view page_template, std::string_view example_toml);
std::string render_command_page(std::string_view page_template,
                                const std::vector<std::pair<std::string, std::string>>& command_helps);

// The STATES section (marker @STATES@ in the command page): message and account states and meanings.
std::string states_section();

int run_man(const std::vector<std::string>& args);

// The example config as shipped, compiled in (generated from conf/config.example.toml by CMake).
extern const std::string_view kExampleConfig;

}  // namespace relay::cli
