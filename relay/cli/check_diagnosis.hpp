// What `check` tells the admin when a step fails: the likely cause and the fix, from the OAuth
// error of the token endpoint or the SMTP reply of the upstream. Pure (no I/O), so each known
// failure (PROVIDERS.md) has a table-driven test. Decisions follow the OAuth `error` field and the
// RFC 3463 enhanced status code; AADSTS numbers only sharpen the wording.
#pragma once

#include <optional>
#include <string>

#include "auth/token_endpoint.hpp"
#include "conf/config.hpp"
#include "relay/smtp/reply.hpp"
#include "relay/delivery/upstream_session.hpp"

namespace relay::check {

struct Diagnosis {
    std::string cause;
    std::string fix;
};

// A failed refresh (or an unreachable token endpoint: http_status 0).
Diagnosis diagnose_token(const auth::TokenError& error, const conf::Account& account);

// A failed upstream step: connect/TLS problems (no reply) or a negative reply at AUTH, MAIL, RCPT
// or end of data. `sender` is the MAIL FROM address of the test message, when there was one.
Diagnosis diagnose_upstream(UpstreamError::Stage stage, const std::string& message,
                            const std::optional<smtp::Reply>& reply, const conf::Account& account,
                            const std::string& sender = {});

// The Graph probe or test message of a transport = "graph" account failed: HTTP status 0 when Graph
// could not be reached (`message` says why), else Graph's status, error code and message.
Diagnosis diagnose_graph(long status, const std::string& code, const std::string& message, const conf::Account& account);

}  // namespace relay::check
