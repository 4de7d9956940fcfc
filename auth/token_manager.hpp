// Keeps one account's access token fresh. Lives on the I/O thread; HTTP and file writes run on the
// blocking pool. Concurrent callers share one refresh. A rotated refresh token is stored durably
// before the new access token is handed out, so a crash can never leave only a dead token on disk.
// Refresh happens when less than min(10 min, lifetime/5) remains, or after an upstream 535.
// Failures are retried on the token's own short schedule (token_retry.hpp), not the SMTP backoff.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>

#include "auth/http_client.hpp"
#include "auth/token_endpoint.hpp"
#include "auth/token_store.hpp"
#include "conf/config.hpp"

namespace relay::auth {

struct TokenStatus {
    bool have_refresh_token = false;
    Clock::time_point access_valid_until{};
    Clock::time_point last_refresh{};
    std::string last_error;         // summary of the last failure, empty after a success
    unsigned refresh_count = 0;     // token endpoint requests made by this process
    Clock::time_point retry_at{};   // after a retryable failure: the next request (epoch: none pending)
    bool needs_person = false;      // the last failure needs a person (invalid_grant, client, consent)
};

class TokenManager {
public:
    TokenManager(conf::Account account, TokenStore& store, HttpClient& http,
                 boost::asio::any_io_executor io, boost::asio::thread_pool& blocking,
                 std::function<Clock::time_point()> clock = [] { return Clock::now(); });
    ~TokenManager();

    // An access token with more than the refresh margin left. Throws TokenError (invalid_grant
    // also when no refresh token is stored). An invalid_grant is logged once with the command to run.
    boost::asio::awaitable<std::string> access_token();

    // The upstream rejected `token` (e.g. 535): refresh now unless another caller already replaced it.
    boost::asio::awaitable<std::string> token_rejected(const std::string& token);

    // Refresh token upkeep, for a timer (at start and hourly): when the last successful refresh is
    // older than keepalive_refresh, refresh now, so an idle account's refresh token is never dropped
    // for disuse (Microsoft: 90 days); if it is still older than refresh_token_warn_days afterwards,
    // log a warning with the fix. Delegated accounts with a token upstream only; never throws.
    boost::asio::awaitable<void> upkeep();

    // Schedules upkeep() itself: now, then every min(1 h, keepalive_refresh / 2) until
    // stop_upkeep(). The token manager owns token freshness, so delivery never times it. Idempotent.
    void start_upkeep();
    void stop_upkeep();

    // Config reload: new account settings; the store is re-read before the next use, and a
    // scheduled upkeep runs again now (keepalive_refresh may have changed).
    void update_account(conf::Account account);

    // Called (on the I/O executor) when a token is obtained after failures, e.g. by the manager's
    // own retry after a token endpoint outage: accounts waiting for a token may go now.
    void on_recovered(std::function<void()> callback);

    TokenStatus status() const;
    const std::string& account_name() const;

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;   // shared with the upkeep loop, which may outlive a call
};

// Margin before expiry at which a token counts as stale: min(10 min, lifetime / 5). Milliseconds,
// so a 3 s test token refreshes 0.6 s early instead of truncating to 0.
std::chrono::milliseconds refresh_margin(std::chrono::milliseconds lifetime);

// How often the upkeep loop looks: min(1 h, keepalive_refresh / 2), at least 1 s.
std::chrono::seconds upkeep_interval(const conf::Account& account);

}  // namespace relay::auth
