// Shared by the config unit tests: the smallest valid account table, and the errors a config text
// produces (empty when it parses).
#pragma once

#include <string>
#include <vector>

#include "conf/config.hpp"

namespace relay::conf::config_testing {

inline const std::string kAccount = R"(
[accounts.office]
tenant = "contoso.onmicrosoft.com"
client_id = "cid"
email = "scanner@contoso.com"
)";

inline std::vector<std::string> errors_of(const std::string& text) {
    try {
        parse_config(text, "t.toml");
    } catch (const ConfigError& e) {
        return e.errors();
    }
    return {};
}

}  // namespace relay::conf::config_testing
