// TokenManager: the per-account access-token cache, refresh single flight and failure policy.
// Everything here runs on the I/O executor (one thread), so state needs no locks; blocking work
// (token file, HTTP) is shipped to the thread pool with copies of what it needs and its result
// comes back to the I/O executor. One refresh at a time: callers arriving while it runs wait on the
// flight's timer, which is cancelled (a broadcast) when the result is in. A rotated refresh token
// is saved before the flight completes, so no caller can use a token whose successor is unsaved.
#include "auth/token_manager.hpp"

#include "auth/token_hints.hpp"
#include "auth/token_retry.hpp"

#include <algorithm>
#include <exception>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <fmt/format.h>

#include "relay/core/blocking.hpp"
#include "relay/core/log.hpp"
#include "relay/core/restart.hpp"
#include "relay/core/spawn.hpp"

namespace relay::auth {

namespace asio = boost::asio;
using namespace std::chrono_literals;

std::chrono::milliseconds refresh_margin(std::chrono::milliseconds lifetime) {
    return std::min<std::chrono::milliseconds>(600s, lifetime / 5);
}

std::chrono::seconds upkeep_interval(const conf::Account& account) {
    return std::clamp<std::chrono::seconds>(account.keepalive_refresh / 2, 1s, 3600s);
}

namespace {

// One refresh in progress; waiters park on `done` (never expires) until it is cancelled.
struct Flight {
    explicit Flight(const asio::any_io_executor& ex) : done(ex, asio::steady_timer::time_point::max()) {}
    asio::steady_timer done;
    bool finished = false;
    bool forced = false;
    std::string token;
    std::exception_ptr error;
};

}  // namespace

struct TokenManager::Impl : std::enable_shared_from_this<Impl> {
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

    bool fresh(Clock::time_point now) const {
        if (cache.access_token.empty()) return false;
        auto lifetime = std::chrono::duration_cast<std::chrono::milliseconds>(cache.access_expires_at -
                                                                               cache.access_obtained_at);
        if (cache.access_obtained_at == Clock::time_point{}) lifetime = 3600s;  // unknown: assume 1 h
        return cache.access_expires_at - now > refresh_margin(lifetime);
    }

    asio::awaitable<std::string> get(std::optional<std::string> rejected, bool want = true) {
        if (want) {
            wanted = true;
            if (failures.failing()) start_retry_loop();   // a failure seen by upkeep alone had none
        }
        for (;;) {
            std::shared_ptr<Flight> f = flight;
            if (!f) {
                const bool save_due = !unsaved_refresh_token.empty() && clock() >= next_save_retry;
                if (loaded && !reload_requested && !save_due && fresh(clock()) &&
                    (!rejected || *rejected != cache.access_token))
                    co_return cache.access_token;
                f = flight = std::make_shared<Flight>(io);
                f->forced = rejected.has_value();
                // Detached, so one caller's cancellation cannot strand the others. co_spawn may run
                // it to the end at once (an answer from memory resets `flight`): `f` keeps it.
                // run_flight catches everything into the flight, so a failure here is a bug: logged.
                core::spawn(io, run_flight(f, rejected), "token_refresh", account.name);
            }
            if (!f->finished) co_await f->done.async_wait(asio::as_tuple(asio::use_awaitable));
            if (!f->finished) throw boost::system::system_error(asio::error::operation_aborted, "waiting for token refresh");
            if (f->error) std::rethrow_exception(f->error);
            // Joined a plain load that handed back the very token the upstream refused: force one.
            if (rejected && !f->forced && f->token == *rejected) continue;
            co_return f->token;
        }
    }

    asio::awaitable<void> run_flight(std::shared_ptr<Flight> f, std::optional<std::string> rejected) {
        const bool was_failing = failures.failing();
        try {
            f->token = co_await obtain(rejected);
            last_error.clear();
            if (was_failing) recovered();
        } catch (const std::exception& e) {
            f->error = std::current_exception();
            last_error = e.what();
        } catch (...) {
            f->error = std::current_exception();
        }
        f->finished = true;
        if (flight == f) flight.reset();
        f->done.cancel();
    }

    struct Snapshot {
        std::optional<std::filesystem::file_time_type> stamp;
        bool reloaded = false;
        std::optional<StoredTokens> tokens;
    };

    // Re-reads the store on first use, after update_account(), or when the file changed under us
    // (`token import` while running); an outside change also lifts fail-fast and backoff.
    asio::awaitable<void> sync_with_store() {
        bool must_load = !loaded || reload_requested;
        auto seen = seen_stamp;
        std::string name = account.name;
        TokenStore& s = store;
        // A named job, not a temporary inside co_await within try: GCC 12 miscompiles the latter
        // (the lambda's captures are destroyed twice).
        auto job = [&s, name, must_load, seen] {
            Snapshot result;
            result.stamp = s.stamp(name);
            if (must_load || result.stamp != seen) {
                result.reloaded = true;
                result.tokens = s.load(name);
            }
            return result;
        };
        Snapshot snap;
        try {
            snap = co_await run_blocking(blocking, std::move(job));
        } catch (const std::exception& e) {
            loaded = false;
            TokenError error(TokenFailure::other, "token_store_unreadable", e.what(), 0);
            if (last_logged_store_error != e.what()) {
                last_logged_store_error = e.what();
                log::error("token_store_unreadable", {{"account", account.name}, {"error", e.what()},
                                                      {"action", "make it readable for the user the relay runs as (chown), "
                                                                 "or sign in again: sudo smtp-oauth2-relay authorize"}});
            }
            throw error;
        }
        last_logged_store_error.clear();
        if (!snap.reloaded) co_return;
        bool outside_change = loaded && !reload_requested;
        cache = snap.tokens.value_or(StoredTokens{});
        seen_stamp = snap.stamp;
        if (outside_change) unsaved_refresh_token.clear();   // `token import` wins over a pending rotation
        loaded = true;
        reload_requested = false;
        if (outside_change) {
            log::info("token_store_changed", {{"account", account.name}});
            clear_failures();
        }
    }

    void clear_failures() {
        failures.clear();
        retry_timer.cancel();
    }

    // A token after failures: whoever waited for one may go now (posted: not inside the flight).
    void recovered() {
        wanted = false;
        if (on_recovered) asio::post(io, [cb = on_recovered] { cb(); });
    }

    // Asks the endpoint again when the retry time comes, for as long as failures are retryable and
    // someone wants a token; ends at a success, a person's failure, or stop_upkeep().
    static asio::awaitable<void> retry_loop(std::shared_ptr<Impl> self) {
        while (self->retry_loop_on && self->upkeep_on && self->wanted && self->failures.failing() &&
               !self->failures.needs_person_now()) {
            const auto wait = self->failures.retry_at() - self->clock();
            self->retry_timer.expires_after(std::max<std::chrono::steady_clock::duration>(
                std::chrono::duration_cast<std::chrono::steady_clock::duration>(wait), 0s));
            auto [ec] = co_await self->retry_timer.async_wait(asio::as_tuple(asio::use_awaitable));
            if (ec || !self->upkeep_on) break;
            try {
                co_await self->get(std::nullopt, false);
            } catch (const std::exception&) {
                // logged by fail(); the loop looks at the new retry time
            }
        }
        self->retry_loop_on = false;
    }

    void start_retry_loop() {
        if (retry_loop_on || !upkeep_on || !wanted) return;
        retry_loop_on = true;
        core::spawn(io, retry_loop(shared_from_this()), "token_retry", account.name);
    }

    asio::awaitable<std::string> obtain(std::optional<std::string> rejected) {
        if (account.auth == conf::AuthMode::client_credentials) co_return co_await obtain_app_token(rejected);
        co_await sync_with_store();
        co_await retry_unsaved_rotation(false);
        Clock::time_point now = clock();
        if (rejected && *rejected == cache.access_token) {
            cache.access_token.clear();  // the upstream refused it: never hand it out again
            cache.access_expires_at = {};
        } else if (fresh(now)) {
            co_return cache.access_token;
        }
        if (auto remembered = failures.answer(now)) throw *remembered;
        if (cache.refresh_token.empty()) {
            TokenError error(TokenFailure::invalid_grant, "no_refresh_token",
                             "no refresh token stored for account " + account.name, 0);
            fail(error, now);
            throw error;
        }
        co_return co_await refresh(now);
    }

    // App-only accounts (client credentials) have no refresh token and no token file: a new access
    // token can be had at any time with the app's own credential, so writing one to disk would only
    // add a bearer credential at rest. It lives in memory; a restart costs one token request.
    // `rejected` by reference (the caller's frame owns it): no copy is built inside the caller's
    // co_await expression, a GCC 12 pitfall.
    asio::awaitable<std::string> obtain_app_token(const std::optional<std::string>& rejected) {
        if (reload_requested) {
            cache = StoredTokens{};  // the credential or scope may have changed
            reload_requested = false;
        }
        loaded = true;
        Clock::time_point now = clock();
        if (rejected && *rejected == cache.access_token) cache.access_token.clear();
        else if (fresh(now)) co_return cache.access_token;
        if (auto remembered = failures.answer(now)) throw *remembered;
        ++refresh_count;
        conf::Account acct = account;
        HttpClient& h = http;
        auto job = [&h, acct, now] { return request_token(h, acct, client_credentials_form(acct, now), now); };
        TokenSet got;
        try {
            got = co_await run_blocking(blocking, std::move(job));
        } catch (const TokenError& e) {
            fail(e, now);
            throw;
        }
        cache.access_token = got.access_token;
        cache.access_expires_at = got.expires_at;
        cache.access_obtained_at = got.obtained_at;
        cache.last_refresh = got.obtained_at;
        clear_failures();
        log::info("token_refreshed", {{"account", account.name}, {"grant", "client_credentials"},
                                      {"expires_in", static_cast<long long>(std::chrono::duration_cast<std::chrono::seconds>(
                                                         got.expires_at - got.obtained_at).count())}});
        co_return cache.access_token;
    }

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
    static constexpr auto kSaveRetry = 30s;
    std::string unsaved_refresh_token;
    Clock::time_point next_save_retry{};

    StoredTokens with_pending_rotation() const {
        StoredTokens t = cache;
        t.refresh_token = unsaved_refresh_token;
        return t;
    }

    asio::awaitable<void> retry_unsaved_rotation(bool force) {
        if (unsaved_refresh_token.empty() || (!force && clock() < next_save_retry)) co_return;
        next_save_retry = clock() + kSaveRetry;
        StoredTokens candidate = with_pending_rotation();
        TokenStore& s = store;
        std::string name = account.name;
        auto job = [&s, name, candidate]() -> std::pair<std::string, std::optional<std::filesystem::file_time_type>> {
            try {
                s.save(name, candidate);
                return {std::string{}, s.stamp(name)};
            } catch (const std::exception& e) {
                return {std::string(e.what()), std::nullopt};
            }
        };
        auto [error, stamp] = co_await run_blocking(blocking, std::move(job));
        if (!error.empty()) co_return;   // logged once when it first failed; tried again later
        cache = candidate;
        seen_stamp = stamp;
        unsaved_refresh_token.clear();
        log::info("token_store_saved", {{"account", account.name}, {"path", store.path_for(account.name).string()},
                                        {"detail", "the rotated refresh token is stored and now in use"}});
    }

    asio::awaitable<std::string> refresh(Clock::time_point now) {
        co_await retry_unsaved_rotation(true);   // the newest stored token is the one to use
        ++refresh_count;
        conf::Account acct = account;
        StoredTokens base = cache;
        HttpClient& h = http;
        TokenStore& s = store;
        auto job = [&h, &s, acct, base, now] {
            TokenSet got = request_token(h, acct, refresh_grant_form(acct, base.refresh_token), now);
            Outcome o;
            o.rotated = !got.refresh_token.empty() && got.refresh_token != base.refresh_token;
            o.saved.refresh_token = got.refresh_token.empty() ? base.refresh_token : got.refresh_token;
            o.saved.access_token = got.access_token;
            o.saved.access_expires_at = got.expires_at;
            o.saved.access_obtained_at = got.obtained_at;
            o.saved.last_refresh = got.obtained_at;
            o.expires_in = std::chrono::duration_cast<std::chrono::seconds>(got.expires_at - got.obtained_at);
            // Saved on every refresh: persists a rotation (and retries one that failed to save
            // last time) and caches the access token so a restart needs no refresh.
            try {
                s.save(acct.name, o.saved);
                o.stamp = s.stamp(acct.name);
            } catch (const std::exception& e) {
                o.save_error = e.what();
                if (o.rotated) {
                    o.unsaved_refresh_token = o.saved.refresh_token;
                    o.saved.refresh_token = base.refresh_token;
                }
            }
            return o;
        };
        Outcome out;
        try {
            out = co_await run_blocking(blocking, std::move(job));
        } catch (const TokenError& e) {
            fail(e, now);
            throw;
        }
        cache = out.saved;
        if (out.save_error.empty()) {
            seen_stamp = out.stamp;
            unsaved_refresh_token.clear();   // a later rotation was stored: an older pending one is moot
        } else if (!out.unsaved_refresh_token.empty()) {
            unsaved_refresh_token = out.unsaved_refresh_token;
            next_save_retry = clock() + kSaveRetry;
            log::error("token_store_save_failed",
                       {{"account", account.name}, {"path", store.path_for(account.name).string()},
                        {"error", out.save_error}, {"rotated", "yes"},
                        {"detail", "the provider sent a new refresh token that could not be stored; the previous "
                                   "one stays in use (Microsoft and Google keep it valid) and the new one is "
                                   "saved again every 30 s; free space or fix the path"}});
        } else {
            // Only the access token cache was not written: serve it from memory; the next refresh saves again.
            log::error("token_store_save_failed", {{"account", account.name},
                                                    {"path", store.path_for(account.name).string()},
                                                    {"error", out.save_error}, {"rotated", "no"}});
        }
        clear_failures();
        log::info("token_refreshed", {{"account", account.name},
                                      {"expires_in", static_cast<long long>(out.expires_in.count())},
                                      {"rotated", out.rotated ? "yes" : "no"}});
        co_return cache.access_token;
    }

    asio::awaitable<void> upkeep() {
        const bool uses_refresh_token = account.auth == conf::AuthMode::delegated &&
                                        (account.upstream_auth == conf::UpstreamAuth::xoauth2 ||
                                         account.upstream_auth == conf::UpstreamAuth::oauthbearer);
        if (!uses_refresh_token) co_return;
        bool readable = true;
        try {
            co_await sync_with_store();
        } catch (const std::exception&) {
            readable = false;  // already logged by sync_with_store
        }
        if (!readable || cache.refresh_token.empty()) co_return;
        // A file without last_refresh (written by hand or an older version): refresh now to learn it.
        const bool unknown = cache.last_refresh == Clock::time_point{};
        if (unknown || clock() - cache.last_refresh >= account.keepalive_refresh) {
            const auto idle = std::chrono::duration_cast<std::chrono::seconds>(clock() - cache.last_refresh);
            log::info("token_keepalive", {{"account", account.name},
                                          {"idle_s", unknown ? std::string("unknown") : std::to_string(idle.count())}});
            std::optional<std::string> current = cache.access_token;  // forces one refresh (single flight)
            try {
                co_await get(current, false);
            } catch (const std::exception&) {
                // token_refresh_failed has been logged (or fail-fast is answering from memory)
            }
        }
        if (cache.last_refresh == Clock::time_point{}) co_return;  // still unknown: no age to warn about
        const auto age = clock() - cache.last_refresh;
        const auto days = std::chrono::duration_cast<std::chrono::hours>(age).count() / 24;
        if (age >= std::chrono::hours(24) * account.refresh_token_warn_days)
            log::warning("refresh_token_aging",
                         {{"account", account.name}, {"days_since_refresh", static_cast<long long>(days)},
                          {"warn_days", account.refresh_token_warn_days},
                          {"action", fmt::format("the refresh token may soon be dropped (Microsoft: after 90 days "
                                                 "without use); fix the cause in the token_refresh_failed lines or run "
                                                 "`smtp-oauth2-relay authorize --account {}`", account.name)}});
    }

    // Upkeep on a timer, for as long as upkeep_on. Runs on the I/O thread like everything here.
    static asio::awaitable<void> upkeep_loop(std::shared_ptr<Impl> self) {
        while (self->upkeep_on) {
            self->upkeep_again = false;
            co_await self->upkeep();
            if (!self->upkeep_on) break;
            if (self->upkeep_again) continue;
            self->upkeep_timer.expires_after(upkeep_interval(self->account));
            co_await self->upkeep_timer.async_wait(asio::as_tuple(asio::use_awaitable));
        }
    }

    void start_upkeep() {
        if (upkeep_on) return;
        upkeep_on = true;
        // A loop that dies (it should not: upkeep() never throws) is logged and started again a second later.
        std::weak_ptr<Impl> weak = weak_from_this();
        core::spawn(io, upkeep_loop(shared_from_this()), "token_upkeep", account.name,
                    [weak](std::exception_ptr) {
                        auto self = weak.lock();
                        if (!self || !self->upkeep_on) return;
                        self->upkeep_on = false;
                        core::restart_later(self->io, [weak] {
                            if (auto self = weak.lock()) self->start_upkeep();
                        });
                    });
    }

    void stop_upkeep() {
        upkeep_on = false;
        upkeep_timer.cancel();
        retry_timer.cancel();
    }

    // Permanent failures are logged once and then answered from memory; the others are answered
    // from memory until their retry time (token_retry.hpp), each real attempt logged, and asked
    // again by the retry loop when someone waits for a token.
    void fail(const TokenError& e, Clock::time_point now) {
        const auto wait = failures.record(e, now);
        const std::string action = token_hint(e, account).fix;
        if (needs_person(e.kind())) {
            log::error("token_refresh_failed", {{"account", account.name}, {"error", e.what()}, {"action", action}});
            return;
        }
        log::event(e.kind() == TokenFailure::temporary ? log::Level::warning : log::Level::error,
                   "token_refresh_failed",
                   {{"account", account.name}, {"error", e.what()}, {"action", action},
                    {"retry_in", static_cast<long long>(wait.count())}});
        start_retry_loop();
    }
};

TokenManager::TokenManager(conf::Account account, TokenStore& store, HttpClient& http,
                           boost::asio::any_io_executor io, boost::asio::thread_pool& blocking,
                           std::function<Clock::time_point()> clock)
    : impl_(std::make_shared<Impl>(std::move(account), store, http, std::move(io), blocking, std::move(clock))) {}

TokenManager::~TokenManager() {
    impl_->on_recovered = nullptr;
    impl_->stop_upkeep();
}

void TokenManager::on_recovered(std::function<void()> callback) { impl_->on_recovered = std::move(callback); }

boost::asio::awaitable<std::string> TokenManager::access_token() { return impl_->get(std::nullopt); }

boost::asio::awaitable<void> TokenManager::upkeep() { return impl_->upkeep(); }

void TokenManager::start_upkeep() { impl_->start_upkeep(); }

void TokenManager::stop_upkeep() { impl_->stop_upkeep(); }

boost::asio::awaitable<std::string> TokenManager::token_rejected(const std::string& token) {
    return impl_->get(token);
}

void TokenManager::update_account(conf::Account account) {
    impl_->account = std::move(account);
    impl_->reload_requested = true;
    impl_->clear_failures();
    // keepalive_refresh may have changed: look again now rather than after the old interval.
    impl_->upkeep_again = true;
    impl_->upkeep_timer.cancel();
}

TokenStatus TokenManager::status() const {
    TokenStatus s;
    s.have_refresh_token = !impl_->cache.refresh_token.empty();
    s.access_valid_until = impl_->cache.access_expires_at;
    s.last_refresh = impl_->cache.last_refresh;
    s.last_error = impl_->last_error;
    s.refresh_count = impl_->refresh_count;
    s.retry_at = impl_->failures.retry_at();
    s.needs_person = impl_->failures.needs_person_now();
    return s;
}

const std::string& TokenManager::account_name() const { return impl_->account.name; }

}  // namespace relay::auth
