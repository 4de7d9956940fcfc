// The one table of token endpoint failures (OAuth `error`, refined by AADSTS numbers) and what an
// admin does about each: `check` and `authorize` print cause and fix, `token import` and the log
// (token_refresh_failed, account_hold) give the fix as action=. One table, so the log never sends an
// admin to make a new client secret when `check` knows the client id is wrong (issue 12, item 5).
// Pure; every row has a unit test (tests/unit/auth/test_token_hints.cpp).
#pragma once

#include <string>

#include "auth/token_endpoint.hpp"
#include "conf/config.hpp"

namespace relay::auth {

struct TokenHint {
    std::string cause;   // what went wrong, one line
    std::string fix;     // the admin's next step, one line
};

TokenHint token_hint(const TokenError& error, const conf::Account& account);

// The command that signs an account in again; the fix of every invalid_grant.
std::string authorize_command(const conf::Account& account);

}  // namespace relay::auth
