// Inside TokenManager (token_manager.hpp): the per-account state and its methods, shared by
// token_manager.cpp (the refresh single flight, the store, the token endpoint) and token_upkeep.cpp
// (what the manager does on its own schedule: keepalive refreshes, retries after failures).
// Only those two files include it.
#pragma once

#include "auth/token_manager.hpp"

#include "auth/token_retry.hpp"

#include <exception>
#include <filesystem>

#include <boost/asio/steady_timer.hpp>

namespace relay::auth {

namespace asio = boost::asio;

struct TokenManager::Impl : std::enable_shared_from_this<Impl> {
    // One refresh in progress; waiters park on `done` (never expires) until it is cancelled.
    struct Flight {
        explicit Flight(const asio::any_io_executor& ex) : done(ex, asio::steady_timer::time_point::max()) {}
        asio::steady_timer done;
        bool finished = false;
        bool forced = false;
        std::string token;
        std::exception_ptr error;
    };

    conf::Account account;
    TokenStore& store;
    HttpClient& http;
    asio::any_io_executor io;
    asio::thread_pool& blocking;
    std::function<Clock::time_point()> clock;

    bool loaded = false;             // `cache` reflects the store at `seen_stamp`
    bool reload_requested = false;   // update_account(): re-read before the next use
    StoredTokens cache;
    std::optional<std::filesystem::file_time_type> seen_stamp;
    std::shared_ptr<Flight> flight;

    TokenRetryState failures;      // fail fast (a person's failure) or until the retry time (token_retry.hpp)
    // Issue 11, item 4: after a failure that someone waited for (delivery, not upkeep), the manager
    // asks again on its own schedule and calls on_recovered when a token is there, so waiting
    // accounts go at once instead of at their next SMTP retry.
    bool wanted = false;
    asio::steady_timer retry_timer{io};
    bool retry_loop_on = false;
    std::function<void()> on_recovered;
    std::string last_logged_store_error;
    asio::steady_timer upkeep_timer{io};
    bool upkeep_on = false;        // the upkeep loop runs (start_upkeep .. stop_upkeep)
    bool upkeep_again = false;     // update_account() during an upkeep: run it once more
    std::string last_error;
    unsigned refresh_count = 0;

    Impl(conf::Account a, TokenStore& s, HttpClient& h, asio::any_io_executor e, asio::thread_pool& p,
         std::function<Clock::time_point()> c)
        : account(std::move(a)), store(s), http(h), io(std::move(e)), blocking(p), clock(std::move(c)) {}

    bool fresh(Clock::time_point now) const;

    // token_manager.cpp: one refresh at a time, the store, the token endpoint.
    asio::awaitable<std::string> get(std::optional<std::string> rejected, bool want = true);
    asio::awaitable<void> run_flight(std::shared_ptr<Flight> f, std::optional<std::string> rejected);

    struct Snapshot {
        std::optional<std::filesystem::file_time_type> stamp;
        bool reloaded = false;
        std::optional<StoredTokens> tokens;
    };

    asio::awaitable<void> sync_with_store();
    void clear_failures();
    void recovered();
    asio::awaitable<std::string> obtain(std::optional<std::string> rejected);
    asio::awaitable<std::string> obtain_app_token(const std::optional<std::string>& rejected);

    struct Outcome {
        StoredTokens saved;
        std::chrono::seconds expires_in{};
        bool rotated = false;
        std::optional<std::filesystem::file_time_type> stamp;
        std::string save_error;
        std::string unsaved_refresh_token;   // rotated but not stored: not used until it is
    };

    // Issue 13, item 9: a rotated refresh token is used only once it is stored durably. When the
    // save fails (state_dir full), the previous one stays in use and the new one waits here; the
    // save is retried at most every kSaveRetry, before each refresh and on upkeep.
    static constexpr auto kSaveRetry = std::chrono::seconds{30};
    std::string unsaved_refresh_token;
    Clock::time_point next_save_retry{};

    StoredTokens with_pending_rotation() const;
    asio::awaitable<void> retry_unsaved_rotation(bool force);
    asio::awaitable<std::string> refresh(Clock::time_point now);

    // token_upkeep.cpp: keepalive refreshes and retries after failures, on timers.
    asio::awaitable<void> upkeep();
    static asio::awaitable<void> upkeep_loop(std::shared_ptr<Impl> self);
    void start_upkeep();
    void stop_upkeep();
    static asio::awaitable<void> retry_loop(std::shared_ptr<Impl> self);
    void start_retry_loop();
    void fail(const TokenError& e, Clock::time_point now);
};

}  // namespace relay::auth
