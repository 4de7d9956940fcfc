// What the pure SMTP session asks of the relay's configuration: local users' passwords (AUTH) and
// the upstream account for a sender (MAIL FROM), plus the protocol events worth a log line.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "conf/config.hpp"
#include "relay/smtp/server_session.hpp"

namespace relay {

// Local users and account choice for the session, from the config.
class RelaySessionHooks : public smtp::SessionHooks {
public:
    RelaySessionHooks(std::shared_ptr<const conf::Config> config, std::string client_address);
    AuthResult authenticate(std::string_view user, std::string_view password) override;
    AuthResult authenticate_slow(std::string_view user, std::string_view password) override;
    RouteResult route(std::string_view user, std::string_view user_account, std::string_view mail_from) override;
    std::uint64_t size_limit(std::string_view user_account) override;
    void note(std::string_view what, std::string_view detail) override;
    std::string auth_refusal() override;

    // Set by the I/O layer for its brute-force lockout: true refuses AUTH with 454 4.7.0.
    std::function<bool()> auth_locked;
    std::size_t auth_failures = 0;   // failed AUTH attempts in this session so far

private:
    std::shared_ptr<const conf::Config> config_;   // the snapshot this session started with
    std::string client_;
};

}  // namespace relay
