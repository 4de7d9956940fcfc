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

std::uint64_t limit_of(const conf::Config& config, std::string_view account) {
    const conf::Account* a = config.find_account(std::string(account));
    return a ? conf::message_size_limit(config.relay, *a) : config.relay.max_message_size;
}

std::uint64_t advertised_size(const conf::Config& config, std::string_view user_account) {
    if (!user_account.empty()) return limit_of(config, user_account);
    // Not logged in: the sender will pick the account, so offer what the largest route carries.
    std::uint64_t largest = 0;
    for (const auto& [name, account] : config.accounts)
        largest = std::max(largest, conf::message_size_limit(config.relay, account));
    return largest ? largest : config.relay.max_message_size;
}

smtp::SessionHooks::RouteResult route_message(const conf::Config& config, std::string_view user,
                                              std::string_view user_account, std::string_view mail_from) {
    const auto listed = [&](const std::vector<std::string>& addresses) {
        return std::any_of(addresses.begin(), addresses.end(),
                           [&](const std::string& a) { return same_address(a, mail_from); });
    };
    // The account is chosen; refuse_unknown_senders may still refuse a sender its mailbox cannot
    // send as (issue 11): the client hears it now instead of Exchange refusing it after the data.
    const auto routed = [&](std::string_view name) -> smtp::SessionHooks::RouteResult {
        const conf::Account* a = config.find_account(std::string(name));
        if (a && a->refuse_unknown_senders && !conf::is_known_sender(*a, mail_from))
            return {false, {}, std::string(smtp::replies::kSenderNotKnown)};
        return {true, std::string(name), {}, limit_of(config, name)};
    };
    if (!user.empty()) {
        const conf::User* u = config.find_user(std::string(user));
        if (u && !u->allowed_senders.empty() && !listed(u->allowed_senders))
            return {false, {}, std::string(smtp::replies::kSenderNotAllowedForUser)};
        return routed(user_account);
    }
    // Unauthenticated client from allow_networks: the sender address picks the mailbox.
    for (const auto& [name, account] : config.accounts)
        if (same_address(account.email, mail_from) || listed(account.send_as)) return routed(name);
    if (config.relay.default_account) return routed(*config.relay.default_account);
    return {false, {}, std::string(smtp::replies::kSenderNotServed)};
}

}  // namespace relay
