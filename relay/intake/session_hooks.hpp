// The session's decisions that need the config: local users' passwords (with AUTH attempt
// accounting, issue 13 items 1 and 12) and the account a message goes through. smtp::ServerSession
// calls these hooks; the I/O layer (smtp_server.cpp) runs the slow password check off its thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "conf/config.hpp"
#include "relay/intake/auth_attempts.hpp"
#include "relay/smtp/server_session.hpp"

namespace relay {

// Local users and account choice for the session, from the config. AUTH attempts are counted in
// `attempts` (shared by all sessions, I/O thread only) before they are checked.
class RelaySessionHooks : public smtp::SessionHooks {
public:
    RelaySessionHooks(std::shared_ptr<const conf::Config> config, std::string client_address,
                      AuthAttempts* attempts = nullptr);
    ~RelaySessionHooks() override;
    RelaySessionHooks(const RelaySessionHooks&) = delete;
    RelaySessionHooks& operator=(const RelaySessionHooks&) = delete;
    AuthResult authenticate(std::string_view user, std::string_view password) override;
    // On a worker thread: reads only the config snapshot and the thread-safe password cache.
    AuthResult authenticate_slow(std::string_view user, std::string_view password) override;
    // Back on the I/O thread with authenticate_slow's verdict: closes the attempt authenticate() began.
    void slow_check_finished(bool ok);
    RouteResult route(std::string_view user, std::string_view user_account, std::string_view mail_from) override;
    std::uint64_t size_limit(std::string_view user_account) override;
    void note(std::string_view what, std::string_view detail) override;
    void refused(const Refusal& refusal) override;
    std::string auth_refusal() override;

    std::size_t auth_failures = 0;   // failed AUTH attempts in this session so far

private:
    void attempt_finished(bool ok);

    std::shared_ptr<const conf::Config> config_;   // the snapshot this session started with
    std::string client_;
    AuthAttempts* attempts_;
    bool attempt_open_ = false;      // begun in authenticate(), its slow check still running
    bool failure_counted_ = false;   // the next auth_failed note was already counted by finish()
};

// The one "reject" log line (Postfix's "NOQUEUE: reject"), for refusals inside a session and for
// those before it (a peer outside allow_networks): client first, as in auth_failed, for fail2ban.
// `from` is "<>" for the null sender and empty when no sender was named.
void log_refusal(std::string_view client, const smtp::SessionHooks::Refusal& refusal);

}  // namespace relay
