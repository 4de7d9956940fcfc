// Account routing rules; see routing.hpp.
#include "relay/intake/routing.hpp"

#include <algorithm>
#include <cctype>

#include "relay/smtp/replies.hpp"

namespace relay {

bool same_address(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
           });
}

smtp::SessionHooks::RouteResult route_message(const conf::Config& config, std::string_view user,
                                              std::string_view user_account, std::string_view mail_from) {
    const auto listed = [&](const std::vector<std::string>& addresses) {
        return std::any_of(addresses.begin(), addresses.end(),
                           [&](const std::string& a) { return same_address(a, mail_from); });
    };
    if (!user.empty()) {
        const conf::User* u = config.find_user(std::string(user));
        if (u && !u->allowed_senders.empty() && !listed(u->allowed_senders))
            return {false, {}, std::string(smtp::replies::kSenderNotAllowedForUser)};
        return {true, std::string(user_account), {}};
    }
    // Unauthenticated client from allow_networks: the sender address picks the mailbox.
    for (const auto& [name, account] : config.accounts)
        if (same_address(account.email, mail_from) || listed(account.send_as)) return {true, name, {}};
    if (config.relay.default_account) return {true, *config.relay.default_account, {}};
    return {false, {}, std::string(smtp::replies::kSenderNotServed)};
}

}  // namespace relay
