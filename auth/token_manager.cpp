// TokenManager: the per-account access-token cache, refresh single flight and failure policy.
// Everything here runs on the I/O executor (one thread), so state needs no locks; blocking work
// (token file, HTTP) is shipped to the thread pool with copies of what it needs and its result
// comes back to the I/O executor. One refresh at a time: callers arriving while it runs wait on the
// flight's timer, which is cancelled (a broadcast) when the result is in. A rotated refresh token
// is saved before the flight completes, so no caller can use a token whose successor is unsaved.
#include "auth/token_manager.hpp"

#include "auth/token_manager_impl.hpp"

#include <algorithm>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include "relay/core/blocking.hpp"
#include "relay/core/log.hpp"
#include "relay/core/spawn.hpp"

namespace relay::auth {

using namespace std::chrono_literals;

std::chrono::milliseconds refresh_margin(std::chrono::milliseconds lifetime) {
    return std::min<std::chrono::milliseconds>(600s, lifetime / 5);
}

bool TokenManager::Impl::fresh(Clock::time_point now) const {
    if (cache.access_token.empty()) return false;
    auto lifetime = std::chrono::duration_cast<std::chrono::milliseconds>(cache.access_expires_at -
                                                                           cache.access_obtained_at);
    if (cache.access_obtained_at == Clock::time_point{}) lifetime = 3600s;  // unknown: assume 1 h
    return cache.access_expires_at - now > refresh_margin(lifetime);
}

asio::awaitable<std::string> TokenManager::Impl::get(std::optional<std::string> rejected, bool want) {
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

asio::awaitable<void> TokenManager::Impl::run_flight(std::shared_ptr<Flight> f, std::optional<std::string> rejected) {
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

// Re-reads the store on first use, after update_account(), or when the file changed under us
// (`token import` while running); an outside change also lifts fail-fast and backoff.
asio::awaitable<void> TokenManager::Impl::sync_with_store() {
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

void TokenManager::Impl::clear_failures() {
    failures.clear();
    retry_timer.cancel();
}

// A token after failures: whoever waited for one may go now (posted: not inside the flight).
void TokenManager::Impl::recovered() {
    wanted = false;
    if (on_recovered) asio::post(io, [cb = on_recovered] { cb(); });
}

asio::awaitable<std::string> TokenManager::Impl::obtain(std::optional<std::string> rejected) {
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
asio::awaitable<std::string> TokenManager::Impl::obtain_app_token(const std::optional<std::string>& rejected) {
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

StoredTokens TokenManager::Impl::with_pending_rotation() const {
    StoredTokens t = cache;
    t.refresh_token = unsaved_refresh_token;
    return t;
}

asio::awaitable<void> TokenManager::Impl::retry_unsaved_rotation(bool force) {
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

asio::awaitable<std::string> TokenManager::Impl::refresh(Clock::time_point now) {
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
