// Picks an account's transport; see transport.hpp. A new transport adds its case here.
#include "relay/delivery/transport.hpp"

#include <algorithm>

#include "auth/token_hints.hpp"
#include "relay/delivery/graph_transport.hpp"
#include "relay/delivery/smtp_transport.hpp"

namespace relay {

AccountFailure token_failure(const auth::TokenError& error, const conf::Account& account,
                             const auth::TokenStatus& status) {
    AccountFailure failure{"token: " + std::string(error.what()), std::nullopt, std::nullopt};
    // A dead refresh token, client secret or consent needs a person: retrying only adds sign-in
    // failures (the same rule the token manager fails fast by).
    if (auth::needs_person(error.kind())) {
        failure.hold_action = auth::token_hint(error, account).fix;
    } else if (status.retry_at != auth::Clock::time_point{}) {
        const auto left = std::chrono::ceil<std::chrono::seconds>(status.retry_at - auth::Clock::now());
        failure.token_wait = std::max<std::chrono::seconds>(left, std::chrono::seconds{1});
    }
    return failure;
}

std::unique_ptr<Transport> make_transport(const conf::Account& account, const TransportDeps& deps) {
    if (account.transport == conf::TransportKind::graph) return make_graph_transport(account, deps);
    return make_smtp_transport(account, deps);
}

}  // namespace relay
