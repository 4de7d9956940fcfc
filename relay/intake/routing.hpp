// Which upstream account carries a message, decided at MAIL FROM from the configuration alone:
// an authenticated user's account (with the user's allowed_senders checked); otherwise the account
// whose email or send_as list names the envelope sender; otherwise default_account; otherwise a
// refusal. Pure (config in, decision out), so every rule is unit-tested without a socket.
#pragma once

#include <string_view>

#include "conf/config.hpp"
#include "relay/smtp/server_session.hpp"

namespace relay {

// Addresses compare case-insensitively: the local part is case-sensitive in theory (RFC 5321
// 2.4) but no mail system in this path treats it so, and admins type addresses in any case.
bool same_address(std::string_view a, std::string_view b);

// The largest message `account` can carry (max_message_size, less for a Microsoft Graph account).
std::uint64_t limit_of(const conf::Config& config, std::string_view account);
// EHLO's SIZE for a client: its user's account's limit, or the largest of all accounts when it has
// not logged in (its sender will choose; MAIL FROM then checks that account's limit).
std::uint64_t advertised_size(const conf::Config& config, std::string_view user_account);

smtp::SessionHooks::RouteResult route_message(const conf::Config& config, std::string_view user,
                                              std::string_view user_account, std::string_view mail_from);

}  // namespace relay
