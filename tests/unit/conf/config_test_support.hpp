// Shared by the config unit tests (and routing's): the smallest valid account table, two accounts, and the errors a config text
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

// Two accounts, two users and every delivery-policy key: the loader's and the router's tests.
inline const std::string kTwoAccounts = R"(
[relay]
spool_dir = "/tmp/x"
state_dir = "/tmp/y"

[[users]]
name = "scanner"
password = "p"
account = "office"
allowed_senders = ["scanner@contoso.com"]

[[users]]
name = "any"
password = "p"
account = "sales"

[accounts.office]
tenant = "contoso"
client_id = "cid"
email = "scanner@contoso.com"

[accounts.sales]
tenant = "contoso"
client_id = "cid"
email = "sales@contoso.com"
send_as = ["invoices@contoso.com", "Billing@Contoso.com"]
rate_per_minute = 0
max_recipients_per_message = 100
min_backoff = "10s"
max_queue_lifetime = "1d"
bounce = true
delivery = "direct"
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
